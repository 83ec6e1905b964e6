"""Benchmark of crk.optimize's scipy driver: evaluations per distinct control point, against
pyadjoint-style drivers of the same scipy method on the same reduced functional.

The fit: a nonlinear least-squares problem with a distributed field u (--size entries, split
unevenly over the ranks) and a replicated scale θ,

    J = ½ Σ (θ u + u³/10 − d)² + ½ (θ − 1.5)² + 10⁻³ Σ u².

Drivers (each runs scipy.optimize.minimize on the global control vector, in lock-step on every
rank; every call of the reduced functional is counted by a subclass that records it):

* ``crk``: crk.optimize.scipy_minimize (one forward per distinct point; the adjoint only where
  scipy asks for a derivative; a point run again only to apply the Hessian there);
* ``naive``: scipy's separate callables as written in many scripts: ``fun(x) = rf(x)``,
  ``jac(x) = rf(x); rf.derivative()``, ``hessp(x, p) = rf(x); rf.hessian(p)``;
* ``pyadjoint``: pyadjoint's ReducedFunctionalNumPy behaviour: ``jac``/``hessp`` re-run the
  forward only when x differs from the controls of the last forward run.

Columns: iterations, forward / adjoint / Hessian calls, distinct points, forward and adjoint
runs per distinct point, wall seconds, the time ratio against ``crk`` in the same run, and the
driver's own time per distinct point (wall time outside the reduced functional's calls: scipy's
algebra, flattening, caching).

Wall time is the median of --repeats runs after an untimed one (first-use costs excluded).
(scipy's BFGS keeps a dense inverse Hessian with O(n³) updates: give it a small --size.)

Usage: [mpirun -n N] python scripts/bench_optimize.py [--size 2000]
       [--methods L-BFGS-B CG Newton-CG trust-ncg] [--repeats 3] [--json FILE]
"""
import argparse
import json
import time

import numpy as np


def build(comm, size, rf_class):
    import crk
    weights = np.arange(1, comm.size + 1, dtype=float)
    cuts = np.concatenate([[0], np.round(np.cumsum(weights) / weights.sum() * size)]).astype(int)
    mine = slice(cuts[comm.rank], cuts[comm.rank + 1])
    data = np.sin(np.linspace(0.0, 3.0, size))
    u = crk.array(np.zeros(size)[mine], comm=comm, distributed=True)
    theta = crk.AdjFloat(0.5)
    J = (0.5 * crk.sum((theta * u + 0.1 * u ** 3.0 - data[mine]) ** 2.0)
         + 0.5 * (theta - 1.5) ** 2.0 + 1e-3 * crk.sum(u ** 2.0))
    return rf_class(J, [crk.Control(u), crk.Control(theta)])


