//! Builds the host shim of the CUDA kernels: `kernels/epoch.cu` compiled as plain C++, so its
//! logic runs (and is tested against the CPU reference) on machines without a GPU.

fn main() {
    // The git revision the manifest of a sweep records.
    if let Some(r) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=ICQ_GIT_REVISION={r}");
    }
    // A commit moves the branch HEAD names, not HEAD itself, and a packed branch moves to a
    // loose ref; HEAD's reflog records every such move (in a worktree too, where `.git` is a
    // file). Watched as git names them, and only where they exist: cargo reruns a script on
    // every build for a missing file.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let names = ["HEAD", "logs/HEAD", "packed-refs"].map(String::from);
    for name in names.iter().chain(&branch) {
        let path = git(&["rev-parse", "--git-path", name]);
        if let Some(path) = path.filter(|p| std::path::Path::new(p).is_file()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
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

/// What `git args` prints (trimmed), if git runs, succeeds and prints something.
fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
