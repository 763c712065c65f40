//! The CUDA sources on machines without a GPU: Philox of kernels/philox.cuh (host build)
//! against Random123's vectors and the Rust generator, and every kernel variant compiled to PTX
//! by NVRTC (with the `cuda` feature; CI installs NVRTC and sets ICQ_REQUIRE_NVRTC=1 so that
//! an NVRTC that cannot be loaded fails rather than skips).

use icq::backend::cuda_host::{f16_host, philox_blocks};
mod common;

#[cfg(feature = "cuda")]
use icq::backend::device::KernelShape;
use icq::rng::philox4x32_10;

/// The host build's f16 rounding (the kernel's, under ICQ_F16) is the `half` crate's — round
/// to nearest, ties to even — on every f16 boundary and its neighbours, the subnormals,
/// overflow and a million values spread over every exponent; and reading f16 back is exact.
#[test]
fn cuda_host_f16_rounding_matches_half() {
    let values = common::f16_rounding_cases();
    let (bits, back) = f16_host(&values);
    for (i, &x) in values.iter().enumerate() {
        let want = half::f16::from_f32(x);
        assert_eq!(bits[i], want.to_bits(), "f32 {x:e} ({:#010x})", x.to_bits());
        assert_eq!(
            back[i].to_bits(),
            want.to_f32().to_bits(),
            "back from {:#06x}",
            bits[i]
        );
    }
}

#[test]
fn cuda_philox_matches_rust() {
    let mut counters: Vec<[u32; 4]> = vec![
        [0; 4],
        [u32::MAX; 4],
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    ];
    let mut keys: Vec<[u32; 2]> = vec![[0; 2], [u32::MAX; 2], [0xa4093822, 0x299f31d0]];
    for i in 0..250_000u32 {
        counters.push([i, i.wrapping_mul(2_654_435_761), i % 7, 0xdead_beef ^ i]);
        keys.push([i ^ 0x5555_aaaa, i.rotate_left(13)]);
    }
    let got = philox_blocks(&counters, &keys);
    assert_eq!(got[0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(got[1], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(got[2], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    for (i, (c, k)) in counters.iter().zip(&keys).enumerate() {
        assert_eq!(got[i], philox4x32_10(*c, *k), "block {i}");
    }
}

/// Whether NVRTC can be loaded; without it the caller skips (a failure under
/// `ICQ_REQUIRE_NVRTC=1`).
#[cfg(feature = "cuda")]
fn nvrtc_ready() -> bool {
    if icq::backend::cuda::nvrtc_available() {
        return true;
    }
    if std::env::var("ICQ_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
        panic!("ICQ_REQUIRE_NVRTC=1 but NVRTC cannot be loaded (is its lib folder on LD_LIBRARY_PATH?)");
    }
    eprintln!("skipped: NVRTC cannot be loaded");
    false
}

/// The size of the `epochs` kernel's local-memory frame, from its PTX declaration
/// `.local .align A .b8 __local_depot0[N];` (0 when it has none).
#[cfg(feature = "cuda")]
fn local_depot_bytes(ptx: &str) -> u32 {
    ptx.split("__local_depot0[")
        .nth(1)
        .map(|rest| {
            rest[..rest.find(']').expect("a closing bracket")]
                .parse()
                .expect("a size")
        })
        .unwrap_or(0)
}

#[cfg(feature = "cuda")]
#[test]
fn every_kernel_variant_compiles_to_ptx() {
    use icq::backend::cuda::compile_epoch_in;
    if !nvrtc_ready() {
        return;
    }
    // Tabular (width 1), and MLP widths, for a few action counts (past eight the Q-values are
    // not unrolled), f32 parameters for two target architectures and f16 ones for one.
    for (width, actions) in [(1, 3), (32, 3), (64, 2), (128, 8), (32, 12)] {
        for f16 in [false, true] {
            let archs: &[_] = if f16 {
                &[Some("compute_80")]
            } else {
                &[Some("compute_80"), Some("compute_90")]
            };
            for &arch in archs {
                let shape = KernelShape {
                    width,
                    actions,
                    f16,
                };
                let ptx = compile_epoch_in(shape, arch, None)
                    .unwrap_or_else(|e| panic!("{shape:?}/{arch:?}: {e}"));
                assert!(
                    ptx.contains(".entry epochs"),
                    "no `epochs` entry in the PTX of {shape:?}"
                );
                // f16 storage: 16-bit loads and stores of the parameters, converted in registers.
                assert_eq!(
                    ptx.contains("cvt.rn.f16.f32"),
                    f16,
                    "{shape:?}: f16 conversions"
                );
                // Local memory holds the hidden layers and their gradients (four f32 arrays of
                // the width), and past eight actions the Q-values, and nothing else: the rest
                // of the per-thread context is in registers. A context that fell back to local
                // memory whole (as it did before, 816 bytes at width 32) would show here.
                let local = 16 * width + if actions > 8 { 4 * actions } else { 0 };
                assert_eq!(
                    local_depot_bytes(&ptx),
                    local,
                    "{shape:?}/{arch:?}: bytes of local memory per thread"
                );
            }
        }
    }
}

#[cfg(feature = "cuda")]
#[test]
fn compiled_ptx_is_cached_on_disk_under_its_whole_key() {
    use icq::backend::cuda::{compile_epoch_in, ptx_cache_file};
    if !nvrtc_ready() {
        return;
    }
    let root = std::env::temp_dir().join(format!("icq-ptx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
    let arch = Some("compute_80");
    let shape = KernelShape {
        width: 24,
        actions: 3,
        f16: false,
    };
    // A first compile writes the file, holding its key (the source among it) and the PTX.
    let ptx = compile_epoch_in(shape, arch, Some(&a)).unwrap();
    let file = ptx_cache_file(&a, shape, arch);
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains("#define ICQ_WIDTH 24") && stored.contains(&ptx));
    // A later process reads it instead of compiling: a marked copy is what comes back.
    std::fs::create_dir_all(&b).unwrap();
    let marked = stored.replace(".entry epochs", ".entry epochs // from the cache");
    std::fs::write(ptx_cache_file(&b, shape, arch), &marked).unwrap();
    let read = compile_epoch_in(shape, arch, Some(&b)).unwrap();
    assert!(read.contains("// from the cache"));
    // A file of the same name whose key differs (another source) is not trusted.
    std::fs::create_dir_all(&c).unwrap();
    let wrong = marked.replace("#define ICQ_WIDTH 24", "#define ICQ_WIDTH 25");
    std::fs::write(ptx_cache_file(&c, shape, arch), wrong).unwrap();
    let fresh = compile_epoch_in(shape, arch, Some(&c)).unwrap();
    assert!(!fresh.contains("// from the cache"));
    assert_eq!(
        std::fs::read_to_string(ptx_cache_file(&c, shape, arch)).unwrap(),
        stored
    );
    let _ = std::fs::remove_dir_all(&root);
}
