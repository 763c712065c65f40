// The fused IC-Q epoch in CUDA C: the twin of shaders/epoch.wgsl (same entry-point name,
// same buffers, same draw order), so the twin of `run_epoch` in src/learn/epoch.rs.
//
// Compiled by NVRTC for the device with -DICQ_WIDTH=<hidden width> -DICQ_ACTIONS=<A>, and as
// plain C++ on the host (the test shim: `icq_epochs_host` runs the same instance function in a
// loop), where the arrays take their largest sizes; with -DICQ_F16 (NVRTC and a second host
// build) parameters are stored as f16. Per-instance data lies by group, n the group's
// instances: record field f of instance b at base + f·n + b (instance-minor), parameter j in
// tiles of eight at base + (⌊j/8⌋·n + b)·8 + j mod 8 (`param_index` in src/backend/device.rs).

#include "philox.cuh"

#if !(defined(__CUDACC__) || defined(__CUDACC_RTC__))
#include <math.h>
#endif

#ifndef ICQ_WIDTH
#define ICQ_WIDTH 256
#endif
#ifndef ICQ_ACTIONS
#define ICQ_ACTIONS 64
#endif

// Mirror `Dispatch` and `EpochParams` in src/backend/device.rs field for field. A chunk holds
// the instances of one or more plans in groups; each thread finds its group's entry of the
// group table and reads it through a pointer in its context (see shaders/epoch.wgsl).
struct Dispatch {
    unsigned int instances, epochs, epoch0, groups;
};

struct EpochParams {
    unsigned int instances, first, inst_base, param_base, per_seed, off_seeds, agents, states, actions;
    unsigned int artifact_states, stride_x, stride_h, mode, network, width, depth, behavior;
    unsigned int explore_threshold, sampler, sampler_threshold, step_kind;
    float alpha, t0, clip, gamma;
    unsigned int params_per_instance, units, inst_fields, off_options, off_action_options;
    unsigned int off_decoded, off_state_input, off_stride_p, off_private_states;
    unsigned int off_init_artifact, off_init_private, off_mu, off_units, off_feat_idx;
    unsigned int init_agent, instance0, off_feat_val, weights;
};

// ---- parameter storage ----------------------------------------------------------------
// With -DICQ_F16 parameters are stored as IEEE binary16 (half the bytes) and every write rounds
// to the nearest f16, ties to even; arithmetic stays f32. On the device the conversions are the
// hardware's cvt instructions, on the host the same rounding in integer arithmetic.

ICQ_FN float as_float(unsigned int u) { union { unsigned int u; float f; } x; x.u = u; return x.f; }
ICQ_FN unsigned int as_bits(float f) { union { unsigned int u; float f; } x; x.f = f; return x.u; }

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
ICQ_FN unsigned short icq_f32_to_f16(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
ICQ_FN float icq_f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
#else
ICQ_FN unsigned short icq_f32_to_f16(float f) {
    unsigned int x = as_bits(f);
    unsigned int sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xFFu, man = x & 0x7FFFFFu;
    if (exp == 0xFFu) return (unsigned short)(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0u));
    int e = (int)exp - 112;  // the f16 exponent field
    if (e >= 31) return (unsigned short)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10) return (unsigned short)sign;  // below half the smallest subnormal
        man |= 0x800000u;
        unsigned int shift = (unsigned int)(14 - e), h = man >> shift;
        unsigned int rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (unsigned short)(sign | h);
    }
    unsigned int h = ((unsigned int)e << 10) | (man >> 13), rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // a carry may reach infinity
    return (unsigned short)(sign | h);
}
ICQ_FN float icq_f16_to_f32(unsigned short h) {
    unsigned int sign = ((unsigned int)h & 0x8000u) << 16, exp = ((unsigned int)h >> 10) & 0x1Fu;
    unsigned int man = (unsigned int)h & 0x3FFu;
    if (exp == 0x1Fu) return as_float(sign | 0x7F800000u | (man << 13));
    if (exp == 0u) {
        float f = (float)man * 5.9604644775390625e-8f;  // man · 2^-24, exact
        return sign ? -f : f;
    }
    return as_float(sign | ((exp + 112u) << 23) | (man << 13));
}
#endif

