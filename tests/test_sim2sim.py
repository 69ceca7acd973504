"""stairbot sim2sim: the MuJoCo world matches the PyBullet one (joints, stairs, standing), and a real
bundle runs end to end in both simulators."""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml
from training.helpers import PPO_TINY

from stairbot.cli import main
from stairbot.deploy import projected_gravity
from stairbot.envs.config import load_env_config
from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.errors import StairbotError
from stairbot.robots.spec import RobotSpec, load_robot_spec
from stairbot.sim.actuators import PDActuator
from stairbot.sim2sim.mujoco_world import TERRAIN_GROUP, ContactSettings, MujocoWorld, effective_friction
from stairbot.sim2sim.runner import (
    EpisodeOutcome,
    Physics,
    PyBulletPhysics,
    Sim2SimReport,
    SimulatorSummary,
    run_sim2sim,
)
from stairbot.stats import Z_95
from stairbot.terrain.stairs import Flight, StairSpec, plan_flight


@pytest.fixture(scope="module")
def robot() -> RobotSpec:
    return load_robot_spec(load_env_config("stairs_up").robot)


def _world(robot: RobotSpec, flight: Flight, joint_names: tuple[str, ...] | None = None) -> MujocoWorld:
    return MujocoWorld(
        robot.urdf_path,
        robot.base_link,
        joint_names or robot.joint_names,
        flight,
        physics_dt_s=0.002,
        ground_friction=1.0,
        thigh_links=robot.thigh_links,
        foot_links=robot.foot_links,
        foot_friction=robot.foot_friction,
    )


def test_joints_are_read_and_driven_in_the_given_order(robot: RobotSpec) -> None:
    order = tuple(reversed(robot.joint_names))  # a bundle may list them in any order
    world = _world(robot, plan_flight(StairSpec()), order)
    m = world.model
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, int(np.flatnonzero(m.jnt_qposadr == a)[0]))
             for a in world.qpos_adr]  # fmt: skip
    assert tuple(names) == order
    targets = np.linspace(-0.5, 0.5, len(order))
    world.reset(np.array([0.0, 0.0, 1.0]), 0.0, targets)
    q, qd = world.joints()
    np.testing.assert_allclose(q, targets)
    np.testing.assert_allclose(qd, 0.0)
    # One free joint for the base, then hinge joints only; feet are bodies of their own.
    assert m.njnt == len(order) + 1 and m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert all(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, foot) >= 0 for foot in robot.foot_links)


def test_unknown_bundle_joint_is_a_clear_error(robot: RobotSpec) -> None:
    with pytest.raises(Exception, match="no joints"):
        _world(robot, plan_flight(StairSpec()), (*robot.joint_names[:-1], "tail_joint"))


@pytest.mark.parametrize(
    "spec",
    [
        StairSpec(riser_m=0.12, direction="up"),
        StairSpec(riser_m=0.15, tread_m=0.25, direction="down"),
        StairSpec(riser_m=0.10, nosing_m=0.03, direction="up"),
        StairSpec(riser_m=0.10, nosing_m=0.03, direction="down"),
    ],
    ids=["up", "down", "up-nosing", "down-nosing"],
)
def test_stair_heights_match_the_flight(robot: RobotSpec, spec: StairSpec) -> None:
    flight = plan_flight(spec)
    world = _world(robot, flight)
    world.reset(np.array([-3.0, 5.0, 3.0]), 0.0, robot.default_pose_rad)  # robot out of the way
    rng = np.random.default_rng(0)
    # Random points over the arena and off its sides, plus points just either side of every edge.
    xs = np.concatenate([rng.uniform(-1.0, flight.end_x_m + 1.0, 200), flight.edges_x_m + 0.01,
                         flight.edges_x_m - 0.01])  # fmt: skip
    ys = np.concatenate([rng.uniform(-1.5, 1.5, 200), np.zeros(2 * flight.num_steps)])
    heights = world.terrain_heights(np.column_stack([xs, ys]))
    expected = flight.height_at(xs, ys, include_nosing=True)
    np.testing.assert_allclose(heights, expected, atol=1e-9)


