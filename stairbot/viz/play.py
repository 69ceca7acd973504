"""Watch a policy climb in the PyBullet GUI: `stairbot play [POLICY]`.

POLICY is a run directory, an export bundle, `pretrained`, or nothing (zero action: the robot stands),
resolved by `stairbot.policy_source.load_policy_source`. The env is the policy's own preset (so its
observations match) with the GUI open (`render_mode="human"`); the camera follows the robot. The
loop runs in real time at the control rate (`env.dt`, 50 Hz by default): it sleeps to fixed
deadlines and, when a step (physics, policy and overlays) takes longer than a period, it does not try
to catch up; the text panel then shows the real-time factor and a warning goes to stderr once.

Keys (in the GUI window):

    r              reset now: the next episode (next seed)
    space          pause / resume
    n, right       one control step while paused
    up, +, =       raise the stairs by 1 cm (0.01 m) from the next reset
    down, -        lower the stairs by 1 cm from the next reset (0 m is flat ground)
    o              overlays on / off: contact forces, height scan, text panel
    q, Esc         quit (closing the window quits too)

PyBullet's own keys keep working (w wireframe, g side panels, s shadows, ...; see its docs); Esc
also closes the window itself. The env keeps the camera aimed at the robot every step; the distance,
yaw and pitch stay where the mouse put them, so the view can be orbited while the robot walks. An
episode that ends stays on screen for a second (`end_hold_s`), then the next one starts.
`--max-steps N` quits after N control steps and `--screenshot FILE` writes the GUI camera's view as a
PNG on quitting (both for scripted runs).

Stairs: the riser is set through the curriculum's difficulty at each reset (`reset(options=
{"difficulty": riser_m / MAX_RISER_M})`, with `curriculum.max_riser_m` raised to MAX_RISER_M =
0.30 m and the adaptive curriculum off), so any riser from 0 to 0.30 m can be built in the same
world and a riser change takes effect at the next reset, when the flight is planned again.

Replaying a failure: episode k of a session started with `--seed S` is reset with seed S + k, and
each reset prints its seed and riser; when an episode ends the exact command that replays it is
printed (`stairbot play POLICY --seed S+k --riser-m H --direction D`: the replay's episode 0 then uses
that seed, riser and direction, so with a deterministic policy it is the same episode).

Overlays (o): a green line per foot contact and a red one per other body contact, at the contact
point along the contact normal, its length proportional to the normal force (0.5 m = the robot's
weight); the height-scan grid as points on the terrain surface (what the policy's `height_scan`
observation sees); and a text panel with the episode, seed, stairs, steps climbed, the last
termination reason and each reward term (this step and the episode's sum). Debug items are created
once and then replaced in place (`replaceItemUniqueId`), inside one batch with rendering paused,
so nothing leaks per step and a refresh costs about one frame at most. Under Xvfb with software
OpenGL (llvmpipe) a frame takes 50-300 ms, so play runs several times slower than real time there
and says so; hardware OpenGL on a desktop draws a frame far faster.

Structure: `KeyTracker`, `PlayState`, `Pacer`, `panel_lines`, `contact_arrows` and
`scan_grid_xy` are display-free; `Player` runs the loop against a `View`: `GuiView` is the thin
PyBullet GUI part, `HeadlessView` runs the same loop without a display (scripted keys, recorded
overlays) for tests and scripted demos.
"""

from __future__ import annotations

import enum
import math
import os
import struct
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from stairbot.conditions import Randomized, condition_name, direction_condition
from stairbot.envs.config import load_env_config
from stairbot.errors import StairbotError
from stairbot.terrain.stairs import MAX_RISER_M, Direction

if TYPE_CHECKING:
    import gymnasium as gym

    from stairbot.envs.stair_climb import StairClimbEnv
    from stairbot.policy_source import Act
    from stairbot.sim.world import World

FloatArray = NDArray[np.float64]

# ---- keys -----------------------------------------------------------------------------------------

# PyBullet's key codes and key states (pybullet.B3G_*, pybullet.KEY_*), kept here so that the
# display-free logic needs no simulator; tests check they match pybullet's.
KEY_IS_DOWN = 1
KEY_WAS_TRIGGERED = 2
KEY_WAS_RELEASED = 4
KEY_ESCAPE = 27
KEY_RIGHT_ARROW = 65296
KEY_UP_ARROW = 65297
KEY_DOWN_ARROW = 65298


class Command(enum.Enum):
    """What a key asks the play loop to do."""

    RESET = "reset"
    PAUSE = "pause"
    STEP = "step"
    RAISE = "raise"
    LOWER = "lower"
    OVERLAYS = "overlays"
    QUIT = "quit"


KEY_BINDINGS: Mapping[int, Command] = MappingProxyType(
    {
        ord("r"): Command.RESET,
        ord("R"): Command.RESET,
        ord(" "): Command.PAUSE,
        ord("n"): Command.STEP,
        ord("N"): Command.STEP,
        KEY_RIGHT_ARROW: Command.STEP,
        KEY_UP_ARROW: Command.RAISE,
        ord("+"): Command.RAISE,
        ord("="): Command.RAISE,
        KEY_DOWN_ARROW: Command.LOWER,
        ord("-"): Command.LOWER,
        ord("o"): Command.OVERLAYS,
        ord("O"): Command.OVERLAYS,
        ord("q"): Command.QUIT,
        ord("Q"): Command.QUIT,
        KEY_ESCAPE: Command.QUIT,
    }
)

