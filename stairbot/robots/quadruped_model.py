"""Generate the URDF of stairbot's own quadruped ("stairdog") from a few physical parameters.

Every link is built from primitive shapes (box, cylinder, sphere). Each shape is both the collision
and the visual geometry of its link, so what the simulator collides with is what the GUI shows. A
link's mass is given; it is spread over the link's shapes in proportion to their volumes (uniform
density per link), and the link's centre of mass and inertia tensor are computed from the shapes:
each shape's inertia about its own centre, rotated into the link frame, moved to the link's centre
of mass with the parallel-axis theorem, and summed. No placeholder or identity inertias.

Kinematics (Unitree convention, legs in the order FR, FL, RR, RL; x forward, y left, z up):

- ``<leg>_hip_joint`` (abduction) sits on the trunk at (+-hip_x, +-hip_y, 0) and turns about +x.
  A positive angle moves the foot toward +y (left): abduction for left legs, adduction for right
  legs; the limits are symmetric, so both sides share them.
- ``<leg>_thigh_joint`` sits ``hip_link_length_m`` outward (+y for left legs, -y for right legs)
  of the hip joint and turns about +y. The thigh hangs along -z at zero angle; a positive angle
  swings the foot backward (-x).
- ``<leg>_calf_joint`` sits ``thigh_length_m`` below the thigh joint and turns about +y. Zero is a
  straight leg; the limits are negative only, so the knee always points backward.
- ``<leg>_foot_fixed`` fixes the spherical ``<leg>_foot`` ``calf_length_m`` below the calf joint.

Run ``python -m stairbot.robots.quadruped_model`` to rewrite ``urdf/stairdog.urdf`` (``--check``
only compares). The committed file is tested to equal the generator's output, so the two never
drift apart.
"""

from __future__ import annotations

import argparse
import enum
import math
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stairbot.config import check_range
from stairbot.errors import ConfigError
from stairbot.paths import data_dir
from stairbot.robots.spec import rpy_matrix

LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")
"""Leg order (Unitree): front right, front left, rear right, rear left."""

STANDING_POSE_RAD: tuple[float, float, float] = (0.0, 0.85, -1.70)
"""stairdog's standing pose per leg (hip, thigh, calf), as in `urdf/stairdog.yaml` (tested): each
foot straight under its thigh joint, trunk origin 2 * 0.213 * cos(0.85) + 0.02 = 0.3012 m high."""

Vec3 = tuple[float, float, float]
FloatArray = NDArray[np.float64]


class ShapeKind(enum.Enum):
    """Primitive geometry types the generator writes (all understood by URDF and PyBullet)."""

    BOX = "box"
    CYLINDER = "cylinder"
    SPHERE = "sphere"


