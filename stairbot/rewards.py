"""Reward terms as small pure functions, and a composer that weights and validates them.

Conventions (DESIGN.md):
- a term returns a magnitude; the sign lives in the weight, so a preset's `rewards:` section reads as
  a table of scales (`fall: -10.0`);
- names say the form (`_l2` is a sum of squares, `_exp` a Gaussian kernel);
- zero-weight terms are skipped, unknown names are an error listing the valid ones;
- `reward == sum(info["reward_terms"].values())`, per control step (no hidden dt scaling).

Climbing is paid by height actually gained (`new_steps`: risers newly crossed by the base, counted only
past the best so far), never by vertical speed, which a policy farms by bouncing in place, and there
is no penalty on vertical base velocity, which blocks climbing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from stairbot.errors import ConfigError
from stairbot.robots.spec import hip_abduction_rad
from stairbot.sim.actuators import AppliedTorques

FloatArray = NDArray[np.float64]


# Default clearance the base should keep above the stairs, m (env `reward_params`). In 8 clean
# episodes per case the finetune6 policy kept more in 95 % of its steps up 0.15 m risers and in 99 %
# down them; in the last 10 steps of its base-contact endings the gap had been down to -0.2 to 3.8 cm.
BASE_CLEARANCE_MARGIN_M = 0.05


@dataclass(frozen=True)
class StepContext:
    """Everything the reward terms may read about one control step. Plain numpy, no simulator.

    Attributes:
        dt_s: control period.
        base_x_m, prev_base_x_m: base x after and before the step.
        base_lin_vel_mps: (3,) base linear velocity, world frame.
        base_yaw_rad: heading of the base; 0 faces the stairs (+x).
        heading_target_rad: the heading the yaw-rate command steers to (0, or toward the flight's
            centre line: `CommandConfig.heading_target_rad`). Default: facing the stairs.
        base_ang_vel_body_radps: (3,) base angular velocity, base frame.
        projected_gravity: (3,) gravity direction in the base frame.
        command: (3,) commanded (vx m/s, vy m/s, yaw rate rad/s).
        action, last_action: (J,) this and the previous action in [-1, 1].
        joint_pos_rad: (J,) joint positions.
        default_joint_pos_rad: (J,) the robot's default pose (the action's zero).
        soft_joint_limits_rad: (J, 2) lower and upper soft limits.
        torques: what the actuators applied in the substeps of this step.
        foot_contact: (F,) bool.
        foot_first_contact: (F,) bool, touched down in this step.
        front_feet: (F,) bool, the feet ahead of the base at the default pose; None: not known (the
            terms that need it read 0).
        foot_air_time_s: (F,) time in the air before this step's touchdown (0 if none).
        num_body_contacts: robot links other than feet and base touching the terrain.
        new_steps: risers newly crossed (beyond the best so far) in this step.
        failed: the episode ended in a failure (fall, body contact, out of bounds).
        succeeded: the episode ended at the final landing.
        foot_velocity_fn: returns (F, 3) foot velocities in m/s; called only if a term needs it.
        terrain_pitch_rad: the terrain's mean slope under the base along +x, rad (> 0 rising ahead;
            `Flight.pitch_at`). Default: flat.
        base_clearance_fn: returns the height of the base box's lowest edge above the surface under
            it, m (`terrain.clearance.base_clearance_m`; < 0: into a riser); called only if a term
            needs it. Default: far above it.
        base_clearance_margin_m: the clearance below which `base_clearance_deficit` charges, m.
        foot_edge_distance_fn: returns (F,) each foot's horizontal distance to the nearest stair
            edge, m (`Flight.distance_to_edge_m`); called only if a term needs it. Default: far.
    """

    dt_s: float
    base_x_m: float
    prev_base_x_m: float
    base_lin_vel_mps: FloatArray
    base_yaw_rad: float
    base_ang_vel_body_radps: FloatArray
    projected_gravity: FloatArray
    command: FloatArray
    action: FloatArray
    last_action: FloatArray
    joint_pos_rad: FloatArray
    default_joint_pos_rad: FloatArray
    soft_joint_limits_rad: FloatArray
    torques: AppliedTorques
    foot_contact: NDArray[np.bool_]
    foot_first_contact: NDArray[np.bool_]
    foot_air_time_s: FloatArray
    num_body_contacts: int
    new_steps: int
    failed: bool
    succeeded: bool
    foot_velocity_fn: Callable[[], FloatArray]
    terrain_pitch_rad: float = 0.0
    base_clearance_fn: Callable[[], float] = lambda: math.inf
    foot_edge_distance_fn: Callable[[], FloatArray] = lambda: np.array([math.inf])  # broadcasts
    front_feet: NDArray[np.bool_] | None = None
    base_clearance_margin_m: float = BASE_CLEARANCE_MARGIN_M
    heading_target_rad: float = 0.0

    @cached_property
    def foot_velocities_mps(self) -> FloatArray:
        return self.foot_velocity_fn()

    @cached_property
    def base_clearance_m(self) -> float:
        return self.base_clearance_fn()


# ---- terms ------------------------------------------------------------------------------------------


def forward_progress(ctx: StepContext) -> float:
    """Base displacement along +x per second, capped at the commanded speed (m/s).

    The cap keeps the policy from being paid to sprint at stairs; walking backwards is negative.
    """
    speed = (ctx.base_x_m - ctx.prev_base_x_m) / ctx.dt_s
    return float(min(speed, ctx.command[0]))


def forward_overspeed_l2(ctx: StepContext) -> float:
    """Base velocity along +x beyond the commanded speed, squared, (m/s)^2; 0 at or below it.

    `forward_progress` stops paying at the command but nothing else slows a robot down: policies
    trained without this term ran down stairs at twice the command, ending at ~2 m/s, tumbling.
    """
    excess = max(0.0, float(ctx.base_lin_vel_mps[0]) - float(ctx.command[0]))
    return excess * excess


def forward_vel_exp(ctx: StepContext) -> float:
    """exp(-(vx - vx_cmd)^2 / 0.25): tracking of the commanded forward speed, in (0, 1]."""
    return math.exp(-((float(ctx.base_lin_vel_mps[0]) - float(ctx.command[0])) ** 2) / 0.25)


def new_steps(ctx: StepContext) -> float:
    """Risers newly crossed by the base beyond the best so far in the episode (count)."""
    return float(ctx.new_steps)


def lateral_vel_l2(ctx: StepContext) -> float:
    """Sideways (world y) base velocity squared, (m/s)^2: drifting off the side of the flight."""
    vy = float(ctx.base_lin_vel_mps[1])
    return vy * vy


def heading_l2(ctx: StepContext) -> float:
    """Heading away from the one the command steers to, squared, rad^2: a policy paid for facing the
    stairs would fight the command's turns back to the centre line."""
    error = ctx.base_yaw_rad - ctx.heading_target_rad
    return error * error


