"""`python -m tests.cluster.named NAME PROGRAM ARGS...`: run PROGRAM under the hostname NAME.

Started in a UTS namespace of its own (`unshare --uts`), so the name is this
test host's alone: its workers call themselves `w1@NAME` and its runs record
`NAME` as their host, as on a machine of that name.
"""

from __future__ import annotations

import os
import socket
import sys

if __name__ == "__main__":
    name, program, *arguments = sys.argv[1:]
    socket.sethostname(name)
    os.execvp(program, [program, *arguments])
