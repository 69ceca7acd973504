"""`stairbot play`: the display-free loop logic, and the real GUI under Xvfb (marked `gui`)."""

from __future__ import annotations

import contextlib
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet
import pytest

import stairbot  # noqa: F401  (registers the env ids)
from stairbot.cli import main
from stairbot.errors import StairbotError
from stairbot.terrain.stairs import MAX_RISER_M
from stairbot.viz import play
from stairbot.viz.play import (
    KEY_DOWN_ARROW,
    KEY_ESCAPE,
    KEY_RIGHT_ARROW,
    KEY_UP_ARROW,
    KEY_WAS_RELEASED,
    KEY_WAS_TRIGGERED,
    Command,
    Episode,
    KeyTracker,
    Pacer,
    PlayState,
)

REPO = Path(__file__).resolve().parent.parent
PRESSED = KEY_WAS_TRIGGERED | KEY_WAS_RELEASED  # pressed and released between two polls


# ---- keys -----------------------------------------------------------------------------------------


def test_key_codes_are_pybullets() -> None:
    assert play.KEY_IS_DOWN == pybullet.KEY_IS_DOWN
    assert play.KEY_WAS_TRIGGERED == pybullet.KEY_WAS_TRIGGERED
    assert play.KEY_WAS_RELEASED == pybullet.KEY_WAS_RELEASED
    assert KEY_RIGHT_ARROW == pybullet.B3G_RIGHT_ARROW
    assert KEY_UP_ARROW == pybullet.B3G_UP_ARROW
    assert KEY_DOWN_ARROW == pybullet.B3G_DOWN_ARROW


@pytest.mark.parametrize(
    ("key", "command"),
    [
        (ord("r"), Command.RESET),
        (ord(" "), Command.PAUSE),
        (ord("n"), Command.STEP),
        (KEY_RIGHT_ARROW, Command.STEP),
        (KEY_UP_ARROW, Command.RAISE),
        (ord("+"), Command.RAISE),
        (ord("="), Command.RAISE),  # '+' without shift
        (KEY_DOWN_ARROW, Command.LOWER),
        (ord("-"), Command.LOWER),
        (ord("o"), Command.OVERLAYS),
        (ord("q"), Command.QUIT),
        (KEY_ESCAPE, Command.QUIT),
    ],
)
def test_each_documented_key_maps_to_its_command(key: int, command: Command) -> None:
    assert KeyTracker().commands({key: PRESSED}) == [command]


def test_key_press_counts_once_and_unbound_keys_are_ignored() -> None:
    keys = KeyTracker()
    down = pybullet.KEY_IS_DOWN
    assert keys.commands({ord("o"): KEY_WAS_TRIGGERED | down, ord("x"): PRESSED}) == [Command.OVERLAYS]
    assert keys.commands({ord("o"): down}) == []  # held: no repeat
    assert keys.commands({ord("o"): KEY_WAS_RELEASED}) == []  # its press was counted already
    assert keys.commands({ord("o"): KEY_WAS_TRIGGERED | down}) == [Command.OVERLAYS]  # pressed again
    # Order follows the poll.
    assert keys.commands({ord("q"): PRESSED, ord("r"): PRESSED}) == [Command.QUIT, Command.RESET]


def test_a_press_the_poll_missed_counts_at_its_release_or_while_held() -> None:
    # Seen in the GUI under load: a short press reported as released only, or as held only.
    keys = KeyTracker()
    assert keys.commands({ord("n"): KEY_WAS_RELEASED}) == [Command.STEP]
    assert keys.commands({KEY_UP_ARROW: pybullet.KEY_IS_DOWN}) == [Command.RAISE]
    assert keys.commands({KEY_UP_ARROW: KEY_WAS_RELEASED}) == []


def test_scripted_keys_replay_a_script_poll_by_poll() -> None:
    keys = play.ScriptedKeys({1: [ord("r")], 2: [ord("q"), ord(" ")]})
    assert keys() == {}
    assert keys() == {ord("r"): PRESSED}
    assert KeyTracker().commands(keys()) == [Command.QUIT, Command.PAUSE]
    assert keys() == {}


