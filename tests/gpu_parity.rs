//! The device kernels against the CPU reference on every run of the suite — the WGSL kernel
//! on lavapipe in CI, the CUDA kernel's host build everywhere — and, with `--features cuda`,
//! the CUDA kernel itself on a CUDA device: those tests are ignored unless asked for
//! (`-- --include-ignored`, as `benches/gpu/check.sh` runs them), so a suite without a device
//! counts them as ignored rather than passed; asked for, they skip with the reason where
//! there is no device, and `ICQ_REQUIRE_CUDA=1` makes that a failure:
//! with uniform behavior the joint-state sequence, durations and update counts are identical
//! for every instance, and Q-values agree within a stated tolerance, for every network kind,
//! encoding, baseline and sampler. Batches pack three seeds (one above 2³²) of 13 instances
//! each, so the per-seed keys are exercised and the last workgroup is partial.
//!
//! Tolerance (f32 parameters; f16 ones: see [`F16_TOLERANCE`]): |Q_gpu − Q_cpu| ≤
//! max(1e-4·|Q_cpu|, 1e-5). Both sides are f32 with the same
//! operation order, but the GPU compiler may fuse multiply-adds and sums R in f32 where the
//! CPU sums it in f64 before rounding; those last-bit differences are carried through a few
//! hundred bootstrapped updates. Measured on lavapipe and on the host build: the largest
//! difference is 1.4e-6 and uses at most 0.051 of its case's tolerance (each test prints
//! both), so the bound leaves a twentyfold margin for hardware that fuses more.

use std::path::Path;

use icq::backend::cpu::Cpu;
use icq::backend::cuda_host::CudaHost;
use icq::backend::gpu::{adapter_required, AdapterChoice};
use icq::backend::wgpu::Wgpu;
use icq::backend::Backend;
use icq::config::{load_input, Config};
use icq::learn::plan::{BatchPlan, Plan};
use icq::learn::Weights;
use icq::model::Model;
use icq::oracle::Oracle;

/// With f16 parameter storage: |Q_gpu − Q_cpu| ≤ F16_TOLERANCE · max |Q_cpu| over the plan.
/// Every backend rounds each write to f16 the same way (ties to even, in integer arithmetic
/// where the device's own conversion could differ), but a last-bit f32 difference that
/// straddles a rounding boundary becomes a one-ulp (2⁻¹¹ relative) difference in a weight,
/// which later updates carry; the discrete trajectories stay identical. Measured: at most
/// 1.9e-4 of the scale, on the CUDA host build and on lavapipe alike, so the bound leaves a
/// tenfold margin. That a kernel rounds at all is checked apart, by
/// `wgpu_f16_weights_are_stored_as_f16` (a kernel that kept f32 weights stays within 1.5e-3
/// of the scale on one of these plans).
const F16_TOLERANCE: f32 = 0.002;

/// Σ|y|: |Σ_gpu − Σ_cpu| ≤ ABS_Y_TOLERANCE · Σ_cpu. The kernels sum in f32 per launch, the CPU
/// in f64; each |y| comes from Q-values within 1e-4 of the CPU's (the tolerance of `parity`), and
/// the sums of these short runs add a few f32 roundings to that.
const ABS_Y_TOLERANCE: f64 = 1e-4;

/// Instances per seed.
const INSTANCES: u32 = 13;
/// The seeds packed in every batch.
const SEEDS: [u64; 3] = [1234, 7, (5 << 32) + 9];

fn wgpu() -> Option<Wgpu> {
    match Wgpu::new(AdapterChoice::Any) {
        Ok(b) => Some(b),
        Err(e) if !adapter_required() => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("ICQ_REQUIRE_ADAPTER=1 but {e}"),
    }
}

