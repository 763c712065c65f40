#!/usr/bin/env python3
"""Checks the hand-written sparse SGD step of both peers against jax.grad of
1/2 (Q_h(o, a) - y)^2 on the dense one-hot MLP, for random parameters, observations, actions
and targets. Usage: check_update.py --model M.json"""

import argparse
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import icq_jax  # noqa: E402
from icq_model import Model  # noqa: E402
from icq_numpy import NumpyICQ  # noqa: E402


def dense_step(W1T, b1, W2, b2, K, M, z, p, a, y, alpha):
    """Reference: autodiff on the dense network of the spec (W1 of shape m x (K + M))."""
    x_in = jnp.concatenate([jax.nn.one_hot(z, K), jax.nn.one_hot(p, M)])
    theta = (W1T[: K + M].T, b1, W2, b2)

    def loss(th):
        W1, b1, W2, b2 = th
        q = W2 @ jax.nn.relu(W1 @ x_in + b1) + b2
        return 0.5 * (q[a] - y) ** 2

    g = jax.grad(loss)(theta)
    W1, b1, W2, b2 = (t - alpha * d for t, d in zip(theta, g))
    W1T = W1T.at[: K + M].set(W1.T)
    return W1T, b1, W2, b2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--instances", type=int, default=64)
    args = ap.parse_args()
    m = Model(args.model)
    B, A, width, alpha = args.instances, m.A, args.width, args.alpha
    rng = np.random.default_rng(1)

    # NumPy learner with its own random init; h, z, p, a, y drawn at random.
    L = NumpyICQ(m, B, width, alpha, 0, tabular=False)
    # Random nonzero biases so every term of the gradient is exercised.
    L.b1[:] = rng.normal(0, 0.3, L.b1.shape)
    L.b2[:] = rng.normal(0, 0.3, L.b2.shape)
    h = rng.integers(0, m.N, B)
    z = np.array([rng.integers(0, m.K[i]) for i in h])
    p = np.array([rng.integers(0, m.M[i]) for i in h])
    a = rng.integers(0, A, B)
    y = rng.normal(0, 2, B).astype(np.float32)
    D = m.D
    before = dict(
        W1=L.W1.reshape(B, m.N, D, width).copy(), b1=L.b1.reshape(B, m.N, width).copy(),
        W2=L.W2.reshape(B, m.N, A, width).copy(), b2=L.b2.reshape(B, m.N, A).copy())

    # NumPy step.
    L._update(h, z, p, a, y)
    np_after = dict(
        W1=L.W1.reshape(B, m.N, D, width), b1=L.b1.reshape(B, m.N, width),
        W2=L.W2.reshape(B, m.N, A, width), b2=L.b2.reshape(B, m.N, A))

    # The JAX peer's update (vmapped) on the same parameters.
    update = icq_jax.make_fns(m, width, alpha, False)[3]
    jx_after = jax.vmap(update)({k: jnp.asarray(v) for k, v in before.items()},
                                jnp.asarray(h), jnp.asarray(z), jnp.asarray(p), jnp.asarray(a),
                                jnp.asarray(y))

    worst_np = worst_jx = 0.0
    for b in range(B):
        i = h[b]
        ref = dense_step(jnp.asarray(before["W1"][b, i]), jnp.asarray(before["b1"][b, i]),
                         jnp.asarray(before["W2"][b, i]), jnp.asarray(before["b2"][b, i]),
                         int(m.K[i]), int(m.M[i]), z[b], p[b], a[b], y[b], alpha)
        for k, r in zip(("W1", "b1", "W2", "b2"), ref):
            r = np.asarray(r)
            worst_np = max(worst_np, float(np.abs(np_after[k][b, i] - r).max()))
            worst_jx = max(worst_jx, float(np.abs(np.asarray(jx_after[k][b, i]) - r).max()))
            # The other agents of the instance are untouched.
            for j in range(m.N):
                if j != i:
                    assert np.array_equal(np_after[k][b, j], before[k][b, j])
                    assert np.array_equal(np.asarray(jx_after[k][b, j]), before[k][b, j])
    print(f"max |numpy step - jax.grad step| = {worst_np:.2e}")
    print(f"max |jax step - jax.grad step|   = {worst_jx:.2e}")
    assert worst_np < 1e-5 and worst_jx < 1e-5


if __name__ == "__main__":
    main()
