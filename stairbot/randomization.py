"""Domain randomization: the `randomization:` section of an env preset and the per-episode sampling.

Plain numpy, no simulator: `RandomizationConfig` says which ranges to draw from; `sample(config, rng,
...)` draws one `RandomizationSample` per episode from the env's `np_random` (at reset), and
`RandomizationSample.to_info()` is what the env puts in `info["randomization"]`, so a failure can be
replayed. Applying a sample is the simulator's job (`stairbot.sim.world.World.apply_dynamics`, and
`stairbot.sim.randomizer.Randomizer` for latency and pushes).

Every parameter is a uniform range `[low, high]` with its unit in the key; a point range `[v, v]`
fixes the value (the stress presets do that). Values are absolute or relative to the nominal robot and
scene as each key says, so sampling never accumulates across resets: the nominal values are restored
whenever an episode samples something else.

Friction and restitution: Bullet combines two touching bodies' coefficients by multiplying them.
`ground_friction` is the lateral friction set on the ground plane and every stair box (the same
number as `sim.ground_friction`); the foot-terrain contact coefficient is that times the foot's own
friction (the robot spec's `foot_friction`, 1.0 by default, set when the robot is loaded), which
`foot_friction_scale` multiplies. `restitution` is
set on the terrain and the feet's restitution to 1, so the foot-terrain restitution is exactly it.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stairbot.config import check_range

Range = tuple[float, float]
"""A uniform range [low, high]; low == high fixes the value."""

MAX_LATENCY_S = 0.1


def check_interval(key: str, value: Range, low: float, high: float, unit: str = "") -> None:
    """Raise `ConfigError` naming `key` unless `low <= value[0] <= value[1] <= high`."""
    lo, hi = value
    check_range(f"{key}[0]", lo, low, high, unit=unit)
    suffix = f"{unit} " if unit else ""
    check_range(f"{key}[1]", hi, lo, high, unit=f"{suffix}(a range [low, high] needs low <= high)")


SWITCH_KEYS = ("enabled", "episode_fraction")
"""`RandomizationConfig` keys that say whether and how often to randomize, not what: every other key
is a physical factor (`stairbot.sensitivity.FACTORS` groups them)."""


@dataclass(frozen=True)
class RandomizationConfig:
    """What to randomize and over which uniform ranges; sampled once per episode, at reset.

    With `enabled: false` (the default) nothing is sampled or applied and the env is bit-identical
    to one without this section. The defaults of the ranges are the nominal values, so a preset
    lists only what it randomizes.
    """

    enabled: bool = False
    # Lateral friction coefficient of ground + stairs; null: sim.ground_friction.
    ground_friction: Range | None = None
    foot_friction_scale: Range = (1.0, 1.0)  # x the feet's URDF lateral friction
    restitution: Range = (0.0, 0.0)  # foot-terrain restitution, 0 = no bounce
    payload_kg: Range = (0.0, 0.0)  # added to the base link's mass (negative: lighter)
    com_offset_x_m: Range = (0.0, 0.0)  # base centre-of-mass shift, base frame (forward)
    com_offset_y_m: Range = (0.0, 0.0)  # (left)
    com_offset_z_m: Range = (0.0, 0.0)  # (up)
    link_mass_scale: Range = (1.0, 1.0)  # x the mass (and inertia) of every link except the base
    motor_strength_scale: Range = (1.0, 1.0)  # x every torque limit
    kp_scale: Range = (1.0, 1.0)  # x every PD stiffness
    kd_scale: Range = (1.0, 1.0)  # x every PD damping
    joint_friction_nm: Range = (0.0, 0.0)  # Coulomb friction added to every joint, N m
    joint_damping_nms_per_rad: Range = (0.0, 0.0)  # viscous damping added to the URDF's, N m s/rad
    obs_latency_s: Range = (0.0, 0.0)  # sensor delay, rounded to physics substeps
    action_latency_s: Range = (0.0, 0.0)  # delay before a new joint target acts, physics substeps
    push_interval_s: Range = (8.0, 8.0)  # time between pushes, drawn again after each push
    push_vel_mps: Range = (0.0, 0.0)  # horizontal base velocity change of a push (random heading)
    # Observation term name -> noise half-width in scaled units, replacing the layout's noise.
    obs_noise: Mapping[str, float] = field(default_factory=lambda: types.MappingProxyType({}))
    # x every observation noise half-width, drawn per episode. A range down to 0 gives the policy
    # noise-free episodes: trained only with noise always on, a policy stood still at the top of
    # clean stairs (20 % of clean descents at 0.125 m; 100 % of the same seeds with the noise).
    obs_noise_scale: Range = (1.0, 1.0)
    # Share of episodes that draw the robot and ground from the ranges above; the others run the
    # nominal robot and ground (no latency, no pushes), only the observation noise still drawn.
    # Fine-tuned only on randomized robots, a policy that climbed clean 0.12 m flights in 31 of 40
    # episodes kept 8 after 1M steps (runs/rr496): the nominal robot must stay in the mix.
    episode_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.ground_friction is not None:
            check_interval("ground_friction", self.ground_friction, 0.0, 5.0)
        check_interval("foot_friction_scale", self.foot_friction_scale, 0.0, 5.0)
        check_interval("restitution", self.restitution, 0.0, 1.0)
        check_interval("payload_kg", self.payload_kg, -20.0, 50.0, unit="kg")
        for axis in "xyz":
            check_interval(f"com_offset_{axis}_m", getattr(self, f"com_offset_{axis}_m"), -0.2, 0.2, "m")
        check_interval("link_mass_scale", self.link_mass_scale, 0.1, 5.0)
        check_interval("motor_strength_scale", self.motor_strength_scale, 0.1, 5.0)
        check_interval("kp_scale", self.kp_scale, 0.1, 5.0)
        check_interval("kd_scale", self.kd_scale, 0.0, 5.0)
        check_interval("joint_friction_nm", self.joint_friction_nm, 0.0, 10.0, unit="N m")
        check_interval("joint_damping_nms_per_rad", self.joint_damping_nms_per_rad, 0.0, 10.0, "N m s/rad")
        check_interval("obs_latency_s", self.obs_latency_s, 0.0, MAX_LATENCY_S, unit="s")
        check_interval("action_latency_s", self.action_latency_s, 0.0, MAX_LATENCY_S, unit="s")
        check_interval("push_interval_s", self.push_interval_s, 0.01, 1000.0, unit="s")
        check_interval("push_vel_mps", self.push_vel_mps, 0.0, 5.0, unit="m/s")
        for name, half_width in self.obs_noise.items():
            check_range(f"obs_noise.{name}", half_width, 0.0, 10.0, unit="(scaled units)")
        check_interval("obs_noise_scale", self.obs_noise_scale, 0.0, 10.0)
        check_range("episode_fraction", self.episode_fraction, 0.0, 1.0)

    @property
    def pushes(self) -> bool:
        """Whether any push can have a non-zero velocity change."""
        return self.push_vel_mps[1] > 0.0


@dataclass(frozen=True)
class RandomizationSample:
    """One episode's draw. Scales multiply the nominal values; offsets add to them."""

    ground_friction: float
    foot_friction_scale: float
    restitution: float
    payload_kg: float
    com_offset_m: tuple[float, float, float]  # base frame
    link_mass_scale: float
    motor_strength_scale: float
    kp_scale: float
    kd_scale: float
    joint_friction_nm: float
    joint_damping_nms_per_rad: float
    obs_latency_s: float
    action_latency_s: float
    first_push_s: float  # time of the episode's first push (the later ones are drawn as they come)
    physics_dt_s: float
    obs_noise_scale: float = 1.0  # x every observation noise half-width this episode
    randomized: bool = True  # False: the nominal robot and ground (`episode_fraction`), no pushes

    @property
    def obs_latency_substeps(self) -> int:
        return latency_substeps(self.obs_latency_s, self.physics_dt_s)

    @property
    def action_latency_substeps(self) -> int:
        return latency_substeps(self.action_latency_s, self.physics_dt_s)

    def to_info(self) -> dict[str, Any]:
        """Plain floats, ints and lists for `info["randomization"]`."""
        return {
            "ground_friction": self.ground_friction,
            "foot_friction_scale": self.foot_friction_scale,
            "restitution": self.restitution,
            "payload_kg": self.payload_kg,
            "com_offset_m": list(self.com_offset_m),
            "link_mass_scale": self.link_mass_scale,
            "motor_strength_scale": self.motor_strength_scale,
            "kp_scale": self.kp_scale,
            "kd_scale": self.kd_scale,
            "joint_friction_nm": self.joint_friction_nm,
            "joint_damping_nms_per_rad": self.joint_damping_nms_per_rad,
            "obs_latency_s": self.obs_latency_s,
            "obs_latency_substeps": self.obs_latency_substeps,
            "action_latency_s": self.action_latency_s,
            "action_latency_substeps": self.action_latency_substeps,
            "first_push_s": self.first_push_s,
            "obs_noise_scale": self.obs_noise_scale,
            "randomized": self.randomized,
        }


