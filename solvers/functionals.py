"""Fields at quadrature points, integrals over the domain, misfits and regularisation terms.

Two recorded linear maps bring a nodal field (a distributed crk array of owned values, see
:mod:`solvers.mesh`) to this rank's quadrature points: :func:`at_points` (values) and
:func:`gradient_at_points` (gradients). Functionals are then ordinary crk computations on
those, reduced by :func:`integral` (a global, deterministic sum with the quadrature weights):

* :func:`l2_misfit` — ∫ |u − d|² dx, the mass-matrix weighted misfit (not a nodal l2 sum);
* :func:`l2_norm_squared`, :func:`h1_seminorm_squared` — Tikhonov terms ∫ m² and ∫ |∇m|².

:func:`error_norms` (plain values) measures a discrete solution against an exact one.

Point layout: quadrature point q of element e is row ``q * E + e`` of this rank's array (E its
number of elements); :func:`quadrature` gives the weights and coordinates in that order.
The maps' forward and tangent gather ghost values, their adjoints add them back: collective.
"""
import numpy as np

from crk.parallel import agree
from crk.primitive import Primitive, defjvp, defneeds, defvjp, needs_nothing

from .fem import ElementBox, Q1Element


class Quadrature:
    """A Gauss rule of ``points`` per axis on every element this rank owns."""

    def __init__(self, mesh, points=2):
        self.mesh = mesh
        self.element = el = Q1Element(mesh.spacing, points)
        origin = tuple(s for s, _ in mesh.ghost_ranges)
        start = tuple(s - o for (s, _), o in zip(mesh.element_ranges, origin))
        self.box = ElementBox(start, mesh.element_shape, origin)
        self.weights = np.repeat(el.w, self.box.size)
        self.n = len(self.weights)

    def coordinates(self):
        """(n, dim) coordinates of the points (row q * E + e)."""
        x = self.box.points(self.element.xi, self.mesh.lower, self.mesh.spacing)
        return x.reshape(-1, self.mesh.dim)

    def values(self, grid):
        """(n, k) values at the points of a ghosted grid (..., k)."""
        C = self.box.corners(grid)
        return self.element.values(C).reshape(-1, grid.shape[-1])

    def gradients(self, grid):
        """(n, k, dim) gradients at the points of a ghosted grid (..., k)."""
        C = self.box.corners(grid)
        return self.element.gradients(C).reshape(-1, grid.shape[-1], self.mesh.dim)

    def values_T(self, V, k):
        """Ghosted grid (..., k) of nodal contributions of point values V (n, k)."""
        out = np.zeros(self.mesh.grid_shape(True) + (k,))
        nq = self.element.nq
        self.box.add(out, self.element.values_T(np.reshape(V, (nq, -1, k))))
        return out

    def gradients_T(self, G, k):
        out = np.zeros(self.mesh.grid_shape(True) + (k,))
        nq, d = self.element.nq, self.mesh.dim
        self.box.add(out, self.element.gradients_T(np.reshape(G, (nq, -1, k, d))))
        return out


def quadrature(mesh, points=2):
    """The :class:`Quadrature` of ``mesh`` with ``points`` per axis (made once per mesh)."""
    cache = mesh.__dict__.setdefault("_quadratures", {})
    q = cache.get(points)
    if q is None:
        q = cache[points] = Quadrature(mesh, points)
    return q


# -- the recorded maps ---------------------------------------------------------------------------
def _components(u):
    return 1 if np.ndim(u) == 1 else np.shape(u)[1]


def _values(u, mesh, points):
    agree(mesh.comm, where="solvers.at_points")
    Q = quadrature(mesh, points)
    v = Q.values(mesh.to_ghosted(np.reshape(u, (mesh.n_owned, -1))))
    return v.reshape(-1) if np.ndim(u) == 1 else v


def _values_T(g, ans, u, mesh, points):
    agree(mesh.comm, where="the adjoint of solvers.at_points")
    k = _components(u)
    Q = quadrature(mesh, points)
    return mesh.add_ghosted(Q.values_T(np.reshape(g, (-1, k)), k)).reshape(np.shape(u))


def _gradients(u, mesh, points):
    agree(mesh.comm, where="solvers.gradient_at_points")
    Q = quadrature(mesh, points)
    G = Q.gradients(mesh.to_ghosted(np.reshape(u, (mesh.n_owned, -1))))
    return G.reshape(-1, mesh.dim) if np.ndim(u) == 1 else G


def _gradients_T(g, ans, u, mesh, points):
    agree(mesh.comm, where="the adjoint of solvers.gradient_at_points")
    k = _components(u)
    Q = quadrature(mesh, points)
    grid = Q.gradients_T(np.reshape(g, (-1, k, mesh.dim)), k)
    return mesh.add_ghosted(grid).reshape(np.shape(u))


