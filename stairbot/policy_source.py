"""Resolve the POLICY argument of `stairbot play` / `record` (and the benchmark) to something that acts.

POLICY is a run directory (its best checkpoint), one checkpoint of a run (`RUN/checkpoints/step_N`,
`RUN/best`), an export bundle (run through `stairbot.deploy`),
`pretrained` (the policy shipped with stairbot; `pretrained/robust`, `pretrained/stage1` ... name the
other shipped bundles, from any directory), or nothing (zero action: the robot stands). Each gives
an `act(observation) -> action in [-1, 1]` and the env preset the policy was trained in, so that its
observations match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stairbot.errors import StairbotError
from stairbot.paths import data_dir

PRETRAINED = "pretrained"

Act = Callable[[NDArray[np.float32]], NDArray[np.float32]]
# (raw observation (N,), noise (J,)) -> action (J,) in [-1, 1]: the squash of the policy's Gaussian
# mean plus the noise, as training samples (`stairbot.evaluation`'s action noise).
Sample = Callable[[NDArray[np.float32], NDArray[np.float64]], NDArray[np.float32]]


@dataclass(frozen=True)
class PolicySource:
    """A policy ready to drive an env.

    Attributes:
        name: what it is, for titles and logs ("run runs/x (best)", "bundle b/", "zero action").
        env_preset: env preset (name or YAML path) whose observations the policy expects.
        act: raw observation (N,) -> action (J,) in [-1, 1].
        sample: (raw observation, noise (J,)) -> action (J,) in [-1, 1], the squash of the
            policy's mean plus the noise (the action noise of `stairbot benchmark`).
    """

    name: str
    env_preset: str
    act: Act
    sample: Sample


def pretrained_dir() -> Path:
    """The bundle shipped as `pretrained` (installed copy first, then the checkout)."""
    try:
        return data_dir("pretrained")
    except FileNotFoundError:
        raise StairbotError(
            "no pretrained policy is shipped with this version of stairbot yet; give a run "
            "directory (stairbot train ...), an export bundle (stairbot export ...), or no policy"
        ) from None


def shipped_or_path(source: str | Path) -> Path:
    """The folder `source` names: `pretrained` is the shipped bundle, and `pretrained/NAME` a bundle
    shipped beside it (`pretrained/robust`) unless a folder of that name exists here; anything else
    is a path."""
    path = Path(source)
    if path.parts[:1] != (PRETRAINED,):
        return path
    if len(path.parts) == 1 or not path.exists():
        return pretrained_dir().joinpath(*path.parts[1:])
    return path


def _zero_action(num_joints: int) -> Act:
    zero = np.zeros(num_joints, np.float32)
    return lambda observation: zero


def _zero_mean_sample(observation: NDArray[np.float32], noise: NDArray[np.float64]) -> NDArray[np.float32]:
    return np.clip(noise, -1.0, 1.0).astype(np.float32)


def policy_fingerprint(source: str | Path) -> str | None:
    """A sha256 over the files that decide what the policy named by `source` does: a bundle's
    `weights.npz` and `env.yaml`, a run's or checkpoint's `model.zip`, `normalization.npz` and the
    run's `env.yaml`. The same name (`pretrained`, `runs/x`) can come to mean another policy; equal
    fingerprints say it did not. None for anything else (the zero action, a missing path)."""
    path = shipped_or_path(source)
    if (path / "policy.json").is_file():
        files = [path / "weights.npz", path / "env.yaml"]
    else:
        from stairbot.training.policy import policy_checkpoint

        if (path / "config.yaml").is_file():
            checkpoint, run_dir = policy_checkpoint(path, "best"), path
        else:
            found = run_of_checkpoint(path)
            if found is None:
                return None
            checkpoint, run_dir = path, found
        files = [checkpoint / "model.zip", checkpoint / "normalization.npz", run_dir / "env.yaml"]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def load_policy_source(source: str | Path | None, *, preset: str = "stairs_up") -> PolicySource:
    """The policy named by `source` (see the module docstring); `preset` is used for zero action."""
    if source is None:
        from stairbot.envs.config import load_env_config
        from stairbot.robots.spec import load_robot_spec

        joints = load_robot_spec(load_env_config(preset).robot).num_joints
        return PolicySource("zero action", preset, _zero_action(joints), _zero_mean_sample)
    label = str(source)  # as the user named it: reports written here may be committed elsewhere
    path = shipped_or_path(source)
    if (path / "policy.json").is_file():
        from stairbot.deploy import action_sampler, load_bundle

        bundle = load_bundle(path)
        preset_file = path / "env.yaml"
        if not preset_file.is_file():
            raise StairbotError(
                f"bundle {path} has no env.yaml (exported by an older stairbot): re-export it"
            )

        def act_bundle(observation: NDArray[np.float32]) -> NDArray[np.float32]:
            # The env's action is the network's (last_action): a gait-prior env adds the trot's
            # offsets itself, from its own clock.
            bundle.act(observation)
            return bundle.last_action.copy()

        return PolicySource(f"bundle {label}", str(preset_file), act_bundle, action_sampler(bundle))
    if (path / "config.yaml").is_file():
        from stairbot.training.policy import load_policy, policy_checkpoint

        checkpoint = policy_checkpoint(path, "best")
        policy = load_policy(checkpoint)
        return PolicySource(
            f"run {label} ({checkpoint.name})", str(path / "env.yaml"), policy.act, policy.sample
        )
    run_dir = run_of_checkpoint(path)
    if run_dir is not None:
        from stairbot.training.policy import load_policy

        policy = load_policy(path)
        return PolicySource(f"checkpoint {label}", str(run_dir / "env.yaml"), policy.act, policy.sample)
    raise StairbotError(
        f"{source} is not a policy: give a run directory (with config.yaml), one of its checkpoints "
        f"(RUN/checkpoints/step_N or RUN/best), an export bundle (with policy.json), '{PRETRAINED}', "
        "or nothing for the zero action"
    )


def run_of_checkpoint(path: Path) -> Path | None:
    """The run directory of a checkpoint folder (`RUN/best`, `RUN/checkpoints/step_N`), or None."""
    if not (path / "meta.json").is_file():
        return None
    for run_dir in (path.parent, path.parent.parent):
        if (run_dir / "config.yaml").is_file() and (run_dir / "env.yaml").is_file():
            return run_dir
    return None
