"""The job catalogue (fyp/pipelines.py) against the files in jobs/ and the names the jobs set."""

from __future__ import annotations

import re

import pytest

from fyp.pipelines import PIPELINES, pipeline
from fyp.stack.process import StackError
from fyp.stack.submit import JOBS_DIR, available_jobs, job_path


def test_every_job_file_is_catalogued_and_every_entry_has_its_file():
    files = {p.stem for p in JOBS_DIR.glob("*.py") if not p.name.startswith("_")}
    assert files == set(PIPELINES) == set(available_jobs())


def test_each_job_takes_its_names_from_the_catalogue_and_repeats_none():
    for entry in PIPELINES.values():
        source = (JOBS_DIR / f"{entry.job}.py").read_text()
        assert re.search(rf"from fyp\.pipelines import {entry.job.upper()}_JOB as PIPELINE", source), entry.job
        assert entry.pipeline_name not in source and f'"{entry.group_id}"' not in source


def test_names_are_unique():
    assert len({p.pipeline_name for p in PIPELINES.values()}) == len(PIPELINES)
    assert len({p.group_id for p in PIPELINES.values()}) == len(PIPELINES)


def test_unknown_job_names_the_known_ones():
    with pytest.raises(KeyError, match="engagement_features"):
        pipeline("engagement_feature")
    assert pipeline("exploration.py").pipeline_name == "fyp-exploration"
    with pytest.raises(StackError, match="available"):
        job_path("not_a_job")
