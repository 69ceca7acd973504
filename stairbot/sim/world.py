"""One PyBullet world per environment: client, ground, robot and stairs, built once.

Only `stairbot.sim` and `stairbot.terrain.build` talk to PyBullet. The world follows the practice in
DESIGN.md: a private `BulletClient` per env (created in the worker process that steps it), the scene
built once and reset by moving bodies and resetting joint states (never loadURDF/removeBody per
episode), cone friction off and deterministic overlapping pairs on, one `getJointStates` call per
physics substep for the PD law and one batched base/joint read per control step.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pybullet
import pybullet_data
from numpy.typing import NDArray
from pybullet_utils.bullet_client import BulletClient

from stairbot.envs.config import ActuatorConfig, SimConfig
from stairbot.errors import ConfigError
from stairbot.randomization import RandomizationSample
from stairbot.robots.spec import RobotSpec
from stairbot.sim.actuators import AppliedTorques, MotorActuator, PDActuator, joint_friction_torques
from stairbot.terrain.build import StairBodies
from stairbot.terrain.clearance import BaseBox
from stairbot.terrain.stairs import Flight, StairSpec

FloatArray = NDArray[np.float64]

# Collision filter groups. The robot collides with terrain; ray casts (whose own group is Bullet's
# default filter, 1) see terrain but not the robot; terrain never collides with terrain: the overlapping
# static stair boxes would otherwise be narrowphase pairs every substep (a third of the physics time).
_RAY_GROUP = 1
_ROBOT_GROUP = 2
_TERRAIN_GROUP = 4
_GRAVITY_MPS2 = 9.81
_MIN_BASE_MASS_KG = 0.1


@dataclass(frozen=True)
class NominalDynamics:
    """The scene's dynamics as built (URDF and preset values), read once from PyBullet so that a
    randomized episode always starts from these and never from the previous episode's values.

    Attributes:
        link_mass_kg: (L + 1,) mass of the base (index 0) and of every link (index l + 1).
        link_inertia: (L + 1, 3) local inertia diagonals, same indexing.
        foot_friction: (F,) lateral friction of the foot links.
        foot_restitution: (F,) restitution of the foot links.
        joint_damping_nms_per_rad: (J,) URDF joint damping of the actuated joints, policy order.
        terrain_friction: lateral friction of the ground and the stairs.
    """

    link_mass_kg: FloatArray
    link_inertia: FloatArray
    foot_friction: FloatArray
    foot_restitution: FloatArray
    joint_damping_nms_per_rad: FloatArray
    terrain_friction: float


@dataclass(frozen=True)
class RobotState:
    """Robot state at the end of a control step. World frame unless named otherwise.

    Attributes:
        base_pos_m: (3,) base position.
        base_quat_xyzw: (4,) base orientation (PyBullet order x, y, z, w).
        base_lin_vel_mps: (3,) base linear velocity, world frame.
        base_ang_vel_radps: (3,) base angular velocity, world frame.
        joint_pos_rad: (J,) joint positions in policy order.
        joint_vel_radps: (J,) joint velocities in policy order.
    """

    base_pos_m: FloatArray
    base_quat_xyzw: FloatArray
    base_lin_vel_mps: FloatArray
    base_ang_vel_radps: FloatArray
    joint_pos_rad: FloatArray
    joint_vel_radps: FloatArray

    @cached_property
    def rotation(self) -> FloatArray:
        """(3, 3) rotation matrix, base frame -> world frame."""
        return np.array(pybullet.getMatrixFromQuaternion(self.base_quat_xyzw)).reshape(3, 3)

    @cached_property
    def projected_gravity(self) -> FloatArray:
        """(3,) unit gravity direction in the base frame; (0, 0, -1) when level."""
        return self.rotation[2, :] * -1.0

    @cached_property
    def base_ang_vel_body_radps(self) -> FloatArray:
        """(3,) angular velocity in the base frame (what a gyro measures)."""
        return self.rotation.T @ self.base_ang_vel_radps

    @property
    def yaw_rad(self) -> float:
        return float(np.arctan2(self.rotation[1, 0], self.rotation[0, 0]))


_NO_POINTS = np.zeros((0, 3))
_NO_POINTS.flags.writeable = False  # shared by every Contacts without base contact


@dataclass(frozen=True)
class Contacts:
    """Contacts of the robot with the ground and stairs after a control step.

    Attributes:
        foot_contact: (F,) bool, foot f touches something.
        base_contact: the base link touches something.
        thigh_contact: any thigh link touches something.
        num_body_contacts: number of robot links other than the feet and the base in contact.
        base_points_m: (K, 3) world positions, on the base, of its contact points (K = 0 without
            base contact).
    """

    foot_contact: NDArray[np.bool_]
    base_contact: bool
    thigh_contact: bool
    num_body_contacts: int
    base_points_m: FloatArray

    def base_points_in_base_frame_m(self, base_pos_m: FloatArray, rotation: FloatArray) -> FloatArray:
        """(K, 3) the base's contact points in its own frame (x to the nose, z up), from the base
        position (3,) and its (3, 3) base-to-world rotation."""
        return (self.base_points_m - base_pos_m) @ rotation


def connect(sim: SimConfig, *, gui: bool = False) -> BulletClient:
    """A private PyBullet client with the physics settings of `sim` (and DESIGN.md's practice)."""
    client = BulletClient(connection_mode=pybullet.GUI if gui else pybullet.DIRECT)
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    client.setPhysicsEngineParameter(
        fixedTimeStep=sim.physics_dt_s,
        numSolverIterations=sim.solver_iterations,
        enableConeFriction=0,
        deterministicOverlappingPairs=1,
    )
    client.setGravity(0.0, 0.0, -9.81)
    return client


def load_ground(client: BulletClient, friction: float) -> int:
    plane = int(client.loadURDF("plane.urdf"))
    client.changeDynamics(plane, -1, lateralFriction=friction)
    return plane


def load_robot(client: BulletClient, spec: RobotSpec) -> tuple[int, list[int]]:
    """Load the robot's URDF (inertias from the file) with its default velocity motors disabled, so
    only the PD torques act on the joints. Returns the body id and the joint indices in policy order."""
    robot = int(
        client.loadURDF(
            str(spec.urdf_path),
            basePosition=(0.0, 0.0, spec.nominal_base_height_m),
            flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        )
    )
    names = {client.getJointInfo(robot, j)[1].decode(): j for j in range(client.getNumJoints(robot))}
    joints = [names[name] for name in spec.joint_names]
    client.setJointMotorControlArray(robot, joints, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(joints))
    links = {client.getJointInfo(robot, j)[12].decode(): j for j in range(client.getNumJoints(robot))}
    for foot in spec.foot_links:
        client.changeDynamics(robot, links[foot], lateralFriction=spec.foot_friction)
    return robot, joints


def base_collision_box(client: BulletClient, robot: int) -> BaseBox:
    """The base link's collision box in the base frame: the shape itself when it is one box (stairdog,
    A1), else the bounding box of its collision shapes (a mesh chassis), taken as loaded."""
    shapes = client.getCollisionShapeData(robot, -1)
    if len(shapes) == 1 and shapes[0][2] == pybullet.GEOM_BOX:
        _, _, _, size, _, center, orientation = shapes[0]
        if np.allclose(orientation, (0.0, 0.0, 0.0, 1.0)):
            return BaseBox(np.asarray(size, dtype=np.float64) / 2.0, np.asarray(center, dtype=np.float64))
    low, high = (np.asarray(v, dtype=np.float64) for v in client.getAABB(robot, -1))
    pos, quat = client.getBasePositionAndOrientation(robot)
    rotation = np.array(client.getMatrixFromQuaternion(quat)).reshape(3, 3)
    corners = np.array(list(itertools.product(*zip(low, high, strict=True))))  # (8, 3)
    in_base = (corners - np.asarray(pos)) @ rotation  # R^T (c - p), row-wise
    lo, hi = in_base.min(axis=0), in_base.max(axis=0)
    return BaseBox((hi - lo) / 2.0, (hi + lo) / 2.0)


def set_collision_groups(client: BulletClient, robot: int, terrain: Sequence[int]) -> None:
    """Robot collides with terrain; rays see terrain only; terrain never collides with terrain."""
    for body in terrain:
        client.setCollisionFilterGroupMask(body, -1, _TERRAIN_GROUP, _ROBOT_GROUP | _RAY_GROUP)
    for link in range(-1, client.getNumJoints(robot)):
        client.setCollisionFilterGroupMask(robot, link, _ROBOT_GROUP, _TERRAIN_GROUP)


# Behind and to the left of the robot, looking a little down: the robot and the flight ahead in view.
FOLLOW_CAMERA = {"distance": 2.0, "yaw": -40.0, "pitch": -20.0}
# The camera aims this far ahead of the base (m, +x), so the stairs the robot walks into are in frame.
FOLLOW_CAMERA_LEAD_M = 0.6


def camera_target(base_pos_m: FloatArray) -> FloatArray:
    """(3,) point the follow camera aims at for a base at `base_pos_m` (3,)."""
    return base_pos_m + np.array([FOLLOW_CAMERA_LEAD_M, 0.0, -0.1])


class World:
    """A ground plane, one robot and a pool of stair bodies in a private PyBullet client."""

    def __init__(
        self,
        spec: RobotSpec,
        sim: SimConfig,
        stairs: StairSpec,
        *,
        max_riser_m: float,
        gui: bool = False,
        actuator: ActuatorConfig | None = None,
    ) -> None:
        """Build the scene. `max_riser_m`: the tallest riser any episode will ask for; `actuator`:
        the motor effects on top of the PD law (None: none)."""
        self.spec = spec
        self.sim = sim
        self.client = c = connect(sim, gui=gui)
        if gui:  # build the scene without redrawing the window after every body (seconds under Xvfb)
            c.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 0)
        self.plane_id = load_ground(c, sim.ground_friction)
        self.stairs = StairBodies.for_spec(
            c, stairs, max_riser_m=max(stairs.riser_m, max_riser_m), friction=sim.ground_friction
        )
        # Height-scan rays start above the highest possible stair top.
        self._ray_top_m = self.stairs.max_height_m + 1.0
        self.robot_id, self.joint_ids = load_robot(c, spec)
        self.base_box = base_collision_box(c, self.robot_id)
        links = self._link_indices()
        self.foot_link_ids = [links[name] for name in spec.foot_links]
        self.thigh_link_ids = frozenset(links[name] for name in spec.thigh_links)
        self._foot_index = {link: i for i, link in enumerate(self.foot_link_ids)}
        set_collision_groups(c, self.robot_id, (self.plane_id, *self.stairs.body_ids))
        if gui:
            c.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1)
        self.actuator_config = actuator or ActuatorConfig()
        self.actuator: PDActuator | MotorActuator = self._make_actuator()
        self._nominal: NominalDynamics | None = None
        # Base-frame centre-of-mass shift (m) and base mass (kg) of the current randomized episode.
        self._com_offset_m = np.zeros(3)
        self._base_mass_kg = 0.0
        self._joint_cache: tuple[FloatArray, FloatArray] | None = None
        self._joint_friction_nm = 0.0  # N m, of the current randomized episode
        # The calls made every physics substep, bound once to this client. BulletClient wraps each
        # call in a new partial on every attribute access (~1.3 us, 30+ times per control step).
        client_id = c._client
        self._step_simulation = functools.partial(pybullet.stepSimulation, physicsClientId=client_id)
        self._get_joint_states = functools.partial(
            pybullet.getJointStates, self.robot_id, self.joint_ids, physicsClientId=client_id
        )
        self._set_torques = functools.partial(
            pybullet.setJointMotorControlArray,
            self.robot_id,
            self.joint_ids,
            pybullet.TORQUE_CONTROL,
            physicsClientId=client_id,
        )

    # ---- construction helpers -------------------------------------------------------------------

    def _make_actuator(
        self, kp_scale: float = 1.0, kd_scale: float = 1.0, strength_scale: float = 1.0
    ) -> PDActuator | MotorActuator:
        """The spec's PD law (gains and torque limits scaled), wrapped in the motor model when the
        actuator config turns any motor effect on."""
        spec = self.spec
        pd = PDActuator(spec.kp * kp_scale, spec.kd * kd_scale, spec.torque_limits_nm * strength_scale)
        cfg = self.actuator_config
        if not cfg.enabled:
            return pd
        return MotorActuator(
            pd,
            physics_dt_s=self.sim.physics_dt_s,
            time_constant_s=cfg.motor_time_constant_s,
            no_load_speed_radps=spec.no_load_speeds_radps if cfg.torque_speed_limit else None,
        )

    def _link_indices(self) -> dict[str, int]:
        """Map of child link names to their PyBullet index (-1 for the base)."""
        c = self.client
        names = {self.spec.base_link: -1}
        for j in range(c.getNumJoints(self.robot_id)):
            info = c.getJointInfo(self.robot_id, j)
            names[info[12].decode()] = j
        return names

    # ---- episode reset --------------------------------------------------------------------------

    def place_stairs(self, flight: Flight) -> None:
        self.stairs.place(flight)

    def reset_robot(self, base_pos_m: FloatArray, yaw_rad: float, joint_pos_rad: FloatArray) -> None:
        """Put the robot at rest at a pose: base position (3,), heading, joint positions (J,)."""
        c = self.client
        quat = c.getQuaternionFromEuler((0.0, 0.0, yaw_rad))
        c.resetBasePositionAndOrientation(self.robot_id, base_pos_m.tolist(), quat)
        c.resetBaseVelocity(self.robot_id, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        for joint, q in zip(self.joint_ids, joint_pos_rad, strict=True):
            c.resetJointState(self.robot_id, joint, float(q), 0.0)
        self._joint_cache = None
        self.actuator.reset()

    # ---- domain randomization (used only when a preset enables it) -------------------------------

    @property
    def nominal(self) -> NominalDynamics:
        """The dynamics as built, read from PyBullet on first use (before any randomization)."""
        if self._nominal is None:
            c, robot = self.client, self.robot_id
            links = range(-1, c.getNumJoints(robot))
            infos = [c.getDynamicsInfo(robot, link) for link in links]
            feet = [c.getDynamicsInfo(robot, link) for link in self.foot_link_ids]
            self._nominal = NominalDynamics(
                link_mass_kg=np.array([info[0] for info in infos]),
                link_inertia=np.array([info[2] for info in infos]),
                foot_friction=np.array([info[1] for info in feet]),
                foot_restitution=np.array([info[5] for info in feet]),
                joint_damping_nms_per_rad=np.array(
                    [c.getJointInfo(robot, j)[6] for j in self.joint_ids], dtype=np.float64
                ),
                terrain_friction=float(c.getDynamicsInfo(self.plane_id, -1)[1]),
            )
        return self._nominal

    def apply_dynamics(self, sample: RandomizationSample) -> None:
        """Set this episode's randomized dynamics, each computed from the nominal values (so nothing
        drifts across episodes): terrain and foot friction and restitution, base mass (payload) and
        COM shift, link masses, joint friction and damping, PD gains and torque limits.

        PyBullet cannot move the centre of mass of an existing link, so the COM shift is modelled by
        its gravity moment: every substep of `step_perturbed` applies the world-frame torque
        `(R c) x (0, 0, -m_base g)` to the base (R: base orientation at the start of the control
        step). Inertial coupling of the shifted COM is not modelled.
        """
        c, robot = self.client, self.robot_id
        nominal = self.nominal
        base_mass = float(nominal.link_mass_kg[0]) + sample.payload_kg
        if base_mass < _MIN_BASE_MASS_KG:
            raise ConfigError(
                f"randomization.payload_kg {sample.payload_kg:g} kg leaves the base with {base_mass:g} "
                f"kg; its nominal mass is {nominal.link_mass_kg[0]:g} kg"
            )
        base_ratio = base_mass / nominal.link_mass_kg[0]
        c.changeDynamics(
            robot, -1, mass=base_mass, localInertiaDiagonal=(nominal.link_inertia[0] * base_ratio).tolist()
        )
        scale = sample.link_mass_scale
        for i in range(1, len(nominal.link_mass_kg)):
            if nominal.link_mass_kg[i] > 0.0:
                c.changeDynamics(
                    robot,
                    i - 1,
                    mass=float(nominal.link_mass_kg[i] * scale),
                    localInertiaDiagonal=(nominal.link_inertia[i] * scale).tolist(),
                )
        self._base_mass_kg = base_mass
        self._com_offset_m = np.array(sample.com_offset_m, dtype=np.float64)

        for body in (self.plane_id, *self.stairs.body_ids):
            c.changeDynamics(body, -1, lateralFriction=sample.ground_friction, restitution=sample.restitution)
        for link, friction in zip(self.foot_link_ids, nominal.foot_friction, strict=True):
            # Bullet multiplies the two bodies' restitutions: feet at 1 make the contact's the terrain's.
            c.changeDynamics(
                robot, link, lateralFriction=float(friction * sample.foot_friction_scale), restitution=1.0
            )
        for joint, damping in zip(self.joint_ids, nominal.joint_damping_nms_per_rad, strict=True):
            c.changeDynamics(robot, joint, jointDamping=float(damping + sample.joint_damping_nms_per_rad))
        # Coulomb joint friction, added to the motor torques every substep (see joint_friction_torques).
        self._joint_friction_nm = sample.joint_friction_nm
        self.actuator = self._make_actuator(sample.kp_scale, sample.kd_scale, sample.motor_strength_scale)

    def com_torque_nm(self, rotation: FloatArray) -> FloatArray | None:
        """(3,) world-frame gravity moment of the base's COM shift for base orientation `rotation`
        (3, 3), or None when there is no shift."""
        if not self._com_offset_m.any():
            return None
        offset = rotation @ self._com_offset_m
        weight = self._base_mass_kg * _GRAVITY_MPS2
        return np.array([-weight * offset[1], weight * offset[0], 0.0])

    def push_base(self, delta_vel_mps: FloatArray) -> None:
        """Add `delta_vel_mps` (3,) to the base's linear velocity (an instantaneous push)."""
        c = self.client
        lin, ang = c.getBaseVelocity(self.robot_id)
        c.resetBaseVelocity(self.robot_id, (np.asarray(lin) + delta_vel_mps).tolist(), ang)

    # ---- stepping -------------------------------------------------------------------------------

    def _read_joints(self) -> tuple[FloatArray, FloatArray]:
        q, qd, _, _ = zip(*self._get_joint_states(), strict=True)
        return np.array(q), np.array(qd)

    def step(self, q_target_rad: FloatArray) -> AppliedTorques:
        """Advance one control step: `decimation` physics substeps of PD torque control.

        Joint states are read once per substep (the PD law needs them); the read at the end of a
        control step is reused by the next step's first substep, since the physics has not moved.
        """
        decimation = self.sim.decimation
        taus = np.empty((decimation, len(self.joint_ids)))
        qds = np.empty_like(taus)
        q, qd = self._joint_cache if self._joint_cache is not None else self._read_joints()
        for substep in range(decimation):
            if substep:
                q, qd = self._read_joints()
            taus[substep] = tau = self.actuator.torques(q_target_rad, q, qd)
            qds[substep] = qd
            self._set_torques(forces=self._joint_torques(tau, qd))
            self._step_simulation()
        self._joint_cache = None
        return AppliedTorques(taus, qds)

    def _joint_torques(self, motor_nm: FloatArray, qd: FloatArray) -> list[float]:
        """What acts on the joints over a substep: the motors' torques (J,) plus joint friction."""
        if self._joint_friction_nm:
            motor_nm = motor_nm + joint_friction_torques(qd, self._joint_friction_nm)
        return motor_nm.tolist()

    def step_perturbed(
        self,
        targets_rad: Sequence[FloatArray],
        *,
        action_latency_substeps: int = 0,
        snapshot_substep: int | None = None,
        com_torque_nm: FloatArray | None = None,
    ) -> tuple[AppliedTorques, RobotState | None]:
        """`step` with action latency, a mid-step state snapshot and the COM-shift moment.

        Args:
            targets_rad: the joint targets (J,) of the last control steps, oldest first, newest last;
                substep s applies the target sent ceil((k - s) / decimation) steps ago (k = the action
                latency in substeps), so the new target acts from substep k on.
            action_latency_substeps: k >= 0; needs len(targets_rad) > ceil(k / decimation).
            snapshot_substep: 1..decimation-1: also return the state read after that many substeps
                (for observation latency); None: return None.
            com_torque_nm: (3,) world-frame torque applied to the base every substep, or None.
        """
        decimation = self.sim.decimation
        taus = np.empty((decimation, len(self.joint_ids)))
        qds = np.empty_like(taus)
        snapshot: RobotState | None = None
        q, qd = self._joint_cache if self._joint_cache is not None else self._read_joints()
        c = self.client
        torque = None if com_torque_nm is None else com_torque_nm.tolist()
        for substep in range(decimation):
            if substep:
                q, qd = self._read_joints()
                if substep == snapshot_substep:
                    snapshot = self._base_state(q, qd)
            lag = (
                -(-(action_latency_substeps - substep) // decimation)
                if action_latency_substeps > substep
                else 0
            )
            taus[substep] = tau = self.actuator.torques(targets_rad[-1 - lag], q, qd)
            qds[substep] = qd
            self._set_torques(forces=self._joint_torques(tau, qd))
            if torque is not None:
                c.applyExternalTorque(self.robot_id, -1, torque, pybullet.WORLD_FRAME)
            self._step_simulation()
        self._joint_cache = None
        return AppliedTorques(taus, qds), snapshot

    def _base_state(self, q: FloatArray, qd: FloatArray) -> RobotState:
        c = self.client
        pos, quat = c.getBasePositionAndOrientation(self.robot_id)
        lin, ang = c.getBaseVelocity(self.robot_id)
        return RobotState(np.array(pos), np.array(quat), np.array(lin), np.array(ang), q, qd)

    def read_state(self) -> RobotState:
        """One batched read of base pose, base velocity and joint states."""
        c = self.client
        pos, quat = c.getBasePositionAndOrientation(self.robot_id)
        lin, ang = c.getBaseVelocity(self.robot_id)
        q, qd = self._read_joints()
        self._joint_cache = (q, qd)
        return RobotState(np.array(pos), np.array(quat), np.array(lin), np.array(ang), q, qd)

    def contacts(self) -> Contacts:
        """Classify the robot's current contact points by link (one getContactPoints call)."""
        feet = np.zeros(len(self.foot_link_ids), dtype=bool)
        thigh = False
        base_points: list[tuple[float, float, float]] = []
        body_links: set[int] = set()
        for point in self.client.getContactPoints(bodyA=self.robot_id):
            link = point[3]
            if link in self._foot_index:
                feet[self._foot_index[link]] = True
            elif link == -1:
                base_points.append(point[5])  # positionOnA, world frame
            else:
                body_links.add(link)
                thigh = thigh or link in self.thigh_link_ids
        # Almost every step has no base contact: share one empty array rather than build one.
        points = np.array(base_points) if base_points else _NO_POINTS
        return Contacts(feet, bool(base_points), thigh, len(body_links), points)

    def foot_positions(self) -> FloatArray:
        """(F, 3) world positions of the feet (the foot links' origins: the sphere centres), m."""
        states = self.client.getLinkStates(self.robot_id, self.foot_link_ids)
        return np.array([s[0] for s in states])

    def foot_velocities(self) -> FloatArray:
        """(F, 3) world-frame linear velocities of the feet in m/s."""
        states = self.client.getLinkStates(self.robot_id, self.foot_link_ids, computeLinkVelocity=1)
        return np.array([s[6] for s in states])

    def terrain_heights(self, xy_m: FloatArray) -> FloatArray:
        """(N,) terrain surface height in m under each of the (N, 2) world xy points.

        One batched ray cast straight down that sees only terrain (ground and stairs), not the robot.
        """
        n = len(xy_m)
        start = np.column_stack([xy_m, np.full(n, self._ray_top_m)])
        end = np.column_stack([xy_m, np.full(n, -1.0)])
        hits = self.client.rayTestBatch(start.tolist(), end.tolist(), collisionFilterMask=_TERRAIN_GROUP)
        return np.array([h[3][2] if h[0] >= 0 else 0.0 for h in hits])

    def render(self, width: int, height: int, target: FloatArray) -> NDArray[np.uint8]:
        """(H, W, 3) RGB image from the follow camera (`FOLLOW_CAMERA`) aimed at `target` (3,)."""
        c = self.client
        view = c.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target.tolist(), roll=0.0, upAxisIndex=2, **FOLLOW_CAMERA
        )
        proj = c.computeProjectionMatrixFOV(fov=60.0, aspect=width / height, nearVal=0.05, farVal=20.0)
        _, _, rgba, _, _ = c.getCameraImage(width, height, view, proj, renderer=pybullet.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]

    def close(self) -> None:
        with contextlib.suppress(pybullet.error):  # already disconnected
            self.client.disconnect()
