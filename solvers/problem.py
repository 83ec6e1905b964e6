"""A nonlinear problem on a box mesh: the PETSc objects, the options, the Newton solve.

:class:`NonlinearProblem` owns everything one residual form needs, made once and reused by every
solve, replay and derivative: its own DMDA (so PETSc callbacks of two problems never share a
DM), the SNES and its KSP/PC, the AIJ Jacobian with its COO pattern, work vectors, the
:class:`~solvers.assembly.Assembler` with the compiled point maps. ``destroy()`` (or leaving
``with problem:``) frees them collectively.

Options. Every PETSc object of a problem has the options prefix ``options_prefix`` (default
``"crk_<n>_"``, n counting the problems made). crk's defaults are put into PETSc's options
database under that prefix only where the database has no value yet, ``setFromOptions`` reads
them together with the user's, and the defaults are taken out again; so command-line options
(``-<prefix>ksp_type gmres``, ``-<prefix>snes_monitor``) always win and no default ever shows as
an unused option. Defaults: Newton with a backtracking line search, snes_rtol 1e-10, linear
solves to PETSc's ksp_rtol 1e-5 (looser costs Newton steps, tighter buys nothing: the last
Newton steps still converge to round-off on the p-Laplacian; Eisenstat–Walker doubled the
Newton steps there); CG (symmetric problems) or GMRES; geometric multigrid on the DMDA
hierarchy (Galerkin coarse operators, one SSOR smoothing step per level and direction, coarsened
down to about a thousand unknowns) when every rank's part of the grid coarsens at least twice,
else GAMG (with the rigid-body near-null space for vector problems).

Residual and Jacobian together. With Newton's method and the bt or basic line search (the
default), SNES asks for the Jacobian at every point where it evaluated the residual, except the
solution and rejected line-search points. So a residual evaluation also builds the Jacobian's
node stencil from one evaluation of the law (:meth:`solvers.forms.Law.value_and_jacobians`) at
the initial guess and, once a Newton step was taken whole (the line search rejects no points
from then on), at every later point; the Jacobian callback then only copies the stencil into the
matrix. The solution's Jacobian is so ready for the adjoint, tangent-linear and Hessian solves
that follow (:meth:`NonlinearProblem.at_state`).

Every solve is checked: an unconverged or NaN solve raises :class:`~solvers.errors.
ConvergenceError` on every rank, with PETSc's reason and the residual history; an exception in a
residual or Jacobian evaluation on one rank raises on every rank (agreed inside the callback).
"""
import itertools

import numpy as np

from crk.parallel import agree, max_over_ranks

from .assembly import Assembler, JacobianPattern
from .boundary import DirichletBC, NeumannBC, component_list, node_mask
from .errors import ConvergenceError
from .forms import Law
from .mesh import face_of
from .petsc import import_petsc

_counter = itertools.count()


def reason_names(enum):
    """{value: name} of a PETSc converged-reason enum class (aliases joined by "/")."""
    names = {}
    for n in sorted(dir(enum)):
        value = getattr(enum, n)
        if not n.startswith("_") and isinstance(value, int):
            names[value] = f"{names[value]}/{n}" if value in names else n
    return names


