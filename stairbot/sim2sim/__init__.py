"""Sim-to-sim: run an exported bundle through `stairbot.deploy` in MuJoCo beside PyBullet
(`stairbot sim2sim`; MuJoCo comes with the `sim2sim` extra). `mujoco_world` builds and steps the
MuJoCo model, `runner` runs the episodes in both simulators and reports."""
