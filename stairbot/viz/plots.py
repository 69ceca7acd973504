"""Figures of a training run and of one episode: `stairbot plot RUN_DIR [--out DIR] [--seed S]`.

- `learning_curves.png`: from `episodes.csv`, per training episode against environment steps, the
  return, the length, the success rate and why episodes ended (each a trailing rolling mean over
  episodes), and the curriculum difficulty (with the riser it means; success and difficulty per
  direction where a run went up and down); from `evaluations.csv`, the
  periodic evaluation's success rate, steps climbed and mean return.
- `reward_terms.png`: small multiples, one per reward term: its weighted episode sum (rolling mean).
- `episode_seed<S>.png`: one seeded episode of the run's best policy (`stairbot.viz.telemetry`):
  the base height over the stair profile against x, joint angles and torques against time, and a
  foot-contact timeline. Its telemetry is saved beside it (`.npz` and `.csv`).

Figures are `matplotlib.figure.Figure` objects drawn by the Agg canvas: no pyplot, so no display,
no global figure registry and no backend switch for the process that imports this module; each
figure is released (`clear()`) once saved.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from numpy.typing import NDArray

from stairbot.errors import StairbotError
from stairbot.viz.telemetry import EpisodeTelemetry

FloatArray = NDArray[np.float64]

DPI = 100
TERM_PREFIX = "term/"
# Rolling windows: about 1/25 of the episodes, between these bounds.
_MIN_WINDOW, _MAX_WINDOW = 1, 200
_REASON_COLORS = {
    "success": "tab:green",
    "time_limit": "tab:blue",
    "fall": "tab:red",
    "base_contact": "tab:orange",
    "thigh_contact": "tab:brown",
    "out_of_bounds": "tab:purple",
}


# ---- data ---------------------------------------------------------------------------------------


def read_table(path: Path) -> dict[str, NDArray[Any]]:
    """A CSV file as columns: numeric columns as float arrays, others as string arrays.

    A missing file or a header without rows gives empty columns (no data yet).
    """
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        names = list(reader.fieldnames or [])
    table: dict[str, NDArray[Any]] = {}
    for name in names:
        raw = [row[name] for row in rows]
        try:
            table[name] = np.array([float(v) if v != "" else np.nan for v in raw], dtype=np.float64)
        except ValueError:
            table[name] = np.array(raw, dtype=str)
    return table


def rolling_mean(values: NDArray[Any], window: int) -> FloatArray:
    """Trailing mean over the last `window` values (fewer at the start), same length as `values`."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    sums = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(0, end - window)
    return (sums[end] - sums[start]) / (end - start)


def default_window(num_episodes: int) -> int:
    """About 1/25 of the episodes, at least 5 (or all of them when fewer), at most 200."""
    return int(min(_MAX_WINDOW, max(_MIN_WINDOW, min(5, num_episodes), round(num_episodes / 25))))


