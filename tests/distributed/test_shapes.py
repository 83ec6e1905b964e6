"""Reshape, squeeze, expand_dims and concatenate of distributed arrays with global shapes, and
operands of elementwise operations on different layouts or global shapes."""
import numpy as np
import pytest

import crk

N = 12
VECTOR = np.linspace(-0.8, 1.2, N)
MATRIX = np.linspace(-0.9, 1.1, 4 * N).reshape(N, 4)

SHAPES = [
    ("ravel", lambda x: crk.ravel(x) * 1.5, MATRIX),
    ("ravel-then-slice", lambda x: crk.ravel(x)[:7] ** 2, MATRIX),
    ("rows-regrouped", lambda x: x.reshape(-1, 2, 2) * x.reshape(-1, 2, 2)[..., :1], MATRIX),
    ("pairs", lambda x: x.reshape(-1, 2) ** 2, VECTOR),
    ("explicit-global-shape", lambda x: np.reshape(x, (6, 8)) * 2.0, MATRIX),
    ("across-rows", lambda x: x.reshape(-1, 3) ** 3, MATRIX),
    ("triples-unknown-last", lambda x: x.reshape(4, -1) ** 2, VECTOR),
    ("squeeze-axis", lambda x: crk.squeeze(x[:, 1:2], axis=1) ** 2, MATRIX),
    ("squeeze-all", lambda x: crk.squeeze(crk.expand_dims(x, 1)) * x, VECTOR),
    ("expand-dims", lambda x: crk.expand_dims(x, -1) * x[:, None, :], MATRIX),
    ("concatenate", lambda x: crk.concatenate([x, x[::-1] ** 2, x[3:5]]), VECTOR),
    ("concatenate-matrix", lambda x: crk.concatenate([x[:2], x ** 2]), MATRIX),
    ("hstack-vectors", lambda x: np.hstack([x, x[2:]]) * 2.0, VECTOR),
    ("vstack-matrices", lambda x: np.vstack([x[5:], x]) * 2.0, MATRIX),
    ("concatenate-axis1", lambda x: crk.concatenate([x, x[::-1]], axis=1) ** 2, MATRIX),
]


@pytest.mark.mpi
@pytest.mark.parametrize("name,fn,data", SHAPES, ids=[s[0] for s in SHAPES])
def test_shape_operation(name, fn, data, splits, check_against_serial):
    check_against_serial(fn, [data], splits, expected=fn(data))


@pytest.mark.mpi
def test_squeeze_of_a_single_row_gathers(comm, assert_replicated):
    x = crk.array(MATRIX[:1][slice(0, 1) if comm.rank == 0 else slice(0, 0)], comm=comm,
                  distributed=True)
    y = crk.squeeze(x)
    assert not y.distributed and y.shape == (4,)
    assert_replicated(y)
    np.testing.assert_array_equal(y.value, MATRIX[0])


@pytest.mark.mpi
def test_shape_errors_are_clear(comm, splits):
    x = crk.array(MATRIX[splits(N)], comm=comm, distributed=True)
    with pytest.raises(ValueError, match=r"cannot reshape array of size 48 into shape \(5, -1\)"):
        x.reshape(5, -1)
    with pytest.raises(ValueError, match=r"cannot reshape array of size 48 into shape \(7, 4\) "
                                         r"\(global shapes: the distributed array is \(12, 4\)"):
        x.reshape(7, 4)
    with pytest.raises(ValueError, match="a distributed array cannot be reshaped to a 0-d"):
        x.reshape(())
    with pytest.raises(ValueError, match="axis 0 of a distributed array is its distributed axis"):
        crk.squeeze(x, axis=0)
    with pytest.raises(ValueError, match="a new axis 0 would move the distributed axis"):
        crk.expand_dims(x, 0)
    with pytest.raises(ValueError, match="all the input array dimensions"):
        crk.concatenate([x, x[:, :2]])


_PAIRS = [
    ("differently-split", lambda x, y: x * y, None),
    ("slices-of-one-array", lambda x, y: x[1:] * y[:-1] + x[:-1], None),
    ("where", lambda x, y: crk.where(np.asarray(x) > 0, x, y[::-1]), None),
    ("concatenate-columns", lambda x, y: crk.concatenate([x[:, None], y[:, None]], axis=1) ** 2,
     None),
    ("stack-columns", lambda x, y: crk.stack([x, y[::-1]], axis=1) ** 2, None),
    ("global-dot", lambda x, y: crk.dot(x[1:], y[:-1]) * x, None),
    ("replicated-full-length", lambda x, y: x * crk.gather(y) + crk.array(VECTOR),
     lambda x, y: x * y + VECTOR),
    ("replicated-length-one", lambda x, y: x.reshape(-1, 1) * crk.array([[2.0]]) + y[:, None],
     lambda x, y: x.reshape(-1, 1) * 2.0 + y[:, None]),
]


@pytest.mark.mpi
@pytest.mark.parametrize("fn,reference", [p[1:] for p in _PAIRS], ids=[p[0] for p in _PAIRS])
def test_operands_on_different_layouts(fn, reference, comm, splits, check_against_serial):
    """Operands split differently (here y is spread as evenly as possible, x unevenly) or
    replicated ones lining up with the distributed axis give the serial result."""
    def run(x, y):
        return fn(x, crk.redistribute(y) if y.comm.size > 1 else y)
    y = VECTOR[::-1] ** 2
    check_against_serial(run, [VECTOR, y], splits, expected=(reference or fn)(VECTOR, y))


@pytest.mark.mpi
def test_broadcasting_errors_on_global_shapes(comm, splits):
    x = crk.array(VECTOR[splits(N)], comm=comm, distributed=True)
    m = crk.array(MATRIX[splits(N)], comm=comm, distributed=True)
    with pytest.raises(ValueError, match=r"crk subtract: operands could not be broadcast together "
                                         r"with global shapes \(11,\) \(distributed\) \(12,\) "
                                         r"\(distributed\); distributed operands must have the "
                                         r"same global length"):
        x[1:] - x
    with pytest.raises(ValueError, match=r"global shapes \(12, 4\) \(distributed\) \(12,\) "
                                         r"\(distributed\); distributed operands must have the "
                                         r"same number of dimensions"):
        m * x
    with pytest.raises(ValueError, match=r"global shapes \(12,\) \(distributed\) \(5,\) "
                                         r"\(replicated\)"):
        x + crk.array(VECTOR[:5])
    with pytest.raises(ValueError, match=r"a replicated operand of shape \(2, 12\) would "
                                         r"broadcast the distributed operands"):
        x * crk.array(np.ones((2, N)))
