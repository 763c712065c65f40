//! `icq plot`: log–log figures (SVG and PNG, plotters) of a metric against an axis of a
//! sweep's results, one line per value of a second axis, the seeds as a band, and the fitted
//! slope with its 95% interval in the legend; the fits also go to `fits.csv`.
//!
//! Text is set in DejaVu Sans, embedded in the binary (`assets/fonts/`, Bitstream Vera
//! license), so figures look the same on every machine and need no system fonts.
//!
//! This module holds the figure request ([`Figure`], [`figures_of`]) and [`plot`], which draws
//! one figure and records its fits; the work is split in three submodules: `data` reads the
//! rows and builds each figure's [`Line`]s, fits and [`Reference`] values ([`lines`]), `axis`
//! marks the log axes at round values, and `draw` renders the figure ([`draw()`]).

mod axis;
mod data;
mod draw;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::write_atomically;

pub use data::{lines, notes, read_results, results_file, Line, Reference};
pub use draw::draw;

/// One figure's request.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The column on the x axis (a knob or an exact figure, e.g. `interface_term`).
    pub x: String,
    /// The metrics on the y axis (e.g. `q_err_obs`; `interface_term` and `ais_bound`), each
    /// its own line or lines.
    pub y: Vec<String>,
    /// The column whose values get one line each (none: one line).
    pub group: Option<String>,
    /// The checkpoint to plot: a 0-based index into the `checkpoint` column (0 is the first
    /// checkpoint taken), not an epoch (default: the last; every checkpoint when x is `epoch`).
    pub checkpoint: Option<u64>,
    /// Only rows whose column `key` reads `value`, for every pair: numbers compare as numbers
    /// (`0.20` keeps the rows at 0.2), other cells as the text printed in the CSV.
    pub filter: Vec<(String, String)>,
    /// The file stem (default: `Y_vs_X[_by_GROUP]`, the metrics joined by `_and_` and
    /// `_excess` before `_vs_` in an excess figure, then `_COLUMN-VALUE` per filter with the
    /// value's characters other than letters, digits, `.`, `+` and `-` made one `-`).
    pub name: Option<String>,
    /// Columns drawn as dashed horizontal reference lines (an exact figure such as
    /// `interface_term`, the floor of `q_err`, or `uniform_policy_gap`): each must hold one
    /// number across the rows of each line; drawn grey where several lines share the value,
    /// else in the line's colour; a value log axes cannot place near the data (zero or below,
    /// or more than three decades away) is left out (see [`Reference::drawn`]).
    pub reference: Vec<String>,
    /// Each line drawn as its excess over its smallest x: the points (x − x₀, y² − m₀), where
    /// x₀ is the line's smallest x and m₀ the mean of y² over its rows there (which are
    /// themselves not drawn, nor any point whose excess is not above zero). The log–log slope
    /// is +1 where y² grows in proportion to x past a part that does not depend on x: DESIGN
    /// §4's test of mixing, where at a fixed budget with a constant step the floor of
    /// q_err_obs² grows as α·t_mix.
    pub excess: bool,
}

impl Figure {
    /// Every column the figure reads: x, y, the group, the filters' and the references'.
    pub fn columns(&self) -> impl Iterator<Item = &String> {
        [Some(&self.x), self.group.as_ref()]
            .into_iter()
            .flatten()
            .chain(&self.y)
            .chain(self.filter.iter().map(|(k, _)| k))
            .chain(&self.reference)
    }

