//! Builds the host shim of the CUDA kernels: `kernels/epoch.cu` compiled as plain C++, so its
//! logic runs (and is tested against the CPU reference) on machines without a GPU.

fn main() {
    println!("cargo:rerun-if-changed=kernels/epoch.cu");
    println!("cargo:rerun-if-changed=kernels/philox.cuh");
    cc::Build::new()
        .cpp(true)
        .flag("-xc++")
        .flag_if_supported("-ffp-contract=off")
        .flag_if_supported("-Wno-unused-function")
        .opt_level(2)
        .file("kernels/epoch.cu")
        .compile("icq_cuda_host");
}