def latency_substeps(latency_s: float, physics_dt_s: float) -> int:
    """A latency in whole physics substeps (rounded to the nearest)."""
    return round(latency_s / physics_dt_s)


def sample(
    config: RandomizationConfig,
    rng: np.random.Generator,
    *,
    nominal_ground_friction: float,
    physics_dt_s: float,
) -> RandomizationSample:
    """Draw one episode's parameters from `rng`, always in the same order (one uniform draw each).

    With `episode_fraction` below 1 a first uniform draw decides whether the episode is randomized;
    one that is not gets the nominal values (`nominal_sample`) with only `obs_noise_scale` drawn.
    `obs_noise_scale` is drawn last and only when its range is not a point, so presets that do not
    randomize it (or the episode share) consume the same random numbers as before the keys existed
    (their seeded episodes, and the committed benchmark reports, stay the same).
    """

    def draw(value: Range) -> float:
        return float(rng.uniform(value[0], value[1]))

    def draw_noise_scale() -> float:
        low, high = config.obs_noise_scale
        return draw(config.obs_noise_scale) if low < high else low

    if config.episode_fraction < 1.0 and rng.uniform() >= config.episode_fraction:
        return nominal_sample(
            nominal_ground_friction=nominal_ground_friction,
            physics_dt_s=physics_dt_s,
            obs_noise_scale=draw_noise_scale(),
        )
    friction = config.ground_friction or (nominal_ground_friction, nominal_ground_friction)
    return RandomizationSample(
        ground_friction=draw(friction),
        foot_friction_scale=draw(config.foot_friction_scale),
        restitution=draw(config.restitution),
        payload_kg=draw(config.payload_kg),
        com_offset_m=(
            draw(config.com_offset_x_m),
            draw(config.com_offset_y_m),
            draw(config.com_offset_z_m),
        ),
        link_mass_scale=draw(config.link_mass_scale),
        motor_strength_scale=draw(config.motor_strength_scale),
        kp_scale=draw(config.kp_scale),
        kd_scale=draw(config.kd_scale),
        joint_friction_nm=draw(config.joint_friction_nm),
        joint_damping_nms_per_rad=draw(config.joint_damping_nms_per_rad),
        obs_latency_s=draw(config.obs_latency_s),
        action_latency_s=draw(config.action_latency_s),
        first_push_s=draw(config.push_interval_s),
        physics_dt_s=physics_dt_s,
        obs_noise_scale=draw_noise_scale(),
    )


