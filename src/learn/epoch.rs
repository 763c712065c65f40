//! The reference epoch: one handoff of one instance, exactly as DESIGN §2 orders it. Every
//! backend reproduces it draw for draw.
//!
//! Draw order of epoch k of instance b (stream `(seed, b, k, TAG_EPOCH)`):
//! 1. behavior — uniform: one word, a = ⌊u·A / 2³²⌋; ε-greedy: two words (explore test, then
//!    the uniform action, used only when exploring);
//! 2. the option rollout (see `model::DrawTables::rollout`);
//! 3. after a terminal option, the restart: the artifact, then each agent's private state;
//! 4. the sampler — `lazy`: one word (restart from this epoch's start when below ⌊ρ·2³²⌋);
//!    `reset`: two words (a fresh draw of μ with the second when the first is below
//!    ⌊(1−ρ)·2³²⌋).
//!
//! Then the learning step. IC-Q: the executor e computes y = R + γ^τ max_a' Q_e(o', a') with
//! its current parameters (y = R after a terminal option), before any update, and the decider
//! takes one SGD step toward it. Centralized: the same over joint states. Myopic: y = R.
//! Independent: agent i's update waits until i decides again (or a terminal option ends the
//! episode) and its target is the discounted reward earned meanwhile, by anyone, plus the
//! discount over that span times max Q_i at its own next observation.

use super::net::{argmax, max, Acts, NetLayout};
use super::plan::Plan;
use super::{Behavior, Mode, Sampler};
use crate::lanes::Lanes;
use crate::rng::{clamp_u32, Stream, TAG_EPOCH};

/// An independent learner's update that waits for the agent's next decision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pending {
    /// Whether an update is waiting.
    pub open: bool,
    /// The input it decided at.
    pub input: u32,
    /// The action it took.
    pub action: u32,
    /// Discounted reward earned since.
    pub ret: f32,
    /// Discount accumulated since.
    pub discount: f32,
}

/// The per-instance state that persists between epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InstanceState {
    /// Joint state the next epoch starts from.
    pub state: u32,
    /// Epochs run.
    pub epoch: u32,
    /// Primitive steps run.
    pub steps: u64,
    /// Σ |y| over every update.
    pub abs_target: f64,
}

/// What one epoch did (for parity tests and traces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochTrace {
    /// The joint state the epoch started from.
    pub start: u32,
    /// The action taken.
    pub action: u32,
    /// τ.
    pub steps: u32,
    /// The joint state after the option (before the sampler).
    pub end: u32,
    /// The joint state the next epoch starts from.
    pub next: u32,
}

/// One instance's mutable view: its state, parameters, update counts and pending updates.
pub struct InstanceMut<'a> {
    /// Scalar state.
    pub state: &'a mut InstanceState,
    /// Parameters (the plan's layout).
    pub params: &'a mut [f32],
    /// Update count per unit.
    pub updates: &'a mut [u32],
    /// Pending updates per agent (independent mode; may be empty otherwise).
    pub pending: &'a mut [Pending],
}

/// Per-thread buffers of an epoch.
///
/// `target` may outlive its epoch: it holds the forward pass of a `(unit, input)` over the
/// parameter block named by `reusable`, and as long as that unit has taken no SGD step since,
/// the next epoch's decider pass at the same `(unit, input)` of the same block would compute
/// exactly the same numbers — so it takes them instead (in IC-Q the target's executor decides
/// next, and it is a different agent from the one just updated whenever the option hands
/// over). The block's address is part of the key, so a workspace shared by instances never
/// hands one instance another's pass.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    decider: Acts,
    target: Acts,
    /// (address of the parameter block, index of the (unit, input) in `NetLayout::passes`) of
    /// the pass kept in `target`.
    reusable: Option<(usize, u32)>,
}

impl Workspace {
    /// Forgets the kept forward pass (a block freed and reallocated at the same address must
    /// not match it: the CPU backend calls this before each instance's epochs).
    pub fn forget(&mut self) {
        self.reusable = None;
    }

    /// The decider's forward pass number `pass` into `decider`: the kept target pass when it
    /// is that one, else computed.
    #[inline(always)]
    fn decider_forward<L: Lanes>(
        &mut self,
        lanes: L,
        layout: &NetLayout,
        pass: u32,
        params: &[f32],
    ) {
        if self.reusable.take() == Some((params.as_ptr() as usize, pass)) {
            std::mem::swap(&mut self.decider, &mut self.target);
        } else {
            let pass = &layout.passes[pass as usize];
            layout.forward(lanes, pass, params, &mut self.decider);
        }
    }

    /// Q(·, `action`) of the decider's pass number `pass`, its hidden activations in
    /// `decider`: from the kept target pass when it is that one, else computed for that
    /// output alone.
    #[inline(always)]
    fn decider_q<L: Lanes>(
        &mut self,
        lanes: L,
        layout: &NetLayout,
        pass: u32,
        action: usize,
        params: &[f32],
    ) -> f32 {
        if self.reusable.take() == Some((params.as_ptr() as usize, pass)) {
            std::mem::swap(&mut self.decider, &mut self.target);
            self.decider.q[action]
        } else {
            let pass = &layout.passes[pass as usize];
            layout.forward_one(lanes, pass, action, params, &mut self.decider)
        }
    }
}

