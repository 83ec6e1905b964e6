"""Benchmark of batched per-point Jacobians of point maps, against tiling and point loops.

Two cases, each differentiated with respect to its one pointwise vector/tensor argument:

* 2d: the p-Laplacian flux of CRIKit's example ``f(u, g, p) = (|g|^2 + 1e-12)^((p-2)/2) g``
  with u (n,), g (n, 2), p = 3 a parameter; Jacobian df/dg of shape (n, 2, 2), default n = 10^6.
* 3d: a compressible Neo-Hookean first Piola-Kirchhoff stress
  ``P(F) = mu (F - F^-T) + lam log(J) F^-T``, J = det F, with F (n, 3, 3) near the identity and
  mu = 1, lam = 2 parameters, written out with the cofactor matrix and determinant so all three
  backends run the same formulas; Jacobian dP/dF of shape (n, 3, 3, 3, 3) (9 outputs per
  point), default n = 2×10^5 (the tiled approach then peaks at about 1.5 GB).

Rows (all float64):
  tiled          tiling: copy the input once per output component and pull the
                 identity basis back in ONE autograd vjp (implemented here, for comparison only)
  autograd loop  ``autograd.jacobian`` point by point on --points-loop(-3d) points (at most 3 repeats), time
                 extrapolated linearly to the case's n (memory is as measured on those points)
  crk Autograd   ``crk.cr.autograd`` point map, ``jacobians`` (batched)
  crk JAX        ``crk.cr.jax`` point map, ``jacobians``, the function written for a batch
                 (default ``batched=True``, as CRIKit's example writes it)
  crk JAX, batched=False   the same map declared per point (crk vmaps it; diagnostic row)
  raw JAX        ``jax.jit(jax.vmap(jax.jacfwd(f)))`` under ``jax.enable_x64(True)``, called on
                 the same numpy arrays (host transfer and conversion back to numpy included)
  crk TF         ``crk.cr.tensorflow`` point map, ``jacobians``

Before timing, every row is checked against the autograd loop on a few points (1e-10 relative).
Each row then runs in two fresh worker processes with one thread per library: a timing worker
(first call, which for JAX/TF includes tracing and compilation, then the median wall and CPU
time of --repeats calls; "compile" is first call minus median; time ratios are given for both,
CPU time being the steadier one when other jobs share the machine) and a memory worker, which
measures ``ru_maxrss - RSS before`` for the first call and, after resetting the high-water
mark, for a second call (the "steady" figure used for the ratios; see scripts/_bench_util.py).
The default run takes about 5 minutes on 2 cores.

Usage:
    python scripts/bench_pointwise.py [--points 1000000] [--points-3d 200000]
        [--points-loop 10000] [--points-loop-3d 500] [--repeats 7] [--cases 2d 3d]
        [--rows ...] [--json FILE]
"""
import argparse
import gc
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_util as bu  # noqa: E402

ROWS = ("tiled", "autograd_loop", "crk_autograd", "crk_jax", "crk_jax_point", "raw_jax", "crk_tf")
ROW_TITLES = {
    "tiled": "tiled autograd",
    "autograd_loop": "autograd.jacobian per point",
    "crk_autograd": "crk Autograd jacobians",
    "crk_jax": "crk JAX jacobians",
    "crk_jax_point": "crk JAX jacobians, batched=False",
    "raw_jax": "raw jit(vmap(jacfwd))",
    "crk_tf": "crk TF jacobians",
}
CRK_ROWS = ("crk_autograd", "crk_jax", "crk_jax_point", "crk_tf")
COMPILED_ROWS = ("crk_jax", "crk_jax_point", "raw_jax", "crk_tf")


# -- the two constitutive relations, once for numpy-like modules and once for TensorFlow ---------
def flux(np_, u, g, p):
    """Seed p-Laplacian flux on any leading (batch) axes: g (..., 2) -> (..., 2)."""
    mu = (np_.sum(g * g, axis=-1) + 1.e-12) ** ((p - 2.) / 2.)
    return np_.reshape(mu, np_.shape(mu) + (1,)) * g


