"""How much of a PPO update is signal: the gradient noise scale of a run at one checkpoint.

McCandlish et al. (2018, "An Empirical Model of Large-Batch Training") show that the batch size
past which more samples per update stop paying is about the gradient noise scale

    B_noise = tr(Sigma) / |G|^2

where G is the true gradient of the loss and Sigma the covariance of one sample's gradient. A batch
of B samples has an expected squared gradient |G|^2 + tr(Sigma) / B: well below B_noise, each update
is mostly noise, and twice the samples per update buy nearly twice the progress per update.

Here the samples are PPO rollouts, as the run collects them (its envs, curriculum levels and
frozen observation and return statistics at the checkpoint), because the transitions of one rollout
are correlated and a per-transition covariance would understate the noise. For each of M rollouts
the gradient g_i of PPO's policy loss at the checkpoint's weights (ratio 1, advantages normalized
over the rollout) is taken with respect to the actor's parameters (its MLP, action head and log std;
not the critic, not the bound loss, which has no sampling noise). Then, with g the mean of the g_i,

    tr(Sigma_rollout) = sum_i |g_i - g|^2 / (M - 1)        (noise of one rollout's gradient)
    |G|^2             = |g|^2 - tr(Sigma_rollout) / M        (unbiased)
    B_noise           = tr(Sigma_rollout) / |G|^2 rollouts  = that x transitions per rollout

An |G|^2 within two (jackknife) standard errors of zero means the M rollouts do not tell the
signal from the noise; B_noise is then bounded from below, by tr(Sigma) over |G|^2's estimate plus
two standard errors. Its spread over random halves of the rollouts comes with it: with tens
of rollouts it is wide, and the figure is an order of magnitude, not a digit.

The noise comes mostly from the advantages, and GAE's lambda (Schulman et al. 2016) trades their
variance against bias from the critic: lambda 1 sums the sampled rewards, lambda 0 trusts the
critic's next-step value. Other lambdas are measured on the same rollouts (their advantages
recomputed from the rollouts' rewards and values), so they differ only in the estimator, beside the
critic's explained variance of each lambda's returns and how each lambda's signal G lines up with
the run's own (`SignalAlignment`: their dot product from the cross terms g_i(a) . g_j(b), i != j,
which carry no shared noise, with a standard error and a lower bound on the cosine).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.utils import obs_as_tensor

from stairbot.errors import StairbotError
from stairbot.training.checkpoints import check_compatible, load_model, read_meta
from stairbot.training.policy import training_checkpoint
from stairbot.training.run_dir import RunDir

_PERCENTILES = (10.0, 50.0, 90.0)


@dataclass(frozen=True)
class NoiseStatistics:
    """Second moments of M per-rollout gradients (squared norms summed over parameters)."""

    rollouts: int
    mean_sq_norm: float  # E|g_i|^2: one rollout's gradient
    signal_sq_norm: float  # |G|^2, unbiased; <= 0 when M rollouts cannot tell it from the noise
    noise_trace: float  # tr(Sigma) of one rollout's gradient
    mean_pairwise_cosine: float  # between two rollouts' gradients: ~0 when noise dominates
    signal_sq_norm_stderr: float  # jackknife standard error of signal_sq_norm; nan with < 3 rollouts

    @property
    def noise_scale_rollouts(self) -> float:
        """B_noise in rollouts; inf when no signal is measurable."""
        return self.noise_trace / self.signal_sq_norm if self.signal_sq_norm > 0 else float("inf")

    @property
    def signal_resolved(self) -> bool:
        """Whether |G|^2 is more than two standard errors above zero."""
        return bool(self.signal_sq_norm > 2 * self.signal_sq_norm_stderr)

    @property
    def noise_scale_lower_bound_rollouts(self) -> float:
        """B_noise is at least this (rollouts) if |G|^2 lies below its estimate + 2 standard errors."""
        ceiling = max(self.signal_sq_norm, 0.0) + 2 * self.signal_sq_norm_stderr
        return self.noise_trace / ceiling if ceiling > 0 else float("inf")


def statistics_from_gram(gram: NDArray[np.float64]) -> NoiseStatistics:
    """`NoiseStatistics` of M gradients from their (M, M) Gram matrix K_ij = g_i . g_j."""
    m = gram.shape[0]
    if gram.shape != (m, m) or m < 2:
        raise StairbotError(f"the noise scale needs the Gram matrix of >= 2 gradients, got {gram.shape}")
    mean_sq, signal, noise = _moments(gram)
    norms = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    cosines = gram / np.outer(norms, norms)
    off_diagonal = cosines[~np.eye(m, dtype=bool)]
    return NoiseStatistics(
        rollouts=m,
        mean_sq_norm=mean_sq,
        signal_sq_norm=signal,
        noise_trace=noise,
        mean_pairwise_cosine=float(off_diagonal.mean()),
        signal_sq_norm_stderr=_jackknife_signal_stderr(gram),
    )


def _moments(gram: NDArray[np.float64]) -> tuple[float, float, float]:
    """(E|g_i|^2, unbiased |G|^2, unbiased tr(Sigma)) of the gradients behind a Gram matrix."""
    m = gram.shape[0]
    mean_sq = float(np.trace(gram)) / m
    sq_of_mean = float(gram.sum()) / m**2
    noise = (mean_sq - sq_of_mean) * m / (m - 1)
    return mean_sq, sq_of_mean - noise / m, noise


def _jackknife_signal_stderr(gram: NDArray[np.float64]) -> float:
    """Jackknife standard error of the |G|^2 estimate (leave one rollout out); nan with < 3."""
    m = gram.shape[0]
    if m < 3:
        return float("nan")
    keep = ~np.eye(m, dtype=bool)
    left_out = np.array([_moments(gram[np.ix_(row, row)])[1] for row in keep])
    return float(np.sqrt((m - 1) / m * np.sum((left_out - left_out.mean()) ** 2)))


def half_sample_noise_scale(
    gram: NDArray[np.float64], samples: int = 2000, seed: int = 0
) -> tuple[float, ...] | None:
    """Percentiles (10, 50, 90) of B_noise (rollouts) measured on random halves of the rollouts
    (drawn without replacement, so each half is a valid sample of independent rollouts; a
    resample with replacement would repeat rollouts and bias the signal up). Halves are noisier than
    the whole, so the spread is a conservative one. A half without measurable signal counts as
    infinite. None with fewer than 4 rollouts."""
    m = gram.shape[0]
    half = m // 2
    if half < 2:
        return None
    rng = np.random.default_rng(seed)
    scale = []
    for _ in range(samples):
        members = rng.choice(m, half, replace=False)
        _, signal, noise = _moments(gram[np.ix_(members, members)])
        scale.append(noise / signal if signal > 0 else np.inf)
    # nearest rank, not interpolation: halves without signal are infinite
    return tuple(float(value) for value in np.percentile(scale, _PERCENTILES, method="nearest"))


@dataclass(frozen=True)
class GradientNoiseReport:
    checkpoint: str
    num_timesteps: int
    rollouts: int
    transitions_per_rollout: int  # n_steps x n_envs: what one PPO update learns from
    minibatch: int  # ppo.batch_size: what one gradient step of it sees
    statistics: NoiseStatistics  # over all the actor's parameters: what one PPO step moves
    statistics_by_part: dict[str, NoiseStatistics]  # hidden layers, action head, log std
    # B_noise on random halves of the rollouts, 10 / 50 / 90 %; None with < 4 rollouts
    half_sample_percentiles_rollouts: tuple[float, ...] | None
    episodes: int  # episodes that ended while the rollouts were collected
    mean_episode_return: float  # their raw (unnormalized) return; nan if none ended
    gae_lambda: float = 0.95  # the GAE lambda of these advantages
    # 1 - Var(returns - values) / Var(returns) over every transition, returns at this lambda (in
    # normalized reward units): how much of what this lambda's advantages are measured against the
    # critic explains; at lambda 1 the returns are the sampled ones
    value_explained_variance: float = float("nan")
    # how this lambda's signal G lines up with the run's own lambda's; None for the run's own
    alignment_to_run_lambda: SignalAlignment | None = None

    @property
    def noise_scale_transitions(self) -> float:
        return self.statistics.noise_scale_rollouts * self.transitions_per_rollout

    def signal_share(self, transitions: int) -> float:
        """Expected share of a gradient's squared norm that is signal, for a batch of `transitions`:
        |G|^2 / (|G|^2 + tr(Sigma_rollout) x transitions_per_rollout / transitions)."""
        stats = self.statistics
        if stats.signal_sq_norm <= 0:
            return 0.0
        noise = stats.noise_trace * self.transitions_per_rollout / transitions
        return stats.signal_sq_norm / (stats.signal_sq_norm + noise)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON values; an unmeasurable (infinite or nan) figure is null."""
        data = asdict(self)
        data["noise_scale_rollouts"] = self.statistics.noise_scale_rollouts
        data["noise_scale_transitions"] = self.noise_scale_transitions
        data["noise_scale_lower_bound_transitions"] = (
            self.statistics.noise_scale_lower_bound_rollouts * self.transitions_per_rollout
        )
        data["signal_resolved"] = self.statistics.signal_resolved
        data["signal_share_rollout"] = self.signal_share(self.transitions_per_rollout)
        data["signal_share_minibatch"] = self.signal_share(self.minibatch)
        return _finite_or_null(data)


