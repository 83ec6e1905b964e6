"""Run every benchmark script and write BENCHMARKS.md: each figure next to its anchor (what it is
compared with, measured in the same command) and its target.

Each benchmark runs as its own command (the MPI ones under ``mpirun``), writes its figures as
JSON, and its printed report is kept below the summary table. Figures are medians or best rounds
as each script documents; machines are shared, so the ratios (against a baseline run in the same
command) are the figures to read, not the seconds.

Usage:
    python scripts/bench_all.py [--only tape pointwise ...] [--quick] [--output BENCHMARKS.md]
        [--args "solvers=--case plaplace --n 256" ...]

``--quick`` runs every script at a small size (a smoke run of this script and of the
benchmarks: its figures are not the ones the targets are about).
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = sys.executable
MPIRUN = os.path.join(os.path.dirname(PYTHON), "mpirun")


def _script(name):
    return os.path.join("scripts", name)


# name -> (command, quick arguments replacing the full ones, extractor of the summary rows)
def _tape_rows(d):
    s = d["scalar"]
    us = 1e6 / s["blocks"]
    rows = [("record, scalar chain", f"{s['record_s'] * us:.2f} µs/op", "", "≤ 2.5 µs/op",
             s["record_s"] * us <= 2.5),
            ("adjoint sweep, scalar chain", f"{s['adjoint_sweep_s'] * us:.2f} µs/block", "",
             "≤ 2 µs/block", s["adjoint_sweep_s"] * us <= 2.0),
            ("replay, scalar chain", f"{s['replay_s'] * us:.2f} µs/block", "", "", None)]
    py = d.get("pyadjoint_scalar")
    if py:
        rows.append(("pyadjoint / crk, record", f"{py['record_s'] / s['record_s']:.1f}×",
                     f"pyadjoint {py['record_s'] * 1e6 / py['blocks']:.1f} µs/op", "", None))
        rows.append(("pyadjoint / crk, gradient", f"{py['gradient_s'] / s['gradient_s']:.1f}×",
                     f"pyadjoint {py['gradient_s'] * 1e6 / py['blocks']:.1f} µs/block", "",
                     None))
    a = d["array"]
    rows.append(("record overhead, 10^5-element array chain",
                 f"{100 * a['record_overhead']:+.0f}%", f"bare numpy {a['bare_s']:.3f} s",
                 "≤ +10%", a["record_overhead"] <= 0.10))
    return rows


def _pointwise_rows(d):
    rows = []
    for case, c in d["cases"].items():
        r = c["rows"]
        if "crk_jax" in r and "raw_jax" in r:
            ratio = r["crk_jax"]["cpu_seconds"] / r["raw_jax"]["cpu_seconds"]
            rows.append((f"{case}: crk JAX / raw JAX (CPU time)", f"{ratio:.2f}",
                         f"raw JAX {r['raw_jax']['cpu_seconds']:.3f} s", "≤ 1.3", ratio <= 1.3))
        if "crk_autograd" in r and "tiled" in r:
            ratio = r["crk_autograd"]["cpu_seconds"] / r["tiled"]["cpu_seconds"]
            rows.append((f"{case}: crk Autograd / tiled (CPU time)", f"{ratio:.2f}",
                         f"tiled {r['tiled']['cpu_seconds']:.3f} s",
                         "≤ 1 in 2d" if case == "2d" else "", ratio <= 1.0 if case == "2d"
                         else None))
            if case == "3d":
                mem = r["tiled"]["extra_mb"] / r["crk_autograd"]["extra_mb"]
                rows.append(("3d: tiled / crk Autograd extra memory", f"{mem:.1f}×",
                             f"tiled {r['tiled']['extra_mb']:.0f} MB", "≥ 3×", mem >= 3.0))
        for name, row in r.items():
            if name.startswith("crk_") and name != "crk_jax_point":
                x = row["extra_over_jacobian"]
                rows.append((f"{case}: {name} extra memory / Jacobian", f"{x:.2f}",
                             f"Jacobian {row['jacobian_mb']:.0f} MB", "≤ 2", x <= 2.0))
    return rows


def _checkpointing_rows(d):
    rows = []
    revolve = {r["snapshots"]: r for r in d["rows"] if r["kind"] == "revolve"}
    for r in d["rows"]:
        if r["snapshots"] == 0:
            continue
        s = r["snapshots"]
        rows.append((f"{r['kind']}({s}): measured / expected time",
                     f"{r['measured_over_expected']:.2f}",
                     f"store-all + {r['recompute_ratio']:.2f} × forward", "≤ 1.1",
                     r["measured_over_expected"] <= 1.1))
        limit = (2 * s if r["kind"] == "mixed" else s) + 2
        rows.append((f"{r['kind']}({s}): held states", f"{r['held_states']:.1f}", "",
                     f"≤ {limit}", r["held_states"] <= limit))
        if r["kind"] == "mixed" and s in revolve:
            rows.append((f"mixed({s}): forward steps", f"{r['forward_steps']}",
                         f"Revolve {revolve[s]['forward_steps']}", "< Revolve",
                         r["forward_steps"] < revolve[s]["forward_steps"]))
    return rows


def _distributed_rows(d):
    s, r = d["seconds"], d["ratios"]
    return [(f"x[1:] - x[:-1], {d['size']:.0e} entries on {d['ranks']} ranks",
             f"{s['crk_difference'] * 1e3:.2f} ms ({r['difference']:.1f}×)",
             f"numpy on the piece {s['numpy_difference'] * 1e3:.2f} ms", "one exchange", None),
            ("gradient of Σ (x[1:] - x[:-1])²", f"{r['gradient']:.1f}×",
             f"hand-written adjoint {s['hand_adjoint'] * 1e3:.2f} ms", "", None),
            ("x[n // 2]", f"{s['crk_integer_index'] * 1e3:.2f} ms",
             f"MPI Bcast of a float {s['bcast_one_float'] * 1e3:.3f} ms", "one broadcast",
             None),
            ("crk.gather(x)", f"{r['gather']:.2f}×",
             f"Allgatherv {s['mpi_allgatherv'] * 1e3:.2f} ms", "", None)]


def _optimize_rows(d):
    rows = []
    for r in d["rows"]:
        if r["driver"] != "crk":
            continue
        py = next((p for p in d["rows"] if p["driver"] == "pyadjoint"
                   and p["method"] == r["method"]), None)
        anchor = "" if py is None else \
            f"pyadjoint-style {py['forward_per_point']:.2f} / {py['adjoint_per_point']:.2f}"
        ok = py is None or (r["forward"] + r["adjoint"] <= py["forward"] + py["adjoint"])
        rows.append((f"{r['method']}: forward / adjoint runs per distinct x",
                     f"{r['forward_per_point']:.2f} / {r['adjoint_per_point']:.2f}", anchor,
                     "≤ pyadjoint-style", ok))
    return rows


def _median(x):
    return x["median"] if isinstance(x, dict) else x


def _solvers_rows(d):
    rows = []
    for r in d:
        tag = f"{r['case']} {r['N']}{'²' if r['case'] != 'neohookean' else '³'}, " \
              f"{r['ranks']} rank{'s' if r['ranks'] > 1 else ''}"
        fwd, grad = _median(r["forward_s"]), _median(r["gradient_s"])
        if "ratio_fwd_plus_grad_over_fwd" in r:
            x = r["ratio_fwd_plus_grad_over_fwd"]
            rows.append((f"{tag}: (forward + gradient) / forward", f"{x:.2f}",
                         f"forward {fwd:.3f} s", "≤ 1.2", x <= 1.2))
        if "reference" in r:
            ref = r["reference"]
            for what, ratio, base in (("forward", r["forward_ratio"], ref["forward_s"]),
                                      ("gradient", r["gradient_ratio"], ref["gradient_s"])):
                rows.append((f"{tag}: {what} / DOLFINx", f"{ratio:.2f}",
                             f"DOLFINx {base['median']:.3f} s", "≤ 0.5", ratio <= 0.5))
        if r["case"] == "plaplace" and r["N"] == 512 and r["ranks"] == 1:
            t = r["jacobian_assembly_s"]
            rows.append((f"{tag}: Jacobian assembly", f"{t:.3f} s", "", "≤ 0.5 s", t <= 0.5))
        if r["case"] == "transient":
            x = r["gradient_over_forward"]
            rows.append((f"{tag}: gradient / forward under Revolve", f"{x:.2f}",
                         f"recompute ratio {r['recompute_ratio']:.2f}",
                         f"≤ {r['target']:.2f}", x <= r["target"]))
    by = {(r["case"], r["N"], r["ranks"]): r for r in d}
    for (case, n, ranks), r in sorted(by.items()):
        if case == "plaplace" and ranks == 2 and (case, n, 1) in by:
            speedup = _median(by[case, n, 1]["forward_s"]) / _median(r["forward_s"])
            rows.append((f"plaplace {n}²: speed-up 1 → 2 ranks", f"{speedup:.2f}×", "",
                         "≥ 1.8× on 512²" if n == 512 else "",
                         speedup >= 1.8 if n == 512 else None))
    return rows


BENCHMARKS = {
    "tape": ([PYTHON, _script("bench_tape.py")],
             ["--steps", "2000", "--array-steps", "50", "--array-size", "10000",
              "--repeats", "1"], _tape_rows),
    "pointwise": ([PYTHON, _script("bench_pointwise.py")],
                  ["--points", "2000", "--points-3d", "500", "--points-loop", "20",
                   "--points-loop-3d", "5", "--repeats", "1", "--rows", "tiled",
                   "autograd_loop", "crk_autograd", "crk_jax", "raw_jax"], _pointwise_rows),
    "checkpointing": ([PYTHON, _script("bench_checkpointing.py")],
                      ["--steps", "40", "--size", "1000", "--snapshots", "5",
                       "--pyadjoint-steps", "40"], _checkpointing_rows),
    "distributed": ([MPIRUN, "-n", "2", PYTHON, _script("bench_distributed.py")],
                    ["--size", "10000", "--repeats", "3"], _distributed_rows),
    "optimize": ([PYTHON, _script("bench_optimize.py")],
                 ["--size", "100", "--methods", "L-BFGS-B", "Newton-CG", "--repeats", "1"],
                 _optimize_rows),
    "solvers": ([PYTHON, _script("bench_solvers.py")],
                ["--case", "plaplace", "transient", "--n", "16", "--ranks", "1", "--repeat",
                 "1", "--rounds", "1"], _solvers_rows),
}


def run(name, quick, timeout, extra=()):
    """Run one benchmark (``extra``: more arguments for its script); returns (command line,
    seconds, return code, stdout, figures)."""
    command, quick_args, _ = BENCHMARKS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        cmd = command + (quick_args if quick else []) + list(extra) + ["--json", out]
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                  timeout=timeout)
            code, text = done.returncode, done.stdout + done.stderr[-4000:]
        except subprocess.TimeoutExpired as e:
            code, text = "timeout", (e.stdout or b"").decode(errors="replace")
        seconds = time.perf_counter() - start
        figures = None
        if code == 0 and os.path.exists(out):
            with open(out) as f:
                figures = json.load(f)
    shown = " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in cmd
                     if c != "--json" and c != out)
    return shown, seconds, code, text, figures


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def report(results, quick):
    lines = ["# Benchmarks", "",
             f"Written by `python scripts/bench_all.py{' --quick' if quick else ''}` on "
             f"{datetime.date.today()} ({platform.node()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}). Each figure sits next to its anchor, measured in "
             f"the same command, and its target. Regenerate with the same command.", ""]
    if quick:
        lines += ["**Quick run**: small sizes, a smoke test of the scripts; these figures are "
                  "not the ones the targets are about.", ""]
    for name, (cmd, seconds, code, text, figures, load) in results.items():
        lines += [f"## {name}", "", f"`{cmd}` — {seconds:.0f} s, load average before: {load}",
                  ""]
        if figures is None:
            lines += [f"**Failed** (exit {code}); its output:", "", "```", text[-3000:], "```",
                      ""]
            continue
        lines += ["| figure | measured | anchor (same command) | target | met |",
                  "|---|---|---|---|---|"]
        for figure, value, anchor, target, met in BENCHMARKS[name][2](figures):
            verdict = "" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {figure} | {value} | {anchor} | {target} | {verdict} |")
        lines += ["", "<details><summary>full report</summary>", "", "```", text.rstrip(),
                  "```", "", "</details>", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke run, not the measured figures")
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--timeout", type=float, default=7200.0,
                        help="seconds allowed to each benchmark")
    parser.add_argument("--args", nargs="+", default=[], metavar="NAME=ARGS",
                        help="more arguments for one benchmark's script, e.g. "
                             "solvers='--case plaplace --n 256'")
    args = parser.parse_args()
    extra = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in BENCHMARKS:
            parser.error(f"--args: expected NAME=ARGS with NAME one of {list(BENCHMARKS)}, "
                         f"got {item!r}")
        extra[name] = shlex.split(rest)
    results, failed = {}, []
    for name in args.only:
        load = _load()
        print(f"[bench_all] {name} ...", flush=True)
        cmd, seconds, code, text, figures = run(name, args.quick, args.timeout,
                                                 extra.get(name, ()))
        print(f"[bench_all] {name}: {'ok' if figures is not None else 'FAILED'} "
              f"({seconds:.0f} s)", flush=True)
        results[name] = (cmd, seconds, code, text, figures, load)
        if figures is None:
            failed.append(name)
    with open(args.output, "w") as f:
        f.write(report(results, args.quick))
    print(f"[bench_all] wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
