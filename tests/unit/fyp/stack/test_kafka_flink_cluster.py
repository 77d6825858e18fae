"""The cluster profile's Kafka nodes and TaskManagers, rendered without starting them; max parallelism; rescale
arguments refused before the cluster is asked."""

from __future__ import annotations

import pytest
import yaml

from fyp.config import REPO_ROOT, load_settings
from fyp.pipelines import PIPELINES, Pipeline
from fyp.stack.flink_cluster import FlinkDistribution, TaskManagerService, merge_config, taskmanager_services
from fyp.stack.kafka_broker import broker_services, topic_config
from fyp.stack.process import StackError
from fyp.stack.rescale import rescale_job
from fyp.stack.services import select
from fyp.stack.submit import submission_parallelism


def _settings(tmp_path, monkeypatch, profile: str):
    for name in ("FYP_KAFKA_BROKERS", "FYP_KAFKA_REPLICATION_FACTOR", "FYP_KAFKA_MIN_INSYNC_REPLICAS",
                 "FYP_TASKMANAGERS", "FYP_REDIS_CLUSTER_NODES", "FYP_FLINK_STATE_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FYP_PROFILE", profile)
    monkeypatch.setenv("FYP_HOME", str(tmp_path / profile))
    monkeypatch.setenv("FYP_PORT_OFFSET", "1000")
    load_settings.cache_clear()
    return load_settings()


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    yield _settings(tmp_path, monkeypatch, "cluster")
    load_settings.cache_clear()


@pytest.fixture
def single(tmp_path, monkeypatch):
    yield _settings(tmp_path, monkeypatch, "single")
    load_settings.cache_clear()


