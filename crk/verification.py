"""Derivative checks: Taylor remainders and the adjoint/tangent duality, for any reduced function.

For a correct first derivative the remainder |J(m+εh) − J(m) − ε dJ·h| falls like ε² (rate 2);
with the Hessian term subtracted it falls like ε³ (rate 3). For a vector-valued ReducedFunction
the first-order remainder is the global norm of F(m+εh) − F(m) − ε J h (a tangent-linear check),
and the adjoint and Hessian are checked on the scalar φ(m) = <w, F(m)> for a fixed random w.

Every check leaves the reduced function (and its tape) at ``m``. All checks are collective. They
use only the public protocol of a reduced function, so a user can check their own class.
"""
import sys

import numpy as np

from .enlist import Enlist
from .overloaded_type import plain_of_shape, plain_value
from .parallel.collective import agree, sum_over_ranks

DEFAULT_EPSILONS = tuple(0.01 / 2 ** i for i in range(5))


# -- the reduced function, through its public protocol only ----------------------------------
# A checked object needs: __call__(m) -> outputs; derivative() and hessian(h) for a scalar
# functional, or jac_action(h), adj_jac_action(w) and hess_action(h, w) for a vector function;
# and `controls`, crk.Control objects (or objects with their .plain, .shape, .inner, .comm).
def _controls(rf):
    return list(rf.controls)


def _listed(rf):
    """Whether values are passed as a list, one per control (crk's reduced functions say so in
    ``controls.listed``: not when made from a single control); else the single control's
    value."""
    return getattr(rf.controls, "listed", True)


def _delist(rf, values):
    values = list(values)
    return values if _listed(rf) else values[0]


def _is_functional(rf):
    return callable(getattr(rf, "derivative", None))


def _comm(rf):
    """The communicator argument checks agree over: the controls', else the tape's, else none."""
    for c in _controls(rf):
        if getattr(c, "comm", None) is not None:
            return c.comm
    tape = getattr(rf, "tape", None)
    if tape is not None and "mpi4py.MPI" in sys.modules:
        return tape.comm
    return None


def _agreed(rf, check, where):
    """Run an argument check; a failure on one rank raises on every rank (the others meet the
    failing rank's agreement in their next collective)."""
    try:
        return check()
    except Exception as e:
        comm = _comm(rf)
        if comm is not None and comm.size > 1:
            agree(comm, e, where=where)
        raise


def _plain_controls(rf, values, what):
    def check():
        controls = _controls(rf)
        vals = Enlist(values) if _listed(rf) else [values]
        if len(vals) != len(controls):
            raise ValueError(f"{what} has {len(vals)} entries but there are {len(controls)} "
                             f"controls")
        return [c.plain(v, f"{what} for control {k}")
                for k, (c, v) in enumerate(zip(controls, vals))]
    return _agreed(rf, check, "a derivative check's arguments")


def _directions(rf, h):
    """``h`` per control. Also accepts any arrays whose entries, concatenated in order, number
    exactly the controls' entries (e.g. one stacked array for several equal-shape controls).
    A bad ``h`` on one rank raises on every rank."""
    return _agreed(rf, lambda: _split_directions(rf, h), "a derivative check's arguments")


def _flatten_plain(values):
    return [np.ravel(np.asarray(plain_value(v), dtype=float)) for v in values]


def _split_directions(rf, h):
    h = Enlist(h) if _listed(rf) else [h]
    controls = _controls(rf)
    if len(h) == len(controls):
        try:
            return [c.plain(v, f"taylor_test: h for control {k}")
                    for k, (c, v) in enumerate(zip(controls, h))]
        except ValueError:
            pass
    flat = np.concatenate(_flatten_plain(h)) if len(h) else np.zeros(0)
    sizes = [int(np.prod(c.shape)) for c in controls]
    if flat.size != sum(sizes):
        raise ValueError(
            f"taylor_test: argument 'h' has {flat.size} entries in all, but the controls have "
            f"{sum(sizes)} ({', '.join(str(c.shape) for c in controls)}); give one direction "
            f"per control")
    pieces = np.split(flat, np.cumsum(sizes)[:-1])
    return [c.plain(p.reshape(c.shape), f"taylor_test: h for control {k}")
            for k, (c, p) in enumerate(zip(controls, pieces))]


