"""Per-iteration bookkeeping of a fit: history, log lines, checkpoint files, the user's callback.

Rank 0 logs through ``logging.getLogger("crk.optimize")`` (configure it, e.g.
``logging.basicConfig(level=logging.INFO)``, to see the lines); other ranks never log or print.
"""
import dataclasses
import logging
import math
import os
import time

from ..parallel.collective import collective_section, max_over_ranks
from . import restart
from .result import Evaluations, IterationRecord

logger = logging.getLogger("crk.optimize")


class Progress:
    """History, timing, logging, checkpointing and callbacks of one fit. Collective methods.

    ``objective``: the :class:`~crk.optimize.objective.Objective` whose counts are reported;
    ``resumed``: the :class:`~crk.optimize.restart.FitState` the fit continues from, or None;
    ``wrap(values)``: the user-facing controls for plain per-control values.
    """

    def __init__(self, comm, optimizer, objective, layout, wrap, checkpoint_file=None,
                 callback=None, quiet=False, log_level=logging.INFO, resumed=None):
        self.comm = comm
        self.optimizer = optimizer
        self.objective = objective
        self.layout = layout
        self.wrap = wrap
        self.checkpoint_file = None if checkpoint_file is None else os.fspath(checkpoint_file)
        self.callback = callback
        self.log = comm.rank == 0 and not quiet
        self.log_level = log_level
        self.started = time.perf_counter()
        self.resumed = resumed
        self.base_seconds = resumed.seconds if resumed else 0.0
        self.base_counts = resumed.evaluations if resumed else Evaluations()
        self.history = list(resumed.history) if resumed else []
        self.iterations = resumed.iterations if resumed else 0
        self.optimizer_state = dict(resumed.optimizer_state) if resumed else {}

    # -- figures ----------------------------------------------------------------------------
    def evaluations(self):
        """Evaluation counts so far, resumed runs included."""
        base, now = self.base_counts, self.objective.count
        return Evaluations(**{f.name: getattr(base, f.name) + getattr(now, f.name)
                              for f in dataclasses.fields(Evaluations)})

    def seconds(self):
        return self.base_seconds + time.perf_counter() - self.started

    # -- events -------------------------------------------------------------------------------
    def begin(self, J, gradient_norm, x, values):
        """The starting point: record iteration 0 (a fresh fit) or log where a resumed fit
        continues. ``x`` is the global vector (only needed with a checkpoint file)."""
        if self.resumed is None:
            self._say(f"{self.optimizer}: {self.layout.size} free control entries over "
                      f"{self.comm.size} rank(s)")
            return self._record(0, J, gradient_norm, 0.0, x, values, call_back=False)
        self._say(f"{self.optimizer}: resuming from {self.checkpoint_file!r} at iteration "
                  f"{self.iterations} (J {J:.10e})")
        return False

    def iteration(self, J, gradient_norm, step, x, values):
        """One accepted iteration. Returns True when the callback asks to stop (same answer on
        every rank)."""
        self.iterations += 1
        return self._record(self.iterations, J, gradient_norm, step, x, values)

    def finish(self, result, x):
        """Log the outcome; mark the checkpoint file finished (with the final ``x``)."""
        self._say(result.outcome_line())
        if self.checkpoint_file is not None:
            self._write(x, finished=True, reason=result.reason)

    # -- internals ----------------------------------------------------------------------------
    def _record(self, iteration, J, gradient_norm, step, x, values, call_back=True):
        counts = self.evaluations()
        record = IterationRecord(iteration, float(J), float(gradient_norm), float(step),
                                 counts.forward, counts.adjoint, counts.hessian, self.seconds())
        self.history.append(record)
        if self.log:
            self._say(f"iteration {iteration:4d}  J {record.J:.10e}  |g| "
                      f"{_norm_column(record.gradient_norm)}  step {record.step:.3e}  "
                      f"{counts.describe()}  {record.seconds:.2f} s")
        if self.checkpoint_file is not None:
            self._write(x)
        if not call_back or self.callback is None:
            return False
        with collective_section(comm=self.comm, where="the optimisation callback"):
            stop = self.callback(record, self.wrap(values))
        return bool(max_over_ranks(1 if stop else 0, self.comm))

    def _write(self, x, finished=False, reason=""):
        state = restart.FitState(
            x=x, history=self.history, optimizer=self.optimizer, free=self.layout.free,
            sizes=[n for _, _, _, n, _ in self.layout.entries], iterations=self.iterations,
            evaluations=self.evaluations(), seconds=self.seconds(), finished=finished,
            reason=reason, optimizer_state=self.optimizer_state)
        with collective_section(comm=self.comm, where="writing the checkpoint file"):
            if self.comm.rank == 0:
                restart.write_atomically(self.checkpoint_file, state)

    def _say(self, text):
        if self.log:
            logger.log(self.log_level, text)


def _norm_column(value):
    """``value`` as %.3e, or blanks of the same width when it is not known (NaN: the optimiser
    had not asked for the derivative at that iterate, and crk does not compute one for the
    log)."""
    return " " * len(f"{1.0:.3e}") if math.isnan(value) else f"{value:.3e}"
