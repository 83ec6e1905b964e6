"""scipy.optimize.minimize on every rank in lock-step.

Every rank runs the same scipy method on the same global vector of the free controls
(:mod:`crk.optimize.vector`): J and the gathered derivative are bit-identical on every rank, so
every rank takes the same steps. scipy's ``fun``, ``jac`` and ``hessp`` go through one
:class:`~crk.optimize.objective.Objective`: a point costs one forward and (when its derivative is
asked for) one adjoint run, however scipy interleaves its calls.

Failed steps: when J or its derivative cannot be computed at a trial point (the reduced
functional raised on some rank, or gave a non-finite value), the method is told in the way it
understands:

* the line searches of L-BFGS-B and TNC cannot take ``inf`` (L-BFGS-B takes it for convergence,
  TNC for a NaN step); they are handed J and the derivative of the iterate they search from
  instead, which fails the sufficient-decrease test, so they backtrack;
* the other methods get J = ``inf`` (their line searches and trust regions reject the step).

A failure at the starting point, in a Hessian action, or one the method cannot recover from ends
the fit with reason ``"failed_step"`` at the last good iterate.
"""
import logging

import numpy as np

from .objective import EvaluationFailure
from .problem import FitProblem, finish, global_norm, logging_level

#: method name -> (uses the derivative, takes bounds, uses Hessian actions)
METHODS = {
    "L-BFGS-B": (True, True, False),
    "BFGS": (True, False, False),
    "CG": (True, False, False),
    "Newton-CG": (True, False, True),
    "TNC": (True, True, False),
    "SLSQP": (True, True, False),
    "trust-constr": (True, True, True),
    "trust-ncg": (True, False, True),
    "trust-krylov": (True, False, True),
    "Nelder-Mead": (False, True, False),
    "Powell": (False, True, False),
}

#: Methods whose line search cannot take an infinite J (see the module docstring).
_SEARCH_FROM_REFERENCE = ("L-BFGS-B", "TNC")


