"""Moving working directories to and from an exproot: local paths and ssh://."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from dbdict_celery import DD, Channel, RSyncChannel, SyncError, UsageError
from dbdict_celery.experiment import sync
from tests.conftest import read_conf


@pytest.mark.parametrize(
    ("location", "host", "path"),
    [
        ("ssh://node7:/abs/exproot", "node7", "/abs/exproot"),
        ("ssh://me@node7:relative/exproot", "me@node7", "relative/exproot"),
    ],
)
def test_ssh_locations_keep_absolute_and_home_relative_paths(
    location: str, host: str, path: str
) -> None:
    remote = sync.Remote.parse(location)
    assert (remote.host, remote.path) == (host, path)
    assert str(remote) == location
    assert remote.join("db", "7").rsync_spec == f"{host}:{path}/db/7/"


def test_local_locations_are_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    remote = sync.Remote.parse("exproot")
    assert remote == sync.Remote(str(tmp_path / "exproot"))


@pytest.mark.parametrize("location", ["ssh://node7", "ssh://:/path", "ssh://-oProxyCommand=x:/p"])
def test_malformed_ssh_locations_are_refused(location: str) -> None:
    with pytest.raises(UsageError, match="malformed remote"):
        sync.Remote.parse(location)


def test_push_and_pull_against_a_local_exproot(tmp_path: Path) -> None:
    local, remote = tmp_path / "work", sync.Remote(str(tmp_path / "root" / "job"))
    local.mkdir()
    (local / "weights.bin").write_bytes(b"\x00\x01")
    sync.ensure_dir(remote)
    sync.push(str(local), remote)
    assert (tmp_path / "root" / "job" / "weights.bin").read_bytes() == b"\x00\x01"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sync.pull(remote, str(elsewhere))
    assert (elsewhere / "weights.bin").read_bytes() == b"\x00\x01"


def test_a_failed_transfer_names_source_and_target_and_no_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "RETRIES", 1)
    monkeypatch.setenv("DBDICT_SSH_COMMAND", "ssh -o ConnectTimeout=3")
    remote = sync.Remote.parse("ssh://nobody@host.invalid:/exproot/job")
    with pytest.raises(SyncError) as caught:
        sync.pull(remote, str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"pulling from ssh://nobody@host.invalid:/exproot/job to {tmp_path}")
    assert "BatchMode" not in message
    assert "rsync -ac" not in message


def test_a_failed_transfer_says_why_not_only_that_rsync_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "RETRIES", 1)
    with pytest.raises(SyncError) as caught:
        sync.push(str(tmp_path / "missing"), sync.Remote(str(tmp_path / "exproot")))
    assert "No such file or directory" in str(caught.value)
    assert "rsync error" not in str(caught.value)


def test_a_local_target_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SyncError, match="cannot create"):
        sync.ensure_dir(sync.Remote(str(tmp_path / "file" / "job")))


def resumable(state: DD, channel: Channel) -> bool | None:
    """Two steps, one per run, leaving a file behind each time."""
    state.step = state.get("step", 0) + 1
    with open(f"step{state.step}.txt", "w", encoding="utf-8") as mark:
        mark.write(os.getcwd())
    channel.save()
    return channel.INCOMPLETE if state.step < 2 else channel.COMPLETE


@pytest.mark.ssh
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "home-relative"])
def test_rsync_channel_over_ssh(
    relative: bool, ssh_command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBDICT_SSH_COMMAND", ssh_command)
    if relative:
        name = f"dbdict-test-{uuid.uuid4().hex}"
        location, on_disk = f"ssh://127.0.0.1:{name}/job 1", Path.home() / name / "job 1"
    else:
        location, on_disk = (
            f"ssh://127.0.0.1:{tmp_path}/exp root/job 1",
            tmp_path / "exp root" / "job 1",
        )
    try:
        RSyncChannel(str(tmp_path / "a"), location, resumable, DD(x=1)).run()
        assert read_conf(on_disk / "current.conf")["step"] == 1
        RSyncChannel(str(tmp_path / "b"), location, resumable, DD(x=1)).run()
        final = read_conf(on_disk / "current.conf")
        assert (final["step"], final["dbdict.status"]) == (2, Channel.DONE)
        assert (on_disk / "step1.txt").read_text() == str(tmp_path / "a")
        assert (tmp_path / "b" / "step1.txt").exists(), "the second host pulled the first's files"
    finally:
        if relative:
            import shutil

            shutil.rmtree(on_disk.parent, ignore_errors=True)
