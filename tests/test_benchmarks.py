"""`make bench` runs every benchmark and records each measure next to its target in
benchmarks/results.json.

The figures themselves are not checked (a benchmark is not a test: this machine is
shared and noisy); that every suite runs, on real services, and records well is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SUITES = {"worker", "schedule", "store", "status", "save", "stop", "memory", "capture", "writes"}


@pytest.mark.integration
def test_the_benchmarks_at_a_tiny_scale_record_every_measure_with_its_target(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two runs into one file, as `--only` runs are: the second adds its suite to the first's."""
    output = tmp_path / "results.json"
    broker = redis_url.rsplit("/", 1)[0] + "/15"  # a database of the private Redis no test uses
    for suites in (sorted(SUITES - {"writes"}), ["writes"]):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--scale", "0.01", "--db", postgres_url,
             "--broker", broker, "--output", str(output), "--only", ",".join(suites)],
            cwd=REPO, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "target" in done.stdout, "the table is printed"
    record = json.loads(output.read_text())
    assert set(record["runs"]) == SUITES
    assert all(run["settings"]["scale"] == 0.01 for run in record["runs"].values())
    results = record["results"]
    assert {result["suite"] for result in results} == SUITES
    assert len(results) >= 2 * len(SUITES) - 2, [result["name"] for result in results]
    for result in results:
        assert math.isfinite(result["value"]), result
        if result["target"] is None:
            assert result["met"] is None
        else:
            operator, bound = result["target"]
            assert operator in (">=", "<=", "<")
            assert bound > 0
            assert result["met"] in (True, False)
    targets = {result["name"].split(",")[0] for result in results if result["target"]}
    assert {
        "worker",
        "save",
        "stop latency",
        "worker pool memory growth",
        "capture",
        "PgBouncer",
    } <= targets
