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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pybullet
import pybullet_data
from numpy.typing import NDArray
from pybullet_utils.bullet_client import BulletClient

from stairbot.envs.config import SimConfig
from stairbot.robots.spec import RobotSpec
from stairbot.sim.actuators import AppliedTorques, PDActuator
from stairbot.terrain.build import StairBodies
from stairbot.terrain.stairs import Flight, StairSpec

FloatArray = NDArray[np.float64]

# Collision filter groups. The robot collides with terrain; ray casts (whose own group is Bullet's
# default filter, 1) see terrain but not the robot; terrain never collides with terrain: the overlapping
# static stair boxes would otherwise be narrowphase pairs every substep (a third of the physics time).
_RAY_GROUP = 1
_ROBOT_GROUP = 2
_TERRAIN_GROUP = 4


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


@dataclass(frozen=True)
class Contacts:
    """Contacts of the robot with the ground and stairs after a control step.

    Attributes:
        foot_contact: (F,) bool, foot f touches something.
        base_contact: the base link touches something.
        thigh_contact: any thigh link touches something.
        num_body_contacts: number of robot links other than the feet and the base in contact.
    """

    foot_contact: NDArray[np.bool_]
    base_contact: bool
    thigh_contact: bool
    num_body_contacts: int


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
    return robot, joints


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
    ) -> None:
        """Build the scene. `max_riser_m`: the tallest riser any episode will ask for."""
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
        links = self._link_indices()
        self.foot_link_ids = [links[name] for name in spec.foot_links]
        self.thigh_link_ids = frozenset(links[name] for name in spec.thigh_links)
        self._foot_index = {link: i for i, link in enumerate(self.foot_link_ids)}
        set_collision_groups(c, self.robot_id, (self.plane_id, *self.stairs.body_ids))
        if gui:
            c.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1)
        self.actuator = PDActuator(spec.kp, spec.kd, spec.torque_limits_nm)
        self._joint_cache: tuple[FloatArray, FloatArray] | None = None
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
            self._set_torques(forces=tau.tolist())
            self._step_simulation()
        self._joint_cache = None
        return AppliedTorques(taus, qds)

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
        base = thigh = False
        body_links: set[int] = set()
        for point in self.client.getContactPoints(bodyA=self.robot_id):
            link = point[3]
            if link in self._foot_index:
                feet[self._foot_index[link]] = True
            elif link == -1:
                base = True
            else:
                body_links.add(link)
                thigh = thigh or link in self.thigh_link_ids
        return Contacts(feet, base, thigh, len(body_links))

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
