"""The exported bundle: every file listed and hashed, ONNX, TorchScript and weights.npz computing one
function, and `stairbot export` refusing bad input without touching anything."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from stairbot.cli import main
from stairbot.deploy import load_bundle
from stairbot.export.bundle import BUNDLE_FILES, GOLDEN_ATOL_RAD, sha256
from stairbot.export.policy_graph import load_npz

from .conftest import PPO_ACTION_SCALE_RAD, Exported


def golden(bundle: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(bundle / "golden.npz", allow_pickle=False) as data:
        return data["inputs"], data["outputs"]


def onnx_outputs(bundle: Path, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(bundle / "policy.onnx"), providers=["CPUExecutionProvider"])
    io = json.loads((bundle / "policy.json").read_text())["io"]
    return np.asarray(session.run([io["output"]["name"]], {io["input"]["name"]: inputs})[0])


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_file_is_listed_and_hashed(bundle: Exported) -> None:
    metadata = json.loads((bundle.bundle / "policy.json").read_text())
    assert sorted(p.name for p in bundle.bundle.iterdir()) == sorted([*BUNDLE_FILES, "policy.json"])
    assert set(metadata["files"]) == set(BUNDLE_FILES)
    assert "policy.h" in metadata["files"]
    for name, entry in metadata["files"].items():
        assert entry["sha256"] == sha256(bundle.bundle / name), name
        assert entry["bytes"] == (bundle.bundle / name).stat().st_size, name


def test_onnx_is_one_file_opset_17_with_the_declared_io(bundle: Exported) -> None:
    metadata = json.loads((bundle.bundle / "policy.json").read_text())
    model = onnx.load(str(bundle.bundle / "policy.onnx"), load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert all(len(t.external_data) == 0 for t in model.graph.initializer)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx", 0)) >= 17
    assert metadata["io"]["onnx_opset"] == opsets.get("", opsets.get("ai.onnx"))
    for value, declared in (
        (model.graph.input, metadata["io"]["input"]),
        (model.graph.output, metadata["io"]["output"]),
    ):
        (tensor,) = value
        assert tensor.name == declared["name"]
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and declared["dtype"] == "float32"
        dims = [d.dim_param or d.dim_value for d in tensor.type.tensor_type.shape.dim]
        assert dims == declared["shape"]
    assert metadata["io"]["input"]["shape"][1] == metadata["observation"]["size"]
    assert metadata["io"]["output"]["shape"][1] == len(metadata["robot"]["joint_names"])


def test_onnx_reproduces_the_golden_vectors(bundle: Exported) -> None:
    inputs, outputs = golden(bundle.bundle)
    np.testing.assert_allclose(onnx_outputs(bundle.bundle, inputs), outputs, rtol=0, atol=GOLDEN_ATOL_RAD)


def test_torchscript_matches_onnx(bundle: Exported) -> None:
    inputs, _ = golden(bundle.bundle)
    module = torch.jit.load(str(bundle.bundle / "policy.pt"), map_location="cpu")
    with torch.inference_mode():
        scripted = module(torch.from_numpy(inputs)).numpy()
    assert scripted.dtype == np.float32
    np.testing.assert_allclose(scripted, onnx_outputs(bundle.bundle, inputs), rtol=0, atol=1e-5)


def test_weights_npz_loads_without_pickle_and_matches_onnx(bundle: Exported) -> None:
    with np.load(bundle.bundle / "weights.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}  # every array readable without pickle
    assert all(a.dtype != object for a in arrays.values())
    graph = load_npz(bundle.bundle / "weights.npz")
    inputs, _ = golden(bundle.bundle)
    np.testing.assert_allclose(graph.forward(inputs), onnx_outputs(bundle.bundle, inputs), rtol=0, atol=1e-5)


def test_squash_follows_the_algorithm(ppo_bundle: Exported, sac_bundle: Exported) -> None:
    for exported, squash in ((ppo_bundle, "clip"), (sac_bundle, "tanh")):
        metadata = json.loads((exported.bundle / "policy.json").read_text())
        assert metadata["action"]["squash"] == squash
        assert f'#define STAIRBOT_SQUASH "{squash}"' in (exported.bundle / "policy.h").read_text()


def test_a_per_joint_action_scale_is_written_and_read_back(ppo_bundle: Exported) -> None:
    metadata = json.loads((ppo_bundle.bundle / "policy.json").read_text())
    assert metadata["action"]["scale_rad"] == list(PPO_ACTION_SCALE_RAD)
    runtime = load_bundle(ppo_bundle.bundle, backend="numpy")
    np.testing.assert_array_equal(runtime.metadata.action_scale_rad, PPO_ACTION_SCALE_RAD)
    # (the golden-vector tests above check that ONNX, TorchScript and C apply it per joint)


def test_export_of_a_folder_that_is_no_run_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-a-run").mkdir()
    assert main(["export", str(tmp_path / "not-a-run"), "--out", str(tmp_path / "bundle")]) == 2
    assert "stairbot: error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-run"]


def test_export_into_a_non_empty_folder_fails_and_overwrites_nothing(
    tmp_path: Path, ppo_bundle: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "policy.onnx").write_bytes(b"precious")
    before = tree(tmp_path)
    assert main(["export", str(ppo_bundle.run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and "not empty" in err
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary folder left behind


def test_a_gsde_sac_bundle_clips_the_mean_before_the_tanh_as_sb3_does(sac_sde_bundle: Exported) -> None:
    from stairbot.deploy import load_bundle
    from stairbot.export.policy_graph import load_npz
    from stairbot.training.policy import load_policy, policy_checkpoint

    meta = json.loads((sac_sde_bundle.bundle / "policy.json").read_text())
    assert meta["action"]["squash"] == "tanh" and meta["action"]["mean_clip"] == 2.0
    graph = load_npz(sac_sde_bundle.bundle / "weights.npz")
    sb3 = load_policy(policy_checkpoint(sac_sde_bundle.run))
    rng = np.random.default_rng(0)
    observations = sb3.obs_mean + 2.0 * sb3.obs_std * rng.standard_normal((100, graph.observation_size))
    observations = observations.astype(np.float32)
    expected = np.array([graph.default_pose_rad + graph.action_scale_rad * sb3.act(o) for o in observations])
    for backend in ("onnxruntime", "numpy"):
        policy = load_bundle(sac_sde_bundle.bundle, backend=backend)
        got = np.array([policy.act(o) for o in observations])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # The clip engaged: some actions sit at tanh(2), which an unclipped tanh would have passed.
    actions = (expected - graph.default_pose_rad) / graph.action_scale_rad
    assert np.isclose(np.abs(actions), np.tanh(2.0), atol=1e-5).any()
    unclipped = dataclasses.replace(graph, mean_clip=None).forward(observations)
    assert np.abs(unclipped - expected).max() > 1e-3
