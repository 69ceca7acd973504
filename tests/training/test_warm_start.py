"""`--init-from`: a new run starts from another run's checkpoint (weights, normalization, curriculum)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from stairbot.cli import main
from stairbot.config import dump_yaml
from stairbot.deploy import load_bundle
from stairbot.errors import ConfigError
from stairbot.paths import data_dir
from stairbot.training.algorithms import build_model
from stairbot.training.checkpoints import CheckpointError, list_checkpoints, load_normalization
from stairbot.training.recipe import load_recipe
from stairbot.training.trainer import expected_meta, normalized_vec_env, train
from stairbot.training.vec import make_vec_env
from stairbot.training.warm_start import (
    BundleStart,
    WarmStart,
    action_scale_ratio,
    read_warm_start,
    resolve_init_checkpoint,
)

from .helpers import PPO_TINY, SAC_TINY, CopyRun, TrainedRun, read_rows, snapshot

SOURCE_DIFFICULTY = 0.7  # written into the source's best/ checkpoint; the recipe starts at 0.0


@pytest.fixture
def source(ppo_run: TrainedRun, copy_run: CopyRun) -> Path:
    """A copy of the tiny PPO run whose best/ checkpoint says its env reached difficulty 0.7."""
    path = copy_run(ppo_run)
    (path / "best" / "curriculum.json").write_text(json.dumps({"difficulties": [SOURCE_DIFFICULTY]}))
    return path


def test_a_run_directory_resolves_to_its_best_checkpoint(source: Path) -> None:
    assert resolve_init_checkpoint(source) == source / "best"
    latest = list_checkpoints(source)[-1]
    assert resolve_init_checkpoint(latest) == latest


def test_apply_loads_weights_normalization_and_curriculum(source: Path, tmp_path: Path) -> None:
    recipe = load_recipe("ppo_stairs", PPO_TINY)
    init = WarmStart.read(source, expected_meta(recipe), recipe)
    np.testing.assert_array_equal(init.action_scale_ratio, np.ones(12))
    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=True)
        reference = PPO.load(source / "best" / "model.zip", device="cpu")
        mine, theirs = model.policy.state_dict(), reference.policy.state_dict()
        assert mine.keys() == theirs.keys()
        for name, tensor in theirs.items():
            torch.testing.assert_close(mine[name], tensor, rtol=0, atol=0, msg=name)
        with np.load(source / "best" / "normalization.npz") as stats:
            np.testing.assert_array_equal(env.obs_rms.mean, stats["obs_mean"])
            np.testing.assert_array_equal(env.obs_rms.var, stats["obs_var"])
        assert env.get_attr("difficulty") == [SOURCE_DIFFICULTY]
    finally:
        env.close()


def test_cli_trains_a_new_run_from_the_source(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "finetune"
    code = main(
        ["train", "ppo_stairs", *PPO_TINY, "--timesteps", "64", "--init-from", str(source), "--out", str(out)]
    )
    assert code == 0
    config = (out / "config.yaml").read_text()
    assert f"init_from: {source.resolve()}" in config
    # A new run: its own step counter (one checkpoint at 64), its first episode on the source's stairs.
    assert [c.name for c in list_checkpoints(out)] == ["step_000000000064"]
    first = read_rows(out / "episodes.csv")[0]
    assert float(first["difficulty"]) == pytest.approx(SOURCE_DIFFICULTY)


def test_another_algorithm_is_refused_before_the_run_directory_exists(
    sac_run: TrainedRun, tmp_path: Path
) -> None:
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, f"init_from={sac_run.path}"])
    with pytest.raises(CheckpointError, match="algorithm: checkpoint has 'sac', this run has 'ppo'"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_another_network_shape_is_a_clear_error_and_leaves_no_run_behind(
    source: Path, tmp_path: Path
) -> None:
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, "policy.net_arch=[32]", f"init_from={source}"])
    with pytest.raises(CheckpointError, match="net_arch"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert (source / "best" / "model.zip").is_file()  # the source is never touched


def test_a_sac_run_without_gsde_cannot_start_a_gsde_run_and_says_why(
    sac_run: TrainedRun, tmp_path: Path
) -> None:
    recipe = load_recipe("sac_stairs", [*SAC_TINY, "sac.use_sde=true", f"init_from={sac_run.path}"])
    with pytest.raises(CheckpointError, match=r"sac\.use_sde the same as the source run's"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_path_that_is_no_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        resolve_init_checkpoint(tmp_path)


def test_resume_refuses_init_from(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(source)
    assert main(["train", "--resume", str(source), "--init-from", str(source)]) != 0
    assert "--resume continues a run as it was configured" in capsys.readouterr().err
    assert snapshot(source) == before


# ---- from an export bundle (the shipped pretrained policy: a real 256-128 network) ----------------

BUNDLE_TINY = tuple(option for option in PPO_TINY if not option.startswith("policy.net_arch"))
FINETUNE = "ppo_stairs_pretrained_finetune"


@pytest.fixture(scope="module")
def pretrained() -> Path:
    return data_dir("pretrained")


def _actor_state(model: PPO) -> dict[str, torch.Tensor]:
    return {
        name: tensor.clone()
        for name, tensor in model.policy.state_dict().items()
        if name.startswith(("mlp_extractor.policy_net", "action_net", "log_std"))
    }


def _critic_state(model: PPO) -> dict[str, torch.Tensor]:
    return {
        name: tensor.clone()
        for name, tensor in model.policy.state_dict().items()
        if name.startswith(("mlp_extractor.value_net", "value_net"))
    }


def _golden_actions(model: PPO, env: VecNormalize, bundle: Path) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's golden inputs and `model`'s deterministic actions for them (normalized by `env`)."""
    with np.load(bundle / "golden.npz") as golden:
        observations = golden["inputs"].astype(np.float32)
    env.training = False
    actions, _ = model.predict(env.normalize_obs(observations), deterministic=True)
    return observations, actions


