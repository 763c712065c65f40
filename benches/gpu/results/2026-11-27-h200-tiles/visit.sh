#!/usr/bin/env bash
# Parameters in tiles of eight (src/backend/device.rs, `param_index`) against the plain
# instance-minor layout, on one GPU in one call: the parity tests of the tiled build on the card
# (parity.txt), then `icq bench` of both builds, alternated, at the quickstart, bench and
# bench-f16 configurations (bench.jsonl), then one launch of the tiled build under Nsight Compute
# (ncu.txt). The old build's `icq` is target/gpu-old/icq (benches/gpu/build.sh at 9a005f8), the
# tiled one target/gpu/ (build.sh at the commit that tiles). Needs what benches/gpu/check.sh
# needs.
#
#   OUT=/tmp/tiles bash benches/gpu/results/2026-11-27-h200-tiles/visit.sh   (from the repository root)
set -uo pipefail
OUT=${OUT:-out/tiles}
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
nvrtc=$(python3 scripts/nvrtc_lib_dir.py)
export LD_LIBRARY_PATH="${nvrtc}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
built=$(cat target/gpu/built-in)
if [ "$built" != "$PWD" ] && [ ! -e "$built" ]; then
    mkdir -p "$(dirname "$built")" && ln -s "$PWD" "$built"
fi
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv
  date -u; } >"$OUT/gpu.txt" 2>&1

ICQ_REQUIRE_ADAPTER=1 ICQ_REQUIRE_CUDA=1 ICQ_REQUIRE_NVRTC=1 \
    timeout 120 target/gpu/gpu_parity --include-ignored --test-threads 1 >"$OUT/parity.txt" 2>&1
echo "gpu_parity exit $?" >>"$OUT/parity.txt"

export ICQ_CACHE_DIR
ICQ_CACHE_DIR=$(mktemp -d)
# Largest sizes first; no bench starts after 170 s.
for round in 1 2; do
    for log2 in 20 17; do
        if [ "$round" = 2 ] && [ "$log2" = 17 ]; then continue; fi
        for config in examples/bench.toml examples/quickstart.toml examples/bench-f16.toml; do
            for backend in cuda wgpu; do
                if [ "$config" = examples/bench-f16.toml ] && [ "$backend" = wgpu ]; then continue; fi
                for build in old new; do
                    if [ "$SECONDS" -gt 170 ]; then echo "time budget spent" >>"$OUT/bench.err"; break 5; fi
                    bin=target/gpu/icq
                    if [ "$build" = old ]; then bin=target/gpu-old/icq; fi
                    line=$(timeout 60 "$bin" bench "$config" --backend "$backend" \
                        --instances $((1 << log2)) --epochs 200 --json 2>>"$OUT/bench.err")
                    echo "{\"build\":\"$build\",\"round\":$round,\"config\":\"$config\",\"result\":${line:-null}}" >>"$OUT/bench.jsonl"
                done
            done
        done
    done
done

if command -v ncu >/dev/null && [ "$SECONDS" -lt 200 ]; then
    timeout -k 5 50 ncu --clock-control none --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
        target/gpu/icq bench examples/bench.toml --backend cuda --instances $((1 << 20)) \
        --epochs 136 >"$OUT/ncu.txt" 2>&1
    echo "ncu exit $?" >>"$OUT/ncu.txt"
fi
tail -n 3 "$OUT/parity.txt"
python3 - "$OUT/bench.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l); r = d["result"] or {}
    print(d["build"], d["round"], d["config"].split("/")[-1], r.get("backend"), r.get("instances"),
          "%.3g" % r.get("handoff_updates_per_s", 0))
PY
grep -E 'Duration|DRAM Throughput|L2 Hit|L1/TEX Hit|Memory Throughput' "$OUT/ncu.txt" 2>/dev/null