# ---- shapes and mass properties ------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A primitive solid placed in its link's frame.

    `size` is (x, y, z) edge lengths in m for a box, (radius, length) for a cylinder (axis along the
    shape's own z, as in URDF), and (radius,) for a sphere. `xyz`/`rpy` place the shape's centre
    and orientation in the link frame (URDF conventions: fixed-axis roll, pitch, yaw in rad).
    """

    kind: ShapeKind
    size: tuple[float, ...]
    xyz: Vec3 = (0.0, 0.0, 0.0)
    rpy: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        expected = {ShapeKind.BOX: 3, ShapeKind.CYLINDER: 2, ShapeKind.SPHERE: 1}[self.kind]
        if len(self.size) != expected:
            raise ConfigError(f"size of a {self.kind.value} must have {expected} values, got {self.size!r}")
        for value in self.size:
            check_range("size", value, 0.0, low_open=True, unit="m")

    @property
    def volume_m3(self) -> float:
        """Volume of the solid in m^3."""
        if self.kind is ShapeKind.BOX:
            x, y, z = self.size
            return x * y * z
        if self.kind is ShapeKind.CYLINDER:
            radius, length = self.size
            return math.pi * radius**2 * length
        (radius,) = self.size
        return 4.0 / 3.0 * math.pi * radius**3

    def central_inertia(self, mass_kg: float) -> FloatArray:
        """Inertia (kg m^2) of the uniform solid about its centre, in the shape's own axes."""
        if self.kind is ShapeKind.BOX:
            x, y, z = self.size
            diag = (y * y + z * z, x * x + z * z, x * x + y * y)
            return np.diag([mass_kg / 12.0 * d for d in diag])
        if self.kind is ShapeKind.CYLINDER:
            radius, length = self.size
            across = mass_kg / 12.0 * (3.0 * radius**2 + length**2)
            return np.diag([across, across, mass_kg * radius**2 / 2.0])
        (radius,) = self.size
        return np.eye(3) * (2.0 / 5.0 * mass_kg * radius**2)

    @property
    def rotation(self) -> FloatArray:
        """Rotation matrix from the shape frame to the link frame (URDF rpy)."""
        return rpy_matrix(self.rpy)


def _rot_x(angle: float) -> FloatArray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(angle: float) -> FloatArray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class MassProperties:
    """Mass (kg), centre of mass (m, link frame) and inertia about the centre of mass (kg m^2)."""

    mass_kg: float
    com_m: FloatArray
    inertia_kgm2: FloatArray


def mass_properties(shapes: Sequence[Shape], mass_kg: float) -> MassProperties:
    """Mass properties of a rigid body made of `shapes` that weighs `mass_kg` in total.

    The mass is spread over the shapes in proportion to their volumes (one uniform density). Each
    shape's central inertia is rotated into the link frame (R I R^T) and moved to the body's centre
    of mass with the parallel-axis theorem: I += m (|d|^2 E - d d^T), d = shape centre - body COM.
    Shapes may overlap (a bracket reaching into a motor); the overlap then counts once per shape,
    which shifts a little mass toward it but leaves the total exact.
    """
    if not shapes:
        raise ConfigError("shapes must name at least one shape, got none")
    check_range("mass_kg", mass_kg, 0.0, low_open=True, unit="kg")
    total_volume = sum(s.volume_m3 for s in shapes)
    masses = [mass_kg * s.volume_m3 / total_volume for s in shapes]
    centres = [np.asarray(s.xyz, dtype=np.float64) for s in shapes]
    com = sum((m * c for m, c in zip(masses, centres, strict=True)), np.zeros(3)) / mass_kg
    inertia = np.zeros((3, 3))
    for shape, m, centre in zip(shapes, masses, centres, strict=True):
        rot = shape.rotation
        d = centre - com
        inertia += rot @ shape.central_inertia(m) @ rot.T
        inertia += m * (float(d @ d) * np.eye(3) - np.outer(d, d))
    inertia = (inertia + inertia.T) / 2.0  # remove round-off asymmetry
    return MassProperties(mass_kg=mass_kg, com_m=com, inertia_kgm2=inertia)


# ---- the robot's parameters ----------------------------------------------------------------------


@dataclass(frozen=True)
class QuadrupedParams:
    """Physical parameters of the generated quadruped; the defaults describe stairdog.

    Sizes and masses are Go1/A1 scale (Go1: trunk 5.2 kg, hip 0.68 kg, thigh 1.01 kg, calf 0.2 kg,
    thigh and calf 0.213 m). Joint ranges follow Go1 (hip +-0.863, thigh -0.686..4.501, calf
    -2.818..-0.888 rad), rounded.
    """

    name: str = "stairdog"
    trunk_size_m: Vec3 = (0.38, 0.19, 0.11)
    trunk_mass_kg: float = 5.0
    hip_x_m: float = 0.188  # trunk centre -> hip joints, forward/backward
    hip_y_m: float = 0.05  # trunk centre -> hip joints, sideways
    hip_link_length_m: float = 0.08  # hip joint -> thigh joint, outward
    thigh_length_m: float = 0.213
    calf_length_m: float = 0.213
    foot_radius_m: float = 0.02
    motor_radius_m: float = 0.045  # hip and thigh actuators (cylinders)
    motor_width_m: float = 0.05
    thigh_beam_size_m: tuple[float, float] = (0.04, 0.03)  # x, y cross-section of the thigh box
    knee_radius_m: float = 0.02
    calf_radius_m: float = 0.012
    hip_mass_kg: float = 0.6
    thigh_mass_kg: float = 0.95
    calf_mass_kg: float = 0.2
    foot_mass_kg: float = 0.05
    hip_limits_rad: tuple[float, float] = (-0.86, 0.86)
    thigh_limits_rad: tuple[float, float] = (-0.69, 4.50)
    calf_limits_rad: tuple[float, float] = (-2.80, -0.90)
    effort_limits_nm: Vec3 = (25.0, 25.0, 35.0)  # hip, thigh, calf
    velocity_limit_rad_s: float = 30.0
    joint_damping: float = 0.01  # URDF <dynamics damping>, N m s/rad
    joint_friction: float = 0.0  # URDF <dynamics friction>, N m

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name must be a non-empty string")
        for i, edge in enumerate(self.trunk_size_m):
            check_range(f"trunk_size_m[{i}]", edge, 0.0, low_open=True, unit="m")
        for key in (
            "trunk_mass_kg",
            "hip_mass_kg",
            "thigh_mass_kg",
            "calf_mass_kg",
            "foot_mass_kg",
        ):
            check_range(key, getattr(self, key), 0.0, low_open=True, unit="kg")
        for key in (
            "hip_x_m",
            "hip_y_m",
            "hip_link_length_m",
            "foot_radius_m",
            "motor_radius_m",
            "motor_width_m",
            "knee_radius_m",
            "calf_radius_m",
        ):
            check_range(key, getattr(self, key), 0.0, low_open=True, unit="m")
        for key in ("thigh_length_m", "calf_length_m"):
            # the link shapes need room for the actuator and the foot
            check_range(key, getattr(self, key), 0.1, 1.0, unit="m")
        for i, edge in enumerate(self.thigh_beam_size_m):
            check_range(f"thigh_beam_size_m[{i}]", edge, 0.0, low_open=True, unit="m")
        for key in ("hip_limits_rad", "thigh_limits_rad", "calf_limits_rad"):
            lower, upper = getattr(self, key)
            if not lower < upper:
                raise ConfigError(f"{key} must be (lower, upper) with lower < upper, got {(lower, upper)}")
        for i, effort in enumerate(self.effort_limits_nm):
            check_range(f"effort_limits_nm[{i}]", effort, 0.0, low_open=True, unit="N m")
        check_range("velocity_limit_rad_s", self.velocity_limit_rad_s, 0.0, low_open=True, unit="rad/s")
        check_range("joint_damping", self.joint_damping, 0.0, unit="N m s/rad")
        check_range("joint_friction", self.joint_friction, 0.0, unit="N m")
        if self.calf_radius_m >= self.foot_radius_m:
            raise ConfigError(
                f"calf_radius_m must be smaller than foot_radius_m ({self.foot_radius_m}) so "
                f"that the foot is the lowest point of the leg, got {self.calf_radius_m}"
            )

    def side(self, leg: str) -> float:
        """+1 for left legs, -1 for right legs."""
        return 1.0 if leg[1] == "L" else -1.0

    def front(self, leg: str) -> float:
        """+1 for front legs, -1 for rear legs."""
        return 1.0 if leg[0] == "F" else -1.0

    def hip_position_m(self, leg: str) -> Vec3:
        """Position of `leg`'s hip (abduction) joint in the trunk frame."""
        return (self.front(leg) * self.hip_x_m, self.side(leg) * self.hip_y_m, 0.0)


# ---- links and joints ----------------------------------------------------------------------------

_COLORS: dict[str, tuple[float, float, float, float]] = {
    "trunk": (0.25, 0.27, 0.30, 1.0),
    "hip": (0.90, 0.45, 0.10, 1.0),
    "thigh": (0.70, 0.70, 0.72, 1.0),
    "calf": (0.20, 0.20, 0.22, 1.0),
    "foot": (0.05, 0.05, 0.05, 1.0),
}
_HALF_PI = math.pi / 2.0
_ALONG_X: Vec3 = (0.0, _HALF_PI, 0.0)  # rpy that turns a cylinder's z axis onto x
_ALONG_Y: Vec3 = (_HALF_PI, 0.0, 0.0)  # rpy that turns a cylinder's z axis onto y


@dataclass(frozen=True)
class LinkModel:
    """A link: its shapes (collision = visual), total mass and colour name (a key of _COLORS)."""

    name: str
    shapes: tuple[Shape, ...]
    mass_kg: float
    material: str

    @property
    def mass_properties(self) -> MassProperties:
        return mass_properties(self.shapes, self.mass_kg)


@dataclass(frozen=True)
class JointModel:
    """A joint between two links; limits only for revolute joints."""

    name: str
    kind: str  # "revolute" or "fixed"
    parent: str
    child: str
    xyz: Vec3
    axis: Vec3 = (0.0, 0.0, 0.0)
    limits_rad: tuple[float, float] | None = None
    effort_nm: float = 0.0
    velocity_rad_s: float = 0.0
    damping: float | None = None  # URDF <dynamics damping>, N m s/rad
    friction: float | None = None  # URDF <dynamics friction>, N m


def build_links(params: QuadrupedParams) -> list[LinkModel]:
    """The robot's links, trunk first, then each leg's hip, thigh, calf and foot."""
    p = params
    links = [LinkModel("trunk", (Shape(ShapeKind.BOX, p.trunk_size_m),), p.trunk_mass_kg, "trunk")]
    motor = (p.motor_radius_m, p.motor_width_m)
    for leg in LEGS:
        side = p.side(leg)
        # hip: the abduction motor (axis x) plus a bracket out to the thigh joint
        bracket_y = p.hip_link_length_m - p.motor_width_m / 2.0
        hip = (
            Shape(ShapeKind.CYLINDER, motor, rpy=_ALONG_X),
            Shape(
                ShapeKind.BOX,
                (p.motor_width_m * 0.8, bracket_y, p.motor_width_m * 0.8),
                xyz=(0.0, side * bracket_y / 2.0, 0.0),
            ),
        )
        # thigh: the hip-pitch motor (axis y) at the joint plus a beam down to the knee
        beam_length = p.thigh_length_m - p.motor_radius_m
        thigh = (
            Shape(ShapeKind.CYLINDER, motor, rpy=_ALONG_Y),
            Shape(
                ShapeKind.BOX,
                (*p.thigh_beam_size_m, beam_length),
                xyz=(0.0, 0.0, -(p.motor_radius_m + beam_length / 2.0)),
            ),
        )
        # calf: a knee pulley (axis y) plus a thin shank that stops where the foot sphere begins
        shank_top = p.knee_radius_m
        shank_length = p.calf_length_m - p.foot_radius_m - shank_top
        calf = (
            Shape(ShapeKind.CYLINDER, (p.knee_radius_m, p.thigh_beam_size_m[1]), rpy=_ALONG_Y),
            Shape(
                ShapeKind.CYLINDER,
                (p.calf_radius_m, shank_length),
                xyz=(0.0, 0.0, -(shank_top + shank_length / 2.0)),
            ),
        )
        foot = (Shape(ShapeKind.SPHERE, (p.foot_radius_m,)),)
        links += [
            LinkModel(f"{leg}_hip", hip, p.hip_mass_kg, "hip"),
            LinkModel(f"{leg}_thigh", thigh, p.thigh_mass_kg, "thigh"),
            LinkModel(f"{leg}_calf", calf, p.calf_mass_kg, "calf"),
            LinkModel(f"{leg}_foot", foot, p.foot_mass_kg, "foot"),
        ]
    return links


def build_joints(params: QuadrupedParams) -> list[JointModel]:
    """The robot's joints, per leg in the order hip, thigh, calf, foot (fixed)."""
    p = params
    x_axis, y_axis = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)
    joints = []
    for leg in LEGS:
        hip, thigh, calf, foot = (f"{leg}_{part}" for part in ("hip", "thigh", "calf", "foot"))
        revolute = (
            # (child link, parent link, joint origin in the parent frame, axis, limits)
            (hip, "trunk", p.hip_position_m(leg), x_axis, p.hip_limits_rad),
            (thigh, hip, (0.0, p.side(leg) * p.hip_link_length_m, 0.0), y_axis, p.thigh_limits_rad),
            (calf, thigh, (0.0, 0.0, -p.thigh_length_m), y_axis, p.calf_limits_rad),
        )
        for (child, parent, xyz, axis, limits), effort in zip(revolute, p.effort_limits_nm, strict=True):
            joints.append(
                JointModel(
                    f"{child}_joint",
                    "revolute",
                    parent,
                    child,
                    xyz,
                    axis=axis,
                    limits_rad=limits,
                    effort_nm=effort,
                    velocity_rad_s=p.velocity_limit_rad_s,
                    damping=p.joint_damping,
                    friction=p.joint_friction,
                )
            )
        joints.append(JointModel(f"{foot}_fixed", "fixed", calf, foot, (0.0, 0.0, -p.calf_length_m)))
    return joints


