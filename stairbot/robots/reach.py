"""How high a foot can rise under an action scale: forward kinematics over the reachable joint targets.

A policy's joint targets are `default_pose + action_scale * a` with `a` in [-1, 1], so the action scale
bounds how far a leg can fold. This module asks PyBullet (fixed, level base) how far a foot rises above
its standing spot for every (thigh, calf) target on a grid over that box (clipped to the URDF limits),
keeping only poses with the foot ahead of its standing spot, as it must be to land on the next step.
Base pitch and the PD law's tracking error are not counted: it is a kinematic upper bound for a level
base. stairdog at 0.5 rad everywhere: 14.0 cm, less than a 0.15 m riser; thigh and calf at 0.8: 23.2 cm.

Legs are taken as (hip, thigh, calf) triples in the spec's joint order, one foot link each, which is
how every shipped robot is described.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet
from numpy.typing import NDArray
from pybullet_utils.bullet_client import BulletClient

from stairbot.robots.spec import JOINTS_PER_LEG, RobotSpec
from stairbot.sim.world import load_robot

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FootReach:
    """The highest foot pose found for one leg (a level, fixed base)."""

    foot_link: str
    lift_m: float  # foot centre above its position in the default pose
    ahead_m: float  # how far ahead (+x) of that position
    thigh_rad: float  # the targets that reach it
    calf_rad: float


def foot_reach(spec: RobotSpec, action_scale_rad: NDArray[np.float64], grid: int = 61) -> list[FootReach]:
    """Each leg's highest reachable foot position ahead of its standing spot, for joint targets in
    `default_pose +- action_scale_rad` ((J,) rad) clipped to the URDF limits, on a grid x grid sweep."""
    if spec.num_joints % JOINTS_PER_LEG or spec.num_joints // JOINTS_PER_LEG != len(spec.foot_links):
        raise ValueError(
            f"{spec.name}: {spec.num_joints} joints and {len(spec.foot_links)} feet are not "
            f"(hip, thigh, calf) legs"
        )
    scale = np.broadcast_to(np.asarray(action_scale_rad, np.float64), (spec.num_joints,))
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        robot, joints = load_robot(client, spec)
        links = {client.getJointInfo(robot, j)[12].decode(): j for j in range(client.getNumJoints(robot))}
        default = spec.default_pose_rad
        for joint, q in zip(joints, default, strict=True):
            client.resetJointState(robot, joint, float(q))

        def foot_position(
            foot: str, thigh: int, calf: int, q_thigh: float, q_calf: float
        ) -> NDArray[np.float64]:
            client.resetJointState(robot, joints[thigh], q_thigh)
            client.resetJointState(robot, joints[calf], q_calf)
            return np.array(client.getLinkState(robot, links[foot], computeForwardKinematics=True)[4])

        def sweep(index: int) -> NDArray[np.float64]:
            low, high = client.getJointInfo(robot, joints[index])[8:10]
            lo, hi = default[index] - scale[index], default[index] + scale[index]
            if high > low:  # the URDF limits (PyBullet reports 0, -1 where there are none)
                lo, hi = max(lo, low), min(hi, high)
            return np.linspace(lo, hi, grid)

        reaches = []
        for leg, foot in enumerate(spec.foot_links):
            thigh, calf = leg * JOINTS_PER_LEG + 1, leg * JOINTS_PER_LEG + 2
            stand = foot_position(foot, thigh, calf, default[thigh], default[calf])
            best = FootReach(foot, 0.0, 0.0, float(default[thigh]), float(default[calf]))
            for q_thigh in sweep(thigh):
                for q_calf in sweep(calf):
                    offset = foot_position(foot, thigh, calf, q_thigh, q_calf) - stand
                    if offset[0] > 0.0 and offset[2] > best.lift_m:
                        best = FootReach(
                            foot, float(offset[2]), float(offset[0]), float(q_thigh), float(q_calf)
                        )
            foot_position(foot, thigh, calf, default[thigh], default[calf])  # back to the default pose
            reaches.append(best)
        return reaches
    finally:
        client.disconnect()
