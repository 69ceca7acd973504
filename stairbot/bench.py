"""`stairbot bench`: environment speed beside a raw PyBullet loop measured in the same run.

The raw loop is the floor any env on this simulator pays: the same scene (ground, robot, stairs), the
same physics step, substeps, solver settings and PD law, one `getJointStates` per substep, and one
batched base + joint read per control step, with no Gymnasium env, observation, reward or
termination logic around it. The env runs first on the preset with random actions, resets included;
the raw loop then replays its exact script (the same actions, and the same spawn poses at the same
steps), so both simulate the same trajectory and the physics costs the same in both. Both run on one
process and on one process per core.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import pybullet

from stairbot.envs.config import load_env_config
from stairbot.robots.spec import load_robot_spec
from stairbot.sim.actuators import PDActuator
from stairbot.sim.world import connect, load_ground, load_robot, set_collision_groups
from stairbot.terrain.build import StairBodies
from stairbot.terrain.stairs import plan_flight

# Random actions are drawn in [-ACTION_AMPLITUDE, ACTION_AMPLITUDE].
ACTION_AMPLITUDE = 0.5


@dataclass(frozen=True)
class Script:
    """What the env loop did, for the raw loop to replay.

    Attributes:
        actions: (steps, J) actions in [-1, 1].
        spawns: {step index: (base position (3,), base quaternion xyzw (4,))} of each reset; the
            robot is put there, at rest in its default pose, before that step.
    """

    actions: np.ndarray
    spawns: dict[int, tuple[np.ndarray, np.ndarray]]


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


def raw_loop(preset: str, script: Script) -> float:
    """Seconds for the bare PyBullet loop to replay `script` on the preset's scene."""
    cfg = load_env_config(preset)
    spec = load_robot_spec(cfg.robot)
    sim = cfg.sim
    # The same scene as the env's World, built by the same functions.
    c = connect(sim)
    try:
        plane = load_ground(c, sim.ground_friction)
        stairs = StairBodies.for_spec(c, cfg.stairs, friction=sim.ground_friction)
        stairs.place(plan_flight(cfg.stairs))
        robot, joints = load_robot(c, spec)
        set_collision_groups(c, robot, (plane, *stairs.body_ids))
        pd = PDActuator(spec.kp, spec.kd, spec.torque_limits_nm)
        default = spec.default_pose_rad
        scale = cfg.control.action_scale_vector(spec.num_joints)
        targets = default + scale * np.clip(script.actions, -1.0, 1.0)

        def reset(position: np.ndarray, quaternion: np.ndarray) -> None:
            c.resetBasePositionAndOrientation(robot, position.tolist(), quaternion.tolist())
            c.resetBaseVelocity(robot, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
            for joint, q in zip(joints, default, strict=True):
                c.resetJointState(robot, joint, float(q), 0.0)

        # Bound once to the client, as the env's World does: BulletClient's per-call wrapper is not
        # part of the floor this loop measures.
        cid = c._client
        step_simulation = functools.partial(pybullet.stepSimulation, physicsClientId=cid)
        get_joint_states = functools.partial(pybullet.getJointStates, robot, joints, physicsClientId=cid)
        set_torques = functools.partial(
            pybullet.setJointMotorControlArray, robot, joints, pybullet.TORQUE_CONTROL, physicsClientId=cid
        )

        def read_joints() -> tuple[np.ndarray, np.ndarray]:
            q, qd, _, _ = zip(*get_joint_states(), strict=True)
            return np.array(q), np.array(qd)

        q, qd = read_joints()
        start = time.perf_counter()
        for step, target in enumerate(targets):
            if step in script.spawns:
                reset(*script.spawns[step])
                q, qd = read_joints()
            for substep in range(sim.decimation):
                if substep:
                    q, qd = read_joints()
                set_torques(forces=pd.torques(target, q, qd).tolist())
                step_simulation()
            pybullet.getBasePositionAndOrientation(robot, physicsClientId=cid)
            pybullet.getBaseVelocity(robot, physicsClientId=cid)
            q, qd = read_joints()
        return time.perf_counter() - start
    finally:
        c.disconnect()


def env_loop(preset: str, steps: int, seed: int = 0) -> tuple[float, Script]:
    """Seconds for `steps` random-action steps of the env on `preset` (resets included), and the
    script of what it did."""
    import gymnasium as gym

    import stairbot  # noqa: F401  (registers the env ids)

    env = gym.make("stairbot/StairClimb-v0", preset=preset)
    try:
        num_joints = env.unwrapped.robot_spec.num_joints  # type: ignore[attr-defined]
        actions = np.random.default_rng(seed).uniform(
            -ACTION_AMPLITUDE, ACTION_AMPLITUDE, (steps, num_joints)
        )
        spawns = {}

        def reset(step: int, seed: int | None = None) -> None:
            env.reset(seed=seed)
            state = env.unwrapped.world.read_state()  # type: ignore[attr-defined]
            spawns[step] = (state.base_pos_m, state.base_quat_xyzw)

        reset(0, seed)
        start = time.perf_counter()
        for step, action in enumerate(actions.astype(np.float32)):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                reset(step + 1)
        return time.perf_counter() - start, Script(actions, spawns)
    finally:
        env.close()


def _env_worker(args: tuple[str, int, int]) -> tuple[float, Script]:
    preset, steps, seed = args
    return env_loop(preset, steps, seed)


def _raw_worker(args: tuple[str, Script]) -> float:
    return raw_loop(*args)


def measure(preset: str, steps: int, processes: int) -> tuple[BenchResult, BenchResult]:
    """(raw, env) throughput with `processes` parallel processes of `steps` steps each."""
    if processes == 1:
        env_seconds, script = env_loop(preset, steps, 0)
        raw_seconds = raw_loop(preset, script)
    else:
        ctx = mp.get_context("spawn")  # a fresh interpreter per worker, as SubprocVecEnv does
        with ctx.Pool(processes) as pool:
            # Wall time of the slowest worker; workers start together inside the pool.
            env_runs = pool.map(_env_worker, [(preset, steps, seed) for seed in range(processes)])
            raw_times = pool.map(_raw_worker, [(preset, script) for _, script in env_runs])
        env_seconds, raw_seconds = max(t for t, _ in env_runs), max(raw_times)
    total = steps * processes
    return BenchResult("raw", processes, total, raw_seconds), BenchResult(
        "env", processes, total, env_seconds
    )


def run(
    preset: str = "stairs_up", steps: int = 2000, processes: int | None = None, repeats: int = 3
) -> list[tuple[BenchResult, BenchResult]]:
    """Measure raw and env loops on one process and on one process per core, `repeats` times each
    (the same seeded script each time); print a table with the median and the range of the ratio.

    Returns the (raw, env) pairs of every repeat.
    """
    per_core = processes or os.cpu_count() or 1
    pairs: list[tuple[BenchResult, BenchResult]] = []
    print(f"preset {preset}, {steps} control steps per process, random actions, {repeats} repeats")
    print(f"{'processes':>10}{'raw steps/s':>14}{'env steps/s':>14}{'env/raw':>10}{'range':>14}")
    for n in dict.fromkeys((1, per_core)):
        runs = [measure(preset, steps, n) for _ in range(repeats)]
        pairs += runs
        raw = statistics.median(r.steps_per_s for r, _ in runs)
        env = statistics.median(e.steps_per_s for _, e in runs)
        ratios = [e.steps_per_s / r.steps_per_s for r, e in runs]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{n:>10}{raw:>14.0f}{env:>14.0f}{statistics.median(ratios):>10.2f}{spread:>14}")
    return pairs