def total_mass_kg(params: QuadrupedParams) -> float:
    """Sum of all link masses in kg."""
    return sum(link.mass_kg for link in build_links(params))


# ---- kinematics ----------------------------------------------------------------------------------


def foot_positions_m(params: QuadrupedParams, joint_angles_rad: Sequence[float]) -> FloatArray:
    """Foot centres in the trunk frame, shape (4, 3), legs in LEGS order.

    `joint_angles_rad` holds 12 angles, per leg (hip, thigh, calf) in LEGS order, or 3 angles used
    for every leg.
    """
    angles = np.asarray(joint_angles_rad, dtype=np.float64)
    if angles.shape == (3,):
        angles = np.tile(angles, len(LEGS))
    if angles.shape != (3 * len(LEGS),):
        raise ConfigError(f"joint_angles_rad must hold 3 or {3 * len(LEGS)} angles, got shape {angles.shape}")
    feet = np.zeros((len(LEGS), 3))
    for i, leg in enumerate(LEGS):
        hip, thigh, calf = angles[3 * i : 3 * i + 3]
        knee_to_foot = _rot_y(calf) @ np.array([0.0, 0.0, -params.calf_length_m])
        thigh_to_foot = _rot_y(thigh) @ (np.array([0.0, 0.0, -params.thigh_length_m]) + knee_to_foot)
        hip_to_foot = np.array([0.0, params.side(leg) * params.hip_link_length_m, 0.0]) + thigh_to_foot
        feet[i] = np.asarray(params.hip_position_m(leg)) + _rot_x(hip) @ hip_to_foot
    return feet


