"""The nonlinear solve as one block on the tape: replay, tangent-linear, adjoint, Hessian.

A solve of a :class:`~solvers.problem.NonlinearProblem` reads *inputs* in a fixed order of
slots: the law's coefficients, the source f, the Neumann values, the Dirichlet values, the
previous state (time steps) and the initial guess. Each is a plain value or a recorded crk value
(a dependency of the block). With R(u; inputs) = 0 and the Dirichlet dofs u_D = g (the rows and
columns of the constrained dofs are identity in the matrix Ĵ = R'(u), see
:class:`~solvers.assembly.JacobianPattern`):

* tangent-linear: Ĵ δu = −∂R/∂inputs[δinputs] on free dofs, δu_D = δg: one linear solve;
* adjoint (seed ū): Ĵᵀ λ = ū on free dofs, λ_D = 0: one linear solve; then the inputs'
  adjoints −(∂R/∂input)ᵀ λ, and for Dirichlet values ū_D − [(∂R/∂u)ᵀ λ]_D, from one
  pull-back of the point map at the quadrature points (its vjp);
* Hessian action (second-order seed ū̇, input tangents δm, δu from the tangent sweep):
  Ĵᵀ λ̇ = ū̇ − S_u with S = d/dt[(∂R/∂(u, m))ᵀ λ] along (δu, δm) (the point map's hvp);
  then the adjoint formulas with λ̇, minus S. With the tangent and adjoint solves of the same
  sweep that is three linear solves per Hessian action.

Every linear solve uses the matrix R'(u) at the block's solution and the problem's last
preconditioner (:meth:`NonlinearProblem.linear_solve`); each block keeps its own multiplier λ
for its Hessian. All functions here are collective over the problem's communicator; rank-local
stages are closed by a failure agreement before the next PETSc collective.
"""
import weakref

import numpy as np

from crk.block import Block
from crk.overloaded_type import OverloadedType
from crk.parallel import collective_section
from crk.parallel.comm import comms_compatible, describe_comm
from crk.tape import annotating, get_working_tape

from .assembly import GhostedField, Source
from .boundary import component_values, function_values, value_kind


# -- identity of inputs: the matrix and the prepared setting are reused while they match -------
class _Same:
    """Equal to another _Same of the same live object (no strong reference where possible)."""

    __slots__ = ("ident", "ref")

    def __init__(self, obj):
        self.ident = id(obj)
        try:
            self.ref = weakref.ref(obj)
        except TypeError:
            self.ref = lambda obj=obj: obj

    def __eq__(self, other):
        return isinstance(other, _Same) and self.ident == other.ident and \
            self.ref() is not None and self.ref() is other.ref()

    __hash__ = None


def fingerprint(value):
    if value is None:
        return None
    if callable(value) or (isinstance(value, np.ndarray) and value.ndim):
        return _Same(value)
    return np.asarray(value, dtype=np.float64).tobytes()


def section(problem, where):
    """A rank-local stage that ends with a failure agreement (so no rank enters the next PETSc
    collective while another has failed)."""
    return collective_section(comm=problem.comm, where=f"{where} of problem {problem.prefix!r}")


# -- the slots of a solve ----------------------------------------------------------------------
def slot_keys(problem):
    """The input slots of the problem's solves, in order: (kind, index) pairs."""
    return ([("coefficient", i) for i in range(problem.law.n_coefficients)] + [("source", 0)] +
            [("neumann", j) for j in range(len(problem.neumann))] +
            [("dirichlet", j) for j in range(len(problem.dirichlet))] +
            [("previous", 0), ("guess", 0)])


