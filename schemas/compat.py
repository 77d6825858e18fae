"""Backward compatibility of Avro schemas: can a reader on the new schema read data written with the old?

The rules are Avro's schema resolution (https://avro.apache.org/docs/1.12.0/specification/#schema-resolution)
plus one of ours: enum symbols keep their positions, new ones go at the end. docs/EVENTS.md states them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_backward_compatible"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

# writer type -> reader types that can read it (Avro "promotion").
_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


class _Side:
    """One schema being walked: named types seen so far, so that references by name resolve."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}

    def resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        """Unwrap references and `{"type": ...}` wrappers; register named definitions."""
        while True:
            if isinstance(schema, str) and schema not in _PRIMITIVES:
                full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
                schema = self.named.get(full, self.named.get(schema, schema))
                if isinstance(schema, str):
                    return schema, namespace
            elif isinstance(schema, dict) and not isinstance(schema.get("type"), str):
                schema = schema["type"]
            elif isinstance(schema, dict) and schema["type"] in _PRIMITIVES and len(schema) == 1:
                return schema["type"], namespace
            else:
                break
        if isinstance(schema, dict) and schema["type"] in ("record", "error", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            name = schema["name"]
            full = name if "." in name or not namespace else f"{namespace}.{name}"
            self.named.setdefault(full, schema)
            namespace = full.rpartition(".")[0] or None
        return schema, namespace


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return schema["type"]


def _logical(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _short(name: str) -> str:
    return name.rpartition(".")[2]


class _Checker:
    def __init__(self) -> None:
        self.old = _Side()
        self.new = _Side()
        self.problems: list[str] = []
        # (old name, new name) pairs being compared: a recursive type is compatible with itself.
        self.visiting: set[tuple[str, str]] = set()

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def readable(self, old: Any, new: Any, path: str, old_ns: str | None, new_ns: str | None) -> bool:
        """Records problems; returns whether `new` can read every value `old` can write."""
        before = len(self.problems)
        old, old_ns = self.old.resolve(old, old_ns)
        new, new_ns = self.new.resolve(new, new_ns)
        old_kind, new_kind = _kind(old), _kind(new)
        if old_kind == "union":
            for branch in old:
                self.readable(branch, new, path, old_ns, new_ns)
        elif new_kind == "union":
            # The reader takes the first branch that can read the writer's type.
            if not any(self.quietly(old, branch, old_ns, new_ns) for branch in new):
                self.fail(path, f"no branch of the new union can read old type {_describe(old)}")
        elif old_kind in _PRIMITIVES:
            if new_kind not in _PROMOTIONS.get(old_kind, {old_kind}):
                self.fail(path, f"old {old_kind} cannot be read as {_describe(new)}")
            elif _logical(old) != _logical(new):
                self.fail(path, f"logicalType changed from {_logical(old)} to {_logical(new)}")
        elif old_kind != new_kind:
            self.fail(path, f"old {old_kind} cannot be read as {_describe(new)}")
        elif old_kind in ("record", "error", "enum", "fixed") and not self.same_name(
            old, new, old_ns, new_ns
        ):
            self.fail(path, f"named type renamed from {old['name']} to {new['name']} without an alias")
        elif old_kind in ("record", "error"):
            self.record(old, new, path, old_ns, new_ns)
        elif old_kind == "enum":
            self.enum(old, new, path)
        elif old_kind == "fixed" and old["size"] != new["size"]:
            self.fail(path, f"fixed size changed from {old['size']} to {new['size']}")
        elif old_kind == "array":
            self.readable(old["items"], new["items"], f"{path}[]", old_ns, new_ns)
        elif old_kind == "map":
            self.readable(old["values"], new["values"], f"{path}{{}}", old_ns, new_ns)
        return len(self.problems) == before

    def quietly(self, old: Any, new: Any, old_ns: str | None, new_ns: str | None) -> bool:
        saved = self.problems
        self.problems = []
        try:
            return self.readable(old, new, "", old_ns, new_ns)
        finally:
            self.problems = saved

    def same_name(
        self, old: dict[str, Any], new: dict[str, Any], old_ns: str | None, new_ns: str | None
    ) -> bool:
        aliases = {_short(a) for a in new.get("aliases", [])}
        return _short(old["name"]) == _short(new["name"]) or _short(old["name"]) in aliases

    def record(
        self, old: dict[str, Any], new: dict[str, Any], path: str, old_ns: str | None, new_ns: str | None
    ) -> None:
        pair = (old["name"], new["name"])
        if pair in self.visiting:
            return
        self.visiting.add(pair)
        old_fields = {f["name"]: f for f in old["fields"]}
        for field in new["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((old_fields[n] for n in names if n in old_fields), None)
            where = f"{path}.{field['name']}"
            if match is not None:
                self.readable(match["type"], field["type"], where, old_ns, new_ns)
            elif "default" not in field:
                self.fail(where, "new field without a default: old data has no value for it")
        self.visiting.discard(pair)

    def enum(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_symbols, new_symbols = old["symbols"], new["symbols"]
        missing = [s for s in old_symbols if s not in new_symbols]
        if missing and "default" not in new:
            self.fail(path, f"enum symbols removed without an enum default: {', '.join(missing)}")
        kept = [s for s in new_symbols if s in old_symbols]
        if kept != [s for s in old_symbols if s in new_symbols] or new_symbols[: len(kept)] != kept:
            self.fail(path, "enum symbols reordered or inserted before existing ones; append new symbols")


def _describe(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return f"{schema['type']} {schema['name']}"
    return _kind(schema)


def check_backward_compatible(old_schema: Any, new_schema: Any) -> list[str]:
    """Problems that stop a reader on `new_schema` from reading data written with `old_schema`.

    Both are schemas as read from .avsc files (JSON values). Empty list = compatible. Each problem
    reads `<path>: <what is wrong>`, the path starting at the record name.

    >>> old = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "int"}]}
    >>> new = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "long"},
    ...                                                   {"name": "b", "type": "string"}]}
    >>> check_backward_compatible(old, new)
    ['E.b: new field without a default: old data has no value for it']
    """
    checker = _Checker()
    root = _short(new_schema["name"]) if isinstance(new_schema, dict) and "name" in new_schema else "$"
    checker.readable(old_schema, new_schema, root, None, None)
    return checker.problems
