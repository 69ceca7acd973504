"""`stairbot bench`: environment speed beside a raw PyBullet loop measured in the same run.

The raw loop is the floor any env on this simulator pays: the same scene (ground, robot, stairs), the
same physics step, substeps, solver settings and PD law, one `getJointStates` per substep, and one
batched base + joint read per control step, with no Gymnasium env, observation, reward or
termination logic around it. The env is measured on the same preset with random actions, resets
included. Both run on one process and on one process per core.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

from stairbot.envs.config import load_env_config
from stairbot.robots.spec import load_robot_spec
from stairbot.sim.actuators import PDActuator
from stairbot.terrain.build import StairBodies
from stairbot.terrain.stairs import plan_flight

# Random actions are drawn in [-ACTION_AMPLITUDE, ACTION_AMPLITUDE] for both loops.
ACTION_AMPLITUDE = 0.5
# The raw loop puts the robot back at its spawn pose this often (control steps), like an episode.
RAW_EPISODE_STEPS = 200


@dataclass(frozen=True)
class BenchResult:
    """Throughput of one measurement, in control steps per second (all processes together)."""

    name: str
    processes: int
    steps: int
    seconds: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


def raw_loop(preset: str, steps: int, seed: int = 0) -> float:
    """Seconds for `steps` control steps of the bare PyBullet loop on the preset's scene."""
    cfg = load_env_config(preset)
    spec = load_robot_spec(cfg.robot)
    sim = cfg.sim
    c = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        c.setAdditionalSearchPath(pybullet_data.getDataPath())
        c.setPhysicsEngineParameter(
            fixedTimeStep=sim.physics_dt_s,
            numSolverIterations=sim.solver_iterations,
            enableConeFriction=0,
            deterministicOverlappingPairs=1,
        )
        c.setGravity(0.0, 0.0, -9.81)
        c.loadURDF("plane.urdf")
        stairs = StairBodies.for_spec(c, cfg.stairs, friction=sim.ground_friction)
        flight = plan_flight(cfg.stairs)
        stairs.place(flight)
        robot = c.loadURDF(
            str(spec.urdf_path),
            basePosition=(0.0, 0.0, spec.nominal_base_height_m),
            flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        )
        names = {c.getJointInfo(robot, j)[1].decode(): j for j in range(c.getNumJoints(robot))}
        joints = [names[n] for n in spec.joint_names]
        c.setJointMotorControlArray(robot, joints, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(joints))
        pd = PDActuator(spec.kp, spec.kd, spec.torque_limits_nm)
        spawn = (0.0, 0.0, flight.spawn_height_m + spec.nominal_base_height_m + 0.02)
        rng = np.random.default_rng(seed)
        default = spec.default_pose_rad
        scale = cfg.control.action_scale_rad

        def reset() -> None:
            c.resetBasePositionAndOrientation(robot, spawn, (0.0, 0.0, 0.0, 1.0))
            c.resetBaseVelocity(robot, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
            for joint, q in zip(joints, default, strict=True):
                c.resetJointState(robot, joint, float(q), 0.0)

        def read_joints() -> tuple[np.ndarray, np.ndarray]:
            states = c.getJointStates(robot, joints)
            q = np.fromiter((s[0] for s in states), np.float64, len(states))
            qd = np.fromiter((s[1] for s in states), np.float64, len(states))
            return q, qd

        reset()
        q, qd = read_joints()
        start = time.perf_counter()
        for step in range(steps):
            if step % RAW_EPISODE_STEPS == 0:
                reset()
                q, qd = read_joints()
            target = default + scale * rng.uniform(-ACTION_AMPLITUDE, ACTION_AMPLITUDE, len(joints))
            for substep in range(sim.decimation):
                if substep:
                    q, qd = read_joints()
                c.setJointMotorControlArray(
                    robot, joints, pybullet.TORQUE_CONTROL, forces=pd.torques(target, q, qd)
                )
                c.stepSimulation()
            c.getBasePositionAndOrientation(robot)
            c.getBaseVelocity(robot)
            q, qd = read_joints()
        return time.perf_counter() - start
    finally:
        c.disconnect()


def env_loop(preset: str, steps: int, seed: int = 0) -> float:
    """Seconds for `steps` steps of the registered env on `preset`, random actions, resets included."""
    import gymnasium as gym

    import stairbot  # noqa: F401  (registers the env ids)

    env = gym.make("stairbot/StairClimb-v0", preset=preset)
    try:
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        start = time.perf_counter()
        for _ in range(steps):
            action = rng.uniform(-ACTION_AMPLITUDE, ACTION_AMPLITUDE, env.action_space.shape)
            _, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            if terminated or truncated:
                env.reset()
        return time.perf_counter() - start
    finally:
        env.close()


_LOOPS = {"raw": raw_loop, "env": env_loop}


def _worker(args: tuple[str, str, int, int]) -> float:
    loop, preset, steps, seed = args
    return _LOOPS[loop](preset, steps, seed)


def measure(loop: str, preset: str, steps: int, processes: int) -> BenchResult:
    """Run `loop` ('raw' or 'env') in `processes` parallel processes of `steps` steps each."""
    if processes == 1:
        seconds = _LOOPS[loop](preset, steps, 0)
    else:
        ctx = mp.get_context("spawn")  # a fresh interpreter per worker, as SubprocVecEnv does
        with ctx.Pool(processes) as pool:
            # Wall time of the slowest worker; workers start together inside the pool.
            seconds = max(pool.map(_worker, [(loop, preset, steps, s) for s in range(processes)]))
    return BenchResult(loop, processes, steps * processes, seconds)


def run(preset: str = "stairs_up", steps: int = 2000, processes: int | None = None) -> list[BenchResult]:
    """Measure raw and env loops on one process and on one process per core; print a table."""
    per_core = processes or os.cpu_count() or 1
    results = []
    print(f"preset {preset}, {steps} control steps per process, random actions")
    print(f"{'loop':<6}{'processes':>10}{'steps/s':>12}{'env/raw':>10}")
    for n in dict.fromkeys((1, per_core)):
        raw = measure("raw", preset, steps, n)
        env = measure("env", preset, steps, n)
        results += [raw, env]
        print(f"{'raw':<6}{n:>10}{raw.steps_per_s:>12.0f}{'':>10}")
        print(f"{'env':<6}{n:>10}{env.steps_per_s:>12.0f}{env.steps_per_s / raw.steps_per_s:>10.2f}")
    return results
