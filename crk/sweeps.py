"""Plans and sweeps: which blocks a reduced function needs, and running them.

A :class:`Plan` is the list of blocks that lie both downstream of the controls and upstream of
the outputs, with per-block masks of the relevant dependencies/outputs. An executor runs the four
kinds of sweep over a plan. :class:`KeepAllExecutor` keeps every value in memory;
:mod:`crk.checkpointing` provides the schedule-driven executor with the same interface. Which
values a replay drops or must recompute is decided by :mod:`crk.lifetime`.

Every sweep agrees on failure across the tape's communicator at its end (and every crk collective
inside it agrees too), so an exception on one rank raises on all ranks.
"""
import sys
import zlib

from . import lifetime
from .lifetime import sweeping
from .parallel.collective import agree, allgather


class Plan:
    """Relevant blocks of ``tape`` for the given control and output BlockVariables.

    ``blocks`` lists the relevant blocks in recording order and ``indices`` their positions on
    the tape. ``dep_masks`` / ``out_masks`` map a position in ``blocks`` to a list of booleans
    for the few blocks where not every dependency / output is relevant. Raises ValueError naming
    the culprit when an output depends on no control or a control reaches no output (unless
    ``allow_unused``).
    """

    def __init__(self, tape, control_bvs, output_bvs, allow_unused=False):
        all_blocks = tape.get_blocks()
        _check_same_tape_everywhere(tape, all_blocks)
        self.tape = tape
        self.output_bvs = list(output_bvs)
        self.control_bvs = list(control_bvs)
        self.version = tape._version
        self.length = len(all_blocks)
        controls = set(control_bvs)
        active = set(control_bvs)
        # Forward: blocks downstream of a control. Only indices are kept (a list of ints costs
        # the garbage collector nothing), so planning a long tape allocates little.
        forward = []
        for i, block in enumerate(all_blocks):
            for d in block._dependencies:
                if d in active:
                    break
            else:
                continue
            outs = block._outputs
            if not controls.isdisjoint(outs):
                raise ValueError(
                    f"ReducedFunction: a control is computed (by {block!r}) from another "
                    f"control; controls must be independent inputs")
            active.update(outs)
            forward.append(i)
        # Backward: of those, the blocks upstream of an output.
        needed = set(output_bvs)
        indices = []
        dep_masks = {}
        out_masks = {}
        for i in reversed(forward):
            block = all_blocks[i]
            outs = block._outputs
            if needed.isdisjoint(outs):
                continue
            if len(outs) > 1:
                mask = [o in needed for o in outs]
                if not all(mask):
                    out_masks[i] = mask
            deps = block._dependencies
            mask = [d in active for d in deps]
            if all(mask):
                needed.update(deps)
            else:
                dep_masks[i] = mask
                needed.update(d for d, m in zip(deps, mask) if m)
            indices.append(i)
        indices.reverse()
        self.indices = indices
        self.blocks = [all_blocks[i] for i in indices]
        self._producers = None
        self._droppable = None
        self.dep_masks = {k: dep_masks[i] for k, i in enumerate(indices) if i in dep_masks}
        self.out_masks = {k: out_masks[i] for k, i in enumerate(indices) if i in out_masks}
        # Replicated variables that receive rank-local adjoint contributions, and the
        # communicator to sum them over: decided here, from structure alone.
        self.partial_vars = {}
        for k, block in enumerate(self.blocks):
            comm = block.adjoint_locality()
            if comm is None:
                continue
            mask = self.dep_masks.get(k)
            for j, dep in enumerate(block._dependencies):
                if not dep.distributed and (mask is None or mask[j]):
                    self.partial_vars[dep] = comm
        if not allow_unused:
            for k, bv in enumerate(output_bvs):
                if bv not in active and not _produced_on(all_blocks, bv):
                    raise ValueError(
                        f"ReducedFunction: output {k} was not recorded on this tape ({tape!r}); "
                        f"pass the tape it was recorded on (tape=...), or create the reduced "
                        f"function inside `with tape:`")
                if bv not in active:
                    raise ValueError(
                        f"ReducedFunction: output {k} does not depend on any control: it was "
                        f"computed without them, or outside the tape (stop_annotating, a value "
                        f"copied out with np.asarray/float and back in). Its derivative would be "
                        f"zero; pass allow_unused=True if that is intended.")
            for k, bv in enumerate(control_bvs):
                if bv not in needed:
                    raise ValueError(
                        f"ReducedFunction: control {k} does not influence any output (it was not "
                        f"used, or used only outside the tape); pass allow_unused=True if a zero "
                        f"derivative is intended.")

    def stale(self):
        return self.tape._version != self.version

    def missing_inputs(self, blocks):
        """(tape index, block) pairs, in tape order, to rerun so that ``blocks`` recompute
        from real values (:func:`crk.lifetime.missing_inputs`)."""
        if not lifetime.has_stub_inputs(blocks):
            return []
        tape_blocks = self.tape.get_blocks()
        if self._producers is None:
            self._producers = lifetime.producers(tape_blocks)
        return lifetime.missing_inputs(tape_blocks, self._producers, blocks)

    def droppable_after(self):
        """For replays: position k -> values to drop again after block k when no rule reads
        them (:func:`crk.lifetime.last_uses`)."""
        if self._droppable is None:
            self._droppable = lifetime.last_uses(self.blocks, self.output_bvs)
        return self._droppable