def stance_height_m(params: QuadrupedParams, joint_angles_rad: Sequence[float]) -> float:
    """Height of the trunk origin above flat ground when the feet touch it in this pose.

    The mean foot-centre depth below the trunk plus the foot radius (the pose should put all feet
    at the same depth, as a standing pose does).
    """
    feet = foot_positions_m(params, joint_angles_rad)
    return float(-feet[:, 2].mean() + params.foot_radius_m)


# ---- URDF writing --------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    """Format a number for the URDF: 9 significant digits, no negative zero or round-off dust."""
    if abs(value) < 1e-12:
        return "0"
    return f"{value:.9g}"


def _fmt_vec(values: Sequence[float] | FloatArray) -> str:
    return " ".join(_fmt(float(v)) for v in values)


def _geometry(parent: ET.Element, shape: Shape) -> None:
    origin = ET.SubElement(parent, "origin")
    origin.set("xyz", _fmt_vec(shape.xyz))
    origin.set("rpy", _fmt_vec(shape.rpy))
    geometry = ET.SubElement(parent, "geometry")
    if shape.kind is ShapeKind.BOX:
        ET.SubElement(geometry, "box", size=_fmt_vec(shape.size))
    elif shape.kind is ShapeKind.CYLINDER:
        radius, length = shape.size
        ET.SubElement(geometry, "cylinder", radius=_fmt(radius), length=_fmt(length))
    else:
        ET.SubElement(geometry, "sphere", radius=_fmt(shape.size[0]))


