"""Headless videos of a policy climbing: `stairbot record POLICY --out FILE.mp4|.gif`.

The env's own PyBullet world renders every frame (DIRECT client, TinyRenderer: no display, no GPU),
from `World.render`'s camera behind and to the side of the robot. The camera's target follows the
base through a first-order low-pass filter (time constant `CAMERA_TIME_CONSTANT_S`), updated every
control step, so the picture does not shake with the gait.

Frames are taken at `fps` in simulated time, so the video plays in real time: frame i shows the state
at the first control step at or after t = i / fps (frame 0 is the state after reset). `fps` may be
at most the control rate (50 Hz by default), which gives one frame per control step; the default 25
fps keeps every second step. Episodes (seeds `seed`, `seed + 1`, ...) follow each other in one file;
the camera snaps to the robot at each reset.

`.mp4` is H.264 (yuv420p, so width and height must be even) through the ffmpeg binary shipped by
imageio-ffmpeg; `.gif` is written by Pillow (frame delays are whole milliseconds, looping forever;
Pillow merges identical consecutive frames into one longer frame). Rendering dominates the time:
TinyRenderer takes about 80 ms for a 480x360 frame on one core, so a 20 s episode at 25 fps takes
about 40 s.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.errors import StairbotError
from stairbot.policy_source import PolicySource
from stairbot.viz.telemetry import TIME_LIMIT, policy_env

VIDEO_FORMATS = (".mp4", ".gif")
CAMERA_TIME_CONSTANT_S = 0.3
MIN_SIZE_PX = 16
MAX_SIZE_PX = 4096

FloatArray = NDArray[np.float64]


class FollowCamera:
    """Camera target (3,) that trails the robot's base with a low-pass filter.

    Each `update(base, dt)` moves the target a fraction 1 - exp(-dt / time_constant_s) of the way to
    the base; `reset` snaps it there.
    """

    def __init__(self, time_constant_s: float = CAMERA_TIME_CONSTANT_S) -> None:
        if time_constant_s < 0:
            raise ValueError(f"time_constant_s must be >= 0 s, got {time_constant_s}")
        self.time_constant_s = time_constant_s
        self._target: FloatArray | None = None

    @property
    def target(self) -> FloatArray:
        if self._target is None:
            raise RuntimeError("call reset() first")
        return self._target.copy()

    def reset(self, base_pos_m: FloatArray) -> FloatArray:
        self._target = np.array(base_pos_m, dtype=np.float64)
        return self.target

    def update(self, base_pos_m: FloatArray, dt_s: float) -> FloatArray:
        if self._target is None:
            return self.reset(base_pos_m)
        alpha = 1.0 if self.time_constant_s == 0 else 1.0 - math.exp(-dt_s / self.time_constant_s)
        self._target += alpha * (np.asarray(base_pos_m, dtype=np.float64) - self._target)
        return self.target


@dataclass(frozen=True)
class EpisodeSummary:
    seed: int
    steps: int
    seconds: float
    termination_reason: str
    steps_climbed: int
    num_steps: int
    riser_m: float
    episode_return: float

    def line(self) -> str:
        return (
            f"episode seed {self.seed}: {self.steps} steps ({self.seconds:.1f} s) on {self.num_steps} "
            f"risers of {self.riser_m:.3f} m, return {self.episode_return:.2f}, ended by "
            f"{self.termination_reason}, steps climbed {self.steps_climbed}/{self.num_steps}"
        )


@dataclass(frozen=True)
class Recording:
    path: Path
    frames: int
    fps: float
    width: int
    height: int
    episodes: tuple[EpisodeSummary, ...]

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def check_video_path(out: Path) -> None:
    """Raise `StairbotError` unless `out` ends in a supported video extension."""
    if out.suffix.lower() not in VIDEO_FORMATS:
        raise StairbotError(
            f"--out must end in {' or '.join(VIDEO_FORMATS)} (the format is taken from the extension), "
            f"got {str(out)!r}"
        )


def check_video_options(out: Path, width: int, height: int, episodes: int, fps: float) -> None:
    """Validate what can be checked before a policy is loaded (`StairbotError` with what is allowed)."""
    check_video_path(out)
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIZE_PX <= value <= MAX_SIZE_PX:
            raise StairbotError(f"--{name} must be in [{MIN_SIZE_PX}, {MAX_SIZE_PX}] px, got {value}")
        if out.suffix.lower() == ".mp4" and value % 2:
            raise StairbotError(f"--{name} must be even for .mp4 (H.264 yuv420p), got {value}")
    if episodes < 1:
        raise StairbotError(f"--episodes must be >= 1, got {episodes}")
    if not (math.isfinite(fps) and fps > 0):
        raise StairbotError(f"--fps must be a positive number, got {fps}")


def _open_writer(path: Path, fps: float) -> Any:
    import imageio.v2 as imageio

    if path.suffix.lower() == ".mp4":
        # macro_block_size=1: keep the size asked for (imageio would otherwise pad to multiples of 16).
        return imageio.get_writer(
            path,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
        )
    return imageio.get_writer(path, format="GIF", mode="I", duration=1000.0 / fps, loop=0)


def _record_episode(
    env: Any,
    source: PolicySource,
    writer: Any,
    camera: FollowCamera,
    *,
    seed: int,
    fps: float,
    width: int,
    height: int,
) -> tuple[EpisodeSummary, int]:
    """Play one episode, appending its frames to `writer`; returns its summary and the frame count."""
    base = env.unwrapped
    observation, _ = env.reset(seed=seed)
    world = base.world
    writer.append_data(world.render(width, height, camera.reset(world.read_state().base_pos_m)))
    frames = 1
    next_frame_s = 1.0 / fps
    steps, total, done, terminated = 0, 0.0, False, False
    info: dict[str, Any] = {}
    while not done:
        observation, reward, terminated, truncated, info = env.step(source.act(observation))
        steps += 1
        total += float(reward)
        done = terminated or truncated
        target = camera.update(world.read_state().base_pos_m, base.dt)
        if steps * base.dt >= next_frame_s - 1e-9:
            writer.append_data(world.render(width, height, target))
            frames += 1
            next_frame_s += 1.0 / fps
    summary = EpisodeSummary(
        seed=seed,
        steps=steps,
        seconds=steps * base.dt,
        termination_reason=str(info["termination_reason"]) if terminated else TIME_LIMIT,
        steps_climbed=int(info["steps_climbed"]),
        num_steps=base.flight.num_steps,
        riser_m=base.flight.riser_m,
        episode_return=total,
    )
    return summary, frames


def record_video(
    source: PolicySource,
    out: Path,
    *,
    width: int = 640,
    height: int = 480,
    episodes: int = 1,
    riser_m: float | None = None,
    seed: int = 0,
    fps: float = 25.0,
    max_steps: int | None = None,
    condition: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> Recording:
    """Record `episodes` episodes of `source` (seeds seed, seed + 1, ...) to `out` (.mp4 or .gif).

    `riser_m` overrides the riser (m) of the policy's env preset; `max_steps` caps each episode
    (default: the 1000-step time limit); `condition`: env overrides of a `stairbot.conditions`
    condition (None: the preset as it is); `log` gets one line per finished episode. The file is written
    next to `out` under a temporary name and moved into place when complete.
    """
    from stairbot.envs.stair_climb import StairClimbEnv

    check_video_options(out, width, height, episodes, fps)
    env = policy_env(source.env_preset, riser_m=riser_m, max_steps=max_steps, condition=condition)
    base = env.unwrapped
    assert isinstance(base, StairClimbEnv)
    control_hz = 1.0 / base.dt
    if fps > control_hz + 1e-9:
        env.close()
        raise StairbotError(
            f"--fps must be at most the control rate, {control_hz:g} Hz (one frame per control step), "
            f"got {fps:g}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    camera = FollowCamera()
    summaries: list[EpisodeSummary] = []
    frames = 0
    writer = _open_writer(partial, fps)
    try:
        for episode in range(episodes):
            summary, written = _record_episode(
                env, source, writer, camera, seed=seed + episode, fps=fps, width=width, height=height
            )
            frames += written
            summaries.append(summary)
            if log is not None:
                log(summary.line())
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        env.close()
    writer.close()
    partial.replace(out)
    return Recording(out, frames, fps, width, height, tuple(summaries))
