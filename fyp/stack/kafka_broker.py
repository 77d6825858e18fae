"""Apache Kafka 4.x in KRaft mode, from the jars in build/jars/kafka; SASL/PLAIN on loopback.

One `KafkaService` is one KRaft node (broker and controller in one process). The single profile runs node 1 alone,
named `kafka`; the cluster profile runs one service per `Settings.kafka_brokers` entry, named `kafka-1`..`kafka-3`,
each with its own pid, log and log dir, all voters of one controller quorum and formatted with one cluster id.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Sequence

from confluent_kafka.admin import AdminClient, NewTopic

from fyp.config import KAFKA_BROKER_PORT_STEP, REPO_ROOT, Settings
from fyp.stack.process import StackError, port_in_use
from fyp.stack.service import ProcessService, java_binary

__all__ = ["QUIET_CLIENT", "KafkaService", "broker_services", "ensure_topics", "topic_config"]

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


# A broker's JVM heap. One broker alone keeps the 1 GiB it always had; three on one 24 GiB, 2-core machine beside
# Flink and a second (test) stack get 512 MiB each: the page cache, not the heap, holds the log (OPERATIONS.md).
SINGLE_BROKER_HEAP = "1g"
CLUSTER_BROKER_HEAP = "512m"


class KafkaService(ProcessService):
    """KRaft node `node` (1-based) of `settings.kafka_brokers`."""

    name = "kafka"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings, node: int = 1) -> None:
        super().__init__(settings)
        self.node = node
        self.nodes = max(len(settings.kafka_brokers), 1)
        if not 1 <= node <= self.nodes:
            raise ValueError(f"Kafka node {node} is not one of 1..{self.nodes}")
        if self.nodes > 1:
            self.name = f"kafka-{node}"

    @property
    def broker_port(self) -> int:
        return self.settings.kafka_port + KAFKA_BROKER_PORT_STEP * (self.node - 1)

    @property
    def controller_port(self) -> int:
        return self.settings.kafka_controller_port + KAFKA_BROKER_PORT_STEP * (self.node - 1)

    def address(self) -> str:
        if self.nodes == 1:
            return f"{self.settings.kafka_bootstrap} (SASL_PLAINTEXT/PLAIN)"
        return f"{self.settings.kafka_host}:{self.broker_port} (node {self.node} of {self.nodes})"

    def ports(self) -> Sequence[int]:
        return [self.broker_port, self.controller_port]

    def _voters(self) -> str:
        s = self.settings
        return ",".join(f"{n}@{s.host}:{s.kafka_controller_port + KAFKA_BROKER_PORT_STEP * (n - 1)}"
                        for n in range(1, self.nodes + 1))

    @property
    def properties_file(self):
        return self.home / "server.properties"

    def _server_properties(self) -> str:
        s = self.settings
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{s.kafka_user}" password="{s.kafka_password}" user_{s.kafka_user}="{s.kafka_password}";'
        )
        rf, isr = s.kafka_replication_factor, s.kafka_min_insync_replicas
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node}",
            f"controller.quorum.voters={self._voters()}",
            f"listeners=SASL_PLAINTEXT://{s.host}:{self.broker_port},CONTROLLER://{s.host}:{self.controller_port}",
            f"advertised.listeners=SASL_PLAINTEXT://{s.host}:{self.broker_port}",
            # The controller listener carries the quorum between this installation's nodes, bound to loopback.
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
            f"log.dirs={self.home / 'logs'}",
            "num.partitions=6",
            "auto.create.topics.enable=false",
            # Internal topics (offsets, transactions, share state) replicate like the project's own topics.
            f"offsets.topic.replication.factor={rf}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
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
            cluster_id = _cluster_id(self.settings)
            result = subprocess.run(
                # `=`: a URL-safe base64 id may start with '-', which argparse would read as an option.
                [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                 "-c", str(self.properties_file)],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise StackError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def _java(self) -> list[str]:
        heap = SINGLE_BROKER_HEAP if self.nodes == 1 else CLUSTER_BROKER_HEAP
        log_config = self.home / "log4j2.properties"
        return [java_binary(), "-Xms256m", f"-Xmx{heap}", f"-Dlog4j2.configurationFile={log_config}",
                "-cp", f"{KAFKA_JARS}/*"]

    def command(self) -> Sequence[str]:
        return [*self._java(), "kafka.Kafka", str(self.properties_file)]

    def check(self) -> str:
        # Ask this node alone: with all brokers as bootstrap, a dead node would look healthy through the others.
        client = {**self.settings.kafka_client_config(), **QUIET_CLIENT,
                  "bootstrap.servers": f"{self.settings.kafka_host}:{self.broker_port}"}
        metadata = AdminClient(client).list_topics(timeout=2)
        if self.node not in metadata.brokers:
            raise StackError(f"node {self.node} has not joined the cluster yet")
        return f"{len(metadata.brokers)} broker, {len(metadata.topics)} topics"

    @property
    def _creates_topics(self) -> bool:
        """The last node starts last: only once it has joined can topics get all their replicas."""
        return self.node == self.nodes

    def _healthy_or_dead(self) -> bool:
        # A node of a 3-voter quorum cannot serve clients until a majority runs, and `fyp up` starts the nodes
        # one after another: while too few others run, a listening controller port is as far as it can get.
        peers = sum(KafkaService(self.settings, n).pid() is not None for n in range(1, self.nodes + 1)
                    if n != self.node)
        if self.pid() is not None and peers + 1 <= self.nodes // 2:
            return port_in_use(self.settings.host, self.controller_port)
        return super()._healthy_or_dead()

    def start(self) -> None:
        running = self.pid() is not None
        super().start()
        if running and self._creates_topics:
            # `fyp up` on a broker started before a topic joined schemas.topics (the uploads DLQ, say): create it
            # now rather than on the next restart. A fresh start already did this in `after_start`.
            ensure_topics(self.settings)

    def after_start(self) -> None:
        if self._creates_topics:
            ensure_topics(self.settings)


def broker_services(settings: Settings) -> list[KafkaService]:
    """One service per KRaft node of `settings.kafka_brokers`, in node order (the order `fyp up` starts them)."""
    return [KafkaService(settings, node) for node in range(1, max(len(settings.kafka_brokers), 1) + 1)]


def _cluster_id(settings: Settings) -> str:
    """The id every node's storage is formatted with, made once per installation: nodes formatted with
    different ids refuse to form one quorum."""
    path = settings.data_dir / "kafka-cluster-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") + "\n")
    return path.read_text().strip()


def topic_config(settings: Settings, topic) -> dict[str, str]:
    """A topic's declared settings plus this installation's `min.insync.replicas`."""
    return {**topic.config(), "min.insync.replicas": str(settings.kafka_min_insync_replicas)}


def ensure_topics(settings: Settings) -> list[str]:
    """Create the project's topics (schemas.topics) that do not exist yet, and bring the declared settings of those
    that do up to date (a stack from before a topic's `max.message.bytes` was raised); return the created names."""
    from schemas.topics import ALL_TOPICS

    admin = AdminClient(settings.kafka_client_config())
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [t for t in ALL_TOPICS if t.name not in existing]
    _update_configs(admin, {t.name: topic_config(settings, t) for t in ALL_TOPICS if t.name in existing})
    if not wanted:
        return []
    futures = admin.create_topics([
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=settings.kafka_replication_factor,
                 config=topic_config(settings, t)) for t in wanted
    ])
    for future in futures.values():
        future.result(timeout=30)
    return [t.name for t in wanted]


def _update_configs(admin: AdminClient, declared: dict[str, dict[str, str]]) -> None:
    """Set each topic's declared settings where the broker holds other values (only those keys are touched)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    if not declared:
        return
    stale = []
    for resource, future in admin.describe_configs([ConfigResource("topic", name) for name in declared]).items():
        wanted, current = declared[resource.name], future.result(timeout=30)
        changes = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                   for key, value in wanted.items() if key not in current or current[key].value != value]
        if changes:
            stale.append(ConfigResource("topic", resource.name, incremental_configs=changes))
    if stale:
        for future in admin.incremental_alter_configs(stale).values():
            future.result(timeout=30)
