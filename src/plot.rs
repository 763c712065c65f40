//! `icq plot`: log–log figures (SVG and PNG, plotters) of a metric against an axis of a
//! sweep's results, one line per value of a second axis, the seeds as a band, and the fitted
//! slope with its 95% interval in the legend; the fits also go to `fits.csv`.
//!
//! Text is set in DejaVu Sans, embedded in the binary (`assets/fonts/`, Bitstream Vera
//! license), so figures look the same on every machine and need no system fonts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fit::{fit_loglog, Fit};
use crate::io::write_atomically;

/// One figure's request.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The column on the x axis (a knob or an exact figure, e.g. `interface_term`).
    pub x: String,
    /// The metric on the y axis (e.g. `q_err_obs`).
    pub y: String,
    /// The column whose values get one line each (none: one line).
    pub group: Option<String>,
    /// The checkpoint to plot: a 0-based index into the `checkpoint` column (0 is the first
    /// checkpoint taken), not an epoch (default: the last; every checkpoint when x is `epoch`).
    pub checkpoint: Option<u64>,
    /// Only rows whose column `key` reads `value`, for every pair: numbers compare as numbers
    /// (`0.20` keeps the rows at 0.2), other cells as the text printed in the CSV.
    pub filter: Vec<(String, String)>,
    /// The file stem (default: `Y_vs_X[_by_GROUP]`, then `_COLUMN-VALUE` per filter with the
    /// value's characters other than letters, digits, `.`, `+` and `-` made one `-`).
    pub name: Option<String>,
    /// Columns drawn as dashed horizontal reference lines (an exact figure such as
    /// `interface_term`, the floor of `q_err`, or `uniform_policy_gap`): each must hold one
    /// number across the rows of each line; drawn grey where several lines share the value,
    /// else in the line's colour; a value log axes cannot place near the data (zero or below,
    /// or more than three decades away) is left out (see [`Reference::drawn`]).
    pub reference: Vec<String>,
}

impl Figure {
    /// Every column the figure reads: x, y, the group, the filters' and the references'.
    pub fn columns(&self) -> impl Iterator<Item = &String> {
        [Some(&self.x), Some(&self.y), self.group.as_ref()]
            .into_iter()
            .flatten()
            .chain(self.filter.iter().map(|(k, _)| k))
            .chain(&self.reference)
    }

    /// Refuses a figure whose settings contradict each other, naming them: a group that is the
    /// x axis (every line would hold one x, and no slope), and a checkpoint with x = `epoch`
    /// (each checkpoint is taken at one epoch, so every point would share one x).
    pub fn check(&self) -> Result<()> {
        if self.group.as_ref() == Some(&self.x) {
            return Err(Error::invalid(
                "group",
                format!(
                    "{0} is also the x axis (x = {0}): each line would hold a single x and \
                     have no slope; group by another column, or leave the group out",
                    self.x
                ),
            ));
        }
        if let (Some(c), "epoch") = (self.checkpoint, self.x.as_str()) {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "checkpoint {c} with x = epoch puts every point at the one epoch it was \
                     taken at: x = epoch plots every checkpoint, so leave the checkpoint out \
                     (or plot against another column)"
                ),
            ));
        }
        Ok(())
    }

    /// The file stem of this figure.
    pub fn stem(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let mut stem = format!("{}_vs_{}", self.y, self.x);
        if let Some(g) = &self.group {
            stem.push_str(&format!("_by_{g}"));
        }
        for (k, v) in &self.filter {
            stem.push_str(&format!("_{k}-{}", file_word(v)));
        }
        stem
    }
}

/// `value` as a piece of a file name a shell takes as it is: letters, digits, `.`, `+` and
/// `-` kept, every run of anything else one `-`, none at the ends (`lazy(0.5)` → `lazy-0.5`,
/// `[1, 2, 0]` → `1-2-0`).
fn file_word(value: &str) -> String {
    let mut word = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
            word.push(c);
        } else if !word.is_empty() && !word.ends_with('-') {
            word.push('-');
        }
    }
    if word.ends_with('-') && !value.ends_with('-') {
        word.pop();
    }
    word
}

