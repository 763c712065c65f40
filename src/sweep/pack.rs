//! Packing: the units left to run, grouped into batches that share checkpoint epochs and
//! parameter storage and fit a bounded size (instance state and model tables), and the check
//! that the largest unit alone fits the host's memory.

use super::grid::Unit;
use crate::error::Result;
use crate::learn::net::NetLayout;
use crate::learn::Weights;

/// Bytes of instance state (parameters and records) one packed batch may hold.
const PACK_BYTES: usize = 512 << 20;

/// The units to run, packed into batches: per batch, its grid points in order, per point the
/// units (seeds) it runs. Consecutive units share a batch while their checkpoint epochs and
/// parameter storage agree, their instance state fits [`PACK_BYTES`] and their model tables
/// [`PACK_TABLE_BYTES`] (a unit larger than that runs alone); each point keeps one model,
/// learner and oracle, whatever its neighbours in the batch.
pub(super) fn packs<'a>(todo: &[&&'a Unit]) -> Result<Vec<Vec<Vec<&'a Unit>>>> {
    // A quarter of the memory available, where that is less: a batch's Q tables, metrics and
    // the device's copies come on top of its state.
    let pack_bytes =
        crate::io::available_memory().map_or(PACK_BYTES, |m| PACK_BYTES.min((m / 4) as usize));
    let mut out: Vec<Vec<Vec<&Unit>>> = Vec::new();
    let (mut bytes, mut tables, mut key) = (0, 0, (Vec::new(), Weights::F32));
    for &&unit in todo {
        let cfg = &unit.input.config;
        let own = (cfg.run.checkpoint_epochs()?, cfg.learner.weights);
        let (size, point_tables) = unit_bytes(unit);
        let new_point = out
            .last()
            .and_then(|p| p.last())
            .is_none_or(|p| p[0].point != unit.point);
        // A point's tables count once, however many of its seeds the batch holds.
        let more_tables = if new_point { point_tables } else { 0 };
        let joins = !out.is_empty()
            && own == key
            && bytes + size <= pack_bytes
            && tables + more_tables <= PACK_TABLE_BYTES;
        if !joins {
            out.push(Vec::new());
            (bytes, tables, key) = (0, point_tables, own);
        } else {
            tables += more_tables;
        }
        bytes += size;
        let pack = out.last_mut().expect("a pack");
        match pack.last_mut() {
            Some(point) if point[0].point == unit.point => point.push(unit),
            _ => pack.push(vec![unit]),
        }
    }
    Ok(out)
}

/// Refuses, before any work, units (this shard's) of which the largest alone needs more host
/// memory than the system has available (batches are packed to a bounded size, but a unit is
/// never split), naming its grid point.
pub(super) fn check_unit_memory(units: &[&Unit]) -> Result<()> {
    let mut largest: Option<(u64, u64, &Unit)> = None;
    for (i, &unit) in units.iter().enumerate() {
        if i > 0 && units[i - 1].point == unit.point {
            continue;
        }
        let (cfg, model) = (&unit.input.config, &unit.input.model);
        let l = &cfg.learner;
        let layout = NetLayout::new(&model.space(), model.actions, l.mode, l.network, l.encoding);
        let checkpoints = cfg.run.checkpoint_epochs()?.len();
        let each = crate::backend::instance_bytes(&layout, model.agents.len(), checkpoints);
        let instances = u64::from(cfg.run.instances);
        if largest.is_none_or(|(n, e, _)| instances.saturating_mul(each) > n.saturating_mul(e)) {
            largest = Some((instances, each, unit));
        }
    }
    let Some((instances, each, unit)) = largest else {
        return Ok(());
    };
    let field = match &unit.study {
        Some(study) => format!("run.instances (grid point {}, study {study})", unit.point),
        None => format!("run.instances (grid point {})", unit.point),
    };
    let checkpoints = unit.input.config.run.checkpoint_epochs()?.len();
    let holds = crate::backend::instance_holds(checkpoints);
    crate::io::check_memory(instances, each, holds, &field)
}

/// Bytes of model tables one packed batch may hold (device backends bind them whole; the
/// smallest storage-binding limit of common adapters is 128 MiB).
const PACK_TABLE_BYTES: usize = 64 << 20;

