package dev.fyp.flink.redis;

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** A throwaway password-protected redis-server on 127.0.0.1 (port 7690 unless -Dfyp.test.redis.port). */
final class TestRedis implements AutoCloseable {

    static final int PORT = Integer.getInteger("fyp.test.redis.port", 7690);
    static final String PASSWORD_ENV = "FYP_TEST_REDIS_PASSWORD";
    static final String PASSWORD = System.getenv(PASSWORD_ENV) != null
            ? System.getenv(PASSWORD_ENV) : "redis-sink-test-secret";

    private final Process process;
    private final Path dir;
    final int port;

    private TestRedis(Process process, Path dir, int port) {
        this.process = process;
        this.dir = dir;
        this.port = port;
    }

    static TestRedis start() throws Exception {
        return start(PORT);
    }

    /** A server on another port, e.g. one that comes up while a writer is already retrying. */
    static TestRedis start(int port) throws Exception {
        String binary = binary("redis-server");
        try (ServerSocket probe = new ServerSocket(port, 1, java.net.InetAddress.getLoopbackAddress())) {
            probe.setReuseAddress(true);
        } catch (IOException e) {
            throw new IllegalStateException("port " + port + " is busy; pass -Dfyp.test.redis.port=<free port>");
        }
        Path dir = Files.createTempDirectory("fyp-redis-sink-test");
        Process p = new ProcessBuilder(List.of(binary, "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", dir.toString(),
                "--daemonize", "no", "--loglevel", "warning"))
                .redirectErrorStream(true).redirectOutput(dir.resolve("redis.log").toFile()).start();
        TestRedis r = new TestRedis(p, dir, port);
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            try (Jedis j = r.client()) {
                j.ping();
                return r;
            } catch (RuntimeException e) {
                if (System.currentTimeMillis() > deadline || !p.isAlive()) {
                    r.close();
                    throw new IllegalStateException("redis-server did not start: "
                            + Files.readString(dir.resolve("redis.log")), e);
                }
                Thread.sleep(50);
            }
        }
    }

    /** The path of a Redis program on PATH; the test is skipped (not failed) where Redis is not installed. */
    static String binary(String name) {
        String binary = Stream.of(System.getenv("PATH").split(File.pathSeparator))
                .map(d -> Path.of(d, name)).filter(Files::isExecutable).findFirst()
                .map(Path::toString).orElse(null);
        assumeTrue(binary != null, name + " is not on PATH; skipping Redis tests");
        return binary;
    }

    Jedis client() {
        return new Jedis(new HostAndPort("127.0.0.1", port),
                DefaultJedisClientConfig.builder().password(PASSWORD).build());
    }

    @Override
    public void close() throws Exception {
        process.destroy();
        if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