def alive(ctx: StepContext) -> float:
    """1 every step the episode goes on."""
    return 1.0


def orientation_l2(ctx: StepContext) -> float:
    """gx^2 + gy^2 of the projected gravity: 0 when the base is level."""
    gx, gy, _ = ctx.projected_gravity.tolist()
    return gx * gx + gy * gy


def orientation_to_slope_l2(ctx: StepContext) -> float:
    """Roll and pitch away from the terrain's slope: gy^2 + (gx + sin(terrain pitch))^2 of the
    projected gravity (a base pitched nose-up by a along +x reads gx = -sin a). 0 when the base is
    level on level ground and when it is pitched with the stairs; equal to `orientation_l2` on level
    ground. Unlike `orientation_l2`, it does not charge a climbing robot for the stairs' slope: on
    0.15 m risers and 0.25 m treads (31 deg) `orientation_l2` charges 0.27 per step for a base aligned
    with the flight, more than a robot keeping a level base (and its belly on the nosings) pays.
    """
    gx, gy, _ = ctx.projected_gravity.tolist()
    pitch_error = gx + math.sin(ctx.terrain_pitch_rad)
    return gy * gy + pitch_error * pitch_error


def base_clearance_deficit(ctx: StepContext) -> float:
    """How far the base's lowest edge is below `ctx.base_clearance_margin_m` above the stairs under
    it, m (0 with enough room). It acts before base contact ends the episode: most failed 0.15 m
    climbs ended with a level trunk's front edge on the next nosing, which no other term sees coming.
    """
    return max(0.0, ctx.base_clearance_margin_m - ctx.base_clearance_m)


