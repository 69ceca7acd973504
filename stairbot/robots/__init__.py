"""Robots: specs (`urdf/*.yaml`) that say how stairbot drives a URDF, and the stairdog generator.

`load_robot_spec("stairdog")` returns a frozen `RobotSpec`; `available_robots()` lists the shipped
ones. `stairbot.robots.quadruped_model` writes `urdf/stairdog.urdf` from physical parameters.
"""

from __future__ import annotations

from stairbot.robots.spec import (
    JointSpec,
    RobotSpec,
    UrdfInfo,
    UrdfJoint,
    available_robots,
    load_robot_spec,
    read_urdf,
    robot_spec_path,
    validate_against_urdf,
)

__all__ = [
    "JointSpec",
    "RobotSpec",
    "UrdfInfo",
    "UrdfJoint",
    "available_robots",
    "load_robot_spec",
    "read_urdf",
    "robot_spec_path",
    "validate_against_urdf",
]