def _finite_or_null(value: Any) -> Any:
    """`value` with every infinite or nan float replaced by None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _actor_parameter_groups(policy: Any) -> dict[str, list[torch.nn.Parameter]]:
    """The actor's parameters by part: its hidden layers, its action head (the means) and log std."""
    return {
        "hidden layers": list(policy.mlp_extractor.policy_net.parameters()),
        "action head": list(policy.action_net.parameters()),
        "log std": [policy.log_std],
    }


def gae_advantages(
    rewards: NDArray[np.float32],
    values: NDArray[np.float32],
    episode_starts: NDArray[np.float32],
    last_values: NDArray[np.float32],
    last_dones: NDArray[np.float32],
    *,
    gamma: float,
    gae_lambda: float,
) -> NDArray[np.float32]:
    """GAE advantages of one rollout, as SB3's RolloutBuffer computes them. Arrays are
    (n_steps, n_envs) in normalized reward units; `last_values` and `last_dones` (n_envs,) are the
    critic's value of the observation after the last step and whether that step ended an episode."""
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(last_values)
    for step in reversed(range(rewards.shape[0])):
        if step == rewards.shape[0] - 1:
            next_non_terminal, next_values = 1.0 - last_dones, last_values
        else:
            next_non_terminal, next_values = 1.0 - episode_starts[step + 1], values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        running = delta + gamma * gae_lambda * next_non_terminal * running
        advantages[step] = running
    return advantages


