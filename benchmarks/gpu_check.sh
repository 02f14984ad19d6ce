#!/usr/bin/env bash
# The GPU checks as one prepared run, for a machine with CUDA (device time is scarce: one call).
#
# 1. the CUDA tests (tests/test_cuda.py: each domain trains on the GPU; predict, pick and
#    classify on the GPU agree with the CPU);
# 2. each domain's throughput benchmark with --device cuda, the real commands end to end:
#    galaxy predict over a Parquet catalogue (and last, the same on that machine's CPU cores),
#    spectra predict on a bulk Parquet table and on per-file .fits.gz (and the bulk table with the
#    distilled spectra_mk_fast), cryo-EM picking on the six
#    4096x4096 test micrographs and 2D classification of every picker's particles.
#
# Needs deepscope importable and ../shared/data holding (a sample of) the shared data: the
# galaxy cutouts, MILES spectra and EMPIAR-10017 test micrographs the benchmarks read.
# Logs go to $OUT (the device tool's folder) or ./gpu_logs.
#
#   bash benchmarks/gpu_check.sh              # every step
#   bash benchmarks/gpu_check.sh galaxy spectra   # only these steps
set -u
out=${OUT:-gpu_logs}
mkdir -p "$out"
cores=$(nproc)
export PYTHONUNBUFFERED=1

wanted="$*"
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, go on if it fails
    local name=$1 limit=$2
    shift 2
    [[ -n "$wanted" && " $wanted " != *" $name "* ]] && return
    echo "=== $name ($(date +%T), limit ${limit}s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log" | tail -n 25
    echo "=== $name exit ${PIPESTATUS[0]}"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -m deepscope doctor; } \
    >"$out/machine.log" 2>&1
head -n 20 "$out/machine.log"
# Most telling first; the limits add up to about 12 minutes of a 15-minute device budget.
# -W default: a new library's deprecation warning there must not fail the run (CI keeps them errors).
step tests 150 python3 -m pytest -m gpu tests/test_cuda.py -q -p no:cacheprovider -W default
step galaxy 120 python3 benchmarks/bench_scale.py --compare 0 --sizes 100000 1000000 --device cuda
step spectra 120 python3 benchmarks/bench_spectra_bulk.py --rows 100000 --files 5000 --threads "$cores" --device cuda
step spectra_fast 90 python3 benchmarks/bench_spectra_bulk.py --rows 100000 --files 0 --threads "$cores" --device cuda \
    --model spectra_mk_fast
step cryoem_pick 90 python3 benchmarks/bench_cryoem.py --threads "$cores" --device cuda
step cryoem_classify 120 python3 benchmarks/bench_cryoem_classify.py --device cuda
step galaxy_cpu 60 python3 benchmarks/bench_scale.py --compare 0 --sizes 100000 --device cpu
