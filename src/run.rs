//! `icq run`: one model, one learner, B instances on one backend, metrics at checkpoints
//! against the oracle, a summary table, and every checkpoint of every instance as a record.

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::backend::{Backend, Chosen};
use crate::config::Input;
use crate::error::{Error, Result};
use crate::learn::metrics::{checkpoint_metrics, Metrics};
use crate::learn::plan::{BatchPlan, Plan};
use crate::learn::{Network, StepSize};
use crate::oracle::{Analysis, Oracle, OracleOptions};
use crate::records::{num, Record};
use serde_json::Value;

/// What a run produced.
pub struct RunReport {
    /// The knobs and exact figures of the run (see [`context`]).
    pub context: Record,
    /// The seed of each block of `per_seed` instances.
    pub seeds: Vec<u64>,
    /// Instances per seed.
    pub per_seed: u32,
    /// Per checkpoint: every instance's metrics.
    pub checkpoints: Vec<Vec<Metrics>>,
    /// The oracle's analysis.
    pub analysis: Analysis,
    /// Backend name and why it was chosen.
    pub backend: String,
    /// The backend's short name (`cpu`, `wgpu`, `cuda`).
    pub backend_name: &'static str,
    /// Training wall time (seconds, excluding the oracle and metrics) of the whole batch this
    /// config ran in.
    pub train_seconds: f64,
    /// Handoff updates per second over training, of the whole batch.
    pub updates_per_second: f64,
}

impl RunReport {
    /// How many (checkpoint, instance) records the run has.
    pub fn row_count(&self) -> usize {
        self.checkpoints.iter().map(Vec::len).sum()
    }

    /// The (checkpoint, instance) records numbered `range` in checkpoint-major order: the run's
    /// knobs and exact figures, the instance's seed and its metrics (built on demand: a sweep
    /// keeps only its summaries, and `icq run --out` writes a chunk at a time).
    pub fn rows(&self, range: std::ops::Range<usize>) -> Vec<Record> {
        let mut rows = Vec::with_capacity(range.len());
        let seeded: Vec<Record> = (self.seeds.iter())
            .map(|&seed| {
                let mut r = self.context.clone();
                r.set("seed", seed);
                r
            })
            .collect();
        let mut first = 0;
        for (c, metrics) in self.checkpoints.iter().enumerate() {
            let within = |i: usize| i.saturating_sub(first).min(metrics.len());
            for b in within(range.start)..within(range.end) {
                let mut r = seeded[b / self.per_seed as usize].clone();
                r.extend(&metrics_record(c, &metrics[b]));
                rows.push(r);
            }
            first += metrics.len();
        }
        rows
    }
}

/// A progress bar on stderr over `work` steps (instance-epochs), or a hidden one.
pub fn progress_bar(work: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(work), draw_target());
    // A log gets plain text: no spinner glyph, no bar drawn in block characters.
    let template = if std::io::stderr().is_terminal() {
        "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg} eta {eta}"
    } else {
        "[{elapsed_precise}] {percent}% {msg} eta {eta}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

/// Ends a bar of [`progress_bar`]: cleared from a terminal; in a log, where the lines come
/// only now and then and may have stopped anywhere, one last line says `done` (the work's
/// whole, `[elapsed] 100% done`).
pub fn finish_bar(bar: &ProgressBar, done: &str) {
    let in_log = !bar.is_hidden() && !std::io::stderr().is_terminal();
    let seconds = bar.elapsed().as_secs();
    bar.finish_and_clear();
    if in_log {
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        eprintln!("[{h:02}:{m:02}:{s:02}] 100% {done}");
    }
}

/// A spinner with the time elapsed, for work of no known length (the exact oracle); shown
/// only with `show` on a terminal (in a log, a line saying the oracle started is noise).
pub fn spinner(message: &str, show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("a valid template"),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Where bars draw: stderr where it is a terminal; else (a batch job's log) a line now and
/// then, every `ICQ_PROGRESS_SECONDS` seconds (default 30; 0 for none).
fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        return ProgressDrawTarget::stderr();
    }
    let every = match std::env::var("ICQ_PROGRESS_SECONDS") {
        Err(_) => 30.0,
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s,
            _ => {
                eprintln!(
                    "warning: ICQ_PROGRESS_SECONDS={v:?} is not a number of seconds ≥ 0: progress lines every 30 s"
                );
                30.0
            }
        },
    };
    if every == 0.0 {
        return ProgressDrawTarget::hidden();
    }
    ProgressDrawTarget::term_like(Box::new(LogLines {
        every: Duration::from_secs_f64(every),
        state: Mutex::new(LogState::default()),
    }))
}