def _cofactors(a, b, c, d, e, f, g, h, i):
    """Cofactor matrix (row-major, 9 entries) of [[a, b, c], [d, e, f], [g, h, i]]."""
    return (e * i - f * h, f * g - d * i, d * h - e * g,
            c * h - b * i, a * i - c * g, b * g - a * h,
            b * f - c * e, c * d - a * f, a * e - b * d)


def _neo_hookean(log, entries, mu, lam):
    """The 9 entries of P = mu F + (lam log J - mu) / J cof(F), i.e. mu (F - F^-T) + lam log J F^-T."""
    cof = _cofactors(*entries)
    det = entries[0] * cof[0] + entries[1] * cof[1] + entries[2] * cof[2]
    scale = (lam * log(det) - mu) / det
    return [mu * fk + scale * ck for fk, ck in zip(entries, cof)]


def stress(np_, F, mu, lam):
    """Neo-Hookean first Piola-Kirchhoff stress on any leading axes: F (..., 3, 3) -> (..., 3, 3).

    Split into the 9 entries along one axis (autograd's split/concatenate derivatives are single
    array operations, unlike 9 separate index operations)."""
    shape = np_.shape(F)
    entries = np_.split(np_.reshape(F, shape[:-2] + (9,)), 9, axis=-1)
    out = _neo_hookean(np_.log, entries, mu, lam)
    return np_.reshape(np_.concatenate(out, axis=-1), shape)


def flux_tf(u, g, p):
    import tensorflow as tf
    mu = (tf.reduce_sum(g * g, axis=-1) + 1.e-12) ** ((p - 2.) / 2.)
    return mu[:, None] * g


def stress_tf(F, mu, lam):
    import tensorflow as tf
    entries = tf.split(tf.reshape(F, [-1, 9]), 9, axis=-1)
    out = _neo_hookean(tf.math.log, entries, mu, lam)
    return tf.reshape(tf.concat(out, axis=-1), [-1, 3, 3])


class Case:
    """One benchmark case: data, shapes and which argument is differentiated."""

    def __init__(self, name, fn, fn_tf, in_shapes, out_shape, argnum):
        self.name, self.fn, self.fn_tf = name, fn, fn_tf
        self.in_shapes, self.out_shape, self.argnum = in_shapes, out_shape, argnum
        self.pointwise = tuple(bool(s) and s[0] == -1 for s in in_shapes)
        self.out_point = tuple(out_shape[1:])
        self.in_point = tuple(in_shapes[argnum][1:])

    def data(self, n, seed=0):
        rng = np.random.default_rng(seed)
        if self.name == "2d":
            return (rng.standard_normal(n), rng.standard_normal((n, 2)), 3.0)
        F = np.eye(3) + 0.05 * rng.standard_normal((n, 3, 3))   # det F > 0 for sure
        return (F, 1.0, 2.0)

    def jacobian_bytes(self, n):
        return 8 * n * int(np.prod(self.out_point)) * int(np.prod(self.in_point))


CASES = {
    "2d": Case("2d", flux, flux_tf, ((-1,), (-1, 2), ()), (-1, 2), argnum=1),
    "3d": Case("3d", stress, stress_tf, ((-1, 3, 3), (), ()), (-1, 3, 3), argnum=0),
}


