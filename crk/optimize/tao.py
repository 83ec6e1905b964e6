"""PETSc TAO on a distributed Vec of the free controls.

The Vec holds each rank's owned block (:mod:`crk.optimize.vector`): its pieces of distributed
controls, and on rank 0 the replicated controls, so nothing is duplicated across ranks. TAO gets
objective, gradient and objective-and-gradient callbacks (one :class:`Objective`, so a point costs
one forward and one adjoint run), a shell Hessian built on ``rf.hessian`` at TAO's current point
(used by the Newton types: nls, ntr, bnls, bntr, ...), bound constraints, and optionally a Riesz
map as the gradient norm and the initial quasi-Newton Hessian.

Defaults (type, tolerances, iteration limit, ``petsc_options``) are set before
``setFromOptions``, so the command line wins: ``-crk_tao_type bqnls -crk_tao_monitor``.

Failed steps: at a point where J or the derivative cannot be computed, TAO is handed J and the
derivative of the iterate it steps from. Its More-Thuente line search (the one of the quasi-Newton
and Newton line-search types) then sees no sufficient decrease and backtracks, and the
trust-region types see no actual reduction and shrink the region. (Returning inf, which TAO's
line search claims to treat as a domain violation, makes its step interpolation NaN.) A failure
TAO cannot recover from ends the fit with reason ``"failed_step"`` at the last good iterate.
"""
import logging

import numpy as np

from ..parallel.collective import sum_over_ranks
from .objective import EvaluationFailure
from .problem import FitProblem, finish, logging_level
from .riesz import RieszMap, check_riesz_map

DEFAULT_TYPE = "bqnls"

#: Defaults under the fit's options prefix. The quasi-Newton types start each update from the
#: scalar (Shanno-Phua) scaling, as L-BFGS-B does: PETSc's own default, a diagonal rescaling,
#: stalls far above the tolerance on some fits (the least-squares tests here). The command line
#: and ``petsc_options`` override them, e.g. ``-crk_tao_bqnls_mat_lmvm_scale_type diagonal``.
DEFAULT_OPTIONS = {f"tao_{kind}_mat_lmvm_scale_type": "scalar"
                   for kind in ("bqnls", "bqnk", "blmvm")}
#: The same for type lmvm, whose matrix PETSc gives the fixed prefix ``tao_lmvm_`` (not under
#: the solver's prefix); set only for the fit and removed after it.
UNPREFIXED_DEFAULT_OPTIONS = {"tao_lmvm_mat_lmvm_scale_type": "scalar"}


def tao_minimize(rf, tao_type=None, bounds=None, derivative_components=None,
                 options_prefix="crk_", riesz_map=None, gatol=None, grtol=None, gttol=None,
                 max_iterations=1000, petsc_options=None, callback=None, checkpoint_file=None,
                 resume=None, quiet=False, log_level=logging.INFO, raise_on_failure=True,
                 comm=None):
    """Minimise the scalar reduced functional ``rf`` with PETSc TAO over ``comm`` (default
    COMM_WORLD). Collective.

    ``tao_type``: the default TAO type (``"bqnls"``, a bound-constrained quasi-Newton line
    search, when None); ``-{options_prefix}tao_type`` on the command line overrides it, as every
    other ``-{options_prefix}tao_*`` option overrides the defaults given here (``gatol``,
    ``grtol``, ``gttol``, ``max_iterations``, and ``petsc_options``: a dict of option names
    without the prefix, e.g. ``{"tao_ls_type": "armijo"}``). ``max_iterations`` (default 1000,
    where TAO's own default is 50 for its bnk/bqnk family) counts the iterations of all resumed
    runs together. The quasi-Newton matrices start from the scalar initial scaling (see
    :data:`DEFAULT_OPTIONS`), or from the Riesz map when one is given.

    ``bounds``, ``derivative_components``, ``callback``, ``checkpoint_file``, ``resume``,
    ``quiet``, ``log_level``, ``raise_on_failure``: as for :func:`scipy_minimize`.

    ``riesz_map``: the inner product of the control space, used as TAO's gradient norm and as the
    initial Hessian of its quasi-Newton types (lmvm, blmvm, bqnls, ...). Either a PETSc Mat M
    (e.g. a mass matrix) in this function's Vec layout — for a single distributed control that is
    the control's own layout, each rank's rows its piece — whose inverse is applied with a KSP
    (options prefix ``{options_prefix}riesz_``, default CG + Jacobi), or a callable mapping one
    control's derivative (a crk value) to its gradient (applying M⁻¹, like
    ``rf.derivative(riesz_map=...)``), or a list of such callables (None: identity) per control.

    Returns an :class:`OptimizationResult` whose ``gradient_norm`` (and history) is the norm TAO
    reports: of the projected gradient, in the Riesz norm when one is given (lmvm, blmvm, nls,
    ntr, ...), or the l2 norm of a Fischer-Burmeister residual (the bnk/bqnk family: bqnls,
    bnls, bntr, ...); raises :class:`OptimizationError` carrying it
    when TAO reports divergence, unless ``raise_on_failure=False``. Either way the tape stands at
    the result's controls and every PETSc object made here is destroyed.
    """
    from solvers.petsc import import_petsc
    PETSc = import_petsc()
    name = "crk.optimize.tao_minimize"
    problem = FitProblem(rf, derivative_components, comm, name, replicated_x=False)
    check_riesz_map(riesz_map, problem, PETSc, name)
    tao_driver = _TaoFit(PETSc, problem, options_prefix)
    try:
        return finish(tao_driver.run(
            tao_type=tao_type or DEFAULT_TYPE, bounds=bounds, riesz_map=riesz_map,
            tolerances=(gatol, grtol, gttol), max_iterations=max_iterations,
            petsc_options=petsc_options or {}, callback=callback,
            checkpoint_file=checkpoint_file, resume=resume, quiet=quiet,
            log_level=logging_level(log_level)), raise_on_failure, name)
    finally:
        tao_driver.destroy()


