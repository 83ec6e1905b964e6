"""Constitutive relations: point maps evaluated at quadrature points.

``point_map.py`` holds the backend-independent :class:`PointMap` (shapes, recording,
composition); each backend implements it in its own module (``crk.cr.autograd`` for Autograd,
``crk.cr.jax`` for JAX, ``crk.cr.tensorflow`` for TensorFlow). Importing ``crk.cr`` loads no
backend.
"""
from .point_map import ComposedPointMap, PointMap

__all__ = ["PointMap", "ComposedPointMap"]
