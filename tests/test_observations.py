"""The observation layout: sizes, vectors and assembly derive from one list of terms."""

from __future__ import annotations

import numpy as np
import pytest

from stairbot.observations import (
    HISTORY_FRAME_TERMS,
    HISTORY_TERM,
    OBS_CLIP,
    ObservationHistory,
    ObservationLayout,
    ObsTerm,
    history_frame_size,
    observation_layout,
)


def test_sizes_slices_and_vectors_derive_from_the_terms() -> None:
    layout = observation_layout(num_joints=12, height_scan_points=24)
    assert layout.size == 3 + 3 + 3 + 12 * 3 + 24
    assert [t.name for t in layout][-1] == "height_scan"
    assert layout.slice("joint_vel") == slice(21, 33)
    np.testing.assert_array_equal(layout.scale[layout.slice("joint_vel")], np.full(12, 0.05))
    assert "| 21-32 | joint_vel | 12 | 0.05 |" in layout.describe()
    with pytest.raises(KeyError, match="no observation term 'foot_force'"):
        layout.slice("foot_force")


def test_assemble_scales_clips_and_adds_noise_from_the_rng() -> None:
    layout = ObservationLayout([ObsTerm("a", 2, 2.0), ObsTerm("b", 1, 1.0, noise=0.5)])
    raw = {"b": np.array([1e6]), "a": np.array([1.0, -3.0])}  # dict order does not matter
    clean = layout.assemble(raw)
    np.testing.assert_array_equal(clean, np.array([2.0, -6.0, OBS_CLIP], np.float32))
    noisy = [
        layout.assemble({"a": np.zeros(2), "b": np.zeros(1)}, np.random.default_rng(s)) for s in range(50)
    ]
    noisy = np.array(noisy)
    np.testing.assert_array_equal(noisy[:, :2], 0.0)  # noise only where the term has it
    assert 0 < np.abs(noisy[:, 2]).max() <= 0.5
    again = layout.assemble({"a": np.zeros(2), "b": np.zeros(1)}, np.random.default_rng(0))
    np.testing.assert_array_equal(again, noisy[0])


def test_the_history_term_comes_last_and_its_frame_is_the_first_terms() -> None:
    layout = observation_layout(num_joints=12, height_scan_points=24, history_steps=4)
    assert [t.name for t in layout][-1] == HISTORY_TERM
    assert layout[HISTORY_TERM].size == 4 * history_frame_size(12) == 4 * 45
    frame_end = layout.slice(HISTORY_FRAME_TERMS[-1]).stop
    assert [t.name for t in layout][: len(HISTORY_FRAME_TERMS)] == list(HISTORY_FRAME_TERMS)
    assert frame_end == history_frame_size(12)


def test_history_repeats_earlier_frames_newest_first_and_starts_from_the_first() -> None:
    history = ObservationHistory(steps=3, frame_size=2)
    where = slice(4, 10)  # observations of 10: a 2-entry frame, 2 other entries, 3 frames of history

    def observe(value: float) -> np.ndarray:
        observation = np.full(10, -1.0, np.float32)
        observation[:2] = (value, value + 0.5)
        history.fill(observation, where)
        return observation[where].reshape(3, 2)[:, 0]  # the first entry of each frame

    np.testing.assert_array_equal(observe(1.0), [1.0, 1.0, 1.0])  # its own frame, three times
    np.testing.assert_array_equal(observe(2.0), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(observe(3.0), [2.0, 1.0, 1.0])
    np.testing.assert_array_equal(observe(4.0), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(observe(5.0), [4.0, 3.0, 2.0])
    history.reset()
    np.testing.assert_array_equal(observe(9.0), [9.0, 9.0, 9.0])
    with pytest.raises(ValueError, match="steps >= 1"):
        ObservationHistory(steps=0, frame_size=2)
