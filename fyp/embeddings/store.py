"""Saving and finding trained two-tower models: one file per version, locally and in S3.

    $FYP_HOME/models/two-tower/{version}/model.pt      the model (torch.save of plain dicts and tensors)
    $FYP_HOME/models/two-tower/LATEST                  the newest version's name
    s3://{media bucket}/models/two-tower/{version}/model.pt and models/two-tower/LATEST: the same, shared

A version is `YYYYmmddTHHMMSSZ-{first 8 hex of the file's SHA-256}`; the model's name, which tags every
vector it makes (VideoEmbedding.model, the user embedding value), is `two-tower-{version}`: the one model id.
The index service serves one model id and refuses vectors of any other (docs/INDEX.md, "Changing the model");
`current_model_name` is the id a service, the embedding job and the user-embedding worker start from.
Loading uses `weights_only=True`: a model file can carry no code.

>>> model_name("20261124T161500Z-1a2b3c4d"), version_of("two-tower-20261124T161500Z-1a2b3c4d")
('two-tower-20261124T161500Z-1a2b3c4d', '20261124T161500Z-1a2b3c4d')
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
    "current_model_name",
    "latest_local",
    "latest_local_version",
    "latest_s3",
    "load_bytes",
    "load_local",
    "local_models_dir",
    "model_name",
    "save_local",
    "save_s3",
    "serialize",
    "version_of",
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


def version_of(name: str) -> str:
    """The version in a model name `two-tower-{version}`; ValueError for any other name."""
    prefix = "two-tower-"
    if not name.startswith(prefix):
        raise ValueError(f"{name!r} is not the name of a trained two-tower model")
    return _check_version(name[len(prefix):])


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


def latest_local_version(home: Path) -> str | None:
    """The version $FYP_HOME/models/two-tower/LATEST names, without loading the model; None when none."""
    latest = local_models_dir(home) / "LATEST"
    if not latest.exists():
        return None
    return _check_version(latest.read_text().strip())


def latest_local(home: Path) -> LoadedModel:
    version = latest_local_version(home)
    if version is None:
        raise ModelNotFound(f"no trained model under {local_models_dir(home)} (run `fyp train two-tower`)")
    return load_local(home, version)


def load_local(home: Path, version: str) -> LoadedModel:
    """The model of one version under $FYP_HOME/models/two-tower/ (ModelNotFound when it is not there)."""
    path = local_models_dir(home) / _check_version(version) / "model.pt"
    if not path.is_file():
        raise ModelNotFound(f"no model {version} under {local_models_dir(home)}")
    return load_bytes(path.read_bytes(), version)


def current_model_name(home: Path) -> str:
    """The id of the model encoders load by default ("local"): LATEST's, else the content projection's."""
    from fyp.embeddings.encoders import PROJECTION_NAME

    version = latest_local_version(home)
    return model_name(version) if version else PROJECTION_NAME


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