def _link_element(link: LinkModel) -> ET.Element:
    element = ET.Element("link", name=link.name)
    props = link.mass_properties
    inertial = ET.SubElement(element, "inertial")
    ET.SubElement(inertial, "origin", xyz=_fmt_vec(props.com_m), rpy="0 0 0")
    ET.SubElement(inertial, "mass", value=_fmt(props.mass_kg))
    i = props.inertia_kgm2
    ET.SubElement(
        inertial,
        "inertia",
        ixx=_fmt(i[0, 0]),
        ixy=_fmt(i[0, 1]),
        ixz=_fmt(i[0, 2]),
        iyy=_fmt(i[1, 1]),
        iyz=_fmt(i[1, 2]),
        izz=_fmt(i[2, 2]),
    )
    for shape in link.shapes:
        visual = ET.SubElement(element, "visual")
        _geometry(visual, shape)
        ET.SubElement(visual, "material", name=link.material)
    for shape in link.shapes:
        _geometry(ET.SubElement(element, "collision"), shape)
    return element


def _joint_element(joint: JointModel) -> ET.Element:
    element = ET.Element("joint", name=joint.name, type=joint.kind)
    ET.SubElement(element, "origin", xyz=_fmt_vec(joint.xyz), rpy="0 0 0")
    ET.SubElement(element, "parent", link=joint.parent)
    ET.SubElement(element, "child", link=joint.child)
    if joint.kind == "revolute":
        ET.SubElement(element, "axis", xyz=_fmt_vec(joint.axis))
        if joint.limits_rad is not None:
            lower, upper = joint.limits_rad
            ET.SubElement(
                element,
                "limit",
                lower=_fmt(lower),
                upper=_fmt(upper),
                effort=_fmt(joint.effort_nm),
                velocity=_fmt(joint.velocity_rad_s),
            )
        if joint.damping is not None or joint.friction is not None:
            ET.SubElement(
                element,
                "dynamics",
                damping=_fmt(joint.damping or 0.0),
                friction=_fmt(joint.friction or 0.0),
            )
    return element


