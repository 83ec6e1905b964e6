"""Point sensors: a field's values at arbitrary points, each point read by exactly one rank.

A sensor at x lies in the element floor((x − lower) / h) (the last element for points on the
upper boundary); the rank owning that element interpolates the Q1 field there (bilinear /
trilinear) and the values of all sensors are summed over ranks in rank order, so the result is
replicated and bit-identical on every rank. Recorded as a linear primitive: forward and tangent
gather ghost values and sum over ranks, the adjoint scatters the sensors' weights into the
owning ranks' elements. Collective.
"""
import numpy as np

from crk.parallel import agree, sum_over_ranks
from crk.primitive import Primitive, defjvp, defneeds, defvjp, needs_nothing

from .fem import corner_bits, shape_functions


class Sensors:
    """Sensors at ``points`` ((n_sensors, dim), the same on every rank) on ``mesh``.

    ``mine``: which sensors this rank reads; ``weights`` (n_mine, 2^dim) and ``nodes``
    (n_mine, 2^dim): the shape-function values and flat ghosted-grid node indices of their
    elements' corners. Not collective.
    """

    def __init__(self, mesh, points):
        x = np.asarray(points, dtype=np.float64)
        if x.ndim == 1 and mesh.dim == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2 or x.shape[1] != mesh.dim:
            raise ValueError(f"Sensors: argument 'points' must have shape (n, {mesh.dim}), got "
                             f"{np.shape(points)}")
        lower, upper, h = (np.asarray(v) for v in (mesh.lower, mesh.upper, mesh.spacing))
        tol = 1e-12 * np.max(upper - lower)
        outside = np.any((x < lower - tol) | (x > upper + tol), axis=1)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise ValueError(f"Sensors: point {k} at {x[k].tolist()} lies outside the box "
                             f"{list(mesh.lower)} .. {list(mesh.upper)}")
        self.mesh = mesh
        self.n = len(x)
        cells = np.asarray(mesh.cells)
        element = np.clip(np.floor((x - lower) / h).astype(np.int64), 0, cells - 1)
        xi = np.clip((x - lower) / h - element, 0.0, 1.0)
        lo = np.array([s for s, _ in mesh.element_ranges])
        hi = np.array([e for _, e in mesh.element_ranges])
        self.mine = np.all((element >= lo) & (element < hi), axis=1)
        self.weights, _ = shape_functions(xi[self.mine], mesh.spacing)
        origin = np.array([s for s, _ in mesh.ghost_ranges])
        local = element[self.mine] - origin                             # ghosted (i, j, k)
        strides = np.cumprod((1,) + tuple(mesh.ghost_shape[:-1]))
        offsets = corner_bits(mesh.dim) @ strides
        self.nodes = (local @ strides)[:, None] + offsets[None, :]

    def read(self, grid):
        """This rank's sensors' values (n_mine, k) from a ghosted grid (..., k)."""
        flat = grid.reshape(-1, grid.shape[-1])
        return np.einsum("sa,sak->sk", self.weights, flat[self.nodes])

    def values(self, u):
        """Replicated (n, k) values of owned nodal values u. Collective."""
        mesh = self.mesh
        u = np.reshape(u, (mesh.n_owned, -1))
        full = np.zeros((self.n, u.shape[1]))
        full[self.mine] = self.read(mesh.to_ghosted(u))
        return sum_over_ranks(full, mesh.comm)

    def values_T(self, g, shape):
        """Owned nodal values of shape ``shape`` receiving the sensors' adjoint g (n, k).
        Collective."""
        mesh = self.mesh
        k = 1 if len(shape) == 1 else shape[1]
        g = np.reshape(g, (self.n, k))[self.mine]
        grid = np.zeros(mesh.grid_shape(True) + (k,))
        flat = grid.reshape(-1, k)
        np.add.at(flat, self.nodes.reshape(-1),
                  (self.weights[:, :, None] * g[:, None, :]).reshape(-1, k))
        return mesh.add_ghosted(grid).reshape(shape)


def _forward(u, sensors):
    agree(sensors.mesh.comm, where="solvers point sensors")
    v = sensors.values(u)
    return v.reshape(-1) if np.ndim(u) == 1 else v


def _adjoint(g, ans, u, sensors):
    agree(sensors.mesh.comm, where="the adjoint of solvers point sensors")
    return sensors.values_T(g, np.shape(u))


sensor_values = Primitive("point sensors", _forward, reduces=True)
defvjp(sensor_values, _adjoint)
defjvp(sensor_values, lambda d, ans, u, sensors: _forward(d, sensors))
defneeds(sensor_values, needs_nothing)


def point_values(mesh, u, points):
    """Values of the nodal field ``u`` at ``points`` (n, dim): a replicated array (n,) (one
    component) or (n, k), recorded when u is a crk value. Collective."""
    sensors = points if isinstance(points, Sensors) else Sensors(mesh, points)
    return sensor_values(u, sensors=sensors)
