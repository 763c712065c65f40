#!/usr/bin/env python3
"""Independent cross-check of `icq oracle` against DESIGN.md §1-§3, in NumPy.

Every exact figure that `icq oracle MODEL --json FILE` writes is recomputed here from the
model file alone (dense matrices over the joint states, policy iteration for the optimal
values, mu as rho0 times the limit of the lazy chain (I+K_b)/2 by repeated squaring), and the
two are compared:

  states, option_mean_steps (E[tau]), option_discount (E[gamma^tau]), beta, q_star,
  q_star_norm, v_star_initial, mu, t_mix, spectral_gap, sampler_mixing (lazy/reset),
  eps_phi, delta_phi, q_star_obs (on the support of mu), interface_term,
  interface_error_sup, ais_bound, uniform_policy_gap, pipeline_policy_gap.

Conventions, as icq reads DESIGN: the spectral gap is 1 - |lambda_2| of the chain restricted
to the support of mu; t_mix(1/4) is the first t with max over the support of TV <= 1/4 (a tie
at 1/4 counts as mixed; `None` when the gap is 0); delta_phi is half the L1 distance between
the discounted next-observation laws, over continuing options only; observations that mu
never visits take the plain average of their states, and span V-hat in the AIS bound runs
over the observations mu visits.

Usage:
  python3 scripts/check_oracle.py [--icq target/release/icq] [--rtol 1e-8] INPUT...

Each INPUT is a config (TOML) or a model file (JSON); for a config, `icq model export`
writes its model, and the `[learner] sampler` and `[run] pipeline` keys are read from it.
Prints one line per figure with the relative difference |a-b| / max(|b|, 1e-4) (max over entries for
arrays; below 1e-4 the difference is absolute, since figures that are exactly 0 come out of
value iteration at rounding level) and exits 1 if any exceeds --rtol. Keep models small: the
check is O(n^3) in the number n of joint states (a few hundred take seconds).
"""

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import tomllib

import numpy as np


# ---------------------------------------------------------------- option-level quantities
def duration_pmf(d, tol=1e-18):
    """P(tau = k) for k = 1..K, with the tail beyond K below tol (not for geometric)."""
    if "fixed" in d:
        n = int(d["fixed"]["steps"])
        p = np.zeros(n)
        p[n - 1] = 1.0
        return p
    if "poisson" in d:
        lam = float(d["poisson"]["mean"]) - 1.0
        ps = []
        k = 0
        while True:
            pk = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) if lam > 0 else (1.0 if k == 0 else 0.0)
            ps.append(pk)
            k += 1
            if k > lam + 1 and pk < tol * 1e-3:
                break
        return np.array(ps)
    raise ValueError(d)


def option_local(opt, gamma, S, M):
    """Step matrix T over (x, p_e) (x major), and R̄, G (discounted), K (undiscounted)."""
    P = np.array(opt["artifact_transition"], dtype=float)
    Pi = np.array(opt["private_transition"], dtype=float)
    T = np.kron(P, Pi)
    r = np.array(opt["reward"], dtype=float).reshape(-1)
    n = T.shape[0]
    I = np.eye(n)
    d = opt["duration"]
    if "geometric" in d:
        q = 1.0 / float(d["geometric"]["mean"])
        Rbar = np.linalg.solve(I - gamma * (1 - q) * T, r)
        G = q * gamma * T @ np.linalg.inv(I - gamma * (1 - q) * T)
        K = q * T @ np.linalg.inv(I - (1 - q) * T)
        etau = 1.0 / q
        egam = q * gamma / (1 - gamma * (1 - q))
    else:
        pmf = duration_pmf(d)
        Rbar = np.zeros(n)
        G = np.zeros((n, n))
        K = np.zeros((n, n))
        Tt = I.copy()  # T^t
        surv = 1.0  # P(tau > t)
        for t in range(len(pmf) + 1):
            # step t (0-based) is collected when tau > t
            if t >= 1:
                pk = pmf[t - 1]  # P(tau = t)
                G += pk * gamma**t * Tt
                K += pk * Tt
                surv -= pk
            if t < len(pmf):
                Rbar += gamma**t * max(surv, 0.0) * (Tt @ r)
            Tt = Tt @ T
        etau = float(np.sum(pmf * np.arange(1, len(pmf) + 1)))
        egam = float(np.sum(pmf * gamma ** np.arange(1, len(pmf) + 1)))
    return dict(T=T, Rbar=Rbar, G=G, K=K, etau=etau, egam=egam)


