"""Ensembles: one wider PPO network that computes the mean of several policies' actions exactly.

Weight averaging (`stairbot.training.averaging`) mixes policies in weight space, which works while
they stay close to a shared start. An ensemble mixes them in action space: its action mean is the
mean of the members' action means, whatever their weights. Both are one policy that every command
takes; the ensemble costs K times the arithmetic per step (a few hundred thousand multiply-adds for
the recipes' networks, nothing for a controller).

The ensemble is built as a single SB3 PPO policy, so that training, benchmark, selection and export
(ONNX, TorchScript, C, numpy) need nothing new. For K members with hidden widths (h1, h2, ...):

- the hidden layers are K blocks side by side: widths (K h1, K h2, ...), block-diagonal weights,
  so each block computes what its member computes (the activation acts element-wise);
- the action head reads every block with its member's weights divided by K, its bias is the mean
  of theirs: mean = (1/K) sum_k mean_k. The critic is built the same way (the mean of the values);
- the observation is normalized with the first member's statistics (mu_1, sigma_1), and each
  other member's normalization is folded into its first layer: member k saw
  z_k = (x - mu_k) / sigma_k = (sigma_1 / sigma_k) z_1 + (mu_1 - mu_k) / sigma_k, so its first
  layer's columns are scaled by sigma_1 / sigma_k and its bias gains W_k (mu_1 - mu_k) / sigma_k.
  This is exact wherever no input is clipped (|z| < normalize.clip_obs, 10 standard deviations in
  the recipes) under either member's statistics;
- the action noise (`log_std`) is the mean of the members' log std, which only sampling uses.

The members must agree on algorithm (PPO), robot, observation layout, activation and the env's
`control` and `observation` sections, as for averaging; their hidden widths may differ in value but
not in depth. The run directory is written like an average's: `best/` holds the ensemble,
`ensemble.json` names the members, `config.yaml` is the first member's recipe with
`policy.net_arch` set to the ensemble's widths, `env.yaml` the first member's env.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stairbot.errors import StairbotError
from stairbot.training.averaging import (
    check_same_meaning,
    check_same_normalization,
    resolve_sources,
    write_derived_run,
)
from stairbot.training.checkpoints import load_model, load_normalization, read_meta
from stairbot.training.run_dir import RunDir

ENSEMBLE_FILE = "ensemble.json"
# The SB3 ActorCriticPolicy modules that hold the actor's and the critic's hidden layers and heads.
_TOWERS = (("mlp_extractor.policy_net", "action_net"), ("mlp_extractor.value_net", "value_net"))


def _linear_indices(state: dict[str, torch.Tensor], tower: str) -> list[int]:
    """The indices of a tower's Linear layers in its nn.Sequential (0, 2, 4 with activations between)."""
    prefix = f"{tower}."
    return sorted({int(key[len(prefix) :].split(".")[0]) for key in state if key.startswith(prefix)})


