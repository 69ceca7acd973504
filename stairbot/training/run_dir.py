"""The run directory: everything a training job records about itself.

config.yaml        the resolved recipe (env config included): enough to rebuild the run
env.yaml           the resolved env config alone, used as the preset of every env of the run
command.txt        the command line that started (and resumed) the run
versions.json      stairbot, SB3, torch, gymnasium, pybullet, numpy, python, git commit
checkpoints/       periodic checkpoints (see stairbot.training.checkpoints)
best/              the best model by periodic evaluation, same layout as a checkpoint
episodes.csv       one row per finished training episode
evaluations.csv    one row per periodic evaluation
tb/                TensorBoard logs
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from stairbot.config import dump_yaml, read_yaml
from stairbot.errors import StairbotError
from stairbot.training.recipe import Recipe, recipe_from_plain

_VERSIONED = ("stairbot", "stable-baselines3", "torch", "gymnasium", "pybullet", "numpy")


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def env_preset(self) -> Path:
        return self.path / "env.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        return self.path / "best"

    @property
    def episodes_csv(self) -> Path:
        return self.path / "episodes.csv"

    @property
    def evaluations_csv(self) -> Path:
        return self.path / "evaluations.csv"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    def recipe(self) -> Recipe:
        """The run's resolved recipe, as recorded when it started."""
        return recipe_from_plain(read_yaml(self.config))


def default_run_path(recipe_name: str, root: Path = Path("runs")) -> Path:
    return root / f"{Path(recipe_name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["python"] = platform.python_version()
    found["git_commit"] = _git_commit()
    return found


def _git_commit() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown (not a git checkout)"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def create_run_dir(path: Path, recipe: Recipe) -> RunDir:
    """Make a new run directory and record the recipe, env config, command and versions."""
    if path.exists() and any(path.iterdir()):
        raise StairbotError(
            f"run directory {path} already exists and is not empty; resume it with "
            f"`stairbot train --resume {path}` or choose another --out"
        )
    run = RunDir(path)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    dump_yaml(recipe, run.config)
    dump_yaml(recipe.env, run.env_preset)
    (path / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
    record_command(run)
    return run


def record_command(run: RunDir) -> None:
    """Append the current command line to command.txt (a resumed run gets one line per start)."""
    with open(run.path / "command.txt", "a") as f:
        f.write(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) + "\n")
