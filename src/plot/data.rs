//! The data side of a figure: finding and reading the rows file (`results.jsonl` or
//! `checkpoints.jsonl`), keeping the rows a figure's filters and checkpoint select, and building
//! one [`Line`] per group with its log–log fit and its [`Reference`] values, marked drawn where
//! log axes can place them near the data.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Figure;
use crate::error::{Error, Result};
use crate::fit::{fit_loglog, on_log_axes, Fit};

/// One line of a figure and its fit.
#[derive(Clone, Debug)]
pub struct Line {
    /// The metric it draws (one of the figure's y columns).
    pub metric: String,
    /// The group's value (`all` without a group).
    pub group: String,
    /// What the legend calls it: the group's value, after the metric's name when the figure
    /// draws several.
    pub label: String,
    /// (x, y) of every row.
    pub points: Vec<(f64, f64)>,
    /// The fit over all points.
    pub fit: Option<Fit>,
    /// The figure's reference columns and their value on this line's rows.
    pub references: Vec<Reference>,
    /// Rows of this line left out because x or y is not a number there (null: e.g. a mean
    /// over instances that all diverged; or missing, in rows merged from an older sweep).
    pub skipped: usize,
}

/// What a figure of `lines` (x axis `x`) left out, a line each: rows whose x or y is not a
/// number, points at or below zero on a log axis, references log axes cannot place.
pub fn notes(lines: &[Line], x: &str) -> Vec<String> {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = Vec::new();
    for l in lines {
        let off = l.points.len() - l.on_axes();
        if off > 0 {
            out.push(format!(
                "line {}: {off} point{} at or below zero left off the log axes",
                l.label,
                plural(off)
            ));
        }
        if l.skipped > 0 {
            out.push(format!(
                "line {}: {} row{} left out, {x} or {} not a number there (null: e.g. every instance diverged)",
                l.label,
                l.skipped,
                plural(l.skipped),
                l.metric
            ));
        }
    }
    for l in lines {
        for r in l.references.iter().filter(|r| !r.drawn) {
            out.push(format!(
                "reference {} = {:e} on line {} left out: log axes cannot place it near the data",
                r.column, r.value, l.label
            ));
        }
    }
    out
}

