"""Weight averaging: one policy from several checkpoints that share a start ("model soup").

Runs fine-tuned from one policy at a small learning rate stay close to it in weight space, and the
mean of their weights is often a better policy than any of them: Wortsman et al. (2022, "Model
soups") found this for networks fine-tuned from one pretrained start with different
hyperparameters, and Rame et al. (2023, "Rewarded soups") for policies fine-tuned on different
rewards. Here the runs go on from the release with `--init-from pretrained`, and their checkpoints
climb some cells better and others worse than it, and swing from one checkpoint to the next.

`average_checkpoints(sources, out)` writes a run directory at `out` whose `best/` checkpoint holds
the element-wise mean of every source's network parameters (actor, critic, action noise) and of its
observation and return normalization statistics (means and variances). Every command that takes a
run (`stairbot benchmark`, `select`, `export`, `train --init-from`) takes it. `out/average.json`
names the sources; the env and recipe (`env.yaml`, `config.yaml`) are the first source's run's, so
its commands and presets are what the benchmark draws from.

The sources must agree on everything that gives a weight its meaning: algorithm, robot, observation
layout, network shape, and the env's `control` (action scale, gait prior, control period) and
`observation` sections. A source that does not is refused by name before anything is written. They
may differ in rewards, randomization, stairs and hyperparameters: that is what a soup mixes. The
release itself is a bundle (actor only); the checkpoints of a run started `--init-from pretrained`
taken while its actor is still frozen (`critic_warmup_steps`) carry its actor and stand in for it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stairbot.config import deep_merge, dump_yaml, read_yaml
from stairbot.envs.config import load_env_config
from stairbot.errors import StairbotError
from stairbot.training.checkpoints import (
    CheckpointMeta,
    check_compatible,
    load_model,
    load_normalization,
    read_meta,
)
from stairbot.training.policy import training_checkpoint
from stairbot.training.run_dir import RunDir, versions

AVERAGE_FILE = "average.json"
# Statistics averaged across sources. The settings below must match; the sample counts are the first
# source's (they weigh later updates, which only a run that goes on from the average makes).
_AVERAGED_STATS = ("obs_mean", "obs_var", "ret_mean", "ret_var")
_MATCHING_SETTINGS = ("norm_obs", "norm_reward", "clip_obs", "epsilon")


def check_same_meaning(
    runs: Sequence[Path], checkpoints: Sequence[Path], metas: Sequence[CheckpointMeta]
) -> None:
    """Refuse sources whose weights mean different things: another algorithm, robot or observation
    layout (meta.json), or another `control` or `observation` section of the env."""
    first_env = load_env_config(RunDir(runs[0]).env_preset)
    for run, checkpoint, meta in zip(runs[1:], checkpoints[1:], metas[1:], strict=True):
        check_compatible(meta, metas[0], checkpoint)
        env = load_env_config(RunDir(run).env_preset)
        for section in ("control", "observation"):
            if getattr(env, section) != getattr(first_env, section):
                raise StairbotError(
                    f"{checkpoint} was trained with another env.{section} than {checkpoints[0]} "
                    f"({getattr(env, section)} against {getattr(first_env, section)}); only policies "
                    "with the same action and observation meaning can be averaged"
                )


def _mean_state_dict(
    states: Sequence[dict[str, torch.Tensor]], names: Sequence[Path]
) -> dict[str, torch.Tensor]:
    """Element-wise mean of the floating-point tensors; any other (a step counter) is the first's.
    Every state must have the same parameter names and shapes."""
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        shapes = {key: tuple(value.shape) for key, value in state.items()}
        expected = {key: tuple(value.shape) for key, value in first.items()}
        if shapes != expected:
            differing = sorted(k for k in set(shapes) | set(expected) if shapes.get(k) != expected.get(k))
            raise StairbotError(
                f"{name} has another network than {names[0]}: parameters {differing} differ in name or "
                "shape (policy.net_arch must match)"
            )
    averaged = {}
    for key, value in first.items():
        if torch.is_floating_point(value):
            averaged[key] = torch.stack([state[key] for state in states]).mean(dim=0)
        else:
            averaged[key] = value.clone()
    return averaged


def check_same_normalization(stats: Sequence[dict[str, np.ndarray]], names: Sequence[Path]) -> None:
    """Refuse sources normalized with other settings (normalize: in the recipe) than the first."""
    first = stats[0]
    for entry, name in zip(stats[1:], names[1:], strict=True):
        for key in _MATCHING_SETTINGS:
            if not np.array_equal(entry[key], first[key]):
                raise StairbotError(
                    f"{name} normalizes with {key}={entry[key]} where {names[0]} has {first[key]}; "
                    "the normalization settings (normalize:) must match"
                )


def _mean_normalization(
    stats: Sequence[dict[str, np.ndarray]], names: Sequence[Path]
) -> dict[str, np.ndarray]:
    """The first source's normalization with the averaged running means and variances."""
    check_same_normalization(stats, names)
    merged = dict(stats[0])
    for key in _AVERAGED_STATS:
        merged[key] = np.mean([entry[key] for entry in stats], axis=0)
    return merged