class Setting:
    """The plain inputs of one solve, prepared for assembly: coefficients at nodes (ghosted),
    the right-hand side vector, the Dirichlet values. Collective to make (halo exchanges)."""

    def __init__(self, problem, kinds, values):
        mesh, asm, m = problem.mesh, problem.assembler, problem.m
        keys = problem.slot_keys
        self.key = tuple(fingerprint(v) for v in values)
        self.theta = problem.theta
        self.mass_scale = problem.mass_scale
        self.coefs = []
        law = problem.law
        ghosted = {}
        for s, ((kind, i), value) in enumerate(zip(keys, values)):
            if kinds[s] == "field" and value is not None and kind not in ("guess", "dirichlet"):
                ghosted[s] = mesh.to_ghosted(np.reshape(value, (mesh.n_owned, -1)))
        for s, (kind, i) in enumerate(keys):
            if kind == "coefficient":
                v = values[s]
                self.coefs.append(GhostedField(ghosted[s], law.coefficient_shapes[i])
                                  if kinds[s] == "field" else v)
        self.previous = ghosted.get(keys.index(("previous", 0)))
        with section(problem, "the right-hand side"):
            rhs = np.zeros(mesh.grid_shape(True) + (m,))
            for s, (kind, i) in enumerate(keys):
                if kind not in ("source", "neumann") or kinds[s] is None:
                    continue
                src = Source(kinds[s], ghosted.get(s, values[s]))
                if kinds[s] == "constant":
                    src.value = np.broadcast_to(np.asarray(values[s], dtype=float), (m,))
                if kind == "source":
                    asm.add_source(src, rhs)
                else:
                    asm.add_neumann(problem.neumann_faces[i], src, rhs)
            if self.previous is not None:
                if self.theta != 1.0:
                    asm.add_action(self.previous, self.coefs, rhs, -(1.0 - self.theta))
                asm.add_mass(self.previous, rhs, self.mass_scale)
            G = np.zeros((mesh.n_owned, m))
            x = None
            for s, (kind, j) in enumerate(keys):
                if kind != "dirichlet":
                    continue
                mask, comps = problem.dirichlet_masks[j]
                what = f"DirichletBC {j} value"
                if kinds[s] == "function":
                    x = mesh.coordinates() if x is None else x
                    vals = function_values(values[s], x, len(comps), what)
                else:
                    vals = component_values(values[s], len(comps), mesh.n_owned, what)
                G[:, comps] = np.where(mask[:, comps], vals, G[:, comps])
            self.dirichlet_values = G.reshape(-1)[problem.constrained_index]
        self.rhs = mesh.add_ghosted(rhs).reshape(-1)

    def scaled(self, t):
        """The same setting with loads and Dirichlet values scaled by t (load stepping)."""
        out = object.__new__(Setting)
        out.__dict__.update(self.__dict__)
        out.rhs = t * self.rhs
        out.dirichlet_values = t * self.dirichlet_values
        out.key = None
        return out

    def add_residual(self, problem, u_grid, out):
        """out += θ A(u) + s_M M u (ghosted, local)."""
        problem.assembler.add_action(u_grid, self.coefs, out, self.theta)
        if self.mass_scale:
            problem.assembler.add_mass(u_grid, out, self.mass_scale)

    def matrix_values(self, problem, u_grid, values):
        """values += θ A'(u) + s_M M (the Jacobian's node stencil, local)."""
        problem.assembler.matrix_values(u_grid, self.coefs, values, self.theta)
        if self.mass_scale:
            problem.assembler.add_mass_values(values, self.mass_scale)

    def add_residual_and_matrix(self, problem, u_grid, out, values):
        """Both of the above from one evaluation of the law per slab (local)."""
        problem.assembler.add_action_and_matrix(u_grid, self.coefs, out, values, self.theta)
        if self.mass_scale:
            problem.assembler.add_mass(u_grid, out, self.mass_scale)
            problem.assembler.add_mass_values(values, self.mass_scale)


# -- forward -----------------------------------------------------------------------------------
def forward(problem, kinds, values, load_steps=1):
    """u (n_owned, m) solving R(u; values) = 0. Collective."""
    setting = problem.setting(kinds, values, fresh=True)
    guess = values[-1]
    u = None if guess is None else np.reshape(guess, -1)
    for step in range(1, load_steps + 1):
        t = step / load_steps
        u = problem.newton_solve(setting if t == 1.0 else setting.scaled(t), u)
        u = u.reshape(-1)
    return u.reshape(problem.mesh.n_owned, problem.m)


