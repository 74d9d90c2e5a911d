"""Moving working directories to and from an exproot: local paths and ssh://."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbdict_celery import DD, Channel, RSyncChannel, SyncError, UsageError
from dbdict_celery.experiment import sync
from tests.chaos.link import Link
from tests.conftest import live_processes, read_conf, wait_until


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


@dataclass
class HeldLink:
    """The test sshd reached through a link that can be cut (see Link), and the pid of the
    sshd, whose children are the connections it serves."""

    link: Link
    sshd: int

    def connections(self) -> list[int]:
        """The sshd's processes serving a connection, one each."""
        return [process.pid for process in live_processes() if process.parent == self.sshd]


@pytest.fixture
def held_link(ssh_command: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldLink]:
    """The test sshd through a link that can be cut; rsync's silence limit 1 s."""
    words = ssh_command.split()
    link = Link(("127.0.0.1", int(words[words.index("-p") + 1])))
    words[words.index("-p") + 1] = str(link.port)
    monkeypatch.setenv("DBDICT_SSH_COMMAND", " ".join(words))
    monkeypatch.setenv("DBDICT_STALE_AFTER", "4")  # a quarter: rsync gives up after 1 s of silence
    pid_file = Path(words[words.index("-i") + 1]).with_name("sshd.pid")  # beside its keys
    yield HeldLink(link, int(pid_file.read_text()))
    link.close()


def _work(tmp_path: Path) -> Path:
    local = tmp_path / "work"
    local.mkdir()
    (local / "current.conf").write_text("step = 1\n")
    return local


@pytest.mark.ssh
def test_a_push_held_up_by_the_network_is_stopped_at_its_deadline_and_never_lands(
    held_link: HeldLink, tmp_path: Path
) -> None:
    local, target = _work(tmp_path), tmp_path / "exproot"
    target.mkdir()
    held_link.link.cut()
    deadline = time.monotonic() + 2
    with pytest.raises(sync.LeaseExpired, match="lease on the job's files ran out"):
        sync.push(str(local), sync.Remote(str(target), "127.0.0.1"), until=lambda: deadline)
    assert time.monotonic() < deadline + 10, "stopped soon after its deadline"
    assert held_link.connections(), "the stopped push's connection is still held at the server"
    held_link.link.heal()  # whatever was held goes through now, late
    wait_until(lambda: not held_link.connections(), "the server to end the stopped push's session")
    assert not (target / "current.conf").exists(), "nothing of the stopped push landed"


@pytest.mark.ssh
def test_a_push_whose_deadline_is_renewed_goes_on_through_a_stall(
    held_link: HeldLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transfer outlives the deadline it began with, because the deadline is renewed as
    it goes (as a run's heartbeats renew its lease): stopped at its first deadline, the push
    is not tried again and fails."""
    monkeypatch.setattr(sync, "RETRIES", 1)
    monkeypatch.setenv("DBDICT_STALE_AFTER", "40")  # rsync's own silence limit, 10 s, outlasts it
    local, target = _work(tmp_path), tmp_path / "exproot"
    target.mkdir()
    first_deadline = time.monotonic() + 1
    held_link.link.cut()
    healing = threading.Timer(3, held_link.link.heal)
    healing.start()
    try:
        sync.push(str(local), sync.Remote(str(target), "127.0.0.1"),
                  until=lambda: time.monotonic() + 1)  # fmt: skip  # always a second ahead
    finally:
        healing.join()
    assert time.monotonic() > first_deadline + 1, "the stall outlasted the first deadline"
    assert (target / "current.conf").read_text() == "step = 1\n"


@pytest.mark.ssh
def test_a_push_stopped_part_way_leaves_the_last_saves_files_not_a_mix(
    held_link: HeldLink, tmp_path: Path
) -> None:
    """`current.conf` and the files it goes with land together: a push cut while a later
    file is on its way has not yet put the new `current.conf` in place."""
    local, target = _work(tmp_path), tmp_path / "exproot"
    remote = sync.Remote(str(target), "127.0.0.1")
    sync.push(str(local), remote)
    (local / "current.conf").write_text("step = 2\n")
    (local / "zz-checkpoint.bin").write_bytes(os.urandom(256 * 2**20))  # sent after current.conf

    def checkpoint_on_its_way() -> bool:
        return any("zz-checkpoint" in path.name for path in target.rglob("*"))

    def cut_when_on_its_way() -> None:
        wait_until(checkpoint_on_its_way, "the checkpoint to be on its way", timeout=60)
        held_link.link.cut()

    cutting = threading.Thread(target=cut_when_on_its_way)
    cutting.start()
    deadline = time.monotonic() + 30
    try:
        with pytest.raises(SyncError):  # given up after 1 s of silence, or at the deadline
            sync.push(str(local), remote, until=lambda: deadline)
    finally:
        cutting.join()
    assert not (target / "zz-checkpoint.bin").exists(), "the cut came while it was on its way"
    assert (target / "current.conf").read_text() == "step = 1\n"
