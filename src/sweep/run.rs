//! The run side of `icq sweep`: checks the grid (figures, memory, the output folder) before
//! any work, runs the units left to run in packed batches on one backend, writes each
//! finished unit's rows at once, then the results files, the manifest and the figures.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::figures::{check_figure_columns, draw_figures, figures_in, Figures};
use super::grid::{expand, Unit};
use super::output::{
    check_foreign_results, check_grid, check_manifests, collect, grid_id, grid_keys, has_parts,
    part_path, record_grid,
};
use super::pack::{check_unit_memory, packs};
use super::shard::Shard;
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::learn::metrics::Metrics;
use crate::records::{num, to_jsonl, Record};
use crate::run::{mean_sd, progress_bar, run_points, work_per_seed, Point, Ticker};

/// How a summary column reads one instance's metrics.
type MetricOf = fn(&Metrics) -> Option<f64>;

/// The rows of one finished unit: per checkpoint, every knob and exact figure, then the mean
/// and standard deviation over instances of each metric.
pub(super) fn unit_rows(unit: &Unit, ctx: &Record, checkpoints: &[Vec<Metrics>]) -> Vec<Record> {
    let metrics: [(&str, MetricOf); 6] = [
        ("q_err", |m| Some(m.q_err)),
        ("q_err_obs", |m| Some(m.q_err_obs)),
        ("q_err_sup", |m| Some(m.q_err_sup)),
        ("policy_gap", |m| m.policy_gap),
        ("mean_tau", |m| Some(m.mean_tau)),
        ("mean_abs_y", |m| Some(m.mean_abs_target)),
    ];
    checkpoints
        .iter()
        .enumerate()
        .map(|(c, ms)| {
            let mut r = Record::default();
            if let Some(study) = &unit.study {
                r.push("study", study.as_str());
            }
            r.push("point", unit.point);
            r.push("checkpoint", c);
            r.push("epoch", ms.first().map_or(0, |m| m.epoch));
            r.extend(ctx);
            for (name, get) in metrics {
                let (mean, sd, n) = mean_sd(ms.iter().filter_map(get));
                r.push(name, if n == 0 { Value::Null } else { num(mean) });
                r.push(
                    &format!("{name}_sd"),
                    if n < 2 { Value::Null } else { num(sd) },
                );
            }
            // The instances those means leave out.
            r.push("diverged", ms.iter().filter(|m| m.diverged()).count());
            r
        })
        .collect()
}

/// What `icq sweep` did.
#[derive(Debug)]
pub struct SweepReport {
    /// Units in the whole grid.
    pub units: usize,
    /// Units this shard runs.
    pub mine: usize,
    /// Of those, units already finished before this call (`--resume`).
    pub skipped: usize,
    /// Batches the units left to run were packed into.
    pub batches: usize,
    /// Rows written to the results files (0 for a shard, whose parts wait for `icq merge`).
    pub rows: usize,
    /// Seconds this call ran.
    pub seconds: f64,
    /// The config's `[[figure]]`s, drawn once the grid is complete.
    pub figures: Figures,
    /// Units run by this call that ended with an instance whose Q-values are not finite
    /// (their rows average the other instances; a metric of no finite instance is null).
    pub diverged: usize,
    /// Units of this shard whose learner samples off the oracle's μ (see
    /// [`LearnerConfig::samples_off_mu`](crate::learn::LearnerConfig::samples_off_mu)).
    pub off_mu: usize,
}

/// Every check `icq sweep` makes of the config at `path` (text `text`) before any work, on the
/// whole grid: every point's settings and model, the figures' columns, each unit's memory and
/// each point's size for the exact oracle. Returns the grid's units (`icq model check`).
pub fn check(text: &str, path: &Path) -> Result<Vec<Unit>> {
    let units = expand(text, path)?;
    check_figure_columns(&figures_in(text, path)?, &units)?;
    let all: Vec<&Unit> = units.iter().collect();
    check_unit_memory(&all)?;
    check_oracle_sizes(&all)?;
    Ok(units)
}

/// Every grid point of `units` fits the exact oracle, checked before the first unit runs: a
/// point beyond its limits would otherwise fail after the points before it.
fn check_oracle_sizes(units: &[&Unit]) -> Result<()> {
    let mut checked = std::collections::BTreeSet::new();
    for unit in units.iter().filter(|u| checked.insert(u.point)) {
        crate::oracle::Oracle::check_size(&unit.input.model).map_err(|e| e.at(unit.place()))?;
    }
    Ok(())
}