KEYS_HELP = """keys (in the GUI window):
  r              reset now: the next episode (next seed)
  space          pause / resume
  n, right       one control step while paused
  up, +, =       raise the stairs by 1 cm from the next reset
  down, -        lower the stairs by 1 cm from the next reset (0 m is flat ground)
  o              overlays on / off: contact forces, height scan, text panel
  q, Esc         quit (closing the window quits too)"""

PLAY_DESCRIPTION = """Watch a policy climb in the PyBullet GUI (needs a display). The camera follows the robot
and the steps run in real time at the control rate; overlays show the contact forces, the
height-scan points and a panel with the reward terms, the steps climbed and the last termination
reason. POLICY: a run directory, an export bundle, 'pretrained', or nothing (zero action)."""

PLAY_EPILOG = f"""{KEYS_HELP}
PyBullet's own keys keep working (w wireframe, g side panels, s shadows, ...).

replaying: episode k of a session is reset with seed SEED + k. Each reset prints its seed and riser,
and each episode end prints the command that replays it exactly:
  stairbot play POLICY --seed S --riser-m H --direction D"""

PANEL_KEYS_LINE = "r reset  space pause  n step  up/down stairs  o overlays  q quit"


class KeyTracker:
    """One command per key press, from successive `getKeyboardEvents()` polls.

    A poll maps key codes to state bits: KEY_WAS_TRIGGERED (pressed since the last poll), KEY_IS_DOWN,
    KEY_WAS_RELEASED. The GUI sometimes reports a short press as released without the triggered bit
    (seen under load, when a poll falls between its frames), so a release, or a key held down, whose
    press was not seen counts as the press. Holding a key does not repeat it; unbound keys are ignored.
    """

    def __init__(self) -> None:
        self._down: set[int] = set()  # keys whose press has been counted and not released yet

    def commands(self, events: Mapping[int, int]) -> list[Command]:
        """The commands of the keys pressed since the last poll, in the order the poll lists them."""
        commands = []
        for key, state in events.items():
            pressed = bool(state & KEY_WAS_TRIGGERED) or key not in self._down
            if state & KEY_WAS_RELEASED:
                self._down.discard(key)
            else:
                self._down.add(key)
            if pressed and key in KEY_BINDINGS:
                commands.append(KEY_BINDINGS[key])
        return commands


# ---- stairs and seeds -----------------------------------------------------------------------------

RISER_STEP_M = 0.01
"""How much one key press raises or lowers the stairs, metres."""


def check_riser(riser_m: float, max_riser_m: float = MAX_RISER_M) -> float:
    """`riser_m` if it is a riser play can build ([0, max_riser_m], 0 = flat ground), else an error."""
    if not (isinstance(riser_m, (int, float)) and math.isfinite(riser_m) and 0.0 <= riser_m <= max_riser_m):
        raise StairbotError(
            f"riser height must be in [0, {max_riser_m:g}] m (0 is flat ground), got {riser_m!r}"
        )
    return float(riser_m)


def change_riser(riser_m: float, steps: int, max_riser_m: float = MAX_RISER_M) -> float:
    """`riser_m` moved by `steps` x RISER_STEP_M, clamped to [0, max_riser_m], rounded to the millimetre."""
    return round(min(max_riser_m, max(0.0, riser_m + steps * RISER_STEP_M)), 3)


def riser_difficulty(riser_m: float, max_riser_m: float = MAX_RISER_M) -> float:
    """The curriculum difficulty that makes the env build risers of `riser_m` (difficulty x max)."""
    return check_riser(riser_m, max_riser_m) / max_riser_m


def episode_seed(base_seed: int, episode: int) -> int:
    """Seed of episode `episode` (0, 1, ...) of a session started with `--seed base_seed`."""
    return base_seed + episode


# ---- loop state -----------------------------------------------------------------------------------


@dataclass
class Episode:
    """One episode as the panel shows it; `record` takes each step's reward and info."""

    index: int
    seed: int
    riser_m: float
    direction: str
    num_steps: int
    tread_m: float = 0.0
    command_mps: float = 0.0
    steps: int = 0
    total_reward: float = 0.0
    steps_climbed: int = 0
    end: str | None = None  # termination reason, "time_limit", or None while it runs
    reward_terms: Mapping[str, float] = field(default_factory=dict)
    episode_reward_terms: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_reset(cls, index: int, seed: int, info: Mapping[str, Any]) -> Episode:
        return cls(
            index=index,
            seed=seed,
            riser_m=float(info["riser_m"]),
            direction=str(info["direction"]),
            num_steps=int(info["num_steps"]),
            tread_m=float(info.get("tread_m", 0.0)),
            command_mps=float(info["command"][0]) if "command" in info else 0.0,
        )

    def record(self, reward: float, info: Mapping[str, Any], terminated: bool, truncated: bool) -> None:
        self.steps += 1
        self.total_reward += float(reward)
        self.steps_climbed = int(info.get("steps_climbed", self.steps_climbed))
        self.reward_terms = dict(info.get("reward_terms", {}))
        self.episode_reward_terms = dict(info.get("episode_reward_terms", {}))
        if terminated:
            self.end = str(info.get("termination_reason", "terminated"))
        elif truncated:
            self.end = "time_limit"

    @property
    def ended(self) -> bool:
        return self.end is not None


