"""The public Python API: the surface the docs list, and the README's example run for real."""

from __future__ import annotations

import ast
import csv
import re
import subprocess
import sys

import pytest

import dbdict_celery
from dbdict_celery.experiment.status import Status
from tests.conftest import REPO
from tests.deployments import Deployment, environment


def test_every_public_name_resolves_and_nothing_else_is_offered() -> None:
    for name in dbdict_celery.__all__:
        assert getattr(dbdict_celery, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'JobStor'"):
        dbdict_celery.JobStor  # noqa: B018


def test_the_names_type_checkers_see_are_the_names_offered() -> None:
    """The TYPE_CHECKING imports of `__init__.py` (what mypy and editors see) and the
    lazily loaded names (what runs) are the same set, from the same modules."""
    tree = ast.parse((REPO / "dbdict_celery" / "__init__.py").read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dbdict_celery"):
            for alias in node.names:
                typed[alias.asname or alias.name] = node.module or ""
    typed["app"] = "dbdict_celery.worker.tasks"  # annotated, not imported: Celery is heavy
    lazy = {name: f"dbdict_celery.{module}" for name, module in dbdict_celery._WHERE.items()}
    assert typed == lazy


def test_the_docs_list_exactly_the_public_names() -> None:
    listed = re.findall(r"^\| `(\w+)`", (REPO / "docs" / "api.md").read_text(encoding="utf-8"),
                        flags=re.MULTILINE)  # fmt: skip
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == sorted(dbdict_celery.__all__)


def readme_example() -> str:
    """The first Python block of the README's "From Python" section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "the README's From Python section has no python block"
    return match.group(1)


@pytest.mark.integration
def test_the_readme_python_example_runs_a_sweep_end_to_end(deployment: Deployment) -> None:
    """Scheduled, cancelled, watched, requeued and exported from Python, by a real worker."""
    deployment.start_worker("-c", "2")
    script = deployment.cwd / "example.py"
    script.write_text(readme_example(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=deployment.cwd,
        env=environment(deployment.env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "{'DONE': 5, 'CANCELLED': 1}" in done.stdout
    assert "6 jobs in results.csv" in done.stdout
    jobs = deployment.store().jobs()
    assert [job.status for job in jobs] == [Status.DONE] * 6
    longest = max(jobs, key=lambda job: job.id)
    assert (longest.state["target"], longest.state["scale"]) == (20, 10)
    assert longest.state["result"] == 200
    with open(deployment.cwd / "results.csv", encoding="utf-8", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert sorted(int(row["result"]) for row in rows) == sorted(
        target * scale for target in (5, 10, 20) for scale in (1, 10)
    )


def test_a_user_error_from_the_api_carries_the_exit_code_the_command_would_use() -> None:
    with pytest.raises(dbdict_celery.UsageError, match="list of key=value strings") as raised:
        dbdict_celery.plan("examples.count.experiment", "target=3")
    assert raised.value.exit_code == 2
