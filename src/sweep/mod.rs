//! `icq sweep` and `icq merge`: a grid of configs (every combination of the `[sweep]` axes,
//! times the seeds) on the chosen backend — a unit is one (grid point, seed); consecutive units
//! whose checkpoint epochs and parameter storage agree run packed in one batch (as many as fit
//! 512 MiB of instance state and 64 MiB of model tables), each grid point with its own model,
//! learner and one oracle for its seeds — one row per (grid point, seed, checkpoint) with every
//! knob, every exact figure and the mean and standard deviation over instances of every metric.
//!
//! A `[sweep]` table holds lists (axes shared by the whole sweep), `seeds` (without it, the
//! one seed `[run] seed`; with it, `[run] seed` is left aside), and optionally
//! tables `[sweep.NAME]`, each a study with its own axes (lists) and fixed settings (any other
//! value), so that one config can run several grids — `examples/bound.toml` runs the four
//! studies of the bound; rows then carry a `study` column. `[[figure]]` tables name figures
//! (see [`crate::plot::figures_of`]) drawn into the output folder once the grid is complete.
//!
//! Each finished unit is written at once to `DIR/parts/` through a temporary file and a
//! rename, so a sweep killed at any moment and started again with `--resume` redoes no
//! finished unit and loses or duplicates no row. `--shard k/n` (or the Slurm / Kubernetes
//! array index) runs the units u with u mod n = k − 1; `icq merge` joins shard folders, checks
//! that every unit is there exactly once, and writes the same files an unsharded run writes.
//!
//! The work is split by responsibility: `grid` expands a config into its units, `shard` says
//! which units a shard runs, `pack` groups the units left to run into batches, `run` runs them
//! (`sweep`), `figures` checks and draws the `[[figure]]`s, and `output` keeps the output
//! folders (unit files, grid file, manifests) and joins them into results (`collect`, `merge`).

mod figures;
mod grid;
mod output;
mod pack;
mod run;
mod shard;

pub use figures::Figures;
pub use grid::{expand, Unit};
pub use output::{collect, merge};
pub use run::{check, sweep, SweepReport};
pub use shard::Shard;