#ifdef ICQ_F16
typedef unsigned short icq_param;
ICQ_FN float param_load(icq_param p) { return icq_f16_to_f32(p); }
ICQ_FN icq_param param_store(float f) { return icq_f32_to_f16(f); }
#else
typedef float icq_param;
ICQ_FN float param_load(icq_param p) { return p; }
ICQ_FN icq_param param_store(float f) { return f; }
#endif

// On the device, loops over hidden units stay rolled and the hidden layers and their gradients
// sit in an array of their own in local memory (`hidden` in run_instance), which leaves the
// rest of the context in registers. Unrolling those loops so the layers could live in registers
// was measured too (H200, width 32): the epoch ran 14% slower at 211 registers a thread, and
// the first run took 35 s of NVRTC instead of 4. Up to eight actions, loops over actions are
// unrolled to the batch's largest action count, so q stays in registers and q[action] is a
// select; beyond, q joins the hidden layers (unrolling sixteen took NVRTC 20 s at width 32
// instead of 3 s, on a 2-core development machine).
// The host build keeps plain loops.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FOR_W(k, w) _Pragma("unroll 1") for (unsigned int k = 0u; k < (w); k++)
#define ICQ_UNROLL_8 _Pragma("unroll")
#else
#define FOR_W(k, w) for (unsigned int k = 0u; k < (w); k++)
#define ICQ_UNROLL_8
#endif
#if (defined(__CUDACC__) || defined(__CUDACC_RTC__)) && ICQ_ACTIONS <= 8
#define ICQ_Q_IN_REGISTERS 1
#define FOR_A(a, n) _Pragma("unroll") for (unsigned int a = 0u; a < ICQ_ACTIONS; a++) if (a >= (n)) {} else
#else
#define ICQ_Q_IN_REGISTERS 0
#define FOR_A(a, n) for (unsigned int a = 0u; a < ICQ_ACTIONS && a < (n); a++)
#endif

#define MODE_CENTRALIZED 1u
#define MODE_INDEPENDENT 2u
#define MODE_MYOPIC 3u
#define OPTION_FIELDS 8u
#define UNIT_FIELDS 4u

struct Ctx {
    const EpochParams* P;
    const unsigned int* MU;
    const float* MF;
    unsigned int* INST;
    icq_param* PARAMS;
    unsigned int key0, key1;
    icq_u4 ctr, block;
    unsigned int lane;
    float abs_y;
#if ICQ_Q_IN_REGISTERS
    float q[ICQ_ACTIONS];
#else
    float* q;
#endif
    // The hidden layers and their gradients, in an array of their own (local memory, as their
    // run-time indices require), so that the rest of the context stays in registers.
    float *h1, *g1, *h2, *g2;
};

// ---- Philox streams -------------------------------------------------------------------

// Instance b of the batch draws as instance b mod per_seed of seed floor(b / per_seed).
ICQ_FN void stream_start(Ctx* c, unsigned int instance, unsigned int epoch, unsigned int tag) {
    unsigned int j = instance / c->P->per_seed;
    unsigned int seed = c->P->off_seeds + 2u * j;
    c->key0 = instance - j * c->P->per_seed;
    c->key1 = c->MU[seed];
    c->ctr.x = 0u;
    c->ctr.y = epoch;
    c->ctr.z = tag;
    c->ctr.w = c->MU[seed + 1u];
    c->lane = 4u;
}

ICQ_FN unsigned int next_raw(Ctx* c) {
    if (c->lane == 4u) {
        c->block = icq_philox4x32_10(c->ctr, c->key0, c->key1);
        c->ctr.x += 1u;
        c->lane = 0u;
    }
    unsigned int l = c->lane++;  // a select, not an indexed array: the block stays in registers
    return l == 0u ? c->block.x : l == 1u ? c->block.y : l == 2u ? c->block.z : c->block.w;
}

ICQ_FN unsigned int clamp_u32(unsigned int u) { return u < 0xFFFFFFFEu ? u : 0xFFFFFFFEu; }

ICQ_FN unsigned int sample_cdf(const Ctx* c, unsigned int off, unsigned int n, unsigned int u) {
    unsigned int v = clamp_u32(u), idx = 0u;
    for (unsigned int j = 0u; j + 1u < n; j++) idx += v >= c->MU[off + j] ? 1u : 0u;
    return idx;
}

