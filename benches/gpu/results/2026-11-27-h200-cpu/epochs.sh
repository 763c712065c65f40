#!/usr/bin/env bash
# The same comparison over more epochs: at E = 200 icq's 16 threads finish B = 4096 in about
# 25 ms, so this checks that a ten-times-longer run gives the same rates. icq at E = 2000 on
# 16 threads and on one (three runs each), the NumPy and JAX peers at E = 2000 once each on all
# cores (epochs.txt). B = 4096.
#
#   OUT=/tmp/cpu bash benches/gpu/results/2026-11-27-h200-cpu/epochs.sh   (from the repository root)
set -uo pipefail
OUT=${OUT:-out/cpu}
bin=target/gpu/icq
mkdir -p "$OUT"
tmp=$(mktemp -d)
"$bin" model export examples/bench.toml -o "$tmp/bench.json" >/dev/null
args=(--model "$tmp/bench.json" --instances 4096 --epochs 2000 --width 32 --alpha 0.05 --seed 0)
{
    for run in 1 2 3; do
        "$bin" bench examples/bench.toml --instances 4096 --epochs 2000 --json
        RAYON_NUM_THREADS=1 "$bin" bench examples/bench.toml --instances 4096 --epochs 2000 --json
    done
    timeout 120 python3 benches/peers/icq_numpy.py "${args[@]}" | tail -n 1
    JAX_PLATFORMS=cpu timeout 120 python3 benches/peers/icq_jax.py "${args[@]}" --warmup-epochs 5 | tail -n 1
} >"$OUT/epochs.txt" 2>&1
rm -rf "$tmp"
grep -oE '"(device|peer)": ?"[^"]*"|"handoff_updates_per_s": ?[0-9.e+]+' "$OUT/epochs.txt"
