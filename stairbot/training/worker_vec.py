"""A VecEnv whose worker processes each step a block of envs: fewer pipe round trips per env step.

SB3's `SubprocVecEnv` runs one env per process, so every env step costs a message to a worker and
one back; on a small machine that round trip (and waking a process per env) costs about as much as
the simulation itself (`stairbot bench train`). Here W workers hold N envs in contiguous blocks
(env i lives in worker i * W // N's block, in order); one `step` message per worker steps its whole
block, and the replies come back as one batch. With W = N it is SB3's layout.

The semantics are SB3's: an env that ends is reset in its worker, its last observation is in
`info["terminal_observation"]`, `info["TimeLimit.truncated"]` marks truncation without termination,
and `seed()` / `set_options()` apply at the next `reset()`. An exception in a worker comes back to
the caller as a `WorkerError` carrying the worker's traceback (the worker stays alive to be closed).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from stairbot.errors import StairbotError


class WorkerError(StairbotError):
    """An env raised inside a worker process; the message carries the worker's traceback."""


def _step_env(env: gym.Env, action: np.ndarray) -> tuple[Any, float, bool, dict[str, Any], dict[str, Any]]:
    observation, reward, terminated, truncated, info = env.step(action)
    done = terminated or truncated
    info["TimeLimit.truncated"] = truncated and not terminated
    reset_info: dict[str, Any] = {}
    if done:
        info["terminal_observation"] = observation
        observation, reset_info = env.reset()
    return observation, float(reward), done, info, reset_info


def _answer(envs: list[gym.Env], command: str, data: Any) -> Any:
    if command == "step":
        return [_step_env(env, action) for env, action in zip(envs, data, strict=True)]
    if command == "reset":
        seeds, options = data
        return [env.reset(seed=s, options=o) for env, s, o in zip(envs, seeds, options, strict=True)]
    local, payload = data  # the block-local env indices the command is for, and its arguments
    if command == "get_attr":
        return [envs[i].get_wrapper_attr(payload) for i in local]
    if command == "set_attr":
        name, value = payload
        for i in local:
            setattr(envs[i], name, value)
        return None
    if command == "env_method":
        name, args, kwargs = payload
        return [envs[i].get_wrapper_attr(name)(*args, **kwargs) for i in local]
    if command == "is_wrapped":
        return [is_wrapped(envs[i], payload) for i in local]
    raise ValueError(f"unknown worker command {command!r}")


def _worker(remote: Connection, parent_remote: Connection, factories: list[Callable[[], gym.Env]]) -> None:
    parent_remote.close()
    envs: list[gym.Env] = []
    try:
        envs = [factory() for factory in factories]
        remote.send(("ok", None))
    except Exception:  # reported to the parent, which raises it
        remote.send(("error", traceback.format_exc()))
    while True:
        try:
            command, data = remote.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if command == "close":
            break
        try:
            remote.send(("ok", _answer(envs, command, data)))
        except Exception:  # reported to the parent, which raises it
            remote.send(("error", traceback.format_exc()))
    for env in envs:
        env.close()
    remote.close()


