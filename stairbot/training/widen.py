"""Grow a trained PPO policy's input to take the proprioceptive history, without changing what it does.

A policy trained without `observation.history_steps` can start a run that has it: the history term
sits at the end of the layout, so the source's N0 inputs keep their places and H * F new ones follow.
The first layer of the actor and of the critic gets H * F zero columns, so both compute exactly what
they computed before, whatever the history holds; training then learns what the history is worth.
The new entries' normalization statistics are copies of the frame's own (a history frame is an
earlier observation's first F entries, so it has their distribution), and they keep the source's
sample count: the normalization of every input moves as slowly as it did in the source run. Adam's
moments of the new columns start at zero.

Only PPO: SAC's critic takes the observation and the action concatenated, and its target networks
and entropy coefficient would need the same surgery; nothing here needs it yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stairbot.observations import HISTORY_TERM, history_frame_size
from stairbot.training.checkpoints import CheckpointError

FloatArray = NDArray[np.float64]

# The PPO parameters whose input is the observation (net_arch as a list: separate actor and critic).
PPO_INPUT_LAYERS = ("mlp_extractor.policy_net.0.weight", "mlp_extractor.value_net.0.weight")


@dataclass(frozen=True)
class HistoryGrowth:
    """How a source's observation grows: N0 inputs, then `steps` frames of `frame_size` each."""

    source_size: int
    steps: int
    frame_size: int

    @property
    def new_size(self) -> int:
        return self.source_size + self.steps * self.frame_size


def history_growth(
    source_terms: Sequence[str],
    source_size: int,
    target_terms: Sequence[str],
    target_size: int,
    num_joints: int,
) -> HistoryGrowth | None:
    """The growth from a source layout to a target one that only appends `proprio_history`, or None
    when the target is anything else (equal layouts included): the caller reports the mismatch."""
    if list(target_terms) != [*source_terms, HISTORY_TERM]:
        return None
    frame = history_frame_size(num_joints)
    extra = target_size - source_size
    if extra <= 0 or extra % frame or source_size < frame:
        return None
    return HistoryGrowth(source_size, extra // frame, frame)


def grow_statistics(
    mean: FloatArray, var: FloatArray, growth: HistoryGrowth
) -> tuple[FloatArray, FloatArray]:
    """(N,) mean and variance: the source's (N0,), then the frame's (F,) once per history step."""
    if mean.shape != (growth.source_size,) or var.shape != mean.shape:
        raise CheckpointError(
            f"observation statistics have shape {mean.shape} / {var.shape}, expected ({growth.source_size},)"
        )
    frame = slice(0, growth.frame_size)
    return (
        np.concatenate([mean, np.tile(mean[frame], growth.steps)]),
        np.concatenate([var, np.tile(var[frame], growth.steps)]),
    )


def grow_columns(weight: NDArray[Any], growth: HistoryGrowth) -> NDArray[Any]:
    """(out, N0) first-layer weights -> (out, N) with zero columns for the history inputs."""
    if weight.ndim != 2 or weight.shape[1] != growth.source_size:
        raise CheckpointError(
            f"a first layer of shape {weight.shape} does not take the source's {growth.source_size} inputs"
        )
    zeros = np.zeros((weight.shape[0], growth.new_size - growth.source_size), weight.dtype)
    return np.concatenate([weight, zeros], axis=1)


def grow_ppo_parameters(
    params: dict[str, Any], parameter_names: Sequence[str], growth: HistoryGrowth
) -> dict[str, Any]:
    """Grow the input layers of an SB3 PPO parameter dict (`load_from_zip_file`'s params: "policy"
    state dict, "policy.optimizer" state dict) in place and return it.

    `parameter_names`: the policy's `named_parameters()` names in order; the optimizer's state is
    indexed by that order (SB3 builds it from `policy.parameters()`).
    """
    policy = params["policy"]
    optimizer_state = params.get("policy.optimizer", {}).get("state", {})
    for name in PPO_INPUT_LAYERS:
        if name not in policy:
            raise CheckpointError(f"the PPO checkpoint has no {name} (an unexpected network layout)")
        tensor = policy[name]
        policy[name] = torch.as_tensor(grow_columns(tensor.cpu().numpy(), growth))
        moments = optimizer_state.get(parameter_names.index(name), {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in moments:
                moments[key] = torch.as_tensor(grow_columns(moments[key].cpu().numpy(), growth))
    return params
