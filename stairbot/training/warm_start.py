"""Warm start: begin a new run from another run's checkpoint, or from an export bundle (fine-tuning).

`stairbot train RECIPE --init-from PATH` trains a policy further under the new recipe: its env (say,
with domain randomization on), its hyperparameters, its own run directory with a step counter that
starts at 0. PATH is one of

- a checkpoint (or a run directory: its best/ checkpoint). It brings the policy and value weights,
  the optimizer state (Adam's moments do not restart from zero), the observation and return
  normalization statistics and the curriculum levels.
- an export bundle (`stairbot export`, or `pretrained`). A bundle is what survives of a run that was
  exported and deleted; it holds the actor and the observation normalization only. The critic, the
  return normalization and the action noise start fresh (the noise at `policy.log_std_init`), and
  the curriculum at the recipe's `curriculum.difficulty`. A fresh critic's advantages are noise, so
  recipes that start from a bundle set `critic_warmup_steps`: the actor stays frozen while the
  critic learns the values of the policy as it is (see `FreezeActor`).

Everything that can be checked is checked before the run directory is created: the source's files
(a bundle's hashes and golden vectors), its robot, algorithm, observation layout and (for a bundle)
network shape against the new recipe.

A new recipe may widen (or narrow) `control.action_scale_rad`, e.g. to let the calves flex further
than the source policy could. For PPO the action head is rescaled so that the policy commands the
same joint targets as before wherever it did not saturate: row j of the output layer (weights and
bias) times old_j / new_j, and log_std_j + log(old_j / new_j), so the exploration noise in radians
is unchanged too. The optimizer's moments of those parameters are kept as they are. A SAC policy
squashes with tanh, where no such rescaling preserves the targets: it is refused.

A new recipe may also add `observation.history_steps` to a PPO source trained without it, or refine
its height-scan grid (every source offset kept, others added): the network's input grows with zero
weights on the new inputs, so it starts out computing what the source did (see
`stairbot.training.widen`). A scan grid that moves a source offset is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecNormalize

from stairbot.deploy import METADATA_FILE, BundleError, load_bundle
from stairbot.envs.config import EnvConfig, load_env_config
from stairbot.export.policy_graph import PolicyGraph, load_npz
from stairbot.training.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    apply_normalization,
    check_compatible,
    list_checkpoints,
    load_normalization,
    read_difficulties,
    read_down_difficulties,
    read_meta,
)
from stairbot.training.recipe import Algorithm, Recipe
from stairbot.training.run_dir import RunDir
from stairbot.training.widen import (
    InputMap,
    LayoutShape,
    bundle_layout_shape,
    env_layout_shape,
    grow_columns,
    grow_ppo_parameters,
    grow_statistics,
    input_map,
)

FloatArray = NDArray[np.float64]


def is_bundle(path: Path) -> bool:
    return (path / METADATA_FILE).is_file()


def read_warm_start(path: Path, expected: CheckpointMeta, recipe: Recipe) -> WarmStart | BundleStart:
    """The validated source of `--init-from PATH`: a bundle, a checkpoint or a run directory."""
    if is_bundle(path):
        return BundleStart.read(path, expected, recipe)
    return WarmStart.read(path, expected, recipe)


def action_scale_ratio(source_scale: FloatArray, recipe: Recipe, num_joints: int, source: Path) -> FloatArray:
    """(J,) old / new action scale per joint; all ones when the recipe keeps the source's scale.

    Raises `CheckpointError` when the scales differ and the recipe is not PPO (see the module
    docstring).
    """
    new_scale = recipe.env.control.action_scale_vector(num_joints)
    ratio = np.asarray(source_scale, np.float64) / new_scale
    if not np.allclose(ratio, 1.0) and recipe.algorithm is not Algorithm.PPO:
        raise CheckpointError(
            f"{source} was trained with control.action_scale_rad {np.asarray(source_scale).tolist()}, this "
            f"recipe has {new_scale.tolist()}: only a PPO policy can be carried over to another action scale"
        )
    return ratio


def _input_map(source: Path, shape: LayoutShape, target: LayoutShape, num_joints: int) -> InputMap | None:
    """`widen.input_map`, its errors prefixed with the source's path."""
    try:
        return input_map(shape, target, num_joints)
    except CheckpointError as exc:
        raise CheckpointError(f"--init-from {source}: {exc}") from None


