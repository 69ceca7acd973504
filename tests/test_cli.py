"""The `stairbot` command line, run in-process on tiny budgets."""

from __future__ import annotations

import re

import pytest

from stairbot.cli import main


def test_presets_lists_shipped_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"envs: .*stairs_down.*stairs_up", out)
    assert re.search(r"urdf: a1, laikago, stairdog", out)


def test_demo_reports_each_episode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--episodes", "1", "--riser-m", "0.12"]) == 0
    out = capsys.readouterr().out
    assert "up 6 steps of 0.120 m" in out
    assert re.search(r"1000 steps \(20\.0 s\), return -?\d+\.\d+, ended by time_limit", out)


def test_bench_prints_env_and_raw_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--steps", "40", "--processes", "1", "--repeats", "1"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    processes, raw, env, ratio = int(row[0]), float(row[1]), float(row[2]), float(row[3])
    assert processes == 1 and raw > 0 and env > 0
    assert ratio == pytest.approx(env / raw, abs=0.01)


def test_bad_input_is_a_clear_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--riser-m", "-0.1", "--episodes", "1"]) == 2
    assert "stairbot: error:" in capsys.readouterr().err


def test_bench_train_prints_ppo_beside_collection(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "train", "--rollouts", "1", "--n-envs", "1"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    n_envs, workers = int(row[0]), int(row[1])
    env_only, ppo, ratio = float(row[2]), float(row[3]), float(row[4])
    assert n_envs == 1 and workers == 1 and env_only > 0 and ppo > 0
    assert ratio == pytest.approx(ppo / env_only, abs=0.01)
    assert 0 < int(row[5].rstrip("%")) < 100  # the updates take some, not all, of the time


def test_bench_train_refuses_an_off_policy_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "train", "--recipe", "sac_stairs", "--n-envs", "1"]) == 2
    assert "bench train measures PPO" in capsys.readouterr().err
