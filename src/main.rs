//! The `icq` command line: clap parses, the library works, errors exit 2 (bad input) or 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use icq::config::load_input;
use icq::oracle::{Oracle, OracleOptions};
use icq::report::{oracle_table, OracleJson};

#[derive(Parser)]
#[command(
    name = "icq",
    version,
    about = "IC-SMDP simulation, batched IC-Q learning and an exact oracle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exact analysis of a model: Q*, μ, t_mix, spectral gap, ε_φ, δ_φ, Q*_obs.
    Oracle {
        /// A config (TOML) or a model file (.json).
        input: PathBuf,
        /// Also write every figure as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Relative tolerance of value iteration.
        #[arg(long, default_value_t = 1e-10)]
        tolerance: f64,
    },
    /// Train B instances of the configured learner and measure them against the oracle.
    Run {
        /// A config (TOML) or a model file (.json, run with the default learner).
        input: PathBuf,
        /// Write DIR/checkpoints.csv, DIR/checkpoints.jsonl and DIR/checkpoints.parquet (one row
        /// per instance and checkpoint).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Backend: auto, cpu, wgpu or cuda (a build with the cuda feature); overrides [run]
        /// backend.
        #[arg(long, value_parser = ["auto", "cpu", "wgpu", "cuda"])]
        backend: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Run every combination of the [sweep] axes (times the seeds); one row per grid point,
    /// seed and checkpoint in DIR/results.csv, DIR/results.jsonl and DIR/results.parquet.
    Sweep {
        /// A config (TOML) with a [sweep] table.
        input: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Run only shard k of n (1-based); default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT
        /// or JOB_COMPLETION_INDEX/ICQ_SHARDS when set.
        #[arg(long)]
        shard: Option<String>,
        /// Finish a sweep whose folder already holds some results.
        #[arg(long)]
        resume: bool,
        /// Backend: auto, cpu, wgpu or cuda (overrides [run] backend).
        #[arg(long, value_parser = ["auto", "cpu", "wgpu", "cuda"])]
        backend: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Log–log figure (SVG and PNG) of a metric against an axis of a sweep's results, with fitted
    /// slopes and their 95% intervals; the fits also go to OUT/fits.csv.
    Plot {
        /// A sweep's folder or its results.jsonl, or a run's folder (--out) or its
        /// checkpoints.jsonl.
        results: PathBuf,
        /// The column on the x axis (e.g. interface_term, t_mix, width, epoch).
        #[arg(long)]
        x: String,
        /// The metric on the y axis (e.g. q_err_obs); repeated, several metrics on the same
        /// axes, each its own line (e.g. --y interface_term --y ais_bound).
        #[arg(long, required = true)]
        y: Vec<String>,
        /// One line per value of this column.
        #[arg(long)]
        group: Option<String>,
        /// The checkpoint to plot: a 0-based index into the results' checkpoint column, not an
        /// epoch (default: the last; every checkpoint when x is epoch).
        #[arg(long)]
        checkpoint: Option<u64>,
        /// Only rows whose COLUMN reads VALUE (repeatable; numbers compare as numbers, so
        /// interface_noise=0.20 keeps 0.2), e.g. --where study=width.
        #[arg(long = "where", value_name = "COLUMN=VALUE")]
        filter: Vec<String>,
        /// File stem of the figure (default: Y_vs_X, the metrics joined by _and_ and _excess
        /// before _vs_ where they apply, then _by_GROUP and the filters).
        #[arg(long)]
        name: Option<String>,
        /// A column drawn as a dashed horizontal line, e.g. interface_term under q_err
        /// (repeatable): it must hold one number per line; grey where lines share it, else in
        /// the line's colour; zero, negative or far-off values are left out, and said so.
        #[arg(long, value_name = "COLUMN")]
        reference: Vec<String>,
        /// Draw each line's excess over its smallest x: (x − x₀, y² − mean y² at x₀), e.g. the
        /// excess q_err_obs² against t_mix, whose slope the mixing term predicts near +1.
        #[arg(long)]
        excess: bool,
        /// Output folder (default: the results' folder); refused up front if it is a file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Join the folders of a sharded sweep into one.
    Merge {
        /// The shard folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Handoff updates per second of one backend on a config.
    Bench {
        /// A config (TOML) or a model file.
        input: PathBuf,
        /// Backend: auto, cpu, wgpu or cuda (a build with the cuda feature); overrides [run]
        /// backend.
        #[arg(long, value_parser = ["auto", "cpu", "wgpu", "cuda"])]
        backend: Option<String>,
        /// Instances (default: [run] instances).
        #[arg(long)]
        instances: Option<u32>,
        /// Epochs timed (default: [run] epochs).
        #[arg(long)]
        epochs: Option<u32>,
        /// The device memory's peak bandwidth in GB/s, for the roofline fraction (default:
        /// what the device reports, on CUDA).
        #[arg(long, value_name = "GBPS", allow_negative_numbers = true)]
        peak_bandwidth: Option<f64>,
        /// Print one JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Model files: export a built model, check a file.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Write the model of a config (or a model file) as an icq-model/1 file.
    Export {
        /// A config (TOML) or a model file (.json).
        input: PathBuf,
        /// The model file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Load and validate a config or model file; print its size.
    Check {
        /// A config (TOML) or a model file (.json).
        input: PathBuf,
    },
}

/// A failure and the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

/// The figures line of `icq sweep` and `icq merge`, and a line per figure not drawn; a
/// figure not drawn fails the command (exit 1) once everything else is written.
fn report_figures(figures: &icq::sweep::Figures, out: &std::path::Path) -> Result<(), Failure> {
    if figures.drawn > 0 {
        println!(
            "figures    {} in {} (SVG and PNG), their slopes in {}/fits.csv",
            figures.drawn,
            out.display(),
            out.display()
        );
    }
    for note in &figures.notes {
        println!("           {note}");
    }
    for failure in &figures.failed {
        eprintln!("{failure}");
    }
    match figures.failed.len() {
        0 => Ok(()),
        n => Err(failed(anyhow::anyhow!(
            "{n} of {} figures not drawn (results and manifest are written; `icq plot` can retry)",
            n + figures.drawn
        ))),
    }
}

/// The model file the config at `path` names in `[model] file`, if any (relative to the
/// config's folder): an input a command must not write over either.
fn model_file_of(path: &std::path::Path, input: &icq::config::Input) -> Option<PathBuf> {
    let file = input.config.model.file.as_ref()?;
    Some(path.parent().unwrap_or(std::path::Path::new("")).join(file))
}

/// Says that `command` (which `does` the base settings) leaves a config's `[sweep]` aside.
fn warn_of_sweep(path: &std::path::Path, input: &icq::config::Input, command: &str, does: &str) {
    if input.config.sweep.is_some() {
        eprintln!(
            "warning: {} has a [sweep] table, which `{command}` leaves aside: this {does} its \
             base settings once (`icq sweep` runs the grid)",
            path.display()
        );
    }
}

fn bad_input(e: icq::Error) -> Failure {
    let code = if matches!(e, icq::Error::Io { .. }) || e.is_bad_input() {
        2
    } else {
        1
    };
    Failure {
        code,
        error: e.into(),
    }
}

fn bad_input_or_failure(e: icq::Error) -> Failure {
    let code = if e.is_bad_input() { 2 } else { 1 };
    Failure {
        code,
        error: e.into(),
    }
}

fn failed(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 1,
        error: e.into(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Oracle {
            input,
            json,
            tolerance,
        } => {
            if !(tolerance > 0.0 && tolerance < 1.0) {
                return Err(Failure {
                    code: 2,
                    error: anyhow::anyhow!(
                        "--tolerance: expected 0 < tolerance < 1, found {tolerance}"
                    ),
                });
            }
            let path = input;
            if let Some(out) = &json {
                icq::io::writable_file(out, "--json", &path).map_err(bad_input)?;
            }
            let input = load_input(&path).map_err(bad_input)?;
            if let (Some(out), Some(model)) = (&json, model_file_of(&path, &input)) {
                icq::io::writable_file(out, "--json", &model).map_err(bad_input)?;
            }
            warn_of_sweep(&path, &input, "icq oracle", "analyses");
            let start = Instant::now();
            let oracle = Oracle::new(&input.model).map_err(bad_input)?;
            let options = OracleOptions {
                tolerance,
                sampler: input.config.learner.sampler,
                pipeline: input.config.run.pipeline.clone(),
                ..OracleOptions::default()
            };
            let spinner = icq::run::spinner(icq::run::ORACLE_MESSAGE, true);
            let analysis = oracle.analyze(&options);
            spinner.finish_and_clear();
            let analysis = analysis.map_err(failed)?;
            let seconds = start.elapsed().as_secs_f64();
            print!("{}", oracle_table(&input.model, &analysis, seconds));
            if let Some(path) = json {
                let doc = serde_json::to_vec(&OracleJson::new(&input.model, &analysis))
                    .context("serializing the analysis")
                    .map_err(failed)?;
                icq::io::write_atomically(&path, &doc).map_err(failed)?;
                println!("\nwrote {}", path.display());
            }
            Ok(())
        }
        Command::Run {
            input,
            out,
            backend,
            quiet,
        } => {
            let path = input;
            let mut input = load_input(&path).map_err(bad_input)?;
            if let Some(b) = backend {
                input.config.run.backend = b;
            }
            warn_of_sweep(&path, &input, "icq run", "runs");
            if let Some(dir) = &out {
                icq::io::can_write_dir(dir, "--out").map_err(bad_input)?;
                icq::records::rows_fit(dir, "checkpoints").map_err(bad_input)?;
            }
            let report = icq::run::run(&input, !quiet).map_err(bad_input_or_failure)?;
            // The files first: a reader that closes stdout early (`| head`) ends the process.
            let written = match &out {
                Some(dir) => {
                    let rows = report.row_count();
                    let chunks = rows.div_ceil(icq::records::CHUNK_ROWS) as u64;
                    // Worth a bar from a few seconds of writing up.
                    let bar = icq::run::progress_bar(2 * chunks, !quiet && chunks >= 8);
                    bar.set_message("writing rows");
                    // Ctrl-C while writing stops the writing, and the files it left are
                    // removed, then the signal ends the process as usual (see StopGuard).
                    let made = icq::io::missing_folders(dir);
                    let stop = icq::io::StopGuard::new();
                    let wrote = icq::records::write_rows_with(
                        dir,
                        "checkpoints",
                        rows,
                        |range| report.rows(range),
                        &|| bar.inc(1),
                    );
                    if wrote.is_ok() {
                        icq::run::finish_bar(&bar, "rows written");
                    } else {
                        bar.finish_and_clear();
                        icq::io::remove_empty_folders(&made);
                    }
                    drop(stop);
                    wrote.map_err(failed)?;
                    Some((dir, rows))
                }
                None => None,
            };
            println!("backend    {}", report.backend);
            println!(
                "trained    {} instances × {} epochs in {:.2} s ({:.3e} handoff updates/s)",
                input.config.run.instances,
                input
                    .config
                    .run
                    .checkpoint_epochs()
                    .map_err(bad_input)?
                    .last()
                    .copied()
                    .unwrap_or(0),
                report.train_seconds,
                report.updates_per_second
            );
            let a = &report.analysis;
            let t_mix = |m: &icq::oracle::Mixing| m.t_mix.map_or("never".into(), |t| t.to_string());
            // With another sampler than the trajectory, t_mix is that sampler's chain's (as the
            // rows' t_mix column), the trajectory's beside it.
            let mixing = match &a.sampler_mixing {
                None => t_mix(&a.mixing),
                Some(m) => format!(
                    "{} ({} sampler; trajectory {})",
                    t_mix(m),
                    m.sampler,
                    t_mix(&a.mixing)
                ),
            };
            println!(
                "oracle     ‖Q*‖_μ = {:.4}, interface term {:.3e}, ε_φ = {:.3e}, δ_φ = {:.3e}, t_mix = {mixing}",
                a.q_star_norm,
                a.interface_term,
                a.eps_phi,
                a.delta_phi,
            );
            if input.config.learner.samples_off_mu() {
                println!("note       {}", icq::learn::OFF_MU_NOTE);
            }
            if let (Some(gap), Some(order)) = (a.pipeline_policy_gap, &a.pipeline) {
                println!(
                    "baselines  policy gap of the uniform policy {:.4}, of the pipeline {order:?} {gap:.4}",
                    a.uniform_policy_gap,
                );
            }
            println!();
            print!("{}", icq::run::summary_table(&report));
            if let Some(last) = report.checkpoints.last() {
                let diverged = last.iter().filter(|m| m.diverged()).count();
                if diverged > 0 {
                    eprintln!(
                        "warning: {diverged} of {} instances diverged (non-finite Q-values; the table averages the others, and their rows hold no errors and no policy_gap): lower the step size or set [learner] clip",
                        last.len()
                    );
                }
            }
            if let Some((dir, rows)) = written {
                println!(
                    "\nwrote {0}/checkpoints.csv, {0}/checkpoints.jsonl and {0}/checkpoints.parquet ({rows} rows)",
                    dir.display(),
                );
            }
            Ok(())
        }
        Command::Sweep {
            input,
            out,
            shard,
            resume,
            backend,
            quiet,
        } => {
            let shard = match shard {
                Some(s) => Some(icq::sweep::Shard::parse(&s).map_err(bad_input)?),
                None => icq::sweep::Shard::from_env().map_err(bad_input)?,
            };
            // One shard of one is the whole grid (`sweep` writes its results as such).
            let shard = shard.filter(|s| s.n > 1);
            let r = icq::sweep::sweep(&input, &out, shard, resume, backend.as_deref(), !quiet)
                .map_err(bad_input_or_failure)?;
            let shard_note = shard.map_or(String::new(), |s| format!(" (shard {}/{})", s.k, s.n));
            println!(
                "sweep      {} units in the grid, {} here{shard_note}, {} already done; {} batch{} in {:.1} s",
                r.units, r.mine, r.skipped, r.batches, if r.batches == 1 { "" } else { "es" }, r.seconds
            );
            if let Some(s) = shard.filter(|_| r.mine == 0) {
                println!(
                    "wrote      {}/manifest-shard-{}-of-{}.json alone: this shard holds no unit of the grid (join the shards with `icq merge`)",
                    out.display(),
                    s.k,
                    s.n
                );
            } else if shard.is_some() {
                println!(
                    "wrote      {}/parts (join the shards with `icq merge`)",
                    out.display()
                );
            } else {
                println!(
                    "wrote      {0}/results.csv, {0}/results.jsonl, {0}/results.parquet ({1} rows), {0}/manifest.json",
                    out.display(),
                    r.rows
                );
            }
            if r.off_mu > 0 {
                println!(
                    "note       {} of the {} units here: {}",
                    r.off_mu,
                    r.mine,
                    icq::learn::OFF_MU_NOTE
                );
            }
            if r.diverged > 0 {
                eprintln!(
                    "warning: {} of the {} units run had instances that diverged (non-finite Q-values; their rows average the others and count them in `diverged`): lower the step size or set [learner] clip",
                    r.diverged,
                    r.mine - r.skipped
                );
            }
            report_figures(&r.figures, &out)
        }
        Command::Plot {
            results,
            x,
            y,
            group,
            checkpoint,
            filter,
            name,
            reference,
            excess,
            out,
        } => {
            let filter = filter
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| {
                            icq::Error::invalid(
                                "--where",
                                format!("expected COLUMN=VALUE, found {f:?}"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad_input)?;
            let figure = icq::plot::Figure {
                x,
                y,
                group,
                checkpoint,
                filter,
                name,
                reference,
                excess,
            };
            figure.check().map_err(bad_input)?;
            // The input and the output folder are checked before anything is read or drawn: a
            // path that is not there is bad input, as a missing config is to the other commands.
            let file = icq::plot::results_file(&results).map_err(bad_input)?;
            let out = out.unwrap_or_else(|| file.parent().map(PathBuf::from).unwrap_or_default());
            // A figure that fails before writing anything leaves none of the folders made here.
            let made = icq::io::missing_folders(&out);
            icq::io::writable_dir(&out, "--out").map_err(bad_input)?;
            let (svg, lines) = icq::plot::plot(&file, &figure, &out)
                .inspect_err(|_| icq::io::remove_empty_folders(&made))
                .map_err(bad_input_or_failure)?;
            // The first column as wide as the longest line name (at least 32).
            let w = lines
                .iter()
                .map(|l| l.label.chars().count())
                .fold(32, usize::max);
            println!(
                "{:<w$} {:>8} {:>18} {:>7}",
                "line", "slope", "95% interval", "points"
            );
            for l in &lines {
                let (slope, interval, points) = match l.fit {
                    Some(f) => (
                        format!("{:.3}", f.slope),
                        // No interval through fewer than three points.
                        if f.lo.is_finite() && f.hi.is_finite() {
                            format!("[{:.3}, {:.3}]", f.lo, f.hi)
                        } else {
                            "-".to_string()
                        },
                        f.points,
                    ),
                    None => ("-".to_string(), "-".to_string(), l.on_axes()),
                };
                println!("{:<w$} {slope:>8} {interval:>18} {points:>7}", l.label);
            }
            for note in icq::plot::notes(&lines, &figure.x) {
                println!("{note}");
            }
            println!(
                "\nwrote {}, {} and {}",
                svg.display(),
                svg.with_extension("png").display(),
                out.join("fits.csv").display()
            );
            Ok(())
        }
        Command::Merge { dirs, out } => {
            let (rows, figures) = icq::sweep::merge(&dirs, &out).map_err(bad_input_or_failure)?;
            println!(
                "wrote      {0}/results.csv, {0}/results.jsonl, {0}/results.parquet ({rows} rows), {0}/manifest.json",
                out.display()
            );
            report_figures(&figures, &out)
        }
        Command::Bench {
            input,
            backend,
            instances,
            epochs,
            peak_bandwidth,
            json,
        } => {
            let path = input;
            let input = load_input(&path).map_err(bad_input)?;
            warn_of_sweep(&path, &input, "icq bench", "benches");
            let run = &input.config.run;
            let backend = backend.unwrap_or_else(|| run.backend.clone());
            let request = icq::bench::BenchRequest {
                backend: &backend,
                instances: instances.unwrap_or(run.instances),
                epochs: epochs.unwrap_or(run.epochs),
                peak_gb_per_s: peak_bandwidth,
            };
            let r = icq::bench::bench(&input, request).map_err(bad_input_or_failure)?;
            if json {
                println!("{}", serde_json::to_string(&r).map_err(failed)?);
            } else {
                let roofline = match (r.peak_gb_per_s, r.roofline_fraction) {
                    (Some(peak), Some(f)) => {
                        format!(" = {:.1}% of the {peak:.0} GB/s roofline", 100.0 * f)
                    }
                    _ => String::new(),
                };
                println!(
                    "{} on {}: {} instances × {} epochs in {:.3} s: {:.3e} handoff updates/s, {:.3e} primitive steps/s, {} bytes of instance state per update (modeled: {:.1} GB/s{roofline})",
                    r.backend, r.device, r.instances, r.epochs, r.seconds, r.handoff_updates_per_s, r.primitive_steps_per_s, r.bytes_per_update, r.modeled_gb_per_s
                );
            }
            Ok(())
        }
        Command::Model { command } => match command {
            ModelCommand::Export { input, output } => {
                icq::io::writable_file(&output, "--output", &input).map_err(bad_input)?;
                let path = input;
                let input = load_input(&path).map_err(bad_input)?;
                warn_of_sweep(&path, &input, "icq model export", "writes the model of");
                if let Some(model) = model_file_of(&path, &input) {
                    icq::io::writable_file(&output, "--output", &model).map_err(bad_input)?;
                }
                icq::model::save_model_file(&input.model, &output).map_err(failed)?;
                println!(
                    "wrote {} ({} joint states)",
                    output.display(),
                    input.model.space().states
                );
                Ok(())
            }
            ModelCommand::Check { input } => {
                let path = input.clone();
                let input = load_input(&input).map_err(bad_input)?;
                // A sweep's grid is checked as `icq sweep` checks it before any work (its
                // points, figures, memory and oracle sizes); nothing is called valid before.
                let grid = match input.config.sweep {
                    None => None,
                    Some(_) => {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))
                            .map_err(failed)?;
                        let units = icq::sweep::check(&text, &path).map_err(bad_input)?;
                        Some((units.last().map_or(0, |u| u.point + 1), units.len()))
                    }
                };
                let space = input.model.space();
                println!(
                    "{}: valid; {} agents, {} artifact states, {} options, {} joint states",
                    path.display(),
                    input.model.num_agents(),
                    input.model.artifact_states,
                    input.model.options.len(),
                    space.states
                );
                if let Some((points, units)) = grid {
                    println!(
                        "sweep: valid; {points} grid point{}, {units} unit{}",
                        if points == 1 { "" } else { "s" },
                        if units == 1 { "" } else { "s" }
                    );
                } else if let Err(e) = Oracle::check_size(&input.model) {
                    // Valid, but the commands that need the oracle refuse it: `icq bench` too
                    // where its reset sampler draws from μ.
                    let bench = if input.config.learner.sampler.draws_from_mu() {
                        ", `icq run` and `icq bench` (its reset sampler draws from μ) refuse \
                         this model"
                    } else {
                        " and `icq run` refuse this model, `icq bench` runs it"
                    };
                    println!("oracle: {e}; `icq oracle`{bench}");
                }
                Ok(())
            }
        },
    }
}

fn main() -> ExitCode {
    // Both before any thread exists.
    default_sigpipe();
    quiet_device_select();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

/// Lets a closed pipe end the process quietly, as it does every Unix filter (`icq oracle m.json
/// | head` would otherwise panic on its next line of output). Files are written through a
/// temporary name and a rename, so none is left half-written.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Mesa's Vulkan device-selection layer, loaded with its drivers, prints "error: XDG_RUNTIME_DIR
/// is invalid or not set" twice when there is no desktop session (containers, batch jobs). It
/// only orders devices for programs that take the first one, and icq ranks adapters itself, so
/// without a session, and unless the user picked a device through the layer, it is turned off.
fn quiet_device_select() {
    let unset = |name: &str| std::env::var_os(name).is_none();
    if unset("XDG_RUNTIME_DIR") && unset("MESA_VK_DEVICE_SELECT") && unset("NODEVICE_SELECT") {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}
