"""Checkpoints: written atomically, loaded with validation, normalization stats in a plain format.

A checkpoint is a directory:

    model.zip            the SB3 model (policy, optimizer, step counter)
    normalization.npz    observation / return running statistics (no pickle)
    curriculum.json      each training env's stair difficulty (and its down level, if separate)
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
import warnings
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


_NORMALIZATION_KEYS = (
    "obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count",
    "clip_obs", "clip_reward", "epsilon", "gamma", "norm_obs", "norm_reward",
)  # fmt: skip


def load_normalization(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a normalization.npz (read without pickle), checked for completeness."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"normalization statistics {path} are unreadable: {exc}") from exc
    missing = [key for key in _NORMALIZATION_KEYS if key not in stats]
    if missing:
        raise CheckpointError(f"normalization statistics {path} are incomplete: missing {missing}")
    if stats["obs_mean"].ndim != 1 or stats["obs_var"].shape != stats["obs_mean"].shape:
        raise CheckpointError(
            f"normalization statistics {path} are malformed: obs_mean {stats['obs_mean'].shape}, "
            f"obs_var {stats['obs_var'].shape}"
        )
    return stats


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
    *,
    replay_buffer: bool = True,
    extra_files: dict[str, str] | None = None,
    down_difficulties: list[float | None] | None = None,
) -> Path:
    """Write a complete checkpoint at `target`, atomically.

    Everything goes into a temporary directory first, which then takes the target's name; an
    existing target is renamed aside before and deleted after, so at every instant `target` is
    either the old complete checkpoint or the new one. A failed save removes its temporary files.

    Args:
        replay_buffer: also save an off-policy model's replay buffer (periodic checkpoints need it
            to resume; the best-model copy does not).
        extra_files: more small text files to write into the checkpoint {name: content}.
        down_difficulties: each env's level of down episodes, where they keep their own
            (`curriculum.separate_down_level`); None: the levels are shared.
    """
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    old = target.with_name(f".old-{target.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save(tmp / "model.zip")
        save_normalization(tmp / "normalization.npz", vec_normalize)
        curriculum: dict[str, list[float | None]] = {"difficulties": _levels(difficulties)}
        if down_difficulties is not None:
            curriculum["down_difficulties"] = _levels(down_difficulties)
        (tmp / "curriculum.json").write_text(json.dumps(curriculum))
        if replay_buffer and hasattr(model, "save_replay_buffer"):
            model.save_replay_buffer(tmp / "replay_buffer.pkl")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
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


def _levels(difficulties: list[float | None]) -> list[float | None]:
    return [None if d is None else float(d) for d in difficulties]


def read_difficulties(checkpoint: Path) -> list[float | None]:
    """The curriculum level of each env: null or a number in [0, 1]."""
    levels = _read_levels(checkpoint, "difficulties")
    assert levels is not None  # a required key
    return levels


def read_down_difficulties(checkpoint: Path) -> list[float | None] | None:
    """The level of each env's down episodes where they kept their own
    (`curriculum.separate_down_level`); None where the checkpoint's levels were shared."""
    return _read_levels(checkpoint, "down_difficulties", required=False)


def _read_levels(checkpoint: Path, key: str, *, required: bool = True) -> list[float | None] | None:
    path = checkpoint / "curriculum.json"
    try:
        curriculum = json.loads(path.read_text())
        if not required and key not in curriculum:
            return None
        levels = list(curriculum[key])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint} has a corrupt curriculum.json: {exc}") from exc
    for level in levels:
        if level is not None and not (isinstance(level, int | float) and 0.0 <= level <= 1.0):
            raise CheckpointError(f"{path}: curriculum levels must be null or in [0, 1], got {level!r}")
    return levels


def load_model(checkpoint: Path, algorithm_class: Any, **kwargs: Any) -> Any:
    """Load the SB3 model of a checkpoint; CheckpointError (never a traceback) if it is corrupt."""
    try:
        with warnings.catch_warnings():
            # A SAC run with n-step returns saved its NStepReplayBuffer class together with its
            # n_steps and gamma, so SB3's warning that n_steps "is ignored" for a custom buffer
            # class does not apply: the loaded model samples n-step returns as before.
            warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom")
            return algorithm_class.load(checkpoint / "model.zip", device="cpu", **kwargs)
    except Exception as exc:  # SB3/zipfile/torch raise many types for a damaged file
        raise CheckpointError(f"checkpoint {checkpoint} has a corrupt model.zip: {exc}") from exc