# ---------------------------------------------------------------- joint-level model
class Joint:
    def __init__(self, m):
        self.m = m
        self.gamma = float(m["gamma"])
        self.N = len(m["agents"])
        self.S = int(m["artifact_states"])
        self.A = int(m["actions"])
        self.Ms = [int(a["private_states"]) for a in m["agents"]]
        self.phi = [list(a["interface"]) for a in m["agents"]]
        self.opts = m["options"]
        self.act = m["action_options"]
        self.states = [
            (h, x) + ps
            for h in range(self.N)
            for x in range(self.S)
            for ps in itertools.product(*[range(Mi) for Mi in self.Ms])
        ]
        self.index = {s: i for i, s in enumerate(self.states)}
        n = self.n = len(self.states)
        self.loc = []
        for o in self.opts:
            e = int(o["executor"])
            self.loc.append(option_local(o, self.gamma, self.S, self.Ms[e]))
        # initial joint law
        ini = m["initial"]
        rho = np.zeros(n)
        art = np.array(ini["artifact"], dtype=float)
        priv = [np.array(p, dtype=float) for p in ini["private"]]
        for i, s in enumerate(self.states):
            if s[0] != int(ini["agent"]):
                continue
            w = art[s[1]]
            for j in range(self.N):
                w *= priv[j][s[2 + j]]
            rho[i] = w
        self.rho0 = rho
        A = self.A
        self.Rbar = np.zeros((n, A))
        self.G = np.zeros((n, A, n))  # discounted kernel (terminal: 0)
        self.Kb = np.zeros((n, A, n))  # undiscounted epoch kernel (terminal: restart)
        self.term = np.zeros((n, A), dtype=bool)
        for i, s in enumerate(self.states):
            h, x, ps = s[0], s[1], s[2:]
            for a in range(A):
                w = int(self.act[h][a])
                o = self.opts[w]
                e = int(o["executor"])
                Me = self.Ms[e]
                L = self.loc[w]
                li = x * Me + ps[e]
                self.Rbar[i, a] = L["Rbar"][li]
                if o["terminal"]:
                    self.term[i, a] = True
                    self.Kb[i, a] = rho
                    continue
                for x2 in range(self.S):
                    for pe2 in range(Me):
                        ps2 = list(ps)
                        ps2[e] = pe2
                        j = self.index[(e, x2) + tuple(ps2)]
                        lj = x2 * Me + pe2
                        self.G[i, a, j] += L["G"][li, lj]
                        self.Kb[i, a, j] += L["K"][li, lj]
        # observations (h, phi_h(x), p_h)
        obs = {}
        self.obs_of = np.zeros(n, dtype=int)
        for i, s in enumerate(self.states):
            h = s[0]
            key = (h, self.phi[h][s[1]], s[2 + h])
            self.obs_of[i] = obs.setdefault(key, len(obs))
        self.nobs = len(obs)


def policy_iteration(R, G, iters=1000):
    """Optimal Q of Q = R + G max Q, R: (n, A), G: (n, A, n')."""
    n, A = R.shape
    pol = np.argmax(R, axis=1)
    for _ in range(iters):
        Pp = G[np.arange(n), pol]
        V = np.linalg.solve(np.eye(n) - Pp, R[np.arange(n), pol])
        Q = R + G @ V
        best = Q.max(axis=1)
        cur = Q[np.arange(n), pol]
        improve = best > cur + 1e-13 * (1 + np.abs(cur))
        if not improve.any():
            return Q
        pol = np.where(improve, np.argmax(Q, axis=1), pol)
    raise RuntimeError("policy iteration did not converge")


def evaluate(R, G, piw):
    """Q^pi for a stochastic policy piw (n, A)."""
    n, A = R.shape
    Pp = np.einsum("ia,iaj->ij", piw, G)
    V = np.linalg.solve(np.eye(n) - Pp, np.einsum("ia,ia->i", piw, R))
    return R + G @ V, V