def nominal_sample(
    *, nominal_ground_friction: float, physics_dt_s: float, obs_noise_scale: float = 1.0
) -> RandomizationSample:
    """The nominal robot and ground as a sample: every scale 1, every offset and latency 0, no push."""
    return RandomizationSample(
        ground_friction=nominal_ground_friction,
        foot_friction_scale=1.0,
        restitution=0.0,
        payload_kg=0.0,
        com_offset_m=(0.0, 0.0, 0.0),
        link_mass_scale=1.0,
        motor_strength_scale=1.0,
        kp_scale=1.0,
        kd_scale=1.0,
        joint_friction_nm=0.0,
        joint_damping_nms_per_rad=0.0,
        obs_latency_s=0.0,
        action_latency_s=0.0,
        first_push_s=math.inf,
        physics_dt_s=physics_dt_s,
        obs_noise_scale=obs_noise_scale,
        randomized=False,
    )


def push_velocity(config: RandomizationConfig, rng: np.random.Generator) -> tuple[float, float, float]:
    """A push: horizontal velocity change (m/s, world frame) of random heading and sampled size."""
    speed = float(rng.uniform(*config.push_vel_mps))
    heading = float(rng.uniform(-math.pi, math.pi))
    return (speed * math.cos(heading), speed * math.sin(heading), 0.0)
