// The fused IC-Q epoch: one invocation per instance runs `D.epochs` whole epochs (behavior
// action, duration, the option's primitive steps, the one scalar, the decider's SGD step)
// with no host round-trip. The twin of `run_epoch` in src/learn/epoch.rs, draw for draw.
//
// Constants injected by the host before compilation: WORKGROUP, WIDTH (hidden width, ≥ 1),
// ACTIONS (the largest hidden width and action count of the batch's plans).
//
// A chunk holds the instances of one or more plans (each its own model and learner), in
// groups: the group table `G` gives each group's parameters, and every invocation works on a
// private copy `P` of its group's entry. Per-instance data lies by group, n the group's
// instances here: record field f of instance b at base + f·n + b (instance-minor), parameter j
// in tiles of eight at base + (⌊j/8⌋·n + b)·8 + j mod 8 (`param_index` in
// src/backend/device.rs).

struct Dispatch {
    instances: u32,
    epochs: u32,
    epoch0: u32,
    groups: u32,
}

struct EpochParams {
    instances: u32,
    first: u32,
    inst_base: u32,
    param_base: u32,
    per_seed: u32,
    off_seeds: u32,
    agents: u32,
    states: u32,
    actions: u32,
    artifact_states: u32,
    stride_x: u32,
    stride_h: u32,
    mode: u32,
    network: u32,
    width: u32,
    depth: u32,
    behavior: u32,
    explore_threshold: u32,
    sampler: u32,
    sampler_threshold: u32,
    step_kind: u32,
    alpha: f32,
    t0: f32,
    clip: f32,
    gamma: f32,
    params_per_instance: u32,
    units: u32,
    inst_fields: u32,
    off_options: u32,
    off_action_options: u32,
    off_decoded: u32,
    off_state_input: u32,
    off_stride_p: u32,
    off_private_states: u32,
    off_init_artifact: u32,
    off_init_private: u32,
    off_mu: u32,
    off_units: u32,
    off_feat_idx: u32,
    init_agent: u32,
    instance0: u32,
    off_feat_val: u32,
    weights: u32,
}

const MODE_ICQ: u32 = 0u;
const MODE_CENTRALIZED: u32 = 1u;
const MODE_INDEPENDENT: u32 = 2u;
const MODE_MYOPIC: u32 = 3u;
const TAG_EPOCH: u32 = 0u;
const OPTION_FIELDS: u32 = 8u;
const UNIT_FIELDS: u32 = 4u;

@group(0) @binding(0) var<uniform> D: Dispatch;
@group(0) @binding(1) var<storage, read> MU: array<u32>;
@group(0) @binding(2) var<storage, read> MF: array<f32>;
@group(0) @binding(3) var<storage, read_write> INST: array<u32>;
@group(0) @binding(4) var<storage, read_write> PARAMS: array<f32>;
@group(0) @binding(5) var<storage, read> G: array<EpochParams>;

// The parameters of this invocation's group.
var<private> P: EpochParams;

// ---- Philox streams -------------------------------------------------------------------

struct Stream {
    key: vec2<u32>,
    ctr: vec4<u32>,
    block: vec4<u32>,
    lane: u32,
}

var<private> S: Stream;

// Instance b of the batch draws as instance b mod per_seed of seed ⌊b / per_seed⌋.
fn stream_start(instance: u32, epoch: u32, tag: u32) {
    let j = instance / P.per_seed;
    let seed = P.off_seeds + 2u * j;
    S.key = vec2<u32>(instance - j * P.per_seed, MU[seed]);
    S.ctr = vec4<u32>(0u, epoch, tag, MU[seed + 1u]);
    S.lane = 4u;
}

fn next_raw() -> u32 {
    if (S.lane == 4u) {
        S.block = philox4x32_10(S.ctr, S.key);
        S.ctr.x = S.ctr.x + 1u;
        S.lane = 0u;
    }
    let u = S.block[S.lane];
    S.lane = S.lane + 1u;
    return u;
}

fn clamp_u32(u: u32) -> u32 {
    return min(u, 0xFFFFFFFEu);
}

