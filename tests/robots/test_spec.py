"""RobotSpec: loading, validation against the URDF, and agreement with PyBullet (real, DIRECT)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
import pytest
import yaml
from pybullet_utils import bullet_client

from stairbot.config import dump_yaml, read_yaml
from stairbot.errors import ConfigError, RobotSpecError
from stairbot.paths import data_dir
from stairbot.robots.spec import (
    RobotSpec,
    available_robots,
    load_robot_spec,
    read_urdf,
    validate_against_urdf,
)

SHIPPED = ("a1", "laikago", "stairdog")


@pytest.fixture(scope="module")
def client() -> Iterator[bullet_client.BulletClient]:
    pb = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    yield pb
    pb.disconnect()


def _load(pb: bullet_client.BulletClient, spec: RobotSpec) -> tuple[int, dict[str, int], dict]:
    """Load the spec's URDF at the origin; return the body, joint index and link index by name."""
    body = pb.loadURDF(str(spec.urdf_path), [0, 0, 0], useFixedBase=True)
    infos = [pb.getJointInfo(body, i) for i in range(pb.getNumJoints(body))]
    joints = {info[1].decode(): info[0] for info in infos}
    links = {info[12].decode(): info[0] for info in infos}
    return body, joints, links


def _write_spec(tmp_path: Path, robot: str = "stairdog", **changes: Any) -> Path:
    """A copy of a shipped spec in tmp_path (URDF path made absolute), with keys changed."""
    shipped = load_robot_spec(robot)
    raw = read_yaml(data_dir("urdf") / f"{robot}.yaml")
    raw["urdf"] = str(shipped.urdf_path)
    raw.update(changes)
    path = tmp_path / f"{robot}_edited.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_shipped_robots_are_listed() -> None:
    assert set(SHIPPED) <= set(available_robots())


@pytest.mark.parametrize("robot", SHIPPED)
def test_shipped_spec_loads(robot: str) -> None:
    spec = load_robot_spec(robot)
    assert spec.name == robot
    assert spec.spec_path == data_dir("urdf") / f"{robot}.yaml"
    assert spec.urdf_path.is_file() and spec.urdf_path.is_absolute()
    assert spec.num_joints == 12
    assert len(spec.joint_names) == 12 and len(set(spec.joint_names)) == 12
    assert len(spec.foot_links) == 4 and len(spec.thigh_links) == 4
    for array in (spec.default_pose_rad, spec.kp, spec.kd, spec.torque_limits_nm):
        assert array.shape == (12,) and array.dtype == np.float64
        assert not array.flags.writeable  # the spec is frozen; so are its arrays
    assert np.all(spec.kp > 0) and np.all(spec.kd >= 0) and np.all(spec.torque_limits_nm > 0)
    # policy order is FR, FL, RR, RL with (hip, thigh, calf) per leg
    legs = [name[:2] for name in spec.joint_names]
    assert legs == ["FR"] * 3 + ["FL"] * 3 + ["RR"] * 3 + ["RL"] * 3


@pytest.mark.parametrize("robot", SHIPPED)
def test_shipped_spec_matches_pybullet(client: bullet_client.BulletClient, robot: str) -> None:
    spec = load_robot_spec(robot)
    body, joints, links = _load(client, spec)
    assert client.getBodyInfo(body)[0].decode() == spec.base_link
    for name in spec.joint_names:
        assert name in joints, name
        assert client.getJointInfo(body, joints[name])[2] == pybullet.JOINT_REVOLUTE, name
    for link in (*spec.foot_links, *spec.thigh_links):
        assert link in links, link
    client.removeBody(body)


@pytest.mark.parametrize("robot", SHIPPED)
def test_nominal_base_height_matches_forward_kinematics(
    client: bullet_client.BulletClient, robot: str
) -> None:
    """Set the default pose, read the feet with getLinkState, compare with the spec's height."""
    spec = load_robot_spec(robot)
    body, joints, links = _load(client, spec)
    for name, angle in zip(spec.joint_names, spec.default_pose_rad, strict=True):
        client.resetJointState(body, joints[name], float(angle))
    # PyBullet's base position is the base's centre of mass; get the URDF link origin from it
    com, orientation = client.getBasePositionAndOrientation(body)
    local_com = client.getDynamicsInfo(body, -1)[3]
    rotation = np.reshape(client.getMatrixFromQuaternion(orientation), (3, 3))
    base_origin = np.asarray(com) - rotation @ np.asarray(local_com)
    feet = np.array(
        [client.getLinkState(body, links[f], computeForwardKinematics=True)[4] for f in spec.foot_links]
    )
    depth = base_origin[2] - feet[:, 2]
    assert np.ptp(depth) < 0.005, f"feet not level in the default pose: {depth}"
    measured = float(depth.mean()) + spec.foot_radius_m
    assert measured == pytest.approx(spec.nominal_base_height_m, abs=0.01)
    client.removeBody(body)


