"""`stairbot bench deploy`: every runtime measured on a real bundle. Only the table's shape and sanity
are tested; speed targets live in the benchmark itself, never in tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stairbot.cli import main
from stairbot.export.bundle import GOLDEN_ATOL_RAD
from stairbot.export.latency import find_c_compiler, measure

from .conftest import Exported

PYTHON_RUNTIMES = [
    "onnxruntime (1 thread)",
    "stairbot.deploy act()",
    "torchscript (1 thread)",
    "numpy (PolicyGraph.forward)",
]
C_RUNTIMES = ["C policy.h via ctypes", "C policy.h, timed in C"]


def expected_runtimes() -> list[str]:
    return PYTHON_RUNTIMES + (C_RUNTIMES if find_c_compiler() else [])


def test_measure_times_every_runtime(ppo_bundle: Exported) -> None:
    results = measure(ppo_bundle.bundle, calls=30, warmup=5)
    assert [r.runtime for r in results] == expected_runtimes()
    for r in results:
        assert r.calls == 30
        assert 0 < r.median_us <= r.p99_us, r
        assert 0 <= r.max_abs_err_rad < GOLDEN_ATOL_RAD, r


def test_a_bundle_without_policy_h_gets_one_for_the_c_rows(tmp_path: Path, sac_bundle: Exported) -> None:
    if find_c_compiler() is None:
        pytest.skip("no C compiler: the C rows are left out")
    old = tmp_path / "bundle"
    shutil.copytree(sac_bundle.bundle, old)
    (old / "policy.h").unlink()
    metadata = json.loads((old / "policy.json").read_text())
    del metadata["files"]["policy.h"]  # as bundles exported before policy.h existed
    (old / "policy.json").write_text(json.dumps(metadata))
    results = measure(old, calls=5, warmup=0)
    assert [r.runtime for r in results][-2:] == C_RUNTIMES
    assert all(r.max_abs_err_rad < GOLDEN_ATOL_RAD for r in results)


def test_bench_deploy_prints_the_table(ppo_bundle: Exported, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "deploy", str(ppo_bundle.bundle), "--calls", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("runtime"))
    assert lines[header].split()[:4] == ["runtime", "median", "us", "p99"]
    rows = lines[header + 1 : header + 1 + len(expected_runtimes())]
    for row, runtime in zip(rows, expected_runtimes(), strict=True):
        assert row.startswith(runtime)
        median, p99 = (float(v) for v in row[len(runtime) :].split()[:2])
        assert 0 < median <= p99
    assert any("us target" in line for line in lines)


def test_a_tampered_bundle_is_refused(
    tmp_path: Path, ppo_bundle: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(ppo_bundle.bundle, bundle)
    with open(bundle / "policy.h", "a") as f:
        f.write("/* edited */\n")
    assert main(["bench", "deploy", str(bundle), "--calls", "5"]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and "policy.h" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "deploy"], "needs a BUNDLE"),
        (["bench", "deploy", "{tmp}"], "is not a stairbot bundle"),
        (["bench", "env", "{tmp}"], "a BUNDLE is for `bench deploy`"),
    ],
)
def test_bench_deploy_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and message in err


def test_bench_deploy_refuses_zero_calls(ppo_bundle: Exported, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "deploy", str(ppo_bundle.bundle), "--calls", "0"]) == 2
    assert "calls must be at least 1" in capsys.readouterr().err