def run_max_riser_m(run_dir: Path) -> float | None:
    """The curriculum's max_riser_m (m) from the run's env.yaml: difficulty 1 means this riser."""
    from stairbot.config import read_yaml

    try:
        env = read_yaml(run_dir / "env.yaml")
        return float(env["curriculum"]["max_riser_m"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _num_stair_steps(run_dir: Path) -> int | None:
    from stairbot.config import read_yaml

    try:
        return int(read_yaml(run_dir / "env.yaml")["stairs"]["num_steps"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


# ---- helpers ------------------------------------------------------------------------------------


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as a 256-colour palette PNG (a third of the bytes of RGBA, no visible change for
    line plots) and release it."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    fig.clear()
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    palette.save(path, format="PNG", optimize=True)
    return path


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes, color="0.4")


def steps_axis(ax: Axes) -> None:
    ax.set_xlabel("environment steps")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.grid(alpha=0.3)


def _curve(
    ax: Axes,
    x: FloatArray,
    y: FloatArray,
    window: int,
    *,
    label: str,
    color: str = "tab:blue",
    raw: bool = True,
) -> None:
    if raw:
        ax.plot(x, y, ".", ms=2, color=color, alpha=0.2, label=f"{label}, each episode")
    ax.plot(x, rolling_mean(y, window), color=color, lw=1.8, label=f"{label}, mean of {_episodes(window)}")


def _episodes(count: int) -> str:
    return f"{count} episode" if count == 1 else f"{count} episodes"


# ---- learning curves ----------------------------------------------------------------------------


def plot_learning_curves(run_dir: Path, out: Path) -> Path:
    """`out` (PNG): training-episode and evaluation curves of the run in `run_dir`."""
    return save_png(learning_curves_figure(run_dir), out)


def _directions(cols: dict[str, NDArray[Any]]) -> list[tuple[str, NDArray[np.bool_], str]]:
    """(label, episode mask, colour) per flight direction where a run went both ways, so that the
    success and curriculum curves of up and down episodes (each with its own level, with
    `curriculum.separate_down_level`) are not averaged into one; one all-episode row otherwise."""
    directions = cols.get("direction")
    n = len(cols["timesteps"])
    if directions is None or not (directions == "down").any() or (directions == "down").all():
        return [("", np.ones(n, dtype=bool), "")]
    return [(" up", directions == "up", "tab:purple"), (" down", directions == "down", "tab:brown")]


def learning_curves_figure(run_dir: Path) -> Figure:
    """The figure `plot_learning_curves` writes: training episodes (top row, and the curriculum
    bottom left) and periodic evaluations. A run with up and down episodes gets a success and a
    curriculum curve per direction."""
    episodes = read_table(run_dir / "episodes.csv")
    evaluations = read_table(run_dir / "evaluations.csv")
    n = len(episodes.get("timesteps", ()))
    window = default_window(n)
    # wspace: room for the labels of the right-hand axes (riser height, steps climbed).
    fig = Figure(figsize=(18, 8.5), layout=ConstrainedLayoutEngine(wspace=0.06))
    axes = fig.subplots(2, 4)
    fig.suptitle(f"Training run {run_dir.name}: {_episodes(n)}", fontsize=14)
    (ax_ret, ax_len, ax_success, ax_reason), (ax_diff, ax_eval_success, ax_eval_climbed, ax_eval_ret) = axes

    ax_ret.set_title("Episode return")
    ax_ret.set_ylabel("return (sum of rewards)")
    ax_len.set_title("Episode length")
    ax_len.set_ylabel("length (control steps)")
    ax_success.set_title("Training success rate")
    ax_success.set_ylabel("episodes reaching the landing (%)")
    ax_reason.set_title("Why episodes ended")
    ax_reason.set_ylabel(f"share of the last {_episodes(window)} (%)")
    ax_diff.set_title("Curriculum difficulty")
    ax_diff.set_ylabel("difficulty (0 = flat, 1 = max riser)")
    for ax in axes[0]:
        steps_axis(ax)
    steps_axis(ax_diff)
    if n:
        x = episodes["timesteps"]
        order = np.argsort(x, kind="stable")
        x = x[order]
        cols = {name: values[order] for name, values in episodes.items()}
        _curve(ax_ret, x, cols["return"], window, label="return")
        _curve(ax_len, x, cols["length"], window, label="length", color="tab:gray")
        directions = _directions(cols)
        for name, mask, color in directions:
            _curve(
                ax_success,
                x[mask],
                100 * cols["success"][mask],
                window,
                label=f"success{name}",
                color=color or "tab:green",
                raw=False,
            )
        climbed = cols.get("steps_climbed")
        if climbed is not None:
            twin = ax_success.twinx()
            twin.plot(x, rolling_mean(climbed, window), color="tab:olive", lw=1.2, ls="--")
            twin.set_ylabel("steps climbed (mean)", color="tab:olive")
            twin.set_ylim(0, max(1.0, float(np.nanmax(climbed)) * 1.05))
            ax_success.plot([], [], color="tab:olive", ls="--", label="steps climbed (right axis)")
        ax_success.set_ylim(-2, 102)
        reasons = cols.get("termination_reason")
        if reasons is not None:
            known = list(_REASON_COLORS)
            names = sorted(set(reasons.tolist()), key=lambda r: known.index(r) if r in known else len(known))
            shares = [100 * rolling_mean(reasons == name, window) for name in names]
            ax_reason.stackplot(
                x, shares, labels=names, colors=[_REASON_COLORS.get(r, "0.6") for r in names], alpha=0.85
            )
            ax_reason.set_ylim(0, 100)
            ax_reason.legend(loc="lower left", fontsize=8, framealpha=0.9, ncol=2)
        for name, mask, color in directions:
            level = cols["difficulty"][mask]
            _curve(ax_diff, x[mask], level, window, label=f"difficulty{name}", color=color or "tab:purple")
        ax_diff.set_ylim(-0.02, max(0.2, float(np.nanmax(cols["difficulty"], initial=0.0)) * 1.1))
        max_riser = run_max_riser_m(run_dir)
        if max_riser is not None:
            riser_axis = ax_diff.secondary_yaxis(
                "right", functions=(lambda d: d * max_riser * 100, lambda cm: cm / (max_riser * 100))
            )
            riser_axis.set_ylabel("riser height (cm)")
        for ax in (ax_ret, ax_len, ax_success, ax_diff):
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
    else:
        for ax in (ax_ret, ax_len, ax_success, ax_reason, ax_diff):
            _no_data(ax, "finished training episodes")

    riser = evaluations.get("riser_m")
    riser_note = f" (riser {riser[-1] * 100:.0f} cm)" if riser is not None and len(riser) else ""
    ax_eval_success.set_title(f"Evaluation success rate{riser_note}")
    ax_eval_success.set_ylabel("success rate (%)")
    ax_eval_climbed.set_title("Evaluation steps climbed")
    ax_eval_climbed.set_ylabel("risers crossed (mean over episodes)")
    ax_eval_ret.set_title("Evaluation return")
    ax_eval_ret.set_ylabel("mean return")
    for ax in (ax_eval_success, ax_eval_climbed, ax_eval_ret):
        steps_axis(ax)
    if len(evaluations.get("timesteps", ())):
        ex = evaluations["timesteps"]
        best = evaluations.get("best", np.zeros_like(ex)) > 0
        panels: tuple[tuple[Axes, str, float, str], ...] = (
            (ax_eval_success, "success_rate", 100.0, "tab:green"),
            (ax_eval_climbed, "steps_climbed", 1.0, "tab:olive"),
            (ax_eval_ret, "mean_return", 1.0, "tab:blue"),
        )
        for ax, name, scale, color in panels:
            y = scale * evaluations[name]
            ax.plot(ex, y, "o-", color=color, ms=4, label=name.replace("_", " "))
            ax.plot(ex[best], y[best], "*", color="gold", mec="k", ms=12, label="new best model")
            ax.legend(loc="best", fontsize=8, framealpha=0.8)
        ax_eval_success.set_ylim(-2, 102)
        stairs = _num_stair_steps(run_dir)
        if stairs is not None:
            ax_eval_climbed.axhline(stairs, color="0.4", ls=":", label=f"all {stairs} risers")
            ax_eval_climbed.set_ylim(-0.2, stairs + 0.5)
            ax_eval_climbed.legend(loc="best", fontsize=8, framealpha=0.8)
    else:
        for ax in (ax_eval_success, ax_eval_climbed, ax_eval_ret):
            _no_data(ax, "evaluations")
    return fig


def plot_reward_terms(run_dir: Path, out: Path) -> Path:
    """`out` (PNG): each reward term's weighted episode sum against environment steps."""
    episodes = read_table(run_dir / "episodes.csv")
    names = [name for name in episodes if name.startswith(TERM_PREFIX)]
    n = len(episodes.get("timesteps", ()))
    cols = 4
    rows = max(1, math.ceil(len(names) / cols))
    fig = Figure(figsize=(16, 2.8 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    window = default_window(n)
    fig.suptitle(
        f"Reward terms of {run_dir.name}: weighted sum per episode (dots: episodes, line: mean of {window})",
        fontsize=13,
    )
    if not names or not n:
        _no_data(axes[0], "reward terms")
    else:
        x = episodes["timesteps"]
        order = np.argsort(x, kind="stable")
        for ax, name in zip(axes, names, strict=False):
            y = episodes[name][order]
            color = "tab:green" if np.nanmean(y) >= 0 else "tab:red"
            _curve(ax, x[order], y, window, label=name, color=color)
            ax.set_title(name.removeprefix(TERM_PREFIX))
            ax.set_ylabel("episode sum")
            ax.axhline(0.0, color="0.5", lw=0.6)
            ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        if ax is not axes[0] or names:
            ax.set_visible(False)
    for ax in axes[-cols:]:
        if ax.get_visible():
            steps_axis(ax)
    for ax in axes[: len(names)]:
        ax.tick_params(labelbottom=True)
    return save_png(fig, out)


# ---- one episode --------------------------------------------------------------------------------


def _joint_groups(names: tuple[str, ...]) -> list[tuple[str, list[int]]]:
    """Joints grouped by what they are: `FR_hip_joint` -> ("hip", ...), labelled by leg (`FR`).

    Names that do not follow `<leg>_<part>` go in one group.
    """
    parts = [name.split("_", 1) for name in names]
    if all(len(p) == 2 for p in parts):
        groups: dict[str, list[int]] = {}
        for i, (_, part) in enumerate(parts):
            groups.setdefault(part.removesuffix("_joint"), []).append(i)
        if len(groups) <= 4:
            return list(groups.items())
    return [("joints", list(range(len(names))))]


def _label(name: str) -> str:
    head, _, tail = name.partition("_")
    return head if tail else name


def plot_episode(telemetry: EpisodeTelemetry, out: Path, *, title: str | None = None) -> Path:
    """`out` (PNG): side view of the base over the stairs, joint angles, torques, foot contacts."""
    tm = telemetry
    groups = _joint_groups(tm.joint_names)
    cols = len(groups)
    fig = Figure(figsize=(15, 13), layout="constrained")
    grid = fig.add_gridspec(4, cols, height_ratios=(1.25, 1, 1, 0.6))
    climbed = int(tm.steps_climbed[-1]) if tm.length else 0
    fig.suptitle(
        title
        or (
            f"{tm.policy}, seed {tm.seed}: {tm.length} steps ({tm.length * tm.dt_s:.1f} s) on "
            f"{tm.num_steps} risers of {tm.riser_m * 100:.1f} cm {tm.direction}, climbed {climbed}, "
            f"ended by {tm.termination_reason}, return {tm.episode_return:.1f}"
        ),
        fontsize=13,
    )
    t = tm.time_s

    side = fig.add_subplot(grid[0, :])
    side.fill_between(tm.profile_x_m, tm.profile_z_m, -0.05, color="0.75", label="stairs (centre line)")
    side.plot(tm.profile_x_m, tm.profile_z_m, color="0.35", lw=1)
    if tm.length:
        x, z = tm.base_pos_m[:, 0], tm.base_pos_m[:, 2]
        side.plot(x, z, color="tab:blue", lw=1.6, label="base height")
        side.plot(x, tm.terrain_height_m, color="tab:orange", lw=1, ls="--", label="stairs under the base")
        side.plot(x[0], z[0], "o", color="tab:green", label="start")
        side.plot(x[-1], z[-1], "X", color="tab:red", ms=9, label=f"end ({tm.termination_reason})")
        lo = min(float(x.min()), 0.0) - 0.4
        hi = max(float(x.max()) + 0.4, float(tm.edges_x_m[-1]) + 0.6 if len(tm.edges_x_m) else 0.0)
        side.set_xlim(lo, min(hi, float(tm.profile_x_m[-1])))
    side.set_ylim(-0.05, max(float(tm.profile_z_m.max()), float(tm.base_pos_m[:, 2].max(initial=0))) + 0.15)
    side.set_aspect("equal", adjustable="box")  # true proportions of the stairs
    side.set_title("Base height over the stair profile (side view)")
    side.set_xlabel("x, along the stairs (m)")
    side.set_ylabel("z (m)")
    side.legend(loc="upper left", fontsize=8, framealpha=0.8, ncol=5)
    side.grid(alpha=0.3)

    angle_axes: list[Axes] = []
    for col, (part, idx) in enumerate(groups):
        ax_q = fig.add_subplot(grid[1, col], sharex=angle_axes[0] if angle_axes else None)
        ax_tau = fig.add_subplot(grid[2, col], sharex=ax_q)
        angle_axes.append(ax_q)
        for i in idx:
            label = _label(tm.joint_names[i]) if len(groups) > 1 else tm.joint_names[i]
            ax_q.plot(t, tm.joint_pos_rad[:, i], lw=1, label=label)
            ax_tau.plot(t, tm.torques_nm[:, i], lw=1, label=label)
        limits = sorted({float(tm.torque_limit_nm[i]) for i in idx})
        for k, limit in enumerate(limits):
            for sign in (1, -1):
                ax_tau.axhline(
                    sign * limit,
                    color="0.3",
                    ls=":",
                    lw=1,
                    label="torque limit" if k == 0 and sign > 0 else None,
                )
        ax_q.set_title(f"{part} joint angle")
        ax_q.set_ylabel("angle (rad)")
        ax_tau.set_title(f"{part} torque (last substep)")
        ax_tau.set_ylabel("torque (N·m)")
        ax_tau.set_xlabel("time (s)")
        for ax in (ax_q, ax_tau):
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right", fontsize=7, ncol=2, framealpha=0.8)

    contact = fig.add_subplot(grid[3, :], sharex=angle_axes[0] if angle_axes else None)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    for f in range(len(tm.foot_names)):
        spans = _true_spans(tm.foot_contact[:, f])
        contact.broken_barh(
            [(t[a] - tm.dt_s, (b - a) * tm.dt_s) for a, b in spans],
            (f - 0.4, 0.8),
            color=colors[f % len(colors)],
        )
    contact.set_yticks(range(len(tm.foot_names)), [_label(n) if "_" in n else n for n in tm.foot_names])
    contact.set_ylim(-0.6, len(tm.foot_names) - 0.4)
    contact.invert_yaxis()
    contact.set_title("Foot contacts (bar: foot touches the ground or a stair)")
    contact.set_xlabel("time (s)")
    contact.set_ylabel("foot")
    contact.grid(alpha=0.3, axis="x")
    if tm.length:
        contact.set_xlim(0.0, float(t[-1]))
    return save_png(fig, out)


def _true_spans(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index ranges where `flags` is true."""
    padded = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(changes[::2], changes[1::2], strict=True)]


# ---- a run --------------------------------------------------------------------------------------


def plot_run(
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    seed: int = 0,
    riser_m: float | None = None,
    episode: bool = True,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the run's figures to `out_dir` (default `run_dir/plots`) and return the files written.

    With `episode`, also play one episode (reset seed `seed`, riser `riser_m` or the run's) with the
    run's best policy and write its figure and telemetry. The episode is clean (randomization and
    stair jitter off, `stairbot.conditions`) so that its traces show the policy, not a random draw.
    """
    if not (run_dir / "config.yaml").is_file():
        raise StairbotError(f"{run_dir} is not a stairbot run directory (no config.yaml)")
    out_dir = out_dir if out_dir is not None else run_dir / "plots"
    written = [
        plot_learning_curves(run_dir, out_dir / "learning_curves.png"),
        plot_reward_terms(run_dir, out_dir / "reward_terms.png"),
    ]
    if episode:
        from stairbot.conditions import condition_overrides
        from stairbot.policy_source import load_policy_source
        from stairbot.viz.telemetry import record_episode

        source = load_policy_source(run_dir)
        clean = condition_overrides(source.env_preset, None)
        telemetry = record_episode(source, seed=seed, riser_m=riser_m, max_steps=max_steps, condition=clean)
        if log is not None:
            log(
                f"episode seed {seed} with {source.name}: {telemetry.length} steps, ended by "
                f"{telemetry.termination_reason}"
            )
        stem = f"episode_seed{seed}"
        written += [
            plot_episode(telemetry, out_dir / f"{stem}.png"),
            telemetry.save_npz(out_dir / f"{stem}.npz"),
            telemetry.save_csv(out_dir / f"{stem}.csv"),
        ]
    return written
