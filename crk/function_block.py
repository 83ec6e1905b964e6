"""Recording calls of external differentiable functions (JAX, Autograd, TensorFlow, ...).

A backend describes a function by a :class:`DifferentiableFunction`: evaluation and the three
derivative actions on plain values. :func:`record_call` evaluates it on the plain values of its
arguments, wraps the outputs as crk values and records one :class:`FunctionBlock`, whose four
derivative kinds call those actions. One block per call, whatever the function does inside.
"""
import numpy as np

from .block import Block
from .overloaded_type import OverloadedType, result_types
from .parallel.comm import comms_compatible, describe_comm
from .tape import annotating, get_working_tape


class DifferentiableFunction:
    """The contract a backend implements (all arguments and results are plain values).

    ``args`` is the full tuple of positional argument values (numpy arrays / floats); tangents
    and cotangents use None for zero. Results are numpy arrays or floats.
    """

    #: human-readable name for messages and block repr
    name = "function"

    def evaluate(self, args):
        """Outputs of the function: a tuple of arrays."""
        raise NotImplementedError

    def vjp(self, args, cotangents, argnums):
        """Cotangent of each argument in ``argnums`` given output ``cotangents`` (a tuple)."""
        raise NotImplementedError

    def jvp(self, args, tangents):
        """Tangent of each output given argument ``tangents`` (one per argument, None = 0)."""
        raise NotImplementedError

    def hvp(self, args, tangents, cotangents, argnums):
        """Second-order term per argument in ``argnums``: d/dt vjp(args + t·tangents, cot)."""
        raise NotImplementedError

    def release(self):
        """Drop any linearisation cached between forward and adjoint (optional)."""


class FunctionBlock(Block):
    """One call of a :class:`DifferentiableFunction` on the tape.

    ``args`` holds the call's plain argument values with None where a recorded dependency goes;
    ``dep_pos`` says which argument each dependency is.
    """

    def __init__(self, function, args, dep_pos, deps):
        super().__init__()
        self.function = function
        self.args = tuple(args)
        self.dep_pos = tuple(dep_pos)
        for bv in deps:
            self.add_dependency(bv)

    def __repr__(self):
        return f"<FunctionBlock {self.function.name}>"

    def _full_args(self, inputs):
        args = list(self.args)
        for pos, value in zip(self.dep_pos, inputs):
            args[pos] = value
        return tuple(args)

    def _full(self, per_dep):
        full = [None] * len(self.args)
        for pos, value in zip(self.dep_pos, per_dep):
            full[pos] = value
        return tuple(full)

    def release(self):
        self.function.release()

    def prepare_recompute_component(self, inputs, relevant_outputs):
        return self.function.evaluate(self._full_args(inputs))

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return _as_checkpoint(prepared[idx], block_variable.checkpoint)

    def prepare_evaluate_tlm(self, inputs, tlm_inputs, relevant_outputs):
        return self.function.jvp(self._full_args(inputs), self._full(tlm_inputs))

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        return _as_checkpoint(prepared[idx], block_variable.checkpoint)

    def _cotangents(self, adj_inputs):
        return tuple(None if a is None else np.asarray(a) for a in adj_inputs)

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        argnums = tuple(self.dep_pos[k] for k in relevant_dependencies)
        grads = self.function.vjp(self._full_args(inputs), self._cotangents(adj_inputs), argnums)
        return dict(zip(argnums, grads))

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        return _as_checkpoint(prepared[self.dep_pos[idx]], block_variable.checkpoint)

    def prepare_evaluate_hessian(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                 relevant_dependencies):
        args = self._full_args(inputs)
        argnums = tuple(self.dep_pos[k] for k in relevant_dependencies)
        out = {a: None for a in argnums}
        if any(h is not None for h in hessian_inputs):
            for a, g in zip(argnums, self.function.vjp(args, self._cotangents(hessian_inputs),
                                                         argnums)):
                out[a] = g
        if any(a is not None for a in adj_inputs) and any(t is not None for t in tlm_inputs):
            second = self.function.hvp(args, self._full(tlm_inputs),
                                       self._cotangents(adj_inputs), argnums)
            for a, s in zip(argnums, second):
                if s is not None:
                    out[a] = s if out[a] is None else out[a] + s
        return out

    def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                   block_variable, idx, prepared):
        return _as_checkpoint(prepared[self.dep_pos[idx]], block_variable.checkpoint)


def _as_checkpoint(value, like):
    """Match the kind of value the tape holds for a variable (float vs numpy array)."""
    if value is None:
        return None
    if isinstance(like, float):
        return float(np.asarray(value))
    return np.asarray(value)


def record_call(function, args, distributed_outputs=None):
    """Evaluate ``function`` on ``args`` and record it when any argument is recorded.

    ``args``: the call's positional arguments (crk values or plain values). Outputs are returned
    as a tuple of crk values (AdjFloat for replicated scalars, crk.ndarray otherwise), or plain
    numpy values when no argument is recorded. ``distributed_outputs``: whether outputs are
    distributed (default: when any recorded argument is distributed).
    """
    values = list(args)
    deps, dep_pos = [], []
    distributed = False
    comm = None
    for i, a in enumerate(args):
        if isinstance(a, OverloadedType):
            bv = a.block_variable
            values[i] = a._ad_create_checkpoint()
            bv.reattach(values[i])
            deps.append(bv)
            dep_pos.append(i)
            if a._ad_comm is not None:
                if comm is not None and not comms_compatible(comm, a._ad_comm):
                    raise ValueError(f"{function.name}: argument {i} lives on "
                                     f"{describe_comm(a._ad_comm)} but an earlier argument "
                                     f"lives on {describe_comm(comm)}")
                comm = comm or a._ad_comm
            distributed = distributed or a._ad_distributed
    outputs = tuple(function.evaluate(tuple(values)))
    if not deps:
        return outputs
    if distributed_outputs is not None:
        distributed = distributed_outputs
        if distributed and comm is None:      # only replicated inputs: pieces of COMM_WORLD
            from .parallel.comm import resolve_comm
            comm = resolve_comm(None)
    wrapped = tuple(result_types.wrap(np.asarray(o) if np.ndim(o) else float(o), distributed, comm)
                    for o in outputs)
    if annotating():
        for pos in dep_pos:
            values[pos] = None
        block = FunctionBlock(function, values, dep_pos, deps)
        for out in wrapped:
            block.add_output(out._bv if isinstance(out, OverloadedType) else out)
        get_working_tape().add_block(block)
    return wrapped
