#!/usr/bin/env bash
# Builds, on a machine with a Rust toolchain, what benches/gpu/check.sh runs on a GPU machine
# that has none: the release `icq` with the CUDA backend and the two GPU test binaries, copied
# to target/gpu/ (carry that folder to the GPU machine with the repository).
#
#   bash benches/gpu/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/gpu
mkdir -p "$out"
cargo build --release --features cuda
cp target/release/icq "$out/icq"
for t in gpu_parity cuda_kernels; do
    exe=$(cargo test --release --features cuda --no-run --test "$t" --message-format=json |
        python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    t = m.get("target", {})
    if m.get("executable") and "test" in t.get("kind", []) and t.get("name") == sys.argv[1]:
        print(m["executable"])' "$t")
    cp "$exe" "$out/$t"
done
# The tests find examples/ through the path they were built in.
echo "$PWD" >"$out/built-in"
ls -la "$out"
