"""What scipy and TAO fits share: checking the arguments, the free controls, the starting point,
resuming from a checkpoint file, and the result at the end."""
import logging
import math

import numpy as np

from ..overloaded_type import plain_value
from ..parallel.collective import agree
from ..parallel.comm import comms_compatible, resolve_comm
from . import restart
from .objective import Objective, controls_listed
from .progress import Progress
from .result import OptimizationError, OptimizationResult
from .vector import ControlLayout

#: Reasons that are not failures: the fit did what was asked.
GOOD_REASONS = ("converged", "stopped_by_callback")


class FitProblem:
    """One fit of the scalar reduced functional ``rf`` over ``comm``. Collective to construct.

    ``derivative_components``: indices of the controls to optimise (the others stay fixed at
    their current values), or None for all.
    """

    def __init__(self, rf, derivative_components, comm, name, replicated_x):
        self.name = name
        if not (hasattr(rf, "controls") and hasattr(rf, "derivative") and callable(rf)):
            raise TypeError(f"{name}: argument 'rf' must be a crk.ReducedFunctional, got "
                            f"{type(rf).__name__}")
        self.rf = rf
        self.comm = resolve_comm(comm)
        self.controls = list(rf.controls)
        self.free = _free_indices(derivative_components, len(self.controls), name)
        error = None
        for k in self.free:
            c = self.controls[k]
            if c.distributed and not comms_compatible(c.comm, self.comm):
                error = ValueError(
                    f"{name}: control {k} is distributed over a communicator of size "
                    f"{c.comm.size}, which is not the optimiser's communicator 'comm' (size "
                    f"{self.comm.size}); pass comm= the controls' communicator")
                break
        agree(self.comm, error, where=name)
        self.layout = ControlLayout(self.controls, self.free, self.comm)
        self.base = [plain_value(c.tape_value()) for c in self.controls]
        self.objective = Objective(rf, self.comm, replicated_x=replicated_x)
        self.progress = None
        self.resumed = None

    # -- values ------------------------------------------------------------------------------
    def wrap(self, values):
        """The controls as crk values (single or list, as the reduced functional's)."""
        wrapped = [c.wrap(v) for c, v in zip(self.controls, values)]
        return wrapped if controls_listed(self.rf) else wrapped[0]

    def start(self, checkpoint_file, resume, optimizer, callback, quiet, log_level):
        """Resume from ``checkpoint_file`` if asked and present; set up the progress record.

        Returns the starting values (one plain value per control)."""
        if resume is None:
            resume = checkpoint_file is not None
        if resume and checkpoint_file is None:
            agree(self.comm, ValueError(f"{self.name}: resume=True needs a checkpoint_file"))
        state = None
        if checkpoint_file is not None and resume:
            state = restart.load_for_resume(checkpoint_file, self.layout, self.comm)
        self.resumed = state
        self.progress = Progress(self.comm, optimizer, self.objective, self.layout, self.wrap,
                                 checkpoint_file=checkpoint_file, callback=callback, quiet=quiet,
                                 log_level=log_level, resumed=state)
        if state is None:
            return list(self.base)
        return self.layout.scatter(state.x, self.base)

    def result(self, values, J, gradient_norm, reason, message, success, x):
        """The :class:`OptimizationResult` at ``values``; logs and finishes the checkpoint."""
        progress = self.progress
        result = OptimizationResult(
            controls=self.wrap(values), J=float(J), gradient_norm=float(gradient_norm),
            iterations=progress.iterations, evaluations=progress.evaluations(),
            success=bool(success), reason=reason, message=str(message),
            optimizer=progress.optimizer, seconds=progress.seconds(),
            history=list(progress.history),
            resumed_from=None if self.resumed is None else self.resumed.iterations)
        progress.finish(result, x)
        return result


def finish(result, raise_on_failure, name):
    """Raise :class:`OptimizationError` for a failed fit when asked (on every rank alike)."""
    if raise_on_failure and result.reason not in GOOD_REASONS:
        raise OptimizationError(
            f"{name}: the fit did not converge ({result.reason}: {result.message}) after "
            f"{result.iterations} iterations; J = {result.J:.6e}, |g| = "
            f"{result.gradient_norm:.3e}. The error's .result holds the last good controls "
            f"(the tape stands there); pass raise_on_failure=False to get the result instead",
            result)
    return result


def global_norm(x):
    """l2 norm of a replicated vector (the same on every rank)."""
    return float(math.sqrt(float(np.dot(x, x)))) if len(x) else 0.0


def _free_indices(components, n, name):
    if components is None:
        return list(range(n))
    try:
        indices = [int(k) for k in components]
        if any(int(k) != k for k in components):
            raise TypeError
    except (TypeError, ValueError):
        raise TypeError(f"{name}: argument 'derivative_components' must be indices of controls "
                        f"(ints), got {components!r}") from None
    if not indices:
        raise ValueError(f"{name}: argument 'derivative_components' is empty: nothing to "
                         f"optimise")
    bad = [k for k in indices if not 0 <= k < n]
    if bad:
        raise ValueError(f"{name}: derivative_components {bad} out of range: there are {n} "
                         f"controls (indices 0..{n - 1})")
    if len(set(indices)) != len(indices):
        raise ValueError(f"{name}: derivative_components {indices} repeats an index")
    return sorted(indices)


def logging_level(log_level):
    """Accept logging levels as ints or names ("INFO")."""
    if isinstance(log_level, str):
        return logging.getLevelName(log_level.upper())
    return int(log_level)
