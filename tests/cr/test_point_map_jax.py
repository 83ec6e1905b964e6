"""crk.cr.jax: JAX point maps — Taylor tests, batched per-point Jacobians, padding to shared
buckets, compiled-program reuse, shape errors, and distributed points with a replicated
parameter under MPI."""
import numpy as onp
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import crk  # noqa: E402
from crk import (Control, ReducedFunction, ReducedFunctional, convergence_rates,  # noqa: E402
                 taylor_to_dict)
from crk.cr.jax import JaxPointMap, point_map  # noqa: E402


def assert_taylor(rates):
    for key, bound in (("R1", 1.9), ("R1_adjoint", 1.9), ("R2", 2.9)):
        if key in rates:
            assert min(rates[key]["Rate"]) >= bound, (key, rates[key])


# CRIKit's p-Laplacian flux example, in jax.numpy
@point_map(((-1,), (-1, 2), ()), (-1, 2), bare=True)
def flux(u, g, p):
    mu = (jnp.sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
    return jnp.reshape(mu, mu.shape + (1,)) * g


def _flux_and_energy(u, g, p):
    """Two outputs, depending on every argument: (n, 2) and (n,)."""
    s = jnp.sum(g * g, axis=1) + u ** 2
    return g * (1.0 + s[:, None]) ** (0.5 * p), jnp.exp(-p * s) * u


def _flux_and_energy_point(u, g, p):
    """The same for ONE point (batched=False): u (), g (2,)."""
    s = jnp.sum(g * g) + u ** 2
    return g * (1.0 + s) ** (0.5 * p), jnp.exp(-p * s) * u


def _maps(**options):
    shapes = (((-1,), (-1, 2), ()), ((-1, 2), (-1,)))
    return {"batched": JaxPointMap(_flux_and_energy, *shapes, **options),
            "per_point": JaxPointMap(_flux_and_energy_point, *shapes, batched=False, **options)}


def _data(n, rng):
    return rng.standard_normal(n), rng.standard_normal((n, 2)), 1.5


def test_seed_point_map():
    rng = onp.random.default_rng(0)
    u, g, _ = _data(9, rng)
    assert flux.point_map.in_point_shapes == ((), (2,), ())
    with crk.Tape() as tape:
        gc, pc = crk.array(g), crk.AdjFloat(3.0)
        out = flux(crk.array(u), gc, pc)
        assert len(tape) == 1 and out.shape == (9, 2)
        rf = ReducedFunction(out, [Control(gc), Control(pc)])
        assert_taylor(taylor_to_dict(rf, [gc, pc], [rng.standard_normal((9, 2)), 0.4]))


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("remat", [True, False], ids=["remat", "residuals"])
@pytest.mark.parametrize("form", ["batched", "per_point"])
def test_taylor_two_outputs(form, remat, jit):
    rng = onp.random.default_rng(1)
    pm = _maps(remat=remat, jit=jit)[form]
    u, g, p = _data(11, rng)
    with crk.Tape():
        uc, gc, pc = crk.array(u), crk.array(g), crk.AdjFloat(p)
        a, b = pm(uc, gc, pc)
        rf = ReducedFunction([a, b], [Control(uc), Control(gc), Control(pc)])
        assert_taylor(taylor_to_dict(rf, [uc, gc, pc], [rng.standard_normal(11),
                                                        rng.standard_normal((11, 2)), 0.3]))


def test_compose_taylor():
    inner = JaxPointMap(lambda u, g, p: (g * p, u * jnp.sum(g, axis=1)),
                        ((-1,), (-1, 2), ()), ((-1, 2), (-1,)))
    outer = JaxPointMap(lambda h, v: jnp.sin(h) * v[:, None], ((-1, 2), (-1,)), (-1, 2))
    pm = outer.compose(inner)
    rng = onp.random.default_rng(2)
    u, g, p = _data(7, rng)
    with crk.Tape():
        uc, gc, pc = crk.array(u), crk.array(g), crk.AdjFloat(p)
        rf = ReducedFunction(pm(uc, gc, pc), [Control(uc), Control(gc), Control(pc)])
        assert_taylor(taylor_to_dict(rf, [uc, gc, pc], [rng.standard_normal(7),
                                                        rng.standard_normal((7, 2)), 0.3]))


# -- per-point Jacobians ------------------------------------------------------------------------
def _jacobian_rates(pm, args, argnums, rng):
    """Per-point Taylor remainders max_i |f(x+εh)_i − f(x)_i − ε (J h)_i| for each output."""
    jac = pm.jacobians(*args, argnums=argnums)
    h = {k: rng.standard_normal(onp.shape(args[k])) for k in argnums}
    n = onp.shape(args[0])[0]
    f0 = pm.evaluate(args)
    eps = [1e-2 / 2 ** i for i in range(5)]
    residuals = [[] for _ in f0]
    for e in eps:
        moved = tuple(a + e * h[k] if k in h else a for k, a in enumerate(args))
        f1 = pm.evaluate(moved)
        for o in range(len(f0)):
            lin = 0.0
            for j, k in enumerate(argnums):
                J = jac[o][j]
                hk = h[k] if pm.pointwise[k] else onp.broadcast_to(h[k], (n,) + onp.shape(h[k]))
                in_ndim = onp.ndim(hk) - 1
                lin = lin + onp.einsum("n...i,ni->n...", J.reshape(J.shape[:J.ndim - in_ndim]
                                                                  + (-1,)), hk.reshape(n, -1))
            residuals[o].append(onp.max(onp.abs(f1[o] - f0[o] - e * lin)))
    return jac, [min(convergence_rates(r, eps)) for r in residuals]


@pytest.mark.parametrize("form", ["batched", "per_point"])
def test_jacobians_shapes_and_taylor(form):
    rng = onp.random.default_rng(3)
    pm = _maps()[form]
    u, g, p = _data(13, rng)
    args = (u, g, onp.float64(p))
    for argnums in [(0, 1, 2), (1,), (2, 0)]:
        jac, rates = _jacobian_rates(pm, args, argnums, rng)
        in_shapes = {0: (), 1: (2,), 2: ()}
        for o, out_shape in enumerate([(2,), ()]):
            assert [j.shape for j in jac[o]] == [(13,) + out_shape + in_shapes[k]
                                                 for k in argnums]
        assert min(rates) >= 1.9, rates


def test_jacobians_reverse_mode_and_consistency_with_jvp():
    """More inputs than outputs (jacrev), and J·h equals the jvp of the map."""
    pm = JaxPointMap(lambda a, w: jnp.tanh(a @ w)[:, None] * jnp.ones(1),
                     ((-1, 6), (6,)), (-1, 1))
    rng = onp.random.default_rng(4)
    a, w = rng.standard_normal((10, 6)), rng.standard_normal(6)
    jac, rates = _jacobian_rates(pm, (a, w), (0, 1), rng)
    assert min(rates) >= 1.9 and jac[0][0].shape == (10, 1, 6) and jac[0][1].shape == (10, 1, 6)
    ha, hw = rng.standard_normal((10, 6)), rng.standard_normal(6)
    tangent = pm.jvp((a, w), (ha, hw))[0]
    onp.testing.assert_allclose(onp.einsum("noi,ni->no", jac[0][0], ha)
                                + jac[0][1] @ hw, tangent, rtol=1e-12, atol=1e-14)


def test_padding_does_not_change_results():
    rng = onp.random.default_rng(5)
    u, g, p = _data(17, rng)                      # 17 points: compiled for 18
    args = (u, g, onp.float64(p))
    padded, plain = _maps()["batched"], _maps(jit=False)["batched"]
    cot = (rng.standard_normal((17, 2)), rng.standard_normal(17))
    tan = (rng.standard_normal(17), rng.standard_normal((17, 2)), onp.float64(0.3))
    results = []
    for pm in (padded, plain):
        results.append(list(pm.evaluate(args)) + list(pm.vjp(args, cot, (0, 1, 2)))
                       + list(pm.jvp(args, tan)) + list(pm.hvp(args, tan, cot, (0, 1, 2)))
                       + [j for row in pm.jacobians(*args) for j in row])
    assert padded._call(args, ()).bucket == 18
    for a, b in zip(*results):
        assert onp.shape(a) == onp.shape(b)
        onp.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_programs_compiled_once_per_bucket():
    rng = onp.random.default_rng(6)
    pm = _maps()["batched"]
    for n in (33, 35, 36):                        # one bucket: 36
        u, g, p = _data(n, rng)
        with crk.Tape():
            uc, gc, pc = crk.array(u), crk.array(g), crk.AdjFloat(p)
            a, b = pm(uc, gc, pc)
            rf = ReducedFunctional(crk.sum(a ** 2) + crk.sum(b), [Control(uc), Control(gc),
                                                                   Control(pc)])
            for _ in range(2):
                rf([rng.standard_normal(n), rng.standard_normal((n, 2)), 1.4])
                rf.derivative()
                rf.hessian([rng.standard_normal(n), rng.standard_normal((n, 2)), 0.1])
        pm.jacobians(u, g, p)
    assert dict(pm.trace_counts) == {"forward": 1, "vjp": 1, "jvp": 1, "hvp": 1, "jacobians": 1}


def test_nested_inside_jax_transform():
    pm = _maps()["batched"]
    rng = onp.random.default_rng(7)
    u, g, p = _data(5, rng)
    with crk.Tape() as tape, jax.enable_x64(True):
        grad = jax.grad(lambda pp: jnp.sum(pm(u, g, pp)[1]))(p)
        assert len(tape) == 0
    with jax.enable_x64(True):
        expected = jax.grad(lambda pp: jnp.sum(_flux_and_energy(u, g, pp)[1]))(p)
    assert float(grad) == pytest.approx(float(expected), rel=1e-14)


# -- errors ---------------------------------------------------------------------------------------
def test_shape_errors():
    u, g = onp.ones(5), onp.ones((5, 2))
    with pytest.raises(ValueError, match=r"flux: argument 'g' \(1\) expected shape \(n, 2\) "
                                         r"\(n points\), received \(5, 3\)"):
        flux(u, onp.ones((5, 3)), 2.0)
    with pytest.raises(ValueError, match=r"argument 'p' \(2\) \(a parameter\) expected shape "
                                         r"\(\), received \(2,\)"):
        flux(u, g, onp.ones(2))
    with pytest.raises(ValueError, match="argument 'g' .* has 4 points but an earlier argument "
                                         "has 5"):
        flux(u, onp.ones((4, 2)), 2.0)
    with pytest.raises(TypeError, match=r"expected 3 arguments \(u, g, p\), got 2"):
        flux(u, g)
    wrong = JaxPointMap(lambda u: jnp.stack([u, u, u], axis=1), ((-1,),), (-1, 2))
    with pytest.raises(ValueError, match=r"output 0 was declared with per-point shape \(2,\) .* "
                                         r"returned shape \(5, 3\)"):
        wrong(crk.array(u))
    with pytest.raises(ValueError, match="at least one argument must be pointwise"):
        JaxPointMap(lambda p: p, ((),), (-1,))
    with pytest.raises(ValueError, match="every output of a point map is per point"):
        JaxPointMap(lambda u: jnp.sum(u), ((-1,),), ())


def test_distributed_parameter_rejected(comm):
    p = crk.array([2.0], comm=comm, distributed=True)
    pm = JaxPointMap(lambda u, p: u * p[0], ((-1,), (1,)), (-1,))
    with pytest.raises(ValueError, match="must be replicated, not distributed"):
        pm(crk.array(onp.ones(3)), p)


# -- MPI: distributed points, replicated parameter ----------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("n_global", [2, 29])
def test_distributed_points_replicated_parameter(comm, split, assert_replicated, n_global):
    rng = onp.random.default_rng(8)
    u_full, g_full = rng.standard_normal(n_global), rng.standard_normal((n_global, 2))
    du_full, dg_full = rng.standard_normal(n_global), rng.standard_normal((n_global, 2))
    mine = split(n_global)
    pm = _maps()["batched"]

    def run(distributed, sl):
        with crk.Tape():
            uc = crk.array(u_full[sl], comm=comm, distributed=distributed)
            gc = crk.array(g_full[sl], comm=comm, distributed=distributed)
            pc = crk.AdjFloat(1.5)
            a, b = pm(uc, gc, pc)
            J = crk.sum(a ** 2) + crk.sum(onp.sin(1.0) * b)
            rf = ReducedFunctional(J, [Control(uc), Control(gc), Control(pc)])
            dirs = [du_full[sl], dg_full[sl], 0.2]
            grads = [onp.asarray(d._ad_create_checkpoint()) for d in rf.derivative()]
            hess = [onp.asarray(h._ad_create_checkpoint()) for h in rf.hessian(dirs)]
            rates = taylor_to_dict(rf, [uc, gc, pc], dirs) if distributed else None
            return float(J), grads, hess, rates

    J, grads, hess, rates = run(True, mine)
    assert_taylor(rates)
    Js, grads_s, hess_s, _ = run(False, slice(None))
    for value in (J, grads[2], hess[2]):
        assert_replicated(value)
    assert J == pytest.approx(Js, rel=1e-12)
    assert float(grads[2]) == pytest.approx(float(grads_s[2]), rel=1e-12)
    assert float(hess[2]) == pytest.approx(float(hess_s[2]), rel=1e-12)
    for k in (0, 1):
        onp.testing.assert_allclose(grads[k], grads_s[k][mine], rtol=1e-12, atol=1e-14)
        onp.testing.assert_allclose(hess[k], hess_s[k][mine], rtol=1e-12, atol=1e-14)
