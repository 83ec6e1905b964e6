"""PDE solvers for crk built on petsc4py.

This package will hold the PETSc-based discretisations that plug into the crk
tape: structured-grid finite elements on DMDA, SNES/KSP solves and time
stepping, each with tangent-linear, adjoint and Hessian-action rules.

Importing ``solvers`` imports neither petsc4py nor mpi4py; modules that need
PETSc get it through :func:`solvers.petsc.import_petsc`, which also checks that
petsc4py and the PETSc library it loads belong together.
"""
