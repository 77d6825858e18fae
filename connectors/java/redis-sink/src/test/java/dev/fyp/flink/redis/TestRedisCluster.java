package dev.fyp.flink.redis;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.table.types.logical.RowType;

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisCluster;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A throwaway Redis Cluster of real redis-server processes on 127.0.0.1: 3 primaries and 3 replicas on
 * {@code base..base+5} (cluster bus on +10000), password {@link TestRedis#PASSWORD}, joined with
 * {@code redis-cli --cluster create}. cluster-node-timeout is 1 s, so a killed primary's replica takes over
 * within a few seconds.
 */
final class TestRedisCluster implements AutoCloseable {

    static final int BASE_PORT = Integer.getInteger("fyp.test.redis-cluster.port", 7600);
    static final int NODES = 6;
    private static final long NODE_TIMEOUT_MS = 1_000;

    private final Path dir;
    private final Map<Integer, Process> processes = new LinkedHashMap<>();
    final int base;

    private TestRedisCluster(Path dir, int base) {
        this.dir = dir;
        this.base = base;
    }

    /** Starts the nodes, creates the cluster and waits until every node says cluster_state:ok. */
    static TestRedisCluster start(int base) throws Exception {
        String server = TestRedis.binary("redis-server");
        String cli = TestRedis.binary("redis-cli");
        for (int i = 0; i < NODES; i++) {
            for (int port : new int[] {base + i, base + i + 10_000}) {
                try (ServerSocket probe = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                    probe.setReuseAddress(true);
                } catch (IOException e) {
                    throw new IllegalStateException("port " + port + " is busy; pass "
                            + "-Dfyp.test.redis-cluster.port=<free base port>");
                }
            }
        }
        TestRedisCluster c = new TestRedisCluster(Files.createTempDirectory("fyp-redis-cluster-test"), base);
        try {
            for (int i = 0; i < NODES; i++) {
                c.startNode(server, base + i);
            }
            for (int port : c.ports()) {
                c.awaitPing(port);
            }
            List<String> create = new ArrayList<>(List.of(cli, "--cluster", "create"));
            c.ports().forEach(p -> create.add("127.0.0.1:" + p));
            create.addAll(List.of("--cluster-replicas", "1", "--cluster-yes", "-a", TestRedis.PASSWORD,
                    "--no-auth-warning"));
            Process p = new ProcessBuilder(create).redirectErrorStream(true)
                    .redirectOutput(c.dir.resolve("create.log").toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("redis-cli --cluster create failed: "
                        + Files.readString(c.dir.resolve("create.log")));
            }
            c.awaitHealthy(c.ports(), 20_000);
            return c;
        } catch (Exception e) {
            c.close();
            throw e;
        }
    }

    private void startNode(String server, int port) throws IOException {
        Path nodeDir = Files.createDirectories(dir.resolve(Integer.toString(port)));
        Process p = new ProcessBuilder(List.of(server, "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--requirepass", TestRedis.PASSWORD, "--masterauth", TestRedis.PASSWORD,
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", Long.toString(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",   // replicas in sync at once, not after the default 5 s
                "--dir", nodeDir.toString(), "--daemonize", "no", "--loglevel", "warning"))
                .redirectErrorStream(true).redirectOutput(nodeDir.resolve("redis.log").toFile()).start();
        processes.put(port, p);
    }

    private void awaitPing(int port) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            try (Jedis j = node(port)) {
                j.ping();
                return;
            } catch (RuntimeException e) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("redis-server on " + port + " did not start", e);
                }
                Thread.sleep(50);
            }
        }
    }

    /**
     * Waits until each of {@code ports} reports cluster_state:ok with all 16384 slots served, and each replica
     * among them is in sync with its primary (a replica that never synced does not fail over).
     */
    void awaitHealthy(Set<Integer> ports, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = "";
        while (System.currentTimeMillis() < deadline) {
            boolean ok = true;
            for (int port : ports) {
                try (Jedis j = node(port)) {
                    last = port + ": " + j.clusterInfo() + j.info("replication");
                    ok &= last.contains("cluster_state:ok") && last.contains("cluster_slots_ok:16384")
                            && (last.contains("role:master") || last.contains("master_link_status:up"));
                } catch (RuntimeException e) {
                    last = port + ": " + e;
                    ok = false;
                }
            }
            if (ok) {
                return;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("cluster not healthy after " + timeoutMs + " ms; " + last);
    }

    Set<Integer> ports() {
        Set<Integer> ports = new LinkedHashSet<>();
        for (int i = 0; i < NODES; i++) {
            ports.add(base + i);
        }
        return ports;
    }

    /** "host:port,..." of all nodes, as the sink's 'cluster.nodes' takes it. */
    String nodesOption() {
        return ports().stream().map(p -> "127.0.0.1:" + p).collect(Collectors.joining(","));
    }

    /**
     * A sink writer on this cluster: key prefix "c:", TTL 10 min, 'sink.max-outage' 30 s, 'timeout' 1 s, timers
     * only when the test fires them; {@code options} add to or replace these.
     */
    RedisSinkWriter writer(RowType row, int[] primaryKey, Map<String, String> options) {
        Configuration c = new Configuration();
        c.setString("cluster.nodes", nodesOption());
        c.setString("password-env", TestRedis.PASSWORD_ENV);
        c.setString("key-prefix", "c:");
        c.setString("ttl", "10 min");
        c.setString("sink.max-outage", "30 s");
        c.setString("timeout", "1 s");
        c.setString("sink.buffer-flush.interval", "0 ms");
        options.forEach(c::setString);
        return new RedisSinkWriter(RedisSinkConfig.fromOptions(c).withInitialBackoffMs(50),
                RowEncoder.create(row, primaryKey, c), new RedisSinkWriterTest.ManualTime(),
                new UnregisteredMetricsGroup());
    }

    /** A client to one node (not following redirects). */
    static Jedis node(int port) {
        return new Jedis(new HostAndPort("127.0.0.1", port),
                DefaultJedisClientConfig.builder().password(TestRedis.PASSWORD).build());
    }

    /** A cluster client that follows redirects: how the tests read back what the sink wrote. */
    JedisCluster client() {
        Set<HostAndPort> nodes = ports().stream().map(p -> new HostAndPort("127.0.0.1", p))
                .collect(Collectors.toSet());
        return new JedisCluster(nodes, DefaultJedisClientConfig.builder().password(TestRedis.PASSWORD).build());
    }

    /** The port of the primary serving {@code slot}, asked from a live node other than {@code except}. */
    int primaryOf(int slot, int except) {
        for (int port : ports()) {
            if (port == except || !processes.get(port).isAlive()) {
                continue;
            }
            try (Jedis j = node(port)) {
                for (Object range : j.clusterSlots()) {
                    List<?> r = (List<?>) range;
                    if ((Long) r.get(0) <= slot && slot <= (Long) r.get(1)) {
                        return ((Long) ((List<?>) r.get(2)).get(1)).intValue();
                    }
                }
            }
        }
        throw new IllegalStateException("no node serves slot " + slot);
    }

    /** The node id of the node on {@code port}. */
    static String nodeId(int port) {
        try (Jedis j = node(port)) {
            return j.clusterMyId();
        }
    }

    /** SIGKILL: the node dies without a goodbye, as a crashed host would. */
    void kill(int port) throws InterruptedException {
        processes.get(port).destroyForcibly().waitFor();
    }

    @Override
    public void close() throws Exception {
        for (Process p : processes.values()) {
            p.destroy();
        }
        for (Process p : processes.values()) {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
            }
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
