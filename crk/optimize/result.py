"""What a fit returns: :class:`OptimizationResult`, its history and evaluation counts.

The result is a plain record (a dataclass of values), the same for scipy and TAO fits. Writing it
(:meth:`OptimizationResult.to_json`, :meth:`OptimizationResult.history_to_csv`) is collective:
every rank calls, rank 0 writes, and a failure to write raises on every rank.
"""
import csv
import dataclasses
import json
import math
import os

import numpy as np

from ..overloaded_type import plain_value
from ..parallel.collective import collective_section
from ..parallel.comm import resolve_comm


@dataclasses.dataclass
class Evaluations:
    """How often the reduced functional was run: ``forward`` (``rf(m)``), ``adjoint``
    (``rf.derivative()``), ``hessian`` (``rf.hessian(m_dot)``) calls, the number of distinct
    control ``points`` asked for, and how many evaluations ``failed`` (an exception or a
    non-finite J or derivative)."""

    forward: int = 0
    adjoint: int = 0
    hessian: int = 0
    points: int = 0
    failed: int = 0

    def copy(self):
        return dataclasses.replace(self)

    def describe(self):
        """"evaluations F forward, A adjoint, H Hessian"."""
        return (f"evaluations {self.forward} forward, {self.adjoint} adjoint, "
                f"{self.hessian} Hessian")


@dataclasses.dataclass
class IterationRecord:
    """One optimiser iteration: its number (0 is the starting point), J, ``gradient_norm``, the
    l2 norm of the ``step`` (the change of the free controls since the previous record), the
    cumulative evaluation counts, and the wall ``seconds`` since the fit started (summed over
    resumed runs; measured on each rank, so the one figure that may differ between ranks).

    ``gradient_norm``: for scipy the l2 norm of the derivative (projected onto the bounds when
    there are bounds); for TAO the norm TAO reports (see :func:`crk.optimize.tao_minimize`).
    NaN where it is not known: scipy reports an iterate before asking for its derivative
    (trust-ncg and the other trust-region methods ask right after; derivative-free methods
    never), and crk does not compute one just to report it.
    """

    iteration: int
    J: float
    gradient_norm: float
    step: float
    forward: int
    adjoint: int
    hessian: int
    seconds: float

    FIELDS = ("iteration", "J", "gradient_norm", "step", "forward", "adjoint", "hessian",
              "seconds")

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}


@dataclasses.dataclass
class OptimizationResult:
    """The outcome of :func:`crk.optimize.scipy_minimize` or :func:`crk.optimize.tao_minimize`.

    ``controls``: the optimised controls as crk values (this rank's piece of distributed ones), a
    single value or a list as the reduced functional's controls were given. ``J`` and
    ``gradient_norm`` at those controls; ``iterations`` (total, resumed runs included);
    ``evaluations``; ``success``; ``reason`` (``"converged"``, ``"stopped_by_callback"``,
    ``"max_iterations"``, ``"failed_step"`` (an evaluation failed and the optimiser could not
    recover), ``"line_search"`` (TAO's line search failed) or ``"not_converged"``) and
    ``message`` (the optimiser's own words); ``optimizer`` (e.g. ``"scipy:L-BFGS-B"``,
    ``"tao:bqnls"``); ``seconds`` (wall time, summed over resumed runs); ``history`` (one
    :class:`IterationRecord` per iteration); ``resumed_from`` (the iteration a checkpoint
    restart continued from, or None).
    """

    controls: object
    J: float
    gradient_norm: float
    iterations: int
    evaluations: Evaluations
    success: bool
    reason: str
    message: str
    optimizer: str
    seconds: float
    history: list = dataclasses.field(default_factory=list)
    resumed_from: object = None

    def summary(self):
        """A JSON-able dict of everything but the controls (not collective)."""
        return {
            "optimizer": self.optimizer, "success": bool(self.success), "reason": self.reason,
            "message": self.message, "J": _json_float(self.J),
            "gradient_norm": _json_float(self.gradient_norm), "iterations": self.iterations,
            "evaluations": dataclasses.asdict(self.evaluations), "seconds": self.seconds,
            "resumed_from": self.resumed_from,
            "history": [{k: _json_float(v) for k, v in r.as_dict().items()}
                        for r in self.history],
        }

    def outcome_line(self):
        """One line: optimiser, reason, iterations, J, |g|, evaluations, seconds, and the
        optimiser's message when the fit did not succeed."""
        return (f"{self.optimizer}: {self.reason} after {self.iterations} iterations: "
                f"J {self.J:.10e}, |g| {self.gradient_norm:.3e}, {self.evaluations.describe()}, "
                f"{self.seconds:.2f} s" + ("" if self.success else f" ({self.message})"))

    def to_json(self, path, controls=True, comm=None):
        """Write the result to ``path`` as JSON; with ``controls`` also the controls' global
        values (distributed ones gathered in rank order). Collective over ``comm`` (default
        COMM_WORLD): every rank calls, rank 0 writes."""
        comm = resolve_comm(comm)
        data = self.summary()
        if controls:
            data["controls"] = [_global_list(c) for c in _as_list(self.controls)]
        with collective_section(comm=comm, where="OptimizationResult.to_json"):
            if comm.rank == 0:
                with open(os.fspath(path), "w") as f:
                    json.dump(data, f, indent=1)
                    f.write("\n")

    def history_to_csv(self, path, comm=None):
        """Write the history, one row per iteration (:attr:`IterationRecord.FIELDS`), to
        ``path``. Collective over ``comm`` (default COMM_WORLD): every rank calls, rank 0
        writes."""
        comm = resolve_comm(comm)
        with collective_section(comm=comm, where="OptimizationResult.history_to_csv"):
            if comm.rank == 0:
                with open(os.fspath(path), "w", newline="") as f:
                    writer = csv.writer(f)
                    writer.writerow(IterationRecord.FIELDS)
                    for record in self.history:
                        writer.writerow([repr(v) if isinstance(v, float) else v
                                         for v in (getattr(record, k)
                                                   for k in IterationRecord.FIELDS)])


class OptimizationError(RuntimeError):
    """Raised when a fit does not succeed (unless the caller asked not to raise).

    ``result`` holds the :class:`OptimizationResult`: its controls are the last good ones, and
    the tape stands there.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def _as_list(controls):
    return list(controls) if isinstance(controls, (list, tuple)) else [controls]


def _global_list(value):
    """A control's value as a nested list; distributed pieces gathered in rank order
    (collective over the value's communicator)."""
    from ..parallel.collective import allgather
    plain = plain_value(value)
    if getattr(value, "_ad_distributed", False):
        pieces = allgather(np.asarray(plain), value._ad_comm)
        plain = np.concatenate(pieces, axis=0) if np.ndim(plain) else plain
    return np.asarray(plain, dtype=float).tolist() if np.ndim(plain) else float(plain)


def _json_float(value):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
