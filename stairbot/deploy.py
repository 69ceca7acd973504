"""The runtime a robot's control loop imports to run an exported stairbot policy bundle.

This module depends on numpy and the standard library only, plus onnxruntime for the default backend
(imported when a bundle is loaded with it). It imports no other stairbot module, so it can be copied
alone onto a robot computer (`deploy.py` next to the controller) and used without torch, Stable-Baselines3,
Gymnasium or PyBullet. Nothing is unpickled: `policy.json` is JSON, the arrays are `.npz` read with
`allow_pickle=False`.

A control loop at the bundle's rate (50 Hz by default)::

    policy = load_bundle("bundle/")                  # hashes and golden vectors checked here
    builder = ObservationBuilder(policy)             # the env's observation from raw signals
    estop = EmergencyStop(max_roll_rad=0.8, max_pitch_rad=0.8)
    for _ in FixedRateLoop(policy.dt_s):
        s = robot.read()                             # your driver
        if estop.update(s.quat_xyzw):
            robot.send(policy.damping_command(s.q))  # latched until estop.reset()
            continue
        command = builder.command(0.5, yaw_rad=yaw_from_quaternion(s.quat_xyzw))
        obs = builder.build(
            imu_quat_xyzw=s.quat_xyzw, gyro_radps=s.gyro, joint_pos_rad=s.q, joint_vel_radps=s.qd,
            command=command, scan_heights_m=s.terrain_heights_minus_base_z,
        )
        robot.send(policy.pd_command(policy.act(obs)))

Units: rad, rad/s, m, m/s, s, N·m/rad, N·m·s/rad, N·m. Joint vectors are (J,) in the bundle's
`joint_names` order (the policy's output order); observations are (N,) float32 in the bundle's
observation layout. Quaternions are (x, y, z, w), base frame -> world frame (z up), like PyBullet.

Safety decisions (see `BundlePolicy.act` and `EmergencyStop`):
- a non-finite observation (NaN or inf anywhere) never reaches the network: `act` returns the default
  joint positions (the stand pose, the policy's zero action) and counts it in `nonfinite_inputs`;
- a tripped emergency stop should command `damping_command` (kp = 0, the bundle's kd): the joints
  brake softly instead of fighting the fall with stiff position targets.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

BUNDLE_FORMAT = "stairbot-policy-bundle"
BUNDLE_VERSION = 1
BACKENDS = ("onnxruntime", "numpy")
METADATA_FILE = "policy.json"
REQUIRED_FILES = {"onnxruntime": ("policy.onnx", "golden.npz"), "numpy": ("weights.npz", "golden.npz")}
# One proprio_history frame repeats these terms of an earlier observation: its first entries.
HISTORY_FRAME_TERMS = (
    "base_ang_vel",
    "projected_gravity",
    "command",
    "joint_pos",
    "joint_vel",
    "last_action",
)
# The observation terms ObservationBuilder knows how to fill (stairbot.observations names them).
KNOWN_TERMS = (*HISTORY_FRAME_TERMS, "gait_phase", "height_scan", "proprio_history")

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


class BundleError(Exception):
    """A bundle is malformed, tampered with, incomplete, or its policy does not reproduce its golden
    outputs. The message names the file (and the expected and actual hash, or the error)."""


# ---- metadata ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservationTerm:
    """One block of the observation vector: `obs[start:start + size] = raw * scale`.

    Attributes:
        name: the term (see `KNOWN_TERMS`).
        start: first index in the observation vector.
        size: number of entries.
        scale: multiplies the raw value.
        description: the raw value's meaning and unit.
    """

    name: str
    start: int
    size: int
    scale: float
    description: str

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


@dataclass(frozen=True)
class BundleMetadata:
    """The typed content of `policy.json` that a controller needs (`raw` holds all of it).

    Attributes:
        robot_name: the robot spec the policy was trained on.
        joint_names: (J,) joint names in policy order (= output order = observation joint order).
        default_joint_pos_rad: (J,) stand pose; the joint targets of a zero action.
        kp_nm_per_rad, kd_nms_per_rad, torque_limits_nm: (J,) the PD law the policy was trained with.
        nominal_base_height_m: base height above the floor when standing.
        action_scale_rad: (J,) joint target = default + action_scale_rad * action.
        action_clip: actions live in [-action_clip, action_clip].
        squash: "clip" (PPO) or "tanh" (SAC): how the network's output becomes an action.
        dt_s: policy period (act once per dt_s); physics_dt_s, decimation: the PD law's period.
        observation_size: N; observation_clip: the observation is clipped to +-this after scaling.
        observation_terms: the layout, in order, covering [0, N).
        scan_x_points_m, scan_y_points_m: the height-scan grid in the base yaw frame (x forward,
            y left), x-major order; None when the policy has no height scan.
        heading_gain_per_s, max_yaw_rate_radps: the heading controller that sets the yaw-rate command.
        centreline_gain_rad_per_m, max_centreline_heading_rad: its turn back toward the centre line
            of the flight (`CommandConfig.heading_target_rad`; 0.0 and 0.3 in bundles written
            before it existed, when training steered to face the stairs only).
        forward_speed_mps: (low, high) forward speed commands seen in training.
        input_name, output_name: tensor names of policy.onnx.
        golden_atol_rad: the absolute error a runtime must meet on the golden vectors.
        files: {file name: expected SHA-256 hex digest}.
        gait_frequency_hz, gait_calf_swing_rad, gait_stride_rad: the trot generator
            (`TrotGenerator`) the policy's targets ride on; None for a policy of plain joint targets
            (the stride is 0.0 in bundles written before it existed).
        history_steps: H, the earlier observations the proprio_history term repeats (0: none).
    """

    raw: Mapping[str, Any]
    robot_name: str
    joint_names: tuple[str, ...]
    default_joint_pos_rad: F64
    kp_nm_per_rad: F64
    kd_nms_per_rad: F64
    torque_limits_nm: F64
    nominal_base_height_m: float
    action_scale_rad: F64
    action_clip: float
    squash: str
    dt_s: float
    physics_dt_s: float
    decimation: int
    observation_size: int
    observation_clip: float
    observation_terms: tuple[ObservationTerm, ...]
    scan_x_points_m: tuple[float, ...] | None
    scan_y_points_m: tuple[float, ...] | None
    heading_gain_per_s: float
    max_yaw_rate_radps: float
    forward_speed_mps: tuple[float, float]
    input_name: str
    output_name: str
    golden_atol_rad: float
    files: Mapping[str, str]
    gait_frequency_hz: float | None = None
    gait_calf_swing_rad: float | None = None
    gait_stride_rad: float = 0.0
    centreline_gain_rad_per_m: float = 0.0
    max_centreline_heading_rad: float = 0.3
    history_steps: int = 0

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_scan_points(self) -> int:
        """P, the number of height-scan points (0 without a height scan)."""
        if self.scan_x_points_m is None or self.scan_y_points_m is None:
            return 0
        return len(self.scan_x_points_m) * len(self.scan_y_points_m)

    def term(self, name: str) -> ObservationTerm:
        for term in self.observation_terms:
            if term.name == name:
                return term
        raise KeyError(f"no observation term '{name}'; terms: {[t.name for t in self.observation_terms]}")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BundleMetadata:
        """Validate and type `policy.json`'s content; BundleError says which key is wrong."""
        fmt = raw.get("format") if isinstance(raw, Mapping) else None
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{METADATA_FILE}: format is {fmt!r}, expected {BUNDLE_FORMAT!r}")
        version = raw.get("format_version")
        if version != BUNDLE_VERSION:
            raise BundleError(
                f"{METADATA_FILE}: format_version {version!r} is not supported by this runtime "
                f"(supports {BUNDLE_VERSION}); use the deploy.py that ships with the exporting stairbot"
            )
        try:
            joint_names = tuple(str(n) for n in _key(raw, "robot.joint_names"))
            num_joints = len(joint_names)
            scale = np.asarray(_key(raw, "action.scale_rad"), np.float64)
            terms = tuple(
                ObservationTerm(
                    str(t["name"]), int(t["start"]), int(t["size"]), float(t["scale"]), str(t["description"])
                )
                for t in _key(raw, "observation.terms")
            )
            scan = _key(raw, "observation.height_scan")
            if scan is not None and scan.get("order", "x-major") != "x-major":
                raise BundleError(f"{METADATA_FILE}: height_scan order {scan['order']!r} is not x-major")
            speeds = _key(raw, "observation.command.forward_speed_mps")
            command = _key(raw, "observation.command")  # the centre-line keys are newer than the rest
            gait = _key(raw, "action").get("gait")  # absent in bundles without the gait prior
            history = _key(raw, "observation").get("history")  # absent in bundles without one
            if history is not None and list(history.get("frame_terms", [])) != list(HISTORY_FRAME_TERMS):
                raise BundleError(
                    f"{METADATA_FILE}: observation.history frame_terms {history.get('frame_terms')!r} are "
                    f"not {list(HISTORY_FRAME_TERMS)}; use the deploy.py that ships with the exporting "
                    "stairbot"
                )
            if gait is not None and gait.get("type") != "trot":
                raise BundleError(f"{METADATA_FILE}: action.gait type {gait.get('type')!r} is not 'trot'")
            meta = cls(
                raw=raw,
                robot_name=str(_key(raw, "robot.name")),
                joint_names=joint_names,
                default_joint_pos_rad=_joint_vector(raw, "robot.default_joint_pos_rad", num_joints),
                kp_nm_per_rad=_joint_vector(raw, "robot.kp_nm_per_rad", num_joints),
                kd_nms_per_rad=_joint_vector(raw, "robot.kd_nms_per_rad", num_joints),
                torque_limits_nm=_joint_vector(raw, "robot.torque_limits_nm", num_joints),
                nominal_base_height_m=float(_key(raw, "robot.nominal_base_height_m")),
                action_scale_rad=np.broadcast_to(scale, (num_joints,)).copy(),
                action_clip=float(_key(raw, "action.clip")),
                squash=str(_key(raw, "action.squash")),
                dt_s=float(_key(raw, "control.dt_s")),
                physics_dt_s=float(_key(raw, "control.physics_dt_s")),
                decimation=int(_key(raw, "control.decimation")),
                observation_size=int(_key(raw, "observation.size")),
                observation_clip=float(_key(raw, "observation.clip")),
                observation_terms=terms,
                scan_x_points_m=None if scan is None else tuple(float(x) for x in scan["x_points_m"]),
                scan_y_points_m=None if scan is None else tuple(float(y) for y in scan["y_points_m"]),
                heading_gain_per_s=float(_key(raw, "observation.command.heading_gain_per_s")),
                max_yaw_rate_radps=float(_key(raw, "observation.command.max_yaw_rate_radps")),
                centreline_gain_rad_per_m=float(command.get("centreline_gain_rad_per_m", 0.0)),
                max_centreline_heading_rad=float(command.get("max_centreline_heading_rad", 0.3)),
                forward_speed_mps=(float(speeds[0]), float(speeds[1])),
                input_name=str(_key(raw, "io.input.name")),
                output_name=str(_key(raw, "io.output.name")),
                golden_atol_rad=float(_key(raw, "golden.atol_rad")),
                files={str(name): str(entry["sha256"]) for name, entry in _key(raw, "files").items()},
                gait_frequency_hz=None if gait is None else float(gait["frequency_hz"]),
                gait_calf_swing_rad=None if gait is None else float(gait["calf_swing_rad"]),
                gait_stride_rad=0.0 if gait is None else float(gait.get("stride_rad", 0.0)),
                history_steps=0 if history is None else int(history["steps"]),
            )
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise BundleError(f"{METADATA_FILE} is malformed: {exc!r}") from exc
        meta._check_consistency()
        return meta

    def _check_consistency(self) -> None:
        position = 0
        for term in self.observation_terms:
            if term.start != position or term.size <= 0:
                raise BundleError(
                    f"{METADATA_FILE}: observation term '{term.name}' starts at {term.start} with size "
                    f"{term.size}; terms must be contiguous from 0 (expected start {position})"
                )
            position += term.size
        if position != self.observation_size:
            raise BundleError(
                f"{METADATA_FILE}: observation terms cover {position} entries, observation.size is "
                f"{self.observation_size}"
            )
        if self.squash not in ("clip", "tanh"):
            raise BundleError(f"{METADATA_FILE}: action.squash {self.squash!r} is not 'clip' or 'tanh'")
        if not (np.all(self.action_scale_rad > 0) and self.dt_s > 0 and self.action_clip > 0):
            raise BundleError(f"{METADATA_FILE}: action.scale_rad, action.clip and control.dt_s must be > 0")
        for name in self.files:
            if Path(name).name != name or name in ("", ".", ".."):
                raise BundleError(f"{METADATA_FILE}: file entry {name!r} is not a plain file name")


