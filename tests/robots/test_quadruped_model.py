"""The stairdog URDF generator: mass properties, kinematics, and the committed file."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pybullet
import pytest
from pybullet_utils import bullet_client

from stairbot.errors import ConfigError
from stairbot.paths import data_dir
from stairbot.robots.quadruped_model import (
    LEGS,
    STANDING_POSE_RAD,
    QuadrupedParams,
    Shape,
    ShapeKind,
    foot_positions_m,
    generate_urdf,
    main,
    mass_properties,
    stance_height_m,
    total_mass_kg,
)
from stairbot.robots.spec import load_robot_spec, read_urdf

URDF = data_dir("urdf") / "stairdog.urdf"


def _inertials(text: str) -> dict[str, tuple[float, np.ndarray]]:
    """Mass and inertia tensor of every link, read back from URDF text."""
    result = {}
    for link in ET.fromstring(text).iter("link"):
        inertial = link.find("inertial")
        assert inertial is not None, link.get("name")
        mass = float(inertial.find("mass").get("value"))  # type: ignore[union-attr]
        i = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}  # type: ignore[union-attr]
        tensor = np.array(
            [
                [i["ixx"], i["ixy"], i["ixz"]],
                [i["ixy"], i["iyy"], i["iyz"]],
                [i["ixz"], i["iyz"], i["izz"]],
            ]
        )
        result[link.get("name", "")] = (mass, tensor)
    return result


def test_committed_urdf_is_the_generator_output() -> None:
    assert URDF.read_text() == generate_urdf(), (
        "urdf/stairdog.urdf is out of date: run python -m stairbot.robots.quadruped_model"
    )


def test_main_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    out = tmp_path / "dog.urdf"
    assert main(["--check", "--output", str(out)]) == 1
    assert main(["--output", str(out)]) == 0
    assert out.read_text() == URDF.read_text()
    assert "0.3012 m" in capsys.readouterr().out


def test_total_mass() -> None:
    assert 10.0 <= total_mass_kg(QuadrupedParams()) <= 14.0
    masses = _inertials(URDF.read_text())
    assert sum(m for m, _ in masses.values()) == pytest.approx(total_mass_kg(QuadrupedParams()))
    assert 4.5 <= masses["trunk"][0] <= 5.5


def test_total_mass_in_pybullet() -> None:
    pb = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    try:
        body = pb.loadURDF(str(URDF))
        total = sum(pb.getDynamicsInfo(body, i)[0] for i in range(-1, pb.getNumJoints(body)))
        assert 10.0 <= total <= 14.0
        for i in range(-1, pb.getNumJoints(body)):
            assert min(pb.getDynamicsInfo(body, i)[2]) > 0  # principal moments
    finally:
        pb.disconnect()


def test_inertias_are_physical() -> None:
    for name, (mass, tensor) in _inertials(URDF.read_text()).items():
        assert mass > 0, name
        np.testing.assert_allclose(tensor, tensor.T)
        principal = np.linalg.eigvalsh(tensor)
        assert principal.min() > 0, f"{name}: inertia not positive definite: {principal}"
        a, b, c = principal
        assert a + b >= c * (1 - 1e-9), f"{name}: triangle inequality fails: {principal}"
        assert not np.allclose(tensor, np.eye(3)), f"{name}: placeholder identity inertia"


def test_box_cylinder_sphere_inertia_formulas() -> None:
    box = mass_properties([Shape(ShapeKind.BOX, (0.3, 0.2, 0.1))], 6.0)
    np.testing.assert_allclose(np.diag(box.inertia_kgm2), [0.025, 0.05, 0.065])
    cyl = mass_properties([Shape(ShapeKind.CYLINDER, (0.1, 0.6))], 2.0)
    np.testing.assert_allclose(np.diag(cyl.inertia_kgm2), [0.065, 0.065, 0.01])
    sphere = mass_properties([Shape(ShapeKind.SPHERE, (0.1,))], 5.0)
    np.testing.assert_allclose(sphere.inertia_kgm2, np.eye(3) * 0.02)


def test_rotated_cylinder_swaps_axes() -> None:
    along_y = Shape(ShapeKind.CYLINDER, (0.1, 0.6), rpy=(math.pi / 2, 0.0, 0.0))
    np.testing.assert_allclose(
        mass_properties([along_y], 2.0).inertia_kgm2, np.diag([0.065, 0.01, 0.065]), atol=1e-12
    )


def test_parallel_axis_and_volume_split() -> None:
    # two equal spheres 0.2 m either side of the origin along x: the mass splits evenly, the COM is
    # the origin, and the y/z inertia gains m d^2 per sphere
    spheres = [Shape(ShapeKind.SPHERE, (0.05,), xyz=(x, 0.0, 0.0)) for x in (-0.2, 0.2)]
    props = mass_properties(spheres, 2.0)
    np.testing.assert_allclose(props.com_m, 0.0, atol=1e-15)
    own = 2 * (2 / 5 * 1.0 * 0.05**2)
    np.testing.assert_allclose(np.diag(props.inertia_kgm2), [own, own + 2 * 0.04, own + 2 * 0.04])
    # a shape offset in x and z gives products of inertia (about the shared COM)
    big = Shape(ShapeKind.BOX, (0.1, 0.1, 0.1))
    small = Shape(ShapeKind.BOX, (0.1, 0.1, 0.1), xyz=(0.1, 0.0, 0.1))
    tilted = mass_properties([big, small], 1.0)
    np.testing.assert_allclose(tilted.com_m, [0.05, 0.0, 0.05])
    assert tilted.inertia_kgm2[0, 2] == pytest.approx(-2 * 0.5 * 0.05 * 0.05)


def test_link_lengths_and_joints() -> None:
    urdf = read_urdf(URDF)
    assert urdf.root_links == ("trunk",)
    for leg in LEGS:
        calf = urdf.joints[f"{leg}_calf_joint"]
        foot = urdf.joints[f"{leg}_foot_fixed"]
        thigh_length, calf_length = -calf.origin_xyz[2], -foot.origin_xyz[2]
        assert 0.2 <= thigh_length <= 0.213 + 1e-9
        assert 0.2 <= calf_length <= 0.213 + 1e-9
        assert foot.type == "fixed" and foot.child == f"{leg}_foot"
        hip, thigh = urdf.joints[f"{leg}_hip_joint"], urdf.joints[f"{leg}_thigh_joint"]
        assert hip.axis == (1.0, 0.0, 0.0) and thigh.axis == calf.axis == (0.0, 1.0, 0.0)
        assert (hip.effort_nm, thigh.effort_nm, calf.effort_nm) == (25.0, 25.0, 35.0)
        assert (hip.lower_rad, hip.upper_rad) == (-0.86, 0.86)
        assert (calf.lower_rad, calf.upper_rad) == (-2.8, -0.9)
    assert urdf.collision_sphere_radii_m["FR_foot"] == 0.02


def test_only_primitive_geometry() -> None:
    root = ET.fromstring(URDF.read_text())
    for tag in ("visual", "collision"):
        elements = list(root.iter(tag))
        assert elements
        for element in elements:
            kinds = {child.tag for child in element.find("geometry")}  # type: ignore[union-attr]
            assert kinds <= {"box", "cylinder", "sphere"}, kinds


def test_standing_pose_and_nominal_height_agree_with_the_spec() -> None:
    spec = load_robot_spec("stairdog")
    np.testing.assert_allclose(spec.default_pose_rad, np.tile(STANDING_POSE_RAD, 4))
    height = stance_height_m(QuadrupedParams(), spec.default_pose_rad)
    assert spec.nominal_base_height_m == pytest.approx(height, abs=1e-3)
    assert 0.28 <= height <= 0.32


def test_forward_kinematics_conventions() -> None:
    params = QuadrupedParams()
    straight = foot_positions_m(params, (0.0, 0.0, 0.0))
    np.testing.assert_allclose(straight[:, 2], -(params.thigh_length_m + params.calf_length_m))
    standing = foot_positions_m(params, STANDING_POSE_RAD)
    hips = np.array([params.hip_position_m(leg) for leg in LEGS])
    np.testing.assert_allclose(standing[:, 0], hips[:, 0], atol=1e-12)  # feet under the hips
    # positive thigh swings the foot backward; positive hip angle moves every foot to the left
    back = foot_positions_m(params, (0.0, STANDING_POSE_RAD[1] + 0.1, STANDING_POSE_RAD[2]))
    assert np.all(back[:, 0] < standing[:, 0])
    left = foot_positions_m(params, (0.1, *STANDING_POSE_RAD[1:]))
    assert np.all(left[:, 1] > standing[:, 1])
    with pytest.raises(ConfigError, match="joint_angles_rad"):
        foot_positions_m(params, (0.0, 0.8))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"thigh_length_m": 0.05}, r"thigh_length_m must be in \[0.1, 1\] m"),
        ({"trunk_mass_kg": 0.0}, r"trunk_mass_kg must be in \(0, inf\) kg"),
        ({"calf_limits_rad": (-0.9, -2.8)}, "calf_limits_rad must be"),
        ({"calf_radius_m": 0.03}, "calf_radius_m must be smaller than foot_radius_m"),
    ],
)
def test_bad_params_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QuadrupedParams(**changes)  # type: ignore[arg-type]


def test_other_parameters_generate_a_loadable_robot(tmp_path: Path) -> None:
    params = QuadrupedParams(name="longdog", thigh_length_m=0.25, calf_length_m=0.25)
    path = tmp_path / "longdog.urdf"
    path.write_text(generate_urdf(params))
    pb = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    try:
        body = pb.loadURDF(str(path), useFixedBase=True)
        assert pb.getBodyInfo(body)[1].decode() == "longdog"
        links = {pb.getJointInfo(body, i)[12].decode(): i for i in range(pb.getNumJoints(body))}
        foot = pb.getLinkState(body, links["FR_foot"], computeForwardKinematics=True)[4]
        np.testing.assert_allclose(foot, foot_positions_m(params, (0.0, 0.0, 0.0))[0], atol=1e-6)
    finally:
        pb.disconnect()
