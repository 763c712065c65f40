#!/usr/bin/env bash
# The GPU checks of a short visit to a GPU machine, in one command: the parity tests of the WGSL and CUDA
# kernels against the CPU backend on the real adapter and device, the CPU backend against the
# NumPy and JAX peers on the host's CPUs (benches/peers/run.sh), then `icq bench` for the cpu,
# wgpu and cuda backends on the same machine at B = 2^10 … 2^20 (quickstart and bench
# configurations; bench-f16 on cuda), the CUDA kernel's registers and spills (ptxas -v), one
# launch under Nsight Compute where ncu is there, and the JAX peer on the same GPU where python3
# has JAX (each output says so where its tool is missing). Results go to
# ${OUT:-out/gpu}: gpu.txt, parity.txt, bench.jsonl, bench.err, ptxas.txt, ncu.txt,
# cpu-peers.txt, peers.jsonl.
#
# Needs the binaries of benches/gpu/build.sh in target/gpu/ (the GPU machine has no Rust),
# libnvrtc (found through python3's nvidia packages) and a Vulkan loader for wgpu.
#
#   OUT=/tmp/gpu bash benches/gpu/check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out/gpu}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
EPOCHS=${EPOCHS:-200}
bin=target/gpu
mkdir -p "$OUT"
nvrtc=$(python3 scripts/nvrtc_lib_dir.py)
export LD_LIBRARY_PATH="${nvrtc}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The test binaries look for examples/ where they were built.
built=$(cat "$bin/built-in")
if [ "$built" != "$PWD" ] && [ ! -e "$built" ]; then
    mkdir -p "$(dirname "$built")" && ln -s "$PWD" "$built"
fi

{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv
  echo "nvrtc: ${nvrtc:-not found}"; date -u; } >"$OUT/gpu.txt" 2>&1

ICQ_REQUIRE_ADAPTER=1 ICQ_REQUIRE_CUDA=1 ICQ_REQUIRE_NVRTC=1 \
    timeout 180 "$bin/gpu_parity" --include-ignored --test-threads 1 >"$OUT/parity.txt" 2>&1
echo "gpu_parity exit $?" >>"$OUT/parity.txt"
ICQ_REQUIRE_NVRTC=1 timeout 120 "$bin/cuda_kernels" >>"$OUT/parity.txt" 2>&1
echo "cuda_kernels exit $?" >>"$OUT/parity.txt"

# The CPU target of the learner (README, Performance): icq's cpu backend against the NumPy and
# JAX peers on this host's CPUs, at the configuration of examples/bench.toml (B = 4096,
# E = 200), three runs, before the benches so that the budget below cannot crowd them out; none
# starts after 3.5 minutes.
if timeout 60 python3 -c 'import jax, numpy' 2>/dev/null; then
    for run in 1 2 3; do
        if [ "$SECONDS" -gt 210 ]; then echo "time budget spent: CPU peers stopped"; break; fi
        echo "== run $run (nproc $(nproc), $(date -u))"
        ICQ="$bin/icq" timeout 90 bash benches/peers/run.sh 2>&1
        echo "run.sh exit $?"
    done >"$OUT/cpu-peers.txt"
else
    echo "no NumPy or JAX in python3: the CPU peers were not run" >"$OUT/cpu-peers.txt"
fi

# A PTX cache of the benches alone, read back below for the register report.
export ICQ_CACHE_DIR
ICQ_CACHE_DIR=$(mktemp -d)

# No bench starts after 5.5 minutes, no JAX run on the GPU after 8; with each step's own limit
# the whole script takes about 7 minutes, 10 at worst.
# The wgpu rows take the memory bandwidth the CUDA device reports for their roofline
# fraction, when wgpu's adapter is that card (its name contains the CUDA device's).
peak=""
cuda_device=""
wgpu_device=$(timeout 60 "$bin/icq" bench examples/quickstart.toml --backend wgpu --instances 1 \
    --epochs 1 --json 2>/dev/null | sed -n 's/.*"device":"\([^"]*\)".*/\1/p')
