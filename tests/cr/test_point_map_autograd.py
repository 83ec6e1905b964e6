"""Autograd point maps (crk.cr.autograd): CRIKit's example, recording, derivatives by Taylor
remainders (serial and under mpirun), batched per-point Jacobians and their memory, shape errors.

Run serially and with ``timeout 600 mpirun -n 2|3 python -m pytest --with-mpi``.
"""
import subprocess
import sys
import tracemalloc

import numpy as onp
import pytest

import crk

pytest.importorskip("autograd")
import autograd.numpy as anp  # noqa: E402

from crk.cr.autograd import AutogradPointMap, point_map  # noqa: E402

R1_RATE, R2_RATE = 1.9, 2.9


# -- the maps under test -------------------------------------------------------------------------
def p_laplacian_flux(u, g, p):
    """CRIKit's example flux |g|^(p-2) g (u unused): pointwise u (n,), g (n, 2), parameter p ()."""
    mu = (anp.sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
    return anp.reshape(mu, mu.shape + (1,)) * g


def energy_and_flux(u, g, p, c):
    """Two outputs, a scalar parameter p and a vector parameter c (2,):
    w = (1 + |g|^2)^(p/2) u^2 + c·g  (n,)   and   q = (1 + |g|^2)^(p/2 - 1) g + u^3 c  (n, 2)."""
    s = 1. + anp.sum(g * g, axis=1)
    w = s ** (p / 2.) * u ** 2 + anp.dot(g, c)
    q = anp.reshape(s ** (p / 2. - 1.), s.shape + (1,)) * g + anp.outer(u ** 3, c)
    return w, q


def neo_hookean(F, c):
    """First Piola-Kirchhoff stress P = mu (F - F^-T) + lam log(J) F^-T of deformation
    gradients F (n, 3, 3), c = (mu, lam). The cofactor matrix comes from cross products of the
    rows of F, so autograd's forward mode applies."""
    r0, r1, r2 = F[:, 0, :], F[:, 1, :], F[:, 2, :]
    cof = anp.stack([anp.cross(r1, r2), anp.cross(r2, r0), anp.cross(r0, r1)], axis=1)
    J = anp.sum(r0 * cof[:, 0, :], axis=1)
    F_inv_T = cof / anp.reshape(J, (-1, 1, 1))
    return c[0] * (F - F_inv_T) + c[1] * anp.reshape(anp.log(J), (-1, 1, 1)) * F_inv_T


def neo_hookean_linalg(F, c):
    """The same stress through autograd.numpy.linalg, whose inv/det have no forward-mode rules:
    exercises the reverse-mode Jacobians and the double-vjp tangent."""
    F_inv_T = anp.transpose(anp.linalg.inv(F), (0, 2, 1))
    J = anp.linalg.det(F)
    return c[0] * (F - F_inv_T) + c[1] * anp.reshape(anp.log(J), (-1, 1, 1)) * F_inv_T


FLUX = point_map(((-1,), (-1, 2), ()), (-1, 2))(p_laplacian_flux)
TWO = point_map(((-1,), (-1, 2), (), (2,)), ((-1,), (-1, 2)))(energy_and_flux)
NEO = point_map(((-1, 3, 3), (2,)), (-1, 3, 3))(neo_hookean)
NEO_LINALG = point_map(((-1, 3, 3), (2,)), (-1, 3, 3))(neo_hookean_linalg)


def sample_args(pm, n, seed=0):
    """Full (all-points) plain argument values for map ``pm``, identical on every rank."""
    rng = onp.random.default_rng(seed)
    if pm.name.startswith("neo_hookean"):
        F = onp.eye(3) + 0.2 * rng.standard_normal((n, 3, 3))
        return [F, onp.array([1.3, 0.7])]
    args = [0.8 * rng.standard_normal(n), 0.8 * rng.standard_normal((n, 2)), 3.1]
    if pm.n_inputs == 4:
        args.append(rng.standard_normal(2))
    return args


def sample_directions(pm, args, seed=1, scale=0.2):
    """Directions shaped like ``args``, small enough that the Taylor remainders are in their
    asymptotic range for the default epsilons. Parameters enter weakly (through all points'
    sum) and get steps of norm 0.5 so the second-order remainder stays well above round-off."""
    rng = onp.random.default_rng(seed)
    out = []
    for a, pw in zip(args, pm.pointwise):
        h = rng.standard_normal(onp.shape(a))
        out.append(scale * h if pw else 0.5 if onp.ndim(a) == 0 else 0.5 * h / onp.linalg.norm(h))
    return out


def record(pm, args, comm=None, distributed=False):
    """Record pm on crk values made from plain args; pointwise arguments distributed if asked,
    parameters replicated (AdjFloat for scalars). Returns (crk args, outputs tuple)."""
    values = [crk.AdjFloat(a) if onp.ndim(a) == 0 and not pw else
              crk.array(a, comm=comm if pw else None, distributed=distributed and pw)
              for a, pw in zip(args, pm.pointwise)]
    outs = pm(*values)
    return values, (outs if isinstance(outs, tuple) else (outs,))


def functional(outs):
    """A nonlinear scalar of the outputs: sum over points of |out|^2 + sin(out)."""
    total = None
    for out in outs:
        term = crk.sum(out * out) + crk.sum(crk.sin(out))
        total = term if total is None else total + term
    return total


def assert_taylor(rates):
    assert min(rates["R1"]["Rate"]) >= R1_RATE, rates["R1"]
    assert min(rates["R2"]["Rate"]) >= R2_RATE, rates["R2"]
    if "R1_adjoint" in rates:
        assert min(rates["R1_adjoint"]["Rate"]) >= R1_RATE, rates["R1_adjoint"]


# -- CRIKit's example -----------------------------------------------------------------------------
def test_crikit_example():
    """CRIKit's Autograd example, only the import changed to crk."""
    import autograd.numpy as np

    def f(u, g, p):
        mu = (np.sum(g*g, axis=1) + 1.e-12)**((p-2.)/2.)
        return np.reshape(mu, mu.shape+(1,)) * g

    reference = f

    from crk.cr.autograd import point_map

    @point_map(((-1,), (-1, 2), ()), (-1, 2), bare=True)
    def f(u, g, p):
        mu = (np.sum(g*g, axis=1) + 1.e-12)**((p-2.)/2.)
        return np.reshape(mu, mu.shape+(1,)) * g

    u, g, p = sample_args(FLUX, 7)
    assert f.__name__ == "f" and isinstance(f.point_map, AutogradPointMap)
    plain = f(u, g, p)                      # plain values: just computes
    assert isinstance(plain, onp.ndarray) and not isinstance(plain, crk.ndarray)
    onp.testing.assert_array_equal(plain, reference(u, g, p))
    with crk.Tape() as tape:
        U, G, P = crk.array(u), crk.array(g), crk.AdjFloat(p)
        out = f(U, G, P)
        assert len(tape.get_blocks()) == 1   # one block per call
    assert isinstance(out, crk.ndarray) and out.shape == (7, 2)
    onp.testing.assert_array_equal(out.value, reference(u, g, p))


def test_bare_false_gives_the_point_map():
    assert isinstance(FLUX, AutogradPointMap)
    assert FLUX.arg_names == ("u", "g", "p") and FLUX.__name__ == "p_laplacian_flux"
    u, g, p = sample_args(FLUX, 4)
    onp.testing.assert_array_equal(FLUX(u, g, p), p_laplacian_flux(u, g, p))
    w, q = TWO(*sample_args(TWO, 4))
    assert w.shape == (4,) and q.shape == (4, 2)


def test_composes_inside_an_autograd_trace():
    """On autograd boxes the map just runs the function, so outer autograd code differentiates
    through it."""
    from autograd import grad
    u, g, p = sample_args(FLUX, 5)
    wrapped = grad(lambda gg: anp.sum(FLUX(u, gg, p) ** 2))(g)
    direct = grad(lambda gg: anp.sum(p_laplacian_flux(u, gg, p) ** 2))(g)
    onp.testing.assert_array_equal(wrapped, direct)


def test_no_import_side_effects_and_no_registration():
    code = ("import sys, crk, crk.cr, crk.cr.autograd\n"
            "assert 'autograd' not in sys.modules, 'autograd imported at import time'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    from autograd.tracer import Box
    from autograd.extend import VSpace
    u, g, p = sample_args(FLUX, 3)
    with crk.Tape():
        U = crk.array(u)
        G = crk.array(g)
        J = functional([FLUX(U, G, crk.AdjFloat(p))])
        crk.ReducedFunctional(J, crk.Control(G)).derivative()
    for t in (crk.ndarray, crk.AdjFloat):
        assert t not in Box.type_mappings and t not in VSpace.mappings


# -- Taylor tests on the tape --------------------------------------------------------------------
CASES = {
    "flux-u,g,p": (FLUX, (0, 1, 2)),
    "flux-g": (FLUX, (1,)),
    "flux-p": (FLUX, (2,)),
    "two-outputs-all": (TWO, (0, 1, 2, 3)),
    "two-outputs-c": (TWO, (3,)),
    "two-outputs-u": (TWO, (0,)),
    "neo-hookean-F,c": (NEO, (0, 1)),
    "neo-hookean-linalg-F,c": (NEO_LINALG, (0, 1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_taylor_functional(case):
    pm, controls = CASES[case]
    args = sample_args(pm, 6)
    with crk.Tape():
        values, outs = record(pm, args)
        rf = crk.ReducedFunctional(functional(outs), [crk.Control(values[k]) for k in controls])
        h = sample_directions(pm, args)
        assert_taylor(crk.taylor_to_dict(rf, [args[k] for k in controls],
                                         [h[k] for k in controls]))


@pytest.mark.parametrize("case", ["flux-u,g,p", "two-outputs-all", "neo-hookean-linalg-F,c"])
def test_taylor_vector_outputs(case):
    """The map's outputs themselves as a vector ReducedFunction: TLM (jvp), adjoint and
    Hessian remainders."""
    pm, controls = CASES[case]
    args = sample_args(pm, 5)
    with crk.Tape():
        values, outs = record(pm, args)
        rf = crk.ReducedFunction(list(outs), [crk.Control(values[k]) for k in controls],
                                 allow_unused=True)
        h = sample_directions(pm, args)
        assert_taylor(crk.taylor_to_dict(rf, [args[k] for k in controls],
                                         [h[k] for k in controls]))
        assert crk.check_duality(rf, [h[k] for k in controls]) < 1e-12


def test_linear_map_has_zero_second_derivative():
    scale = point_map(((-1, 2), ()), (-1, 2))(lambda g, a: a * g)
    g = onp.arange(6.).reshape(3, 2)
    second = scale.hvp((g, 2.0), (onp.ones((3, 2)), None), (onp.ones((3, 2)),), (0,))
    onp.testing.assert_array_equal(second[0], 0.0)


# -- batched per-point Jacobians -----------------------------------------------------------------
def linearised(jacs, directions, pm, argnums):
    """Per-point J·h summed over arguments: one array per output."""
    result = []
    for o, row in enumerate(jacs):
        k_out = len(pm.out_point_shapes[o])
        total = 0.
        for J, a in zip(row, argnums):
            h = onp.asarray(directions[a])
            n = J.shape[0]
            flat = J.reshape(n, int(onp.prod(J.shape[1:1 + k_out], dtype=int)), -1)
            h_flat = h.reshape(n, -1) if pm.pointwise[a] else onp.broadcast_to(
                h.reshape(1, -1), (n, h.size))
            total = total + onp.einsum("noi,ni->no", flat, h_flat).reshape(J.shape[:1 + k_out])
        result.append(total)
    return result


@pytest.mark.parametrize("mode", [None, "forward", "reverse"])
@pytest.mark.parametrize("pm", [FLUX, TWO, NEO, NEO_LINALG], ids=lambda pm: pm.name)
def test_jacobians_taylor(pm, mode):
    """The per-point linearisation F(x + εh) ≈ F(x) + ε J h: remainder falls like ε²."""
    n = 8
    args = sample_args(pm, n)
    argnums = tuple(range(pm.n_inputs))
    jacs = pm.jacobians(*args, argnums=argnums, mode=mode)
    for o, row in enumerate(jacs):
        for J, a in zip(row, argnums):
            in_shape = pm.in_point_shapes[a]
            assert J.shape == (n,) + pm.out_point_shapes[o] + in_shape
    h = sample_directions(pm, args)
    Jh = linearised(jacs, h, pm, argnums)
    F0 = pm.evaluate(args)
    residuals = []
    epsilons = [1e-2 / 2 ** i for i in range(5)]
    for eps in epsilons:
        Fp = pm.evaluate([a + eps * onp.asarray(d) for a, d in zip(args, h)])
        residuals.append(max(onp.max(onp.abs(fp - f0 - eps * jh))
                             for fp, f0, jh in zip(Fp, F0, Jh)))
    assert min(crk.convergence_rates(residuals, epsilons)) >= R1_RATE, residuals


@pytest.mark.parametrize("pm", [FLUX, TWO, NEO_LINALG], ids=lambda pm: pm.name)
def test_jacobians_modes_agree_and_match_finite_differences(pm):
    args = sample_args(pm, 5)
    forward = pm.jacobians(*args, mode="forward")
    reverse = pm.jacobians(*args, mode="reverse")
    for row_f, row_r in zip(forward, reverse):
        for a, b in zip(row_f, row_r):
            onp.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # Extra: central differences of one input component at every point at once.
    a = 1 if pm.n_inputs > 2 else 0
    e = onp.zeros(onp.shape(args[a]))
    e.reshape(e.shape[0], -1)[:, 0] = 1.0
    step = 1e-6
    plus = pm.evaluate([x + step * e if k == a else x for k, x in enumerate(args)])
    minus = pm.evaluate([x - step * e if k == a else x for k, x in enumerate(args)])
    for o, (fp, fm) in enumerate(zip(plus, minus)):
        J = forward[o][a]
        column = J.reshape(J.shape[:1 + len(pm.out_point_shapes[o])] + (-1,))[..., 0]
        onp.testing.assert_allclose((fp - fm) / (2 * step), column, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("pm", [FLUX, TWO, NEO], ids=lambda pm: pm.name)
def test_point_map_property(pm):
    """The assumption behind batched Jacobians: outputs at a point move only with inputs at
    that point."""
    n = 6
    args = sample_args(pm, n)
    moved = [1, 4]
    rng = onp.random.default_rng(5)
    perturbed = []
    for a, pw in zip(args, pm.pointwise):
        a = onp.array(a, dtype=float)
        if pw:
            a[moved] += 0.05 * rng.standard_normal(a[moved].shape)
        perturbed.append(a)
    still = [i for i in range(n) if i not in moved]
    for before, after in zip(pm.evaluate(args), pm.evaluate(perturbed)):
        onp.testing.assert_array_equal(before[still], after[still])
        assert onp.all(onp.any((before[moved] != after[moved]).reshape(len(moved), -1), axis=1))


def test_forward_mode_availability():
    """autograd.numpy.linalg's inv/det have no forward rules: that map's tangents use the
    double vjp and its Jacobians the reverse passes; the cross-product version runs forward."""
    F, c = sample_args(NEO, 3)
    assert NEO.forward_mode_available((F, c), (0,))
    assert not NEO_LINALG.forward_mode_available((F, c), (0,))
    assert NEO_LINALG.forward_mode_available((F, c), (1,))   # c's path avoids inv and det
    onp.testing.assert_allclose(NEO_LINALG.jvp((F, c), (onp.ones_like(F), None))[0],
                                NEO.jvp((F, c), (onp.ones_like(F), None))[0], rtol=1e-12)


def test_jacobians_of_argument_subset():
    args = sample_args(TWO, 4)
    full = TWO.jacobians(*args)
    part = TWO.jacobians(*args, argnums=(3, 1))
    for row_full, row_part in zip(full, part):
        onp.testing.assert_array_equal(row_part[0], row_full[3])
        onp.testing.assert_allclose(row_part[1], row_full[1], rtol=1e-13)


def peak_bytes(call):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return result, peak


def test_jacobian_memory_is_order_points_times_in_times_out():
    """3D stress with 9 outputs from 9 inputs on 10^5 points: the Jacobian step (chunked over
    points) allocates at most 2x the Jacobian array in all, the Jacobian included (the
    comparison with tiling is in scripts/bench_pointwise.py)."""
    n = 100_000
    F, c = sample_args(NEO, n)
    jac_bytes = n * 9 * 9 * 8
    (jacs, ), peak = peak_bytes(lambda: [NEO.jacobians(F, c, argnums=(0,))[0][0]])
    assert jacs.nbytes == jac_bytes
    print(f"crk peak {peak / jac_bytes:.2f}x the Jacobian ({jac_bytes / 1e6:.0f} MB)")
    assert peak < 2 * jac_bytes


# -- shape and usage errors ----------------------------------------------------------------------
def test_shape_errors_name_the_argument():
    u, g, p = sample_args(FLUX, 5)
    with pytest.raises(ValueError, match=r"argument 'g' \(1\) expected shape \(n, 2\) "
                                         r"\(n points\), received \(5, 3\)"):
        FLUX(u, onp.zeros((5, 3)), p)
    with pytest.raises(ValueError, match=r"argument 'p' \(2\) \(a parameter\) expected shape "
                                         r"\(\), received \(2,\)"):
        FLUX(u, g, onp.zeros(2))
    with pytest.raises(ValueError, match=r"argument 'g' \(1\) has 4 points but an earlier "
                                         r"argument has 5"):
        FLUX(u, g[:4], p)
    with pytest.raises(TypeError, match=r"expected 3 arguments \(u, g, p\), got 2"):
        FLUX(u, g)
    with pytest.raises(ValueError, match=r"argument 'F' \(0\) expected shape \(n, 3, 3\)"):
        NEO.jacobians(onp.zeros((4, 9)), onp.ones(2))


def test_distributed_parameter_is_refused(comm):
    u, g, p, c = sample_args(TWO, 3)
    with pytest.raises(ValueError, match=r"argument 'c' \(3\) is a parameter shared by all "
                                         r"points, so it must be replicated, not distributed"):
        TWO(u, g, p, crk.array(c, comm=comm, distributed=True))


def test_output_shape_error():
    bad = point_map(((-1, 2),), (-1, 3), name="bad")(lambda g: g * 2.)
    with pytest.raises(ValueError, match=r"bad: output 0 should have shape \(n, 3\) with n = 4, "
                                         r"but the function returned shape \(4, 2\)"):
        bad(onp.zeros((4, 2)))
    two = point_map(((-1,),), ((-1,), (-1,)))(lambda u: u)
    with pytest.raises(ValueError, match="declared 2 outputs, so the function must return a "
                                         "tuple of 2 arrays; it returned a ndarray"):
        two(onp.zeros(3))


def test_declaration_errors():
    with pytest.raises(ValueError, match=r"'p_laplacian_flux' takes 3 positional arguments "
                                         r"\(u, g, p\) but in_shapes declares 2"):
        point_map(((-1,), (-1, 2)), (-1, 2))(p_laplacian_flux)
    with pytest.raises(ValueError, match="argument 'pointwise' must be None, a bool or one bool "
                                         "per argument"):
        point_map(((-1,), (-1, 2), ()), (-1, 2), pointwise=[True])(p_laplacian_flux)
    with pytest.raises(ValueError, match="argument 'mode' must be None, 'forward' or 'reverse'"):
        FLUX.jacobians(*sample_args(FLUX, 2), mode="sideways")


def test_pointwise_override():
    """pointwise=True for all: the shape () parameter p becomes a per-point value (n,); False
    for an argument declared (-1, 2) makes it a (2,) parameter."""
    per_point = point_map(((-1,), (-1, 2), ()), (-1, 2), pointwise=True)(p_laplacian_flux)
    assert per_point.pointwise == (True, True, True)
    u, g, _ = sample_args(FLUX, 4)
    p = onp.linspace(2.5, 3.5, 4)
    out = per_point(u, g, p)
    for i in range(4):
        onp.testing.assert_allclose(out[i], p_laplacian_flux(u[i:i + 1], g[i:i + 1], p[i])[0])
    jac_p = per_point.jacobians(u, g, p, argnums=(2,))[0][0]
    assert jac_p.shape == (4, 2)

    def shift(g, c):
        return g + c

    shifted = point_map(((-1, 2), (-1, 2)), (-1, 2), pointwise=[True, False])(shift)
    assert shifted.pointwise == (True, False) and shifted.in_point_shapes == ((2,), (2,))
    jac_c = shifted.jacobians(g, onp.ones(2), argnums=(1,))[0][0]
    onp.testing.assert_array_equal(jac_c, onp.broadcast_to(onp.eye(2), (4, 2, 2)))


# -- MPI: distributed points, replicated parameters ----------------------------------------------
def serial_reference(pm, args, controls, direction):
    """Gradient and Hessian action on one tape with replicated full arrays (in-process)."""
    with crk.Tape():
        values, outs = record(pm, args)
        rf = crk.ReducedFunctional(functional(outs), [crk.Control(values[k]) for k in controls])
        value = float(rf([args[k] for k in controls]))
        grads = [onp.asarray(d._ad_create_checkpoint()) for d in rf.derivative()]
        hess = [onp.asarray(d._ad_create_checkpoint())
                for d in rf.hessian([direction[k] for k in controls])]
    return value, grads, hess


def local_piece(pm, args, split, n):
    part = split(n)
    return [a[part] if pw else a for a, pw in zip(args, pm.pointwise)]


@pytest.mark.mpi
@pytest.mark.parametrize("n", [11, 2], ids=["11-points", "2-points"])
@pytest.mark.parametrize("pm", [FLUX, TWO], ids=lambda pm: pm.name)
def test_mpi_replicated_parameter_gradient(pm, n, comm, split, assert_replicated):
    """p (and c) replicated, u and g distributed unevenly (with 2 points on 3 ranks one rank
    has none): dJ/dp and the Hessian action are bit-identical on every rank and equal to the
    serial result."""
    args = sample_args(pm, n)
    params = tuple(k for k, pw in enumerate(pm.pointwise) if not pw)
    direction = sample_directions(pm, args)
    value, grads, hess = serial_reference(pm, args, params, direction)
    local = local_piece(pm, args, split, n)
    with crk.Tape():
        values, outs = record(pm, local, comm=comm, distributed=True)
        J = functional(outs)
        rf = crk.ReducedFunctional(J, [crk.Control(values[k]) for k in params])
        assert_replicated(J)
        onp.testing.assert_allclose(float(J), value, rtol=1e-12)
        for d, ref in zip(rf.derivative(), grads):
            assert_replicated(d)
            onp.testing.assert_allclose(onp.asarray(d._ad_create_checkpoint()), ref, rtol=1e-12)
        for d, ref in zip(rf.hessian([direction[k] for k in params]), hess):
            assert_replicated(d)
            onp.testing.assert_allclose(onp.asarray(d._ad_create_checkpoint()), ref, rtol=1e-12)


@pytest.mark.mpi
def test_mpi_distributed_control_gradient_matches_serial(comm, split):
    """Gradient and Hessian action w.r.t. distributed u and g: each rank's piece equals the
    matching slice of the serial result."""
    n = 10
    args = sample_args(TWO, n)
    direction = sample_directions(TWO, args)
    _, grads, hess = serial_reference(TWO, args, (0, 1), direction)
    part = split(n)
    with crk.Tape():
        values, outs = record(TWO, local_piece(TWO, args, split, n), comm=comm,
                              distributed=True)
        rf = crk.ReducedFunctional(functional(outs), [crk.Control(values[0]),
                                                      crk.Control(values[1])])
        for d, ref in zip(rf.derivative(), grads):
            onp.testing.assert_allclose(d.value, ref[part], rtol=1e-12)
        for d, ref in zip(rf.hessian([direction[0][part], direction[1][part]]), hess):
            onp.testing.assert_allclose(d.value, ref[part], rtol=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("controls", [(1,), (0, 1, 2)], ids=["g", "u,g,p"])
def test_mpi_taylor(controls, comm, split):
    """Taylor remainders with distributed controls (and the replicated p) under MPI."""
    n = 9
    args = sample_args(TWO, n)
    h = sample_directions(TWO, args)
    local, h_local = local_piece(TWO, args, split, n), local_piece(TWO, h, split, n)
    with crk.Tape():
        values, outs = record(TWO, local, comm=comm, distributed=True)
        rf = crk.ReducedFunctional(functional(outs), [crk.Control(values[k]) for k in controls])
        assert_taylor(crk.taylor_to_dict(rf, [local[k] for k in controls],
                                         [h_local[k] for k in controls]))
