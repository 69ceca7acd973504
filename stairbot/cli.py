"""The `stairbot` command line.

stairbot demo [--preset P] [--episodes N] [--riser-m H] [--seed S]
stairbot bench [--preset P] [--steps N] [--processes K]
stairbot presets
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np

from stairbot.errors import StairbotError


def _demo(args: argparse.Namespace) -> int:
    """Run the env with a scripted stand-still policy (zero action) and report what it saw."""
    import gymnasium as gym

    import stairbot  # noqa: F401  (registers the env ids)
    from stairbot.envs.stair_climb import StairClimbEnv

    kwargs = {"preset": args.preset}
    if args.riser_m is not None:
        kwargs["riser_m"] = args.riser_m
    env = gym.make("stairbot/StairClimb-v0", **kwargs)
    reasons: Counter[str] = Counter()
    returns, lengths, heights = [], [], []
    base = env.unwrapped
    assert isinstance(base, StairClimbEnv)
    for episode in range(args.episodes):
        _, info = env.reset(seed=args.seed + episode)
        print(
            f"episode {episode}: {info['direction']} {info['num_steps']} steps of "
            f"{info['riser_m']:.3f} m x {info['tread_m']:.2f} m, command {info['command'][0]:.2f} m/s"
        )
        total, length, done = 0.0, 0, False
        step_info: dict = {}
        while not done:
            _, reward, terminated, truncated, step_info = env.step(
                np.zeros(env.action_space.shape, np.float32)
            )
            total += float(reward)
            length += 1
            done = terminated or truncated
        heights.append(float(base.world.read_state().base_pos_m[2]))
        reason = step_info["termination_reason"] if terminated else "time_limit"
        reasons[reason] += 1
        returns.append(total)
        lengths.append(length)
        print(
            f"  {length} steps ({length * base.dt:.1f} s), return {total:.2f}, ended by {reason}, "
            f"steps climbed {step_info['steps_climbed']}, final base height {heights[-1]:.3f} m"
        )
    env.close()
    print(
        f"stand-still policy over {args.episodes} episodes: mean return {np.mean(returns):.2f}, "
        f"mean length {np.mean(lengths):.0f} steps, endings {dict(reasons)}"
    )
    print("(a scripted baseline: `stairbot train` replaces it once training lands)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from stairbot import bench

    bench.run(args.preset, args.steps, args.processes, args.repeats)
    return 0


def _presets(args: argparse.Namespace) -> int:
    from stairbot.paths import available_presets

    for kind in ("envs", "urdf", "train"):
        print(f"{kind}: {', '.join(available_presets(kind)) or '(none)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stairbot", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the env with a stand-still policy and report")
    demo.add_argument("--preset", default="stairs_up", help="env preset name or YAML path")
    demo.add_argument("--episodes", type=int, default=3)
    demo.add_argument("--riser-m", type=float, default=None, help="riser height override (m)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="env steps/s beside a raw PyBullet loop")
    bench.add_argument("--preset", default="stairs_up")
    bench.add_argument("--steps", type=int, default=2000, help="control steps per process")
    bench.add_argument("--processes", type=int, default=None, help="default: one per core")
    bench.add_argument("--repeats", type=int, default=3, help="measurements per row (median shown)")
    bench.set_defaults(func=_bench)

    presets = sub.add_parser("presets", help="list shipped env presets, robots and recipes")
    presets.set_defaults(func=_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except StairbotError as exc:
        print(f"stairbot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
