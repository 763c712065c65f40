//! `icq plot`: the figure is drawn and the fitted slopes in fits.csv recover the slopes of
//! known power laws, one per group.

use icq::plot::{plot, Figure};

#[test]
fn plot_recovers_known_slopes_per_group() {
    let dir = scratch("slopes");
    let mut lines = Vec::new();
    for (group, slope) in [("a", -0.5), ("b", 1.0)] {
        for width in [4.0f64, 8.0, 16.0, 32.0, 64.0] {
            for (seed, wobble) in [(0, 0.98), (1, 1.02)] {
                for checkpoint in 0..2 {
                    // Only the last checkpoint follows the law; the first must be ignored.
                    let y = if checkpoint == 1 {
                        2.0 * width.powf(slope) * wobble
                    } else {
                        1.0
                    };
                    lines.push(format!(
                        "{{\"checkpoint\":{checkpoint},\"seed\":{seed},\"encoding\":\"{group}\",\"width\":{width},\"q_err_obs\":{y}}}"
                    ));
                }
            }
        }
    }
    std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
    let figure = Figure {
        x: "width".into(),
        y: vec!["q_err_obs".into()],
        group: Some("encoding".into()),
        checkpoint: None,
        filter: Vec::new(),
        name: None,
        reference: Vec::new(),
        excess: false,
    };
    let (svg, fitted) = plot(&dir, &figure, &dir).unwrap();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    // The PNG beside it decodes to the figure's size, with ink on it (axes, text, lines).
    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(svg.with_extension("png")).unwrap(),
    ));
    let mut reader = png.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (860, 600));
    let dark = pixels[..info.buffer_size()]
        .chunks(3)
        .filter(|p| p.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 2_000, "{dark} dark pixels");
    assert_eq!(fitted.len(), 2);
    for (line, want) in fitted.iter().zip([-0.5, 1.0]) {
        let f = line.fit.unwrap();
        assert!((f.slope - want).abs() < 1e-9, "{}: {f:?}", line.group);
        assert!(f.lo < want && want < f.hi, "{}: {f:?}", line.group);
        assert_eq!(f.points, 10);
    }
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    assert!(fits.starts_with("figure,metric,axis,group,slope,slope_lo,slope_hi,points\n"));
    assert_eq!(fits.lines().count(), 3);
    // Drawing again replaces the figure's rows rather than appending them.
    plot(&dir, &figure, &dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("fits.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    // A column that is not there is named.
    let bad = Figure {
        x: "widht".into(),
        ..figure
    };
    let err = plot(&dir, &bad, &dir).unwrap_err().to_string();
    assert!(err.contains("widht"), "{err}");
}

/// A folder holding a small sweep's results.jsonl, shaped like `icq sweep`'s: checkpoints 0–3
/// taken at epochs 5000–20000, a text column (`sampler`, which sets `t_mix`), a float knob
/// written as 0.0/0.1/0.2/0.4, a column that is always null (`clip`) and a positive metric.
fn sweep_results(tag: &str) -> std::path::PathBuf {
    let dir = scratch(tag);
    let mut lines = Vec::new();
    for noise in ["0.0", "0.1", "0.2", "0.4"] {
        for (sampler, t_mix) in [("trajectory", 5), ("lazy(0.5)", 11), ("lazy(0.8)", 28)] {
            for seed in 0..3 {
                for checkpoint in 0..4 {
                    let epoch = 5000 * (checkpoint + 1);
                    let y = 0.3 * f64::from(t_mix).powf(0.05) * (1.0 + 0.01 * f64::from(seed));
                    lines.push(format!(
                        "{{\"checkpoint\":{checkpoint},\"epoch\":{epoch},\"interface_noise\":{noise},\"sampler\":\"{sampler}\",\"clip\":null,\"seed\":{seed},\"t_mix\":{t_mix},\"q_err_obs\":{y}}}"
                    ));
                }
            }
        }
    }
    std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
    dir
}

/// An empty folder of this test process named by `tag`.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("icq-plot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn figure(x: &str, y: &str) -> Figure {
    Figure {
        x: x.into(),
        y: vec![y.into()],
        group: None,
        checkpoint: None,
        filter: Vec::new(),
        name: None,
        reference: Vec::new(),
        excess: false,
    }
}

/// The files in `dir` other than the results.
fn written(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "results.jsonl")
        .collect();
    names.sort();
    names
}

