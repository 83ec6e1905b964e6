"""Block: one recorded operation, with its four derivative kinds on plain values.

The base class does the iteration, relevance filtering and accumulation; a block type writes only
hooks on plain values (the ``*_component`` methods, optionally ``prepare_*``). This mirrors
pyadjoint's Block so pyadjoint blocks port with small changes; the differences are that hooks see
plain values (never overloaded objects) and the Hessian hook receives the input tangents directly.
"""
from .block_variable import BlockVariable
from .lifetime import pin


class Block:
    """Base class of recorded operations.

    Writing a block for your own function ``y = f(x1, x2)``::

        class FBlock(crk.Block):
            def __init__(self, x1, x2):
                super().__init__()
                self.add_dependency(x1)
                self.add_dependency(x2)

            def recompute_component(self, inputs, block_variable, idx, prepared):
                return f(*inputs)                           # value of output idx

            def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
                return J(inputs) @ dx              # tlm_inputs[i] is None for a zero tangent

            def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
                return adjoint contribution to inputs[idx]   # adj_inputs[k]: adjoint of output k

            def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                           block_variable, idx, prepared):
                # J_idx^T hessian_inputs  +  (d/dx of J_idx^T adj_inputs)[tlm_inputs]
                ...

        def f_overloaded(x1, x2):
            y = crk.array(f(x1.value, x2.value))             # or crk.AdjFloat(...)
            if crk.annotating():
                block = FBlock(x1, x2)
                block.add_output(y)
                crk.get_working_tape().add_block(block)
            return y

    Hooks receive plain values: ``inputs`` are the dependencies' checkpoints, ``block_variable`` is
    the BlockVariable of the dependency/output concerned. Return None for a zero contribution.
    ``prepare_*`` hooks compute a linearisation once for all components; their result is passed as
    ``prepared``.

    Parallel: if any dependency or output is distributed, the block's adjoint contributions to
    replicated dependencies are taken as rank-local and summed over ranks by the tape. A block
    whose own computation already reduces over ranks (its replicated contributions are complete on
    every rank) sets ``self.reduces_over_ranks = True``. Any collective a block performs must go
    through :mod:`crk.parallel` so failures on one rank raise on all.

    The drivers (``recompute``, ``evaluate_tlm``, ``evaluate_adj``) call the hooks; block types
    override the hooks. A block type may override a driver instead (for speed; the tape's own
    :class:`~crk.primitive_block.PrimitiveBlock` does) if it keeps the driver's contract:

    * ``recompute(relevant_outputs)`` sets the checkpoint of every relevant output (a list of
      booleans, None: all) from the dependencies' checkpoints;
    * ``evaluate_tlm(relevant_outputs)`` adds the outputs' tangents to their ``tlm_value``
      (None is zero) from the dependencies' ``tlm_value``; a block that communicates must
      run its collectives on every rank, whatever tangents this rank holds;
    * ``evaluate_adj(relevant_dependencies, hessian)`` reads the outputs' ``adj_value`` (and,
      with ``hessian``, ``hessian_value`` and the ``tlm_value`` of dependencies and outputs)
      and adds each relevant dependency's contributions with
      ``BlockVariable.accumulate(adj, hess, self.adjoint_locality())``;
    * none of them keeps a reference to a value beyond the call, except a linearisation that
      ``release()`` drops, and none records anything on a tape.
    """

    __slots__ = ("__dict__", "__weakref__")
    tag = None
    reduces_over_ranks = False

    def __init__(self, ad_block_tag=None):
        self._dependencies = []
        self._outputs = []
        if ad_block_tag is not None:
            self.tag = ad_block_tag

    # -- wiring ------------------------------------------------------------------------------
    def add_dependency(self, dep, no_duplicates=False):
        """Record that this block reads ``dep`` (an overloaded value or a BlockVariable)."""
        bv = _block_variable_of(dep, "Block.add_dependency()")
        if not isinstance(dep, BlockVariable):
            bv.reattach(dep._ad_create_checkpoint())
        if no_duplicates and any(d is bv for d in self._dependencies):
            return
        pin(bv)                 # a block's hooks may read any of its values
        self._dependencies.append(bv)

    def get_dependencies(self):
        return self._dependencies

    def add_output(self, obj):
        """Record that this block produced the overloaded value ``obj``.

        ``obj`` gets a fresh BlockVariable whose checkpoint is its current value.
        """
        from .overloaded_type import OverloadedType
        if isinstance(obj, BlockVariable):
            bv = obj
        elif isinstance(obj, OverloadedType):
            bv = obj.create_block_variable()
        else:
            raise TypeError(f"{type(self).__name__}.add_output(): expected an overloaded value "
                            f"(crk.AdjFloat, crk.ndarray, ...), got {type(obj).__name__}")
        pin(bv)
        self._outputs.append(bv)
        return bv

    def get_outputs(self):
        return self._outputs

    # -- the four derivative kinds: drivers (see the class docstring before overriding) -------
    def recompute(self, relevant_outputs=None):
        """Recompute outputs' checkpoints from the dependencies' checkpoints."""
        inputs = [bv.checkpoint for bv in self._dependencies]
        prepared = self.prepare_recompute_component(inputs, relevant_outputs)
        for idx, out in enumerate(self._outputs):
            if relevant_outputs is None or relevant_outputs[idx]:
                out.checkpoint = self.recompute_component(inputs, out, idx, prepared)

    def evaluate_tlm(self, relevant_outputs=None):
        """Push the dependencies' tangents (tlm_value) to the outputs."""
        tlm_inputs = [bv.tlm_value for bv in self._dependencies]
        if all(t is None for t in tlm_inputs):
            return
        inputs = [bv.checkpoint for bv in self._dependencies]
        prepared = self.prepare_evaluate_tlm(inputs, tlm_inputs, relevant_outputs)
        for idx, out in enumerate(self._outputs):
            if relevant_outputs is None or relevant_outputs[idx]:
                out.add_tlm_output(
                    self.evaluate_tlm_component(inputs, tlm_inputs, out, idx, prepared))

    def evaluate_adj(self, relevant_dependencies=None, hessian=False):
        """Pull the outputs' adjoints (and, if ``hessian``, second-order adjoints) back."""
        outputs = self._outputs
        adj_inputs = [out.adj_value for out in outputs]
        if all(a is None for a in adj_inputs):
            return
        deps = self._dependencies
        relevant = [i for i in range(len(deps))
                    if relevant_dependencies is None or relevant_dependencies[i]]
        inputs = [bv.checkpoint for bv in deps]
        prepared = self.prepare_evaluate_adj(inputs, adj_inputs, relevant)
        if hessian:
            tlm_inputs = [bv.tlm_value for bv in deps]
            hessian_inputs = [out.hessian_value for out in outputs]
            prepared_h = self.prepare_evaluate_hessian(inputs, tlm_inputs, adj_inputs,
                                                       hessian_inputs, relevant)
        local_comm = self.adjoint_locality()
        for idx in relevant:
            dep = deps[idx]
            adj = self.evaluate_adj_component(inputs, adj_inputs, dep, idx, prepared)
            hess = None
            if hessian:
                hess = self.evaluate_hessian_component(inputs, tlm_inputs, adj_inputs,
                                                       hessian_inputs, dep, idx, prepared_h)
            dep.accumulate(adj, hess, local_comm)

    def adjoint_locality(self):
        """The communicator over which this block's adjoint contributions to replicated
        dependencies are rank-local (the tape sums them), or None when they are complete."""
        if self.reduces_over_ranks:
            return None
        for bv in list(self._dependencies) + list(self._outputs):
            if bv.distributed:
                return bv.comm
        return None

    def release(self):
        """Drop anything cached between forward and adjoint (a linearisation); called when a
        checkpoint executor drops this block's values. Override if the block caches."""

    # -- hooks (override) -------------------------------------------------------------------
    def prepare_recompute_component(self, inputs, relevant_outputs):
        return None

    def recompute_component(self, inputs, block_variable, idx, prepared):
        raise NotImplementedError(f"{type(self).__name__} does not implement recompute_component")

    def prepare_evaluate_tlm(self, inputs, tlm_inputs, relevant_outputs):
        return None

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        raise NotImplementedError(
            f"{type(self).__name__} does not implement evaluate_tlm_component")

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        return None

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        raise NotImplementedError(
            f"{type(self).__name__} does not implement evaluate_adj_component")

    def prepare_evaluate_hessian(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                 relevant_dependencies):
        return None

    def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                   block_variable, idx, prepared):
        raise NotImplementedError(
            f"{type(self).__name__} does not implement evaluate_hessian_component")

    def __repr__(self):
        tag = f" {self.tag!r}" if getattr(self, "tag", None) else ""
        return f"<{type(self).__name__}{tag}>"


def _block_variable_of(obj, where):
    from .overloaded_type import OverloadedType
    if isinstance(obj, BlockVariable):
        return obj
    if isinstance(obj, OverloadedType):
        return obj.block_variable
    raise TypeError(f"{where}: expected an overloaded value (crk.AdjFloat, crk.ndarray, ...) "
                    f"or a BlockVariable, got {type(obj).__name__}. Wrap plain values with "
                    f"crk.array(...) or crk.AdjFloat(...) first.")
