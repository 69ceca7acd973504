"""Seeded evaluation of a policy on stairs: success rate, steps climbed, falls, time to the top.

`evaluate(policy, make_env, episodes, seed)` runs episode i with seed `seed + i` and deterministic
actions, so the same policy and seed always give the same report. A policy is anything with
`act(obs) -> action` on raw observations (normalization is the policy's business).

`action_noise` sigma > 0 draws every action as a Gaussian policy with that standard deviation
(action units, the [-1, 1] scale) draws it in training: the policy's `sample(obs, noise)` adds the
noise to its mean *before* its squash (SB3's PPO clips the sample to the action box, SAC takes its
tanh). Adding it to the clipped action instead would move joints whose mean lies past the bound,
which training never moves, and would understate the policy's success under its training noise
(at sigma 0.2, 11 % against the 27 % of SB3's own sampling on one checkpoint). So it says how the
policy fares on the episodes its own fine-tuning collects. The noise comes from its own generator,
seeded from the episode seed and `NOISE_STREAM` (not from the env's `np_random`, whose draws it
would otherwise repeat), so noisy reports are as reproducible as clean ones.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from stairbot.errors import ConfigError
from stairbot.termination import FALL_KINDS

# Episode endings counted as falls: the robot went down or hit the stairs with its body.
FALL_REASONS = frozenset({"fall", "base_contact", "thigh_contact"})
# Second word of the action-noise generator's seed (the first is the episode's): a stream of its own.
NOISE_STREAM = 0x4E015E


class Policy(Protocol):
    def act(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        """Action in [-1, 1] for one raw observation."""
        ...


class SampledPolicy(Policy, Protocol):
    def sample(self, observation: NDArray[np.float32], noise: NDArray[np.float64]) -> NDArray[np.float32]:
        """Action in [-1, 1]: the squash of the policy's Gaussian mean for one raw observation plus
        `noise` (J,), as training draws it; `act` when the noise is zero."""
        ...


# EpisodeResult's per-episode figures of how the robot moved and where its trunk struck; an
# EvalReport holds their means over the episodes that recorded one.
EPISODE_FIGURES = (
    "speed_over_command",
    "peak_speed_mps",
    "pitch_to_slope_deg",
    "pitch_rate_rms_radps",
    "hip_abduction_rms_rad",
    "base_contact_x_m",
    "base_contact_pitch_to_slope_deg",
)


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    steps_climbed: int
    num_steps: int
    termination_reason: str  # "time_limit" when truncated
    length: int  # control steps
    duration_s: float
    episode_return: float
    # How it moved (NaN when not recorded): mean base speed along +x over the commanded one; the
    # peak base speed along +x, m/s; mean |base pitch - the flight's slope under it|, deg; root mean
    # square of the base's pitch rate, rad/s (how much the trunk rocks nose up and down); root mean
    # square over steps and legs of the hip abduction joints' distance from the default pose, rad
    # (how far the legs splay sideways: a splayed leg stands lower).
    speed_over_command: float = math.nan
    peak_speed_mps: float = math.nan
    pitch_to_slope_deg: float = math.nan
    pitch_rate_rms_radps: float = math.nan
    hip_abduction_rms_rad: float = math.nan
    # Ended in base contact: where along the trunk it struck, base-frame x in m (> 0 toward the nose;
    # the env's info["base_contact_at_m"]), and the base's pitch minus the flight's slope under it at
    # that step, deg (< 0: the nose lower than the stairs; a level trunk on a 31 deg flight reads
    # -31). NaN for every other ending.
    base_contact_x_m: float = math.nan
    base_contact_pitch_to_slope_deg: float = math.nan
    # Ended in a fall: which way (`termination.FallKind`: backward, forward, sideways, low); "" else.
    fall_kind: str = ""


def fall_kinds(results: Iterable[EpisodeResult]) -> dict[str, int]:
    """Falls per kind over `results`, every kind of `termination.FALL_KINDS` (0 where none)."""
    counts = Counter(r.fall_kind for r in results if r.fall_kind)
    return {kind: counts[kind] for kind in FALL_KINDS}


@dataclass(frozen=True)
class EvalReport:
    """Aggregates over the episodes (JSON keys as named here)."""

    episodes: int
    success_rate: float
    steps_climbed: float  # mean risers crossed per episode
    falls: int  # episodes ending in fall / base or thigh contact
    falls_per_episode: float
    mean_time_to_top_s: float | None  # over successful episodes
    mean_return: float
    riser_m: float
    direction: str
    results: list[EpisodeResult] = field(repr=False)
    # Means over the episodes of their EpisodeResult gait figures (None: not recorded).
    speed_over_command: float | None = None
    peak_speed_mps: float | None = None
    pitch_to_slope_deg: float | None = None
    pitch_rate_rms_radps: float | None = None
    hip_abduction_rms_rad: float | None = None
    base_contact_x_m: float | None = None  # mean over the base-contact endings
    base_contact_pitch_to_slope_deg: float | None = None  # mean over the base-contact endings

    @staticmethod
    def gait_means(results: list[EpisodeResult]) -> dict[str, float | None]:
        """The means of the EPISODE_FIGURES over `results` (None where no episode recorded one)."""
        means: dict[str, float | None] = {}
        for name in EPISODE_FIGURES:
            values = [getattr(r, name) for r in results if not math.isnan(getattr(r, name))]
            means[name] = float(np.mean(values)) if values else None
        return means

    def to_json(self, path: Path | None = None) -> str:
        text = json.dumps(asdict(self), indent=2)
        if path is not None:
            path.write_text(text + "\n")
        return text

    def table(self) -> str:
        time_to_top = "-" if self.mean_time_to_top_s is None else f"{self.mean_time_to_top_s:.1f} s"
        rows = [
            ("episodes", str(self.episodes)),
            ("stairs", f"{self.direction}, riser {self.riser_m:.3f} m"),
            ("success rate", f"{self.success_rate:.0%}"),
            ("steps climbed (mean)", f"{self.steps_climbed:.2f}"),
            ("falls", f"{self.falls} ({self.falls_per_episode:.2f} per episode)"),
            ("time to the top (mean)", time_to_top),
            ("return (mean)", f"{self.mean_return:.1f}"),
        ]
        if self.speed_over_command is not None and self.peak_speed_mps is not None:
            rows.append(
                (
                    "speed (mean)",
                    f"{self.speed_over_command:.2f} x command, peak {self.peak_speed_mps:.2f} m/s",
                )
            )
        if self.pitch_to_slope_deg is not None:
            rows.append(("pitch off the slope (mean)", f"{self.pitch_to_slope_deg:.1f} deg"))
        if self.pitch_rate_rms_radps is not None:
            rows.append(("pitch rate (rms)", f"{self.pitch_rate_rms_radps:.2f} rad/s"))
        if self.hip_abduction_rms_rad is not None:
            rows.append(("hip splay (rms)", f"{self.hip_abduction_rms_rad:.2f} rad"))
        if self.base_contact_x_m is not None:
            struck = f"x {self.base_contact_x_m:+.2f} m in the base frame"
            if self.base_contact_pitch_to_slope_deg is not None:
                struck += f", pitched {self.base_contact_pitch_to_slope_deg:+.0f} deg off the slope"
            rows.append(("trunk struck at (mean)", struck))
        endings = Counter(r.termination_reason for r in self.results)
        rows.append(("endings", ", ".join(f"{reason} {count}" for reason, count in endings.most_common())))
        if endings["fall"]:
            kinds = ", ".join(f"{kind} {n}" for kind, n in fall_kinds(self.results).items() if n)
            rows.append(("falls by direction", kinds))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def check_action_noise(action_noise: float) -> float:
    """`action_noise` as a float, or ConfigError unless it is finite and >= 0."""
    sigma = float(action_noise)
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError(
            f"action noise must be a finite standard deviation >= 0 in action units (the [-1, 1] "
            f"scale; PPO recipes explore at about 0.2), got {action_noise}"
        )
    return sigma


def run_episode(
    policy: Policy, env: gym.Env, seed: int, action_noise: float = 0.0
) -> tuple[EpisodeResult, dict[str, Any]]:
    """One seeded episode; returns its result and the reset info. `action_noise` > 0: each action is
    `policy.sample` with Gaussian noise of that std (a `SampledPolicy`; module docstring)."""
    obs, reset_info = env.reset(seed=seed)
    noise = np.random.default_rng([seed, NOISE_STREAM]) if action_noise > 0 else None
    shape = env.action_space.shape
    total, length = 0.0, 0
    speeds, commands, pitch_errors, pitch_rates, hip_abductions = [], [], [], [], []
    while True:
        if noise is None:
            action = policy.act(obs)
        else:
            action = cast(SampledPolicy, policy).sample(obs, action_noise * noise.standard_normal(shape))
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        if "base_speed_x_mps" in info:
            speeds.append(float(info["base_speed_x_mps"]))
            commands.append(float(info["command_speed_mps"]))
            pitch_errors.append(abs(float(info["pitch_to_slope_rad"])))
            pitch_rates.append(float(info["pitch_rate_radps"]))
            hip_abductions.append(float(info["hip_abduction_rms_rad"]))
        if terminated or truncated:
            break
    dt = float(env.unwrapped.dt)  # type: ignore[attr-defined]
    result = EpisodeResult(
        seed=seed,
        success=bool(info["success"]),
        steps_climbed=int(info["steps_climbed"]),
        num_steps=int(info["num_steps"]),
        termination_reason=info["termination_reason"] if terminated else "time_limit",
        length=length,
        duration_s=length * dt,
        episode_return=total,
        **gait_figures(speeds, commands, pitch_errors, pitch_rates, hip_abductions),
        base_contact_x_m=float(struck_at[0]) if (struck_at := info.get("base_contact_at_m")) else math.nan,
        base_contact_pitch_to_slope_deg=(
            math.degrees(float(info["pitch_to_slope_rad"]))
            if struck_at and "pitch_to_slope_rad" in info
            else math.nan
        ),
        fall_kind=str(info.get("fall_kind", "")),  # only a fall ending carries one
    )
    return result, reset_info


def gait_figures(
    speeds: list[float],
    commands: list[float],
    pitch_errors: list[float],
    pitch_rates: list[float],
    hip_abductions: list[float],
) -> dict[str, float]:
    """EpisodeResult's gait fields from per-step speeds and commands (m/s), |pitch errors| (rad),
    pitch rates (rad/s) and the hips' rms abduction over the legs (rad)."""
    if not speeds:
        return {}
    command = float(np.mean(commands))
    return {
        "speed_over_command": float(np.mean(speeds)) / command if command > 0 else math.nan,
        "peak_speed_mps": max(speeds),
        "pitch_to_slope_deg": math.degrees(float(np.mean(pitch_errors))),
        "pitch_rate_rms_radps": float(np.sqrt(np.mean(np.square(pitch_rates)))),
        "hip_abduction_rms_rad": float(np.sqrt(np.mean(np.square(hip_abductions)))),
    }


