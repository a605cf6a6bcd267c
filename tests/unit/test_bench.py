"""bench 3's statistics and chart, from made-up measurements (the benchmark itself needs the engine)."""

from __future__ import annotations

import pytest

from securecart_lab import readbench
from securecart_lab.errors import LabError


def phase(name: str, latencies: list[float], lag: list[float]) -> readbench.Phase:
    return readbench.Phase(name, seconds=2.0, latencies=latencies, orders=7, lag=[(i * 0.25, v) for i, v in enumerate(lag)])


def test_phase_statistics():
    p = phase("primary only", [0.001 * n for n in range(1, 101)], [0.0, 0.002, 0.0005])
    assert p.searches_per_second == 50
    assert p.p50_ms == pytest.approx(50.5)
    assert 95 <= p.p95_ms <= 96
    assert p.max_lag_ms == pytest.approx(2.0)
    assert readbench.Phase("empty", 1.0).p95_ms == 0.0 and readbench.Phase("empty", 1.0).max_lag_ms == 0.0


def test_chart_is_a_png(tmp_path):
    result = readbench.BenchResult("securecart-db", "securecart-db-replica", 8, 4, [
        phase("primary only", [0.02, 0.03, 0.025], [0.0, 0.001]),
        phase("reads on replica", [0.015, 0.02, 0.018], [0.0, 0.0004]),
    ])
    path = readbench.chart(result, tmp_path / "out" / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_non_positive_duration_is_refused(isolated_settings):
    with pytest.raises(LabError, match="--seconds must be positive"):
        readbench.run(isolated_settings, 0)