/// The `[[figure]]` entries of a sweep config: `x`, `y`, and optionally `group`,
/// `checkpoint`, `name`, `where` (a table of column = value) and `reference` (a list of
/// columns), each checked by name, and each figure by [`Figure::check`].
pub fn figures_of(config: &toml::Table) -> Result<Vec<Figure>> {
    let Some(entries) = config.get("figure") else {
        return Ok(Vec::new());
    };
    let entries = entries
        .as_array()
        .ok_or_else(|| Error::invalid("figure", "expected [[figure]] tables"))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = |key: &str| format!("figure[{i}].{key}");
            let table = entry
                .as_table()
                .ok_or_else(|| Error::invalid(format!("figure[{i}]"), "expected a table"))?;
            let text = |key: &str| -> Result<Option<String>> {
                match table.get(key) {
                    None => Ok(None),
                    Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                    Some(v) => Err(Error::invalid(
                        at(key),
                        format!("expected a string, found {v}"),
                    )),
                }
            };
            for key in table.keys() {
                if ![
                    "x",
                    "y",
                    "group",
                    "checkpoint",
                    "name",
                    "where",
                    "reference",
                ]
                .contains(&key.as_str())
                {
                    return Err(Error::invalid(
                        at(key),
                        "unknown key (expected x, y, group, checkpoint, name, where, reference)",
                    ));
                }
            }
            let required = |key: &str| -> Result<String> {
                text(key)?.ok_or_else(|| Error::invalid(at(key), "missing"))
            };
            let checkpoint = match table.get("checkpoint") {
                None => None,
                Some(v) => Some(
                    v.as_integer()
                        .and_then(|c| u64::try_from(c).ok())
                        .ok_or_else(|| {
                            Error::invalid(at("checkpoint"), "expected an integer ≥ 0")
                        })?,
                ),
            };
            let filter = match table.get("where") {
                None => Vec::new(),
                Some(toml::Value::Table(w)) => w
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
                Some(_) => {
                    return Err(Error::invalid(
                        at("where"),
                        "expected a table of column = value",
                    ))
                }
            };
            let reference = match table.get("reference") {
                None => Vec::new(),
                Some(toml::Value::Array(columns)) => columns
                    .iter()
                    .map(|c| {
                        c.as_str().map(str::to_string).ok_or_else(|| {
                            Error::invalid(
                                at("reference"),
                                format!("expected column names, found {c}"),
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
                Some(v) => {
                    return Err(Error::invalid(
                        at("reference"),
                        format!("expected a list of column names, found {v}"),
                    ))
                }
            };
            Ok(Figure {
                x: required("x")?,
                y: required("y")?,
                group: text("group")?,
                checkpoint,
                filter,
                name: text("name")?,
                reference,
            })
        })
        .collect::<Result<Vec<_>>>()
        .and_then(|figures| {
            for (i, f) in figures.iter().enumerate() {
                f.check().map_err(|e| match e {
                    Error::Invalid { field, message } => {
                        Error::invalid(format!("figure[{i}].{field}"), message)
                    }
                    other => other,
                })?;
            }
            // Two figures of one file name would leave only the last one drawn.
            for (i, f) in figures.iter().enumerate() {
                if let Some(j) = figures[..i].iter().position(|g| g.stem() == f.stem()) {
                    return Err(Error::invalid(
                        format!("figure[{i}]"),
                        format!(
                            "draws {}.svg, as figure[{j}] does: give one of them another name",
                            f.stem()
                        ),
                    ));
                }
            }
            Ok(figures)
        })
}

/// One line of a figure and its fit.
#[derive(Clone, Debug)]
pub struct Line {
    /// The group's value.
    pub group: String,
    /// (x, y) of every row.
    pub points: Vec<(f64, f64)>,
    /// The fit over all points.
    pub fit: Option<Fit>,
    /// The figure's reference columns and their value on this line's rows.
    pub references: Vec<Reference>,
}

/// A reference column's value on one line of a figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// The column.
    pub column: String,
    /// Its value on the line's rows.
    pub value: f64,
    /// Whether it was drawn: a value log axes cannot place near the data (zero or below, or
    /// more than three decades away) is left out.
    pub drawn: bool,
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The rows file `path` names: itself for a file, and in a folder its `results.jsonl` (`icq
/// sweep`'s) or else its `checkpoints.jsonl` (`icq run`'s). A path that is not there is an
/// [`Error::Io`] naming it; a folder holding neither file, and a `.csv` or `.parquet` file
/// (which plot does not read), are [`Error::Invalid`], the latter naming the `.jsonl` beside
/// it where there is one.
pub fn results_file(path: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    if meta.is_dir() {
        return ["results.jsonl", "checkpoints.jsonl"]
            .into_iter()
            .map(|name| path.join(name))
            .find(|file| file.is_file())
            .ok_or_else(|| {
                Error::invalid(
                    "results",
                    format!(
                        "{} holds neither results.jsonl (written by icq sweep and icq merge) \
                         nor checkpoints.jsonl (written by icq run --out)",
                        path.display()
                    ),
                )
            });
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if let Some(kind @ ("csv" | "parquet")) = extension.as_deref() {
        let sibling = path.with_extension("jsonl");
        let instead = if sibling.is_file() {
            format!("use {} instead", sibling.display())
        } else {
            "there is none beside it".to_string()
        };
        return Err(Error::invalid(
            "results",
            format!(
                "{} is a .{kind} file; icq plot reads results.jsonl (or checkpoints.jsonl), \
                 or a folder holding one: {instead}",
                path.display()
            ),
        ));
    }
    Ok(path.to_path_buf())
}

/// Reads the rows of the file [`results_file`] finds at `path`, one JSON object a line.
pub fn read_results(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let file = results_file(path)?;
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.clone(),
        cause: source,
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| Error::Parse {
                path: file.clone(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// A few of the distinct values `key` takes in `rows` (see [`listed`]).
fn values_of(rows: &[&Map<String, Value>], key: &str) -> String {
    listed(rows.iter().filter_map(|r| r.get(key)))
}

/// The distinct values among `cells`, as printed in the CSV: numbers (compared as numbers,
/// each written as first seen) in numeric order, then text, at most eight and then how many
/// there are in all.
fn listed<'a>(cells: impl IntoIterator<Item = &'a Value>) -> String {
    const SHOWN: usize = 8;
    let mut numbers: Vec<(f64, &Value)> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for v in cells {
        match v.as_f64() {
            Some(x) => numbers.push((x, v)),
            None => {
                let text = cell(v);
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
        }
    }
    numbers.sort_by(|a, b| a.0.total_cmp(&b.0));
    numbers.dedup_by(|a, b| a.0 == b.0);
    let all: Vec<String> = numbers.iter().map(|(_, v)| cell(v)).chain(texts).collect();
    let mut shown = all[..all.len().min(SHOWN)].join(", ");
    if all.len() > SHOWN {
        shown.push_str(&format!(", … ({} values in all)", all.len()));
    }
    shown
}

/// Whether the cell `c` reads `want`: numbers compare as numbers (`0.20` matches 0.2, `5`
/// matches 5.0), everything else as the text printed in the CSV.
fn reads(c: &Value, want: &str) -> bool {
    match (c.as_f64(), want.trim().parse::<f64>()) {
        (Some(x), Ok(w)) => x == w,
        _ => cell(c) == want,
    }
}

/// The lines of `figure` in `rows`. Fails, naming the flag's column and what it holds, when
/// a column is not in the results, x or y is not numeric, a filter keeps no row, or the
/// checkpoint asked for is not among the rows kept. The lines come in the numeric order of the
/// group's value where every value is a number, else in text order.
pub fn lines(rows: &[Map<String, Value>], figure: &Figure) -> Result<Vec<Line>> {
    if rows.is_empty() {
        return Err(Error::invalid("results", "no rows"));
    }
    // Every column of any row: rows merged from other sweeps may lack some.
    let mut seen = std::collections::HashSet::new();
    let columns: Vec<&String> = rows
        .iter()
        .flat_map(Map::keys)
        .filter(|k| seen.insert(*k))
        .collect();
    for key in figure.columns() {
        if !columns.contains(&key) {
            return Err(Error::invalid(
                key.clone(),
                format!("not a column of the results; columns: {columns:?}"),
            ));
        }
    }
    let all: Vec<&Map<String, Value>> = rows.iter().collect();
    for (axis, key) in [("x", &figure.x), ("y", &figure.y)] {
        if !rows
            .iter()
            .any(|r| r.get(key).is_some_and(Value::is_number))
        {
            return Err(Error::invalid(
                key.clone(),
                format!(
                    "not a numeric column (it reads {}), so it cannot be the {axis} axis of a \
                     log–log figure",
                    values_of(&all, key)
                ),
            ));
        }
    }
    let mut kept = all;
    for (i, (key, want)) in figure.filter.iter().enumerate() {
        let before = kept.clone();
        kept.retain(|r| r.get(key).is_some_and(|c| reads(c, want)));
        if kept.is_empty() {
            let among = if i == 0 {
                ""
            } else {
                " in the rows the filters before it keep"
            };
            return Err(Error::invalid(
                key.clone(),
                format!(
                    "the filter {key}={want} keeps no row ({key} takes {}{among})",
                    values_of(&before, key)
                ),
            ));
        }
    }
    let index = |r: &Map<String, Value>| r.get("checkpoint").and_then(Value::as_u64);
    let checkpoint = match figure.checkpoint {
        Some(c) => {
            if !kept.iter().any(|r| index(r) == Some(c)) {
                // Each checkpoint index the kept rows hold, with the epochs it was taken at.
                let mut epochs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
                for r in &kept {
                    if let Some(i) = index(r) {
                        let at = epochs.entry(i).or_default();
                        if let Some(e) = r.get("epoch").and_then(Value::as_u64) {
                            if !at.contains(&e) {
                                at.push(e);
                            }
                        }
                    }
                }
                let listed: Vec<String> = epochs
                    .iter()
                    .map(|(i, at)| match at.as_slice() {
                        [] => i.to_string(),
                        [e] => format!("{i} (epoch {e})"),
                        many => format!("{i} (epochs {many:?})"),
                    })
                    .collect();
                let hint = epochs
                    .iter()
                    .find(|(_, at)| at.contains(&c))
                    .map_or(String::new(), |(i, _)| {
                        format!("; epoch {c} is checkpoint {i}")
                    });
                let held = if listed.is_empty() {
                    "no checkpoint column".to_string()
                } else {
                    format!("checkpoints {}", listed.join(", "))
                };
                return Err(Error::invalid(
                    "checkpoint",
                    format!(
                        "no checkpoint {c} (a 0-based index into the checkpoint column, not an \
                         epoch); the rows kept hold {held}{hint}"
                    ),
                ));
            }
            Some(c)
        }
        None if figure.x == "epoch" => None,
        // The last checkpoint; rows without a checkpoint column are all kept.
        None => kept.iter().filter_map(|r| index(r)).max(),
    };
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    // Per group, per reference column: every distinct cell of its rows.
    let mut refs: BTreeMap<String, Vec<Vec<&Value>>> = BTreeMap::new();
    // Per group, its value as a number, where it reads as one.
    let mut numbers: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for r in kept
        .into_iter()
        .filter(|r| checkpoint.is_none() || index(r) == checkpoint)
    {
        // Rows merged from other sweeps may lack a column: they are skipped, not a panic.
        let value = |key: &str| r.get(key).and_then(Value::as_f64);
        let (Some(x), Some(y)) = (value(&figure.x), value(&figure.y)) else {
            continue;
        };
        let group = figure.group.as_ref().map_or("all".to_string(), |g| {
            format!("{g} = {}", r.get(g).map_or("-".to_string(), cell))
        });
        let number = figure
            .group
            .as_ref()
            .and_then(|g| r.get(g))
            .and_then(|c| c.as_f64().or_else(|| cell(c).trim().parse().ok()));
        numbers.insert(group.clone(), number);
        let seen = refs
            .entry(group.clone())
            .or_insert_with(|| vec![Vec::new(); figure.reference.len()]);
        for (cells, key) in seen.iter_mut().zip(&figure.reference) {
            let c = r.get(key).unwrap_or(&Value::Null);
            // Numbers compare as numbers (1 and 1.0 are one value).
            let same = |d: &&Value| match (c.as_f64(), d.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => *d == c,
            };
            if !cells.iter().any(same) {
                cells.push(c);
            }
        }
        groups.entry(group).or_default().push((x, y));
    }
    if groups.is_empty() {
        let at = checkpoint.map_or(String::new(), |c| format!(" at checkpoint {c}"));
        return Err(Error::invalid(
            figure.y.clone(),
            format!(
                "no row kept{at} has numbers in both {} and {}",
                figure.x, figure.y
            ),
        ));
    }
    if let Some(twice) = figure
        .reference
        .iter()
        .enumerate()
        .find(|(i, r)| figure.reference[..*i].contains(r))
    {
        return Err(Error::invalid(
            twice.1.clone(),
            "listed twice as a reference",
        ));
    }
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = groups.into_iter().collect();
    // Lines in numeric order where every group's value is a number (t_mix = 5, 28, 112, not
    // the text order 112, 28, 5); ties and text keep the text order.
    if groups.iter().all(|(g, _)| numbers[g].is_some()) {
        let key = |g: &String| numbers[g].unwrap_or(f64::NAN);
        groups.sort_by(|a, b| key(&a.0).total_cmp(&key(&b.0)));
    }
    groups
        .into_iter()
        .map(|(group, points)| {
            let references = figure
                .reference
                .iter()
                .zip(&refs[&group])
                .map(|(key, cells)| match cells.as_slice() {
                    [c] if c.is_number() => Ok(Reference {
                        column: key.clone(),
                        value: c.as_f64().expect("a number"),
                        drawn: false,
                    }),
                    _ => {
                        let hint = if figure.group.is_none() && cells.len() > 1 {
                            "; --group by a column that fixes it gives each value its own line"
                        } else {
                            ""
                        };
                        Err(Error::invalid(
                            key.clone(),
                            format!(
                                "a reference line needs one number on each line, but on line \
                                 {group} it reads {}{hint}",
                                listed(cells.iter().copied())
                            ),
                        ))
                    }
                })
                .collect::<Result<_>>()?;
            Ok(Line {
                fit: fit_loglog(&points),
                group,
                points,
                references,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(place_references)
}

/// Marks which references log axes can place near the data: above zero and within three
/// decades of the y values drawn (an interface term of zero, or rounding noise far below the
/// data, would squeeze the lines into a corner).
fn place_references(mut lines: Vec<Line>) -> Vec<Line> {
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|p| p.1);
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    for r in lines.iter_mut().flat_map(|l| l.references.iter_mut()) {
        r.drawn = r.value > 0.0 && (lo / 1e3..=hi * 1e3).contains(&r.value);
    }
    lines
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Figure size in pixels.
const SIZE: (u32, u32) = (860, 600);

/// The embedded font, registered once as plotters' `sans-serif`.
fn font() -> Result<()> {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Plot("the embedded font does not load".into()))
    }
}

/// Draws `lines` as an SVG at `svg` and a PNG at `png`. Both are rendered in memory first and
/// then written through [`write_atomically`], so a figure that fails to draw leaves no file
/// behind, half-written or stale-named.
pub fn draw(svg: &Path, png: &Path, figure: &Figure, lines: &[Line]) -> Result<()> {
    font()?;
    let mut text = String::new();
    draw_on(
        SVGBackend::with_string(&mut text, SIZE).into_drawing_area(),
        figure,
        lines,
    )?;
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    draw_on(
        BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area(),
        figure,
        lines,
    )?;
    let mut encoded = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut encoded, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(plot_err)?;
        writer.write_image_data(&pixels).map_err(plot_err)?;
        writer.finish().map_err(plot_err)?;
    }
    write_atomically(png, &encoded)?;
    write_atomically(svg, text.as_bytes())
}

/// A tick label: three significant digits, no trailing zeros (4914.8 → 4910, 0.5493 →
/// 0.549, 7.389 → 7.39).
fn tick(v: f64) -> String {
    if !(v.is_finite() && v > 1e-300) {
        return format!("{v:e}");
    }
    let digits = 2 - v.log10().floor() as i32;
    let scale = 10f64.powi(digits);
    let rounded = (v * scale).round() / scale;
    let text = format!("{:.*}", digits.max(0) as usize, rounded);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Where a log axis over `lo..hi` (0 < lo < hi) is marked: `major` at round values, labelled;
/// `minor` (unlabelled grid lines) at every 1…9 × 10^k when the major marks are every power of
/// ten or 1, 2, 5 × 10^k. Both ascending, in axis units (not logarithms).
#[derive(Clone, Debug, PartialEq)]
struct Marks {
    major: Vec<f64>,
    minor: Vec<f64>,
}

/// Mantissas of the round values a narrow log axis is marked at (under about a factor of 5).
const FINE: [f64; 9] = [1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0];

/// `m` × 10^`k`, as close to the decimal number as a division makes it (0.2, not
/// 0.20000000000000004).
fn decimal(m: f64, k: i32) -> f64 {
    if k >= 0 {
        m * 10f64.powi(k)
    } else {
        m / 10f64.powi(-k)
    }
}

/// The values m × 10^k inside `lo..=hi`, m from `mantissas`, ascending.
fn round_values(lo: f64, hi: f64, mantissas: &[f64]) -> Vec<f64> {
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (k0..=k1)
        .flat_map(|k| mantissas.iter().map(move |&m| decimal(m, k)))
        .filter(|&v| inside(v))
        .collect()
}

/// The marks of a log axis over `lo..hi`: powers of ten where four or more fit (every second,
/// third… power where more than ten would); else 1, 2, 5 × 10^k where three fit (ranges under
/// about two decades); else 1, 1.2, 1.5, 2, 3, 4, 5, 6, 8 × 10^k where three fit (under about a
/// factor of five); else evenly spaced values a step of 1, 2 or 5 × 10^k apart. Always at least
/// two major marks, at most about ten.
fn log_marks(lo: f64, hi: f64) -> Marks {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Marks {
            major: Vec::new(),
            minor: Vec::new(),
        };
    }
    let every = || round_values(lo, hi, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let powers = round_values(lo, hi, &[1.0]);
    if powers.len() >= 4 {
        let stride = powers.len().div_ceil(10) as i32;
        if stride == 1 {
            return Marks {
                major: powers,
                minor: every(),
            };
        }
        let major = powers
            .into_iter()
            .filter(|v| (v.log10().round() as i32).rem_euclid(stride) == 0)
            .collect();
        return Marks {
            major,
            minor: Vec::new(),
        };
    }
    let tens = round_values(lo, hi, &[1.0, 2.0, 5.0]);
    if tens.len() >= 3 {
        return Marks {
            major: tens,
            minor: every(),
        };
    }
    let fine = round_values(lo, hi, &FINE);
    if fine.len() >= 3 {
        return Marks {
            major: fine,
            minor: Vec::new(),
        };
    }
    // A step of 1, 2 or 5 × 10^k, the largest at most a quarter of the range: 4 to 10 marks.
    let quarter = (hi - lo) / 4.0;
    let k = quarter.log10().floor() as i32;
    let m = [5.0, 2.0, 1.0]
        .into_iter()
        .find(|&m| decimal(m, k) <= quarter)
        .unwrap_or(1.0);
    let step = decimal(m, k);
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    let major = (first..=last).map(|i| decimal(i as f64 * m, k)).collect();
    Marks {
        major,
        minor: Vec::new(),
    }
}

/// A log axis drawn as a linear axis over ln v (so every figure element is placed at ln x,
/// ln y), marked at the round values of [`log_marks`] rather than at plotters' round values of
/// ln v, which fell at powers of e.
#[derive(Clone)]
struct LnAxis {
    /// The linear axis over ln v.
    linear: RangedCoordf64,
    /// ln of the major marks.
    major: Vec<f64>,
    /// ln of the minor marks.
    minor: Vec<f64>,
}

impl LnAxis {
    /// The axis over `lo..hi` (in axis units, 0 < lo < hi).
    fn new(lo: f64, hi: f64) -> Self {
        let marks = log_marks(lo, hi);
        let ln = |v: Vec<f64>| v.into_iter().map(f64::ln).collect();
        Self {
            linear: (lo.ln()..hi.ln()).into(),
            major: ln(marks.major),
            minor: ln(marks.minor),
        }
    }
}

impl Ranged for LnAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    /// The major marks for labels and bold grid lines; the minor ones too for light grid lines.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            let mut all = self.minor.clone();
            all.extend(&self.major);
            all
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// The corner of a plotting area of `area` pixels (width, height) where a legend box of `size`
/// pixels, placed 5 pixels in from the frame as plotters places it, covers the fewest `marks`
/// (points and labels, in pixels from the area's upper left corner), then the fewest `path`
/// samples (points along the lines). Ties go to the first of upper left, upper right, lower
/// left, lower right.
fn legend_corner(
    area: (i32, i32),
    size: (i32, i32),
    marks: &[(i32, i32)],
    path: &[(i32, i32)],
) -> SeriesLabelPosition {
    let (left, top) = (5, 5);
    let (right, bottom) = (area.0 - size.0 - 5, area.1 - size.1 - 5);
    let corners = [
        (SeriesLabelPosition::UpperLeft, (left, top)),
        (SeriesLabelPosition::UpperRight, (right, top)),
        (SeriesLabelPosition::LowerLeft, (left, bottom)),
        (SeriesLabelPosition::LowerRight, (right, bottom)),
    ];
    let covered = |(x, y): (i32, i32), points: &[(i32, i32)]| {
        points
            .iter()
            .filter(|p| (x..=x + size.0).contains(&p.0) && (y..=y + size.1).contains(&p.1))
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, at)| (covered(*at, marks), covered(*at, path)))
        .map(|(corner, _)| corner)
        .expect("four corners")
}

/// Draws `lines` on `root`.
fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
    lines: &[Line],
) -> Result<()> {
    let positive: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .collect();
    if positive.is_empty() {
        let rows: usize = lines.iter().map(|l| l.points.len()).sum();
        return Err(Error::invalid(
            figure.y.clone(),
            format!(
                "none of the {rows} rows kept has {} > 0 and {} > 0: nothing to draw on log–log \
                 axes",
                figure.x, figure.y
            ),
        ));
    }
    let range = |v: Vec<f64>| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        (lo / 1.25, hi * 1.25)
    };
    let (x0, x1) = range(positive.iter().map(|p| p.0).collect());
    let references = lines
        .iter()
        .flat_map(|l| l.references.iter().filter(|r| r.drawn).map(|r| r.value));
    let (y0, y1) = range(positive.iter().map(|p| p.1).chain(references).collect());
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} against {}", figure.y, figure.x),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        // Logarithmic axes as linear axes over ln x and ln y, marked and labelled at round values
        // of x and y: every range, however narrow, gets at least two labelled ticks.
        .build_cartesian_2d(LnAxis::new(x0, x1), LnAxis::new(y0, y1))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(figure.x.as_str())
        .y_desc(figure.y.as_str())
        .x_label_formatter(&|v| tick(v.exp()))
        .y_label_formatter(&|v| tick(v.exp()))
        .draw()
        .map_err(plot_err)?;
    // What the legend should not cover, in pixels of the plotting area: the points drawn and
    // the reference labels (`marks`), and samples along the lines between them (`path`).
    let origin = chart.plotting_area().get_base_pixel();
    let coords = chart.as_coord_spec().clone();
    let pixel = |p: (f64, f64)| {
        let (x, y) = coords.translate(&p);
        (x - origin.0, y - origin.1)
    };
    let (mut marks, mut path, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // Per x: mean, min and max over the rows (the seeds) at that x.
        let mut by_x: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for &(x, y) in line.points.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0) {
            by_x.entry(x.to_bits()).or_default().push(y);
        }
        let stats: Vec<(f64, f64, f64, f64)> = by_x
            .iter()
            .map(|(&x, ys)| {
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                let (lo, hi) = ys
                    .iter()
                    .fold((f64::INFINITY, 0.0f64), |(a, b), &y| (a.min(y), b.max(y)));
                (f64::from_bits(x).ln(), mean.ln(), lo.ln(), hi.ln())
            })
            .collect();
        let mut band: Vec<(f64, f64)> = stats.iter().map(|s| (s.0, s.3)).collect();
        band.extend(stats.iter().rev().map(|s| (s.0, s.2)));
        chart
            .draw_series(std::iter::once(Polygon::new(band, color.mix(0.18))))
            .map_err(plot_err)?;
        let label = match line.fit {
            Some(f) if f.lo.is_finite() => format!(
                "{}: slope {:.2} [{:.2}, {:.2}]",
                line.group, f.slope, f.lo, f.hi
            ),
            Some(f) => format!("{}: slope {:.2}", line.group, f.slope),
            None => format!("{}: no fit", line.group),
        };
        labels.push(label.clone());
        let means: Vec<(i32, i32)> = stats.iter().map(|s| pixel((s.0, s.1))).collect();
        marks.extend(&means);
        for pair in means.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            path.extend((1..8).map(|k| (ax + (bx - ax) * k / 8, ay + (by - ay) * k / 8)));
        }
        chart
            .draw_series(LineSeries::new(
                stats.iter().map(|s| (s.0, s.1)),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                stats
                    .iter()
                    .map(|s| Circle::new((s.0, s.1), 3, color.filled())),
            )
            .map_err(plot_err)?;
    }
    // Reference lines, dashed, each labelled at its right end with its column and value: grey
    // where several lines share the value, else in its line's colour, placed by
    // `label_baselines`.
    let mut dashes: Vec<(&str, f64, RGBColor)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for r in line.references.iter().filter(|r| r.drawn) {
            match dashes
                .iter_mut()
                .find(|d| d.0 == r.column && d.1 == r.value)
            {
                Some(shared) => shared.2 = RGBColor(90, 90, 90),
                None => dashes.push((&r.column, r.value, COLORS[i % COLORS.len()])),
            }
        }
    }
    dashes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows: Vec<i32> = dashes
        .iter()
        .map(|d| chart.backend_coord(&(x1.ln(), d.1.ln())).1)
        .collect();
    let frame_top = chart.backend_coord(&(x1.ln(), y1.ln())).1;
    let baselines = label_baselines(&rows, frame_top);
    for ((name, v, color), (&line_y, &baseline)) in dashes.iter().zip(rows.iter().zip(&baselines)) {
        let at = [(x0.ln(), v.ln()), (x1.ln(), v.ln())];
        chart
            .draw_series(DashedLineSeries::new(at, 8, 5, color.stroke_width(1)))
            .map_err(plot_err)?;
        let end = pixel((x1.ln(), v.ln()));
        path.extend((0..16).map(|k| (end.0 * k / 16, end.1)));
        marks.extend([
            (end.0 - 6, baseline - origin.1),
            (end.0 - 60, baseline - origin.1),
        ]);
        let style = ("sans-serif", 13)
            .into_font()
            .color(color)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        let label = format!("{name} {}", tick(*v));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x1.ln(), v.ln()))
                    + Text::new(label, (-6, baseline - line_y), style),
            ))
            .map_err(plot_err)?;
    }
    // The legend box as plotters sizes it: its text in 12-pixel sans-serif, 30 pixels for the
    // line samples and a margin of 10 on every side.
    let font: TextStyle = ("sans-serif", 12).into_font().into();
    let mut text = MultiLineText::<_, &str>::new((0, 0), &font);
    for label in &labels {
        text.push_line(label.as_str());
    }
    let (w, h) = text.estimate_dimension().map_err(plot_err)?;
    let (area_w, area_h) = chart.plotting_area().dim_in_pixel();
    let corner = legend_corner(
        (area_w as i32, area_h as i32),
        (w + 30 + 20, h + 20),
        &marks,
        &path,
    );
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Height in pixels of a reference line's label.
const LABEL_HEIGHT: i32 = 14;

