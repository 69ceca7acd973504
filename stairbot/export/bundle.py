"""`stairbot export RUN_DIR --out BUNDLE`: a self-describing policy bundle for robot controllers.

    BUNDLE/
      policy.onnx   observation (B, N) float32 -> joint_targets (B, J) float32; opset 17, one file
      policy.pt     the same function as TorchScript
      weights.npz   the same function's arrays (normalization, layers, scaling) for numpy or C runtimes
      policy.h      the same function as one dependency-free C99 header (arrays + `stairbot_policy`)
      golden.npz    inputs (K, N) float32 and the outputs (K, J) float32 they must produce (no pickle)
      env.yaml      the env preset it was trained in (to replay it in simulation: play, record, sim2sim)
      policy.json   everything a controller needs, and the SHA-256 of every other file

policy.json (format "stairbot-policy-bundle", version 1):

    robot        name, joint_names (policy order = output order), default_joint_pos_rad,
                 kp_nm_per_rad, kd_nms_per_rad, torque_limits_nm, foot_links, nominal_base_height_m
    action       scale_rad, clip (actions live in [-clip, clip]), squash ("clip" | "tanh"),
                 and the formula from action to joint target (already inside the graph)
    control      dt_s (policy period), physics_dt_s, decimation: the PD law runs at 1 / physics_dt_s
                 with kp, kd and the torque limits: tau = clip(kp (q* - q) - kd qd, +-tau_max)
    observation  size, clip (after the layout scales), terms [{name, start, size, scale, description}],
                 normalization {mean, std, clip} (inside the graph; listed for other runtimes),
                 height_scan {x_points_m, y_points_m} or null, history {steps, frame_terms,
                 frame_size, order} or null, command {heading_gain_per_s, ...}
    io           input and output tensor names, shapes and dtypes
    model        algorithm, net_arch, activation, num_timesteps, checkpoint it came from
    provenance   versions, training command, run directory
    files        {name: {sha256, bytes}} for policy.onnx, policy.pt, weights.npz, policy.h, golden.npz
    golden       how the golden vectors were made and the tolerance a runtime must meet
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

import stairbot
from stairbot.config import to_plain
from stairbot.envs.config import env_observation_layout
from stairbot.errors import StairbotError
from stairbot.export.c_source import to_c_header
from stairbot.export.onnx_graph import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME, to_onnx
from stairbot.export.policy_graph import Activation, PolicyGraph, from_sb3, save_npz
from stairbot.export.torchscript import to_torchscript
from stairbot.observations import HISTORY_FRAME_TERMS, OBS_CLIP, history_frame_size
from stairbot.robots.spec import load_robot_spec
from stairbot.training.checkpoints import load_normalization, read_meta
from stairbot.training.lineage import run_lineage
from stairbot.training.policy import SB3Policy, load_policy, policy_checkpoint
from stairbot.training.recipe import Recipe
from stairbot.training.run_dir import RunDir
from stairbot.training.trainer import eval_overrides
from stairbot.training.vec import env_factory

BUNDLE_FORMAT = "stairbot-policy-bundle"
BUNDLE_VERSION = 1
# A runtime reproduces the golden outputs to this absolute error (float32 arithmetic, rad).
GOLDEN_ATOL_RAD = 1e-5
# hashed in policy.json
BUNDLE_FILES = ("policy.onnx", "policy.pt", "weights.npz", "policy.h", "golden.npz", "env.yaml")
GOLDEN_RECORDED_STEPS = 192
GOLDEN_RANDOM = 64


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _golden_inputs(policy: SB3Policy, recipe: Recipe, run: RunDir, seed: int) -> np.ndarray:
    """Observations recorded from the policy driving the env, plus random ones around the run's
    normalization statistics (which reach the clipping and squashing)."""
    env = env_factory(run.env_preset, eval_overrides(recipe))()
    try:
        recorded = []
        obs, _ = env.reset(seed=seed)
        for _ in range(GOLDEN_RECORDED_STEPS):
            recorded.append(obs)
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()
    rng = np.random.default_rng(seed)
    mean, std = policy.obs_mean, policy.obs_std
    random = mean + std * rng.standard_normal((GOLDEN_RANDOM, mean.shape[0])) * 3.0
    return np.concatenate([np.array(recorded), random]).astype(np.float32)


def export_run(run_path: Path, out: Path, which: str = "best", seed: int = 0) -> Path:
    """Export a run's policy (`best` or `latest` checkpoint) as a bundle directory at `out`."""
    run = RunDir(run_path)
    if not run.config.is_file():
        raise StairbotError(f"{run_path} is not a stairbot run directory (no config.yaml)")
    if out.exists() and any(out.iterdir()):
        raise StairbotError(f"bundle directory {out} already exists and is not empty; choose another --out")
    recipe = run.recipe()
    checkpoint = policy_checkpoint(run_path, which)
    meta = read_meta(checkpoint)
    policy = load_policy(checkpoint)
    spec = load_robot_spec(recipe.env.robot)
    action_scale_rad = recipe.env.control.action_scale_vector(spec.num_joints)
    normalization = load_normalization(checkpoint / "normalization.npz")
    graph = from_sb3(
        policy.model,
        normalization,
        spec.default_pose_rad,
        action_scale_rad,
        Activation(recipe.policy.activation.value),
    )

    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        to_onnx(graph, tmp / "policy.onnx", producer=f"stairbot {stairbot.__version__}")
        to_torchscript(graph, tmp / "policy.pt")
        save_npz(graph, tmp / "weights.npz")
        shutil.copyfile(run.env_preset, tmp / "env.yaml")  # the simulator setup it was trained in
        inputs = _golden_inputs(policy, recipe, run, seed)
        # The reference outputs come from SB3 itself (its predict on normalized observations).
        outputs = spec.default_pose_rad + action_scale_rad * np.array(
            [policy.act(obs) for obs in inputs], dtype=np.float64
        )
        np.savez(tmp / "golden.npz", inputs=inputs, outputs=outputs.astype(np.float32))
        metadata = bundle_metadata(
            graph, recipe, run, checkpoint=checkpoint, num_timesteps=meta.num_timesteps
        )
        to_c_header(graph, tmp / "policy.h", metadata)  # its comments come from the metadata
        metadata["files"] = file_hashes(tmp)
        (tmp / "policy.json").write_text(json.dumps(metadata, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()  # empty (checked above)
    tmp.rename(out)
    return out


def file_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    """policy.json's `files`: the SHA-256 and size of each of BUNDLE_FILES in `folder`."""
    return {
        name: {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in BUNDLE_FILES
    }


def bundle_metadata(
    graph: PolicyGraph, recipe: Recipe, run: RunDir, *, checkpoint: Path, num_timesteps: int
) -> dict[str, Any]:
    """policy.json's content (see the module docstring) but `files` (`file_hashes`)."""
    env = recipe.env
    spec = load_robot_spec(env.robot)
    scan = env.observation.height_scan
    gait = env.control.gait
    layout = env_observation_layout(env, spec.num_joints)
    terms, start = [], 0
    for term in layout:
        terms.append(
            {
                "name": term.name,
                "start": start,
                "size": term.size,
                "scale": term.scale,
                "description": term.description,
            }
        )
        start += term.size
    versions_file = run.path / "versions.json"
    command_file = run.path / "command.txt"
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "robot": {
            "name": spec.name,
            "joint_names": list(spec.joint_names),
            "default_joint_pos_rad": spec.default_pose_rad.tolist(),
            "kp_nm_per_rad": spec.kp.tolist(),
            "kd_nms_per_rad": spec.kd.tolist(),
            "torque_limits_nm": spec.torque_limits_nm.tolist(),
            "foot_links": list(spec.foot_links),
            "nominal_base_height_m": spec.nominal_base_height_m,
        },
        "action": {
            # one number for every joint, or one per joint in joint_names' order
            "scale_rad": to_plain(env.control.action_scale_rad),
            "clip": 1.0,
            "squash": graph.squash.value,
            # the network's output is clipped to [-mean_clip, mean_clip] before the squash (gSDE SAC)
            **({} if graph.mean_clip is None else {"mean_clip": graph.mean_clip}),
            "joint_target_rad": "default_joint_pos_rad + scale_rad * "
            + ("squash(action)" if graph.mean_clip is None else "squash(clip(action, -mean_clip, mean_clip))")
            + "  (inside the graph)"
            + (" + gait offsets(phase)  (outside the graph, deploy.TrotGenerator)" if gait.enabled else ""),
            "gait": (
                {
                    "type": "trot",
                    "frequency_hz": gait.frequency_hz,
                    "calf_swing_rad": gait.calf_swing_rad,
                    "stride_rad": gait.stride_rad,
                    "phase_at_reset_rad": 0.0,
                    "note": "the clock advances by 2 pi frequency_hz dt_s after each action; the "
                    "observation's gait_phase term is (sin, cos) of its phase",
                }
                if gait.enabled
                else None
            ),
        },
        "control": {
            "dt_s": env.sim.control_dt_s,
            "physics_dt_s": env.sim.physics_dt_s,
            "decimation": env.sim.decimation,
            "pd_law": "tau = clip(kp * (q_target - q) - kd * qd, -torque_limit, torque_limit), "
            "every physics_dt_s",
        },
        "observation": {
            "size": layout.size,
            "clip": OBS_CLIP,
            "terms": terms,
            "normalization": {
                "mean": graph.obs_mean.tolist(),
                "std": graph.obs_std.tolist(),
                "clip": graph.obs_clip,
                "note": "applied inside policy.onnx / policy.pt: feed the raw observation",
            },
            "height_scan": (
                {"x_points_m": list(scan.x_points_m), "y_points_m": list(scan.y_points_m), "order": "x-major"}
                if scan.enabled
                else None
            ),
            "history": (
                {
                    "steps": env.observation.history_steps,
                    "frame_terms": list(HISTORY_FRAME_TERMS),
                    "frame_size": history_frame_size(spec.num_joints),
                    "order": "newest first",
                    "note": "proprio_history holds the first frame_size entries of the previous "
                    "`steps` observations as fed to the policy (scaled, clipped); an episode's "
                    "first observation repeats its own frame (deploy.ObservationBuilder keeps it)",
                }
                if env.observation.history_steps
                else None
            ),
            "command": {
                "heading_gain_per_s": env.command.heading_gain_per_s,
                "max_yaw_rate_radps": env.command.max_yaw_rate_radps,
                "centreline_gain_rad_per_m": env.command.centreline_gain_rad_per_m,
                "max_centreline_heading_rad": env.command.max_centreline_heading_rad,
                "forward_speed_mps": list(env.command.forward_speed_mps),
            },
        },
        "io": {
            "input": {"name": INPUT_NAME, "shape": ["batch", layout.size], "dtype": "float32"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", spec.num_joints], "dtype": "float32"},
            "onnx_opset": ONNX_OPSET,
        },
        "model": {
            "algorithm": recipe.algorithm.value,
            "net_arch": list(recipe.policy.net_arch),
            "activation": graph.activation.value,
            "num_timesteps": num_timesteps,
            "checkpoint": str(checkpoint.relative_to(run.path)),
        },
        "provenance": {
            "versions": json.loads(versions_file.read_text()) if versions_file.is_file() else {},
            "exported_by": f"stairbot {stairbot.__version__}",
            "training_command": command_file.read_text().splitlines() if command_file.is_file() else [],
            # The commands of the runs and bundles this run started from or was derived from, oldest
            # first: with training_command, the whole chain that made the policy.
            "lineage": run_lineage(run.path),
            "run_dir": str(run.path.resolve()),
        },
        "golden": {
            "file": "golden.npz",
            "inputs": f"{GOLDEN_RECORDED_STEPS} observations recorded with the policy driving the env, "
            f"then {GOLDEN_RANDOM} random ones",
            "outputs": "joint targets from the Stable-Baselines3 policy itself",
            "atol_rad": GOLDEN_ATOL_RAD,
        },
    }