def check_layouts(
    meta: CheckpointMeta,
    expected: CheckpointMeta,
    recipe: Recipe,
    source: Path,
    source_shape: LayoutShape,
) -> InputMap | None:
    """Check a source against the new run (`check_compatible`), allowing a PPO source's input to
    grow (`stairbot.training.widen`); return that growth (None: the same layout).

    `source_shape`: the source's input as its run's env config describes it. Where its terms are
    not the checkpoint's (the recipe stood in for the env of a checkpoint outside a run directory),
    the checkpoint's terms are taken at the recipe's sizes and scan grid: only the history can grow.
    """
    target = env_layout_shape(recipe.env, expected.action_size)
    if source_shape.names != meta.observation_terms:
        sizes = dict(target.terms)
        source_shape = LayoutShape(
            tuple((name, sizes.get(name, 0)) for name in meta.observation_terms),
            target.scan_x_m,
            target.scan_y_m,
        )
    growth = _input_map(source, source_shape, target, expected.action_size)
    if growth is None or growth.source_size != meta.observation_size:
        check_compatible(meta, expected, source)
        return None
    same_layout = dataclasses.replace(
        meta, observation_size=expected.observation_size, observation_terms=expected.observation_terms
    )
    check_compatible(same_layout, expected, source)
    if recipe.algorithm is not Algorithm.PPO:
        raise CheckpointError(
            f"{source}: this run's observation is the source's grown ({'; '.join(growth.changes)}): "
            "only a PPO policy's input can be grown to take it"
        )
    return growth


def rescale_action_head(model: PPO, ratio: FloatArray) -> None:
    """Make PPO's action distribution give the same joint targets under a new action scale: output
    row j and its bias times ratio_j = old_j / new_j, log std_j + log(ratio_j)."""
    head, log_std = model.policy.action_net, model.policy.log_std
    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"PPO's action head is a {type(head).__name__}, not a Linear layer")
    factor = torch.as_tensor(ratio, dtype=head.weight.dtype)
    with torch.no_grad():
        head.weight.mul_(factor[:, None])
        head.bias.mul_(factor)
        log_std.add_(torch.log(factor))


def run_env_config(checkpoint: Path) -> EnvConfig | None:
    """The env config the checkpoint's run trained with (its run directory's env.yaml, one or two
    levels up: checkpoints/step_N or best/), or None for a checkpoint outside a run directory."""
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        run = RunDir(folder)
        if run.config.is_file() and run.env_preset.is_file():
            return load_env_config(run.env_preset)
    return None


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
        f"--init-from {path}: not a checkpoint directory (no meta.json), a run directory "
        f"(no config.yaml) nor an export bundle (no {METADATA_FILE}); give a run directory, one of "
        "its checkpoints/step_* or best/, or a bundle"
    )


def _cycle_levels(env: VecNormalize, setter: str, levels: list[float | None]) -> None:
    """Give env i the source's level i (cycled when the new run has more envs) through the env
    method `setter`; a source with no known level leaves the envs where the recipe starts them."""
    known = [level for level in levels if level is not None]
    for index in range(env.num_envs if known else 0):
        env.env_method(setter, known[index % len(known)], indices=[index])


