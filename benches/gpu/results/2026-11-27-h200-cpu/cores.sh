#!/usr/bin/env bash
# The CPU target on the GPU host's 16 cores, beyond the three runs of check.sh: five more
# `benches/peers/run.sh` runs (runs.txt), then each program of the comparison restricted with
# taskset to 1, 2 and 16 cores, with icq's rayon pool sized to match, three rounds
# (cores.txt: each program's JSON line, then bash's `time` of it: user + sys over real is the
# number of cores it kept busy). B = 4096, E = 200 (examples/bench.toml).
#
#   OUT=/tmp/cpu bash benches/gpu/results/2026-11-27-h200-cpu/cores.sh   (from the repository root)
set -uo pipefail
OUT=${OUT:-out/cpu}
CORES=${CORES:-"1 2 16"}
bin=target/gpu/icq
mkdir -p "$OUT"
for run in 1 2 3 4 5; do
    echo "== run $run ($(date -u))"
    ICQ="$bin" timeout 90 bash benches/peers/run.sh 2>&1
    echo "run.sh exit $?"
done >"$OUT/runs.txt"

tmp=$(mktemp -d)
"$bin" model export examples/bench.toml -o "$tmp/bench.json" >/dev/null
args=(--model "$tmp/bench.json" --instances 4096 --epochs 200 --width 32 --alpha 0.05 --seed 0)
TIMEFORMAT='time: real %R s, user %U s, sys %S s'
for round in 1 2 3; do
    for n in $CORES; do
        cpus="0-$((n - 1))"
        echo "== round $round, $n cores (taskset -c $cpus)"
        { time taskset -c "$cpus" timeout 60 python3 benches/peers/icq_numpy.py "${args[@]}" | tail -n 1; } 2>&1
        { time JAX_PLATFORMS=cpu taskset -c "$cpus" timeout 60 python3 benches/peers/icq_jax.py "${args[@]}" \
            --warmup-epochs 5 | tail -n 1; } 2>&1
        { time RAYON_NUM_THREADS=$n taskset -c "$cpus" timeout 60 "$bin" bench examples/bench.toml \
            --instances 4096 --epochs 200 --json; } 2>&1
    done
done >"$OUT/cores.txt"
rm -rf "$tmp"
grep -E 'icq/|icq1/' "$OUT/runs.txt"
grep -oE '^(==.*|time: .*|\{"(peer|backend)": ?"[a-z]+")|"handoff_updates_per_s": ?[0-9.e+]+' "$OUT/cores.txt"
