"""PDE solvers for crk built on petsc4py: Q1 finite elements on structured boxes (PETSc DMDA),
nonlinear solves by SNES whose material law is a crk point map, each solve one block on the
distributed tape (replay, tangent-linear, adjoint, Hessian action).

Importing ``solvers`` imports neither petsc4py nor mpi4py (nor any AD backend); PETSc is
imported through :func:`solvers.petsc.import_petsc` when a mesh is made.
"""
from .boundary import DirichletBC, NeumannBC
from .errors import ConvergenceError
from .functionals import error_norms, l2_misfit
from .mesh import BoxMesh
from .problem import NonlinearProblem

__all__ = ["BoxMesh", "ConvergenceError", "DirichletBC", "NeumannBC", "NonlinearProblem",
           "error_norms", "l2_misfit"]
