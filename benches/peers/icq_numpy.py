#!/usr/bin/env python3
"""IC-Q on B independent IC-SMDP instances at once, in NumPy (peer of icq's CPU backend).

Every array carries the instances on its leading axis. Python loops only over epochs and,
inside an epoch, over the primitive steps of the option rollout: the set of instances whose
option is still running is kept compacted (finished instances are dropped from the working
arrays), so the rollout costs O(sum of tau) element-steps rather than O(B * max tau).

One epoch per instance (decider h, artifact x, private states p):
  a ~ Uniform{0..A-1};  w = action_options[h][a];  e = executor(w)
  run w from (x, p_e): R = sum_t gamma^t r(x_t, p_e,t), tau, gamma^tau, x_tau, p_e,tau
  next state (e, x_tau, p with p_e replaced), or a fresh initial draw if w is terminal
  y = R + gamma^tau max_a' Q_e(o', a')  (agent e's parameters before any update; y = R if terminal)
  one SGD step of agent h on 1/2 (Q_h(o, a) - y)^2, o = (phi_h(x), p_h).

Q_i is a one-hidden-layer ReLU MLP on onehot(z, K_i) ++ onehot(p, M_i), or with --tabular a
table Q_i[z, p, a] updated by Q <- Q - alpha (Q - y).
"""

import argparse
import json
import sys
import time

import numpy as np

from icq_model import FIXED, POISSON, Model