/// Runs one epoch of the instance whose stream key is `(seed, local)` (see [`Plan::key`]).
#[inline(always)]
pub fn run_epoch<L: Lanes>(
    lanes: L,
    plan: &Plan,
    (seed, local): (u64, u32),
    inst: &mut InstanceMut<'_>,
    ws: &mut Workspace,
) -> EpochTrace {
    let (model, space, layout) = (&plan.model, &plan.space, &plan.layout);
    let learner = &plan.learner;
    let k = inst.state.epoch;
    let mut stream = Stream::with_lanes(lanes, seed, local, k, TAG_EPOCH);
    let s = inst.state.state as usize;
    let parts = plan.decode(s);
    let (h, x) = (parts[0] as usize, parts[1] as usize);
    let pass_id = plan.state_pass[s];
    let pass = &layout.passes[pass_id as usize];
    let unit = pass.unit as usize;
    let a_count = model.actions as u64;

    if learner.mode == Mode::Independent && inst.pending[h].open {
        layout.forward(lanes, pass, inst.params, &mut ws.target);
        let bootstrap = max(&ws.target.q);
        close_pending(lanes, plan, h, bootstrap, inst, ws);
    }

    // 1. Behavior.
    let uniform_action = |u: u32| ((u64::from(u) * a_count) >> 32) as usize;
    let mut have_forward = false;
    let action = match learner.behavior {
        Behavior::Uniform => uniform_action(stream.next_raw()),
        Behavior::EpsilonGreedy { .. } => {
            let (explore, pick) = (stream.next_raw(), stream.next_raw());
            if clamp_u32(explore) < plan.explore_threshold {
                uniform_action(pick)
            } else {
                ws.decider_forward(lanes, layout, pass_id, inst.params);
                have_forward = true;
                argmax(&ws.decider.q)
            }
        }
    };

    // 2. The option.
    let w = plan.tables.option_of[h * plan.tables.actions + action];
    let opt = &plan.tables.options[w];
    let e = opt.executor;
    let pe = parts[2 + e] as usize;
    let run = plan.tables.rollout(w, x, pe, model.gamma, &mut stream);
    inst.state.steps += u64::from(run.steps);
    let ret = run.ret as f32;
    let discount = run.discount as f32;

    // 3. Where it leads.
    let end = if opt.terminal {
        plan.draw_initial(&mut stream)
    } else {
        let rest = s - h * space.stride_h - x * space.stride_x - pe * space.stride_p[e];
        rest + e * space.stride_h + run.artifact * space.stride_x + run.private * space.stride_p[e]
    };

    // 4. The sampler.
    let next = match learner.sampler {
        Sampler::Trajectory => end,
        Sampler::Lazy { .. } => {
            if clamp_u32(stream.next_raw()) < plan.sampler_threshold {
                s
            } else {
                end
            }
        }
        Sampler::Reset { .. } => {
            let (jump, pick) = (stream.next_raw(), stream.next_raw());
            if clamp_u32(jump) < plan.sampler_threshold {
                plan.mu_table
                    .as_ref()
                    .expect("reset plans hold μ")
                    .sample(pick)
            } else {
                end
            }
        }
    };

    // The learning step.
    match learner.mode {
        Mode::Icq | Mode::Centralized | Mode::Myopic => {
            let q_action = if have_forward {
                ws.decider.q[action]
            } else {
                ws.decider_q(lanes, layout, pass_id, action, inst.params)
            };
            let target = if opt.terminal || learner.mode == Mode::Myopic {
                ret
            } else {
                let end_id = plan.state_pass[end];
                let end_pass = &layout.passes[end_id as usize];
                layout.forward(lanes, end_pass, inst.params, &mut ws.target);
                // Kept for the next epoch unless this epoch's step changes its unit.
                let block = inst.params.as_ptr() as usize;
                ws.reusable = (end_pass.unit != pass.unit).then_some((block, end_id));
                ret + discount * max(&ws.target.q)
            };
            let delta = q_action - target;
            let lr = learner.step_size.at(inst.updates[unit]);
            let clip = learner.clip.map(|c| c as f32);
            layout.sgd(
                lanes,
                pass,
                action,
                delta,
                lr,
                clip,
                inst.params,
                &mut ws.decider,
            );
            inst.updates[unit] += 1;
            inst.state.abs_target += f64::from(target.abs());
        }
        Mode::Independent => {
            inst.pending[h] = Pending {
                open: true,
                input: pass.input,
                action: action as u32,
                ret: 0.0,
                discount: 1.0,
            };
            for p in inst.pending.iter_mut().filter(|p| p.open) {
                p.ret += p.discount * ret;
                p.discount *= discount;
            }
            if opt.terminal {
                for i in 0..inst.pending.len() {
                    if inst.pending[i].open {
                        close_pending(lanes, plan, i, 0.0, inst, ws);
                    }
                }
            }
        }
    }

    inst.state.state = next as u32;
    inst.state.epoch += 1;
    EpochTrace {
        start: s as u32,
        action: action as u32,
        steps: run.steps,
        end: end as u32,
        next: next as u32,
    }
}

/// Agent i's waiting update, with `bootstrap` = max Q_i at its new observation (0 at the end
/// of an episode).
fn close_pending<L: Lanes>(
    lanes: L,
    plan: &Plan,
    i: usize,
    bootstrap: f32,
    inst: &mut InstanceMut<'_>,
    ws: &mut Workspace,
) {
    let p = inst.pending[i];
    let target = p.ret + p.discount * bootstrap;
    let layout = &plan.layout;
    let pass = layout.pass(i, p.input as usize);
    layout.forward(lanes, pass, inst.params, &mut ws.decider);
    let delta = ws.decider.q[p.action as usize] - target;
    let lr = plan.learner.step_size.at(inst.updates[i]);
    let clip = plan.learner.clip.map(|c| c as f32);
    layout.sgd(
        lanes,
        pass,
        p.action as usize,
        delta,
        lr,
        clip,
        inst.params,
        &mut ws.decider,
    );
    inst.updates[i] += 1;
    inst.state.abs_target += f64::from(target.abs());
    inst.pending[i].open = false;
}
