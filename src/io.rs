//! Writing files so that a failure never leaves half a file behind.

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file beside it and a rename. The temporary
/// name is unique to the process, the moment and the call, so processes writing the same path
/// (shards sharing a folder, even with one process id in different containers) never write
/// into one temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tmp.push(format!(".{}-{call}.partial", unique()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// The memory the system could give this process now, in bytes: `MemAvailable` of
/// `/proc/meminfo`, or less where the process's control group (a container, a Slurm job) has
/// a limit: its limit less its usage (cgroup v2 `memory.max` and `memory.current`, v1
/// `memory.limit_in_bytes` and `memory.usage_in_bytes`). `None` where nothing says.
pub fn available_memory() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let system = read("/proc/meminfo").and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let groups = read("/proc/self/cgroup").unwrap_or_default();
    // The group's path under each hierarchy ("0::/PATH" for v2, "N:memory:/PATH" for v1).
    let path = |prefix: &str| {
        groups.lines().find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            rest.strip_prefix(prefix)
                .map(|p| p.trim_end_matches('/').to_string())
        })
    };
    // "max" (no limit) does not parse.
    let number = |file: &str| read(file)?.trim().parse::<u64>().ok();
    let left = |base: &str, path: Option<String>, limit: &str, usage: &str| {
        // The group's own folder, or the mount's root where the group is that (a namespace).
        let dirs = path
            .map(|p| format!("{base}{p}"))
            .into_iter()
            .chain([base.into()]);
        dirs.into_iter().find_map(|dir| {
            let max = number(&format!("{dir}/{limit}"))?;
            Some(max.saturating_sub(number(&format!("{dir}/{usage}")).unwrap_or(0)))
        })
    };
    let v2 = left("/sys/fs/cgroup", path(":"), "memory.max", "memory.current");
    let v1 = left(
        "/sys/fs/cgroup/memory",
        path("memory:"),
        "memory.limit_in_bytes",
        "memory.usage_in_bytes",
    );
    [system, v2, v1].into_iter().flatten().min()
}

/// Refuses, before any allocation, `instances` instances of `bytes_each` bytes of host memory
/// (`what` they hold) when together they need more than the system has available, naming
/// `field`: an allocation that fails later would abort the process instead.
pub fn check_memory(instances: u64, bytes_each: u64, what: &str, field: &str) -> Result<()> {
    let needed = instances.saturating_mul(bytes_each);
    match available_memory() {
        Some(available) if needed > available => Err(Error::invalid(
            field,
            format!(
                "{instances} instances need about {} of memory ({bytes_each} bytes each: {what}), \
                 more than the {} available",
                gigabytes(needed),
                gigabytes(available)
            ),
        )),
        _ => Ok(()),
    }
}

/// `bytes` in GB with three significant digits.
fn gigabytes(bytes: u64) -> String {
    let gb = bytes as f64 / 1e9;
    let decimals = if gb >= 100.0 {
        0
    } else if gb >= 10.0 {
        1
    } else {
        2
    };
    format!("{gb:.decimals$} GB")
}

/// Makes `dir` (named by the flag `flag`) a folder icq can write to, or says why it cannot:
/// checked before any work, so that a long run does not fail at its end.
pub fn writable_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::invalid(
            flag,
            format!("{} is a file, not a folder", dir.display()),
        ));
    }
    let cannot = |e: std::io::Error| {
        Error::invalid(flag, format!("{} cannot be written: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    let probe = dir.join(format!(".icq-probe-{}", unique()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(cannot)?;
    match std::fs::remove_file(&probe) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(cannot(e)),
        _ => Ok(()),
    }
}

/// A name part no other process writing the same folder uses at the same time: the process
/// id and the clock's nanoseconds (containers sharing a volume often share process ids).
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}
