# crk developer entry points (see README.md, "Set-up"):
#   make demo    install everything into .venv, then fit the p-Laplacian example with crk-fit
#                under mpirun -n 2 (outputs in fit-output/p_laplacian)
#   make test    install everything, then the serial suite and the MPI suite on 2 and 3 ranks
#   make install only the install (idempotent; seconds when already done)

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
MPIRUN := $(VENV)/bin/mpirun
CI_OUT := .ci/out
STAMP  := $(VENV)/.crk-installed

SERIAL_TIMEOUT ?= 2400
MPI_TIMEOUT    ?= 2400
DEMO_TIMEOUT   ?= 600
# --foreground keeps the command in make's process group so Ctrl-C reaches it;
# -k sends KILL if it has not stopped 30 s after the TERM.
TIMEOUT = timeout --foreground -k 30
# (A single hung test is ended sooner by the watchdog in tests/conftest.py, which dumps
# its stack to the rank's log; scripts/check_junit.py shows that dump.)
PYTEST := $(VPY) -m pytest

# The stages must not overlap: they share .ci/out and the machine's cores.
.NOTPARALLEL:
.PHONY: install test test-serial test-mpi2 test-mpi3 demo clean distclean

install: $(STAMP)

# Re-run when the dependencies or the recipe change; the script skips what is done.
$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	@touch $@

# One thread per process: the MPI ranks already fill the cores, and each rank's
# BLAS/XLA/TensorFlow thread pools would oversubscribe them (slow, noisy runs).
test test-serial test-mpi2 test-mpi3 demo: export OMP_NUM_THREADS := 1
test test-serial test-mpi2 test-mpi3 demo: export OPENBLAS_NUM_THREADS := 1
test test-serial test-mpi2 test-mpi3 demo: export TF_CPP_MIN_LOG_LEVEL := 2
test test-serial test-mpi2 test-mpi3 demo: export TF_NUM_INTRAOP_THREADS := 1
test test-serial test-mpi2 test-mpi3 demo: export TF_NUM_INTEROP_THREADS := 1
test test-serial test-mpi2 test-mpi3 demo: export XLA_FLAGS := --xla_cpu_multi_thread_eigen=false

# Runs all three stages even if one fails, then reports on all of them again;
# fails if any stage failed.
test: install
	@rc=0; \
	$(MAKE) --no-print-directory test-serial || rc=1; \
	$(MAKE) --no-print-directory test-mpi2 || rc=1; \
	$(MAKE) --no-print-directory test-mpi3 || rc=1; \
	echo; echo "==> [test] summary"; \
	$(VPY) scripts/check_junit.py --dir $(CI_OUT) serial mpi2 mpi3 || rc=1; \
	exit $$rc

# Every test, the MPI-marked ones on a single rank.
SERIAL_CMD = $(TIMEOUT) $(SERIAL_TIMEOUT) $(PYTEST) --with-mpi --junitxml=$(CI_OUT)/serial.xml

test-serial: install
	@mkdir -p $(CI_OUT) && rm -f $(CI_OUT)/serial.*
	@echo "==> [test] serial suite: $(SERIAL_CMD)"
	@rc=0; $(SERIAL_CMD) || rc=$$?; \
	if [ $$rc -eq 124 ]; then echo "serial suite TIMED OUT after $(SERIAL_TIMEOUT) s"; fi; \
	$(VPY) scripts/check_junit.py --dir $(CI_OUT) serial || rc=1; \
	exit $$rc

# The MPI-marked tests under mpirun -n N; each rank writes $(CI_OUT)/mpiN-rank<R>.{xml,log}.
# (-p no:cacheprovider: the ranks would otherwise all write .pytest_cache at once.)
MPI_CMD = $(TIMEOUT) $(MPI_TIMEOUT) $(MPIRUN) -n $(1) bash scripts/pytest_mpi_rank.sh \
	$(PYTEST) --with-mpi -m mpi -q -p no:cacheprovider --junitxml=$(CI_OUT)/mpi$(1).xml

define mpi_suite
	@mkdir -p $(CI_OUT) && rm -f $(CI_OUT)/mpi$(1)-rank*
	@echo "==> [test] MPI suite on $(1) ranks: $(call MPI_CMD,$(1))"
	@rc=0; $(call MPI_CMD,$(1)) || rc=$$?; \
	if [ $$rc -eq 124 ]; then echo "mpirun -n $(1) TIMED OUT after $(MPI_TIMEOUT) s (a hang?)"; fi; \
	$(VPY) scripts/check_junit.py --dir $(CI_OUT) mpi$(1) || rc=1; \
	exit $$rc
endef

test-mpi2: install
	$(call mpi_suite,2)

test-mpi3: install
	$(call mpi_suite,3)

# `python -m crk.fit` is the crk-fit console script; it works before pip has (re)made
# .venv/bin/crk-fit.
# -bind-to core: one core per rank (MPICH binds none by default; README, "One core per rank").
DEMO_OUTPUT ?= fit-output/p_laplacian
demo: install
	$(TIMEOUT) $(DEMO_TIMEOUT) $(MPIRUN) -bind-to core -n 2 $(VPY) -m crk.fit p_laplacian --output $(DEMO_OUTPUT)

# Build and test outputs; keeps .venv (the PETSc build is slow to redo).
clean:
	rm -rf build dist *.egg-info .pytest_cache $(CI_OUT) scripts/out fit-output examples/output
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.bench.json' \) -print0 \
	    | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)
