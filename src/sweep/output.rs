//! Output folders: the unit files (`parts/`) and the grid file that ties them to one grid,
//! the manifests, and joining unit files into the results files — for a whole sweep
//! (`collect`) and for shard folders (`merge`, which names whole shards that are missing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::figures::{draw_figures, figures_in, Figures};
use super::grid::Unit;
use super::shard::Shard;
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::records::{write_rows, Record};

pub(super) fn part_path(dir: &Path, unit: usize) -> PathBuf {
    dir.join("parts").join(format!("unit-{unit:06}.jsonl"))
}

/// The grid file of an output folder: one key per unit (see [`unit_key`]).
fn grid_path(dir: &Path) -> PathBuf {
    dir.join("parts").join("grid.json")
}

/// A 64-bit FNV-1a hash (stable across builds and platforms, unlike `std`'s hashers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The version of what a unit's settings give: raised whenever the same settings give other
/// rows (2: embeddings with a stream of their own, Σ|y| per launch on the GPU kernels, the
/// `ais_bound` column; 3: the `interface_error_sup` column, μ's support from the chain's closed
/// classes, the AIS bound's span over visited observations; 4: means over finite values only,
/// the `diverged` column, no policy gap for a diverged instance, μ renormalised each step;
/// 5: the `epochs`, `checkpoints` and `policy_gap_instances` columns, a table's `width` and
/// `depth` null; 6: an instance with a Q-value not finite anywhere, off μ's support too, is
/// diverged), so that a sweep never resumes with rows of an older build.
const RESULTS_VERSION: u32 = 6;

/// What a unit computes, as a hash: the results version, its place in the grid, its seed and
/// axis values, and its whole model, learner and run settings (all but the backend, which
/// `--backend` may change between runs of one sweep).
fn unit_key(unit: &Unit, model: &str) -> String {
    let mut run = unit.input.config.run.clone();
    run.backend.clear();
    let values: Vec<(&str, String)> = unit
        .values
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    let what = serde_json::json!({
        "results": RESULTS_VERSION,
        "index": unit.index,
        "point": unit.point,
        "study": unit.study,
        "seed": unit.seed,
        "values": values,
        "model": model,
        "learner": unit.input.config.learner,
        "run": run,
    });
    format!("{:016x}", fnv1a(what.to_string().as_bytes()))
}

/// Every unit's key (see [`unit_key`]), in grid order.
pub(super) fn grid_keys(units: &[Unit]) -> Vec<String> {
    // The model's text once per grid point (the seeds of a point share it).
    let mut models: BTreeMap<usize, String> = BTreeMap::new();
    units
        .iter()
        .map(|u| {
            let model = models.entry(u.point).or_insert_with(|| {
                serde_json::to_string(&crate::model::ModelFile::from(u.input.model.clone()))
                    .expect("json")
            });
            unit_key(u, model)
        })
        .collect()
}

/// The grid's identity, as a manifest records it: a hash of its units' keys. Two configs with
/// the same identity run the same units (they may differ in comments, layout or figures).
pub(super) fn grid_id(keys: &[String]) -> String {
    format!("{:016x}", fnv1a(keys.join("\n").as_bytes()))
}

/// Whether `dir` holds a finished unit of any sweep (a file [`unit_files`] names).
pub(super) fn has_parts(dir: &Path) -> bool {
    unit_files(dir).is_ok_and(|files| !files.is_empty())
}

/// The unit files of `dir` (`parts/unit-NNNNNN.jsonl`) by index; none where it has no
/// `parts/`.
fn unit_files(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let folder = dir.join("parts");
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(_) => return Ok(Vec::new()),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: folder.clone(),
                cause: source,
            })?
            .path();
        let index = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("unit-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(index) = index {
            found.push((index, path));
        }
    }
    Ok(found)
}

/// Refuses a unit file whose index is past the end of a grid of `units` units: it is no unit
/// of this sweep, and its rows would join the results.
fn check_unit_index(index: usize, path: &Path, units: usize, field: &str) -> Result<()> {
    if index < units {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!(
            "{} is unit {index}, but the grid has {units} units (0 to {}): it is no unit of \
             this sweep; remove it",
            path.display(),
            units - 1
        ),
    ))
}

