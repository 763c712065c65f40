//! A sweep's `[[figure]]`s: read from its config, checked against the columns its results
//! will have before any work, and drawn into the output folder once the grid is complete.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::grid::Unit;
use super::run::unit_rows;
use crate::error::{Error, Result};
use crate::records::Record;

/// What became of a sweep's `[[figure]]`s.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Figures drawn.
    pub drawn: usize,
    /// Figures that could not be drawn, each with why (a column that is not there, a filter
    /// that keeps no row, nothing positive to put on log axes…).
    pub failed: Vec<String>,
    /// What the figures drawn left out (see [`crate::plot::notes`]), each after its figure's
    /// name.
    pub notes: Vec<String>,
}

/// Refuses, before any work, a `[[figure]]` that reads a column the sweep's results will not
/// have (a misspelt metric or an axis the grid does not vary under that name), one that every
/// row leaves empty (a setting no grid point sets, such as `clip`), an axis that is text in
/// every row, or a checkpoint past the last one.
pub(super) fn check_figure_columns(figures: &[crate::plot::Figure], units: &[Unit]) -> Result<()> {
    if figures.is_empty() {
        return Ok(());
    }
    let mut columns: Vec<String> = Vec::new();
    // The values each context column takes over the grid, where known before the oracle
    // runs (`None` once any point leaves it to the oracle).
    let mut known: BTreeMap<String, Option<Vec<Value>>> = BTreeMap::new();
    let mut checkpoints = 0;
    // A point's seeds share its columns.
    for (i, unit) in units.iter().enumerate() {
        checkpoints = checkpoints.max(unit.input.config.run.checkpoint_epochs()?.len());
        if i > 0 && units[i - 1].point == unit.point {
            continue;
        }
        let context = crate::run::context_columns(&unit.input);
        let mut ctx = Record::default();
        for (key, value) in context {
            ctx.push(&key, Value::Null);
            let values = known.entry(key).or_insert_with(|| Some(Vec::new()));
            match (values.as_mut(), value) {
                (Some(values), Some(v)) => values.push(v),
                _ => *values = None,
            }
        }
        // One checkpoint with no instances: every column, each null.
        for (key, _) in &unit_rows(unit, &ctx, &[Vec::new()])[0].0 {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let every = |key: &str, test: fn(&Value) -> bool| {
        known
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(|values| values.iter().all(test))
    };
    for (i, figure) in figures.iter().enumerate() {
        let refuse = |why: String| Err(Error::invalid(format!("figure[{i}]"), why));
        if let Some(key) = figure.columns().find(|k| !columns.contains(k)) {
            return refuse(format!(
                "reads `{key}`, which is not a column of this sweep's results; columns: {}",
                columns.join(", ")
            ));
        }
        if let Some(key) = figure.columns().find(|k| every(k, Value::is_null)) {
            let setting = if crate::run::PIPELINE_COLUMNS.contains(&key.as_str()) {
                "[run] pipeline".to_string()
            } else {
                format!("`{key}`")
            };
            return refuse(format!(
                "reads `{key}`, but no grid point sets {setting}, so it is empty"
            ));
        }
        let axes = std::iter::once(("x", &figure.x)).chain(figure.y.iter().map(|y| ("y", y)));
        for (axis, key) in axes {
            if every(key, Value::is_string) {
                return refuse(format!(
                    "{axis} = `{key}` is text in every row, not a number: plot it as `group`, \
                     or plot a number against it"
                ));
            }
        }
        if let Some(c) = figure.checkpoint.filter(|&c| c >= checkpoints as u64) {
            return refuse(format!(
                "checkpoint = {c}, but the grid takes at most {checkpoints} checkpoints \
                 (0 to {})",
                checkpoints.saturating_sub(1)
            ));
        }
    }
    Ok(())
}

/// The `[[figure]]` entries of the sweep config `text` at `path`.
pub(super) fn figures_in(text: &str, path: &Path) -> Result<Vec<crate::plot::Figure>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    crate::plot::figures_of(&table)
}

/// Draws `figures` from the results in `out` into `out`; a figure that fails is reported, not
/// fatal.
pub(super) fn draw_figures(out: &Path, figures: &[crate::plot::Figure]) -> Figures {
    let mut done = Figures::default();
    for figure in figures {
        match crate::plot::plot(out, figure, out) {
            Ok((_, lines)) => {
                done.drawn += 1;
                let name = figure.stem();
                (done.notes).extend(
                    crate::plot::notes(&lines, &figure.x)
                        .into_iter()
                        .map(|n| format!("{name}: {n}")),
                );
            }
            Err(e) => done.failed.push(format!("figure {}: {e}", figure.stem())),
        }
    }
    done
}
