"""Warm start: begin a new run from another run's checkpoint (fine-tuning).

`stairbot train RECIPE --init-from PATH` takes the policy and value weights, the observation and
return normalization statistics and the curriculum levels of a checkpoint, and trains them further
under the new recipe: its env (say, with domain randomization on), its hyperparameters, its own run
directory with a step counter that starts at 0. The optimizer state comes along with the weights, so
Adam's moment estimates do not restart from zero.

Everything that can be checked is checked before the run directory is created: the checkpoint's
files, its robot, algorithm and observation layout against the new recipe's env.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from stairbot.training.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    apply_normalization,
    check_compatible,
    list_checkpoints,
    load_normalization,
    read_difficulties,
    read_meta,
)


def resolve_init_checkpoint(path: Path) -> Path:
    """The checkpoint directory `path` names: itself, or a run directory's best/ checkpoint.

    A run directory without a best/ checkpoint (no evaluation ran yet) falls back to its latest
    periodic checkpoint.
    """
    if (path / "meta.json").is_file() or (path / "model.zip").is_file():
        return path
    if (path / "config.yaml").is_file():
        if (path / "best" / "meta.json").is_file():
            return path / "best"
        checkpoints = list_checkpoints(path)
        if checkpoints:
            return checkpoints[-1]
        raise CheckpointError(f"run directory {path} has no checkpoint to start from")
    raise CheckpointError(
        f"--init-from {path}: not a checkpoint directory (no meta.json) nor a run directory "
        "(no config.yaml); give a run directory or one of its checkpoints/step_* or best/"
    )


@dataclass(frozen=True)
class WarmStart:
    """A validated checkpoint to start a run from."""

    checkpoint: Path
    meta: CheckpointMeta
    normalization: dict[str, np.ndarray]
    difficulties: list[float | None]

    @classmethod
    def read(cls, path: Path, expected: CheckpointMeta) -> WarmStart:
        """Read and validate the checkpoint at `path` against the new run's `expected` meta."""
        checkpoint = resolve_init_checkpoint(path)
        meta = read_meta(checkpoint)
        check_compatible(meta, expected, checkpoint)
        return cls(
            checkpoint=checkpoint,
            meta=meta,
            normalization=load_normalization(checkpoint / "normalization.npz"),
            difficulties=read_difficulties(checkpoint),
        )

    def apply(self, model: BaseAlgorithm, env: VecNormalize, adaptive_curriculum: bool) -> None:
        """Load the weights and optimizer state into `model` and the statistics into `env`.

        With an adaptive curriculum the new envs start at the source's levels (cycled when the new
        run has more envs), so a policy that climbs 12 cm does not relearn flat ground first.
        """
        apply_normalization(env, self.normalization)
        if adaptive_curriculum:
            levels = [level for level in self.difficulties if level is not None]
            for index in range(env.num_envs if levels else 0):
                env.env_method("set_difficulty", levels[index % len(levels)], indices=[index])
        try:
            model.set_parameters(str(self.checkpoint / "model.zip"), exact_match=True, device="cpu")
        except Exception as exc:  # zipfile/torch raise many types: a damaged file or another net shape
            raise CheckpointError(
                f"checkpoint {self.checkpoint} cannot initialize this run's network "
                f"(is policy.net_arch the same as the source run's?): {exc}"
            ) from exc