ICQ_FN unsigned int uniform_action(const Ctx* c, unsigned int u) { return icq_mulhi(u, c->P->actions); }

// ---- instance records -----------------------------------------------------------------

ICQ_FN unsigned int inst_get(const Ctx* c, unsigned int b, unsigned int f) { return c->INST[c->P->inst_base + f * c->P->instances + b]; }
ICQ_FN void inst_set(Ctx* c, unsigned int b, unsigned int f, unsigned int v) { c->INST[c->P->inst_base + f * c->P->instances + b] = v; }
ICQ_FN unsigned int pending_field(const Ctx* c, unsigned int agent, unsigned int f) { return 5u + c->P->units + agent * 5u + f; }

// ---- networks -------------------------------------------------------------------------

// Parameter j of instance b: a thread's run of consecutive parameters reads one tile of eight
// per eight values (one more where it starts mid-tile), whatever unit and input its
// neighbours are at.
ICQ_FN unsigned int param_at(const Ctx* c, unsigned int b, unsigned int j) {
    return c->P->param_base + ((j >> 3u) * c->P->instances + b) * 8u + (j & 7u);
}
ICQ_FN float param(const Ctx* c, unsigned int b, unsigned int j) { return param_load(c->PARAMS[param_at(c, b, j)]); }
ICQ_FN void param_sub(Ctx* c, unsigned int b, unsigned int j, float d) {
    unsigned int i = param_at(c, b, j);
    c->PARAMS[i] = param_store(param_load(c->PARAMS[i]) - d);
}
ICQ_FN unsigned int unit_field(const Ctx* c, unsigned int unit, unsigned int f) { return c->MU[c->P->off_units + unit * UNIT_FIELDS + f]; }

// Σ a·b in eight interleaved partial sums, as `dot` in src/learn/net.rs.
ICQ_FN float lanes_sum(const float* acc) { return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])); }

// Eight lanes at a time, each lane's index a constant so the partial sums stay in registers;
// lane j still takes k = j, j + 8, … in turn.
ICQ_FN float dot_param(const Ctx* c, unsigned int b, unsigned int at, const float* h) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    unsigned int w = c->P->width;
    for (unsigned int k0 = 0u; k0 < w; k0 += 8u)
        ICQ_UNROLL_8 for (unsigned int j = 0u; j < 8u; j++)
            if (k0 + j < w) acc[j] += param(c, b, at + k0 + j) * h[k0 + j];
    return lanes_sum(acc);
}

ICQ_FN float dot_self(const Ctx* c, const float* v) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    unsigned int w = c->P->width;
    for (unsigned int k0 = 0u; k0 < w; k0 += 8u)
        ICQ_UNROLL_8 for (unsigned int j = 0u; j < 8u; j++)
            if (k0 + j < w) acc[j] += v[k0 + j] * v[k0 + j];
    return lanes_sum(acc);
}

ICQ_FN void forward(Ctx* c, unsigned int b, unsigned int unit, unsigned int input) {
    unsigned int base = unit_field(c, unit, 0u), a_count = c->P->actions;
    if (c->P->network == 0u) {
        FOR_A(a, a_count) c->q[a] = param(c, b, base + input * a_count + a);
        return;
    }
    unsigned int w = c->P->width, in_dim = unit_field(c, unit, 2u), fstart = unit_field(c, unit, 3u);
    unsigned int f0 = c->MU[fstart + input], f1 = c->MU[fstart + input + 1u];
    FOR_W(k, w) c->h1[k] = param(c, b, base + in_dim * w + k);
    for (unsigned int f = f0; f < f1; f++) {
        unsigned int j = c->MU[c->P->off_feat_idx + f];
        float v = c->MF[c->P->off_feat_val + f];
        FOR_W(k, w) c->h1[k] += v * param(c, b, base + j * w + k);
    }
    FOR_W(k, w) c->h1[k] = fmaxf(c->h1[k], 0.0f);
    unsigned int at = base + in_dim * w + w;
    if (c->P->depth == 2u) {
        FOR_W(k, w) c->h2[k] = fmaxf(param(c, b, at + w * w + k) + dot_param(c, b, at + k * w, c->h1), 0.0f);
        at += w * w + w;
        FOR_A(a, a_count) c->q[a] = param(c, b, at + a_count * w + a) + dot_param(c, b, at + a * w, c->h2);
    } else {
        FOR_A(a, a_count) c->q[a] = param(c, b, at + a_count * w + a) + dot_param(c, b, at + a * w, c->h1);
    }
}

