"""A user's own function wrapped as a Block with hand-written derivatives (the documented way),
Taylor-tested serially and with distributed inputs and a replicated parameter."""
import numpy as np
import pytest

import crk


class CubicBlock(crk.Block):
    """y = a * x**3 + sin(x) elementwise, for an array x and a scalar a."""

    def __init__(self, x, a):
        super().__init__()
        self.add_dependency(x)
        self.add_dependency(a)

    def recompute_component(self, inputs, block_variable, idx, prepared):
        x, a = inputs
        return a * x ** 3 + np.sin(x)

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        x, a = inputs
        dx, da = tlm_inputs
        out = 0.0
        if dx is not None:
            out = out + (3.0 * a * x ** 2 + np.cos(x)) * dx
        if da is not None:
            out = out + x ** 3 * da
        return out

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        x, a = inputs
        g = adj_inputs[0]
        if idx == 0:
            return g * (3.0 * a * x ** 2 + np.cos(x))
        return float(np.sum(g * x ** 3))        # rank-local: the tape sums it over ranks

    def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                   block_variable, idx, prepared):
        x, a = inputs
        dx, da = (0.0 if t is None else t for t in tlm_inputs)
        g, h = adj_inputs[0], hessian_inputs[0]
        if idx == 0:
            return h * (3.0 * a * x ** 2 + np.cos(x)) + g * (
                (6.0 * a * x - np.sin(x)) * dx + 3.0 * x ** 2 * da)
        return float(np.sum(h * x ** 3 + g * 3.0 * x ** 2 * dx))


def cubic(x, a):
    # The forward value is computed on plain values (float(a), x.value): computing it with the
    # recorded a would record extra blocks.
    y = crk.array(float(a) * x.value ** 3 + np.sin(x.value), comm=x.comm,
                  distributed=x.distributed)
    if crk.annotating():
        block = CubicBlock(x, a)
        block.add_output(y)
        crk.get_working_tape().add_block(block)
    return y


@pytest.mark.mpi
def test_user_block_taylor_and_parallel_consistency(comm, split, assert_replicated):
    n = 13
    xs = np.linspace(-1.0, 1.0, n)
    local = split(n)
    with crk.Tape():
        x = crk.array(xs[local], comm=comm, distributed=True)
        a = crk.AdjFloat(0.7)
        J = crk.sum(cubic(x, a) ** 2.0)
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        h = [np.cos(np.arange(n))[local], 0.3]
        rates = crk.taylor_to_dict(rf, [x, a], h)
        assert min(rates["R1"]["Rate"]) > 1.9
        assert min(rates["R2"]["Rate"]) > 2.9
        dx, da = rf.derivative()
        assert_replicated(float(da))
    with crk.Tape():
        xr, ar = crk.array(xs), crk.AdjFloat(0.7)
        dxr, dar = crk.ReducedFunctional(crk.sum(cubic(xr, ar) ** 2.0),
                                         [crk.Control(xr), crk.Control(ar)]).derivative()
    assert float(da) == pytest.approx(float(dar), rel=1e-12)
    np.testing.assert_allclose(np.concatenate(comm.allgather(dx.value)), dxr.value, rtol=1e-12)


def test_wrong_adjoint_is_caught_by_taylor_and_duality():
    class Wrong(CubicBlock):
        def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
            return 1.1 * super().evaluate_adj_component(inputs, adj_inputs, block_variable,
                                                        idx, prepared)

    with crk.Tape() as tape:
        x, a = crk.array([0.1, 0.5, 0.9]), crk.AdjFloat(1.3)
        y = cubic(x, a)
        tape.get_blocks()[-1].__class__ = Wrong
        J = crk.sum(y * y)
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        assert crk.taylor_test(rf, [x, a], [np.ones(3), 1.0]) < 1.2
        F = crk.ReducedFunction(y, [crk.Control(x), crk.Control(a)])
        assert crk.check_duality(F, [np.ones(3), 1.0]) > 1e-3
        assert crk.taylor_test(F, [x, a], [np.ones(3), 1.0]) > 1.9   # its TLM is right


def test_add_output_and_dependency_reject_plain_values():
    block = CubicBlock(crk.array([1.0]), crk.AdjFloat(1.0))
    with pytest.raises(TypeError, match="expected an overloaded value"):
        block.add_output(np.ones(2))
    with pytest.raises(TypeError, match=r"Wrap plain values with\s+crk.array"):
        block.add_dependency(3.0)