# Horizontal distance from a stair edge within which a foot in contact counts as on the edge, m: the
# foot sphere (2 cm radius on stairdog) is then partly over the lip, or its toe against the riser.
# On 0.25 m treads at 0.15 m risers the release of the day landed within 5 cm past a tread's edge in
# 17 % of its touchdowns, within 3 cm of the next riser in 16 % (0.32 m treads: 5 and 7 %). Charged
# per step, contact can be dodged: at -0.2 (runs/fe1) the feet learned to tap on and off the edges.
FOOT_EDGE_MARGIN_M = 0.05


def _feet_near_edges(ctx: StepContext, feet: NDArray[np.bool_]) -> float:
    """How many of `feet` ((F,) bool) are within `FOOT_EDGE_MARGIN_M` of a stair edge; the distances
    are only worked out when one of them is set."""
    if not feet.any():
        return 0.0
    near = ctx.foot_edge_distance_fn() < FOOT_EDGE_MARGIN_M
    return float(np.count_nonzero(near & feet))


def foot_edge(ctx: StepContext) -> float:
    """Feet in contact within `FOOT_EDGE_MARGIN_M` of a stair edge (count): footholds that slip off
    the lip or stub against the riser (Extreme Parkour's feet-edge term, Cheng et al. 2023)."""
    return _feet_near_edges(ctx, ctx.foot_contact)


def foothold_edge(ctx: StepContext) -> float:
    """Feet touching down in this step within `FOOT_EDGE_MARGIN_M` of a stair edge (count).

    The same footholds as `foot_edge`, charged once per touchdown instead of every step in contact:
    lifting a foot off an edge and setting it down there again costs again, so tapping cannot dodge
    it, and a foot that stays planted is charged once however long it stands.
    """
    return _feet_near_edges(ctx, ctx.foot_first_contact)


def front_feet_airborne(ctx: StepContext) -> float:
    """1 when no front foot is in contact, else 0.

    The shipped policy's front legs move as a pair (a bound): both front feet are off the ground in
    54 % of its steps up 0.15 m / 0.25 m stairs, and some of its climbs there fail with the trunk
    level and its nose on the next nosing just after both front feet land. Charged at -0.3 on from
    it (runs/ff1, docs/experiments.md), the front flights fell to 34 % of those steps in 1M steps
    and the climbs fell with them (14 -> 5 of 20): off in every preset.
    """
    if ctx.front_feet is None:
        return 0.0
    return float(not (ctx.foot_contact & ctx.front_feet).any())


def ang_vel_xy_l2(ctx: StepContext) -> float:
    """Roll and pitch rate squared, (rad/s)^2."""
    wx, wy, _ = ctx.base_ang_vel_body_radps.tolist()
    return wx * wx + wy * wy


def torque_l2(ctx: StepContext) -> float:
    """Sum over joints of the mean squared torque, (N·m)^2."""
    return ctx.torques.sum_mean_sq_nm2


def energy(ctx: StepContext) -> float:
    """Mechanical power sum_j |tau_j * qd_j|, W (mean over the substeps)."""
    return ctx.torques.mean_power_w