/// Runs the sweep of the config at `path` into `out`. A sweep that fails before it writes its
/// first unit leaves no file, and removes the folders it made.
pub fn sweep(
    path: &Path,
    out: &Path,
    shard: Option<Shard>,
    resume: bool,
    backend: Option<&str>,
    progress: bool,
) -> Result<SweepReport> {
    let start = Instant::now();
    // One shard of one is the whole grid: its results are written as an unsharded sweep's.
    let shard = shard.filter(|s| s.n > 1);
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let mut units = expand(&text, path)?;
    let figures = figures_in(&text, path)?;
    if let Some(b) = backend {
        for u in &mut units {
            u.input.config.run.backend = b.to_string();
        }
    }
    check_figure_columns(&figures, &units)?;
    let mine: Vec<&Unit> = units
        .iter()
        .filter(|u| shard.is_none_or(|s| s.takes(u.index)))
        .collect();
    check_unit_memory(&mine)?;
    // The folder is checked here and made with the first file written, so that a sweep
    // stopped before its first unit (Ctrl-C while it trains) leaves no folder behind.
    let made = crate::io::missing_folders(&out.join("parts"));
    crate::io::can_write_dir(out, "--out")?;
    let job = Job {
        path,
        out,
        shard,
        resume,
        progress,
        start,
        text: &text,
        units: &units,
        mine: &mine,
    };
    let done = run_units(&job);
    // A sweep that fails before writing anything leaves no folder it made: removing a folder
    // fails once it holds a file, so what holds a unit's rows or the results stays.
    if done.is_err() {
        crate::io::remove_empty_folders(&made);
    }
    let done = done?;
    // Figures last: results and manifest stand whatever a figure's fate.
    let figures = match shard {
        None => draw_figures(out, &figures),
        Some(_) => Figures::default(),
    };
    Ok(SweepReport {
        units: units.len(),
        mine: mine.len(),
        skipped: mine.len() - done.todo,
        batches: done.batches,
        rows: done.rows,
        seconds: start.elapsed().as_secs_f64(),
        figures,
        diverged: done.diverged,
        off_mu: mine
            .iter()
            .filter(|u| u.input.config.learner.samples_off_mu())
            .count(),
    })
}

/// A sweep checked as far as its units: what [`run_units`] works from.
struct Job<'a> {
    path: &'a Path,
    out: &'a Path,
    shard: Option<Shard>,
    resume: bool,
    progress: bool,
    start: Instant,
    text: &'a str,
    units: &'a [Unit],
    mine: &'a [&'a Unit],
}

/// What [`run_units`] did.
struct Done {
    todo: usize,
    batches: usize,
    rows: usize,
    diverged: usize,
}

