"""Tiny real bundles (a PPO and a SAC run, trained for a few hundred steps and exported), built once per
test session, and a C compiler for the tests of policy.h."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from training.helpers import PPO_TINY, SAC_TINY

from stairbot.export.bundle import export_run
from stairbot.export.latency import find_c_compiler
from stairbot.training import trainer
from stairbot.training.recipe import load_recipe

# hip, thigh, calf of each leg: every export path must carry a per-joint scale, not just one number
PPO_ACTION_SCALE_RAD = (0.4, 0.6, 0.9) * 4
# What the C tests compile with: C99, every warning an error (CI has gcc).
C_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion", "-Wshadow")


@dataclass(frozen=True)
class Exported:
    """A finished tiny run and the bundle exported from it (tests only read both)."""

    run: Path
    bundle: Path


def _export(root: Path, recipe_name: str, overrides: tuple[str, ...]) -> Exported:
    run = root / "run"
    trainer.train(load_recipe(recipe_name, list(overrides)), run)
    return Exported(run, export_run(run, root / "bundle"))


@pytest.fixture(scope="session")
def ppo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """PPO (ELU, clip squash), net_arch [16], 256 steps, a different action scale per joint."""
    overrides = (*PPO_TINY, f"env.control.action_scale_rad={list(PPO_ACTION_SCALE_RAD)}")
    return _export(tmp_path_factory.mktemp("export-ppo"), "ppo_stairs", overrides)


@pytest.fixture(scope="session")
def sac_bundle(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """SAC (tanh squash), net_arch [16], 300 steps."""
    return _export(tmp_path_factory.mktemp("export-sac"), "sac_stairs", SAC_TINY)


@pytest.fixture(scope="session")
def sac_sde_bundle(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """SAC with gSDE (SB3 clips its actor's mean to +-2 before the tanh), net_arch [16], 300 steps.

    The best model's action layer is scaled by 20 before export: a 300-step actor's means sit well
    inside +-2, and the clip has to engage for the tests to see whether every runtime applies it."""
    from stable_baselines3 import SAC

    root = tmp_path_factory.mktemp("export-sac-sde")
    run = root / "run"
    trainer.train(load_recipe("sac_stairs", [*SAC_TINY, "sac.use_sde=true", "policy.log_std_init=-3"]), run)
    model_file = run / "best" / "model.zip"
    model = SAC.load(model_file, device="cpu")
    linear = model.policy.actor.mu[0]
    with torch.no_grad():
        linear.weight.mul_(20.0)
        linear.bias.mul_(20.0)
    model.save(model_file)
    return Exported(run, export_run(run, root / "bundle"))


@pytest.fixture(params=["ppo", "sac", "sac_sde"])
def bundle(request: pytest.FixtureRequest) -> Exported:
    """Each tiny bundle in turn."""
    exported: Exported = request.getfixturevalue(f"{request.param}_bundle")
    return exported


@pytest.fixture(scope="session")
def c_compiler() -> str:
    compiler = find_c_compiler()
    if compiler is None:
        pytest.skip("no C compiler ($CC, cc, gcc or clang) on this machine: policy.h cannot be compiled")
    return compiler


def compile_c(compiler: str, source: Path, executable: Path, *include_dirs: Path) -> Path:
    """Compile `source` (which includes headers from `include_dirs`) into `executable`, or fail the test
    with the compiler's messages."""
    includes = [f"-I{folder}" for folder in include_dirs]
    done = subprocess.run(
        [compiler, *C_FLAGS, *includes, str(source), "-o", str(executable), "-lm"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{compiler} failed:\n{done.stderr}")
    return executable
