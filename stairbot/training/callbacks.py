"""SB3 callbacks of a training run: episode log, progress bar, checkpoints, periodic evaluation."""

from __future__ import annotations

import collections
import csv
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from stairbot.evaluation import EvalReport, evaluate, merge_reports
from stairbot.training.checkpoints import normalization_stats
from stairbot.training.policy import SB3Policy

# Rolling window (episodes) for the live success rate and curriculum level.
ROLLING_EPISODES = 100


def append_csv(path: Path, row: Mapping[str, Any]) -> None:
    """Append a row; write the header first if the file is new.

    An existing file keeps its columns: a run resumed by a newer stairbot that logs more (or other)
    columns writes its rows under the file's header, leaving out the columns the header lacks (with
    a warning) and leaving empty the ones the row lacks, instead of shifting values under the wrong
    names.
    """
    header = _csv_header(path)
    fieldnames = list(row) if header is None else header
    missing = [key for key in row if key not in fieldnames]
    if missing and path not in _WARNED:
        _WARNED.add(path)
        print(
            f"stairbot: {path} has no column(s) {missing} (written by an older stairbot); "
            "they are left out of its rows",
            file=sys.stderr,
        )
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, restval="", extrasaction="ignore")
        if header is None:
            writer.writeheader()
        writer.writerow(row)


_WARNED: set[Path] = set()


def _csv_header(path: Path) -> list[str] | None:
    """The column names of an existing, non-empty CSV file; None for a missing or empty one."""
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None


class EpisodeRecorder(BaseCallback):
    """One CSV row per finished training episode, rolling statistics, and TensorBoard scalars.

    Columns: timesteps, wall time, return, length, success, steps climbed, stairs direction,
    curriculum difficulty, termination reason, rolling success rate, training steps/s, and each
    reward term's episode sum (`term/<name>`).
    """

    def __init__(self, csv_path: Path, term_names: list[str]) -> None:
        super().__init__()
        self.csv_path = csv_path
        self.term_names = term_names
        self.successes: collections.deque[bool] = collections.deque(maxlen=ROLLING_EPISODES)
        self.difficulties: collections.deque[float] = collections.deque(maxlen=ROLLING_EPISODES)
        self.climbed: collections.deque[int] = collections.deque(maxlen=ROLLING_EPISODES)
        self._start_time = time.perf_counter()
        self._start_steps = 0

    @property
    def success_rate(self) -> float | None:
        return float(np.mean(self.successes)) if self.successes else None

    @property
    def mean_difficulty(self) -> float | None:
        return float(np.mean(self.difficulties)) if self.difficulties else None

    @property
    def steps_per_s(self) -> float:
        elapsed = time.perf_counter() - self._start_time
        return (self.num_timesteps - self._start_steps) / max(elapsed, 1e-9)

    def _on_training_start(self) -> None:
        self._start_time = time.perf_counter()
        self._start_steps = self.num_timesteps

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done and "episode" in info:
                self._record(info)
        return True

    def _record(self, info: dict[str, Any]) -> None:
        success = bool(info["success"])
        difficulty = info.get("difficulty")
        self.successes.append(success)
        self.climbed.append(int(info["steps_climbed"]))
        if difficulty is not None:
            self.difficulties.append(float(difficulty))
        terms = info.get("episode_reward_terms", {})
        row = {
            "timesteps": self.num_timesteps,
            "wall_s": round(time.perf_counter() - self._start_time, 2),
            "return": round(float(info["episode"]["r"]), 4),
            "length": int(info["episode"]["l"]),
            "success": int(success),
            "steps_climbed": int(info["steps_climbed"]),
            "direction": info["direction"],
            "difficulty": "" if difficulty is None else round(float(difficulty), 4),
            "termination_reason": info["termination_reason"]
            if not info.get("TimeLimit.truncated")
            else "time_limit",
            "success_rate": round(self.success_rate or 0.0, 4),
            "steps_per_s": round(self.steps_per_s, 1),
            **{f"term/{name}": round(float(terms.get(name, 0.0)), 5) for name in self.term_names},
        }
        append_csv(self.csv_path, row)

    def _on_rollout_end(self) -> None:
        if self.successes:
            self.logger.record("stairs/success_rate", self.success_rate)
            self.logger.record("stairs/steps_climbed", float(np.mean(self.climbed)))
        if self.difficulties:
            self.logger.record("stairs/difficulty", self.mean_difficulty)
        self.logger.record("time/steps_per_s", self.steps_per_s)