def test_a_run_started_from_a_bundle_acts_as_the_bundle(pretrained: Path, tmp_path: Path) -> None:
    recipe = load_recipe(FINETUNE, [*BUNDLE_TINY, f"init_from={pretrained}"])
    init = read_warm_start(pretrained, expected_meta(recipe), recipe)
    assert isinstance(init, BundleStart)
    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=True)
        bundle = load_bundle(pretrained, backend="numpy")
        observations, actions = _golden_actions(model, env, pretrained)
        targets = bundle.metadata.default_joint_pos_rad + bundle.metadata.action_scale_rad * np.clip(
            actions, -1.0, 1.0
        )
        expected = np.stack([bundle.act(observation) for observation in observations])
        np.testing.assert_allclose(targets, expected, rtol=0, atol=1e-5)
        # The statistics weigh as much as the source run's samples: they do not jump in a new env.
        assert env.obs_rms.count == bundle.metadata.raw["model"]["num_timesteps"]
    finally:
        env.close()


def test_the_actor_learns_only_after_the_critic_warmup(pretrained: Path, tmp_path: Path) -> None:
    # Rollouts of 64 steps end at 64, 128 and 192; the warmup covers the updates of the first two.
    options = [*BUNDLE_TINY, "total_timesteps=192", "critic_warmup_steps=128", f"init_from={pretrained}"]
    recipe = load_recipe(FINETUNE, options)
    result = train(recipe, tmp_path / "run")
    assert result.num_timesteps == 192
    at_128, at_192 = (PPO.load(c / "model.zip", device="cpu") for c in list_checkpoints(result.run_dir))

    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        fresh = build_model(recipe, env, None)  # the same seed: the critic the run started with
        read_warm_start(pretrained, expected_meta(recipe), recipe).apply(fresh, env, True)
    finally:
        env.close()
    for name, tensor in _actor_state(fresh).items():
        torch.testing.assert_close(_actor_state(at_128)[name], tensor, rtol=0, atol=0, msg=name)
    assert any(
        not torch.equal(tensor, _critic_state(fresh)[name]) for name, tensor in _critic_state(at_128).items()
    ), "the critic did not learn during the warmup"
    assert any(
        not torch.equal(tensor, _actor_state(at_128)[name]) for name, tensor in _actor_state(at_192).items()
    ), "the actor was never released"
    assert all(p.requires_grad for p in at_192.policy.parameters())


