"""Redis 7 from the Debian package, password-protected, on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from fyp.stack.process import StackError
from fyp.stack.service import ProcessService

__all__ = ["RedisService"]


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
        s = self.settings
        # RDB snapshots only: every value is recomputable from Flink state, so AOF's cost buys nothing.
        self.config_file.write_text(
            f"bind {s.host}\nport {s.redis_port}\nprotected-mode yes\nrequirepass {s.redis_password}\n"
            f"dir {self.home}\ndaemonize no\nappendonly no\nsave 300 100\nmaxmemory-policy noeviction\n"
            "loglevel notice\n"
        )
        self.config_file.chmod(0o600)

    def command(self) -> Sequence[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not shutil.which(binary):
            raise StackError("redis-server is missing: apt-get install redis-server (scripts/install.sh does)")
        return [binary, str(self.config_file)]

    def check(self) -> str:
        client = self.settings.redis_client(socket_timeout=2)
        info = client.info("server")
        return f"redis {info['redis_version']}, {client.dbsize()} keys"
