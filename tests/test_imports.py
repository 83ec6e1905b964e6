"""The import graphs of crk and solvers have no cycle (module- and function-level imports alike)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


@pytest.mark.parametrize("package", ["crk", "solvers"])
def test_no_import_cycle(package):
    script = os.path.join(ROOT, "scripts", "check_imports.py")
    run = subprocess.run([sys.executable, script, os.path.join(ROOT, package)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("0 import cycle(s)")


def test_the_check_finds_a_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import g\n")     # a lazy import counts
    (package / "c.py").write_text("import pkg.a\n")
    script = os.path.join(ROOT, "scripts", "check_imports.py")
    run = subprocess.run([sys.executable, script, str(package)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    assert "cycle: pkg.a <-> pkg.b" in run.stdout and "1 import cycle(s)" in run.stdout