def _inner_controls(rf, a, b):
    return sum(c.inner(x, y) for c, x, y in zip(_controls(rf), a, b))


class _OutputSpace:
    """How to take norms and inner products of a reduced function's outputs, read from output
    values: a value with ``distributed`` true is summed over its ``comm`` (crk.ndarray), any
    other (a float, a replicated array) is the same on every rank."""

    def __init__(self, outputs):
        self.listed = isinstance(outputs, (list, tuple))
        outputs = list(outputs) if self.listed else [outputs]
        self.comms = [value.comm if getattr(value, "distributed", False) else None
                      for value in outputs]
        plain = [plain_value(v) for v in outputs]
        self.shapes = [np.shape(v) for v in plain]
        self.scalar = [np.ndim(v) == 0 and not isinstance(v, np.ndarray) for v in plain]

    def delist(self, values):
        values = list(values)
        return values if self.listed else values[0]

    def enlist(self, values):
        return list(values) if self.listed else [values]

    def _total(self, locals_):
        return sum(local if comm is None else sum_over_ranks(local, comm)
                   for local, comm in zip(locals_, self.comms))

    def norm(self, values):
        return float(np.sqrt(self._total(
            [float(np.sum(np.square(plain_value(v)))) for v in values])))

    def inner(self, a, b):
        return float(self._total([float(np.vdot(np.asarray(plain_value(x)),
                                                 np.asarray(plain_value(y))))
                                  for x, y in zip(a, b)]))

    def random(self, seed):
        """A fixed random output weight, identical on all ranks for replicated outputs."""
        out = []
        for k, (comm, shape, scalar) in enumerate(zip(self.comms, self.shapes, self.scalar)):
            rng = np.random.default_rng([seed, k, 0 if comm is None else comm.rank])
            out.append(float(rng.standard_normal()) if scalar else rng.standard_normal(shape))
        return out

    def plain(self, values, what):
        vals = self.enlist(values)
        if len(vals) != len(self.shapes):
            raise ValueError(f"{what} has {len(vals)} entries but there are "
                             f"{len(self.shapes)} outputs")
        return [plain_of_shape(v, shape, scalar, f"{what} for output {k}")
                for k, (v, shape, scalar) in enumerate(zip(vals, self.shapes, self.scalar))]


def convergence_rates(residuals, epsilons):
    """log2-style rates log(r_i/r_{i+1}) / log(ε_i/ε_{i+1})."""
    rates = []
    for i in range(1, len(residuals)):
        if residuals[i] == 0.0 or residuals[i - 1] == 0.0:
            rates.append(float("inf"))
        else:
            rates.append(float(np.log(residuals[i - 1] / residuals[i])
                               / np.log(epsilons[i - 1] / epsilons[i])))
    return rates


def taylor_to_dict(rf, m, h, epsilons=DEFAULT_EPSILONS, seed=1234):
    """Taylor remainders of orders 0, 1, 2 and their rates (≈1, 2, 3 when derivatives are right).

    Returns ``{"R0": {"Residual": [...], "Rate": [...]}, "R1": ..., "R2": ...}``. For a vector
    reduced function also ``"R1_adjoint"``: the first-order remainder of φ = <w, F> using the
    adjoint; R2 is that of φ using the Hessian action. ``rf`` is anything with the public
    protocol (see the module docstring), a crk ReducedFunction(al) or a user's own class.
    """
    m = _plain_controls(rf, m, "taylor_to_dict: m")
    h = _directions(rf, h)
    C = lambda values: _delist(rf, values)   # noqa: E731
    outputs = rf(C(m))
    space = _OutputSpace(outputs)
    F0 = space.enlist(outputs)
    results = {"R0": [], "R1": [], "R2": []}
    try:
        if _is_functional(rf):
            first = _inner_controls(rf, [plain_value(d) for d in Enlist(rf.derivative())], h)
            second = _inner_controls(
                rf, [plain_value(x) for x in Enlist(rf.hessian(C(h)))], h)
            for eps in epsilons:
                Jp = float(plain_value(rf(C([x + eps * d for x, d in zip(m, h)]))))
                diff = Jp - float(plain_value(F0[0]))
                results["R0"].append(abs(diff))
                results["R1"].append(abs(diff - eps * first))
                results["R2"].append(abs(diff - eps * first - 0.5 * eps ** 2 * second))
        else:
            results["R1_adjoint"] = []
            w = space.random(seed)
            Jh = space.enlist(rf.jac_action(C(h)))
            adj = Enlist(rf.adj_jac_action(space.delist(w)))
            first = _inner_controls(rf, [plain_value(a) for a in adj], h)
            second = _inner_controls(
                rf, [plain_value(x) for x in Enlist(rf.hess_action(C(h), space.delist(w)))], h)
            phi0 = space.inner(w, F0)
            for eps in epsilons:
                Fp = space.enlist(rf(C([x + eps * d for x, d in zip(m, h)])))
                diff = [plain_value(a) - plain_value(b) for a, b in zip(Fp, F0)]
                results["R0"].append(space.norm(diff))
                results["R1"].append(space.norm(
                    [d - eps * plain_value(t) for d, t in zip(diff, Jh)]))
                dphi = space.inner(w, Fp) - phi0
                results["R1_adjoint"].append(abs(dphi - eps * first))
                results["R2"].append(abs(dphi - eps * first - 0.5 * eps ** 2 * second))
    finally:
        rf(C(m))   # leave the tape at m
    return {key: {"Residual": res, "Rate": convergence_rates(res, epsilons)}
            for key, res in results.items()}