#[test]
fn a_checkpoint_that_is_not_there_is_named_with_those_that_are() {
    let dir = sweep_results("checkpoint");
    for (asked, hint) in [(20000, Some("epoch 20000 is checkpoint 3")), (9, None)] {
        let f = Figure {
            checkpoint: Some(asked),
            ..figure("t_mix", "q_err_obs")
        };
        let err = plot(&dir, &f, &dir).unwrap_err().to_string();
        assert!(err.contains(&format!("no checkpoint {asked}")), "{err}");
        assert!(err.contains("0-based index"), "{err}");
        assert!(
            err.contains("0 (epoch 5000), 1 (epoch 10000), 2 (epoch 15000), 3 (epoch 20000)"),
            "{err}"
        );
        assert_eq!(
            hint.is_some_and(|h| err.contains(h)),
            hint.is_some(),
            "{err}"
        );
        assert!(!err.contains("log–log"), "{err}");
    }
    let f = Figure {
        checkpoint: Some(3),
        ..figure("t_mix", "q_err_obs")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    assert_eq!(lines[0].points.len(), 36);
    assert_eq!(
        written(&dir),
        [
            "fits.csv",
            "q_err_obs_vs_t_mix.png",
            "q_err_obs_vs_t_mix.svg"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn filters_name_an_unknown_column_and_the_values_of_a_column_that_matches_nothing() {
    let dir = sweep_results("where");
    let with = |k: &str, v: &str| Figure {
        filter: vec![(k.into(), v.into())],
        ..figure("t_mix", "q_err_obs")
    };
    let err = plot(&dir, &with("bogus", "1"), &dir)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bogus: not a column"), "{err}");
    assert!(
        err.contains("columns: checkpoint, epoch, interface_noise, "),
        "{err}"
    );
    let err = plot(&dir, &with("interface_noise", "7"), &dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("interface_noise=7 keeps no row")
            && err.contains("interface_noise takes 0.0, 0.1, 0.2, 0.4"),
        "{err}"
    );
    let err = plot(&dir, &with("sampler", "lazy"), &dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sampler takes trajectory, lazy(0.5), lazy(0.8)"),
        "{err}"
    );
    assert!(written(&dir).is_empty(), "{:?}", written(&dir));
    // Numbers compare as numbers: 0.20 and 0 keep the rows written 0.2 and 0.0.
    for (v, stem) in [
        ("0.20", "q_err_obs_vs_t_mix_interface_noise-0.20"),
        ("0", "q_err_obs_vs_t_mix_interface_noise-0"),
    ] {
        let (svg, lines) = plot(&dir, &with("interface_noise", v), &dir).unwrap();
        assert_eq!(svg, dir.join(format!("{stem}.svg")));
        assert_eq!(lines[0].points.len(), 9, "{v}");
    }
    // Text still compares as text; in the file name its brackets become dashes.
    let (svg, lines) = plot(&dir, &with("sampler", "lazy(0.5)"), &dir).unwrap();
    assert_eq!(lines[0].points.len(), 12);
    assert_eq!(
        svg,
        dir.join("q_err_obs_vs_t_mix_sampler-lazy-0.5.svg"),
        "a file name a shell takes as it is"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_text_column_on_an_axis_is_named_as_not_numeric() {
    let dir = sweep_results("text");
    for (f, axis, reads) in [
        (figure("sampler", "q_err_obs"), "x", "trajectory, lazy(0.5)"),
        (figure("t_mix", "sampler"), "y", "trajectory, lazy(0.5)"),
        (figure("t_mix", "clip"), "y", "it reads -"),
    ] {
        let err = plot(&dir, &f, &dir).unwrap_err().to_string();
        let column = if axis == "x" { &f.x } else { &f.y[0] };
        assert!(
            err.starts_with(&format!("{column}: not a numeric column")),
            "{err}"
        );
        assert!(err.contains(reads), "{err}");
        assert!(err.contains(&format!("the {axis} axis")), "{err}");
    }
    assert!(written(&dir).is_empty(), "{:?}", written(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every failure, including those while drawing (here: no positive y) and those of a sweep's
/// `[[figure]]` (drawn through the same `plot`), leaves the folder as it was: no
/// `*.partial`, no figure.
#[test]
fn a_failed_figure_leaves_no_file() {
    let dir = sweep_results("partial");
    let lines: Vec<String> = std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| l.replace("\"clip\":null", "\"zero\":0.0"))
        .collect();
    std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
    let err = plot(&dir, &figure("t_mix", "zero"), &dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing to draw on log–log axes"), "{err}");
    let config: toml::Table = toml::from_str(
        r#"
        [[figure]]
        x = "t_mix"
        y = "q_err_obs"
        checkpoint = 20000
        [[figure]]
        x = "sampler"
        y = "q_err_obs"
        [[figure]]
        x = "t_mix"
        y = "q_err_obs"
        where = { interface_noise = 7 }
        "#,
    )
    .unwrap();
    for f in icq::plot::figures_of(&config).unwrap() {
        assert!(plot(&dir, &f, &dir).is_err(), "{f:?}");
    }
    assert!(written(&dir).is_empty(), "{:?}", written(&dir));
    // A figure drawn but not written (its SVG's name is taken by a folder) writes no PNG.
    let f = figure("t_mix", "q_err_obs");
    std::fs::create_dir(dir.join("q_err_obs_vs_t_mix.svg")).unwrap();
    assert!(plot(&dir, &f, &dir).is_err());
    assert_eq!(written(&dir), ["q_err_obs_vs_t_mix.svg"]);
    std::fs::remove_dir(dir.join("q_err_obs_vs_t_mix.svg")).unwrap();
    // Nor an SVG when the PNG's name is taken.
    std::fs::create_dir(dir.join("q_err_obs_vs_t_mix.png")).unwrap();
    assert!(plot(&dir, &f, &dir).is_err());
    assert_eq!(written(&dir), ["q_err_obs_vs_t_mix.png"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// All rows at one x (the sweep filtered to t_mix = 5): no slope, not one with a ±1e14
/// interval.
#[test]
fn a_single_x_gives_no_fit() {
    let dir = sweep_results("single-x");
    let f = Figure {
        filter: vec![("t_mix".into(), "5".into())],
        ..figure("t_mix", "q_err_obs")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    assert_eq!(lines[0].points.len(), 12);
    assert!(lines[0].fit.is_none(), "{:?}", lines[0].fit);
    // No slope and no interval: empty cells, as for a fit without an interval; the points
    // are those drawn.
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    assert!(fits.contains(",\"all\",,,,12\n"), "{fits}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rows whose y is null (a mean over instances that all diverged), text or missing are left
/// out of their line and counted there, so that `icq plot` can say so.
#[test]
fn rows_without_a_number_are_counted_per_line() {
    let dir = sweep_results("skipped");
    let path = dir.join("results.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let last = "\"checkpoint\":3,";
    let mut spoiled = 0;
    let rows: Vec<String> = text
        .lines()
        .map(|row| {
            let at_tmix_28 = row.contains(last) && row.contains("\"t_mix\":28,");
            if !at_tmix_28 || spoiled == 3 {
                return row.to_string();
            }
            spoiled += 1;
            let (head, _) = row.split_once("\"q_err_obs\"").unwrap();
            match spoiled {
                1 => format!("{head}\"q_err_obs\":null}}"),
                2 => format!("{head}\"q_err_obs\":\"0.5\"}}"),
                _ => format!("{}}}", head.trim_end_matches(',')),
            }
        })
        .collect();
    std::fs::write(&path, rows.join("\n")).unwrap();
    let f = Figure {
        group: Some("t_mix".into()),
        ..figure("interface_noise", "q_err_obs")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    let counts: Vec<(&str, usize, usize)> = lines
        .iter()
        .map(|l| (l.group.as_str(), l.points.len(), l.skipped))
        .collect();
    // Three seeds at each of four noises, less the three rows spoiled.
    assert_eq!(
        counts,
        [
            ("t_mix = 5", 12, 0),
            ("t_mix = 11", 12, 0),
            ("t_mix = 28", 9, 3)
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two points, so a slope and no interval (zero degrees of freedom): the interval's cells in
/// fits.csv are empty, never NaN, and the legend shows the slope alone.
#[test]
fn a_fit_through_two_points_has_no_interval() {
    let dir = scratch("two-points");
    std::fs::write(
        dir.join("results.jsonl"),
        "{\"width\":10,\"q_err_obs\":0.4}\n{\"width\":20,\"q_err_obs\":0.2}\n",
    )
    .unwrap();
    let (svg, lines) = plot(&dir, &figure("width", "q_err_obs"), &dir).unwrap();
    let fit = lines[0].fit.unwrap();
    assert!((fit.slope + 1.0).abs() < 1e-12, "{fit:?}");
    assert!(fit.lo.is_nan() && fit.hi.is_nan(), "{fit:?}");
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    let cells: Vec<&str> = fits.lines().nth(1).unwrap().split(',').collect();
    assert!(
        (cells[4].parse::<f64>().unwrap() + 1.0).abs() < 1e-12,
        "{fits}"
    );
    assert_eq!(cells[5..], ["", "", "2"], "{fits}");
    assert!(!fits.contains("NaN"), "{fits}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("all: slope -1.00\n") || text.contains("all: slope -1.00<"));
    assert!(!text.contains("NaN"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The numbers an SVG shows as text: the axes' tick labels (and the reference labels' values
/// are not among them, being set beside their column's name).
fn numbers_in(svg: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(svg)
        .unwrap()
        .split("<text")
        .filter_map(|t| t.split('>').nth(1))
        .map(|t| t.split('<').next().unwrap().trim().to_string())
        .filter(|t| t.parse::<f64>().is_ok())
        .collect()
}

/// Log axes are marked at round values (1, 2, 5 × 10^k; finer round values on a narrow
/// axis), not at powers of e as they were (4.48, 7.39, 12.2, 20.1, 33.1, 54.6 for widths
/// 4–64; 4450, 5430, 6630 for epochs 5000–6000).
#[test]
fn axes_are_marked_at_round_values() {
    let dir = scratch("ticks");
    let rows: Vec<String> = [4.0f64, 8.0, 16.0, 32.0, 64.0]
        .iter()
        .map(|w| format!("{{\"width\":{w},\"q_err_obs\":{}}}", 2.0 / w.sqrt()))
        .chain(
            [4450.0f64, 5000.0, 5430.0, 6000.0, 6630.0]
                .iter()
                .map(|e| format!("{{\"epoch\":{e},\"q_err\":{}}}", 0.3 * e.powf(-0.4))),
        )
        .collect();
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let (svg, _) = plot(&dir, &figure("width", "q_err_obs"), &dir).unwrap();
    // x: 5, 10, 20, 50; y (0.25–1): 0.2, 0.5, 1.
    let mut want = ["0.2", "0.5", "1", "5", "10", "20", "50"];
    let mut got = numbers_in(&svg);
    got.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()));
    assert_eq!(got, want);
    let (svg, _) = plot(&dir, &figure("epoch", "q_err"), &dir).unwrap();
    want = ["0.008", "0.01", "0.012", "4000", "5000", "6000", "8000"];
    let mut got = numbers_in(&svg);
    got.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()));
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines whose group values are all numbers come in numeric order, in the legend, in what
/// `plot` returns and in fits.csv (t_mix = 5, 11, 28; as text they ran 11, 28, 5); text
/// values keep the text order.
#[test]
fn numeric_groups_come_in_numeric_order() {
    let dir = sweep_results("group-order");
    let by = |g: &str| Figure {
        group: Some(g.into()),
        ..figure("epoch", "q_err_obs")
    };
    let (svg, lines) = plot(&dir, &by("t_mix"), &dir).unwrap();
    let groups: Vec<&str> = lines.iter().map(|l| l.group.as_str()).collect();
    assert_eq!(groups, ["t_mix = 5", "t_mix = 11", "t_mix = 28"]);
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    let in_fits: Vec<&str> = fits
        .lines()
        .skip(1)
        .map(|l| l.split('"').nth(1).unwrap())
        .collect();
    assert_eq!(in_fits, groups);
    let text = std::fs::read_to_string(&svg).unwrap();
    let at = |g: &str| text.find(&format!("{g}: slope")).unwrap();
    assert!(at("t_mix = 5") < at("t_mix = 11") && at("t_mix = 11") < at("t_mix = 28"));
    let (_, lines) = plot(&dir, &by("sampler"), &dir).unwrap();
    let groups: Vec<&str> = lines.iter().map(|l| l.group.as_str()).collect();
    assert_eq!(
        groups,
        [
            "sampler = lazy(0.5)",
            "sampler = lazy(0.8)",
            "sampler = trajectory"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rectangle in an SVG: x, y, width, height.
type Rect = (i32, i32, i32, i32);

/// (x, y) of every `<circle` (the points drawn) and the legend's box (the one rectangle
/// filled at 85% opacity) in an SVG.
fn points_and_legend(svg: &std::path::Path) -> (Vec<(i32, i32)>, Rect) {
    let text = std::fs::read_to_string(svg).unwrap();
    let attr = |tag: &str, name: &str| -> i32 {
        let from = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[from..].split('"').next().unwrap().parse().unwrap()
    };
    let points = text
        .split("<circle")
        .skip(1)
        .map(|t| (attr(t, "cx"), attr(t, "cy")))
        .collect();
    let legend = text
        .split("<rect")
        .skip(1)
        .find(|t| t.split('>').next().unwrap().contains("opacity=\"0.85\""))
        .map(|t| {
            (
                attr(t, "x"),
                attr(t, "y"),
                attr(t, "width"),
                attr(t, "height"),
            )
        })
        .unwrap();
    (points, legend)
}

/// Four falling lines fill the upper left corner, where the legend used to go: it moves to a
/// corner where it covers no point.
#[test]
fn the_legend_covers_no_point_where_a_corner_is_free() {
    let dir = scratch("legend");
    let mut rows = Vec::new();
    for g in 0..4 {
        for x in 10..=20 {
            let y = f64::from(1 + g) / f64::from(x * x);
            rows.push(format!("{{\"g\":{g},\"x\":{x},\"y\":{y}}}"));
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let f = Figure {
        group: Some("g".into()),
        ..figure("x", "y")
    };
    let (svg, _) = plot(&dir, &f, &dir).unwrap();
    let (points, (x, y, w, h)) = points_and_legend(&svg);
    assert_eq!(points.len(), 44);
    let inside = |(x0, y0): (i32, i32)| {
        points
            .iter()
            .filter(|p| (x0..=x0 + w).contains(&p.0) && (y0..=y0 + h).contains(&p.1))
            .count()
    };
    assert_eq!(inside((x, y)), 0, "legend at ({x}, {y}) {w}×{h}");
    // Upper left, 5 pixels inside the plotting area, is (91, 48) in these figures: it would
    // cover points.
    assert!(inside((91, 48)) > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder with results.jsonl (a sweep's) or checkpoints.jsonl (a run's) is read, results
/// first; a `.csv` or `.parquet` path is refused naming the `.jsonl` beside it; a folder with
/// neither file names both; a path that is not there is named.
#[test]
fn results_are_found_in_sweep_and_run_folders() {
    let dir = sweep_results("inputs");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(dir.join("results.jsonl"), run.join("checkpoints.jsonl")).unwrap();
    let (svg, lines) = plot(&run, &figure("t_mix", "q_err_obs"), &run).unwrap();
    assert_eq!(svg, run.join("q_err_obs_vs_t_mix.svg"));
    assert_eq!(lines[0].points.len(), 36);
    assert_eq!(
        icq::plot::results_file(&run).unwrap(),
        run.join("checkpoints.jsonl")
    );
    // Both: the sweep's.
    std::fs::write(run.join("results.jsonl"), "{\"a\":1}\n").unwrap();
    assert_eq!(
        icq::plot::results_file(&run).unwrap(),
        run.join("results.jsonl")
    );
    for (name, sibling) in [
        ("results.csv", true),
        ("results.parquet", true),
        ("other.csv", false),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, "x").unwrap();
        let err = plot(&path, &figure("t_mix", "q_err_obs"), &dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("icq plot reads results.jsonl (or checkpoints.jsonl)"),
            "{err}"
        );
        assert!(!err.contains("expected value"), "{err}");
        let beside = format!("use {} instead", dir.join("results.jsonl").display());
        assert_eq!(err.contains(&beside), sibling, "{err}");
        assert_eq!(err.contains("there is none beside it"), !sibling, "{err}");
    }
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = plot(&empty, &figure("t_mix", "q_err_obs"), &empty)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither results.jsonl") && err.contains("nor checkpoints.jsonl"),
        "{err}"
    );
    let missing = dir.join("missing");
    let err = icq::plot::results_file(&missing).unwrap_err();
    assert!(matches!(err, icq::Error::Io { .. }), "{err}");
    assert!(err.to_string().contains(&missing.display().to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A group that is the x axis, and a checkpoint with x = epoch, are refused naming both
/// settings, before anything is read or written; a sweep's `[[figure]]` too.
#[test]
fn contradictory_settings_are_refused() {
    let dir = sweep_results("contradictions");
    let grouped = Figure {
        group: Some("t_mix".into()),
        ..figure("t_mix", "q_err_obs")
    };
    let err = plot(&dir, &grouped, &dir).unwrap_err();
    assert!(err.is_bad_input());
    let err = err.to_string();
    assert!(
        err.starts_with("group: t_mix is also the x axis (x = t_mix)"),
        "{err}"
    );
    let at_one = Figure {
        checkpoint: Some(2),
        ..figure("epoch", "q_err_obs")
    };
    let err = plot(&dir, &at_one, &dir).unwrap_err().to_string();
    assert!(
        err.starts_with("checkpoint: checkpoint 2 with x = epoch"),
        "{err}"
    );
    assert!(err.contains("x = epoch plots every checkpoint"), "{err}");
    assert!(written(&dir).is_empty(), "{:?}", written(&dir));
    let config: toml::Table = "[[figure]]\nx = \"epoch\"\ny = \"q_err\"\ngroup = \"epoch\"\n"
        .parse()
        .unwrap();
    let err = icq::plot::figures_of(&config).unwrap_err().to_string();
    assert!(
        err.starts_with("figure[0].group: epoch is also the x axis"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reference columns become dashed horizontal lines labelled with their column and value:
/// grey where lines share the value, else in the line's colour. A value log axes cannot place
/// near the data (zero, or rounding noise far below it) is left out, and does not stretch the
/// axis; a reference that varies along a line, is missing or is listed twice is named, and
/// nothing is drawn.
#[test]
fn reference_lines() {
    let dir = scratch("refs");
    let mut rows = Vec::new();
    for (noise, floor) in [(0.2, 0.11), (0.4, 0.25)] {
        for epoch in [1000, 2000, 4000] {
            let y = floor + 1.0 / f64::from(epoch).sqrt();
            let tiny = if noise == 0.2 { 1e-12 } else { 0.2 };
            // 1 and 1.0 are one value.
            let one = if epoch == 1000 { "1" } else { "1.0" };
            rows.push(format!(
                "{{\"epoch\":{epoch},\"interface_noise\":{noise},\"q_err\":{y},\"interface_term\":{floor},\"uniform_policy_gap\":0.9,\"tiny\":{tiny},\"one\":{one},\"along\":{epoch},\"none\":null}}"
            ));
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let mut f = figure("epoch", "q_err");
    f.group = Some("interface_noise".into());
    f.reference = vec![
        "interface_term".into(),
        "uniform_policy_gap".into(),
        "one".into(),
    ];
    let (svg, lines) = plot(&dir, &f, &dir).unwrap();
    let refs: Vec<Vec<(String, f64, bool)>> = lines
        .iter()
        .map(|l| {
            l.references
                .iter()
                .map(|r| (r.column.clone(), r.value, r.drawn))
                .collect()
        })
        .collect();
    let r = |c: &str, v: f64| (c.to_string(), v, true);
    assert_eq!(
        refs,
        [
            [
                r("interface_term", 0.11),
                r("uniform_policy_gap", 0.9),
                r("one", 1.0)
            ],
            [
                r("interface_term", 0.25),
                r("uniform_policy_gap", 0.9),
                r("one", 1.0)
            ],
        ]
    );
    // Each label once, in its colour: the lines' own (the first two of the palette) where the
    // value is the line's alone, grey where the lines share it.
    let text = std::fs::read_to_string(&svg).unwrap();
    let fill_of = |label: &str| {
        assert_eq!(text.matches(label).count(), 1, "{label}");
        let at = text.find(label).unwrap();
        let open = text[..at].rfind("<text").unwrap();
        let fill = text[open..at].split("fill=\"").nth(1).unwrap();
        fill[..7].to_string()
    };
    assert_eq!(fill_of("interface_term 0.11"), "#1F77B4");
    assert_eq!(fill_of("interface_term 0.25"), "#FF7F0E");
    assert_eq!(fill_of("uniform_policy_gap 0.9"), "#5A5A5A");
    assert_eq!(fill_of("one 1"), "#5A5A5A");

    // 1e-12 on one line is left out, and the axis is the one drawn without references; the
    // other line's 0.2 is drawn.
    let ticks = |svg: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(svg).unwrap();
        text.split("<text")
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap().trim().to_string())
            .filter(|t| t.parse::<f64>().is_ok())
            .collect()
    };
    f.reference = vec!["tiny".into()];
    f.name = Some("tiny".into());
    let (svg, lines) = plot(&dir, &f, &dir).unwrap();
    assert_eq!(
        (lines[0].references[0].drawn, lines[1].references[0].drawn),
        (false, true)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("tiny ").count(), 1, "one label");
    assert!(text.contains("tiny 0.2"));
    f.reference.clear();
    f.name = Some("plain".into());
    let (plain, _) = plot(&dir, &f, &dir).unwrap();
    assert_eq!(ticks(&svg), ticks(&plain));
    assert!(!ticks(&plain).is_empty());

    for (columns, want) in [
        (
            vec!["along"],
            "along: a reference line needs one number on each line, but on line \
             interface_noise = 0.2 it reads 1000, 2000, 4000",
        ),
        (vec!["none"], "none: a reference line needs one number on each line, but on line interface_noise = 0.2 it reads -"),
        (vec!["absent"], "absent: not a column of the results"),
        (vec!["one", "one"], "one: listed twice as a reference"),
    ] {
        let mut bad = figure("epoch", "q_err");
        bad.group = Some("interface_noise".into());
        bad.reference = columns.iter().map(|c| c.to_string()).collect();
        bad.name = Some(format!("bad-{}", columns[0]));
        let err = plot(&dir, &bad, &dir).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(!dir.join(format!("bad-{}.svg", columns[0])).exists());
    }
    // Without a group, a varying reference suggests one.
    let mut bad = figure("epoch", "q_err");
    bad.reference = vec!["interface_term".into()];
    let err = plot(&dir, &bad, &dir).unwrap_err().to_string();
    assert!(
        err.contains("it reads 0.11, 0.25; --group by a column"),
        "{err}"
    );
    // In a sweep config, reference is a list of column names.
    let config: toml::Table =
        "[[figure]]\nx = \"epoch\"\ny = \"q_err\"\nreference = \"interface_term\"\n"
            .parse()
            .unwrap();
    let err = icq::plot::figures_of(&config).unwrap_err().to_string();
    assert!(
        err.contains("figure[0].reference: expected a list of column names"),
        "{err}"
    );
}

/// An excess figure draws each line's (x − x₀, y² − m₀), m₀ the mean of y² over the line's
/// rows at its smallest x: where y² = a + b·x exactly, every point lies on b·(x − x₀) (slope 1,
/// intercept ln b) though the rows at x₀ disagree, whatever a is; the rows at x₀ are not
/// drawn. The figure's file, axis names and fits say what it draws, and a reference line
/// (drawn at its own value, not as an excess) or a non-boolean `excess` is refused.
#[test]
fn excess_figures_draw_the_excess_over_the_smallest_x() {
    let dir = scratch("excess");
    let mut rows = Vec::new();
    for (group, a, b) in [("fast", 0.06, 5e-4), ("slow", 0.2, 2e-3)] {
        for x in [5.0f64, 11.0, 28.0, 56.0, 112.0] {
            // Two seeds whose squares straddle a + b·x by ±d: their mean is on the line.
            for d in [-0.01, 0.01] {
                let d = if x == 5.0 { d } else { 0.0 };
                let y = (a + b * x + d).sqrt();
                rows.push(format!(
                    "{{\"speed\":\"{group}\",\"t_mix\":{x},\"q_err_obs\":{y},\"interface_term\":0.1}}"
                ));
            }
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let f = Figure {
        group: Some("speed".into()),
        excess: true,
        ..figure("t_mix", "q_err_obs")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    for (line, b) in lines.iter().zip([5e-4, 2e-3]) {
        assert_eq!(
            line.points.len(),
            8,
            "{}: the rows at x₀ are not drawn",
            line.group
        );
        for &(dx, dy) in &line.points {
            assert!((dy - b * dx).abs() < 1e-12, "{}: ({dx}, {dy})", line.group);
        }
        let fit = line.fit.unwrap();
        assert!((fit.slope - 1.0).abs() < 1e-9, "{}: {fit:?}", line.group);
        assert!(
            (fit.intercept - b.ln()).abs() < 1e-9,
            "{}: {fit:?}",
            line.group
        );
    }
    assert!(dir.join("q_err_obs_excess_vs_t_mix_by_speed.svg").exists());
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    assert!(
        fits.contains("q_err_obs_excess_vs_t_mix_by_speed,q_err_obs² − q_err_obs²₀,t_mix − t_mix₀,\"speed = fast\",1"),
        "{fits}"
    );
    let mut with_reference = f.clone();
    with_reference.reference = vec!["interface_term".into()];
    let err = plot(&dir, &with_reference, &dir).unwrap_err().to_string();
    assert!(
        err.starts_with("reference: interface_term is drawn at its own value"),
        "{err}"
    );
    let config: toml::Table = "[[figure]]\nx = \"t_mix\"\ny = \"q_err_obs\"\nexcess = 1\n"
        .parse()
        .unwrap();
    let err = icq::plot::figures_of(&config).unwrap_err().to_string();
    assert!(
        err.contains("figure[0].excess: expected true or false"),
        "{err}"
    );
    let config: toml::Table = "[[figure]]\nx = \"t_mix\"\ny = \"q_err_obs\"\nexcess = true\n"
        .parse()
        .unwrap();
    assert!(icq::plot::figures_of(&config).unwrap()[0].excess);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several metrics on one figure: each its own line (per group), named by the metric, with
/// its own fit in fits.csv; a metric listed twice, or an empty list, is refused.
#[test]
fn several_metrics_share_one_figure() {
    let dir = scratch("metrics");
    let mut rows = Vec::new();
    for g in ["a", "b"] {
        for x in [1.0f64, 2.0, 4.0, 8.0] {
            let (term, bound) = (0.1 * x.powf(0.5), 3.0 * x.powf(-0.75));
            rows.push(format!(
                "{{\"g\":\"{g}\",\"d\":{x},\"term\":{term},\"bound\":{bound}}}"
            ));
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let f = Figure {
        y: vec!["term".into(), "bound".into()],
        ..figure("d", "unused")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    let got: Vec<(&str, &str, f64)> = lines
        .iter()
        .map(|l| (l.metric.as_str(), l.label.as_str(), l.fit.unwrap().slope))
        .collect();
    assert_eq!(got.len(), 2);
    for ((metric, group, slope), want) in got.iter().zip([("term", 0.5), ("bound", -0.75)]) {
        assert_eq!((*metric, *group), (want.0, want.0));
        assert!((slope - want.1).abs() < 1e-12, "{got:?}");
    }
    assert!(dir.join("term_and_bound_vs_d.svg").exists());
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    assert!(
        fits.contains("term_and_bound_vs_d,term,d,\"all\",0.5"),
        "{fits}"
    );
    assert!(
        fits.contains("term_and_bound_vs_d,bound,d,\"all\",-0.75"),
        "{fits}"
    );
    let by_g = Figure {
        group: Some("g".into()),
        ..f.clone()
    };
    let (_, lines) = plot(&dir, &by_g, &dir).unwrap();
    let labels: Vec<(&str, &str)> = (lines.iter())
        .map(|l| (l.label.as_str(), l.group.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("term, g = a", "g = a"),
            ("term, g = b", "g = b"),
            ("bound, g = a", "g = a"),
            ("bound, g = b", "g = b"),
        ]
    );
    let twice = Figure {
        y: vec!["term".into(), "bound".into(), "term".into()],
        ..f.clone()
    };
    let err = plot(&dir, &twice, &dir).unwrap_err().to_string();
    assert!(err.starts_with("y: term is listed twice"), "{err}");
    let config: toml::Table = "[[figure]]\nx = \"d\"\ny = [\"term\", \"bound\"]\n"
        .parse()
        .unwrap();
    assert_eq!(
        icq::plot::figures_of(&config).unwrap()[0].y,
        ["term", "bound"]
    );
    let config: toml::Table = "[[figure]]\nx = \"d\"\ny = []\n".parse().unwrap();
    let err = icq::plot::figures_of(&config).unwrap_err().to_string();
    assert!(
        err.starts_with("figure[0].y: expected a column name or a list"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An excess figure whose every line holds a single x has nothing to draw, and says why.
#[test]
fn an_excess_of_lines_with_one_x_each_is_refused() {
    let dir = scratch("excess-one-x");
    let rows: Vec<String> = ["a", "b"]
        .iter()
        .map(|g| format!("{{\"g\":\"{g}\",\"t_mix\":5,\"q_err_obs\":0.3}}"))
        .collect();
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let f = Figure {
        group: Some("g".into()),
        excess: true,
        ..figure("t_mix", "q_err_obs")
    };
    let err = plot(&dir, &f, &dir).unwrap_err().to_string();
    assert!(
        err.starts_with("excess: an excess figure draws each line past its smallest t_mix"),
        "{err}"
    );
    assert!(written(&dir).is_empty(), "{:?}", written(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a checkpoint named, each unit's last is drawn: units of one sweep that take
/// different numbers of checkpoints (two studies here) each give their own last rows, where
/// the file's largest checkpoint index dropped the study that took fewer. A line whose every
/// row is null is kept, with no point, so that the rows it lost are counted.
#[test]
fn each_unit_gives_its_last_checkpoint() {
    let dir = scratch("last-of-unit");
    let mut rows = Vec::new();
    for (study, checkpoints) in [("long", 4), ("short", 2)] {
        for point in 0..3 {
            let x = [1.0, 2.0, 4.0][point];
            for seed in 0..2 {
                for c in 0..checkpoints {
                    // The last checkpoint holds the power law, earlier ones noise.
                    let y = if c + 1 == checkpoints { x * x } else { 7.0 };
                    rows.push(format!(
                        "{{\"study\":\"{study}\",\"point\":{point},\"seed\":{seed},\"checkpoint\":{c},\"x\":{x},\"y\":{y},\"z\":null}}"
                    ));
                }
            }
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    let f = Figure {
        group: Some("study".into()),
        ..figure("x", "y")
    };
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    for l in &lines {
        let fit = l.fit.expect("a fit");
        assert!((fit.slope - 2.0).abs() < 1e-12, "{}: {fit:?}", l.group);
        assert_eq!((l.points.len(), l.on_axes(), l.skipped), (6, 6, 0));
    }
    assert_eq!(lines.len(), 2);
    // A metric null everywhere on one study's rows only.
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let text = text
        .replace("\"y\":", "\"w\":")
        .replace("\"z\":null", "\"y\":null");
    let mixed: Vec<String> = text
        .lines()
        .map(|r| {
            if r.contains("\"long\"") {
                r.replace("\"w\":", "\"y\":").replace(",\"y\":null", "")
            } else {
                r.to_string()
            }
        })
        .collect();
    std::fs::write(dir.join("results.jsonl"), mixed.join("\n")).unwrap();
    let (_, lines) = plot(&dir, &f, &dir).unwrap();
    let counts: Vec<(&str, usize, usize)> = lines
        .iter()
        .map(|l| (l.group.as_str(), l.points.len(), l.skipped))
        .collect();
    assert_eq!(counts, [("study = long", 6, 0), ("study = short", 0, 6)]);
    let _ = std::fs::remove_dir_all(&dir);
}
