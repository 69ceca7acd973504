"""Robot specs: what the rest of stairbot needs to know about a robot beyond its URDF.

A spec is a YAML file in `urdf/` beside (or pointing at) the robot's URDF. It names the base link,
the actuated joints in POLICY ORDER (the order of actions and joint observations everywhere: env,
export bundle, deploy runtime), the standing pose, the PD gains and torque limits of the actuator
model, the foot links and the links whose contact with the terrain is penalized, and the nominal
base height in the standing pose.

`load_robot_spec("a1")` loads a shipped spec by name (`available_robots()` lists them) or any
YAML path, builds the frozen `RobotSpec` with `stairbot.config.load_dataclass` (unknown keys and
out-of-range values are errors naming the key), and checks it against the URDF with
`validate_against_urdf` (plain XML parsing, no simulator): every joint and link the spec names must
exist, the joints must be revolute or continuous, the standing pose must lie inside the URDF joint
limits, the base link must be the URDF root, and a foot link whose collision is one sphere must
have the spec's foot radius.

Torque limits: the spec's `torque_limit_nm` is the one the actuator model enforces. PyBullet does
not apply the URDF `<limit effort>` to torques set with TORQUE_CONTROL, so a spec limit above the
URDF effort is allowed (the A1 URDF, for one, declares less than the motor datasheet for its hips).

Fixed links: with `URDF_MERGE_FIXED_LINKS` PyBullet merges a link attached by a fixed joint (the
feet of all shipped robots) into its parent, so the foot no longer exists as a PyBullet link.
`UrdfInfo.movable_ancestor(link)` gives the link it is merged into and its offset there.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pybullet_data
from numpy.typing import NDArray

from stairbot.config import check_range, load_dataclass, read_yaml
from stairbot.errors import ConfigError, RobotSpecError
from stairbot.paths import available_presets, resolve_preset

PYBULLET_DATA_PREFIX = "pybullet_data:"
"""A spec's `urdf` starting with this prefix is a path inside `pybullet_data.getDataPath()`."""

ACTUATED_JOINT_TYPES = ("revolute", "continuous")
"""URDF joint types a spec may list in `joints` (PyBullet loads both as JOINT_REVOLUTE)."""

JOINTS_PER_LEG = 3
"""Joints per leg in a spec's (policy) order: hip abduction, thigh, calf."""

FOOT_RADIUS_TOLERANCE_M = 1e-3
_LIMIT_TOLERANCE_RAD = 1e-9
_MAX_ABS_ANGLE_RAD = 2.0 * math.pi

FloatArray = NDArray[np.float64]
Vec3 = tuple[float, float, float]


def hip_abduction_rad(joint_pos_rad: FloatArray, default_pose_rad: FloatArray) -> FloatArray:
    """(legs,) each leg's hip abduction joint away from the default pose, rad, from (J,) joint
    positions and the (J,) default pose in a spec's order (`JOINTS_PER_LEG` per leg, hip first)."""
    return joint_pos_rad[::JOINTS_PER_LEG] - default_pose_rad[::JOINTS_PER_LEG]


@dataclass(frozen=True)
class JointSpec:
    """One actuated joint: its URDF name, standing angle and actuator (PD) parameters."""

    name: str
    default_rad: float  # standing pose
    kp_nm_per_rad: float  # PD stiffness, > 0
    kd_nms_per_rad: float  # PD damping, >= 0
    torque_limit_nm: float  # > 0
    # Motor no-load speed for the actuator's torque-speed limit; null: the URDF's <limit velocity>.
    no_load_speed_radps: float | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError(f"name must be a non-empty joint name, got {self.name!r}")
        if self.no_load_speed_radps is not None:
            check_range("no_load_speed_radps", self.no_load_speed_radps, 0.0, low_open=True, unit="rad/s")
        limit = _MAX_ABS_ANGLE_RAD
        check_range("default_rad", self.default_rad, -limit, limit, unit="rad")
        check_range("kp_nm_per_rad", self.kp_nm_per_rad, 0.0, low_open=True, unit="N m/rad")
        check_range("kd_nms_per_rad", self.kd_nms_per_rad, 0.0, unit="N m s/rad")
        check_range("torque_limit_nm", self.torque_limit_nm, 0.0, low_open=True, unit="N m")


