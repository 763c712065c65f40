#!/usr/bin/env python3
"""Correctness check of the peers without the Rust learner: tabular IC-Q (--tabular) in NumPy
and in JAX, averaged over instances after many epochs with a small constant step size, against
each other and against the exact Q*_obs of `icq oracle`.

On the synthetic family with interface_noise = 0 the artifact kernel is lumpable and the reward
depends on x only through its block, so Q* is a function of the observation and tabular IC-Q
converges to Q*_obs = Q* (up to the O(alpha) bias and O(sqrt(alpha / B)) noise of a constant
step size averaged over B instances).

Usage: check_tabular.py [--icq PATH] [--instances B] [--epochs E] [--alpha A] [--keep DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Tiny synthetic models: (name, [model] table, edit of the exported model file or None).
CASES = [
    ("geometric, M=1", """
agents = 2
artifact_states = 4
interface_states = 2
private_states = 1
gamma = 0.9
duration = { geometric = { mean = 2.0 } }
model_seed = 3
""", None),
    ("fixed(3), M=2 (reward blind to p)", """
agents = 2
artifact_states = 6
interface_states = 3
private_states = 2
gamma = 0.8
duration = { fixed = { steps = 3 } }
model_seed = 5
""", None),
    ("poisson(2.5), M=1, option 1 terminal", """
agents = 3
artifact_states = 4
interface_states = 2
private_states = 1
gamma = 0.9
duration = { poisson = { mean = 2.5 } }
model_seed = 7
""", lambda m: m["options"][1].__setitem__("terminal", True)),
]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--icq", default=os.environ.get("ICQ", "target/release/icq"))
    ap.add_argument("--instances", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=20000)
    ap.add_argument("--alpha", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep the model, oracle and Q files in this folder")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="icq-check-")
    os.makedirs(work, exist_ok=True)
    worst = 0.0
    for n, (name, table, edit) in enumerate(CASES):
        toml = os.path.join(work, f"case{n}.toml")
        model = os.path.join(work, f"case{n}.json")
        oracle = os.path.join(work, f"case{n}.oracle.json")
        with open(toml, "w") as f:
            f.write("[model]\n" + table)
        run([args.icq, "model", "export", toml, "-o", model])
        if edit is not None:
            with open(model) as f:
                m = json.load(f)
            edit(m)
            with open(model, "w") as f:
                json.dump(m, f)
        run([args.icq, "oracle", model, "--json", oracle])
        with open(model) as f:
            m = json.load(f)
        with open(oracle) as f:
            o = json.load(f)

        q = {}
        for peer in ("numpy", "jax"):
            dump = os.path.join(work, f"case{n}.{peer}.json")
            run([sys.executable, os.path.join(HERE, f"icq_{peer}.py"), "--model", model,
                 "--tabular", "--instances", str(args.instances), "--epochs", str(args.epochs),
                 "--alpha", str(args.alpha), "--seed", str(args.seed), "--dump-q", dump])
            with open(dump) as f:
                d = json.load(f)
            q[peer] = (np.array(d["q_mean"], dtype=float), np.array(d["q_sem"], dtype=float))

        # Compare on every joint state in the support of mu, through its observation.
        phi = np.array([a["interface"] for a in m["agents"]])
        qstar = np.array(o["q_star_obs"])
        mu = np.array(o["mu"])
        diff = {"numpy": 0.0, "jax": 0.0}
        sem_max = 0.0
        for s, state in enumerate(o["states"]):
            if mu[s] <= 0:
                continue
            h, x, p = state[0], state[1], state[2:]
            obs = (h, phi[h][x], p[h])
            for peer in diff:
                diff[peer] = max(diff[peer], float(np.abs(q[peer][0][obs] - qstar[s]).max()))
                sem_max = max(sem_max, float(np.nanmax(q[peer][1][obs])))
        between = float(np.nanmax(np.abs(q["numpy"][0] - q["jax"][0])))
        scale = float(np.abs(qstar).max())
        print(f"{name}: max|numpy - Q*_obs| = {diff['numpy']:.4f}, "
              f"max|jax - Q*_obs| = {diff['jax']:.4f}, max|numpy - jax| = {between:.4f} "
              f"(max |Q*| = {scale:.3f}, max standard error of a mean = {sem_max:.4f})")
        worst = max(worst, diff["numpy"], diff["jax"], between)
    print(f"worst difference: {worst:.4f}  (files in {work})")


if __name__ == "__main__":
    main()