def _fold_normalization(
    weight: torch.Tensor, bias: torch.Tensor, first: dict[str, np.ndarray], member: dict[str, np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor]:
    """A first layer (out, obs) that reads the first member's normalized observation as `member`'s
    layer read its own: columns scaled by sigma_1 / sigma_k, bias += W (mu_1 - mu_k) / sigma_k."""
    eps = float(first["epsilon"])
    sigma_first = np.sqrt(first["obs_var"] + eps)
    sigma_member = np.sqrt(member["obs_var"] + eps)
    scale = torch.as_tensor(sigma_first / sigma_member, dtype=weight.dtype)
    shift = torch.as_tensor((first["obs_mean"] - member["obs_mean"]) / sigma_member, dtype=weight.dtype)
    return weight * scale, bias + weight @ shift


def _block_diagonal_tower(
    states: Sequence[dict[str, torch.Tensor]],
    stats: Sequence[dict[str, np.ndarray]],
    tower: str,
    head: str,
) -> dict[str, torch.Tensor]:
    """The K members' hidden layers of one tower side by side and their heads averaged."""
    indices = _linear_indices(states[0], tower)
    count = len(states)
    merged: dict[str, torch.Tensor] = {}
    for position, index in enumerate(indices):
        weights, biases = [], []
        for state, member_stats in zip(states, stats, strict=True):
            weight, bias = state[f"{tower}.{index}.weight"], state[f"{tower}.{index}.bias"]
            if position == 0 and bool(stats[0]["norm_obs"]):  # unnormalized members read raw x alike
                weight, bias = _fold_normalization(weight, bias, stats[0], member_stats)
            weights.append(weight)
            biases.append(bias)
        # The first layer reads the one shared observation; every later one reads only its block.
        merged[f"{tower}.{index}.weight"] = (
            torch.cat(weights, dim=0) if position == 0 else torch.block_diag(*weights)
        )
        merged[f"{tower}.{index}.bias"] = torch.cat(biases)
    merged[f"{head}.weight"] = torch.cat([state[f"{head}.weight"] for state in states], dim=1) / count
    merged[f"{head}.bias"] = torch.stack([state[f"{head}.bias"] for state in states]).mean(dim=0)
    return merged


def _hidden_widths(state: dict[str, torch.Tensor], tower: str) -> list[int]:
    return [int(state[f"{tower}.{index}.weight"].shape[0]) for index in _linear_indices(state, tower)]


def ensemble_state_dict(
    states: Sequence[dict[str, torch.Tensor]], stats: Sequence[dict[str, np.ndarray]], names: Sequence[Path]
) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """The ensemble's PPO policy parameters and its hidden widths per tower ({"pi": .., "vf": ..}).

    Args:
        states: the members' `policy.state_dict()`s (SB3 ActorCriticPolicy with separate actor and
            critic towers).
        stats: the members' normalization statistics (`load_normalization`); the first is the
            ensemble's.
        names: the members' checkpoints, for errors.
    """
    for state, name in zip(states, names, strict=True):
        unexpected = sorted(
            key
            for key in state
            if not key.startswith(("mlp_extractor.policy_net.", "mlp_extractor.value_net."))
            and key
            not in ("action_net.weight", "action_net.bias", "value_net.weight", "value_net.bias", "log_std")
        )
        if unexpected:
            raise StairbotError(
                f"{name} has parameters an ensemble cannot combine: {unexpected}; only PPO policies with "
                "separate actor and critic MLPs and a state-independent log std (no gSDE) can be joined"
            )
    depths = {
        name: len(_linear_indices(state, "mlp_extractor.policy_net"))
        for state, name in zip(states, names, strict=True)
    }
    if len(set(depths.values())) != 1:
        raise StairbotError(
            f"members have networks of different depth ({depths}); policy.net_arch must have as many layers"
        )
    merged: dict[str, torch.Tensor] = {}
    for tower, head in _TOWERS:
        merged.update(_block_diagonal_tower(states, stats, tower, head))
    merged["log_std"] = torch.stack([state["log_std"] for state in states]).mean(dim=0)
    widths = {
        "pi": _hidden_widths(merged, "mlp_extractor.policy_net"),
        "vf": _hidden_widths(merged, "mlp_extractor.value_net"),
    }
    return merged, widths


def _widened_model(model: Any, widths: dict[str, list[int]]) -> Any:
    """`model` (SB3 PPO) with a fresh policy of the given hidden widths, its other settings kept."""
    kwargs = dict(model.policy_kwargs)
    kwargs["net_arch"] = {"pi": widths["pi"], "vf": widths["vf"]}
    model.policy_kwargs = kwargs
    model.policy = model.policy_class(
        model.observation_space, model.action_space, model.lr_schedule, **kwargs
    )
    model.policy.to(model.device)
    return model


def ensemble_checkpoints(sources: Sequence[Path], out: Path) -> Path:
    """Write the ensemble of `sources` (PPO run directories or checkpoints, at least two distinct) as
    the run directory `out` (which must not exist yet) and return it. See the module docstring."""
    checkpoints, runs = resolve_sources(sources, out, "an ensemble")
    metas = [read_meta(checkpoint) for checkpoint in checkpoints]
    if metas[0].algorithm != "ppo":
        raise StairbotError(
            f"{checkpoints[0]} is a {metas[0].algorithm} policy; only PPO policies can be joined "
            "(SAC squashes its mean with tanh, so the mean of the members' means is not the mean "
            "of their actions)"
        )
    check_same_meaning(runs, checkpoints, metas)
    activations = {str(RunDir(run).recipe().policy.activation) for run in runs}
    if len(activations) != 1:
        raise StairbotError(
            f"members use different activations ({sorted(activations)}); policy.activation must match"
        )

    from stairbot.training.algorithms import algorithm_class

    models = [load_model(checkpoint, algorithm_class(metas[0].algorithm)) for checkpoint in checkpoints]
    stats = [load_normalization(checkpoint / "normalization.npz") for checkpoint in checkpoints]
    check_same_normalization(stats, checkpoints)
    state, widths = ensemble_state_dict([model.policy.state_dict() for model in models], stats, checkpoints)
    model = _widened_model(models[0], widths)
    model.policy.load_state_dict(state)
    record = {
        "method": "mean of the members' action means (and values): their networks side by side in one "
        "PPO policy, the first member's observation normalization folded into the others' first layers",
        "members": [
            {"checkpoint": str(checkpoint), "run": str(run), "num_timesteps": meta.num_timesteps}
            for checkpoint, run, meta in zip(checkpoints, runs, metas, strict=True)
        ],
        "net_arch": widths,
        "env_and_recipe_from": str(runs[0]),
    }
    return write_derived_run(
        out,
        model=model,
        normalization=stats[0],
        checkpoints=checkpoints,
        runs=runs,
        meta=metas[0],
        record_name=ENSEMBLE_FILE,
        record=record,
        config_overrides={"policy": {"net_arch": widths["pi"]}},
    )