    /// Refuses a figure whose settings contradict each other, naming them: a group that is the
    /// x axis (every line would hold one x, and no slope), and a checkpoint with x = `epoch`
    /// (each checkpoint is taken at one epoch, so every point would share one x).
    pub fn check(&self) -> Result<()> {
        if self.y.is_empty() {
            return Err(Error::invalid("y", "no metric to draw"));
        }
        if let Some((i, twice)) =
            (self.y.iter().enumerate()).find(|(i, y)| self.y[..*i].contains(y))
        {
            return Err(Error::invalid(
                "y",
                format!(
                    "{twice} is listed twice (as metric {} and {})",
                    self.y.iter().position(|y| y == twice).unwrap_or(0) + 1,
                    i + 1
                ),
            ));
        }
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
        if let (true, Some(r)) = (self.excess, self.reference.first()) {
            return Err(Error::invalid(
                "reference",
                format!(
                    "{r} is drawn at its own value, but an excess figure draws y² less its value \
                     at the smallest x: leave the reference out of this figure"
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

    /// The name of metric `y` and of the x axis in the figure: the columns, or what an
    /// excess figure draws of them.
    pub fn axis_names(&self, y: &str) -> (String, String) {
        if self.excess {
            (format!("{y}² − {y}²₀"), format!("{0} − {0}₀", self.x))
        } else {
            (y.to_string(), self.x.clone())
        }
    }

    /// The file stem of this figure.
    pub fn stem(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let excess = if self.excess { "_excess" } else { "" };
        let mut stem = format!("{}{excess}_vs_{}", self.y.join("_and_"), self.x);
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
                    "excess",
                ]
                .contains(&key.as_str())
                {
                    return Err(Error::invalid(
                        at(key),
                        "unknown key (expected x, y, group, checkpoint, name, where, reference, \
                         excess)",
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
            // A list of column names under `key`.
            let names = |key: &str, list: &[toml::Value]| -> Result<Vec<String>> {
                (list.iter())
                    .map(|c| {
                        c.as_str().map(str::to_string).ok_or_else(|| {
                            Error::invalid(at(key), format!("expected column names, found {c}"))
                        })
                    })
                    .collect()
            };
            let reference = match table.get("reference") {
                None => Vec::new(),
                Some(toml::Value::Array(columns)) => names("reference", columns)?,
                Some(v) => {
                    return Err(Error::invalid(
                        at("reference"),
                        format!("expected a list of column names, found {v}"),
                    ))
                }
            };
            let y = match table.get("y") {
                None => return Err(Error::invalid(at("y"), "missing")),
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(toml::Value::Array(metrics)) if !metrics.is_empty() => names("y", metrics)?,
                Some(v) => {
                    return Err(Error::invalid(
                        at("y"),
                        format!("expected a column name or a list of them, found {v}"),
                    ))
                }
            };
            Ok(Figure {
                x: required("x")?,
                y,
                group: text("group")?,
                checkpoint,
                filter,
                name: text("name")?,
                reference,
                excess: match table.get("excess") {
                    None => false,
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(v) => {
                        return Err(Error::invalid(
                            at("excess"),
                            format!("expected true or false, found {v}"),
                        ))
                    }
                },
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
    // Column names hold no comma or quote; a group's value may.
    for l in &lines {
        let (y, x) = figure.axis_names(&l.metric);
        let (s, lo, hi, n) = l
            .fit
            .map_or((f64::NAN, f64::NAN, f64::NAN, l.on_axes()), |f| {
                (f.slope, f.lo, f.hi, f.points)
            });
        let (s, lo, hi) = (number(s), number(lo), number(hi));
        kept.push(format!(
            "{name},{y},{x},\"{}\",{s},{lo},{hi},{n}",
            l.group.replace('"', "\"\"")
        ));
    }
    write_atomically(&fits, format!("{header}\n{}\n", kept.join("\n")).as_bytes())?;
    Ok((svg, lines))
}

#[cfg(test)]
mod tests {
    use super::file_word;

    #[test]
    fn filter_values_become_plain_file_words() {
        assert_eq!(file_word("[1, 2, 0]"), "1-2-0");
        assert_eq!(file_word("lazy(0.5)"), "lazy-0.5");
        assert_eq!(file_word("-0.25"), "-0.25");
        assert_eq!(file_word("1e-3"), "1e-3");
        assert_eq!(file_word("a b/c"), "a-b-c");
    }
}