// The outcome of the cumulative row MU[off .. off + n] for the raw word u.
fn sample_cdf(off: u32, n: u32, u: u32) -> u32 {
    let v = clamp_u32(u);
    var idx = 0u;
    for (var j = 0u; j + 1u < n; j++) {
        idx += select(0u, 1u, v >= MU[off + j]);
    }
    return idx;
}

fn uniform_action(u: u32) -> u32 {
    // ⌊u·A / 2³²⌋ without 64-bit integers: the high word of u·A.
    return mulhilo(u, P.actions).x;
}

// ---- instance records -----------------------------------------------------------------

fn inst_get(b: u32, f: u32) -> u32 {
    return INST[P.inst_base + f * P.instances + b];
}

fn inst_set(b: u32, f: u32, v: u32) {
    INST[P.inst_base + f * P.instances + b] = v;
}

fn pending_field(agent: u32, f: u32) -> u32 {
    return 5u + P.units + agent * 5u + f;
}

// ---- networks -------------------------------------------------------------------------

var<private> H1: array<f32, WIDTH>;
var<private> H2: array<f32, WIDTH>;
var<private> G1: array<f32, WIDTH>;
var<private> G2: array<f32, WIDTH>;
var<private> Q: array<f32, ACTIONS>;

// Parameter j of instance b: an invocation's run of consecutive parameters reads one tile of
// eight per eight values (one more where it starts mid-tile), whatever unit and input its
// neighbours are at.
fn param_at(b: u32, j: u32) -> u32 {
    return P.param_base + ((j >> 3u) * P.instances + b) * 8u + (j & 7u);
}

fn param(b: u32, j: u32) -> f32 {
    return PARAMS[param_at(b, j)];
}

// Every parameter write goes through the storage: with f16 weights the value is rounded to
// the nearest f16 (ties to even; kept in an f32 word).
fn param_add(b: u32, j: u32, d: f32) {
    let i = param_at(b, j);
    var v = PARAMS[i] - d;
    if (P.weights == 1u) {
        v = round_f16(v);
    }
    PARAMS[i] = v;
}

fn unit_field(unit: u32, f: u32) -> u32 {
    return MU[P.off_units + unit * UNIT_FIELDS + f];
}

