"""numpy's dispatch on crk values: every ufunc in numpy's namespace and every function crk
claims, called with AdjFloats and with crk arrays, is recorded (and passes all derivative
checks), returns a documented plain value, or is refused with "not recorded by crk" — there is no
fourth outcome. Distributed runs (under mpirun) compare with serial numpy on the whole array.
"""
import re
from pathlib import Path

import numpy as np
import pytest

import crk
from crk.numpy_api import dispatch
from crk.overloaded_type import OverloadedType, plain_value
from crk.primitive import Primitive
from numpy_cases import (CLAIMED, FUNCTION_CASES, OPERATOR_CASES, PLAIN_CALLS, SCALAR_REFUSALS,
                         UFUNC_DOMAINS, WALK_ARGUMENTS, all_ufuncs, recorded_ufunc_cases)
from taylor_cases import check_case, record_block_names, runs

UFUNC_CASES = recorded_ufunc_cases()
ALL_CASES = UFUNC_CASES + FUNCTION_CASES


@pytest.mark.mpi
@pytest.mark.parametrize("case,distributed", runs(UFUNC_CASES))
def test_recorded_ufunc(case, distributed, comm, split, assert_replicated):
    check_case(case, distributed, comm, split, assert_replicated)


@pytest.mark.mpi
@pytest.mark.parametrize("case,distributed", runs(FUNCTION_CASES))
def test_recorded_function(case, distributed, comm, split, assert_replicated):
    check_case(case, distributed, comm, split, assert_replicated)


def test_the_checks_catch_a_silent_exit(monkeypatch, comm, split, assert_replicated):
    """Mutation: a clip that computes on the plain value (as numpy did on AdjFloats) records
    clip(x) * x with the derivative clip(x) instead of 2x. The tape is consistent with itself
    (Taylor tests pass), but its replay is not the function: the replay check fails."""
    def leaky_clip(a, a_min=None, a_max=None):
        return np.clip(plain_value(a), a_min, a_max)
    monkeypatch.setitem(dispatch.FUNCTIONS, np.clip, leaky_clip)
    case = next(c for c in FUNCTION_CASES if c.name == "clip-scalar")
    with pytest.raises(AssertionError, match="differs from a fresh recording"):
        check_case(case, False, comm, split, assert_replicated)


# -- the walk ----------------------------------------------------------------------------------
def _inputs(ufunc, kind):
    lo, hi = UFUNC_DOMAINS.get(ufunc.__name__, (0.2, 0.9))
    if np.ndim(lo):
        lo, hi = max(lo[0], hi[0]), min(lo[1], hi[1])
    mid = 0.5 * (lo + hi)
    if kind == "AdjFloat":
        x = crk.AdjFloat(mid)
    else:
        x = crk.array([[mid, 0.9 * mid + 0.1 * hi], [0.8 * mid + 0.2 * lo, mid]])
    arguments = WALK_ARGUMENTS.get(ufunc)
    return list(arguments(x)) if arguments else [x] * ufunc.nin


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _covered(fn):
    return [case for case in ALL_CASES if fn in case.covers]


@pytest.mark.parametrize("kind", ["AdjFloat", "array"])
@pytest.mark.parametrize("ufunc", all_ufuncs(), ids=lambda u: u.__name__)
def test_every_ufunc_is_recorded_plain_or_refused(ufunc, kind):
    inputs = _inputs(ufunc, kind)
    recorded = ufunc in dispatch.UFUNCS or ufunc in dispatch.UFUNC_HANDLERS
    with crk.Tape(), np.errstate(all="ignore"):
        try:
            out = ufunc(*inputs)
        except TypeError as e:
            assert "not recorded by crk" in str(e)
            assert not recorded and ufunc not in dispatch.PLAIN_UFUNCS
            return
        except ValueError:          # numpy refuses these inputs itself (a gufunc on scalars)
            assert kind == "AdjFloat" and ufunc in SCALAR_REFUSALS
            with pytest.raises(ValueError):
                ufunc(*[plain_value(x) for x in inputs])
            return
    if any(isinstance(o, OverloadedType) for o in _outputs(out)):
        assert recorded
        kinds = {"AdjFloat": lambda c: all(s == () for s in c.shapes),
                 "array": lambda c: any(s != () for s in c.shapes)}
        assert any(kinds[kind](c) for c in _covered(ufunc)), \
            f"no {kind} Taylor case for numpy.{ufunc.__name__}"
    else:
        assert ufunc in dispatch.PLAIN_UFUNCS, f"numpy.{ufunc.__name__} left the tape silently"
        with np.errstate(all="ignore"):
            expected = ufunc(*[plain_value(x) for x in inputs])
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("fn", sorted(CLAIMED, key=lambda f: f.__qualname__ if hasattr(
    f, "__qualname__") else str(f)), ids=lambda f: getattr(f, "__qualname__", str(f)))