def test_load_by_path_with_relative_urdf(tmp_path: Path) -> None:
    shipped = data_dir("urdf")
    (tmp_path / "stairdog.urdf").write_text((shipped / "stairdog.urdf").read_text())
    (tmp_path / "mine.yaml").write_text((shipped / "stairdog.yaml").read_text())
    spec = load_robot_spec(tmp_path / "mine.yaml")
    assert spec.spec_path == tmp_path / "mine.yaml"
    assert spec.urdf_path == tmp_path / "stairdog.urdf"  # relative to the spec file, not the cwd
    assert spec == load_robot_spec("stairdog")  # spec_path does not take part in equality


def test_dump_and_reload_round_trip(tmp_path: Path) -> None:
    spec = load_robot_spec("a1")
    dump_yaml(spec, tmp_path / "a1.yaml")
    assert "spec_path" not in read_yaml(tmp_path / "a1.yaml")
    assert load_robot_spec(tmp_path / "a1.yaml") == spec


def test_unknown_robot_lists_available() -> None:
    with pytest.raises(RobotSpecError, match="no robot named 'spot'") as info:
        load_robot_spec("spot")
    for robot in SHIPPED:
        assert robot in str(info.value)


def test_missing_joint_is_named(tmp_path: Path) -> None:
    raw = read_yaml(data_dir("urdf") / "stairdog.yaml")
    joints = raw["joints"]
    joints[4] = {**joints[4], "name": "FL_knee_joint"}
    with pytest.raises(RobotSpecError, match="FL_knee_joint") as info:
        load_robot_spec(_write_spec(tmp_path, joints=joints))
    assert "FL_thigh_joint" in str(info.value)  # lists what the URDF has


@pytest.mark.parametrize("key", ["foot_links", "thigh_links"])
def test_missing_link_is_named(tmp_path: Path, key: str) -> None:
    links = [*read_yaml(data_dir("urdf") / "stairdog.yaml")[key][:3], "RL_paw"]
    with pytest.raises(RobotSpecError, match=f"{key} \\['RL_paw'\\] are not in the URDF"):
        load_robot_spec(_write_spec(tmp_path, **{key: links}))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write_spec(tmp_path, base_link="FR_hip", foot_links=["a", "b"], thigh_links=["c"])
    with pytest.raises(RobotSpecError) as info:
        load_robot_spec(path)
    message = str(info.value)
    assert "base_link 'FR_hip' must be the URDF root link" in message and "['trunk']" in message
    assert "['a', 'b']" in message and "['c']" in message


def test_fixed_joint_is_rejected(tmp_path: Path) -> None:
    raw = read_yaml(data_dir("urdf") / "stairdog.yaml")
    joints = raw["joints"]
    joints[2] = {**joints[2], "name": "FR_foot_fixed"}
    with pytest.raises(RobotSpecError, match="'FR_foot_fixed' is 'fixed' in the URDF"):
        load_robot_spec(_write_spec(tmp_path, joints=joints))


def test_default_pose_outside_urdf_limits(tmp_path: Path) -> None:
    raw = read_yaml(data_dir("urdf") / "stairdog.yaml")
    joints = raw["joints"]
    joints[2] = {**joints[2], "default_rad": 0.3}  # the calf only bends backward
    with pytest.raises(RobotSpecError, match=r"'FR_calf_joint' default_rad 0.3 is outside"):
        load_robot_spec(_write_spec(tmp_path, joints=joints))


def test_continuous_joints_have_no_limit_check() -> None:
    urdf = read_urdf(load_robot_spec("laikago").urdf_path)
    joint = urdf.joints["FR_lower_leg_2_upper_leg_joint"]
    assert joint.type == "continuous" and joint.lower_rad is None


