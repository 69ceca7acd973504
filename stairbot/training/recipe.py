"""Training recipes: the typed, frozen configuration of a training job.

A recipe is a YAML file in `train/` (or any path). Its `env:` section names an env preset and may
override any of its sections (`env: {preset: stairs_up, curriculum: {adaptive: true}}`), so dotted
command-line overrides such as `env.stairs.riser_m=0.12` or `ppo.learning_rate=1e-4` reach every
number. Unknown keys and bad values raise `ConfigError` naming the key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stairbot.config import apply_overrides, check_range, deep_merge, load_dataclass, read_yaml
from stairbot.envs.config import EnvConfig, read_env_preset
from stairbot.errors import ConfigError
from stairbot.paths import resolve_preset
from stairbot.terrain.stairs import Direction


class Algorithm(str, enum.Enum):
    PPO = "ppo"
    SAC = "sac"


class Activation(str, enum.Enum):
    ELU = "elu"
    RELU = "relu"
    TANH = "tanh"


@dataclass(frozen=True)
class PolicyConfig:
    """Actor and critic networks (two separate MLPs of the same shape)."""

    net_arch: tuple[int, ...] = (256, 128)
    activation: Activation = Activation.ELU
    log_std_init: float = -1.0  # initial log std of the Gaussian policy (PPO; SAC with sac.use_sde)

    def __post_init__(self) -> None:
        if not self.net_arch or any(width < 1 for width in self.net_arch):
            raise ConfigError(f"net_arch must list positive layer widths, got {list(self.net_arch)}")


@dataclass(frozen=True)
class PPOConfig:
    """Stable-Baselines3 PPO hyperparameters (names as in SB3)."""

    learning_rate: float = 3e-4
    # null: a constant learning_rate. A number: the rate falls linearly from learning_rate at the
    # run's first step to this at its total_timesteps (a resume to a new total stretches the line).
    # At a fixed rate the policy keeps taking steps of the same size, and where its gradients are
    # mostly noise (`stairbot gradient-noise`) those steps are a random walk; a falling rate lets
    # the walk settle.
    learning_rate_end: float | None = None
    n_steps: int = 1024  # rollout length per env; a rollout is n_steps * n_envs transitions
    batch_size: int = 512
    n_epochs: int = 5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 1.0
    target_kl: float | None = None
    # Charge on action means beyond +-action_bound (`training.bounded_policy`): brings back means
    # that drifted past the env's clip at 1, where PPO otherwise gets no gradient. 0: off.
    bound_loss_coef: float = 0.0
    action_bound: float = 1.0
    # Fraction of the actor's displacement from the weights the run started from that is removed
    # after every update (`training.anchor`): the fine-tuning's random walk becomes mean-reverting.
    # 0: off; at most 0.5 (a larger pull undoes most of each update).
    anchor_decay: float = 0.0

    def __post_init__(self) -> None:
        check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        if self.learning_rate_end is not None:
            check_range("learning_rate_end", self.learning_rate_end, 0.0, 1.0)
        check_range("n_steps", self.n_steps, 8, 100_000)
        check_range("batch_size", self.batch_size, 2, 1_000_000)
        check_range("n_epochs", self.n_epochs, 1, 100)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("clip_range", self.clip_range, 0.0, 1.0, low_open=True)
        check_range("ent_coef", self.ent_coef, 0.0, 1.0)
        check_range("vf_coef", self.vf_coef, 0.0, 10.0)
        check_range("max_grad_norm", self.max_grad_norm, 0.0, 100.0, low_open=True)
        check_range("bound_loss_coef", self.bound_loss_coef, 0.0, 100.0)
        check_range("action_bound", self.action_bound, 0.0, 10.0, low_open=True)
        check_range("anchor_decay", self.anchor_decay, 0.0, 0.5)


@dataclass(frozen=True)
class SACConfig:
    """Stable-Baselines3 SAC hyperparameters (names as in SB3)."""

    learning_rate: float = 3e-4
    buffer_size: int = 300_000
    learning_starts: int = 5_000
    batch_size: int = 256
    tau: float = 0.005
    gamma: float = 0.99
    train_freq: int = 1  # environment steps (per env) between gradient phases
    gradient_steps: int = 1
    ent_coef: str | float = "auto"  # "auto" (starts at 1), "auto_X" (starts at X) or a fixed number
    # Entropy the auto-tuned coefficient holds the policy at, nats; None: -(action dims), SB3's
    # default. Lower keeps less noise, so the deterministic action must do the walking itself.
    target_entropy: float | None = None
    # gSDE (Raffin et al. 2021): exploration noise that is a function of the state, redrawn every
    # `sde_sample_freq` steps (-1: once per gradient phase), so consecutive actions are not
    # independent jitter. SB3 then clips the actor's mean to +-2 before the tanh; export follows.
    use_sde: bool = False
    sde_sample_freq: int = -1
    # n-step returns (SB3's NStepReplayBuffer): the critic's target sums n discounted rewards before
    # it bootstraps, so a riser's pay reaches the steps that led to it n times faster. 1: off.
    n_steps: int = 1
    # Without gSDE, SB3 starts the actor's log-std layer at PyTorch's default init: a state-dependent
    # log std near 0, i.e. noise of std ~1 before the tanh, which shakes a standing robot over. A
    # number here starts that layer at zero weights and this bias (noise std exp(value) before the
    # tanh, still state-dependent as it learns). null: SB3's init. With gSDE, policy.log_std_init.
    initial_log_std: float | None = None

    def __post_init__(self) -> None:
        check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_range("buffer_size", self.buffer_size, 1_000, 10_000_000)
        check_range("n_steps", self.n_steps, 1, 100)
        check_range("learning_starts", self.learning_starts, 0, 10_000_000)
        check_range("batch_size", self.batch_size, 2, 100_000)
        check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("train_freq", self.train_freq, 1, 10_000)
        check_range("gradient_steps", self.gradient_steps, 1, 10_000)
        _check_ent_coef(self.ent_coef)
        if self.sde_sample_freq != -1:
            check_range("sde_sample_freq", self.sde_sample_freq, 1, 1_000_000)
        if self.target_entropy is not None:
            check_range("target_entropy", self.target_entropy, -1000.0, 1000.0)
        if self.initial_log_std is not None:
            if self.use_sde:
                raise ConfigError(
                    "sac.initial_log_std sets the log-std layer of SAC without gSDE; with"
                    " sac.use_sde: true the initial noise is policy.log_std_init (set initial_log_std: null)"
                )
            # SB3 clamps the actor's log std to [-20, 2].
            check_range("initial_log_std", self.initial_log_std, -20.0, 2.0)


def _check_ent_coef(value: str | float) -> None:
    """SB3's forms: "auto", "auto_X" with X > 0, or a fixed positive number."""
    text = str(value)
    number = text.removeprefix("auto_")
    if text == "auto":
        return
    try:
        ok = float(number) > 0.0
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"ent_coef must be 'auto', 'auto_X' (X > 0, the starting value) or a positive number, "
            f"got {value!r}"
        )