def blocks(n_envs: int, n_workers: int) -> list[range]:
    """Contiguous env index blocks, one per worker, sizes differing by at most one."""
    if not 1 <= n_workers <= n_envs:
        raise ValueError(f"need 1 <= workers <= envs, got {n_workers} workers for {n_envs} envs")
    bounds = [w * n_envs // n_workers for w in range(n_workers + 1)]
    return [range(bounds[w], bounds[w + 1]) for w in range(n_workers)]


class BlockSubprocVecEnv(VecEnv):
    """`len(env_fns)` envs in `n_workers` subprocesses, each stepping a contiguous block of them.

    `env_fns` must be picklable (they are sent to the workers, started with `start_method`,
    default forkserver where available, as SB3 does).
    """

    def __init__(
        self, env_fns: Sequence[Callable[[], gym.Env]], n_workers: int, start_method: str | None = None
    ) -> None:
        self._blocks = blocks(len(env_fns), n_workers)
        self._worker_of = [w for w, block in enumerate(self._blocks) for _ in block]  # env -> worker
        if start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        context = multiprocessing.get_context(start_method)
        self._remotes: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for block in self._blocks:
            remote, worker_remote = context.Pipe()
            process = context.Process(  # type: ignore[attr-defined]  # every concrete context has it
                target=_worker, args=(worker_remote, remote, [env_fns[i] for i in block]), daemon=True
            )
            process.start()
            worker_remote.close()
            self._remotes.append(remote)
            self._processes.append(process)
        self._closed = False
        self._waiting = False
        try:
            self._gather(range(n_workers))
            observation_space = self._ask(0, "get_attr", ([0], "observation_space"))[0]
            action_space = self._ask(0, "get_attr", ([0], "action_space"))[0]
        except BaseException:
            self.close()
            raise
        super().__init__(len(env_fns), observation_space, action_space)

    # -- messaging -----------------------------------------------------------------------------

    def _gather(self, workers: Iterable[int]) -> list[Any]:
        """Each worker's answer; raises the first worker's error after reading every answer."""
        answers, errors = [], []
        for w in workers:
            try:
                status, value = self._remotes[w].recv()
            except EOFError as error:
                raise WorkerError(f"env worker {w} (envs {self._describe(w)}) died") from error
            answers.append(value)
            if status == "error":
                errors.append(f"env worker {w} (envs {self._describe(w)}) failed:\n{value}")
        if errors:
            raise WorkerError(errors[0])
        return answers

    def _describe(self, worker: int) -> str:
        block = self._blocks[worker]
        return f"{block.start}-{block.stop - 1}"

    def _ask(self, worker: int, command: str, data: Any) -> Any:
        self._remotes[worker].send((command, data))
        return self._gather([worker])[0]

    def _by_worker(self, indices: VecEnvIndices) -> dict[int, list[int]]:
        """Global env indices grouped by worker, as block-local indices, in the order given."""
        local: dict[int, list[int]] = {}
        for index in self._get_indices(indices):
            worker = self._worker_of[index]
            local.setdefault(worker, []).append(index - self._blocks[worker].start)
        return local

    def _per_env(self, command: str, payload: Any, indices: VecEnvIndices) -> list[Any]:
        grouped = self._by_worker(indices)
        for worker, local in grouped.items():
            self._remotes[worker].send((command, (local, payload)))
        answers = self._gather(grouped)
        by_index = {}
        for (worker, local), values in zip(grouped.items(), answers, strict=True):
            for i, value in zip(local, values or [None] * len(local), strict=True):
                by_index[self._blocks[worker].start + i] = value
        return [by_index[i] for i in self._get_indices(indices)]

    # -- VecEnv --------------------------------------------------------------------------------

    def step_async(self, actions: np.ndarray) -> None:
        for remote, block in zip(self._remotes, self._blocks, strict=True):
            remote.send(("step", actions[block.start : block.stop]))
        self._waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        self._waiting = False
        results = [r for answer in self._gather(range(len(self._remotes))) for r in answer]
        observations, rewards, dones, infos, reset_infos = zip(*results, strict=True)
        self.reset_infos = list(reset_infos)
        return (
            np.stack(observations),
            np.array(rewards),  # float64, as SubprocVecEnv gives
            np.array(dones, dtype=bool),
            list(infos),
        )

    def reset(self) -> VecEnvObs:
        for remote, block in zip(self._remotes, self._blocks, strict=True):
            seeds = [self._seeds[i] for i in block]
            options = [self._options[i] for i in block]
            remote.send(("reset", (seeds, options)))
        results = [r for answer in self._gather(range(len(self._remotes))) for r in answer]
        observations, reset_infos = zip(*results, strict=True)
        self.reset_infos = list(reset_infos)
        self._reset_seeds()
        self._reset_options()
        return np.stack(observations)

    def close(self) -> None:
        if self._closed:
            return
        if self._waiting:  # a step in flight: read its answers so the workers can take "close"
            with contextlib.suppress(WorkerError):
                self._gather(range(len(self._remotes)))
        for remote in self._remotes:
            with contextlib.suppress(OSError):  # a worker that already died
                remote.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        self._closed = True

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._per_env("get_attr", attr_name, indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._per_env("set_attr", (attr_name, value), indices)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        return self._per_env("env_method", (method_name, method_args, method_kwargs), indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._per_env("is_wrapped", wrapper_class, indices)
