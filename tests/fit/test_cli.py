"""crk-fit (crk.fit.cli, crk.fit.config): argument and config parsing, errors naming the key or
flag, a tiny fit end to end (the same on every rank and equal to the serial fit), its outcome
line printed once, PETSc options passed through, and a resumed fit."""
import csv
import json
import logging
import os

import numpy as np
import pytest

from crk.fit.cli import execute, parse, run, split_petsc_options
from crk.fit.config import ConfigError, load_config, parse_toml

CONFIG = """
problem = "p_laplacian"
optimizer = "tao"
output = "out"
quiet = true
petsc_options = "-plap_snes_rtol 1e-9"

[parameters]
n = 12
loads = [1.0, 5.0]

[scipy]
method = "TNC"
options = { maxiter = 7 }

[tao]
type = "blmvm"
gatol = 1e-7
"""


def test_petsc_options_are_split_from_the_own_arguments():
    own, petsc = split_petsc_options(
        ["p_laplacian", "--n", "8", "-plap_snes_monitor", "--quiet", "-crk_tao_type", "bqnls",
         "-plap_snes_rtol", "-1e-3", "--p-start", "-2.5", "-h"])
    assert own == ["p_laplacian", "--n", "8", "--quiet", "--p-start", "-2.5", "-h"]
    assert petsc == ["-plap_snes_monitor", "-crk_tao_type", "bqnls", "-plap_snes_rtol", "-1e-3"]


def test_config_file_then_quick_then_flags():
    data = parse_toml(CONFIG, "fit.toml")
    config = load_config(data, "fit.toml", {"parameters": {"noise": "0.02"}, "quick": True,
                                            "method": "L-BFGS-B", "max_iterations": 5,
                                            "petsc_options": ["-plap_snes_monitor"]})
    assert config.problem == "p_laplacian" and config.optimizer == "tao"
    assert config.parameters["n"] == 8                      # --quick wins over the file
    assert config.parameters["loads"] == [1.0, 5.0]         # from the file
    assert config.parameters["noise"] == 0.02               # the flag, converted
    assert config.parameters["p_true"] == 3.0               # the default
    assert config.scipy["method"] == "L-BFGS-B" and config.scipy["options"]["maxiter"] == 5
    assert config.scipy["options"]["ftol"] == 1e-13         # the problem's default kept
    assert config.tao["type"] == "blmvm" and config.tao["gatol"] == 1e-7
    assert config.tao["max_iterations"] == 5
    assert config.petsc_options == ["-plap_snes_rtol", "1e-9", "-plap_snes_monitor"]
    assert config.quiet is True and config.resume is False and config.output == "out"


def test_flags_alone(comm):
    config = parse(["p_laplacian", "--optimizer", "tao", "--n", "10", "--loads", "1", "3",
                    "--checkpoint-file", "f.npz", "--resume", "-crk_tao_monitor"], comm)
    assert config.optimizer == "tao" and config.parameters["n"] == 10
    assert config.parameters["loads"] == [1.0, 3.0]
    assert config.checkpoint_file == "f.npz" and config.resume is True
    assert config.petsc_options == ["-crk_tao_monitor"]


