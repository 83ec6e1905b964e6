"""Boundary flux and reaction force: the residual of the weak form summed over a face's nodes.

For a solution u of a problem, the residual of the unconstrained form at a boundary node i,
R_i(u) = ∫ q : ∇φ_i + c · φ_i − f · φ_i dx (− Neumann terms), is the consistent flux of q
through the boundary at that node; summed over the nodes of a face (per component) it is the
total flux ∫_face q · n ds (diffusion) or the reaction force on the face (elasticity), more
accurate than evaluating q at the face (it is exact for the discrete equilibrium: the reactions
of all faces balance the loads).

:func:`boundary_flux` records it as one block depending on u and on the problem's inputs
(coefficients, source, Neumann data): its derivatives use the law's vjp/jvp/hvp at the
quadrature points with the face indicator as multiplier. Collective.
"""
import numpy as np

from crk.block import Block
from crk.parallel import sum_over_ranks
from crk.tape import annotating, get_working_tape

from .boundary import node_mask
from .solve import _check_inputs, _ghosted_tangents, _law_terms, section


class BoundaryFluxBlock(Block):
    """w · R(u; inputs) for the face indicator w, summed over ranks (a replicated output)."""

    def __init__(self, flux, kinds, values, deps):
        super().__init__()
        self.flux = flux
        self.kinds = tuple(kinds)
        self.values = list(values)
        self.dep_slots = []
        for slot, obj in deps:
            self.add_dependency(obj)
            self.dep_slots.append(slot)
            self.values[slot] = None

    def _values(self, inputs):
        values = list(self.values)
        for slot, v in zip(self.dep_slots, inputs):
            values[slot] = v
        return values

    def _by_slot(self, per_dep):
        out = [None] * len(self.values)
        for slot, v in zip(self.dep_slots, per_dep):
            out[slot] = v
        return out

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return self.flux.evaluate(self.kinds, self._values(inputs))

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        return self.flux.tangent(self.kinds, self._values(inputs), self._by_slot(tlm_inputs))

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        relevant = {self.dep_slots[k] for k in relevant_dependencies}
        return self.flux.adjoint(self.kinds, self._values(inputs), adj_inputs[0], relevant)

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        return prepared.get(self.dep_slots[idx])

    def prepare_evaluate_hessian(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                 relevant_dependencies):
        relevant = {self.dep_slots[k] for k in relevant_dependencies}
        values = self._values(inputs)
        out = {} if hessian_inputs[0] is None else \
            self.flux.adjoint(self.kinds, values, hessian_inputs[0], relevant)
        second = self.flux.second_order(self.kinds, values, self._by_slot(tlm_inputs),
                                        adj_inputs[0], relevant)
        for s, v in second.items():
            if v is not None:
                out[s] = v if out.get(s) is None else out[s] + v
        return out

    def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                   block_variable, idx, prepared):
        return prepared.get(self.dep_slots[idx])


