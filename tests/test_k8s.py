"""The Kubernetes manifests of deploy/k8s: valid, consistent, and safe to scale down.

There is no cluster here, so the manifests are checked offline: every Kubernetes object
against the API's own OpenAPI schemas (kubernetes-validate, strict: an unknown field is an
error, as `kubectl apply` makes it), and KEDA's ScaledObject against the pydantic models
that cloudcoil-models-keda generates from KEDA's CRD (types and required fields, and a
round trip that finds any field the CRD does not have). Then what a user relies on: the
kubelet waits longer than a stopped job takes to save, its SIGTERM reaches Celery itself,
every URL comes from the Secret, and KEDA scales the worker Deployment.

The last test plays a scale-down: a real worker, started with the manifest's own command
and settings, gets what the kubelet sends a pod it removes, and its running job must come
back to START, saved, for another worker to finish.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import kubernetes_validate  # type: ignore[import-untyped]  # no type hints shipped
import pydantic
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

from dbdict_celery.cli.group import cli
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome, StopReason
from dbdict_celery.worker.stop_requests import SUPERVISOR_MARGIN
from tests.conftest import REPO, wait_until
from tests.deployments import CELERY, Deployment, Worker, environment, scheduled

K8S = REPO / "deploy" / "k8s"
KUBERNETES = "1.30"  # the oldest Kubernetes these manifests are checked against
SECRET_VARIABLES = {"DBDICT_DB", "DBDICT_BROKER", "DBDICT_DASHBOARD_AUTH"}
WAITING_QUERY = 'sum(dbdict_jobs{status="START",queue="dbdict"})'

Manifest = dict[str, Any]


def _manifests(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _all_manifests() -> list[Manifest]:
    return [document for path in sorted(K8S.glob("*.yaml")) for document in _manifests(path)]


def _one(kind: str, name: str) -> Manifest:
    (found,) = (m for m in _all_manifests() if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


def _pod(workload: Manifest) -> Manifest:
    """The pod spec of a Deployment or a CronJob."""
    template = workload["spec"].get("jobTemplate", workload)["spec"]["template"]
    spec: Manifest = template["spec"]
    return spec


def _containers() -> list[Manifest]:
    workloads = [m for m in _all_manifests() if m["kind"] in ("Deployment", "CronJob")]
    return [container for workload in workloads for container in _pod(workload)["containers"]]


def _worker() -> Manifest:
    return _one("Deployment", "dbdict-worker")


def _annotations(manifest: Manifest) -> dict[str, str]:
    """The annotations of an object and of the pods it makes, if it makes any."""
    template = manifest.get("spec", {}).get("template", {})
    found: dict[str, str] = {
        **manifest["metadata"].get("annotations", {}),
        **template.get("metadata", {}).get("annotations", {}),
    }
    return found


def _literal_env(container: Manifest) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def validate(manifest: Manifest) -> None:
    """Raise if `manifest` does not fit its kind's schema: Kubernetes' own, or KEDA's CRD
    for a ScaledObject."""
    if manifest["kind"] != "ScaledObject":
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        return
    # pydantic checks types and required fields but drops fields it does not know: a
    # manifest that does not come back whole from its model has a field KEDA does not read.
    parsed = ScaledObject.model_validate(manifest)
    unknown = _dropped(manifest, parsed.model_dump(by_alias=True, exclude_unset=True))
    if unknown:
        raise ValueError(f"fields the ScaledObject CRD does not have: {', '.join(unknown)}")


def _dropped(original: Any, again: Any, path: str = "") -> list[str]:
    """The dotted paths of the fields of `original` that `again` lost or changed."""
    if isinstance(original, dict) and isinstance(again, dict):
        return [
            lost
            for key, value in original.items()
            for lost in _dropped(value, again.get(key), f"{path}.{key}".lstrip("."))
        ]
    if isinstance(original, list) and isinstance(again, list) and len(original) == len(again):
        return [
            lost
            for index, (one, other) in enumerate(zip(original, again, strict=True))
            for lost in _dropped(one, other, f"{path}.{index}")
        ]
    return [] if original == again else [path]


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda path: path.name)
def test_every_manifest_fits_its_schema(path: Path) -> None:
    manifests = _manifests(path)
    assert manifests, f"{path.name} holds no manifest"
    for manifest in manifests:
        validate(manifest)


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    """A change that sets the field at a dotted `path` (list indices as numbers)."""

    def change(manifest: Manifest) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = manifest
        for key in parents:
            target = target[key]
        target[last] = value

    return change


BREAKAGES = {
    "a count as text": ("Deployment", "dbdict-worker", _set("spec.replicas", "two")),
    "a misspelt field": (
        "Deployment", "dbdict-worker",
        _set("spec.template.spec.terminationGracePeriod", 60),
    ),
    "a schedule as a number": ("CronJob", "dbdict-reconcile", _set("spec.schedule", 2)),
    "a Secret value that is not text": (
        "Secret", "dbdict", _set("stringData.db-url", {"host": "x"}),
    ),
    "a ScaledObject without triggers": (
        "ScaledObject", "dbdict-worker", lambda manifest: manifest["spec"].pop("triggers"),
    ),
    "a misspelt ScaledObject field": (
        "ScaledObject", "dbdict-worker", _set("spec.cooldownPeriods", 300),
    ),
    "a threshold as a number": (
        "ScaledObject", "dbdict-worker", _set("spec.triggers.0.metadata.threshold", 2),
    ),
    "a replica count as text": (
        "ScaledObject", "dbdict-worker", _set("spec.minReplicaCount", "none"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_validation_refuses_a_broken_manifest(breakage: str) -> None:
    """The check above is no rubber stamp: each kind of mistake in a real manifest fails it."""
    kind, name, change = BREAKAGES[breakage]
    broken = copy.deepcopy(_one(kind, name))
    change(broken)
    with pytest.raises((kubernetes_validate.ValidationError, pydantic.ValidationError,
                        ValueError)):  # fmt: skip
        validate(broken)


def test_the_kubelet_waits_longer_than_a_stopped_job_takes_to_save_and_requeue() -> None:
    pod = _pod(_worker())
    (container,) = pod["containers"]
    grace = float(_literal_env(container)["DBDICT_GRACE"])
    assert pod["terminationGracePeriodSeconds"] > grace + SUPERVISOR_MARGIN


def test_sigterm_reaches_celery_itself() -> None:
    """The container runs celery as its PID 1: no shell in between to swallow the signal."""
    (container,) = _pod(_worker())["containers"]
    command = [*container["command"], *container.get("args", [])]
    assert command[:4] == ["celery", "-A", "dbdict_celery", "worker"], command
    assert not {"sh", "bash", "-c", "/bin/sh"} & set(container["command"])


def test_every_url_and_password_comes_from_the_secret() -> None:
    secret = _one("Secret", "dbdict")
    for container in _containers():
        for item in container.get("env", []):
            if item["name"] in SECRET_VARIABLES:
                reference = item["valueFrom"]["secretKeyRef"]
                assert reference["name"] == secret["metadata"]["name"], item
                assert reference["key"] in secret["stringData"], item
            else:
                assert "://" not in item.get("value", ""), f"a literal URL: {item}"
        assert "envFrom" not in container, "each variable is named: no other key leaks in"
    for name, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, f"{name}: the example holds placeholders only"


def test_every_dbdict_setting_named_is_one_dbdict_reads() -> None:
    source = "\n".join(path.read_text() for path in (REPO / "dbdict_celery").rglob("*.py"))
    for container in _containers():
        for item in container.get("env", []):
            assert f'"{item["name"]}"' in source, f"{item['name']}: dbdict does not read it"


def test_every_container_runs_the_workers_image_and_a_command_dbdict_has() -> None:
    (worker,) = _pod(_worker())["containers"]
    for container in _containers():
        assert container["image"] == worker["image"], container["name"]
        if container["command"] == ["dbdict"]:
            name, *args = container["args"]
            command = cli.get_command(click.Context(cli), name)
            assert command is not None, f"dbdict has no command {name}"
            command.make_context(name, list(args))  # raises on an option it does not take
        else:
            assert container == worker, "only the worker runs celery"


def test_reconcile_runs_every_few_minutes_one_pass_at_a_time() -> None:
    cron = _one("CronJob", "dbdict-reconcile")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    minutes = cron["spec"]["schedule"].split()[0]
    assert minutes.startswith("*/"), "every N minutes"
    assert int(minutes[2:]) <= 5


def test_prometheus_scrapes_the_metrics_server_once_where_it_listens() -> None:
    deployment = _one("Deployment", "dbdict-metrics")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    (container,) = _pod(deployment)["containers"]
    bind = container["args"][container["args"].index("--bind") + 1]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert bind.endswith(":" + annotations["prometheus.io/port"])
    assert [port["containerPort"] for port in container["ports"]] == [int(bind.split(":")[1])]
    scraped = [m for m in _all_manifests() if "prometheus.io/scrape" in _annotations(m)]
    assert scraped == [deployment], "a second scrape of the same table doubles KEDA's sums"


def test_every_service_selects_a_deployments_pods_and_port() -> None:
    for service in (m for m in _all_manifests() if m["kind"] == "Service"):
        deployment = _one("Deployment", service["metadata"]["name"])
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        ports = {port["name"] for c in _pod(deployment)["containers"] for port in c["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports


def test_keda_scales_the_worker_deployment_on_the_table_gently() -> None:
    scaled = _one("ScaledObject", "dbdict-worker")
    worker = _worker()
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", worker["metadata"]["name"])
    assert WAITING_QUERY in [trigger["metadata"]["query"] for trigger in spec["triggers"]]
    assert all(trigger["type"] == "prometheus" for trigger in spec["triggers"])
    assert spec["minReplicaCount"] == 0
    (container,) = _pod(worker)["containers"]
    grace = float(_literal_env(container)["DBDICT_GRACE"])
    assert spec["cooldownPeriod"] > grace + SUPERVISOR_MARGIN
    args = container["args"]
    concurrency = args[args.index("-c") + 1]
    assert spec["advanced"]["scalingModifiers"]["target"] == concurrency, "a pod per -c jobs"
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 60
    assert all(policy["type"] == "Pods" and policy["value"] == 1
               for policy in scale_down["policies"])  # fmt: skip


def _start_manifest_worker(cluster: Deployment, log: Path) -> Worker:
    """A worker started as worker.yaml's container starts: its command and arguments (celery
    from this environment), its literal settings, and this deployment's URLs and paths in
    place of the Secret's and the volume's."""
    (container,) = _pod(_worker())["containers"]
    program, *rest = container["command"]
    assert program == "celery"
    command = [CELERY, *rest, *container["args"]]
    env = environment(_literal_env(container), cluster.env)
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=cluster.cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    worker = Worker(process, log)
    cluster.workers.append(worker)  # killed, with its pool, when the test ends
    return worker.wait_ready()


@pytest.mark.integration
def test_a_pod_removed_by_a_scale_down_hands_its_running_job_back_saved(
    cluster: Deployment,
) -> None:
    """What the kubelet does to a pod it removes: SIGTERM to the container's PID 1 (the
    worker's main process only), then SIGKILL after terminationGracePeriodSeconds. The
    worker must exit on its own before that, its job back to START from its last save and
    sent again, and another worker must finish it from there."""
    pod = _pod(_worker())
    kill_after = float(pod["terminationGracePeriodSeconds"])
    store = cluster.store()
    (job,) = scheduled(cluster, "examples.count.experiment", "target=100", "interval=0.1")

    first = _start_manifest_worker(cluster, cluster.cwd / "pod1.log")

    def saved() -> int:
        row = store.get(job.id)
        return int(row.state.get("count", 0)) if row.status is Status.RUNNING else 0

    wait_until(lambda: saved() >= 3, "the job to run and save 3 times", 60)
    stopped = time.monotonic()
    first.signal(signal.SIGTERM)
    try:
        code = first.process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        first.kill()  # the kubelet's SIGKILL
        pytest.fail(f"the worker outlived terminationGracePeriodSeconds:\n{first.text()}")
    took = time.monotonic() - stopped
    assert code == 0, f"a warm shutdown, not a crash:\n{first.text()}"
    assert took < kill_after

    row = store.get(job.id)
    assert row.status is Status.START, "handed back for another pod"
    count = int(row.state["count"])
    assert 3 <= count < 100, "its saved progress is kept"
    (attempt,) = store.attempts(job.id)
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.INCOMPLETE, StopReason.SHUTDOWN)

    _start_manifest_worker(cluster, cluster.cwd / "pod2.log")  # sent again: no reconcile
    wait_until(lambda: store.get(job.id).status is Status.DONE, "the job to end DONE", 90)
    done = store.get(job.id)
    assert done.state["result"] == 100
    assert done.state["runs"] == 2, "the second run started from the first one's save"
    assert [a.outcome for a in store.attempts(job.id)] == [
        AttemptOutcome.INCOMPLETE, AttemptOutcome.DONE,
    ]  # fmt: skip
