"""Training jobs: start a run from a recipe, or resume one from its last checkpoint.

What a run survives: Ctrl-C or SIGTERM stops training at the next step and writes a final
checkpoint; a killed process (SIGKILL, power loss) loses at most one checkpoint interval, since
checkpoints are written atomically every `checkpoint.every_steps`. Resuming restores the model and
optimizer, the step counter, the observation/return normalization, the SAC replay buffer and each
env's curriculum level, and reseeds the envs deterministically from (seed, steps done) so a resumed
run does not replay old episodes.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

import stairbot
from stairbot.envs.config import env_observation_layout
from stairbot.errors import StairbotError
from stairbot.robots.spec import load_robot_spec
from stairbot.training.algorithms import algorithm_class, build_model
from stairbot.training.anchor import AnchorPull, load_anchor, save_anchor
from stairbot.training.callbacks import EpisodeRecorder, PeriodicCheckpoint, PeriodicEval, ProgressBar
from stairbot.training.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    apply_normalization,
    check_compatible,
    checkpoint_name,
    list_checkpoints,
    load_model,
    load_normalization,
    prune_checkpoints,
    read_difficulties,
    read_down_difficulties,
    read_meta,
    save_checkpoint,
)
from stairbot.training.recipe import Algorithm, Recipe
from stairbot.training.run_dir import RunDir, create_run_dir, record_command
from stairbot.training.vec import env_factory, make_vec_env
from stairbot.training.warm_start import FreezeActor, read_warm_start

BEST_KEY_FILE = "eval_key.json"
# An evaluation env never adapts its stairs: it measures on the recipe's fixed flight.
_EVAL_ENV_OVERRIDES = {"curriculum.adaptive": False, "curriculum.difficulty": None}


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    num_timesteps: int
    interrupted: bool
    last_checkpoint: Path


def expected_meta(recipe: Recipe, num_timesteps: int = 0) -> CheckpointMeta:
    """What a checkpoint of this recipe must say it was trained on."""
    spec = load_robot_spec(recipe.env.robot)
    layout = env_observation_layout(recipe.env, spec.num_joints)
    return CheckpointMeta(
        algorithm=recipe.algorithm.value,
        num_timesteps=num_timesteps,
        robot=spec.name,
        observation_size=layout.size,
        action_size=spec.num_joints,
        observation_terms=[term.name for term in layout],
        stairbot_version=stairbot.__version__,
    )


class StopOnSignal(BaseCallback):
    """Ends training cleanly at the next environment step after SIGINT (Ctrl-C) or SIGTERM.

    The handler only records the request; raising KeyboardInterrupt at an arbitrary point could land
    inside a pipe exchange with the env workers and leave them out of step, so the final checkpoint
    could no longer ask them for their curriculum levels. A second signal aborts at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
            "(send it again to abort at once)",
            file=sys.stderr,
        )

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the signals while training (only the main thread may; elsewhere it is a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_step(self) -> bool:
        return not self.requested


class _Run:
    """The live state of one training process: model, envs, run directory, callbacks."""

    def __init__(self, run: RunDir, recipe: Recipe, model: BaseAlgorithm, env: VecNormalize) -> None:
        self.run = run
        self.recipe = recipe
        self.model = model
        self.env = env
        self.meta = expected_meta(recipe)

    def difficulties(self) -> list[float | None]:
        return list(self.env.get_attr("difficulty"))

    def down_difficulties(self) -> list[float | None] | None:
        """Each env's level of down episodes, where they keep their own; None where shared."""
        if not self.recipe.env.curriculum.keeps_down_level:
            return None
        return list(self.env.get_attr("down_difficulty"))

    def save(self, target: Path, **options: Any) -> Path:
        meta = CheckpointMeta(**{**self.meta.__dict__, "num_timesteps": self.model.num_timesteps})
        return save_checkpoint(
            target,
            self.model,
            self.env,
            self.difficulties(),
            meta,
            down_difficulties=self.down_difficulties(),
            **options,
        )

    def save_periodic(self) -> Path:
        path = self.save(self.run.checkpoints / checkpoint_name(self.model.num_timesteps))
        prune_checkpoints(self.run.path, self.recipe.checkpoint.keep)
        return path

    def save_best(self, key: tuple[float, float, float]) -> Path:
        """The best model, with its evaluation key inside the same atomic write (so a resumed run
        compares against it); no replay buffer (resuming uses the periodic checkpoints)."""
        extra = {BEST_KEY_FILE: json.dumps(list(key))}
        return self.save(self.run.best, replay_buffer=False, extra_files=extra)

    def learn(self, target_timesteps: int, best_key: tuple[float, float, float] | None) -> TrainResult:
        recipe = self.recipe
        remaining = target_timesteps - self.model.num_timesteps
        term_names = sorted(name for name, weight in recipe.env.rewards.items() if weight != 0.0)
        recorder = EpisodeRecorder(self.run.episodes_csv, term_names)
        evaluator = PeriodicEval(
            every_steps=recipe.eval.every_steps,
            episodes=recipe.eval.episodes,
            make_envs={
                direction: env_factory(self.run.env_preset, eval_overrides(recipe, direction))
                for direction in eval_directions(recipe)
            },
            csv_path=self.run.evaluations_csv,
            save_best=self.save_best,
            seed=recipe.seed + 1_000_000,
        )
        evaluator.best_key = best_key
        stop = StopOnSignal()
        hooks: list[BaseCallback] = [
            stop,
            recorder,
            ProgressBar(target_timesteps, recorder),
            PeriodicCheckpoint(recipe.checkpoint.every_steps, self.save_periodic),
            evaluator,
        ]
        if recipe.critic_warmup_steps > 0:
            hooks.append(FreezeActor(recipe.critic_warmup_steps))
        if _anchored(recipe):
            assert isinstance(self.model, PPO)
            anchor = load_anchor(self.run.path, self.model)
            hooks.append(AnchorPull(anchor, recipe.ppo.anchor_decay))
        callbacks = CallbackList(hooks)
        with stop.installed():
            self.model.learn(remaining, callback=callbacks, reset_num_timesteps=False, tb_log_name="run")
            last = self.save_periodic()
            if not stop.requested and evaluator.last_eval_step != self.model.num_timesteps:
                evaluator.run()  # the final policy is always evaluated (and may be the best)
                self.model.logger.dump(self.model.num_timesteps)
        self.env.close()
        return TrainResult(self.run.path, self.model.num_timesteps, stop.requested, last)


def _anchored(recipe: Recipe) -> bool:
    """Whether the run pulls its actor back toward its start after each update (`ppo.anchor_decay`)."""
    return recipe.algorithm is Algorithm.PPO and recipe.ppo.anchor_decay > 0


def eval_directions(recipe: Recipe) -> list[str]:
    """The directions ("up", "down") the periodic evaluation runs, `eval.episodes` each."""
    if recipe.eval.directions is None:
        return [recipe.env.stairs.direction.value]
    return [direction.value for direction in recipe.eval.directions]


def eval_overrides(recipe: Recipe, direction: str | None = None) -> dict[str, object]:
    """Env overrides of an evaluation: fixed stairs at the recipe's eval riser (and `direction`)."""
    overrides: dict[str, object] = dict(_EVAL_ENV_OVERRIDES)
    if recipe.eval.riser_m is not None:
        overrides["stairs.riser_m"] = recipe.eval.riser_m
    if direction is not None:
        overrides["stairs.direction"] = direction
    return overrides


class FrozenRunningMeanStd(RunningMeanStd):
    """Observation statistics that keep the mean, variance and count they are given: `update` does
    nothing. The return statistics go on updating, as VecNormalize's `training` flag would stop both."""

    def update(self, arr: np.ndarray) -> None:
        del arr


def normalized_vec_env(recipe: Recipe, env: VecEnv) -> VecNormalize:
    """Wrap training envs in the recipe's running normalization (with the observation statistics
    frozen where `normalize.update_observations` is false)."""
    norm = recipe.normalize
    vec_normalize = VecNormalize(
        env,
        norm_obs=norm.observations,
        # Return scaling helps PPO's value targets; SAC's replay targets need raw rewards.
        norm_reward=norm.rewards and recipe.algorithm is Algorithm.PPO,
        clip_obs=norm.clip_obs,
        gamma=recipe.ppo.gamma if recipe.algorithm is Algorithm.PPO else recipe.sac.gamma,
    )
    if norm.observations and not norm.update_observations:
        running = vec_normalize.obs_rms
        assert isinstance(running, RunningMeanStd)  # stairbot's observations are flat arrays
        # at VecNormalize's own starting values; --init-from and --resume then write theirs into it
        vec_normalize.obs_rms = FrozenRunningMeanStd(shape=running.mean.shape)
    return vec_normalize


def restored_env(run: RunDir, recipe: Recipe, checkpoint: Path, seed: int) -> VecNormalize:
    """The run's training envs as they were at `checkpoint`, seeded `seed`: its observation and
    return statistics and each env's curriculum level(s). The checkpoint's files are read (and
    refused if corrupt) before any env worker starts."""
    difficulties = read_difficulties(checkpoint)
    down_difficulties = read_down_difficulties(checkpoint)
    normalization = load_normalization(checkpoint / "normalization.npz")
    env = normalized_vec_env(
        recipe, make_vec_env(run.env_preset, recipe.n_envs, seed, workers=recipe.env_workers)
    )
    try:
        apply_normalization(env, normalization)
        for index, difficulty in enumerate(difficulties[: recipe.n_envs]):
            env.env_method("set_difficulty", difficulty, indices=[index])
        if recipe.env.curriculum.keeps_down_level:
            for index, difficulty in enumerate((down_difficulties or [])[: recipe.n_envs]):
                env.env_method("set_down_difficulty", difficulty, indices=[index])
    except BaseException:
        env.close()
        raise
    return env


def train(recipe: Recipe, run_path: Path) -> TrainResult:
    """Start a new run in `run_path` and train for `recipe.total_timesteps` steps.

    With `recipe.init_from` set, the run starts from that checkpoint's (or bundle's) weights,
    normalization and curriculum levels (see `warm_start`); it is validated before the run
    directory is created.
    """
    torch.set_num_threads(recipe.torch_threads)
    init = None
    if recipe.init_from is not None:
        init = read_warm_start(Path(recipe.init_from), expected_meta(recipe), recipe)
    run = create_run_dir(run_path, recipe)
    env = normalized_vec_env(
        recipe, make_vec_env(run.env_preset, recipe.n_envs, recipe.seed, workers=recipe.env_workers)
    )
    model = build_model(recipe, env, run.tensorboard)
    if init is not None:
        try:
            curriculum = recipe.env.curriculum
            init.apply(
                model,
                env,
                adaptive_curriculum=curriculum.adaptive,
                separate_down_level=curriculum.keeps_down_level,
            )
        except BaseException:
            env.close()
            shutil.rmtree(run.path)  # created just above (create_run_dir refuses a non-empty one)
            raise
        print(f"initialized from {init.source} ({init.num_timesteps} steps)")
    if _anchored(recipe):
        assert isinstance(model, PPO)
        save_anchor(model, run.path)  # the actor as the run starts: what every update is pulled toward
    return _Run(run, recipe, model, env).learn(recipe.total_timesteps, best_key=None)


def resume(run_path: Path, total_timesteps: int | None = None) -> TrainResult:
    """Continue a run from its last checkpoint up to `total_timesteps` (default: the recipe's)."""
    run = RunDir(run_path)
    if not run.config.is_file():
        raise CheckpointError(f"{run_path} is not a stairbot run directory (no config.yaml)")
    recipe = run.recipe()
    checkpoints = list_checkpoints(run_path)
    if not checkpoints:
        raise CheckpointError(f"{run_path} has no checkpoint to resume from")
    checkpoint = checkpoints[-1]
    meta = read_meta(checkpoint)
    check_compatible(meta, expected_meta(recipe), checkpoint)
    target = recipe.total_timesteps if total_timesteps is None else total_timesteps
    if target <= meta.num_timesteps:
        raise StairbotError(
            f"{run_path} already has {meta.num_timesteps} steps, the target is {target}: "
            "pass a larger --timesteps to train further"
        )
    torch.set_num_threads(recipe.torch_threads)
    # Reseed from (seed, steps done): reproducible, and no replay of the first segment's episodes.
    seed = recipe.seed + meta.num_timesteps
    env = restored_env(run, recipe, checkpoint, seed)
    try:
        model = load_model(
            checkpoint,
            algorithm_class(recipe.algorithm.value),
            env=env,
            tensorboard_log=str(run.tensorboard),
        )
        if recipe.algorithm is Algorithm.SAC:
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        model.set_random_seed(seed)
    except BaseException:
        env.close()
        raise
    record_command(run)  # only once the run could really be resumed
    best_file = run.best / BEST_KEY_FILE
    best_key = None
    if best_file.is_file():
        success, climbed, mean_return = json.loads(best_file.read_text())
        best_key = (float(success), float(climbed), float(mean_return))
    return _Run(run, recipe, model, env).learn(target, best_key=best_key)
