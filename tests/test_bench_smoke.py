"""The benchmarks run and report: tiny sizes, no timing assertions (this machine is shared)."""

import math

import torch

from bench import bench_engine
from bench.__main__ import modules

# the first torch.func call of a process imports for about 1.5 s; the rest takes a fraction of that
TINY = bench_engine.Sizes(samples=20, loop_samples=2, one_sample_calls=1, batch_calls=1,
                          rounds=1)


def test_ratios_are_finite_and_positive():
    ratios = bench_engine.results(TINY)
    assert len(ratios) == 3
    for name, ratio, target in ratios:
        assert math.isfinite(ratio) and ratio > 0, name
        assert target > 0, name


def test_report_states_every_target_and_verdict(capsys):
    threads = torch.get_num_threads()
    bench_engine.main(TINY)
    out = capsys.readouterr().out
    assert torch.get_num_threads() == threads, "the benchmark must give back torch's threads"
    assert "torch.set_num_threads(1)" in out
    assert "scaled by 10 to 20" in out
    for line in ("one sample forward+backward: scratch vs torch",
                 "per-sample gradients of 20: scratch vs torch vmap",
                 "per-sample gradients of 20: torch vmap vs backward() loop"):
        assert line in out
    assert out.count("vs target 5x") == 2
    assert out.count("vs target 10x") == 1
    assert out.count("PASS") + out.count("MISS") == 3


def test_python_m_bench_finds_the_engine_benchmark():
    assert "bench.bench_engine" in modules()


def test_training_benchmark_runs_and_reports(capsys):
    from bench import bench_training

    bench_training.main(bench_training.Sizes(plain_steps=20, lockstep_steps=20, settle_steps=5,
                                             rounds=1))
    out = capsys.readouterr().out
    assert "headless lockstep SGD vs the plain loop" in out and "vs target 3x" in out
    assert "µs per step" in out


def test_window_benchmark_runs_and_reports(capsys, qapp):
    from bench import bench_window

    bench_window.main(bench_window.Sizes(window_steps=300, memory_steps=400, memory_early=200))
    out = capsys.readouterr().out
    assert "window with live plots vs headless throughput" in out and "vs target 0.95x" in out
    assert "longest gap of a 10 ms QTimer" in out and "memory of a run in the window:" in out
    assert "longest gap of the event loop over that run's steps 200 to 400" in out
    # beside each measured run: the machine's own gaps, and what the window's thread did
    assert out.count("an idle process's longest 10 ms wait meanwhile") == 2
    assert out.count("in the longest the window's thread ran") == 2
    assert {"bench.bench_training", "bench.bench_window"} <= set(modules())


def test_check_benchmark_runs_and_reports(capsys, qapp):
    from bench import bench_check

    bench_check.main(bench_check.Sizes(saves=2, samples=10))
    out = capsys.readouterr().out
    assert "Check my code: 2 saves of my_backprop.py, 10 samples" in out
    assert out.count("vs target ≤ 1 s") == 2
    assert "bench.bench_check" in modules()
