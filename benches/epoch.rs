//! Criterion benches of the backends: handoff updates (one epoch of one instance) per second
//! at the performance configuration (`examples/bench.toml`), tabular and MLP learners, two
//! batch sizes. Groups `cpu/epoch` and `wgpu/epoch` (the latter only where wgpu finds an
//! adapter; on a software one its figures mean nothing), and `device/setup`: the host drawing
//! a GPU batch's initial records and parameters and laying them out as the kernels read them:
//! records instance-minor, parameters in tiles of eight (`initial_instances`, `param_index`).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use icq::backend::cpu::Cpu;
use icq::backend::device::initial_instances;
use icq::backend::gpu::AdapterChoice;
use icq::backend::wgpu::Wgpu;
use icq::backend::Backend;
use icq::config::{load_input, Input};
use icq::learn::plan::Plan;
use icq::learn::Network;

const EPOCHS: u32 = 20;

fn group<B: Backend>(c: &mut Criterion, name: &str, backend: &B, input: &Input) {
    let mut group = c.benchmark_group(format!("{name}/epoch"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for network in [
        Network::Tabular,
        Network::Mlp {
            width: 32,
            depth: 1,
        },
    ] {
        for instances in [1024u32, 4096] {
            let mut learner = input.config.learner.clone();
            learner.network = network;
            let plan = Plan::new(&input.model, &learner, instances, 0, None).expect("plan");
            let mut batch = backend.upload(&plan.into()).expect("upload");
            group.throughput(Throughput::Elements(
                u64::from(instances) * u64::from(EPOCHS),
            ));
            group.bench_function(BenchmarkId::new(network.label(), instances), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        backend.advance(&mut batch, EPOCHS).expect("advance");
                    }
                    backend.sync().expect("sync");
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn epochs(c: &mut Criterion) {
    let input = load_input(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench.toml"))
        .expect("examples/bench.toml loads");
    group(c, "cpu", &Cpu::new(), &input);
    match Wgpu::new(AdapterChoice::Any) {
        Ok(gpu) => {
            eprintln!("wgpu/epoch on {}", gpu.device());
            group(c, "wgpu", &gpu, &input);
        }
        Err(e) => eprintln!("wgpu/epoch skipped: {e}"),
    }
}

fn setup(c: &mut Criterion) {
    let input = load_input(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench.toml"))
        .expect("examples/bench.toml loads");
    let mut group = c.benchmark_group("device/setup");
    group.sample_size(10);
    let instances = 16_384u32;
    let plan = Plan::new(&input.model, &input.config.learner, instances, 0, None).expect("plan");
    group.throughput(Throughput::Elements(u64::from(instances)));
    group.bench_function(BenchmarkId::new("initial_instances", instances), |b| {
        b.iter(|| initial_instances(&plan, 0, instances))
    });
    group.finish();
}

criterion_group!(benches, epochs, setup);
criterion_main!(benches);
