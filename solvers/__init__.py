"""PDE solvers for crk built on petsc4py: Q1 finite elements on structured boxes (PETSc DMDA),
nonlinear solves by SNES whose material law is a crk point map, each solve one block on the
distributed tape (replay, tangent-linear, adjoint, Hessian action).

Parts (one concern each):

* ``mesh.py`` — :class:`BoxMesh`: the DMDA box, node ownership, ghosts, coordinates, orderings;
* ``fem.py`` — the Q1 element, Gauss rules, vectorised element kernels;
* ``forms.py`` — the material law (flux, reaction, or a stored energy) at quadrature points;
* ``boundary.py`` — Dirichlet and Neumann conditions;
* ``assembly.py`` — residual, Jacobian (COO pattern made once), their derivatives;
* ``problem.py`` — :class:`NonlinearProblem`: PETSc objects, options, the Newton solve;
* ``solve.py`` — the solve as a block: tangent-linear, adjoint, second-order adjoint;
* ``transient.py`` — :class:`TransientProblem`: time steps by the θ-scheme, one block each;
* ``functionals.py`` — fields at quadrature points, integrals, misfits, Tikhonov terms;
* ``sensors.py`` — point values, each read by one rank; ``reaction.py`` — boundary fluxes and
  reaction forces; ``riesz.py`` — L2 / H1 Riesz maps of field derivatives;
* ``output.py`` — VTK files (ParaView) and PNG plots;
* ``errors.py`` — :class:`ConvergenceError`;
* ``petsc.py`` — :func:`solvers.petsc.import_petsc`, the checked PETSc import.

Importing ``solvers`` imports neither petsc4py nor mpi4py (nor any AD backend); PETSc is
imported through :func:`solvers.petsc.import_petsc` when a mesh is made.
"""
from . import functionals, output, transient
from .boundary import DirichletBC, NeumannBC
from .errors import ConvergenceError
from .functionals import (at_points, error_norms, gradient_at_points, h1_seminorm_squared,
                          integral, l2_misfit, l2_norm_squared)
from .mesh import BoxMesh
from .problem import NonlinearProblem
from .reaction import boundary_flux
from .riesz import RieszMap
from .sensors import Sensors, point_values
from .transient import TransientProblem

__all__ = ["BoxMesh", "ConvergenceError", "DirichletBC", "NeumannBC", "NonlinearProblem",
           "RieszMap", "Sensors", "TransientProblem", "at_points", "boundary_flux",
           "error_norms", "functionals", "gradient_at_points", "h1_seminorm_squared",
           "integral", "l2_misfit", "l2_norm_squared", "output", "point_values", "transient"]
