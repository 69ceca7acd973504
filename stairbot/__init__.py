"""stairbot: train legged robots to climb stairs on a CPU.

Importing the package registers the Gymnasium environments (`stairbot/StairClimb-v0`,
`stairbot/StairClimbDown-v0`).
"""

from __future__ import annotations

from stairbot.envs import ENV_PRESETS, register_envs

__version__ = "0.1.0"
__all__ = ["ENV_PRESETS", "__version__", "register_envs"]

register_envs()