/// Makes sure the finished units in `dir` (if any) are units of this grid, so that `--resume`
/// (or a shard sharing the folder) can never mix the rows of two sweeps: a unit is known by
/// its index, and the index means something only in its grid. Writes nothing: returns whether
/// `dir` records this grid already ([`record_grid`] records it with the first unit).
pub(super) fn check_grid(dir: &Path, units: &[Unit], keys: &[String]) -> Result<bool> {
    let path = grid_path(dir);
    let version = env!("CARGO_PKG_VERSION");
    let theirs = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            serde_json::from_str::<Value>(&text).map_err(|e| Error::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                path,
                cause: source,
            })
        }
    };
    for (index, file) in unit_files(dir)? {
        check_unit_index(index, &file, units.len(), "--out")?;
    }
    let same = |v: &Value| v["units"] == units.len() && v["keys"] == serde_json::json!(keys);
    if theirs.as_ref().is_some_and(same) {
        return Ok(true);
    }
    if has_parts(dir) {
        let why = match &theirs {
            None => format!(
                "{} holds finished units but no {} to say which sweep they belong to, so \
                 they cannot be checked against this sweep: choose another folder",
                dir.display(),
                path.display()
            ),
            Some(v) => {
                let old: Vec<&str> = v["keys"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let first = (0..units.len().max(old.len()))
                    .find(|&i| old.get(i).copied() != keys.get(i).map(String::as_str));
                let which = match first.filter(|&i| i < old.len()).and_then(|i| units.get(i)) {
                    Some(u) => format!(
                        "; unit {} (point {}, seed {}) is not the same run there",
                        u.index, u.point, u.seed
                    ),
                    None => String::new(),
                };
                let written = match v["icq_version"].as_str() {
                    Some(w) if w != version => {
                        format!("; written by icq {w}, whose settings may differ from {version}'s")
                    }
                    _ => String::new(),
                };
                format!(
                    "{} holds results of another sweep ({} units there, {} here{which}{written}): \
                     choose another folder",
                    dir.display(),
                    v["units"],
                    units.len()
                )
            }
        };
        return Err(Error::invalid("--out", why));
    }
    Ok(false)
}

/// Records the grid in `dir` (`parts/grid.json`), which [`check_grid`] checks the folder's
/// units against.
pub(super) fn record_grid(dir: &Path, units: &[Unit], keys: &[String]) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let ours = serde_json::json!({ "units": units.len(), "keys": keys, "icq_version": version });
    write_atomically(
        &grid_path(dir),
        serde_json::to_string(&ours).expect("json").as_bytes(),
    )
}

/// The shards `k/n` (1-based) of a grid of `units` split `n` ways whose units are exactly the
/// `missing` ones, if they are whole shards: a merge missing whole shards names them.
fn missing_shards(missing: &[usize], units: usize, n: usize) -> Option<Vec<usize>> {
    let mut ks: Vec<usize> = missing.iter().map(|u| u % n).collect();
    ks.sort_unstable();
    ks.dedup();
    let whole = (0..units).filter(|u| ks.contains(&(u % n))).count() == missing.len();
    (whole && ks.len() < n).then(|| ks.iter().map(|k| k + 1).collect())
}

