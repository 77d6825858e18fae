"""The Iceberg REST catalog (SeaweedFS locally) as a Flink catalog, with S3FileIO."""

from __future__ import annotations

from pyflink.common import Configuration
from pyflink.table import TableEnvironment
from pyflink.table.catalog import CatalogDescriptor

from fyp.config import Settings

__all__ = ["ICEBERG_CATALOG", "flink_iceberg_options", "register_iceberg_catalog"]

ICEBERG_CATALOG = "lake"


def flink_iceberg_options(settings: Settings) -> dict[str, str]:
    """Iceberg catalog options for Flink's Java REST client: SigV4-signed requests, path-style S3."""
    return {
        "catalog-type": "rest",
        "uri": settings.iceberg_rest_uri,
        "warehouse": f"s3://{settings.warehouse_bucket}/",
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "s3.endpoint": settings.s3_endpoint,
        "s3.path-style-access": "true",
        "s3.access-key-id": settings.s3_access_key,
        "s3.secret-access-key": settings.s3_secret_key,
        "client.region": settings.s3_region,
        "rest.sigv4-enabled": "true",
        "rest.signing-region": settings.s3_region,
        "rest.signing-name": "s3tables",
        "rest.access-key-id": settings.s3_access_key,
        "rest.secret-access-key": settings.s3_secret_key,
    }


def register_iceberg_catalog(t_env: TableEnvironment, settings: Settings, name: str = ICEBERG_CATALOG) -> str:
    """Register the catalog under `name` (default `lake`) and return the name."""
    config = Configuration()
    config.set_string("type", "iceberg")
    for key, value in flink_iceberg_options(settings).items():
        config.set_string(key, value)
    t_env.create_catalog(name, CatalogDescriptor.of(name, config))
    return name
