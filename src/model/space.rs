//! The joint-state space s = (h, x, p_0, …, p_{N−1}) in canonical order (h major, then x, then
//! p_0 … p_{N−1}, the last fastest), and the observation space o = (h, φ_h(x), p_h).

use super::Model;

/// Index arithmetic over joint states and observations of one model.
#[derive(Clone, Debug)]
pub struct StateSpace {
    /// N.
    pub agents: usize,
    /// S.
    pub artifact_states: usize,
    /// M_i per agent.
    pub private_states: Vec<usize>,
    /// K_i per agent.
    pub interface_states: Vec<usize>,
    /// Stride of p_i in a joint index.
    pub stride_p: Vec<usize>,
    /// Stride of x in a joint index (Π M_i).
    pub stride_x: usize,
    /// Stride of h in a joint index (S · Π M_i).
    pub stride_h: usize,
    /// Number of joint states.
    pub states: usize,
    /// First observation index of each agent's observations (Σ_{j<i} K_j M_j).
    pub obs_offset: Vec<usize>,
    /// Number of observations over all agents.
    pub observations: usize,
    /// φ_i(x) per agent.
    interface: Vec<Vec<usize>>,
}

impl StateSpace {
    /// The space of a validated model.
    pub fn new(model: &Model) -> Self {
        let n = model.agents.len();
        let private_states: Vec<usize> = model.agents.iter().map(|a| a.private_states).collect();
        let interface_states: Vec<usize> =
            model.agents.iter().map(|a| a.interface_states()).collect();
        let mut stride_p = vec![1; n];
        for i in (0..n.saturating_sub(1)).rev() {
            stride_p[i] = stride_p[i + 1] * private_states[i + 1];
        }
        let stride_x: usize = private_states.iter().product();
        let stride_h = model.artifact_states * stride_x;
        let mut obs_offset = Vec::with_capacity(n);
        let mut acc = 0;
        for i in 0..n {
            obs_offset.push(acc);
            acc += interface_states[i] * private_states[i];
        }
        Self {
            agents: n,
            artifact_states: model.artifact_states,
            private_states,
            interface_states,
            stride_p,
            stride_x,
            stride_h,
            states: n * stride_h,
            obs_offset,
            observations: acc,
            interface: model.agents.iter().map(|a| a.interface.clone()).collect(),
        }
    }

    /// The joint index of (h, x, p).
    pub fn encode(&self, h: usize, x: usize, p: &[usize]) -> usize {
        let mut idx = h * self.stride_h + x * self.stride_x;
        for (i, &pi) in p.iter().enumerate() {
            idx += pi * self.stride_p[i];
        }
        idx
    }

    /// The decider of joint state `s`.
    #[inline]
    pub fn decider(&self, s: usize) -> usize {
        s / self.stride_h
    }

    /// The artifact state of joint state `s`.
    #[inline]
    pub fn artifact(&self, s: usize) -> usize {
        (s % self.stride_h) / self.stride_x
    }

    /// Agent i's private state in joint state `s`.
    #[inline]
    pub fn private(&self, s: usize, i: usize) -> usize {
        (s / self.stride_p[i]) % self.private_states[i]
    }

    /// (h, x, p_0, …, p_{N−1}) of joint state `s`.
    pub fn decode(&self, s: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(2 + self.agents);
        out.push(self.decider(s));
        out.push(self.artifact(s));
        out.extend((0..self.agents).map(|i| self.private(s, i)));
        out
    }

    /// The observation index of (agent, z, p).
    #[inline]
    pub fn obs_index(&self, agent: usize, z: usize, p: usize) -> usize {
        self.obs_offset[agent] + z * self.private_states[agent] + p
    }

    /// The decider's observation of joint state `s`, as a global observation index.
    pub fn observation(&self, s: usize) -> usize {
        let h = self.decider(s);
        self.obs_index(h, self.interface[h][self.artifact(s)], self.private(s, h))
    }

    /// The observation index of every joint state.
    pub fn observations_of_states(&self) -> Vec<usize> {
        (0..self.states).map(|s| self.observation(s)).collect()
    }

    /// φ_i(x).
    #[inline]
    pub fn interface_of(&self, agent: usize, x: usize) -> usize {
        self.interface[agent][x]
    }

    /// The executor-local index c = x·M_e + p_e of joint state `s` for executor `e`.
    #[inline]
    pub fn local(&self, s: usize, e: usize) -> usize {
        self.artifact(s) * self.private_states[e] + self.private(s, e)
    }

    /// The joint index of `s` with its decider set to `e` and its artifact and p_e taken from
    /// the executor-local index `c`: the state an option of executor `e` leads to.
    #[inline]
    pub fn with_local(&self, s: usize, e: usize, c: usize) -> usize {
        let m = self.private_states[e];
        let (x, pe) = (c / m, c % m);
        let rest = s % self.stride_x - self.private(s, e) * self.stride_p[e];
        e * self.stride_h + x * self.stride_x + rest + pe * self.stride_p[e]
    }

    /// The initial law ρ₀ over joint states.
    pub fn initial_law(&self, model: &Model) -> Vec<f64> {
        let mut rho = vec![0.0; self.states];
        let h = model.initial.agent;
        for (x, &px) in model.initial.artifact.iter().enumerate() {
            if px == 0.0 {
                continue;
            }
            for r in 0..self.stride_x {
                let mut w = px;
                for i in 0..self.agents {
                    w *= model.initial.private[i][(r / self.stride_p[i]) % self.private_states[i]];
                }
                rho[h * self.stride_h + x * self.stride_x + r] = w;
            }
        }
        rho
    }
}
