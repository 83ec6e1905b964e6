#!/usr/bin/env bash
# Run one MPI rank's share of a pytest run with per-rank report files.
#
#   mpirun -n N scripts/pytest_mpi_rank.sh PYTHON -m pytest ... --junitxml=DIR/NAME.xml
#
# Every rank runs the same command, so a plain --junitxml would have all ranks
# writing one file. Here each rank rewrites --junitxml=DIR/NAME.xml (only the `=` form)
# to DIR/NAME-rank<R>.xml and keeps its console output in DIR/NAME-rank<R>.log.
# Only rank 0's output is also shown on the terminal: the other ranks print the same
# test ids, and interleaved they are unreadable. scripts/check_junit.py reports
# failures of every rank from the xml files.
set -euo pipefail

# mpich's hydra sets PMI_RANK; the others are Open MPI's and PMIx's names.
rank=${PMI_RANK:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}}

args=()
log=""
for arg in "$@"; do
    case $arg in
        --junitxml=*.xml)
            stem="${arg#--junitxml=}"
            stem="${stem%.xml}-rank$rank"
            args+=("--junitxml=$stem.xml")
            log="$stem.log"
            ;;
        *) args+=("$arg") ;;
    esac
done

if [ -z "$log" ]; then
    exec "${args[@]}"
fi
mkdir -p "$(dirname "$log")"
if [ "$rank" = 0 ]; then
    "${args[@]}" 2>&1 | tee "$log"
    exit "${PIPESTATUS[0]}"
else
    exec "${args[@]}" >"$log" 2>&1
fi
