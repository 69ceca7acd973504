"""`stairbot distill`: a real tiny PPO run's checkpoint learns a teacher's actions, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from stairbot.cli import main
from stairbot.envs import MAX_EPISODE_STEPS
from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.errors import ConfigError, StairbotError
from stairbot.policy_source import PolicySource, load_policy_source
from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.distill import DISTILL_FILE, DistillSettings, distill, make_env
from stairbot.training.routes import DEFAULT_ROUTE, Route, route_of

from .helpers import CopyRun, TrainedRun


def _teacher_that_leans(run: Path) -> Path:
    """The run's latest checkpoint with every action shifted by +0.4 (its action layer's bias): a
    real checkpoint of the same run whose actions differ from its start's by far more than noise."""
    checkpoint = list_checkpoints(run)[-1]
    model = PPO.load(checkpoint / "model.zip", device="cpu")
    with torch.no_grad():
        model.policy.action_net.bias += 0.4
    model.save(checkpoint / "model.zip")
    return checkpoint


def _observations(run: Path, teacher: PolicySource, steps: int, seed: int) -> np.ndarray:
    """Raw observations of the teacher's own episodes from `seed` on (seeds the distillation never used)."""
    env = StairClimbEnv(str(run / "env.yaml"))
    observations = []
    observation, _ = env.reset(seed=seed)
    while len(observations) < steps:
        observations.append(observation)
        observation, _, terminated, truncated, _ = env.step(teacher.act(observation))
        if terminated or truncated:
            seed += 1
            observation, _ = env.reset(seed=seed)
    env.close()
    return np.asarray(observations, np.float32)


def _gap(student: PolicySource, teacher: PolicySource, observations: np.ndarray) -> float:
    return float(np.mean([(student.act(o) - teacher.act(o)) ** 2 for o in observations]))


