//! Shards: which units of a grid one process runs (`--shard k/n`, or a Slurm job array's or
//! a Kubernetes Indexed Job's index from the environment).

use crate::error::{Error, Result};

/// Which units a shard runs: `k` of `n`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1 ≤ k ≤ n.
    pub k: usize,
    /// The number of shards.
    pub n: usize,
}

impl Shard {
    /// Parses `k/n`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "--shard",
                format!("expected k/n with 1 ≤ k ≤ n, found \"{s}\""),
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    /// The shard named by the environment: Slurm job arrays (`SLURM_ARRAY_TASK_ID` from 0 and
    /// `SLURM_ARRAY_TASK_COUNT`) or Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX` from 0 and
    /// `ICQ_SHARDS`, the completion count); `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok();
        let pair =
            match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
                (Some(id), Some(count)) => Some((id, count, "SLURM_ARRAY_TASK_ID")),
                (Some(_), None) => return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    "SLURM_ARRAY_TASK_ID is set: set SLURM_ARRAY_TASK_COUNT to the array's size (or pass --shard k/n)",
                )),
                _ => match (var("JOB_COMPLETION_INDEX"), var("ICQ_SHARDS")) {
                    (Some(id), Some(count)) => Some((id, count, "JOB_COMPLETION_INDEX")),
                    (Some(_), None) => return Err(Error::invalid(
                        "ICQ_SHARDS",
                        "JOB_COMPLETION_INDEX is set: set ICQ_SHARDS to the job's completion count",
                    )),
                    _ => None,
                },
            };
        let Some((id, count, name)) = pair else {
            return Ok(None);
        };
        let bad = || {
            Error::invalid(
                name,
                format!("expected an index below the shard count, found {id} of {count}"),
            )
        };
        let count_name = if name == "SLURM_ARRAY_TASK_ID" {
            "SLURM_ARRAY_TASK_COUNT"
        } else {
            "ICQ_SHARDS"
        };
        let count: usize = count.parse().map_err(|_| {
            Error::invalid(
                count_name,
                format!("expected the number of shards, found {count:?}"),
            )
        })?;
        let id: usize = id.parse().map_err(|_| bad())?;
        if id >= count {
            return Err(bad());
        }
        Ok(Some(Self {
            k: id + 1,
            n: count,
        }))
    }

    /// Whether unit `index` belongs to this shard.
    pub fn takes(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}