def counting_class():
    import crk
    from crk.overloaded_type import plain_value

    class Counting(crk.ReducedFunctional):
        """Counts forward, adjoint and Hessian calls and the distinct points run forward."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.forward = self.adjoint = self.hessian_calls = 0
            self.points = set()
            self.seconds = 0.0          # inside the reduced functional's calls

        def __call__(self, values):
            self.forward += 1
            self.points.add(b"".join(np.ascontiguousarray(plain_value(v), dtype=float).tobytes()
                                     for v in values))
            start = time.perf_counter()
            try:
                return super().__call__(values)
            finally:
                self.seconds += time.perf_counter() - start

        def derivative(self, *args, **kwargs):
            self.adjoint += 1
            start = time.perf_counter()
            try:
                return super().derivative(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        def hessian(self, m_dot, options=None):
            self.hessian_calls += 1
            start = time.perf_counter()
            try:
                return super().hessian(m_dot, options)
            finally:
                self.seconds += time.perf_counter() - start
    return Counting


def run_crk(rf, method, options, comm):
    from crk.optimize import scipy_minimize
    result = scipy_minimize(rf, method=method, options=options, quiet=True, comm=comm,
                            raise_on_failure=False)
    return result.iterations, result.J


def run_script_style(rf, method, options, comm, rerun_only_if_moved):
    """scipy with hand-written fun/jac/hessp, as pyadjoint-style scripts do."""
    import scipy.optimize

    from crk.optimize.vector import ControlLayout
    from crk.overloaded_type import plain_value
    controls = list(rf.controls)
    layout = ControlLayout(controls, range(len(controls)), comm)
    base = [plain_value(c.tape_value()) for c in controls]
    last = {"x": None}

    def forward(x):
        last["x"] = np.array(x)
        return float(rf(layout.scatter(x, base)))

    def at(x):
        if not rerun_only_if_moved or last["x"] is None or not np.array_equal(x, last["x"]):
            forward(x)

    def jac(x):
        at(x)
        return layout.gather([plain_value(g) for g in rf.derivative()])

    def hessp(x, p):
        at(x)
        zero = [0.0 if c.scalar else np.zeros(c.shape) for c in controls]
        return layout.gather([plain_value(h) for h in rf.hessian(layout.scatter(p, zero))])

    kwargs = {"hessp": hessp} if method in HESSIAN else {}
    result = scipy.optimize.minimize(forward, layout.gather(base), jac=jac, method=method,
                                     options=options, **kwargs)
    return int(result.nit), float(result.fun)


HESSIAN = ("Newton-CG", "trust-ncg", "trust-krylov")
OPTIONS = {"L-BFGS-B": {"gtol": 1e-9, "ftol": 1e-15}, "CG": {"gtol": 1e-7},
           "BFGS": {"gtol": 1e-7}, "Newton-CG": {"xtol": 1e-10}, "trust-ncg": {"gtol": 1e-8}}


def measure(driver, method, size, comm, repeats):
    """Counts of one run and the median wall time of ``repeats`` runs (after one untimed)."""
    import statistics

    import crk
    times, outside = [], []
    for repeat in range(repeats + 1):
        with crk.Tape(comm=comm):
            rf = build(comm, size, counting_class())
            comm.Barrier()
            start = time.perf_counter()
            if driver == "crk":
                iterations, J = run_crk(rf, method, OPTIONS.get(method), comm)
            else:
                iterations, J = run_script_style(rf, method, OPTIONS.get(method), comm,
                                                 rerun_only_if_moved=driver == "pyadjoint")
            comm.Barrier()
            if repeat:
                times.append(time.perf_counter() - start)
                outside.append(times[-1] - rf.seconds)
    seconds = statistics.median(times)
    return {"driver": driver, "method": method, "iterations": iterations, "J": J,
            "forward": rf.forward, "adjoint": rf.adjoint, "hessian": rf.hessian_calls,
            "points": len(rf.points), "seconds": seconds,
            "driver_ms_per_point": 1e3 * statistics.median(outside) / len(rf.points),
            "forward_per_point": rf.forward / len(rf.points),
            "adjoint_per_point": rf.adjoint / len(rf.points)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--methods", nargs="+", default=["L-BFGS-B", "CG", "Newton-CG",
                                                         "trust-ncg"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rows = []
    for method in args.methods:
        for driver in ("crk", "naive", "pyadjoint"):
            rows.append(measure(driver, method, args.size, comm, args.repeats))
    if comm.rank != 0:
        return
    print(f"least-squares fit: {args.size} field entries + 1 scalar on {comm.size} rank(s)")
    print("| method | driver | iterations | forward | adjoint | Hessian | distinct x | "
          "forward / x | adjoint / x | seconds | time / crk | driver ms / x | final J |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = {}
    for r in rows:
        if r["driver"] == "crk":
            base[r["method"]] = r["seconds"]
        print(f"| {r['method']} | {r['driver']} | {r['iterations']} | {r['forward']} | "
              f"{r['adjoint']} | {r['hessian']} | {r['points']} | "
              f"{r['forward_per_point']:.2f} | {r['adjoint_per_point']:.2f} | "
              f"{r['seconds']:.2f} | {r['seconds'] / base[r['method']]:.2f} | "
              f"{r['driver_ms_per_point']:.2f} | {r['J']:.6e} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "ranks": comm.size, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