/// A bar drawn into a log: its line, whole, at most once per `every` (the first at once).
#[derive(Debug)]
struct LogLines {
    every: Duration,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    /// When a line was last written.
    last: Option<Instant>,
    /// The line being drawn.
    line: String,
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.line.push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = std::mem::take(&mut state.line);
        let due = state.last.is_none_or(|t| t.elapsed() >= self.every);
        if due && !line.trim().is_empty() {
            state.last = Some(Instant::now());
            let mut err = std::io::stderr().lock();
            writeln!(err, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// What the oracle's spinner says.
pub const ORACLE_MESSAGE: &str = "exact oracle: Q*, μ, t_mix, spectral gap, interface gap";

/// Instance-epochs a config trains per seed (what a progress bar counts).
pub fn work_per_seed(input: &Input) -> Result<u64> {
    let run = &input.config.run;
    let epochs = run.checkpoint_epochs()?.last().copied().unwrap_or(0);
    Ok(u64::from(epochs) * u64::from(run.instances))
}

/// Relative tolerance of the exact policy evaluations behind `policy_gap`.
const POLICY_TOLERANCE: f64 = 1e-10;

/// The knobs and exact figures every record of this run carries.
pub fn context(input: &Input, analysis: &Analysis, backend: &str) -> Record {
    let mut r = knobs(input, backend);
    for (name, value) in EXACT {
        r.push(name, value(analysis));
    }
    for (name, value) in pipeline_fields(input, analysis.pipeline_policy_gap) {
        r.push(name, value);
    }
    r
}

/// The columns of [`context`], known before the oracle runs, each with its value where that
/// is known too (every knob, and the pipeline's columns when no pipeline is set: both null),
/// `None` where the oracle gives it.
pub fn context_columns(input: &Input) -> Vec<(String, Option<Value>)> {
    let knobs = knobs(input, "").0.into_iter().map(|(k, v)| (k, Some(v)));
    let exact = EXACT.iter().map(|(k, _)| (k.to_string(), None));
    let set = input.config.run.pipeline.is_some();
    let pipeline = pipeline_fields(input, None).map(|(k, v)| (k.to_string(), (!set).then_some(v)));
    knobs.chain(exact).chain(pipeline).collect()
}

/// The columns of the fixed handoff order of `[run] pipeline` (as text) and of its exact
/// policy gap: the last of the context, and empty in every row without a pipeline.
pub const PIPELINE_COLUMNS: [&str; 2] = ["pipeline", "pipeline_policy_gap"];

/// The fields of [`PIPELINE_COLUMNS`] (both null without a pipeline).
fn pipeline_fields(input: &Input, gap: Option<f64>) -> [(&'static str, Value); 2] {
    let order = input.config.run.pipeline.as_ref();
    let [order_column, gap_column] = PIPELINE_COLUMNS;
    [
        (
            order_column,
            order.map_or(Value::Null, |p| format!("{p:?}").into()),
        ),
        (gap_column, gap.map_or(Value::Null, num)),
    ]
}

/// The knobs of a run: its model, learner and run settings.
fn knobs(input: &Input, backend: &str) -> Record {
    let mut r = Record::default();
    let m = &input.config.model;
    match &m.file {
        Some(f) => r.push("model_file", f.display().to_string()),
        None => {
            let k = m.synthetic();
            r.push(
                "builder",
                m.builder.clone().unwrap_or_else(|| "synthetic".into()),
            );
            r.push("agents", k.agents);
            r.push("artifact_states", k.artifact_states);
            r.push("interface_states", k.interface_states);
            r.push("private_states", k.private_states);
            r.push("gamma", num(k.gamma));
            r.push("duration", k.duration.label());
            r.push("mean_duration", num(k.duration.mean()));
            r.push("laziness", num(k.laziness));
            r.push("interface_noise", num(k.interface_noise));
            r.push("private_weight", num(k.private_weight));
            r.push("reward_scale", num(k.reward_scale));
            r.push("model_seed", k.model_seed);
        }
    }
    let l = &input.config.learner;
    r.push("mode", l.mode.label());
    r.push("encoding", l.encoding.label());
    r.push("network", l.network.label());
    // A table has no width or depth: null, not 0, which a log axis would have to leave out.
    let (width, depth) = match l.network {
        Network::Tabular => (Value::Null, Value::Null),
        Network::Mlp { width, depth } => (width.into(), depth.into()),
    };
    r.push("width", width);
    r.push("depth", depth);
    r.push("step_size", l.step_size.label());
    let alpha = match l.step_size {
        StepSize::Constant { alpha }
        | StepSize::InverseSqrt { alpha }
        | StepSize::Inverse { alpha, .. } => alpha,
    };
    r.push("alpha", num(alpha));
    r.push("clip", l.clip.map_or(serde_json::Value::Null, num));
    r.push("behavior", l.behavior.label());
    r.push("sampler", l.sampler.label());
    r.push("weights", l.weights.label());
    let run = &input.config.run;
    r.push("instances", run.instances);
    r.push("epochs", run.epochs);
    let checkpoints = run
        .checkpoint_epochs()
        .map_or(Value::Null, |c| c.len().into());
    r.push("checkpoints", checkpoints);
    r.push(
        "policy_gap_instances",
        run.policy_gap_instances.min(run.instances),
    );
    r.push("seed", run.seed);
    r.push("backend", backend);
    r
}

/// How one exact figure of a record comes from the oracle's analysis.
type ExactOf = fn(&Analysis) -> Value;

/// The mixing of the configured sampler (the trajectory's when the sampler is `trajectory`).
fn sampler_mixing(a: &Analysis) -> &crate::oracle::Mixing {
    a.sampler_mixing.as_ref().unwrap_or(&a.mixing)
}

/// The exact figures of a record, in column order.
const EXACT: &[(&str, ExactOf)] = &[
    ("eps_phi", |a| num(a.eps_phi)),
    ("delta_phi", |a| num(a.delta_phi)),
    ("eps_plus_delta", |a| num(a.eps_phi + a.delta_phi)),
    ("t_mix", |a| sampler_mixing(a).t_mix.into()),
    ("spectral_gap", |a| num(sampler_mixing(a).spectral_gap)),
    ("t_mix_trajectory", |a| a.mixing.t_mix.into()),
    ("interface_term", |a| num(a.interface_term)),
    ("ais_bound", |a| num(a.ais_bound())),
    ("interface_error_sup", |a| num(a.interface_error_sup())),
    ("q_star_norm", |a| num(a.q_star_norm)),
    ("beta", |a| num(a.beta)),
    ("mean_discount", |a| {
        num(a.option_discount.iter().sum::<f64>() / a.option_discount.len() as f64)
    }),
    ("v_star", |a| num(a.v_star_initial)),
    ("uniform_policy_gap", |a| num(a.uniform_policy_gap)),
];

/// The record of one instance at one checkpoint.
pub fn metrics_record(checkpoint: usize, m: &Metrics) -> Record {
    let mut r = Record::default();
    r.push("checkpoint", checkpoint);
    r.push("epoch", m.epoch);
    r.push("instance", m.instance);
    r.push("q_err", num(m.q_err));
    r.push("q_err_obs", num(m.q_err_obs));
    r.push("q_err_sup", num(m.q_err_sup));
    r.push(
        "policy_gap",
        m.policy_gap.map_or(serde_json::Value::Null, num),
    );
    r.push("mean_tau", num(m.mean_tau));
    r.push("mean_abs_y", num(m.mean_abs_target));
    for (u, &n) in m.updates.iter().enumerate() {
        r.push(&format!("updates_{u}"), n);
    }
    r
}

/// Runs the config of `input`; `progress` shows a bar on stderr.
pub fn run(input: &Input, progress: bool) -> Result<RunReport> {
    let (chosen, why) = Chosen::pick(&input.config.run.backend)?;
    run_chosen(&chosen, why, input, progress)
}

/// Runs the config of `input` on an already chosen backend (`why` says which and why).
pub fn run_chosen(
    chosen: &Chosen,
    why: String,
    input: &Input,
    progress: bool,
) -> Result<RunReport> {
    run_seeds(chosen, why, input, &[input.config.run.seed], progress)
}

/// Runs the config of `input` once per seed of `seeds`, all in one batch (`[run] instances`
/// per seed, seed-major, each instance drawing what it would in a run of its seed alone) with
/// the oracle computed once. Rows and metrics come in batch order; each row names its seed.
pub fn run_seeds(
    chosen: &Chosen,
    why: String,
    input: &Input,
    seeds: &[u64],
    progress: bool,
) -> Result<RunReport> {
    let bar = progress_bar(work_per_seed(input)? * seeds.len() as u64, progress);
    let ticker = Ticker {
        bar: &bar,
        epochs: true,
    };
    let point = Point {
        input,
        seeds,
        place: None,
    };
    let mut reports = run_points(chosen, why, &[point], ticker)?;
    finish_bar(&bar, "trained");
    Ok(reports.remove(0))
}

/// Where a run reports its progress: `bar` advances by one per instance-epoch trained (a
/// sweep shares one bar over all its batches); with `epochs` the message says the epoch.
#[derive(Clone, Copy)]
pub struct Ticker<'a> {
    /// The bar.
    pub bar: &'a ProgressBar,
    /// Whether to write "epoch N" as the bar's message.
    pub epochs: bool,
}

/// One config of a packed batch and the seeds it runs.
#[derive(Clone, Copy)]
pub struct Point<'a> {
    /// The config (its model, learner and `[run]` table).
    pub input: &'a Input,
    /// Its seeds, `[run] instances` instances each.
    pub seeds: &'a [u64],
    /// Where it is in a larger job (a sweep's grid point), for the errors of this config
    /// alone (its oracle, its plan); `None` for a run of one config.
    pub place: Option<&'a str>,
}

/// Runs several configs side by side in one batch — each with its own model, learner, seeds
/// and oracle, every instance drawing what it would in a run of its config alone — and returns
/// one report per config, in order. The configs must share their checkpoint epochs; training
/// time and speed are those of the whole batch.
pub fn run_points(
    chosen: &Chosen,
    why: String,
    points: &[Point<'_>],
    progress: Ticker<'_>,
) -> Result<Vec<RunReport>> {
    let first = points
        .first()
        .ok_or_else(|| Error::invalid("batch", "a batch needs at least one config"))?;
    let checkpoints = first.input.config.run.checkpoint_epochs()?;
    let mut runs = Vec::with_capacity(points.len());
    let mut plans = Vec::with_capacity(points.len());
    // The oracle can take a while (tens of seconds at a few hundred thousand joint states):
    // the bar ticks on its own meanwhile and says what runs.
    let before = progress.bar.message();
    progress.bar.set_message(if before.is_empty() {
        ORACLE_MESSAGE.to_string()
    } else {
        format!("{before}; {ORACLE_MESSAGE}")
    });
    progress.bar.enable_steady_tick(Duration::from_millis(200));
    for point in points {
        let cfg = &point.input.config;
        let at = |e: Error| match point.place {
            Some(place) => e.at(place),
            None => e,
        };
        if cfg.run.checkpoint_epochs()? != checkpoints {
            return Err(at(Error::invalid(
                "run.checkpoints",
                "configs packed in one batch must share their checkpoint epochs",
            )));
        }
        let oracle = Oracle::new(&point.input.model).map_err(at)?;
        let analysis = oracle
            .analyze(&OracleOptions {
                sampler: cfg.learner.sampler,
                pipeline: cfg.run.pipeline.clone(),
                ..OracleOptions::default()
            })
            .map_err(at)?;
        for m in std::iter::once(&analysis.mixing).chain(&analysis.sampler_mixing) {
            if let Some(caveat) = m.gap_caveat() {
                let place = point.place.map_or(String::new(), |p| format!("{p}: "));
                progress.bar.suspend(|| {
                    eprintln!(
                        "warning: {place}the spectral gap of the {} chain is {caveat}",
                        m.sampler
                    )
                });
            }
        }
        let plan = Plan::packed(
            &point.input.model,
            &cfg.learner,
            cfg.run.instances,
            point.seeds,
            Some(&analysis.mu),
        )
        .map_err(at)?;
        plans.push(plan);
        runs.push(PointRun {
            input: point.input,
            oracle,
            analysis,
        });
    }
    progress.bar.disable_steady_tick();
    progress.bar.set_message(before);
    let batch = BatchPlan::new(plans)?;
    let job = Job {
        batch: &batch,
        checkpoints: &checkpoints,
        why,
        progress,
    };
    match chosen {
        Chosen::Cpu(b) => run_on(b, job, runs),
        Chosen::Wgpu(b) => run_on(&**b, job, runs),
        #[cfg(feature = "cuda")]
        Chosen::Cuda(b) => run_on(&**b, job, runs),
    }
}

/// A config of a batch and its oracle.
struct PointRun<'a> {
    input: &'a Input,
    oracle: Oracle,
    analysis: Analysis,
}

/// Everything a run needs besides its backend and its configs' oracles.
struct Job<'a> {
    batch: &'a BatchPlan,
    checkpoints: &'a [u32],
    why: String,
    progress: Ticker<'a>,
}

fn run_on<B: Backend>(
    backend: &B,
    job: Job<'_>,
    runs: Vec<PointRun<'_>>,
) -> Result<Vec<RunReport>> {
    let Job {
        batch,
        checkpoints,
        why,
        progress,
    } = job;
    let b = u64::from(batch.instances());
    let total = u64::from(*checkpoints.last().expect("at least one checkpoint")) * b;
    crate::backend::check_host_memory(batch, checkpoints.len())?;
    let mut device = backend.upload(batch)?;
    let mut all = vec![Vec::new(); runs.len()];
    let (mut done, mut train_seconds) = (0u32, 0.0);
    let slice = (checkpoints.last().copied().unwrap_or(1) / 200).max(1);
    for &at in checkpoints {
        while done < at {
            let step = slice.min(at - done);
            let t = Instant::now();
            backend.advance(&mut device, step)?;
            backend.sync()?;
            train_seconds += t.elapsed().as_secs_f64();
            done += step;
            progress.bar.inc(u64::from(step) * b);
            if progress.epochs {
                progress.bar.set_message(format!("epoch {done}"));
            }
        }
        let q = backend.read_q(&device)?;
        let counters = backend.counters(&device)?;
        for (g, run) in runs.iter().enumerate() {
            let plan = &batch.plans[g];
            let metrics = checkpoint_metrics(
                plan,
                &run.oracle,
                &run.analysis,
                &q[g],
                &counters[g],
                run.input.config.run.policy_gap_instances as usize,
                POLICY_TOLERANCE,
            )?;
            all[g].push(metrics);
        }
    }
    let updates_per_second = total as f64 / train_seconds.max(1e-12);
    Ok(runs
        .into_iter()
        .zip(&batch.plans)
        .zip(all)
        .map(|((run, plan), checkpoints)| RunReport {
            context: context(run.input, &run.analysis, backend.name()),
            seeds: plan.seeds.clone(),
            per_seed: plan.per_seed,
            checkpoints,
            analysis: run.analysis,
            backend: why.clone(),
            backend_name: backend.name(),
            updates_per_second,
            train_seconds,
        })
        .collect())
}

/// Mean and standard deviation of a metric over the instances where it is finite, and their
/// number (a diverged instance's errors are not finite: it is left out, not averaged in).
pub fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
    (mean, var.sqrt(), n)
}

