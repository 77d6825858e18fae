"""`fyp bench index` on a tiny scale: the seeded data, the config's checks, the engine specs and a whole run."""

from __future__ import annotations

import numpy as np
import pytest

from fyp.index.bench import run_benchmark, summary_rows
from fyp.index.bench_data import ENGINES, BenchConfig, engines_from, make_dataset
from fyp.index.bench_engines import ENGINE_SPECS


def test_dataset_is_seeded_and_normalised():
    config = BenchConfig(n=1_000, dim=8, queries=10, tuning_queries=10, upserts=10)
    a, b = make_dataset(config), make_dataset(config)
    np.testing.assert_array_equal(a.base, b.base)
    np.testing.assert_allclose(np.linalg.norm(a.base, axis=1), 1.0, rtol=1e-5)
    assert (len(a.ids), len(a.queries), len(a.tuning), len(a.extra)) == (1_000, 10, 10, 10)


def test_tiny_benchmark_reports_every_engine():
    config = BenchConfig(
        n=2_000, dim=16, queries=50, tuning_queries=50, upserts=100, engines=("scann", "hnswlib", "exact")
    )
    report = run_benchmark(config)
    assert [r.engine for r in report.results] == ["scann", "hnswlib", "exact"]
    scann = report.results[0]
    assert scann.qps_vs_scann == 1.0 and scann.recall >= 0.8 and scann.upserts_per_s > 0 and scann.cpu_qps > 0
    assert report.results[2].recall == 1.0
    assert len(list(summary_rows(report))) == 3
    assert report.as_json()["config"]["n"] == 2_000


@pytest.mark.parametrize(("changes", "message"), [({"n": 10}, "n must be"), ({"engines": ("annoy",)}, "annoy")])
def test_bench_config_checks_itself(changes, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(**changes)


def test_every_engine_name_has_a_spec():
    assert set(ENGINE_SPECS) == set(ENGINES)


def test_engines_from_the_command_line():
    assert engines_from("scann, hnswlib,") == ("scann", "hnswlib")
    assert engines_from(None) == engines_from("") == ENGINES
