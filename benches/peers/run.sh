#!/usr/bin/env bash
# Benchmarks icq's CPU backend against the NumPy and JAX peers on the configuration of
# examples/bench.toml (B = 4096, E = 200 unless INSTANCES / EPOCHS say otherwise).
#
#   ICQ=target/release/icq benches/peers/run.sh
#
# Builds nothing: $ICQ must exist. PYTHON picks the interpreter (default python3) that has the
# packages of benches/peers/requirements.txt.
set -euo pipefail

cd "$(dirname "$0")/../.."
ICQ=${ICQ:-target/release/icq}
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-examples/bench.toml}
PEERS=benches/peers

if [[ ! -x "$ICQ" ]]; then
    echo "run.sh: no icq binary at $ICQ (set ICQ=...)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The model of the config, as an icq-model/1 file.
"$ICQ" model export "$CONFIG" -o "$tmp/bench.json" >&2

# Learner and run settings of the config (defaults: the benchmark's values).
read -r INSTANCES_CFG EPOCHS_CFG WIDTH ALPHA SEED < <("$PY" - "$CONFIG" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    c = tomllib.load(f)
learner, run = c.get("learner", {}), c.get("run", {})
width = learner.get("network", {}).get("mlp", {}).get("width", 32)
alpha = learner.get("step_size", {}).get("constant", {}).get("alpha", 0.05)
print(run.get("instances", 4096), run.get("epochs", 200), width, alpha, run.get("seed", 0))
EOF
)
INSTANCES=${INSTANCES:-$INSTANCES_CFG}
EPOCHS=${EPOCHS:-$EPOCHS_CFG}
WARMUP=${WARMUP:-5}
args=(--model "$tmp/bench.json" --instances "$INSTANCES" --epochs "$EPOCHS"
      --width "$WIDTH" --alpha "$ALPHA" --seed "$SEED")

echo "config $CONFIG: B = $INSTANCES, E = $EPOCHS, width $WIDTH, alpha $ALPHA, seed $SEED;" \
     "$(nproc) CPU cores" >&2
echo "running the NumPy peer ..." >&2
"$PY" "$PEERS/icq_numpy.py" "${args[@]}" > "$tmp/numpy.json"
echo "running the JAX peer ($WARMUP warm-up epochs, compile excluded) ..." >&2
JAX_PLATFORMS=cpu "$PY" "$PEERS/icq_jax.py" "${args[@]}" --warmup-epochs "$WARMUP" > "$tmp/jax.json"
# icq on rayon's default pool (icq), then the same code on one thread (icq1, as the NumPy peer
# runs); the device field of each says how many threads it had.
for name in icq icq1; do
    echo "running icq bench ($name) ..." >&2
    one=()
    if [ "$name" = icq1 ]; then one=(env RAYON_NUM_THREADS=1); fi
    if ${one[@]+"${one[@]}"} "$ICQ" bench "$CONFIG" --instances "$INSTANCES" \
            --epochs "$EPOCHS" --json > "$tmp/$name.out" 2> "$tmp/$name.err"; then
        :
    else
        echo "run.sh: icq bench failed: $(head -c 300 "$tmp/$name.err" | tr '\n' ' ')" >&2
        : > "$tmp/$name.out"
    fi
done

"$PY" - "$tmp" <<'EOF'
import json, os, sys

tmp = sys.argv[1]

def last_json(path):
    """The last line of a file that parses as a JSON object (or the whole file), or None."""
    try:
        text = open(path).read()
    except OSError:
        return None
    for chunk in [text] + text.splitlines()[::-1]:
        try:
            v = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(v, dict):
            return v
    return None

def find(v, key):
    """The first value of `key` anywhere in a JSON document."""
    if isinstance(v, dict):
        if key in v:
            return v[key]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            r = find(x, key)
            if r is not None:
                return r
    return None

rows = []
rates = {}
for name, label in (("icq", "icq (cpu)"), ("icq1", "icq 1 thread")):
    r = last_json(os.path.join(tmp, f"{name}.out"))
    rate = find(r, "handoff_updates_per_s") if r else None
    if rate is None:
        print(f"{label}: icq bench unavailable")
        continue
    rates[name] = float(rate)
    rows.append((label, float(rate), find(r, "primitive_steps_per_s"), find(r, "device") or ""))
peers = {}
for peer in ("numpy", "jax"):
    r = last_json(os.path.join(tmp, f"{peer}.json"))
    peers[peer] = r
    note = f"compile {r['compile_seconds']:.1f} s excluded" if "compile_seconds" in r else ""
    rows.append((peer, r["handoff_updates_per_s"], r["primitive_steps_per_s"], note))

print(f"{'':12} {'handoff updates/s':>18} {'primitive steps/s':>18}")
for name, rate, steps, note in rows:
    steps = f"{float(steps):18.4g}" if steps is not None else f"{'-':>18}"
    print(f"{name:12} {rate:18.4g} {steps}  {note}")
for name, rate in rates.items():
    for peer in ("numpy", "jax"):
        print(f"{name}/{peer:6} {rate / peers[peer]['handoff_updates_per_s']:8.2f}x")
EOF