# -- the rows: each builder returns step() -> Jacobian (n, *out_point, *in_point) ------------------
def build_tiled(case, args):
    """Tiling: the inputs copied m = out_size times, one vjp of the identity basis."""
    import autograd.numpy as anp
    from autograd.core import make_vjp
    k, x = case.argnum, args[case.argnum]
    n, m = x.shape[0], int(np.prod(case.out_point))

    def step():
        # every pointwise argument is tiled (a function of one broadcastable input)
        tiled = [np.tile(a, (m,) + (1,) * np.ndim(a)) if pw else a
                 for a, pw in zip(args, case.pointwise)]

        def fun(x_rep):
            full = list(tiled)
            full[k] = x_rep
            return case.fn(anp, *full)
        pullback, _ = make_vjp(fun, tiled[k])
        basis = np.zeros((m, n, m))
        basis[np.arange(m), :, np.arange(m)] = 1.0         # copy c: e_c at every point
        grad = pullback(basis.reshape((m, n) + case.out_point))   # (m, n, *in)
        jac = np.moveaxis(grad.reshape(m, n, -1), 0, 1)           # (n, m, in) contiguous copy
        return np.ascontiguousarray(jac).reshape((n,) + case.out_point + case.in_point)
    return step


def build_autograd_loop(case, args):
    """``autograd.jacobian`` on one point at a time (the point kept as a batch of 1)."""
    import autograd
    import autograd.numpy as anp
    k = case.argnum
    n = args[k].shape[0]
    jac_fn = autograd.jacobian(lambda *a: case.fn(anp, *a), argnum=k)
    shape = case.out_point + case.in_point

    def step():
        jac = np.empty((n,) + shape)
        for i in range(n):
            point = [a[i:i + 1] if pw else a for a, pw in zip(args, case.pointwise)]
            jac[i] = jac_fn(*point).reshape(shape)
        return jac
    return step


def build_crk_autograd(case, args):
    import autograd.numpy as anp
    from crk.cr.autograd import AutogradPointMap
    pm = AutogradPointMap(lambda *a: case.fn(anp, *a), case.in_shapes, case.out_shape,
                          name=f"{case.name} autograd")
    return lambda: pm.jacobians(*args, argnums=(case.argnum,))[0][0]


def build_crk_jax(case, args, batched=True):
    """``batched``: the function as written for the batch (the default, as CRIKit's example
    writes it), or declared per point (``batched=False``: crk vmaps it, like the raw row)."""
    import jax.numpy as jnp
    from crk.cr.jax import JaxPointMap
    pm = JaxPointMap(lambda *a: case.fn(jnp, *a), case.in_shapes, case.out_shape,
                     name=f"{case.name} jax", batched=batched)
    return lambda: pm.jacobians(*args, argnums=(case.argnum,))[0][0]


def build_raw_jax(case, args):
    import jax
    import jax.numpy as jnp
    in_axes = tuple(0 if pw else None for pw in case.pointwise)
    program = jax.jit(jax.vmap(jax.jacfwd(lambda *a: case.fn(jnp, *a), argnums=case.argnum),
                               in_axes=in_axes))

    def step():
        with jax.enable_x64(True):
            return np.asarray(program(*args))
    return step


def build_crk_tf(case, args):
    import tensorflow as tf
    from crk.cr.tensorflow import TFPointMap
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    pm = TFPointMap(case.fn_tf, case.in_shapes, case.out_shape, name=f"{case.name} tf")
    return lambda: pm.jacobians(*args, argnums=(case.argnum,))[0][0]


BUILDERS = {"tiled": build_tiled, "autograd_loop": build_autograd_loop,
            "crk_autograd": build_crk_autograd, "crk_jax": build_crk_jax,
            "crk_jax_point": lambda case, args: build_crk_jax(case, args, batched=False),
            "raw_jax": build_raw_jax, "crk_tf": build_crk_tf}


# -- worker processes ------------------------------------------------------------------------------
def worker(task):
    case = CASES[task["case"]]
    kind = task["kind"]
    if kind == "verify":
        return verify(case, task["n"], task["rows"])
    args = case.data(task["n"])
    step = BUILDERS[task["row"]](case, args)
    gc.collect()
    if kind == "time":
        t = time.perf_counter()
        jac = step()
        first = time.perf_counter() - t
        expected = (task["n"],) + case.out_point + case.in_point
        assert jac.shape == expected, (jac.shape, expected)
        del jac
        wall, cpu = bu.time_runs(step, task["repeats"])
        return {"first_s": first, "times_s": wall, "median_s": bu.median(wall),
                "cpu_times_s": cpu, "median_cpu_s": bu.median(cpu)}
    # memory: first call (with compilation), then a second one; each resets the peak first
    jac, first = bu.measure_step(step)
    jac_bytes = int(jac.nbytes)
    del jac
    gc.collect()
    steady = bu.measure_step(step)[1] if first["reset"] else None
    return {"first": first, "steady": steady, "jacobian_bytes": jac_bytes}


