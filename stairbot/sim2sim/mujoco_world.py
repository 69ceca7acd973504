"""The stairs and the robot in MuJoCo, built to match the PyBullet world (`stairbot.sim.world`).

The robot is the robot spec's URDF, compiled by MuJoCo's own URDF importer (`MjSpec.from_file`) with
three changes before compiling:

- a free joint on the root link (URDF has no floating base; MuJoCo would weld the root to the world);
- `fusestatic` off, so every URDF link (the feet included) stays a body of its own name;
- contact settings of the PyBullet world: robot geoms collide with the terrain only (no
  self-collision, as `set_collision_groups` does in PyBullet), and the sliding friction of every
  contact is PyBullet's effective coefficient (see `effective_friction`).

The terrain is a ground plane (z = 0) plus one box geom per row of `Flight.tread_boxes_m` and
`Flight.nosing_boxes_m`, with the sizes `stairbot.terrain.build.StairBodies` gives PyBullet's boxes, so
`Flight.height_at` is what a ray straight down sees here too (`terrain_heights`).

Physics: `timestep` = the env's `physics_dt_s`, gravity -9.81 m/s^2, condim 3 (sliding friction
only), MuJoCo's default solver. Torques go into `qfrc_applied` on the joints' dofs; `step(tau)`
advances one physics step.

Contacts are made as hard as MuJoCo integrates stably, to match Bullet's rigid ones (`CONTACT`):
every geom's solref time constant is 2 x timestep (MuJoCo's documented lower limit), and friction uses
the elliptic cone with impratio 100 (frictional constraints much harder than normal ones: feet do
not creep). Measured with stairdog holding its default pose on PD for 2 s (ground friction 1.0),
base height and pitch against PyBullet's: MuJoCo's defaults (solref 0.02 s, pyramidal cone) sat
11.4 mm lower and 0.055 rad more nose-down as the feet crept outward; these settings 0.3 mm and
0.001 rad (after a 5 cm drop: 12.3 mm / 0.038 rad vs 0.5 mm / 0.005 rad); `tests/test_sim2sim.py`
holds them to 2 mm / 0.01 rad.

MuJoCo conventions converted here: free-joint quaternions are (w, x, y, z) (returned as x, y, z, w
like PyBullet and `stairbot.deploy`); a free joint's angular velocity (qvel[3:6]) is already in the
base frame, which is what a gyro measures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from numpy.typing import NDArray

from stairbot.errors import StairbotError
from stairbot.terrain.build import BELOW_GROUND_M
from stairbot.terrain.stairs import NOSING_THICKNESS_M, Flight

FloatArray = NDArray[np.float64]

# PyBullet gives every robot link a lateral friction of 0.5 unless the URDF says otherwise (stairdog's
# does not; stairbot sets the feet to the spec's `foot_friction`), and Bullet multiplies the two bodies'
# coefficients: a shin on ground of friction 1.0 slides at mu = 0.5. MuJoCo takes the larger of the
# two geoms' coefficients instead, so each robot geom gets the product and the terrain gets 0.
PYBULLET_DEFAULT_LINK_FRICTION = 0.5
# Geom groups: the robot's collision geoms stay in 0 (the URDF importer's), the terrain goes in 2 so
# that height rays can see the terrain alone.
TERRAIN_GROUP = 2
# Collision bits: robot geoms (contype 1, conaffinity 0) touch terrain geoms (contype 0, conaffinity
# 1) and nothing else; terrain never collides with terrain.
_ROBOT_BITS = (1, 0)
_TERRAIN_BITS = (0, 1)
_GROUND_HALF_SIZE_M = 50.0
_RAY_TOP_M = 5.0  # height rays start this far above z = 0 (stairs are at most 6 x 0.30 m tall + margin)


@dataclass(frozen=True)
class ContactSettings:
    """MuJoCo's contact softness and friction cone (see the module docstring for the measurements).

    `solref_timeconst_steps`: the contact's restoring time constant in physics steps (MuJoCo needs at
    least 2); `damping_ratio`: 1 is critical; `elliptic_cone` with `impratio` > 1 makes friction
    harder than the normal constraint (MuJoCo's advice for legged robots).
    """

    solref_timeconst_steps: float = 2.0
    damping_ratio: float = 1.0
    elliptic_cone: bool = True
    impratio: float = 100.0

    def __post_init__(self) -> None:
        if self.solref_timeconst_steps < 2.0 or self.damping_ratio <= 0.0 or self.impratio < 1.0:
            raise StairbotError(
                f"contact settings out of range: {self}; MuJoCo needs solref_timeconst_steps >= 2, "
                "damping_ratio > 0, impratio >= 1"
            )


CONTACT = ContactSettings()
MUJOCO_DEFAULT_CONTACT = ContactSettings(
    solref_timeconst_steps=10.0, elliptic_cone=False, impratio=1.0
)  # solref 0.02 s at a 2 ms step, pyramidal cone: what an unconfigured MJCF gets


def effective_friction(
    ground_friction: float, link_friction: float = PYBULLET_DEFAULT_LINK_FRICTION
) -> float:
    """The sliding friction coefficient of a contact between a robot link of friction `link_friction`
    and the terrain in the PyBullet world."""
    return link_friction * ground_friction


@dataclass(frozen=True)
class MujocoState:
    """The robot's state after a physics step. World frame unless named otherwise.

    Attributes:
        base_pos_m: (3,) base (root link) position.
        base_quat_xyzw: (4,) base orientation, x y z w, base -> world.
        base_lin_vel_mps: (3,) base linear velocity, world frame.
        base_ang_vel_body_radps: (3,) base angular velocity in the base frame (a gyro).
        joint_pos_rad, joint_vel_radps: (J,) in the order the world was built with.
    """

    base_pos_m: FloatArray
    base_quat_xyzw: FloatArray
    base_lin_vel_mps: FloatArray
    base_ang_vel_body_radps: FloatArray
    joint_pos_rad: FloatArray
    joint_vel_radps: FloatArray


def _box_geom(body: mujoco.MjsBody, name: str, row: FloatArray, *, height: float, half_y: float,
              friction: float) -> None:  # fmt: skip
    """A terrain box from a `Flight` row [x_min, x_max, z_top], `height` tall, |y| <= half_y."""
    x_min, x_max, z_top = (float(v) for v in row)
    geom = body.add_geom()
    geom.name = name
    geom.type = mujoco.mjtGeom.mjGEOM_BOX
    geom.size = [(x_max - x_min) / 2, half_y, height / 2]
    geom.pos = [(x_min + x_max) / 2, 0.0, z_top - height / 2]
    _terrain_settings(geom, friction)


def _terrain_settings(geom: mujoco.MjsGeom, friction: float) -> None:
    geom.contype, geom.conaffinity = _TERRAIN_BITS
    geom.group = TERRAIN_GROUP
    # 0: MuJoCo uses the larger coefficient of a pair, so the robot geom's (the product) decides.
    geom.friction = [0.0, 0.0, 0.0]
    geom.condim = 3
    geom.rgba = [0.6, 0.62, 0.65, 1.0]


def build_spec(
    urdf_path: Path,
    base_link: str,
    flight: Flight,
    *,
    physics_dt_s: float,
    ground_friction: float,
    contact: ContactSettings = CONTACT,
) -> mujoco.MjSpec:
    """An MjSpec of the robot (URDF, free-floating) on the flight's stairs (see the module docstring)."""
    if not urdf_path.is_file():
        raise StairbotError(f"robot description {urdf_path} does not exist")
    spec = mujoco.MjSpec.from_file(str(urdf_path))
    spec.compiler.fusestatic = False
    spec.option.timestep = physics_dt_s
    spec.option.gravity = [0.0, 0.0, -9.81]
    friction = effective_friction(ground_friction)
    root = spec.worldbody.first_body()
    if root is None or root.name != base_link:
        found = None if root is None else root.name
        raise StairbotError(f"{urdf_path}: the root link is {found!r}, the robot spec says {base_link!r}")
    root.add_freejoint().name = "floating_base"
    for geom in spec.geoms:  # only the robot's so far
        geom.contype, geom.conaffinity = _ROBOT_BITS
        geom.friction = [friction, 0.0, 0.0]
        geom.condim = 3

    world = spec.worldbody
    ground = world.add_geom()
    ground.name = "ground"
    ground.type = mujoco.mjtGeom.mjGEOM_PLANE
    ground.size = [_GROUND_HALF_SIZE_M, _GROUND_HALF_SIZE_M, 0.1]
    _terrain_settings(ground, friction)
    top = float(flight.tread_boxes_m[:, 2].max()) if len(flight.tread_boxes_m) else 0.0
    half_y = flight.width_m / 2
    for i, row in enumerate(flight.tread_boxes_m):
        # As tall as PyBullet's: every box reaches BELOW_GROUND_M under z = 0 whatever its top.
        _box_geom(world, f"tread_{i}", row, height=top + BELOW_GROUND_M, half_y=half_y, friction=friction)
    for i, row in enumerate(flight.nosing_boxes_m):
        _box_geom(world, f"nosing_{i}", row, height=NOSING_THICKNESS_M, half_y=half_y, friction=friction)
    solref = [contact.solref_timeconst_steps * physics_dt_s, contact.damping_ratio]
    for geom in spec.geoms:  # robot and terrain alike, so every pair uses it
        geom.solref = solref
    spec.option.cone = (
        mujoco.mjtCone.mjCONE_ELLIPTIC if contact.elliptic_cone else mujoco.mjtCone.mjCONE_PYRAMIDAL
    )
    spec.option.impratio = contact.impratio
    return spec


class MujocoWorld:
    """One robot on one flight of stairs in MuJoCo; joints read and driven in `joint_names` order."""

    def __init__(
        self,
        urdf_path: Path,
        base_link: str,
        joint_names: Sequence[str],
        flight: Flight,
        *,
        physics_dt_s: float,
        ground_friction: float,
        thigh_links: Sequence[str] = (),
        foot_links: Sequence[str] = (),
        foot_friction: float = PYBULLET_DEFAULT_LINK_FRICTION,
        contact: ContactSettings = CONTACT,
    ) -> None:
        self.flight = flight
        self.spec = build_spec(
            urdf_path,
            base_link,
            flight,
            physics_dt_s=physics_dt_s,
            ground_friction=ground_friction,
            contact=contact,
        )
        self.model = m = self.spec.compile()
        # The feet's own coefficient (the robot spec's foot_friction, which the PyBullet world sets).
        foot_bodies = [m.body(name).id for name in foot_links]
        feet = np.isin(m.geom_bodyid, foot_bodies) & (m.geom_group != TERRAIN_GROUP)
        m.geom_friction[feet, 0] = effective_friction(ground_friction, foot_friction)
        self.data = mujoco.MjData(m)
        self.joint_names = tuple(joint_names)
        missing = [n for n in self.joint_names if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) < 0]
        if missing:
            raise StairbotError(f"{urdf_path} has no joints {missing} (the bundle's joint order names them)")
        joints = [m.joint(n) for n in self.joint_names]
        self.qpos_adr = np.array([int(j.qposadr[0]) for j in joints])
        self.dof_adr = np.array([int(j.dofadr[0]) for j in joints])
        self.base_body = m.body(base_link).id
        free = m.joint("floating_base")
        self._base_q = int(free.qposadr[0])
        self._base_v = int(free.dofadr[0])
        self.thigh_bodies = frozenset(m.body(name).id for name in thigh_links)
        self.foot_bodies = tuple(m.body(name).id for name in foot_links)
        self.robot_geoms = np.flatnonzero(m.geom_group != TERRAIN_GROUP)
        self._ray_groups = np.zeros(6, np.uint8)
        self._ray_groups[TERRAIN_GROUP] = 1
        self._ray_geom = np.zeros((1, 1), np.int32)

    @property
    def physics_dt_s(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, base_pos_m: FloatArray, yaw_rad: float, joint_pos_rad: FloatArray) -> None:
        """The robot at rest: base at `base_pos_m` (3,) with heading `yaw_rad`, joints (J,)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        b = self._base_q
        d.qpos[b : b + 3] = base_pos_m
        d.qpos[b + 3 : b + 7] = (math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2))
        d.qpos[self.qpos_adr] = joint_pos_rad
        mujoco.mj_forward(m, d)

    def joints(self) -> tuple[FloatArray, FloatArray]:
        """(q, qd), (J,) each, rad and rad/s."""
        return self.data.qpos[self.qpos_adr].copy(), self.data.qvel[self.dof_adr].copy()

    def step(self, torques_nm: FloatArray) -> None:
        """One physics step with joint torques (J,) N·m (held for the step)."""
        d = self.data
        d.qfrc_applied[self.dof_adr] = torques_nm
        mujoco.mj_step(self.model, d)

    def read_state(self) -> MujocoState:
        d = self.data
        b, v = self._base_q, self._base_v
        w, x, y, z = d.qpos[b + 3 : b + 7]
        q, qd = self.joints()
        return MujocoState(
            base_pos_m=d.qpos[b : b + 3].copy(),
            base_quat_xyzw=np.array([x, y, z, w]),
            base_lin_vel_mps=d.qvel[v : v + 3].copy(),
            base_ang_vel_body_radps=d.qvel[v + 3 : v + 6].copy(),
            joint_pos_rad=q,
            joint_vel_radps=qd,
        )

    def base(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(position (3,) m, quaternion x y z w (4,), gyro (3,) rad/s in the base frame)."""
        d = self.data
        b, v = self._base_q, self._base_v
        w, x, y, z = d.qpos[b + 3 : b + 7]
        return d.qpos[b : b + 3].copy(), np.array([x, y, z, w]), d.qvel[v + 3 : v + 6].copy()

    def contacts(self) -> tuple[bool, bool]:
        """(the base touches the terrain, a thigh touches the terrain)."""
        bodies = self.contact_bodies()
        return self.base_body in bodies, not self.thigh_bodies.isdisjoint(bodies)

    def contact_bodies(self) -> set[int]:
        """Ids of the robot bodies touching the terrain now (robot geoms touch nothing else)."""
        m, d = self.model, self.data
        bodies: set[int] = set()
        for i in range(d.ncon):
            contact = d.contact[i]
            for geom in (contact.geom1, contact.geom2):
                body = int(m.geom_bodyid[geom])
                if body != 0:  # world: the terrain
                    bodies.add(body)
        return bodies

    def terrain_heights(self, xy_m: FloatArray) -> FloatArray:
        """(N,) terrain height under each of the (N, 2) world xy points: rays straight down that see
        the terrain geoms only (0 where a ray misses, as in PyBullet's world)."""
        heights = np.zeros(len(xy_m))
        down = np.array([0.0, 0.0, -1.0])
        for i, (x, y) in enumerate(xy_m):
            start = np.array([x, y, _RAY_TOP_M])
            distance = mujoco.mj_ray(
                self.model, self.data, start, down, self._ray_groups, True, -1, self._ray_geom
            )
            heights[i] = _RAY_TOP_M - distance if distance >= 0 else 0.0
        return heights