# ---- stairs, seeds and state ----------------------------------------------------------------------


def test_riser_changes_step_by_a_centimetre_and_clamp_to_the_buildable_range() -> None:
    assert play.change_riser(0.10, 3) == 0.13  # exact to the millimetre, no float drift
    assert play.change_riser(0.005, -1) == 0.0  # flat ground is the floor
    assert play.change_riser(0.0, -1) == 0.0
    assert play.change_riser(MAX_RISER_M - 0.004, 1) == MAX_RISER_M
    assert play.change_riser(MAX_RISER_M, 1) == MAX_RISER_M
    assert play.change_riser(0.18, 5, max_riser_m=0.2) == 0.2


@pytest.mark.parametrize("bad", [-0.01, MAX_RISER_M + 0.001, math.nan, math.inf])
def test_riser_outside_the_range_is_a_clear_error(bad: float) -> None:
    with pytest.raises(StairbotError, match=r"riser height must be in \[0, 0.3\] m"):
        play.check_riser(bad)


def test_riser_maps_to_the_difficulty_that_builds_it() -> None:
    from stairbot.terrain.stairs import riser_for_difficulty

    for riser in (0.0, 0.05, 0.12, MAX_RISER_M):
        assert riser_for_difficulty(play.riser_difficulty(riser), MAX_RISER_M) == pytest.approx(riser)


def test_state_raise_lower_clamp_with_a_message_at_the_ends() -> None:
    state = PlayState(base_seed=0, riser_m=0.29)
    assert state.handle(Command.RAISE) == "stairs: riser 0.30 m from the next reset (r: reset now)"
    message = state.handle(Command.RAISE)
    assert message is not None and "already at its highest, 0.30 m (allowed 0 .. 0.3 m)" in message
    assert state.riser_m == MAX_RISER_M
    state = PlayState(base_seed=0, riser_m=0.0)
    message = state.handle(Command.LOWER)
    assert message is not None and "already at its lowest" in message
    assert state.riser_m == 0.0
    with pytest.raises(StairbotError):
        PlayState(base_seed=0, riser_m=0.31)


def test_state_pause_step_overlays_quit() -> None:
    state = PlayState(base_seed=3, riser_m=0.1)
    assert state.reset_pending and state.overlays and not state.paused
    assert state.handle(Command.STEP) == "n steps once while paused: press space first"
    assert not state.step_once
    assert state.handle(Command.PAUSE) == "paused (space: resume, n: one step)"
    state.handle(Command.STEP)
    assert state.step_once
    assert state.handle(Command.PAUSE) == "resumed"
    assert not state.step_once
    state.handle(Command.OVERLAYS)
    assert not state.overlays
    state.handle(Command.QUIT)
    assert state.quit


def test_episode_seeds_follow_the_base_seed() -> None:
    assert [play.episode_seed(5, k) for k in range(3)] == [5, 6, 7]
    state = PlayState(base_seed=5, riser_m=0.1)
    assert state.next_seed == 5
    state.episodes_started = 2
    assert state.next_seed == 7


# ---- pacing ---------------------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the loop sleeps or works (`work`)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_sleeps_to_deadlines_without_drift() -> None:
    t = FakeTime()
    pacer = Pacer(0.02, clock=t.clock, sleep=t.sleep, window=10)
    start = t.now
    for _ in range(50):
        t.work(0.005)
        pacer.wait()
    # The schedule starts at the first tick: deadlines, not sleep(period) after each step's work.
    assert t.now - start == pytest.approx(0.005 + 50 * 0.02)
    assert t.sleeps[-1] == pytest.approx(0.015)
    assert pacer.realtime_factor == pytest.approx(1.0)
    assert not pacer.behind