@dataclass(frozen=True)
class WarmStart:
    """A validated checkpoint to start a run from."""

    checkpoint: Path
    meta: CheckpointMeta
    normalization: dict[str, np.ndarray]
    difficulties: list[float | None]
    down_difficulties: list[float | None] | None  # where the source's down episodes had their own
    action_scale_ratio: FloatArray  # (J,) source / new action scale (ones: unchanged)
    growth: InputMap | None = None  # how the source's input grows (None: same layout)

    @property
    def source(self) -> Path:
        return self.checkpoint

    @property
    def num_timesteps(self) -> int:
        return self.meta.num_timesteps

    @classmethod
    def read(cls, path: Path, expected: CheckpointMeta, recipe: Recipe) -> WarmStart:
        """Read and validate the checkpoint at `path` against the new run's `expected` meta.

        The source's action scale comes from its run directory; a checkpoint outside one is taken
        to have the recipe's (it cannot be checked).
        """
        checkpoint = resolve_init_checkpoint(path)
        meta = read_meta(checkpoint)
        source_env = run_env_config(checkpoint)
        if source_env is None:
            print(
                f"note: {checkpoint} is outside a run directory; its action scale and height-scan grid "
                "are taken as the recipe's"
            )
            source_env = recipe.env
        growth = check_layouts(
            meta, expected, recipe, checkpoint, env_layout_shape(source_env, expected.action_size)
        )
        source_scale = source_env.control.action_scale_vector(expected.action_size)
        return cls(
            checkpoint=checkpoint,
            meta=meta,
            normalization=load_normalization(checkpoint / "normalization.npz"),
            difficulties=read_difficulties(checkpoint),
            down_difficulties=read_down_difficulties(checkpoint),
            action_scale_ratio=action_scale_ratio(source_scale, recipe, expected.action_size, checkpoint),
            growth=growth,
        )

    def apply(
        self,
        model: BaseAlgorithm,
        env: VecNormalize,
        adaptive_curriculum: bool,
        separate_down_level: bool = False,
    ) -> None:
        """Load the weights and optimizer state into `model` and the statistics into `env`.

        With an adaptive curriculum the new envs start at the source's levels (cycled when the new
        run has more envs), so a policy that climbs 12 cm does not relearn flat ground first. Where
        the new env keeps a separate level for down episodes, it starts at the source's down levels
        if the source had them, else at the recipe's `curriculum.difficulty` (a source whose levels
        were shared, or that never went down, says nothing about descending).
        """
        normalization = self.normalization
        if self.growth is not None:
            print(
                f"input grown from {self.growth.source_size} to {self.growth.new_size}: "
                + "; ".join(self.growth.changes)
            )
            mean, var = grow_statistics(normalization["obs_mean"], normalization["obs_var"], self.growth)
            normalization = {**normalization, "obs_mean": mean, "obs_var": var}
        apply_normalization(env, normalization)
        if adaptive_curriculum:
            _cycle_levels(env, "set_difficulty", self.difficulties)
            if separate_down_level:
                _cycle_levels(env, "set_down_difficulty", self.down_difficulties or [])
        try:
            parameters: Any = str(self.checkpoint / "model.zip")
            if self.growth is not None:
                _, parameters, _ = load_from_zip_file(parameters, device="cpu")
                names = [name for name, _ in model.policy.named_parameters()]
                parameters = grow_ppo_parameters(parameters, names, self.growth)
            model.set_parameters(parameters, exact_match=True, device="cpu")
        except CheckpointError:
            raise
        except Exception as exc:  # zipfile/torch raise many types: a damaged file or another net shape
            raise CheckpointError(
                f"checkpoint {self.checkpoint} cannot initialize this run's network "
                f"(are policy.net_arch and, for SAC, sac.use_sde the same as the source run's?): {exc}"
            ) from exc
        if not np.allclose(self.action_scale_ratio, 1.0):
            assert isinstance(model, PPO)  # action_scale_ratio refuses other algorithms
            rescale_action_head(model, self.action_scale_ratio)