def _properties(service) -> dict[str, str]:
    lines = service._server_properties().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_three_kraft_nodes_share_one_quorum_with_their_own_ports_and_log_dirs(cluster):
    nodes = broker_services(cluster)
    assert [n.name for n in nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    props = [_properties(n) for n in nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    voters = "1@127.0.0.1:10093,2@127.0.0.1:10103,3@127.0.0.1:10113"
    assert {p["controller.quorum.voters"] for p in props} == {voters}
    assert [p["advertised.listeners"] for p in props] == [f"SASL_PLAINTEXT://127.0.0.1:{port}"
                                                          for port in (10092, 10102, 10112)]
    assert len({p["log.dirs"] for p in props}) == 3 and all("/data/kafka-" in p["log.dirs"] for p in props)
    assert [n.ports() for n in nodes] == [[10092, 10093], [10102, 10103], [10112, 10113]]
    for p in props:  # internal topics replicate like the project's own
        assert (p["offsets.topic.replication.factor"], p["transaction.state.log.min.isr"]) == ("3", "2")
    assert all("-Xmx512m" in n._java() for n in nodes)


def test_the_single_profile_keeps_one_broker_named_kafka_with_replication_one(single):
    (node,) = broker_services(single)
    props = _properties(node)
    assert node.name == "kafka" and props["node.id"] == "1" and "-Xmx1g" in node._java()
    assert props["controller.quorum.voters"] == "1@127.0.0.1:10093"
    assert (props["offsets.topic.replication.factor"], props["min.insync.replicas"]) == ("1", "1")


def test_every_node_is_formatted_with_the_same_cluster_id(cluster):
    from fyp.stack.kafka_broker import _cluster_id

    assert _cluster_id(cluster) == _cluster_id(cluster) and len(_cluster_id(cluster)) == 22


def test_topics_take_min_insync_replicas_from_the_profile(cluster, single):
    from schemas.topics import ENGAGEMENT

    assert topic_config(cluster, ENGAGEMENT)["min.insync.replicas"] == "2"
    assert topic_config(single, ENGAGEMENT)["min.insync.replicas"] == "1"
    assert ENGAGEMENT.config().items() <= topic_config(cluster, ENGAGEMENT).items()


def test_services_list_each_broker_and_taskmanager_and_a_group_name_selects_them_all(cluster):
    names = [s.name for s in select(cluster, None)]
    assert names[:3] == ["kafka-1", "kafka-2", "kafka-3"]
    assert names[-2:] == ["flink-taskmanager-1", "flink-taskmanager-2"]
    assert [s.name for s in select(cluster, ["kafka"])] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [s.name for s in select(cluster, ["flink-taskmanager-2"])] == ["flink-taskmanager-2"]


def test_taskmanagers_have_their_own_pid_log_and_s3_keys_from_the_environment(cluster, single):
    first, second = taskmanager_services(cluster)
    assert first.pid_file != second.pid_file and first.log_file != second.log_file
    env = first.environment()
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (cluster.s3_access_key, cluster.s3_secret_key)
    assert [s.name for s in taskmanager_services(single)] == ["flink-taskmanager"]
    with pytest.raises(ValueError, match=r"TaskManager 3 is not one of 1\.\.2"):
        TaskManagerService(cluster, 3)


def test_merge_config_changes_leaves_not_sections():
    base = {"taskmanager": {"numberOfTaskSlots": 8, "memory": {"process": {"size": "4096m"}}}, "a": 1}
    merged = merge_config(base, {"taskmanager": {"memory": {"process": {"size": "2560m"}}}})
    assert merged == {"taskmanager": {"numberOfTaskSlots": 8, "memory": {"process": {"size": "2560m"}}}, "a": 1}
    assert base["taskmanager"]["memory"]["process"]["size"] == "4096m"  # not modified in place


def _rendered(settings) -> tuple[dict, str, FlinkDistribution]:
    dist = FlinkDistribution(settings)
    # `make test` installs first, so a missing Flink environment or jar (the S3 plugin) fails here, naming it.
    dist.render()
    text = (dist.conf_dir / "config.yaml").read_text()
    return yaml.safe_load(text), text, dist


def test_the_cluster_profile_checkpoints_to_s3_with_the_plugin_and_no_keys_in_the_file(cluster):
    config, text, dist = _rendered(cluster)
    assert config["state"]["checkpoints"]["dir"] == "s3://flink-state/flink/checkpoints"
    assert config["state"]["savepoints"]["dir"] == "s3://flink-state/flink/savepoints"
    assert config["s3.endpoint"] == cluster.s3_endpoint and config["s3.path.style.access"] is True
    assert config["taskmanager"]["numberOfTaskSlots"] == 4
    assert config["taskmanager"]["memory"]["process"]["size"] == "2560m"
    assert config["taskmanager"]["memory"]["managed"]["fraction"] == 0.4  # kept from config.yaml
    assert cluster.s3_secret_key not in text and cluster.s3_access_key not in text
    assert any((dist.plugins_dir / "s3-fs-hadoop").glob("flink-s3-fs-hadoop-*.jar"))
    assert dist.environment()["FLINK_PLUGINS_DIR"] == str(dist.plugins_dir)


def test_the_prometheus_reporter_has_a_port_for_the_jobmanager_and_every_taskmanager(cluster, monkeypatch):
    monkeypatch.setenv("FYP_FLINK_PROMETHEUS", "1")
    config, _, _ = _rendered(cluster)
    first = cluster.flink_metrics_port
    assert config["metrics"]["reporter"]["prom"]["port"] == f"{first}-{first + cluster.taskmanagers}"
    assert cluster.taskmanagers == 2
    addresses = [service.address() for service in taskmanager_services(cluster)]
    assert [a.split(":")[-1].rstrip(")") for a in addresses] == [str(first + 1), str(first + 2)]


def test_the_single_profile_keeps_file_checkpoints_and_its_sizes(single):
    config, _, dist = _rendered(single)
    assert not (dist.plugins_dir / "s3-fs-hadoop").exists() and (dist.plugins_dir / "metrics-prometheus").exists()
    assert "AWS_SECRET_ACCESS_KEY" not in taskmanager_services(single)[0].environment()
    assert config["state"]["checkpoints"]["dir"].startswith("file://")
    assert config["taskmanager"]["numberOfTaskSlots"] == 8
    assert config["taskmanager"]["memory"]["process"]["size"] == "4096m"
    assert "s3.endpoint" not in config


def test_every_job_sets_its_max_parallelism_on_purpose():
    for entry in PIPELINES.values():
        config = entry.flink_config()
        assert config["pipeline.max-parallelism"] == str(entry.max_parallelism) == "128"
        assert config["pipeline.name"] == entry.pipeline_name
    with pytest.raises(ValueError, match=r"max_parallelism 0 is not in 1\.\.32768"):
        Pipeline(job="x", pipeline_name="x", group_id="x", summary="x", max_parallelism=0)


def test_no_job_pins_its_parallelism_in_the_program_so_submit_p_and_rescale_take_effect():
    """`parallelism.default` set in a job's program overrides `flink run -p`: `fyp rescale follow_graph -p 2`
    reported 2 and ran at 1. A job's default parallelism belongs in the catalogue (`Pipeline.parallelism`)."""
    for entry in PIPELINES.values():
        source = (REPO_ROOT / "jobs" / f"{entry.job}.py").read_text()
        assert "parallelism.default" not in source.replace("# No parallelism here", ""), entry.job
    assert submission_parallelism("follow_graph", None) == 1 and submission_parallelism("follow_graph", 2) == 2
    assert submission_parallelism("served_training", None) == 1
    with pytest.raises(ValueError, match=r"parallelism 200 is not in 1\.\.128"):
        Pipeline(job="x", pipeline_name="x", group_id="x", summary="x", parallelism=200)


@pytest.mark.parametrize(("job", "parallelism", "message"), [
    ("no_such_job", 1, "no job 'no_such_job'"),
    ("engagement_features", 129, r"parallelism 129 is not in 1\.\.128"),
])
def test_rescale_refuses_before_asking_the_cluster(single, job, parallelism, message):
    with pytest.raises(StackError, match=message):
        rescale_job(single, job, parallelism)