@dataclass
class PlayState:
    """What the keys change: the display-free half of the play loop.

    `riser_m` is the riser of the next reset; `reset_pending` asks the loop to reset before its next
    step; `step_once` lets one step through while paused.
    """

    base_seed: int
    riser_m: float
    max_riser_m: float = MAX_RISER_M
    paused: bool = False
    overlays: bool = True
    quit: bool = False
    reset_pending: bool = True
    step_once: bool = False
    episodes_started: int = 0
    last_end: str | None = None  # "fall (episode 2, seed 2)": how the previous episode ended

    def __post_init__(self) -> None:
        self.riser_m = check_riser(self.riser_m, self.max_riser_m)

    @property
    def next_seed(self) -> int:
        return episode_seed(self.base_seed, self.episodes_started)

    def handle(self, command: Command) -> str | None:
        """Apply a command; returns a line to print, if any."""
        if command is Command.RESET:
            self.reset_pending = True
        elif command is Command.PAUSE:
            self.paused = not self.paused
            self.step_once = False
            return "paused (space: resume, n: one step)" if self.paused else "resumed"
        elif command is Command.STEP:
            if not self.paused:
                return "n steps once while paused: press space first"
            self.step_once = True
        elif command in (Command.RAISE, Command.LOWER):
            new = change_riser(self.riser_m, 1 if command is Command.RAISE else -1, self.max_riser_m)
            if new == self.riser_m:
                edge = "highest" if command is Command.RAISE else "lowest"
                return (
                    f"stairs: riser already at its {edge}, {new:.2f} m (allowed 0 .. {self.max_riser_m:g} m)"
                )
            self.riser_m = new
            return f"stairs: riser {new:.2f} m from the next reset (r: reset now)"
        elif command is Command.OVERLAYS:
            self.overlays = not self.overlays
        elif command is Command.QUIT:
            self.quit = True
        return None


class Pacer:
    """Paces a loop in real time: `wait()` sleeps to deadlines `period_s` apart.

    A tick that ends after its deadline is late; one more than a period late moves the deadlines on
    instead of trying to catch up (no burst of fast steps after a stall). `realtime_factor` is
    simulated over wall time across the last `window` ticks; `behind` says it stayed below
    `min_factor` over a full window.
    """

    def __init__(
        self,
        period_s: float,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        window: int = 25,
        min_factor: float = 0.9,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s!r}")
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._min_factor = min_factor
        self._deadline: float | None = None
        self._ticks: deque[float] = deque(maxlen=max(2, window))

    def restart(self) -> None:
        """Forget the deadlines (after a pause or a reset): the next tick starts a new schedule."""
        self._deadline = None
        self._ticks.clear()

    def wait(self) -> None:
        """Sleep until this tick's deadline (one period after the previous one)."""
        now = self._clock()
        self._deadline = (now if self._deadline is None else self._deadline) + self.period_s
        if now < self._deadline:
            self._sleep(self._deadline - now)
        elif now - self._deadline > self.period_s:
            self._deadline = now
        self._ticks.append(self._clock())

    def idle(self) -> None:
        """Sleep one period without keeping a schedule (while paused)."""
        self.restart()
        self._sleep(self.period_s)

    @property
    def realtime_factor(self) -> float | None:
        """Simulated seconds per wall-clock second over the recent ticks (None: too few yet)."""
        if len(self._ticks) < 2:
            return None
        elapsed = self._ticks[-1] - self._ticks[0]
        return math.inf if elapsed <= 0 else (len(self._ticks) - 1) * self.period_s / elapsed

    @property
    def behind(self) -> bool:
        factor = self.realtime_factor
        return len(self._ticks) == self._ticks.maxlen and factor is not None and factor < self._min_factor


# ---- overlay content (display-free) ---------------------------------------------------------------

TEXT_RGB = (0.05, 0.05, 0.15)
TITLE_RGB = (0.0, 0.2, 0.6)
WARN_RGB = (0.85, 0.05, 0.0)
FOOT_CONTACT_RGB = (0.0, 0.75, 0.1)
BODY_CONTACT_RGB = (0.9, 0.0, 0.0)
SCAN_RGB = (0.0, 0.55, 1.0)
FORCE_LENGTH_PER_WEIGHT_M = 0.5
"""A contact line is this long when its normal force equals the robot's weight, metres."""
MAX_FORCE_LINE_M = 1.0


@dataclass(frozen=True)
class PanelLine:
    text: str
    rgb: tuple[float, float, float] = TEXT_RGB