class NumpyICQ:
    def __init__(self, model, instances, width, alpha, seed, tabular):
        self.m = m = model
        self.B = B = instances
        self.width = width
        self.alpha = np.float32(alpha)
        self.tabular = tabular
        self.rng = rng = np.random.default_rng(seed)
        N, S, A, W = m.N, m.S, m.A, m.W
        self.ar = np.arange(B)
        self.arN = self.ar * N

        # Flat model tables (row indices are computed by hand: one fancy index per gather).
        self.phi_flat = m.phi.reshape(-1).astype(np.intp)  # [h*S + x]
        self.K = m.K.astype(np.intp)
        self.AO = m.action_options.astype(np.intp)
        self.exe = m.executor.astype(np.intp)
        self.term = m.terminal
        self.any_terminal = bool(m.terminal.any())
        # Draw from a row: count the row's first n-1 cumulative sums that are <= u.
        self.art_rows = np.ascontiguousarray(m.art_cdf.reshape(W * S, S)[:, :-1])  # [w*S + x]
        self.priv_rows = np.ascontiguousarray(m.priv_cdf.reshape(W * m.Mmax, m.Mmax)[:, :-1])
        self.reward_flat = m.reward.reshape(-1)  # [(w*S + x)*Mmax + p]
        self.init_art = m.init_art_cdf[:-1]
        self.init_priv = m.init_priv_cdf[:, :-1]
        self.nongeo = m.has_fixed or m.has_poisson
        self.uniforms_per_step = 1 + (m.Mmax > 1) + m.has_geometric

        # Joint state of every instance.
        self.h = np.full(B, m.h0, dtype=np.intp)
        self.x = np.empty(B, dtype=np.intp)
        self.p = np.empty((B, N), dtype=np.intp)
        self._reset(self.ar)

        # Parameters of the N agents of every instance, rows indexed by g = b*N + i.
        if tabular:
            # Q[((g*Kmax + z)*Mmax + p), a]
            self.Q = np.zeros((B * N * m.Kmax * m.Mmax, A), dtype=np.float32)
        else:
            D = m.D
            # W1 is stored transposed, one row of length `width` per input unit, so that the
            # two hot inputs of an observation are two row gathers: W1T[(g*D + j), :].
            W1T = np.zeros((B, N, D, width), dtype=np.float32)
            for i in range(N):
                fan = int(m.K[i] + m.M[i])
                bound = 1.0 / np.sqrt(fan)
                W1T[:, i, :fan, :] = rng.uniform(-bound, bound, size=(B, fan, width))
            bound2 = 1.0 / np.sqrt(width)
            W2 = rng.uniform(-bound2, bound2, size=(B, N, A, width)).astype(np.float32)
            self.W1 = W1T.reshape(B * N * D, width)
            self.b1 = np.zeros((B * N, width), dtype=np.float32)
            self.W2 = W2.reshape(B * N * A, width)  # [(g*A + a), :]
            self.b2 = np.zeros(B * N * A, dtype=np.float32)  # [g*A + a]
        self.total_steps = 0
        self.last_targets = None

    # -- environment -----------------------------------------------------------------------

    def _reset(self, idx):
        """Fresh draws from the initial law for the instances in idx."""
        m, n = self.m, len(idx)
        self.h[idx] = m.h0
        self.x[idx] = np.searchsorted(self.init_art, self.rng.random(n), side="right")
        for i in range(m.N):
            if m.M[i] > 1:
                u = self.rng.random(n)
                self.p[idx, i] = np.searchsorted(self.init_priv[i], u, side="right")
            else:
                self.p[idx, i] = 0

    def _rollout(self, w, x, pe):
        """Runs option w[b] from (x[b], pe[b]) for every b; masked/compacted step loop."""
        m, rng, B = self.m, self.rng, self.B
        S, Mmax, gamma = m.S, m.Mmax, m.gamma
        R = np.empty(B)
        disc = np.empty(B)
        xT = np.empty(B, dtype=np.intp)
        peT = np.empty(B, dtype=np.intp)
        steps = np.empty(B, dtype=np.intp)

        idx = self.ar
        wa, xa, pa = w, x.copy(), pe.copy()
        Ra = np.zeros(B)
        da = np.ones(B)
        ta = np.zeros(B, dtype=np.intp)
        qa = m.stop_prob[w] if m.has_geometric else None
        if self.nongeo:
            kind = m.dur_kind[w]
            taua = np.where(kind == FIXED, m.fixed_steps[w], np.iinfo(np.int32).max)
            if m.has_poisson:
                pois = kind == POISSON
                taua[pois] = 1 + rng.poisson(m.poisson_lam[w[pois]])
        k_priv = 1 if Mmax > 1 else 0
        k_stop = k_priv + 1
        while idx.size:
            n = idx.size
            Ra += da * self.reward_flat[(wa * S + xa) * Mmax + pa]
            da *= gamma
            ta += 1
            u = rng.random((self.uniforms_per_step, n))
            xa = (np.take(self.art_rows, wa * S + xa, axis=0) <= u[0][:, None]).sum(axis=1)
            if Mmax > 1:
                rows = np.take(self.priv_rows, wa * Mmax + pa, axis=0)
                pa = (rows <= u[k_priv][:, None]).sum(axis=1)
            if m.has_geometric:
                stop = u[k_stop] < qa
                if self.nongeo:
                    stop |= ta >= taua
            else:
                stop = ta >= taua
            if stop.any():
                done = idx[stop]
                R[done] = Ra[stop]
                disc[done] = da[stop]
                xT[done] = xa[stop]
                peT[done] = pa[stop]
                steps[done] = ta[stop]
                keep = ~stop
                idx = idx[keep]
                wa, xa, pa, Ra, da, ta = wa[keep], xa[keep], pa[keep], Ra[keep], da[keep], ta[keep]
                if m.has_geometric:
                    qa = qa[keep]
                if self.nongeo:
                    taua = taua[keep]
        return R, disc, xT, peT, steps

    # -- learner ---------------------------------------------------------------------------

    def _forward(self, g, z, pcol):
        """MLP of agent rows g at one-hot inputs (z, pcol): pre-activation, hidden, Q."""
        D, A, width = self.m.D, self.m.A, self.width
        # (np.take is the fast path for row gathers; a[idx] on 2-D arrays is much slower.)
        r1 = np.take(self.W1, g * D + z, axis=0)
        r2 = np.take(self.W1, g * D + pcol, axis=0)
        b1 = np.take(self.b1, g, axis=0)
        pre = r1 + r2 + b1
        hid = np.maximum(pre, np.float32(0))
        W2g = np.take(self.W2.reshape(-1, A * width), g, axis=0).reshape(-1, A, width)
        q = np.einsum("bam,bm->ba", W2g, hid) + np.take(self.b2.reshape(-1, A), g, axis=0)
        return r1, r2, b1, pre, hid, W2g, q

    def _qrow(self, g, z, p):
        m = self.m
        return ((g * m.Kmax + z) * m.Mmax + p)

    def _update(self, h, z, ph, a, y):
        """One SGD step of agent h[b] of every instance b on 1/2 (Q_h(o, a) - y)^2."""
        A, ar, alpha = self.m.A, self.ar, self.alpha
        g = self.arN + h
        if self.tabular:
            cell = self._qrow(g, z, ph) * A + a
            Qf = self.Q.reshape(-1)
            Qf[cell] -= alpha * (Qf[cell] - y)
            return
        D = self.m.D
        pcol = self.K[h] + ph
        r1, r2, b1, pre, hid, W2g, q = self._forward(g, z, pcol)
        ad = alpha * (q[ar, a] - y)  # alpha * delta
        w2a = W2g[ar, a]  # W2[a, :] before the update
        ga = g * A + a
        self.W2[ga] = w2a - ad[:, None] * hid
        self.b2[ga] -= ad
        step = ad[:, None] * w2a * (pre > 0)  # alpha * dhidden
        # Only the two hot input rows of W1 have a nonzero gradient.
        self.W1[g * D + z] = r1 - step
        self.W1[g * D + pcol] = r2 - step
        self.b1[g] = b1 - step

    def epoch(self):
        m, rng, ar = self.m, self.rng, self.ar
        A, S = m.A, m.S
        h, x, p = self.h, self.x, self.p

        # 1. The decider's observation and a uniform action.
        a = rng.integers(0, A, size=self.B)
        w = self.AO[h, a]
        e = self.exe[w]
        z = self.phi_flat[h * S + x]
        ph = p[ar, h]

        # 2. The option rollout.
        R, disc, xT, peT, steps = self._rollout(w, x, p[ar, e])
        self.total_steps += int(steps.sum())

        # 3. The next state (terminal ones are redrawn after the update).
        self.x = xT
        p[ar, e] = peT
        self.h = e
        ge = self.arN + e
        z2 = self.phi_flat[e * S + xT]

        # 4. The target, with agent e's parameters before any update.
        if self.tabular:
            q2 = self.Q[self._qrow(ge, z2, peT)]
        else:
            q2 = self._forward(ge, z2, self.K[e] + peT)[-1]
        boot = disc * q2.max(axis=1)
        if self.any_terminal:
            boot[self.term[w]] = 0.0
        y = (R + boot).astype(np.float32)

        # 5. One step of the decider h on 1/2 (Q_h(o, a) - y)^2.
        self._update(h, z, ph, a, y)

        if self.any_terminal:
            t = np.flatnonzero(self.term[w])
            if t.size:
                self._reset(t)
        self.last_targets = y

    def mean_q(self):
        """Q_i(z, p, .) averaged over instances and its standard error, each of shape
        (N, Kmax, Mmax, A); NaN where z >= K_i or p >= M_i."""
        m = self.m
        out = np.full((m.N, m.Kmax, m.Mmax, m.A), np.nan)
        sem = np.full((m.N, m.Kmax, m.Mmax, m.A), np.nan)
        for i in range(m.N):
            g = self.arN + i
            for z in range(m.K[i]):
                for pp in range(m.M[i]):
                    zz = np.full(self.B, z)
                    pv = np.full(self.B, pp)
                    if self.tabular:
                        q = self.Q[self._qrow(g, zz, pv)]
                    else:
                        q = self._forward(g, zz, m.K[i] + pv)[-1]
                    q = q.astype(np.float64)
                    out[i, z, pp] = q.mean(axis=0)
                    sem[i, z, pp] = q.std(axis=0) / np.sqrt(self.B)
        return out, sem


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="icq-model/1 JSON file")
    ap.add_argument("--instances", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-epochs", type=int, default=0,
                    help="untimed epochs run on a throwaway learner first (NumPy needs none)")
    ap.add_argument("--tabular", action="store_true", help="table Q_i[z, p, a] instead of the MLP")
    ap.add_argument("--dump-q", metavar="PATH",
                    help="write Q_i(z, p, a) averaged over instances to this JSON file")
    args = ap.parse_args(argv)

    model = Model(args.model)
    if args.warmup_epochs > 0:
        warm = NumpyICQ(model, args.instances, args.width, args.alpha, args.seed + 1, args.tabular)
        for _ in range(args.warmup_epochs):
            warm.epoch()
    learner = NumpyICQ(model, args.instances, args.width, args.alpha, args.seed, args.tabular)

    t0 = time.perf_counter()
    for _ in range(args.epochs):
        learner.epoch()
    seconds = time.perf_counter() - t0

    if args.dump_q:
        with open(args.dump_q, "w") as f:
            q, sem = learner.mean_q()
            json.dump({"peer": "numpy", "q_mean": q.tolist(), "q_sem": sem.tolist()}, f)
    B, E = args.instances, args.epochs
    mean_abs = float(np.abs(learner.last_targets).mean()) if E > 0 else float("nan")
    print(json.dumps({
        "peer": "numpy",
        "instances": B,
        "epochs": E,
        "seconds": seconds,
        "handoff_updates_per_s": B * E / seconds,
        "primitive_steps_per_s": learner.total_steps / seconds,
        "mean_abs_target": mean_abs,
    }))


if __name__ == "__main__":
    sys.exit(main())
