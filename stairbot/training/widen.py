"""Grow a trained PPO policy's input to take more observation, without changing what it does.

Two growths, alone or together:

- the proprioceptive history (`observation.history_steps`) added to a policy trained without it: the
  history sits at the end of the layout, so every source input keeps its place;
- a finer height scan (`observation.height_scan.x_points_m` / `y_points_m`) whose grid holds every
  point of the source's: the source's points keep their weights wherever they land in the new order
  (x-major), the new points sit between them.

Each input of the new layout either comes from one source input (its first-layer weights are that
input's column) or is new (zero columns). The actor and the critic then compute exactly what they
computed before, whatever the new inputs hold; training learns what they are worth. A new input's
normalization statistics are copies of a source input with the same distribution: a history entry
takes its frame entry's (a history frame is an earlier observation's first F entries), a new scan
point takes the nearest source point's. They keep the source's sample count, so the normalization of
every input moves as slowly as it did in the source run. Adam's moments of new columns start at zero.

Only PPO: SAC's critic takes the observation and the action concatenated, and its target networks
and entropy coefficient would need the same surgery; nothing here needs it yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stairbot.deploy import BundleMetadata
from stairbot.envs.config import EnvConfig, env_observation_layout
from stairbot.observations import HISTORY_FRAME_TERMS, HISTORY_TERM, history_frame_size
from stairbot.training.checkpoints import CheckpointError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# The PPO parameters whose input is the observation (net_arch as a list: separate actor and critic).
PPO_INPUT_LAYERS = ("mlp_extractor.policy_net.0.weight", "mlp_extractor.value_net.0.weight")

SCAN_TERM = "height_scan"
_SAME_POINT_M = 1e-6  # grid offsets closer than this are one point


@dataclass(frozen=True)
class LayoutShape:
    """What a policy's input is made of.

    Attributes:
        terms: (name, size) per observation term, in layout order.
        scan_x_m, scan_y_m: the height-scan grid (base yaw frame, m, x-major order); empty without
            a height scan.
    """

    terms: tuple[tuple[str, int], ...]
    scan_x_m: tuple[float, ...] = ()
    scan_y_m: tuple[float, ...] = ()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.terms]

    @property
    def size(self) -> int:
        return sum(size for _, size in self.terms)

    def span(self, name: str) -> tuple[int, int]:
        """(start, size) of term `name` in the observation vector."""
        start = 0
        for term, size in self.terms:
            if term == name:
                return start, size
            start += size
        raise KeyError(name)

    def describe_scan(self) -> str:
        grid = f"x {list(self.scan_x_m)}, y {list(self.scan_y_m)}"
        return f"{len(self.scan_x_m)} x {len(self.scan_y_m)} points at {grid}"


def env_layout_shape(config: EnvConfig, num_joints: int) -> LayoutShape:
    """The input of a policy trained in an env built from `config`."""
    layout = env_observation_layout(config, num_joints)
    scan = config.observation.height_scan
    grid = (tuple(scan.x_points_m), tuple(scan.y_points_m)) if scan.enabled else ((), ())
    return LayoutShape(tuple((term.name, term.size) for term in layout), *grid)


def bundle_layout_shape(meta: BundleMetadata) -> LayoutShape:
    """The input of an exported policy, from its policy.json."""
    return LayoutShape(
        tuple((term.name, term.size) for term in meta.observation_terms),
        tuple(meta.scan_x_points_m or ()),
        tuple(meta.scan_y_points_m or ()),
    )


@dataclass(frozen=True)
class InputMap:
    """Where each input of the new observation comes from in the source's.

    Attributes:
        source_size: N0, the source's observation size.
        weight_from: (N,) for each new input, the source input whose first-layer column it takes;
            -1 for an input the source did not have (a zero column).
        stats_from: (N,) for each new input, the source input whose normalization mean and variance
            it takes.
        changes: what grew, in words (printed when the run starts).
    """

    source_size: int
    weight_from: tuple[int, ...]
    stats_from: tuple[int, ...]
    changes: tuple[str, ...]

    @property
    def new_size(self) -> int:
        return len(self.weight_from)

    @property
    def new_inputs(self) -> int:
        return sum(1 for index in self.weight_from if index < 0)


def _index(values: Sequence[float], value: float) -> int | None:
    for index, candidate in enumerate(values):
        if abs(candidate - value) < _SAME_POINT_M:
            return index
    return None


def _scan_map(source: LayoutShape, target: LayoutShape) -> tuple[list[int], list[int]]:
    """(weight_from, stats_from) of the target's scan points, relative to the source scan's start.

    Raises CheckpointError when a source point is not on the target's grid: its weights would have
    nowhere to go, and a same-sized grid elsewhere would read other terrain into the same inputs.
    """
    missing = [x for x in source.scan_x_m if _index(target.scan_x_m, x) is None]
    missing += [y for y in source.scan_y_m if _index(target.scan_y_m, y) is None]
    if missing:
        raise CheckpointError(
            f"the source policy's height scan ({source.describe_scan()}) is not part of this run's "
            f"({target.describe_scan()}; offsets {missing} are missing): a run may refine the source's "
            "scan grid (keep every offset, add others), not move it"
        )
    source_points = [(x, y) for x in source.scan_x_m for y in source.scan_y_m]
    weight_from, stats_from = [], []
    for x in target.scan_x_m:
        for y in target.scan_y_m:
            ix, iy = _index(source.scan_x_m, x), _index(source.scan_y_m, y)
            if ix is not None and iy is not None:
                own = ix * len(source.scan_y_m) + iy
                weight_from.append(own)
                stats_from.append(own)
            else:  # a new point: zero weights, the nearest source point's statistics
                nearest = min(range(len(source_points)), key=lambda i: math.dist(source_points[i], (x, y)))
                weight_from.append(-1)
                stats_from.append(nearest)
    return weight_from, stats_from


def input_map(source: LayoutShape, target: LayoutShape, num_joints: int) -> InputMap | None:
    """How a source input grows into the target's, or None when it does not: the layouts are equal,
    or differ in a way no growth covers (the caller reports the mismatch).

    Covered: `proprio_history` appended to a source without one, and a height scan whose grid holds
    every point of the source's. Raises CheckpointError for a scan grid that moved (see `_scan_map`).
    """
    names = source.names
    adds_history = target.names == [*names, HISTORY_TERM]
    if source == target or not (adds_history or target.names == names):
        return None
    weight_from: list[int] = []
    stats_from: list[int] = []
    changes: list[str] = []
    for name, size in target.terms:
        if name == HISTORY_TERM and adds_history:
            frame = history_frame_size(num_joints)
            frame_terms = names[: len(HISTORY_FRAME_TERMS)]
            if size % frame or frame_terms != list(HISTORY_FRAME_TERMS):
                return None
            weight_from += [-1] * size
            stats_from += list(range(frame)) * (size // frame)  # the frame is the source's first entries
            changes.append(f"{HISTORY_TERM}: {size // frame} steps of {frame} inputs")
            continue
        start, source_size = source.span(name)
        if name == SCAN_TERM and (source.scan_x_m, source.scan_y_m) != (target.scan_x_m, target.scan_y_m):
            scan_weights, scan_stats = _scan_map(source, target)
            weight_from += [start + i if i >= 0 else -1 for i in scan_weights]
            stats_from += [start + i for i in scan_stats]
            changes.append(f"{SCAN_TERM}: {source.describe_scan()} -> {target.describe_scan()}")
        elif size == source_size:
            weight_from += range(start, start + size)
            stats_from += range(start, start + size)
        else:
            return None
    if not changes:
        return None
    return InputMap(source.size, tuple(weight_from), tuple(stats_from), tuple(changes))


def grow_statistics(mean: FloatArray, var: FloatArray, growth: InputMap) -> tuple[FloatArray, FloatArray]:
    """(N,) mean and variance of the new inputs from the source's (N0,)."""
    if mean.shape != (growth.source_size,) or var.shape != mean.shape:
        raise CheckpointError(
            f"observation statistics have shape {mean.shape} / {var.shape}, expected ({growth.source_size},)"
        )
    index = np.asarray(growth.stats_from, np.int64)
    return mean[index].copy(), var[index].copy()