class BoundaryFlux:
    """The flux through ``face`` of solutions of ``problem`` (a steady problem). Inputs: the
    slots of the problem's solves (Dirichlet values, previous state and guess unused: they do
    not enter R), then u."""

    def __init__(self, problem, face):
        if problem.mass_scale:
            raise ValueError("boundary_flux: defined for steady problems (NonlinearProblem)")
        self.problem = problem
        self.weights = node_mask(problem.mesh, face, False, "boundary_flux").astype(float)
        self.u_slot = len(problem.slot_keys)

    def _state(self, kinds, values):
        problem, mesh = self.problem, self.problem.mesh
        setting = problem.setting(kinds[:-1], values[:-1])
        u = np.reshape(values[-1], (mesh.n_owned, problem.m))
        return setting, u, mesh.to_ghosted(u)

    def _output(self, r):
        local = self.weights @ np.reshape(r, (self.problem.mesh.n_owned, self.problem.m))
        total = sum_over_ranks(local, self.problem.comm)
        return float(total[0]) if self.problem.m == 1 else total

    def evaluate(self, kinds, values):
        problem, mesh = self.problem, self.problem.mesh
        setting, u, u_grid = self._state(kinds, values)
        with section(problem, "the boundary flux"):
            out = np.zeros(u_grid.shape)
            problem.assembler.add_action(u_grid, setting.coefs, out)
        return self._output(mesh.add_ghosted(out).reshape(-1) - setting.rhs)

    def tangent(self, kinds, values, tangents):
        problem, mesh, asm = self.problem, self.problem.mesh, self.problem.assembler
        setting, u, u_grid = self._state(kinds, values)
        dcoefs, _, sources = _ghosted_tangents(problem, kinds[:-1], tangents[:-1])
        du = tangents[-1]
        du_grid = None if du is None else mesh.to_ghosted(np.reshape(du, u.shape))
        with section(problem, "the boundary flux tangent"):
            out = np.zeros(u_grid.shape)
            asm.add_tangent(u_grid, setting.coefs, du_grid, dcoefs, out)
            for s, src in sources.items():
                kind, i = problem.slot_keys[s]
                if kind == "source":
                    asm.add_source(src, out, -1.0)
                else:
                    asm.add_neumann(problem.neumann_faces[i], src, out, -1.0)
        return self._output(mesh.add_ghosted(out))

    def adjoint(self, kinds, values, seed, relevant, tangents=None):
        """{slot: (∂(w·R)/∂input)ᵀ seed}; with ``tangents`` the second-order terms instead."""
        problem, mesh, asm, keys = (self.problem, self.problem.mesh, self.problem.assembler,
                                    self.problem.slot_keys)
        setting, u, u_grid = self._state(kinds, values)
        lam = self.weights[:, None] * np.broadcast_to(np.asarray(seed, dtype=float),
                                                      (problem.m,))
        lam_grid = mesh.to_ghosted(lam)
        law_tangents = None
        if tangents is not None:
            dcoefs, _, _ = _ghosted_tangents(problem, kinds[:-1], tangents[:-1])
            du = tangents[-1]
            du_grid = None if du is None else mesh.to_ghosted(np.reshape(du, u.shape))
            law_tangents = (du_grid, dcoefs, None)
        with section(problem, "the boundary flux adjoint"):
            u_part, _, bars = _law_terms(problem, setting, u_grid, lam_grid, set(relevant),
                                         law_tangents, need_u=self.u_slot in relevant)
            sources = {}
            if tangents is None:
                for s in relevant:
                    if s == self.u_slot:
                        continue
                    kind, i = keys[s]
                    if kind in ("source", "neumann") and kinds[s] in ("constant", "field"):
                        face = problem.neumann_faces[i] if kind == "neumann" else None
                        sources[s] = -asm.source_adjoint(kinds[s], lam_grid, face)
        out = {}
        if self.u_slot in relevant and u_part is not None:
            out[self.u_slot] = mesh.add_ghosted(u_part).reshape(np.shape(values[-1]))
        coef = 0
        for s, (kind, i) in enumerate(keys):
            part = None
            if kind == "coefficient":
                part = bars[coef]
                coef += 1
            elif s in sources:
                part = sources[s]
            if part is None or s not in relevant:
                continue
            if kinds[s] == "field":
                part = mesh.add_ghosted(part)
            out[s] = float(np.sum(part)) if np.ndim(values[s]) == 0 else \
                np.reshape(part, np.shape(values[s]))
        return out

    def second_order(self, kinds, values, tangents, seed, relevant):
        return self.adjoint(kinds, values, seed, relevant, tangents=tangents)


def boundary_flux(problem, u, face, *coefficients, f=None):
    """∑ over the nodes of ``face`` of the residual of ``problem`` at u, per component: the
    flux ∫ q · n ds through the face (a float for one component) or the reaction force (an
    array of m). ``coefficients``, ``f``: those of the solve that made u (Neumann values are
    the problem's). Recorded when u or an input is a recorded value. Collective."""
    import crk
    flux = BoundaryFlux(problem, face)
    raw = (list(coefficients) + [f] + [bc.value for bc in problem.neumann] +
           [0.0] * len(problem.dirichlet) + [None, None])
    with section(problem, "the boundary_flux arguments"):
        kinds, values, deps = _check_inputs(problem, raw)
        shape = np.shape(getattr(u, "value", u))
        if shape != problem.output_shape:
            raise ValueError(f"boundary_flux: argument 'u' must be a solution of the problem, "
                             f"shape {problem.output_shape}, got {shape}")
    kinds.append("field")
    values.append(np.asarray(getattr(u, "value", u), dtype=np.float64))
    if isinstance(u, crk.ndarray):
        deps.append((flux.u_slot, u))
    value = flux.evaluate(kinds, values)
    out = crk.AdjFloat(value) if np.ndim(value) == 0 else crk.array(value)
    if deps and annotating():
        block = BoundaryFluxBlock(flux, kinds, values, deps)
        block.add_output(out)
        get_working_tape().add_block(block)
    return out