@pytest.mark.parametrize("text, flags, message", [
    ('optimiser = "tao"', {}, "fit.toml: optimiser: unknown key; expected one of problem"),
    ('[parameters]\nsize = 3', {}, "fit.toml: parameters.size: problem 'p_laplacian' has no "
                                   "parameter 'size'"),
    ('[parameters]\nn = "big"', {}, "fit.toml: parameters.n: expected an integer, got 'big'"),
    ('[parameters]\nloads = 2.0', {}, "fit.toml: parameters.loads: expected a non-empty list"),
    ('[scipy]\nmethods = "TNC"', {}, "fit.toml: scipy.methods: unknown key"),
    ('[tao]\ngatol = "small"', {}, "fit.toml: tao.gatol: expected a number, got 'small'"),
    ('optimizer = "newton"', {}, "fit.toml: optimizer: expected one of scipy, tao, got "
                                 "'newton'"),
    ('resume = "yes"', {}, "fit.toml: resume: expected true or false, got 'yes'"),
    ('resume = true', {}, "resuming needs a checkpoint file"),
    ('petsc_options = 3', {}, "fit.toml: petsc_options: expected a string of PETSc options"),
    ('parameters = 3', {}, "fit.toml: parameters: expected a table"),
    ('problem = "heat"', {}, "unknown problem 'heat'; crk-fit runs hyperelastic, network_cr, "
                              "network_cr_tf, p_laplacian, transient_source"),
    ('', {"optimizer": "x"}, "--optimizer: expected one of scipy, tao, got 'x'"),
    ('', {"parameters": {"p_true": "three"}}, "--p-true: expected a finite number, got "
                                              "'three'"),
    ('', {"max_iterations": 0}, "--max-iterations: expected a positive integer, got 0"),
    ('n = [', {}, "config file fit.toml: not valid TOML"),
])
def test_errors_name_the_key_or_flag(text, flags, message):
    with pytest.raises(ConfigError) as info:
        data = parse_toml(text, "fit.toml")
        if "problem" not in data:
            data["problem"] = "p_laplacian"
        load_config(data, "fit.toml", flags)
    assert message in str(info.value)


def test_no_problem_is_an_error():
    with pytest.raises(ConfigError, match="no problem given"):
        load_config({}, "fit.toml", {})


@pytest.mark.mpi
def test_bad_arguments_exit_2_on_every_rank_and_print_once(comm, capsys):
    assert run(["p_laplacian", "--n", "many"], comm=comm) == 2
    err = capsys.readouterr().err
    if comm.rank == 0:
        assert "crk-fit: error: --n: expected an integer, got 'many'" in err
    else:
        assert err == ""
    assert run(["p_laplacian", "--no-such-flag"], comm=comm) == 2
    assert run(["--config", "/no/such/fit.toml"], comm=comm) == 2
    err = capsys.readouterr().err
    assert ("--config: cannot read '/no/such/fit.toml'" in err) == (comm.rank == 0)


@pytest.mark.mpi
def test_help(comm, capsys):
    assert run(["p_laplacian", "-h"], comm=comm) == 0
    out = capsys.readouterr().out
    assert ("--p-true" in out and "--checkpoint-file" in out) == (comm.rank == 0)


def _directory(comm, tmp_path):
    return comm.bcast(str(tmp_path), root=0)


def _quick(output, *more):
    return ["p_laplacian", "--quick", "--quiet", "--output", output, *more]


