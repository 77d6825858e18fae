"""Offline schema validation of rendered Kubernetes objects, with the schemas deploy/kubernetes/fetch-schemas.sh
put into build/kubernetes-schemas/ (docs/DEPLOY.md "What make test checks").

Core objects are checked against Kubernetes' strict JSON schemas (an unknown field is an error). A custom
resource is checked against its CRD's openAPIV3Schema, made strict the same way: every object schema that lists
`properties` and does not say `x-kubernetes-preserve-unknown-fields` refuses other fields, as the API server does
under strict field validation. Its metadata is checked against the core ObjectMeta.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

__all__ = ["SCHEMA_DIR", "SchemaSet", "load_schema_set", "widen_enum"]

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "build" / "kubernetes-schemas"
Gvk = tuple[str, str, str]  # (group, version, kind); group "" for the core API


def _strict(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as a JSON schema: int-or-string, nullable, and closed objects."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()
           if key not in ("properties", "additionalProperties", "items")}
    if "properties" in node:
        out["properties"] = {name: _strict(sub) for name, sub in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(node["additionalProperties"])
    elif "additionalProperties" in node:
        out["additionalProperties"] = node["additionalProperties"]
    elif "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if "items" in node:
        out["items"] = _strict(node["items"])
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@dataclass(frozen=True)
class SchemaSet:
    core: dict[str, Any]  # the whole _definitions.json
    core_names: dict[Gvk, str]  # gvk -> $defs name
    crds: dict[Gvk, dict[str, Any]]  # gvk -> strict JSON schema of the whole object

    def _core_validator(self, name: str) -> Draft202012Validator:
        return Draft202012Validator({**self.core, "$ref": f"#/$defs/{name}"})

    def has(self, gvk: Gvk) -> bool:
        return gvk in self.core_names or gvk in self.crds

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """What is wrong with `obj`, one line per error; empty when it is valid. No schema is an error too."""
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        gvk = (group, version, str(obj.get("kind", "")))
        where = f"{gvk[2]} {obj.get('metadata', {}).get('name')}"
        if gvk in self.core_names:
            found = self._core_validator(self.core_names[gvk]).iter_errors(obj)
        elif gvk in self.crds:
            metadata = self._core_validator("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            found = [*Draft202012Validator(self.crds[gvk]).iter_errors(obj),
                     *metadata.iter_errors(obj.get("metadata", {}))]
        else:
            return [f"{where}: no schema for {'/'.join(gvk)}"]
        return [f"{where}: /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in found]


def _crd_schemas(crd: dict[str, Any]) -> Iterator[tuple[Gvk, dict[str, Any]]]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schema = _strict(version["schema"]["openAPIV3Schema"])
        # apiVersion, kind and metadata are the API server's, whatever the CRD says of them.
        schema.setdefault("properties", {}).update(
            apiVersion={"const": f"{group}/{version['name']}"}, kind={"const": kind}, metadata={"type": "object"})
        yield (group, version["name"], kind), schema


def load_schema_set(directory: Path = SCHEMA_DIR) -> SchemaSet:
    """The schemas under `directory`; FileNotFoundError names the install step when they are missing."""
    core_path = directory / "core.json"
    crd_paths = sorted((directory / "crds").glob("*.yaml"))
    if not (directory / ".complete").exists() or not core_path.exists() or not crd_paths:
        raise FileNotFoundError(f"no schemas in {directory}: run `make install` (scripts/install.sh runs "
                                "deploy/kubernetes/fetch-schemas.sh)")
    core = json.loads(core_path.read_text())
    names = {(g["group"], g["version"], g["kind"]): name for name, schema in core["$defs"].items()
             for g in schema.get("x-kubernetes-group-version-kind", [])}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are 1 MB of YAML
    crds = {gvk: schema for path in crd_paths for doc in yaml.load_all(path.read_text(), Loader=loader)
            if doc and doc.get("kind") == "CustomResourceDefinition" for gvk, schema in _crd_schemas(doc)}
    return SchemaSet(core=core, core_names=names, crds=crds)


def widen_enum(schemas: SchemaSet, gvk: Gvk, path: tuple[str, ...], values: tuple[str, ...]) -> SchemaSet:
    """A copy of `schemas` whose enum at `path` (property names from the object's root) also allows `values`."""
    crds = dict(schemas.crds)
    crds[gvk] = copy.deepcopy(crds[gvk])
    node = crds[gvk]
    for name in path:
        node = node["properties"][name]
    node["enum"] = [*node["enum"], *(v for v in values if v not in node["enum"])]
    return SchemaSet(core=schemas.core, core_names=schemas.core_names, crds=crds)
