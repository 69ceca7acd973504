"""A trained SB3 policy from a run directory, acting on raw observations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.policy_source import run_of_checkpoint
from stairbot.training.checkpoints import CheckpointError, list_checkpoints, load_normalization, read_meta


class SB3Policy:
    """`act(raw observation) -> action`: the run's observation normalization, then the SB3 policy
    with deterministic actions."""

    def __init__(self, model: Any, normalization: dict[str, np.ndarray]) -> None:
        self.model = model
        self._normalize = bool(normalization["norm_obs"])
        self.obs_mean = normalization["obs_mean"]
        self.obs_std = np.sqrt(normalization["obs_var"] + float(normalization["epsilon"]))
        self._clip = float(normalization["clip_obs"])

    def normalize(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        if not self._normalize:
            return observation
        scaled = np.clip((observation - self.obs_mean) / self.obs_std, -self._clip, self._clip)
        return scaled.astype(np.float32)

    def act(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        action, _ = self.model.predict(self.normalize(observation), deterministic=True)
        return np.asarray(action, dtype=np.float32)

    def sample(self, observation: NDArray[np.float32], noise: NDArray[np.float64]) -> NDArray[np.float32]:
        """(J,) action in [-1, 1]: the policy's Gaussian mean for `observation` (N,) plus `noise` (J,),
        then its squash, as SB3 draws a training action with std |noise|: clipped to the action box
        for PPO, tanh for SAC (whose mean is before the tanh). With zero noise it is `act`."""
        import torch

        policy = self.model.policy
        obs, _ = policy.obs_to_tensor(self.normalize(observation))
        with torch.no_grad():
            if policy.squash_output:  # SAC: a squashed Gaussian
                mean = policy.actor.get_action_dist_params(obs)[0]
            else:
                mean = policy.get_distribution(obs).distribution.mean
        action = mean.cpu().numpy()[0].astype(np.float64) + noise
        space = self.model.action_space
        squashed = np.tanh(action) if policy.squash_output else np.clip(action, space.low, space.high)
        return np.asarray(squashed, dtype=np.float32)


def policy_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """The checkpoint to act with: `best` (falls back to the latest), `latest`, or one checkpoint of
    the run by its folder name under `checkpoints/` (e.g. `step_000001000000`)."""
    best = run_dir / "best"
    if which == "best" and best.is_dir():
        return best
    checkpoints = list_checkpoints(run_dir)
    if which in ("best", "latest"):
        if not checkpoints:
            raise CheckpointError(f"{run_dir} has no checkpoint yet (looked in {run_dir / 'checkpoints'})")
        return checkpoints[-1]
    named = run_dir / "checkpoints" / which
    if named not in checkpoints:
        kept = ", ".join(c.name for c in checkpoints) or "none"
        raise CheckpointError(
            f"{run_dir} has no checkpoint {which!r}: use best, latest or one of the kept checkpoints ({kept})"
        )
    return named


def training_checkpoint(path: Path, purpose: str) -> tuple[Path, Path]:
    """(checkpoint, its run directory) for a run directory (its `best/`, else its latest checkpoint)
    or a checkpoint folder (`RUN/best`, `RUN/checkpoints/step_N`). `purpose` names what needs a
    training checkpoint, for the error on anything else (an export bundle has no critic)."""
    if (path / "config.yaml").is_file():
        return policy_checkpoint(path, "best"), path
    run = run_of_checkpoint(path)
    if run is not None:
        return path, run
    raise CheckpointError(
        f"{path} is neither a run directory (with config.yaml) nor one of its checkpoints "
        f"(RUN/best, RUN/checkpoints/step_N); {purpose} needs a training checkpoint (an export "
        "bundle has no critic)"
    )


def load_policy(checkpoint: Path) -> SB3Policy:
    """Load a checkpoint's model and normalization statistics (validated)."""
    from stairbot.training.algorithms import algorithm_class
    from stairbot.training.checkpoints import load_model

    meta = read_meta(checkpoint)
    model = load_model(checkpoint, algorithm_class(meta.algorithm))
    return SB3Policy(model, load_normalization(checkpoint / "normalization.npz"))
