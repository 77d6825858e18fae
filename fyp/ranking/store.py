"""Versioned ranker files in S3: one zip per version, holding the ONNX model and its JSON card.

    s3://{media bucket}/models/ranker/{version}/ranker.zip   model.onnx + card.json (input spec, metrics, config)
    s3://{media bucket}/models/ranker/LATEST                 the newest version's name

One object per version, written before LATEST moves, so a reader never sees half a version. A version is
`YYYYmmddTHHMMSSZ-{first 8 hex of the zip's SHA-256}`; a feed loads one by name (an experiment arm names the
version it tries) or LATEST. The zip holds no code: ONNX is a graph of operators, and the card is JSON.

>>> version, data = serialize(b"onnx", {"spec": "{}", "metrics": []}, now=datetime(2026, 12, 6, tzinfo=UTC))
>>> version.startswith("20261206T000000Z-"), deserialize(data)[0]
(True, b'onnx')
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any, Protocol

from fyp.media.keys import validate_key

__all__ = ["S3_PREFIX", "RankerNotFound", "check_version", "deserialize", "latest_version", "load_version", "save",
           "serialize"]

S3_PREFIX = "models/ranker/"
MAX_ZIP_BYTES = 64 * 2**20  # a ranker is well under 1 MB; a bigger file is not one of ours
_VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None: ...


class RankerNotFound(LookupError):
    """No such version (or no LATEST) in the bucket."""


def check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"bad ranker version {version!r}: expected YYYYmmddTHHMMSSZ-xxxxxxxx")
    return version


def serialize(onnx: bytes, card: dict[str, Any], *, now: datetime | None = None) -> tuple[str, bytes]:
    """(version, zip bytes) of a model and its card."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.onnx", onnx)
        archive.writestr("card.json", json.dumps(card, sort_keys=True))
    data = buffer.getvalue()
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha256(data).hexdigest()[:8]}", data


def deserialize(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """(ONNX bytes, card) from a zip `serialize` wrote; `ValueError` for anything else."""
    if len(data) > MAX_ZIP_BYTES:
        raise ValueError(f"ranker file of {len(data):,} bytes is over {MAX_ZIP_BYTES:,}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if names != {"model.onnx", "card.json"}:
                raise ValueError(f"ranker file holds {sorted(names)}, expected model.onnx and card.json")
            sizes = sum(info.file_size for info in archive.infolist())
            if sizes > MAX_ZIP_BYTES:  # a zip bomb's declared sizes give it away before anything is inflated
                raise ValueError(f"ranker file inflates to {sizes:,} bytes")
            return archive.read("model.onnx"), json.loads(archive.read("card.json"))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a ranker file: {exc}") from exc


def _key(version: str, prefix: str) -> str:
    return validate_key(f"{prefix}{check_version(version)}/ranker.zip", prefix=prefix)


def save(store: ObjectStore, version: str, data: bytes, *, prefix: str = S3_PREFIX) -> str:
    """Put the version's zip, then move LATEST to it; the zip's key. prefix: tests use their own."""
    key = _key(version, prefix)
    store.put_bytes(key, data)
    store.put_bytes(validate_key(f"{prefix}LATEST", prefix=prefix), (version + "\n").encode())
    return key


def latest_version(store: ObjectStore, *, prefix: str = S3_PREFIX) -> str:
    latest = store.get_bytes(validate_key(f"{prefix}LATEST", prefix=prefix))
    if latest is None:
        raise RankerNotFound(f"no {prefix}LATEST: run `fyp train ranker` first")
    return check_version(latest.decode().strip())


def load_version(store: ObjectStore, version: str, *, prefix: str = S3_PREFIX) -> tuple[bytes, dict[str, Any]]:
    """(ONNX bytes, card) of one version ("latest": LATEST's)."""
    if version == "latest":
        version = latest_version(store, prefix=prefix)
    data = store.get_bytes(_key(version, prefix))
    if data is None:
        raise RankerNotFound(f"no ranker {version} under {prefix}")
    return deserialize(data)
