"""A policy's lineage: the commands of the runs it was started from or derived from, in its bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stairbot.cli import main
from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.lineage import NOT_FOUND, bundle_lineage, run_lineage

from .helpers import PPO_TINY, CopyRun, TrainedRun

FIRST_COMMAND = "stairbot train ppo_stairs --out runs/first"


def test_an_exported_average_of_a_fine_tuned_run_carries_the_whole_chain(
    ppo_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    first = copy_run(ppo_run)
    (first / "command.txt").write_text(FIRST_COMMAND + "\n")  # as a shell would have recorded it
    assert run_lineage(first) == []  # trained from scratch

    second = tmp_path / "second"
    train = ["train", "ppo_stairs", *PPO_TINY, "--timesteps", "128", "--init-from", str(first)]
    assert main([*train, "--out", str(second)]) == 0
    second_commands = (second / "command.txt").read_text().splitlines()
    assert run_lineage(second) == [FIRST_COMMAND]

    soup = tmp_path / "soup"
    assert main(["average", *map(str, list_checkpoints(second)), "--out", str(soup)]) == 0
    assert run_lineage(soup) == [FIRST_COMMAND, *second_commands]  # each source run once, oldest first

    bundle = tmp_path / "bundle"
    assert main(["export", str(soup), "--out", str(bundle)]) == 0
    provenance = json.loads((bundle / "policy.json").read_text())["provenance"]
    assert provenance["lineage"] == [FIRST_COMMAND, *second_commands]
    own = (soup / "command.txt").read_text().splitlines()
    assert provenance["training_command"] == own
    # A run started from the bundle takes the bundle's chain and the bundle's own command after it.
    assert bundle_lineage(bundle) == [FIRST_COMMAND, *second_commands, *own]


def test_a_source_no_longer_on_disk_is_marked_not_skipped(
    ppo_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    first = copy_run(ppo_run)
    (first / "command.txt").write_text(FIRST_COMMAND + "\n")
    second = tmp_path / "second"
    train = ["train", "ppo_stairs", *PPO_TINY, "--timesteps", "64", "--init-from", str(first)]
    assert main([*train, "--out", str(second)]) == 0
    shutil.rmtree(first)
    assert run_lineage(second) == [NOT_FOUND + str(first.resolve())]


def test_a_moved_chain_is_found_beside_the_run(
    ppo_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    """Recorded paths are where the commands ran (runs/x); a chain copied elsewhere as a whole still
    resolves, by the folders beside the run."""
    first = copy_run(ppo_run)
    (first / "command.txt").write_text(FIRST_COMMAND + "\n")
    soup = tmp_path / "soup"
    checkpoints = list_checkpoints(first)
    assert main(["average", *map(str, checkpoints), "--out", str(soup)]) == 0
    moved = tmp_path / "elsewhere" / "runs"
    moved.mkdir(parents=True)
    for run in (first, soup):
        shutil.move(run, moved / run.name)
    assert run_lineage(moved / soup.name) == [FIRST_COMMAND]