ICQ_FN float q_max(const Ctx* c) {
    float m = c->q[0];
    FOR_A(a, c->P->actions) m = fmaxf(m, c->q[a]);
    return m;
}

// The first action of the largest value (the running best is carried, not re-read by index).
ICQ_FN unsigned int q_argmax(const Ctx* c) {
    unsigned int best = 0u;
    float top = c->q[0];
    FOR_A(a, c->P->actions) if (c->q[a] > top) {
        best = a;
        top = c->q[a];
    }
    return best;
}

// q[action] for a run-time action, by a select over the unrolled actions.
ICQ_FN float q_at(const Ctx* c, unsigned int action) {
    float v = c->q[0];
    FOR_A(a, c->P->actions) if (a == action) v = c->q[a];
    return v;
}

ICQ_FN float step_size(const Ctx* c, unsigned int t) {
    float tf = (float)t;
    if (c->P->step_kind == 0u) return c->P->alpha;
    if (c->P->step_kind == 1u) return c->P->alpha / sqrtf(tf + 1.0f);
    return c->P->alpha * c->P->t0 / (c->P->t0 + tf);
}

ICQ_FN void sgd(Ctx* c, unsigned int b, unsigned int unit, unsigned int input, unsigned int action, float delta, float lr) {
    unsigned int base = unit_field(c, unit, 0u), a_count = c->P->actions;
    bool clipping = c->P->clip > 0.0f;
    if (c->P->network == 0u) {
        float g = delta;
        if (clipping) g = fminf(fmaxf(delta, -c->P->clip), c->P->clip);
        param_sub(c, b, base + input * a_count + action, lr * g);
        return;
    }
    unsigned int w = c->P->width, in_dim = unit_field(c, unit, 2u), fstart = unit_field(c, unit, 3u);
    unsigned int f0 = c->MU[fstart + input], f1 = c->MU[fstart + input + 1u];
    unsigned int out_at = base + in_dim * w + w + (c->P->depth - 1u) * (w * w + w);
    bool two = c->P->depth == 2u;
    // The last hidden layer's k-th unit.
#define LAST(k) (two ? c->h2[k] : c->h1[k])
    FOR_W(k, w) c->g1[k] = LAST(k) > 0.0f ? delta * param(c, b, out_at + action * w + k) : 0.0f;
    float norm_sq = 0.0f;
    if (clipping) norm_sq = delta * delta * ((two ? dot_self(c, c->h2) : dot_self(c, c->h1)) + 1.0f);
    unsigned int w2_at = base + in_dim * w + w;
    if (two) {
        if (clipping) norm_sq += dot_self(c, c->g1) * (dot_self(c, c->h1) + 1.0f);
        // g2[j] = Σ_k g1[k]·W2[k][j], summed in a register: k ascending and zero g1[k] skipped,
        // the same additions in the same order as the CPU's k-outer loop into every g2[j].
        FOR_W(j, w) {
            float sum = 0.0f;
            FOR_W(k, w) {
                float g = c->g1[k];
                if (g != 0.0f) sum += g * param(c, b, w2_at + k * w + j);
            }
            c->g2[j] = sum;
        }
        FOR_W(j, w) {
            if (c->h1[j] <= 0.0f) c->g2[j] = 0.0f;
            float t = c->g1[j];  // swap: g1 becomes layer 1's gradient, g2 layer 2's
            c->g1[j] = c->g2[j];
            c->g2[j] = t;
        }
    }
    float scale = 1.0f;
    if (clipping) {
        float x_sq = 0.0f;
        for (unsigned int f = f0; f < f1; f++) {
            float v = c->MF[c->P->off_feat_val + f];
            x_sq += v * v;
        }
        norm_sq += dot_self(c, c->g1) * (x_sq + 1.0f);
        if (sqrtf(norm_sq) > c->P->clip) scale = c->P->clip / sqrtf(norm_sq);
    }
    float step = lr * scale;
    FOR_W(k, w) param_sub(c, b, out_at + action * w + k, step * delta * LAST(k));
#undef LAST
    param_sub(c, b, out_at + a_count * w + action, step * delta);
    if (two) {
        FOR_W(k, w) {
            float g = c->g2[k];
            if (g != 0.0f) {
                FOR_W(j, w) param_sub(c, b, w2_at + k * w + j, step * g * c->h1[j]);
                param_sub(c, b, w2_at + w * w + k, step * g);
            }
        }
    }
    for (unsigned int f = f0; f < f1; f++) {
        unsigned int j = c->MU[c->P->off_feat_idx + f];
        float v = c->MF[c->P->off_feat_val + f];
        FOR_W(k, w) param_sub(c, b, base + j * w + k, step * c->g1[k] * v);
    }
    FOR_W(k, w) param_sub(c, b, base + in_dim * w + k, step * c->g1[k]);
}