def test_every_claimed_function_is_checked_on_adjfloat_and_array(fn):
    cases = _covered(fn)
    assert any(any(s != () for s in c.shapes) for c in cases), "no array case"
    if fn in SCALAR_REFUSALS:
        with pytest.raises(Exception):          # numpy refuses a plain 0-d value...
            SCALAR_REFUSALS[fn](0.5)
        with pytest.raises((TypeError, ValueError)):     # ...and crk an AdjFloat, clearly
            SCALAR_REFUSALS[fn](crk.AdjFloat(0.5))
    else:
        assert any(all(s == () for s in c.shapes) for c in cases), "no AdjFloat case"


@pytest.mark.parametrize("kind", ["AdjFloat", "array"])
@pytest.mark.parametrize("fn", list(dispatch.PLAIN_FUNCTIONS), ids=lambda f: f.__name__)
def test_plain_functions_return_plain_values(fn, kind):
    x = crk.AdjFloat(0.7) if kind == "AdjFloat" else crk.array([[0.7, -0.2], [0.0, 0.4]])
    call = PLAIN_CALLS[fn]
    try:
        expected = call(plain_value(x))
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            call(x)
        return
    out = call(x)
    for o in _outputs(out):
        assert not isinstance(o, OverloadedType)
    if isinstance(out, tuple):
        for o, e in zip(out, expected):
            np.testing.assert_array_equal(o, e)
    elif fn is not np.empty_like:
        np.testing.assert_array_equal(out, expected)


def _array_functions(namespace):
    return {name: value for name, value in vars(namespace).items()
            if not name.startswith("_") and hasattr(value, "_implementation")}


@pytest.mark.parametrize("value", [crk.AdjFloat(0.5), crk.array([0.5, 0.25])],
                         ids=["AdjFloat", "array"])
def test_unclaimed_array_functions_are_refused(value):
    functions = {**_array_functions(np), **{f"linalg.{k}": v for k, v in
                                            _array_functions(np.linalg).items()}}
    assert len(functions) > 200
    claimed = set(dispatch.FUNCTIONS) | set(dispatch.PLAIN_FUNCTIONS)
    for name, fn in functions.items():
        if fn in claimed:
            continue
        with pytest.raises(TypeError, match="is not recorded by crk"):
            value.__array_function__(fn, (type(value),), (value,), {})
    with pytest.raises(TypeError, match="numpy.cumprod is not recorded by crk"):
        np.cumprod(value)
    with pytest.raises(TypeError, match="numpy.add.outer is not recorded by crk"):
        np.add.outer(value, value)
    with pytest.raises(TypeError, match=r"numpy.sum: got an unexpected keyword argument "
                                        r"'where'.*crk records sum\(x, axis=None"):
        np.sum(value, where=True)
    with pytest.raises(TypeError, match=r"in-place results cannot be recorded"):
        np.sin(value, out=np.zeros(np.shape(value)))


def test_every_primitive_is_reached(comm):
    """Each primitive in crk.numpy_rules is recorded by some case here, in test_numpy_ops, or
    (for the ones that communicate) by a distributed call."""
    from crk import numpy_rules
    prims = {p.name for p in vars(numpy_rules).values() if isinstance(p, Primitive)}
    reached = record_block_names(ALL_CASES + OPERATOR_CASES)
    with crk.Tape() as tape:
        x = crk.array(np.arange(1.0, 7.0).reshape(3, 2), comm=comm, distributed=True)
        crk.sum(x), crk.dot(x[:, 0], x[:, 1]), crk.norm(x), crk.max(x), crk.prod(x, axis=0)
        crk.cumsum(x, axis=0), crk.einsum("ij,ij->", x, x)
        reached |= {b.prim.name for b in tape.get_blocks()}
    assert prims - reached == set()


def test_docs_table_lists_every_function():
    """docs/numpy.md names every ufunc and function in the dispatch tables."""
    text = (Path(__file__).parents[2] / "docs" / "numpy.md").read_text()
    named = set(re.findall(r"`(?:np\.)?([a-z_0-9.]+)(?:\(\))?`", text))
    tables = (list(dispatch.UFUNCS) + list(dispatch.UFUNC_HANDLERS) + list(dispatch.PLAIN_UFUNCS)
              + list(dispatch.REFUSED_UFUNCS) + list(dispatch.PLAIN_FUNCTIONS)
              + list(dispatch.FUNCTIONS))
    missing = {f.__name__ for f in tables} - named - {"norm"} | \
        ({"linalg.norm"} - named)
    assert not missing, f"docs/numpy.md does not mention {sorted(missing)}"
    for ufunc, method in dispatch.UFUNC_METHODS:
        assert f"{ufunc.__name__}.{method}" in named
