"""Benchmark of the tape core: recording, gradient and replay costs.

1. A 20,000-step scalar chain ``y = y*1.0001 + 0.0001*x`` (3 recorded operations per step):
   µs per recorded operation, per adjoint block (sweep alone, and compute_gradient including
   planning), per replayed block. If pyadjoint is importable, the same chain through pyadjoint
   in the same process, and the ratios.
2. A 2,000-step chain on 10^5-element arrays: recording time against the same chain on bare
   numpy arrays (the overhead of the tape), gradient and replay times.

Each figure is the median of --repeats runs. Usage:
    python scripts/bench_tape.py [--steps 20000] [--array-steps 2000] [--repeats 5] [--json FILE]
"""
import argparse
import gc
import json
import statistics
import time

import numpy as np

import crk


def median_time(fn, repeats, setup=None):
    """Median wall time of ``fn()``; ``setup()`` runs before each call, untimed."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _fresh(state):
    """Before each timed recording (crk and pyadjoint alike): free the previous run's tape and
    collect, so the timing neither includes tearing down the last tape nor makes the garbage
    collector traverse it while the new one grows."""
    state.clear()
    gc.collect()


def crk_scalar(steps, repeats):
    out = {}
    state = {}

    def record():
        tape = crk.Tape()
        with tape:
            x = crk.AdjFloat(0.5)
            y = crk.AdjFloat(1.0)
            for _ in range(steps):
                y = y * 1.0001 + 0.0001 * x
        state.update(tape=tape, x=x, y=y)

    out["record_s"] = median_time(record, repeats, setup=lambda: _fresh(state))
    n_ops = len(state["tape"])

    def gradient():
        crk.compute_gradient(state["y"], crk.Control(state["x"]), tape=state["tape"])

    out["gradient_s"] = median_time(gradient, repeats)
    rf = crk.ReducedFunctional(state["y"], crk.Control(state["x"]), tape=state["tape"])
    out["adjoint_sweep_s"] = median_time(rf.derivative, repeats)
    out["replay_s"] = median_time(lambda: rf(0.6), repeats)
    out["derivative"] = float(rf.derivative())
    out["blocks"] = n_ops
    return out


def pyadjoint_scalar(steps, repeats):
    try:
        import pyadjoint
    except ImportError:
        return None
    out = {}
    state = {}

    def record():
        tape = pyadjoint.Tape()
        pyadjoint.set_working_tape(tape)
        pyadjoint.continue_annotation()
        x = pyadjoint.AdjFloat(0.5)
        y = pyadjoint.AdjFloat(1.0)
        for _ in range(steps):
            y = y * 1.0001 + 0.0001 * x
        state.update(tape=tape, x=x, y=y)

    out["record_s"] = median_time(record, repeats, setup=lambda: _fresh(state))
    out["blocks"] = len(state["tape"].get_blocks())

    def gradient():
        pyadjoint.compute_gradient(state["y"], pyadjoint.Control(state["x"]), tape=state["tape"])

    out["gradient_s"] = median_time(gradient, repeats)
    rf = pyadjoint.ReducedFunctional(state["y"], pyadjoint.Control(state["x"]),
                                     tape=state["tape"])
    out["replay_s"] = median_time(lambda: rf(pyadjoint.AdjFloat(0.6)), repeats)
    out["derivative"] = float(pyadjoint.compute_gradient(state["y"],
                                                         pyadjoint.Control(state["x"]),
                                                         tape=state["tape"]))
    pyadjoint.pause_annotation()
    return out


def array_chain(steps, size, repeats):
    out = {}
    x0 = np.linspace(0.0, 1.0, size)

    def bare():
        x = x0.copy()
        y = np.ones(size)
        for _ in range(steps):
            y = y * 1.0001 + 0.0001 * x
        return y

    state = {}

    def record():
        tape = crk.Tape()
        with tape:
            x = crk.array(x0)
            y = crk.array(np.ones(size))
            for _ in range(steps):
                y = y * 1.0001 + 0.0001 * x
            J = crk.sum(y)
        state.update(tape=tape, x=x, J=J)

    # Interleave bare and recorded runs so machine noise hits both alike.
    bare_times, rec_times = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        bare()
        bare_times.append(time.perf_counter() - t)
        state.clear()
        t = time.perf_counter()
        record()
        rec_times.append(time.perf_counter() - t)
    out["bare_s"] = statistics.median(bare_times)
    out["record_s"] = statistics.median(rec_times)
    out["record_overhead"] = out["record_s"] / out["bare_s"] - 1.0
    rf = crk.ReducedFunctional(state["J"], crk.Control(state["x"]), tape=state["tape"])
    out["gradient_s"] = median_time(rf.derivative, max(1, repeats // 2))
    out["replay_s"] = median_time(lambda: rf(x0), max(1, repeats // 2))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--array-steps", type=int, default=2000)
    parser.add_argument("--array-size", type=int, default=10 ** 5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    results = {"scalar": crk_scalar(args.steps, args.repeats)}
    py = pyadjoint_scalar(args.steps, args.repeats)
    if py is not None:
        results["pyadjoint_scalar"] = py
    results["array"] = array_chain(args.array_steps, args.array_size, args.repeats)

    s = results["scalar"]
    us = 1e6 / s["blocks"]
    print(f"scalar chain, {args.steps} steps = {s['blocks']} blocks (median of {args.repeats})")
    print(f"  crk   record {s['record_s'] * us:6.2f} µs/op   adjoint sweep "
          f"{s['adjoint_sweep_s'] * us:6.2f} µs/block   compute_gradient "
          f"{s['gradient_s'] * us:6.2f} µs/block   replay {s['replay_s'] * us:6.2f} µs/block")
    if py is not None:
        pus = 1e6 / py["blocks"]
        print(f"  pyadjoint record {py['record_s'] * pus:6.2f} µs/op   compute_gradient "
              f"{py['gradient_s'] * pus:6.2f} µs/block   replay {py['replay_s'] * pus:6.2f} "
              f"µs/block")
        print(f"  ratio pyadjoint/crk: record {py['record_s'] / s['record_s']:.1f}x   "
              f"gradient {py['gradient_s'] / s['gradient_s']:.1f}x   "
              f"replay {py['replay_s'] / s['replay_s']:.1f}x   "
              f"(same derivative: {abs(py['derivative'] - s['derivative']) < 1e-12})")
    a = results["array"]
    print(f"array chain, {args.array_steps} steps on {args.array_size} elements")
    print(f"  bare numpy {a['bare_s']:.3f} s   crk record {a['record_s']:.3f} s "
          f"(overhead {100 * a['record_overhead']:+.1f}%)   gradient {a['gradient_s']:.3f} s"
          f"   replay {a['replay_s']:.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