/// The summary table: per checkpoint, the mean ± sd over instances of each metric.
pub fn summary_table(report: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:>9}  {:>21}  {:>21}  {:>21}  {:>21}",
        "epoch", "q_err", "q_err_obs", "q_err_sup", "policy_gap"
    );
    let cell = |(m, s, n): (f64, f64, usize)| {
        if n == 0 {
            "-".to_string()
        } else {
            format!("{m:.4e} ± {s:.1e}")
        }
    };
    for metrics in &report.checkpoints {
        let epoch = metrics.first().map_or(0, |m| m.epoch);
        let _ = writeln!(
            t,
            "{:>9}  {:>21}  {:>21}  {:>21}  {:>21}",
            epoch,
            cell(mean_sd(metrics.iter().map(|m| m.q_err))),
            cell(mean_sd(metrics.iter().map(|m| m.q_err_obs))),
            cell(mean_sd(metrics.iter().map(|m| m.q_err_sup))),
            cell(mean_sd(metrics.iter().filter_map(|m| m.policy_gap))),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    /// Diverged instances are left out of the mean, not averaged in as NaN (which would hide
    /// the others) or as infinity; none finite gives no mean.
    #[test]
    fn mean_sd_leaves_out_what_is_not_finite() {
        let (mean, sd, n) = super::mean_sd([1.0, f64::NAN, 3.0, f64::INFINITY].into_iter());
        assert_eq!((mean, n), (2.0, 2));
        assert!((sd - 2f64.sqrt()).abs() < 1e-15, "{sd}");
        assert_eq!(super::mean_sd([f64::NAN].into_iter()).2, 0);
    }
}