def _rollout_gradient(
    policy: Any,
    observations: torch.Tensor,
    actions: torch.Tensor,
    advantages: NDArray[np.float32],
    parameters: list[torch.nn.Parameter],
) -> NDArray[np.float64]:
    """The gradient of PPO's clipped surrogate at ratio 1 over one whole rollout, flattened.
    `observations` (T, obs_dim), `actions` (T, action_dim) and `advantages` (T,) in one order."""
    _, log_prob, _ = policy.evaluate_actions(observations, actions)
    advantage = torch.as_tensor(advantages)
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    # At the weights that collected the rollout the ratio is 1 and no clip is active, so this is
    # -mean(advantage x grad log pi): PPO's first gradient step on this rollout.
    loss = -(advantage * torch.exp(log_prob - log_prob.detach())).mean()
    grads = torch.autograd.grad(loss, parameters)
    return torch.cat([grad.reshape(-1) for grad in grads]).double().numpy()


@dataclass(frozen=True)
class SignalAlignment:
    """How the mean gradients G_a and G_b of two estimators on the same M rollouts line up. Each
    rollout's noise is in both of its gradients, so G_a . G_b is estimated from the cross terms
    g_i(a) . g_j(b) with i != j only (unbiased), with a jackknife standard error. The dot resolves
    long before either |G|^2 does (it projects the noise on one direction), so a lower bound on the
    cosine comes with it: the dot less two standard errors over both |G| at their estimates plus
    two standard errors."""

    dot: float
    dot_stderr: float
    cosine: float  # with both |G|^2 at their estimates; nan unless both are resolved
    cosine_lower_bound: float  # nan unless the dot is more than two standard errors above zero

    @property
    def resolved(self) -> bool:
        return bool(self.dot > 2 * self.dot_stderr)


