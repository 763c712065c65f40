//! Builds the host shim of the CUDA kernels: `kernels/epoch.cu` compiled as plain C++, so its
//! logic runs (and is tested against the CPU reference) on machines without a GPU.

fn main() {
    // The git revision the manifest of a sweep records.
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(r) = revision {
        println!("cargo:rustc-env=ICQ_GIT_REVISION={r}");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=kernels/epoch.cu");
    println!("cargo:rerun-if-changed=kernels/philox.cuh");
    // Twice: f32 parameters, and f16 ones (`-DICQ_F16`, entry points of their own).
    for (library, f16) in [("icq_cuda_host", false), ("icq_cuda_host_f16", true)] {
        let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let mut build = cc::Build::new();
        build
            .out_dir(out.join(library))
            .cpp(true)
            .flag("-xc++")
            .flag_if_supported("-ffp-contract=off")
            .flag_if_supported("-Wno-unused-function")
            .opt_level(2)
            .file("kernels/epoch.cu");
        if f16 {
            build.define("ICQ_F16", None);
        }
        build.compile(library);
    }
}
