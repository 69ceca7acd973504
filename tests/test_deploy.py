"""stairbot.deploy against a real bundle exported from a tiny real training run.

The module fixture trains PPO for 128 steps (the tiny budget of tests/training/helpers.py), exports
the best checkpoint and loads the bundle; nothing is mocked. The tests check that every runtime
computes the same function (SB3, ONNX in onnxruntime, TorchScript, deploy's numpy forward pass), that
loading really verifies hashes and golden vectors, that ObservationBuilder rebuilds the env's
observation from raw robot signals, that the deploy runtime drives the simulator exactly like the SB3
policy, and that deploy.py runs alone without torch, SB3, Gymnasium, PyBullet or stairbot.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from stairbot import deploy
from stairbot.deploy import (
    BundleError,
    BundleMetadata,
    BundlePolicy,
    EmergencyStop,
    FixedRateLoop,
    ObservationBuilder,
    TrotGenerator,
    load_bundle,
    yaw_from_quaternion,
)
from stairbot.envs.config import HeightSource
from stairbot.export.bundle import BUNDLE_FILES, export_run
from stairbot.export.policy_graph import load_npz
from stairbot.robots.spec import load_robot_spec
from stairbot.sim.actuators import PDActuator
from stairbot.training import trainer
from stairbot.training.policy import SB3Policy, load_policy, policy_checkpoint
from stairbot.training.recipe import Recipe, load_recipe
from stairbot.training.trainer import eval_overrides
from stairbot.training.vec import ENV_ID

# tests/training/helpers.py PPO_TINY, with two evaluations so that `best/` exists.
TINY_PPO = (
    "policy.net_arch=[16]",
    "torch_threads=1",
    "env.stairs.num_steps=2",
    "env.termination.min_base_height_ratio=0.9",
    "eval.episodes=1",
    "checkpoint.keep=2",
    "ppo.n_steps=64",
    "ppo.batch_size=64",
    "ppo.n_epochs=1",
    "n_envs=1",
    "total_timesteps=128",
    "checkpoint.every_steps=64",
    "eval.every_steps=64",
)
PARITY_ATOL_RAD = 1e-5
# torch 2.13 deprecates TorchScript (the exporter's policy.pt); the bundle still carries it.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
HEAVY_MODULES = ("torch", "stable_baselines3", "gymnasium", "pybullet")
# Longer episodes than the tiny recipe's (whose robot "falls" below 0.9 x nominal height in ~8 steps).
LONG_EPISODES = {"termination.min_base_height_ratio": 0.4}


@dataclass(frozen=True)
class Exported:
    run: Path
    recipe: Recipe
    bundle: Path
    sb3: SB3Policy

    def make_env(
        self, max_episode_steps: int | None = None, overrides: dict[str, Any] | None = None
    ) -> gym.Env:
        """The run's evaluation env (its env.yaml with the evaluation overrides, like the exporter's),
        with more `overrides` and another time limit if given."""
        kwargs: dict[str, Any] = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        return gym.make(
            ENV_ID,
            preset=str(self.run / "env.yaml"),
            overrides={**eval_overrides(self.recipe), **(overrides or {})},
            **kwargs,
        )


def _train_and_export(root: Path, *options: str) -> Exported:
    """The tiny PPO run with `options` on top, trained and exported under `root`."""
    recipe = load_recipe("ppo_stairs", [*TINY_PPO, *options])
    trainer.train(recipe, root / "run")
    export_run(root / "run", root / "bundle")
    return Exported(root / "run", recipe, root / "bundle", load_policy(policy_checkpoint(root / "run")))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _train_and_export(tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def gait_exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The same tiny run with the gait prior (a trot the policy's targets ride on, with a stride) on."""
    return _train_and_export(
        tmp_path_factory.mktemp("deploy-gait"),
        "env.control.gait.enabled=true",
        "env.control.gait.stride_rad=0.3",
    )


@pytest.fixture(scope="module")
def history_exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The same tiny run observing its previous three observations (the proprio_history term)."""
    return _train_and_export(tmp_path_factory.mktemp("deploy-history"), "env.observation.history_steps=3")


@pytest.fixture(scope="module")
def centreline_exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The same tiny run steered back toward the flight's centre line (a steep gain, so the spawn's
    few cm off it turn the command visibly)."""
    return _train_and_export(
        tmp_path_factory.mktemp("deploy-centreline"), "env.command.centreline_gain_rad_per_m=2.0"
    )