class NonlinearProblem:
    """Find u with R(u)[v] = ∫ q : ∇v + c · v − f · v dx − ∫_ΓN g · v ds = 0 for all v.

    ``mesh``: a :class:`~solvers.mesh.BoxMesh`. ``flux``: the flux point map, or the stored
    energy with ``energy=True``; ``reaction``: optional reaction point map; ``state``: the
    state arguments the maps take first, ("u", "grad_u") or ("grad_u",) (default: read from
    the flux's declared shapes, see :mod:`solvers.forms`). ``dirichlet``: a list of
    :class:`~solvers.boundary.DirichletBC`; ``neumann``: a list of
    :class:`~solvers.boundary.NeumannBC`. ``quadrature``: Gauss points per axis (2).
    ``symmetric``: whether the Jacobian is symmetric (default: True for an energy, else False);
    it selects CG and lets adjoint solves use the forward operator. ``options_prefix``: the
    PETSc options prefix. ``adjoint_rtol``: relative tolerance of adjoint, tangent-linear and
    second-order solves (also ``-<prefix>adjoint_ksp_rtol``). Collective over the mesh's
    communicator.
    """

    def __init__(self, mesh, flux, reaction=None, energy=False, state=None,
                 dirichlet=(), neumann=(), quadrature=2, symmetric=None, options_prefix=None,
                 adjoint_rtol=1e-12):
        PETSc = self._PETSc = import_petsc()
        mesh._check_alive()
        self.mesh = mesh
        self.comm = mesh.comm
        self.law = Law(flux, mesh.dim, reaction=reaction, energy=energy, state=state)
        self.m = m = self.law.m
        self.symmetric = bool(energy) if symmetric is None else bool(symmetric)
        self.dirichlet = list(dirichlet)
        self.neumann = list(neumann)
        for bc in self.dirichlet:
            if not isinstance(bc, DirichletBC):
                raise TypeError(f"NonlinearProblem: argument 'dirichlet' takes DirichletBC "
                                f"objects, got {type(bc).__name__}")
        for bc in self.neumann:
            if not isinstance(bc, NeumannBC):
                raise TypeError(f"NonlinearProblem: argument 'neumann' takes NeumannBC "
                                f"objects, got {type(bc).__name__}")
        self.neumann_faces = [face_of(bc.face, mesh.dim, "NeumannBC") for bc in self.neumann]
        self.prefix = options_prefix if options_prefix is not None else f"crk_{next(_counter)}_"
        self.assembler = Assembler(mesh, self.law, quadrature)
        self._destroyed = False
        self._resolve_dirichlet()
        # -- PETSc objects (collective) --
        self.da = da = mesh.dm(1).duplicate(dof=m)
        self.x, self.F, self.rhs, self.sol = (da.createGlobalVec() for _ in range(4))
        self.x_local, self.F_local = da.createLocalVec(), da.createLocalVec()
        self.first_dof = self.x.getOwnershipRange()[0]
        node_numbers = da.getLGMap().getBlockIndices()
        self.pattern = JacobianPattern(self.assembler, self.constrained_ghosted,
                                       self.constrained_owned, node_numbers, self.first_dof,
                                       PETSc.IntType)
        self.J = da.createMat()
        self.J.setPreallocationCOO(self.pattern.rows, self.pattern.cols)
        self.pattern.release_indices()
        self.nullspace = None
        if m > 1 and m == mesh.dim:
            coords = da.createGlobalVec()
            coords.setBlockSize(mesh.dim)
            coords.getArray()[:] = mesh.coordinates().reshape(-1)
            self.nullspace = PETSc.NullSpace().createRigidBody(coords)
            coords.destroy()
            self.J.setNearNullSpace(self.nullspace)
        self.JT = self.adjoint_ksp = None     # non-symmetric problems: transposed solves
        self._jacobian_serial = 0
        self._transposed = None
        self.snes = snes = PETSc.SNES().create(self.comm)
        snes.setOptionsPrefix(self.prefix)
        snes.setDM(da)
        snes.setFunction(self._residual_callback, self.F)
        snes.setJacobian(self._jacobian_callback, self.J, self.J)
        snes.setConvergenceHistory(length=1000)
        self.ksp = snes.getKSP()
        self.ksp.setConvergenceHistory(length=100000)
        self._lazy_options = []
        self._set_options(PETSc, adjoint_rtol)
        self._snes_reasons = reason_names(PETSc.SNES.ConvergedReason)
        self._ksp_reasons = reason_names(PETSc.KSP.ConvergedReason)
        self._setting = None            # the inputs of the running solve
        self._matrix_state = None       # what the matrix holds: (state key, u)
        self._stencil_state = None      # what the node stencil holds: (setting, owned u)
        self._fused = False             # residual evaluations may build the Jacobian too
        self._fuse_next = False         # ... and the next one does
        self._residuals_since_jacobian = 0
        self._callback_error = None
        self._setting_cache = None
        #: counters: Newton solves and iterations, their linear iterations, residual and
        #: Jacobian evaluations, linear solves of derivatives (adjoint, tangent, second order)
        self.stats = {"solves": 0, "newton_iterations": 0, "linear_iterations": 0,
                      "residuals": 0, "jacobians": 0, "linear_solves": 0}

    # -- Dirichlet data ---------------------------------------------------------------------
    def _resolve_dirichlet(self):
        """Constrained dofs (owned and ghosted) and, per condition, the dofs it sets."""
        mesh, m = self.mesh, self.m
        owned = np.zeros((mesh.n_owned, m), dtype=bool)
        ghosted = np.zeros((mesh.n_ghosted, m), dtype=bool)
        masks = []
        for j, bc in enumerate(self.dirichlet):
            what = f"DirichletBC {j} ({bc.where!r})"
            comps = component_list(bc.components, m, what)
            mask = np.zeros((mesh.n_owned, m), dtype=bool)
            mask[:, comps] = node_mask(mesh, bc.where, False, what)[:, None]
            gmask = node_mask(mesh, bc.where, True, what)
            ghosted[:, comps] |= gmask[:, None]
            owned |= mask
            masks.append((mask, comps))
        # A later condition wins where two overlap: each sets only its effective dofs.
        taken = np.zeros_like(owned)
        self.dirichlet_masks = [None] * len(masks)
        for j in range(len(masks) - 1, -1, -1):
            mask, comps = masks[j]
            self.dirichlet_masks[j] = (mask & ~taken, comps)
            taken |= mask
        self.constrained_owned = owned
        self.constrained_ghosted = ghosted
        self.constrained_index = np.flatnonzero(owned.reshape(-1))
        self.free_mask = ~owned.reshape(-1)

    # -- options ----------------------------------------------------------------------------
    def default_options(self, infix=""):
        """crk's default options for this problem (without the prefix; ``infix``: that of the
        solver they are for, "" or "adjoint_")."""
        opts = {"snes_type": "newtonls", "snes_linesearch_type": "bt", "snes_rtol": 1e-10,
                "snes_atol": 1e-14, "snes_stol": 0.0, "snes_max_it": 50,
                "ksp_type": "cg" if self.symmetric else "gmres", "ksp_max_it": 2000}
        levels = self.multigrid_levels()
        db, name = self._PETSc.Options(), self.prefix + infix + "pc_type"
        chosen = db.getString(name) if db.hasName(name) else None
        if chosen is None:
            opts["pc_type"] = "mg" if levels >= 3 else "gamg"
        if (chosen or opts["pc_type"]) == "mg":
            # (options of another preconditioner would be errors, not just unused, in PETSc).
            # Smoothing by SOR sweeps: no eigenvalue estimates to set up at each Newton step
            # (Chebyshev's), a third less time per Newton step on the p-Laplacian.
            # One Richardson step of SSOR per level before and after the coarse correction:
            # two steps save one CG iteration in seven (p-Laplacian, 256²) for twice the
            # smoothing. (A forward Gauss-Seidel sweep down and a backward one up, in exact
            # arithmetic also a symmetric V-cycle, reads the matrix half as often: 0.29 s, not
            # 0.41 s, of linear solves per forward solve on 512², 1 rank, 7% less on 2; but an
            # adjoint CG solve to rtol 1e-12 stalled with it on 3 ranks (16², the tutorial).)
            sized = self.multigrid_levels(coarse_unknowns=self.multigrid_coarse_unknowns)
            opts.update({"pc_mg_levels": min(levels, max(3, sized)),
                         "pc_mg_galerkin": "pmat",
                         "mg_levels_ksp_type": "richardson", "mg_levels_pc_type": "sor",
                         "mg_levels_ksp_max_it": 1})
        return opts

    #: Geometric multigrid coarsens no further than a grid of about this many unknowns (solved
    #: by LU, redundantly on every rank): the extra levels below it cost time and save none
    #: (p-Laplacian 512², the linear solves of one forward solve on 1 rank: 0.40-0.43 s with 8
    #: or 9 levels, down to 4² or 2² cells, 0.35-0.38 s with 5, down to 32²; on 2 ranks
    #: 0.21-0.25 s either way).
    multigrid_coarse_unknowns = 1000

    def multigrid_levels(self, coarsest=2, coarse_unknowns=0):
        """How many levels of geometric multigrid the DMDA supports: every coarsening halves
        the cells on every axis, every rank keeps at least ``coarsest`` nodes per axis, and
        the coarsest grid keeps at least ``coarse_unknowns`` unknowns. Not collective."""
        levels = 1
        ranges = self.da.getOwnershipRanges()
        while True:
            factor = 2 ** levels
            ok = all(c % factor == 0 and c // factor >= 2 for c in self.mesh.cells)
            ok = ok and all(min(owned) >= coarsest * factor for owned in ranges)
            ok = ok and self.m * np.prod([c // factor + 1 for c in self.mesh.cells]) \
                >= coarse_unknowns
            if not ok:
                return levels
            levels += 1

    def _set_options(self, PETSc, adjoint_rtol):
        self._with_defaults(PETSc, self.default_options(), "", self.snes.setFromOptions)
        self.adjoint_rtol = PETSc.Options().getReal(self.prefix + "adjoint_ksp_rtol",
                                                    adjoint_rtol)

    def _with_defaults(self, PETSc, defaults, infix, set_from_options):
        """Put ``defaults`` into the options database under ``prefix + infix`` where it has no
        value, run ``set_from_options``, and take the defaults out again (so they never show as
        unused options, and options already in the database win). Options of multigrid levels
        are read only when the preconditioner is first set up: those stay until
        :meth:`destroy`."""
        db = PETSc.Options()
        inserted = []
        for key, value in defaults.items():
            name = self.prefix + infix + key
            if not db.hasName(name):
                db.setValue(name, value)
                inserted.append(name)
        try:
            set_from_options()
        finally:
            for name in inserted:
                if name.startswith(self.prefix + infix + "mg_levels_"):
                    self._lazy_options.append(name)
                else:
                    db.delValue(name)

    # -- solving ----------------------------------------------------------------------------
    theta = 1.0          # weight of A(u) in the residual (time steps: the θ-scheme)
    linear_max_it = 1000  # iteration limit of adjoint, tangent-linear, second-order solves
    mass_scale = 0.0     # weight of the mass matrix (time steps: 1/dt)

    @property
    def slot_keys(self):
        from .solve import slot_keys
        keys = self.__dict__.get("_slot_keys")
        if keys is None:
            keys = self._slot_keys = slot_keys(self)
        return keys

    @property
    def output_shape(self):
        """Shape of a solution on this rank: (n_owned,) for one component, else (n_owned, m)."""
        return (self.mesh.n_owned,) if self.m == 1 else (self.mesh.n_owned, self.m)

    def solve(self, *coefficients, f=None, initial_guess=None, load_steps=1):
        """Solve R(u) = 0 and return u: a distributed crk array of this rank's owned nodal
        values, shape ``output_shape``, in DMDA order (see :mod:`solvers.mesh`).

        ``coefficients``: one per coefficient argument of the law (after the state):
        parameters (floats, arrays; ``crk.AdjFloat`` / replicated ``crk.array`` to record
        them) and nodal fields (owned values, distributed crk arrays to record them).
        ``f``: the source: None, a constant (float or m floats), a function of the
        coordinates (evaluated at the quadrature points) or a nodal field.
        ``initial_guess``: owned nodal values (default zero; Dirichlet values are imposed).
        ``load_steps``: solve for loads and Dirichlet data scaled by 1/n, 2/n, ..., 1 in turn
        (continuation); the result and its derivatives are those of the last solve.

        Recorded as one block when any input (including the boundary conditions' values) is a
        recorded crk value. Collective.
        """
        from .solve import record_solve
        return record_solve(self, coefficients, f, None, initial_guess, load_steps)

    def setting(self, kinds, values, fresh=False):
        """The prepared :class:`~solvers.solve.Setting` of these inputs (reused while the
        inputs are the same objects, unless ``fresh``). Collective."""
        from .solve import Setting, fingerprint
        cache = self._setting_cache
        if not fresh and cache is not None:
            key = tuple(fingerprint(v) for v in values)
            if cache.key == key:
                return cache
        setting = Setting(self, kinds, values)
        self._setting_cache = setting
        return setting

    # -- the solve on plain values ------------------------------------------------------------
    def newton_solve(self, setting, guess):
        """Solve R(u) = 0 for a prepared :class:`~solvers.solve.Setting` from the owned initial
        guess ``guess`` ((n_owned*m,) or None for zero). Returns u (n_owned, m). Collective."""
        self._check_alive()
        x = self.x.getArray()
        x[:] = 0.0 if guess is None else guess
        x[self.constrained_index] = setting.dirichlet_values
        self._setting = setting
        self._callback_error = None
        self._fused = self._fuse_next = self.jacobian_with_residual()
        self._residuals_since_jacobian = 0
        self.snes.setConvergenceHistory(length=1000, reset=True)
        try:
            self.snes.solve(None, self.x)
        except self._PETSc.Error as e:
            if self._callback_error is not None:
                raise self._callback_error from None
            agree(self.comm, e, where=f"{self.prefix}SNES solve")
            raise
        finally:
            self._setting = None
        reason = self.snes.getConvergedReason()
        its = self.snes.getIterationNumber()
        self.stats["solves"] += 1
        self.stats["newton_iterations"] += its
        self.stats["linear_iterations"] += self.snes.getLinearSolveIterations()
        error = None
        if reason <= 0:
            norms, lin = self.snes.getConvergenceHistory()
            error = ConvergenceError("forward Newton", self._snes_reasons.get(reason, reason),
                                     norms, lin, detail=f"problem {self.prefix!r}, "
                                     f"{self.law.name}")
        agree(self.comm, error, where=f"{self.prefix} forward solve")
        # The matrix holds the Jacobian of the last Newton step, not yet of the solution; with
        # fused evaluations the stencil holds the solution's (the last residual was there).
        self._matrix_state = None
        return self.x.getArray(readonly=True).reshape(-1, self.m).copy()

    def jacobian_with_residual(self):
        """Whether residual evaluations may build the Jacobian too (one evaluation of the law
        for both, and the solution's Jacobian ready for the adjoint; see the module
        docstring): with SNES's Newton line search "bt" or "basic" and a Jacobian at every step
        (the defaults), every residual evaluation but the last one and rejected line-search
        points is followed by a Jacobian at the same point. Other methods evaluate them
        separately."""
        db = self._PETSc.Options()
        lag = db.getInt(self.prefix + "snes_lag_jacobian", 1)
        mf = db.getBool(self.prefix + "snes_mf", False) or \
            db.getBool(self.prefix + "snes_mf_operator", False)
        return self.snes.getType() == "newtonls" and lag == 1 and not mf and \
            self.snes.getLineSearch().getType() in ("bt", "basic")

    def _u_grid(self, X):
        self.da.globalToLocal(X, self.x_local)
        return self.x_local.getArray(readonly=True).reshape(self.mesh.grid_shape(True) +
                                                            (self.m,))

    def _residual_callback(self, snes, X, F):
        setting = self._setting
        u_grid = self._u_grid(X)
        fused = self._fuse_next
        self._residuals_since_jacobian += 1
        error = None
        try:
            out = np.zeros(u_grid.shape)
            if fused:
                self._stencil_state = None
                self.pattern.stencil[...] = 0.0
                setting.add_residual_and_matrix(self, u_grid, out, self.pattern.stencil)
            else:
                setting.add_residual(self, u_grid, out)
        except Exception as e:       # agreed below: every rank raises together
            error = e
        self._agree_in_callback(error, "a residual evaluation")
        if fused:
            self._stencil_state = (setting, X.getArray(readonly=True).copy())
            self.stats["jacobians"] += 1
        self.F_local.getArray()[:] = out.reshape(-1)
        F.zeroEntries()
        self.da.localToGlobal(self.F_local, F, addv=self._PETSc.InsertMode.ADD_VALUES)
        f = F.getArray()
        f -= setting.rhs
        x = X.getArray(readonly=True)
        f[self.constrained_index] = x[self.constrained_index] - setting.dirichlet_values
        self.stats["residuals"] += 1

    def _jacobian_callback(self, snes, X, J, P):
        self.assemble_jacobian(self._setting, X)
        # Build the Jacobian with the next residuals once a Newton step was taken whole (one
        # residual since the last Jacobian, after the first): from then on the line search
        # keeps taking full steps, so no Jacobian is built at a point it rejects.
        first = self.snes.getIterationNumber() == 0
        self._fuse_next = self._fused and not first and self._residuals_since_jacobian == 1
        self._residuals_since_jacobian = 0

    def _stencil_holds(self, setting, x):
        """Whether the node stencil holds the law's Jacobians for ``setting`` at ``x`` on every
        rank. Collective: a rank whose owned values did not move (it owns only constrained
        nodes, say) must still build the stencil with the others, whose ghost exchange it
        joins."""
        held = self._stencil_state
        here = held is not None and held[0] is setting and np.array_equal(held[1], x)
        return max_over_ranks(0 if here else 1, self.comm) == 0

    def assemble_jacobian(self, setting, x, key=None, reuse=True):
        """Fill the matrix with R'(u) for the owned values ``x`` (a vector of the problem's
        layout, or an array (n_owned*m,)), constrained rows/columns identity; the law's
        Jacobians are evaluated unless the node stencil holds them for this setting and point
        already (made with the residual there) and ``reuse``. ``key``: what the matrix then
        holds (see :meth:`at_state`). Collective."""
        if isinstance(x, np.ndarray):
            self.x.getArray()[:] = x
            x = self.x
        X, x = x, x.getArray(readonly=True)
        error = None
        try:
            if not (reuse and self._stencil_holds(setting, x)):
                self._stencil_state = None
                self.pattern.stencil[...] = 0.0
                setting.matrix_values(self, self._u_grid(X), self.pattern.stencil)
                self._stencil_state = (setting, np.array(x, copy=True))
                self.stats["jacobians"] += 1
            values = self.pattern.gather()
        except Exception as e:
            error = e
        self._agree_in_callback(error, "a Jacobian evaluation")
        self.J.setValuesCOO(values)
        self._jacobian_serial += 1
        self._matrix_state = key

    def _agree_in_callback(self, error, where):
        try:
            agree(self.comm, error, where=f"{where} of problem {self.prefix!r}")
        except Exception as e:
            self._callback_error = e
            raise

    def at_state(self, setting, u, key):
        """Make the matrix R'(u) for the solution u (owned values) unless it holds it already
        (``key`` identifies the state). Collective."""
        if self._matrix_state is not None and self._matrix_state == key:
            return
        self.assemble_jacobian(setting, np.reshape(u, -1), key)

    def linear_solve(self, rhs, what):
        """Solve R'(u) x = rhs — transposed for adjoints — with the matrix made by
        :meth:`at_state`. ``rhs``: owned (n_owned*m,); ``what``: "adjoint", "tangent-linear",
        "second-order adjoint". Collective.

        Symmetric problems solve adjoints with the forward KSP and reuse its last
        preconditioner (unless the KSP is ``preonly``, where a stale factorisation would be
        inexact). Non-symmetric ones solve adjoints with the explicit transpose and a second
        KSP (options prefix ``<prefix>adjoint_``), set up again only when the matrix changed:
        PETSc's smoothers (SOR, Chebyshev) cannot be applied transposed.
        """
        self._check_alive()
        transposed = what != "tangent-linear" and not self.symmetric
        ksp = self._adjoint_ksp() if transposed else self.ksp
        pc = ksp.getPC()
        tolerances = ksp.getTolerances()
        reuse = not transposed and ksp.getType() != "preonly"
        self.rhs.getArray()[:] = rhs
        self.sol.zeroEntries()
        ksp.setTolerances(rtol=self.adjoint_rtol, atol=1e-300, max_it=self.linear_max_it)
        ksp.setConvergenceHistory(length=100000, reset=True)
        pc.setReusePreconditioner(reuse)
        try:
            if transposed:
                ksp.setOperators(self.JT, self.JT)
            else:
                ksp.setOperators(self.J, self.J)
            ksp.solve(self.rhs, self.sol)
        finally:
            pc.setReusePreconditioner(False)
            ksp.setTolerances(*tolerances)
        reason = ksp.getConvergedReason()
        self.stats["linear_solves"] += 1
        error = None
        if reason <= 0:
            error = ConvergenceError(what, self._ksp_reasons.get(reason, reason),
                                     ksp.getConvergenceHistory(),
                                     detail=f"problem {self.prefix!r}")
        agree(self.comm, error, where=f"{self.prefix} {what} solve")
        return self.sol.getArray(readonly=True).copy()

    def _adjoint_ksp(self):
        """The KSP of transposed solves (non-symmetric problems), with Jᵀ up to date."""
        PETSc = self._PETSc
        if self.JT is None:
            self.JT = self.J.transpose(PETSc.Mat())       # (no argument: in place!)
            self._transposed = self._jacobian_serial
            ksp = self.adjoint_ksp = PETSc.KSP().create(self.comm)
            ksp.setOptionsPrefix(self.prefix + "adjoint_")
            ksp.setDM(self.da)
            ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
            ksp.setOperators(self.JT, self.JT)
            defaults = {k: v for k, v in self.default_options("adjoint_").items()
                        if k.startswith(("ksp_", "pc_"))}
            self._with_defaults(PETSc, defaults, "adjoint_", ksp.setFromOptions)
        elif self._transposed != self._jacobian_serial:
            self.J.transpose(self.JT)
            self._transposed = self._jacobian_serial
        return self.adjoint_ksp

    # -- lifetime -----------------------------------------------------------------------------
    def _check_alive(self):
        if self._destroyed:
            raise RuntimeError(f"NonlinearProblem {self.prefix!r}: this problem was destroyed; "
                               f"its solves can no longer be replayed or differentiated")

    def destroy(self):
        """Destroy the problem's PETSc objects. Collective: every rank calls it, in the same
        order as other collective PETSc calls."""
        if self._destroyed:
            return
        self._destroyed = True
        for obj in (self.snes, self.adjoint_ksp, self.J, self.JT, self.nullspace, self.x,
                    self.F, self.rhs, self.sol, self.x_local, self.F_local, self.da):
            if obj is not None:
                obj.destroy()
        self.snes = self.ksp = self.adjoint_ksp = self.J = self.JT = None
        db = self._PETSc.Options()
        for name in self._lazy_options:
            if db.hasName(name):
                db.delValue(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    def __repr__(self):
        return f"<NonlinearProblem {self.prefix!r}: {self.law.name}, m={self.m}, {self.mesh!r}>"
