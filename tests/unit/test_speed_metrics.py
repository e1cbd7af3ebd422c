"""Speed measurement behaviour (suite.metrics.speed): ratios and bookkeeping, never absolute times."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddspbench.suite.metrics.speed import (
    example_inputs,
    measure_offline,
    measure_speed,
    measure_stream,
    num_threads,
    time_calls,
)
from tests.unit.test_metrics_toys import ToyLinear, ToySleep


def test_time_calls_counts_warmup_apart_and_respects_budget() -> None:
    seen: list[int] = []
    times = time_calls(seen.append, 5, warmup=2)
    assert seen == [0, 1, 0, 1, 2, 3, 4] and times.shape == (5,)
    assert np.all(times >= 0)
    many = time_calls(lambda i: None, 10_000_000, budget_s=0.05, min_calls=3)
    assert 3 <= many.size < 10_000_000


def test_a_model_sleeping_twice_as_long_measures_about_twice_as_slow() -> None:
    # Sleeps long enough that scheduler overshoot on a busy machine (a few ms) cannot hide the 2x.
    f0, loud = example_inputs(64)
    fast, slow = ToySleep(ms_per_frame=0.5), ToySleep(ms_per_frame=1.0)
    # offline: 32 ms vs 64 ms per call
    r_fast = measure_offline(fast, f0, loud, repeats=5, warmup=1)
    r_slow = measure_offline(slow, f0, loud, repeats=5, warmup=1)
    assert 1.5 < r_slow["rtf"] / r_fast["rtf"] < 2.6
    # streaming, 1024-sample buffers (16 frames): 8 ms vs 16 ms per 64 ms buffer
    s_fast = measure_stream(fast, f0, loud, 1024, min_buffers=12)
    s_slow = measure_stream(slow, f0, loud, 1024, min_buffers=12)
    assert 1.5 < s_slow["rtf"] / s_fast["rtf"] < 2.6
    assert s_fast["buffers"] == 12 and s_fast["buffer_ms"] == pytest.approx(64.0)
    assert s_slow["p99_ms"] >= s_slow["median_ms"]


def test_deadline_miss_rate_counts_buffers_slower_than_their_duration() -> None:
    f0, loud = example_inputs(20)
    # 64-sample buffer = 1 frame = 4 ms of audio; 6 ms of sleep misses every deadline
    late = measure_stream(ToySleep(ms_per_frame=6.0), f0, loud, 64, min_buffers=20)
    assert late["miss_rate"] == 1.0 and late["rtf"] > 1.0
    on_time = measure_stream(ToySleep(ms_per_frame=0.2), f0, loud, 64, min_buffers=20)
    assert on_time["miss_rate"] < 0.5 and on_time["rtf"] < 1.0


def test_streaming_carries_state_and_restarts_each_pass() -> None:
    model = ToyLinear(width=4)
    calls: list[int] = []
    orig = model.forward

    def spy(f0, loud, state=None):  # type: ignore[no-untyped-def]
        calls.append(-1 if state is None else state["calls"])
        return orig(f0, loud, state)

    model.forward = spy  # type: ignore[method-assign]
    f0, loud = example_inputs(8)
    measure_stream(model, f0, loud, 128, min_buffers=8, warmup=0)  # 4 buffers per pass, 2 passes
    assert calls == [0, 1, 2, 3, 0, 1, 2, 3]


def test_measure_speed_restores_threads_and_records_provenance() -> None:
    before = torch.get_num_threads()
    out = measure_speed(ToyLinear(width=4), buffers=(64, 128), frames=16, threads=1, repeats=3, min_buffers=16)
    assert torch.get_num_threads() == before
    assert set(out["stream"]) == {64, 128}
    assert out["provenance"]["threads"] == 1
    assert out["provenance"]["torch_version"] == torch.__version__ and out["provenance"]["cpu_model"]
    assert out["offline"]["audio_s"] == pytest.approx(16 * 64 / 16000)
    with num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_bad_buffer_sizes_are_refused() -> None:
    f0, loud = example_inputs(8)
    with pytest.raises(ValueError, match="multiple of 64"):
        measure_stream(ToyLinear(), f0, loud, 100)
    with pytest.raises(ValueError, match="longer than"):
        measure_stream(ToyLinear(), f0, loud, 64 * 16)


def test_num_threads_limits_blas_too() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from ddspbench.suite.metrics.speed import num_threads

    blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS library loaded in this process")
    before = [lib["num_threads"] for lib in blas]
    with num_threads(1):
        libs = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert libs and all(lib["num_threads"] == 1 for lib in libs)
        # scipy's BLAS (the one numba kernels call) is loaded and limited even if nothing had used it yet
        assert any("scipy" in lib["filepath"] for lib in libs) or pytest.importorskip("scipy") is None
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert after[: len(before)] == before
