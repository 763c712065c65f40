//! Criterion benches of the CPU backend: handoff updates (one epoch of one instance) per
//! second at the performance configuration (`examples/bench.toml`), for two batch sizes and
//! for tabular and MLP learners.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use icq::backend::cpu::Cpu;
use icq::backend::Backend;
use icq::config::load_input;
use icq::learn::plan::Plan;
use icq::learn::Network;

const EPOCHS: u32 = 20;

fn epochs(c: &mut Criterion) {
    let input = load_input(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench.toml"))
        .expect("examples/bench.toml loads");
    let cpu = Cpu::new();
    let mut group = c.benchmark_group("cpu/epoch");
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
            let mut batch = cpu.upload(&plan).expect("upload");
            group.throughput(Throughput::Elements(
                u64::from(instances) * u64::from(EPOCHS),
            ));
            let id = BenchmarkId::new(network.label(), instances);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        cpu.advance(&mut batch, EPOCHS).expect("advance");
                    }
                    cpu.sync().expect("sync");
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, epochs);
criterion_main!(benches);