def _cross_dot(cross: NDArray[np.float64]) -> float:
    m = cross.shape[0]
    return (float(cross.sum()) - float(np.trace(cross))) / (m * (m - 1))


def signal_alignment(first: NDArray[np.float64], second: NDArray[np.float64]) -> SignalAlignment:
    """`SignalAlignment` of two (M, P) stacks of per-rollout gradients of the same M >= 3 rollouts."""
    m = first.shape[0]
    if first.shape != second.shape or m < 3:
        raise StairbotError(
            f"alignment needs two equal stacks of >= 3 gradients, got {first.shape}, {second.shape}"
        )
    stats_a = statistics_from_gram(first @ first.T)
    stats_b = statistics_from_gram(second @ second.T)
    cross = first @ second.T
    dot = _cross_dot(cross)
    keep = ~np.eye(m, dtype=bool)
    left_out = np.array([_cross_dot(cross[np.ix_(row, row)]) for row in keep])
    stderr = float(np.sqrt((m - 1) / m * np.sum((left_out - left_out.mean()) ** 2)))
    both = stats_a.signal_resolved and stats_b.signal_resolved
    cosine = dot / float(np.sqrt(stats_a.signal_sq_norm * stats_b.signal_sq_norm)) if both else float("nan")
    ceilings = [
        max(stats.signal_sq_norm, 0.0) + 2 * stats.signal_sq_norm_stderr for stats in (stats_a, stats_b)
    ]
    floor = dot - 2 * stderr
    bound = floor / float(np.sqrt(ceilings[0] * ceilings[1])) if floor > 0 else float("nan")
    return SignalAlignment(dot=dot, dot_stderr=stderr, cosine=cosine, cosine_lower_bound=bound)


def _explained_variance(values: NDArray[np.float64], returns: NDArray[np.float64]) -> float:
    spread = float(np.var(returns))
    return 1.0 - float(np.var(returns - values)) / spread if spread > 0 else float("nan")