class ProgressBar(BaseCallback):
    """A tqdm bar over the run's whole budget, with ETA and the live success rate."""

    def __init__(self, total_timesteps: int, recorder: EpisodeRecorder) -> None:
        super().__init__()
        self.total_timesteps = total_timesteps
        self.recorder = recorder
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        interactive = sys.stderr.isatty()
        self.bar = tqdm(
            total=self.total_timesteps,
            initial=self.num_timesteps,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            # Off a terminal (CI logs, nohup) print a line every 30 s rather than redraw.
            mininterval=0.5 if interactive else 30.0,
        )

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.num_timesteps - self.bar.n)
        if self.n_calls % 50 == 0:
            rate = self.recorder.success_rate
            difficulty = self.recorder.mean_difficulty
            self.bar.set_postfix_str(
                f"success {'-' if rate is None else f'{rate:.0%}'}"
                f" | difficulty {'-' if difficulty is None else f'{difficulty:.2f}'}"
                f" | {self.recorder.steps_per_s:.0f} steps/s",
                refresh=False,
            )
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PeriodicCheckpoint(BaseCallback):
    """Calls `save(num_timesteps)` each time training crosses a multiple of `every_steps`."""

    def __init__(self, every_steps: int, save: Callable[[], Path]) -> None:
        super().__init__()
        self.every_steps = every_steps
        self.save = save
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.save()
            self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps
        return True


class PeriodicEval(BaseCallback):
    """Evaluates the current policy every `every_steps`; keeps the best (success, climbed, return).

    `make_envs` maps a name (the stairs' direction) to an env factory; each runs `episodes` seeded
    episodes and the key is over all of them. With more than one, evaluations.csv also gets each
    one's success rate (`success_rate_up`, `success_rate_down`).
    """

    def __init__(
        self,
        *,
        every_steps: int,
        episodes: int,
        make_envs: Mapping[str, Callable[[], Any]],
        csv_path: Path,
        save_best: Callable[[tuple[float, float, float]], Path],
        seed: int,
    ) -> None:
        super().__init__()
        self.every_steps = every_steps
        self.episodes = episodes
        if not make_envs:
            raise ValueError("PeriodicEval needs at least one env factory")
        self.make_envs = dict(make_envs)
        self.csv_path = csv_path
        self.save_best = save_best
        self.seed = seed
        self.best_key: tuple[float, float, float] | None = None
        self.last_eval_step: int | None = None
        self._next = 0
        self._start_time = time.perf_counter()

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps
        self._start_time = time.perf_counter()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.run()
            self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps
        return True

    def run(self) -> EvalReport:
        """Evaluate now (also at the end of training); save the model if it is the best so far."""
        vec_normalize = self.model.get_vec_normalize_env()
        assert vec_normalize is not None, "training envs are always wrapped in VecNormalize"
        policy = SB3Policy(self.model, normalization_stats(vec_normalize))
        reports = {
            name: evaluate(policy, make_env, self.episodes, self.seed)
            for name, make_env in self.make_envs.items()
        }
        report = merge_reports(list(reports.values()))
        key = (report.success_rate, report.steps_climbed, report.mean_return)
        improved = self.best_key is None or key > self.best_key
        if improved:
            self.best_key = key
            self.save_best(key)
        self.last_eval_step = self.num_timesteps
        append_csv(
            self.csv_path,
            {
                "timesteps": self.num_timesteps,
                "success_rate": report.success_rate,
                "steps_climbed": report.steps_climbed,
                "falls": report.falls,
                "mean_return": round(report.mean_return, 3),
                "riser_m": report.riser_m,
                "best": int(improved),
                # Seconds since this process started training (a resume starts again at 0), with the
                # evaluation itself: wall-clock to a success rate, read off a fresh run.
                "wall_s": round(time.perf_counter() - self._start_time, 2),
                **(
                    {f"success_rate_{name}": part.success_rate for name, part in reports.items()}
                    if len(reports) > 1
                    else {}
                ),
            },
        )
        if len(reports) > 1:
            for name, part in reports.items():
                self.logger.record(f"eval/success_rate_{name}", part.success_rate)
        self.logger.record("eval/success_rate", report.success_rate)
        self.logger.record("eval/steps_climbed", report.steps_climbed)
        self.logger.record("eval/falls_per_episode", report.falls_per_episode)
        self.logger.record("eval/mean_return", report.mean_return)
        return report
