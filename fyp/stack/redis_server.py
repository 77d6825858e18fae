"""Redis 7 from the Debian package, password-protected, on loopback."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from fyp.config import Settings
from fyp.stack.process import StackError
from fyp.stack.service import ProcessService

__all__ = ["RedisService", "redis_server_binary", "scratch_redis", "scratch_services", "write_config"]


def redis_server_binary() -> str:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(binary):
        raise StackError("redis-server is missing: apt-get install redis-server (scripts/install.sh does)")
    return binary


def write_config(path: Path, settings: Settings, *, port: int, extra: str = "") -> None:
    """A node's redis.conf (mode 0600: it holds the password): loopback, password, its directory, then `extra`.
    RDB snapshots only: every value is recomputable from Flink state, so AOF's cost buys nothing."""
    path.write_text(
        f"bind {settings.host}\nport {port}\nprotected-mode yes\nrequirepass {settings.redis_password}\n"
        f"dir {path.parent}\ndaemonize no\nappendonly no\nsave 300 100\nmaxmemory-policy noeviction\n"
        f"loglevel notice\n{extra}"
    )
    path.chmod(0o600)


class RedisService(ProcessService):
    name = "redis"
    start_timeout_s = 20.0

    def address(self) -> str:
        return f"redis://{self.settings.host}:{self.settings.redis_port}"

    def ports(self) -> Sequence[int]:
        return [self.settings.redis_port]

    @property
    def config_file(self):
        return self.home / "redis.conf"

    def prepare(self) -> None:
        write_config(self.config_file, self.settings, port=self.settings.redis_port)

    def command(self) -> Sequence[str]:
        return [redis_server_binary(), str(self.config_file)]

    def check(self) -> str:
        client = self.settings.redis_client(socket_timeout=2)
        info = client.info("server")
        return f"redis {info['redis_version']}, {client.dbsize()} keys"


@contextmanager
def scratch_services(
    settings: Settings, services: Callable[[Settings], list[ProcessService]], **changes,
) -> Iterator[tuple[Settings, list[ProcessService]]]:
    """`settings` with `changes` in a temporary home, and `services(those settings)` started there: both are
    yielded; the services are stopped and the home deleted on exit. Tests and benchmarks run a throw-away Redis
    (or Redis Cluster) this way beside a running stack, whose own stays untouched."""
    home = Path(tempfile.mkdtemp(prefix="fyp-scratch-redis-"))
    scratch = replace(settings, home=home, **changes)
    started = services(scratch)
    try:
        for service in started:
            service.start()
        yield scratch, started
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(home, ignore_errors=True)


def scratch_redis(settings: Settings, *, port: int):
    """A throw-away single Redis at `port` with `settings`' password (`scratch_services`)."""
    return scratch_services(settings, lambda s: [RedisService(s)], profile="single", redis_port=port,
                            redis_cluster_nodes=())