def test_pacer_reports_falling_behind_and_does_not_burst_to_catch_up() -> None:
    t = FakeTime()
    pacer = Pacer(0.02, clock=t.clock, sleep=t.sleep, window=10)
    for _ in range(20):
        t.work(0.05)  # each step takes 2.5 periods
        pacer.wait()
    assert t.sleeps == [pytest.approx(0.02)]  # only the first tick, which starts the schedule
    assert pacer.realtime_factor == pytest.approx(0.4)
    assert pacer.behind
    # Fast again: the schedule restarts from now instead of running the missed periods at once.
    t.work(0.001)
    pacer.wait()
    t.work(0.001)
    pacer.wait()
    assert t.sleeps and t.sleeps[-1] == pytest.approx(0.019)


def test_pacer_needs_a_full_window_before_calling_it_behind() -> None:
    t = FakeTime()
    pacer = Pacer(0.02, clock=t.clock, sleep=t.sleep, window=10)
    assert pacer.realtime_factor is None
    for _ in range(3):
        t.work(0.1)
        pacer.wait()
    assert pacer.realtime_factor is not None and pacer.realtime_factor < 0.9
    assert not pacer.behind
    pacer.restart()
    assert pacer.realtime_factor is None


# ---- overlay content ------------------------------------------------------------------------------

INFO = {
    "reward_terms": {"forward_progress": 0.0125, "alive": 0.1, "fall": -10.0},
    "episode_reward_terms": {"forward_progress": 3.25, "alive": 12.0, "fall": -10.0},
    "termination_reason": "fall",
    "steps_climbed": 3,
    "num_steps": 6,
    "difficulty": 0.4,
    "success": False,
}
RESET_INFO = {
    "riser_m": 0.12,
    "tread_m": 0.3,
    "num_steps": 6,
    "direction": "up",
    "command": np.array([0.5, 0, 0]),
}


def _texts(lines: Sequence[play.PanelLine]) -> str:
    return "\n".join(line.text for line in lines)


def test_panel_shows_episode_stairs_climb_last_end_and_each_reward_term() -> None:
    state = PlayState(base_seed=5, riser_m=0.12, last_end="time_limit (episode 1, seed 6)")
    episode = Episode.from_reset(2, 7, RESET_INFO)
    for _ in range(10):
        episode.record(1.5, {**INFO, "termination_reason": "none"}, terminated=False, truncated=False)
    text = _texts(play.panel_lines(policy_name="run r (best)", state=state, episode=episode, dt_s=0.02))
    assert "policy: run r (best)" in text
    assert "episode 2  seed 7  t 0.20 s" in text
    assert "stairs up: 6 x 0.120 m" in text
    assert "next reset" not in text
    assert "steps climbed 3/6  return +15.00" in text
    assert "last end: time_limit (episode 1, seed 6)" in text
    assert "  forward_progress +0.0125 (+3.25)" in text
    assert "  alive +0.1000 (+12.00)" in text
    assert "  fall -10.0000 (-10.00)" in text
    assert "PAUSED" not in text and "cannot keep up" not in text and "ended:" not in text
    assert text.splitlines()[-1] == play.PANEL_KEYS_LINE


def test_panel_shows_the_end_pause_pending_riser_and_lag() -> None:
    state = PlayState(base_seed=5, riser_m=0.14, paused=True)
    episode = Episode.from_reset(0, 5, RESET_INFO)
    episode.record(-9.9, INFO, terminated=True, truncated=False)
    lines = play.panel_lines(
        policy_name="zero action", state=state, episode=episode, dt_s=0.02, realtime_factor=0.61, behind=True
    )
    text = _texts(lines)
    assert "stairs up: 6 x 0.120 m  (next reset: 0.14 m)" in text
    assert "ended: fall" in text
    assert "PAUSED" in text
    assert "real time x0.61: cannot keep up" in text
    warnings = [line for line in lines if line.rgb == play.WARN_RGB]
    assert len(warnings) == 3


