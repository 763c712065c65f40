#!/usr/bin/env bash
# The script of the second visit of 2026-11-27 (kept as it ran; it stopped at its 400 s limit
# during the second round of benches, so the JAX, parity-unrolled and ncu steps never ran).
# kdev/base, kdev/scratch and kdev/unrolled held stripped release builds (`--features cuda`) of
# 52f3d07 (the kernel before), 3378505 (the kernel kept) and a trial that unrolled the
# hidden-unit loops to keep the layers in registers (not kept); kdev/*/gpu_parity the matching
# gpu_parity test binaries.
set -u
cd "$(dirname "$0")/.."
O=${OUT:-/tmp/out}; mkdir -p "$O"
export LD_LIBRARY_PATH=$(python3 scripts/nvrtc_lib_dir.py)
[ -e /work/main ] || { mkdir -p /work; ln -s "$PWD" /work/main; }
export ICQ_CACHE_DIR=$(mktemp -d)
K=kdev
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv >"$O/gpu.txt"
ICQ_REQUIRE_CUDA=1 ICQ_REQUIRE_NVRTC=1 timeout 120 $K/scratch/gpu_parity --include-ignored on_cuda:: \
    --test-threads 4 >"$O/parity.txt" 2>&1
echo "scratch parity exit $? at ${SECONDS}s" | tee -a "$O/parity.txt"
# First call of each variant on each shape includes NVRTC: timed whole.
for v in base scratch unrolled; do
    for cfg in examples/bench.toml examples/quickstart.toml; do
        t0=$EPOCHREALTIME
        timeout 120 $K/$v/icq bench $cfg --backend cuda --instances 1024 --epochs 1 --json >/dev/null 2>>"$O/err.txt"
        echo "$v $cfg first-process $(awk "BEGIN{print $EPOCHREALTIME - $t0}") s" >>"$O/parity.txt"
    done
done
for rep in 1 2; do
    order="base scratch unrolled"; [ $rep = 2 ] && order="unrolled scratch base"
    for v in $order; do
        for cfg in examples/bench.toml examples/quickstart.toml examples/bench-f16.toml; do
            for log2 in 17 20; do
                line=$(timeout 60 $K/$v/icq bench $cfg --backend cuda --instances $((1 << log2)) --epochs 200 --json 2>>"$O/err.txt")
                echo "{\"variant\":\"$v\",\"rep\":$rep,\"config\":\"$cfg\",\"result\":${line:-null}}" >>"$O/ab.jsonl"
            done
        done
    done
done
echo "benches done at ${SECONDS}s" | tee -a "$O/parity.txt"
$K/scratch/icq model export examples/bench.toml -o "$ICQ_CACHE_DIR/bench.json" >/dev/null
for log2 in 17 20; do
    [ "$SECONDS" -gt 220 ] && break
    line=$(JAX_PLATFORMS=cuda timeout 80 python3 benches/peers/icq_jax.py --model "$ICQ_CACHE_DIR/bench.json" \
        --instances $((1 << log2)) --epochs 200 --width 32 --alpha 0.05 --seed 0 --warmup-epochs 5 2>>"$O/err.txt" | tail -n 1)
    echo "{\"peer\":\"jax\",\"instances\":$((1 << log2)),\"result\":${line:-null}}" >>"$O/peers.jsonl"
done
echo "jax done at ${SECONDS}s" | tee -a "$O/parity.txt"
if [ "$SECONDS" -lt 250 ]; then
    ICQ_REQUIRE_CUDA=1 ICQ_REQUIRE_NVRTC=1 timeout 90 $K/unrolled/gpu_parity --include-ignored on_cuda:: \
        --test-threads 8 >"$O/parity-unrolled.txt" 2>&1
    echo "unrolled parity exit $? at ${SECONDS}s" | tee -a "$O/parity.txt"
fi
for v in scratch base; do
    [ "$SECONDS" -gt 320 ] && break
    timeout 45 ncu --clock-control none --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
        $K/$v/icq bench examples/bench.toml --backend cuda --instances $((1 << 20)) --epochs 256 >"$O/ncu-$v.txt" 2>&1
    echo "ncu $v exit $? at ${SECONDS}s" | tee -a "$O/parity.txt"
done
tail -n 3 "$O/parity.txt"; grep first-process "$O/parity.txt"
python3 - "$O/ab.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l); x = r["result"] or {}
    print(r["variant"], r["rep"], r["config"].split("/")[-1], x.get("instances"), "%.3g" % x.get("handoff_updates_per_s", 0))
PY
cat "$O/peers.jsonl" 2>/dev/null
