"""An anchor for PPO fine-tuning: after every update, pull the actor part of the way back to the
weights the run started from.

Why: a fine-tuning run from a good policy takes a random walk in weight space, because at the
recipes' batch sizes its policy gradient is mostly noise (`stairbot gradient-noise`;
docs/experiments.md, "Why the runs drift"), and the walk leaves the region where the start climbs
before the weak signal steers anywhere. Removing a fraction `decay` of the actor's displacement from
its start after each update turns the walk into a mean-reverting one (an Ornstein-Uhlenbeck process
in weight space): its spread stops growing, at about sqrt(D / (2 decay)) for a walk that adds D of
squared distance per update, while a gradient that keeps pointing one way moves its mean by about
1/decay updates' worth of steps. The mean of the run's later checkpoints (`stairbot average`) then
estimates that mean. The same idea as L2-SP regularization toward pretrained weights (Li, Grandvalet
and Davoine 2018), applied as a decoupled shrink, like AdamW's weight decay toward a point.

Only the actor's hidden layers and action head are pulled; the log std is left where the recipe puts
it (`policy.log_std_init` may set it on purpose), and the critic learns freely. The anchor is the
actor as the run started (after `--init-from` is applied): `anchor.pt` in the run directory, written
when the run starts and read when it resumes, so a resumed run pulls toward the same point.
"""

from __future__ import annotations

from pathlib import Path

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from stairbot.training.checkpoints import CheckpointError

ANCHOR_FILE = "anchor.pt"


def anchored_parameters(model: PPO) -> dict[str, torch.nn.Parameter]:
    """The actor's hidden layers and action head by state-dict name (not the log std, not the critic)."""
    policy = model.policy
    hidden = policy.mlp_extractor.policy_net.named_parameters()
    named = {f"mlp_extractor.policy_net.{name}": p for name, p in hidden}
    named.update({f"action_net.{name}": p for name, p in policy.action_net.named_parameters()})
    return named


def save_anchor(model: PPO, run_path: Path) -> Path:
    """Write the model's actor weights as the run's anchor; returns the file."""
    path = run_path / ANCHOR_FILE
    tmp = path.with_suffix(".tmp")
    torch.save({name: p.detach().clone() for name, p in anchored_parameters(model).items()}, tmp)
    tmp.replace(path)
    return path


def load_anchor(run_path: Path, model: PPO) -> dict[str, torch.Tensor]:
    """The run's anchor, checked against the model's actor (names and shapes)."""
    path = run_path / ANCHOR_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{run_path} has ppo.anchor_decay set but no {ANCHOR_FILE} (the actor it started from, "
            "written when the run starts); it cannot be resumed with the anchor"
        )
    try:
        anchor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/zipfile raise many types for a damaged file
        raise CheckpointError(f"{path} is corrupt: {exc}") from exc
    expected = {name: tuple(p.shape) for name, p in anchored_parameters(model).items()}
    found = {name: tuple(t.shape) for name, t in anchor.items()} if isinstance(anchor, dict) else {}
    if found != expected:
        raise CheckpointError(f"{path} holds {found}, the run's actor has {expected}")
    return dict(anchor)


def pull_toward(model: PPO, anchor: dict[str, torch.Tensor], decay: float) -> float:
    """theta <- anchor + (1 - decay) (theta - anchor) for the anchored parameters; returns the
    actor's L2 distance from the anchor after the pull."""
    squared = 0.0
    with torch.no_grad():
        for name, parameter in anchored_parameters(model).items():
            offset = parameter - anchor[name]
            parameter.sub_(decay * offset)
            squared += float(((1.0 - decay) * offset).pow(2).sum())
    return squared**0.5


class AnchorPull(BaseCallback):
    """Applies `pull_toward` after every PPO update (at the start of each rollout but the first) and
    logs the actor's distance from its anchor as `train/anchor_distance`."""

    def __init__(self, anchor: dict[str, torch.Tensor], decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.anchor = anchor
        self.decay = decay
        self._rollouts = 0

    def _on_rollout_start(self) -> None:
        self._rollouts += 1
        if self._rollouts == 1:
            return  # no update since the run (or this resume) started
        assert isinstance(self.model, PPO)
        distance = pull_toward(self.model, self.anchor, self.decay)
        self.logger.record("train/anchor_distance", distance)

    def _on_step(self) -> bool:
        return True
