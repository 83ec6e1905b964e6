"""scripts/bench_all.py: runs benchmark scripts in their own commands and writes the summary
(a quick run of two cheap benchmarks; the figures themselves are the benchmarks' business)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_run_writes_each_figure_with_its_anchor_and_target(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_all.py"),
                           "--quick", "--only", "optimize", "checkpointing",
                           "--output", str(output)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    text = output.read_text()
    assert "**Quick run**" in text
    assert "## optimize" in text and "## checkpointing" in text
    # the optimiser's evaluation count per distinct x, against the pyadjoint-style driver
    assert "| L-BFGS-B: forward / adjoint runs per distinct x | 1.00 / 1.00 |" in text
    assert "| mixed(5): forward steps |" in text
    assert "scripts/bench_optimize.py --size 100" in text
    assert "**Failed**" not in text
