"""policy.h: compiled with the system C compiler and run, against ONNX Runtime, the numpy reference and
the bundle's golden vectors, for every activation and squash and for the shipped bundles."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from stairbot.export.bundle import GOLDEN_ATOL_RAD
from stairbot.export.c_source import c_float, c_header_source, to_c_header
from stairbot.export.onnx_graph import to_onnx
from stairbot.export.policy_graph import Activation, Layer, PolicyGraph, Squash

from .conftest import Exported, compile_c

# Reads float32 observations from argv[1] until EOF, writes float32 joint targets to argv[2]; exits
# non-zero if the reentrant variant disagrees with the static-scratch one.
RUNNER = """\
#include <stdio.h>
#include <string.h>
#include "policy.h"

int main(int argc, char **argv)
{
    float obs[STAIRBOT_OBS_SIZE], q[STAIRBOT_NUM_JOINTS], q_r[STAIRBOT_NUM_JOINTS];
    float scratch[STAIRBOT_SCRATCH_SIZE];
    FILE *in, *out;
    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb"))) {
        return 2;
    }
    while (fread(obs, sizeof(float), STAIRBOT_OBS_SIZE, in) == STAIRBOT_OBS_SIZE) {
        stairbot_policy(obs, q);
        stairbot_policy_r(obs, q_r, scratch);
        if (memcmp(q, q_r, sizeof q) != 0) {
            return 3;
        }
        fwrite(q, sizeof(float), STAIRBOT_NUM_JOINTS, out);
    }
    return feof(in) && fclose(in) == 0 && fclose(out) == 0 ? 0 : 4;
}
"""


def run_header(compiler: str, header: Path, inputs: np.ndarray, folder: Path, joints: int) -> np.ndarray:
    """Joint targets (K, J) that the compiled header computes for `inputs` (K, N)."""
    (folder / "runner.c").write_text(RUNNER)
    if header.parent != folder:
        shutil.copyfile(header, folder / "policy.h")
    executable = compile_c(compiler, folder / "runner.c", folder / "runner", folder)
    np.ascontiguousarray(inputs, np.float32).tofile(folder / "inputs.bin")
    subprocess.run([str(executable), str(folder / "inputs.bin"), str(folder / "outputs.bin")], check=True)
    return np.fromfile(folder / "outputs.bin", np.float32).reshape(-1, joints)


def onnx_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"observation": np.asarray(inputs, np.float32)})[0])


def random_graph(
    seed: int,
    activation: Activation,
    squash: Squash,
    *,
    widths: tuple[int, ...],
    obs_size: int = 11,
    joints: int = 6,
) -> PolicyGraph:
    """Random weights big enough that the observation clip and the action squash both engage."""
    rng = np.random.default_rng(seed)
    sizes = [obs_size, *widths]
    hidden = tuple(
        Layer(rng.normal(0.0, 1.5 / np.sqrt(n_in), (n_out, n_in)), rng.normal(0.0, 0.2, n_out))
        for n_in, n_out in itertools.pairwise(sizes)
    )
    output = Layer(
        rng.normal(0.0, 3.0 / np.sqrt(sizes[-1]), (joints, sizes[-1])), rng.normal(0.0, 0.2, joints)
    )
    return PolicyGraph(
        obs_mean=rng.normal(0.0, 1.0, obs_size),
        obs_std=rng.uniform(0.1, 2.0, obs_size),
        obs_clip=3.0,
        hidden=hidden,
        output=output,
        activation=activation,
        squash=squash,
        default_pose_rad=rng.uniform(-1.0, 1.0, joints),
        action_scale_rad=rng.uniform(0.1, 0.5, joints),
    )


def random_inputs(graph: PolicyGraph, count: int = 200, seed: int = 1) -> np.ndarray:
    """Observations whose normalized values reach +-6 std, beyond the graph's clip of 3."""
    z = np.random.default_rng(seed).standard_normal((count, graph.observation_size)) * 3.0
    return (graph.obs_mean + graph.obs_std * z).astype(np.float32)


