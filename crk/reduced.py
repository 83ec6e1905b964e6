"""ReducedFunction (controls → outputs) and ReducedFunctional (scalar output), replayed from a tape.

Every public call leaves the tape at a well-defined point, and any call order works:

* a reduced function's point is the value of each of its controls (initially the recorded
  values); controls of other reduced functions on the same tape stay at their recorded values;
* the tape's point (:mod:`crk.tape_point`, owned by this module) remembers who set the tape's
  values last (a token): a derivative call re-evaluates first whenever anything else moved the
  tape (another reduced function, a Taylor test, a failed call, a control changed by hand), and
  before an evaluation the token is invalidated, so a call that fails half-way never leaves a
  stale point that looks valid;
* a bad argument on one rank raises on every rank (the failing rank joins the agreement the
  others reach in their next sweep).
"""
import numpy as np

from .control import Control
from .enlist import Enlist
from .overloaded_type import OverloadedType, plain_of_shape
from .parallel.collective import agree, allgather, sum_over_ranks
from .sweeps import KeepAllExecutor, Plan, sweep_comm
from .tape import get_working_tape, stop_annotating
from .tape_point import point_of


class ReducedFunction:
    """The map from ``controls`` to ``outputs`` recorded on ``tape``.

    ``outputs``: a recorded value or a list of them; ``controls``: a Control (or recorded value)
    or a list. ``allow_unused``: accept outputs that depend on no control and controls that reach
    no output (their derivatives are zero) instead of raising.

    All methods (and the constructor) are collective over the tape's communicator. Arguments and
    results are given per control / per output, in the form they were passed (single or list).
    """

    def __init__(self, outputs, controls, tape=None, allow_unused=False):
        self.outputs = Enlist(outputs)
        for k, out in enumerate(self.outputs):
            if not isinstance(out, OverloadedType):
                raise TypeError(
                    f"{type(self).__name__}(): output {k} is a {type(out).__name__}, not a "
                    f"recorded value; it was computed outside the tape (math.*, float(), "
                    f"np.asarray, stop_annotating) or from no recorded inputs")
        self.controls = Enlist(controls)
        self.controls[:] = [Control(c) for c in self.controls]
        self.tape = get_working_tape() if tape is None else tape
        self._output_bvs = [o.block_variable for o in self.outputs]
        self._control_bvs = [c.block_variable for c in self.controls]
        # Shapes and kinds from the objects: a checkpointed tape may hold no value right now.
        values = [o._ad_create_checkpoint() for o in self.outputs]
        self._output_shapes = [np.shape(v) for v in values]
        self._output_scalar = [isinstance(v, float) for v in values]
        self._allow_unused = allow_unused
        self._plan = Plan(self.tape, self._control_bvs, self._output_bvs, allow_unused)
        self._executor = self._make_executor()
        # The point this function stands for: its controls' recorded values. Its token is None:
        # the tape is at that point only if nobody has moved it since recording.
        self._point = []
        for c, bv in zip(self.controls, self._control_bvs):
            value = c.control._ad_create_checkpoint()
            if isinstance(value, float) and bv.checkpoint == value:
                value = bv.checkpoint          # the same float object: identity checks hold
            self._point.append(value)
        self._token = None
        point_of(self.tape).add_defaults(self._control_bvs, self._point)

    # -- plumbing ----------------------------------------------------------------------------
    def _make_executor(self):
        manager = self.tape.checkpoint_manager
        if manager is not None:
            return manager.executor(self._plan)
        return KeepAllExecutor(self._plan)

    def _check_plan(self):
        if self._plan.stale():
            raise RuntimeError(f"{type(self).__name__}: the tape was cleared after this function "
                               f"was created; record the computation again")

    def _at_point(self):
        """Make sure the tape's values are those at this function's current point."""
        self._check_plan()
        if not point_of(self.tape).holds(self._token) or self._executor.needs_evaluation() or \
                any(bv.checkpoint is not p for bv, p in zip(self._control_bvs, self._point)):
            self._evaluate(self._point)

    def _evaluate(self, values):
        point = point_of(self.tape)
        token = point.invalidate()                 # not valid until the evaluation succeeds
        point.reset_other_controls(set(self._control_bvs))
        for bv, value in zip(self._control_bvs, values):
            bv.checkpoint = value
        with stop_annotating():
            self._executor.evaluate()
        self._point = list(values)
        self._token = token

    def _collective(self, action):
        """Run a public action; on any failure, on every rank, the tape's point is invalid.

        Argument checks run before any sweep and only on the rank that sees bad input; that
        rank joins the failure agreement the other ranks reach in their next sweep.
        """
        try:
            return action()
        except Exception:
            point_of(self.tape).invalidate()
            raise

    def _check(self, check):
        """Run an argument check; on failure, agree on it with the other ranks, then raise."""
        try:
            return check()
        except Exception as e:
            comm = sweep_comm(self.tape)
            if comm is not None and comm.size > 1:
                agree(comm, e, where=f"{type(self).__name__} argument checks")
            raise

    def _plain_controls(self, values, what):
        def check():
            # Controls given singly take a single value, even a list (a list of floats for
            # one array control); controls given as a list take a list.
            vals = Enlist(values) if self.controls.listed else [values]
            if len(vals) != len(self.controls):
                raise ValueError(f"{type(self).__name__}: {what} has {len(vals)} entries but "
                                 f"there are {len(self.controls)} controls")
            return [c.plain(v, f"{type(self).__name__}: {what} for control {k}")
                    for k, (c, v) in enumerate(zip(self.controls, vals))]
        return self._check(check)

    def _plain_outputs(self, values, what):
        def check():
            vals = Enlist(values) if self.outputs.listed else [values]
            if len(vals) != len(self.outputs):
                raise ValueError(f"{type(self).__name__}: {what} has {len(vals)} entries but "
                                 f"there are {len(self.outputs)} outputs")
            return [plain_of_shape(v, shape, scalar,
                                   f"{type(self).__name__}: {what} for output {k}")
                    for k, (v, shape, scalar) in enumerate(zip(vals, self._output_shapes,
                                                               self._output_scalar))]
        return self._check(check)

    def _zero_output(self, k):
        return 0.0 if self._output_scalar[k] else np.zeros(self._output_shapes[k])

    def _wrap_outputs(self, values):
        return [out._ad_from_value(self._zero_output(k) if v is None else v)
                for k, (out, v) in enumerate(zip(self.outputs, values))]

    def _reverse_sweep(self, sweep, attr):
        """Run ``sweep`` (seeds set) and return the controls' ``attr`` values, one per control
        in the control's type; every derivative value on the tape is cleared afterwards."""
        try:
            with stop_annotating():
                sweep()
            values = self._collect_controls(attr)
        finally:
            self._clear_all()
        return self.controls.delist(c.wrap(v) for c, v in zip(self.controls, values))

    def _collect_controls(self, attr):
        """Read (and clear) adj/hessian values of the controls, summing rank-local parts."""
        partial = self._plan.partial_vars
        for bv in self._control_bvs:
            comm = partial.get(bv)
            if comm is not None:
                bv.reduce_partials(attr == "hessian_value", comm)
        results = [getattr(bv, attr) for bv in self._control_bvs]
        for bv in self._control_bvs:
            bv.reset()
        return results

    # -- public API --------------------------------------------------------------------------
    def __call__(self, values):
        """Evaluate the outputs at control ``values``; the tape stays at that point."""
        def action():
            self._check_plan()
            self._evaluate(self._plain_controls(values, "values"))
            return self.outputs.delist(self._wrap_outputs(
                [bv.checkpoint for bv in self._output_bvs]))
        return self._collective(action)

    def jac_action(self, m_dot):
        """Jacobian action (tangent-linear): output tangents for control tangents ``m_dot``."""
        def action():
            tangents = self._plain_controls(m_dot, "m_dot")
            self._at_point()
            for bv, t in zip(self._control_bvs, tangents):
                bv.tlm_value = t
            try:
                with stop_annotating():
                    self._executor.tangent()
                outs = [bv.tlm_value for bv in self._output_bvs]
            finally:
                self._executor.clear_tangents()
                for bv in self._control_bvs + self._output_bvs:
                    bv.tlm_value = None
            return self.outputs.delist(self._wrap_outputs(outs))
        return self._collective(action)

    def adj_jac_action(self, adj_outputs):
        """Adjoint Jacobian action: the controls' adjoints for output adjoints ``adj_outputs``.

        Returns one value per control (of the control's type): the derivative, an l2 dual object.
        """
        def action():
            seeds = self._plain_outputs(adj_outputs, "adj_outputs")
            self._at_point()
            self._seed(seeds, "adj_value")
            return self._reverse_sweep(self._executor.adjoint, "adj_value")
        return self._collective(action)

    def hess_action(self, m_dot, adj_outputs):
        """Second-order adjoint: d/dm [J(m)^T adj_outputs] applied to ``m_dot``, per control."""
        def action():
            tangents = self._plain_controls(m_dot, "m_dot")
            seeds = self._plain_outputs(adj_outputs, "adj_outputs")
            self._at_point()
            for bv, t in zip(self._control_bvs, tangents):
                bv.tlm_value = t
            self._seed(seeds, "adj_value")
            return self._reverse_sweep(self._executor.second_order, "hessian_value")
        return self._collective(action)

    def jac_matrix(self):
        """Dense Jacobian blocks: ``J[i][j]`` has shape output_i.shape + control_j's global shape.

        One tangent sweep per (global) control entry; for distributed controls the entry is
        set on the rank that owns it. Collective.
        """
        sizes = [self._global_size(c) for c in self.controls]
        jac = [[np.zeros(shape + (n,)) for n in sizes] for shape in self._output_shapes]
        for j, (control, n) in enumerate(zip(self.controls, sizes)):
            offset = self._owned_offset(control)
            local = int(np.prod(control.shape))
            for g in range(n):
                directions = [0.0 if c.scalar else np.zeros(c.shape) for c in self.controls]
                k = g - offset
                if 0 <= k < local:
                    if control.scalar:
                        directions[j] = 1.0
                    else:
                        directions[j].reshape(-1)[k] = 1.0
                tangents = Enlist(self.jac_action(self.controls.delist(directions)))
                for i, t in enumerate(tangents):
                    jac[i][j][..., g] = np.asarray(t._ad_create_checkpoint())
        return [[J.reshape(shape + self._global_shape(c, n))
                 for J, c, n in zip(row, self.controls, sizes)]
                for row, shape in zip(jac, self._output_shapes)]

    # -- helpers -----------------------------------------------------------------------------
    def _global_size(self, control):
        n = int(np.prod(control.shape))
        return int(sum_over_ranks(float(n), control.comm)) if control.distributed else n

    def _global_shape(self, control, size):
        if not control.distributed:
            return tuple(control.shape)
        rest = tuple(control.shape[1:])
        return (size // max(int(np.prod(rest)), 1),) + rest

    def _owned_offset(self, control):
        if not control.distributed:
            return 0
        sizes = allgather(int(np.prod(control.shape)), control.comm)
        return sum(sizes[:control.comm.rank])

    def _seed(self, seeds, attr):
        for bv in self._output_bvs:
            bv.reset()
        for bv, s in zip(self._output_bvs, seeds):
            setattr(bv, attr, s if getattr(bv, attr) is None else getattr(bv, attr) + s)

    def _clear_all(self):
        for bv in self._control_bvs + self._output_bvs:
            bv.reset()
        self._executor.clear_tangents()


class ReducedFunctional(ReducedFunction):
    """A scalar functional of the controls (pyadjoint's name and methods).

    ``rf(m)`` evaluates, ``rf.derivative()`` returns dJ/dm (the l2 derivative, per control),
    ``rf.hessian(m_dot)`` the Hessian action, ``rf.tlm(m_dot)`` the directional derivative.
    ``check_finite=True`` raises FloatingPointError when J evaluates to NaN/inf. ``scale``
    multiplies the functional (and its derivatives).
    """

    def __init__(self, functional, controls, tape=None, allow_unused=False, check_finite=False,
                 scale=1.0):
        if isinstance(functional, (list, tuple)):
            raise TypeError("ReducedFunctional(): the functional must be a single scalar; use "
                            "ReducedFunction for several or vector outputs")
        super().__init__(functional, controls, tape=tape, allow_unused=allow_unused)
        if self._output_shapes[0] != ():
            raise ValueError(f"ReducedFunctional(): the functional must be a scalar, got shape "
                             f"{self._output_shapes[0]}; reduce it (crk.sum, norm, ...) or use "
                             f"ReducedFunction")
        self.functional = functional
        self.check_finite = check_finite
        self.scale = float(scale)

    def __call__(self, values):
        value = super().__call__(values)
        if self.check_finite and not np.isfinite(float(value)):
            raise FloatingPointError(
                f"ReducedFunctional: the functional evaluated to {float(value)} at the given "
                f"control values")
        return type(value)(self.scale * float(value)) if self.scale != 1.0 else value

    def derivative(self, adj_input=1.0, options=None, riesz_map=None):
        """dJ/dm at the current point, per control: the l2 derivative (a dual object).

        ``riesz_map``: an optional callable mapping each derivative to a gradient (primal)
        representative, e.g. a mass-matrix solve. ``options={"riesz_representation": "l2"}``
        (pyadjoint) is accepted; other representations must be given as ``riesz_map``.
        """
        if options and options.get("riesz_representation", "l2") not in ("l2", None):
            raise ValueError(
                f"ReducedFunctional.derivative(): riesz_representation="
                f"{options['riesz_representation']!r} is not built in; pass riesz_map=callable")
        derivs = Enlist(self.adj_jac_action(self.scale * float(adj_input)))
        if riesz_map is not None:
            derivs = [riesz_map(d) for d in derivs]
        return self.controls.delist(derivs)

    def hessian(self, m_dot, options=None):
        """Hessian action d²J/dm² [m_dot] at the current point, per control."""
        return self.hess_action(m_dot, self.scale)

    def tlm(self, m_dot):
        """The directional derivative dJ/dm · m_dot (a float)."""
        return self.scale * float(self.jac_action(m_dot))