def merge_reports(reports: list[EvalReport]) -> EvalReport:
    """One report over the episodes of several (say, one up and one down, on the same riser).

    Rates and means are over all episodes; `direction` joins the directions ("up+down").
    """
    if not reports:
        raise ValueError("no reports to merge")
    if len(reports) == 1:
        return reports[0]
    results = [result for report in reports for result in report.results]
    successes = [r for r in results if r.success]
    falls = sum(report.falls for report in reports)
    return EvalReport(
        episodes=len(results),
        success_rate=len(successes) / len(results),
        steps_climbed=float(np.mean([r.steps_climbed for r in results])),
        falls=falls,
        falls_per_episode=falls / len(results),
        mean_time_to_top_s=float(np.mean([r.duration_s for r in successes])) if successes else None,
        mean_return=float(np.mean([r.episode_return for r in results])),
        riser_m=reports[0].riser_m,
        direction="+".join(report.direction for report in reports),
        results=results,
        **EvalReport.gait_means(results),
    )


def evaluate(
    policy: Policy,
    make_env: Callable[[], gym.Env],
    episodes: int,
    seed: int = 0,
    action_noise: float = 0.0,
) -> EvalReport:
    """Run `episodes` seeded episodes (seeds seed .. seed + episodes - 1) in one env; with
    `action_noise` (std, action units) > 0, every action is drawn around the policy's mean as in
    training (`policy` must then be a `SampledPolicy`; module docstring)."""
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    action_noise = check_action_noise(action_noise)
    if action_noise > 0 and not callable(getattr(policy, "sample", None)):
        raise ConfigError(
            f"action noise needs a policy that can be sampled (its Gaussian mean before the squash: "
            f"a run, a checkpoint, a bundle or the zero action), not {type(policy).__name__}"
        )
    env = make_env()
    try:
        runs = [run_episode(policy, env, seed + i, action_noise) for i in range(episodes)]
    finally:
        env.close()
    results = [r for r, _ in runs]
    first_info = runs[0][1]
    successes = [r for r in results if r.success]
    falls = sum(r.termination_reason in FALL_REASONS for r in results)
    return EvalReport(
        episodes=episodes,
        success_rate=len(successes) / episodes,
        steps_climbed=float(np.mean([r.steps_climbed for r in results])),
        falls=falls,
        falls_per_episode=falls / episodes,
        mean_time_to_top_s=float(np.mean([r.duration_s for r in successes])) if successes else None,
        mean_return=float(np.mean([r.episode_return for r in results])),
        riser_m=float(first_info["riser_m"]),
        direction=str(first_info["direction"]),
        results=results,
        **EvalReport.gait_means(results),
    )
