"""Point maps and pointwise JAX functions called with distributed arguments on different layouts
(shifted slices of one array) see the same points on every rank, and give the serial result."""
import numpy as np
import pytest

import crk

N = 9
DATA = np.linspace(0.2, 1.2, N)


def _autograd_flux():
    import autograd.numpy as anp
    from crk.cr.autograd import point_map

    @point_map(((-1,), (-1,), ()), (-1,), bare=True)
    def flux(a, b, p):
        return p * a * anp.square(b)
    return flux


def _jax_flux():
    from crk.cr.jax import point_map

    @point_map(((-1,), (-1,), ()), (-1,), bare=True)
    def flux(a, b, p):
        return p * a * b ** 2
    return flux


def _jax_pointwise():
    f = crk.overload_jax(lambda a, b: a * b ** 2, pointwise=True)
    return lambda a, b, p: p * f(a, b)


MAKERS = {"autograd-point-map": _autograd_flux, "jax-point-map": _jax_flux,
          "jax-pointwise": _jax_pointwise}


@pytest.mark.mpi
@pytest.mark.parametrize("kind", list(MAKERS))
def test_shifted_slices_as_pointwise_arguments(kind, splits, check_against_serial):
    flux = MAKERS[kind]()
    check_against_serial(lambda x: flux(x[1:], x[:-1], 1.5), [DATA], splits,
                         expected=1.5 * DATA[1:] * DATA[:-1] ** 2)


@pytest.mark.mpi
def test_different_numbers_of_points_are_refused_everywhere(comm, split):
    flux = _autograd_flux()
    x = crk.array(DATA[split(N)], comm=comm, distributed=True)
    with pytest.raises(ValueError, match=r"the distributed arguments have different global "
                                         r"numbers of points \(8, 9\)"):
        flux(x[1:], x, 1.5)