/// The baselines (text bottoms, in pixels) of the labels of reference lines drawn at pixel
/// rows `rows` (top to bottom) under a frame whose top is `frame_top`. Lines closer than a
/// label's height form a cluster whose labels stack in the lines' order just above its top
/// line, or, where that would cross the frame or the labels above, just below its bottom
/// line; either way no label crosses a line of its cluster.
fn label_baselines(rows: &[i32], frame_top: i32) -> Vec<i32> {
    let mut baselines = Vec::with_capacity(rows.len());
    let mut next_free = frame_top + LABEL_HEIGHT + 2;
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end] - rows[end - 1] < LABEL_HEIGHT + 2 {
            end += 1;
        }
        let stacked = (end - start - 1) as i32 * LABEL_HEIGHT;
        let above = rows[start] - 3 - stacked;
        let first = if above >= next_free {
            above
        } else {
            (rows[end - 1] + LABEL_HEIGHT + 1).max(next_free)
        };
        baselines.extend((0..(end - start) as i32).map(|k| first + k * LABEL_HEIGHT));
        next_free = first + stacked + LABEL_HEIGHT;
        start = end;
    }
    baselines
}

/// Draws `figure` from the results at `results` (see [`results_file`]) into `out` (an SVG and
/// a PNG named after the figure) and records its fits in `out/fits.csv` (replacing earlier rows
/// of the same figure; a slope or interval that is not defined is an empty cell). Returns the
/// SVG's path and the lines. On an error nothing is written (see [`Figure::check`] and
/// [`lines`] for what is checked).
pub fn plot(results: &Path, figure: &Figure, out: &Path) -> Result<(PathBuf, Vec<Line>)> {
    let name = figure.stem();
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(Error::invalid(
            "figure name",
            format!("{name:?} is not a file stem"),
        ));
    }
    figure.check()?;
    let rows = read_results(results)?;
    let lines = lines(&rows, figure)?;
    let svg = out.join(format!("{name}.svg"));
    draw(&svg, &out.join(format!("{name}.png")), figure, &lines)?;
    let fits = out.join("fits.csv");
    let header = "figure,metric,axis,group,slope,slope_lo,slope_hi,points";
    let mut kept: Vec<String> = std::fs::read_to_string(&fits)
        .map(|t| {
            t.lines()
                .skip(1)
                .filter(|l| !l.starts_with(&format!("{name},")))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // A value that is not defined (no slope through a single x, no interval through fewer
    // than three points) is an empty cell.
    let number = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    for l in &lines {
        let (s, lo, hi, n) = l.fit.map_or((f64::NAN, f64::NAN, f64::NAN, 0), |f| {
            (f.slope, f.lo, f.hi, f.points)
        });
        let (s, lo, hi) = (number(s), number(lo), number(hi));
        kept.push(format!(
            "{name},{},{},\"{}\",{s},{lo},{hi},{n}",
            figure.y,
            figure.x,
            l.group.replace('"', "\"\"")
        ));
    }
    write_atomically(&fits, format!("{header}\n{}\n", kept.join("\n")).as_bytes())?;
    Ok((svg, lines))
}

#[cfg(test)]
mod tests {
    use plotters::chart::SeriesLabelPosition;

    use super::{file_word, legend_corner, log_marks, tick};

    /// The labels of the major marks of a log axis over `lo..hi`.
    fn labels(lo: f64, hi: f64) -> Vec<String> {
        log_marks(lo, hi).major.into_iter().map(tick).collect()
    }

    #[test]
    fn log_axes_are_marked_at_round_values() {
        // Widths 4–64 and epochs 4450–6630, padded by 1.25 as figures are: once at powers of e
        // (4.48, 7.39, 12.2, …; 4450, 5430, 6630).
        assert_eq!(labels(3.2, 80.0), ["5", "10", "20", "50"]);
        assert_eq!(labels(3560.0, 8287.5), ["4000", "5000", "6000", "8000"]);
        // t_mix 5–112: 1, 2, 5 × 10^k under two decades.
        assert_eq!(labels(4.0, 140.0), ["5", "10", "20", "50", "100"]);
        // Four decades or more: powers of ten, and every second one past ten of them.
        assert_eq!(labels(8e-5, 1.25), ["0.0001", "0.001", "0.01", "0.1", "1"]);
        assert_eq!(
            labels(1e-3, 1e12),
            [
                "0.01",
                "1",
                "100",
                "10000",
                "1000000",
                "100000000",
                "10000000000",
                "1000000000000"
            ]
        );
        // Narrower than the finer round values: evenly spaced ones.
        assert_eq!(
            labels(1.25, 1.95),
            ["1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9"]
        );
        assert_eq!(
            labels(102.0, 160.0),
            ["110", "120", "130", "140", "150", "160"]
        );
        // Minor grid lines at 1…9 × 10^k beside powers of ten and 1-2-5 marks.
        assert_eq!(log_marks(3.2, 80.0).minor.len(), 6 + 8);
        assert!(log_marks(3560.0, 8287.5).minor.is_empty());
    }

    /// Over every range a figure can have (at least a factor 1.25² = 1.5625, from its padding),
    /// at many offsets: two to eleven marks, inside the range, ascending, each label distinct
    /// and round: of at most two significant digits, or (evenly spaced marks) a multiple of a
    /// step of 1, 2 or 5 × 10^k.
    #[test]
    fn every_log_axis_gets_two_to_eleven_round_marks() {
        let significant = |t: &str| {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            digits.trim_matches('0').len()
        };
        for i in 0..200 {
            let lo = 10f64.powf(-6.0 + 0.0613 * f64::from(i));
            for factor in [
                1.5625, 1.8, 2.5, 3.0, 4.9, 7.0, 12.0, 60.0, 300.0, 1e3, 1e5, 1e9,
            ] {
                let hi = lo * factor;
                let marks = log_marks(lo, hi).major;
                let texts = labels(lo, hi);
                let shown = format!("{lo}..{hi}: {texts:?}");
                assert!((2..=11).contains(&marks.len()), "{shown}");
                assert!(marks.windows(2).all(|w| w[0] < w[1]), "{shown}");
                assert!(
                    marks
                        .iter()
                        .all(|&v| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9)),
                    "{shown}"
                );
                for (k, t) in texts.iter().enumerate() {
                    assert!(!texts[..k].contains(t), "{shown}");
                }
                if texts.iter().any(|t| significant(t) > 2) {
                    let step = marks[1] - marks[0];
                    let mantissa = step / 10f64.powf(step.log10().floor());
                    assert!(
                        [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
                        "{shown}"
                    );
                    for v in &marks {
                        let n = v / step;
                        assert!((n - n.round()).abs() < 1e-6, "{shown}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_legend_goes_to_the_corner_that_covers_fewest_points() {
        let (area, size) = ((700, 500), (200, 80));
        // Nothing in the way: upper left.
        assert_eq!(
            legend_corner(area, size, &[(350, 250)], &[]),
            SeriesLabelPosition::UpperLeft
        );
        // A falling line: its first point in the upper left, its last in the lower right.
        let falling = [(20, 20), (350, 250), (690, 490)];
        assert_eq!(
            legend_corner(area, size, &falling, &[]),
            SeriesLabelPosition::UpperRight
        );
        // Points in three corners, two in the lower left: the empty lower right.
        let three = [(20, 20), (690, 20), (20, 490), (30, 480)];
        assert_eq!(
            legend_corner(area, size, &three, &[]),
            SeriesLabelPosition::LowerRight
        );
        // A point in every corner, one more in the upper left: the line samples decide.
        let every = [(20, 20), (25, 25), (690, 20), (20, 490), (690, 490)];
        let path = [(600, 30), (610, 30), (30, 450)];
        assert_eq!(
            legend_corner(area, size, &every, &path),
            SeriesLabelPosition::LowerRight
        );
    }

    /// Reference labels never cross a line of their cluster nor each other: above their line
    /// where there is room, the labels of close lines stacked above or below them all.
    #[test]
    fn reference_labels_clear_their_lines() {
        use super::{label_baselines, LABEL_HEIGHT};
        let clear = |rows: &[i32], frame_top: i32| {
            let b = label_baselines(rows, frame_top);
            for (i, &bi) in b.iter().enumerate() {
                let span = bi - LABEL_HEIGHT..=bi;
                assert!(
                    span.start() > &frame_top,
                    "{rows:?}: label {i} crosses the frame"
                );
                for &r in rows {
                    assert!(
                        !span.contains(&r),
                        "{rows:?}: label {i} {span:?} crosses line {r}"
                    );
                }
                if i > 0 {
                    assert!(bi - b[i - 1] >= LABEL_HEIGHT, "{rows:?}: labels overlap");
                }
            }
            b
        };
        assert_eq!(clear(&[100, 200], 45), vec![97, 197]);
        assert_eq!(clear(&[100, 104], 45), vec![83, 97]);
        assert_eq!(clear(&[62, 66], 45), vec![81, 95]);
        clear(&[50, 52, 54, 120, 300, 305], 45);
    }

    #[test]
    fn filter_values_become_plain_file_words() {
        assert_eq!(file_word("[1, 2, 0]"), "1-2-0");
        assert_eq!(file_word("lazy(0.5)"), "lazy-0.5");
        assert_eq!(file_word("-0.25"), "-0.25");
        assert_eq!(file_word("1e-3"), "1e-3");
        assert_eq!(file_word("a b/c"), "a-b-c");
    }

    #[test]
    fn ticks_keep_three_significant_digits() {
        assert_eq!(tick(4914.769), "4910");
        assert_eq!(tick(36315.5), "36300");
        assert_eq!(tick(0.5493), "0.549");
        assert_eq!(tick(7.389), "7.39");
        assert_eq!(tick(20.0), "20");
        assert_eq!(tick(0.0012345), "0.00123");
    }
}