def panel_lines(
    *,
    policy_name: str,
    state: PlayState,
    episode: Episode | None,
    dt_s: float,
    realtime_factor: float | None = None,
    behind: bool = False,
) -> list[PanelLine]:
    """The text panel: episode, seed, stairs, steps climbed, last end, status and reward terms."""
    lines = [PanelLine(f"policy: {policy_name}", TITLE_RGB)]
    if episode is None:
        lines.append(PanelLine(f"next episode: seed {state.next_seed}, riser {state.riser_m:.2f} m"))
    else:
        lines.append(
            PanelLine(f"episode {episode.index}  seed {episode.seed}  t {episode.steps * dt_s:.2f} s")
        )
        stairs = f"stairs {episode.direction}: {episode.num_steps} x {episode.riser_m:.3f} m"
        if abs(state.riser_m - episode.riser_m) > 5e-4:
            stairs += f"  (next reset: {state.riser_m:.2f} m)"
        lines.append(PanelLine(stairs))
        climbed = f"steps climbed {episode.steps_climbed}/{episode.num_steps}"
        lines.append(PanelLine(f"{climbed}  return {episode.total_reward:+.2f}"))
        if episode.ended:
            lines.append(PanelLine(f"ended: {episode.end}; next: seed {state.next_seed}", WARN_RGB))
    lines.append(PanelLine(f"last end: {state.last_end or '-'}"))
    if state.paused:
        lines.append(PanelLine("PAUSED  (space: resume, n: one step)", WARN_RGB))
    if behind and realtime_factor is not None:
        lines.append(
            PanelLine(f"real time x{realtime_factor:.2f}: cannot keep up (o hides the overlays)", WARN_RGB)
        )
    if episode is not None and episode.reward_terms:
        lines.append(PanelLine("reward terms: step (episode)", TITLE_RGB))
        for name, value in episode.reward_terms.items():
            total = episode.episode_reward_terms.get(name, 0.0)
            lines.append(PanelLine(f"  {name} {value:+.4f} ({total:+.2f})"))
    lines.append(PanelLine(PANEL_KEYS_LINE, TITLE_RGB))
    return lines


def contact_arrows(
    contact_points: Sequence[Sequence[Any]],
    foot_links: frozenset[int] | set[int],
    force_scale_m_per_n: float,
    max_length_m: float = MAX_FORCE_LINE_M,
) -> tuple[FloatArray, FloatArray]:
    """Lines for contacts: ((N, 2, 3) start/end points, (N, 3) colours).

    `contact_points` are `getContactPoints(bodyA=robot)` tuples (link of A at 3, position on B at 6,
    normal on B at 7 pointing towards the robot, normal force at 9). Each line starts at the contact
    and runs along the normal, `force x scale` long (at most `max_length_m`); contacts with no force
    are left out. Feet are green, other links red.
    """
    segments, colors = [], []
    for point in contact_points:
        force = float(point[9])
        if force <= 0.0:
            continue
        start = np.asarray(point[6], dtype=np.float64)
        normal = np.asarray(point[7], dtype=np.float64)
        length = min(max_length_m, force * force_scale_m_per_n)
        segments.append((start, start + normal * length))
        colors.append(FOOT_CONTACT_RGB if point[3] in foot_links else BODY_CONTACT_RGB)
    return np.array(segments, dtype=np.float64).reshape(-1, 2, 3), np.array(colors).reshape(-1, 3)


def scan_grid_xy(
    base_xy_m: FloatArray, yaw_rad: float, x_points_m: Sequence[float], y_points_m: Sequence[float]
) -> FloatArray:
    """(P, 2) world xy of the height-scan points: the grid (x outer, y inner) turned by the base's yaw
    and moved to the base, in the env's order."""
    offsets = np.array([(x, y) for x in x_points_m for y in y_points_m], dtype=np.float64).reshape(-1, 2)
    cos_yaw, sin_yaw = math.cos(yaw_rad), math.sin(yaw_rad)
    rotation = np.array(((cos_yaw, sin_yaw), (-sin_yaw, cos_yaw)))
    return np.asarray(base_xy_m, dtype=np.float64)[:2] + offsets @ rotation


@dataclass(frozen=True)
class Overlay:
    """One frame of overlays, world coordinates."""

    panel: tuple[PanelLine, ...]
    contact_segments: FloatArray  # (N, 2, 3)
    contact_colors: FloatArray  # (N, 3)
    scan_points: FloatArray  # (P, 3)


@dataclass(frozen=True)
class CameraView:
    """What the GUI camera looks at (from `getDebugVisualizerCamera`)."""

    target: FloatArray  # (3,)
    forward: FloatArray  # (3,) unit
    up: FloatArray  # (3,) unit, orthogonal to forward
    distance_m: float
    focal_x: float  # projection[0]: 1 / (tan(fov_y / 2) * aspect)
    focal_y: float  # projection[5]: 1 / tan(fov_y / 2)

    @classmethod
    def from_debug_camera(cls, camera: Sequence[Any]) -> CameraView:
        projection = camera[3]
        forward = np.asarray(camera[5], dtype=np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, np.asarray(camera[4], dtype=np.float64))
        if np.linalg.norm(right) < 1e-6:  # looking straight up or down: use the view's horizontal
            right = np.asarray(camera[6], dtype=np.float64)
        right /= np.linalg.norm(right)
        return cls(
            target=np.asarray(camera[11], dtype=np.float64),
            forward=forward,
            up=np.cross(right, forward),
            distance_m=float(camera[10]),
            focal_x=float(projection[0]),
            focal_y=float(projection[5]),
        )


