"""`stairbot ensemble`: one wider PPO network that computes the mean of its members' actions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from stairbot.cli import main
from stairbot.deploy import load_bundle
from stairbot.errors import StairbotError
from stairbot.policy_source import load_policy_source
from stairbot.training.checkpoints import list_checkpoints, load_normalization
from stairbot.training.ensemble import ENSEMBLE_FILE, ensemble_checkpoints, ensemble_state_dict
from stairbot.training.policy import SB3Policy, load_policy

from .helpers import CopyRun, TrainedRun

OBS, ACT = 7, 3


def _policy(widths: list[int], seed: int) -> ActorCriticPolicy:
    """A real SB3 actor-critic with random weights (biases too, so that folding them is tested)."""
    torch.manual_seed(seed)
    policy = ActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (OBS,), np.float32),
        spaces.Box(-1.0, 1.0, (ACT,), np.float32),
        lambda _: 1e-3,
        net_arch={"pi": widths, "vf": widths},
        activation_fn=torch.nn.ELU,
    )
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.normal_(0.0, 0.5)
    return policy


def _stats(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs_mean": rng.normal(0.0, 2.0, OBS),
        "obs_var": rng.uniform(0.2, 5.0, OBS),
        "epsilon": np.array(1e-8),
        "clip_obs": np.array(10.0),
        "norm_obs": np.array(True),
    }


def _mean_and_value(policy: ActorCriticPolicy, stats: dict[str, np.ndarray], raw: np.ndarray) -> np.ndarray:
    """(batch, ACT + 1): the Gaussian mean and the value of raw observations, normalized by `stats`."""
    z = (raw - stats["obs_mean"]) / np.sqrt(stats["obs_var"] + stats["epsilon"])
    obs = torch.as_tensor(z, dtype=torch.float32)
    with torch.no_grad():
        mean = policy.get_distribution(obs).distribution.mean
        value = policy.predict_values(obs)
    return torch.cat([mean, value], dim=1).numpy()


@pytest.mark.parametrize("widths", [[16], [8, 6], [5, 4, 3]])
def test_the_wide_network_computes_the_mean_of_its_members(widths: list[int]) -> None:
    members = [_policy(widths, seed) for seed in (1, 2, 3)]
    stats = [_stats(seed) for seed in (11, 12, 13)]
    state, arch = ensemble_state_dict(
        [m.state_dict() for m in members], stats, [Path(f"m{i}") for i in range(3)]
    )
    assert arch == {"pi": [3 * w for w in widths], "vf": [3 * w for w in widths]}
    ensemble = _policy(arch["pi"], seed=0)
    ensemble.load_state_dict(state)

    # raw observations within a few standard deviations of every member's statistics (no clipping)
    raw = np.random.default_rng(5).normal(0.0, 3.0, (64, OBS))
    expected = np.mean([_mean_and_value(m, s, raw) for m, s in zip(members, stats, strict=True)], axis=0)
    got = _mean_and_value(ensemble, stats[0], raw)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # and it is not simply one member's output
    assert not np.allclose(got, _mean_and_value(members[0], stats[0], raw), atol=1e-2)
    torch.testing.assert_close(
        state["log_std"], torch.stack([m.state_dict()["log_std"] for m in members]).mean(dim=0)
    )


def test_members_without_observation_normalization_are_joined_on_raw_observations() -> None:
    members = [_policy([8, 6], seed) for seed in (1, 2)]
    raw_stats = {"obs_mean": np.zeros(OBS), "obs_var": np.ones(OBS), "epsilon": np.array(0.0)}
    stats = [{**_stats(seed), "norm_obs": np.array(False)} for seed in (11, 12)]
    state, arch = ensemble_state_dict([m.state_dict() for m in members], stats, [Path("a"), Path("b")])
    ensemble = _policy(arch["pi"], seed=0)
    ensemble.load_state_dict(state)
    raw = np.random.default_rng(6).normal(0.0, 1.0, (16, OBS))
    expected = np.mean([_mean_and_value(m, raw_stats, raw) for m in members], axis=0)
    np.testing.assert_allclose(_mean_and_value(ensemble, raw_stats, raw), expected, rtol=1e-4, atol=1e-4)


def test_members_of_different_depth_are_refused() -> None:
    states = [_policy([8], 1).state_dict(), _policy([8, 8], 2).state_dict()]
    with pytest.raises(StairbotError, match="different depth"):
        ensemble_state_dict(states, [_stats(1), _stats(2)], [Path("a"), Path("b")])


def _gaussian_mean(source: SB3Policy, raw: np.ndarray) -> np.ndarray:
    policy = source.model.policy
    obs, _ = policy.obs_to_tensor(source.normalize(raw))
    with torch.no_grad():
        return policy.get_distribution(obs).distribution.mean.numpy()


def test_ensemble_of_two_checkpoints_is_a_run_that_acts_and_exports(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = list_checkpoints(ppo_run.path)[-2:]
    stats = [load_normalization(c / "normalization.npz") for c in (first, second)]
    # 64 steps apart: their statistics differ, so the folding is exercised
    assert not np.allclose(stats[0]["obs_mean"], stats[1]["obs_mean"])
    out = tmp_path / "ens"
    assert main(["ensemble", str(first), str(second), "--out", str(out)]) == 0
    assert "the mean action of 2 policies" in capsys.readouterr().out

    record = json.loads((out / ENSEMBLE_FILE).read_text())
    assert [m["checkpoint"] for m in record["members"]] == [str(first), str(second)]
    assert record["net_arch"]["pi"] == [32]
    assert "net_arch:\n  - 32\n" in (out / "config.yaml").read_text()
    assert PPO.load(out / "best" / "model.zip", device="cpu").policy_kwargs["net_arch"]["pi"] == [32]

    # every command that takes a run takes it
    assert load_policy_source(out).act(np.zeros(stats[0]["obs_mean"].size, np.float32)).shape == (12,)
    ensemble = load_policy(out / "best")
    members = [load_policy(c) for c in (first, second)]
    raw = stats[0]["obs_mean"] + np.sqrt(stats[0]["obs_var"]) * np.random.default_rng(3).normal(
        0, 1.5, (32, stats[0]["obs_mean"].size)
    )
    raw = raw.astype(np.float32)
    expected = np.mean([_gaussian_mean(m, raw) for m in members], axis=0)
    np.testing.assert_allclose(_gaussian_mean(ensemble, raw), expected, rtol=1e-4, atol=1e-4)

    # export takes it like any run: the bundle's network is the wide one and runs without SB3
    bundle_dir = tmp_path / "bundle"
    assert main(["export", str(out), "--out", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert bundle.metadata.raw["model"]["net_arch"] == [32]
    targets = bundle.act(raw[0])  # joint targets (rad) from the bundle's ONNX
    np.testing.assert_allclose(targets, bundle.targets_from_action(ensemble.act(raw[0])), atol=1e-5)


def test_refuses_what_cannot_be_joined(
    ppo_run: TrainedRun, sac_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    first, second = list_checkpoints(ppo_run.path)[-2:]
    out = tmp_path / "ens"
    with pytest.raises(StairbotError, match="at least two distinct"):
        ensemble_checkpoints([first], out)
    with pytest.raises(StairbotError, match="named twice"):
        ensemble_checkpoints([first, second, first], out)
    sac_first, sac_second = list_checkpoints(sac_run.path)[-2:]
    with pytest.raises(StairbotError, match="only PPO policies"):
        ensemble_checkpoints([sac_first, sac_second], out)
    with pytest.raises(StairbotError, match="algorithm: checkpoint has 'sac'"):
        ensemble_checkpoints([first, sac_first], out)

    other = copy_run(ppo_run)
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("activation: elu", "activation: tanh"))
    with pytest.raises(StairbotError, match="different activations"):
        ensemble_checkpoints([first, other / "checkpoints" / second.name], out)

    out.mkdir()
    with pytest.raises(StairbotError, match="already exists"):
        ensemble_checkpoints([first, second], out)
    assert list(out.iterdir()) == []  # nothing written into it