/// Checks the output folder of `job`, then runs the units left to run and writes their rows,
/// the results files and the manifest.
fn run_units(job: &Job<'_>) -> Result<Done> {
    let Job {
        path,
        out,
        shard,
        resume,
        progress,
        start,
        text,
        units,
        mine,
    } = *job;
    if shard.is_none() {
        crate::records::rows_fit(out, "results")?;
    }
    // A folder with finished units is checked unit by unit; one without (merged results, or
    // parts/ deleted) by its manifest, whose results this sweep would replace.
    let keys = grid_keys(units);
    let grid = grid_id(&keys);
    let exists = out.is_dir();
    if exists && !has_parts(out) {
        check_manifests(out, text, Some(&grid))?;
    }
    if exists && shard.is_none() {
        check_foreign_results(out)?;
    }
    let mut recorded = check_grid(out, units, &keys)?;
    let todo: Vec<&&Unit> = mine
        .iter()
        .filter(|u| !part_path(out, u.index).exists())
        .collect();
    if !resume && todo.len() < mine.len() {
        return Err(Error::invalid(
            "--out",
            format!(
                "{} already holds results of this sweep: pass --resume to finish it, or choose another folder",
                out.display()
            ),
        ));
    }
    let left: Vec<&Unit> = todo.iter().map(|u| **u).collect();
    check_oracle_sizes(&left)?;
    // One bar over the whole sweep, advancing by instance-epochs trained (so that a batch of
    // many grid points moves it as it runs); the message counts finished units.
    let mut work = 0u64;
    for unit in &todo {
        work += work_per_seed(&unit.input)?;
    }
    let packed = packs(&todo)?;
    // One backend for the whole sweep (units may name theirs only through the shared config),
    // chosen before any file is written.
    let chosen = match todo.first() {
        Some(unit) => Some(crate::backend::Chosen::pick(
            &unit.input.config.run.backend,
        )?),
        None => None,
    };
    let bar = progress_bar(work, progress);
    let mut finished = 0;
    let mut diverged = 0;
    let mut backend_used = String::new();
    for pack in &packed {
        let first = pack[0][0];
        let (backend, why) = chosen.as_ref().expect("chosen for the units to run");
        let seeds: Vec<Vec<u64>> = pack
            .iter()
            .map(|units| units.iter().map(|u| u.seed).collect())
            .collect();
        let places: Vec<String> = pack.iter().map(|units| units[0].place()).collect();
        let points: Vec<Point<'_>> = pack
            .iter()
            .zip(&seeds)
            .zip(&places)
            .map(|((units, seeds), place)| Point {
                input: &units[0].input,
                seeds,
                place: Some(place),
            })
            .collect();
        let running = match pack.len() {
            1 => {
                let parts: Vec<String> = first
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{} seeds {:?}", parts.join(" "), seeds[0])
            }
            n => format!("{n} grid points from point {}", first.point),
        };
        bar.set_message(format!(
            "{finished}/{} units; running {running}",
            todo.len()
        ));
        let ticker = Ticker {
            bar: &bar,
            epochs: false,
        };
        // An error of the whole batch (the backend's) names its grid points.
        let reports = run_points(backend, why.clone(), &points, ticker).map_err(|e| match e {
            Error::At { .. } => e,
            e if pack.len() == 1 => e.at(&places[0]),
            e => {
                let last = pack[pack.len() - 1][0].point;
                e.at(format!(
                    "the batch of sweep grid points {} to {last}",
                    first.point
                ))
            }
        })?;
        for (units, report) in pack.iter().zip(&reports) {
            backend_used = report.backend.clone();
            let per_seed = units[0].input.config.run.instances as usize;
            for (k, unit) in units.iter().enumerate() {
                let own: Vec<Vec<Metrics>> = report
                    .checkpoints
                    .iter()
                    .map(|c| c[k * per_seed..(k + 1) * per_seed].to_vec())
                    .collect();
                let mut ctx = report.context.clone();
                ctx.set("seed", unit.seed);
                if own
                    .last()
                    .is_some_and(|ms| ms.iter().any(Metrics::diverged))
                {
                    diverged += 1;
                }
                let rows = unit_rows(unit, &ctx, &own);
                // The grid is recorded with the first unit, so that the units that follow it
                // are always of a known grid.
                if !recorded {
                    record_grid(out, job.units, &keys)?;
                    recorded = true;
                }
                write_atomically(&part_path(out, unit.index), to_jsonl(&rows).as_bytes())?;
                finished += 1;
            }
        }
    }
    crate::run::finish_bar(&bar, &format!("{finished}/{} units", todo.len()));
    // A shard leaves its parts for `icq merge`; a whole grid writes its results now. Ctrl-C
    // while they are written stops the writing and removes its temporary files; the signal
    // then ends the process (see `StopGuard`) once the manifest that goes with written results
    // is there too, or at once if they were not. It ends it here, before `sweep`'s clean-up of
    // the folders it made, which by now hold the finished units (they stay for `--resume`).
    let stop = shard.is_none().then(crate::io::StopGuard::new);
    let collected = match shard {
        None => Some(collect(&[out.to_path_buf()], out, units.len(), None)?),
        Some(_) => None,
    };
    let rows = collected.as_ref().map_or(0, |c| c.rows);
    let manifest = serde_json::json!({
        "config": text,
        "config_path": path.display().to_string(),
        "icq_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("ICQ_GIT_REVISION").unwrap_or("unknown"),
        // This invocation's backend and wall time (a resume runs only the units left; none
        // ran where the backend is null); `backends`, the rows' backend column.
        "backend": (!backend_used.is_empty()).then_some(backend_used),
        "units": units.len(),
        "grid": grid,
        "shard": shard.map(|s| format!("{}/{}", s.k, s.n)),
        "wall_seconds": start.elapsed().as_secs_f64(),
        "backends": collected.map(|c| c.backends),
    });
    let name = match shard {
        None => "manifest.json".to_string(),
        Some(s) => format!("manifest-shard-{}-of-{}.json", s.k, s.n),
    };
    crate::io::write_atomically_through_stop(
        &out.join(name),
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    drop(stop);
    Ok(Done {
        todo: todo.len(),
        batches: packed.len(),
        rows,
        diverged,
    })
}
