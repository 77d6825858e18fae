"""deploy/kubernetes: both overlays render with `kubectl kustomize`, and every object they make is valid against
its schema (Kubernetes' own or its CRD's, fetched by the install step: tests/unit/deploy/kube_schemas.py), plus
what the schemas cannot say: one FlinkDeployment per job, one KafkaTopic per topic, workers scaled on their
real consumer groups, no secret values, production sizes from the capacity model.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fyp.capacity import CapacityInputs, plan
from fyp.config import _SECRET_NAMES
from fyp.pipelines import PIPELINES
from schemas.topics import ALL_TOPICS, UPLOADS
from tests.unit.deploy.kube_schemas import SchemaSet, load_schema_set, widen_enum
from workers.moderator import Topics as ModeratorTopics
from workers.transcoder import Topics as TranscoderTopics

REPO = Path(__file__).resolve().parents[3]
KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = ("local", "production")
FLINK_DEPLOYMENT = ("flink.apache.org", "v1beta1", "FlinkDeployment")
# The newest operator API on Maven Central here (1.10.0) predates Flink 2: its flinkVersion enum stops at v1_20.
# The manifests target an operator that knows v2_2; this is the one field widened (docs/DEPLOY.md).
NEWER_FLINK_VERSIONS = ("v2_0", "v2_1", "v2_2")


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    try:
        loaded = load_schema_set()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    return widen_enum(loaded, FLINK_DEPLOYMENT, ("spec", "flinkVersion"), NEWER_FLINK_VERSIONS)


@functools.cache
def _rendered_text(overlay: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: it renders the kustomizations (`kubectl kustomize`)")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects, rendered once per test session and parsed afresh for each caller."""
    return [doc for doc in yaml.safe_load_all(_rendered_text(overlay)) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def test_generated_files_are_current() -> None:
    result = subprocess.run([sys.executable, str(KUBERNETES / "generate.py"), "--check"], capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_every_object_is_valid_against_its_schema(rendered: tuple[str, list[dict[str, Any]]],
                                                  schemas: SchemaSet) -> None:
    _, objects = rendered
    errors = [error for obj in objects for error in schemas.errors(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("kind", "break_it", "expected"), [
    ("Deployment", lambda o: o["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"),
     "'imagePullPolicyy' was unexpected"),
    ("KafkaTopic", lambda o: o["spec"].update(partitions="six"), "'six' is not of type 'integer'"),
    ("FlinkDeployment", lambda o: o["spec"]["job"].update(upgradeMode="sometimes"), "'sometimes' is not one of"),
    ("Kafka", lambda o: o["spec"]["kafka"]["listeners"][0].update(tpye="internal"), "'tpye' was unexpected"),
    ("ScaledObject", lambda o: o["spec"].pop("scaleTargetRef"), "'scaleTargetRef' is a required property"),
    ("StatefulSet", lambda o: o["metadata"].update(labels={"replicas": 3}), "3 is not of type"),
    ("Bogus", lambda o: o.update(apiVersion="example.com/v1"), "no schema for example.com/v1/Bogus"),
])
def test_validation_rejects_a_broken_object(schemas: SchemaSet, kind: str, break_it: Any, expected: str) -> None:
    objects = render("local")
    obj = copy.deepcopy(next(o for o in objects if o["kind"] == kind) if kind != "Bogus"
                        else {"kind": "Bogus", "metadata": {"name": "x"}})
    assert not schemas.errors(obj) or kind == "Bogus"
    break_it(obj)
    assert any(expected in error for error in schemas.errors(obj)), schemas.errors(obj)


def test_one_flink_deployment_per_job_with_kubernetes_ha(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    deployments = of_kind(objects, "FlinkDeployment")
    assert set(deployments) == {p.pipeline_name for p in PIPELINES.values()}
    # The image's Flink is the apache-flink wheel pinned in pyproject.toml.
    flink = re.search(r'"apache-flink==(\d+)\.(\d+)\.(\d+)"', (REPO / "pyproject.toml").read_text())
    assert flink, "apache-flink is not pinned to one version in pyproject.toml"
    for name, deployment in deployments.items():
        conf = deployment["spec"]["flinkConfiguration"]
        assert conf["high-availability.type"] == "kubernetes", name
        assert conf["high-availability.storageDir"].startswith("s3://"), name
        assert conf["execution.checkpointing.dir"].startswith("s3://"), name
        assert deployment["spec"]["flinkVersion"] == f"v{flink.group(1)}_{flink.group(2)}", name
        assert deployment["spec"]["job"]["jarURI"].endswith(f"/flink-python-{'.'.join(flink.groups())}.jar")
        job = PIPELINES[deployment["metadata"]["labels"]["fyp/job"]].job
        assert deployment["spec"]["job"]["args"] == ["-py", f"/opt/fyp/jobs/{job}.py"]
        assert (REPO / "jobs" / f"{job}.py").exists()


def test_one_kafka_topic_per_topic(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, objects = rendered
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(objects, "KafkaTopic").values()}
    assert set(topics) == {t.name for t in ALL_TOPICS}
    replicas, min_insync = (1, "1") if overlay == "local" else (3, "2")
    for topic in ALL_TOPICS:
        spec = topics[topic.name]
        assert spec["partitions"] == topic.partitions and spec["replicas"] == replicas, topic.name
        assert spec["config"]["min.insync.replicas"] == min_insync
        assert spec["config"]["cleanup.policy"] == topic.cleanup
    env = of_kind(objects, "ConfigMap")["fyp-env"]["data"]
    assert env["FYP_KAFKA_REPLICATION_FACTOR"] == str(replicas)
    assert env["FYP_KAFKA_MIN_INSYNC_REPLICAS"] == min_insync


def test_workers_scale_on_their_consumer_groups(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    deployments = of_kind(objects, "Deployment")
    groups = {"transcoder": TranscoderTopics().group_id, "moderator": ModeratorTopics().group_id}
    scaled = of_kind(objects, "ScaledObject")
    assert set(scaled) == set(groups)
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        trigger = obj["spec"]["triggers"][0]
        assert trigger["metadata"]["consumerGroup"] == groups[name]
        assert trigger["metadata"]["topic"] == UPLOADS.name
        assert obj["spec"]["maxReplicaCount"] <= UPLOADS.partitions  # more consumers than partitions idle
    commands = {" ".join(d["spec"]["template"]["spec"]["containers"][0]["args"]) for d in deployments.values()}
    for command in ("fyp worker transcode", "fyp worker moderate", "fyp worker user-embeddings",
                    "fyp worker candidate-sets", "fyp worker lake-maintenance", "fyp serve upload", "fyp serve index"):
        assert any(c.startswith(command) for c in commands), command


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_secrets_are_referenced_never_written(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    assert not of_kind(objects, "Secret"), "a Secret with values in git"
    refs = [n["secretKeyRef"] for obj in objects for n in _walk(obj) if "secretKeyRef" in n]
    refs += [{"name": n["name"], "key": n["key"]} for obj in objects for n in _walk(obj.get("spec", {}))
             if "parameter" in n and "key" in n and n.get("name") == "fyp-secrets"]
    assert refs
    for ref in refs:
        assert ref["name"] == "fyp-secrets" and ref["key"] in _SECRET_NAMES, ref
    env = of_kind(objects, "ConfigMap")["fyp-env"]["data"]
    assert not set(env) & set(_SECRET_NAMES)


def test_every_fyp_container_runs_the_overlays_image(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, objects = rendered
    expected = "fyp:local" if overlay == "local" else "registry.example.com/fyp:0.1.0"
    images = [n["image"] for obj in objects for n in _walk(obj) if isinstance(n.get("image"), str)]
    fyp_images = [image for image in images if image.split(":")[0].rsplit("/", 1)[-1] == "fyp"]
    # Every Deployment, every FlinkDeployment and the bucket Job; redis and seaweedfs run their own images.
    assert len(fyp_images) == len(of_kind(objects, "Deployment")) + len(PIPELINES) + 1
    assert set(fyp_images) == {expected}


def test_production_sizes_follow_the_capacity_model() -> None:
    objects = render("production")
    capacity = plan(CapacityInputs())
    brokers = of_kind(objects, "KafkaNodePool")["broker"]["spec"]["replicas"]
    assert brokers == capacity.kafka_brokers
    redis = of_kind(objects, "StatefulSet")["redis-cluster"]["spec"]["replicas"]
    assert redis == capacity.redis_primaries + capacity.redis_replicas
    create = of_kind(objects, "Job")["redis-cluster-create"]["spec"]["template"]["spec"]["containers"][0]
    create_env = {e["name"]: e["value"] for e in create["env"] if "value" in e}
    assert create_env == {"NODES": str(redis), "REPLICAS_PER_PRIMARY": "1"}
    features = of_kind(objects, "FlinkDeployment")["fyp-engagement-features"]["spec"]
    per_taskmanager = features["taskManager"]["resource"]["cpu"]
    cores = features["taskManager"]["replicas"] * per_taskmanager
    assert capacity.taskmanager_cores <= cores < capacity.taskmanager_cores + per_taskmanager
    slots = int(features["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    assert slots == per_taskmanager  # one slot per core
    assert features["job"]["parallelism"] == features["taskManager"]["replicas"] * slots
