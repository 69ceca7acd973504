"""Seeing what a policy does: GUI playback, headless videos, telemetry and plots.

- `stairbot.viz.video`: `stairbot record`, episodes rendered offscreen to .mp4 or .gif.
- `stairbot.viz.telemetry`: one seeded episode recorded per control step (npz / CSV).
- `stairbot.viz.plots`: `stairbot plot`, learning curves of a run and an episode's telemetry (PNG).

This is the only package that imports matplotlib (and imageio); import the submodules you need, this
module imports nothing heavy.
"""