def taylor_test(rf, m, h, dJdm=None, Hm=0.0, epsilons=DEFAULT_EPSILONS):
    """The smallest convergence rate of the Taylor remainder (pyadjoint's signature).

    For a scalar functional (``rf`` has ``derivative``): rate ≈ 2 with the derivative (computed
    unless ``dJdm`` = dJ·h is given); ≈ 3 when ``Hm`` = h·H·h is given too. For a vector
    function: the tangent-linear remainder ‖F(m+εh) − F(m) − ε J h‖ (≈ 2). Leaves ``rf`` at
    ``m``. ``rf``: anything with the public protocol (see the module docstring).
    """
    m = _plain_controls(rf, m, "taylor_test: m")
    h = _directions(rf, h)
    C = lambda values: _delist(rf, values)   # noqa: E731
    outputs = rf(C(m))
    space = _OutputSpace(outputs)
    F0 = space.enlist(outputs)
    residuals = []
    try:
        if _is_functional(rf):
            if dJdm is None:
                dJdm = _inner_controls(
                    rf, [plain_value(d) for d in Enlist(rf.derivative())], h)
            for eps in epsilons:
                Jp = float(plain_value(rf(C([x + eps * d for x, d in zip(m, h)]))))
                residuals.append(abs(Jp - float(plain_value(F0[0])) - eps * float(dJdm)
                                     - 0.5 * eps ** 2 * float(Hm)))
        else:
            Jh = space.enlist(rf.jac_action(C(h)))
            for eps in epsilons:
                Fp = space.enlist(rf(C([x + eps * d for x, d in zip(m, h)])))
                residuals.append(space.norm(
                    [plain_value(a) - plain_value(b) - eps * plain_value(t)
                     for a, b, t in zip(Fp, F0, Jh)]))
    finally:
        rf(C(m))
    return min(convergence_rates(residuals, epsilons))


def check_duality(rf, m_dot, adj_outputs=None, seed=1234):
    """Relative mismatch of <w, J m_dot> and <J^T w, m_dot> (≈1e-15 when TLM and adjoint agree).

    ``adj_outputs`` (w) defaults to a fixed random weight. ``rf``: anything with ``jac_action``,
    ``adj_jac_action`` and ``controls``. Collective.
    """
    m_dot = _directions(rf, m_dot)
    tangents = rf.jac_action(_delist(rf, m_dot))
    space = _OutputSpace(tangents)
    w = space.random(seed) if adj_outputs is None else \
        _agreed(rf, lambda: space.plain(adj_outputs, "check_duality: adj_outputs"),
                "a derivative check's arguments")
    lhs = space.inner(w, space.enlist(tangents))
    adj = Enlist(rf.adj_jac_action(space.delist(w)))
    rhs = _inner_controls(rf, [plain_value(a) for a in adj], m_dot)
    scale = max(abs(lhs), abs(rhs), np.finfo(float).tiny)
    return abs(lhs - rhs) / scale
