"""The inner product of the control space for TAO (``tao_minimize(riesz_map=...)``).

A Riesz map M (e.g. a mass matrix for a field control) gives TAO

* its gradient norm, sqrt(gᵀ M⁻¹ g) for a derivative g (``TaoSetGradientNorm`` with a matrix
  applying M⁻¹), and
* the initial Hessian of its quasi-Newton matrix (``TaoLMVMSetH0`` for lmvm/blmvm, J0 of
  ``TaoGetLMVMMatrix`` for the bqnk family), whose inverse is applied with M⁻¹, so the first
  quasi-Newton step is the gradient in the M inner product.

M is given either as a PETSc Mat in the fit's Vec layout (its inverse applied with a KSP, options
prefix ``{options_prefix}riesz_``, default CG + Jacobi), or as the map M⁻¹ itself: a callable
taking one control's derivative (a crk value) to its gradient, as ``rf.derivative(riesz_map=...)``
takes, or a list of them per control.
"""
from ..overloaded_type import plain_value
from ..parallel.collective import agree

#: Quasi-Newton types, by how their initial Hessian is set: TaoLMVMSetH0, or J0 of the matrix
#: TaoGetLMVMMatrix returns.
LMVM_H0_TYPES = ("lmvm", "blmvm")
LMVM_MAT_TYPES = ("bqnls", "bqnktr", "bqnktl")


class RieszMap:
    """The Riesz map of one TAO fit (``fit``: the fit's PETSc objects and Vec conversions).
    Collective to construct."""

    def __init__(self, fit, riesz_map):
        self.fit = fit
        self.riesz_map = riesz_map
        self.ksp = None
        PETSc = fit.PETSc
        if isinstance(riesz_map, PETSc.Mat):
            expected = ((fit.layout.owned_size, fit.layout.size),) * 2
            got = tuple(tuple(int(n) for n in pair) for pair in riesz_map.getSizes())
            agree(fit.comm, None if got == expected else ValueError(
                f"{fit.problem.name}: riesz_map has sizes (local, global) {got} on rank "
                f"{fit.comm.rank}, but the control vector there is {expected[0]}: one row per "
                f"entry of the free controls this rank owns"), where=fit.problem.name)
            self.M = riesz_map
            self.ksp = fit.own(PETSc.KSP().create(comm=fit.comm))
            self.ksp.setOptionsPrefix(fit.prefix + "riesz_")
            self.ksp.setOperators(riesz_map)
            self.ksp.setType("cg")
            self.ksp.getPC().setType("jacobi")
            self.ksp.setTolerances(rtol=1e-12)
            self.ksp.setFromOptions()
        else:
            self.M = None

    def apply_inverse(self, x, y):
        """y = M⁻¹ x: the gradient of derivative x."""
        if self.ksp is not None:
            self.ksp.solve(x, y)
            reason = self.ksp.getConvergedReason()
            if reason < 0:
                raise RuntimeError(f"crk.optimize: the Riesz map's KSP solve did not converge "
                                   f"(reason {reason}); set -{self.fit.prefix}riesz_ksp_* "
                                   f"options")
            return
        fit = self.fit
        _, values = fit.read(x, fit.zero)
        maps = self.riesz_map if isinstance(self.riesz_map, (list, tuple)) else \
            [self.riesz_map] * len(values)
        out = list(values)
        for k in fit.layout.free:
            if maps[k] is not None:
                control = fit.problem.controls[k]
                out[k] = control.plain(plain_value(maps[k](control.wrap(values[k]))),
                                       f"riesz_map result for control {k}")
        fit.write(y, out)

    def _shell(self, context):
        PETSc, layout = self.fit.PETSc, self.fit.layout
        sizes = (layout.owned_size, layout.size)
        mat = self.fit.own(PETSc.Mat().createPython((sizes, sizes), context,
                                                     comm=self.fit.comm))
        mat.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        mat.setUp()
        return mat

    def norm_matrix(self):
        """A matrix applying M⁻¹: TAO's gradient norm is sqrt(gᵀ M⁻¹ g)."""
        return self._shell(_Apply(self.fit.guard(self.apply_inverse)))

    def set_initial_hessian(self, tao):
        """Make M the initial Hessian of TAO's quasi-Newton matrix (its inverse applied as
        above), for the types that have one."""
        kind = tao.getType()
        if kind not in LMVM_H0_TYPES + LMVM_MAT_TYPES:
            return                      # not a quasi-Newton type: nothing to initialise
        H0 = self.M if self.M is not None else \
            self._shell(_Apply(self.fit.guard(_no_initial_hessian)))
        if kind in LMVM_H0_TYPES:
            tao.setLMVMH0(H0)
            ksp = tao.getLMVMH0KSP()
        else:
            lmvm = tao.getLMVMMat()
            lmvm.setLMVMJ0(H0)
            ksp = lmvm.getLMVMJ0KSP()
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("python")
        pc.setPythonContext(_Apply(self.fit.guard(self.apply_inverse)))


class _Apply:
    """Python context applying a function as Mat.mult or PC.apply."""

    def __init__(self, function):
        self.function = function

    def mult(self, mat, x, y):
        self.function(x, y)

    def apply(self, pc, x, y):
        self.function(x, y)


def _no_initial_hessian(x, y):
    """Products with the initial Hessian M, when only the map M⁻¹ is known (a callable)."""
    raise NotImplementedError(
        "crk.optimize: this TAO type multiplies by the initial Hessian M, but riesz_map was "
        "given as a callable applying M⁻¹; give riesz_map as a PETSc Mat instead")


def check_riesz_map(riesz_map, problem, PETSc, name):
    if riesz_map is None or callable(riesz_map) or isinstance(riesz_map, PETSc.Mat):
        return
    if isinstance(riesz_map, (list, tuple)):
        n = len(problem.controls)
        if len(riesz_map) != n or not all(r is None or callable(r) for r in riesz_map):
            raise TypeError(f"{name}: riesz_map given as a list must have one callable (or "
                            f"None) per control, {n} in all")
        return
    raise TypeError(f"{name}: argument 'riesz_map' must be a PETSc Mat, a callable or a list "
                    f"of callables per control, got {type(riesz_map).__name__}")
