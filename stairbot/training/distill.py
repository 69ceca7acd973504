"""Teacher-student distillation (DAgger): one PPO policy that acts as other policies do.

Fine-tuning one policy on both the clean and the randomized robot trades one for the other here
(docs/experiments.md): a policy trained on clean short-tread flights climbs them and fails on the
randomized robot, the release holds on the randomized robot and climbs fewer of them. Distillation
copies behaviour instead of re-learning it: a student network regresses onto its teachers' actions
on the states the student itself visits (DAgger, Ross, Gordon and Bagnell 2011), so it learns what to
do where its own mistakes take it, which plain behaviour cloning on the teachers' episodes does not.

`distill(student, teacher, out, routes=..., settings=...)`:

1. The student is a PPO training checkpoint (a run directory's best, or `RUN/checkpoints/step_N`):
   its network is the start and its observation normalization stays fixed (the teachers normalize
   with their own). Episodes run in the student run's env preset (its curriculum, commands,
   randomization and `episode_fraction`), one env, seeded.
2. Every control step is labelled with the action of the episode's teacher: that of the first of
   `routes` whose conditions the episode's reset info meets (riser, tread, direction, randomized
   robot: `stairbot.training.routes`), `teacher` where none does. A teacher is any POLICY the
   benchmark takes (a run, a checkpoint, an export bundle, `pretrained`) and must see and act as
   the student does (same observation and control sections of their env presets).
3. Iteration 0 lets the teachers drive (their own episodes); every later one lets the student drive
   (deterministic actions), so the data set grows with the states the student reaches. After each
   iteration the student's actor (policy MLP and action layer; not its critic or log std) is fitted
   to every labelled step so far by mean squared error between its Gaussian mean and the teacher's
   action in [-1, 1] (PPO clips the mean to that box, so equal means act equally).
4. `out` is written as a run directory like `stairbot average`'s (`best/` holds the student; its
   `env.yaml` and `config.yaml` are the student run's; `checkpoints/step_N/` the student after each
   round, N the labelled steps so far: the rounds swing, so each can be benchmarked and exported
   with `--checkpoint step_N`), with `distill.json`: the sources, routes,
   settings and per iteration the episodes driven (successes per route) and the fit's error before
   (per route) and after.
   Every command that takes a run takes it (`benchmark`, `select`, `export`, `train --init-from`).

Nothing is written until the end (a temporary folder renamed into place): an interrupted
distillation leaves no `out`, and loses minutes, not a training run.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.envs.config import EnvConfig, load_env_config
from stairbot.errors import ConfigError, StairbotError
from stairbot.policy_source import PolicySource, load_policy_source, shipped_or_path
from stairbot.training.checkpoints import (
    CheckpointMeta,
    checkpoint_name,
    load_model,
    load_normalization,
    read_meta,
)
from stairbot.training.policy import SB3Policy, training_checkpoint
from stairbot.training.routes import DEFAULT_ROUTE, Route, route_of
from stairbot.training.run_dir import RunDir

DISTILL_FILE = "distill.json"
# Env sections a teacher's preset must share with the student's: what an observation means and what
# an action does. The rest (rewards, stairs, randomization, commands) may differ.
_SHARED_SECTIONS = ("control", "observation")


@dataclass(frozen=True)
class DistillSettings:
    """How much data and fitting (steps are control steps of the one env).

    Attributes:
        iterations: rounds of collection then fitting; the first is driven by the teachers.
        steps_per_iteration: control steps collected per round.
        epochs: passes over every step collected so far after each round.
        batch_size: steps per gradient step.
        learning_rate: Adam's, on the actor's weights.
        seed: episode i of the run resets with seed + i; also seeds the minibatch order.
    """

    iterations: int = 4
    steps_per_iteration: int = 20_000
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "steps_per_iteration", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"distillation {name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(
                f"distillation learning_rate must be a positive number, got {self.learning_rate}"
            )


@dataclass
class IterationRecord:
    """One round: who drove, what the episodes did, and the fit (mean squared error per action
    dimension, [-1, 1] action units) on the data set before and after fitting it."""

    iteration: int
    driver: str  # "teachers" or "student"
    steps: dict[str, int] = field(default_factory=dict)  # route -> labelled steps
    episodes: dict[str, int] = field(default_factory=dict)  # route -> finished episodes
    successes: dict[str, int] = field(default_factory=dict)  # route -> of them, reached the top
    new_data_loss: float = math.nan  # the student's error on this round's steps, before fitting
    new_data_loss_by_route: dict[str, float] = field(default_factory=dict)  # the same, per route
    loss_after: float = math.nan  # on every step so far, after fitting


def _check_teacher(teacher: PolicySource, student_config: EnvConfig, meta: CheckpointMeta) -> None:
    """Refuse a teacher that sees or acts otherwise than the student (its env, checkpoint `meta`)."""
    teacher_config = load_env_config(teacher.env_preset)
    for section in _SHARED_SECTIONS:
        if getattr(teacher_config, section) != getattr(student_config, section):
            raise StairbotError(
                f"teacher {teacher.name} was trained with another env.{section} than the student "
                f"({getattr(teacher_config, section)} against {getattr(student_config, section)}); "
                "a teacher must observe and act as the student does"
            )
    probe = teacher.act(np.zeros(meta.observation_size, np.float32))
    if probe.shape != (meta.action_size,):
        raise StairbotError(
            f"teacher {teacher.name} returned an action of shape {probe.shape}; the student acts with "
            f"({meta.action_size},)"
        )


class _Student:
    """The student's SB3 PPO model, acting on raw observations and fitted to labelled ones."""

    def __init__(self, checkpoint: Path, seed: int) -> None:
        import torch

        from stairbot.training.algorithms import algorithm_class

        self.meta = read_meta(checkpoint)
        if self.meta.algorithm != "ppo":
            raise StairbotError(
                f"{checkpoint} is a {self.meta.algorithm} checkpoint; distillation trains PPO students "
                "(whose Gaussian mean, clipped to [-1, 1], is the action)"
            )
        self.model = load_model(checkpoint, algorithm_class(self.meta.algorithm))
        self.normalization = load_normalization(checkpoint / "normalization.npz")
        self.acting = SB3Policy(self.model, self.normalization)
        policy = self.model.policy
        self.parameters = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
        self._torch = torch
        self._generator = torch.Generator().manual_seed(seed)

    def act(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.acting.act(observation)

    def _means(self, normalized: Any) -> Any:
        policy = self.model.policy
        latent_pi = policy.mlp_extractor.forward_actor(policy.extract_features(normalized))
        return policy.action_net(latent_pi)

    def normalize(self, observations: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw observations (N, obs) as the network reads them (the student's fixed statistics)."""
        return self.acting.normalize(observations)

    def loss(self, normalized: NDArray[np.float32], labels: NDArray[np.float32]) -> float:
        """Mean squared error of the Gaussian means for `normalized` observations (N, obs) against
        `labels` (N, J), per action dimension."""
        torch = self._torch
        with torch.no_grad():
            error = self._means(torch.as_tensor(normalized)) - torch.as_tensor(labels)
            return float((error**2).mean())

    def fit(
        self, normalized: NDArray[np.float32], labels: NDArray[np.float32], settings: DistillSettings
    ) -> None:
        """Fit the actor to `labels` (N, J) on `normalized` observations (N, obs): `settings.epochs`
        passes of Adam in shuffled minibatches."""
        torch = self._torch
        x = torch.as_tensor(normalized)
        y = torch.as_tensor(labels)
        optimizer = torch.optim.Adam(self.parameters, lr=settings.learning_rate)
        self.model.policy.train()
        for _ in range(settings.epochs):
            order = torch.randperm(len(x), generator=self._generator)
            for start in range(0, len(x), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                loss = ((self._means(x[batch]) - y[batch]) ** 2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.model.policy.set_training_mode(False)


def make_env(env_preset: Path) -> Any:
    """The student run's env as training makes it: with Gymnasium's time limit (an episode of a
    policy that stands still ends after `stairbot.envs.MAX_EPISODE_STEPS`, as in training)."""
    import gymnasium as gym

    from stairbot.training.vec import ENV_ID

    return gym.make(ENV_ID, preset=str(env_preset))


def _collect(
    env: Any,
    *,
    teachers: dict[str, PolicySource],
    routes: Sequence[Route],
    student: _Student,
    driver: str,
    steps: int,
    next_seed: int,
    record: IterationRecord,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.str_], int]:
    """`steps` labelled control steps from episodes seeded from `next_seed` on: their observations
    (steps, N), teacher actions (steps, J) and routes (steps,), and the next unused seed. The last
    episode is cut at the step budget (counted as unfinished)."""
    observations: list[NDArray[np.float32]] = []
    labels: list[NDArray[np.float32]] = []
    step_routes: list[str] = []
    while len(observations) < steps:
        observation, info = env.reset(seed=next_seed)
        next_seed += 1
        route = route_of(routes, info)
        teacher = teachers[route]
        done = False
        while not done and len(observations) < steps:
            label = teacher.act(observation)
            observations.append(observation)
            labels.append(label)
            step_routes.append(route)
            action = label if driver == "teachers" else student.act(observation)
            observation, _, terminated, truncated, info = env.step(action)
            record.steps[route] = record.steps.get(route, 0) + 1
            done = terminated or truncated
        if done:
            record.episodes[route] = record.episodes.get(route, 0) + 1
            record.successes[route] = record.successes.get(route, 0) + int(bool(info.get("success")))
    return (
        np.asarray(observations, np.float32),
        np.asarray(labels, np.float32),
        np.asarray(step_routes),
        next_seed,
    )


def distill(
    student: Path,
    teacher: str | Path,
    out: Path,
    *,
    routes: tuple[Route, ...] = (),
    settings: DistillSettings | None = None,
    progress: Any = None,
) -> Path:
    """Distil `teacher` (and each route's teacher on its episodes) into the PPO checkpoint
    `student`, written as the new run directory `out`; see the module docstring. `progress(line)`
    is called with a line per iteration (None: silent)."""
    from stairbot.training.averaging import write_derived_run

    settings = settings or DistillSettings()
    if out.exists():
        raise StairbotError(
            f"{out} already exists; distillation writes a new run directory, choose another --out"
        )
    checkpoint, run = training_checkpoint(student, "distillation")
    env_preset = RunDir(run).env_preset
    learner = _Student(checkpoint, settings.seed)
    names = [route.conditions for route in routes]
    if len(set(names)) < len(names):
        raise StairbotError(f"two routes have the same conditions ({', '.join(names)}); give each once")
    teachers = {DEFAULT_ROUTE: load_policy_source(teacher)}
    teachers.update({route.conditions: load_policy_source(route.teacher) for route in routes})
    student_config = load_env_config(env_preset)
    for source in teachers.values():
        _check_teacher(source, student_config, learner.meta)

    env = make_env(env_preset)
    # Normalized once as collected: the student's statistics stay fixed, so every fit and loss reads these.
    all_obs = np.zeros((0, learner.meta.observation_size), np.float32)
    all_labels = np.zeros((0, learner.meta.action_size), np.float32)
    records: list[IterationRecord] = []
    round_states: list[tuple[str, dict[str, Any]]] = []  # (checkpoint name, policy state) per round
    next_seed = settings.seed
    try:
        for iteration in range(settings.iterations):
            record = IterationRecord(iteration, "teachers" if iteration == 0 else "student")
            raw_obs, labels, step_routes, next_seed = _collect(
                env,
                teachers=teachers,
                routes=routes,
                student=learner,
                driver=record.driver,
                steps=settings.steps_per_iteration,
                next_seed=next_seed,
                record=record,
            )
            normalized = learner.normalize(raw_obs)
            record.new_data_loss = learner.loss(normalized, labels)
            record.new_data_loss_by_route = {
                name: learner.loss(normalized[step_routes == name], labels[step_routes == name])
                for name in sorted(set(step_routes.tolist()))
            }
            all_obs = np.concatenate([all_obs, normalized])
            all_labels = np.concatenate([all_labels, labels])
            learner.fit(all_obs, all_labels, settings)
            record.loss_after = learner.loss(all_obs, all_labels)
            round_states.append(
                (checkpoint_name(len(all_obs)), copy.deepcopy(learner.model.policy.state_dict()))
            )
            records.append(record)
            if progress is not None:
                progress(_iteration_line(record))
    finally:
        env.close()

    return write_derived_run(
        out,
        model=learner.model,
        normalization=learner.normalization,
        checkpoints=[checkpoint],
        runs=[run],
        meta=learner.meta,
        record_name=DISTILL_FILE,
        checkpoint_states=round_states,
        record={
            "method": "DAgger: the student's Gaussian mean fitted by mean squared error to the teachers' "
            "actions on the states of its own episodes (the first iteration's driven by the teachers)",
            "student": {
                "checkpoint": str(checkpoint),
                "run": str(run),
                "num_timesteps": learner.meta.num_timesteps,
            },
            "teachers": {name: source.name for name, source in teachers.items()},
            # A name such as `pretrained` means another bundle once the release changes: the
            # weights' hash says which one taught.
            "teacher_weights_sha256": {
                DEFAULT_ROUTE: _weights_sha256(teacher),
                **{route.conditions: _weights_sha256(route.teacher) for route in routes},
            },
            "routes": [asdict(route) for route in routes],
            "settings": asdict(settings),
            "iterations": [asdict(r) for r in records],
        },
    )


def _weights_sha256(policy: str | Path) -> str | None:
    """The sha256 of a bundle's `weights.npz` as its `policy.json` lists it; None for a run."""
    meta = shipped_or_path(policy) / "policy.json"
    if not meta.is_file():
        return None
    files: dict[str, dict[str, str]] = json.loads(meta.read_text()).get("files", {})
    return files.get("weights.npz", {}).get("sha256")


def _iteration_line(record: IterationRecord) -> str:
    routes = ", ".join(
        f"{route} {record.successes.get(route, 0)}/{record.episodes.get(route, 0)} episodes to the top"
        for route in sorted(record.steps)
    )
    by_route = ", ".join(f"{route} {loss:.4f}" for route, loss in record.new_data_loss_by_route.items())
    return (
        f"iteration {record.iteration} ({record.driver} drove: {routes}): error on the new steps "
        f"{record.new_data_loss:.4f} ({by_route}), on all after fitting {record.loss_after:.4f}"
    )