@dataclass(frozen=True)
class RobotSpec:
    """A robot as stairbot sees it; built by `load_robot_spec` from a YAML file in `urdf/`.

    `joints` is the POLICY ORDER: actions, joint observations, gains and the default pose all use
    it. Array properties return read-only float64 arrays of shape (num_joints,) in that order.
    `nominal_base_height_m` is the height of the base link's URDF origin when the robot stands in
    the default pose on flat ground (feet touching it). PyBullet's base position is the base's
    centre of mass instead; for the shipped robots the two differ by less than 1 mm.
    `spec_path` is the YAML file the spec was loaded from (not a YAML key; set by the loader, None
    for a spec built in code); a relative `urdf` is resolved against its directory, or against the
    working directory when there is none.
    """

    name: str
    urdf: str  # path relative to the spec YAML, absolute, or "pybullet_data:a1/a1.urdf"
    base_link: str  # name of the URDF root link
    joints: tuple[JointSpec, ...]  # POLICY ORDER
    foot_links: tuple[str, ...]
    thigh_links: tuple[str, ...]  # links whose contact with terrain is penalized or terminates
    nominal_base_height_m: float  # base link origin above flat ground in the default pose
    foot_radius_m: float
    # Lateral friction coefficient of the feet. Bullet multiplies the two bodies' coefficients, so a
    # foot on terrain of friction mu slides at foot_friction * mu; 1.0 (rubber) makes the contact's
    # coefficient the terrain's `sim.ground_friction`. (Bullet's default for a link is 0.5.)
    foot_friction: float = 1.0
    spec_path: Path | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError(f"name must be a non-empty robot name, got {self.name!r}")
        if not self.urdf.strip() or self.urdf.strip() == PYBULLET_DATA_PREFIX:
            raise ConfigError(
                f"urdf must be a URDF path (relative to the spec file, absolute, or "
                f"'{PYBULLET_DATA_PREFIX}<path>'), got {self.urdf!r}"
            )
        if not self.base_link.strip():
            raise ConfigError(f"base_link must be a non-empty link name, got {self.base_link!r}")
        if not self.joints:
            raise ConfigError("joints must list at least one actuated joint, got none")
        _check_unique("joints", [j.name for j in self.joints])
        if not self.foot_links:
            raise ConfigError("foot_links must list at least one link, got none")
        check_range("foot_friction", self.foot_friction, 0.0, 3.0, low_open=True)
        _check_unique("foot_links", self.foot_links)
        _check_unique("thigh_links", self.thigh_links)
        for key in ("foot_links", "thigh_links"):
            for i, link in enumerate(getattr(self, key)):
                if not link.strip():
                    raise ConfigError(f"{key}[{i}] must be a non-empty link name, got {link!r}")
        both = sorted(set(self.foot_links) & set(self.thigh_links))
        if both:
            raise ConfigError(f"thigh_links must not repeat foot links, got {both} in both")
        check_range("nominal_base_height_m", self.nominal_base_height_m, 0.0, 5.0, low_open=True, unit="m")
        check_range("foot_radius_m", self.foot_radius_m, 0.0, 0.5, unit="m")

    # ---- derived values --------------------------------------------------------------------------

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """URDF joint names in policy order."""
        return tuple(j.name for j in self.joints)

    @cached_property
    def default_pose_rad(self) -> FloatArray:
        """Standing pose (rad), policy order."""
        return _readonly([j.default_rad for j in self.joints])

    @cached_property
    def kp(self) -> FloatArray:
        """PD stiffness (N m/rad), policy order."""
        return _readonly([j.kp_nm_per_rad for j in self.joints])

    @cached_property
    def kd(self) -> FloatArray:
        """PD damping (N m s/rad), policy order."""
        return _readonly([j.kd_nms_per_rad for j in self.joints])

    @cached_property
    def torque_limits_nm(self) -> FloatArray:
        """Torque limits (N m) the actuator model enforces, policy order."""
        return _readonly([j.torque_limit_nm for j in self.joints])

    @cached_property
    def no_load_speeds_radps(self) -> FloatArray:
        """Motor no-load speeds (rad/s) of the torque-speed limit, policy order: each joint's
        `no_load_speed_radps`, else its URDF `<limit velocity>`. Raises `RobotSpecError` naming the
        joints that have neither."""
        speeds: list[float | None] = [j.no_load_speed_radps for j in self.joints]
        if any(v is None for v in speeds):
            urdf_joints = read_urdf(self.urdf_path).joints
            for i, joint in enumerate(self.joints):
                if speeds[i] is None and joint.name in urdf_joints:
                    velocity = urdf_joints[joint.name].velocity_rad_s
                    speeds[i] = velocity if velocity is not None and velocity > 0 else None
        missing = [j.name for j, v in zip(self.joints, speeds, strict=True) if v is None]
        if missing:
            raise RobotSpecError(
                f"robot spec '{self.name}': joints {missing} have no no_load_speed_radps and no URDF "
                f"<limit velocity>; set no_load_speed_radps to use the torque-speed limit"
            )
        return _readonly([float(v) for v in speeds if v is not None])

    @property
    def urdf_path(self) -> Path:
        """The URDF as an absolute path (`pybullet_data:` resolved via pybullet_data)."""
        if self.urdf.startswith(PYBULLET_DATA_PREFIX):
            relative = self.urdf[len(PYBULLET_DATA_PREFIX) :].lstrip("/")
            return (Path(pybullet_data.getDataPath()) / relative).resolve()
        path = Path(self.urdf).expanduser()
        if not path.is_absolute():
            base = self.spec_path.parent if self.spec_path is not None else Path.cwd()
            path = base / path
        return path.resolve()