def _check_same_tape_everywhere(tape, blocks):
    """Collective: every rank must have recorded the same sequence of blocks (SPMD), or their
    sweeps would wait for each other in different collectives. Raises on every rank if not."""
    comm = sweep_comm(tape)
    if comm is None or comm.size == 1:
        return
    kinds = "\n".join(b.prim.name if hasattr(b, "prim") else type(b).__name__ for b in blocks)
    mine = (len(blocks), zlib.crc32(kinds.encode()))
    everyone = allgather(mine, comm)
    if any(sig != mine for sig in everyone):
        counts = ", ".join(f"rank {r}: {n} blocks" for r, (n, _) in enumerate(everyone))
        raise RuntimeError(
            f"crk: the ranks recorded different tapes ({counts}, or the same number of "
            f"different operations). Every rank must run the same operations in the same order "
            f"(SPMD); look for rank-dependent branches around recorded operations.")


def _produced_on(blocks, bv):
    return any(bv in b._outputs for b in blocks)


def sweep_comm(tape):
    """The communicator a tape's sweeps agree over, or None when MPI has never been loaded.

    Without mpi4py imported no value can be distributed and no rank can wait on another, so
    there is nothing to agree on (and MPI is not initialised just for that).
    """
    if tape._comm is None and "mpi4py.MPI" not in sys.modules:
        return None
    return tape.comm


class Executor:
    """Runs the sweeps of a plan: ``evaluate``, ``tangent``, ``adjoint``, ``second_order``.

    All sweeps are collective over the tape's communicator and agree on failure.
    """

    def __init__(self, plan):
        self.plan = plan
        self.comm = sweep_comm(plan.tape)

    def needs_evaluation(self):
        """Whether values must be recomputed before a derivative sweep."""
        return False

    def _guarded(self, run, where):
        """Run a sweep; on failure reset derivative values and raise on every rank."""
        comm = self.comm
        try:
            with sweeping():
                result = run()
        except Exception as e:
            self.reset()            # never leave half-swept derivative values behind
            if comm is None or comm.size == 1:
                raise
            agree(comm, e, where)   # raises on every rank
        if comm is not None and comm.size > 1:
            agree(comm, None, where)
        return result

    def reset(self):
        """Clear every derivative value held by the plan's variables."""
        for block in self.plan.blocks:
            for bv in block._dependencies:
                bv.reset()
            for bv in block._outputs:
                bv.reset()

    def clear_tangents(self):
        for block in self.plan.blocks:
            for out in block._outputs:
                out.tlm_value = None

    def _reverse_block(self, block, mask, hessian):
        """One block's adjoint: first sum its outputs' rank-local parts, then pull back, then
        release the outputs' derivative values."""
        outputs = block._outputs
        partial = self.plan.partial_vars
        if partial:
            for out in outputs:
                comm = partial.get(out)
                if comm is not None:
                    out.reduce_partials(hessian, comm)
        block.evaluate_adj(mask, hessian)
        for out in outputs:
            out.adj_value = out.hessian_value = None
            if hessian:
                out.tlm_value = None


class KeepAllExecutor(Executor):
    """Executor keeping every value of the plan in memory (tapes without a checkpointed time
    loop; the schedule :class:`crk.checkpointing.StoreAll` means the same)."""

    def evaluate(self):
        """Recompute every relevant value from the controls' checkpoints.

        Values no derivative rule reads are dropped again after their last use, so a replay
        holds no more than the recording did.
        """
        def run():
            plan = self.plan
            masks = plan.out_masks
            extra = [b for _, b in plan.missing_inputs(plan.blocks)]
            for block in extra:
                block.recompute()
            drop = plan.droppable_after()
            for k, block in enumerate(plan.blocks):
                block.recompute(masks.get(k) if masks else None)
                if k in drop:
                    lifetime.drop_unneeded(drop[k])
            for block in extra:
                lifetime.drop_unneeded(block._outputs)
        self._guarded(run, "ReducedFunction evaluation")

    def tangent(self):
        """Push the controls' tlm_value to every relevant value (values are current)."""
        def run():
            masks = self.plan.out_masks
            for k, block in enumerate(self.plan.blocks):
                block.evaluate_tlm(masks.get(k) if masks else None)
        self._guarded(run, "tangent-linear sweep")

    def adjoint(self, hessian=False):
        """Pull the outputs' adj_value (and hessian_value) back to the controls.

        With ``hessian``, tangents must already be in place (see :meth:`second_order`). Outputs'
        derivative values are released as soon as their block is done.
        """
        def run():
            blocks = self.plan.blocks
            masks = self.plan.dep_masks
            for k in range(len(blocks) - 1, -1, -1):
                self._reverse_block(blocks[k], masks.get(k) if masks else None, hessian)
        self._guarded(run, "adjoint sweep")

    def second_order(self):
        """Tangent sweep then adjoint sweep with second-order adjoints."""
        self.tangent()
        self.adjoint(hessian=True)