/// Reads the part files of `dirs`, checks each unit appears once (and, for a whole grid, that
/// none is missing), and writes `out/results.csv`, `out/results.jsonl` and
/// `out/results.parquet` in unit order.
pub fn collect(
    dirs: &[PathBuf],
    out: &Path,
    units: usize,
    shard: Option<Shard>,
) -> Result<Collected> {
    let mut parts: BTreeMap<usize, (PathBuf, Vec<Record>)> = BTreeMap::new();
    for dir in dirs {
        for (index, path) in unit_files(dir)? {
            check_unit_index(index, &path, units, "parts")?;
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })?;
            // Each line is parsed alone, so serde's position is within the line: the line's
            // own number goes in the message, with what to do about a damaged unit.
            let rows = text
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    let v: serde_json::Map<String, Value> =
                        serde_json::from_str(l).map_err(|e| Error::Parse {
                            path: path.clone(),
                            message: format!(
                                "line {} is not a whole row ({}, column {}): the unit file is \
                                 damaged; remove it and run its sweep again with --resume",
                                i + 1,
                                e.to_string().split(" at line ").next().unwrap_or_default(),
                                e.column()
                            ),
                        })?;
                    Ok(Record(v.into_iter().collect()))
                })
                .collect::<Result<Vec<_>>>()?;
            if rows.is_empty() {
                return Err(Error::invalid(
                    "parts",
                    format!(
                        "{} is empty (a finished unit has a row per checkpoint): remove it and \
                         run its sweep again with --resume",
                        path.display()
                    ),
                ));
            }
            if let Some((first, _)) = parts.get(&index) {
                return Err(Error::invalid(
                    "merge",
                    format!(
                        "unit {index} appears twice: {} and {}",
                        first.display(),
                        path.display()
                    ),
                ));
            }
            parts.insert(index, (path, rows));
        }
    }
    let expected: Vec<usize> = (0..units)
        .filter(|&u| shard.is_none_or(|s| s.takes(u)))
        .collect();
    let missing: Vec<usize> = expected
        .iter()
        .copied()
        .filter(|u| !parts.contains_key(u))
        .collect();
    if !missing.is_empty() {
        // The shard count, from the folders' shard manifests (`manifest-shard-k-of-n.json`).
        let n = dirs.iter().find_map(|d| {
            manifests(d).ok()?.into_iter().find_map(|(path, _)| {
                let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
                name.split("-of-").nth(1)?.parse::<usize>().ok()
            })
        });
        let shards = n
            .filter(|&n| n > 1)
            .and_then(|n| Some((missing_shards(&missing, units, n)?, n)))
            .map(|(ks, n)| {
                let ks: Vec<String> = ks.iter().map(|k| format!("{k}/{n}")).collect();
                format!(": the units of shard {}", ks.join(", "))
            })
            .unwrap_or_default();
        return Err(Error::invalid(
            "merge",
            format!(
                "{} of {} units have no results yet (first: unit {}){shards}",
                missing.len(),
                expected.len(),
                missing[0]
            ),
        ));
    }
    let rows: Vec<Record> = parts.into_values().flat_map(|(_, rows)| rows).collect();
    write_rows(out, "results", &rows)?;
    Ok(Collected {
        backends: backends_of(&rows),
        rows: rows.len(),
    })
}

/// What [`collect`] wrote.
pub struct Collected {
    /// Rows written.
    pub rows: usize,
    /// The values of their `backend` column, each once, in the order first seen: more than
    /// one when a `--resume` (or a shard) ran on another backend.
    pub backends: Vec<String>,
}

/// The values of the `backend` column of `rows`, each once, in the order first seen.
fn backends_of(rows: &[Record]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        if let Some(Value::String(b)) = r.get("backend") {
            if !seen.contains(b) {
                seen.push(b.clone());
            }
        }
    }
    seen
}

/// The sweep manifests (`manifest*.json`) in `dir`, each parsed: the document, or the reason
/// it is not one (unreadable or not JSON).
fn manifests(dir: &Path) -> Result<Vec<(PathBuf, Result<Value>)>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        cause: source,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("manifest") && name.ends_with(".json")) {
            continue;
        }
        let doc = std::fs::read_to_string(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })
            .and_then(|text| {
                serde_json::from_str(&text).map_err(|e| Error::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })
            });
        found.push((path, doc));
    }
    Ok(found)
}

/// The error of an `--out` that already holds `what`.
fn already_holds(out: &Path, what: &str) -> Error {
    Error::invalid(
        "--out",
        format!(
            "{} already holds {what}: choose another folder",
            out.display()
        ),
    )
}

/// Whether the manifest `m` is of the sweep of `config`, whose grid is `grid`: by the grid it
/// records, or by its config's text when it records none (written before manifests did).
fn same_sweep(m: &Value, config: &str, grid: Option<&str>) -> bool {
    match (m["grid"].as_str(), grid) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => m["config"].as_str() == Some(config),
    }
}

/// Refuses an `out` whose manifest is another sweep's: its results files are that sweep's.
pub(super) fn check_manifests(out: &Path, config: &str, grid: Option<&str>) -> Result<()> {
    for (path, doc) in manifests(out)? {
        if !doc.is_ok_and(|m| same_sweep(&m, config, grid)) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            return Err(already_holds(
                out,
                &format!("the results of a sweep of another config ({name})"),
            ));
        }
    }
    Ok(())
}