def grow_columns(weight: NDArray[Any], growth: InputMap) -> NDArray[Any]:
    """(out, N0) first-layer weights -> (out, N): each kept input's column where it now sits, zero
    columns for new inputs."""
    if weight.ndim != 2 or weight.shape[1] != growth.source_size:
        raise CheckpointError(
            f"a first layer of shape {weight.shape} does not take the source's {growth.source_size} inputs"
        )
    source: IntArray = np.asarray(growth.weight_from, np.int64)
    grown = np.zeros((weight.shape[0], growth.new_size), weight.dtype)
    kept = source >= 0
    grown[:, kept] = weight[:, source[kept]]
    return grown


def grow_ppo_parameters(
    params: dict[str, Any], parameter_names: Sequence[str], growth: InputMap
) -> dict[str, Any]:
    """Grow the input layers of an SB3 PPO parameter dict (`load_from_zip_file`'s params: "policy"
    state dict, "policy.optimizer" state dict) in place and return it.

    `parameter_names`: the policy's `named_parameters()` names in order; the optimizer's state is
    indexed by that order (SB3 builds it from `policy.parameters()`).
    """
    policy = params["policy"]
    optimizer_state = params.get("policy.optimizer", {}).get("state", {})
    for name in PPO_INPUT_LAYERS:
        if name not in policy:
            raise CheckpointError(f"the PPO checkpoint has no {name} (an unexpected network layout)")
        tensor = policy[name]
        policy[name] = torch.as_tensor(grow_columns(tensor.cpu().numpy(), growth))
        moments = optimizer_state.get(parameter_names.index(name), {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in moments:
                moments[key] = torch.as_tensor(grow_columns(moments[key].cpu().numpy(), growth))
    return params
