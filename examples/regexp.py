"""The original dbdict's builder example.

    dbdict run examples.regexp.experiment regexp::re.compile regexp.pattern='a.*c'

prints `hello blahblah there`: `make(state.regexp)` calls `re.compile(pattern='a.*c')`.
"""

from __future__ import annotations

from dbdict_celery import DD, Channel, make


def experiment(state: DD, channel: Channel) -> None:
    """Build the regexp the parameters describe and use it once."""
    regexp = make(state.regexp)
    print(regexp.sub("blahblah", "hello abbbbc there"))
