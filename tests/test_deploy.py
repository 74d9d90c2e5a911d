"""The deploy files refer to things that exist, and pass their own tools' checks.

There is no container engine here: compose.yaml is parsed, and checked by `docker compose
config` (or `docker-compose config`: `make prerequisites` installs it).
The systemd units pass `systemd-analyze verify`; the Slurm scripts are run for real,
outside Slurm, and stopped as Slurm would stop them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbdict_celery.experiment.status import Status
from tests.conftest import REPO, wait_until
from tests.deployments import Deployment, kill_session, scheduled
from tests.services import installed

DEPLOY = REPO / "deploy"
GRACE = 25.0  # DBDICT_GRACE's default: every stop must wait longer than this
SETTINGS = set(
    re.findall(r'"(DBDICT_[A-Z_]+)"', (REPO / "dbdict_celery" / "config.py").read_text())
)


def _dotenv() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def _interpolated(text: str, env: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` with `env`."""

    def value(match: re.Match[str]) -> str:
        name, how, default = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in env:
            return env[name]
        assert how != ":?", f"{name} is required but .env.example does not set it"
        return default

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", value, text)


def _compose() -> dict[str, Any]:
    text = _interpolated((DEPLOY / "compose.yaml").read_text(), _dotenv())
    parsed: dict[str, Any] = yaml.safe_load(text.replace("$$", "$"))
    return parsed


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "m" else 1)


