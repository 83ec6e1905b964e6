"""ReducedFunction (controls → outputs) and ReducedFunctional (scalar output), replayed from a tape.

Every public call leaves the tape at a well-defined point: the point this reduced function was
last evaluated at (initially the recorded one). Derivative calls re-evaluate first if anything
(another reduced function, a Taylor test) moved the tape elsewhere, so any call order works.
"""
import numpy as np

from .control import Control
from .enlist import Enlist
from .overloaded_type import OverloadedType
from .parallel.collective import allgather, sum_over_ranks
from .sweeps import Plan, StoreAll
from .tape import get_working_tape, stop_annotating


class ReducedFunction:
    """The map from ``controls`` to ``outputs`` recorded on ``tape``.

    ``outputs``: a recorded value or a list of them; ``controls``: a Control (or recorded value)
    or a list. ``allow_unused``: accept outputs that depend on no control and controls that reach
    no output (their derivatives are zero) instead of raising.

    All methods are collective over the tape's communicator. Arguments and results are given per
    control / per output, in the form they were passed (single or list).
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
        self._allow_unused = allow_unused
        self._plan = Plan(self.tape, self._control_bvs, self._output_bvs, allow_unused)
        self._executor = self._make_executor()
        # The point this function last set the tape to, and the tape's token when it did.
        self._point = [bv.checkpoint for bv in self._control_bvs]
        self._token = getattr(self.tape, "_point_token", None)

    # -- plumbing ----------------------------------------------------------------------------
    def _make_executor(self):
        timeline = self.tape.timeline
        if timeline is not None:
            return timeline.executor(self._plan)
        return StoreAll(self._plan)

    def _check_plan(self):
        if self._plan.stale():
            raise RuntimeError(f"{type(self).__name__}: the tape was cleared after this function "
                               f"was created; record the computation again")

    def _at_point(self):
        """Make sure the tape's values are those at this function's current point."""
        self._check_plan()
        if getattr(self.tape, "_point_token", None) is not self._token or \
                self._executor.needs_evaluation():
            self._evaluate(self._point)

    def _evaluate(self, values):
        for bv, value in zip(self._control_bvs, values):
            bv.checkpoint = value
        with stop_annotating():
            self._executor.evaluate()
        self._point = list(values)
        self._token = object()
        self.tape._point_token = self._token

    def _plain_controls(self, values, what):
        # Controls given singly take a single value, even a list (a list of floats for one
        # array control); controls given as a list take a list.
        values = Enlist(values) if self.controls.listed else [values]
        if len(values) != len(self.controls):
            raise ValueError(f"{type(self).__name__}: {what} has {len(values)} entries but "
                             f"there are {len(self.controls)} controls")
        return [c.plain(v, f"{type(self).__name__}: {what} for control {k}")
                for k, (c, v) in enumerate(zip(self.controls, values))]

    def _plain_outputs(self, values, what):
        values = Enlist(values) if self.outputs.listed else [values]
        if len(values) != len(self.outputs):
            raise ValueError(f"{type(self).__name__}: {what} has {len(values)} entries but "
                             f"there are {len(self.outputs)} outputs")
        plain = []
        for k, (bv, v) in enumerate(zip(self._output_bvs, values)):
            if isinstance(v, OverloadedType):
                v = v._ad_create_checkpoint()
            shape = np.shape(bv.checkpoint)
            if isinstance(bv.checkpoint, float):
                v = float(v)
            else:
                v = np.asarray(v, dtype=np.float64)
                if v.shape != shape:
                    raise ValueError(f"{type(self).__name__}: {what} for output {k}: expected "
                                     f"shape {shape}, got {v.shape}")
            plain.append(v)
        return plain

    def _wrap_outputs(self, values):
        return [out._ad_from_value(v) if v is not None else
                out._ad_from_value(np.zeros(np.shape(bv.checkpoint))
                                   if not isinstance(bv.checkpoint, float) else 0.0)
                for out, bv, v in zip(self.outputs, self._output_bvs, values)]

    def _collect_controls(self, attr):
        """Read (and clear) adj/hessian values of the controls, summing rank-local parts."""
        results = []
        for bv in self._control_bvs:
            if bv.partial is not None:
                bv.reduce_partials(hessian=attr == "hessian_value")
            results.append(getattr(bv, attr))
        for bv in self._control_bvs:
            bv.reset()
        return results

    # -- public API --------------------------------------------------------------------------
    def __call__(self, values):
        """Evaluate the outputs at control ``values``; the tape stays at that point."""
        self._check_plan()
        self._evaluate(self._plain_controls(values, "values"))
        outs = [bv.checkpoint for bv in self._output_bvs]
        return self.outputs.delist(self._wrap_outputs(outs))

    def jac_action(self, m_dot):
        """Jacobian action (tangent-linear): output tangents for control tangents ``m_dot``."""
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

    def adj_jac_action(self, adj_outputs):
        """Adjoint Jacobian action: the controls' adjoints for output adjoints ``adj_outputs``.

        Returns one value per control (of the control's type): the derivative, an l2 dual object.
        """
        seeds = self._plain_outputs(adj_outputs, "adj_outputs")
        self._at_point()
        self._seed(seeds, "adj_value")
        try:
            with stop_annotating():
                self._executor.adjoint()
            adj = self._collect_controls("adj_value")
        finally:
            self._clear_all()
        return self.controls.delist(c.wrap(a) for c, a in zip(self.controls, adj))

    def hess_action(self, m_dot, adj_outputs):
        """Second-order adjoint: d/dm [J(m)^T adj_outputs] applied to ``m_dot``, per control."""
        tangents = self._plain_controls(m_dot, "m_dot")
        seeds = self._plain_outputs(adj_outputs, "adj_outputs")
        self._at_point()
        for bv, t in zip(self._control_bvs, tangents):
            bv.tlm_value = t
        self._seed(seeds, "adj_value")
        try:
            with stop_annotating():
                self._executor.second_order()
            hess = self._collect_controls("hessian_value")
        finally:
            self._clear_all()
        return self.controls.delist(c.wrap(h) for c, h in zip(self.controls, hess))

    def jac_matrix(self):
        """Dense Jacobian blocks: ``J[i][j]`` has shape output_i.shape + control_j.global_shape.

        One tangent sweep per (global) control entry; for distributed controls the entry is
        set on the rank that owns it. Collective.
        """
        sizes = [self._global_size(c) for c in self.controls]
        jac = [[np.zeros(np.shape(bv.checkpoint) + (n,)) for n in sizes]
               for bv in self._output_bvs]
        for j, (control, n) in enumerate(zip(self.controls, sizes)):
            offset = self._owned_offset(control)
            local = int(np.prod(control.shape))
            for g in range(n):
                directions = [np.zeros(c.shape) if not isinstance(c.block_variable.checkpoint,
                                                                  float) else 0.0
                              for c in self.controls]
                k = g - offset
                if 0 <= k < local:
                    if isinstance(directions[j], float):
                        directions[j] = 1.0
                    else:
                        directions[j].reshape(-1)[k] = 1.0
                tangents = Enlist(self.jac_action(self.controls.delist(directions)))
                for i, t in enumerate(tangents):
                    jac[i][j][..., g] = np.asarray(t._ad_create_checkpoint())
        return [[J.reshape(np.shape(bv.checkpoint) + tuple(
            c.shape if not c.distributed else (n,)))
            for J, c, n in zip(row, self.controls, sizes)]
            for row, bv in zip(jac, self._output_bvs)]

    # -- helpers -----------------------------------------------------------------------------
    def _global_size(self, control):
        n = int(np.prod(control.shape))
        return int(sum_over_ranks(float(n), control.comm)) if control.distributed else n

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
    ``check_finite=True`` raises FloatingPointError when J evaluates to NaN/inf.
    """

    def __init__(self, functional, controls, tape=None, allow_unused=False, check_finite=False,
                 scale=1.0):
        if isinstance(functional, (list, tuple)):
            raise TypeError("ReducedFunctional(): the functional must be a single scalar; use "
                            "ReducedFunction for several or vector outputs")
        super().__init__(functional, controls, tape=tape, allow_unused=allow_unused)
        shape = np.shape(self._output_bvs[0].checkpoint)
        if shape != ():
            raise ValueError(f"ReducedFunctional(): the functional must be a scalar, got shape "
                             f"{shape}; reduce it (crk.sum, norm, ...) or use ReducedFunction")
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