@dataclass(frozen=True)
class NormalizeConfig:
    """Running normalization of observations (and PPO's returns), saved as npz with checkpoints."""

    observations: bool = True
    rewards: bool = True  # scales rewards by a running return std (PPO only; SAC ignores it)
    clip_obs: float = 10.0
    # false: the observation statistics stay where the run started (from --init-from, or from the
    # checkpoint on --resume) instead of following each step, so they do not move under an actor
    # trained on them (runs/lo451 after 1M steps: the release's own actor on that run's statistics
    # climbed 75 of 160 hard held-out cells, 88 on its own). Frozen in the same run (runs/fz451) it
    # climbed no more: 32 and 18 of 160 at 0.5 and 1M steps against 51 and 45. Off in the recipes.
    update_observations: bool = True

    def __post_init__(self) -> None:
        check_range("clip_obs", self.clip_obs, 1.0, 1000.0)


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 50_000  # a crash loses at most this many environment steps
    keep: int = 3  # most recent checkpoints kept (the best model is kept apart)

    def __post_init__(self) -> None:
        check_range("every_steps", self.every_steps, 1, 100_000_000)
        check_range("keep", self.keep, 1, 1000)


@dataclass(frozen=True)
class EvalConfig:
    """Periodic evaluation that picks the best model (deterministic actions, fixed stairs)."""

    every_steps: int = 50_000
    episodes: int = 10  # per direction
    riser_m: float | None = None  # null: the env preset's riser
    # null: the env preset's direction. [up, down] for a recipe that trains both ways
    # (curriculum.down_fraction): the best model is then chosen on their mean.
    directions: tuple[Direction, ...] | None = None

    def __post_init__(self) -> None:
        check_range("every_steps", self.every_steps, 1, 100_000_000)
        check_range("episodes", self.episodes, 1, 10_000)
        if self.directions is not None and (
            not self.directions or len(set(self.directions)) != len(self.directions)
        ):
            raise ConfigError(
                f"directions must list up and/or down once each, got {[d.value for d in self.directions]}"
                " (or null: the env preset's direction)"
            )
        if self.riser_m is not None:
            check_range("riser_m", self.riser_m, 0.0, 0.3, low_open=True, unit="m")


