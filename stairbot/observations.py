"""The observation layout: one list of terms from which sizes, scale and noise vectors, docs and
metadata derive.

Each term is (name, size, scale, noise): the policy sees `clip(raw * scale + noise, -clip, clip)`
concatenated in layout order. Nothing else keeps observation sizes; the env, the docs table and the
export metadata all read them from `observation_layout(...)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# The history's frame and ring buffer live in the deploy runtime (which imports no other stairbot
# module), so that the env and a robot fill proprio_history with the same code.
from stairbot.deploy import HISTORY_FRAME_TERMS, ObservationHistory, history_frame_size

__all__ = [
    "HISTORY_FRAME_TERMS",
    "HISTORY_TERM",
    "OBS_CLIP",
    "ObsTerm",
    "ObservationHistory",
    "ObservationLayout",
    "history_frame_size",
    "observation_layout",
]
FloatArray = NDArray[np.float64]

OBS_CLIP = 100.0  # after scaling; only guards against blow-ups

HISTORY_TERM = "proprio_history"


@dataclass(frozen=True)
class ObsTerm:
    """One named block of the observation vector.

    Attributes:
        name: identifier used by the env to fill the block.
        size: number of entries.
        scale: multiplies the raw value (brings it to order 1).
        noise: half-width of uniform noise added after scaling (0 = none).
        description: units and meaning of the raw value, for docs and export metadata.
    """

    name: str
    size: int
    scale: float
    noise: float = 0.0
    description: str = ""


class ObservationLayout:
    """The ordered observation terms and the per-entry vectors derived from them.

    Attributes:
        terms: the blocks in order.
        size: total length N.
        scale: (N,) per-entry scale.
        noise: (N,) per-entry noise half-width (after scaling).
    """

    def __init__(self, terms: Sequence[ObsTerm]) -> None:
        self.terms = tuple(terms)
        self.size = sum(term.size for term in self.terms)
        self.scale = np.concatenate([np.full(t.size, t.scale) for t in self.terms])
        self.noise = np.concatenate([np.full(t.size, t.noise) for t in self.terms])
        self._has_noise = bool(self.noise.any())

    def __iter__(self) -> Iterator[ObsTerm]:
        return iter(self.terms)

    def __getitem__(self, name: str) -> ObsTerm:
        for term in self.terms:
            if term.name == name:
                return term
        raise KeyError(f"no observation term '{name}'; terms: {[t.name for t in self.terms]}")

    def slice(self, name: str) -> slice:
        """Where the block `name` sits in the observation vector."""
        start = 0
        for term in self.terms:
            if term.name == name:
                return slice(start, start + term.size)
            start += term.size
        raise KeyError(f"no observation term '{name}'; terms: {[t.name for t in self.terms]}")

    def assemble(
        self,
        raw: Mapping[str, FloatArray],
        rng: np.random.Generator | None = None,
        noise_scale: float = 1.0,
    ) -> NDArray[np.float32]:
        """Concatenate raw term values in layout order, scale, add noise, clip -> (N,) float32.

        `noise_scale` multiplies every noise half-width (an episode's randomized noise level); the
        noise is drawn from `rng` even at scale 0, so the random stream does not depend on it.
        """
        value = np.concatenate([raw[term.name] for term in self.terms]) * self.scale
        if self._has_noise and rng is not None:
            half_width = self.noise if noise_scale == 1.0 else self.noise * noise_scale
            value += rng.uniform(-half_width, half_width)
        return np.clip(value, -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def with_noise(self, noise: Mapping[str, float]) -> ObservationLayout:
        """A copy whose terms named in `noise` (name -> half-width, scaled units) have that noise.

        Raises `KeyError` listing the layout's terms for a name it does not have.
        """
        names = [t.name for t in self.terms]
        unknown = sorted(set(noise) - set(names))
        if unknown:
            raise KeyError(f"no observation term(s) {unknown}; terms: {names}")
        return ObservationLayout(
            [dataclasses.replace(t, noise=float(noise.get(t.name, t.noise))) for t in self.terms]
        )

    def describe(self) -> str:
        """A Markdown table of the layout (index range, name, size, scale, meaning)."""
        rows = ["| indices | name | size | scale | raw value |", "|---|---|---|---|---|"]
        start = 0
        for term in self.terms:
            rows.append(
                f"| {start}-{start + term.size - 1} | {term.name} | {term.size} | {term.scale:g} "
                f"| {term.description} |"
            )
            start += term.size
        return "\n".join(rows)


def observation_layout(
    num_joints: int, height_scan_points: int = 0, *, gait_phase: bool = False, history_steps: int = 0
) -> ObservationLayout:
    """The StairClimb observation layout for a robot with `num_joints` joints (with the gait
    prior's phase block when `gait_phase`, and the previous `history_steps` frames last)."""
    terms = [
        ObsTerm("base_ang_vel", 3, 0.25, description="base angular velocity, base frame, rad/s"),
        ObsTerm("projected_gravity", 3, 1.0, description="unit gravity vector in the base frame"),
        ObsTerm("command", 3, 1.0, description="commanded (vx m/s, vy m/s, yaw rate rad/s)"),
        ObsTerm("joint_pos", num_joints, 1.0, description="joint position - default pose, rad"),
        ObsTerm("joint_vel", num_joints, 0.05, description="joint velocity, rad/s"),
        ObsTerm("last_action", num_joints, 1.0, description="previous action in [-1, 1]"),
    ]
    if gait_phase:
        terms.append(ObsTerm("gait_phase", 2, 1.0, description="gait clock phase as (sin, cos)"))
    if height_scan_points:
        terms.append(
            ObsTerm(
                "height_scan",
                height_scan_points,
                5.0,
                description="terrain height minus the stance floor (base z - nominal height), m, "
                "on the scan grid (x-major), clipped to [-1, 1] m",
            )
        )
    if history_steps:
        terms.append(
            ObsTerm(
                HISTORY_TERM,
                history_steps * history_frame_size(num_joints),
                1.0,
                description=f"the first six terms ({', '.join(HISTORY_FRAME_TERMS)}) of the previous "
                f"{history_steps} observations as the policy saw them (scaled, with their noise), "
                "newest first; an episode's first observation repeats its own",
            )
        )
    return ObservationLayout(terms)
