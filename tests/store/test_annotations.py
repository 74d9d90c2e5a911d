"""Tags and notes on jobs, and jobs grouped with aggregates of their results, on SQLite and
Postgres: what `dbdict tag`, `dbdict note`, `--where tag=NAME` and `list --group-by` read."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from dbdict_celery.errors import JobNotFound, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.grouping import Aggregate
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

pytestmark = pytest.mark.integration  # each test runs on SQLite and on Postgres


def done_jobs(store: JobStore, results: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """A DONE job for each (parameters, results), in order."""
    new = [NewJob("tests.experiments.mark", params) for params, _ in results]
    inserted = [row for batch in store.insert(new) for row in batch]
    for row, (params, result) in zip(inserted, results, strict=True):
        run = store.book(job_id=row.id)
        assert run is not None
        assert store.finish(run, Status.DONE, {**params, **result}) is Status.DONE


def ids(store: JobStore, *where: str) -> list[int]:
    return [job.id for job in store.jobs(where=where)]


def test_tags_are_added_removed_and_found(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(4)]))
    store.tag([1, 2], add=["baseline", "lr_0.1"])
    store.tag([2, 3], add=["old", "baseline"], remove=["lr_0.1"])
    store.tag([1], add=["baseline"])  # already there: once
    assert {job.id: job.tags for job in store.jobs()} == {
        1: "baseline lr_0.1", 2: "baseline old", 3: "old baseline", 4: None,
    }  # fmt: skip
    assert ids(store, "tag=baseline") == [1, 2, 3]
    assert ids(store, "tag!=baseline") == [4], "an untagged job has no tag"
    assert ids(store, "tag=lr_0.1") == [1]
    assert ids(store, "tag=lr_011") == [], "_ is not a wildcard"
    assert ids(store, "tag=base") == [], "a tag is matched whole"
    store.tag([4], add=["Baseline"])
    assert ids(store, "tag=baseline") == [1, 2, 3], "case counts, on SQLite too"
    store.tag([4], add=["baseline"], remove=["BASELINE"])
    assert store.get(4).tags == "Baseline baseline"
    store.tag([4], remove=["Baseline", "baseline"])
    store.tag([1, 2, 3], remove=["baseline", "old", "lr_0.1"])
    assert all(job.tags is None for job in store.jobs())


def test_a_tag_of_an_unknown_job_changes_nothing(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    with pytest.raises(JobNotFound, match="no job 7"):
        store.tag([1, 7], add=["x"])
    assert store.get(1).tags is None
    for bad in ("two words", "+x", "", "a'b"):
        with pytest.raises(UsageError):
            store.tag([1], add=[bad])


def test_a_state_key_named_tag_is_state_tag(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"tag": "v1"})]))
    store.tag([1], add=["v2"])
    assert ids(store, "tag=v2") == [1]
    assert ids(store, "state.tag=v1") == [1]
    assert ids(store, "tag=v1") == []


def test_a_note_is_written_and_cleared(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    assert store.annotate(1, "  lr too high  ").note == "lr too high"
    assert store.get(1).note == "lr too high"
    assert store.annotate(1, "").note is None
    with pytest.raises(JobNotFound):
        store.annotate(2, "x")


NAN, INF = math.nan, math.inf


def test_groups_aggregate_numbers_as_filters_read_them(store: JobStore) -> None:
    done_jobs(store, [
        ({"lr": 0.1, "layers": 2}, {"accuracy": 0.81}),
        ({"lr": 0.1, "layers": 2, "seed": 1}, {"accuracy": 0.83}),
        ({"lr": 0.1, "layers": 2, "seed": 2}, {"accuracy": NAN}),  # left out
        ({"lr": 0.1, "layers": 2, "seed": 3}, {"accuracy": "diverged"}),  # left out
        ({"lr": 0.1, "layers": 4}, {"accuracy": 0.9}),
        ({"lr": 0.01, "layers": 2}, {"accuracy": INF}),
        ({"lr": 0.01, "layers": 2, "seed": 1}, {"accuracy": 0.5}),
        ({"lr": 0.01}, {}),  # no layers, no accuracy: its own group
        ({"lr": 10, "layers": 2}, {"accuracy": 0.1}),  # 10 after 0.1: numbers, not text
        ({"lr": 1, "layers": 2}, {"accuracy": 0.3}),  # 1 and 1.0: one value, one group
        ({"lr": 1.0, "layers": 2}, {"accuracy": 0.5}),
        ({"lr": "0.1", "layers": 2}, {"accuracy": 0.2}),  # text: a group of its own
    ])  # fmt: skip
    wanted = Aggregate.parse_all(["mean,std,count,min,max,sum:accuracy"])
    groups = store.groups(["lr", "layers"], wanted)
    found = {group.values: (group.jobs, {str(a): v for a, v in group.results.items()})
             for group in groups}  # fmt: skip
    numeric = [values for values in found if not isinstance(values[0], str)]
    assert numeric == [(0.01, 2), (0.01, None), (0.1, 2), (0.1, 4), (1, 2), (10, 2)], "None last"
    assert found[(1, 2)][0] == 2
    assert found[("0.1", 2)][0] == 1
    jobs, first = found[(0.1, 2)]
    assert jobs == 4
    assert first["count:accuracy"] == 2
    assert first["mean:accuracy"] == pytest.approx(0.82)
    assert first["std:accuracy"] == pytest.approx(statistics.stdev([0.81, 0.83]))
    assert (first["min:accuracy"], first["max:accuracy"]) == (0.81, 0.83)
    assert first["sum:accuracy"] == pytest.approx(1.64)
    jobs, single = found[(0.1, 4)]
    assert (jobs, single["count:accuracy"], single["std:accuracy"]) == (1, 1, None)
    _, infinite = found[(0.01, 2)]
    assert infinite["mean:accuracy"] == INF
    assert math.isnan(float(infinite["std:accuracy"] or 0))
    jobs, empty = found[(0.01, None)]
    assert (jobs, empty["count:accuracy"], empty["mean:accuracy"]) == (1, 0, None)


def test_groups_by_columns_tags_and_filters(store: JobStore) -> None:
    done_jobs(store, [({"n": n}, {"loss": float(n)}) for n in range(6)])
    store.tag([1, 2, 3], add=["a"])
    by_tag = store.groups(["tags", "status"], Aggregate.parse_all(["mean:loss"]),
                          where=["n>0"])  # fmt: skip
    assert [(g.values, g.jobs, g.results[Aggregate("mean", "loss")]) for g in by_tag] == [
        (("a", "DONE"), 2, 1.5),
        ((None, "DONE"), 3, 4.0),
    ], "jobs without a value come last"


def test_bad_groupings_are_one_line(store: JobStore) -> None:
    for specs in (["mean"], ["median:x"], ["mean,:x"], [":x"]):
        with pytest.raises(UsageError):
            Aggregate.parse_all(specs)
    with pytest.raises(UsageError):
        store.groups([], [])
    with pytest.raises(UsageError):
        store.groups(["a'b"], [])
    with pytest.raises(UsageError):
        store.groups(["n"], [Aggregate("mean", "status")])