def test_the_student_learns_to_act_as_its_teacher(
    ppo_run: TrainedRun, copy_run: CopyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(ppo_run)
    start = list_checkpoints(run)[0]
    teacher_path = _teacher_that_leans(run)
    out = tmp_path / "student"
    args = ["distill", str(start), "--teacher", str(teacher_path), "--out", str(out)]
    settings = ["--iterations", "3", "--steps", "200", "--epochs", "30", "--batch-size", "64"]
    assert main([*args, *settings, "--learning-rate", "3e-3", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "iteration 0 (teachers drove" in printed and "iteration 2 (student drove" in printed

    teacher = load_policy_source(teacher_path)
    held_out = _observations(run, teacher, steps=100, seed=10_000)
    before = _gap(load_policy_source(start), teacher, held_out)
    after = _gap(load_policy_source(out), teacher, held_out)
    assert before > 0.05  # the shift is there to learn (0.4 on every joint whose action is unclipped)
    assert after < 0.25 * before

    record = json.loads((out / DISTILL_FILE).read_text())
    assert record["student"]["checkpoint"] == str(start)
    assert record["teachers"] == {DEFAULT_ROUTE: teacher.name}
    assert record["teacher_weights_sha256"] == {DEFAULT_ROUTE: None}  # a checkpoint, not a bundle
    assert [it["driver"] for it in record["iterations"]] == ["teachers", "student", "student"]
    assert all(sum(it["steps"].values()) == 200 for it in record["iterations"])
    assert record["iterations"][-1]["loss_after"] < record["iterations"][0]["new_data_loss"]
    for it in record["iterations"]:  # one teacher: every step is on the default route
        assert it["new_data_loss_by_route"] == {DEFAULT_ROUTE: pytest.approx(it["new_data_loss"])}
    # the critic and the normalization are the start's: only the actor was fitted
    fitted = PPO.load(out / "best" / "model.zip", device="cpu").policy.state_dict()
    original = PPO.load(start / "model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(fitted[k], original[k]) for k in original if "value" in k)
    assert any(not torch.equal(fitted[k], original[k]) for k in original if "action_net" in k)
    assert (out / "best" / "normalization.npz").read_bytes() == (start / "normalization.npz").read_bytes()
    # each round's student is kept as a checkpoint named by the labelled steps so far; the last is best/
    rounds = list_checkpoints(out)
    assert [c.name for c in rounds] == ["step_000000000200", "step_000000000400", "step_000000000600"]
    last = PPO.load(rounds[-1] / "model.zip", device="cpu").policy.state_dict()
    first = PPO.load(rounds[0] / "model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(last[k], fitted[k]) for k in fitted)
    assert any(not torch.equal(first[k], last[k]) for k in fitted)
    first_gap = _gap(load_policy_source(rounds[0]), teacher, held_out)
    assert first_gap > after  # later rounds learned more


def test_episodes_end_at_the_training_time_limit(ppo_run: TrainedRun) -> None:
    # a teacher that stands still at the top of a flight would otherwise label one endless episode
    env = make_env(ppo_run.path / "env.yaml")
    assert env.spec is not None and env.spec.max_episode_steps == MAX_EPISODE_STEPS
    env.close()


def test_refuses_what_cannot_be_distilled(ppo_run: TrainedRun, sac_run: TrainedRun, tmp_path: Path) -> None:
    start = list_checkpoints(ppo_run.path)[0]
    # the shipped policy observes a history and a height scan the tiny run's env does not have
    with pytest.raises(StairbotError, match=r"another env\.observation than the student"):
        distill(start, "pretrained", tmp_path / "a")
    with pytest.raises(StairbotError, match="distillation trains PPO students"):
        distill(list_checkpoints(sac_run.path)[0], str(ppo_run.path), tmp_path / "b")
    (tmp_path / "taken").mkdir()
    with pytest.raises(StairbotError, match="already exists"):
        distill(start, str(ppo_run.path), tmp_path / "taken")
    with pytest.raises(StairbotError, match="neither a run directory"):
        distill(tmp_path / "taken", str(ppo_run.path), tmp_path / "c")
    twice = (Route.parse("direction=up", str(ppo_run.path)), Route.parse("direction=up", "pretrained"))
    with pytest.raises(StairbotError, match="two routes have the same conditions"):
        distill(start, str(ppo_run.path), tmp_path / "d", routes=twice)
    with pytest.raises(ConfigError, match="steps_per_iteration must be at least 1"):
        DistillSettings(steps_per_iteration=0)
    with pytest.raises(ConfigError, match="learning_rate must be a positive number"):
        DistillSettings(learning_rate=float("nan"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_route_takes_its_episodes_from_the_default_teacher(
    ppo_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    run = copy_run(ppo_run)
    start = list_checkpoints(run)[0]
    leaning = _teacher_that_leans(run)
    # the tiny run's curriculum keeps its flights flat (it never reaches the stairs): all are the route's
    args = ["distill", str(start), "--teacher", str(start), "--out", str(tmp_path / "s")]
    routes = ["--route", "direction=up, max_riser_m=0.05", str(leaning)]
    assert main([*args, *routes, "--iterations", "2", "--steps", "150", "--seed", "3"]) == 0
    record = json.loads((tmp_path / "s" / DISTILL_FILE).read_text())
    name = "direction=up,max_riser_m=0.05"  # one spelling, whatever the spaces
    assert record["teachers"] == {DEFAULT_ROUTE: f"checkpoint {start}", name: f"checkpoint {leaning}"}
    assert record["routes"][0]["max_riser_m"] == 0.05 and record["routes"][0]["direction"] == "up"
    assert [it["steps"] for it in record["iterations"]] == [{name: 150}, {name: 150}]
    # labelled by the leaning teacher, not the default one (which is the student's own start)
    assert record["iterations"][0]["new_data_loss"] > 0.05


def test_routes_follow_what_the_episode_drew_at_reset() -> None:
    env = StairClimbEnv(
        "stairs_up_randomized",
        overrides={
            "randomization.episode_fraction": 0.5,
            "curriculum.adaptive": True,
            "curriculum.down_fraction": 0.5,
            "stairs.tread_range_m": [0.24, 0.34],
            "stairs.num_steps": 2,
        },
    )
    routes = (
        Route.parse("randomized=true,max_riser_m=0.12", "a"),
        Route.parse("direction=down", "b"),
        Route.parse("min_tread_m=0.3", "c"),
    )
    seen = []
    for seed in range(40):
        _, info = env.reset(seed=seed, options={"difficulty": (seed % 8) / 8})
        seen.append((info, route_of(routes, info)))
    env.close()
    for info, name in seen:
        randomized = info["randomization"]["randomized"]
        if randomized and info["riser_m"] < 0.12:
            expected = "randomized=true,max_riser_m=0.12"
        elif info["direction"] == "down":
            expected = "direction=down"
        elif info["tread_m"] >= 0.3:
            expected = "min_tread_m=0.3"
        else:
            expected = DEFAULT_ROUTE
        assert name == expected
    assert {name for _, name in seen} == {r.conditions for r in routes} | {DEFAULT_ROUTE}  # every one came up
    assert (
        route_of(routes, {"direction": "up", "riser_m": 0.1, "tread_m": 0.25}) == DEFAULT_ROUTE
    )  # no randomization


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ("riser=0.1", "key one of randomized, direction, min_riser_m"),
        ("direction", "write key=value"),
        ("direction=sideways", "direction must be one of up, down"),
        ("randomized=yes", "randomized must be true or false"),
        ("min_riser_m=-0.1", "must be a length in m, at least 0"),
        ("min_riser_m=0.2,max_riser_m=0.1", "min_riser_m must be below max_riser_m"),
        ("direction=up,direction=down", "given twice"),
        ("", "has no condition"),
    ],
)
def test_a_bad_route_says_what_is_allowed(conditions: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Route.parse(conditions, "pretrained")


def test_a_route_has_one_name_however_it_is_written() -> None:
    parsed = Route.parse(" min_riser_m=0.14 , direction=up", "candidates/tf495")
    built = Route(teacher="candidates/tf495", direction="up", min_riser_m=0.14)
    assert parsed == built
    assert parsed.conditions == built.conditions == "direction=up,min_riser_m=0.14"
    assert Route.parse("randomized=TRUE", "pretrained").conditions == "randomized=true"


def test_a_bundle_teacher_is_recorded_by_its_weights_hash(ppo_run: TrainedRun) -> None:
    """`pretrained` names another bundle after each release: the record keeps which weights taught."""
    import hashlib

    from stairbot.paths import data_dir
    from stairbot.training.distill import _weights_sha256

    weights = data_dir("pretrained") / "weights.npz"
    assert _weights_sha256("pretrained") == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert _weights_sha256(ppo_run.path) is None  # a run is named by its path and checkpoint