def test_panel_before_the_first_reset_and_after_a_time_limit() -> None:
    state = PlayState(base_seed=4, riser_m=0.1)
    text = _texts(play.panel_lines(policy_name="p", state=state, episode=None, dt_s=0.02))
    assert "next episode: seed 4, riser 0.10 m" in text
    assert "last end: -" in text
    episode = Episode.from_reset(0, 4, RESET_INFO)
    episode.record(0.1, {**INFO, "termination_reason": "none"}, terminated=False, truncated=True)
    assert episode.end == "time_limit"


def test_contact_arrows_follow_the_normal_scaled_by_force_and_coloured_by_link() -> None:
    def point(link: int, pos: Sequence[float], normal: Sequence[float], force: float) -> tuple[Any, ...]:
        return (0, 1, 0, link, -1, pos, pos, normal, 0.0, force)

    points = [
        point(3, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 100.0),
        point(7, (2.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.0),  # no force: left out
        point(5, (3.0, 0.0, 0.1), (1.0, 0.0, 0.0), 10_000.0),  # capped
    ]
    segments, colors = play.contact_arrows(points, frozenset({3}), force_scale_m_per_n=0.002)
    assert segments.shape == (2, 2, 3) and colors.shape == (2, 3)
    np.testing.assert_allclose(segments[0], [(1, 0, 0), (1, 0, 0.2)])
    np.testing.assert_allclose(segments[1], [(3, 0, 0.1), (3 + play.MAX_FORCE_LINE_M, 0, 0.1)])
    assert tuple(colors[0]) == play.FOOT_CONTACT_RGB
    assert tuple(colors[1]) == play.BODY_CONTACT_RGB
    empty_segments, empty_colors = play.contact_arrows([], frozenset(), 0.01)
    assert empty_segments.shape == (0, 2, 3) and empty_colors.shape == (0, 3)


def test_scan_grid_turns_with_the_base() -> None:
    xy = play.scan_grid_xy(np.array([1.0, 2.0, 0.3]), math.pi / 2, (0.5, 1.0), (-0.1, 0.1))
    np.testing.assert_allclose(xy, [(1.1, 2.5), (0.9, 2.5), (1.1, 3.0), (0.9, 3.0)], atol=1e-12)


def test_panel_positions_form_a_column_at_the_top_left_of_the_view() -> None:
    camera = play.CameraView(
        target=np.array([0.0, 0.0, 0.0]),
        forward=np.array([1.0, 0.0, 0.0]),
        up=np.array([0.0, 0.0, 1.0]),
        distance_m=2.0,
        focal_x=1.0,
        focal_y=1.0,
    )
    positions = play.panel_positions(camera, 3, depth_fraction=0.5, left_ndc=-0.9, top_ndc=0.9, line_ndc=0.1)
    # The eye is at x = -2; the panel plane at x = -1 (depth 1); right is -y, so left is +y.
    np.testing.assert_allclose(positions[:, 0], -1.0)
    np.testing.assert_allclose(positions[:, 1], 0.9)
    np.testing.assert_allclose(positions[:, 2], [0.9, 0.8, 0.7])


# ---- the loop, headless, on the real env ----------------------------------------------------------


def _headless_player(
    keys: Mapping[int, Sequence[int]],
    *,
    seed: int = 7,
    riser_m: float = 0.10,
    max_episode_steps: int | None = None,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    log: list[str] | None = None,
    **kwargs: Any,
) -> tuple[play.Player, play.HeadlessView]:
    env = gym.make(
        "stairbot/StairClimb-v0", max_episode_steps=max_episode_steps, overrides=play.play_env_overrides()
    )
    view = play.HeadlessView(play.ScriptedKeys(keys))
    t = FakeTime()
    lines = log if log is not None else []
    player = play.Player(
        env,
        act or (lambda obs: np.zeros(12, np.float32)),
        view,
        seed=seed,
        riser_m=riser_m,
        pacer=Pacer(0.02, clock=t.clock, sleep=t.sleep),
        log=lines.append,
        warn=lines.append,
        **kwargs,
    )
    return player, view


def test_loop_resets_steps_pauses_single_steps_and_quits_from_keys() -> None:
    log: list[str] = []
    script = {
        3: [ord("+")],
        5: [KEY_UP_ARROW],
        6: [ord("r")],
        8: [ord(" ")],
        10: [ord("n")],
        12: [KEY_RIGHT_ARROW],
        14: [ord("o")],
        16: [ord("q")],
    }
    player, view = _headless_player(script, log=log)
    try:
        result = player.run()
        assert result == play.PlayResult(episodes=2, steps=8, ended_by="quit")
        assert log[0].startswith("episode 0: seed 7, up 6 steps of 0.100 m x 0.30 m, command ")
        assert "stairs: riser 0.11 m from the next reset (r: reset now)" in log
        assert "stairs: riser 0.12 m from the next reset (r: reset now)" in log
        assert any(line.startswith("episode 1: seed 8, up 6 steps of 0.120 m") for line in log)
        assert player.base.flight.riser_m == pytest.approx(0.12)  # re-planned at the reset
        assert player.state.paused
        assert player.episode is not None and player.episode.steps == 3  # 1 running + 2 single steps
        assert view.shown[-1] is None  # overlays off after 'o'
        shown = [overlay for overlay in view.shown if overlay is not None]
        assert shown, "overlays were drawn before 'o'"
        overlay = shown[-1]
        assert overlay.scan_points.shape == (24, 3)
        assert any("PAUSED" in line.text for line in overlay.panel)
    finally:
        player.env.close()


def test_episode_end_holds_then_resets_with_the_next_seed_and_prints_the_replay_command() -> None:
    log: list[str] = []
    player, view = _headless_player({}, seed=3, riser_m=0.13, max_episode_steps=5, max_steps=12, log=log)
    player.end_hold_ticks = 2
    try:
        result = player.run()
        assert result.ended_by == "max steps"
        assert result.steps == 12 and result.episodes == 3
        ends = [line for line in log if " ended by " in line]
        assert ends[0] == (
            "episode 0 ended by time_limit after 5 steps (0.1 s): steps climbed 0/6, return "
            f"{float(ends[0].split('return ')[1].split(';')[0]):.2f}; "
            "replay: stairbot play --seed 3 --riser-m 0.130 --direction up"
        )
        assert any(line.startswith("episode 1: seed 4,") for line in log)
        assert any(line.startswith("episode 2: seed 5,") for line in log)
        assert player.state.last_end == "time_limit (episode 1, seed 4)"
        panel = [overlay for overlay in view.shown if overlay is not None][-1].panel
        assert any(line.text == "last end: time_limit (episode 1, seed 4)" for line in panel)
    finally:
        player.env.close()


def test_an_episode_replays_exactly_from_its_printed_seed() -> None:
    weights = np.random.default_rng(0).normal(scale=0.3, size=(12, 69)).astype(np.float32)
    trajectories: list[list[np.ndarray]] = []

    def act(obs: np.ndarray) -> np.ndarray:
        trajectories[-1].append(obs.copy())
        return np.tanh(weights @ obs)

    # A session from seed 10: episodes 0, 1, 2 (seeds 10, 11, 12), 15 steps each.
    trajectories.append([])
    session, _ = _headless_player({}, seed=10, max_episode_steps=15, max_steps=45, act=act)
    session.end_hold_ticks = 0
    try:
        session.run()
    finally:
        session.env.close()
    third = trajectories[-1][30:45]
    # Its third episode, replayed alone with --seed 12.
    trajectories.append([])
    replay, _ = _headless_player({}, seed=12, max_episode_steps=15, max_steps=15, act=act)
    try:
        replay.run()
    finally:
        replay.env.close()
    assert len(third) == len(trajectories[-1]) == 15
    np.testing.assert_array_equal(np.array(third), np.array(trajectories[-1]))


def test_overlay_scan_points_are_what_the_height_scan_sees() -> None:
    player, _ = _headless_player({1: [ord("q")]})
    try:
        player.run()
        overlay = player.overlay()
        base = player.base
        state = base.world.read_state()
        stance_floor = state.base_pos_m[2] - base.robot_spec.nominal_base_height_m
        expected = base._height_scan(state)  # the env's own scan (private: checked here for drift)
        np.testing.assert_allclose(
            np.clip(overlay.scan_points[:, 2] - 0.005 - stance_floor, -1, 1), expected, atol=1e-9
        )
        # Standing on the ground (after landing from the spawn height): the feet push up with about
        # the robot's weight.
        for _ in range(25):
            player.step()
        overlay = player.overlay()
        segments = overlay.contact_segments
        assert len(segments) >= 4
        lengths = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
        assert lengths.sum() == pytest.approx(play.FORCE_LENGTH_PER_WEIGHT_M, rel=0.5)
        assert (segments[:, 1, 2] > segments[:, 0, 2]).all()  # ground normals point up
    finally:
        player.env.close()


def test_play_env_allows_every_riser_and_checks_the_direction() -> None:
    overrides = play.play_env_overrides("down")
    assert overrides == {
        "curriculum.adaptive": False,
        "curriculum.difficulty": None,
        "curriculum.max_riser_m": MAX_RISER_M,
        "stairs.direction": "down",
    }
    with pytest.raises(StairbotError, match="direction must be one of"):
        play.play_env_overrides("sideways")


# ---- the GUI view, against a fake client ----------------------------------------------------------


class FakeGuiClient:
    """Stands in for the GUI's BulletClient: debug items with PyBullet's id and replace semantics."""

    def __init__(self) -> None:
        self.next_id = 0
        self.items: dict[int, tuple[str, tuple[Any, ...]]] = {}
        self.rendering: list[int] = []
        self.connected = True

    def _add(self, kind: str, args: tuple[Any, ...], replace: int) -> int:
        if replace >= 0:
            assert replace in self.items and self.items[replace][0] == kind
            self.items[replace] = (kind, args)
            return replace
        item, self.next_id = self.next_id, self.next_id + 1
        self.items[item] = (kind, args)
        return item

    def addUserDebugText(
        self, text: str, pos: Any, rgb: Any = None, textSize: float = 1, replaceItemUniqueId: int = -1
    ) -> int:
        return self._add("text", (text, tuple(pos)), replaceItemUniqueId)

    def addUserDebugLine(
        self, start: Any, end: Any, rgb: Any, width: float, replaceItemUniqueId: int = -1
    ) -> int:
        return self._add("line", (tuple(start), tuple(end)), replaceItemUniqueId)

    def addUserDebugPoints(
        self, points: Any, colors: Any, pointSize: float, replaceItemUniqueId: int = -1
    ) -> int:
        return self._add("points", (len(points),), replaceItemUniqueId)

    def removeUserDebugItem(self, item: int) -> None:
        del self.items[item]

    def configureDebugVisualizer(self, flag: int, value: int) -> None:
        if flag == pybullet.COV_ENABLE_RENDERING:
            self.rendering.append(value)

    def getDebugVisualizerCamera(self) -> tuple[Any, ...]:
        projection = (1.3, 0, 0, 0, 0, 1.73, 0, 0, 0, 0, -1, -1, 0, 0, -0.02, 0)
        forward = (-0.58, 0.69, -0.42)
        return (
            1024,
            768,
            (0.0,) * 16,
            projection,
            (0, 0, 1),
            forward,
            (0, 0, 0),
            (0, 0, 0),
            40,
            -25,
            1.6,
            (0, 0, 0.3),
        )

    def getKeyboardEvents(self) -> dict[int, int]:
        return {ord("o"): PRESSED}

    def isConnected(self) -> int:
        return int(self.connected)


def _overlay(num_lines: int, num_contacts: int, num_scan: int = 24) -> play.Overlay:
    segments = np.tile(np.array([[[0.0, 0, 0], [0, 0, 0.2]]]), (num_contacts, 1, 1))
    return play.Overlay(
        tuple(play.PanelLine(f"line {i}") for i in range(num_lines)),
        segments,
        np.tile(np.array(play.FOOT_CONTACT_RGB), (num_contacts, 1)),
        np.zeros((num_scan, 3)),
    )


def test_gui_view_reuses_its_debug_items_instead_of_leaking_them() -> None:
    client = FakeGuiClient()
    view = play.GuiView(client)
    view.show(_overlay(num_lines=20, num_contacts=4))
    first_ids = sorted(view.item_ids)
    assert len(first_ids) == 20 + 4 + 1
    for step in range(200):
        view.show(_overlay(num_lines=18 + step % 3, num_contacts=2 + step % 5))
    assert client.next_id == 20 + 6 + 1  # grew to the most items ever needed, then only replaced
    assert sorted(view.item_ids) == sorted(client.items) == list(range(client.next_id))
    # Unused slots are emptied, not left showing stale values.
    view.show(_overlay(num_lines=2, num_contacts=1))
    texts = [args for kind, args in client.items.values() if kind == "text"]
    assert sum(text != "" for text, _ in texts) == 2
    lines = [args for kind, args in client.items.values() if kind == "line"]
    assert sum(start[2] > -5 for start, _ in lines) == 1
    # Each refresh is one batch with rendering paused.
    assert client.rendering == [0, 1] * (len(client.rendering) // 2)
    # Overlays off removes everything; on again starts a fresh, equally small pool.
    view.show(None)
    assert client.items == {} and view.item_ids == []
    view.show(_overlay(num_lines=3, num_contacts=1))
    assert len(client.items) == 3 + 1 + 1


def test_gui_view_reads_the_gui_keyboard_and_connection() -> None:
    client = FakeGuiClient()
    view = play.GuiView(client)
    assert view.keys() == {ord("o"): PRESSED}
    assert view.is_open()
    client.connected = False
    assert not view.is_open()


# ---- entry points ---------------------------------------------------------------------------------


def read_png(path: Path) -> np.ndarray:
    """(H, W, 3) pixels of an 8-bit RGB PNG without filters (what play.write_png writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color_type = struct.unpack(">IIBB", body[:10])
            assert (depth, color_type) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 3)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 3)


def test_write_png_round_trips(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    play.write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_png(tmp_path / "x.png"), image)
    with pytest.raises(ValueError, match="expected an"):
        play.write_png(tmp_path / "y.png", image[:, :, 0])


def test_play_without_a_display_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StairbotError, match="needs an X display"):
        play.check_display({}, "linux")
    play.check_display({"DISPLAY": ":0"}, "linux")
    play.check_display({}, "darwin")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["play"]) == 2
    assert "DISPLAY is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["play", "--riser-m", "0.5"], "riser height must be in [0, 0.3] m"),
        (["play", "--seed", "-1"], "seed must be >= 0"),
        (["play", "--max-steps", "0"], "max steps must be >= 1"),
        (["play", "no/such/run"], "is not a policy"),
    ],
)
def test_play_bad_arguments_are_clear_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":999")  # never opened: the checks come before the window
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_play_help_documents_the_keys_and_replaying(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["play", "--help"])
    out = capsys.readouterr().out
    for text in ("space", "pause / resume", "n, right", "up, +, =", "down, -", "overlays on / off", "q, Esc"):
        assert text in out
    assert "--seed S --riser-m H --direction D" in out
    doc = play.__doc__ or ""
    for text in ("space", "n, right", "up, +, =", "down, -", "q, Esc", "--seed", "S + k"):
        assert text in doc


# ---- the real GUI under Xvfb ----------------------------------------------------------------------


@pytest.fixture
def xvfb_display(tmp_path: Path) -> Iterator[str]:
    """A private Xvfb server; its display number is chosen by Xvfb (-displayfd), so parallel workers
    never collide. Stopped (and killed if need be) when the test ends, pass or fail."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb; `make test` installs it when run as root)")
    read_fd, write_fd = os.pipe()
    log = (tmp_path / "xvfb.log").open("wb")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    os.close(write_fd)
    try:
        number = b""
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], 30.0)
            chunk = os.read(read_fd, 16) if ready else b""
            if not chunk:
                pytest.fail(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text(errors='replace')}")
            number += chunk
        yield f":{int(number)}"
    finally:
        os.close(read_fd)
        _stop(server)
        log.close()


