//! The `u32` draw tables of a model (DESIGN §5) and the reference option rollout that every
//! backend mirrors draw for draw.
//!
//! Draw order of one option run from (x, p_e): for a Poisson duration one draw for τ first;
//! then per primitive step t the artifact draw, the private draw, and (geometric durations
//! only) the stop draw. Fixed durations consume no duration draw.

use super::{Duration, Model};
use crate::lanes::Lanes;
use crate::rng::{clamp_u32, geometric_stop_threshold, CdfTable, Stream};

/// Tail mass below which a Poisson duration table is truncated (the remainder goes to its
/// last entry).
const POISSON_TAIL: f64 = 1e-12;

/// How one option's duration is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationTable {
    /// Stop after a step when the clamped draw is below this threshold.
    Geometric(u32),
    /// Exactly this many steps.
    Fixed(u32),
    /// τ = 1 + k with k drawn from this table.
    Poisson(CdfTable),
}

impl DurationTable {
    /// The table of a duration law.
    pub fn new(d: &Duration) -> Self {
        match *d {
            Duration::Geometric { mean } => Self::Geometric(geometric_stop_threshold(mean)),
            Duration::Fixed { steps } => Self::Fixed(steps),
            Duration::Poisson { mean } => Self::Poisson(CdfTable::new(&poisson_pmf_with_tail(
                mean - 1.0,
                POISSON_TAIL,
            ))),
        }
    }
}

/// P(k) for k = 0, 1, … of a Poisson law with mean `lambda`, truncated once the remaining
/// tail is below `tail` (the truncated mass is added to the last entry).
pub fn poisson_pmf_with_tail(lambda: f64, tail: f64) -> Vec<f64> {
    let mut p = vec![(-lambda).exp()];
    if lambda == 0.0 {
        return p;
    }
    let mut cdf = p[0];
    let mut k = 0.0;
    // Past the mode, stop once the remaining tail is negligible (the cap guards rounding).
    let cap = lambda + 40.0 * lambda.sqrt() + 100.0;
    while (1.0 - cdf > tail || k < lambda) && k < cap {
        k += 1.0;
        let next = p[p.len() - 1] * lambda / k;
        p.push(next);
        cdf += next;
    }
    let last = p.len() - 1;
    p[last] += (1.0 - cdf).max(0.0);
    p
}

/// The outcome of one option run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionRun {
    /// R = Σ_{t<τ} γ^t r(x_t, p_e,t).
    pub ret: f64,
    /// τ.
    pub steps: u32,
    /// γ^τ.
    pub discount: f64,
    /// x_τ.
    pub artifact: usize,
    /// p_e,τ.
    pub private: usize,
}

/// One option's laws as `u32` cumulative rows, with what its run needs beside them.
#[derive(Clone, Debug)]
pub struct OptionTables {
    /// The executing agent.
    pub executor: usize,
    /// Whether the episode ends with the option.
    pub terminal: bool,
    /// S×S artifact rows, row-major.
    pub artifact: Vec<u32>,
    /// M_e×M_e private rows, row-major.
    pub private: Vec<u32>,
    /// M_e.
    pub private_states: usize,
    /// The step reward r(x, p) at `x·M_e + p`.
    pub reward: Vec<f64>,
    /// Its duration table.
    pub duration: DurationTable,
}

/// Every categorical law of a model as `u32` cumulative rows.
#[derive(Clone, Debug)]
pub struct DrawTables {
    /// S, the row length of artifact tables.
    pub artifact_states: usize,
    /// A, the actions of every agent.
    pub actions: usize,
    /// Per option, its tables.
    pub options: Vec<OptionTables>,
    /// N×A, flat: action a of agent i launches option `option_of[i·A + a]`.
    pub option_of: Vec<usize>,
    /// The initial artifact law.
    pub initial_artifact: CdfTable,
    /// The initial private laws, one per agent.
    pub initial_private: Vec<CdfTable>,
}

impl DrawTables {
    /// The tables of a validated model.
    pub fn new(model: &Model) -> Self {
        let rows = |m: &[Vec<f64>]| -> Vec<u32> {
            m.iter().flat_map(|r| CdfTable::new(r).thresholds).collect()
        };
        Self {
            artifact_states: model.artifact_states,
            actions: model.actions,
            options: model
                .options
                .iter()
                .map(|o| OptionTables {
                    executor: o.executor,
                    terminal: o.terminal,
                    artifact: rows(&o.artifact_transition),
                    private: rows(&o.private_transition),
                    private_states: model.agents[o.executor].private_states,
                    reward: o.reward.iter().flatten().copied().collect(),
                    duration: DurationTable::new(&o.duration),
                })
                .collect(),
            option_of: model.action_options.iter().flatten().copied().collect(),
            initial_artifact: CdfTable::new(&model.initial.artifact),
            initial_private: model
                .initial
                .private
                .iter()
                .map(|p| CdfTable::new(p))
                .collect(),
        }
    }