def action_rate_l2(ctx: StepContext) -> float:
    """Sum of squared changes of the action since the last step."""
    return float(np.square(ctx.action - ctx.last_action).sum())


def joint_limit(ctx: StepContext) -> float:
    """How far joints are beyond their soft limits, summed, rad."""
    low, high = ctx.soft_joint_limits_rad[:, 0], ctx.soft_joint_limits_rad[:, 1]
    q = ctx.joint_pos_rad
    return float((np.maximum(low - q, 0.0) + np.maximum(q - high, 0.0)).sum())


def hip_abduction_l2(ctx: StepContext) -> float:
    """Hip abduction joints away from the default pose, squared and summed over legs, rad^2.

    Per leg as `robots.spec.hip_abduction_rad`. A splayed leg stands lower: the release before
    this term climbed with its front feet splayed out ~0.45 rad (hip actions at the clip in 76 % of
    its steps up 0.15 m stairs), which costs each front leg ~3 cm of height under a trunk whose
    front edge is what strikes the nosings.
    """
    deviation = hip_abduction_rad(ctx.joint_pos_rad, ctx.default_joint_pos_rad)
    return float(np.dot(deviation, deviation))


def foot_slip(ctx: StepContext) -> float:
    """Sum over feet in contact of their squared horizontal speed, (m/s)^2."""
    if not ctx.foot_contact.any():
        return 0.0
    v_xy = ctx.foot_velocities_mps[ctx.foot_contact, :2]
    return float(np.square(v_xy).sum())


def feet_air_time(ctx: StepContext) -> float:
    """Sum over feet touching down this step of (air time - 0.5 s): pays for steps, not shuffling."""
    return float(((ctx.foot_air_time_s - 0.5) * ctx.foot_first_contact).sum())


def body_contact(ctx: StepContext) -> float:
    """Number of robot links other than feet and base touching the terrain (thighs on step edges)."""
    return float(ctx.num_body_contacts)


def fall(ctx: StepContext) -> float:
    """1 on the step an episode ends in a failure (fall, body contact, out of bounds)."""
    return float(ctx.failed)


def success(ctx: StepContext) -> float:
    """1 on the step the robot reaches the final landing."""
    return float(ctx.succeeded)


RewardTerm = Callable[[StepContext], float]

REWARD_TERMS: Mapping[str, RewardTerm] = {
    term.__name__: term
    for term in (
        forward_progress,
        forward_overspeed_l2,
        forward_vel_exp,
        new_steps,
        lateral_vel_l2,
        heading_l2,
        alive,
        orientation_l2,
        orientation_to_slope_l2,
        base_clearance_deficit,
        foot_edge,
        foothold_edge,
        front_feet_airborne,
        ang_vel_xy_l2,
        torque_l2,
        energy,
        action_rate_l2,
        joint_limit,
        hip_abduction_l2,
        foot_slip,
        feet_air_time,
        body_contact,
        fall,
        success,
    )
}


class RewardComposer:
    """Weighted sum of named terms. Validates names once; evaluates only non-zero weights."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        unknown = sorted(set(weights) - set(REWARD_TERMS))
        if unknown:
            raise ConfigError(f"unknown reward term(s) {unknown}; valid terms: {sorted(REWARD_TERMS)}")
        self.weights = {name: float(w) for name, w in weights.items() if w != 0.0}
        self._terms = [(name, REWARD_TERMS[name], w) for name, w in self.weights.items()]

    @property
    def names(self) -> list[str]:
        """Names of the active (non-zero weight) terms, in preset order."""
        return list(self.weights)

    def __call__(self, ctx: StepContext) -> tuple[float, dict[str, float]]:
        """Return (reward, {term: weight * value}) for one step; the reward is the sum of the dict."""
        weighted = {name: weight * term(ctx) for name, term, weight in self._terms}
        return float(sum(weighted.values())), weighted