def stationary_from(K, rho0):
    """mu = lim rho0 ((I+K)/2)^t, by repeated squaring of the lazy chain."""
    L = 0.5 * (np.eye(K.shape[0]) + K)
    for _ in range(64):
        L = L @ L
        L /= L.sum(axis=1, keepdims=True)
    mu = rho0 @ L
    return mu / mu.sum()


def tmix(K, mu, supp, tmax=200000):
    D = np.eye(K.shape[0])[supp]
    for t in range(tmax + 1):
        d = 0.5 * np.abs(D - mu).sum(axis=1).max()
        if d <= 0.25 + 1e-12:  # exact ties at 1/4 must not hang on rounding
            return t, d
        D = D @ K
    return None, None


def spectral_gap(K, supp):
    """1 - |lambda_2| of K restricted to the support of mu (a closed set)."""
    ev = np.linalg.eigvals(K[np.ix_(supp, supp)])
    k = np.argmin(np.abs(ev - 1.0))
    rest = np.delete(ev, k)
    return 1.0 - (np.abs(rest).max() if len(rest) else 0.0)


# ---------------------------------------------------------------- the figures
def figures(m, sampler=None, pipeline=None):
    J = Joint(m)
    n, A = J.n, J.A
    out = {}
    out["states"] = [list(s) for s in J.states]
    out["option_mean_steps"] = [L["etau"] for L in J.loc]
    out["option_discount"] = [L["egam"] for L in J.loc]
    nonterm = [L["egam"] for L, o in zip(J.loc, J.opts) if not o["terminal"]]
    beta = max(nonterm) if nonterm else 0.0
    out["beta"] = beta
    Q = policy_iteration(J.Rbar, J.G)
    out["q_star"] = Q
    V = Q.max(axis=1)
    out["v_star_initial"] = float(J.rho0 @ V)
    # behavior chain under uniform behavior
    Kb = J.Kb.mean(axis=1)
    mu = stationary_from(Kb, J.rho0)
    out["mu"] = mu
    supp = mu > 1e-13
    out["q_star_norm"] = math.sqrt(float(mu @ (Q**2).mean(axis=1)))
    out["spectral_gap"] = spectral_gap(Kb, supp)
    # a chain that is periodic or reducible on the support never mixes
    out["t_mix"] = tmix(Kb, mu, supp)[0] if out["spectral_gap"] > 1e-9 else None
    if sampler is not None:
        kind, rho = sampler
        if kind == "lazy":
            Ks = rho * np.eye(n) + (1 - rho) * Kb
        else:
            Ks = rho * Kb + (1 - rho) * np.outer(np.ones(n), mu)
        gs = spectral_gap(Ks, supp)
        ts = tmix(Ks, mu, supp)[0] if gs > 1e-9 else None
        out["sampler_mixing"] = {"t_mix": ts, "spectral_gap": gs}
    # aggregation over observations
    ob = J.obs_of
    nob = J.nobs
    Wt = np.zeros((nob, n))
    Wt[ob, np.arange(n)] = mu
    mob = Wt.sum(axis=1)
    # observations off the support: plain average (only to have a value; not compared)
    for o in range(nob):
        if mob[o] <= 0:
            Wt[o, ob == o] = 1.0
    Wt /= Wt.sum(axis=1, keepdims=True)
    Rhat = Wt @ J.Rbar  # (nob, A)
    Gobs = np.zeros((n, A, nob))  # discounted next-observation law per (s, a)
    for j in range(n):
        Gobs[:, :, ob[j]] += J.G[:, :, j]
    Ghat = np.einsum("os,sap->oap", Wt, Gobs)
    eps = np.abs(J.Rbar - Rhat[ob])[supp].max()
    tv = 0.5 * np.abs(Gobs - Ghat[ob]).sum(axis=2)  # (n, A)
    mask = supp[:, None] & ~J.term
    delta = tv[mask].max() if mask.any() else 0.0
    out["eps_phi"] = eps
    out["delta_phi"] = delta
    Qo = policy_iteration(Rhat, Ghat)
    out["q_star_obs"] = Qo[ob]
    diff = Qo[ob] - Q
    out["interface_term"] = math.sqrt(float(mu @ (diff**2).mean(axis=1)))
    out["interface_error_sup"] = np.abs(diff[supp]).max()
    # span of V-hat over the observations mu visits: both next-observation laws charge only
    # those, so an unvisited observation (the plain average of its states) has no bearing
    Vh = Qo.max(axis=1)[np.unique(ob[supp])]
    out["ais_bound"] = (eps + delta * (Vh.max() - Vh.min())) / (1 - beta)
    # fixed policies
    v0 = out["v_star_initial"]
    _, Vu = evaluate(J.Rbar, J.G, np.full((n, A), 1.0 / A))
    out["uniform_policy_gap"] = (v0 - J.rho0 @ Vu) / abs(v0)
    if pipeline is not None:
        piw = np.zeros((n, A))
        for i, s in enumerate(J.states):
            piw[i, pipeline[s[0]]] = 1.0
        _, Vp = evaluate(J.Rbar, J.G, piw)
        out["pipeline_policy_gap"] = (v0 - J.rho0 @ Vp) / abs(v0)
    out["_supp"] = supp
    return out


