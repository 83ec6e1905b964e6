"""Fixtures of the solver tests: PETSc, material laws, manufactured sources. Every test runs
unchanged on 1, 2 and 3 ranks (global problem sizes are fixed). Laws are made once per session
(their compiled programs are reused by every test)."""
import functools

import numpy as np
import pytest


@pytest.fixture(scope="session")
def PETSc():
    pytest.importorskip("petsc4py")
    from solvers.petsc import import_petsc
    return import_petsc()


def _jax():
    import jax
    return jax


@functools.lru_cache(maxsize=None)
def plaplace_jax(dim, eps=0.1):
    """The regularised p-Laplacian flux (ε² + |∇u|²)^((p-2)/2) ∇u of ∇u and p, in JAX."""
    from crk.cr.jax import point_map
    import jax.numpy as jnp

    @point_map(((-1, dim), ()), (-1, dim))
    def plaplace(g, p):
        mu = (eps ** 2 + jnp.sum(g * g, axis=1)) ** ((p - 2.0) / 2.0)
        return mu[:, None] * g
    return plaplace


@pytest.fixture
def plaplace():
    return plaplace_jax


@functools.lru_cache(maxsize=None)
def laplacian_jax(dim):
    """The flux κ ∇u of ∇u and a parameter κ, in JAX."""
    from crk.cr.jax import point_map

    @point_map(((-1, dim), ()), (-1, dim))
    def laplacian(g, kappa):
        return kappa * g
    return laplacian


@pytest.fixture
def laplacian():
    return laplacian_jax


def manufactured_source(flux_at_point, exact, dim, reaction_at_point=None):
    """f = −div q(u, ∇u) + c(u, ∇u) for the exact solution, as a numpy function of x (n, dim).

    ``flux_at_point(u, grad_u)`` and ``reaction_at_point(u, grad_u)`` act on one point (u: (m,),
    grad_u: (m, dim)); ``exact(x)`` maps one point x (dim,) to u (m,). All in jax.numpy.
    """
    jax = _jax()

    def q_of_x(x):
        return flux_at_point(exact(x), jax.jacfwd(exact)(x))

    def f_at(x):
        f = -jax.numpy.trace(jax.jacfwd(q_of_x)(x), axis1=1, axis2=2)
        if reaction_at_point is not None:
            f = f + reaction_at_point(exact(x), jax.jacfwd(exact)(x))
        return f

    return in_chunks(jax.jit(jax.vmap(f_at)))


def exact_functions(exact):
    """numpy functions of x (n, dim): the exact solution (n, m) and its gradient (n, m, dim)."""
    jax = _jax()

    return in_chunks(jax.jit(jax.vmap(exact))), in_chunks(jax.jit(jax.vmap(jax.jacfwd(exact))))


CHUNK = 4096


def in_chunks(batched):
    """A numpy function of x (n, dim) evaluating the jitted, vmapped ``batched`` on rows of x in
    chunks of CHUNK (the last one padded by repeating a row), so it compiles for one shape
    whatever the grid and the rank count."""
    jax = _jax()

    def evaluate(x):
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        padded = np.concatenate([x, np.repeat(x[-1:], -n % CHUNK, axis=0)]) if n else x
        with jax.enable_x64(True):
            pieces = [np.asarray(batched(jax.numpy.asarray(padded[s:s + CHUNK])))
                      for s in range(0, len(padded), CHUNK)]
        if not pieces:     # no rows on this rank: the shape of one evaluated row
            with jax.enable_x64(True):
                one = np.asarray(batched(jax.numpy.zeros((CHUNK,) + x.shape[1:])))
            return one[:0]
        return np.concatenate(pieces)[:n]
    return evaluate


@pytest.fixture
def manufactured():
    return manufactured_source, exact_functions