def panel_positions(
    camera: CameraView,
    num_lines: int,
    *,
    depth_fraction: float = 0.5,
    left_ndc: float = -0.97,
    top_ndc: float = 0.92,
    line_ndc: float = 0.05,
) -> FloatArray:
    """(num_lines, 3) world positions that show as a column of text lines at the top left of the view.

    The lines lie in a plane facing the camera at `depth_fraction` of the way to its target (in
    front of the robot); x and y are normalized device coordinates (-1 left/bottom .. 1 right/top).
    """
    right = np.cross(camera.forward, camera.up)
    eye = camera.target - camera.forward * camera.distance_m
    depth = camera.distance_m * depth_fraction
    rows = top_ndc - line_ndc * np.arange(num_lines)
    centre = eye + camera.forward * depth
    return (
        centre
        + np.outer(np.full(num_lines, left_ndc * depth / camera.focal_x), right)
        + np.outer(rows * depth / camera.focal_y, camera.up)
    )


# ---- views ----------------------------------------------------------------------------------------


class View(Protocol):
    """Where the play loop gets its keys and shows its overlays."""

    def is_open(self) -> bool: ...

    def keys(self) -> Mapping[int, int]: ...

    def show(self, overlay: Overlay | None) -> None:
        """Draw `overlay` (None: remove all overlays)."""


KeySource = Callable[[], Mapping[int, int]]


class ScriptedKeys:
    """Key events from a script: poll i (0, 1, ...) returns `script.get(i, {})`.

    `script` maps a poll index to key codes, each pressed and released since the previous poll.
    """

    def __init__(self, script: Mapping[int, Sequence[int]]) -> None:
        self._script = {i: tuple(keys) for i, keys in script.items()}
        self.polls = 0

    def __call__(self) -> Mapping[int, int]:
        keys = self._script.get(self.polls, ())
        self.polls += 1
        return dict.fromkeys(keys, KEY_WAS_TRIGGERED | KEY_WAS_RELEASED)


class HeadlessView:
    """A view without a display: keys from a `KeySource`, overlays kept in `shown` (the last few)."""

    def __init__(self, keys: KeySource | None = None, *, keep: int = 5) -> None:
        self._keys = keys or dict
        self.shown: deque[Overlay | None] = deque(maxlen=keep)

    def is_open(self) -> bool:
        return True

    def keys(self) -> Mapping[int, int]:
        return self._keys()

    def show(self, overlay: Overlay | None) -> None:
        self.shown.append(overlay)


_PARKED_LINE = ((0.0, 0.0, -10.0), (0.0, 0.0, -10.0))  # unused contact lines: zero length, below ground