def _stop(process: subprocess.Popen[Any]) -> None:
    """End a process started in its own session, with everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        # The process is gone; its group may not be.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def check_scene_screenshot(rgb: np.ndarray) -> None:
    """The robot and the stairs are in the picture: not black, not one colour, the robot's dark body
    and orange hips near the centre (the camera follows the base; nothing else in the scene is that
    dark or that orange), the grey stairs ahead of it (right half), and enough edges to be a scene."""
    height, width, _ = rgb.shape
    pixels = rgb.astype(np.int32)
    brightest, darkest = pixels.max(axis=2), pixels.min(axis=2)
    assert pixels.mean() > 60, "the screenshot is (nearly) black"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200 and pixels.std() > 15, "a single colour"

    dark = brightest < 70  # trunk, calves, feet; the sky, ground, stairs and shadows are lighter
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    orange = (red > 150) & (green > 50) & (green < 170) & (blue < 100) & (red - blue > 100)  # hips
    middle = (slice(height * 3 // 10, height * 7 // 10), slice(width * 2 // 10, width * 7 // 10))
    assert dark[middle].sum() > 1000, f"no robot body near the centre ({dark[middle].sum()} dark pixels)"
    assert dark[middle].sum() > 0.9 * dark.sum(), "dark pixels away from the robot: not the scene expected"
    assert orange[middle].sum() > 30, f"no robot hips near the centre ({orange[middle].sum()} orange pixels)"
    assert not dark[: height // 5].any(), "dark pixels in the sky"

    grey = (brightest - darkest < 10) & (brightest >= 100) & (brightest <= 215)  # the stair boxes
    assert grey[:, width // 2 :].mean() > 0.06, f"no stairs ahead ({grey[:, width // 2 :].mean():.3f} grey)"

    luminance = pixels.mean(axis=2)
    edges = (np.abs(np.diff(luminance, axis=0))[:, :-1] + np.abs(np.diff(luminance, axis=1))[:-1]) > 25
    assert edges.mean() > 0.003, f"too little structure ({edges.mean():.4f} edge pixels)"


def test_scene_check_rejects_blank_and_robotless_pictures() -> None:
    # (A real GUI render of the same view with the robot moved away fails on "no robot body" too.)
    with pytest.raises(AssertionError, match="black"):
        check_scene_screenshot(np.zeros((240, 320, 3), np.uint8))
    with pytest.raises(AssertionError, match="single colour"):
        check_scene_screenshot(np.full((240, 320, 3), 200, np.uint8))
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError, match="no robot"):
        check_scene_screenshot(rng.integers(100, 256, size=(240, 320, 3), dtype=np.uint8))


@pytest.mark.gui
def test_play_opens_the_gui_and_its_screenshot_shows_the_robot_and_stairs(
    xvfb_display: str, tmp_path: Path
) -> None:
    shot = tmp_path / "play.png"
    out_path, err_path = tmp_path / "play.out", tmp_path / "play.err"
    env = {**os.environ, "DISPLAY": xvfb_display}
    command = [
        sys.executable,
        "-m",
        "stairbot",
        "play",
        "--max-steps",
        "60",
        "--seed",
        "5",
        "--riser-m",
        "0.15",
    ]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--screenshot", str(shot)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=150)
        finally:
            _stop(process)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    assert returncode == 0, f"stairbot play failed ({returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert "episode 0: seed 5, up 6 steps of 0.150 m" in stdout
    assert f"wrote screenshot {shot}" in stdout
    assert "played 60 steps in 1 episode(s); ended by max steps" in stdout
    assert "GL_RENDERER=" in stdout  # the GUI opened its OpenGL window (PyBullet prints this)
    check_scene_screenshot(read_png(shot))