def generate_urdf(params: QuadrupedParams | None = None) -> str:
    """The URDF text of the quadruped described by `params` (stairdog by default)."""
    params = QuadrupedParams() if params is None else params
    robot = ET.Element("robot", name=params.name)
    robot.append(
        ET.Comment(
            f" Generated by `python -m stairbot.robots.quadruped_model`; do not edit by hand. "
            f"Total mass {_fmt(round(total_mass_kg(params), 6))} kg. "
        )
    )
    for name, rgba in _COLORS.items():
        material = ET.SubElement(robot, "material", name=name)
        ET.SubElement(material, "color", rgba=_fmt_vec(rgba))
    links = {link.name: link for link in build_links(params)}
    robot.append(_link_element(links["trunk"]))
    for joint in build_joints(params):
        robot.append(_joint_element(joint))
        robot.append(_link_element(links[joint.child]))
    ET.indent(robot, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def default_urdf_path() -> Path:
    """Where the shipped stairdog URDF lives (`urdf/stairdog.urdf`)."""
    return data_dir("urdf") / "stairdog.urdf"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, compare) the stairdog URDF; print its key numbers."""
    parser = argparse.ArgumentParser(
        prog="python -m stairbot.robots.quadruped_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output", type=Path, default=None, help="default: urdf/stairdog.urdf")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the generator output"
    )
    args = parser.parse_args(argv)
    output: Path = args.output or default_urdf_path()
    params = QuadrupedParams()
    text = generate_urdf(params)
    if args.check:
        current = output.read_text() if output.is_file() else None
        if current != text:
            print(f"{output} is out of date; run python -m stairbot.robots.quadruped_model")
            return 1
        print(f"{output} is up to date")
        return 0
    output.write_text(text)
    height = stance_height_m(params, STANDING_POSE_RAD)
    print(
        f"wrote {output}: total mass {total_mass_kg(params):.3f} kg; trunk origin "
        f"{height:.4f} m above the ground in the standing pose {STANDING_POSE_RAD} rad "
        "(nominal_base_height_m of urdf/stairdog.yaml)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
