"""Choose which checkpoint of a run ships, by a rule written down before the candidates are scored.

A training run's periodic evaluation (10 episodes on one flight) is too narrow and too noisy to pick
a release with: its best model is chosen on the very episodes it is then reported on. `stairbot
select` scores each candidate on episodes no run trains or evaluates on (seeds from 1000; the
committed reports use seeds 0-99) and applies `SelectionRule`:

1. Robust: under the stress condition (`stairs_up_stress` at 0.12 m risers, up; 40 episodes per
   tread) the candidate succeeds in at least 80 % of the episodes on every tread.
2. No dive: going down, its mean speed is at most 1.5 x the command (a policy that lets itself fall
   down the flight scores well on descents and is no controller; the release runs at 1.2 x).
3. No worse than the release beyond the noise: its held-out mean (success over the whole held-out
   grid: risers 0.10-0.175 m, both treads, up and down, clean and randomized; 40 episodes per
   cell) and its clean climbs (the mean of the held-out grid's clean up cells) are each no lower
   than the release's by more than 2 standard errors of the difference.
4. Better than the release beyond the noise, where it counts: its held-out mean or its target mean
   (issue 4's target cells: clean, up at 0.15 and 0.18 m and down at 0.15 m risers, both treads;
   100 episodes per cell from seed 2000) exceeds the release's by at least 2 standard errors of
   the difference.

Why the margins: an episode's outcome hangs on float rounding (the same weights run by the bundle
runtime and by PyTorch act alike to 1e-6 and still end some episodes differently), so two scores
of one policy differ by about a standard error. Under a bare "at least the release's" a candidate
no better than the release passes about half the time, one of several such candidates nearly
always, and a better one fails as often as it is unlucky on one of the figures. The standard error
of a mean over cells is that of a mean of binomial rates, each cell's rate taken as (successes +
1) / (episodes + 2) so that a cell at 0 or 100 % still counts as uncertain; that of a difference
is the two scores' combined (independent: equal seeds do not make equal episodes).

Among the candidates that pass, the highest held-out mean ships (the first listed, on a tie). If
none passes, the release stays.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from stairbot.benchmark import (
    CLEAN,
    DEFAULT_TREADS_M,
    RANDOMIZED,
    Cell,
    CellResult,
    grid_cells,
    run_benchmark,
    run_cells,
)
from stairbot.conditions import condition_overrides
from stairbot.errors import ConfigError
from stairbot.policy_source import PolicySource, load_policy_source, policy_fingerprint

STRESS_PRESET = "stairs_up_stress"


@dataclass(frozen=True)
class SelectionRule:
    """What is measured and what must hold. Episodes per cell and seeds are part of the rule: a
    smaller grid is for trying the command out, not for choosing a release."""

    heldout_risers_m: tuple[float, ...] = (0.10, 0.125, 0.15, 0.175)
    treads_m: tuple[float, ...] = DEFAULT_TREADS_M
    heldout_episodes: int = 40  # per cell, from `seed`
    stress_riser_m: float = 0.12
    stress_episodes: int = 40  # per tread, from `seed`
    stress_preset: str = STRESS_PRESET
    seed: int = 1000
    min_stress_success: float = 0.8
    max_down_speed_over_command: float = 1.5
    # Issue 4's targets, (direction, riser m) on every tread, clean; from their own seeds.
    target_cells: tuple[tuple[str, float], ...] = (("up", 0.15), ("up", 0.18), ("down", 0.15))
    target_episodes: int = 100
    target_seed: int = 2000
    noise_margin_se: float = 2.0  # the margin of rules 3 and 4, in standard errors of a difference

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_stress_success <= 1.0:
            raise ConfigError(f"min_stress_success must lie in [0, 1], got {self.min_stress_success}")
        speed = self.max_down_speed_over_command
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"max_down_speed_over_command must be a positive number, got {speed}")
        margin = self.noise_margin_se
        if not (math.isfinite(margin) and margin >= 0):
            raise ConfigError(f"noise_margin_se must be a number >= 0, got {margin}")
        if not self.target_cells or any(d not in ("up", "down") for d, _ in self.target_cells):
            raise ConfigError(
                f"target_cells must be (direction, riser m) pairs with direction up or down, "
                f"got {self.target_cells}"
            )
        if min(self.heldout_episodes, self.stress_episodes, self.target_episodes) < 1:
            raise ConfigError(
                f"episodes per cell must be at least 1, got held-out {self.heldout_episodes}, "
                f"stress {self.stress_episodes}, target {self.target_episodes}"
            )


@dataclass(frozen=True)
class Score:
    """One policy's figures under a `SelectionRule` (success rates in [0, 1]).

    Attributes:
        policy: the POLICY string it was loaded from.
        stress_success: tread (m, as text) -> success rate under the stress condition.
        heldout_mean: mean success over every held-out cell (clean and randomized, up and down).
        clean_up_mean: mean success over the clean up cells of the held-out grid.
        down_speed_over_command: mean over the held-out down cells of mean speed / command (None:
            no down cell had a speed figure).
        target_mean: mean success over the rule's target cells (clean).
        heldout_cells: the held-out cells, clean then randomized (benchmark rows).
        target_cells: the target cells (benchmark rows).
        fingerprint: `policy_source.policy_fingerprint` of the policy scored, so that a saved
            score is reused only for the same weights (`pretrained` changes at every release).
    """

    policy: str
    stress_success: dict[str, float]
    heldout_mean: float
    clean_up_mean: float
    down_speed_over_command: float | None
    target_mean: float = math.nan
    heldout_cells: tuple[dict[str, Any], ...] = field(repr=False, default=())
    target_cells: tuple[dict[str, Any], ...] = field(repr=False, default=())
    fingerprint: str | None = None  # `policy_fingerprint` of what was scored (None: not recorded)

    @property
    def heldout_standard_error(self) -> float:
        """Standard error of `heldout_mean` (0 without cells: figures given by hand)."""
        return mean_standard_error(self.heldout_cells)

    @property
    def clean_up_standard_error(self) -> float:
        """Standard error of `clean_up_mean` (0 without cells)."""
        return mean_standard_error(
            [c for c in self.heldout_cells if c["condition"] == CLEAN and c["direction"] == "up"]
        )

    @property
    def target_standard_error(self) -> float:
        """Standard error of `target_mean` (0 without cells)."""
        return mean_standard_error(self.target_cells)


def mean_standard_error(cells: Sequence[Mapping[str, Any]]) -> float:
    """Standard error of the mean success rate of benchmark `cells` (rows with `episodes` and
    `success_rate`; 0 for none): the mean of C rates has variance sum(p (1 - p) / n) / C**2, each
    cell's p taken as (successes + 1) / (n + 2)."""
    if not cells:
        return 0.0
    variance = 0.0
    for cell in cells:
        episodes = int(cell["episodes"])
        rate = (float(cell["success_rate"]) * episodes + 1) / (episodes + 2)
        variance += rate * (1 - rate) / episodes
    return math.sqrt(variance) / len(cells)