for config in examples/quickstart.toml examples/bench.toml; do
    for backend in cuda wgpu cpu; do
        for log2 in 10 14 17 20; do
            if [ "$SECONDS" -gt 330 ]; then echo "time budget spent: stopped" >>"$OUT/bench.err"; break 3; fi
            # The CPU only at the smaller sizes (it is the baseline, not the subject).
            if [ "$backend" = cpu ] && [ "$log2" -gt 14 ]; then continue; fi
            extra=()
            if [ "$backend" = wgpu ] && [ -n "$peak" ] && [ -n "$cuda_device" ] &&
                [[ "$wgpu_device" == *"$cuda_device"* ]]; then
                extra=(--peak-bandwidth "$peak")
            fi
            line=$(timeout 120 "$bin/icq" bench "$config" --backend "$backend" ${extra[@]+"${extra[@]}"} \
                --instances $((1 << log2)) --epochs "$EPOCHS" --json 2>>"$OUT/bench.err")
            if [ "$backend" = cuda ] && [ -z "$peak" ]; then
                peak=$(sed -n 's/.*"peak_gb_per_s":\([0-9.eE+]*\).*/\1/p' <<<"$line")
                cuda_device=$(sed -n 's/.*"device":"\([^"]*\)".*/\1/p' <<<"$line")
            fi
            echo "{\"config\":\"$config\",\"result\":${line:-null}}" >>"$OUT/bench.jsonl"
        done
    done
done
# f16 weight storage on the CUDA backend against the f32 rows above.
for log2 in 17 20; do
    if [ "$SECONDS" -gt 330 ]; then echo "time budget spent: stopped" >>"$OUT/bench.err"; break; fi
    line=$(timeout 120 "$bin/icq" bench examples/bench-f16.toml --backend cuda \
        --instances $((1 << log2)) --epochs "$EPOCHS" --json 2>>"$OUT/bench.err")
    echo "{\"config\":\"examples/bench-f16.toml\",\"result\":${line:-null}}" >>"$OUT/bench.jsonl"
done

# Registers, stack and spills of each CUDA kernel the benches compiled, for this GPU.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d .)
if command -v ptxas >/dev/null; then
    for f in "$ICQ_CACHE_DIR"/*.ptx; do
        [ -e "$f" ] || continue
        sed -n '/icq: PTX below/,/icq: end of PTX/p' "$f" | sed '1d;$d' >"$f.plain"
        echo "== $(basename "$f"): $(head -n 4 "$f" | grep '^#define ICQ_' | tr '\n' ' ')"
        timeout 30 ptxas -arch="sm_${arch:-90}" -v "$f.plain" -o /dev/null 2>&1
    done >"$OUT/ptxas.txt"
else
    echo "ptxas not found" >"$OUT/ptxas.txt"
fi

# One CUDA launch at B = 2^20 under Nsight Compute (clocks left as they are).
if command -v ncu >/dev/null; then
    timeout -k 10 90 ncu --clock-control none --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
        --section LaunchStats --section ComputeWorkloadAnalysis \
        "$bin/icq" bench examples/bench.toml --backend cuda --instances $((1 << 20)) \
        --epochs 256 >"$OUT/ncu.txt" 2>&1
    echo "ncu exit $?" >>"$OUT/ncu.txt"
else
    echo "ncu not found" >"$OUT/ncu.txt"
fi

# The JAX peer (benches/peers/icq_jax.py) on the GPU at the bench configuration, beside the
# cuda rows of bench.jsonl at the same B and E.
if [ "$SECONDS" -gt 480 ]; then
    echo "time budget spent: the JAX peer was not run" >>"$OUT/bench.err"
elif timeout 60 python3 -c 'import jax' 2>/dev/null; then
    timeout 30 "$bin/icq" model export examples/bench.toml -o "$ICQ_CACHE_DIR/bench.json" >/dev/null
    for log2 in 14 17 20; do
        if [ "$SECONDS" -gt 480 ]; then echo "time budget spent: JAX stopped" >>"$OUT/bench.err"; break; fi
        line=$(JAX_PLATFORMS=cuda timeout 60 python3 benches/peers/icq_jax.py --model "$ICQ_CACHE_DIR/bench.json" \
            --instances $((1 << log2)) --epochs "$EPOCHS" --width 32 --alpha 0.05 --seed 0 \
            --warmup-epochs 5 2>>"$OUT/bench.err" | tail -n 1)
        echo "{\"peer\":\"jax\",\"instances\":$((1 << log2)),\"result\":${line:-null}}" >>"$OUT/peers.jsonl"
    done
else
    echo "no JAX in python3: the JAX peer was not run" >>"$OUT/bench.err"
fi
tail -n 5 "$OUT/parity.txt"
cat "$OUT/bench.jsonl" "$OUT/peers.jsonl" 2>/dev/null
grep -E '^(== run|icq|run.sh exit|no NumPy|time budget)' "$OUT/cpu-peers.txt" || true