def resolve_sources(sources: Sequence[Path], out: Path, purpose: str) -> tuple[list[Path], list[Path]]:
    """(checkpoints, their runs) for the sources of a derived run (`purpose`: "averaging", "an
    ensemble"): at least two distinct checkpoints, each named once, and an `out` that does not exist."""
    if out.exists():
        raise StairbotError(
            f"{out} already exists; {purpose} writes a new run directory, choose another --out"
        )
    resolved = [training_checkpoint(Path(source), purpose) for source in sources]
    checkpoints = [checkpoint for checkpoint, _ in resolved]
    runs = [run for _, run in resolved]
    distinct = {checkpoint.resolve() for checkpoint in checkpoints}
    if len(distinct) < 2:
        raise StairbotError(f"{purpose} needs at least two distinct checkpoints, got {len(distinct)}")
    if len(distinct) < len(checkpoints):
        raise StairbotError("a checkpoint is named twice; give each once (members are weighted equally)")
    return checkpoints, runs


def average_checkpoints(sources: Sequence[Path], out: Path) -> Path:
    """Write the mean of `sources` (run directories or checkpoints, at least two distinct) as the run
    directory `out` (which must not exist yet) and return it. See the module docstring."""
    checkpoints, runs = resolve_sources(sources, out, "averaging")
    metas = [read_meta(checkpoint) for checkpoint in checkpoints]
    check_same_meaning(runs, checkpoints, metas)

    from stairbot.training.algorithms import algorithm_class

    meta = metas[0]
    models = [load_model(checkpoint, algorithm_class(meta.algorithm)) for checkpoint in checkpoints]
    state = _mean_state_dict([model.policy.state_dict() for model in models], checkpoints)
    stats = [load_normalization(checkpoint / "normalization.npz") for checkpoint in checkpoints]
    normalization = _mean_normalization(stats, checkpoints)

    model = models[0]
    model.policy.load_state_dict(state)
    return write_derived_run(
        out,
        model=model,
        normalization=normalization,
        checkpoints=checkpoints,
        runs=runs,
        meta=meta,
        record_name=AVERAGE_FILE,
        record=_record(checkpoints, runs, metas),
    )


def write_derived_run(
    out: Path,
    *,
    model: Any,
    normalization: dict[str, np.ndarray],
    checkpoints: Sequence[Path],
    runs: Sequence[Path],
    meta: CheckpointMeta,
    record_name: str,
    record: dict[str, Any],
    config_overrides: dict[str, Any] | None = None,
    checkpoint_states: Sequence[tuple[str, dict[str, Any]]] = (),
) -> Path:
    """Write a policy made from other runs' checkpoints (an average, an ensemble) as the run directory
    `out`: `best/` holds `model` and `normalization` with the first source's curriculum levels and
    `meta`; `config.yaml` and `env.yaml` are the first source run's (the recipe with
    `config_overrides`, a nested mapping, merged in), so commands and presets are what the benchmark
    draws from; `record_name` holds `record`. `checkpoint_states` (checkpoint folder name, policy
    state dict) are written as `checkpoints/NAME/` beside `best/`, each with `best/`'s normalization,
    curriculum levels and meta (the states of a derivation's stages, e.g. a distillation's rounds);
    `model` is left holding the last of them.
    Written to a temporary folder first and renamed, so a failure leaves no half-written `out`."""
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    best = RunDir(tmp).best
    best.mkdir(parents=True)
    try:
        config = read_yaml(RunDir(runs[0]).config)
        if config_overrides:
            config = deep_merge(config, config_overrides)
        dump_yaml(config, RunDir(tmp).config)
        shutil.copyfile(RunDir(runs[0]).env_preset, RunDir(tmp).env_preset)
        (tmp / "command.txt").write_text(shlex.join(["stairbot", *sys.argv[1:]]) + "\n")
        (tmp / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
        model.save(best / "model.zip")
        np.savez(best / "normalization.npz", **normalization)  # type: ignore[arg-type]
        shutil.copyfile(checkpoints[0] / "curriculum.json", best / "curriculum.json")
        (tmp / record_name).write_text(json.dumps(record, indent=2) + "\n")
        (best / "meta.json").write_text(json.dumps(asdict(meta), indent=2))
        for name, state in checkpoint_states:
            folder = RunDir(tmp).checkpoints / name
            folder.mkdir(parents=True)
            model.policy.load_state_dict(state)
            model.save(folder / "model.zip")
            for file in ("normalization.npz", "curriculum.json", "meta.json"):
                shutil.copyfile(best / file, folder / file)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, out)
    return out


def _record(
    checkpoints: Sequence[Path], runs: Sequence[Path], metas: Sequence[CheckpointMeta]
) -> dict[str, Any]:
    return {
        "method": "uniform mean of network parameters and of normalization means and variances",
        "sources": [
            {
                "checkpoint": str(checkpoint),
                "run": str(run),
                "num_timesteps": meta.num_timesteps,
            }
            for checkpoint, run, meta in zip(checkpoints, runs, metas, strict=True)
        ],
        "env_and_recipe_from": str(runs[0]),
    }
