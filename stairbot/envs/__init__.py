"""Gymnasium registration of the stairbot environments.

`import stairbot` registers them; then `gymnasium.make("stairbot/StairClimb-v0", riser_m=0.12)`.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

ENTRY_POINT = "stairbot.envs.stair_climb:StairClimbEnv"
# 20 s at the default 50 Hz policy rate; the only source of truncation.
MAX_EPISODE_STEPS = 1000

ENV_PRESETS = {
    "stairbot/StairClimb-v0": "stairs_up",
    "stairbot/StairClimbDown-v0": "stairs_down",
}


def register_envs() -> None:
    """Register every stairbot env id with Gymnasium (idempotent)."""
    for env_id, preset in ENV_PRESETS.items():
        if env_id not in registry:
            register(
                id=env_id,
                entry_point=ENTRY_POINT,
                max_episode_steps=MAX_EPISODE_STEPS,
                kwargs={"preset": preset},
            )