@dataclass(frozen=True)
class Verdict:
    score: Score
    reasons: tuple[str, ...]  # why it may not ship; empty: it may

    @property
    def passes(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Selection:
    rule: SelectionRule
    release: Score
    verdicts: tuple[Verdict, ...]

    @property
    def chosen(self) -> Score | None:
        """The passing candidate with the highest held-out mean (first listed on a tie), or None."""
        passing = [v.score for v in self.verdicts if v.passes]
        if not passing:
            return None
        return max(passing, key=lambda s: s.heldout_mean)  # max keeps the first of equals

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "rule": asdict(self.rule),
            "release": _score_dict(self.release),
            "candidates": [{**_score_dict(v.score), "reasons": list(v.reasons)} for v in self.verdicts],
            "chosen": None if chosen is None else chosen.policy,
        }

    def to_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        treads = list(self.release.stress_success)
        header = [
            "policy",
            *(f"stress {t} m" for t in treads),
            "held-out ± SE",
            "clean up",
            "targets ± SE",
            "down/cmd",
            "verdict",
        ]
        rows = [_row(self.release, treads, "release")]
        for v in self.verdicts:
            rows.append(_row(v.score, treads, "passes" if v.passes else "; ".join(v.reasons)))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]
        ]
        lines.insert(1, "-" * len(lines[0]))
        chosen = self.chosen
        lines.append("")
        lines.append(f"ships: {chosen.policy}" if chosen else "ships: the release (no candidate passes)")
        return "\n".join(lines)


def _score_dict(score: Score) -> dict[str, Any]:
    return {
        **asdict(score),
        "heldout_standard_error": score.heldout_standard_error,
        "clean_up_standard_error": score.clean_up_standard_error,
        "target_standard_error": score.target_standard_error,
    }