@pytest.mark.parametrize("update", [True, False])
def test_observation_statistics_follow_the_run_unless_frozen(
    pretrained: Path, tmp_path: Path, update: bool
) -> None:
    options = [*BUNDLE_TINY, "total_timesteps=128", f"normalize.update_observations={str(update).lower()}"]
    recipe = load_recipe(FINETUNE, [*options, f"init_from={pretrained}"])
    start = read_warm_start(pretrained, expected_meta(recipe), recipe)
    assert isinstance(start, BundleStart)
    result = train(recipe, tmp_path / "run")
    stats = load_normalization(list_checkpoints(result.run_dir)[-1] / "normalization.npz")
    started_at = start.num_timesteps
    moved = float(np.abs(stats["obs_mean"] - start.graph.obs_mean).max())
    if update:
        # the first reset's observation and one per step after it
        assert stats["obs_count"] == started_at + 1 + 128 and moved > 0.0
    else:
        assert stats["obs_count"] == started_at and moved == 0.0
    assert stats["ret_count"] > 100  # the return statistics follow the run either way


def test_a_bundle_of_another_network_or_clip_is_refused_before_the_run_directory_exists(
    pretrained: Path, tmp_path: Path
) -> None:
    options = [*BUNDLE_TINY, "policy.net_arch=[64]", "normalize.clip_obs=5.0"]
    recipe = load_recipe(FINETUNE, [*options, f"init_from={pretrained}"])
    with pytest.raises(CheckpointError) as error:
        train(recipe, tmp_path / "run")
    assert "policy.net_arch: bundle has [256, 128], this run has [64]" in str(error.value)
    assert "normalize.clip_obs: bundle has 10.0, this run has 5.0" in str(error.value)
    assert not (tmp_path / "run").exists()


WIDE_CALVES = [0.5, 0.8, 1.0] * 4  # hip, thigh, calf of each leg; the bundle has 0.5 everywhere


def test_a_wider_action_scale_keeps_the_bundles_joint_targets(pretrained: Path, tmp_path: Path) -> None:
    """Fine-tuning with more range per joint starts from the same behaviour: where the bundle's
    action was inside [-1, 1] the new run commands the same joint targets, where it saturated the new
    run reaches further in the same direction, and the exploration noise in radians is the same."""
    wide = f"env.control.action_scale_rad={WIDE_CALVES}"
    recipe = load_recipe(FINETUNE, [*BUNDLE_TINY, wide, f"init_from={pretrained}"])
    init = read_warm_start(pretrained, expected_meta(recipe), recipe)
    np.testing.assert_allclose(init.action_scale_ratio, 0.5 / np.array(WIDE_CALVES))
    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        model = build_model(recipe, env, None)
        log_std_before = model.policy.log_std.detach().clone()
        init.apply(model, env, adaptive_curriculum=True)
        bundle = load_bundle(pretrained, backend="numpy")
        observations, actions = _golden_actions(model, env, pretrained)
        targets = bundle.metadata.default_joint_pos_rad + np.array(WIDE_CALVES) * actions
        old_targets = np.stack([bundle.act(observation) for observation in observations])
        old_offsets = old_targets - bundle.metadata.default_joint_pos_rad
        inside = np.abs(old_offsets) < 0.5 - 1e-4  # the bundle's action was not clipped
        assert inside.any() and (~inside).any(), "the golden inputs should both saturate and not"
        np.testing.assert_allclose(targets[inside], old_targets[inside], rtol=0, atol=1e-5)
        new_offsets = targets - bundle.metadata.default_joint_pos_rad
        assert np.all(np.sign(new_offsets[~inside]) == np.sign(old_offsets[~inside]))
        assert np.all(np.abs(new_offsets[~inside]) >= 0.5 - 1e-4)
        std_rad = np.exp(model.policy.log_std.detach().numpy()) * np.array(WIDE_CALVES)
        np.testing.assert_allclose(std_rad, np.exp(log_std_before.numpy()) * 0.5, rtol=1e-5)
    finally:
        env.close()


