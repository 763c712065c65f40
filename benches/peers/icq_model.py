"""Loading an `icq-model/1` file into dense, padded NumPy tables shared by both peers.

Agents may differ in their interface size K_i and private-state count M_i; every per-agent
table is padded to K_max / M_max. Padding is never read by a correct run: an agent's
observation z < K_i and private state p < M_i always, and padded probability mass is zero.

Categorical laws are stored as inverse-CDF tables: a draw from row r with one uniform
u in [0, 1) is the number of the row's first n-1 cumulative sums that are <= u (so the result is
always in 0..n-1 and no clipping is needed).
"""

import json

import numpy as np

FORMAT = "icq-model/1"

GEOMETRIC, FIXED, POISSON = 0, 1, 2


def _cdf_rows(p, width):
    """Cumulative sums of each row of p (rows may be shorter than width), padded with 1.0.

    Each row is renormalised and every entry from the last positive-probability state on is
    set to exactly 1.0, so rounding can neither give mass to a zero-probability tail nor run
    past the row.
    """
    p = np.asarray(p, dtype=np.float64)
    rows = p.reshape(-1, p.shape[-1])
    out = np.ones((rows.shape[0], width), dtype=np.float64)
    for r, row in enumerate(rows):
        c = np.cumsum(row) / row.sum()
        last = int(np.flatnonzero(row > 0)[-1])
        c[last:] = 1.0
        out[r, : len(c)] = c
    return out.reshape(p.shape[:-1] + (width,))


class Model:
    """The tables of one model, as plain NumPy arrays."""

    def __init__(self, path):
        with open(path) as f:
            m = json.load(f)
        if m.get("format") != FORMAT:
            raise ValueError(f"{path}: expected format {FORMAT!r}, found {m.get('format')!r}")
        self.gamma = float(m["gamma"])
        agents = m["agents"]
        self.N = N = len(agents)
        self.S = S = int(m["artifact_states"])
        self.A = A = int(m["actions"])
        opts = m["options"]
        self.W = W = len(opts)

        self.M = np.array([a["private_states"] for a in agents], dtype=np.int32)
        self.phi = np.array([a["interface"] for a in agents], dtype=np.int32)  # N x S
        self.K = self.phi.max(axis=1).astype(np.int32) + 1
        self.Kmax = int(self.K.max())
        self.Mmax = Mmax = int(self.M.max())
        # MLP input width of agent i is K_i + M_i; the padded input width is the largest.
        self.D = int((self.K + self.M).max())

        self.action_options = np.array(m["action_options"], dtype=np.int32)  # N x A
        assert self.action_options.shape == (N, A)
        self.executor = np.array([o["executor"] for o in opts], dtype=np.int32)
        self.terminal = np.array([bool(o["terminal"]) for o in opts])

        self.art_cdf = np.stack([_cdf_rows(o["artifact_transition"], S) for o in opts])  # W,S,S
        self.priv_cdf = np.ones((W, Mmax, Mmax))  # W, Mmax, Mmax (rows p >= M_e unused)
        self.reward = np.zeros((W, S, Mmax))  # W, S, Mmax
        for w, o in enumerate(opts):
            me = int(self.M[o["executor"]])
            self.priv_cdf[w, :me] = _cdf_rows(o["private_transition"], Mmax)
            self.reward[w, :, :me] = np.asarray(o["reward"], dtype=np.float64)

        # Durations: kind, geometric stop probability 1/mean, fixed steps, Poisson mean - 1.
        self.dur_kind = np.zeros(W, dtype=np.int32)
        self.stop_prob = np.zeros(W)
        self.fixed_steps = np.zeros(W, dtype=np.int32)
        self.poisson_lam = np.zeros(W)
        for w, o in enumerate(opts):
            (kind, v), = o["duration"].items()
            if kind == "geometric":
                self.dur_kind[w] = GEOMETRIC
                self.stop_prob[w] = 1.0 / float(v["mean"])
            elif kind == "fixed":
                self.dur_kind[w] = FIXED
                self.fixed_steps[w] = int(v["steps"])
            elif kind == "poisson":
                self.dur_kind[w] = POISSON
                self.poisson_lam[w] = float(v["mean"]) - 1.0
            else:
                raise ValueError(f"unknown duration kind {kind!r}")
        self.has_geometric = bool((self.dur_kind == GEOMETRIC).any())
        self.has_fixed = bool((self.dur_kind == FIXED).any())
        self.has_poisson = bool((self.dur_kind == POISSON).any())

        init = m["initial"]
        self.h0 = int(init["agent"])
        self.init_art_cdf = _cdf_rows(init["artifact"], S)  # S
        self.init_priv_cdf = np.stack(
            [_cdf_rows(p, Mmax) for p in init["private"]]
        )  # N x Mmax
