"""The bundles kept in candidates/ (starting points for later runs) still load and reproduce their
golden vectors with this version of stairbot.deploy, so a later session can start from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairbot.deploy import load_bundle

CANDIDATES = Path(__file__).resolve().parents[1] / "candidates"
BUNDLES = sorted(p.parent for p in CANDIDATES.glob("*/policy.json"))


def test_candidates_are_kept() -> None:
    assert len(BUNDLES) >= 1


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_kept_candidate_reproduces_its_golden_vectors(bundle: Path) -> None:
    assert (bundle / "README.md").is_file(), "a candidate says what it is and how it was made"
    for backend in ("onnxruntime", "numpy"):
        policy = load_bundle(bundle, backend=backend)
        assert policy.check_golden() <= policy.metadata.golden_atol_rad