def verify(case, n, rows):
    """Max relative difference of every row's Jacobian from the autograd loop on n points."""
    args = case.data(n, seed=1)
    reference = build_autograd_loop(case, args)()
    scale = float(np.max(np.abs(reference)))
    errors = {}
    for row in rows:
        jac = BUILDERS[row](case, args)()
        if jac.shape != reference.shape:
            errors[row] = f"shape {jac.shape} != {reference.shape}"
        else:
            errors[row] = float(np.max(np.abs(jac - reference)) / scale)
    return {"errors": errors, "scale": scale}


# -- driver ------------------------------------------------------------------------------------------
def mb(nbytes):
    return nbytes / 1e6


def run_case(case, n, n_loop, repeats, rows, script):
    print(f"[{case.name}] verifying {len(rows)} rows on 40 points ...", file=sys.stderr, flush=True)
    check = bu.run_worker(script, {"kind": "verify", "case": case.name, "n": 40, "rows": rows})
    bad = {r: e for r, e in check["errors"].items() if isinstance(e, str) or e > 1e-10}
    if bad:
        raise SystemExit(f"[{case.name}] Jacobians disagree with the autograd loop: {bad}")
    results = {"points": n, "verify_rel_errors": check["errors"], "rows": {}}
    for row in rows:
        n_row = n_loop if row == "autograd_loop" else n
        # the loop is slow and steady: fewer repeats
        task = {"case": case.name, "row": row, "n": n_row,
                "repeats": min(repeats, 3) if row == "autograd_loop" else repeats}
        print(f"[{case.name}] {row}: n = {n_row} ...", file=sys.stderr, flush=True)
        timing = bu.run_worker(script, dict(task, kind="time"))
        memory = bu.run_worker(script, dict(task, kind="memory"), memory=True)
        factor = n / n_row
        entry = {"points_measured": n_row, "time_factor": factor,
                 "seconds": timing["median_s"] * factor,
                 "cpu_seconds": timing["median_cpu_s"] * factor,
                 "cpu_times_s": timing["cpu_times_s"],
                 "first_call_s": timing["first_s"] * factor,
                 "times_s": timing["times_s"], "memory": memory}
        if row in COMPILED_ROWS:
            entry["compile_s"] = timing["first_s"] - timing["median_s"]
        steady = memory["steady"] or memory["first"]
        entry["peak_rss_mb"] = mb(steady["peak"])
        entry["extra_mb"] = mb(steady["extra"])
        entry["first_call_extra_mb"] = mb(memory["first"]["extra"])
        entry["jacobian_mb"] = mb(memory["jacobian_bytes"])
        entry["extra_over_jacobian"] = steady["extra"] / memory["jacobian_bytes"]
        results["rows"][row] = entry
    results["ratios"] = ratios(case, results["rows"])
    return results


def ratios(case, rows):
    """name -> (value, target); time ratios as (wall, CPU) pairs."""
    out = {}

    def have(*names):
        return all(r in rows for r in names)

    def time_ratio(a, b):
        return (rows[a]["seconds"] / rows[b]["seconds"],
                rows[a]["cpu_seconds"] / rows[b]["cpu_seconds"])
    if have("crk_jax", "raw_jax"):
        out["crk JAX / raw JAX time"] = (time_ratio("crk_jax", "raw_jax"), "<= 1.3")
    if have("crk_jax_point", "raw_jax"):
        out["crk JAX batched=False / raw JAX time"] = (time_ratio("crk_jax_point", "raw_jax"),
                                                       "(diagnostic)")
    if have("crk_autograd", "tiled"):
        out["crk Autograd / tiled time"] = (time_ratio("crk_autograd", "tiled"),
                                            "<= 1.0" if case.name == "2d" else "(no target)")
        out["tiled / crk Autograd extra memory"] = (
            rows["tiled"]["extra_mb"] / rows["crk_autograd"]["extra_mb"],
            ">= 3" if case.name == "3d" else "(no target)")
    for r in CRK_ROWS:
        if r in rows:
            out[f"{ROW_TITLES[r]}: extra memory / Jacobian"] = (rows[r]["extra_over_jacobian"],
                                                               "<= 2")
    return out