def _row(score: Score, treads: Sequence[str], verdict: str) -> list[str]:
    speed = score.down_speed_over_command
    return [
        score.policy,
        *(f"{score.stress_success.get(t, float('nan')):.0%}" for t in treads),
        f"{score.heldout_mean:.3f} ± {score.heldout_standard_error:.3f}",
        f"{score.clean_up_mean:.3f}",
        f"{score.target_mean:.3f} ± {score.target_standard_error:.3f}",
        "-" if speed is None else f"{speed:.2f}",
        verdict,
    ]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _stress_cells(
    policy: str,
    source: PolicySource,
    rule: SelectionRule,
    *,
    processes: int,
    log: Callable[[str], None] | None,
) -> list[CellResult]:
    """The stress cells alone (up, one riser, each tread): `run_benchmark` would also run each
    clean, which the rule does not look at."""
    overrides = {"up": condition_overrides(source.env_preset, rule.stress_preset)}
    cells = grid_cells([rule.stress_riser_m], rule.treads_m, ["up"], RANDOMIZED, overrides)
    return _run_logged(
        policy,
        source,
        cells,
        episodes=rule.stress_episodes,
        seed=rule.seed,
        processes=processes,
        log=log,
        label=rule.stress_preset,
    )


def _target_cells(
    policy: str,
    source: PolicySource,
    rule: SelectionRule,
    *,
    processes: int,
    log: Callable[[str], None] | None,
) -> list[CellResult]:
    """The rule's target cells, clean (randomization off, as the benchmark's clean grid)."""
    clean = condition_overrides(source.env_preset, None)
    cells = [
        Cell(direction, tread, riser, CLEAN, clean)
        for direction, riser in rule.target_cells
        for tread in rule.treads_m
    ]
    return _run_logged(
        policy,
        source,
        cells,
        episodes=rule.target_episodes,
        seed=rule.target_seed,
        processes=processes,
        log=log,
        label="target",
    )


def _run_logged(
    policy: str,
    source: PolicySource,
    cells: list[Cell],
    *,
    episodes: int,
    seed: int,
    processes: int,
    log: Callable[[str], None] | None,
    label: str,
) -> list[CellResult]:
    """`run_cells`, each result logged as `label direction tread riser: success`."""
    results = []
    for result in run_cells(
        policy=policy, source=source, cells=cells, episodes=episodes, seed=seed, processes=processes
    ):
        results.append(result)
        if log is not None:
            log(
                f"  {label} {result.direction} tread {result.tread_m:g} riser {result.riser_m:g}: "
                f"{result.success_rate:.0%}"
            )
    return results