class GuiView:
    """The PyBullet GUI of a `render_mode="human"` env: keys, overlays as reused debug items.

    The GUI's side panels are hidden (g shows them). All overlay items are updated in one batch
    with rendering paused: each debug-item call otherwise waits for the GUI to draw a frame. Items
    are created the first time they are needed and replaced in place from then on; unused ones are
    emptied (text) or parked below the ground (lines), and `show(None)` removes them all.
    """

    @classmethod
    def for_env(cls, env: StairClimbEnv, **kwargs: Any) -> GuiView:
        """The view of an env made with `render_mode="human"` (opens its window if not open yet)."""
        return cls(env.world.client, **kwargs)

    TEXT_SIZE = 1.1
    POINT_SIZE = 6.0
    LINE_WIDTH = 3.0

    def __init__(self, client: Any, *, keys: KeySource | None = None, side_panels: bool = False) -> None:
        """`client`: the GUI's BulletClient (`env.world.client`); `keys`: a key source instead of the
        GUI's keyboard; `side_panels`: keep PyBullet's side panels (hidden by default, g shows them)."""
        import pybullet

        self._pybullet = pybullet
        self._client = client
        self._keys = keys or client.getKeyboardEvents
        client.configureDebugVisualizer(pybullet.COV_ENABLE_GUI, int(side_panels))
        self._texts: list[int] = []
        self._text_shown: list[bool] = []
        self._lines: list[int] = []
        self._line_shown: list[bool] = []
        self._points = -1

    @property
    def item_ids(self) -> list[int]:
        """Ids of the debug items this view holds (for leak checks)."""
        return [*self._texts, *self._lines, *([self._points] if self._points >= 0 else [])]

    def is_open(self) -> bool:
        try:
            return bool(self._client.isConnected())
        except self._pybullet.error:
            return False

    def keys(self) -> Mapping[int, int]:
        return self._keys()

    def show(self, overlay: Overlay | None) -> None:
        if overlay is None:
            self._remove_all()
            return
        c = self._client
        positions = panel_positions(
            CameraView.from_debug_camera(c.getDebugVisualizerCamera()), len(overlay.panel)
        )
        c.configureDebugVisualizer(self._pybullet.COV_ENABLE_RENDERING, 0)
        try:
            self._show_texts(overlay.panel, positions)
            self._show_lines(overlay.contact_segments, overlay.contact_colors)
            if len(overlay.scan_points):
                self._points = c.addUserDebugPoints(
                    overlay.scan_points.tolist(),
                    [SCAN_RGB] * len(overlay.scan_points),
                    pointSize=self.POINT_SIZE,
                    replaceItemUniqueId=self._points,
                )
        finally:
            c.configureDebugVisualizer(self._pybullet.COV_ENABLE_RENDERING, 1)

    def _show_texts(self, panel: Sequence[PanelLine], positions: FloatArray) -> None:
        c = self._client
        for i, line in enumerate(panel):
            if i == len(self._texts):
                self._texts.append(-1)
                self._text_shown.append(False)
            self._texts[i] = c.addUserDebugText(
                line.text,
                positions[i].tolist(),
                line.rgb,
                textSize=self.TEXT_SIZE,
                replaceItemUniqueId=self._texts[i],
            )
            self._text_shown[i] = True
        for i in range(len(panel), len(self._texts)):
            if self._text_shown[i]:
                c.addUserDebugText("", (0.0, 0.0, -10.0), replaceItemUniqueId=self._texts[i])
                self._text_shown[i] = False

    def _show_lines(self, segments: FloatArray, colors: FloatArray) -> None:
        c = self._client
        for i, ((start, end), rgb) in enumerate(zip(segments, colors, strict=True)):
            if i == len(self._lines):
                self._lines.append(-1)
                self._line_shown.append(False)
            self._lines[i] = c.addUserDebugLine(
                start.tolist(),
                end.tolist(),
                rgb.tolist(),
                self.LINE_WIDTH,
                replaceItemUniqueId=self._lines[i],
            )
            self._line_shown[i] = True
        for i in range(len(segments), len(self._lines)):
            if self._line_shown[i]:
                c.addUserDebugLine(*_PARKED_LINE, (0, 0, 0), 1.0, replaceItemUniqueId=self._lines[i])
                self._line_shown[i] = False

    def _remove_all(self) -> None:
        if not self.item_ids:
            return
        c = self._client
        c.configureDebugVisualizer(self._pybullet.COV_ENABLE_RENDERING, 0)
        try:
            for item in self.item_ids:
                c.removeUserDebugItem(item)
        finally:
            c.configureDebugVisualizer(self._pybullet.COV_ENABLE_RENDERING, 1)
        self._texts, self._text_shown, self._lines, self._line_shown = [], [], [], []
        self._points = -1

    def capture(
        self, width: int | None = None, height: int | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
        """The GUI camera's view rendered by the GUI's OpenGL renderer: ((H, W, 3) RGB, (H, W) body ids).

        The scene only: debug items (overlays) are not in it. Size: the window's, unless given.
        """
        c = self._client
        camera = c.getDebugVisualizerCamera()
        width = int(width or camera[0])
        height = int(height or camera[1])
        _, _, rgba, _, segmentation = c.getCameraImage(
            width, height, camera[2], camera[3], renderer=self._pybullet.ER_BULLET_HARDWARE_OPENGL
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
        return np.ascontiguousarray(rgb), np.asarray(segmentation, dtype=np.int32).reshape(height, width)

    def screenshot(self, path: Path) -> Path:
        """Write the GUI camera's view (see `capture`) to `path` as a PNG."""
        rgb, _ = self.capture()
        write_png(path, rgb)
        return path


def write_png(path: Path, rgb: NDArray[np.uint8]) -> None:
    """Write an (H, W, 3) uint8 image as an 8-bit RGB PNG (no dependency beyond zlib)."""
    image = np.asarray(rgb, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    height, width, _ = image.shape
    rows = np.hstack([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)])  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


# ---- the loop -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayResult:
    """How a play session went."""

    episodes: int  # episodes started
    steps: int  # control steps taken, over all episodes
    ended_by: str  # "quit", "window closed", "max steps", "interrupted"
    screenshot: Path | None = None


class Player:
    """The play loop: keys -> commands -> resets and steps of `env`, paced in real time, overlays shown.

    Args:
        env: a StairClimb env (wrapped by gymnasium.make, whose TimeLimit truncates episodes).
        act: observation -> action in [-1, 1].
        view: a `GuiView`, or a `HeadlessView` for tests.
        seed: episode k is reset with seed `seed + k`.
        riser_m: riser of the first episode, metres; keys change it from the next reset on.
        pacer: paces the steps (default: real time at `env.dt`).
        policy_name, replay_prefix: for the panel, and the replay command printed at each episode end
            (`stairbot play POLICY`).
        max_steps: stop after this many control steps (None: until quit).
        end_hold_s: how long an ended episode stays on screen before the next reset.
        log, warn: where lines for the user go (stdout, stderr).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        act: Act,
        view: View,
        *,
        seed: int = 0,
        riser_m: float,
        pacer: Pacer | None = None,
        policy_name: str = "zero action",
        replay_prefix: str = "stairbot play",
        max_steps: int | None = None,
        end_hold_s: float = 1.0,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        from stairbot.envs.stair_climb import StairClimbEnv

        base = env.unwrapped
        if not isinstance(base, StairClimbEnv):
            raise TypeError(f"Player needs a StairClimb env, got {type(base).__name__}")
        self.env = env
        self.base = base
        self.act = act
        self.view = view
        self.dt_s = float(base.dt)
        max_riser_m = base.config.curriculum.max_riser_m
        self.state = PlayState(base_seed=seed, riser_m=riser_m, max_riser_m=max_riser_m)
        self.pacer = pacer or Pacer(self.dt_s)
        self.policy_name = policy_name
        self.replay_prefix = replay_prefix
        self.max_steps = max_steps
        self.end_hold_ticks = max(0, round(end_hold_s / self.dt_s))
        self.log = log or (lambda line: print(line, flush=True))
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.episode: Episode | None = None
        self.steps = 0
        self._keys = KeyTracker()
        self._obs: Any = None
        self._hold_left = 0
        self._warned_behind = False
        world = base.world
        self._foot_links = frozenset(world.foot_link_ids)
        self._force_scale = FORCE_LENGTH_PER_WEIGHT_M / robot_weight_n(world)

    # ---- one tick ---------------------------------------------------------------------------------

    def run(self) -> PlayResult:
        """Run until quit, the window closes, or `max_steps`; returns how it went."""
        ended_by = "quit"
        try:
            while True:
                if not self.view.is_open():
                    ended_by = "window closed"
                    break
                try:
                    self.tick()
                except Exception:
                    if self.view.is_open():
                        raise
                    ended_by = "window closed"
                    break
                if self.state.quit:
                    break
                if self.max_steps is not None and self.steps >= self.max_steps:
                    ended_by = "max steps"
                    break
                if self.state.paused:
                    self.pacer.idle()
                else:
                    self.pacer.wait()
                    self._check_pace()
        except KeyboardInterrupt:
            ended_by = "interrupted"
        return PlayResult(self.state.episodes_started, self.steps, ended_by)

    def tick(self) -> None:
        """Handle the keys, then reset or step once as the state says, then refresh the overlays."""
        state = self.state
        was_paused = state.paused
        for command in self._keys.commands(self.view.keys()):
            line = state.handle(command)
            if line:
                self.log(line)
        if state.quit:
            return
        if state.paused != was_paused:
            self.pacer.restart()
        if state.reset_pending or self.episode is None:
            self.reset()
        elif not state.paused or state.step_once:
            state.step_once = False
            if self.episode.ended:
                if self._hold_left > 0 and not state.paused:
                    self._hold_left -= 1
                else:
                    self.reset()
            else:
                self.step()
        self.view.show(self.overlay() if state.overlays else None)

    def reset(self) -> None:
        state = self.state
        index = state.episodes_started
        seed = episode_seed(state.base_seed, index)
        difficulty = riser_difficulty(state.riser_m, state.max_riser_m)
        self._obs, info = self.env.reset(seed=seed, options={"difficulty": difficulty})
        state.episodes_started += 1
        state.reset_pending = False
        self.episode = episode = Episode.from_reset(index, seed, info)
        self._hold_left = self.end_hold_ticks
        self.pacer.restart()
        self.log(
            f"episode {index}: seed {seed}, {episode.direction} {episode.num_steps} steps of "
            f"{episode.riser_m:.3f} m x {episode.tread_m:.2f} m, command {episode.command_mps:.2f} m/s"
        )

    def step(self) -> None:
        episode = self.episode
        if episode is None or episode.ended:
            raise RuntimeError("reset before stepping")
        action = self.act(np.asarray(self._obs, dtype=np.float32))
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        episode.record(float(reward), info, bool(terminated), bool(truncated))
        if episode.ended:
            self.state.last_end = f"{episode.end} (episode {episode.index}, seed {episode.seed})"
            self.log(
                f"episode {episode.index} ended by {episode.end} after {episode.steps} steps "
                f"({episode.steps * self.dt_s:.1f} s): steps climbed {episode.steps_climbed}/"
                f"{episode.num_steps}, return {episode.total_reward:.2f}; "
                f"replay: {self.replay_command(episode)}"
            )

    def replay_command(self, episode: Episode) -> str:
        return (
            f"{self.replay_prefix} --seed {episode.seed} --riser-m {episode.riser_m:.3f} "
            f"--direction {episode.direction}"
        )

    # ---- overlays ---------------------------------------------------------------------------------

    def overlay(self) -> Overlay:
        """This tick's overlays: panel text, contact forces and the height-scan points."""
        world = self.base.world
        lines = panel_lines(
            policy_name=self.policy_name,
            state=self.state,
            episode=self.episode,
            dt_s=self.dt_s,
            realtime_factor=self.pacer.realtime_factor,
            behind=self.pacer.behind and not self.state.paused,
        )
        segments, colors = contact_arrows(
            world.client.getContactPoints(bodyA=world.robot_id), self._foot_links, self._force_scale
        )
        return Overlay(tuple(lines), segments, colors, self._scan_points(world))

    def _scan_points(self, world: World) -> FloatArray:
        from stairbot.envs.config import HeightSource

        scan = self.base.config.observation.height_scan
        if not scan.enabled or self.episode is None:
            return np.zeros((0, 3))
        robot = world.read_state()
        xy = scan_grid_xy(robot.base_pos_m, robot.yaw_rad, scan.x_points_m, scan.y_points_m)
        if scan.source is HeightSource.RAYS:
            heights = world.terrain_heights(xy)
        else:
            heights = self.base.flight.height_at(xy[:, 0], xy[:, 1])
        return np.column_stack([xy, heights + 0.005])

    def _check_pace(self) -> None:
        if self.pacer.behind and not self._warned_behind:
            factor = self.pacer.realtime_factor or 0.0
            self.warn(
                f"play: cannot keep up with real time (x{factor:.2f} over the last steps): each step takes "
                f"longer than {self.dt_s * 1000:.0f} ms; o hides the overlays"
            )
            self._warned_behind = True


def robot_weight_n(world: World) -> float:
    """The robot's weight (total mass x 9.81 m/s^2), newtons."""
    c = world.client
    mass = sum(
        c.getDynamicsInfo(world.robot_id, link)[0] for link in range(-1, c.getNumJoints(world.robot_id))
    )
    return max(mass, 1e-3) * 9.81


# ---- entry point ----------------------------------------------------------------------------------


def check_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> None:
    """Raise when the PyBullet GUI cannot open (Linux without an X display: PyBullet would exit)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") and not environ.get("DISPLAY"):
        raise StairbotError(
            "stairbot play opens the PyBullet GUI, which needs an X display and DISPLAY is not set: run "
            "it in a desktop session or under xvfb-run, or make a video with `stairbot record`"
        )


def play_env_overrides(direction: str | None = None) -> dict[str, Any]:
    """Env overrides for play: any riser up to MAX_RISER_M, set by the loop (no adaptive curriculum)."""
    overrides: dict[str, Any] = {
        "curriculum.adaptive": False,
        "curriculum.difficulty": None,
        "curriculum.max_riser_m": MAX_RISER_M,
    }
    if direction is not None:
        try:
            overrides["stairs.direction"] = Direction(direction).value
        except ValueError:
            raise StairbotError(
                f"direction must be one of {[d.value for d in Direction]}, got {direction!r}"
            ) from None
    return overrides


def make_play_env(
    preset: str | Path,
    *,
    direction: str | None = None,
    render_mode: str | None = "human",
    condition: Mapping[str, Any] | None = None,
) -> Any:
    """The registered StairClimb env (its time limit included) on `preset`, set up for play;
    `condition`: env overrides of a `stairbot.conditions` condition (None: the preset as it is)."""
    import gymnasium as gym

    from stairbot.envs import register_envs

    register_envs()
    return gym.make(
        "stairbot/StairClimb-v0",
        preset=preset,
        overrides={**(condition or {}), **play_env_overrides(direction)},
        render_mode=render_mode,
    )


def run_play(
    policy: str | Path | None = None,
    *,
    riser_m: float | None = None,
    seed: int = 0,
    direction: str | None = None,
    max_steps: int | None = None,
    screenshot: Path | None = None,
    keys: KeySource | None = None,
    randomized: Randomized = False,
) -> PlayResult:
    """`stairbot play`: open the GUI and run the play loop (see the module docstring).

    `screenshot`: write the GUI camera's view as a PNG when the session ends (if the window is still
    open). `keys`: a key source instead of the GUI's keyboard (scripted sessions). `randomized`: the
    condition (`stairbot.conditions`): False plays the clean robot and stairs whatever the policy
    was trained with; True the direction's randomized preset; a preset name or path that one's.
    """
    if seed < 0:
        raise StairbotError(f"seed must be >= 0, got {seed}")
    if max_steps is not None and max_steps < 1:
        raise StairbotError(f"max steps must be >= 1, got {max_steps}")
    if riser_m is not None:
        check_riser(riser_m)
    play_env_overrides(direction)  # validates the direction before the window opens
    check_display()
    from stairbot.policy_source import load_policy_source

    source = load_policy_source(policy)
    played_direction = direction or load_env_config(source.env_preset).stairs.direction.value
    condition = direction_condition(source.env_preset, played_direction, randomized)
    env = make_play_env(source.env_preset, direction=direction, render_mode="human", condition=condition)
    try:
        base = env.unwrapped
        view = GuiView.for_env(base, keys=keys)
        replay_prefix = "stairbot play" + ("" if policy is None else f" {policy}")
        player = Player(
            env,
            source.act,
            view,
            seed=seed,
            riser_m=base.config.stairs.riser_m if riser_m is None else riser_m,
            policy_name=source.name,
            replay_prefix=replay_prefix,
            max_steps=max_steps,
        )
        print(
            f"playing {source.name} on {source.env_preset}, {condition_name(randomized, played_direction)} "
            f"(seed {seed}; episode k uses seed {seed} + k)"
        )
        print(KEYS_HELP, flush=True)
        result = player.run()
        shot = None
        if screenshot is not None:
            if view.is_open():
                shot = view.screenshot(Path(screenshot))
                print(f"wrote screenshot {shot}")
            else:
                print("no screenshot: the window was closed", file=sys.stderr)
        return PlayResult(result.episodes, result.steps, result.ended_by, shot)
    finally:
        env.close()
