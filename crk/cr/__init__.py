"""Constitutive relations: point maps evaluated at quadrature points.

``point_map.py`` holds the backend-independent :class:`PointMap` (shape checks, recording,
composition, the checks and decorator the backends share) and ``shapes.py`` the reading of shape
declarations (``apply_pointwise``, argument names); each backend implements the map in its own
module (``crk.cr.autograd`` for Autograd, ``crk.cr.jax`` for JAX, ``crk.cr.tensorflow`` for
TensorFlow) and imports only these two, never another backend's module. Importing ``crk.cr``
loads no backend.
"""
from .point_map import ComposedPointMap, PointMap

__all__ = ["PointMap", "ComposedPointMap"]