# -- tangent-linear -----------------------------------------------------------------------------
def _dirichlet_tangent(problem, kinds, tangents):
    """Owned (n_owned, m) array of the Dirichlet values' tangents on their dofs, or None."""
    mesh, keys = problem.mesh, problem.slot_keys
    slots = [s for s, (kind, _) in enumerate(keys) if kind == "dirichlet" and
             tangents[s] is not None and kinds[s] != "function"]
    if not slots:
        return None
    lift = np.zeros((mesh.n_owned, problem.m))
    for s in slots:
        mask, comps = problem.dirichlet_masks[keys[s][1]]
        vals = component_values(tangents[s], len(comps), mesh.n_owned, "Dirichlet tangent")
        lift[:, comps] = np.where(mask[:, comps], vals, lift[:, comps])
    return lift


def _ghosted_tangents(problem, kinds, tangents):
    """Coefficient tangents at nodes (ghosted fields), previous-state tangent (ghosted)."""
    mesh, keys, law = problem.mesh, problem.slot_keys, problem.law
    dcoefs, dprev, sources = [], None, {}
    for s, (kind, i) in enumerate(keys):
        t = tangents[s]
        if kind == "coefficient":
            if t is not None and kinds[s] == "field":
                t = GhostedField(mesh.to_ghosted(np.reshape(t, (mesh.n_owned, -1))),
                                 law.coefficient_shapes[i])
            dcoefs.append(t)
        elif kind == "previous" and t is not None:
            dprev = mesh.to_ghosted(np.reshape(t, (mesh.n_owned, problem.m)))
        elif kind in ("source", "neumann") and t is not None and kinds[s] != "function":
            if kinds[s] == "field":
                sources[s] = Source("field", mesh.to_ghosted(np.reshape(t, (mesh.n_owned, -1))))
            else:
                sources[s] = Source("constant", np.broadcast_to(np.asarray(t, dtype=float),
                                                                (problem.m,)))
    return dcoefs, dprev, sources


def tangent(problem, kinds, values, u, tangents):
    """δu (n_owned, m) for input tangents (one per slot, None = zero), or None if no tangent
    reaches u. Collective."""
    keys = problem.slot_keys
    if all(t is None for t, (kind, _) in zip(tangents, keys) if kind != "guess"):
        return None
    mesh, asm, m = problem.mesh, problem.assembler, problem.m
    setting = problem.setting(kinds, values)
    problem.at_state(setting, u, (setting.key, _Same(u)))
    u = np.reshape(u, (mesh.n_owned, m))
    lift = _dirichlet_tangent(problem, kinds, tangents)
    lift_grid = None if lift is None else mesh.to_ghosted(lift)
    dcoefs, dprev, sources = _ghosted_tangents(problem, kinds, tangents)
    u_grid = mesh.to_ghosted(u)
    with section(problem, "the tangent-linear right-hand side"):
        out = np.zeros(u_grid.shape)
        asm.add_tangent(u_grid, setting.coefs, lift_grid, dcoefs, out, setting.theta)
        if setting.previous is not None:
            if setting.theta != 1.0:
                asm.add_tangent(setting.previous, setting.coefs, dprev, dcoefs, out,
                                1.0 - setting.theta)
            if lift_grid is not None:
                asm.add_mass(lift_grid, out, setting.mass_scale)
            if dprev is not None:
                asm.add_mass(dprev, out, -setting.mass_scale)
        for s, src in sources.items():
            kind, i = keys[s]
            if kind == "source":
                asm.add_source(src, out, -1.0)
            else:
                asm.add_neumann(problem.neumann_faces[i], src, out, -1.0)
    rhs = -mesh.add_ghosted(out).reshape(-1)
    rhs[problem.constrained_index] = 0.0 if lift is None else \
        lift.reshape(-1)[problem.constrained_index]
    return problem.linear_solve(rhs, "tangent-linear").reshape(mesh.n_owned, m)


