"""Run every fit example on 1 and 2 ranks and print the README's examples table (markdown).

    python scripts/bench_examples.py [--ranks 1 2] [--only NAME ...] [--quick] [--timeout 1200]

For each example and rank count: the wall time of the whole ``mpirun -n N python
examples/NAME.py`` (imports, JIT compilation, data and outputs included), and from each fit's
results.json the iterations, forward/adjoint/Hessian evaluations, final J and |g|, and what was
recovered against the truth (the 2-rank run's). One thread per process.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: example -> what it recovers (the table's second column)
EXAMPLES = {
    "fit_p_laplacian": "p and the flux scale k of a p-Laplacian (2D, 2 loadings)",
    "fit_network_cr": "a JAX MLP μ(‖∇u‖²; w) of the flux q = μ ∇u (2D, 3 loadings)",
    "fit_network_cr_tf": "the same with a Keras (TensorFlow) MLP, float64 layers",
    "fit_hyperelastic": "Neo-Hookean μ and λ of a 3D block from 9 displacement sensors and the "
                        "reaction force (Hessian actions)",
    "transient_source_inversion": "a source field (10201 unknowns) of a nonlinear heat equation "
                                  "from 3 observation times (Revolve, H1 regularisation, TAO)",
    "seed_snippets": "(CRIKit's JAX / Autograd / TensorFlow snippets, Taylor-tested)",
}


def run(name, ranks, quick, timeout):
    out = tempfile.mkdtemp(prefix=f"bench-{name}-{ranks}-")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS="1",
               TF_NUM_INTEROP_THREADS="1", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    command = [mpirun, "-n", str(ranks), sys.executable,
               os.path.join(ROOT, "examples", f"{name}.py"), "--quiet", "--output", out]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}", file=sys.stderr)
    results = {}
    for path in sorted(glob.glob(os.path.join(out, "**", "results.json"), recursive=True)):
        with open(path) as f:
            results[os.path.relpath(os.path.dirname(path), out)] = json.load(f)
    return seconds, done.returncode, results


def _recovered(data):
    parts = []
    for name, c in data["recovered"].items():
        if "value" in c:
            parts.append(f"{name} {c['value']:.5g} ({c['true']:.5g})")
        else:
            parts.append(f"{name}: rel. L2 error {c['relative_error']:.2g}")
    return "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", choices=sorted(EXAMPLES))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    rows = ["| example | recovers | wall time " + " / ".join(f"{n} rank(s)" for n in args.ranks)
            + " | optimiser: iterations, evaluations (fwd+adj+Hess), final J, abs(g) "
            "| recovered (true) |",
            "| --- | --- | --- | --- | --- |"]
    for name in args.only or EXAMPLES:
        runs = {n: run(name, n, args.quick, args.timeout) for n in args.ranks}
        walls = " / ".join(f"{runs[n][0]:.0f} s" + ("" if runs[n][1] == 0 else " (FAILED)")
                           for n in args.ranks)
        results = runs[args.ranks[-1]][2]
        fits = "<br>".join(
            f"{d['optimizer']}: {d['iterations']} it, {d['evaluations']['forward']}+"
            f"{d['evaluations']['adjoint']}+{d['evaluations']['hessian']}, J {d['J']:.3e}, "
            f"abs(g) {d['gradient_norm']:.1e}" for d in results.values()) or "–"
        recovered = "<br>".join(f"{d['optimizer'].split(':')[0]}: {_recovered(d)}"
                                for d in results.values()) or "–"
        rows.append(f"| `{name}.py` | {EXAMPLES[name]} | {walls} | {fits} | {recovered} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