class _Stop(Exception):
    """Ends the scipy run from inside a callback (on every rank alike)."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


def minimize(rf, method="L-BFGS-B", bounds=None, **kwargs):
    """Minimise the reduced functional ``rf`` and return the optimised controls (pyadjoint's
    ``minimize``): a single crk value or a list, as ``rf``'s controls were given.

    Takes the arguments of :func:`scipy_minimize`. Raises :class:`OptimizationError` (with the
    full result as ``.result``) when the fit does not converge. After it, the tape stands at the
    returned controls. Collective.
    """
    return scipy_minimize(rf, method=method, bounds=bounds, **kwargs).controls


def scipy_minimize(rf, method="L-BFGS-B", bounds=None, derivative_components=None, tol=None,
                   options=None, callback=None, checkpoint_file=None, resume=None, quiet=False,
                   log_level=logging.INFO, raise_on_failure=True, comm=None):
    """Minimise the scalar reduced functional ``rf`` with ``scipy.optimize.minimize``, in
    lock-step on every rank of ``comm`` (default COMM_WORLD). Collective.

    ``method``: one of :data:`METHODS` (Newton-CG, trust-constr, trust-ncg and trust-krylov get
    Hessian actions ``rf.hessian``). The fit starts from the controls' current tape values.

    ``bounds``: one ``(lower, upper)`` pair per control (just the pair when there is one
    control), each part None, a number or an array of the control's shape (this rank's piece
    for a distributed control); None entries mean unbounded. The starting point is clipped
    into the bounds. ``derivative_components``: indices of the controls to optimise; the others
    stay at their current values. ``tol``, ``options``: passed to scipy (``options["maxiter"]``
    counts the iterations of all resumed runs together).

    ``callback(record, controls)``: called on every rank after each iteration with the
    :class:`IterationRecord` and the current controls (crk values); returning True stops the fit
    (reason ``"stopped_by_callback"``, not an error).

    ``checkpoint_file``: written (atomically, by rank 0) after every iteration; with ``resume``
    (default True when a checkpoint file is given) an existing file is read and the fit continues
    from its iterate, counters and history (see :mod:`crk.optimize.restart` for what is
    restored). ``quiet`` / ``log_level``: rank 0's per-iteration log lines on the
    ``"crk.optimize"`` logger.

    Returns an :class:`OptimizationResult`; raises :class:`OptimizationError` carrying it when
    the fit ends otherwise than converged or stopped by the callback, unless
    ``raise_on_failure=False``. Either way the tape stands at the result's controls.
    """
    import scipy.optimize

    name = "crk.optimize.scipy_minimize"
    method = _method_name(method, name)
    uses_gradient, takes_bounds, uses_hessian = METHODS[method]
    if bounds is not None and not takes_bounds:
        raise ValueError(f"{name}: method {method!r} does not take bounds; use one of "
                         f"{[m for m, v in METHODS.items() if v[1]]}")
    problem = FitProblem(rf, derivative_components, comm, name, replicated_x=True)
    layout, objective = problem.layout, problem.objective
    lower, upper = layout.bounds(bounds) if bounds is not None else (None, None)
    values = problem.start(checkpoint_file, resume, f"scipy:{method}", callback, quiet,
                           logging_level(log_level))
    x0 = layout.gather(values)
    if lower is not None:
        x0 = np.clip(x0, lower, upper)
    driver = _Driver(problem, method, lower, upper)
    options = dict(options or {})
    if problem.comm.rank != 0 and "disp" in options:
        options["disp"] = False             # only rank 0 speaks
    saved_radius = problem.progress.optimizer_state.get("trust_radius")
    if method == "trust-constr" and saved_radius is not None:
        options.setdefault("initial_tr_radius", saved_radius)
    max_iterations = options.get("maxiter")
    if max_iterations is not None:          # a budget for all runs of a resumed fit together
        options["maxiter"] = max_iterations - problem.progress.iterations

    driver.begin(x0)
    reason = message = None
    result = None
    if max_iterations is not None and options["maxiter"] <= 0:
        reason, message = "max_iterations", "the iteration budget was used by earlier runs"
    else:
        kwargs = {}
        if uses_gradient:
            kwargs["jac"] = driver.jac
        if uses_hessian:
            kwargs["hessp"] = driver.hessp
        if lower is not None:
            kwargs["bounds"] = scipy.optimize.Bounds(lower, upper)
        try:
            result = scipy.optimize.minimize(driver.fun, x0, method=method, tol=tol,
                                             options=options, callback=driver.callback,
                                             **kwargs)
        except _Stop as stop:
            reason, message = stop.reason, stop.message
    if result is not None:
        message = result.message
        if result.success:
            reason = "converged"
        elif driver.failed_since_iteration:
            reason = "failed_step"
        elif max_iterations is not None and problem.progress.iterations >= max_iterations:
            reason = "max_iterations"
        else:
            reason = "not_converged"
    x = driver.final_point(None if result is None else result.x)
    outcome = driver.outcome(x, reason, message)
    return finish(outcome, raise_on_failure, name)


class _Driver:
    """scipy's callables for one fit: ``fun``, ``jac``, ``hessp`` and ``callback``."""

    def __init__(self, problem, method, lower, upper):
        self.problem = problem
        self.lower, self.upper = lower, upper
        self.layout = problem.layout
        self.objective = problem.objective
        self.method = method
        self.gradient_at = (None, None)   # (x, gathered derivative) of the latest derivative
        self.iterate = None             # (x, J, gathered derivative) of the last iterate
        self.failed_since_iteration = 0
        self.zero = [0.0 if c.scalar else np.zeros(c.shape) for c in problem.controls]

    # -- points -------------------------------------------------------------------------------
    def _values(self, x):
        return self.layout.scatter(x, self.problem.base)

    def _gradient(self, x):
        last_x, g = self.gradient_at
        if last_x is None or not np.array_equal(last_x, x):
            g = self.layout.gather(self.objective.gradient(x, lambda: self._values(x)))
            self.gradient_at = (np.array(x), g)    # scipy asks again at the same x
        return g

    # -- scipy's callables ----------------------------------------------------------------------
    def fun(self, x):
        try:
            return self.objective.value(x, lambda: self._values(x))
        except EvaluationFailure:
            return self._failed_step(x)[0]

    def jac(self, x):
        try:
            return self._gradient(x)
        except EvaluationFailure:
            return self._failed_step(x)[1]

    def hessp(self, x, p):
        direction = self.layout.scatter(p, self.zero)
        try:
            result = self.objective.hessian_action(x, lambda: self._values(x), direction)
        except EvaluationFailure as e:
            raise _Stop("failed_step", f"the Hessian action failed: {e}") from e
        return self.layout.gather(result)

    def callback(self, xk, *state):
        x = np.array(xk, dtype=np.float64)
        values = self._values(x)
        try:
            J = self.objective.value(x, values)
        except EvaluationFailure:
            return      # SLSQP reports its trial point before its line search rejects it
        g = self._gradient(x) if self.objective.known(x)[1] is not None else None
        gnorm = self._gradient_norm(x, g) if g is not None else float("nan")
        step = global_norm(x - self.iterate[0])
        self.iterate = (x, J, g)
        self.failed_since_iteration = 0
        if state and hasattr(state[0], "tr_radius"):    # trust-constr: resumable
            self.problem.progress.optimizer_state["trust_radius"] = float(state[0].tr_radius)
        if self.problem.progress.iteration(J, gnorm, step, x, values):
            raise _Stop("stopped_by_callback", "the callback asked to stop")

    def _failed_step(self, x):
        self.failed_since_iteration += 1
        if self.iterate is None:
            raise _Stop("failed_step", "evaluation failed before the first iterate")
        if self.method in _SEARCH_FROM_REFERENCE:
            _, J, g = self.iterate
            return J, g
        return np.inf, np.zeros_like(x)

    # -- start and end --------------------------------------------------------------------------
    def begin(self, x0):
        """Evaluate J and the derivative at the start (errors here are the caller's to fix)."""
        values = self._values(x0)
        try:
            J = self.objective.value(x0, values)
            g = self._gradient(x0)
        except EvaluationFailure as e:
            raise ValueError(f"{self.problem.name}: J or its derivative could not be computed "
                             f"at the starting controls: {e}") from e
        self.iterate = (np.array(x0), J, g)
        self.problem.progress.begin(J, self._gradient_norm(x0, g), x0, values)

    def final_point(self, x):
        """scipy's answer if J could be computed there, else the last iterate."""
        if x is not None:
            x = np.array(x, dtype=np.float64)
            try:
                self.objective.value(x, lambda: self._values(x))
                return x
            except EvaluationFailure:
                pass
        return self.iterate[0]

    def outcome(self, x, reason, message):
        """The result at ``x``; the tape is left there."""
        values = self._values(x)
        g = self._gradient(x)
        self.objective.move_tape_to(x, values)
        J = self.objective.value(x, values)
        return self.problem.result(values, J, self._gradient_norm(x, g), reason, message,
                                   reason == "converged", x)

    def _gradient_norm(self, x, g):
        """l2 norm of the derivative, projected onto the bounds when there are bounds."""
        if self.lower is None:
            return global_norm(g)
        return global_norm(np.clip(x - g, self.lower, self.upper) - x)


def _method_name(method, name):
    if isinstance(method, str):
        for known in METHODS:
            if known.lower() == method.lower():
                return known
    raise ValueError(f"{name}: unknown method {method!r}; crk.optimize runs the scipy methods "
                     f"{list(METHODS)} (for PETSc TAO use crk.optimize.tao_minimize)")