/// Refuses an `out` holding results files (`results.csv`, `.jsonl`, `.parquet`) that are no
/// sweep's: without a manifest or unit files, they are the user's own, which the results
/// would overwrite. A sweep's folder is checked by its manifest and its grid instead.
pub(super) fn check_foreign_results(out: &Path) -> Result<()> {
    if out.join("parts").is_dir() || !manifests(out)?.is_empty() {
        return Ok(());
    }
    for ext in ["csv", "jsonl", "parquet"] {
        let path = out.join(format!("results.{ext}"));
        if path.exists() {
            return Err(Error::invalid(
                "--out",
                format!(
                    "{} is there and is no sweep's (no manifest, no parts/), so the results \
                     would overwrite it: choose another folder, or move it away",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `a` and `b` name one folder (compared as written where either cannot be resolved).
fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Refuses an `out` of `merge` that holds another sweep's work: a manifest of another config,
/// or unit files (`parts/`) when `out` is not one of the merged folders. Merging again into
/// the same folder rewrites the same files.
fn check_merge_out(dirs: &[PathBuf], out: &Path, config: &str, grid: Option<&str>) -> Result<()> {
    let refuse = |what: &str| Err(already_holds(out, what));
    check_manifests(out, config, grid)?;
    check_foreign_results(out)?;
    if out.join("parts").exists() && !dirs.iter().any(|d| same_folder(d, out)) {
        return refuse("a sweep's unit files (parts/) and is not one of the merged folders");
    }
    Ok(())
}

/// Joins the shard folders `dirs` into `out`: every unit of the grid exactly once, the same
/// results files an unsharded sweep writes, a manifest, and the sweep's figures. Returns the
/// number of rows and what became of the figures.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(usize, Figures)> {
    for dir in dirs {
        let why = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => "is a file, not a sweep's folder".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
            Err(e) => format!("cannot be read ({e})"),
        };
        return Err(Error::invalid(
            "merge",
            format!(
                "{} {why}: name the folders of the sweep's shards",
                dir.display()
            ),
        ));
    }
    for (i, dir) in dirs.iter().enumerate() {
        if let Some(first) = dirs[..i].iter().find(|d| same_folder(d, dir)) {
            return Err(Error::invalid(
                "merge",
                format!(
                    "{} is given twice (as {} too): name each folder once",
                    dir.display(),
                    first.display()
                ),
            ));
        }
    }
    // The first manifest's units, config and grid; every other must be of the same sweep.
    let mut sweep: Option<(u64, String, Option<String>)> = None;
    for dir in dirs {
        for (path, doc) in manifests(dir)? {
            let m = doc?;
            let units = m["units"].as_u64().unwrap_or(0);
            match &sweep {
                None => {
                    let config = m["config"].as_str().unwrap_or("").to_string();
                    let grid = m["grid"].as_str().map(str::to_string);
                    sweep = Some((units, config, grid));
                }
                Some((u, c, g)) if *u != units || !same_sweep(&m, c, g.as_deref()) => {
                    return Err(Error::invalid(
                        "merge",
                        format!(
                            "{} belongs to another sweep (its config or grid differs)",
                            path.display()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let (units, config, grid) =
        sweep.ok_or_else(|| Error::invalid("merge", "no sweep manifest in the given folders"))?;
    // A merge refused (another sweep's folder, units missing) or stopped by Ctrl-C removes
    // the folders it made; a stop removes its temporary files first, then the signal ends
    // the process (see `StopGuard`).
    let made = crate::io::missing_folders(out);
    crate::io::writable_dir(out, "--out")?;
    let stop = crate::io::StopGuard::new();
    let collected = crate::records::rows_fit(out, "results")
        .and_then(|()| check_merge_out(dirs, out, &config, grid.as_deref()))
        .and_then(|()| collect(dirs, out, units as usize, None))
        .inspect_err(|_| crate::io::remove_empty_folders(&made));
    // A stop ends the process now if the results were not written, else once the manifest
    // that goes with them is written (below).
    let collected = collected?;
    let rows = collected.rows;
    let figures = figures_in(&config, Path::new("manifest.json"))?;
    let manifest = serde_json::json!({
        "config": config,
        "icq_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("ICQ_GIT_REVISION").unwrap_or("unknown"),
        "units": units,
        "grid": grid,
        "merged_from": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "backends": collected.backends,
    });
    crate::io::write_atomically_through_stop(
        &out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    drop(stop);
    Ok((rows, draw_figures(out, &figures)))
}

#[cfg(test)]
mod tests {
    /// Whole shards missing from a merge are named; units that are not a whole shard are not.
    #[test]
    fn missing_shards_are_whole_shards_only() {
        use super::missing_shards;
        assert_eq!(missing_shards(&[2, 5, 8, 11], 12, 3), Some(vec![3]));
        assert_eq!(missing_shards(&[0, 1, 3, 4], 6, 3), Some(vec![1, 2]));
        assert_eq!(missing_shards(&[5], 12, 3), None);
        assert_eq!(
            missing_shards(&[0, 1, 2], 3, 3),
            None,
            "every shard is not a few"
        );
    }
}