// ---- the model ------------------------------------------------------------------------

ICQ_FN unsigned int option_field(const Ctx* c, unsigned int w, unsigned int f) { return c->MU[c->P->off_options + w * OPTION_FIELDS + f]; }
ICQ_FN unsigned int decoded(const Ctx* c, unsigned int s, unsigned int f) { return c->MU[c->P->off_decoded + s * (2u + c->P->agents) + f]; }
ICQ_FN unsigned int stride_p(const Ctx* c, unsigned int i) { return c->MU[c->P->off_stride_p + i]; }
ICQ_FN unsigned int unit_of(const Ctx* c, unsigned int s) { return c->P->mode == MODE_CENTRALIZED ? 0u : decoded(c, s, 0u); }

ICQ_FN unsigned int draw_initial(Ctx* c) {
    unsigned int x = sample_cdf(c, c->P->off_init_artifact, c->P->artifact_states, next_raw(c));
    unsigned int s = c->P->init_agent * c->P->stride_h + x * c->P->stride_x;
    for (unsigned int i = 0u; i < c->P->agents; i++) {
        unsigned int off = c->MU[c->P->off_init_private + 2u * i], m = c->MU[c->P->off_init_private + 2u * i + 1u];
        s += sample_cdf(c, off, m, next_raw(c)) * stride_p(c, i);
    }
    return s;
}

struct Run {
    float ret, discount;
    unsigned int steps, x, p;
};

ICQ_FN Run rollout(Ctx* c, unsigned int w, unsigned int x, unsigned int p, unsigned int m) {
    unsigned int kind = option_field(c, w, 1u), art = option_field(c, w, 5u), prv = option_field(c, w, 6u);
    unsigned int rew = option_field(c, w, 7u), n_s = c->P->artifact_states, fixed = 0u;
    if (kind == 1u) fixed = option_field(c, w, 2u);
    else if (kind == 2u) fixed = 1u + sample_cdf(c, option_field(c, w, 2u), option_field(c, w, 3u), next_raw(c));
    Run r;
    r.ret = 0.0f;
    r.discount = 1.0f;
    r.steps = 0u;
    for (;;) {
        r.ret += r.discount * c->MF[rew + x * m + p];
        r.discount *= c->P->gamma;
        r.steps += 1u;
        x = sample_cdf(c, art + x * n_s, n_s, next_raw(c));
        p = sample_cdf(c, prv + p * m, m, next_raw(c));
        bool stop = kind == 0u ? clamp_u32(next_raw(c)) < option_field(c, w, 2u) : r.steps >= fixed;
        if (stop) break;
    }
    r.x = x;
    r.p = p;
    return r;
}

// Σ|y| of this launch's epochs, added to the record's total once at the end: a total in f32
// that took every |y| in turn would stop growing once it is some 10⁷ times one of them.
ICQ_FN void add_abs_target(Ctx* c, float y) { c->abs_y += fabsf(y); }

ICQ_FN unsigned int count_update(Ctx* c, unsigned int b, unsigned int unit) {
    unsigned int t = inst_get(c, b, 5u + unit);
    inst_set(c, b, 5u + unit, t + 1u);
    return t;
}

