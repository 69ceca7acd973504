"""stairbot: train legged robots to climb stairs on a CPU.

Importing the package registers the Gymnasium environments (`stairbot/StairClimb-v0`,
`stairbot/StairClimbDown-v0`) where Gymnasium is installed. A robot computer that only runs
`stairbot.deploy` needs numpy and onnxruntime, nothing else.
"""

from __future__ import annotations

__version__ = "0.1.0"

try:
    from stairbot.envs import ENV_PRESETS, register_envs
except ImportError:  # a deploy-only install: no Gymnasium, so no environments to register
    ENV_PRESETS = {}
else:
    register_envs()

__all__ = ["ENV_PRESETS", "__version__"]
