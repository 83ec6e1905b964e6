"""Running a fit problem with scipy or TAO, reporting what it recovered, writing its files.

Every function here is collective over the problem's communicator: every rank calls, rank 0
writes files, and a failure on one rank raises on every rank.
"""
import json
import logging
import math
import os

import numpy as np

from ..parallel.collective import collective_section

logger = logging.getLogger("crk.fit")


def fit(problem, optimizer="scipy", settings=None, checkpoint_file=None, resume=False,
        quiet=False):
    """Fit ``problem`` (an :class:`~crk.fit.example.ExampleProblem`) from its starting controls
    with ``optimizer`` ("scipy" or "tao") and return the
    :class:`~crk.optimize.OptimizationResult` (not raising when the fit fails: see its
    ``reason``). ``settings``: the optimiser's settings (keys of ``problem.scipy`` or
    ``problem.tao``; missing ones from the problem). ``checkpoint_file`` / ``resume``: as for
    :func:`crk.optimize.scipy_minimize`. Afterwards the tape stands at the result's controls.
    Collective."""
    from ..optimize import scipy_minimize, tao_minimize
    if optimizer not in ("scipy", "tao"):
        raise ValueError(f"crk.fit.fit: argument 'optimizer' must be 'scipy' or 'tao', got "
                         f"{optimizer!r}")
    defaults = problem.scipy if optimizer == "scipy" else problem.tao
    s = dict(defaults, **(settings or {}))
    problem.reset()
    common = dict(bounds=problem.bounds, checkpoint_file=checkpoint_file, resume=resume,
                  quiet=quiet, raise_on_failure=False, comm=problem.comm)
    if optimizer == "scipy":
        return scipy_minimize(problem.rf, method=s["method"], tol=s.get("tol"),
                              options=dict(s.get("options") or {}), **common)
    return tao_minimize(problem.rf, tao_type=s["type"], gatol=s.get("gatol"),
                        grtol=s.get("grtol"), gttol=s.get("gttol"),
                        max_iterations=s.get("max_iterations", 1000),
                        options_prefix=s.get("options_prefix", "crk_"),
                        petsc_options=dict(s.get("petsc_options") or {}),
                        riesz_map=problem.riesz_map, **common)


def comparison(problem, result):
    """{name: {"value", "true", "relative_error"}} of what the fit recovered against the truth
    (see :meth:`~crk.fit.example.ExampleProblem.compare`). Collective."""
    return problem.compare(result.controls)


def recovered_lines(problem, result):
    """Lines "recovered p = 2.99764 (true 3, error 0.079%)" (or "recovered f: relative error
    ..." for a field), one per control with a known truth. Collective."""
    lines = []
    for name, c in comparison(problem, result).items():
        if "value" in c:
            lines.append(f"recovered {name} = {c['value']:.6g} (true {c['true']:.6g}, error "
                         f"{100 * c['relative_error']:.3g}%)")
        else:
            lines.append(f"recovered {name}: relative l2 error {c['relative_error']:.3g} "
                         f"against the truth")
    return lines


def report_outcome(result, quiet, say):
    """Print the fit's outcome line (:meth:`~crk.optimize.OptimizationResult.outcome_line`)
    by ``say`` unless the fit's progress log showed it: a fit that is not ``quiet`` logs it on
    rank 0 to the logger ``crk.optimize`` at INFO, when that logger is enabled for INFO."""
    if quiet or not logging.getLogger("crk.optimize").isEnabledFor(logging.INFO):
        say(result.outcome_line())


def write_outputs(problem, result, directory, config=None):
    """Write into ``directory`` (made if missing): ``results.json`` (the result, what was
    recovered against the truth, the problem's parameters, ``config`` when given),
    ``history.csv``, ``history.png`` (J and |g| per iteration) and the problem's fields (VTK)
    and plots (PNG). Returns the paths written. Collective; rank 0 writes the shared files."""
    comm = problem.comm
    with collective_section(comm=comm, where="crk.fit: making the output directory"):
        if comm.rank == 0:
            os.makedirs(directory, exist_ok=True)
    data = {"problem": problem.name, "ranks": comm.size, "parameters": problem.settings,
            "recovered": comparison(problem, result)}
    data.update(result.summary())
    data["controls"] = {name: (v if np.ndim(v) == 0 else None)
                        for name, v in problem.recovered(result.controls).items()}
    if config is not None:
        data["config"] = config
    paths = [os.path.join(directory, n) for n in ("results.json", "history.csv",
                                                  "history.png")]
    with collective_section(comm=comm, where="crk.fit: writing results.json"):
        if comm.rank == 0:
            with open(paths[0], "w") as f:
                json.dump(_jsonable(data), f, indent=1)
                f.write("\n")
    result.history_to_csv(paths[1], comm=comm)
    with collective_section(comm=comm, where="crk.fit: writing history.png"):
        if comm.rank == 0:
            plot_history(paths[2], result, title=f"{problem.name}: {result.optimizer}")
    paths += problem.write_fields(directory, result.controls)
    return paths


def plot_history(path, result, title=None):
    """A PNG of J and |g| per iteration (log scale). Not collective (call on one rank)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    its = [r.iteration for r in result.history]
    for values, label in (([r.J for r in result.history], "J"),
                          ([r.gradient_norm for r in result.history], "|g|")):
        v = np.asarray(values, dtype=float)
        keep = np.isfinite(v) & (v > 0)
        ax.semilogy(np.asarray(its)[keep], v[keep], marker="o", markersize=3, label=label)
    ax.set_xlabel("iteration")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