    /// Runs option `w` from artifact `x` and executor private state `pe`, drawing from
    /// `stream` in the pinned order; `gamma` is the discount.
    #[inline(always)]
    pub fn rollout<L: Lanes>(
        &self,
        w: usize,
        x: usize,
        pe: usize,
        gamma: f64,
        stream: &mut Stream<L>,
    ) -> OptionRun {
        let s = self.artifact_states;
        let opt = &self.options[w];
        let art = &opt.artifact[..];
        // Rows of 16, 32 or 64 artifacts are counted in unrolled whole chunks, with a loop of
        // their own for a one-state private space; other widths take the general loop.
        macro_rules! rows_of {
            ($ch:literal) => {{
                let rows = art.as_chunks::<8>().0.as_chunks::<$ch>().0;
                let next = |l: L, u: u32, x: usize| l.count_chunks(&rows[x], clamp_u32(u));
                if opt.private_states == 1 {
                    run::<L, true>(opt, x, pe, gamma, stream, next)
                } else {
                    run::<L, false>(opt, x, pe, gamma, stream, next)
                }
            }};
        }
        match s {
            16 => rows_of!(2),
            32 => rows_of!(4),
            64 => rows_of!(8),
            _ => run::<L, false>(opt, x, pe, gamma, stream, |l: L, u: u32, x: usize| {
                l.count_at_most(&art[x * s..(x + 1) * s], clamp_u32(u))
            }),
        }
    }
}

/// [`DrawTables::rollout`] of option `opt` with `next_artifact(lanes, word, x)` drawing each
/// step's artifact from its word; `ONE_PRIVATE` says the executor has one private state.
#[inline(always)]
fn run<L: Lanes, const ONE_PRIVATE: bool>(
    opt: &OptionTables,
    x: usize,
    pe: usize,
    gamma: f64,
    stream: &mut Stream<L>,
    mut next_artifact: impl FnMut(L, u32, usize) -> usize,
) -> OptionRun {
    let m = if ONE_PRIVATE { 1 } else { opt.private_states };
    let (prv, reward) = (&opt.private[..], &opt.reward[..]);
    let (mut x, mut p) = (x, pe);
    let (mut ret, mut disc, mut steps) = (0.0, 1.0, 0u32);
    // A fixed or Poisson length is known before the first step; a geometric one ends after
    // the step whose stop word falls below the threshold.
    let (length, stop_below) = match &opt.duration {
        DurationTable::Fixed(n) => (*n, None),
        DurationTable::Poisson(t) => (1 + t.sample(stream.next_raw()) as u32, None),
        DurationTable::Geometric(thr) => (u32::MAX, Some(*thr)),
    };
    if let (true, Some(thr)) = (ONE_PRIVATE, stop_below) {
        // Three words a step (artifact, the one-state private row, stop), taken together.
        debug_assert_eq!(pe, 0, "a one-state private space");
        loop {
            ret += disc * reward[x];
            disc *= gamma;
            steps += 1;
            let [artifact, _, stop] = stream.next3();
            x = next_artifact(stream.lanes(), artifact, x);
            if clamp_u32(stop) < thr {
                return OptionRun {
                    ret,
                    steps,
                    discount: disc,
                    artifact: x,
                    private: 0,
                };
            }
        }
    }
    loop {
        ret += disc * reward[x * m + p];
        disc *= gamma;
        steps += 1;
        x = next_artifact(stream.lanes(), stream.next_raw(), x);
        p = if m == 1 {
            // A one-state row's only threshold is u32::MAX: the word is drawn, the state
            // stays 0.
            stream.next_raw();
            0
        } else {
            stream.pick(&prv[p * m..(p + 1) * m])
        };
        let stop = match stop_below {
            Some(thr) => clamp_u32(stream.next_raw()) < thr,
            None => steps >= length,
        };
        if stop {
            return OptionRun {
                ret,
                steps,
                discount: disc,
                artifact: x,
                private: p,
            };
        }
    }
}