def _check_unique(key: str, names: Iterable[str]) -> None:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ConfigError(f"{key} must not repeat names, got {repeated} more than once")


def _readonly(values: list[float]) -> FloatArray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


# ---- URDF parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrdfJoint:
    """A joint as the URDF declares it; limits are None where the URDF gives none."""

    name: str
    type: str
    parent: str
    child: str
    origin_xyz: Vec3
    origin_rpy: Vec3
    axis: Vec3
    lower_rad: float | None
    upper_rad: float | None
    effort_nm: float | None
    velocity_rad_s: float | None


@dataclass(frozen=True)
class UrdfInfo:
    """What `read_urdf` learns from a URDF file (kinematic tree, limits, collision spheres)."""

    path: Path
    robot_name: str
    links: tuple[str, ...]
    joints: Mapping[str, UrdfJoint]
    root_links: tuple[str, ...]  # links that are no joint's child (a valid robot has exactly one)
    collision_sphere_radii_m: Mapping[str, float]  # links whose only collision shape is a sphere

    def parent_joint(self, link: str) -> UrdfJoint | None:
        """The joint whose child is `link` (None for the root)."""
        for joint in self.joints.values():
            if joint.child == link:
                return joint
        return None

    def movable_ancestor(self, link: str) -> tuple[str, Vec3]:
        """The link `link` is merged into by URDF_MERGE_FIXED_LINKS, and its origin there (m).

        Walks up through fixed joints; a link attached by a movable joint returns itself.
        """
        if link not in self.links:
            raise RobotSpecError(f"link '{link}' is not in {self.path}; links: {list(self.links)}")
        offset = np.zeros(3)
        current = link
        joint = self.parent_joint(current)
        while joint is not None and joint.type == "fixed":
            offset = rpy_matrix(joint.origin_rpy) @ offset + np.asarray(joint.origin_xyz)
            current = joint.parent
            joint = self.parent_joint(current)
        x, y, z = (float(v) for v in offset)
        return current, (x, y, z)


