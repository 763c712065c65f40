//! Writing files so that a failure never leaves half a file behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file beside it and a rename (see [`Partial`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    Partial::holding(path, bytes)?.keep()
}

/// [`write_atomically`], but a pending stop (see [`StopGuard`]) does not stop it: for a small
/// file that completes what is already written (a sweep's manifest after its results), so
/// that a stop between the two does not leave the one without the other.
pub fn write_atomically_through_stop(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = Partial::create(path)?;
    let written = file
        .file
        .as_mut()
        .expect("open until kept")
        .write_all(bytes);
    written.map_err(|e| file.error(e))?;
    file.keep()
}

/// A file written through a temporary one beside it: [`Partial::keep`] renames it into place,
/// and one dropped before that is removed, so a failure never leaves half a file under the
/// final name. The temporary name is unique to the process, the moment and the call, so
/// processes writing the same path (shards sharing a folder, even with one process id in
/// different containers) never write into one temporary file.
pub struct Partial {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Partial {
    /// Creates the temporary file for `path` (and `path`'s folder if it is missing).
    pub fn create(path: &Path) -> Result<Self> {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let io = |cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        tmp.push(format!(".{}-{call}.partial", unique()));
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    /// The temporary file for `path`, holding `bytes`, not yet under its name: for files that
    /// take their names together ([`Partial::keep`] each) or not at all.
    pub fn holding(path: &Path, bytes: &[u8]) -> Result<Self> {
        let mut file = Self::create(path)?;
        file.write_all(bytes).map_err(|e| file.error(e))?;
        Ok(file)
    }

    /// `cause` as an error writing this file.
    pub fn error(&self, cause: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            cause,
        }
    }

    /// Flushes the file and renames it to its final name.
    pub fn keep(mut self) -> Result<()> {
        let file = self.file.take().expect("a partial file is kept once");
        let kept = file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .and_then(|_| std::fs::rename(&self.tmp, &self.path));
        if kept.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        kept.map_err(|e| self.error(e))
    }
}

impl Write for Partial {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        check_stop()?;
        self.file.as_mut().expect("open until kept").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until kept").flush()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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

/// Checks as [`writable_dir`] does that `dir` can be made and written, and removes again the
/// folders that made (empty ones only): for a command that writes its folder only at its end,
/// so that a run stopped before leaves nothing behind.
pub fn can_write_dir(dir: &Path, flag: &str) -> Result<()> {
    let missing = missing_folders(dir);
    let checked = writable_dir(dir, flag);
    remove_empty_folders(&missing);
    checked
}

/// Checks, before any work, that the file `file` (named by the flag `flag`) can be written
/// in place of nothing the command needs: it is not a folder, not the command's `input`, and
/// its folder can be made and written (the folders made to check are removed again).
pub fn writable_file(file: &Path, flag: &str, input: &Path) -> Result<()> {
    if file.is_dir() {
        return Err(Error::invalid(
            flag,
            format!("{} is a folder, not a file", file.display()),
        ));
    }
    if let (Ok(a), Ok(b)) = (file.canonicalize(), input.canonicalize()) {
        if a == b {
            return Err(Error::invalid(
                flag,
                format!(
                    "{} is the input file: writing it would replace what is read; name another file",
                    file.display()
                ),
            ));
        }
    }
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    can_write_dir(dir, flag)
}

/// `dir` and those of its ancestors that do not exist yet, deepest first: what making `dir`
/// would make.
pub fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    (dir.ancestors())
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Removes the folders of [`missing_folders`], deepest first, as far as they are empty.
pub fn remove_empty_folders(made: &[PathBuf]) {
    for folder in made {
        if std::fs::remove_dir(folder).is_err() {
            break;
        }
    }
}

/// The signal a [`StopGuard`] caught (0: none).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// An error once SIGINT or SIGTERM came while a [`StopGuard`] lives: long writes check it
/// between chunks, and every [`Partial`] fails its next write with it. Its kind is not
/// `Interrupted`, which `write_all` would retry.
pub fn check_stop() -> std::io::Result<()> {
    if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
        return Err(std::io::Error::other("stopped by a signal"));
    }
    Ok(())
}

#[cfg(unix)]
extern "C" fn note_stop(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// While it lives, SIGINT and SIGTERM (Ctrl-C, a scheduler's stop) do not end the process at
/// once: they make [`check_stop`] fail and every [`Partial`]'s next write fail, so that a long
/// write stops at its next check and removes its temporary files on the way out. Dropped, it
/// restores the handlers it replaced and, if a signal came meanwhile, raises it again, so the
/// process ends as that signal would have ended it.
pub struct StopGuard {
    #[cfg(unix)]
    replaced: [libc::sighandler_t; 2],
}

impl StopGuard {
    /// Catches SIGINT and SIGTERM until dropped.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            let handler = note_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
            let catch = |signal| {
                // SAFETY: the handler only stores to an atomic, which is async-signal-safe; a
                // signal the process was started ignoring (a background job's SIGINT) is
                // ignored again.
                unsafe {
                    let replaced = libc::signal(signal, handler);
                    if replaced == libc::SIG_IGN {
                        libc::signal(signal, libc::SIG_IGN);
                    }
                    replaced
                }
            };
            Self {
                replaced: [catch(libc::SIGINT), catch(libc::SIGTERM)],
            }
        }
        #[cfg(not(unix))]
        Self {}
    }
}

impl Default for StopGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: the handlers restored are the ones `signal` returned; raising a signal whose
        // handler is restored ends the process as it would have without the guard.
        unsafe {
            libc::signal(libc::SIGINT, self.replaced[0]);
            libc::signal(libc::SIGTERM, self.replaced[1]);
            let signal = STOP_SIGNAL.swap(0, Ordering::SeqCst);
            if signal != 0 {
                libc::raise(signal);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("icq-io-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A partial file appears under its name only when kept; one dropped before leaves nothing.
    #[test]
    fn partial_files_are_kept_or_gone() {
        let d = scratch("partial");
        let mut kept = Partial::create(&d.join("kept.txt")).unwrap();
        kept.write_all(b"whole").unwrap();
        let mut dropped = Partial::create(&d.join("dropped.txt")).unwrap();
        dropped.write_all(b"half").unwrap();
        assert_eq!(names(&d).len(), 2, "two temporary files while writing");
        kept.keep().unwrap();
        drop(dropped);
        assert_eq!(names(&d), ["kept.txt"]);
        assert_eq!(std::fs::read(d.join("kept.txt")).unwrap(), b"whole");
    }

    /// `can_write_dir` checks a folder it has to make and removes what it made, but never a
    /// folder that was there.
    #[test]
    fn a_checked_folder_is_not_left_behind() {
        let d = scratch("check");
        let deep = d.join("a").join("b");
        can_write_dir(&deep, "--out").unwrap();
        assert!(!d.exists(), "every folder it made is gone");
        std::fs::create_dir_all(&d).unwrap();
        can_write_dir(&deep, "--out").unwrap();
        assert!(d.is_dir() && !d.join("a").exists());
        let file = d.join("file");
        std::fs::write(&file, "x").unwrap();
        let err = can_write_dir(&file.join("sub"), "--out").unwrap_err();
        assert!(err.to_string().contains("--out"), "{err}");
        assert!(d.is_dir() && file.is_file());
    }
}
