"""Derivative checks: Taylor remainders and the adjoint/tangent duality, for any reduced function.

For a correct first derivative the remainder |J(m+εh) − J(m) − ε dJ·h| falls like ε² (rate 2);
with the Hessian term subtracted it falls like ε³ (rate 3). For a vector-valued ReducedFunction
the first-order remainder is the global norm of F(m+εh) − F(m) − ε J h (a tangent-linear check),
and the adjoint and Hessian are checked on the scalar φ(m) = <w, F(m)> for a fixed random w.

Every check leaves the reduced function (and its tape) at ``m``. All checks are collective.
"""
import numpy as np

from .enlist import Enlist
from .overloaded_type import plain_value
from .parallel.collective import sum_over_ranks
from .reduced import ReducedFunctional

DEFAULT_EPSILONS = tuple(0.01 / 2 ** i for i in range(5))


def _flatten_plain(values):
    return [np.ravel(np.asarray(plain_value(v), dtype=float)) for v in values]


def _directions(rf, h):
    """``h`` per control. Also accepts any arrays whose entries, concatenated in order, number
    exactly the controls' entries (e.g. one stacked array for several equal-shape controls).
    A bad ``h`` on one rank raises on every rank."""
    return rf._check(lambda: _split_directions(rf, h))


def _split_directions(rf, h):
    h = Enlist(h) if rf.controls.listed else [h]
    controls = rf.controls
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
    return sum(c.inner(x, y) for c, x, y in zip(rf.controls, a, b))


def _output_norm(rf, values):
    total = 0.0
    for bv, v in zip(rf._output_bvs, values):
        local = float(np.sum(np.square(plain_value(v))))
        total += sum_over_ranks(local, bv.comm) if bv.distributed else local
    return float(np.sqrt(total))


def _output_inner(rf, a, b):
    total = 0.0
    for bv, x, y in zip(rf._output_bvs, a, b):
        local = float(np.vdot(np.asarray(plain_value(x)), np.asarray(plain_value(y))))
        total += sum_over_ranks(local, bv.comm) if bv.distributed else local
    return total


def _random_like_outputs(rf, seed):
    """A fixed random output weight, identical on all ranks for replicated outputs."""
    out = []
    for k, bv in enumerate(rf._output_bvs):
        rank = bv.comm.rank if bv.distributed else 0
        rng = np.random.default_rng([seed, k, rank])
        out.append(float(rng.standard_normal()) if rf._output_scalar[k]
                   else rng.standard_normal(rf._output_shapes[k]))
    return out


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
    ReducedFunction also ``"R1_adjoint"``: the first-order remainder of φ = <w, F> using the
    adjoint; R2 is that of φ using the Hessian action.
    """
    m = rf._plain_controls(m, "m")
    h = _directions(rf, h)
    scalar = isinstance(rf, ReducedFunctional)
    C = rf.controls.delist
    F0 = Enlist(rf(C(m)))
    results = {"R0": [], "R1": [], "R2": []}
    try:
        if scalar:
            dJdm = Enlist(rf.derivative())
            first = _inner_controls(rf, [plain_value(d) for d in dJdm], h)
            second = _inner_controls(
                rf, [plain_value(x) for x in Enlist(rf.hessian(C(h)))], h)
            for eps in epsilons:
                Jp = float(rf(C([x + eps * d for x, d in zip(m, h)])))
                diff = Jp - float(F0[0])
                results["R0"].append(abs(diff))
                results["R1"].append(abs(diff - eps * first))
                results["R2"].append(abs(diff - eps * first - 0.5 * eps ** 2 * second))
        else:
            results["R1_adjoint"] = []
            w = _random_like_outputs(rf, seed)
            O = rf.outputs.delist
            Jh = Enlist(rf.jac_action(C(h)))
            adj = Enlist(rf.adj_jac_action(O(w)))
            first = _inner_controls(rf, [plain_value(a) for a in adj], h)
            second = _inner_controls(
                rf, [plain_value(x) for x in Enlist(rf.hess_action(C(h), O(w)))], h)
            phi0 = _output_inner(rf, w, F0)
            for eps in epsilons:
                Fp = Enlist(rf(C([x + eps * d for x, d in zip(m, h)])))
                diff = [plain_value(a) - plain_value(b) for a, b in zip(Fp, F0)]
                results["R0"].append(_output_norm(rf, diff))
                results["R1"].append(_output_norm(
                    rf, [d - eps * plain_value(t) for d, t in zip(diff, Jh)]))
                dphi = _output_inner(rf, w, Fp) - phi0
                results["R1_adjoint"].append(abs(dphi - eps * first))
                results["R2"].append(abs(dphi - eps * first - 0.5 * eps ** 2 * second))
    finally:
        rf(C(m))   # leave the tape at m
    return {key: {"Residual": res, "Rate": convergence_rates(res, epsilons)}
            for key, res in results.items()}


def taylor_test(rf, m, h, dJdm=None, Hm=0.0, epsilons=DEFAULT_EPSILONS):
    """The smallest convergence rate of the Taylor remainder (pyadjoint's signature).

    For a ReducedFunctional: rate ≈ 2 with the derivative (computed unless ``dJdm`` = dJ·h is
    given); ≈ 3 when ``Hm`` = h·H·h is given too. For a vector ReducedFunction: the
    tangent-linear remainder ‖F(m+εh) − F(m) − ε J h‖ (≈ 2). Leaves the tape at ``m``.
    """
    m = rf._plain_controls(m, "m")
    h = _directions(rf, h)
    C = rf.controls.delist
    F0 = Enlist(rf(C(m)))
    residuals = []
    try:
        if isinstance(rf, ReducedFunctional):
            if dJdm is None:
                dJdm = _inner_controls(
                    rf, [plain_value(d) for d in Enlist(rf.derivative())], h)
            for eps in epsilons:
                Jp = float(rf(C([x + eps * d for x, d in zip(m, h)])))
                residuals.append(abs(Jp - float(F0[0]) - eps * float(dJdm)
                                     - 0.5 * eps ** 2 * float(Hm)))
        else:
            Jh = Enlist(rf.jac_action(C(h)))
            for eps in epsilons:
                Fp = Enlist(rf(C([x + eps * d for x, d in zip(m, h)])))
                residuals.append(_output_norm(
                    rf, [plain_value(a) - plain_value(b) - eps * plain_value(t)
                         for a, b, t in zip(Fp, F0, Jh)]))
    finally:
        rf(C(m))
    return min(convergence_rates(residuals, epsilons))


def check_duality(rf, m_dot, adj_outputs=None, seed=1234):
    """Relative mismatch of <w, J m_dot> and <J^T w, m_dot> (≈1e-15 when TLM and adjoint agree).

    ``adj_outputs`` (w) defaults to a fixed random weight. Collective.
    """
    m_dot = _directions(rf, m_dot)
    w = _random_like_outputs(rf, seed) if adj_outputs is None else \
        rf._plain_outputs(adj_outputs, "adj_outputs")
    lhs = _output_inner(rf, w, Enlist(rf.jac_action(rf.controls.delist(m_dot))))
    adj = Enlist(rf.adj_jac_action(rf.outputs.delist(w)))
    rhs = _inner_controls(rf, [plain_value(a) for a in adj], m_dot)
    scale = max(abs(lhs), abs(rhs), np.finfo(float).tiny)
    return abs(lhs - rhs) / scale