@pytest.mark.mpi
def test_tiny_fit_end_to_end_equals_the_serial_fit(comm, tmp_path, assert_replicated, capsys):
    from mpi4py import MPI
    base = _directory(comm, tmp_path)
    result, compared = execute(parse(_quick(os.path.join(base, "all")), comm), comm)
    assert result.success and result.reason == "converged"
    p, k = (float(c) for c in result.controls)
    assert abs(p - 3.0) < 0.01 * 3.0 and abs(k - 0.5) < 0.02 * 0.5
    assert compared["p"]["value"] == p and compared["p"]["true"] == 3.0
    for value in (p, k, result.J, result.gradient_norm, result.iterations,
                  [r.J for r in result.history]):
        assert_replicated(np.asarray(value, dtype=float))

    # the same fit on this rank alone (equal to the Newton and Krylov solves' tolerances: the
    # multigrid hierarchy depends on the split)
    serial_dir = os.path.join(base, f"self{comm.rank}")
    serial, _ = execute(parse(_quick(serial_dir), MPI.COMM_SELF), MPI.COMM_SELF,
                        say=lambda *a, **k: None)
    assert serial.iterations == result.iterations
    np.testing.assert_allclose([r.J for r in result.history], [r.J for r in serial.history],
                               rtol=1e-7)
    np.testing.assert_allclose([p, k], [float(c) for c in serial.controls], rtol=1e-7)

    out = capsys.readouterr().out
    if comm.rank == 0:
        assert out.splitlines().count(result.outcome_line()) == 1       # --quiet: printed
        assert f"recovered p = {p:.6g} (true 3, error" in out
        directory = os.path.join(base, "all")
        with open(os.path.join(directory, "results.json")) as f:
            data = json.load(f)
        assert data["problem"] == "p_laplacian" and data["ranks"] == comm.size
        assert data["recovered"]["p"]["value"] == p and data["controls"]["k"] == k
        assert data["iterations"] == result.iterations and data["reason"] == "converged"
        assert data["config"]["parameters"]["n"] == 8
        with open(os.path.join(directory, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == result.iterations + 1 and float(rows[-1]["J"]) == result.J
        for name in ("history.png", "u_fit.png", "fields.pvts"):
            assert os.path.getsize(os.path.join(directory, name)) > 0
        with open(os.path.join(directory, "fields.pvts")) as f:
            vtk = f.read()
        assert 'Name="u_fit_1"' in vtk and 'Name="u_observed_0"' in vtk
        assert vtk.count("<Piece ") == comm.size


@pytest.mark.mpi
@pytest.mark.parametrize("log_level", [logging.INFO, logging.WARNING])
def test_outcome_line_once_whether_logged_or_printed(comm, tmp_path, capsys, caplog, log_level):
    """Not quiet: the fit's progress log carries the outcome line when it is shown (INFO),
    else the driver prints it; either way it appears once, on rank 0 only."""
    args = ["p_laplacian", "--quick", "--output", _directory(comm, tmp_path)]
    with caplog.at_level(log_level, logger="crk.optimize"):
        result, _ = execute(parse(args, comm), comm)
    logged = [r.getMessage() for r in caplog.records if r.name == "crk.optimize"]
    printed = capsys.readouterr().out.splitlines()
    outcome = result.outcome_line()
    assert outcome.startswith("scipy:L-BFGS-B: converged after ")
    if comm.rank != 0:
        assert logged == [] and printed == []
    elif log_level == logging.INFO:
        assert logged[-1] == outcome and outcome not in printed
    else:
        assert logged == [] and printed.count(outcome) == 1


@pytest.mark.mpi
def test_petsc_options_reach_the_solvers(comm, tmp_path):
    from solvers.petsc import import_petsc
    PETSc = import_petsc()
    base = _directory(comm, tmp_path)
    try:
        result, _ = execute(parse(_quick(base, "--optimizer", "tao", "-crk_tao_type",
                                         "blmvm"), comm), comm)
    finally:
        PETSc.Options().delValue("crk_tao_type")     # the database outlives this test
    assert result.optimizer == "tao:blmvm" and result.success
    assert abs(float(result.controls[0]) - 3.0) < 0.03


@pytest.mark.mpi
def test_resume_continues_from_the_checkpoint_file(comm, tmp_path, assert_replicated):
    base = _directory(comm, tmp_path)
    checkpoint = os.path.join(base, "fit.npz")
    args = _quick(base, "--optimizer", "tao", "--checkpoint-file", checkpoint)
    assert run(args + ["--max-iterations", "4"], comm=comm) == 1      # stopped, not converged
    assert os.path.exists(checkpoint)
    resumed, _ = execute(parse(args + ["--resume"], comm), comm)
    assert resumed.resumed_from == 4 and resumed.success
    assert resumed.history[0].iteration == 0 and resumed.iterations > 4
    fresh, _ = execute(parse(args, comm), comm)          # without --resume: from the start
    assert fresh.resumed_from is None
    np.testing.assert_allclose([float(c) for c in resumed.controls],
                               [float(c) for c in fresh.controls], rtol=1e-5)
    assert_replicated(np.array([float(c) for c in resumed.controls]))