# -- adjoint and second order -----------------------------------------------------------------
def _law_terms(problem, setting, u_grid, lam_grid, relevant, tangents=None, need_u=False):
    """The law's part of (∂R/∂(u, coefficients, previous))ᵀ λ, or with ``tangents`` (δu grid,
    δcoefficients, δprevious grid) its second-order term. Returns (u part grid, previous part
    grid, coefficient parts) (None where not needed; the u part is made when ``need_u``, a
    Dirichlet slot is relevant or ``tangents`` are given). Local."""
    asm, keys = problem.assembler, problem.slot_keys
    coef_mask = [s in relevant for s, (kind, _) in enumerate(keys) if kind == "coefficient"]
    need_u = need_u or tangents is not None or \
        any(s < len(keys) and keys[s][0] == "dirichlet" for s in relevant)
    need_prev = any(s < len(keys) and keys[s][0] == "previous" for s in relevant)
    du_grid, dcoefs, dprev = tangents if tangents is not None else (None, None, None)
    u_part = np.zeros(u_grid.shape) if need_u else None
    if tangents is not None and du_grid is None and dprev is None and \
            all(t is None for t in dcoefs):
        return u_part, np.zeros(u_grid.shape) if need_prev else None, \
            [None] * problem.law.n_coefficients
    bars = asm.adjoint(u_grid, setting.coefs, lam_grid, coef_mask, u_bar=u_part,
                       dcoefs=dcoefs, du_grid=du_grid, scale=setting.theta)
    prev_part = None
    if setting.previous is not None and setting.theta != 1.0:
        prev_part = np.zeros(u_grid.shape) if need_prev else None
        if tangents is None or dprev is not None or any(t is not None for t in dcoefs):
            more = asm.adjoint(setting.previous, setting.coefs, lam_grid, coef_mask,
                               u_bar=prev_part, dcoefs=dcoefs, du_grid=dprev,
                               scale=1.0 - setting.theta)
            bars = [b if c is None else (c if b is None else b + c) for b, c in zip(bars, more)]
    return u_part, prev_part, bars


def _shape_like(value, template):
    """A contribution in the form of the input it belongs to (a float for a scalar, summed
    over the components a scalar was broadcast to)."""
    if value is None:
        return None
    if np.ndim(template) == 0:
        return float(np.sum(value))
    return np.reshape(value, np.shape(template))