/// Bytes of a unit's instance state (parameters and records), and of its model tables on a
/// device (an estimate from above: transition tables, rewards, per-state decoding, the
/// stationary law and the input features).
fn unit_bytes(unit: &Unit) -> (usize, usize) {
    let (cfg, model) = (&unit.input.config, &unit.input.model);
    let space = model.space();
    let l = &cfg.learner;
    let layout = NetLayout::new(&space, model.actions, l.mode, l.network, l.encoding);
    let state = crate::backend::instance_bytes(&layout, space.agents, 0) as usize;
    let s = model.artifact_states;
    let options: usize = model
        .options
        .iter()
        .map(|o| {
            let m = space.private_states[o.executor];
            s * s + m * m + s * m + 8
        })
        .sum();
    let tables = options
        + space.states * (4 + space.agents)
        + 2 * layout.feat_idx.len()
        + layout.units.len() * 8;
    (state * cfg.run.instances as usize, 4 * tables)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{packs, unit_bytes, PACK_BYTES, PACK_TABLE_BYTES};
    use crate::sweep::{expand, Unit};

    /// (point, seed) of every unit, per point, per batch.
    fn shape(refs: &[&&Unit]) -> Vec<Vec<Vec<(usize, u64)>>> {
        packs(refs)
            .unwrap()
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|point| point.iter().map(|u| (u.point, u.seed)).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn grid_points_with_the_same_checkpoints_share_a_batch() {
        let text = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
            [learner]\nnetwork = \"tabular\"\n[run]\ninstances = 4\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.2]\nepochs = [10, 20]\nseeds = [1, 2, 3]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        // Points: (10 epochs, η 0), (10, η 0.2), (20, η 0), (20, η 0.2): two batches of two.
        let seeds = |p: usize| vec![(p, 1), (p, 2), (p, 3)];
        assert_eq!(
            shape(&refs),
            [vec![seeds(0), seeds(1)], vec![seeds(2), seeds(3)]]
        );
        // The same epochs: both points in one batch.
        let text = text.replace("epochs = [10, 20]\n", "");
        let units = expand(&text, Path::new("sweep.toml")).unwrap();
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        assert_eq!(
            shape(&refs),
            [vec![
                vec![(0, 1), (0, 2), (0, 3)],
                vec![(1, 1), (1, 2), (1, 3)]
            ]]
        );
        // A resumed or sharded run packs what is left.
        let left: Vec<&&_> = refs.iter().copied().filter(|u| u.seed != 2).collect();
        assert_eq!(
            shape(&left),
            [vec![vec![(0, 1), (0, 3)], vec![(1, 1), (1, 3)]]]
        );
    }

    #[test]
    fn a_batch_holds_what_fits_its_bytes() {
        let text = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
            [learner]\nnetwork = { mlp = { width = 64, depth = 2 } }\n\
            [run]\ninstances = 10000\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.2]\nseeds = [1, 2]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let size = unit_bytes(&units[0]).0;
        assert!(
            size > PACK_BYTES / 2 && size <= PACK_BYTES,
            "{size} bytes: the test needs one unit per batch"
        );
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        let one = |p: usize, seed: u64| vec![vec![(p, seed)]];
        assert_eq!(shape(&refs), [one(0, 1), one(0, 2), one(1, 1), one(1, 2)]);
    }

    #[test]
    fn a_batch_holds_what_fits_its_model_tables() {
        let text = "[model]\nagents = 2\nartifact_states = 1900\ninterface_states = 4\n\
            [learner]\nnetwork = \"tabular\"\n[run]\ninstances = 2\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.1, 0.2]\nseeds = [1, 2]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let size = unit_bytes(&units[0]).1;
        assert!(
            size > PACK_TABLE_BYTES / 3 && size <= PACK_TABLE_BYTES / 2,
            "{size} bytes: the test needs two points per batch"
        );
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        // The tables of a point count once, whatever its seeds.
        let point = |p: usize| vec![(p, 1), (p, 2)];
        assert_eq!(shape(&refs), [vec![point(0), point(1)], vec![point(2)]]);
    }
}