def check_header_against_onnx_and_numpy(compiler: str, graph: PolicyGraph, folder: Path) -> np.ndarray:
    inputs = random_inputs(graph)
    to_c_header(graph, folder / "policy.h")
    to_onnx(graph, folder / "policy.onnx")
    c = run_header(compiler, folder / "policy.h", inputs, folder, graph.action_size)
    np.testing.assert_allclose(c, onnx_outputs(folder / "policy.onnx", inputs), rtol=0, atol=1e-5)
    np.testing.assert_allclose(c, graph.forward(inputs), rtol=0, atol=1e-5)
    return c


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("squash", list(Squash))
def test_header_computes_the_graph_for_every_activation_and_squash(
    c_compiler: str, tmp_path: Path, activation: Activation, squash: Squash
) -> None:
    # Three hidden layers (the ping-pong buffers swap twice), widths with and without a remainder
    # of the four-row blocks, one narrower than four.
    graph = random_graph(0, activation, squash, widths=(9, 8, 3))
    c = check_header_against_onnx_and_numpy(c_compiler, graph, tmp_path)
    action = (c - graph.default_pose_rad) / graph.action_scale_rad
    assert np.abs(action).max() <= 1.0 + 1e-5
    if squash is Squash.CLIP:  # the squash engaged: some actions sit on the bound
        assert np.isclose(np.abs(action), 1.0, atol=1e-5).any()


@pytest.mark.parametrize("squash", list(Squash))
def test_header_clips_the_mean_before_the_squash(c_compiler: str, tmp_path: Path, squash: Squash) -> None:
    graph = dataclasses.replace(random_graph(3, Activation.ELU, squash, widths=(8,)), mean_clip=0.6)
    c = check_header_against_onnx_and_numpy(c_compiler, graph, tmp_path)
    action = np.abs((c - graph.default_pose_rad) / graph.action_scale_rad)
    bound = 0.6 if squash is Squash.CLIP else np.tanh(0.6)
    assert action.max() <= bound + 1e-5
    assert np.isclose(action, bound, atol=1e-5).any()  # the clip engaged
    assert "mean_clip" in (tmp_path / "policy.h").read_text()


@pytest.mark.parametrize("widths", [(), (13, 4)], ids=["no-hidden-layer", "wider-than-obs"])
def test_header_handles_any_layer_shape(c_compiler: str, tmp_path: Path, widths: tuple[int, ...]) -> None:
    graph = random_graph(2, Activation.RELU, Squash.CLIP, widths=widths, obs_size=5, joints=3)
    check_header_against_onnx_and_numpy(c_compiler, graph, tmp_path)


def test_bundle_header_reproduces_onnx_and_the_golden_vectors(
    c_compiler: str, tmp_path: Path, bundle: Exported
) -> None:
    golden = np.load(bundle.bundle / "golden.npz", allow_pickle=False)
    inputs, expected = golden["inputs"], golden["outputs"]
    c = run_header(c_compiler, bundle.bundle / "policy.h", inputs, tmp_path, expected.shape[1])
    np.testing.assert_allclose(c, onnx_outputs(bundle.bundle / "policy.onnx", inputs), rtol=0, atol=1e-5)
    np.testing.assert_allclose(c, expected, rtol=0, atol=GOLDEN_ATOL_RAD)


def test_two_policies_with_their_own_prefixes_live_in_one_program(c_compiler: str, tmp_path: Path) -> None:
    walk = random_graph(3, Activation.ELU, Squash.CLIP, widths=(6,), obs_size=4, joints=2)
    climb = random_graph(4, Activation.TANH, Squash.TANH, widths=(5, 5), obs_size=4, joints=2)
    to_c_header(walk, tmp_path / "walk.h", prefix="walk")
    to_c_header(climb, tmp_path / "climb.h", prefix="climb")
    (tmp_path / "both.c").write_text(
        '#include <stdio.h>\n#include "walk.h"\n#include "climb.h"\n'
        "int main(void)\n{\n"
        "    const float obs[WALK_OBS_SIZE] = {0.5f, -1.0f, 2.0f, 0.25f};\n"
        "    float a[WALK_NUM_JOINTS], b[CLIMB_NUM_JOINTS];\n"
        "    walk_policy(obs, a);\n    climb_policy(obs, b);\n"
        '    printf("%.9g %.9g %.9g %.9g\\n",\n'
        "        (double)a[0], (double)a[1], (double)b[0], (double)b[1]);\n"
        "    return 0;\n}\n"
    )
    executable = compile_c(c_compiler, tmp_path / "both.c", tmp_path / "both", tmp_path)
    printed = subprocess.run([str(executable)], capture_output=True, text=True, check=True).stdout
    values = np.array(printed.split(), np.float64).reshape(2, 2)
    obs = np.array([[0.5, -1.0, 2.0, 0.25]])
    np.testing.assert_allclose(values[0], walk.forward(obs)[0], atol=1e-5)
    np.testing.assert_allclose(values[1], climb.forward(obs)[0], atol=1e-5)