def pullback(problem, setting, kinds, values, u_grid, lam, seed, relevant, second=None):
    """Contributions to the relevant slots of the adjoint with multiplier ``lam`` (owned
    (n_owned, m)) and output seed ``seed`` (owned, for the Dirichlet values). ``second``: the
    second-order terms (u part owned, previous part owned, coefficient parts), subtracted.
    Returns {slot: value}. Collective."""
    mesh, asm, keys, m = problem.mesh, problem.assembler, problem.slot_keys, problem.m
    lam_grid = mesh.to_ghosted(lam)
    with section(problem, "the adjoint pull-back"):
        u_part, prev_part, bars = _law_terms(problem, setting, u_grid, lam_grid, relevant)
        if setting.mass_scale and u_part is not None:
            asm.add_mass(lam_grid, u_part, setting.mass_scale)
        if setting.mass_scale and prev_part is None and \
                any(keys[s][0] == "previous" for s in relevant):
            prev_part = np.zeros(lam_grid.shape)
        if prev_part is not None and setting.mass_scale:
            asm.add_mass(lam_grid, prev_part, -setting.mass_scale)
        source_parts = {}
        for s in relevant:
            kind, i = keys[s]
            if kind in ("source", "neumann") and kinds[s] in ("constant", "field"):
                face = problem.neumann_faces[i] if kind == "neumann" else None
                source_parts[s] = asm.source_adjoint(kinds[s], lam_grid, face)
    out = {}
    for s, part in source_parts.items():
        if kinds[s] == "field":
            source_parts[s] = mesh.add_ghosted(part)
    u_owned = None if u_part is None else mesh.add_ghosted(u_part)
    prev_owned = None if prev_part is None else mesh.add_ghosted(prev_part)
    coef_index = 0
    for s, (kind, i) in enumerate(keys):
        if kind == "coefficient":
            bar = bars[coef_index]
            coef_index += 1
            if s not in relevant or bar is None and second is None:
                continue
            if kinds[s] == "field":
                bar = None if bar is None else mesh.add_ghosted(bar)
            total = _combine(bar, None if second is None else second[2][i])
            out[s] = None if total is None else _shape_like(-total, values[s])
    with section(problem, "the adjoint contributions"):
        for s in relevant:
            kind, i = keys[s]
            if kind in ("source", "neumann") and s in source_parts:
                part = source_parts[s]
                out[s] = _shape_like(part, values[s])
            elif kind == "previous":
                total = _combine(prev_owned, None if second is None else second[1])
                out[s] = None if total is None else -total.reshape(np.shape(values[s]))
            elif kind == "dirichlet" and kinds[s] != "function":
                R_u = _combine(u_owned, None if second is None else second[0])
                gbar = np.reshape(seed, (mesh.n_owned, m)) - R_u
                mask, comps = problem.dirichlet_masks[i]
                part = np.where(mask[:, comps], gbar[:, comps], 0.0)
                out[s] = _shape_like(part.sum(axis=0) if kinds[s] == "constant" else part,
                                     values[s])
    return out