def test_a_checkpoint_carried_to_another_action_scale_gets_its_head_rescaled(source: Path) -> None:
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, f"env.control.action_scale_rad={WIDE_CALVES}"])
    init = WarmStart.read(source, expected_meta(recipe), recipe)  # the source run trained at 0.5
    ratio = 0.5 / np.array(WIDE_CALVES)
    np.testing.assert_allclose(init.action_scale_ratio, ratio)
    env = normalized_vec_env(recipe, make_vec_env("stairs_up", 1, seed=5))
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=False)
    finally:
        env.close()
    reference = PPO.load(source / "best" / "model.zip", device="cpu").policy.state_dict()
    mine = model.policy.state_dict()
    factor = torch.as_tensor(ratio, dtype=torch.float32)
    torch.testing.assert_close(mine["action_net.weight"], reference["action_net.weight"] * factor[:, None])
    torch.testing.assert_close(mine["action_net.bias"], reference["action_net.bias"] * factor)
    torch.testing.assert_close(mine["log_std"], reference["log_std"] + torch.log(factor))
    torch.testing.assert_close(mine["value_net.weight"], reference["value_net.weight"], rtol=0, atol=0)


def test_another_action_scale_is_refused_for_sac() -> None:
    recipe = load_recipe("sac_stairs", ["env.control.action_scale_rad=0.8"])
    with pytest.raises(CheckpointError, match=r"action_scale_rad.*only a PPO policy"):
        action_scale_ratio(np.full(12, 0.5), recipe, 12, Path("runs/sac"))


def test_a_tampered_bundle_is_refused(pretrained: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(pretrained, bundle)
    with np.load(bundle / "weights.npz") as data:
        arrays = {key: data[key] for key in data.files}
    arrays["output_bias"] = arrays["output_bias"] + 0.1
    np.savez(bundle / "weights.npz", **arrays)
    recipe = load_recipe(FINETUNE, [*BUNDLE_TINY, f"init_from={bundle}"])
    with pytest.raises(CheckpointError, match=r"weights\.npz"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_critic_warmup_is_refused_for_sac() -> None:
    with pytest.raises(ConfigError, match="critic_warmup_steps is for PPO"):
        load_recipe("sac_stairs", ["critic_warmup_steps=100"])


def test_cli_init_from_pretrained_names_the_shipped_bundle(tmp_path: Path) -> None:
    out = tmp_path / "finetune"
    code = main(
        ["train", FINETUNE, *BUNDLE_TINY, "--timesteps", "64", "--init-from", "pretrained", "--out", str(out)]
    )
    assert code == 0
    assert f"init_from: {data_dir('pretrained').resolve()}" in (out / "config.yaml").read_text()


# ---- growing the input to take the proprioceptive history ----------------------------------------

HISTORY = "env.observation.history_steps=2"
FRAME = 45  # 9 + 3 x 12 joints


def _with_random_history(observations: np.ndarray, seed: int = 0) -> np.ndarray:
    """(B, N0) observations with two frames of unrelated random history appended: (B, N0 + 90)."""
    rng = np.random.default_rng(seed)
    history = rng.normal(0.0, 3.0, (observations.shape[0], 2 * FRAME)).astype(np.float32)
    return np.concatenate([observations, history], axis=1)


def test_a_checkpoint_without_history_grows_into_a_run_with_one(source: Path) -> None:
    """Zero columns on the history: the grown actor and critic compute what the source's did,
    whatever the history holds, and the history's statistics are the frame's."""
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, HISTORY])
    init = WarmStart.read(source, expected_meta(recipe), recipe)
    assert init.growth is not None and init.growth.new_inputs == 2 * FRAME
    assert init.growth.changes == (f"proprio_history: 2 steps of {FRAME} inputs",)
    env = normalized_vec_env(
        recipe, make_vec_env("stairs_up", 1, seed=5, overrides={"observation.history_steps": 2})
    )
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=False)
        source_size = init.growth.source_size
        with np.load(source / "best" / "normalization.npz") as stats:
            mean, var = stats["obs_mean"], stats["obs_var"]
        np.testing.assert_array_equal(env.obs_rms.mean[:source_size], mean)
        np.testing.assert_array_equal(env.obs_rms.mean[source_size:], np.tile(mean[:FRAME], 2))
        np.testing.assert_array_equal(env.obs_rms.var[source_size:], np.tile(var[:FRAME], 2))
        reference = PPO.load(source / "best" / "model.zip", device="cpu")
        rng = np.random.default_rng(1)
        plain = (mean + np.sqrt(var) * rng.normal(size=(16, source_size))).astype(np.float32)
        env.training = False
        grown = torch.as_tensor(env.normalize_obs(_with_random_history(plain)))
        theirs = grown[:, :source_size]  # normalized by the source's own statistics
        with torch.no_grad():
            torch.testing.assert_close(
                model.policy.get_distribution(grown).distribution.mean,
                reference.policy.get_distribution(theirs).distribution.mean,
            )
            torch.testing.assert_close(
                model.policy.predict_values(grown), reference.policy.predict_values(theirs)
            )
        first = model.policy.state_dict()["mlp_extractor.policy_net.0.weight"]
        assert first.shape[1] == source_size + 2 * FRAME and not first[:, source_size:].any()
        moments = model.policy.optimizer.state_dict()["state"]
        assert all(
            state["exp_avg"].shape == parameter.shape
            for state, parameter in zip(
                (moments[i] for i in sorted(moments)), model.policy.parameters(), strict=True
            )
        )
    finally:
        env.close()


