"""Shape declarations of point maps, shared by every backend (pure Python and numpy).

A point map declares one shape per argument and per output: ``(-1, *s)`` is pointwise (``n``
points of shape ``s``, the point axis first), a plain shape such as ``()`` or ``(3,)`` is one
value shared by all points (a parameter). This module reads those declarations
(:func:`parse_shape`), applies the ``pointwise=`` override of the backends' ``point_map``
decorators (:func:`apply_pointwise`) and takes argument names for error messages from the
user's function (:func:`positional_names`). Nothing here imports a backend or is collective.
"""
import inspect

import numpy as np


def parse_shape(shape, what):
    """``(pointwise, per-point shape)`` of a declared shape; ValueError naming ``what`` if the
    declaration is not a tuple of sizes with an optional leading -1."""
    shape = tuple(shape)
    if any((not isinstance(d, (int, np.integer))) or d < -1 for d in shape) or -1 in shape[1:]:
        raise ValueError(f"{what}: a shape is a tuple of sizes with an optional leading -1 for "
                         f"the point axis, got {shape!r}")
    pointwise = bool(shape) and shape[0] == -1
    return pointwise, tuple(int(d) for d in (shape[1:] if pointwise else shape))


def is_shape(x):
    """True when ``x`` is one shape (a tuple of ints), False for a tuple of shapes."""
    return isinstance(x, tuple) and all(isinstance(d, (int, np.integer)) for d in x)


def format_shape(shape):
    """``shape`` as Python writes a tuple, entries may be strings: ``("n", 2)`` -> ``(n, 2)``."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def apply_pointwise(in_shapes, pointwise, name="point map"):
    """The argument shapes after the ``pointwise`` override of the ``point_map`` decorators.

    ``pointwise=None`` leaves ``in_shapes`` as given. Otherwise a bool (for every argument) or
    one bool per argument decides whether the argument has the leading point axis: ``True``
    makes ``s`` into ``(-1, *s)`` (a per-point value of shape ``s``), ``False`` makes
    ``(-1, *s)`` into ``s`` (one value of shape ``s`` shared by all points); shapes already of
    the asked kind are unchanged.
    """
    in_shapes = [tuple(s) for s in in_shapes]
    if pointwise is None:
        return tuple(in_shapes)
    if isinstance(pointwise, (bool, np.bool_)):
        flags = [bool(pointwise)] * len(in_shapes)
    else:
        flags = list(pointwise)
        if len(flags) != len(in_shapes) or not all(isinstance(f, (bool, np.bool_))
                                                   for f in flags):
            raise ValueError(f"{name}: argument 'pointwise' must be None, a bool or one bool per "
                             f"argument ({len(in_shapes)}), got {pointwise!r}")
    out = []
    for shape, flag in zip(in_shapes, flags):
        has_axis = bool(shape) and shape[0] == -1
        if flag and not has_axis:
            shape = (-1,) + shape
        elif not flag and has_axis:
            shape = shape[1:]
        out.append(shape)
    return tuple(out)


def positional_names(func, count):
    """The Python names of ``func``'s first ``count`` positional parameters (None if it takes
    ``*args``); raises when ``func`` cannot take ``count`` positional arguments."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):          # builtins without a signature
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= count <= len(positional):
        raise ValueError(
            f"point_map: {getattr(func, '__name__', func)!r} takes {len(required)} positional "
            f"arguments ({', '.join(p.name for p in positional)}) but in_shapes declares "
            f"{count}; give one shape per argument")
    return tuple(p.name for p in positional[:count])