def rpy_matrix(rpy: Sequence[float]) -> FloatArray:
    """Rotation matrix of URDF fixed-axis roll-pitch-yaw angles: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    roll, pitch, yaw = rpy
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _floats(text: str | None, default: Vec3) -> Vec3:
    if text is None:
        return default
    values = [float(v) for v in text.split()]
    if len(values) != 3:
        raise ValueError(f"expected 3 numbers, got {text!r}")
    return (values[0], values[1], values[2])


def _optional_float(element: ET.Element | None, attribute: str) -> float | None:
    if element is None or element.get(attribute) is None:
        return None
    return float(element.get(attribute, "nan"))


def read_urdf(path: str | Path) -> UrdfInfo:
    """Parse a URDF with `xml.etree.ElementTree` (no simulator); errors are `RobotSpecError`."""
    path = Path(path)
    if not path.is_file():
        raise RobotSpecError(f"URDF file {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RobotSpecError(f"{path}: not valid XML: {exc}") from exc
    if root.tag != "robot":
        raise RobotSpecError(f"{path}: the top element must be <robot>, got <{root.tag}>")
    links = tuple(link.get("name", "") for link in root.findall("link"))
    joints: dict[str, UrdfJoint] = {}
    spheres: dict[str, float] = {}
    try:
        for link in root.findall("link"):
            collisions = link.findall("collision")
            sphere = collisions[0].find("geometry/sphere") if len(collisions) == 1 else None
            if sphere is not None:
                spheres[link.get("name", "")] = float(sphere.get("radius", "nan"))
        for element in root.findall("joint"):
            origin = element.find("origin")
            limit = element.find("limit")
            axis = element.find("axis")
            parent = element.find("parent")
            child = element.find("child")
            name = element.get("name", "")
            joints[name] = UrdfJoint(
                name=name,
                type=element.get("type", ""),
                parent="" if parent is None else parent.get("link", ""),
                child="" if child is None else child.get("link", ""),
                origin_xyz=_floats(None if origin is None else origin.get("xyz"), (0.0, 0.0, 0.0)),
                origin_rpy=_floats(None if origin is None else origin.get("rpy"), (0.0, 0.0, 0.0)),
                axis=_floats(None if axis is None else axis.get("xyz"), (1.0, 0.0, 0.0)),
                lower_rad=_optional_float(limit, "lower"),
                upper_rad=_optional_float(limit, "upper"),
                effort_nm=_optional_float(limit, "effort"),
                velocity_rad_s=_optional_float(limit, "velocity"),
            )
    except ValueError as exc:
        raise RobotSpecError(f"{path}: a number could not be read: {exc}") from exc
    children = {j.child for j in joints.values()}
    return UrdfInfo(
        path=path,
        robot_name=root.get("name", ""),
        links=links,
        joints=MappingProxyType(joints),
        root_links=tuple(link for link in links if link not in children),
        collision_sphere_radii_m=MappingProxyType(spheres),
    )


def validate_against_urdf(spec: RobotSpec) -> UrdfInfo:
    """Check `spec` against its URDF and return the parsed URDF; raise `RobotSpecError` listing
    every disagreement (missing joints or links, non-revolute joints, a standing pose outside the
    joint limits, a base link that is not the root, a foot radius that differs from the URDF's).
    """
    urdf = read_urdf(spec.urdf_path)
    problems: list[str] = []
    if urdf.root_links != (spec.base_link,):
        problems.append(
            f"base_link '{spec.base_link}' must be the URDF root link; the URDF's root link(s): "
            f"{list(urdf.root_links)}"
        )
    missing_joints = [j.name for j in spec.joints if j.name not in urdf.joints]
    if missing_joints:
        problems.append(f"joints {missing_joints} are not in the URDF; URDF joints: {list(urdf.joints)}")
    for joint in spec.joints:
        declared = urdf.joints.get(joint.name)
        if declared is None:
            continue
        if declared.type not in ACTUATED_JOINT_TYPES:
            problems.append(
                f"joint '{joint.name}' is '{declared.type}' in the URDF; joints must be one of "
                f"{list(ACTUATED_JOINT_TYPES)}"
            )
            continue
        lower, upper = declared.lower_rad, declared.upper_rad
        if declared.type == "revolute" and lower is not None and upper is not None:
            tol = _LIMIT_TOLERANCE_RAD
            if not lower - tol <= joint.default_rad <= upper + tol:
                problems.append(
                    f"joint '{joint.name}' default_rad {joint.default_rad} is outside its URDF "
                    f"limits [{lower}, {upper}] rad"
                )
    for key in ("foot_links", "thigh_links"):
        missing = [link for link in getattr(spec, key) if link not in urdf.links]
        if missing:
            problems.append(f"{key} {missing} are not in the URDF; URDF links: {list(urdf.links)}")
    for link in spec.foot_links:
        radius = urdf.collision_sphere_radii_m.get(link)
        if radius is not None and abs(radius - spec.foot_radius_m) > FOOT_RADIUS_TOLERANCE_M:
            problems.append(
                f"foot_radius_m {spec.foot_radius_m} differs from the collision sphere of foot "
                f"link '{link}' (radius {radius} m) by more than {FOOT_RADIUS_TOLERANCE_M} m"
            )
    if problems:
        where = f" ({spec.spec_path})" if spec.spec_path is not None else ""
        raise RobotSpecError(
            f"robot spec '{spec.name}'{where} disagrees with its URDF {urdf.path}:\n  - "
            + "\n  - ".join(problems)
        )
    return urdf


# ---- loading -------------------------------------------------------------------------------------


def available_robots() -> list[str]:
    """Names of the shipped robot specs (YAML stems in `urdf/`), sorted."""
    return available_presets("urdf")


def robot_spec_path(name_or_path: str | Path) -> Path:
    """The spec file for a shipped robot name (`a1`) or a path to a spec YAML."""
    try:
        return resolve_preset(name_or_path, "urdf")
    except ConfigError:
        raise RobotSpecError(
            f"no robot named '{name_or_path}': it is neither an existing spec file nor one of the "
            f"shipped robots {available_robots()}"
        ) from None


def load_robot_spec(name_or_path: str | Path) -> RobotSpec:
    """Load a robot spec by shipped name (`"stairdog"`, `"a1"`, `"laikago"`) or YAML path.

    Raises `ConfigError` for unknown keys or values out of range (the message starts with the key)
    and `RobotSpecError` for an unknown name or a spec that disagrees with its URDF.
    """
    path = robot_spec_path(name_or_path)
    raw = read_yaml(path)
    try:
        spec = load_dataclass(RobotSpec, raw)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in robot spec {path})") from None
    object.__setattr__(spec, "spec_path", path)  # frozen: the loader sets the one non-YAML field
    validate_against_urdf(spec)
    return spec