def test_robot_stands_for_two_seconds_on_the_default_pose(robot: RobotSpec) -> None:
    world = _world(robot, plan_flight(StairSpec()))
    world.reset(np.array([0.0, 0.0, robot.nominal_base_height_m + 0.02]), 0.0, robot.default_pose_rad)
    pd = PDActuator(robot.kp, robot.kd, robot.torque_limits_nm)
    for _ in range(round(2.0 / world.physics_dt_s)):  # hard contacts: the 2 cm drop rocks ~1.5 s
        q, qd = world.joints()
        world.step(pd.torques(robot.default_pose_rad, q, qd))
    pos, quat, gyro = world.base()
    tilt = np.arccos(-projected_gravity(quat)[2])
    assert tilt < 0.15, f"tilted {tilt:.3f} rad"
    assert pos[2] > 0.8 * robot.nominal_base_height_m, f"base at {pos[2]:.3f} m"
    assert np.linalg.norm(gyro) < 0.1
    base_contact, thigh_contact = world.contacts()
    assert not base_contact and not thigh_contact
    feet = {world.model.body(b).name for b in world.contact_bodies()}
    assert feet == set(robot.foot_links)  # standing on its four feet, nothing else touches
    # Contacts use PyBullet's effective friction: feet (spec foot_friction) and other links (Bullet's
    # default 0.5) times the ground's 1.0; the terrain geoms carry 0 so that MuJoCo's max picks those.
    m = world.model
    foot_geoms = np.isin(m.geom_bodyid, [m.body(name).id for name in robot.foot_links])
    terrain = m.geom_group == TERRAIN_GROUP
    assert m.geom_friction[foot_geoms & ~terrain, 0] == pytest.approx(
        effective_friction(1.0, robot.foot_friction)
    )
    assert m.geom_friction[~foot_geoms & ~terrain, 0] == pytest.approx(effective_friction(1.0))
    assert np.all(m.geom_friction[terrain, 0] == 0.0)


def _stand(physics: Physics, spawn_m: np.ndarray, robot: RobotSpec, seconds: float) -> tuple[float, float]:
    """Hold the default pose on PD from `spawn_m`: (base height m, pitch rad) at the end."""
    physics.reset(spawn_m, 0.0, robot.default_pose_rad)
    pd = PDActuator(robot.kp, robot.kd, robot.torque_limits_nm)
    for _ in range(round(seconds / 0.002)):
        q, qd = physics.joints()
        physics.step(pd.torques(robot.default_pose_rad, q, qd))
    pos, quat, _ = physics.base()
    return float(pos[2]), float(np.arcsin(projected_gravity(quat)[0]))


def test_the_trunk_against_a_riser_is_a_base_contact(robot: RobotSpec) -> None:
    """Base contact (the failure behind most lost climbs) is seen in MuJoCo too: the trunk's front
    pushed into the first riser touches it, the same robot standing clear of it does not."""
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.25))
    world = _world(robot, flight)
    edge = float(flight.edges_x_m[0])
    height = 0.18  # trunk (0.11 m tall) from 0.125 to 0.235 m: level with the 0.15 m step's top
    for base_x, touches in ((edge - 0.15, True), (edge - 0.35, False)):  # trunk half-length 0.19 m
        world.reset(np.array([base_x, 0.0, height]), 0.0, robot.default_pose_rad)
        mujoco.mj_step(world.model, world.data)
        assert world.contacts()[0] is touches, f"base at x {base_x:.2f}, riser at {edge:.2f}"
        touching = {world.model.body(b).name for b in world.contact_bodies()}
        assert (robot.base_link in touching) is touches


@pytest.mark.parametrize("drop_m", [0.0, 0.05])
def test_standing_and_landing_match_pybullet(robot: RobotSpec, drop_m: float) -> None:
    """The contact settings (solref 2 x dt, elliptic cone) hold the PyBullet stance to the millimetre:
    MuJoCo's defaults sink the base 11 mm and pitch it 0.055 rad more (mujoco_world docstring)."""
    env = StairClimbEnv("stairs_up", overrides={"stairs.riser_m": 0.10, "curriculum.adaptive": False})
    try:
        env.reset(seed=0)
        assert env.config.sim.physics_dt_s == 0.002
        bullet = PyBulletPhysics(env.world, robot.joint_names)
        spawn, _, _ = bullet.base()
        spawn = spawn + np.array([0.0, 0.0, drop_m])
        z_bullet, pitch_bullet = _stand(bullet, spawn, robot, 2.0)
        z_mujoco, pitch_mujoco = _stand(_world(robot, env.flight), spawn, robot, 2.0)
    finally:
        env.close()
    assert abs(z_mujoco - z_bullet) < 0.002, f"base {z_mujoco:.4f} m in MuJoCo, {z_bullet:.4f} m in PyBullet"
    assert abs(pitch_mujoco - pitch_bullet) < 0.01, f"pitch {pitch_mujoco:.4f} vs {pitch_bullet:.4f} rad"