// Σ a·b over `WIDTH`-long rows in eight interleaved partial sums, as `dot` in src/learn/net.rs.
fn dot_param_h1(b: u32, at: u32) -> f32 {
    var acc: array<f32, 8>;
    for (var k = 0u; k < P.width; k++) {
        acc[k % 8u] += param(b, at + k) * H1[k];
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

fn dot_param_h2(b: u32, at: u32) -> f32 {
    var acc: array<f32, 8>;
    for (var k = 0u; k < P.width; k++) {
        acc[k % 8u] += param(b, at + k) * H2[k];
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

fn dot_self(which: u32) -> f32 {
    var acc: array<f32, 8>;
    for (var k = 0u; k < P.width; k++) {
        var v = 0.0;
        switch which {
            case 0u: { v = H1[k]; }
            case 1u: { v = H2[k]; }
            default: { v = G1[k]; }
        }
        acc[k % 8u] += v * v;
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// Q(input, ·) of `unit` into Q (hidden layers stay in H1, H2 for `sgd`).
fn forward(b: u32, unit: u32, input: u32) {
    let base = unit_field(unit, 0u);
    let a_count = P.actions;
    if (P.network == 0u) {
        for (var a = 0u; a < a_count; a++) {
            Q[a] = param(b, base + input * a_count + a);
        }
        return;
    }
    let w = P.width;
    let in_dim = unit_field(unit, 2u);
    let fstart = unit_field(unit, 3u);
    let f0 = MU[fstart + input];
    let f1 = MU[fstart + input + 1u];
    for (var k = 0u; k < w; k++) {
        H1[k] = param(b, base + in_dim * w + k);
    }
    for (var f = f0; f < f1; f++) {
        let j = MU[P.off_feat_idx + f];
        let v = MF[P.off_feat_val + f];
        for (var k = 0u; k < w; k++) {
            H1[k] += v * param(b, base + j * w + k);
        }
    }
    for (var k = 0u; k < w; k++) {
        H1[k] = max(H1[k], 0.0);
    }
    var at = base + in_dim * w + w;
    if (P.depth == 2u) {
        for (var k = 0u; k < w; k++) {
            H2[k] = max(param(b, at + w * w + k) + dot_param_h1(b, at + k * w), 0.0);
        }
        at += w * w + w;
        for (var a = 0u; a < a_count; a++) {
            Q[a] = param(b, at + a_count * w + a) + dot_param_h2(b, at + a * w);
        }
    } else {
        for (var a = 0u; a < a_count; a++) {
            Q[a] = param(b, at + a_count * w + a) + dot_param_h1(b, at + a * w);
        }
    }
}

fn q_max() -> f32 {
    var m = Q[0];
    for (var a = 1u; a < P.actions; a++) {
        m = max(m, Q[a]);
    }
    return m;
}

fn q_argmax() -> u32 {
    var best = 0u;
    for (var a = 1u; a < P.actions; a++) {
        if (Q[a] > Q[best]) {
            best = a;
        }
    }
    return best;
}

fn step_size(t: u32) -> f32 {
    let tf = f32(t);
    switch P.step_kind {
        case 0u: { return P.alpha; }
        case 1u: { return P.alpha / sqrt(tf + 1.0); }
        default: { return P.alpha * P.t0 / (P.t0 + tf); }
    }
}

// One SGD step on ½(Q(input, a) − y)², with `delta` = Q(input, a) − y and H1/H2 from the
// forward pass at `input`.
fn sgd(b: u32, unit: u32, input: u32, action: u32, delta: f32, lr: f32) {
    let base = unit_field(unit, 0u);
    let a_count = P.actions;
    let clipping = P.clip > 0.0;
    if (P.network == 0u) {
        var g = delta;
        if (clipping) {
            g = clamp(delta, -P.clip, P.clip);
        }
        param_add(b, base + input * a_count + action, lr * g);
        return;
    }
    let w = P.width;
    let in_dim = unit_field(unit, 2u);
    let fstart = unit_field(unit, 3u);
    let f0 = MU[fstart + input];
    let f1 = MU[fstart + input + 1u];
    let out_at = base + in_dim * w + w + (P.depth - 1u) * (w * w + w);
    let two = P.depth == 2u;
    for (var k = 0u; k < w; k++) {
        var h = H1[k];
        if (two) {
            h = H2[k];
        }
        G1[k] = select(0.0, delta * param(b, out_at + action * w + k), h > 0.0);
    }
    var norm_sq = 0.0;
    if (clipping) {
        norm_sq = delta * delta * (dot_self(select(0u, 1u, two)) + 1.0);
    }
    let w2_at = base + in_dim * w + w;
    if (two) {
        if (clipping) {
            norm_sq += dot_self(2u) * (dot_self(0u) + 1.0);
        }
        for (var j = 0u; j < w; j++) {
            G2[j] = 0.0;
        }
        for (var k = 0u; k < w; k++) {
            let g = G1[k];
            if (g != 0.0) {
                for (var j = 0u; j < w; j++) {
                    G2[j] += g * param(b, w2_at + k * w + j);
                }
            }
        }
        for (var j = 0u; j < w; j++) {
            if (H1[j] <= 0.0) {
                G2[j] = 0.0;
            }
            // Swap: G1 becomes layer 1's gradient, G2 layer 2's.
            let t = G1[j];
            G1[j] = G2[j];
            G2[j] = t;
        }
    }
    var scale = 1.0;
    if (clipping) {
        var x_sq = 0.0;
        for (var f = f0; f < f1; f++) {
            let v = MF[P.off_feat_val + f];
            x_sq += v * v;
        }
        norm_sq += dot_self(2u) * (x_sq + 1.0);
        if (sqrt(norm_sq) > P.clip) {
            scale = P.clip / sqrt(norm_sq);
        }
    }
    let step = lr * scale;
    for (var k = 0u; k < w; k++) {
        var h = H1[k];
        if (two) {
            h = H2[k];
        }
        param_add(b, out_at + action * w + k, step * delta * h);
    }
    param_add(b, out_at + a_count * w + action, step * delta);
    if (two) {
        for (var k = 0u; k < w; k++) {
            let g = G2[k];
            if (g != 0.0) {
                for (var j = 0u; j < w; j++) {
                    param_add(b, w2_at + k * w + j, step * g * H1[j]);
                }
                param_add(b, w2_at + w * w + k, step * g);
            }
        }
    }
    for (var f = f0; f < f1; f++) {
        let j = MU[P.off_feat_idx + f];
        let v = MF[P.off_feat_val + f];
        for (var k = 0u; k < w; k++) {
            param_add(b, base + j * w + k, step * G1[k] * v);
        }
    }
    for (var k = 0u; k < w; k++) {
        param_add(b, base + in_dim * w + k, step * G1[k]);
    }
}

// ---- the model ------------------------------------------------------------------------

fn option_field(w: u32, f: u32) -> u32 {
    return MU[P.off_options + w * OPTION_FIELDS + f];
}

fn decoded(s: u32, f: u32) -> u32 {
    return MU[P.off_decoded + s * (2u + P.agents) + f];
}

fn stride_p(i: u32) -> u32 {
    return MU[P.off_stride_p + i];
}

fn private_states(i: u32) -> u32 {
    return MU[P.off_private_states + i];
}

fn unit_of(s: u32) -> u32 {
    if (P.mode == MODE_CENTRALIZED) {
        return 0u;
    }
    return decoded(s, 0u);
}

fn draw_initial() -> u32 {
    let x = sample_cdf(P.off_init_artifact, P.artifact_states, next_raw());
    var s = P.init_agent * P.stride_h + x * P.stride_x;
    for (var i = 0u; i < P.agents; i++) {
        let off = MU[P.off_init_private + 2u * i];
        let m = MU[P.off_init_private + 2u * i + 1u];
        s += sample_cdf(off, m, next_raw()) * stride_p(i);
    }
    return s;
}

struct Run {
    ret: f32,
    discount: f32,
    steps: u32,
    x: u32,
    p: u32,
}

fn rollout(w: u32, x0: u32, p0: u32, m: u32) -> Run {
    let kind = option_field(w, 1u);
    let art = option_field(w, 5u);
    let prv = option_field(w, 6u);
    let rew = option_field(w, 7u);
    let n_s = P.artifact_states;
    var x = x0;
    var p = p0;
    var ret = 0.0;
    var disc = 1.0;
    var steps = 0u;
    var fixed = 0u;
    if (kind == 1u) {
        fixed = option_field(w, 2u);
    } else if (kind == 2u) {
        fixed = 1u + sample_cdf(option_field(w, 2u), option_field(w, 3u), next_raw());
    }
    loop {
        ret += disc * MF[rew + x * m + p];
        disc *= P.gamma;
        steps += 1u;
        x = sample_cdf(art + x * n_s, n_s, next_raw());
        p = sample_cdf(prv + p * m, m, next_raw());
        var stop = false;
        if (kind == 0u) {
            stop = clamp_u32(next_raw()) < option_field(w, 2u);
        } else {
            stop = steps >= fixed;
        }
        if (stop) {
            break;
        }
    }
    return Run(ret, disc, steps, x, p);
}

// Σ|y| of this dispatch's epochs, added to the record's total once at the end: a total in f32
// that took every |y| in turn would stop growing once it is some 10⁷ times one of them.
var<private> ABS_Y: f32;

fn add_abs_target(y: f32) {
    ABS_Y += abs(y);
}

fn count_update(b: u32, unit: u32) -> u32 {
    let t = inst_get(b, 5u + unit);
    inst_set(b, 5u + unit, t + 1u);
    return t;
}

fn close_pending(b: u32, i: u32, bootstrap: f32) {
    let input = inst_get(b, pending_field(i, 1u));
    let action = inst_get(b, pending_field(i, 2u));
    let ret = bitcast<f32>(inst_get(b, pending_field(i, 3u)));
    let disc = bitcast<f32>(inst_get(b, pending_field(i, 4u)));
    let y_target = ret + disc * bootstrap;
    forward(b, i, input);
    let delta = Q[action] - y_target;
    let lr = step_size(count_update(b, i));
    sgd(b, i, input, action, delta, lr);
    add_abs_target(y_target);
    inst_set(b, pending_field(i, 0u), 0u);
}

fn run_epoch(b: u32, k: u32) {
    stream_start(P.instance0 + b, k, TAG_EPOCH);
    let s = inst_get(b, 0u);
    let h = decoded(s, 0u);
    let x = decoded(s, 1u);
    let unit = unit_of(s);
    let input = MU[P.off_state_input + s];

    if (P.mode == MODE_INDEPENDENT && inst_get(b, pending_field(h, 0u)) != 0u) {
        forward(b, unit, input);
        close_pending(b, h, q_max());
    }

    // 1. Behavior.
    var action = 0u;
    if (P.behavior == 0u) {
        action = uniform_action(next_raw());
    } else {
        let explore = next_raw();
        let pick = next_raw();
        if (clamp_u32(explore) < P.explore_threshold) {
            action = uniform_action(pick);
        } else {
            forward(b, unit, input);
            action = q_argmax();
        }
    }

    // 2. The option.
    let w = MU[P.off_action_options + h * P.actions + action];
    let e = option_field(w, 0u);
    let terminal = option_field(w, 4u) != 0u;
    let pe = decoded(s, 2u + e);
    let m = private_states(e);
    let run = rollout(w, x, pe, m);
    let steps_lo = inst_get(b, 2u);
    let new_lo = steps_lo + run.steps;
    inst_set(b, 2u, new_lo);
    if (new_lo < steps_lo) {
        inst_set(b, 3u, inst_get(b, 3u) + 1u);
    }

    // 3. Where it leads.
    var end = 0u;
    if (terminal) {
        end = draw_initial();
    } else {
        let rest = s - h * P.stride_h - x * P.stride_x - pe * stride_p(e);
        end = rest + e * P.stride_h + run.x * P.stride_x + run.p * stride_p(e);
    }

    // 4. The sampler.
    var next = end;
    if (P.sampler == 1u) {
        if (clamp_u32(next_raw()) < P.sampler_threshold) {
            next = s;
        }
    } else if (P.sampler == 2u) {
        let jump = next_raw();
        let pick = next_raw();
        if (clamp_u32(jump) < P.sampler_threshold) {
            next = sample_cdf(P.off_mu, P.states, pick);
        }
    }

    // The learning step.
    if (P.mode == MODE_INDEPENDENT) {
        inst_set(b, pending_field(h, 0u), 1u);
        inst_set(b, pending_field(h, 1u), input);
        inst_set(b, pending_field(h, 2u), action);
        inst_set(b, pending_field(h, 3u), bitcast<u32>(0.0));
        inst_set(b, pending_field(h, 4u), bitcast<u32>(1.0));
        for (var i = 0u; i < P.agents; i++) {
            if (inst_get(b, pending_field(i, 0u)) != 0u) {
                let r = bitcast<f32>(inst_get(b, pending_field(i, 3u)));
                let d = bitcast<f32>(inst_get(b, pending_field(i, 4u)));
                inst_set(b, pending_field(i, 3u), bitcast<u32>(r + d * run.ret));
                inst_set(b, pending_field(i, 4u), bitcast<u32>(d * run.discount));
            }
        }
        if (terminal) {
            for (var i = 0u; i < P.agents; i++) {
                if (inst_get(b, pending_field(i, 0u)) != 0u) {
                    close_pending(b, i, 0.0);
                }
            }
        }
    } else {
        var y_target = run.ret;
        if (!terminal && P.mode != MODE_MYOPIC) {
            forward(b, unit_of(end), MU[P.off_state_input + end]);
            y_target = run.ret + run.discount * q_max();
        }
        forward(b, unit, input);
        let delta = Q[action] - y_target;
        let lr = step_size(count_update(b, unit));
        sgd(b, unit, input, action, delta, lr);
        add_abs_target(y_target);
    }

    inst_set(b, 0u, next);
    inst_set(b, 1u, k + 1u);
}

@compute @workgroup_size(WORKGROUP)
fn epochs(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= D.instances) {
        return;
    }
    // The last group whose first instance is at or before this one.
    var lo = 0u;
    var hi = D.groups;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (G[mid].first <= id.x) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    P = G[lo];
    let b = id.x - P.first;
    ABS_Y = 0.0;
    for (var e = 0u; e < D.epochs; e++) {
        run_epoch(b, D.epoch0 + e);
    }
    inst_set(b, 4u, bitcast<u32>(bitcast<f32>(inst_get(b, 4u)) + ABS_Y));
}