impl Line {
    /// The points log axes can place (x and y finite and above zero): those drawn, and those a
    /// fit runs through.
    pub fn on_axes(&self) -> usize {
        self.points.iter().filter(|p| on_log_axes(p)).count()
    }
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
/// group's value where every value is a number, else in text order. The figure itself is
/// taken as [`Figure::check`] passes it (at least one metric, none twice).
pub fn lines(rows: &[Map<String, Value>], figure: &Figure) -> Result<Vec<Line>> {
    if rows.is_empty() {
        return Err(Error::invalid("results", "no rows"));
    }
    let mut all = Vec::new();
    for y in &figure.y {
        let mut lines = metric_lines(rows, figure, y)?;
        if figure.y.len() > 1 {
            for l in &mut lines {
                l.label = match figure.group {
                    Some(_) => format!("{y}, {}", l.group),
                    None => y.clone(),
                };
            }
        }
        all.extend(lines);
    }
    if figure.excess && all.iter().all(|l| l.points.is_empty()) {
        return Err(Error::invalid(
            "excess",
            format!(
                "an excess figure draws each line past its smallest {0}, but every line holds a \
                 single {0}: it needs two values of {0} or more on a line",
                figure.x
            ),
        ));
    }
    Ok(place_references(all))
}

/// The lines of metric `y` of `figure` (see [`lines`]).
fn metric_lines(rows: &[Map<String, Value>], figure: &Figure, y: &str) -> Result<Vec<Line>> {
    // Every column of any row: rows merged from other sweeps may lack some.
    let mut seen = std::collections::HashSet::new();
    let columns: Vec<&str> = rows
        .iter()
        .flat_map(Map::keys)
        .filter(|k| seen.insert(*k))
        .map(String::as_str)
        .collect();
    for key in figure.columns() {
        if !columns.contains(&key.as_str()) {
            return Err(Error::invalid(
                key.clone(),
                format!(
                    "not a column of the results; columns: {}",
                    columns.join(", ")
                ),
            ));
        }
    }
    let all: Vec<&Map<String, Value>> = rows.iter().collect();
    for (axis, key) in [("x", &figure.x), ("y", &y.to_string())] {
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
        _ => None,
    };
    // Without a checkpoint named, each unit's last (units may take different numbers of
    // checkpoints: the studies of one sweep, say), except against the epoch, where every
    // checkpoint is a point; rows without a checkpoint column are all kept.
    let unit = |r: &Map<String, Value>| {
        ["study", "point", "seed", "instance"]
            .map(|k| r.get(k).map_or(String::new(), cell))
            .join("\u{1f}")
    };
    let mut last: HashMap<String, u64> = HashMap::new();
    if figure.checkpoint.is_none() && figure.x != "epoch" {
        for r in &kept {
            if let Some(i) = index(r) {
                let at = last.entry(unit(r)).or_insert(i);
                *at = (*at).max(i);
            }
        }
    }
    let taken = |r: &Map<String, Value>| match (checkpoint, index(r)) {
        (Some(c), i) => i == Some(c),
        (None, Some(i)) if !last.is_empty() => last.get(&unit(r)) == Some(&i),
        _ => true,
    };
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    // Per group, per reference column: every distinct cell of its rows.
    let mut refs: BTreeMap<String, Vec<Vec<&Value>>> = BTreeMap::new();
    // Per group, its value as a number, where it reads as one.
    let mut numbers: BTreeMap<String, Option<f64>> = BTreeMap::new();
    // Per group, its rows left out for an x or y that is not a number.
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for r in kept.into_iter().filter(|r| taken(r)) {
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
        // A row whose x or y is not a number (null, or missing in rows merged from another
        // sweep) is skipped, and counted.
        let value = |key: &str| r.get(key).and_then(Value::as_f64);
        let (Some(x), Some(y)) = (value(&figure.x), value(y)) else {
            *skipped.entry(group.clone()).or_default() += 1;
            // A line whose every row is skipped is still a line (with no point), so that the
            // rows it lost are said.
            groups.entry(group).or_default();
            continue;
        };
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
    if groups.values().all(Vec::is_empty) {
        let at = checkpoint.map_or(String::new(), |c| format!(" at checkpoint {c}"));
        return Err(Error::invalid(
            y.to_string(),
            format!("no row kept{at} has numbers in both {} and {y}", figure.x),
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
            // A line with no point has no reference to draw.
            let no_reference = Vec::new();
            let cells = if points.is_empty() {
                &no_reference
            } else {
                &refs[&group]
            };
            let references = figure
                .reference
                .iter()
                .zip(cells)
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
            let points = if figure.excess {
                excess(&points)
            } else {
                points
            };
            Ok(Line {
                fit: fit_loglog(&points),
                metric: y.to_string(),
                label: group.clone(),
                skipped: skipped.get(&group).copied().unwrap_or(0),
                group,
                points,
                references,
            })
        })
        .collect::<Result<Vec<_>>>()
}

/// `points` as their excess over the smallest x: (x − x₀, y² − m₀) for every point past x₀,
/// m₀ the mean of y² at x₀ (see [`Figure::excess`]).
fn excess(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let x0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let at_x0: Vec<f64> = (points.iter().filter(|p| p.0 == x0))
        .map(|p| p.1 * p.1)
        .collect();
    let m0 = at_x0.iter().sum::<f64>() / at_x0.len() as f64;
    (points.iter().filter(|p| p.0 > x0))
        .map(|&(x, y)| (x - x0, y * y - m0))
        .collect()
}

/// Marks which references log axes can place near the data: above zero and within three
/// decades of the y values drawn (an interface term of zero, or rounding noise far below the
/// data, would squeeze the lines into a corner).
fn place_references(mut lines: Vec<Line>) -> Vec<Line> {
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|p| on_log_axes(p))
        .map(|p| p.1);
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    for r in lines.iter_mut().flat_map(|l| l.references.iter_mut()) {
        r.drawn = r.value > 0.0 && (lo / 1e3..=hi * 1e3).contains(&r.value);
    }
    lines
}