def test_compose_has_every_part_and_each_refers_to_what_exists() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "worker", "beat", "flower"} <= set(services)
    celery_parts = {"worker", "beat", "flower"}
    for name in celery_parts:
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "dbdict_celery", name], command
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
        unknown = {key for key in services[name]["environment"] if key.startswith("DBDICT_")}
        assert unknown <= SETTINGS, f"{name}: settings dbdict does not read: {unknown - SETTINGS}"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not there"
            else:
                assert source in compose["volumes"], f"{name} uses an undeclared volume {source}"
        for other in service.get("depends_on", {}):
            assert other in services
        if name in ("postgres", "redis"):
            assert "healthcheck" in service
    worker = services["worker"]
    assert worker["stop_signal"] == "SIGTERM"
    assert _seconds(worker["stop_grace_period"]) > float(worker["environment"]["DBDICT_GRACE"])
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"], "Flower needs a password"
    assert all(port.startswith("127.0.0.1:") for port in services["flower"]["ports"])
    for copied in re.findall(r"^COPY (.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M):
        assert all((REPO / part).exists() for part in copied.split()), copied


def test_compose_holds_no_literal_password() -> None:
    raw = (DEPLOY / "compose.yaml").read_text()
    secrets = {value for name, value in _dotenv().items() if "PASSWORD" in name}
    assert secrets, ".env.example names the passwords"
    for line in raw.splitlines():
        if re.search(r"PASSWORD|AUTH|://", line) and not line.lstrip().startswith("#"):
            assert "${" in line or "$$" in line, f"a literal credential? {line.strip()}"
    assert not any(secret in raw for secret in secrets)


def _compose_client() -> list[str]:
    """`docker compose`, or the older `docker-compose` (what `make prerequisites` installs)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:  # fmt: skip
        return [docker, "compose"]
    return [installed("docker-compose", "docker-compose")]


def test_docker_compose_config_accepts_the_file_and_refuses_it_without_env(
    tmp_path: Path,
) -> None:
    client = _compose_client()
    env_file = tmp_path / ".env"
    shutil.copy(DEPLOY / ".env.example", env_file)
    clean = {name: value for name, value in os.environ.items() if name not in _dotenv()}
    config = [*client, "--env-file", str(env_file), "-f", str(DEPLOY / "compose.yaml"), "config"]
    done = subprocess.run(config, capture_output=True, text=True, env=clean, check=False)
    assert done.returncode == 0, done.stderr
    assert "replicas: 2" in done.stdout
    (tmp_path / "empty.env").write_text("")
    config[config.index(str(env_file))] = str(tmp_path / "empty.env")
    refused = subprocess.run(config, capture_output=True, text=True, env=clean, check=False)
    assert refused.returncode != 0, "a forgotten .env must fail, not start without passwords"
    assert "POSTGRES_PASSWORD" in refused.stderr or "set in .env" in refused.stderr


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed here")
    venv_bin = str(Path(sys.executable).parent)
    (tmp_path / "env").write_text("")
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/dbdict/venv/bin", venv_bin)
        text = text.replace("/etc/dbdict/env", str(tmp_path / "env"))
        text = text.replace("WorkingDirectory=/srv/experiments", f"WorkingDirectory={tmp_path}")
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(path) for path in tmp_path.iterdir() if path.suffix != "")
    units = [path for path in units if not path.endswith("/env")]
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    worker = (DEPLOY / "systemd" / "dbdict-worker.service").read_text()
    assert "KillMode=mixed" in worker
    assert "KillSignal=SIGTERM" in worker
    timeout = re.search(r"^TimeoutStopSec=(\d+)$", worker, re.M)
    assert timeout is not None
    assert float(timeout.group(1)) > GRACE


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGUSR2, signal.SIGTERM])
def test_the_slurm_worker_script_hands_its_running_job_back_when_slurm_signals_it(
    cluster: Deployment, tmp_path: Path, signum: signal.Signals
) -> None:
    """Run outside Slurm as Slurm would run it; SIGUSR2 to the script (what its
    `--signal=B:USR2@120` sends before the time limit) or SIGTERM (a preemption) saves the
    running job and puts it back to START."""
    script = DEPLOY / "slurm" / "dbdict-worker.sbatch"
    sbatch = script.read_text()
    assert re.search(r"^#SBATCH --signal=B:USR2@\d+$", sbatch, re.M)
    assert "#SBATCH --requeue" in sbatch
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in cluster.env.items()))
    (job,) = scheduled(cluster, "examples.count.experiment", "target=10000", "interval=0.05")
    env = {**os.environ, "DBDICT_ENV": str(env_file), "SLURM_CPUS_PER_TASK": "1",
           "SLURM_JOB_ID": "42", "PYTHONPATH": str(REPO),
           "DBDICT_CELERY": str(Path(sys.executable).with_name("celery"))}  # fmt: skip
    worker = subprocess.Popen(["bash", str(script)], cwd=cluster.cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        store = cluster.store()
        wait_until(lambda: int(store.get(job.id).state.get("count", 0)) >= 3, "3 saves", 60)
        worker.send_signal(signum)
        assert worker.wait(timeout=60) == 0, "a warm shutdown"
    finally:
        kill_session(worker)
    row = store.get(job.id)
    assert row.status is Status.START, "handed back, to resume elsewhere"
    assert int(row.state["count"]) >= 3
    assert row.host is not None


def test_the_slurm_scripts_are_valid_bash() -> None:
    for script in (DEPLOY / "slurm").glob("*.sbatch"):
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert done.returncode == 0, f"{script.name}: {done.stderr}"
        assert "exec " in script.read_text(), "the signal must reach the worker itself"


def test_the_pgbouncer_example_is_in_transaction_mode_and_times_out_held_transactions() -> None:
    """The settings dbdict needs of PgBouncer (docs/scaling.md): transaction mode, a held
    transaction ended after half the default staleness window, room for 100 x 8 workers."""
    import configparser

    from dbdict_celery.config import stale_after

    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read(DEPLOY / "pgbouncer" / "pgbouncer.ini", encoding="utf-8")
    settings = ini["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert float(settings["idle_transaction_timeout"]) == stale_after() / 2
    assert int(settings["max_client_conn"]) >= 100 * (2 * 8 + 1)
    assert "experiments" in ini["databases"]
