"""Feast's Redis online store holding the same user and video features as the job's packed values, for
`fyp bench serving`.

The store is built in code (no feature_store.yaml): a throwaway registry file, Feast's `local` provider and
its Redis online store on the bench's Redis database. Each feature set becomes one FeatureView whose fields
are the set's columns, as Float32 (the packed layout's type), written with `write_to_online_store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.online_response import OnlineResponse
from feast.types import Float32

from featurespec import FeatureSet
from fyp.config import Settings

__all__ = ["FeastPeer"]

PROJECT = "fyp_bench"


class FeastPeer:
    """One Feast store with a FeatureView per feature set; reads the way a serving process would."""

    def __init__(self, settings: Settings, *, db: int, workdir: Path, feature_sets: Sequence[FeatureSet]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        connection = f"{settings.redis_host}:{settings.redis_port},password={settings.redis_password},db={db}"
        self.store = FeatureStore(config=RepoConfig(
            project=PROJECT, provider="local", registry=str(workdir / "registry.db"),
            online_store=RedisOnlineStoreConfig(connection_string=connection),
            entity_key_serialization_version=3,
        ))
        # FeatureViews need a batch source even when nothing is materialised from it.
        source_path = workdir / "empty.parquet"
        pd.DataFrame({"event_timestamp": pd.to_datetime([], utc=True)}).to_parquet(source_path)
        source = FileSource(path=str(source_path), timestamp_field="event_timestamp")
        self.views: dict[str, FeatureView] = {}
        objects: list = []
        for fs in feature_sets:
            entity = Entity(name=fs.entity.name, join_keys=[f"{fs.entity.name}_id"], value_type=ValueType.STRING)
            view = FeatureView(name=fs.name, entities=[entity], source=source, online=True,
                               schema=[Field(name=c, dtype=Float32) for c in fs.columns()])
            self.views[fs.name] = view
            objects += [entity, view]
        self.store.apply(objects)

    def write(self, feature_set: FeatureSet, rows: Mapping[str, np.ndarray], event_time_ms: int) -> None:
        """Write {entity id: float32 row} of one set, as the packed values hold them."""
        ids = list(rows)
        frame = pd.DataFrame(np.vstack([rows[i] for i in ids]).astype(np.float32), columns=list(feature_set.columns()))
        frame.insert(0, f"{feature_set.entity.name}_id", ids)
        frame["event_timestamp"] = pd.Timestamp(event_time_ms, unit="ms", tz="UTC")
        self.store.write_to_online_store(feature_set.name, frame)

    def references(self, feature_set: FeatureSet) -> list[str]:
        return [f"{feature_set.name}:{c}" for c in feature_set.columns()]

    def read(self, features: list[str], entity_rows: list[dict[str, str]]) -> OnlineResponse:
        """One get_online_features call. The response is left as Feast returns it (protobuf values): turning
        it into Python values (`to_dict`) would add about a third again, so leaving it out flatters Feast."""
        return self.store.get_online_features(features=features, entity_rows=entity_rows, full_feature_names=True)
