"""Ctrl-C or SIGTERM ends `stairbot train` with a final checkpoint, exit code 130, and a resumable run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stairbot.training import trainer
from stairbot.training.checkpoints import list_checkpoints, read_meta

from .helpers import PPO_TINY, read_rows, steps_of

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 120.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_first_checkpoint(proc: subprocess.Popen, run: Path) -> list[int]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training exited early with {proc.returncode}"
        done = [steps_of(c) for c in list_checkpoints(run) if (c / "meta.json").is_file()]
        if done and (run / "episodes.csv").is_file():
            return done
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint in {run} after {STARTUP_TIMEOUT_S} s")


@pytest.mark.parametrize(
    ("sig", "n_envs"),
    [
        # With subprocess workers a signal usually lands while the main process waits on their pipes,
        # which once desynchronized them (exit 1, no final checkpoint): the case that matters most.
        pytest.param(signal.SIGINT, 2, id="SIGINT-2envs"),
        pytest.param(signal.SIGTERM, 2, id="SIGTERM-2envs"),
        pytest.param(signal.SIGINT, 1, id="SIGINT-1env"),
    ],
)
def test_interrupt_writes_a_final_checkpoint_and_the_run_resumes(
    tmp_path: Path, sig: signal.Signals, n_envs: int
) -> None:
    run = tmp_path / "run"
    log = tmp_path / "train.log"
    command = [
        sys.executable, "-m", "stairbot", "train", "ppo_stairs", "--out", str(run),
        *PPO_TINY, f"n_envs={n_envs}", "ppo.n_steps=32", "total_timesteps=10000000",
        "eval.every_steps=1000000",
    ]  # fmt: skip
    with open(log, "w") as out:
        # Its own process group, so that a failed test can kill the env workers too.
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        periodic = _wait_for_first_checkpoint(proc, run)
        time.sleep(0.3)  # let it step a little past the checkpoint
        proc.send_signal(sig)  # the main process only, as `kill` would
        code = proc.wait(timeout=60)
        output = log.read_text()
        assert code == 130, output[-3000:]
        assert "resume with: stairbot train --resume" in output
        # Workers and their forkserver follow the main process out.
        deadline = time.monotonic() + 15
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "stray processes left behind"
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    checkpoints = list_checkpoints(run)
    final = read_meta(checkpoints[-1])  # complete and readable
    assert final.num_timesteps >= max(periodic)
    assert f"interrupted at {final.num_timesteps} steps" in output
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-")]

    episodes = len(read_rows(run / "episodes.csv"))
    result = trainer.resume(run, final.num_timesteps + 64)
    assert result.num_timesteps >= final.num_timesteps + 64 and not result.interrupted
    assert read_meta(list_checkpoints(run)[-1]).num_timesteps == result.num_timesteps
    assert len(read_rows(run / "episodes.csv")) > episodes
    assert len((run / "command.txt").read_text().splitlines()) == 2