def measure_gradient_noise(
    source: Path, rollouts: int = 16, seed: int = 0, gae_lambdas: Sequence[float] = ()
) -> list[GradientNoiseReport]:
    """Collect `rollouts` PPO rollouts with a run's policy at a checkpoint (a run directory: its
    best) in the run's own envs, and measure the noise scale of its policy gradient: one report for
    the run's own GAE lambda, then one for each of `gae_lambdas` on the same rollouts."""
    if rollouts < 2:
        raise StairbotError(f"the noise scale needs at least 2 rollouts, got {rollouts}")
    for value in gae_lambdas:
        if not 0.0 <= value <= 1.0:
            raise StairbotError(f"a GAE lambda lies in [0, 1], got {value}")
    checkpoint, run_path = training_checkpoint(source, "the gradient noise scale")
    from stable_baselines3 import PPO

    from stairbot.training.trainer import expected_meta, restored_env

    run = RunDir(run_path)
    recipe = run.recipe()
    meta = read_meta(checkpoint)
    if meta.algorithm != "ppo":
        raise StairbotError(
            f"{checkpoint} is a {meta.algorithm} checkpoint; the gradient noise scale is measured "
            "on PPO's rollouts (SAC learns from a replay buffer)"
        )
    check_compatible(meta, expected_meta(recipe), checkpoint)
    torch.set_num_threads(recipe.torch_threads)
    env = restored_env(run, recipe, checkpoint, seed)
    env.training = False  # a measurement: the statistics stay the checkpoint's
    try:
        model = load_model(checkpoint, PPO, env=env, tensorboard_log=None)
        model.set_random_seed(seed)
        lambdas = list(dict.fromkeys([float(model.gae_lambda), *map(float, gae_lambdas)]))
        policy = model.policy
        # The bound loss is a deterministic charge on the means, not part of the sampled gradient.
        if hasattr(policy, "bound_loss_coef"):
            policy.bound_loss_coef = 0.0
        policy.set_training_mode(False)
        groups = _actor_parameter_groups(policy)
        parameters = [parameter for group in groups.values() for parameter in group]
        per_rollout = model.n_steps * env.num_envs
        # SB3's own set-up for learn(): resets the envs and gives collect_rollouts its callback, so
        # the rollouts are collected exactly as PPO collects them while training.
        _, callback = model._setup_learn(rollouts * per_rollout, callback=None, reset_num_timesteps=True)
        callback.on_training_start(locals(), globals())
        model.ep_info_buffer = deque()  # every episode that ends, not SB3's last 100
        gradients: dict[float, list[NDArray[np.float64]]] = {value: [] for value in lambdas}
        targets: dict[float, list[NDArray[np.float64]]] = {value: [] for value in lambdas}
        values_seen: list[NDArray[np.float64]] = []
        buffer = model.rollout_buffer
        for _ in range(rollouts):
            model.collect_rollouts(env, callback, buffer, n_rollout_steps=model.n_steps)
            with torch.no_grad():
                last_values = policy.predict_values(obs_as_tensor(model._last_obs, model.device))
            last = last_values.numpy().reshape(-1), np.asarray(model._last_episode_starts, np.float32)
            # (n_steps, n_envs, ...) flattened in one order for all of them
            observations = torch.as_tensor(buffer.observations.reshape(per_rollout, -1))
            actions = torch.as_tensor(buffer.actions.reshape(per_rollout, -1))
            values_seen.append(buffer.values.reshape(-1).astype(np.float64))
            for value in lambdas:
                advantages = gae_advantages(
                    buffer.rewards,
                    buffer.values,
                    buffer.episode_starts,
                    *last,
                    gamma=model.gamma,
                    gae_lambda=value,
                )
                targets[value].append((advantages + buffer.values).reshape(-1).astype(np.float64))
                gradients[value].append(
                    _rollout_gradient(policy, observations, actions, advantages.reshape(-1), parameters)
                )
        episode_returns = [float(info["r"]) for info in model.ep_info_buffer]
    finally:
        env.close()
    stacks = {value: np.stack(gradients[value]) for value in lambdas}
    all_values = np.concatenate(values_seen)
    reports = []
    for value in lambdas:
        stacked = stacks[value]
        gram = stacked @ stacked.T
        by_group, start = {}, 0
        for name, group in groups.items():
            end = start + sum(parameter.numel() for parameter in group)
            part = stacked[:, start:end]
            by_group[name] = statistics_from_gram(part @ part.T)
            start = end
        reports.append(
            GradientNoiseReport(
                checkpoint=str(checkpoint),
                num_timesteps=meta.num_timesteps,
                rollouts=rollouts,
                transitions_per_rollout=per_rollout,
                minibatch=min(recipe.ppo.batch_size, per_rollout),
                statistics=statistics_from_gram(gram),
                statistics_by_part=by_group,
                half_sample_percentiles_rollouts=half_sample_noise_scale(gram, seed=seed),
                episodes=len(episode_returns),
                mean_episode_return=float(np.mean(episode_returns)) if episode_returns else float("nan"),
                gae_lambda=value,
                value_explained_variance=_explained_variance(all_values, np.concatenate(targets[value])),
                alignment_to_run_lambda=(
                    None
                    if value == lambdas[0] or rollouts < 3
                    else signal_alignment(stacks[lambdas[0]], stacked)
                ),
            )
        )
    return reports