ICQ_FN void close_pending(Ctx* c, unsigned int b, unsigned int i, float bootstrap) {
    unsigned int input = inst_get(c, b, pending_field(c, i, 1u)), action = inst_get(c, b, pending_field(c, i, 2u));
    float y = as_float(inst_get(c, b, pending_field(c, i, 3u))) + as_float(inst_get(c, b, pending_field(c, i, 4u))) * bootstrap;
    forward(c, b, i, input);
    float delta = q_at(c, action) - y;
    sgd(c, b, i, input, action, delta, step_size(c, count_update(c, b, i)));
    add_abs_target(c, y);
    inst_set(c, b, pending_field(c, i, 0u), 0u);
}

ICQ_FN void run_epoch(Ctx* c, unsigned int b, unsigned int k) {
    stream_start(c, c->P->instance0 + b, k, 0u);
    unsigned int s = inst_get(c, b, 0u), h = decoded(c, s, 0u), x = decoded(c, s, 1u);
    unsigned int unit = unit_of(c, s), input = c->MU[c->P->off_state_input + s];

    if (c->P->mode == MODE_INDEPENDENT && inst_get(c, b, pending_field(c, h, 0u)) != 0u) {
        forward(c, b, unit, input);
        close_pending(c, b, h, q_max(c));
    }

    // 1. Behavior.
    unsigned int action;
    if (c->P->behavior == 0u) {
        action = uniform_action(c, next_raw(c));
    } else {
        unsigned int explore = next_raw(c), pick = next_raw(c);
        if (clamp_u32(explore) < c->P->explore_threshold) {
            action = uniform_action(c, pick);
        } else {
            forward(c, b, unit, input);
            action = q_argmax(c);
        }
    }

    // 2. The option.
    unsigned int w = c->MU[c->P->off_action_options + h * c->P->actions + action];
    unsigned int e = option_field(c, w, 0u);
    bool terminal = option_field(c, w, 4u) != 0u;
    unsigned int pe = decoded(c, s, 2u + e), m = c->MU[c->P->off_private_states + e];
    Run run = rollout(c, w, x, pe, m);
    unsigned int lo = inst_get(c, b, 2u), new_lo = lo + run.steps;
    inst_set(c, b, 2u, new_lo);
    if (new_lo < lo) inst_set(c, b, 3u, inst_get(c, b, 3u) + 1u);

    // 3. Where it leads.
    unsigned int end;
    if (terminal) {
        end = draw_initial(c);
    } else {
        unsigned int rest = s - h * c->P->stride_h - x * c->P->stride_x - pe * stride_p(c, e);
        end = rest + e * c->P->stride_h + run.x * c->P->stride_x + run.p * stride_p(c, e);
    }

    // 4. The sampler.
    unsigned int next = end;
    if (c->P->sampler == 1u) {
        if (clamp_u32(next_raw(c)) < c->P->sampler_threshold) next = s;
    } else if (c->P->sampler == 2u) {
        unsigned int jump = next_raw(c), pick = next_raw(c);
        if (clamp_u32(jump) < c->P->sampler_threshold) next = sample_cdf(c, c->P->off_mu, c->P->states, pick);
    }

    // The learning step.
    if (c->P->mode == MODE_INDEPENDENT) {
        inst_set(c, b, pending_field(c, h, 0u), 1u);
        inst_set(c, b, pending_field(c, h, 1u), input);
        inst_set(c, b, pending_field(c, h, 2u), action);
        inst_set(c, b, pending_field(c, h, 3u), as_bits(0.0f));
        inst_set(c, b, pending_field(c, h, 4u), as_bits(1.0f));
        for (unsigned int i = 0u; i < c->P->agents; i++) {
            if (inst_get(c, b, pending_field(c, i, 0u)) != 0u) {
                float r = as_float(inst_get(c, b, pending_field(c, i, 3u)));
                float d = as_float(inst_get(c, b, pending_field(c, i, 4u)));
                inst_set(c, b, pending_field(c, i, 3u), as_bits(r + d * run.ret));
                inst_set(c, b, pending_field(c, i, 4u), as_bits(d * run.discount));
            }
        }
        if (terminal)
            for (unsigned int i = 0u; i < c->P->agents; i++)
                if (inst_get(c, b, pending_field(c, i, 0u)) != 0u) close_pending(c, b, i, 0.0f);
    } else {
        float y = run.ret;
        if (!terminal && c->P->mode != MODE_MYOPIC) {
            forward(c, b, unit_of(c, end), c->MU[c->P->off_state_input + end]);
            y = run.ret + run.discount * q_max(c);
        }
        forward(c, b, unit, input);
        float delta = q_at(c, action) - y;
        sgd(c, b, unit, input, action, delta, step_size(c, count_update(c, b, unit)));
        add_abs_target(c, y);
    }
    inst_set(c, b, 0u, next);
    inst_set(c, b, 1u, k + 1u);
}

