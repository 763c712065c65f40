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

    /// The shard named by the environment: Slurm job arrays (`SLURM_ARRAY_TASK_ID`, counted
    /// from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP` (0 and 1 where unset),
    /// and `SLURM_ARRAY_TASK_COUNT`, so `--array=0-7` and `--array=1-8` both make eight
    /// shards) or Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX` from 0 and `ICQ_SHARDS`, the
    /// completion count); `None` when neither is set.
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
        let slurm = name == "SLURM_ARRAY_TASK_ID";
        let count_name = if slurm {
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
        let number = |field: &str, default: usize| -> Result<usize> {
            match var(field).filter(|_| slurm) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    Error::invalid(field, format!("expected a task number, found {v:?}"))
                }),
            }
        };
        // An array of one task is, as a rule, one task of a larger array submitted again:
        // its shard of that array cannot be told, and taking it for the whole grid would run
        // every unit into that task's folder.
        if slurm && count == 1 {
            return Err(Error::invalid(
                count_name,
                "an array of one task cannot say which shard of the sweep it is (resubmitted \
                 alone, a task of a larger array has SLURM_ARRAY_TASK_COUNT = 1): resubmit \
                 the whole array, whose finished shards have nothing left to do with --resume, \
                 or pass --shard k/n",
            ));
        }
        let (min, step) = (
            number("SLURM_ARRAY_TASK_MIN", 0)?,
            number("SLURM_ARRAY_TASK_STEP", 1)?.max(1),
        );
        let bad = || {
            let array = if slurm {
                let task = |j: usize| j.saturating_mul(step).saturating_add(min);
                let tasks = match count {
                    0..=3 => (0..count)
                        .map(|j| task(j).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => format!("{}, {}, … {}", task(0), task(1), task(count - 1)),
                };
                format!(
                    " (an array from {min} in steps of {step}: its tasks are {tasks}; for \
                     other arrays pass --shard k/n)"
                )
            } else {
                String::new()
            };
            Error::invalid(
                name,
                format!("expected one of the {count} shards' indices, found {id}{array}"),
            )
        };
        let id: usize = id.trim().parse().map_err(|_| bad())?;
        let offset = id.checked_sub(min).ok_or_else(bad)?;
        if offset % step != 0 || offset / step >= count {
            return Err(bad());
        }
        Ok(Some(Self {
            k: offset / step + 1,
            n: count,
        }))
    }

    /// Whether unit `index` belongs to this shard.
    pub fn takes(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}