def test_foot_radius_must_match_the_urdf(tmp_path: Path) -> None:
    with pytest.raises(RobotSpecError, match=r"foot_radius_m 0\.05 differs"):
        load_robot_spec(_write_spec(tmp_path, foot_radius_m=0.05))


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mass_kg"):
        load_robot_spec(_write_spec(tmp_path, mass_kg=12.0))
    raw = read_yaml(data_dir("urdf") / "stairdog.yaml")
    joints = raw["joints"]
    joints[0] = {**joints[0], "gear_ratio": 6.33}
    with pytest.raises(ConfigError, match=r"joints\[0\]\.gear_ratio"):
        load_robot_spec(_write_spec(tmp_path, joints=joints))


def test_spec_path_is_not_a_yaml_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spec_path"):
        load_robot_spec(_write_spec(tmp_path, spec_path="/elsewhere.yaml"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kp_nm_per_rad", -20.0, r"joints\[1\]\.kp_nm_per_rad must be in \(0, inf\) N m/rad"),
        ("kp_nm_per_rad", 0.0, r"joints\[1\]\.kp_nm_per_rad must be in \(0, inf\)"),
        ("kd_nms_per_rad", -0.1, r"joints\[1\]\.kd_nms_per_rad must be in \[0, inf\)"),
        ("torque_limit_nm", 0.0, r"joints\[1\]\.torque_limit_nm must be in \(0, inf\)"),
        ("default_rad", float("nan"), r"joints\[1\]\.default_rad must be a finite number"),
        ("kp_nm_per_rad", "stiff", r"joints\[1\]\.kp_nm_per_rad must be a number"),
    ],
)
def test_bad_joint_values(tmp_path: Path, field: str, value: object, message: str) -> None:
    raw = read_yaml(data_dir("urdf") / "stairdog.yaml")
    joints = raw["joints"]
    joints[1] = {**joints[1], field: value}
    with pytest.raises(ConfigError, match=message):
        load_robot_spec(_write_spec(tmp_path, joints=joints))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nominal_base_height_m": 0.0}, r"nominal_base_height_m must be in \(0, 5\] m"),
        ({"foot_radius_m": -0.01}, r"foot_radius_m must be in \[0, 0.5\] m"),
        ({"joints": []}, "joints must list at least one"),
        ({"foot_links": []}, "foot_links must list at least one"),
        ({"foot_links": ["FR_foot", "FR_foot"]}, r"foot_links must not repeat names.*FR_foot"),
        ({"thigh_links": ["FR_foot"]}, "thigh_links must not repeat foot links"),
        ({"urdf": ""}, "urdf must be a URDF path"),
    ],
)
def test_bad_spec_values(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_robot_spec(_write_spec(tmp_path, **changes))


def test_repeated_joint_is_rejected(tmp_path: Path) -> None:
    joints = read_yaml(data_dir("urdf") / "stairdog.yaml")["joints"]
    with pytest.raises(ConfigError, match=r"joints must not repeat names.*FR_hip_joint"):
        load_robot_spec(_write_spec(tmp_path, joints=[*joints, joints[0]]))


def test_missing_urdf_file(tmp_path: Path) -> None:
    with pytest.raises(RobotSpecError, match="does not exist"):
        load_robot_spec(_write_spec(tmp_path, urdf="nowhere.urdf"))


def test_pybullet_data_prefix_resolves() -> None:
    import pybullet_data

    spec = load_robot_spec("a1")
    assert spec.urdf_path == (Path(pybullet_data.getDataPath()) / "a1" / "a1.urdf").resolve()


def test_validate_returns_urdf_info_with_merge_targets() -> None:
    spec = load_robot_spec("stairdog")
    urdf = validate_against_urdf(spec)
    assert urdf.root_links == ("trunk",)
    # URDF_MERGE_FIXED_LINKS folds each foot into its calf, 0.213 m below the knee
    link, offset = urdf.movable_ancestor("FR_foot")
    assert link == "FR_calf"
    assert offset == pytest.approx((0.0, 0.0, -0.213))
    assert urdf.movable_ancestor("FR_calf") == ("FR_calf", (0.0, 0.0, 0.0))


def test_rpy_matrix_matches_pybullet(client: bullet_client.BulletClient) -> None:
    from stairbot.robots.spec import rpy_matrix

    rpy = (0.3, -1.1, 2.0)
    expected = client.getMatrixFromQuaternion(client.getQuaternionFromEuler(rpy))
    np.testing.assert_allclose(rpy_matrix(rpy), np.reshape(expected, (3, 3)), atol=1e-6)