def test_contact_settings_reject_what_mujoco_cannot_integrate() -> None:
    with pytest.raises(StairbotError, match="solref_timeconst_steps >= 2"):
        ContactSettings(solref_timeconst_steps=1.0)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle: PPO trained for 256 steps and exported (as tests/export/conftest.py does)."""
    from stairbot.export.bundle import export_run
    from stairbot.training import trainer
    from stairbot.training.recipe import load_recipe

    root = tmp_path_factory.mktemp("sim2sim")
    trainer.train(load_recipe("ppo_stairs", list(PPO_TINY)), root / "run")
    return export_run(root / "run", root / "bundle")


def _report(pybullet: list[bool], mujoco: list[bool]) -> Sim2SimReport:
    """A report of these per-seed successes (seeds 0..n-1), as run_sim2sim assembles one."""

    def summary(name: str, successes: list[bool]) -> SimulatorSummary:
        results = [
            EpisodeOutcome(i, ok, 6 if ok else 3, 6, "success" if ok else "fall", 100)
            for i, ok in enumerate(successes)
        ]
        return SimulatorSummary.from_results(name, results, wall_s=1.0)

    n = len(pybullet)
    return Sim2SimReport(
        "b", "up", 0.1, 0.3, 6, 0.5, n, 0, summary("pybullet", pybullet), summary("mujoco", mujoco)
    )


def test_success_difference_interval_is_paired_by_seed() -> None:
    # Per-seed differences 0, -1, 0, +1: mean 0, sample sd sqrt(2/3), half width 1.96 sd / 2.
    report = _report([True, True, True, False], [True, False, True, True])
    low, high = report.success_difference_ci95_points or (np.nan, np.nan)
    half = 100 * Z_95 * np.sqrt(2 / 3) / 2
    assert (low, high) == pytest.approx((-half, half))
    assert report.discordant_episodes == (1, 1)
    assert "95 % interval -80 to +80; 1 seeds only PyBullet finished, 1 only MuJoCo" in report.table()
    # Same successes and failures on every seed: no spread, however many episodes.
    same = _report([True, False] * 10, [True, False] * 10)
    assert same.success_difference_ci95_points == pytest.approx((0.0, 0.0))
    # One seed has no spread to measure.
    single = _report([True], [False])
    assert single.success_difference_ci95_points is None
    assert json.loads(single.to_json())["episodes_only_pybullet_succeeded"] == 1


@pytest.mark.slow
def test_sim2sim_runs_a_bundle_in_both_simulators(tiny_bundle: Path) -> None:
    report = run_sim2sim(tiny_bundle, riser_m=0.08, episodes=2, seed=3, max_steps=40)
    assert report.riser_m == pytest.approx(0.08) and report.direction == "up"
    for summary in (report.pybullet, report.mujoco):
        assert summary.episodes == 2
        assert [r.seed for r in summary.results] == [3, 4]
        assert all(1 <= r.length <= 40 for r in summary.results)
        assert 0.0 <= summary.success_rate <= 1.0
    data = json.loads(report.to_json())
    assert set(data) >= {"pybullet", "mujoco", "success_difference_points", "riser_m", "forward_speed_mps"}
    assert data["success_difference_points"] == pytest.approx(
        100 * (report.mujoco.success_rate - report.pybullet.success_rate)
    )
    assert "simulator | success rate | mean steps climbed | falls/episode" in report.table()


@pytest.mark.slow
def test_sim2sim_cli_writes_json(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s2s.json"
    code = main(["sim2sim", str(tiny_bundle), "--episodes", "1", "--direction", "down", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["direction"] == "down" and data["episodes"] == 1
    assert data["pybullet"]["results"][0]["length"] >= 1 and data["mujoco"]["results"][0]["length"] >= 1
    printed = capsys.readouterr().out
    assert "pybullet" in printed and "mujoco" in printed and "success difference" in printed


def test_sim2sim_plays_the_bundles_tread_whatever_range_it_trained_on(tmp_path: Path) -> None:
    from stairbot.export.bundle import export_run
    from stairbot.training import trainer
    from stairbot.training.recipe import load_recipe

    recipe = load_recipe("ppo_stairs", [*PPO_TINY, "env.stairs.tread_range_m=[0.24,0.34]"])
    trainer.train(recipe, tmp_path / "run")
    bundle = export_run(tmp_path / "run", tmp_path / "bundle")
    assert yaml.safe_load((bundle / "env.yaml").read_text())["stairs"]["tread_range_m"] == [0.24, 0.34]
    report = run_sim2sim(bundle, episodes=2, seed=3, max_steps=5)
    assert report.tread_m == recipe.env.stairs.tread_m == 0.30
    assert json.loads(report.to_json())["tread_m"] == 0.30


def test_sim2sim_rejects_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a policy bundle"):
        run_sim2sim(tmp_path)
