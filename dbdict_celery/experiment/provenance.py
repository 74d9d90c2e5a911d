"""What a run ran: its experiment's code and its process's environment.

Months later, a researcher must be able to say which commit (and which
uncommitted changes), which packages and which machine produced a number.
Each attempt of a job records this (`Code`, `Environment`), captured once per
process and cached: a process's packages and imported code do not change
under it, and a sweep of thousands of short jobs must not pay for git and
package listing on every one.

Capturing never fails a run: git missing, a module outside any repository, a
command that hangs, all record "unknown". And it never records a secret:
environment variables come from an allow-list, a name that looks like a
secret's is refused even when listed, and every text kept (a remote URL, a
diff, a variable) has URL passwords and the values of secret-named variables
masked.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
COMMAND_TIMEOUT = 10.0  # seconds: a git or nvidia-smi that hangs (a dead NFS mount) is skipped
MAX_DIFF_CHARACTERS = 8 * 1024 * 1024
MASK = "***"

# Variables that change what an experiment computes or say where it ran, and hold no secret.
VARIABLES = (
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "PYTHONHASHSEED", "TF_DETERMINISTIC_OPS", "XLA_FLAGS",
    "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV",
)  # fmt: skip
SECRET_NAME = re.compile(
    r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE", re.IGNORECASE
)
# `scheme://user:password@`: up to the last @ of the word, as a password may hold @ itself
_URL_PASSWORD = re.compile(r"(?P<start>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)\S+(?=@)")
# `https://TOKEN@host`: on the web, a user name alone is how a token is given (a CI clone)
_WEB_USER = re.compile(r"(?P<start>https?://)[^\s:/@]+@", re.IGNORECASE)
_SHORTEST_SECRET = 6  # a secret-named variable holding "1" is a switch: masking every 1 hides all


@dataclass(frozen=True)
class Code:
    """The git state of the repository holding an experiment's module, when it was imported."""

    commit: str = UNKNOWN
    branch: str = UNKNOWN
    dirty: bool | None = None  # tracked files changed since the commit; None: unknown
    repository: str | None = None  # the work tree's top directory
    remote: str | None = None  # origin's URL, password masked
    diff: str = ""  # `git diff HEAD` when dirty


@dataclass(frozen=True)
class Environment:
    """The process's Python, platform, installed packages, allow-listed variables, hardware."""

    python: str
    platform: str
    packages: tuple[str, ...]  # `name==version`, sorted, as pip freeze lists them
    variables: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What a run's attempt records of it: the packages by their hash, the rest whole."""
        return {
            "python": self.python,
            "platform": self.platform,
            "environment": self.hash,
            "variables": self.variables,
            "hardware": self.hardware,
        }

    @functools.cached_property
    def hash(self) -> str:
        """The identity of the Python and its packages: runs sharing it ran the same software."""
        text = "\n".join([self.python, *self.packages])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scrub(text: str) -> str:
    """`text` as valid UTF-8 (the database keeps nothing else), with URL passwords, the user
    of web URLs, and the values of secret-named environment variables masked."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = _URL_PASSWORD.sub(rf"\g<start>{MASK}", text)
    text = _WEB_USER.sub(rf"\g<start>{MASK}@", text)
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= _SHORTEST_SECRET and value in text:
            text = text.replace(value, MASK)
    return text


@functools.cache
def environment() -> Environment:
    """This process's environment (computed once per process)."""
    return Environment(
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        platform=scrub(platform.platform()),
        packages=_packages(),
        variables=_variables(),
        hardware=_hardware(),
    )


def code_of(experiment: str) -> Code:
    """The git state of the repository holding the module of `experiment` (a dotted name,
    already imported or partly imported by the run); "unknown" where there is none."""
    found = _module_file(experiment)
    return Code() if found is None else _code_at(*found)


def _module_file(experiment: str) -> tuple[str, str] | None:
    """(module name, its file's folder) of the innermost imported module of `experiment`."""
    parts = experiment.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        path: str | None = getattr(sys.modules.get(name), "__file__", None)
        if path:
            return name, os.path.dirname(os.path.realpath(path))
    return None


@functools.cache
def _code_at(module: str, directory: str) -> Code:
    """The git state of `directory` when `module` (imported from it) is first run here: once
    per module and process, as a process keeps running the code it imported."""
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top is None:
        return Code()
    commit = _git(directory, "rev-parse", "--verify", "HEAD")
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    changes = _git(directory, "status", "--porcelain", "--untracked-files=no")
    dirty = None if changes is None else bool(changes)
    diff = (_git(directory, "diff", "HEAD", "--no-color", "--no-ext-diff") or "") if dirty else ""
    if len(diff) > MAX_DIFF_CHARACTERS:
        diff = diff[:MAX_DIFF_CHARACTERS] + f"\n[cut at {MAX_DIFF_CHARACTERS} characters]\n"
    remote = _git(directory, "config", "--get", "remote.origin.url")
    return Code(
        commit=commit or UNKNOWN,
        branch=("detached" if branch == "HEAD" else branch) if branch else UNKNOWN,
        dirty=dirty,
        repository=scrub(top),
        remote=scrub(remote) if remote else None,
        diff=scrub(diff) if diff else "",
    )


def _git(directory: str, *arguments: str) -> str | None:
    """What a git command prints (stripped), or None if git is missing or the command fails."""
    if shutil.which("git") is None:
        return None
    environment = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }  # fmt: skip  (no index lock: the user may be committing)
    output = _run(["git", "-C", directory, *arguments], environment)
    return None if output is None else output.strip()


def _run(command: list[str], environment: dict[str, str] | None = None) -> str | None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", check=False,
            timeout=COMMAND_TIMEOUT, env=environment, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        log.info("%s: not recorded (%s)", command[0], error)
        return None
    return done.stdout if done.returncode == 0 else None


def _packages() -> tuple[str, ...]:
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name.lower() not in found:  # the first on sys.path is the one imported
            found[name.lower()] = f"{name}=={distribution.version}"
    return tuple(sorted(found.values(), key=str.lower))


def _variables() -> dict[str, str]:
    """The allow-listed variables set here; `DBDICT_CAPTURE_ENV` (comma-separated names)
    adds to the list, but never a name that looks like a secret's."""
    extra = [name.strip() for name in os.environ.get("DBDICT_CAPTURE_ENV", "").split(",")]
    names = _allowed([*VARIABLES, *filter(None, extra)])
    return {name: scrub(os.environ[name]) for name in names if name in os.environ}


def _allowed(names: Iterable[str]) -> list[str]:
    allowed = []
    for name in dict.fromkeys(names):
        if not name.isascii() or not name.isprintable():
            continue
        if SECRET_NAME.search(name):
            log.warning("DBDICT_CAPTURE_ENV: %s looks like a secret's name: not recorded", name)
        else:
            allowed.append(name)
    return allowed


def _hardware() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "machine": platform.machine(),
        "cpu": _cpu_model() or platform.processor() or UNKNOWN,
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gb": _memory_gb(),
        "gpus": _gpus(),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return None


def _memory_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 1024**3, 1)


def _gpus() -> list[str]:
    """One line per NVIDIA GPU (name, driver, memory), from nvidia-smi where there is one."""
    if shutil.which("nvidia-smi") is None:
        return []
    query = "--query-gpu=name,driver_version,memory.total"
    output = _run(["nvidia-smi", query, "--format=csv,noheader"])
    return [line.strip() for line in (output or "").splitlines() if line.strip()]
