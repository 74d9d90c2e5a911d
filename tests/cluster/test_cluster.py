"""A sweep on three worker hosts, with the exproot on a fourth over ssh: one host's link cut
for 20 s, another host killed outright, and every job still ends exactly once.

The workload is the chaos suite's (`tests/chaos/workload.py`): counting jobs
that leave a side-effect line per step, two in three checkpointing after each
step, judged by `tests/chaos/ledger.py` (no run overlapping another, none
redoing a saved step, every DONE job's files in the exproot naming the run
the row says finished it). Run on Postgres straight and through PgBouncer.
"""

from __future__ import annotations

import time

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome
from tests.cluster.conftest import POOL_SIZE, WORKER_HOSTS, Cluster
from tests.conftest import wait_until

CUT_SECONDS = 20.0
PROCESSES = 2  # pool processes per host
# What a worker with P pool processes holds at most: one session per pool process, one more
# while its heart beats during the run's own write, and the main process's (revokes, grace).
SESSIONS_PER_HOST = 2 * PROCESSES + 1


def test_a_sweep_survives_a_cut_link_and_a_dead_host(cluster: Cluster) -> None:
    chaos = cluster.chaos
    store = cluster.deployment.store()
    chaos.schedule(pause=0.1)
    chaos.reconcile_every(1.0)
    for name in WORKER_HOSTS:
        cluster.start_worker(name, "-c", str(PROCESSES))
    cut, dead = cluster.hosts["node2"], cluster.hosts["node3"]

    chaos.midway(0.2)
    running = wait_until(lambda: [j for j in store.jobs(Status.RUNNING) if j.host == cut.name],
                         "node2 to run jobs", timeout=120)  # fmt: skip
    cluster.network.cut(cut)
    cut_at = time.monotonic()
    stuck = {job.id: job.run_id for job in running}
    wait_until(lambda: all(store.get(j).run_id != run for j, run in stuck.items()),
               "the cut-off host's runs to be taken over", timeout=120)  # fmt: skip
    time.sleep(max(0.0, cut_at + CUT_SECONDS - time.monotonic()))  # the cut lasts 20 s
    cluster.network.heal(cut)
    healed_at = time.time()
    clients_seen = len(cluster.bouncer.show("CLIENTS")) if cluster.bouncer else 0

    chaos.midway(0.5)
    wait_until(lambda: any(j.host == dead.name for j in store.jobs(Status.RUNNING)),
               "node3 to run jobs", timeout=120)  # fmt: skip
    cluster.network.kill(dead)

    verdict = chaos.check("cluster: a link cut 20 s, a host killed", timeout=300 + chaos.jobs)
    jobs = store.jobs()
    runs = [run for job_runs in store.attempts_of([j.id for j in jobs]).values()
            for run in job_runs]  # fmt: skip
    assert {run.host for run in runs} == set(WORKER_HOSTS), "every host ran jobs"
    assert verdict.resumed >= len(stuck), "the cut-off runs' jobs were run again"
    for job_id, run_id in stuck.items():
        (first,) = [run for run in runs if run.run_id == run_id]
        assert first.outcome is AttemptOutcome.LOST, f"job {job_id}'s cut-off run was lost"
        assert store.get(job_id).status is Status.DONE
    lost_on_dead = [r for r in runs if r.host == dead.name and r.outcome is AttemptOutcome.LOST]
    assert lost_on_dead, "the killed host's runs were declared lost"
    assert all(run.reason == "stale heartbeat" for run in lost_on_dead)
    assert any(r.host == cut.name and r.finished_at and r.finished_at.timestamp() > healed_at
               and r.outcome is AttemptOutcome.DONE for r in runs), \
        "the healed host went on running jobs"  # fmt: skip
    assert "is no longer this run's" in cluster.workers[cut.name].text()
    exproot = cluster.deployment.exproot / "cluster" / store.path.table
    missing = [j.id for j in jobs if not (exproot / str(j.id) / "orig.conf").exists()]
    assert not missing, f"jobs without their files in the exproot: {missing[:10]}"
    _check_sessions(cluster, clients_seen)


def _check_sessions(cluster: Cluster, clients_seen: int) -> None:
    """Postgres sessions stayed within what docs/scaling.md says: per host, or, through
    PgBouncer, its pool for every client of every host."""
    most = cluster.sessions.most
    print(f"most Postgres sessions at once, by client address: {dict(most)}; "
          f"PgBouncer clients seen: {clients_seen}")  # fmt: skip
    if cluster.bouncer is None:
        for host in cluster.hosts.values():
            assert 0 < most[host.address] <= SESSIONS_PER_HOST, (host.name, dict(most))
        return
    assert clients_seen > POOL_SIZE, f"PgBouncer had only {clients_seen} clients"
    assert 0 < most["127.0.0.1"] <= POOL_SIZE, dict(most)
    assert not any(most[host.address] for host in cluster.hosts.values()), dict(most)