@pytest.fixture(scope="module")
def policy(exported: Exported) -> BundlePolicy:
    return load_bundle(exported.bundle)


@pytest.fixture(params=["joint_targets", "gait_prior", "history", "centreline"])
def action_space(request: pytest.FixtureRequest) -> tuple[Exported, BundlePolicy]:
    """Each kind of bundle in turn: the plain one, one trained with the gait prior, one that
    observes its previous observations, one whose command steers toward the centre line."""
    fixture = {
        "joint_targets": "exported",
        "gait_prior": "gait_exported",
        "history": "history_exported",
        "centreline": "centreline_exported",
    }
    exported: Exported = request.getfixturevalue(fixture[request.param])
    return exported, load_bundle(exported.bundle)


@pytest.fixture
def bundle_copy(exported: Exported, tmp_path: Path) -> Path:
    """A private copy of the bundle for tests that damage it."""
    return Path(shutil.copytree(exported.bundle, tmp_path / "bundle"))


def _rehash(bundle: Path, name: str) -> None:
    """Update policy.json's hash of `name`, as an attacker or a careless edit would."""
    meta_path = bundle / "policy.json"
    meta = json.loads(meta_path.read_text())
    data = (bundle / name).read_bytes()
    meta["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    meta_path.write_text(json.dumps(meta, indent=2))


def _edit_metadata(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    meta_path = bundle / "policy.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))


def _recorded_observations(exported: Exported, steps: int, seed: int = 3) -> np.ndarray:
    """Observations of the SB3 policy driving the env (resetting at episode ends)."""
    env = exported.make_env(overrides=LONG_EPISODES)
    try:
        observations = []
        obs, _ = env.reset(seed=seed)
        for _ in range(steps):
            observations.append(obs)
            obs, _, terminated, truncated, _ = env.step(exported.sb3.act(obs))
            if terminated or truncated:
                obs, _ = env.reset()
        return np.array(observations, np.float32)
    finally:
        env.close()


# ---- 1. every runtime computes the same function --------------------------------------------------


@pytest.mark.parametrize("source", ["random", "recorded"])
def test_sb3_onnx_torchscript_numpy_parity(exported: Exported, policy: BundlePolicy, source: str) -> None:
    rng = np.random.default_rng(0)
    if source == "random":
        mean, std = exported.sb3.obs_mean, exported.sb3.obs_std
        observations = mean + 3.0 * std * rng.standard_normal((200, mean.shape[0]))
        observations[:8] = rng.uniform(-100.0, 100.0, (8, mean.shape[0]))  # reaches every clip
        observations = observations.astype(np.float32)
    else:
        observations = _recorded_observations(exported, 200)

    spec = load_robot_spec(exported.recipe.env.robot)
    scale = exported.recipe.env.control.action_scale_vector(spec.num_joints)
    sb3 = np.array([spec.default_pose_rad + scale * exported.sb3.act(obs) for obs in observations])
    onnx = np.array([policy.act(obs) for obs in observations])
    numpy_backend = load_bundle(exported.bundle, backend="numpy")
    numpy_out = np.array([numpy_backend.act(obs) for obs in observations])
    script = torch.jit.load(str(exported.bundle / "policy.pt"))
    with torch.no_grad():
        torchscript = script(torch.from_numpy(observations)).numpy()
    reference = load_npz(exported.bundle / "weights.npz").forward(observations)  # policy_graph, float64

    assert onnx.shape == (len(observations), policy.num_joints)
    for name, got in {
        "onnx": onnx,
        "torchscript": torchscript,
        "numpy": numpy_out,
        "graph": reference,
    }.items():
        np.testing.assert_allclose(got, sb3, rtol=0, atol=PARITY_ATOL_RAD, err_msg=f"{name} vs SB3")
    np.testing.assert_allclose(policy.act_batch(observations), onnx, rtol=0, atol=1e-6)
    assert policy.nonfinite_inputs == 0


def test_load_reports_golden_error_and_metadata(exported: Exported, policy: BundlePolicy) -> None:
    meta = json.loads((exported.bundle / "policy.json").read_text())
    assert 0.0 <= policy.golden_max_error_rad <= meta["golden"]["atol_rad"]
    assert policy.joint_names == tuple(meta["robot"]["joint_names"])
    np.testing.assert_array_equal(policy.default_joint_pos_rad, meta["robot"]["default_joint_pos_rad"])
    np.testing.assert_array_equal(policy.kd_nms_per_rad, meta["robot"]["kd_nms_per_rad"])
    assert policy.dt_s == pytest.approx(exported.recipe.env.sim.control_dt_s)
    assert [t.name for t in policy.observation_terms] == [t["name"] for t in meta["observation"]["terms"]]
    # action <-> targets round trip, and the stand pose is the zero action
    action = np.linspace(-1.0, 1.0, policy.num_joints).astype(np.float32)
    np.testing.assert_allclose(
        policy.action_from_targets(policy.targets_from_action(action)), action, atol=1e-6
    )
    np.testing.assert_array_equal(policy.action_from_targets(policy.default_joint_pos_rad), 0.0)


# ---- 2. loading verifies hashes and golden vectors --------------------------------------------------


@pytest.mark.parametrize("backend", deploy.BACKENDS)
def test_edited_golden_outputs_fail_the_golden_check(bundle_copy: Path, backend: str) -> None:
    with np.load(bundle_copy / "golden.npz", allow_pickle=False) as data:
        inputs, outputs = data["inputs"], data["outputs"].copy()
    outputs[5, 2] += 1e-3
    np.savez(bundle_copy / "golden.npz", inputs=inputs, outputs=outputs)
    with pytest.raises(BundleError, match=r"golden\.npz does not match policy\.json: sha256 expected"):
        load_bundle(bundle_copy, backend=backend)
    _rehash(bundle_copy, "golden.npz")
    with pytest.raises(BundleError, match=r"max error 0\.001 rad > atol 1e-05 rad \(vector 5"):
        load_bundle(bundle_copy, backend=backend)


def test_rehashed_weights_fail_the_golden_check(bundle_copy: Path) -> None:
    with np.load(bundle_copy / "weights.npz", allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["output_bias"] = arrays["output_bias"] + 0.01
    np.savez(bundle_copy / "weights.npz", **arrays)
    _rehash(bundle_copy, "weights.npz")
    load_bundle(bundle_copy, backend="onnxruntime")  # policy.onnx is intact
    with pytest.raises(BundleError, match=r"numpy backend does not reproduce golden\.npz: max error"):
        load_bundle(bundle_copy, backend="numpy")


def test_tampered_onnx_is_rejected_by_its_hash(bundle_copy: Path) -> None:
    expected = json.loads((bundle_copy / "policy.json").read_text())["files"]["policy.onnx"]["sha256"]
    data = bytearray((bundle_copy / "policy.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle_copy / "policy.onnx").write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(BundleError, match=r"policy\.onnx does not match policy\.json") as info:
        load_bundle(bundle_copy)
    assert expected in str(info.value) and actual in str(info.value)
    # A fixed-up hash does not help: the flipped weight bit changes the outputs, or the file won't load.
    _rehash(bundle_copy, "policy.onnx")
    with pytest.raises(BundleError, match=r"policy\.onnx|golden\.npz"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_missing_file_is_named(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    for backend in deploy.BACKENDS:  # every listed file is checked, used by the backend or not
        with pytest.raises(BundleError, match=rf"{re.escape(name)} is listed in policy\.json but missing"):
            load_bundle(bundle_copy, backend=backend)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something-else"), "format is 'something-else'"),
        (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
        (lambda m: m["robot"].pop("joint_names"), "missing key 'robot.joint_names'"),
        (lambda m: m["robot"].update(kp_nm_per_rad=[1.0]), r"'robot.kp_nm_per_rad' must be 12"),
        (lambda m: m["observation"].update(size=70), "cover 69 entries, observation.size is 70"),
        (lambda m: m["files"].pop("golden.npz"), "lists no hash for golden.npz"),
        (lambda m: m["files"].update({"../x": {"sha256": "0"}}), "not a plain file name"),
    ],
)
def test_bad_metadata_is_a_clear_error(
    bundle_copy: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    _edit_metadata(bundle_copy, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"policy\.json is missing"):
        load_bundle(tmp_path)
    (tmp_path / "policy.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)
    with pytest.raises(ValueError, match="backend must be one of"):
        load_bundle(tmp_path, backend="tensorrt")


# ---- 3. bad observations ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", deploy.BACKENDS)
def test_wrong_shape_and_nonfinite_observations(exported: Exported, backend: str) -> None:
    policy = load_bundle(exported.bundle, backend=backend)
    n = policy.observation_size
    for shape in [(n - 1,), (n + 1,), (1, n), ()]:
        with pytest.raises(
            ValueError, match=rf"observation must have shape \({n},\).*got {re.escape(str(shape))}"
        ):
            policy.act(np.zeros(shape, np.float32))
    assert policy.steps == 0

    finite = _recorded_observations(exported, 2)[1]
    moving = policy.act(finite)
    assert np.any(policy.last_action != 0.0)
    for bad in (math.nan, math.inf, -math.inf):
        obs = finite.copy()
        obs[7] = bad
        targets = policy.act(obs)
        assert targets.dtype == np.float32 and np.all(np.isfinite(targets))
        np.testing.assert_array_equal(targets, policy.default_joint_pos_rad.astype(np.float32))
        np.testing.assert_array_equal(policy.last_action, 0.0)  # the stand pose is the zero action
    assert policy.nonfinite_inputs == 3 and policy.consecutive_nonfinite_inputs == 3
    np.testing.assert_array_equal(policy.act(finite), moving)
    assert policy.consecutive_nonfinite_inputs == 0 and policy.nonfinite_inputs == 3
    assert policy.steps == 5

    batch = np.stack([finite, finite])
    batch[1, 0] = math.nan
    out = policy.act_batch(batch)
    np.testing.assert_array_equal(out[0], moving)
    np.testing.assert_array_equal(out[1], policy.default_joint_pos_rad.astype(np.float32))
    assert policy.nonfinite_inputs == 4


# ---- 4. ObservationBuilder rebuilds the env's observation -----------------------------------------


def _env_signals(env: gym.Env) -> dict[str, Any]:
    """What a robot's sensors would report, read from the simulator's raw state."""
    state = env.unwrapped.world.read_state()  # type: ignore[attr-defined]
    return {
        "imu_quat_xyzw": state.base_quat_xyzw,
        "gyro_radps": state.base_ang_vel_body_radps,
        "joint_pos_rad": state.joint_pos_rad,
        "joint_vel_radps": state.joint_vel_radps,
        "base_pos_m": state.base_pos_m,
    }


def _terrain_heights(env: gym.Env, points_xy: np.ndarray) -> np.ndarray:
    """The terrain's heights at world xy points, from the same source the env's scan uses."""
    unwrapped: Any = env.unwrapped
    if unwrapped.config.observation.height_scan.source is HeightSource.RAYS:
        return unwrapped.world.terrain_heights(points_xy)
    return unwrapped.flight.height_at(points_xy[:, 0], points_xy[:, 1])  # the episode's flight


def _build(builder: ObservationBuilder, env: gym.Env, forward_speed_mps: float) -> np.ndarray:
    signals = _env_signals(env)
    base = signals.pop("base_pos_m")
    yaw = yaw_from_quaternion(signals["imu_quat_xyzw"])
    points = builder.scan_points_xy_m(base[:2], yaw)
    return builder.build(
        **signals,
        # The flight is centred on y = 0: the base's y is its offset from the centre line.
        command=builder.command(forward_speed_mps, yaw_rad=yaw, lateral_offset_m=float(base[1])),
        scan_heights_m=_terrain_heights(env, points) - base[2],
    )


@pytest.mark.parametrize("source", ["flight", "rays"])
def test_observation_builder_reproduces_env_observation(
    action_space: tuple[Exported, BundlePolicy], source: str
) -> None:
    exported, policy = action_space
    env = exported.make_env(overrides={**LONG_EPISODES, "observation.height_scan.source": source})
    builder = ObservationBuilder(policy)
    assert builder.has_height_scan
    gravity_z, yaw_rates = [], []
    try:
        for seed in (0, 1):
            obs, info = env.reset(seed=seed)
            policy.reset()
            vx = float(info["command"][0])
            for step in range(60):
                built = _build(builder, env, vx)
                np.testing.assert_allclose(built, obs, rtol=0, atol=1e-5, err_msg=f"seed {seed} step {step}")
                gravity_z.append(obs[policy.metadata.term("projected_gravity").start + 2])
                yaw_rates.append(obs[policy.metadata.term("command").start + 2])
                policy.act(built)  # its targets carry the gait offsets (if any); the env adds its own
                obs, _, terminated, truncated, _ = env.step(policy.last_action)
                if terminated or truncated:
                    break
    finally:
        env.close()
    assert np.ptp(gravity_z) > 0 and np.ptp(yaw_rates) > 0  # the comparison saw tilt and steering


def test_observation_builder_validates_inputs(policy: BundlePolicy) -> None:
    builder = policy.observation_builder()
    j, p = policy.num_joints, policy.metadata.num_scan_points
    good: dict[str, Any] = {
        "imu_quat_xyzw": [0.0, 0.0, 0.0, 1.0],
        "gyro_radps": np.zeros(3),
        "joint_pos_rad": policy.default_joint_pos_rad,
        "joint_vel_radps": np.zeros(j),
        "command": [0.5, 0.0, 0.0],
        "scan_heights_m": np.full(p, -policy.metadata.nominal_base_height_m),
    }
    policy.reset()
    obs = builder.build(**good)
    assert obs.shape == (policy.observation_size,) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[builder.metadata.term("projected_gravity").slice], [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(obs[builder.metadata.term("height_scan").slice], 0.0)  # flat floor
    for key, bad in [("joint_pos_rad", np.zeros(j - 1)), ("imu_quat_xyzw", np.zeros(3)), ("command", [1.0])]:
        with pytest.raises(ValueError, match="must have shape"):
            builder.build(**{**good, key: bad})
    with pytest.raises(ValueError, match="observes a height scan"):
        builder.build(**{**good, "scan_heights_m": None})
    # A broken IMU reading reaches act() as NaN, which answers with the stand pose.
    broken = builder.build(**{**good, "imu_quat_xyzw": np.zeros(4)})
    assert not np.all(np.isfinite(broken))
    assert math.isnan(builder.yaw_rate_command(math.nan))  # an unknown heading stays unknown
    # the heading controller: gain 1/s, limited to 1 rad/s, shortest way round
    assert builder.yaw_rate_command(0.2) == pytest.approx(-0.2)
    assert builder.yaw_rate_command(3.0) == -1.0
    assert builder.yaw_rate_command(3.0, target_yaw_rad=-3.0) == pytest.approx(2 * math.pi - 6.0)
    # a bundle trained without the centre-line gain ignores the offset
    assert builder.yaw_rate_command(0.0, lateral_offset_m=0.5) == 0.0


def test_a_centreline_bundle_turns_back_toward_the_middle(centreline_exported: Exported) -> None:
    policy = load_bundle(centreline_exported.bundle)
    meta = policy.metadata
    assert meta.centreline_gain_rad_per_m == 2.0 and meta.max_centreline_heading_rad == 0.3
    builder = policy.observation_builder()
    assert builder.centreline_heading_rad(0.1) == pytest.approx(-0.2)  # 0.1 m left: turn right
    assert builder.centreline_heading_rad(-1.0) == pytest.approx(0.3)  # capped
    assert builder.yaw_rate_command(0.0, lateral_offset_m=0.1) == pytest.approx(-0.2)
    assert builder.yaw_rate_command(-0.2, lateral_offset_m=0.1) == pytest.approx(0.0)  # on target


def test_observation_history_carries_a_bad_frame_for_its_length_then_forgets_it(
    history_exported: Exported, tmp_path: Path
) -> None:
    policy = load_bundle(history_exported.bundle)
    meta = policy.metadata
    assert (meta.history_steps, meta.raw["observation"]["history"]["frame_size"]) == (3, 45)
    assert "keep the first 45 floats of each obs" in (history_exported.bundle / "policy.h").read_text()
    builder = policy.observation_builder()
    signals: dict[str, Any] = {
        "imu_quat_xyzw": [0.0, 0.0, 0.0, 1.0],
        "gyro_radps": np.zeros(3),
        "joint_pos_rad": policy.default_joint_pos_rad,
        "joint_vel_radps": np.zeros(policy.num_joints),
        "command": [0.5, 0.0, 0.0],
        "scan_heights_m": np.full(meta.num_scan_points, -meta.nominal_base_height_m),
    }
    history = meta.term("proprio_history").slice
    policy.reset()
    first = builder.build(**signals)
    np.testing.assert_array_equal(first[history], np.tile(first[:45], 3))  # its own frame, three times
    policy.act(first)
    policy.act(builder.build(**{**signals, "imu_quat_xyzw": np.zeros(4)}))  # a broken IMU reading
    stand_answers = 0
    for _ in range(5):
        obs = builder.build(**signals)
        before = policy.nonfinite_inputs
        policy.act(obs)
        stand_answers += policy.nonfinite_inputs - before
    assert stand_answers == 3  # the bad frame sat in the history for three observations
    policy.reset()  # a new episode: the history starts again from the next observation
    fresh = builder.build(**signals)
    np.testing.assert_array_equal(fresh[history], np.tile(fresh[:45], 3))

    bundle = Path(shutil.copytree(history_exported.bundle, tmp_path / "bundle"))
    _edit_metadata(bundle, lambda raw: raw["observation"].update(history=None))
    edited = BundleMetadata.from_json(json.loads((bundle / "policy.json").read_text()))
    with pytest.raises(BundleError, match=r"proprio_history term but no observation\.history"):
        ObservationBuilder(BundlePolicy(bundle, edited, backend="numpy"))

    def swap_first_two_terms(raw: dict[str, Any]) -> None:  # both 3 wide: the layout stays contiguous
        terms = raw["observation"]["terms"]
        terms[0]["name"], terms[1]["name"] = terms[1]["name"], terms[0]["name"]

    bundle = Path(shutil.copytree(history_exported.bundle, tmp_path / "swapped"))
    _edit_metadata(bundle, swap_first_two_terms)
    edited = BundleMetadata.from_json(json.loads((bundle / "policy.json").read_text()))
    with pytest.raises(BundleError, match="a history frame is the observation's first terms"):
        ObservationBuilder(BundlePolicy(bundle, edited, backend="numpy"))


# ---- 5. closed loop: the deploy runtime climbs exactly like SB3 -----------------------------------


Act = Callable[[np.ndarray, dict[str, Any]], np.ndarray]  # (observation, reset info) -> action


def _episode(env: gym.Env, seed: int, act: Act) -> dict[str, Any]:
    obs, reset_info = env.reset(seed=seed)
    positions = []
    while True:
        obs, _, terminated, truncated, info = env.step(act(obs, reset_info))
        positions.append(env.unwrapped.world.read_state().base_pos_m)  # type: ignore[attr-defined]
        if terminated or truncated:
            return {
                "steps_climbed": info["steps_climbed"],
                "reason": info["termination_reason"] if terminated else "time_limit",
                "success": info["success"],
                "length": len(positions),
                "positions": np.array(positions),
            }


@pytest.mark.parametrize(
    ("overrides", "max_steps"), [({}, None), (LONG_EPISODES, 150)], ids=["recipe-eval", "long"]
)
def test_closed_loop_matches_sb3(
    action_space: tuple[Exported, BundlePolicy], overrides: dict[str, Any], max_steps: int | None
) -> None:
    exported, policy = action_space
    env = exported.make_env(max_episode_steps=max_steps, overrides=overrides)
    builder = ObservationBuilder(policy)

    def sb3_act(observation: np.ndarray, _: dict[str, Any]) -> np.ndarray:
        return exported.sb3.act(observation)

    def deploy_act(_: np.ndarray, reset_info: dict[str, Any]) -> np.ndarray:
        # The runtime never sees the env's observation: it builds its own from the raw robot state,
        # with the episode's forward-speed command (what an operator would set).
        observation = _build(builder, env, float(reset_info["command"][0]))
        policy.act(observation)
        return policy.last_action  # the env's action: the targets before any gait offsets

    results = []
    try:
        for seed in (0, 1, 2):
            reference = _episode(env, seed, sb3_act)
            policy.reset()
            runtime = _episode(env, seed, deploy_act)
            for key in ("steps_climbed", "reason", "success", "length"):
                assert runtime[key] == reference[key], f"seed {seed}: {key}"
            np.testing.assert_allclose(runtime["positions"], reference["positions"], atol=1e-4)
            results.append(reference)
    finally:
        env.close()
    assert sum(r["success"] for r in results) == sum(r["reason"] == "success" for r in results)
    assert all(
        r["reason"] in {"fall", "base_contact", "out_of_bounds", "success", "time_limit"} for r in results
    )


def test_gait_bundle_adds_the_trained_trot_to_its_targets(gait_exported: Exported) -> None:
    """The bundle carries the generator the env trained with (stride included), and `act` adds its
    offsets at the env's phase, step after step: network targets + the env config's trot, with the
    clock the env's observation shows."""
    policy = load_bundle(gait_exported.bundle)
    env = gait_exported.make_env(overrides=LONG_EPISODES)
    phase = policy.metadata.term("gait_phase")
    try:
        gait = env.unwrapped.config.control.gait
        assert gait.stride_rad == 0.3
        assert policy.gait is not None and policy.gait.stride_rad == gait.stride_rad
        reference = TrotGenerator(policy.num_joints, gait.frequency_hz, gait.calf_swing_rad, gait.stride_rad)
        obs, _ = env.reset(seed=3)
        policy.reset()
        for step in range(30):
            np.testing.assert_allclose(
                obs[phase.start : phase.start + phase.size], reference.observation(), atol=1e-6
            )
            expected = policy.act_batch(obs[None, :])[0] + reference.offsets()
            np.testing.assert_allclose(policy.act(obs), expected, atol=1e-6, err_msg=f"step {step}")
            reference.advance(policy.dt_s)
            obs, _, terminated, truncated, _ = env.step(policy.last_action)
            if terminated or truncated:
                break
    finally:
        env.close()
    assert step >= 10, "too short an episode to see the clock move"


# ---- 6. deploy.py needs numpy and onnxruntime only ------------------------------------------------


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_stairbot_deploy_loads_no_training_stack() -> None:
    """The installed package: `import stairbot.deploy` pulls in no torch, SB3 or pybullet (Gymnasium,
    where installed, registers the envs; it is not needed, see the next test)."""
    training_stack = [m for m in HEAVY_MODULES if m != "gymnasium"]
    code = (
        f"import sys, stairbot.deploy\nprint(','.join(m for m in {training_stack!r} if m in sys.modules))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported by `import stairbot.deploy`: {result.stdout.strip()}"


def test_import_stairbot_deploy_without_gymnasium() -> None:
    """A deploy-only install (numpy + onnxruntime): the package imports and registers no envs."""
    code = (
        "import sys\n"
        f"for name in {HEAVY_MODULES!r}:\n"
        "    sys.modules[name] = None\n"
        "import stairbot, stairbot.deploy\n"
        "print(stairbot.ENV_PRESETS)\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "{}"


@pytest.mark.parametrize("blocked", [(), ("onnxruntime",)], ids=["numpy+onnxruntime", "numpy-only"])
def test_deploy_py_runs_alone(exported: Exported, tmp_path: Path, blocked: tuple[str, ...]) -> None:
    """deploy.py copied alone next to a controller, on a machine without the training stack."""
    shutil.copy(Path(deploy.__file__), tmp_path / "deploy.py")
    golden = np.load(exported.bundle / "golden.npz", allow_pickle=False)
    np.save(tmp_path / "obs.npy", golden["inputs"][:4])
    missing = (*HEAVY_MODULES, "stairbot", "onnx", "yaml", *blocked)
    code = f"""
import sys
for name in {missing!r}:
    sys.modules[name] = None  # importing any of them now raises ImportError
sys.path.insert(0, {str(tmp_path)!r})
import numpy as np
import deploy
backends = ("numpy",) if {blocked!r} else ("onnxruntime", "numpy")
obs = np.load({str(tmp_path / "obs.npy")!r}, allow_pickle=False)
for backend in backends:
    policy = deploy.load_bundle({str(exported.bundle)!r}, backend=backend)
    print(backend, policy.act(obs[0]).tolist())
if {blocked!r}:
    try:
        deploy.load_bundle({str(exported.bundle)!r})
    except deploy.BundleError as exc:
        print("error:", exc)
print("loaded:", [m for m in {(*HEAVY_MODULES, "stairbot")!r} if sys.modules.get(m) is not None])
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "loaded: []"
    expected = golden["outputs"][0]
    for line in lines:
        if line.startswith(("numpy ", "onnxruntime ")):
            np.testing.assert_allclose(json.loads(line.split(" ", 1)[1]), expected, atol=PARITY_ATOL_RAD)
    assert sum(line.startswith(("numpy ", "onnxruntime ")) for line in lines) == (1 if blocked else 2)
    if blocked:
        assert any("needs the onnxruntime package" in line for line in lines)


# ---- 7. timing and safety -----------------------------------------------------------------------


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_fixed_rate_loop_logic_with_a_fake_clock() -> None:
    clock = _FakeClock()
    loop = FixedRateLoop(0.01, max_ticks=6, clock=clock, sleep=clock.sleep)
    starts = []
    work = {0: 0.002, 1: 0.025, 2: 0.0105}  # tick 1 overruns two deadlines, tick 2 one
    for tick in loop:
        starts.append(round(clock.now - 100.0, 9))
        clock.now += work.get(tick, 0.0)
    # deadlines (ms) 0, 10, [20, 30 missed], 40, [50 missed], 60, 70, 80
    assert starts == pytest.approx([0.0, 0.01, 0.04, 0.06, 0.07, 0.08])
    assert (loop.ticks, loop.missed_deadlines, loop.overruns) == (6, 3, 2)


def test_fixed_rate_loop_real_time() -> None:
    period = 0.04  # generous against scheduling hiccups on a loaded test machine: 0.5 s in all
    loop = FixedRateLoop(period)
    times: list[float] = []
    for tick in loop:
        times.append(time.perf_counter())
        if tick == 3:
            time.sleep(2.5 * period)  # overruns the deadlines of ticks at 4 and 5 periods
        if tick == 9:
            break
    # The exact schedule is the fake clock's test above. On the real clock a busy machine can only
    # make ticks later (more missed deadlines, more lateness), so this checks what load cannot
    # break: the loop never starts a tick early, never bursts to catch up, and accounts for every
    # deadline it skipped.
    start = loop.start_s
    assert start is not None
    offsets = (np.array(times) - start) / period
    nominal = np.array([0, 1, 2, 3, 6, 7, 8, 9, 10, 11])  # an idle machine's slots
    assert loop.ticks == 10
    assert loop.missed_deadlines >= 2 and loop.overruns >= 1
    assert np.all(offsets >= nominal - 1e-6), offsets  # never early
    slots = np.floor(offsets + 1e-6)  # the deadline each tick started at or after
    assert np.all(np.diff(slots) >= 1), offsets  # at most one tick per deadline: no catch-up burst
    assert slots[-1] >= 9 + loop.missed_deadlines  # the 10th tick: 9 periods plus those skipped
    assert loop.max_lateness_s >= 0.0
    with pytest.raises(ValueError, match="period_s"):
        FixedRateLoop(0.0)


def _quat_roll_pitch(roll: float, pitch: float) -> np.ndarray:
    """x, y, z, w of R = Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp = math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), math.sin(pitch / 2)
    return np.array([sr * cp, cr * sp, -sr * sp, cr * cp])


def test_emergency_stop_trips_latches_resets(policy: BundlePolicy) -> None:
    stop = EmergencyStop(max_roll_rad=0.5, max_pitch_rad=0.4)
    level = _quat_roll_pitch(0.0, 0.0)
    assert not stop.update(level)
    assert not stop.update(_quat_roll_pitch(0.49, 0.0)) and not stop.update(_quat_roll_pitch(0.0, -0.39))
    assert not stop.update(_quat_roll_pitch(-0.45, 0.35))
    assert stop.update(_quat_roll_pitch(-0.51, 0.0)) and "roll -0.510" in stop.reason
    assert stop.update(level) and stop.tripped  # latched
    stop.reset()
    assert not stop.update(level) and stop.reason == ""
    assert stop.update(_quat_roll_pitch(0.0, 0.41)) and "pitch 0.410" in stop.reason
    stop.reset()
    assert stop.update(_quat_roll_pitch(math.pi, 0.0))  # upside down
    stop.reset()
    assert stop.update([math.nan, 0.0, 0.0, 1.0]) and "non-finite" in stop.reason
    assert stop.trips == 4
    with pytest.raises(ValueError, match="max_roll_rad"):
        EmergencyStop(max_roll_rad=-1.0, max_pitch_rad=0.5)

    # the command while tripped: damping only (kp = 0), the bundle's kd, torques oppose the motion
    q = policy.default_joint_pos_rad + 0.1
    command = policy.damping_command(q)
    np.testing.assert_array_equal(command.kp_nm_per_rad, 0.0)
    np.testing.assert_array_equal(command.kd_nms_per_rad, policy.kd_nms_per_rad)
    qd = np.linspace(-30.0, 30.0, policy.num_joints)
    tau = command.torques(q + 0.3, qd)  # position errors are ignored
    np.testing.assert_allclose(
        tau, np.clip(-policy.kd_nms_per_rad * qd, -command.torque_limits_nm, command.torque_limits_nm)
    )
    assert np.all(np.abs(tau) <= policy.torque_limits_nm)


def test_pd_command_is_the_training_pd_law(policy: BundlePolicy) -> None:
    """JointCommand.torques matches the simulator's actuator (same law, gains and limits)."""
    spec = load_robot_spec(policy.metadata.robot_name)
    rng = np.random.default_rng(1)
    target = policy.default_joint_pos_rad + rng.uniform(-0.5, 0.5, policy.num_joints)
    q = policy.default_joint_pos_rad + rng.uniform(-0.5, 0.5, policy.num_joints)
    qd = rng.uniform(-20.0, 20.0, policy.num_joints)
    expected = PDActuator(spec.kp, spec.kd, spec.torque_limits_nm).torques(target, q, qd)
    np.testing.assert_allclose(policy.pd_command(target).torques(q, qd), expected, rtol=1e-12)