def test_header_compiles_as_cpp(tmp_path: Path, ppo_bundle: Exported) -> None:
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler (c++, g++, clang++) on this machine")
    (tmp_path / "use.cpp").write_text(
        '#include "policy.h"\nint main() { float o[STAIRBOT_OBS_SIZE] = {}, q[STAIRBOT_NUM_JOINTS];\n'
        "stairbot_policy(o, q); return q[0] == q[0] ? 0 : 1; }\n"
    )
    done = subprocess.run(
        [compiler, "-std=c++11", *CXX_FLAGS, f"-I{ppo_bundle.bundle}", str(tmp_path / "use.cpp")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_header_comments_carry_joint_order_observation_layout_and_provenance(ppo_bundle: Exported) -> None:
    header = (ppo_bundle.bundle / "policy.h").read_text()
    metadata = json.loads((ppo_bundle.bundle / "policy.json").read_text())
    comment = header[: header.index("*/")]
    joints = metadata["robot"]["joint_names"]
    positions = [comment.index(f" {name} ") for name in joints]
    assert positions == sorted(positions)  # in the policy's joint order
    for term in metadata["observation"]["terms"]:
        assert f"{term['name']}: {term['description']}" in comment
    assert metadata["provenance"]["run_dir"] in comment
    assert f"#define STAIRBOT_OBS_SIZE {metadata['observation']['size']}" in header
    assert f"#define STAIRBOT_NUM_JOINTS {len(joints)}" in header
    assert "#include <math.h> /* expm1f */" in header  # ELU, clip squash: nothing else from libm
    assert header.isascii()


def test_header_needs_no_libm_for_relu_and_clip() -> None:
    graph = random_graph(5, Activation.RELU, Squash.CLIP, widths=(4,))
    source = c_header_source(graph)
    assert "#include" not in source
    assert "from <math.h> nothing" in source


def test_metadata_text_cannot_break_the_header(c_compiler: str, tmp_path: Path, ppo_bundle: Exported) -> None:
    metadata: dict[str, Any] = json.loads((ppo_bundle.bundle / "policy.json").read_text())
    metadata["observation"]["terms"][0]["description"] = "ends the comment */ int oops = ;"
    metadata["robot"]["joint_names"][0] = "h\u00fcfte */"
    graph = random_graph(6, Activation.ELU, Squash.CLIP, widths=(4,), obs_size=69, joints=12)
    to_c_header(graph, tmp_path / "policy.h", metadata)
    assert (tmp_path / "policy.h").read_text().isascii()
    c = run_header(c_compiler, tmp_path / "policy.h", random_inputs(graph, 8), tmp_path, 12)
    np.testing.assert_allclose(c, graph.forward(random_inputs(graph, 8)), atol=1e-5)


CXX_FLAGS = ("-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only")
FLOATS = [0.0, -0.0, 1.0, -2.0, 0.1, 1e-45, 1.1754944e-38, 3.4028235e38, -1e-5, 123456789.0, np.pi]


def test_float_literals_round_trip_in_python() -> None:
    for value in FLOATS:
        text = c_float(value)
        assert text.endswith("f") and any(ch in text for ch in ".e"), text
        parsed = np.float32(float(text[:-1]))
        assert parsed.view(np.uint32) == np.float32(value).view(np.uint32), (value, text)


def test_float_literals_round_trip_through_the_c_compiler(c_compiler: str, tmp_path: Path) -> None:
    literals = ", ".join(c_float(v) for v in FLOATS)
    (tmp_path / "floats.c").write_text(
        f"#include <stdio.h>\nstatic const float v[] = {{{literals}}};\n"
        "int main(void)\n{\n    fwrite(v, sizeof v[0], sizeof v / sizeof v[0], stdout);\n    return 0;\n}\n"
    )
    executable = compile_c(c_compiler, tmp_path / "floats.c", tmp_path / "floats")
    raw = subprocess.run([str(executable)], capture_output=True, check=True).stdout
    assert raw == np.array(FLOATS, np.float32).tobytes()


def test_non_finite_weights_and_bad_prefixes_are_refused() -> None:
    graph = random_graph(7, Activation.ELU, Squash.CLIP, widths=(3,))
    graph.output.bias[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        c_header_source(graph)
    with pytest.raises(ValueError, match="C identifier"):
        c_header_source(random_graph(7, Activation.ELU, Squash.CLIP, widths=(3,)), prefix="2fast")