def _key(raw: Mapping[str, Any], dotted: str) -> Any:
    value: Any = raw
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise BundleError(f"{METADATA_FILE}: missing key '{dotted}'")
        value = value[part]
    return value


def _joint_vector(raw: Mapping[str, Any], dotted: str, num_joints: int) -> F64:
    value = np.asarray(_key(raw, dotted), np.float64)
    if value.shape != (num_joints,) or not np.all(np.isfinite(value)):
        raise BundleError(
            f"{METADATA_FILE}: '{dotted}' must be {num_joints} finite numbers (one per joint), got shape "
            f"{value.shape}"
        )
    return value


def sha256_file(path: Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, files: Mapping[str, str]) -> None:
    """Check that every listed file exists in `folder` with its expected SHA-256, else BundleError."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{name} is listed in {METADATA_FILE} but missing from {folder}")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"{name} does not match {METADATA_FILE}: sha256 expected {expected}, actual {actual} "
                "(the file was modified or corrupted after export)"
            )


# ---- inference backends --------------------------------------------------------------------------


def onnx_session(path: Path) -> Any:
    """An onnxruntime session for a control loop: CPU, one thread, sequential execution (no thread
    pool waking up inside the controller's period)."""
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError as exc:
        raise BundleError(
            "the onnxruntime backend needs the onnxruntime package (pip install onnxruntime); "
            "backend='numpy' needs numpy only"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BundleError(f"{path.name}: onnxruntime cannot load it: {exc}") from exc


class _OnnxRunner:
    """policy.onnx in onnxruntime: (B, N) float32 -> (B, J) float32, one thread, sequential."""

    def __init__(self, path: Path, meta: BundleMetadata) -> None:
        self.session = onnx_session(path)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [meta.input_name] or [o.name for o in outputs] != [meta.output_name]:
            raise BundleError(
                f"{path.name}: inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]} "
                f"do not match {METADATA_FILE} io ({meta.input_name!r} -> {meta.output_name!r})"
            )
        if inputs[0].shape[1:] != [meta.observation_size] or outputs[0].shape[1:] != [meta.num_joints]:
            raise BundleError(
                f"{path.name}: shapes {inputs[0].shape} -> {outputs[0].shape} do not match "
                f"{METADATA_FILE} (batch, {meta.observation_size}) -> (batch, {meta.num_joints})"
            )
        self._input, self._output = meta.input_name, meta.output_name

    def __call__(self, observations: F32) -> F32:
        (out,) = self.session.run([self._output], {self._input: observations})
        return np.asarray(out, np.float32)


class _NumpyRunner:
    """weights.npz evaluated with numpy in float64, exactly `stairbot.export.policy_graph.forward`:

    x = clip((obs - mean) / std, +-obs_clip); x = act(W x + b) per hidden layer; a = W x + b;
    a = clip(a, -1, 1) or tanh(a); targets = default_pose_rad + action_scale_rad * a.
    """

    def __init__(self, path: Path, meta: BundleMetadata) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name]) for name in data.files}
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path.name}: cannot read it as a numpy .npz without pickle: {exc}") from exc
        try:
            num_hidden = int(arrays["num_hidden"])
            self.hidden = [
                (
                    arrays[f"hidden_{i}_weight"].astype(np.float64),
                    arrays[f"hidden_{i}_bias"].astype(np.float64),
                )
                for i in range(num_hidden)
            ]
            self.output = (
                arrays["output_weight"].astype(np.float64),
                arrays["output_bias"].astype(np.float64),
            )
            self.obs_mean = arrays["obs_mean"].astype(np.float64)
            self.obs_std = arrays["obs_std"].astype(np.float64)
            self.obs_clip = float(arrays["obs_clip"])
            self.activation = str(arrays["activation"])
            self.squash = str(arrays["squash"])
            self.default_pose_rad = arrays["default_pose_rad"].astype(np.float64)
            self.action_scale_rad = arrays["action_scale_rad"].astype(np.float64)
            # SAC with gSDE clips the output layer before the tanh; absent: no clip.
            self.mean_clip = float(arrays["mean_clip"]) if "mean_clip" in arrays else None
        except KeyError as exc:
            raise BundleError(f"{path.name}: missing array {exc}") from exc
        if self.activation not in ("elu", "relu", "tanh") or self.squash not in ("clip", "tanh"):
            raise BundleError(
                f"{path.name}: activation {self.activation!r} / squash {self.squash!r} unknown "
                "(supported: elu, relu, tanh / clip, tanh)"
            )
        width = meta.observation_size
        for i, (weight, bias) in enumerate([*self.hidden, self.output]):
            if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
                raise BundleError(f"{path.name}: layer {i} has shape {weight.shape}, expected (*, {width})")
            width = weight.shape[0]
        shapes = {
            "obs_mean": (self.obs_mean.shape, (meta.observation_size,)),
            "obs_std": (self.obs_std.shape, (meta.observation_size,)),
            "output_weight": ((width,), (meta.num_joints,)),
            "default_pose_rad": (self.default_pose_rad.shape, (meta.num_joints,)),
            "action_scale_rad": (self.action_scale_rad.shape, (meta.num_joints,)),
        }
        for name, (got, expected) in shapes.items():
            if got != expected:
                raise BundleError(f"{path.name}: {name} has shape {got}, expected {expected}")

    def mean(self, observations: F32) -> F64:
        """(..., J) the network's output before its squash: the mean of the Gaussian it was trained
        as (for SAC with gSDE, after the mean clip)."""
        x = np.clip(
            (observations.astype(np.float64) - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip
        )
        for weight, bias in self.hidden:
            x = x @ weight.T + bias
            if self.activation == "elu":
                x = np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
            elif self.activation == "relu":
                x = np.maximum(x, 0.0)
            else:
                x = np.tanh(x)
        a = x @ self.output[0].T + self.output[1]
        if self.mean_clip is not None:
            a = np.clip(a, -self.mean_clip, self.mean_clip)
        return np.asarray(a, np.float64)

    def squashed(self, mean: F64) -> F64:
        """(..., J) actions in [-1, 1] from pre-squash outputs: clip (PPO) or tanh (SAC)."""
        return np.clip(mean, -1.0, 1.0) if self.squash == "clip" else np.tanh(mean)

    def __call__(self, observations: F32) -> F32:
        a = self.squashed(self.mean(observations))
        return (self.default_pose_rad + self.action_scale_rad * a).astype(np.float32)


def action_sampler(bundle: BundlePolicy) -> Callable[[F32, F64], F32]:
    """`sample(observation (N,), noise (J,)) -> action (J,)` in [-1, 1] for evaluation under
    exploration noise: the bundle's squash (clip or tanh) of its network's pre-squash output plus
    `noise`, as its Gaussian policy drew actions in training (SB3 adds the noise to the mean and then
    clips or squashes; adding it after the clip would perturb saturated joints that training never
    moved). Runs weights.npz in numpy whatever the bundle's backend; with zero noise it is the
    bundle's action (`action_from_targets` of `act`, within float32 rounding)."""
    runner = _NumpyRunner(bundle.path / "weights.npz", bundle.metadata)

    def sample(observation: F32, noise: F64) -> F32:
        return runner.squashed(runner.mean(observation) + noise).astype(np.float32)

    return sample


# ---- the policy ----------------------------------------------------------------------------------


# ---- the gait prior -----------------------------------------------------------------------------

JOINTS_PER_LEG = 3  # hip (abduction), thigh, calf
TROT_PHASE_OFFSETS_RAD = (0.0, math.pi, math.pi, 0.0)
"""Leg phase = clock phase + this, legs FR, FL, RR, RL: diagonal pairs in step."""


class TrotGenerator:
    """The gait prior: a clock-driven trot whose joint offsets the policy's targets ride on.

    With the gait prior on (env preset `control.gait`), a StairClimb action is a *residual* on top
    of a clock-driven trot:

        q_target = default_pose + gait_offsets(phase) + action_scale_rad * action          [rad]

    as in policies modulating trajectory generators (PMTG, Iscen et al. 2018) and the foot trajectory
    generators of Lee et al. 2020, reduced to what a 2-core budget can learn fast: the generator lifts
    each foot in turn (diagonal pairs, a trot) at a fixed frequency, the policy sees the phase and shapes
    everything else with its residual targets (step length, placement, height above a riser). The
    frequency is not a policy output here, so an exported policy stays a plain map from observation to
    joint targets and the generator is a few lines of numpy on the controller.

    Joint-space swing: for a leg of (hip, thigh, calf) joints with equal thigh and calf lengths, flexing
    the calf by -2 d and the thigh by +d shortens the hip-foot line without turning it, so the foot
    rises straight up. The swing profile is s = sin(leg phase) on the first half of the cycle (lift and
    put down), 0 on the second (stance). The stride turns the whole leg fore and aft with
    c = cos(leg phase): back (+) at lift-off, forward through the swing, forward (-) at touchdown and
    back through the stance, so the feet push the trunk forward with zero action:

        calf offset  = -calf_swing_rad * s
        thigh offset = +calf_swing_rad * s / 2 + stride_rad * c
        hip offset   = 0

    A positive thigh angle swings the foot back in every spec of `urdf/` (the stand pose's thigh is
    +0.85 rad). For stairdog the foot moves 0.28 m back per rad of thigh at the stand pose, so a
    foot's nominal travel per stance is 2 x 0.28 m x stride_rad: 0.22 m at 0.4 rad. The trunk makes
    less of it (PD lag, foot slip, and the lift alone drifts it back): with zero action on flat ground
    at 2 Hz, 0.4 rad walks at 0.3-0.4 m/s, 0.2 rad about stands (README, "Action space").

    For stairdog (thigh = calf = 0.213 m, stand pose thigh 0.85 / calf -1.70 rad), calf_swing_rad = 0.6
    lifts the foot 0.107 m at mid-swing. Legs come in the spec's order FR, FL, RR, RL, each as (hip,
    thigh, calf) — the order of every spec in `urdf/`; the trot swings FR with RL, then FL with RR.

    It lives in this runtime so that the env and a robot's controller run the very same generator.

    Attributes:
        phase_rad: clock phase in [0, 2 pi); 0 at reset.
    """

    def __init__(
        self, num_joints: int, frequency_hz: float, calf_swing_rad: float, stride_rad: float = 0.0
    ) -> None:
        legs = num_joints // JOINTS_PER_LEG
        if num_joints % JOINTS_PER_LEG or legs != len(TROT_PHASE_OFFSETS_RAD):
            raise ValueError(
                f"the trot generator needs 4 legs of (hip, thigh, calf) = 12 joints, got {num_joints} joints"
            )
        self.frequency_hz = float(frequency_hz)
        self.calf_swing_rad = float(calf_swing_rad)
        self.stride_rad = float(stride_rad)
        self._leg_offsets = np.array(TROT_PHASE_OFFSETS_RAD)
        # Per-joint weight of the swing profile: (hip 0, thigh +1/2, calf -1) x calf_swing_rad.
        self._joint_weights = np.tile(np.array([0.0, 0.5, -1.0]) * self.calf_swing_rad, legs)
        # Per-joint weight of the stride profile: the thigh alone, stride_rad.
        self._stride_weights = np.tile(np.array([0.0, 1.0, 0.0]) * self.stride_rad, legs)
        self.phase_rad = 0.0

    def reset(self, phase_rad: float = 0.0) -> None:
        self.phase_rad = float(phase_rad) % (2 * math.pi)

    def advance(self, dt_s: float) -> None:
        """Move the clock on by `dt_s` seconds."""
        self.phase_rad = (self.phase_rad + 2 * math.pi * self.frequency_hz * dt_s) % (2 * math.pi)

    def swing(self) -> F64:
        """(legs,) swing profile in [0, 1]: sin(leg phase) while swinging, 0 in stance."""
        return np.maximum(np.sin(self.phase_rad + self._leg_offsets), 0.0)

    def stride(self) -> F64:
        """(legs,) stride profile in [-1, 1]: cos(leg phase), +1 (foot back) at lift-off."""
        return np.cos(self.phase_rad + self._leg_offsets)

    def offsets(self) -> F64:
        """(J,) joint target offsets, rad, at the current phase."""
        lift = np.repeat(self.swing(), JOINTS_PER_LEG) * self._joint_weights
        if self.stride_rad == 0.0:
            return lift
        return lift + np.repeat(self.stride(), JOINTS_PER_LEG) * self._stride_weights

    def observation(self) -> F64:
        """(2,) the phase as (sin, cos): what the policy observes of the clock."""
        return np.array([math.sin(self.phase_rad), math.cos(self.phase_rad)])


@dataclass(frozen=True)
class JointCommand:
    """What to send to the joints' PD controllers this control period. All (J,), joint_names order.

    Attributes:
        q_target_rad: joint position targets.
        kp_nm_per_rad: stiffness (0 = no position feedback).
        kd_nms_per_rad: damping.
        torque_limits_nm: |tau| limits.
    """

    q_target_rad: F64
    kp_nm_per_rad: F64
    kd_nms_per_rad: F64
    torque_limits_nm: F64

    def torques(self, joint_pos_rad: ArrayLike, joint_vel_radps: ArrayLike) -> F64:
        """The PD law the policy was trained with, for torque-controlled joints (run it every
        physics_dt_s): tau = clip(kp (q* - q) - kd qd, +-torque_limit), N·m, (J,)."""
        q = np.asarray(joint_pos_rad, np.float64)
        qd = np.asarray(joint_vel_radps, np.float64)
        tau = self.kp_nm_per_rad * (self.q_target_rad - q) - self.kd_nms_per_rad * qd
        return np.clip(tau, -self.torque_limits_nm, self.torque_limits_nm)


class BundlePolicy:
    """An exported policy, verified, ready to act at `dt_s`. Make one with `load_bundle`.

    Attributes:
        path: the bundle directory.
        metadata: the typed policy.json (`BundleMetadata`).
        backend: "onnxruntime" or "numpy".
        golden_max_error_rad: the largest error on the golden vectors when loading (<= atol).
        last_action: (J,) float32, the previous `act` output as an action in [-clip, clip]
            (`action_from_targets`); zeros after loading and after `reset()`. ObservationBuilder reads
            it for the observation's last_action term, so the two cannot get out of step.
        steps: number of `act` calls.
        nonfinite_inputs: `act` calls whose observation held NaN or inf (answered with the stand pose).
        consecutive_nonfinite_inputs: such calls in a row, up to now (0 after a finite observation);
            a controller can escalate (e.g. to its emergency stop) when it grows.
        nonfinite_outputs: `act` calls where the network produced NaN/inf (also answered with stand).
    """

    def __init__(self, path: Path, metadata: BundleMetadata, backend: str) -> None:
        """Prefer `load_bundle` / `BundlePolicy.load`, which also verify hashes and golden vectors."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = path
        self.metadata = metadata
        self.backend = backend
        if backend == "onnxruntime":
            self._run: Callable[[F32], F32] = _OnnxRunner(path / "policy.onnx", metadata)
        else:
            self._run = _NumpyRunner(path / "weights.npz", metadata)
        self._stand = metadata.default_joint_pos_rad.astype(np.float32)
        self._inverse_scale = (1.0 / metadata.action_scale_rad).astype(np.float32)
        self._clip = np.float32(metadata.action_clip)
        self.golden_max_error_rad = math.nan
        self.last_action = np.zeros(metadata.num_joints, np.float32)
        self.episodes = 0  # reset() calls: an ObservationBuilder forgets its history when it grows
        self.steps = 0
        self.nonfinite_inputs = 0
        self.consecutive_nonfinite_inputs = 0
        self.nonfinite_outputs = 0
        # The gait prior's clock, when the policy was trained with one (its phase is observed).
        self.gait: TrotGenerator | None = None
        if metadata.gait_frequency_hz is not None and metadata.gait_calf_swing_rad is not None:
            self.gait = TrotGenerator(
                metadata.num_joints,
                metadata.gait_frequency_hz,
                metadata.gait_calf_swing_rad,
                metadata.gait_stride_rad,
            )

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "onnxruntime") -> BundlePolicy:
        """Load and verify a bundle directory.

        1. policy.json: format "stairbot-policy-bundle", format_version 1, well-formed.
        2. Every file in policy.json's `files` exists and matches its SHA-256.
        3. The backend: onnxruntime (policy.onnx; 1 intra-op and 1 inter-op thread, sequential
           execution, CPU) or numpy (weights.npz, this module's own forward pass).
        4. Every golden input reproduces its golden output within `golden.atol_rad`.
        Any failure raises BundleError naming the file and what was wrong.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        folder = Path(path)
        meta_path = folder / METADATA_FILE
        if not meta_path.is_file():
            raise BundleError(f"{folder} is not a policy bundle: {METADATA_FILE} is missing")
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{METADATA_FILE} is not valid JSON: {exc}") from exc
        metadata = BundleMetadata.from_json(raw)
        for name in REQUIRED_FILES[backend]:
            if name not in metadata.files:
                raise BundleError(
                    f"{METADATA_FILE} lists no hash for {name}, which the {backend} backend needs; "
                    "the bundle cannot be verified"
                )
        verify_files(folder, metadata.files)
        policy = cls(folder, metadata, backend)
        policy.golden_max_error_rad = policy.check_golden()
        return policy

    # ---- metadata shortcuts ----

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.metadata.joint_names

    @property
    def num_joints(self) -> int:
        return self.metadata.num_joints

    @property
    def observation_size(self) -> int:
        return self.metadata.observation_size

    @property
    def default_joint_pos_rad(self) -> F64:
        """(J,) the stand pose, rad: the targets of a zero action and the non-finite-input answer."""
        return self.metadata.default_joint_pos_rad.copy()

    @property
    def kp_nm_per_rad(self) -> F64:
        return self.metadata.kp_nm_per_rad.copy()

    @property
    def kd_nms_per_rad(self) -> F64:
        return self.metadata.kd_nms_per_rad.copy()

    @property
    def torque_limits_nm(self) -> F64:
        return self.metadata.torque_limits_nm.copy()

    @property
    def dt_s(self) -> float:
        """Policy period, s: call `act` once every dt_s."""
        return self.metadata.dt_s

    @property
    def observation_terms(self) -> tuple[ObservationTerm, ...]:
        return self.metadata.observation_terms

    # ---- checks ----

    def check_golden(self) -> float:
        """Run every golden input; return the max abs error (rad), BundleError above the tolerance."""
        golden = self.path / "golden.npz"
        try:
            with np.load(golden, allow_pickle=False) as data:
                inputs, expected = np.asarray(data["inputs"]), np.asarray(data["outputs"])
        except (OSError, ValueError, KeyError) as exc:
            raise BundleError(f"golden.npz: cannot read inputs/outputs without pickle: {exc}") from exc
        n, j = self.observation_size, self.num_joints
        if inputs.ndim != 2 or inputs.shape[1] != n or expected.shape != (inputs.shape[0], j):
            raise BundleError(
                f"golden.npz: inputs {inputs.shape} and outputs {expected.shape} do not fit the policy "
                f"(K, {n}) -> (K, {j})"
            )
        if inputs.shape[0] == 0:
            raise BundleError("golden.npz holds no vectors, so the policy cannot be checked")
        got = self._run(np.ascontiguousarray(inputs, np.float32))
        error = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        error[~np.isfinite(error)] = np.inf  # a NaN anywhere fails the check
        atol = self.metadata.golden_atol_rad
        worst = float(error.max())
        if worst > atol:
            k, joint = np.unravel_index(int(error.argmax()), error.shape)
            raise BundleError(
                f"the {self.backend} backend does not reproduce golden.npz: max error {worst:.3g} rad > "
                f"atol {atol:g} rad (vector {k}, joint {self.joint_names[joint]}); the bundle is corrupt "
                "or this runtime computes a different function"
            )
        return worst

    # ---- acting ----

    def act(self, observation: ArrayLike) -> F32:
        """Joint position targets (J,) float32, rad, joint_names order, for one observation (N,).

        The observation is the env's raw observation (build it with ObservationBuilder); normalization,
        the network, the action squash and the scaling to joint targets all happen here.

        Non-finite policy: if any entry is NaN or inf, the network is not run; the stand pose
        (`default_joint_pos_rad`, the policy's zero action) is returned and `nonfinite_inputs` and
        `consecutive_nonfinite_inputs` are incremented. A single bad sensor sample then costs one
        period of standing instead of a NaN on the motors; a persistent fault shows in
        `consecutive_nonfinite_inputs`, which the controller should escalate. The same applies if the
        network ever outputs a non-finite value (`nonfinite_outputs`).

        Updates `last_action` (read by ObservationBuilder for the next observation). With a gait
        prior (`gait` not None) the trot's offsets at the current phase are added to the targets and
        the clock then moves on by `dt_s`: call `act` exactly once per period, as the env steps.

        Raises:
            ValueError: the observation does not have shape (N,).
        """
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (self.observation_size,):
            raise ValueError(
                f"observation must have shape ({self.observation_size},) (the bundle's observation size), "
                f"got {obs.shape}"
            )
        self.steps += 1
        # One reduction instead of an elementwise isfinite: NaN and inf propagate through a sum (and
        # observations are far below float32 overflow), ~2 us less per call on the control path.
        if math.isfinite(float(obs.sum(dtype=np.float64))):
            self.consecutive_nonfinite_inputs = 0
            targets = self._run(obs[None, :])[0]
            if math.isfinite(float(targets.sum(dtype=np.float64))):
                action = (targets - self._stand) * self._inverse_scale
                # minimum/maximum: float rounding can leave the squashed action a hair outside the clip.
                self.last_action = np.minimum(np.maximum(action, -self._clip), self._clip).astype(np.float32)
                return self._with_gait(targets)
            self.nonfinite_outputs += 1
        else:
            self.nonfinite_inputs += 1
            self.consecutive_nonfinite_inputs += 1
        self.last_action = np.zeros(self.num_joints, np.float32)  # the stand pose is the zero action
        if self.gait is not None:
            self.gait.advance(self.dt_s)  # time goes on; the stand pose gets no swing
        return self._stand.copy()

    def _with_gait(self, targets: F32) -> F32:
        """Add the gait prior's offsets at the current phase (if any), then advance its clock."""
        if self.gait is None:
            return targets
        out = (targets + self.gait.offsets()).astype(np.float32)
        self.gait.advance(self.dt_s)
        return out

    def act_batch(self, observations: ArrayLike) -> F32:
        """Joint targets (B, J) float32 for observations (B, N), for offline use (evaluation, checks).

        The network's targets only: no gait offsets (they depend on the clock, which `act` keeps).
        Rows with a non-finite entry get the stand pose (and count in `nonfinite_inputs`). Does not
        touch `last_action`: in a control loop use `act`.
        """
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.observation_size:
            raise ValueError(f"observations must have shape (B, {self.observation_size}), got {obs.shape}")
        bad = ~np.all(np.isfinite(obs), axis=1)
        targets = self._run(np.ascontiguousarray(np.where(bad[:, None], 0.0, obs), np.float32))
        bad |= ~np.all(np.isfinite(targets), axis=1)
        targets[bad] = self._stand
        self.nonfinite_inputs += int(bad.sum())
        return targets

    def reset(self) -> None:
        """Start a new episode: last_action = 0, the gait clock at phase 0 (as the env does at
        reset) and, for its ObservationBuilder, no observation history; counters are kept."""
        self.last_action = np.zeros(self.num_joints, np.float32)
        self.consecutive_nonfinite_inputs = 0
        self.episodes += 1
        if self.gait is not None:
            self.gait.reset()

    def action_from_targets(self, joint_targets_rad: ArrayLike) -> F32:
        """The action in [-clip, clip] (J,) float32 whose targets are `joint_targets_rad` (J,):
        (targets - default) / scale, clipped. This is what the simulator env takes as its action."""
        targets = np.asarray(joint_targets_rad, np.float64)
        if targets.shape != (self.num_joints,):
            raise ValueError(f"joint targets must have shape ({self.num_joints},), got {targets.shape}")
        action = (targets - self.metadata.default_joint_pos_rad) / self.metadata.action_scale_rad
        clip = self.metadata.action_clip
        return np.clip(action, -clip, clip).astype(np.float32)

    def targets_from_action(self, action: ArrayLike) -> F64:
        """Joint targets (J,) rad for an action (J,) in [-clip, clip]: default + scale * action."""
        a = np.clip(np.asarray(action, np.float64), -self.metadata.action_clip, self.metadata.action_clip)
        if a.shape != (self.num_joints,):
            raise ValueError(f"action must have shape ({self.num_joints},), got {a.shape}")
        return self.metadata.default_joint_pos_rad + self.metadata.action_scale_rad * a

    def pd_command(self, joint_targets_rad: ArrayLike) -> JointCommand:
        """The normal command: the policy's targets with the gains it was trained with."""
        return JointCommand(
            np.asarray(joint_targets_rad, np.float64).copy(),
            self.kp_nm_per_rad,
            self.kd_nms_per_rad,
            self.torque_limits_nm,
        )

    def damping_command(self, joint_pos_rad: ArrayLike) -> JointCommand:
        """The emergency-stop command: kp = 0 and the bundle's kd, targets = the current positions.

        Torque is then -kd * qd (clipped): the joints brake and the robot settles onto the ground
        instead of being driven to any pose (see EmergencyStop for why).
        """
        q = np.asarray(joint_pos_rad, np.float64)
        if q.shape != (self.num_joints,):
            raise ValueError(f"joint positions must have shape ({self.num_joints},), got {q.shape}")
        return JointCommand(
            np.where(np.isfinite(q), q, self.metadata.default_joint_pos_rad),
            np.zeros(self.num_joints),
            self.kd_nms_per_rad,
            self.torque_limits_nm,
        )

    def observation_builder(self) -> ObservationBuilder:
        return ObservationBuilder(self)


def load_bundle(path: str | Path, *, backend: str = "onnxruntime") -> BundlePolicy:
    """Load and verify a policy bundle (see `BundlePolicy.load`)."""
    return BundlePolicy.load(path, backend=backend)


# ---- observations --------------------------------------------------------------------------------


def _quat(quat_xyzw: ArrayLike) -> tuple[float, float, float, float]:
    q = np.asarray(quat_xyzw, np.float64)
    if q.shape != (4,):
        raise ValueError(f"quaternion must have shape (4,) (x, y, z, w), got {q.shape}")
    norm = float(np.sqrt(q @ q))
    if not (np.isfinite(norm) and norm > 0.0):
        return (math.nan,) * 4
    x, y, z, w = (float(v) / norm for v in q)
    return x, y, z, w


def projected_gravity(quat_xyzw: ArrayLike) -> F64:
    """(3,) unit gravity direction in the base frame, (0, 0, -1) when level, from the base orientation
    quaternion (x, y, z, w; base -> world, z up). Normalizes the quaternion; NaN if it is degenerate."""
    x, y, z, w = _quat(quat_xyzw)
    # Minus the third row of the rotation matrix (world z expressed in the base frame).
    return -np.array([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)])


def yaw_from_quaternion(quat_xyzw: ArrayLike) -> float:
    """Heading (rad, in [-pi, pi]) of the base x axis in the world xy plane, as the env computes it."""
    x, y, z, w = _quat(quat_xyzw)
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def roll_pitch_from_quaternion(quat_xyzw: ArrayLike) -> tuple[float, float]:
    """(roll, pitch) rad of the base (ZYX Euler angles; pitch in [-pi/2, pi/2]); NaNs if degenerate."""
    x, y, z, w = _quat(quat_xyzw)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(min(1.0, max(-1.0, 2.0 * (w * y - x * z)))) if math.isfinite(w) else math.nan
    return roll, pitch


def wrap_angle(angle_rad: float) -> float:
    """The angle in [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def history_frame_size(num_joints: int) -> int:
    """F, the entries of one proprio_history frame (`HISTORY_FRAME_TERMS`): 3 + 3 + 3 + 3 J."""
    return 9 + 3 * num_joints


class ObservationHistory:
    """The last H frames of the observations a policy saw, which the next observation repeats.

    A frame is an observation's first F entries (`HISTORY_FRAME_TERMS`, already scaled and noisy), so
    the history adds no noise of its own and a robot rebuilds it from the vectors it fed the policy.
    Slip, a payload or a slow motor show over a few steps (commanded versus reached joint motion),
    not in one frame: a memoryless policy cannot tell slippery steps from dry ones before it slips.
    The env and `ObservationBuilder` both fill proprio_history with it.

    Attributes:
        frames: (H, F) float32, newest first.
    """

    def __init__(self, steps: int, frame_size: int) -> None:
        if steps < 1 or frame_size < 1:
            raise ValueError(f"history needs steps >= 1 and frame_size >= 1, got {steps}, {frame_size}")
        self.frames = np.zeros((steps, frame_size), np.float32)
        self._empty = True

    def reset(self) -> None:
        """Forget the frames: the next observation starts a new episode."""
        self._empty = True

    def fill(self, observation: F32, history: slice) -> None:
        """Write the history into `observation[history]` (H * F,), then push its own first frame.

        The first observation after `reset` sees its own frame H times.
        """
        frame = observation[: self.frames.shape[1]]
        if self._empty:
            self.frames[:] = frame
            self._empty = False
        observation[history] = self.frames.reshape(-1)
        self.frames[1:] = self.frames[:-1]
        self.frames[0] = frame


class ObservationBuilder:
    """The env's observation, entry for entry, from a robot's raw signals.

    Built from a BundlePolicy: the layout (term order, sizes, scales, clip), the default pose, the
    nominal base height, the height-scan grid and the heading controller all come from policy.json.
    The last_action term is read from `policy.last_action`, which `policy.act` updates. A policy with
    a proprio_history term sees the first entries of its previous observations: the builder keeps
    the observations it built, so call `build` exactly once per control period, for the
    observation you pass to `policy.act`. Call `policy.reset()` when a new run starts: it zeroes the
    last action and the builder forgets its history (the env starts every episode so).

    Each term is `raw * scale`, then the whole vector is clipped to +-observation_clip, float32:

        base_ang_vel       gyro_radps (base frame, rad/s)
        projected_gravity  from imu_quat_xyzw (see `projected_gravity`)
        command            (vx m/s, vy m/s, yaw rate rad/s) (see `command`)
        joint_pos          joint_pos_rad - default_joint_pos_rad
        joint_vel          joint_vel_radps
        last_action        policy.last_action
        gait_phase         policy.gait.observation(): (sin, cos) of the trot clock (gait policies)
        height_scan        clip(scan_heights_m + nominal_base_height_m, -1, 1)
        proprio_history    the first F = 9 + 3 J entries (HISTORY_FRAME_TERMS, already scaled
                           and clipped) of the previous H built observations, newest first, scale 1;
                           the first observation after reset repeats its own frame H times

    A non-finite signal in one observation reaches the next H through the history: `policy.act`
    answers each of them with the stand pose until the bad frame has left the history.

    Height scan: `scan_heights_m` (P,) is the terrain height at each scan point MINUS the base height,
    m (about -nominal_base_height_m on flat ground): subtract the base z of the state estimate from
    an elevation map's heights in the same frame, or read a robot-centric map directly. The scan
    points are `scan_points_xy_m(base_xy_m, yaw_rad)`: the grid rotated by the heading only (not roll
    or pitch), x-major, x forward. The env's raw value clip(h - (base_z - nominal), -1, 1) follows.
    """

    def __init__(self, policy: BundlePolicy) -> None:
        self.policy = policy
        meta = policy.metadata
        self.metadata = meta
        j, p = meta.num_joints, meta.num_scan_points
        has_history = any(t.name == "proprio_history" for t in meta.observation_terms)
        if has_history and meta.history_steps == 0:
            raise BundleError(f"{METADATA_FILE}: a proprio_history term but no observation.history")
        first_terms = [t.name for t in meta.observation_terms[: len(HISTORY_FRAME_TERMS)]]
        if has_history and first_terms != list(HISTORY_FRAME_TERMS):
            raise BundleError(
                f"{METADATA_FILE}: a history frame is the observation's first terms "
                f"{list(HISTORY_FRAME_TERMS)}, but the layout starts with {first_terms}"
            )
        sizes = {
            "base_ang_vel": 3,
            "projected_gravity": 3,
            "command": 3,
            "joint_pos": j,
            "joint_vel": j,
            "last_action": j,
            "gait_phase": 2,
            "height_scan": p,
            "proprio_history": meta.history_steps * history_frame_size(j),
        }
        for term in meta.observation_terms:
            if term.name not in sizes:
                raise BundleError(
                    f"{METADATA_FILE}: observation term '{term.name}' is unknown to this runtime "
                    f"(knows {list(KNOWN_TERMS)}); use the deploy.py that ships with the exporting stairbot"
                )
            if term.size != sizes[term.name]:
                raise BundleError(
                    f"{METADATA_FILE}: observation term '{term.name}' has size {term.size}, expected "
                    f"{sizes[term.name]}"
                )
        self.has_height_scan = any(t.name == "height_scan" for t in meta.observation_terms)
        if any(t.name == "gait_phase" for t in meta.observation_terms) and policy.gait is None:
            raise BundleError(f"{METADATA_FILE}: a gait_phase term but no action.gait generator")
        if self.has_height_scan and p == 0:
            raise BundleError(f"{METADATA_FILE}: a height_scan term but no observation.height_scan grid")
        xs = meta.scan_x_points_m or ()
        ys = meta.scan_y_points_m or ()
        self.scan_offsets_m: F64 = np.array([(x, y) for x in xs for y in ys], np.float64).reshape(-1, 2)
        self._scale = np.zeros(meta.observation_size)
        for term in meta.observation_terms:
            self._scale[term.slice] = term.scale
        # The frames of the previous observations (see `build`), and where they go.
        self._history = ObservationHistory(meta.history_steps, history_frame_size(j)) if has_history else None
        self._history_slice = meta.term("proprio_history").slice if has_history else None
        self._history_episode = -1  # the policy.episodes the history belongs to (-1: none yet)

    # ---- commands and scan points ----

    def yaw_rate_command(
        self, yaw_rad: float, target_yaw_rad: float = 0.0, lateral_offset_m: float = 0.0
    ) -> float:
        """Yaw-rate command, rad/s, that turns the base toward `target_yaw_rad` as in training:
        clip(heading_gain_per_s * wrap(target - yaw), +-max_yaw_rate_radps). The env steers to 0
        (facing the stairs, +x) every step; on a robot use the stairs' direction in your yaw frame.
        A bundle trained with a centre-line gain also turns back toward the flight's centre line:
        give the base's offset from it, m, left (+) of it seen from the bottom of the flight."""
        meta = self.metadata
        target = target_yaw_rad + self.centreline_heading_rad(lateral_offset_m)
        rate = meta.heading_gain_per_s * wrap_angle(target - yaw_rad)
        if not math.isfinite(rate):
            return math.nan  # an unknown heading stays unknown: act() answers it with the stand pose
        return min(meta.max_yaw_rate_radps, max(-meta.max_yaw_rate_radps, rate))

    def centreline_heading_rad(self, lateral_offset_m: float) -> float:
        """The heading offset, rad, that turns a base `lateral_offset_m` m left (+) of the centre line
        back toward it: -clip(gain * offset, +-max), as `CommandConfig.heading_target_rad` in training
        (0 for a bundle trained without it)."""
        meta = self.metadata
        cap = meta.max_centreline_heading_rad
        return -min(cap, max(-cap, meta.centreline_gain_rad_per_m * lateral_offset_m))

    def command(
        self,
        forward_speed_mps: float,
        yaw_rad: float,
        target_yaw_rad: float = 0.0,
        lateral_speed_mps: float = 0.0,
        lateral_offset_m: float = 0.0,
    ) -> F64:
        """The command term (vx m/s, vy m/s, yaw rate rad/s) with the heading controller's yaw rate.
        Training sampled vx in `metadata.forward_speed_mps` and vy = 0."""
        yaw_rate = self.yaw_rate_command(yaw_rad, target_yaw_rad, lateral_offset_m)
        return np.array([forward_speed_mps, lateral_speed_mps, yaw_rate])

    def scan_points_xy_m(self, base_xy_m: ArrayLike, yaw_rad: float) -> F64:
        """(P, 2) world xy of the height-scan points for a base at `base_xy_m` (2,) with heading
        `yaw_rad`, in the order `scan_heights_m` must follow."""
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        base = np.asarray(base_xy_m, np.float64)[:2]
        return base + self.scan_offsets_m @ np.array([[c, s], [-s, c]])

    # ---- the observation ----

    def raw_terms(
        self,
        *,
        imu_quat_xyzw: ArrayLike,
        gyro_radps: ArrayLike,
        joint_pos_rad: ArrayLike,
        joint_vel_radps: ArrayLike,
        command: ArrayLike,
        scan_heights_m: ArrayLike | None = None,
    ) -> dict[str, F64]:
        """Each term's raw (unscaled) value, float64, by name; shapes validated (ValueError). The
        proprio_history term is not among them: `build` fills it from the observations it built."""
        meta = self.metadata
        j = meta.num_joints
        raw = {
            "base_ang_vel": _vector(gyro_radps, 3, "gyro_radps"),
            "projected_gravity": projected_gravity(imu_quat_xyzw),
            "command": _vector(command, 3, "command"),
            "joint_pos": _vector(joint_pos_rad, j, "joint_pos_rad") - meta.default_joint_pos_rad,
            "joint_vel": _vector(joint_vel_radps, j, "joint_vel_radps"),
            "last_action": self.policy.last_action.astype(np.float64),
        }
        if self.policy.gait is not None:
            raw["gait_phase"] = self.policy.gait.observation()

        if self.has_height_scan:
            if scan_heights_m is None:
                raise ValueError(
                    f"this policy observes a height scan: pass scan_heights_m ({meta.num_scan_points},), "
                    "terrain height minus base height (m) at scan_points_xy_m(...)"
                )
            heights = _vector(scan_heights_m, meta.num_scan_points, "scan_heights_m")
            raw["height_scan"] = np.clip(heights + meta.nominal_base_height_m, -1.0, 1.0)
        elif scan_heights_m is not None:
            raise ValueError("this policy has no height scan; do not pass scan_heights_m")
        return raw

    def build(
        self,
        *,
        imu_quat_xyzw: ArrayLike,
        gyro_radps: ArrayLike,
        joint_pos_rad: ArrayLike,
        joint_vel_radps: ArrayLike,
        command: ArrayLike,
        scan_heights_m: ArrayLike | None = None,
    ) -> F32:
        """The observation (N,) float32 for `policy.act`.

        Args:
            imu_quat_xyzw: (4,) base orientation, x y z w, base -> world (z up); need not be unit.
            gyro_radps: (3,) base angular velocity in the base frame, rad/s.
            joint_pos_rad, joint_vel_radps: (J,) in `joint_names` order, rad and rad/s.
            command: (3,) vx m/s, vy m/s, yaw rate rad/s (e.g. `self.command(...)`).
            scan_heights_m: (P,) terrain height minus base height at the scan points, m; required
                exactly when the bundle has a height scan.

        Non-finite signals are passed through; `policy.act` answers them with the stand pose.
        """
        raw = self.raw_terms(
            imu_quat_xyzw=imu_quat_xyzw,
            gyro_radps=gyro_radps,
            joint_pos_rad=joint_pos_rad,
            joint_vel_radps=joint_vel_radps,
            command=command,
            scan_heights_m=scan_heights_m,
        )
        value = np.zeros(self.metadata.observation_size)
        for term in self.metadata.observation_terms:
            if term.name != "proprio_history":
                value[term.slice] = raw[term.name]
        clip = self.metadata.observation_clip
        with np.errstate(invalid="ignore"):
            observation = np.clip(value * self._scale, -clip, clip).astype(np.float32)
        if self._history is not None and self._history_slice is not None:
            if self._history_episode != self.policy.episodes:  # policy.reset() since the last build
                self._history_episode = self.policy.episodes
                self._history.reset()
            self._history.fill(observation, self._history_slice)
        return observation


def _vector(value: ArrayLike, size: int, name: str) -> F64:
    array = np.asarray(value, np.float64)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {array.shape}")
    return array


# ---- timing and safety ---------------------------------------------------------------------------


class FixedRateLoop:
    """Iterate at a fixed period: `for tick in FixedRateLoop(0.02): ...` runs the body every 20 ms.

    Deadlines are `start + k * period_s` on a monotonic clock (time.perf_counter), so sleep jitter
    never accumulates into drift. Before each tick the loop sleeps until the next deadline. When an
    iteration overran (its next deadline has already passed), the passed deadlines are skipped, not
    caught up in a burst: the loop waits for the next deadline still in the future and counts the
    skipped ones in `missed_deadlines`. The first tick is immediate (deadline 0). Iterates forever
    unless `max_ticks` is given; `break` out to stop. Sleep granularity is the OS's (~0.1 ms on Linux).

    Attributes:
        period_s: the period.
        ticks: ticks yielded so far.
        missed_deadlines: deadlines skipped because an iteration overran.
        overruns: iterations that overran at least one deadline.
        max_lateness_s: the latest a tick started after its deadline (sleep overshoot), s.
    """

    def __init__(
        self,
        period_s: float,
        *,
        max_ticks: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (period_s > 0 and math.isfinite(period_s)):
            raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
        if max_ticks is not None and max_ticks < 0:
            raise ValueError(f"max_ticks must be >= 0 or None, got {max_ticks}")
        self.period_s = float(period_s)
        self.max_ticks = max_ticks
        self._clock = clock
        self._sleep = sleep
        self.ticks = 0
        self.missed_deadlines = 0
        self.overruns = 0
        self.max_lateness_s = 0.0
        self.start_s: float | None = None

    def __iter__(self) -> Iterator[int]:
        period = self.period_s
        self.ticks = self.missed_deadlines = self.overruns = 0
        self.max_lateness_s = 0.0
        start = self.start_s = self._clock()
        slot = 0  # index of the deadline the current tick belongs to
        while self.max_ticks is None or self.ticks < self.max_ticks:
            if self.ticks:
                slot += 1
                now = self._clock()
                if now > start + slot * period:  # the last iteration ran past this deadline
                    missed = math.floor((now - start) / period) - slot + 1
                    self.missed_deadlines += missed
                    self.overruns += 1
                    slot += missed
                while (remaining := start + slot * period - self._clock()) > 0:
                    self._sleep(remaining)
                self.max_lateness_s = max(self.max_lateness_s, self._clock() - (start + slot * period))
            self.ticks += 1
            yield self.ticks - 1

    @property
    def elapsed_s(self) -> float:
        """Seconds since the first tick (0 before it)."""
        return 0.0 if self.start_s is None else self._clock() - self.start_s


class EmergencyStop:
    """Trips when the base tilts beyond a roll or pitch limit, and stays tripped until `reset()`.

    Feed it the IMU orientation every control period with `update(quat_xyzw)`; a quaternion that is
    not finite (or zero) trips it as well: the orientation is unknown.

    What to command while tripped: `BundlePolicy.damping_command(q)` — kp = 0, the bundle's kd,
    targets = the current joint positions, so tau = -kd * qd. A robot past its tilt limit is falling
    or down; stiff position targets (the stand pose, or holding the current pose with the full kp)
    would make the legs fight the ground and thrash or spring the body around, near people and stair
    edges, and could throw it further. Pure damping dissipates the motion and lets the robot settle
    onto the ground with bounded joint torques, while still braking the joints (unlike cutting
    motor power). Standing up again is a separate, supervised step after `reset()`.

    Attributes:
        max_roll_rad, max_pitch_rad: the limits (|roll| and |pitch| above them trip).
        tripped: whether it is tripped (latched).
        reason: why it tripped ("" when not tripped).
        trips: how many times it has tripped since creation.
    """

    def __init__(self, max_roll_rad: float, max_pitch_rad: float) -> None:
        for name, value in (("max_roll_rad", max_roll_rad), ("max_pitch_rad", max_pitch_rad)):
            if not (0.0 < value <= math.pi):
                raise ValueError(f"{name} must be in (0, pi] rad, got {value!r}")
        self.max_roll_rad = float(max_roll_rad)
        self.max_pitch_rad = float(max_pitch_rad)
        self.tripped = False
        self.reason = ""
        self.trips = 0

    def update(self, quat_xyzw: ArrayLike) -> bool:
        """Check one IMU orientation (x, y, z, w; base -> world); return whether the stop is tripped."""
        if self.tripped:
            return True
        roll, pitch = roll_pitch_from_quaternion(quat_xyzw)
        if not (math.isfinite(roll) and math.isfinite(pitch)):
            self._trip("non-finite or zero IMU quaternion")
        elif abs(roll) > self.max_roll_rad:
            self._trip(f"roll {roll:.3f} rad beyond +-{self.max_roll_rad:g} rad")
        elif abs(pitch) > self.max_pitch_rad:
            self._trip(f"pitch {pitch:.3f} rad beyond +-{self.max_pitch_rad:g} rad")
        return self.tripped

    def _trip(self, reason: str) -> None:
        self.tripped = True
        self.reason = reason
        self.trips += 1

    def reset(self) -> None:
        """Re-arm. If the robot is still tilted, the next `update` trips again."""
        self.tripped = False
        self.reason = ""


__all__ = [
    "BACKENDS",
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "HISTORY_FRAME_TERMS",
    "BundleError",
    "BundleMetadata",
    "BundlePolicy",
    "EmergencyStop",
    "FixedRateLoop",
    "JointCommand",
    "ObservationBuilder",
    "ObservationHistory",
    "ObservationTerm",
    "history_frame_size",
    "load_bundle",
    "projected_gravity",
    "roll_pitch_from_quaternion",
    "sha256_file",
    "verify_files",
    "wrap_angle",
    "yaw_from_quaternion",
]
