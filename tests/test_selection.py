"""`stairbot select`: the release rule on figures given by hand, then the whole command on a real
tiny PPO run (tests/training/helpers.py: it falls within a few control steps, so cells are quick)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from training.helpers import PPO_TINY

from stairbot.cli import main
from stairbot.errors import ConfigError
from stairbot.policy_source import load_policy_source, policy_fingerprint
from stairbot.selection import Score, Selection, SelectionRule, judge, known_scores, select
from stairbot.training import trainer
from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.recipe import load_recipe

RULE = SelectionRule()


def _score(
    name: str,
    *,
    stress: float = 0.9,
    heldout: float = 0.75,
    clean_up: float = 0.7,
    down: float = 1.1,
    target: float = 0.8,
) -> Score:
    """Figures given by hand: no cells, so no standard errors and no noise margin."""
    return Score(name, {"0.25": stress, "0.32": stress}, heldout, clean_up, down, target)


RELEASE = _score("release", stress=0.85, heldout=0.74, clean_up=0.70, target=0.8)


def test_a_candidate_better_on_every_figure_passes() -> None:
    assert judge(_score("a"), RELEASE, RULE).passes


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (Score("a", {"0.25": 0.97, "0.32": 0.775}, 0.8, 0.8, 1.0, 0.8), "stress 0.32 m 78% < 80%"),
        (_score("a", down=1.6), "dives: down at 1.60 x command > 1.5"),
        (_score("a", heldout=0.73), "held-out 0.730 < release 0.740 - 0.000 (the noise margin)"),
        (_score("a", clean_up=0.55), "clean up 0.550 < release 0.700 - 0.000 (the noise margin)"),
    ],
)
def test_each_condition_of_the_rule_is_enforced_and_said(candidate: Score, reason: str) -> None:
    verdict = judge(candidate, RELEASE, RULE)
    assert verdict.reasons == (reason,)
    assert not verdict.passes


def test_a_policy_without_descents_is_not_judged_on_speed() -> None:
    assert judge(_score("a", down=None), RELEASE, RULE).passes  # type: ignore[arg-type]


def test_the_passing_candidate_with_the_highest_held_out_mean_ships_the_first_on_a_tie() -> None:
    scores = [_score("a", heldout=0.76), _score("b", heldout=0.80, stress=0.5), _score("c", heldout=0.78)]
    scores.append(_score("d", heldout=0.78))
    selection = Selection(RULE, RELEASE, tuple(judge(s, RELEASE, RULE) for s in scores))
    assert selection.chosen is not None and selection.chosen.policy == "c"  # b fails the stress bar
    table = selection.table()
    assert table.splitlines()[-1] == "ships: c"
    assert "stress 0.25 m 50% < 80%; stress 0.32 m 50% < 80%" in table
    nothing = Selection(RULE, RELEASE, (judge(scores[1], RELEASE, RULE),))
    assert nothing.chosen is None and nothing.to_dict()["chosen"] is None


def _cells(successes: list[int], episodes: int) -> tuple[dict[str, float], ...]:
    return tuple({"episodes": episodes, "success_rate": k / episodes} for k in successes)


def test_the_standard_error_of_a_held_out_mean_counts_every_cell_as_uncertain() -> None:
    # Two cells of 40: 20 and 40 successes, rates taken as 21/42 and 41/42.
    score = Score("a", {}, 0.75, 0.7, None, heldout_cells=_cells([20, 40], 40))
    expected = np.sqrt(0.5 * 0.5 / 40 + (41 / 42) * (1 / 42) / 40) / 2
    assert score.heldout_standard_error == pytest.approx(expected)
    # Four times the episodes, about half the error; no cells (figures given by hand), none.
    more = Score("a", {}, 0.75, 0.7, None, heldout_cells=_cells([80, 160], 160))
    assert more.heldout_standard_error == pytest.approx(expected / 2, rel=0.05)
    assert _score("a").heldout_standard_error == 0.0


def _measured(heldout: float, clean_up: float, target: float) -> Score:
    """A score with cells as `select` measures them: 32 held-out cells of 40 episodes (8 of them
    clean climbs) and 6 target cells of 100, every cell of a figure at its mean."""
    heldout_cells = [
        {**cell, "condition": condition, "direction": direction}
        for condition in ("clean", "randomized")
        for direction in ("up", "down")
        for cell in _cells(
            [round((clean_up if (condition, direction) == ("clean", "up") else heldout) * 40)] * 8, 40
        )
    ]
    return Score(
        "a",
        {"0.25": 0.9, "0.32": 0.9},
        heldout,
        clean_up,
        1.1,
        target,
        heldout_cells=tuple(heldout_cells),
        target_cells=_cells([round(target * 100)] * 6, 100),
    )


def test_a_gain_inside_the_noise_does_not_ship_and_a_loss_inside_it_is_no_loss() -> None:
    release = _measured(0.8, 0.8, 0.8)
    held_out_margin = 2 * np.hypot(release.heldout_standard_error, release.heldout_standard_error)
    target_margin = 2 * np.hypot(release.target_standard_error, release.target_standard_error)
    assert 0.010 < release.heldout_standard_error < 0.012 and 0.014 < release.target_standard_error < 0.018
    # The same figures, or gains smaller than the margins: not shown better, so it does not ship.
    same = judge(_measured(0.8, 0.8, 0.8), release, RULE)
    gains = f"held-out +0.000 < {held_out_margin:.3f}, targets +0.000 < {target_margin:.3f}"
    assert same.reasons == (f"no better beyond the noise: {gains}",)
    assert not judge(_measured(0.8 + held_out_margin / 2, 0.8, 0.8 + target_margin / 2), release, RULE).passes
    # Better beyond the noise on either figure ships, the other held within the noise.
    assert judge(_measured(0.8 + held_out_margin, 0.8, 0.8), release, RULE).passes
    assert judge(_measured(0.8 - held_out_margin / 2, 0.8 - 0.01, 0.8 + target_margin), release, RULE).passes
    # Better on the targets but worse beyond the noise on the held-out grid: it does not.
    worse = judge(_measured(0.8 - 1.5 * held_out_margin, 0.8, 0.9), release, RULE)
    assert len(worse.reasons) == 1 and worse.reasons[0].startswith("held-out 0.7")
    assert worse.reasons[0].endswith("(the noise margin)")
    # The margins are the rule's: none asked, none applied.
    assert judge(_measured(0.8, 0.8, 0.8), release, SelectionRule(noise_margin_se=0)).passes


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ConfigError, match="min_stress_success must lie in"):
        SelectionRule(min_stress_success=1.2)
    with pytest.raises(ConfigError, match="episodes per cell must be at least 1"):
        SelectionRule(stress_episodes=0)
    with pytest.raises(ConfigError, match="noise_margin_se must be a number >= 0"):
        SelectionRule(noise_margin_se=-1)
    with pytest.raises(ConfigError, match="target_cells must be"):
        SelectionRule(target_cells=(("sideways", 0.15),))


def test_select_needs_a_candidate() -> None:
    with pytest.raises(ConfigError, match="at least one candidate"):
        select([], "pretrained")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("select-ppo") / "run"
    trainer.train(load_recipe("ppo_stairs", list(PPO_TINY)), path)
    return path


def test_a_checkpoint_folder_is_a_policy_with_its_runs_preset(tiny_run: Path) -> None:
    checkpoint = list_checkpoints(tiny_run)[-1]
    source = load_policy_source(checkpoint)
    assert source.name == f"checkpoint {checkpoint}"
    assert source.env_preset == str(tiny_run / "env.yaml")
    observation = np.zeros(_observation_size(tiny_run), np.float32)
    action = source.act(observation)
    assert action.shape == (12,) and np.all(np.abs(action) <= 1.0)
    # `RUN/best` is the run's own choice: the same actions as naming the run.
    best = load_policy_source(tiny_run / "best")
    np.testing.assert_array_equal(best.act(observation), load_policy_source(tiny_run).act(observation))


def _observation_size(run: Path) -> int:
    from stairbot.envs.stair_climb import StairClimbEnv

    env = StairClimbEnv(preset=str(run / "env.yaml"))
    try:
        return int(env.observation_space.shape[0])
    finally:
        env.close()


def test_select_scores_the_release_and_candidates_and_writes_its_choice(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(list_checkpoints(tiny_run)[0])
    out = tmp_path / "select.json"
    argv = ["select", str(tiny_run / "best"), checkpoint, "--against", str(tiny_run), "--quick"]
    assert main([*argv, "--processes", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["release"]["policy"] == str(tiny_run)
    assert [c["policy"] for c in data["candidates"]] == [str(tiny_run / "best"), checkpoint]
    assert data["rule"]["heldout_episodes"] == 2 and data["rule"]["seed"] == 1000
    release, best = data["release"], data["candidates"][0]
    # The run's best model named two ways is one policy on the same seeds: the same figures.
    for key in ("stress_success", "heldout_mean", "clean_up_mean", "heldout_cells"):
        assert best[key] == release[key]
    assert len(release["heldout_cells"]) == 8  # 1 riser x 2 treads x up/down x clean/randomized
    # 8 cells of 2 episodes, each at 0 % (the tiny run falls): rate 1/4 each, SE sqrt(8 * 3/32) / 8.
    assert release["heldout_standard_error"] == pytest.approx(np.sqrt(8 * (3 / 16) / 2) / 8)
    # The quick rule's target: clean up 0.10 m on both treads.
    assert [(c["condition"], c["direction"], c["riser_m"]) for c in release["target_cells"]] == [
        ("clean", "up", 0.1)
    ] * 2
    assert release["target_mean"] == 0.0
    assert set(release["stress_success"]) == {"0.25", "0.32"}
    # The tiny run falls at once: under the 80 % stress bar, so nothing ships, and it says why.
    assert all(
        c["reasons"] and c["reasons"][0].startswith("stress 0.25 m 0% < 80%") for c in data["candidates"]
    )
    assert data["chosen"] is None
    printed = capsys.readouterr().out
    assert "ships: the release (no candidate passes)" in printed
    assert f"wrote {out}" in printed


def test_select_reuses_the_scores_of_an_earlier_file_made_under_the_same_rule(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    checkpoint = str(list_checkpoints(tiny_run)[0])
    options = ["--against", str(tiny_run), "--quick", "--processes", "1"]
    assert main(["select", checkpoint, *options, "--json", str(first)]) == 0
    capsys.readouterr()
    argv = ["select", checkpoint, str(tiny_run / "best"), *options, "--reuse", str(first)]
    assert main([*argv, "--json", str(second)]) == 0
    printed = capsys.readouterr().out
    assert f"{tiny_run}: score reused" in printed and f"{checkpoint}: score reused" in printed
    assert f"scoring {tiny_run / 'best'}" in printed  # the new candidate alone was run
    old, new = json.loads(first.read_text()), json.loads(second.read_text())
    assert new["release"] == old["release"] and new["candidates"][0] == old["candidates"][0]
    # Scores from another rule (here the quick grid) are not comparable: refused, nothing written.
    third = tmp_path / "third.json"
    assert (
        main(["select", checkpoint, "--against", str(tiny_run), "--reuse", str(first), "--json", str(third)])
        == 2
    )
    assert "was scored under another rule" in capsys.readouterr().err
    assert not third.exists()


def test_a_saved_score_is_not_reused_for_other_weights_under_the_same_name(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pretrained` (or a run retrained in place) names other weights after a release: a score saved
    under the name is reused only while the files behind it are the ones scored."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    first = tmp_path / "first.json"
    options = ["--against", str(run), "--quick", "--processes", "1"]
    assert main(["select", str(run / "best"), *options, "--json", str(first)]) == 0
    saved = json.loads(first.read_text())
    assert saved["release"]["fingerprint"] == policy_fingerprint(run)
    capsys.readouterr()

    # Another checkpoint's model takes the run's best's place: same names, other weights.
    shutil.copyfile(list_checkpoints(run)[0] / "model.zip", run / "best" / "model.zip")
    assert policy_fingerprint(run) != saved["release"]["fingerprint"]
    assert main(["select", str(run / "best"), *options, "--reuse", str(first)]) == 0
    printed = capsys.readouterr().out
    assert f"{run}: the saved score is of other weights" in printed and f"scoring {run}\n" in printed

    # A file from before fingerprints were recorded says nothing about the weights: scored again.
    for entry in [saved["release"], *saved["candidates"]]:
        del entry["fingerprint"]
    first.write_text(json.dumps(saved))
    assert main(["select", str(run / "best"), *options, "--reuse", str(first)]) == 0
    assert f"scoring {run / 'best'}" in capsys.readouterr().out


def test_reuse_of_a_file_that_is_no_selection_is_refused(tmp_path: Path) -> None:
    benchmark_report = tmp_path / "bench.json"
    benchmark_report.write_text(json.dumps({"policy": "x", "cells": []}))
    with pytest.raises(ConfigError, match=r"is not a `stairbot select --json` file"):
        known_scores(benchmark_report, RULE)
    with pytest.raises(ConfigError, match=r"is not a `stairbot select --json` file"):
        known_scores(tmp_path / "missing.json", RULE)