def _assert_grown_actor_acts_as_the_bundle(
    init: BundleStart,
    recipe: Any,
    env: VecNormalize,
    bundle_path: Path,
    grow: Callable[[np.ndarray], np.ndarray],
) -> None:
    """After `init.apply`, the run's deterministic joint targets on the bundle's golden inputs, grown
    by `grow` (new inputs filled with unrelated values), are the bundle's own."""
    model = build_model(recipe, env, None)
    init.apply(model, env, adaptive_curriculum=True)
    bundle = load_bundle(bundle_path, backend="numpy")
    with np.load(bundle_path / "golden.npz") as golden:
        observations = golden["inputs"].astype(np.float32)
    env.training = False
    actions, _ = model.predict(env.normalize_obs(grow(observations)), deterministic=True)
    targets = bundle.metadata.default_joint_pos_rad + bundle.metadata.action_scale_rad * np.clip(
        actions, -1.0, 1.0
    )
    expected = np.stack([bundle.act(observation) for observation in observations])
    np.testing.assert_allclose(targets, expected, rtol=0, atol=1e-5)


def test_a_bundle_without_history_grows_into_a_run_with_one(tmp_path: Path) -> None:
    stage1 = data_dir("pretrained") / "stage1"  # the shipped policy's ancestor, trained without one
    recipe = load_recipe(FINETUNE, [*BUNDLE_TINY, HISTORY, f"init_from={stage1}"])
    init = read_warm_start(stage1, expected_meta(recipe), recipe)
    assert isinstance(init, BundleStart) and init.growth is not None
    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        _assert_grown_actor_acts_as_the_bundle(init, recipe, env, stage1, _with_random_history)
    finally:
        env.close()


def test_growing_is_refused_for_sac_and_for_other_layout_changes(sac_run: TrainedRun, source: Path) -> None:
    sac = load_recipe("sac_stairs", [HISTORY])
    with pytest.raises(CheckpointError, match="only a PPO policy's input can be grown"):
        WarmStart.read(sac_run.path, expected_meta(sac), sac)
    gait = load_recipe("ppo_stairs", [*PPO_TINY, HISTORY, "env.control.gait.enabled=true"])
    with pytest.raises(CheckpointError, match="observation_terms: checkpoint has"):
        WarmStart.read(source, expected_meta(gait), gait)


# ---- refining the height-scan grid -----------------------------------------------------------------

OLD_X = (-0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6, 0.75)  # the presets' grid: 8 x 3 points
FINE_X = tuple(round(-0.3 + 0.075 * i, 3) for i in range(15))  # every old offset, and one between each
FINE_SCAN = f"env.observation.height_scan.x_points_m=[{','.join(map(str, FINE_X))}]"
SCAN_START = 45  # the scan follows base_ang_vel, projected_gravity, command and 3 x 12 joint terms


def _refine_scan(observations: np.ndarray, seed: int = 0) -> np.ndarray:
    """(B, N0) observations on the 8 x 3 grid -> (B, N0 + 21) on the 15 x 3 grid, placed by offset
    (old x offset i is fine offset 2 i), with unrelated random heights at the new points."""
    batch = observations.shape[0]
    old = observations[:, SCAN_START : SCAN_START + 24].reshape(batch, 8, 3)
    fine = np.random.default_rng(seed).normal(0.0, 3.0, (batch, 15, 3)).astype(observations.dtype)
    fine[:, ::2] = old
    rest = observations[:, SCAN_START + 24 :]
    return np.concatenate([observations[:, :SCAN_START], fine.reshape(batch, 45), rest], axis=1)


