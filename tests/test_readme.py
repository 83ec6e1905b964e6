"""The README's tutorial runs as written: the code block after ``<!-- tutorial -->`` under
``mpirun -n 2`` (a subprocess with a timeout), printing the recovered parameter once."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tutorial_code():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"<!-- tutorial -->\n```python\n(.*?)\n```", text, re.DOTALL)
    assert match, "README.md has no ```python block after <!-- tutorial -->"
    return match.group(1)


def test_tutorial_runs_under_mpirun(tmp_path):
    pytest.importorskip("petsc4py")
    script = tmp_path / "tutorial.py"
    script.write_text(tutorial_code() + "\n")
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    mpirun = mpirun if os.path.exists(mpirun) else shutil.which("mpirun")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false")
    done = subprocess.run([mpirun, "-n", "2", sys.executable, str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    lines = re.findall(r"^recovered p = (\S+) \(true 3\) in (\d+) iterations$", done.stdout,
                       re.MULTILINE)
    assert len(lines) == 1, done.stdout                 # printed by rank 0 only
    assert abs(float(lines[0][0]) - 3.0) < 1e-4
