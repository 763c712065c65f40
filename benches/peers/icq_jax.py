#!/usr/bin/env python3
"""IC-Q on B independent IC-SMDP instances at once, in JAX (peer of icq's CPU backend).

PureJaxRL style: one instance's epoch is a pure function of (parameters, joint state, key);
`jax.vmap` maps it over instances, `jax.lax.scan` runs the epochs, the option rollout is a
`jax.lax.while_loop` (under vmap: until every instance's option has stopped, finished
instances masked), and the whole training run is one `jax.jit`-compiled program.

One epoch per instance (decider h, artifact x, private states p):
  a ~ Uniform{0..A-1};  w = action_options[h][a];  e = executor(w)
  run w from (x, p_e): R = sum_t gamma^t r(x_t, p_e,t), tau, gamma^tau, x_tau, p_e,tau
  next state (e, x_tau, p with p_e replaced), or a fresh initial draw if w is terminal
  y = R + gamma^tau max_a' Q_e(o', a')  (agent e's parameters before any update; y = R if terminal)
  one SGD step of agent h on 1/2 (Q_h(o, a) - y)^2, o = (phi_h(x), p_h).

Q_i is a one-hidden-layer ReLU MLP on onehot(z, K_i) ++ onehot(p, M_i), or with --tabular a
table Q_i[z, p, a] updated by Q <- Q - alpha (Q - y).

Run with JAX_PLATFORMS=cpu (set by default below if unset).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from icq_model import FIXED, POISSON, Model  # noqa: E402


def make_fns(model, width, alpha, tabular):
    """The pure per-instance functions of one model: init, epoch, Q read-out, SGD update."""
    m = model
    N, A, Mmax, D = m.N, m.A, m.Mmax, m.D
    f32, i32 = jnp.float32, jnp.int32
    gamma = f32(m.gamma)
    alpha = f32(alpha)

    phi = jnp.asarray(m.phi, i32)  # N x S
    K = jnp.asarray(m.K, i32)  # N
    AO = jnp.asarray(m.action_options, i32)  # N x A
    exe = jnp.asarray(m.executor, i32)  # W
    term = jnp.asarray(m.terminal)  # W
    # Truncated inverse-CDF rows: a draw is the number of entries <= u.
    art_rows = jnp.asarray(m.art_cdf[..., :-1], f32)  # W x S x (S-1)
    priv_rows = jnp.asarray(m.priv_cdf[..., :-1], f32)  # W x Mmax x (Mmax-1)
    reward = jnp.asarray(m.reward, f32)  # W x S x Mmax
    stop_prob = jnp.asarray(m.stop_prob, f32)
    fixed_steps = jnp.asarray(m.fixed_steps, i32)
    poisson_lam = jnp.asarray(m.poisson_lam, f32)
    dur_kind = jnp.asarray(m.dur_kind, i32)
    init_art = jnp.asarray(m.init_art_cdf[:-1], f32)
    init_priv = jnp.asarray(m.init_priv_cdf[:, :-1], f32)  # N x (Mmax-1)
    has_geo, nongeo = m.has_geometric, (m.has_fixed or m.has_poisson)
    n_u = 1 + (Mmax > 1) + has_geo  # uniforms per primitive step
    k_priv = 1 if Mmax > 1 else 0
    k_stop = k_priv + 1
    fan_in = np.asarray(m.K + m.M)  # per agent, K_i + M_i

    def draw(row, u):
        return jnp.sum(row <= u).astype(i32)

    # -- environment -----------------------------------------------------------------------

    def reset(key):
        """A fresh draw (h0, x, p) from the initial law."""
        u = jax.random.uniform(key, (1 + N,))
        x = draw(init_art, u[0])
        if Mmax > 1:
            p = jax.vmap(draw)(init_priv, u[1:])
        else:
            p = jnp.zeros((N,), i32)
        return (i32(m.h0), x, p)

    def rollout(key, w, x, pe):
        """Runs option w from (x, pe): (R, gamma^tau, x_tau, pe_tau, tau)."""
        if nongeo:
            key, kt = jax.random.split(key)
            tau = jnp.where(dur_kind[w] == FIXED, fixed_steps[w], jnp.iinfo(jnp.int32).max)
            if m.has_poisson:
                k = jax.random.poisson(kt, poisson_lam[w]).astype(i32)
                tau = jnp.where(dur_kind[w] == POISSON, 1 + k, tau)
        q = stop_prob[w]

        def body(c):
            x, pe, R, disc, t, _ = c
            # The uniforms of step t come from the rollout key folded with t.
            u = jax.random.uniform(jax.random.fold_in(key, t), (n_u,))
            R = R + disc * reward[w, x, pe]
            disc = disc * gamma
            t = t + 1
            x = draw(art_rows[w, x], u[0])
            if Mmax > 1:
                pe = draw(priv_rows[w, pe], u[k_priv])
            if has_geo:
                stop = u[k_stop] < q
                if nongeo:
                    stop = stop | (t >= tau)
            else:
                stop = t >= tau
            return x, pe, R, disc, t, stop

        c0 = (x, pe, f32(0), f32(1), i32(0), jnp.bool_(False))
        x, pe, R, disc, t, _ = jax.lax.while_loop(lambda c: ~c[-1], body, c0)
        return R, disc, x, pe, t

    # -- Q-functions -----------------------------------------------------------------------

    if tabular:

        def init_params(key):
            return jnp.zeros((N, m.Kmax, Mmax, A), f32)

        def q_values(params, i, z, p):
            return params[i, z, p]

        def update(params, h, z, p, a, y):
            qa = params[h, z, p, a]
            return params.at[h, z, p, a].add(-alpha * (qa - y))

    else:

        def init_params(key):
            k1, k2 = jax.random.split(key)
            # W1 stored transposed (N, D, width): input unit j of agent i is row W1[i, j].
            # Agent i's rows K_i + M_i .. D are padding, zero and never touched.
            b1 = (1.0 / np.sqrt(fan_in)).astype(np.float32)[:, None, None]
            u1 = jax.random.uniform(k1, (N, D, width), f32, -1.0, 1.0) * b1
            u1 = jnp.where(jnp.arange(D)[None, :, None] < fan_in[:, None, None], u1, 0.0)
            b2 = f32(1.0 / np.sqrt(width))
            return {
                "W1": u1,
                "b1": jnp.zeros((N, width), f32),
                "W2": jax.random.uniform(k2, (N, A, width), f32, -b2, b2),
                "b2": jnp.zeros((N, A), f32),
            }

        def forward(params, i, z, p):
            """Agent i at observation (z, p): pre-activation, hidden, Q (one-hot input as two
            row gathers of W1)."""
            pre = params["W1"][i, z] + params["W1"][i, K[i] + p] + params["b1"][i]
            hid = jnp.maximum(pre, 0.0)
            q = params["W2"][i] @ hid + params["b2"][i]
            return pre, hid, q

        def q_values(params, i, z, p):
            return forward(params, i, z, p)[2]

        def update(params, h, z, p, a, y):
            """One SGD step of agent h on 1/2 (Q_h(o, a) - y)^2; touches only W1's two hot
            rows, b1, and row a of W2 / entry a of b2."""
            pre, hid, q = forward(params, h, z, p)
            ad = alpha * (q[a] - y)  # alpha * delta
            w2a = params["W2"][h, a]  # before the update
            step = ad * w2a * (pre > 0)  # alpha * dhidden
            W1 = params["W1"].at[h, z].add(-step).at[h, K[h] + p].add(-step)
            return {
                "W1": W1,
                "b1": params["b1"].at[h].add(-step),
                "W2": params["W2"].at[h, a].add(-ad * hid),
                "b2": params["b2"].at[h, a].add(-ad),
            }

    # -- one instance --------------------------------------------------------------------

    def init(key):
        k_state, k_params, key = jax.random.split(key, 3)
        return {
            "params": init_params(k_params),
            "state": reset(k_state),
            "key": key,
            "last_y": f32(0),
            "steps": i32(0),
        }

    def epoch(c):
        """One epoch of one instance: a pure function of its carry."""
        params, (h, x, p) = c["params"], c["state"]
        key, ka, kr, ki = jax.random.split(c["key"], 4)
        a = jax.random.randint(ka, (), 0, A)
        w = AO[h, a]
        e = exe[w]
        z = phi[h, x]
        ph = p[h]

        R, disc, xT, peT, tau = rollout(kr, w, x, p[e])
        nxt = (e, xT, p.at[e].set(peT))

        # Target with agent e's current parameters at o' = (phi_e(x_tau), p_e,tau).
        q2 = q_values(params, e, phi[e, xT], peT)
        y = R + jnp.where(term[w], f32(0), disc * jnp.max(q2))
        params = update(params, h, z, ph, a, y)
        if bool(m.terminal.any()):
            fresh = reset(ki)
            nxt = jax.tree.map(lambda f, n: jnp.where(term[w], f, n), fresh, nxt)
        return {"params": params, "state": nxt, "key": key, "last_y": y,
                "steps": c["steps"] + tau}

    def all_q(params):
        """Q_i(z, p, .) for every (i, z, p) of one instance, shape (N, Kmax, Mmax, A)."""
        ii, zz, pp = jnp.meshgrid(jnp.arange(N), jnp.arange(m.Kmax), jnp.arange(Mmax),
                                  indexing="ij")
        q = jax.vmap(lambda i, z, p: q_values(params, i, z, p))(
            ii.ravel(), zz.ravel(), pp.ravel())
        return q.reshape(N, m.Kmax, Mmax, A)

    return init, epoch, all_q, update


def make_train(epoch, num_epochs):
    """vmap over instances of one epoch, scanned over num_epochs epochs."""
    batched = jax.vmap(epoch)

    def train(carry):
        carry, _ = jax.lax.scan(lambda c, _: (batched(c), None), carry, None, length=num_epochs)
        return carry

    return train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="icq-model/1 JSON file")
    ap.add_argument("--instances", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-epochs", type=int, default=5,
                    help="epochs run (untimed, on a throwaway copy) before the timed run")
    ap.add_argument("--tabular", action="store_true", help="table Q_i[z, p, a] instead of the MLP")
    ap.add_argument("--dump-q", metavar="PATH",
                    help="write Q_i(z, p, a) averaged over instances to this JSON file")
    args = ap.parse_args(argv)

    model = Model(args.model)
    B, E = args.instances, args.epochs
    init, epoch, all_q, _ = make_fns(model, args.width, args.alpha, args.tabular)
    keys = jax.random.split(jax.random.key(args.seed), B)
    init_batch = jax.jit(jax.vmap(init))

    # Untimed: the warm-up run (its own small program) and the compilation of the timed one.
    if args.warmup_epochs > 0:
        warm = jax.jit(make_train(epoch, args.warmup_epochs), donate_argnums=0)
        jax.block_until_ready(warm(init_batch(keys)))
    carry = jax.block_until_ready(init_batch(keys))
    t0 = time.perf_counter()
    train = jax.jit(make_train(epoch, E), donate_argnums=0).lower(carry).compile()
    compile_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    carry = jax.block_until_ready(train(carry))
    seconds = time.perf_counter() - t0

    if args.dump_q:
        qs = np.asarray(jax.jit(jax.vmap(all_q))(carry["params"]), dtype=np.float64)
        q, sem = qs.mean(0), qs.std(0) / np.sqrt(B)
        K, M = model.K, model.M
        for i in range(model.N):  # padding observations do not exist
            q[i, K[i]:] = sem[i, K[i]:] = np.nan
            q[i, :, M[i]:] = sem[i, :, M[i]:] = np.nan
        with open(args.dump_q, "w") as f:
            json.dump({"peer": "jax", "q_mean": q.tolist(), "q_sem": sem.tolist()}, f)
    total_steps = int(np.asarray(carry["steps"], dtype=np.int64).sum())
    print(json.dumps({
        "peer": "jax",
        "instances": B,
        "epochs": E,
        "seconds": seconds,
        "handoff_updates_per_s": B * E / seconds,
        "primitive_steps_per_s": total_steps / seconds,
        "mean_abs_target": float(jnp.abs(carry["last_y"]).mean()) if E > 0 else float("nan"),
        "compile_seconds": compile_seconds,
        "warmup_epochs": args.warmup_epochs,
        "device": str(jax.devices()[0]),
    }))


if __name__ == "__main__":
    sys.exit(main())