def test_a_checkpoint_grows_into_a_finer_height_scan(source: Path) -> None:
    """Zero columns on the new points: the grown actor and critic compute what the source's did
    whatever the terrain between the old points reads; each new point takes its nearest old point's
    statistics (the one before it along x: ties go to the first)."""
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, FINE_SCAN])
    init = WarmStart.read(source, expected_meta(recipe), recipe)
    assert init.growth is not None and init.growth.new_inputs == 21
    assert "height_scan: 8 x 3 points" in init.growth.changes[0]
    env = normalized_vec_env(
        recipe,
        make_vec_env("stairs_up", 1, seed=5, overrides={"observation.height_scan.x_points_m": list(FINE_X)}),
    )
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=False)
        with np.load(source / "best" / "normalization.npz") as stats:
            mean, var = stats["obs_mean"], stats["obs_var"]
        fine_mean = env.obs_rms.mean[SCAN_START : SCAN_START + 45].reshape(15, 3)
        old_mean = mean[SCAN_START : SCAN_START + 24].reshape(8, 3)
        np.testing.assert_array_equal(fine_mean[::2], old_mean)
        np.testing.assert_array_equal(fine_mean[1::2], old_mean[:-1])
        np.testing.assert_array_equal(env.obs_rms.var[:SCAN_START], var[:SCAN_START])
        reference = PPO.load(source / "best" / "model.zip", device="cpu")
        rng = np.random.default_rng(1)
        plain = (mean + np.sqrt(var) * rng.normal(size=(16, mean.size))).astype(np.float32)
        env.training = False
        grown = torch.as_tensor(env.normalize_obs(_refine_scan(plain)))
        theirs = torch.as_tensor(env.normalize_obs(_refine_scan(plain, seed=2)))
        assert not torch.equal(grown, theirs)  # the new points differ between the two batches...
        with torch.no_grad():
            reference_mean = reference.policy.get_distribution(
                torch.as_tensor(
                    ((plain - mean) / np.sqrt(var + env.epsilon)).clip(-10, 10), dtype=torch.float32
                )
            ).distribution.mean
            for batch in (grown, theirs):  # ...and neither changes what the policy does
                torch.testing.assert_close(
                    model.policy.get_distribution(batch).distribution.mean, reference_mean
                )
    finally:
        env.close()


def test_a_bundle_grows_into_a_finer_height_scan() -> None:
    bundle_path = data_dir("pretrained")
    recipe = load_recipe(FINETUNE, [*BUNDLE_TINY, FINE_SCAN, f"init_from={bundle_path}"])
    init = read_warm_start(bundle_path, expected_meta(recipe), recipe)
    assert isinstance(init, BundleStart) and init.growth is not None and init.growth.new_inputs == 21
    env = normalized_vec_env(
        recipe,
        make_vec_env(
            "stairs_up",
            1,
            seed=5,
            overrides={"observation.height_scan.x_points_m": list(FINE_X), "observation.history_steps": 5},
        ),
    )
    try:
        _assert_grown_actor_acts_as_the_bundle(init, recipe, env, bundle_path, _refine_scan)
    finally:
        env.close()


def test_a_scan_grid_that_moves_the_sources_points_is_refused(source: Path) -> None:
    """Same size, other offsets: without the grid check the weights would read other terrain."""
    shifted = ",".join(str(round(x + 0.05, 3)) for x in OLD_X)
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, f"env.observation.height_scan.x_points_m=[{shifted}]"])
    with pytest.raises(
        CheckpointError,
        match=r"--init-from .*best: .*offsets \[-0.3, -0.15.*are missing.*refine the source's scan",
    ):
        WarmStart.read(source, expected_meta(recipe), recipe)


def test_a_checkpoint_outside_its_run_directory_can_still_grow_the_history(
    source: Path, tmp_path: Path
) -> None:
    """Without the run's env.yaml the source is taken to have the recipe's term sizes and scan grid."""
    loose = tmp_path / "loose"
    shutil.copytree(source / "best", loose)
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, HISTORY])
    init = WarmStart.read(loose, expected_meta(recipe), recipe)
    assert init.growth is not None and init.growth.new_inputs == 2 * FRAME
