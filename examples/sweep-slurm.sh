#!/usr/bin/env bash
# A Slurm job array that runs one shard of a sweep per task, unchanged:
#   sbatch --array=0-7 examples/sweep-slurm.sh examples/sweep.toml out/sweep
# icq reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (from SLURM_ARRAY_TASK_MIN in steps of
# SLURM_ARRAY_TASK_STEP: --array=1-8 works as well) and takes its own slice of the grid.
# To rerun failed tasks, submit the whole array again (finished shards have nothing left to do);
# a task submitted alone cannot say which shard it was, and icq refuses it.
# When every task has finished:
#   icq merge out/sweep/shard-* --out out/sweep/all
#SBATCH --job-name=icq-sweep
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00
set -euo pipefail
config=${1:?usage: sweep-slurm.sh CONFIG OUTDIR}
out=${2:?usage: sweep-slurm.sh CONFIG OUTDIR}
exec icq sweep "$config" --out "$out/shard-${SLURM_ARRAY_TASK_ID}" --resume --quiet