def rel(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    d = np.abs(a - b)
    scale = np.maximum(np.abs(b), 1e-300)
    # entries that are 0 on one side: absolute difference against the vector's scale
    # figures that are exactly 0 come out of iterations at rounding level: below 1e-4 the
    # difference is taken as absolute
    return float((d / np.maximum(scale, 1e-4)).max())


def compare(mine, icq, rtol):
    rows = []
    supp = mine.pop("_supp")
    for key, val in mine.items():
        got = icq.get(key, "MISSING")
        if isinstance(got, str):
            rows.append((key, "missing in icq output", False))
            continue
        if key == "states":
            ok = got == val
            rows.append((key, "equal" if ok else "differ", ok))
        elif key in ("t_mix",):
            ok = got == val
            rows.append((key, f"icq {got} / check {val}", ok))
        elif key == "sampler_mixing":
            ok1 = got is not None and got.get("t_mix") == val["t_mix"]
            r = rel(got["spectral_gap"], val["spectral_gap"]) if got else float("inf")
            rows.append(("sampler_mixing.t_mix", f"icq {got and got.get('t_mix')} / check {val['t_mix']}", ok1))
            rows.append(("sampler_mixing.spectral_gap", f"{r:.2e}", r <= rtol))
        elif key == "q_star_obs":
            r = rel(np.asarray(got, float)[supp], np.asarray(val)[supp])
            rows.append((key + " (on supp mu)", f"{r:.2e}", r <= rtol))
        else:
            if got is None:
                rows.append((key, "null in icq output", False))
                continue
            r = rel(got, val)
            rows.append((key, f"{r:.2e}", r <= rtol))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--icq", default="target/release/icq")
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--tolerance", default="1e-13", help="passed to icq oracle --tolerance")
    args = ap.parse_args()
    bad = 0
    for inp in args.inputs:
        with tempfile.TemporaryDirectory() as td:
            sampler = pipeline = None
            if inp.endswith(".toml"):
                with open(inp, "rb") as f:
                    cfg = tomllib.load(f)
                s = cfg.get("learner", {}).get("sampler")
                if isinstance(s, dict):
                    (kind, v), = s.items()
                    sampler = (kind, float(v["rho"]))
                pipeline = cfg.get("run", {}).get("pipeline")
                mf = os.path.join(td, "model.json")
                subprocess.run([args.icq, "model", "export", inp, "-o", mf], check=True, capture_output=True)
            else:
                mf = inp
            of = os.path.join(td, "oracle.json")
            subprocess.run([args.icq, "oracle", inp, "--json", of, "--tolerance", args.tolerance],
                           check=True, capture_output=True)
            with open(mf) as f:
                model = json.load(f)
            with open(of) as f:
                icq = json.load(f)
        mine = figures(model, sampler, pipeline)
        print(f"== {inp}: {len(mine['states'])} joint states")
        for key, msg, ok in compare(mine, icq, args.rtol):
            print(f"  {'ok ' if ok else 'BAD'} {key:32s} {msg}")
            bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
