"""`fyp features-new`: the declaration module of a new feature set and its unit test, rendered from templates.

The module declares `v1` with one aggregation (plays over 1 h and 24 h) of the chosen entity, so that it is
valid, compiles and passes its test as written; the engineer then edits its aggregations and the test together.

>>> files = plan(Path("/repo"), name="video_rewatch", entity="video", family="engagement")
>>> [p.relative_to("/repo").as_posix() for p in (files.module_path, files.test_path)]
['features/engagement/video_rewatch.py', 'tests/unit/features/test_feature_video_rewatch.py']
>>> "entity=VIDEO" in files.module_text
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from featurespec.declaration import ENTITIES, Entity

__all__ = ["Scaffold", "next_steps", "plan", "render_module", "render_test", "write"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_MODULE = '''"""{title}: TODO say what it describes and who reads it."""

from datetime import timedelta

from featurespec import {constant}, Aggregation, FeatureSet

WINDOWS = (timedelta(hours=1), timedelta(hours=24))

PLAYS = Aggregation(name="plays", operation="count", where="event_type = 'watch'")

v1 = FeatureSet(
    name="{name}", version=1, entity={constant}, windows=WINDOWS, aggregations=(PLAYS,),
    description="Per {entity}: plays over the last hour and day.",
)
'''

_TEST = '''"""features/{family}/{name}.py: the declaration compiles to Flink SQL and counts what it says."""

from features.{family} import {name}
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from featurespec.sql import feature_query

COLUMNS = {{{columns}}}  # the key columns of one {entity}
KEY = "{key}"


def test_{name}_compiles_to_flink_sql():
    assert "GROUP BY" in feature_query({name}.v1)


def test_{name}_counts_a_play_per_{entity}():
    evaluator = FeatureEvaluator.of({name}.v1)
    play = engagement_row(event_type="watch", event_time=1_000, **COLUMNS)
    assert evaluator.keys(play) == [KEY]
    assert evaluator.keys(engagement_row(event_type="impression", event_time=1_000, **COLUMNS)) == []
    state = evaluator.new_state()
    evaluator.update(state, play)
    assert evaluator.values(state)["plays_1h"] == 1.0
'''


@dataclass(frozen=True, kw_only=True)
class Scaffold:
    """What `write` creates: a declaration module and its test, paths absolute."""

    name: str
    family: str
    module_path: Path
    test_path: Path
    module_text: str
    test_text: str


def _entity(name: str) -> Entity:
    for entity in ENTITIES:
        if entity.name == name:
            return entity
    raise ValueError(f"unknown entity {name!r}; known: {', '.join(e.name for e in ENTITIES)}")


def _check(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{kind} {value!r} must be lower_snake_case")


def render_module(*, name: str, entity: str) -> str:
    """The declaration module of set `name` (version 1) keyed by `entity` (an `ENTITIES` name)."""
    _check("feature set name", name)
    found = _entity(entity)
    return _MODULE.format(title=name.replace("_", " ").capitalize(), name=name, entity=found.name,
                          constant=found.name.upper())


def render_test(*, name: str, entity: str, family: str) -> str:
    """The unit test of `features/<family>/<name>.py` as `render_module` writes it."""
    _check("feature set name", name)
    _check("family", family)
    found = _entity(entity)
    # One row of the entity: each key column set; a per-hashtag entity's `hashtag` comes from `hashtags`.
    values = {column: ("cats" if column == "hashtag" else f"{column.removesuffix('_id')}-1")
              for column in found.key_columns}
    columns = ", ".join('"hashtags": ["cats"]' if c == "hashtag" else f'"{c}": "{v}"' for c, v in values.items())
    return _TEST.format(name=name, family=family, entity=found.name, columns=columns, key=":".join(values.values()))


def plan(root: Path, *, name: str, entity: str, family: str) -> Scaffold:
    """The files for set `name` under the repository at `root`: features/<family>/<name>.py and
    tests/unit/features/test_feature_<name>.py. Raises ValueError for a bad name, family or entity."""
    return Scaffold(
        name=name, family=family,
        module_path=root / "features" / family / f"{name}.py",
        test_path=root / "tests" / "unit" / "features" / f"test_feature_{name}.py",
        module_text=render_module(name=name, entity=entity),
        test_text=render_test(name=name, entity=entity, family=family),
    )


def write(scaffold: Scaffold) -> list[Path]:
    """Create the scaffold's files (and the family package, if new); returns the paths created. Raises
    FileExistsError, writing nothing, when the module or the test already exists."""
    existing = [p for p in (scaffold.module_path, scaffold.test_path) if p.exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(map(str, existing))}")
    created = []
    package = scaffold.module_path.parent
    if not (package / "__init__.py").exists():
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f'"""{scaffold.family.replace("_", " ").capitalize()} feature sets."""\n')
        created.append(package / "__init__.py")
    for path, text in ((scaffold.module_path, scaffold.module_text), (scaffold.test_path, scaffold.test_text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        created.append(path)
    return created


def next_steps(scaffold: Scaffold) -> list[str]:
    """What to do after `write`, in order (docs/ADDING_FEATURES.md explains each)."""
    module = f"features.{scaffold.family}.{scaffold.name}"
    return [
        f"edit {module}: its aggregations, windows, description (and its test with them)",
        f"register it in features/__init__.py: import {module}, add {scaffold.name}.v1 to ALL_FEATURE_SETS "
        f'and "{scaffold.name}": 1 to READ_VERSIONS',
        "regenerate docs/FEATURES.md: fyp features-doc",
        f"run the tests: .venv/bin/python -m pytest tests/unit/features/test_feature_{scaffold.name}.py "
        "tests/unit/features/test_features.py tests/unit/featurespec/test_featurespec_reference.py -q, then "
        ".venv-flink/bin/python -m pytest tests/flink/test_engagement_features.py -q",
        # --fresh: a new set changes the query plan, which cannot take the running job's state.
        "resubmit the features job (fyp jobs, fyp cancel ID, fyp submit engagement_features --fresh), then "
        f"fill the new set's idle entities: fyp features-restore --set {scaffold.name}.v1",
    ]