@dataclass(frozen=True)
class BundleStart:
    """A validated export bundle to start a PPO run from: its actor and observation normalization."""

    source: Path
    graph: PolicyGraph
    num_timesteps: int  # the steps the bundle's policy was trained for (its model.num_timesteps)
    action_scale_ratio: FloatArray  # (J,) bundle / new action scale (ones: unchanged)
    growth: InputMap | None = None  # how the source's input grows (None: same layout)

    @classmethod
    def read(cls, path: Path, expected: CheckpointMeta, recipe: Recipe) -> BundleStart:
        """Load `path` (hashes and golden vectors checked) and compare it with the new recipe."""
        try:
            bundle = load_bundle(path, backend="numpy")
        except BundleError as exc:
            raise CheckpointError(f"--init-from {path}: {exc}") from exc
        meta = bundle.metadata
        model = meta.raw.get("model", {})
        if not isinstance(model.get("num_timesteps"), int):
            raise CheckpointError(f"bundle {path}: policy.json has no model.num_timesteps")
        graph = load_npz(path / "weights.npz")
        terms = [term.name for term in meta.observation_terms]
        growth = _input_map(
            path, bundle_layout_shape(meta), env_layout_shape(recipe.env, meta.num_joints), meta.num_joints
        )
        if growth is not None:  # the actor's input grows in apply(): compare it as the grown one
            terms, size = list(expected.observation_terms), expected.observation_size
        else:
            size = meta.observation_size
        # (what the bundle has, what this recipe has), by the name a user would change.
        fields = {
            name: (value, getattr(expected, name))
            for name, value in (
                ("algorithm", model.get("algorithm")),
                ("robot", meta.robot_name),
                ("observation_size", size),
                ("action_size", meta.num_joints),
                ("observation_terms", terms),
            )
        }
        no_clip = float(np.finfo(np.float32).max)  # what an export without normalization records
        fields["policy.net_arch"] = (list(model.get("net_arch", [])), list(recipe.policy.net_arch))
        fields["policy.activation"] = (model.get("activation"), recipe.policy.activation.value)
        fields["normalize.clip_obs"] = (
            graph.obs_clip,
            recipe.normalize.clip_obs if recipe.normalize.observations else no_clip,
        )
        problems = [
            f"{name}: bundle has {theirs!r}, this run has {ours!r}"
            for name, (theirs, ours) in fields.items()
            if theirs != ours
        ]
        if problems:
            raise CheckpointError(f"bundle {path} does not fit this recipe: " + "; ".join(problems))
        if recipe.algorithm is not Algorithm.PPO:
            raise CheckpointError(f"bundle {path}: only PPO runs start from a bundle")
        ratio = action_scale_ratio(meta.action_scale_rad, recipe, meta.num_joints, path)
        return cls(
            source=path,
            graph=graph,
            num_timesteps=model["num_timesteps"],
            action_scale_ratio=ratio,
            growth=growth,
        )

    def apply(
        self,
        model: BaseAlgorithm,
        env: VecNormalize,
        adaptive_curriculum: bool,
        separate_down_level: bool = False,
    ) -> None:
        """Copy the actor into `model` and the observation statistics into `env`.

        The statistics get the bundle's step count as their sample count, so they move as slowly
        as they would have in the source run. The curriculum arguments are unused: a bundle carries no
        curriculum levels (the recipe's `curriculum.difficulty` is where the envs start).
        """
        if not isinstance(model, PPO):
            raise CheckpointError("only PPO runs start from a bundle")
        obs = env.obs_rms
        if not isinstance(obs, RunningMeanStd):
            raise TypeError("dict observation spaces are not used by stairbot")
        mean = self.graph.obs_mean.astype(np.float64)
        # The bundle's std already includes VecNormalize's epsilon (see policy_graph.from_sb3).
        var = np.maximum(self.graph.obs_std.astype(np.float64) ** 2 - env.epsilon, 0.0)
        layers = [*self.graph.hidden, self.graph.output]
        if self.growth is not None:
            print(
                f"input grown from {self.growth.source_size} to {self.growth.new_size}: "
                + "; ".join(self.growth.changes)
            )
            mean, var = grow_statistics(mean, var, self.growth)
            first = layers[0]
            layers[0] = dataclasses.replace(first, weight=grow_columns(first.weight, self.growth))
        obs.mean, obs.var = mean.copy(), var.copy()
        obs.count = float(self.num_timesteps)
        hidden = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
        targets = [*hidden, model.policy.action_net]
        with torch.no_grad():
            for target, layer in zip(targets, layers, strict=True):
                if tuple(target.weight.shape) != layer.weight.shape:
                    raise CheckpointError(
                        f"bundle {self.source}: a layer of shape {layer.weight.shape} cannot fill "
                        f"this run's {tuple(target.weight.shape)}"
                    )
                target.weight.copy_(torch.as_tensor(layer.weight))
                target.bias.copy_(torch.as_tensor(layer.bias))
        if not np.allclose(self.action_scale_ratio, 1.0):
            rescale_action_head(model, self.action_scale_ratio)


def actor_parameters(model: PPO) -> list[torch.nn.Parameter]:
    """The parameters that shape PPO's action distribution: actor MLP, action head, log std."""
    policy = model.policy
    return [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters(), policy.log_std]


class FreezeActor(BaseCallback):
    """Keeps PPO's actor fixed for the first `steps` steps of a run, so that only the critic learns.

    For a warm start from a bundle: the critic starts from random weights, and PPO's first updates
    would otherwise follow advantages measured against a meaningless baseline, which can undo what
    the actor knew. Frozen parameters get no gradient, so Adam leaves them alone. The updates of
    every rollout that ends at or before step `steps` train the critic only; the actor learns from
    the next rollout on.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.frozen = False

    def _set_frozen(self, frozen: bool) -> None:
        assert isinstance(self.model, PPO)  # the recipe check allows critic_warmup_steps for PPO only
        for parameter in actor_parameters(self.model):
            parameter.requires_grad_(not frozen)
        self.frozen = frozen

    def _on_training_start(self) -> None:
        if self.num_timesteps < self.steps:
            self._set_frozen(True)
            print(f"actor frozen for the first {self.steps} steps while the critic warms up")

    def _on_rollout_end(self) -> None:
        if self.frozen and self.num_timesteps > self.steps:
            self._set_frozen(False)
            print(f"actor released at {self.num_timesteps} steps")

    def _on_training_end(self) -> None:
        if self.frozen:
            self._set_frozen(False)

    def _on_step(self) -> bool:
        return True
