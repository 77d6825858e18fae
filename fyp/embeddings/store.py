"""Saving and finding trained two-tower models: one file per version, locally and in S3.

    $FYP_HOME/models/two-tower/{version}/model.pt      the model (torch.save of plain dicts and tensors)
    $FYP_HOME/models/two-tower/LATEST                  the newest version's name
    s3://{media bucket}/models/two-tower/{version}/model.pt and models/two-tower/LATEST: the same, shared

A version is `YYYYmmddTHHMMSSZ-{first 8 hex of the file's SHA-256}`; the model's name, which tags every
vector it makes (VideoEmbedding.model), is `two-tower-{version}`. Loading uses `weights_only=True`: a model
file can carry no code.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from fyp.embeddings.towers import TowerConfig, TwoTower
from fyp.media.keys import validate_key

__all__ = [
    "FORMAT",
    "LOCAL_DIR",
    "S3_PREFIX",
    "LoadedModel",
    "ModelNotFound",
    "latest_local",
    "latest_s3",
    "load_bytes",
    "local_models_dir",
    "model_name",
    "save_local",
    "save_s3",
    "serialize",
]

FORMAT = "fyp-two-tower/1"
LOCAL_DIR = "models/two-tower"
S3_PREFIX = "models/two-tower/"
_VERSION = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")


class ModelNotFound(LookupError):
    """No trained model where one was looked for."""


class LoadedModel:
    """A model read back from a file: the towers in eval mode, its version and what training recorded."""

    def __init__(self, model: TwoTower, version: str, info: dict[str, Any]) -> None:
        self.model = model.eval()
        self.version = version
        self.info = info

    @property
    def name(self) -> str:
        return model_name(self.version)


def model_name(version: str) -> str:
    return f"two-tower-{version}"


def serialize(model: TwoTower, info: dict[str, Any], *, now: datetime | None = None) -> tuple[str, bytes]:
    """(version, file bytes) of a model; `info` (metrics, data sizes) is stored beside the weights."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "config": model.config.to_dict(), "state": model.state_dict(), "info": info},
               buffer)
    data = buffer.getvalue()
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{hashlib.sha256(data).hexdigest()[:8]}", data


def load_bytes(data: bytes, version: str) -> LoadedModel:
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} model file")
    model = TwoTower(TowerConfig(**payload["config"]))
    model.load_state_dict(payload["state"])
    return LoadedModel(model, version, dict(payload.get("info") or {}))


def _check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"bad model version {version!r}")
    return version


def local_models_dir(home: Path) -> Path:
    return home / LOCAL_DIR


def save_local(home: Path, version: str, data: bytes) -> Path:
    """Write the model under $FYP_HOME/models/two-tower/{version}/ and point LATEST at it."""
    folder = local_models_dir(home) / _check_version(version)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pt"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    latest = local_models_dir(home) / "LATEST"
    latest.with_suffix(".tmp").write_text(version + "\n")
    latest.with_suffix(".tmp").replace(latest)
    return path


def latest_local(home: Path) -> LoadedModel:
    latest = local_models_dir(home) / "LATEST"
    if not latest.exists():
        raise ModelNotFound(f"no trained model under {local_models_dir(home)} (run `fyp train two-tower`)")
    version = _check_version(latest.read_text().strip())
    return load_bytes((local_models_dir(home) / version / "model.pt").read_bytes(), version)


def _s3_key(version: str, prefix: str = S3_PREFIX) -> str:
    return validate_key(f"{prefix}{_check_version(version)}/model.pt", prefix=prefix)


def save_s3(store: Any, version: str, data: bytes, *, prefix: str = S3_PREFIX) -> str:
    """Put the model and then LATEST through an `ObjectStore` (fyp.index.snapshot.S3ObjectStore); the key.

    prefix: where models live in the bucket (tests use their own, so they never replace a real LATEST).
    """
    key = _s3_key(version, prefix)
    store.put_bytes(key, data)
    store.put_bytes(validate_key(f"{prefix}LATEST", prefix=prefix), (version + "\n").encode())
    return key


def latest_s3(store: Any, *, prefix: str = S3_PREFIX) -> LoadedModel:
    latest = store.get_bytes(validate_key(f"{prefix}LATEST", prefix=prefix))
    if latest is None:
        raise ModelNotFound(f"no {prefix}LATEST in bucket {getattr(store, 'bucket', '?')}")
    version = _check_version(latest.decode().strip())
    data = store.get_bytes(_s3_key(version, prefix))
    if data is None:
        raise ModelNotFound(f"{_s3_key(version, prefix)} is missing")
    return load_bytes(data, version)
