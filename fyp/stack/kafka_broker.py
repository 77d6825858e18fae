"""Apache Kafka 4.x, single-node KRaft, from the jars in build/jars/kafka; SASL/PLAIN on loopback."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Sequence

from confluent_kafka.admin import AdminClient, NewTopic

from fyp.config import REPO_ROOT
from fyp.stack.process import StackError
from fyp.stack.service import ProcessService, java_binary

__all__ = ["QUIET_CLIENT", "KafkaService", "ensure_topics"]

# librdkafka logs every refused connection to stderr; a health probe expects refusals while a broker starts.
QUIET_CLIENT = {"socket.timeout.ms": 2000, "log_level": 0}

KAFKA_JARS = REPO_ROOT / "build" / "jars" / "kafka"

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""


class KafkaService(ProcessService):
    name = "kafka"
    start_timeout_s = 90.0

    def address(self) -> str:
        return f"{self.settings.kafka_bootstrap} (SASL_PLAINTEXT/PLAIN)"

    def ports(self) -> Sequence[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    @property
    def properties_file(self):
        return self.home / "server.properties"

    def _server_properties(self) -> str:
        s = self.settings
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{s.kafka_user}" password="{s.kafka_password}" user_{s.kafka_user}="{s.kafka_password}";'
        )
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
            f"listeners=SASL_PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
            f"advertised.listeners=SASL_PLAINTEXT://{s.host}:{s.kafka_port}",
            # The controller listener is internal to this one process and bound to loopback.
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
            f"log.dirs={self.home / 'logs'}",
            "num.partitions=6",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Flink's exactly-once Kafka sink holds transactions open across a checkpoint interval.
            "transaction.max.timeout.ms=900000",
            "",
        ])

    def prepare(self) -> None:
        if not any(KAFKA_JARS.glob("kafka_2.13-*.jar")):
            raise StackError(f"no Kafka jars in {KAFKA_JARS}: run `make install` (scripts/install.sh)")
        self.properties_file.write_text(self._server_properties())
        self.properties_file.chmod(0o600)
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        if not (self.home / "logs" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            result = subprocess.run(
                # `=`: a URL-safe base64 id may start with '-', which argparse would read as an option.
                [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                 "-c", str(self.properties_file)],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise StackError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def _java(self) -> list[str]:
        return [java_binary(), "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp", f"{KAFKA_JARS}/*"]

    def command(self) -> Sequence[str]:
        return [*self._java(), "kafka.Kafka", str(self.properties_file)]

    def check(self) -> str:
        admin = AdminClient({**self.settings.kafka_client_config(), **QUIET_CLIENT})
        metadata = admin.list_topics(timeout=2)
        return f"{len(metadata.brokers)} broker, {len(metadata.topics)} topics"

    def start(self) -> None:
        running = self.pid() is not None
        super().start()
        if running:
            # `fyp up` on a broker started before a topic joined schemas.topics (the uploads DLQ, say): create it
            # now rather than on the next restart. A fresh start already did this in `after_start`.
            ensure_topics(self.settings)

    def after_start(self) -> None:
        ensure_topics(self.settings)


def ensure_topics(settings) -> list[str]:
    """Create the project's topics (schemas.topics) that do not exist yet, and bring the declared settings of those
    that do up to date (a stack from before a topic's `max.message.bytes` was raised); return the created names."""
    from schemas.topics import ALL_TOPICS

    admin = AdminClient(settings.kafka_client_config())
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [t for t in ALL_TOPICS if t.name not in existing]
    _update_configs(admin, [t for t in ALL_TOPICS if t.name in existing])
    if not wanted:
        return []
    futures = admin.create_topics([
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, config=t.config()) for t in wanted
    ])
    for future in futures.values():
        future.result(timeout=30)
    return [t.name for t in wanted]


def _update_configs(admin: AdminClient, topics: list) -> None:
    """Set each topic's declared settings where the broker holds other values (only those keys are touched)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    if not topics:
        return
    declared = {t.name: t for t in topics}
    stale = []
    for resource, future in admin.describe_configs([ConfigResource("topic", name) for name in declared]).items():
        topic, current = declared[resource.name], future.result(timeout=30)
        changes = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                   for key, value in topic.config().items() if key not in current or current[key].value != value]
        if changes:
            stale.append(ConfigResource("topic", resource.name, incremental_configs=changes))
    if stale:
        for future in admin.incremental_alter_configs(stale).values():
            future.result(timeout=30)
