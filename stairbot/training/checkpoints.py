"""Checkpoints: written atomically, loaded with validation, normalization stats in a plain format.

A checkpoint is a directory:

    model.zip            the SB3 model (policy, optimizer, step counter)
    normalization.npz    observation / return running statistics (no pickle)
    curriculum.json      each training env's stair difficulty
    replay_buffer.pkl    SAC only
    meta.json            what the model was trained on (robot, sizes, steps); written last

It is written to a temporary directory and renamed into place, so a crash or kill mid-write leaves
the previous checkpoint intact and never a half-written one. Loading checks meta.json against the
env it is meant for and raises `CheckpointError` on any corruption or mismatch: never a silent start
from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

from stairbot.errors import StairbotError

CHECKPOINT_PREFIX = "step_"
_FILES = ("model.zip", "normalization.npz", "curriculum.json", "meta.json")


class CheckpointError(StairbotError):
    """A checkpoint is missing, corrupt, or was trained on another robot or observation layout."""


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint was trained on; compared against the env it is loaded into."""

    algorithm: str
    num_timesteps: int
    robot: str
    observation_size: int
    action_size: int
    observation_terms: list[str]
    stairbot_version: str


def checkpoint_name(num_timesteps: int) -> str:
    return f"{CHECKPOINT_PREFIX}{num_timesteps:012d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are skipped)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX))


def normalization_stats(vec_normalize: VecNormalize) -> dict[str, np.ndarray]:
    """VecNormalize's running statistics and settings as plain arrays."""
    obs, ret = vec_normalize.obs_rms, vec_normalize.ret_rms
    if not isinstance(obs, RunningMeanStd):
        raise TypeError("dict observation spaces are not used by stairbot")
    values = dict(
        obs_mean=obs.mean,
        obs_var=obs.var,
        obs_count=obs.count,
        ret_mean=ret.mean,
        ret_var=ret.var,
        ret_count=ret.count,
        clip_obs=vec_normalize.clip_obs,
        clip_reward=vec_normalize.clip_reward,
        epsilon=vec_normalize.epsilon,
        gamma=vec_normalize.gamma,
        norm_obs=vec_normalize.norm_obs,
        norm_reward=vec_normalize.norm_reward,
    )
    return {key: np.array(value) for key, value in values.items()}


def save_normalization(path: Path, vec_normalize: VecNormalize) -> None:
    """Write VecNormalize's running statistics and settings to an npz file."""
    np.savez(path, **normalization_stats(vec_normalize))  # type: ignore[arg-type]  # numpy stubs: allow_pickle


def load_normalization(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a normalization.npz (read without pickle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"normalization statistics {path} are unreadable: {exc}") from exc


def apply_normalization(vec_normalize: VecNormalize, stats: dict[str, np.ndarray]) -> None:
    """Load saved statistics into a VecNormalize of the same observation size."""
    obs = vec_normalize.obs_rms
    if not isinstance(obs, RunningMeanStd):
        raise TypeError("dict observation spaces are not used by stairbot")
    if stats["obs_mean"].shape != obs.mean.shape:
        raise CheckpointError(
            f"normalization statistics have observation size {stats['obs_mean'].shape}, "
            f"the env has {obs.mean.shape}"
        )
    obs.mean = stats["obs_mean"].copy()
    obs.var = stats["obs_var"].copy()
    obs.count = float(stats["obs_count"])
    vec_normalize.ret_rms.mean = stats["ret_mean"].copy()
    vec_normalize.ret_rms.var = stats["ret_var"].copy()
    vec_normalize.ret_rms.count = float(stats["ret_count"])


def save_checkpoint(
    target: Path,
    model: Any,
    vec_normalize: VecNormalize,
    difficulties: list[float | None],
    meta: CheckpointMeta,
) -> Path:
    """Write a complete checkpoint at `target` (atomically: temp dir, then rename)."""
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    save_normalization(tmp / "normalization.npz", vec_normalize)
    levels = [None if d is None else float(d) for d in difficulties]
    (tmp / "curriculum.json").write_text(json.dumps({"difficulties": levels}))
    if hasattr(model, "save_replay_buffer"):
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the `keep` most recent checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)


def read_meta(checkpoint: Path) -> CheckpointMeta:
    """meta.json of a checkpoint; CheckpointError if it or any other file is missing or corrupt."""
    missing = [name for name in _FILES if not (checkpoint / name).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint} is incomplete: missing {missing}")
    try:
        return CheckpointMeta(**json.loads((checkpoint / "meta.json").read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint} has a corrupt meta.json: {exc}") from exc


def check_compatible(meta: CheckpointMeta, expected: CheckpointMeta, checkpoint: Path) -> None:
    """Raise CheckpointError when a checkpoint was trained on another robot, layout or algorithm."""
    problems = [
        f"{name}: checkpoint has {getattr(meta, name)!r}, this run has {getattr(expected, name)!r}"
        for name in ("algorithm", "robot", "observation_size", "action_size", "observation_terms")
        if getattr(meta, name) != getattr(expected, name)
    ]
    if problems:
        raise CheckpointError(f"checkpoint {checkpoint} does not fit this env: " + "; ".join(problems))


def read_difficulties(checkpoint: Path) -> list[float | None]:
    try:
        return list(json.loads((checkpoint / "curriculum.json").read_text())["difficulties"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint} has a corrupt curriculum.json: {exc}") from exc


def load_model(checkpoint: Path, algorithm_class: Any, **kwargs: Any) -> Any:
    """Load the SB3 model of a checkpoint; CheckpointError (never a traceback) if it is corrupt."""
    try:
        return algorithm_class.load(checkpoint / "model.zip", device="cpu", **kwargs)
    except Exception as exc:  # SB3/zipfile/torch raise many types for a damaged file
        raise CheckpointError(f"checkpoint {checkpoint} has a corrupt model.zip: {exc}") from exc