@dataclass(frozen=True)
class Recipe:
    """A whole training job. `env` is the resolved env config (preset + the recipe's overrides)."""

    algorithm: Algorithm
    env: EnvConfig
    env_preset: str = "stairs_up"  # the preset the env config started from (for the record)
    total_timesteps: int = 500_000
    n_envs: int = 2
    seed: int = 0
    torch_threads: int = 1  # threads for the learner; each env worker always uses one
    # Env worker processes; each steps a block of n_envs / env_workers envs per message (fewer pipe
    # round trips than one process per env). null: one per core, at most n_envs.
    env_workers: int | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Warm start: a checkpoint directory, a run directory (its best/ checkpoint) or an export bundle,
    # whose weights and normalization statistics (and a checkpoint's curriculum levels) this run
    # starts from (fine-tuning, e.g. under randomization). The recipe's own hyperparameters apply;
    # the step counter starts at 0. See stairbot/training/warm_start.py.
    init_from: str | None = None
    # PPO: steps at the start of the run during which the actor is frozen and only the critic
    # learns. For a start from a bundle, which carries no critic; 0 = none.
    critic_warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_range("total_timesteps", self.total_timesteps, 1, 10_000_000_000)
        check_range("critic_warmup_steps", self.critic_warmup_steps, 0, 10_000_000_000)
        if self.critic_warmup_steps and self.algorithm is not Algorithm.PPO:
            raise ConfigError(
                f"critic_warmup_steps is for PPO (it freezes PPO's actor); this recipe is "
                f"{self.algorithm.value}: set it to 0"
            )
        check_range("n_envs", self.n_envs, 1, 256)
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("torch_threads", self.torch_threads, 1, 256)
        if self.env_workers is not None and not 1 <= self.env_workers <= self.n_envs:
            raise ConfigError(
                f"env_workers must be between 1 and n_envs ({self.n_envs}), got {self.env_workers}: "
                "each worker holds at least one env (or null: one per core)"
            )


def _resolve_env_section(raw: dict[str, Any]) -> dict[str, Any]:
    """Replace the raw `env:` section (preset name + overrides) by the merged env mapping."""
    env = raw.get("env", {})
    if not isinstance(env, Mapping):
        raise ConfigError(f"env must be a mapping with a 'preset' key, got {env!r}")
    env = dict(env)
    preset = env.pop("preset", raw.get("env_preset", "stairs_up"))
    return {**raw, "env_preset": str(preset), "env": deep_merge(read_env_preset(preset), env)}


def load_recipe(recipe: str | Path, overrides: Mapping[str, Any] | Iterable[str] = ()) -> Recipe:
    """Load a recipe by name (`train/<name>.yaml`) or path, with dotted-key overrides applied."""
    raw = apply_overrides(read_yaml(resolve_preset(recipe, "train")), overrides)
    try:
        return load_dataclass(Recipe, _resolve_env_section(raw))
    except ConfigError as exc:
        raise ConfigError(f"recipe '{recipe}': {exc}") from None


def recipe_from_plain(raw: Mapping[str, Any]) -> Recipe:
    """Rebuild a recipe from its resolved plain form (a run directory's config.yaml)."""
    return load_dataclass(Recipe, raw)
