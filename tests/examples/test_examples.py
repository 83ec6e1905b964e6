"""Each example script at a tiny size, as a user runs it: ``mpirun -n 2 python examples/NAME.py``
in a subprocess under a timeout, checking the printed recovered-versus-true lines and the files
written. (Not MPI-marked: each test starts its own mpirun.)"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RANKS = 2
TIMEOUT = 600

#: script -> its tiny-size arguments; (label, name, true value, relative tolerance) of the
#: "LABEL: recovered NAME = X (true Y, ...)" lines it must print (true value None: a field's
#: "LABEL: recovered NAME: relative l2 error E" line, E <= tolerance); labels of "LABEL: ... Taylor
#: rate R" lines (R >= 1.8); files it must write
EXAMPLES = {
    "fit_p_laplacian": (["--quick", "--quiet"],
                        [("scipy", "p", 3.0, 0.01), ("scipy", "k", 0.5, 0.02),
                         ("tao", "p", 3.0, 0.01), ("tao", "k", 0.5, 0.02)], [],
                        ["scipy/results.json", "scipy/u_fit.png", "tao/fields.pvts",
                         "tao/history.png"]),
    "seed_snippets": ([], [], ["jax", "autograd", "tensorflow"], []),
    "fit_network_cr": (["--quick", "--quiet"],
                       [("scipy", "mu(4.24)", 0.472157, 0.03)], [],
                       ["mu.png", "fields.pvts", "results.json"]),
    "fit_network_cr_tf": (["--quick", "--quiet"],
                          [("scipy", "mu(4.24)", 0.472157, 0.03)], [],
                          ["mu.png", "fields.pvts", "results.json"]),
    "transient_source_inversion": (["--quick", "--quiet"], [("tao", "f", None, 0.2)], [],
                                   ["f_fit.png", "f_true.png", "fields.pvts", "results.json"]),
    "fit_hyperelastic": (["--quick", "--quiet"],
                         [("scipy", "mu", 1.0, 0.02), ("scipy", "lam", 1.5, 0.02),
                          ("tao", "mu", 1.0, 0.02), ("tao", "lam", 1.5, 0.02)], [],
                         ["scipy/results.json", "scipy/sensors.png", "tao/fields.pvts",
                          "tao/history.png"]),
}


def _mpirun():
    here = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return here if os.path.exists(here) else shutil.which("mpirun")


def run_example(name, args, output):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS="1",
               TF_NUM_INTEROP_THREADS="1", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")
    command = [_mpirun(), "-n", str(RANKS), sys.executable,
               os.path.join(ROOT, "examples", f"{name}.py"), *args, "--output", output]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          cwd=ROOT)
    assert done.returncode == 0, (f"{' '.join(command)} failed ({done.returncode}):\n"
                                  f"{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example(name, tmp_path):
    pytest.importorskip("petsc4py")
    args, expected, rates, files = EXAMPLES[name]
    out = run_example(name, args, str(tmp_path))
    assert f"{name} passed" in out
    for label, control, true, tolerance in expected:
        if true is None:
            match = re.search(rf"^{label}: recovered {re.escape(control)}: relative l2 error "
                              rf"(\S+) ", out, re.MULTILINE)
            assert match and float(match.group(1)) <= tolerance, \
                f"{label}: no {control} error <= {tolerance} in:\n{out}"
            continue
        match = re.search(rf"^{label}: recovered {re.escape(control)} = (\S+) \(true (\S+), "
                          rf"error", out, re.MULTILINE)
        assert match, f"no line '{label}: recovered {control} = ...' in:\n{out}"
        value, printed_true = float(match.group(1)), float(match.group(2))
        assert printed_true == true
        assert abs(value - true) <= tolerance * abs(true), match.group(0)
    for label in rates:
        match = re.search(rf"^{label}: .*Taylor rate (\S+)$", out, re.MULTILINE)
        assert match and float(match.group(1)) >= 1.8, f"{label}: no Taylor rate >= 1.8 in {out}"
    for f in files:
        assert os.path.getsize(tmp_path / f) > 0, f