def score_policy(
    policy: str,
    rule: SelectionRule,
    *,
    processes: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Score:
    """Run `policy` on the rule's stress cells and held-out grid (seeded: the same policy always
    gets the same score)."""
    source = load_policy_source(policy)  # the stress and target cells' (run_benchmark loads its own)
    cell_processes = processes or os.cpu_count() or 1
    stress = _stress_cells(policy, source, rule, processes=cell_processes, log=log)
    heldout = run_benchmark(
        policy,
        risers_m=rule.heldout_risers_m,
        treads_m=rule.treads_m,
        episodes=rule.heldout_episodes,
        seed=rule.seed,
        processes=processes,
        randomized=True,
        log=log,
    )
    assert heldout.randomized is not None
    cells: list[CellResult] = [*heldout.cells, *heldout.randomized.cells]
    targets = _target_cells(policy, source, rule, processes=cell_processes, log=log)
    speeds = [
        c.speed_over_command for c in cells if c.direction == "down" and c.speed_over_command is not None
    ]
    return Score(
        policy=policy,
        stress_success={f"{c.tread_m:g}": c.success_rate for c in stress},
        heldout_mean=_mean([c.success_rate for c in cells]),
        clean_up_mean=_mean([c.success_rate for c in cells if c.condition == CLEAN and c.direction == "up"]),
        down_speed_over_command=_mean(speeds) if speeds else None,
        target_mean=_mean([c.success_rate for c in targets]),
        heldout_cells=tuple(c.row() for c in cells),
        target_cells=tuple(c.row() for c in targets),
        fingerprint=policy_fingerprint(policy),
    )


def judge(score: Score, release: Score, rule: SelectionRule) -> Verdict:
    """The rule's conditions that `score` fails, each said with its figures."""
    reasons = []
    for tread, success in score.stress_success.items():
        if success < rule.min_stress_success:
            reasons.append(f"stress {tread} m {success:.0%} < {rule.min_stress_success:.0%}")
    speed = score.down_speed_over_command
    if speed is not None and speed > rule.max_down_speed_over_command:
        reasons.append(f"dives: down at {speed:.2f} x command > {rule.max_down_speed_over_command:g}")
    margin = rule.noise_margin_se
    heldout = _Difference.of(
        "held-out",
        (score.heldout_mean, score.heldout_standard_error),
        (release.heldout_mean, release.heldout_standard_error),
        margin,
    )
    clean_up = _Difference.of(
        "clean up",
        (score.clean_up_mean, score.clean_up_standard_error),
        (release.clean_up_mean, release.clean_up_standard_error),
        margin,
    )
    target = _Difference.of(
        "targets",
        (score.target_mean, score.target_standard_error),
        (release.target_mean, release.target_standard_error),
        margin,
    )
    reasons.extend(d.worse() for d in (heldout, clean_up) if d.is_worse)
    if not (heldout.is_better or target.is_better):
        reasons.append(f"no better beyond the noise: {heldout.gain_text()}, {target.gain_text()}")
    return Verdict(score, tuple(reasons))


@dataclass(frozen=True)
class _Difference:
    """A candidate's figure against the release's, with the rule's noise margin (in the figure's
    units: `noise_margin_se` standard errors of the difference)."""

    name: str
    candidate: float
    release: float
    margin: float

    @classmethod
    def of(
        cls, name: str, candidate: tuple[float, float], release: tuple[float, float], margin_se: float
    ) -> _Difference:
        """`candidate`, `release`: (mean, standard error) of the figure."""
        (mean, se), (release_mean, release_se) = candidate, release
        return cls(name, mean, release_mean, margin_se * math.hypot(se, release_se))

    @property
    def gain(self) -> float:
        return self.candidate - self.release

    @property
    def is_worse(self) -> bool:
        return self.gain < -self.margin

    @property
    def is_better(self) -> bool:  # False when either figure is missing (nan)
        return self.gain >= self.margin

    def worse(self) -> str:
        return (
            f"{self.name} {self.candidate:.3f} < release {self.release:.3f} - {self.margin:.3f} "
            "(the noise margin)"
        )

    def gain_text(self) -> str:
        return f"{self.name} {self.gain:+.3f} < {self.margin:.3f}"


def known_scores(path: Path, rule: SelectionRule) -> dict[str, Score]:
    """The scores of an earlier `select --json` file, by POLICY string, if it was made under `rule`
    (the same grid, episodes, seeds and bars); a `ConfigError` otherwise."""
    try:
        data = json.loads(path.read_text())
        saved_rule = data["rule"]
        entries = [data["release"], *data["candidates"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a `stairbot select --json` file: {exc}") from None
    if saved_rule != json.loads(json.dumps(asdict(rule))):
        raise ConfigError(f"{path} was scored under another rule ({saved_rule}); this one is {asdict(rule)}")
    names = {f.name for f in fields(Score)}
    scores = {}
    for entry in entries:
        values = {k: v for k, v in entry.items() if k in names}
        values["heldout_cells"] = tuple(values.get("heldout_cells", ()))
        values["target_cells"] = tuple(values.get("target_cells", ()))
        scores[str(entry["policy"])] = Score(**values)
    return scores


def select(
    candidates: Sequence[str],
    release: str,
    rule: SelectionRule | None = None,
    *,
    known: Mapping[str, Score] | None = None,
    processes: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Selection:
    """Score the release and every candidate (POLICY strings) and judge each against the release.

    `known`: scores already measured under the same rule (`known_scores`), by POLICY string; those
    policies are not run again when the saved fingerprint matches the policy's files now (the
    scores are seeded, so a rerun would give the same figures). A saved score of other weights
    under the same name, or one that records none, is measured again."""
    if not candidates:
        raise ConfigError("give at least one candidate policy to choose from")
    rule = rule or SelectionRule()
    known = known or {}
    scores = {}
    for policy in dict.fromkeys([release, *candidates]):  # each policy scored once
        saved = known.get(policy)
        if (
            saved is not None
            and saved.fingerprint is not None
            and saved.fingerprint == policy_fingerprint(policy)
        ):
            if log is not None:
                log(f"{policy}: score reused")
            scores[policy] = saved
            continue
        if saved is not None and log is not None:
            log(f"{policy}: the saved score is of other weights (or does not say which); scoring it again")
        if log is not None:
            log(f"scoring {policy}")
        scores[policy] = score_policy(policy, rule, processes=processes, log=log)
    release_score = scores[release]
    verdicts = tuple(judge(scores[c], release_score, rule) for c in dict.fromkeys(candidates))
    return Selection(rule, release_score, verdicts)