// Chunk instance `id`: finds its group (the last whose first instance is at or before it) and
// runs the dispatch's epochs.
ICQ_FN void run_instance(const Dispatch* D, const EpochParams* G, const unsigned int* MU, const float* MF, unsigned int* INST, icq_param* PARAMS, unsigned int id) {
    unsigned int lo = 0u, hi = D->groups;
    while (hi - lo > 1u) {
        unsigned int mid = (lo + hi) / 2u;
        if (G[mid].first <= id) lo = mid;
        else hi = mid;
    }
    Ctx c;
    float hidden[4 * ICQ_WIDTH + (ICQ_Q_IN_REGISTERS ? 0 : ICQ_ACTIONS)];
    c.h1 = hidden;
    c.g1 = hidden + ICQ_WIDTH;
    c.h2 = hidden + 2 * ICQ_WIDTH;
    c.g2 = hidden + 3 * ICQ_WIDTH;
#if !ICQ_Q_IN_REGISTERS
    c.q = hidden + 4 * ICQ_WIDTH;
#endif
    c.P = &G[lo];
    c.MU = MU;
    c.MF = MF;
    c.INST = INST;
    c.PARAMS = PARAMS;
    unsigned int b = id - c.P->first;
    c.abs_y = 0.0f;
    for (unsigned int e = 0u; e < D->epochs; e++) run_epoch(&c, b, D->epoch0 + e);
    inst_set(&c, b, 4u, as_bits(as_float(inst_get(&c, b, 4u)) + c.abs_y));
}

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
extern "C" __global__ void epochs(const Dispatch D, const EpochParams* G, const unsigned int* MU, const float* MF, unsigned int* INST, icq_param* PARAMS) {
    unsigned int id = blockIdx.x * blockDim.x + threadIdx.x;
    if (id < D.instances) run_instance(&D, G, MU, MF, INST, PARAMS, id);
}
#elif !defined(ICQ_F16)
// Philox blocks on the host: the known-answer check of kernels/philox.cuh.
extern "C" void icq_philox_host(const unsigned int* ctr, const unsigned int* key, unsigned int* out, unsigned int n) {
    for (unsigned int i = 0u; i < n; i++) {
        icq_u4 c = {ctr[4 * i], ctr[4 * i + 1], ctr[4 * i + 2], ctr[4 * i + 3]};
        icq_u4 r = icq_philox4x32_10(c, key[2 * i], key[2 * i + 1]);
        out[4 * i] = r.x;
        out[4 * i + 1] = r.y;
        out[4 * i + 2] = r.z;
        out[4 * i + 3] = r.w;
    }
}

#define ICQ_EPOCHS_HOST icq_epochs_host

// The largest hidden width and action count this build's per-thread arrays hold: the host
// backend refuses batches beyond them.
extern "C" void icq_host_limits(unsigned int* width, unsigned int* actions) {
    *width = ICQ_WIDTH;
    *actions = ICQ_ACTIONS;
}
#else
// The source compiled a second time with -DICQ_F16: the shim with f16 parameters.
#define ICQ_EPOCHS_HOST icq_epochs_host_f16

// The host's f16 conversions, both ways (checked against the `half` crate).
extern "C" void icq_f16_host(const float* in, unsigned short* out, float* back, unsigned int n) {
    for (unsigned int i = 0u; i < n; i++) {
        out[i] = icq_f32_to_f16(in[i]);
        back[i] = icq_f16_to_f32(out[i]);
    }
}
#endif

#if !(defined(__CUDACC__) || defined(__CUDACC_RTC__))
// The host shim: every instance in turn, one "thread" at a time.
extern "C" void ICQ_EPOCHS_HOST(const Dispatch* D, const EpochParams* G, const unsigned int* MU, const float* MF, unsigned int* INST, icq_param* PARAMS) {
    for (unsigned int id = 0u; id < D->instances; id++) run_instance(D, G, MU, MF, INST, PARAMS, id);
}
#endif
