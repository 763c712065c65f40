//! Philox in WGSL against the Rust reference: Random123's known answers and a million draws,
//! on whatever adapter wgpu finds (lavapipe in CI). Without one the test says so and skips,
//! unless ICQ_REQUIRE_ADAPTER=1.

mod common;

use icq::backend::gpu::{adapter_required, AdapterChoice, GpuContext};
use icq::backend::sources::{f16_check_wgsl, philox_check_wgsl};
use icq::rng::philox4x32_10;

fn context() -> Option<GpuContext> {
    match GpuContext::new(AdapterChoice::Any) {
        Ok(c) => Some(c),
        Err(e) if !adapter_required() => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("ICQ_REQUIRE_ADAPTER=1 but {e}"),
    }
}

#[test]
fn wgsl_philox_matches_rust() {
    let Some(ctx) = context() else { return };
    eprintln!("adapter: {}", ctx.describe());
    let mut counters: Vec<[u32; 4]> = vec![
        [0, 0, 0, 0],
        [u32::MAX; 4],
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    ];
    let mut keys: Vec<[u32; 2]> = vec![[0, 0], [u32::MAX; 2], [0xa4093822, 0x299f31d0]];
    // 250 000 more blocks (a million draws) over varied counters and keys.
    for i in 0..250_000u32 {
        counters.push([i, i.wrapping_mul(2_654_435_761), i % 7, 0xdead_beef ^ i]);
        keys.push([i ^ 0x5555_aaaa, i.rotate_left(13)]);
    }
    let module = ctx.shader("philox_check", &philox_check_wgsl()).unwrap();
    let pipeline = ctx
        .pipeline("philox_check", &module, "philox_blocks")
        .unwrap();
    let c = ctx.storage("philox.counters", &counters);
    let k = ctx.storage("philox.keys", &keys);
    let out = ctx.storage("philox.blocks", &vec![[0u32; 4]; counters.len()]);
    let bind = ctx.bind("philox", &pipeline, &[&c, &k, &out]);
    ctx.dispatch(
        "philox",
        &pipeline,
        &bind,
        (counters.len() as u32).div_ceil(64),
    );
    let got: Vec<[u32; 4]> = ctx.read_back(&out).unwrap();
    assert_eq!(got[0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(got[1], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(got[2], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    for (i, (ctr, key)) in counters.iter().zip(&keys).enumerate() {
        assert_eq!(
            got[i],
            philox4x32_10(*ctr, *key),
            "block {i}: counter {ctr:x?} key {key:x?}"
        );
    }
}

/// The WGSL kernel's rounding to f16 (shaders/f16.wgsl) is the `half` crate's, bit for bit, on
/// every f16 boundary, tie and subnormal and a million other values.
#[test]
fn wgsl_f16_rounding_matches_half() {
    let Some(ctx) = context() else { return };
    let values = common::f16_rounding_cases();
    let module = ctx.shader("f16_check", &f16_check_wgsl()).unwrap();
    let pipeline = ctx.pipeline("f16_check", &module, "round_all").unwrap();
    let input = ctx.storage("f16.values", &values);
    let out = ctx.storage("f16.rounded", &vec![0f32; values.len()]);
    let bind = ctx.bind("f16", &pipeline, &[&input, &out]);
    ctx.dispatch("f16", &pipeline, &bind, (values.len() as u32).div_ceil(64));
    let got: Vec<f32> = ctx.read_back(&out).unwrap();
    for (x, y) in values.iter().zip(&got) {
        let want = half::f16::from_f32(*x).to_f32();
        assert_eq!(
            y.to_bits(),
            want.to_bits(),
            "{x:e} ({:#010x}): wgsl {y:e}, half {want:e}",
            x.to_bits()
        );
    }
}