def _combine(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def adjoint(problem, kinds, values, u, seed, relevant):
    """The multiplier λ (owned (n_owned, m)) for the output seed ū and the relevant slots'
    adjoints {slot: value}. Collective."""
    mesh = problem.mesh
    setting = problem.setting(kinds, values)
    problem.at_state(setting, u, (setting.key, _Same(u)))
    u = np.reshape(u, (mesh.n_owned, problem.m))
    rhs = np.array(np.reshape(seed, -1), dtype=np.float64)
    rhs[problem.constrained_index] = 0.0
    lam = problem.linear_solve(rhs, "adjoint").reshape(mesh.n_owned, problem.m)
    u_grid = mesh.to_ghosted(u)
    return lam, pullback(problem, setting, kinds, values, u_grid, lam, seed, relevant)


def second_order(problem, kinds, values, u, lam, du, tangents, seed2, relevant):
    """The relevant slots' second-order adjoints {slot: value}: the Hessian-action term of the
    block for input tangents ``tangents``, output tangent ``du`` (None: computed here), first
    multiplier ``lam`` and output second-order seed ``seed2`` (None = 0). Collective."""
    mesh, m = problem.mesh, problem.m
    setting = problem.setting(kinds, values)
    if du is None:
        du = tangent(problem, kinds, values, u, tangents)
    problem.at_state(setting, u, (setting.key, _Same(u)))
    u = np.reshape(u, (mesh.n_owned, m))
    dcoefs, dprev, _ = _ghosted_tangents(problem, kinds, tangents)
    du_grid = None if du is None else mesh.to_ghosted(np.reshape(du, (mesh.n_owned, m)))
    u_grid = mesh.to_ghosted(u)
    lam_grid = mesh.to_ghosted(lam)
    with section(problem, "the second-order terms"):
        S_u, S_prev, S_coef = _law_terms(problem, setting, u_grid, lam_grid, relevant,
                                         tangents=(du_grid, dcoefs, dprev))
    S_u = mesh.add_ghosted(S_u) if S_u is not None else np.zeros((mesh.n_owned, m))
    S_prev = None if S_prev is None else mesh.add_ghosted(S_prev)
    keys = problem.slot_keys
    S_fields = []
    for s, (kind, i) in enumerate(keys):
        if kind == "coefficient":
            bar = S_coef[i]
            S_fields.append(mesh.add_ghosted(bar) if bar is not None and kinds[s] == "field"
                            else bar)
    seed2 = np.zeros((mesh.n_owned, m)) if seed2 is None else np.reshape(seed2, (-1, m))
    rhs = (seed2 - S_u).reshape(-1)
    rhs[problem.constrained_index] = 0.0
    lam2 = problem.linear_solve(rhs, "second-order adjoint").reshape(mesh.n_owned, m)
    return pullback(problem, setting, kinds, values, u_grid, lam2, seed2, relevant,
                    second=(S_u, S_prev, S_fields))


# -- the block -----------------------------------------------------------------------------------
class SolveBlock(Block):
    """One nonlinear solve on the tape: output u, dependencies the recorded inputs."""

    def __init__(self, problem, kinds, values, deps, load_steps):
        super().__init__()
        self.problem = problem
        self.kinds = tuple(kinds)
        self.values = list(values)
        self.load_steps = load_steps
        self.dep_slots = []
        for slot, obj in deps:
            self.add_dependency(obj)
            self.dep_slots.append(slot)
            self.values[slot] = None
        self._multiplier = None

    def __repr__(self):
        return f"<SolveBlock {self.problem.prefix!r}>"

    def _values(self, inputs):
        values = list(self.values)
        for slot, value in zip(self.dep_slots, inputs):
            values[slot] = value
        return values

    def _by_slot(self, per_dep):
        out = [None] * len(self.values)
        for slot, value in zip(self.dep_slots, per_dep):
            out[slot] = value
        return out

    def _relevant(self, relevant_dependencies):
        return {self.dep_slots[k] for k in relevant_dependencies}

    def recompute_component(self, inputs, block_variable, idx, prepared):
        u = forward(self.problem, self.kinds, self._values(inputs), self.load_steps)
        return _readonly(u.reshape(self.problem.output_shape))

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        u = block_variable.checkpoint
        du = tangent(self.problem, self.kinds, self._values(inputs), u,
                     self._by_slot(tlm_inputs))
        return None if du is None else du.reshape(self.problem.output_shape)

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        u = self._outputs[0].checkpoint
        seed = np.reshape(adj_inputs[0], (-1, self.problem.m))
        lam, parts = adjoint(self.problem, self.kinds, self._values(inputs), u, seed,
                             self._relevant(relevant_dependencies))
        self._multiplier = lam
        return parts

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        return prepared.get(self.dep_slots[idx])

    def prepare_evaluate_hessian(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                 relevant_dependencies):
        problem = self.problem
        out = self._outputs[0]
        du = out.tlm_value
        return second_order(problem, self.kinds, self._values(inputs), out.checkpoint,
                            self._multiplier,
                            None if du is None else np.reshape(du, (-1, problem.m)),
                            self._by_slot(tlm_inputs), hessian_inputs[0],
                            self._relevant(relevant_dependencies))

    def evaluate_hessian_component(self, inputs, tlm_inputs, adj_inputs, hessian_inputs,
                                   block_variable, idx, prepared):
        return prepared.get(self.dep_slots[idx])

    def release(self):
        self._multiplier = None


def _readonly(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


# -- recording ------------------------------------------------------------------------------------
def record_solve(problem, coefficients, source, previous, guess, load_steps=1):
    """Solve ``problem`` and return u as a distributed crk array (recorded when an input is a
    recorded value and annotation is on). Collective."""
    import crk
    problem._check_alive()
    raw = (list(coefficients) + [source] + [bc.value for bc in problem.neumann] +
           [bc.value for bc in problem.dirichlet] + [previous, guess])
    with section(problem, "the solve's arguments"):
        kinds, values, deps = _check_inputs(problem, raw)
        if not isinstance(load_steps, int) or load_steps < 1 or \
                (load_steps > 1 and previous is not None):
            raise ValueError(f"solve: argument 'load_steps' must be a positive integer (1 for "
                             f"time steps), got {load_steps!r}")
    u = forward(problem, kinds, values, load_steps)
    out = crk.array(u.reshape(problem.output_shape), comm=problem.comm, distributed=True)
    if deps and annotating():
        block = SolveBlock(problem, kinds, values, deps, load_steps)
        block.add_output(out)
        get_working_tape().add_block(block)
    return out


def _check_inputs(problem, raw):
    """Kinds and plain values of the inputs (private copies of writable arrays), and the
    recorded ones as (slot, object)."""
    kinds, values, deps = [], [], []
    for s, ((kind, i), value) in enumerate(zip(problem.slot_keys, raw)):
        what = _describe_slot(problem, kind, i)
        if isinstance(value, OverloadedType):
            if value._ad_comm is not None and not comms_compatible(value._ad_comm, problem.comm):
                raise ValueError(f"{what} lives on {describe_comm(value._ad_comm)} but the "
                                 f"problem on {describe_comm(problem.comm)}")
            deps.append((s, value))
            plain = value._ad_create_checkpoint()
        else:
            plain = value
            if isinstance(plain, np.ndarray) and plain.flags.writeable:
                plain = plain.copy()
        k = _slot_kind(problem, kind, i, value, plain, what)
        if k is None and isinstance(value, OverloadedType):
            raise TypeError(f"{what}: a recorded value cannot go here")
        if k == "function" and isinstance(value, OverloadedType):
            raise TypeError(f"{what}: expected a value, got a recorded function")
        kinds.append(k)
        values.append(None if value is None else
                      (float(plain) if np.ndim(plain) == 0 and not callable(plain) else plain))
    return kinds, values, deps


def _describe_slot(problem, kind, i):
    if kind == "coefficient":
        return f"solve: coefficient {i} ({problem.law.name})"
    if kind == "source":
        return "solve: argument 'f'"
    if kind == "neumann":
        return f"NeumannBC {i} value"
    if kind == "dirichlet":
        return f"DirichletBC {i} value"
    return f"solve: argument {'previous' if kind == 'previous' else 'initial_guess'!r}"


def _slot_kind(problem, kind, i, value, plain, what):
    mesh, law, m = problem.mesh, problem.law, problem.m
    n = mesh.n_owned
    if kind == "coefficient":
        shape = law.coefficient_shapes[i]
        if law.coefficient_pointwise[i]:
            if np.shape(plain) not in ((n,) + shape, (n, int(np.prod(shape)))) or \
                    (isinstance(value, OverloadedType) and not value._ad_distributed):
                raise ValueError(f"{what}: the law declares a pointwise coefficient of shape "
                                 f"{(-1,) + shape}, so pass a nodal field: this rank's owned "
                                 f"values, shape {(n,) + shape}, distributed; got "
                                 f"{'a replicated value of ' if not getattr(value, '_ad_distributed', True) else ''}"
                                 f"shape {np.shape(plain)}")
            return "field"
        if np.shape(plain) != shape or (isinstance(value, OverloadedType) and
                                        value._ad_distributed):
            raise ValueError(f"{what}: the law declares a parameter of shape {shape} shared by "
                             f"all points (replicated); got shape {np.shape(plain)}"
                             f"{' (distributed)' if getattr(value, '_ad_distributed', False) else ''}")
        return "param"
    if kind in ("previous", "guess"):
        if value is None:
            return None
        if np.shape(plain) not in ((n, m), problem.output_shape):
            raise ValueError(f"{what}: expected owned nodal values of shape "
                             f"{problem.output_shape}, got {np.shape(plain)}")
        return "field"
    if kind in ("source", "neumann") and value is None:
        return None
    k = len(problem.dirichlet_masks[i][1]) if kind == "dirichlet" else m
    return value_kind(value, what, n, k)
