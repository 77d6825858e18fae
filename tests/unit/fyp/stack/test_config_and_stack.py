"""Settings, process supervision and rendered service configs, without starting the real services."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest
import yaml

from connectors.job_options import KAFKA_SOURCE_OPTIONS, JobOptions, parse_job_options
from fyp.bench.stats import latency_summary
from fyp.config import load_settings
from fyp.stack.flink_cluster import FlinkDistribution
from fyp.stack.kafka_broker import KafkaService
from fyp.stack.process import StackError, pid_alive, port_in_use, spawn, stop_pid
from fyp.stack.redis_server import RedisService
from fyp.stack.service import ProcessService
from fyp.stack.submit import cancel_job, parse_properties, submit_job


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for name in ("FYP_KAFKA_PASSWORD", "FYP_REDIS_PASSWORD", "FYP_S3_ACCESS_KEY", "FYP_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FYP_PORT_OFFSET", "1000")
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def test_secrets_are_generated_once_and_kept_private(settings, monkeypatch):
    credentials = settings.home / "credentials.env"
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    assert len(settings.redis_password) >= 24 and settings.kafka_password != settings.redis_password
    load_settings.cache_clear()
    assert load_settings().redis_password == settings.redis_password
    monkeypatch.setenv("FYP_REDIS_PASSWORD", "from-env")
    load_settings.cache_clear()
    assert load_settings().redis_password == "from-env"


def test_port_offset_shifts_every_default_port(settings):
    assert (settings.kafka_port, settings.redis_port, settings.flink_rest_port) == (10092, 7379, 9081)
    assert settings.seaweed_filer_port == 9888 and settings.host == "127.0.0.1"


def test_bad_port_is_a_clear_error(settings, monkeypatch):
    monkeypatch.setenv("FYP_REDIS_PORT", "six")
    load_settings.cache_clear()
    with pytest.raises(ValueError, match="FYP_REDIS_PORT='six' is not a port number"):
        load_settings()


def test_kafka_config_binds_loopback_with_sasl_and_private_file(settings):
    kafka = KafkaService(settings)
    kafka.home.mkdir(parents=True)
    kafka.properties_file.write_text(kafka._server_properties())
    text = kafka.properties_file.read_text()
    assert f"listeners=SASL_PLAINTEXT://127.0.0.1:{settings.kafka_port}" in text
    assert f'user_fyp="{settings.kafka_password}"' in text
    assert "auto.create.topics.enable=false" in text


def test_every_producer_maps_keys_to_partitions_like_flink(settings):
    # Flink's Java producers hash keys with murmur2; a librdkafka producer on its default (CRC32) would put the
    # same video_id on another partition, and its records would overtake the Flink job's for that video.
    from fyp.traffic.producer import PRODUCER_SETTINGS

    producer = settings.kafka_producer_config()
    assert producer["partitioner"] == PRODUCER_SETTINGS["partitioner"] == "murmur2_random"
    assert (producer["enable.idempotence"], producer["acks"]) == (True, "all")
    assert settings.kafka_client_config().items() <= producer.items()


def test_redis_config_requires_the_password(settings):
    redis_service = RedisService(settings)
    redis_service.home.mkdir(parents=True)
    redis_service.prepare()
    text = redis_service.config_file.read_text()
    assert f"requirepass {settings.redis_password}" in text and "bind 127.0.0.1" in text
    assert oct(redis_service.config_file.stat().st_mode & 0o777) == "0o600"


def test_flink_config_renders_every_placeholder(settings):
    dist = FlinkDistribution(settings)
    try:
        dist.home  # noqa: B018 - raises when the Flink environment is not installed
    except StackError:
        pytest.skip("needs .venv-flink (make install)")
    dist.render()
    config = yaml.safe_load((dist.conf_dir / "config.yaml").read_text())
    assert "${" not in (dist.conf_dir / "config.yaml").read_text()
    assert config["rest"]["bind-address"] == "127.0.0.1" and config["rest"]["port"] == settings.flink_rest_port
    assert config["state"]["backend"]["type"] == "rocksdb"
    assert config["python"]["execution-mode"] == "thread"
    assert "--add-opens=java.base/java.nio=ALL-UNNAMED" in config["env"]["java"]["opts"]["all"]
    assert "metrics" not in config  # Prometheus binds every interface: opt-in only
    assert any(p.name.startswith("flink-python") for p in dist.lib_dir.iterdir())


def test_spawn_and_stop_a_process_group(tmp_path):
    pid = spawn([sys.executable, "-c", "import time; time.sleep(60)"], pid_file=tmp_path / "x.pid",
                log_file=tmp_path / "x.log")
    assert pid_alive(pid)
    stop_pid(pid, timeout_s=5)
    assert not pid_alive(pid)


def test_port_in_use_sees_a_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert port_in_use("127.0.0.1", server.getsockname()[1])


class _Sleeper(ProcessService):
    name = "sleeper"
    start_timeout_s = 3

    def __init__(self, settings, port, argv):
        super().__init__(settings)
        self._port, self._argv = port, argv

    def address(self): return f"127.0.0.1:{self._port}"
    def ports(self): return [self._port]
    def command(self): return self._argv
    def check(self):
        if not port_in_use("127.0.0.1", self._port):
            raise RuntimeError("not listening")
        return "ok"


def test_a_taken_port_is_refused_before_starting(settings):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        service = _Sleeper(settings, server.getsockname()[1], [sys.executable, "-c", "pass"])
        with pytest.raises(StackError, match="already taken"):
            service.start()


def test_a_crashing_service_points_at_its_log(settings):
    service = _Sleeper(settings, 1, [sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(StackError, match=r"(?s)exited.*sleeper\.log.*boom: bad config"):
        service.start()
    assert time.monotonic() - started < 3  # reported at once, not after the timeout
    assert service.pid() is None and not os.path.exists(service.pid_file)


def test_job_options_parse_offsets():
    options = parse_job_options(["--topic", "t", "--start-offsets", "0:5,1:7", "--end-offsets", "0:9"])
    assert options.start_offsets == {0: 5, 1: 7} and options.end_offsets == {0: 9} and options.topic == "t"
    assert parse_job_options([]).group_id is None


def test_a_job_refuses_the_job_options_it_does_not_honour():
    """follow_graph once took --mini-batch-ms and did nothing with it."""
    with pytest.raises(ValueError, match=r"--per-set-sql, --mini-batch-ms: not an option of follow_graph, which "
                                         r"takes --topic, --group-id, --start-offsets, --end-offsets"):
        parse_job_options(["--mini-batch-ms", "100", "--per-set-sql"], job="follow_graph",
                          honoured=KAFKA_SOURCE_OPTIONS)
    with pytest.raises(ValueError, match="--topic"):
        parse_job_options(["--topic=other"], job="served_training", honoured=("--group-id",))
    kept = parse_job_options(["--group-id", "g", "--min-impressions", "5"], job="exploration",
                             honoured=KAFKA_SOURCE_OPTIONS)  # the job's own flags are left to it
    assert kept.group_id == "g"


def test_freshness_knobs_parse_with_defaults_and_refuse_what_is_out_of_range():
    default = parse_job_options([])
    assert (default.mini_batch_ms, default.buffer_timeout_ms) == (200, 100)
    tuned = parse_job_options(["--mini-batch-ms", "100", "--buffer-timeout-ms", "5"])
    assert (tuned.mini_batch_ms, tuned.buffer_timeout_ms) == (100, 5)
    for bad in (["--mini-batch-ms", "5"], ["--mini-batch-ms", "20000"], ["--buffer-timeout-ms", "0"],
                ["--buffer-timeout-ms", "10ms"]):
        with pytest.raises(SystemExit):  # argparse's usage error, naming the option and the range
            parse_job_options(bad)
    with pytest.raises(ValueError, match=r"buffer_timeout_ms must be within 1\.\.1000 ms, got 0"):
        JobOptions(buffer_timeout_ms=0)


def test_latency_summary_percentiles():
    summary = latency_summary(list(range(1, 101)))
    assert summary["samples"] == 100 and summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01) and summary["max_ms"] == 100
    assert latency_summary([0.1234, 0.1238])["p50_ms"] == 0.124  # to the µs: sub-ms reads keep their ratio


def test_flink_properties_parse_and_refuse_what_is_not_key_value():
    assert parse_properties(["state.backend.type=hashmap", " a.b =x=y", "c="]) == {
        "state.backend.type": "hashmap", "a.b": "x=y", "c": ""}
    for bad in ("state.backend.type", "=value"):
        with pytest.raises(ValueError, match="expected key=value"):
            parse_properties([bad])


@pytest.mark.parametrize("job_id", ["abc", "0123456789ABCDEF0123456789ABCDEF", "../jobs", ""])
def test_cancel_refuses_what_is_not_a_job_id_before_asking_the_cluster(job_id: str) -> None:
    with pytest.raises(StackError, match="is not a Flink job id"):
        cancel_job(load_settings(), job_id)


def test_submit_names_a_misspelt_job_before_looking_for_the_cluster() -> None:
    with pytest.raises(StackError, match=r"no job 'engagement_featurs'.*available: .*engagement_features"):
        submit_job(load_settings(), "engagement_featurs")
