"""Boundary conditions: where they act and what values they take.

* :class:`DirichletBC` fixes components of u on a set of nodes: box faces (``"xmin"``, ...,
  ``"boundary"`` for all of them, several in a list) or the nodes where a function of the
  coordinates is True. Its value is a constant, a function of the coordinates, or a recorded
  value: a replicated constant (``crk.AdjFloat`` / replicated ``crk.array``, e.g. a control) or a
  distributed nodal field (owned values, shape (n_owned,) or (n_owned, k)).
* :class:`NeumannBC` adds ∫_Γ g · v ds on one box face; g is a constant, a function of the
  coordinates or a recorded value as above (a field gives g by Q1 interpolation on the face).

The *where* of a condition is fixed when a problem is made (the Jacobian's sparsity and
constrained rows depend on it); the value may change between solves (``bc.value = ...``) and is
read, and recorded, at each solve.
"""
import numpy as np

from crk.overloaded_type import OverloadedType, plain_value


class DirichletBC:
    """u[components] = value on the nodes ``where``.

    ``where``: a face name (see :data:`solvers.mesh.FACES`), ``"boundary"``, an (axis, side)
    pair, a list of those, or a callable of node coordinates ((n, dim) -> (n,) booleans).
    ``value``: a float, one float per constrained component, a callable of coordinates
    ((n, dim) -> (n,) or (n, k)), or a crk value (replicated constant or distributed field).
    ``components``: None (all), an int or a sequence of ints.
    """

    def __init__(self, where, value=0.0, components=None):
        self.where = where
        self.value = value
        self.components = components

    def __repr__(self):
        return f"DirichletBC({self.where!r}, components={self.components!r})"


class NeumannBC:
    """Adds ∫_face g · v ds to the right-hand side (g: the flux through the face, outward).

    ``face``: one box face (name or (axis, side)); ``value``: a float, m floats, a callable of
    coordinates ((n, dim) -> (n,) or (n, m)) or a crk value (replicated constant or a
    distributed nodal field of m components).
    """

    def __init__(self, face, value):
        self.face = face
        self.value = value

    def __repr__(self):
        return f"NeumannBC({self.face!r})"


def value_kind(value, what, n_owned, k):
    """How a source/boundary value with ``k`` components is given: "function" (of the
    coordinates), "field" (owned nodal values, (n_owned,) or (n_owned, k)) or "constant" (a
    float or k floats). Recorded values (crk) are fields when distributed, else constants."""
    if isinstance(value, OverloadedType):
        return "field" if value._ad_distributed else "constant"
    if callable(value):
        return "function"
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0 or v.shape == (k,):
        return "constant"
    if v.shape in ((n_owned,), (n_owned, k)):
        return "field"
    raise ValueError(f"{what}: expected a float, {k} floats, a function of the coordinates or "
                     f"owned nodal values of shape ({n_owned},{'' if k == 1 else f' {k}'}), "
                     f"got an array of shape {v.shape}")


def component_values(value, k, n, what):
    """A plain constant/field value broadcast to shape (n, k)."""
    v = np.asarray(plain_value(value), dtype=np.float64)
    if v.ndim == 0:
        return np.broadcast_to(v, (n, k))
    if v.ndim == 1 and v.shape == (k,) and (n != k or k == 1):
        return np.broadcast_to(v, (n, k))
    if v.shape == (n,) and k == 1:
        return v.reshape(n, 1)
    if v.shape == (n, k):
        return v
    raise ValueError(f"{what}: expected a float, {k} floats, or nodal values of shape ({n},"
                     f"{'' if k == 1 else f' {k}'}), got shape {v.shape}")


def function_values(fn, x, k, what):
    """Values of a user function of coordinates x (n, dim) as (n, k)."""
    try:
        v = np.asarray(fn(x), dtype=np.float64)
    except Exception as e:
        raise type(e)(f"{what}: the function of the coordinates raised: {e}") from e
    n = x.shape[0]
    if v.shape == (n,) and k == 1:
        return v.reshape(n, 1)
    if v.shape == (n, k):
        return v
    if v.ndim == 0 or v.shape == (k,):
        return np.broadcast_to(v, (n, k))
    raise ValueError(f"{what}: the function of the coordinates must return shape ({n},) or "
                     f"({n}, {k}) for {n} points, it returned {v.shape}")


def node_mask(mesh, where, ghosted, what):
    """Boolean mask of the owned (or ghosted) nodes selected by ``where``."""
    if callable(where):
        x = mesh.coordinates(ghosted)
        mask = np.asarray(where(x), dtype=bool)
        if mask.shape != (x.shape[0],):
            raise ValueError(f"{what}: the node marker must return one boolean per node, "
                             f"shape ({x.shape[0]},), it returned {mask.shape}")
        return mask
    if isinstance(where, (list, tuple)) and where and not _is_pair(where):
        mask = np.zeros(mesh.n_ghosted if ghosted else mesh.n_owned, dtype=bool)
        for w in where:
            mask |= node_mask(mesh, w, ghosted, what)
        return mask
    return mesh.face_mask(where, ghosted)


def _is_pair(where):
    return len(where) == 2 and all(isinstance(v, (int, np.integer)) for v in where)


def component_list(components, m, what):
    if components is None:
        return list(range(m))
    comps = [int(c) for c in np.atleast_1d(components)]
    if not comps or any(not 0 <= c < m for c in comps) or len(set(comps)) != len(comps):
        raise ValueError(f"{what}: argument 'components' must name distinct components in "
                         f"0..{m - 1}, got {components!r}")
    return comps