def table(case, results):
    n = results["points"]
    lines = [f"### {case.name}: n = {n:,} points, Jacobian {(n,) + case.out_point + case.in_point}"
             f" = {mb(case.jacobian_bytes(n)):.1f} MB", "",
             "| row | points run | time (s) | CPU (s) | 1st call (s) | compile (s) | peak RSS (MB) "
             "| Jacobian-step extra (MB) | 1st-call extra (MB) | Jacobian (MB) | extra / Jacobian |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, e in results["rows"].items():
        pts = f"{e['points_measured']:,}"
        if e["time_factor"] != 1:
            pts += f" (time ×{e['time_factor']:g} extrapolated; memory as run)"
        compile_s = f"{e['compile_s']:.2f}" if "compile_s" in e else "–"
        lines.append(f"| {ROW_TITLES[row]} | {pts} | {e['seconds']:.3f} | {e['cpu_seconds']:.3f}"
                     f" | {e['first_call_s']:.3f}"
                     f" | {compile_s} | {e['peak_rss_mb']:.0f} | {e['extra_mb']:.1f}"
                     f" | {e['first_call_extra_mb']:.1f} | {e['jacobian_mb']:.1f}"
                     f" | {e['extra_over_jacobian']:.2f} |")
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for name, (value, target) in results["ratios"].items():
        shown = (f"{value[0]:.2f} wall, {value[1]:.2f} CPU" if isinstance(value, (tuple, list))
                 else f"{value:.2f}")
        lines.append(f"| {name} | {shown} | {target} |")
    errors = ", ".join(f"{r} {e:.1e}" for r, e in results["verify_rel_errors"].items())
    lines += ["", f"Max relative difference from the autograd loop on 40 points: {errors}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10**6, help="points in the 2d case")
    parser.add_argument("--points-3d", type=int, default=2 * 10**5, help="points in the 3d case")
    parser.add_argument("--points-loop", type=int, default=10**4,
                        help="points of the per-point autograd loop, 2d case")
    parser.add_argument("--points-loop-3d", type=int, default=500,
                        help="points of the per-point autograd loop, 3d case (~16 ms a point)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        bu.emit(worker(json.loads(opts.worker)))
        return
    script = os.path.abspath(__file__)
    start = time.perf_counter()
    report = {"settings": {"repeats": opts.repeats, "env": bu.SINGLE_THREAD_ENV,
                           "load_average_start": os.getloadavg()}, "cases": {}}
    sizes = {"2d": (opts.points, opts.points_loop),
             "3d": (opts.points_3d, opts.points_loop_3d)}
    for name in opts.cases:
        n, n_loop = sizes[name]
        results = run_case(CASES[name], n, min(n_loop, n), opts.repeats, list(opts.rows), script)
        report["cases"][name] = results
        print(table(CASES[name], results) + "\n", flush=True)
        report["settings"]["load_average_end"] = os.getloadavg()
        report["settings"]["wall_s"] = time.perf_counter() - start
        if opts.json:                       # after each case, so a later failure keeps it
            with open(opts.json, "w") as f:
                json.dump(report, f, indent=1)
    print(f"(total {report['settings']['wall_s']:.0f} s; load average "
          f"{report['settings']['load_average_start'][0]:.2f} at start, "
          f"{report['settings']['load_average_end'][0]:.2f} at end)")


if __name__ == "__main__":
    main()