values_at_points = Primitive("field values at quadrature points", _values)
defvjp(values_at_points, _values_T)
defjvp(values_at_points, lambda d, ans, u, mesh, points: _values(d, mesh, points))
defneeds(values_at_points, needs_nothing)

gradients_at_points = Primitive("field gradients at quadrature points", _gradients)
defvjp(gradients_at_points, _gradients_T)
defjvp(gradients_at_points, lambda d, ans, u, mesh, points: _gradients(d, mesh, points))
defneeds(gradients_at_points, needs_nothing)


def _check_field(mesh, u, what):
    shape = np.shape(getattr(u, "value", u))
    if shape[:1] != (mesh.n_owned,) or len(shape) > 2:
        raise ValueError(f"{what}: expected this rank's owned nodal values, shape "
                         f"({mesh.n_owned},) or ({mesh.n_owned}, k), got {shape}")


def at_points(u, mesh, points=2):
    """Values of the nodal field ``u`` at this rank's quadrature points: (n,) or (n, k).
    Recorded (linear) when u is a crk value. Collective."""
    _check_field(mesh, u, "at_points")
    return values_at_points(u, mesh=mesh, points=points)


def gradient_at_points(u, mesh, points=2):
    """Gradients of the nodal field ``u`` at this rank's quadrature points: (n, dim) or
    (n, k, dim). Recorded (linear) when u is a crk value. Collective."""
    _check_field(mesh, u, "gradient_at_points")
    return gradients_at_points(u, mesh=mesh, points=points)


def integral(mesh, values, points=2):
    """∫ v dx from values at this rank's quadrature points (n, ...): summed over every axis and
    over ranks (a replicated value, identical on every rank). Collective."""
    import crk
    w = quadrature(mesh, points).weights
    v = values
    shape = np.shape(getattr(v, "value", v))
    if shape[:1] != w.shape:
        raise ValueError(f"integral: expected values at this rank's {len(w)} quadrature points "
                         f"(first axis), got shape {shape}")
    w = w.reshape(w.shape + (1,) * (len(shape) - 1))
    if not isinstance(v, crk.ndarray):
        v = crk.array(np.asarray(v), comm=mesh.comm, distributed=True)
    return crk.sum(v * w)


def _nodal(mesh, data, like, what):
    """``data`` as owned nodal values shaped like ``like`` (a function of the coordinates, a
    constant, plain values or a crk value)."""
    if callable(data) and not hasattr(data, "_ad_create_checkpoint"):
        v = np.asarray(data(mesh.coordinates()), dtype=np.float64)
        return v.reshape(np.shape(getattr(like, "value", like)))
    return data


def l2_misfit(mesh, u, data, points=2):
    """∫ |u − d|² dx for nodal fields u and d (d: owned values, a crk value, a constant or a
    function of the coordinates interpolated at the nodes). Replicated. Collective."""
    d = _nodal(mesh, data, u, "l2_misfit")
    diff = u - d
    r = at_points(diff, mesh, points)
    return integral(mesh, r * r, points)


def l2_norm_squared(mesh, m, points=2):
    """∫ |m|² dx (Tikhonov L2 term) for a nodal field m. Replicated. Collective."""
    r = at_points(m, mesh, points)
    return integral(mesh, r * r, points)


def h1_seminorm_squared(mesh, m, points=2):
    """∫ |∇m|² dx (Tikhonov H1-seminorm term) for a nodal field m. Replicated. Collective."""
    g = gradient_at_points(m, mesh, points)
    return integral(mesh, g * g, points)


def error_norms(mesh, u, exact, exact_gradient=None, points=4):
    """(‖u − u_ex‖_L2, |u − u_ex|_H1) for owned nodal values u and the exact solution given as
    functions of coordinates (x (n, dim) -> (n,) or (n, k); gradient -> (n, dim) or
    (n, k, dim)). Plain floats, identical on every rank. Collective."""
    from crk.parallel import sum_over_ranks
    Q = quadrature(mesh, points)
    u = np.asarray(getattr(u, "value", u))
    k = _components(u)
    grid = mesh.to_ghosted(u.reshape(mesh.n_owned, k))
    x = Q.coordinates()
    e = Q.values(grid) - np.asarray(exact(x), dtype=float).reshape(-1, k)
    l2 = float(np.sum(Q.weights[:, None] * e * e))
    h1 = 0.0
    if exact_gradient is not None:
        g = Q.gradients(grid) - np.asarray(exact_gradient(x), dtype=float).reshape(
            -1, k, mesh.dim)
        h1 = float(np.sum(Q.weights[:, None, None] * g * g))
    l2, h1 = sum_over_ranks(np.array([l2, h1]), mesh.comm)
    return float(np.sqrt(l2)), float(np.sqrt(h1))
