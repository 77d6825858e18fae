"""featurespec/scaffold.py: the rendered module declares a valid set, and its rendered test passes against it."""

from __future__ import annotations

import sys
import types

import pytest

from featurespec import ENTITIES, FeatureSet
from featurespec.scaffold import next_steps, plan, render_module, render_test, write


def _load(name: str, text: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_rendered_module_declares_a_valid_v1_and_its_test_passes(entity, monkeypatch):
    module = _load("features.engagement.scaffolded", render_module(name="scaffolded", entity=entity.name))
    assert isinstance(module.v1, FeatureSet)
    assert (module.v1.qualified_name, module.v1.entity) == ("scaffolded.v1", entity)
    # The rendered test imports `features.engagement.scaffolded`: point that at the rendered module.
    monkeypatch.setitem(sys.modules, "features.engagement.scaffolded", module)
    test = _load("test_feature_scaffolded",
                 render_test(name="scaffolded", entity=entity.name, family="engagement"))
    functions = [f for n, f in vars(test).items() if n.startswith("test_")]
    assert len(functions) == 2
    for function in functions:
        function()


def test_the_rendered_test_fails_when_the_declaration_does_not_count_plays(monkeypatch):
    text = render_module(name="scaffolded", entity="video").replace("event_type = 'watch'", "event_type = 'like'")
    monkeypatch.setitem(sys.modules, "features.engagement.scaffolded", _load("scaffolded", text))
    test = _load("test_feature_scaffolded", render_test(name="scaffolded", entity="video", family="engagement"))
    with pytest.raises(AssertionError):
        test.test_scaffolded_counts_a_play_per_video()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "Video-Rewatch", "entity": "video", "family": "engagement"}, "must be lower_snake_case"),
    ({"name": "video_rewatch", "entity": "planet", "family": "engagement"}, "unknown entity 'planet'; known: user"),
    ({"name": "video_rewatch", "entity": "video", "family": "../x"}, "family '../x' must be lower_snake_case"),
])
def test_bad_names_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan(tmp_path, **kwargs)


def test_write_creates_the_family_package_and_refuses_to_overwrite(tmp_path):
    scaffold = plan(tmp_path, name="video_rewatch", entity="video", family="rewatch")
    created = write(scaffold)
    assert [p.relative_to(tmp_path).as_posix() for p in created] == [
        "features/rewatch/__init__.py", "features/rewatch/video_rewatch.py",
        "tests/unit/features/test_feature_video_rewatch.py"]
    assert scaffold.module_path.read_text() == scaffold.module_text
    scaffold.module_path.write_text("# edited\n")
    scaffold.test_path.unlink()
    with pytest.raises(FileExistsError, match=r"refusing to overwrite .*video_rewatch\.py"):
        write(scaffold)
    assert scaffold.module_path.read_text() == "# edited\n"
    assert not scaffold.test_path.exists()  # nothing written when one file exists


def test_next_steps_name_the_registration_the_doc_and_the_tests(tmp_path):
    steps = "\n".join(next_steps(plan(tmp_path, name="video_rewatch", entity="video", family="engagement")))
    assert "add video_rewatch.v1 to ALL_FEATURE_SETS" in steps
    assert '"video_rewatch": 1 to READ_VERSIONS' in steps
    assert "fyp features-doc" in steps
    assert "tests/unit/features/test_feature_video_rewatch.py" in steps
    assert "tests/flink/test_engagement_features.py" in steps
    # A new set changes the plan: a resumed submission would fail on the old job's state.
    assert "fyp submit engagement_features --fresh" in steps