class _TaoFit:
    """The PETSc objects and callbacks of one TAO fit."""

    def __init__(self, PETSc, problem, options_prefix):
        self.PETSc = PETSc
        self.problem = problem
        self.layout = problem.layout
        self.objective = problem.objective
        self.prefix = options_prefix or ""
        self.comm = problem.comm
        self.objects = []               # every PETSc object made here, destroyed at the end
        self.inserted_options = []
        self.zero = [0.0 if c.scalar else np.zeros(c.shape) for c in problem.controls]
        self.iterate = None             # (owned block, values, J, derivative) of the last iterate
        self.failed_since_iteration = 0
        self.stop = None                # (reason, message) when a callback ends the fit
        self.error = None               # the first exception raised inside a TAO callback
        self.hessian_point = None
        self.start = None               # (J, l2 gradient norm) at the starting point
        self.started = False            # the starting point is recorded

    def guard(self, function):
        """``function`` remembering the first exception it raises (see :meth:`run`)."""
        def guarded(*args):
            try:
                return function(*args)
            except Exception as e:
                if self.error is None:
                    self.error = e
                raise
        return guarded

    def own(self, obj):
        self.objects.append(obj)
        return obj

    def destroy(self):
        options = self.PETSc.Options()
        for key in self.inserted_options:
            options.delValue(key)
        for obj in reversed(self.objects):
            obj.destroy()
        self.objects = []

    # -- Vec <-> values --------------------------------------------------------------------------
    def _vec(self, block=None):
        PETSc = self.PETSc
        v = self.own(PETSc.Vec().createMPI((self.layout.owned_size, self.layout.size),
                                            comm=self.comm))
        if block is not None:
            v.setArray(block)
        return v

    def read(self, vec, base):
        """(this rank's block, per-control values) of a Vec."""
        block = np.array(vec.getArray(readonly=True), dtype=np.float64)
        return block, self.layout.from_owned(block, base)

    def write(self, vec, values):
        vec.setArray(self.layout.owned(values))

    # -- TAO's callbacks ---------------------------------------------------------------------------
    def objective_callback(self, tao, x):
        block, values = self.read(x, self.problem.base)
        try:
            return self.objective.value(block, values)
        except EvaluationFailure:
            return self._failed_step()[0]

    def gradient_callback(self, tao, x, g):
        block, values = self.read(x, self.problem.base)
        try:
            self.write(g, self.objective.gradient(block, values))
        except EvaluationFailure:
            self.write(g, self._failed_step()[1])

    def objective_gradient_callback(self, tao, x, g):
        block, values = self.read(x, self.problem.base)
        try:
            J, gradient = self.objective.value_and_gradient(block, values)
            self.write(g, gradient)
            return J
        except EvaluationFailure:
            J, gradient = self._failed_step()
            self.write(g, gradient)
            return J

    def _failed_step(self):
        """What TAO is told at a point where J or the derivative failed: J and the derivative of
        the iterate it steps from (see the module docstring)."""
        self.failed_since_iteration += 1
        return self.iterate[2], self.iterate[3]

    def hessian_callback(self, tao, x, H, P):
        block, values = self.read(x, self.problem.base)
        self.hessian_point = (block, values)
        H.getPythonContext().shift_by = 0.0

    def monitor(self, tao):
        its = tao.getIterationNumber()
        _, f, gnorm, _, _, _ = tao.getSolutionStatus()
        if its == 0:                    # the starting point, with TAO's gradient norm
            self._record_start(f, gnorm)
            return
        self._record_start()
        block, values = self.read(tao.getSolution(), self.problem.base)
        step = self._norm(block - self.iterate[0])
        self.iterate = (block, values, *self.objective.value_and_gradient(block, values))
        self.failed_since_iteration = 0
        global_x = self.layout.gather(values) if self.problem.progress.checkpoint_file else None
        radius = tao.getCurrentTrustRegionRadius()
        if radius > 0.0:                # a trust-region type: the radius is resumable
            self.problem.progress.optimizer_state["trust_radius"] = float(radius)
        if self.problem.progress.iteration(f, gnorm, step, global_x, values):
            self.stop = ("stopped_by_callback", "the callback asked to stop")
            tao.setConvergedReason(self.PETSc.TAO.ConvergedReason.CONVERGED_USER)

    def _norm(self, block):
        return float(np.sqrt(sum_over_ranks(float(np.dot(block, block)), self.comm)))

    # -- the fit -----------------------------------------------------------------------------------
    def run(self, tao_type, bounds, riesz_map, tolerances, max_iterations, petsc_options,
            callback, checkpoint_file, resume, quiet, log_level):
        PETSc, problem, layout = self.PETSc, self.problem, self.layout
        lower = upper = None
        if bounds is not None:
            lower, upper = layout.owned_bounds(bounds)
        values = problem.start(checkpoint_file, resume, f"tao:{tao_type}", callback, quiet,
                               log_level)
        start = layout.owned(values)
        if lower is not None:
            start = np.clip(start, lower, upper)
            values = layout.from_owned(start, problem.base)
        self._begin(start, values)

        x = self._vec(start)
        g = self._vec()
        tao = self.own(PETSc.TAO().create(comm=self.comm))
        tao.setOptionsPrefix(self.prefix)
        tao.setType(tao_type)
        tao.setSolution(x)
        tao.setObjective(self.guard(self.objective_callback))
        tao.setGradient(self.guard(self.gradient_callback), g)
        tao.setObjectiveGradient(self.guard(self.objective_gradient_callback), g)
        H = self.own(PETSc.Mat().createPython(
            ((layout.owned_size, layout.size), (layout.owned_size, layout.size)),
            _HessianShell(self), comm=self.comm))
        H.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        H.setUp()
        tao.setHessian(self.guard(self.hessian_callback), H, H)
        if lower is not None:
            inf = PETSc.INFINITY
            tao.setVariableBounds(self._vec(np.clip(lower, -inf, inf)),
                                  self._vec(np.clip(upper, -inf, inf)))
        gatol, grtol, gttol = tolerances
        if any(t is not None for t in tolerances):
            kwargs = {k: v for k, v in (("gatol", gatol), ("grtol", grtol), ("gttol", gttol))
                      if v is not None}
            tao.setTolerances(**kwargs)
        tao.setMaximumIterations(max(max_iterations - problem.progress.iterations, 0))
        saved_radius = problem.progress.optimizer_state.get("trust_radius")
        if saved_radius is not None:
            tao.setInitialTrustRegionRadius(saved_radius)
        # with a Riesz map, the initial Hessian is the map itself: no rescaling of it
        scale = "none" if riesz_map is not None else "scalar"
        self._insert_options({**{k: scale for k in DEFAULT_OPTIONS}, **petsc_options})
        self._insert_options({k: scale for k in UNPREFIXED_DEFAULT_OPTIONS}, prefix="")
        tao.setMonitor(self.guard(self.monitor))
        riesz = RieszMap(self, riesz_map) if riesz_map is not None else None
        if riesz is not None:
            tao.setGradientNorm(riesz.norm_matrix())
        tao.setFromOptions()
        if riesz is not None:
            riesz.set_initial_hessian(tao)
        problem.progress.optimizer = f"tao:{tao.getType()}"

        if max_iterations <= problem.progress.iterations:
            reason, message = "max_iterations", "the iteration budget was used by earlier runs"
        else:
            try:
                tao.solve()
            except PETSc.Error:
                # petsc4py turns an exception in a callback into a PETSc error: give back the
                # exception itself, or the failed step a Hessian action ended the fit with
                if self.error is None:
                    raise
                if not (isinstance(self.error, EvaluationFailure) and self.stop):
                    raise self.error
            reason, message = self._reason(tao)
        self._record_start()
        final = np.array(x.getArray(readonly=True), dtype=np.float64)
        return self._outcome(final, reason, message, tao)

    def _begin(self, start, values):
        try:
            J = self.objective.value(start, values)
            gradient = self.objective.gradient(start, values)
        except EvaluationFailure as e:
            raise ValueError(f"{self.problem.name}: J or its derivative could not be computed "
                             f"at the starting controls: {e}") from e
        self.iterate = (start, values, J, gradient)
        self.start = (J, self._norm(self.layout.owned(gradient)))

    def _record_start(self, J=None, gnorm=None):
        """Record the starting point once (TAO's monitor reports it as iteration 0 with its
        own gradient norm; else the l2 norm)."""
        if self.started:
            return
        self.started = True
        if J is None:
            J, gnorm = self.start
        values = self.iterate[1]
        global_x = self.layout.gather(values) if self.problem.progress.checkpoint_file else None
        self.problem.progress.begin(J, gnorm, global_x, values)

    def _reason(self, tao):
        Reason = self.PETSc.TAO.ConvergedReason
        code = tao.getConvergedReason()
        names = {getattr(Reason, k): k for k in dir(Reason) if not k.startswith("_")}
        message = f"TAO {names.get(code, code)}"
        if self.stop is not None:
            return self.stop[0], self.stop[1]
        if code > 0:
            return "converged", message
        if code == Reason.DIVERGED_MAXITS:
            return "max_iterations", message
        if self.failed_since_iteration:
            return "failed_step", message + " after failed evaluations"
        if code == Reason.DIVERGED_LS_FAILURE:
            return "line_search", message
        return "not_converged", message

    def _outcome(self, final, reason, message, tao):
        """The result at TAO's answer if J can be computed there, else at the last iterate."""
        problem, objective = self.problem, self.objective
        values = self.layout.from_owned(final, problem.base)
        try:
            J = objective.value(final, values)
            gradient = objective.gradient(final, values)
        except EvaluationFailure:
            final, values = self.iterate[:2]
            J = objective.value(final, values)
            gradient = objective.gradient(final, values)
        objective.move_tape_to(final, values)
        gnorm = tao.getSolutionStatus()[2] if reason != "failed_step" else \
            self._norm(self.layout.owned(gradient))
        global_x = self.layout.gather(values) if problem.progress.checkpoint_file else None
        return problem.result(values, J, gnorm, reason, message, reason == "converged",
                              global_x)

    def _insert_options(self, petsc_options, prefix=None):
        """Defaults for ``-{prefix}name``: set unless the options database has them already
        (the command line wins); removed again after the fit."""
        options = self.PETSc.Options()
        prefix = self.prefix if prefix is None else prefix
        for name, value in petsc_options.items():
            key = prefix + str(name).lstrip("-")
            if options.hasName(key):
                continue
            options.setValue(key, _option_text(value))
            self.inserted_options.append(key)


class _HessianShell:
    """Python context of the shell Hessian: ``rf.hessian`` at TAO's current point."""

    def __init__(self, fit):
        self.fit = fit
        self.shift_by = 0.0

    def mult(self, mat, x, y):
        self.fit.guard(self._mult)(x, y)

    def _mult(self, x, y):
        fit = self.fit
        if fit.hessian_point is None:
            raise RuntimeError("crk.optimize: TAO applied the Hessian before setting its point")
        block, values = fit.hessian_point
        _, direction = fit.read(x, fit.zero)
        try:
            result = fit.objective.hessian_action(block, values, direction)
        except EvaluationFailure as e:
            fit.stop = ("failed_step", f"the Hessian action failed: {e}")
            raise
        fit.write(y, result)
        if self.shift_by:
            y.axpy(self.shift_by, x)

    def shift(self, mat, alpha):
        self.shift_by += alpha


def _option_text(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return None
    return str(value)