/// CUDA device 0, or `None` with the reason on stderr (a failure when `ICQ_REQUIRE_CUDA=1`).
#[cfg(feature = "cuda")]
fn cuda() -> Option<icq::backend::cuda::Cuda> {
    match icq::backend::cuda::Cuda::new() {
        Ok(b) => Some(b),
        Err(e) if std::env::var("ICQ_REQUIRE_CUDA").is_ok_and(|v| v == "1") => {
            panic!("ICQ_REQUIRE_CUDA=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// The CUDA device reports its memory's peak bandwidth (the roofline of `icq bench`): every
/// card CUDA 13 runs on has more than 100 GB/s and less than 100 TB/s.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA device (--include-ignored)"]
fn cuda_reports_its_memory_bandwidth() {
    use icq::backend::Backend;
    let Some(gpu) = cuda() else { return };
    let peak = gpu
        .peak_bandwidth()
        .expect("the driver reports clock and bus width");
    assert!((1e11..1e14).contains(&peak), "{peak:e} bytes/s");
}

fn model_of(model_toml: &str) -> Model {
    if let Some(file) = model_toml.strip_prefix("file:") {
        return load_input(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap()
            .model;
    }
    let config = Config::parse(model_toml, Path::new("test.toml")).unwrap();
    config.model.build(Path::new(".")).unwrap()
}

/// The plan of one parity case: `INSTANCES` instances under each of `SEEDS`.
fn case_plan(model_toml: &str, learner_toml: &str) -> Plan {
    let model = model_of(model_toml);
    let config = Config::parse(learner_toml, Path::new("learner.toml")).unwrap();
    let mu = Oracle::new(&model)
        .unwrap()
        .chain()
        .stationary(1_000_000)
        .unwrap()
        .0;
    Plan::packed(&model, &config.learner, INSTANCES, &SEEDS, Some(&mu)).unwrap()
}

/// Packs the plans of `cases` (model, learner) in one batch and runs `rounds` × `per_round`
/// epochs on the CPU and on `gpu`, comparing states after every round.
fn parity<B: Backend>(
    gpu: Option<B>,
    name: &str,
    cases: &[(&str, &str)],
    rounds: u32,
    per_round: u32,
) {
    let Some(gpu) = gpu else { return };
    let plans = cases.iter().map(|(m, l)| case_plan(m, l)).collect();
    let batch = BatchPlan::new(plans).unwrap();
    let cpu = Cpu::new();
    let mut c = cpu.upload(&batch).unwrap();
    let mut g = gpu.upload(&batch).unwrap();
    assert_eq!(
        cpu.states(&c).unwrap(),
        gpu.states(&g).unwrap(),
        "{name}: initial states"
    );
    for round in 0..rounds {
        cpu.advance(&mut c, per_round).unwrap();
        gpu.advance(&mut g, per_round).unwrap();
        gpu.sync().unwrap();
        let (cs, gs) = (cpu.states(&c).unwrap(), gpu.states(&g).unwrap());
        for (p, (cs, gs)) in cs.iter().zip(&gs).enumerate() {
            if let Some(b) = (0..cs.len()).find(|&b| cs[b] != gs[b]) {
                panic!(
                    "{name}: plan {p}, instance {b} diverged after epoch {}: cpu state {} gpu state {}",
                    (round + 1) * per_round,
                    cs[b],
                    gs[b]
                );
            }
        }
    }
    let (cc, gc) = (cpu.counters(&c).unwrap(), gpu.counters(&g).unwrap());
    let (cq, gq) = (cpu.read_q(&c).unwrap(), gpu.read_q(&g).unwrap());
    let (mut worst, mut used) = (0.0f32, 0.0f32);
    for p in 0..cases.len() {
        assert_eq!(cc[p].epochs, gc[p].epochs, "{name}: plan {p}: epochs");
        assert_eq!(
            cc[p].steps, gc[p].steps,
            "{name}: plan {p}: primitive steps"
        );
        assert_eq!(
            cc[p].updates, gc[p].updates,
            "{name}: plan {p}: updates per unit"
        );
        for (b, (&x, &y)) in gc[p].abs_target.iter().zip(&cc[p].abs_target).enumerate() {
            assert!(
                (x - y).abs() <= ABS_Y_TOLERANCE * y.abs(),
                "{name}: plan {p}, instance {b}: Σ|y| gpu {x} cpu {y}"
            );
        }
        let (cq, gq) = (&cq[p], &gq[p]);
        let per_instance = cq.inputs * cq.actions;
        let f16 = batch.plans[p].learner.weights == Weights::F16;
        let scale = cq.values.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (&x, &y)) in gq.values.iter().zip(&cq.values).enumerate() {
            let tol = if f16 {
                F16_TOLERANCE * scale
            } else {
                (1e-4 * y.abs()).max(1e-5)
            };
            let (b, rest) = (i / per_instance, i % per_instance);
            assert!(
                (x - y).abs() <= tol,
                "{name}: plan {p}, instance {b}, input {}, action {}: gpu {x} cpu {y}",
                rest / cq.actions,
                rest % cq.actions
            );
            worst = worst.max((x - y).abs());
            used = used.max((x - y).abs() / tol);
        }
        assert_eq!(gq.values.len(), cq.values.len(), "{name}: plan {p}: Q size");
        assert!(
            cq.values.iter().any(|&v| v != 0.0),
            "{name}: plan {p}: nothing was learned"
        );
    }
    eprintln!(
        "{name}: largest |Q_gpu − Q_cpu| = {worst:e}, at most {used:.3} of its tolerance, on {}",
        gpu.device()
    );
}

const SYNTH: &str =
    "[model]\nagents = 3\nartifact_states = 8\ninterface_states = 4\nprivate_states = 2\n\
                     interface_noise = 0.2\nprivate_weight = 0.3\nmodel_seed = 5\n";

/// Learners used in more than one case.
const SCALAR_DEEP_CLIPPED: &str = "[learner]\nnetwork = { mlp = { width = 12, depth = 2 } }\nencoding = \"scalar\"\nstep_size = { constant = { alpha = 0.05 } }\nclip = 1.0\n";
const EMBED: &str = "[learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nencoding = { embed = { d = 6, seed = 3 } }\nstep_size = { constant = { alpha = 0.02 } }\n";
const INDEPENDENT_TABULAR: &str = "[learner]\nmode = \"independent\"\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\n";
const RESET_TABULAR: &str =
    "[learner]\nnetwork = \"tabular\"\nsampler = { reset = { rho = 0.6 } }\n";
const HANDOFF: &str = "file:examples/handoff.json";

macro_rules! parity_tests {
    ($($name:ident: $cases:expr;)*) => {
        mod on_wgpu {
            use super::*;
            $(
                #[test]
                fn $name() {
                    parity(wgpu(), stringify!($name), $cases, 6, 25);
                }
            )*
        }
        mod on_cuda_host {
            use super::*;
            $(
                #[test]
                fn $name() {
                    parity(Some(CudaHost), stringify!($name), $cases, 6, 25);
                }
            )*
        }
        #[cfg(feature = "cuda")]
        mod on_cuda {
            use super::*;
            $(
                #[test]
                #[ignore = "needs a CUDA device (--include-ignored)"]
                fn $name() {
                    parity(cuda(), stringify!($name), $cases, 6, 25);
                }
            )*
        }
    };
}

parity_tests! {
    parity_tabular_geometric: &[(SYNTH, "[learner]\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\n")];
    parity_tabular_fixed: &[(&format!("{SYNTH}duration = {{ fixed = {{ steps = 3 }} }}\n"), "[learner]\nnetwork = \"tabular\"\nstep_size = { inverse = { alpha = 1.0, t0 = 50 } }\n")];
    parity_tabular_poisson: &[(&format!("{SYNTH}duration = {{ poisson = {{ mean = 2.5 }} }}\n"), "[learner]\nnetwork = \"tabular\"\nstep_size = { inverse_sqrt = { alpha = 0.5 } }\nclip = 0.5\n")];
    parity_mlp_onehot: &[(SYNTH, "[learner]\nnetwork = { mlp = { width = 16, depth = 1 } }\nencoding = \"onehot\"\nstep_size = { constant = { alpha = 0.05 } }\n")];
    parity_mlp_scalar_deep_clipped: &[(SYNTH, SCALAR_DEEP_CLIPPED)];
    parity_mlp_embed: &[(SYNTH, EMBED)];
    parity_centralized: &[(SYNTH, "[learner]\nmode = \"centralized\"\nnetwork = { mlp = { width = 16, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\n")];
    parity_independent_terminal: &[(HANDOFF, INDEPENDENT_TABULAR)];
    parity_myopic_terminal: &[(HANDOFF, "[learner]\nmode = \"myopic\"\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.1 } }\n")];
    parity_icq_terminal: &[(HANDOFF, "[learner]\nnetwork = { mlp = { width = 8, depth = 2 } }\nstep_size = { constant = { alpha = 0.01 } }\n")];
    parity_lazy_sampler: &[(SYNTH, "[learner]\nnetwork = \"tabular\"\nsampler = { lazy = { rho = 0.4 } }\n")];
    parity_reset_sampler: &[(SYNTH, RESET_TABULAR)];
    // ε-greedy behavior: at ε = 1 every epoch draws its explore test and its uniform action
    // and always explores (the draw order, on an MLP); at ε = 0.3 the greedy action is the
    // argmax of the kernel's own Q, on tabular and MLP units (trajectories stay identical as
    // long as no two Q-values of a row are nearer than the backends' last-bit differences,
    // which these seeds do not meet).
    parity_epsilon_greedy: &[
        (SYNTH, "[learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\nbehavior = { epsilon_greedy = { epsilon = 1.0 } }\n"),
        (SYNTH, "[learner]\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\nbehavior = { epsilon_greedy = { epsilon = 0.3 } }\n"),
        (HANDOFF, "[learner]\nnetwork = { mlp = { width = 8, depth = 2 } }\nstep_size = { constant = { alpha = 0.01 } }\nbehavior = { epsilon_greedy = { epsilon = 0.3 } }\n"),
    ];
    // f16 parameter storage (every write rounded to f16, f32 arithmetic).
    parity_f16_weights: &[
        F16_PLANS[0],
        (SYNTH, "[learner]\nnetwork = \"tabular\"\nweights = \"f16\"\n"),
        F16_PLANS[1],
    ];
    // Plans of different models (actions, agents, terminal options), widths, modes and
    // samplers packed in one batch: every group finds its own parameters and buffers.
    // Ten actions: past the eight the CUDA kernel keeps Q in registers for.
    parity_many_actions: &[
        ("[model]\nagents = 10\nartifact_states = 8\ninterface_states = 4\nprivate_states = 1\nmodel_seed = 9\n", "[learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\nbehavior = { epsilon_greedy = { epsilon = 0.3 } }\n"),
        ("[model]\nagents = 10\nartifact_states = 8\ninterface_states = 4\nprivate_states = 1\nmodel_seed = 9\n", "[learner]\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\n"),
    ];
    parity_mixed_batch: &[
        (SYNTH, SCALAR_DEEP_CLIPPED),
        (HANDOFF, INDEPENDENT_TABULAR),
        (&format!("{SYNTH}duration = {{ poisson = {{ mean = 2.5 }} }}\n"), EMBED),
        (SYNTH, RESET_TABULAR),
    ];
}

/// A batch split into chunks (here 10 instances each; on hardware, by the adapter's storage
/// limits) runs the same instances as one unsplit batch: each chunk keys its Philox streams by
/// each group's index within its plan. Chunks of 10 cut across seed blocks of 13 and across
/// the boundary between the two plans (at instance 39).
#[test]
fn parity_split_batches() {
    let gpu = wgpu().map(|g| g.with_chunk_limit(10));
    let mlp = "[learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\n";
    parity(
        gpu,
        "split",
        &[(SYNTH, mlp), (HANDOFF, INDEPENDENT_TABULAR)],
        3,
        50,
    );
}

/// A batch whose one instance, or whose model tables, would not fit one storage binding is
/// refused before anything is compiled or uploaded, naming the sizes; under the limit it runs
/// split into chunks.
#[test]
fn oversized_bindings_are_refused() {
    let Some(gpu) = wgpu() else { return };
    let plan = case_plan(
        SYNTH,
        "[learner]\nnetwork = { mlp = { width = 64, depth = 2 } }\nstep_size = { constant = { alpha = 0.01 } }\n",
    );
    // Parameters in whole tiles, as the device holds them.
    let bytes = 4 * icq::backend::device::param_words(plan.layout.params, 1) as u64;
    let batch = BatchPlan::from(plan);
    let fits = gpu.with_binding_limit(2 * bytes);
    let mut b = fits.upload(&batch).unwrap();
    fits.advance(&mut b, 3).unwrap();
    let small = fits.with_binding_limit(bytes - 4);
    let err = small
        .upload(&batch)
        .err()
        .expect("one instance exceeds the limit");
    assert!(matches!(err, icq::Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("one instance's state"), "{err}");

    // A model whose tables outgrow a binding, with instances that fit one easily.
    let plan = case_plan(
        "[model]\nagents = 3\nartifact_states = 128\ninterface_states = 4\nprivate_states = 1\n",
        "[learner]\nnetwork = \"tabular\"\n",
    );
    let words = icq::backend::device::param_words(plan.layout.params, 1)
        .max(icq::backend::device::inst_fields(&plan));
    let limit = 64 << 10;
    assert!(4 * words < limit / 4, "{words} words per instance");
    let err = small
        .with_binding_limit(limit as u64)
        .upload(&BatchPlan::from(plan))
        .err()
        .expect("the model's tables exceed the limit");
    assert!(matches!(err, icq::Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("the model's table of"), "{err}");
}

const F16_PLANS: [(&str, &str); 2] = [
    (SYNTH, "[learner]\nnetwork = { mlp = { width = 16, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\nweights = \"f16\"\n"),
    (HANDOFF, "[learner]\nnetwork = { mlp = { width = 8, depth = 2 } }\nencoding = \"scalar\"\nstep_size = { constant = { alpha = 0.01 } }\nclip = 1.0\nweights = \"f16\"\n"),
];

/// With f16 weights the WGSL kernel (which keeps each weight in an f32 word) and the CPU store
/// only values an f16 can hold, and learning moved them (they are not the initial ones).
#[test]
fn wgpu_f16_weights_are_stored_as_f16() {
    let Some(gpu) = wgpu() else { return };
    let plans = F16_PLANS.iter().map(|(m, l)| case_plan(m, l)).collect();
    let batch = BatchPlan::new(plans).unwrap();
    let mut g = gpu.upload(&batch).unwrap();
    let before = gpu.read_params(&g).unwrap();
    gpu.advance(&mut g, 100).unwrap();
    let after = gpu.read_params(&g).unwrap();
    let cpu = Cpu::new();
    let mut c = cpu.upload(&batch).unwrap();
    cpu.advance(&mut c, 100).unwrap();
    let on_cpu = c.params();
    for (p, params) in after.iter().chain(&on_cpu).enumerate() {
        for (j, &x) in params.iter().enumerate() {
            assert_eq!(
                half::f16::from_f32(x).to_f32().to_bits(),
                x.to_bits(),
                "{}plan {}, parameter {j}: {x:e} is not an f16",
                if p < 2 { "wgpu " } else { "cpu " },
                p % 2
            );
        }
    }
    for (p, (a, b)) in after.iter().zip(&before).enumerate() {
        let moved = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert!(
            moved * 10 > a.len(),
            "plan {p}: only {moved} of {} parameters moved",
            a.len()
        );
    }
}

/// The fields of `name` in the WGSL, Rust and CUDA sources, in order, as (field, type).
fn mirrored_fields(name: &str) -> [Vec<(String, String)>; 3] {
    let pair = |n: &str, t: &str| (n.trim().to_string(), t.trim().to_string());
    let wgsl = include_str!("../shaders/epoch.wgsl");
    let body = wgsl
        .split(&format!("struct {name} {{"))
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the WGSL struct");
    let wgsl_fields = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, t) = l.trim_end_matches(',').split_once(':').expect("name: type");
            pair(n, t)
        })
        .collect();
    let rust = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/device.rs"),
    )
    .unwrap();
    let rust_body = rust
        .split(&format!("pub struct {name} {{"))
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("the Rust struct");
    let rust_fields = rust_body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub "))
        .map(|l| {
            let (n, t) = l
                .trim_start_matches("pub ")
                .trim_end_matches(',')
                .split_once(':')
                .unwrap();
            pair(n, t)
        })
        .collect();
    let cuda = include_str!("../kernels/epoch.cu");
    let cuda_body = cuda
        .split(&format!("struct {name} {{"))
        .nth(1)
        .and_then(|rest| rest.split("};").next())
        .expect("the CUDA struct");
    let mut cuda_fields = Vec::new();
    for decl in cuda_body
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let (ty, names) = if let Some(rest) = decl.strip_prefix("unsigned int ") {
            ("u32", rest)
        } else if let Some(rest) = decl.strip_prefix("float ") {
            ("f32", rest)
        } else {
            panic!("{name}: a field that is not a 4-byte scalar: {decl}");
        };
        cuda_fields.extend(names.split(',').map(|n| pair(n, ty)));
    }
    [wgsl_fields, rust_fields, cuda_fields]
}

/// `Dispatch` and `EpochParams` in `shaders/epoch.wgsl` and in `kernels/epoch.cu` declare the
/// Rust structs' fields in the same order, all 4-byte scalars, so the layout is the same on
/// every side.
#[test]
fn kernel_structs_mirror_the_rust_structs() {
    let sizes = [
        (
            "Dispatch",
            std::mem::size_of::<icq::backend::device::Dispatch>(),
        ),
        (
            "EpochParams",
            std::mem::size_of::<icq::backend::device::EpochParams>(),
        ),
    ];
    for (name, size) in sizes {
        let [wgsl, rust, cuda] = mirrored_fields(name);
        assert!(
            wgsl.iter().all(|(_, ty)| ty == "u32" || ty == "f32"),
            "{name}: {wgsl:?}"
        );
        assert_eq!(wgsl, rust, "{name}: WGSL against Rust");
        assert_eq!(cuda, rust, "{name}: CUDA against Rust");
        assert_eq!(size, 4 * rust.len(), "{name}: the Rust struct has padding");
    }
}

/// The CUDA kernel's host build sizes its per-thread arrays for the widest network and the
/// most actions it was compiled for; a batch beyond them is refused by name, not run into
/// memory past the arrays.
#[test]
fn cuda_host_refuses_what_its_arrays_cannot_hold() {
    let (width, actions) = icq::backend::cuda_host::host_limits();
    assert_eq!((width, actions), (256, 64));
    let mlp = |w: u32| {
        format!("[learner]\nnetwork = {{ mlp = {{ width = {w}, depth = 1 }} }}\nstep_size = {{ constant = {{ alpha = 0.01 }} }}\n")
    };
    let mut b = CudaHost
        .upload(&BatchPlan::from(case_plan(SYNTH, &mlp(width))))
        .expect("the widest network it holds");
    CudaHost.advance(&mut b, 2).unwrap();
    let err = CudaHost
        .upload(&BatchPlan::from(case_plan(SYNTH, &mlp(width + 8))))
        .err()
        .expect("a wider network is refused");
    assert!(
        err.to_string()
            .contains("learner.network: a hidden width of 264 is more than the 256"),
        "{err}"
    );
    // The synthetic family gives each agent one action per agent.
    let many =
        "[model]\nagents = 65\nartifact_states = 4\ninterface_states = 2\nprivate_states = 1\n";
    let err = CudaHost
        .upload(&BatchPlan::from(case_plan(
            many,
            "[learner]\nnetwork = \"tabular\"\n",
        )))
        .err()
        .expect("more actions are refused");
    assert!(
        err.to_string()
            .contains("model.actions: an action count of 65 is more than the 64"),
        "{err}"
    );
}

/// Σ|y| over tens of millions of updates: the kernels add each launch's sum to the record's
/// f32 total, which a total that took every |y| in turn would stop short of (it stops
/// growing near 2²⁴ times the typical |y|). 2·10⁷ epochs of one instance on the host build,
/// against the CPU's f64 sum. The f32 total rounds once per launch (3·10⁵ launches), each
/// rounding uniform within ±½ ulp, an ulp being at most 2⁻²³ of the final total: a random
/// walk with a standard deviation of at most √(3·10⁵) · 2⁻²³/√12 ≈ 1.9e-5 of the total. The
/// bound of 1e-4 is five such deviations (measured: 9.4e-6; a total that took every |y| in
/// turn was 1.25% short). A bias in the roundings would break the random-walk reading; the
/// worst case, every rounding a half-ulp the same way, is 3·10⁵ · 2⁻²⁴ ≈ 1.8e-2.
#[test]
fn abs_target_sums_hold_over_long_runs() {
    let plan = |instances| {
        let model = model_of(SYNTH);
        let config = Config::parse(
            "[learner]\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\n",
            Path::new("learner.toml"),
        )
        .unwrap();
        Plan::packed(&model, &config.learner, instances, &[3], None).unwrap()
    };
    let batch = BatchPlan::from(plan(1));
    let epochs = 20_000_000;
    let cpu = Cpu::new();
    let mut c = cpu.upload(&batch).unwrap();
    cpu.advance(&mut c, epochs).unwrap();
    let mut g = CudaHost.upload(&batch).unwrap();
    CudaHost.advance(&mut g, epochs).unwrap();
    let (x, y) = (
        CudaHost.counters(&g).unwrap()[0].abs_target[0],
        cpu.counters(&c).unwrap()[0].abs_target[0],
    );
    eprintln!("Σ|y| over {epochs} epochs: host build {x}, cpu {y}");
    assert!((x - y).abs() <= 1e-4 * y, "host build {x} cpu {y}");
}