def format_report(report: GradientNoiseReport) -> str:
    """Plain-text summary for the command line."""
    stats = report.statistics
    lines = [
        f"{report.checkpoint} ({report.num_timesteps} steps): {report.rollouts} rollouts of "
        f"{report.transitions_per_rollout} transitions, {report.episodes} episodes ended "
        f"(mean return {report.mean_episode_return:.2f}); GAE lambda {report.gae_lambda:g}: the critic "
        f"explains {report.value_explained_variance:.2f} of its returns' variance",
        f"  |G|^2 (signal) {stats.signal_sq_norm:.3e}, tr(Sigma) of one rollout's gradient "
        f"{stats.noise_trace:.3e}, mean cosine between two rollouts' gradients "
        f"{stats.mean_pairwise_cosine:+.3f}",
    ]
    bound = stats.noise_scale_lower_bound_rollouts * report.transitions_per_rollout
    if stats.signal_resolved:
        lines.append(f"  noise scale B_noise ~ {report.noise_scale_transitions:,.0f} transitions")
        if report.half_sample_percentiles_rollouts is not None:
            low, mid, high = (
                value * report.transitions_per_rollout for value in report.half_sample_percentiles_rollouts
            )
            lines[-1] += (
                f" (on random halves of the rollouts 10-90 %: {low:,.0f} to {high:,.0f}, median {mid:,.0f})"
            )
        lines[-1] += f"; at least {bound:,.0f} (|G|^2 at its estimate + 2 standard errors)"
    else:
        lines.append(
            f"  noise scale: no signal resolved over {report.rollouts} rollouts (|G|^2 = "
            f"{stats.signal_sq_norm:.2e} +- {stats.signal_sq_norm_stderr:.2e}); B_noise is at least "
            f"{bound:,.0f} transitions (|G|^2 at its estimate + 2 standard errors)"
        )
    for name, part in report.statistics_by_part.items():
        per_rollout = report.transitions_per_rollout
        scale = (
            f"{part.noise_scale_rollouts * per_rollout:,.0f}"
            if part.signal_resolved
            else f"unresolved, at least {part.noise_scale_lower_bound_rollouts * per_rollout:,.0f}"
        )
        lines.append(
            f"    {name}: |G|^2 {part.signal_sq_norm:.3e} +- {part.signal_sq_norm_stderr:.1e}, "
            f"tr(Sigma) {part.noise_trace:.3e}, B_noise {scale}"
        )
    lines.append(
        f"  signal share of the squared gradient: {report.signal_share(report.transitions_per_rollout):.1%} "
        f"for one rollout, {report.signal_share(report.minibatch):.1%} for one minibatch of "
        f"{report.minibatch}"
    )
    alignment = report.alignment_to_run_lambda
    if alignment is not None:
        line = (
            f"  against the run's own lambda's signal: G . G_run {alignment.dot:.3e} +- "
            f"{alignment.dot_stderr:.1e}"
        )
        if np.isfinite(alignment.cosine):
            line += f", cosine {alignment.cosine:+.2f}"
        if np.isfinite(alignment.cosine_lower_bound):
            line += f", cosine at least {alignment.cosine_lower_bound:+.2f}"
        lines.append(line)
    return "\n".join(lines)
