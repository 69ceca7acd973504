"""The `stairbot` command line.

stairbot train RECIPE [--timesteps N] [--seed S] [--n-envs K] [--out DIR] [--init-from RUN|CHECKPOINT|BUNDLE]
               [key.path=value ...]
stairbot train --resume RUN_DIR [--timesteps N]
stairbot eval RUN_DIR [--episodes N] [--riser-m H] [--direction up|down] [--seed S] [--json FILE]
              [--checkpoint best|latest|step_N]
stairbot export RUN_DIR --out BUNDLE [--checkpoint best|latest|step_N]
stairbot average SOURCE SOURCE ... --out RUN_DIR
stairbot ensemble SOURCE SOURCE ... --out RUN_DIR
stairbot distill STUDENT --teacher POLICY [--route CONDITIONS POLICY ...] --out RUN_DIR [--iterations N]
                 [--steps N] [--epochs N] [--batch-size N] [--learning-rate LR] [--seed S]
stairbot gradient-noise SOURCE [--rollouts M] [--seed S] [--gae-lambda L...] [--json FILE]
stairbot bench [env] [--preset P] [--steps N] [--processes K] [--repeats R]
stairbot bench train [--recipe R] [--rollouts N] [--n-envs K ...] [--repeats R]
stairbot bench deploy BUNDLE [--calls N]
stairbot demo [--preset P] [--episodes N] [--riser-m H] [--seed S]
stairbot record [POLICY] --out FILE.mp4|.gif [--width W] [--height H] [--episodes N] [--riser-m H]
                [--seed S] [--fps F] [--max-steps N] [--randomized [PRESET]]
stairbot plot RUN_DIR [--out DIR] [--seed S] [--riser-m H] [--max-steps N] [--no-episode]
stairbot compare RUN_DIR RUN_DIR ... [--labels NAME ...] [--target P] [--window N] [--budget N]
                 [--plot FILE] [--json FILE]
stairbot play [POLICY] [--riser-m H] [--seed S] [--direction up|down] [--max-steps N] [--screenshot FILE]
              [--randomized [PRESET]]
stairbot benchmark [POLICY] [--episodes N] [--seed S] [--processes K] [--risers H ...] [--treads T ...]
                   [--directions up|down ...] [--json FILE] [--csv FILE] [--plot FILE]
                   [--randomized [PRESET]] [--command-mps V] [--action-noise SIGMA]
stairbot saturation [POLICY] [--episodes N] [--seed S] [--risers H ...] [--treads T ...]
                    [--directions up|down ...] [--processes K] [--command-mps V] [--json FILE]
stairbot select CANDIDATE ... --against RELEASE [--json FILE] [--reuse FILE] [--processes K]
stairbot sim2sim BUNDLE [--riser-m H] [--episodes N] [--direction up|down] [--seed S] [--json FILE]
stairbot presets
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stairbot.errors import StairbotError

CHECKPOINT_HELP = (
    "which model: best (default; the latest if the run has no best yet), latest, or a kept "
    "checkpoint's folder name under RUN_DIR/checkpoints (e.g. step_000001000000)"
)


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


def _init_source(name: str) -> Path:
    """The path `--init-from` names: `pretrained` (and `pretrained/NAME`) are shipped bundles."""
    from stairbot.policy_source import shipped_or_path

    return shipped_or_path(name)


def _train(args: argparse.Namespace) -> int:
    from stairbot.training import trainer
    from stairbot.training.recipe import load_recipe
    from stairbot.training.run_dir import default_run_path

    if args.resume is not None:
        new_run_options = (args.recipe, args.seed, args.n_envs, args.init_from)
        if args.overrides or any(option is not None for option in new_run_options):
            raise StairbotError(
                "--resume continues a run as it was configured: give only the run directory and, "
                "optionally, --timesteps (the new total)"
            )
        result = trainer.resume(Path(args.resume), args.timesteps)
    else:
        if args.recipe is None:
            raise StairbotError("give a RECIPE (a name in train/ or a YAML path) or --resume RUN_DIR")
        overrides = list(args.overrides)
        options = (("total_timesteps", args.timesteps), ("seed", args.seed), ("n_envs", args.n_envs))
        for key, value in options:
            if value is not None:
                overrides.append(f"{key}={value}")
        if args.init_from is not None:
            # Absolute, so the run's config.yaml names the source wherever it is read from.
            overrides.append(f"init_from={_init_source(args.init_from).resolve()}")
        recipe = load_recipe(args.recipe, overrides)
        out = Path(args.out) if args.out else default_run_path(args.recipe)
        print(f"training {recipe.algorithm.value.upper()} on {recipe.env_preset} -> {out}")
        result = trainer.train(recipe, out)
    state = "interrupted at" if result.interrupted else "finished at"
    print(f"{state} {result.num_timesteps} steps; checkpoint {result.last_checkpoint}")
    print(f"run directory: {result.run_dir}  (TensorBoard: tensorboard --logdir {result.run_dir / 'tb'})")
    if result.interrupted:
        print(f"resume with: stairbot train --resume {result.run_dir}")
        return 130
    return 0


class _Report(Protocol):
    def table(self) -> str: ...
    def to_json(self, path: Path) -> Any: ...


def _print_report(report: _Report, json_path: str | None) -> int:
    """Print a report's table and, if asked, write its JSON (eval, sensitivity, sim2sim)."""
    print(report.table())
    if json_path:
        report.to_json(Path(json_path))
        print(f"wrote {json_path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from stairbot.evaluation import evaluate
    from stairbot.training.policy import load_policy, policy_checkpoint
    from stairbot.training.run_dir import RunDir
    from stairbot.training.trainer import eval_overrides
    from stairbot.training.vec import env_factory

    run = RunDir(Path(args.run_dir))
    if not run.config.is_file():
        raise StairbotError(f"{run.path} is not a stairbot run directory (no config.yaml)")
    checkpoint = policy_checkpoint(run.path, args.checkpoint)
    policy = load_policy(checkpoint)
    overrides = eval_overrides(run.recipe(), args.direction)
    if args.riser_m is not None:
        overrides["stairs.riser_m"] = args.riser_m
    report = evaluate(policy, env_factory(run.env_preset, overrides), args.episodes, args.seed)
    print(f"policy: {checkpoint}")
    return _print_report(report, args.json)


def _export(args: argparse.Namespace) -> int:
    from stairbot.export.bundle import export_run

    bundle = export_run(Path(args.run_dir), Path(args.out), args.checkpoint)
    print(f"wrote bundle {bundle}: " + ", ".join(sorted(p.name for p in bundle.iterdir())))
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.what == "deploy":
        if args.bundle is None:
            raise StairbotError("bench deploy needs a BUNDLE directory (made by `stairbot export`)")
        from stairbot.export import latency
        from stairbot.policy_source import shipped_or_path

        latency.run(shipped_or_path(args.bundle), args.calls)
        return 0
    if args.bundle is not None:
        raise StairbotError(f"a BUNDLE is for `bench deploy`; `bench {args.what}` takes none")
    if args.what == "train":
        from stairbot.training import bench as train_bench

        train_bench.run(args.recipe, args.rollouts, args.n_envs, args.repeats or 1)
        return 0
    from stairbot import bench

    bench.run(args.preset, args.steps, args.processes, args.repeats or 3)
    return 0


def _record(args: argparse.Namespace) -> int:
    from stairbot.conditions import condition_name, direction_condition
    from stairbot.envs.config import load_env_config
    from stairbot.policy_source import load_policy_source
    from stairbot.viz.video import check_video_options, record_video

    out = Path(args.out)
    check_video_options(out, args.width, args.height, args.episodes, args.fps)  # before loading anything
    source = load_policy_source(args.policy)
    direction = load_env_config(source.env_preset).stairs.direction.value
    condition = direction_condition(source.env_preset, direction, args.randomized)
    described = condition_name(args.randomized, direction)
    print(f"recording {source.name} on {source.env_preset}, {described} -> {out}")
    recording = record_video(
        source,
        out,
        width=args.width,
        height=args.height,
        episodes=args.episodes,
        riser_m=args.riser_m,
        seed=args.seed,
        fps=args.fps,
        max_steps=args.max_steps,
        condition=condition,
        log=print,
    )
    print(
        f"wrote {recording.path}: {recording.frames} frames, {recording.seconds:.1f} s at "
        f"{recording.fps:g} fps, {recording.width}x{recording.height}"
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from stairbot.viz.plots import plot_run

    files = plot_run(
        Path(args.run_dir),
        Path(args.out) if args.out else None,
        seed=args.seed,
        riser_m=args.riser_m,
        episode=not args.no_episode,
        max_steps=args.max_steps,
        log=print,
    )
    for path in files:
        print(f"wrote {path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from stairbot.viz.compare import compare_runs, format_comparison, plot_comparison

    comparison = compare_runs(
        [Path(path) for path in args.run_dirs],
        args.labels,
        target=args.target,
        window_steps=args.window,
        budget_steps=args.budget,
    )
    print(format_comparison(comparison))
    if args.plot:
        print(f"wrote {plot_comparison(comparison, Path(args.plot))}")
    if args.json:
        Path(args.json).write_text(json.dumps(comparison.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _add_policy_argument(parser: argparse.ArgumentParser) -> None:
    """The optional POLICY positional shared by record, play and benchmark (see policy_source)."""
    parser.add_argument(
        "policy",
        nargs="?",
        help="run directory, one of its checkpoints (RUN/checkpoints/step_N), export bundle or "
        "'pretrained'; none: zero action",
    )


def _add_condition_argument(
    parser: argparse.ArgumentParser,
    help_text: str = "domain randomization and stair jitter as in stairs_up_randomized / "
    "stairs_down_randomized (by direction), or as in PRESET (e.g. stairs_up_stress); "
    "default: the clean robot and stairs, whatever the policy was trained with",
) -> None:
    """--randomized [PRESET] (record, play, benchmark): clean unless given (see stairbot.conditions)."""
    parser.add_argument(
        "--randomized", nargs="?", const=True, default=False, metavar="PRESET", help=help_text
    )


def _add_record_and_plot(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    record = sub.add_parser(
        "record", help="render episodes of a policy to .mp4 or .gif, headless (no display needed)"
    )
    _add_policy_argument(record)
    record.add_argument("--out", required=True, help="video file; .mp4 (H.264) or .gif")
    record.add_argument("--width", type=int, default=640, help="frame width in px (even for .mp4)")
    record.add_argument("--height", type=int, default=480, help="frame height in px (even for .mp4)")
    record.add_argument("--episodes", type=int, default=1, help="episodes, one after another")
    record.add_argument("--riser-m", type=float, help="riser height (m); default: the policy's preset")
    record.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    record.add_argument(
        "--fps", type=float, default=25.0, help="frames per second of sim time, at most the control rate"
    )
    record.add_argument("--max-steps", type=int, help="cap each episode (control steps; default 1000)")
    _add_condition_argument(record)
    record.set_defaults(func=_record)

    plot = sub.add_parser("plot", help="learning curves of a run and one episode's telemetry, as PNGs")
    plot.add_argument("run_dir")
    plot.add_argument("--out", help="folder for the PNGs (default RUN_DIR/plots)")
    plot.add_argument("--seed", type=int, default=0, help="reset seed of the episode of the best policy")
    plot.add_argument("--riser-m", type=float, help="riser height (m) of that episode; default: the run's")
    plot.add_argument("--max-steps", type=int, help="cap that episode (control steps; default 1000)")
    plot.add_argument("--no-episode", action="store_true", help="only the learning curves")
    plot.set_defaults(func=_plot)

    compare = sub.add_parser(
        "compare",
        help="training runs side by side: which learned faster on the same budget (from their logs)",
    )
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--labels", nargs="+", help="one name per run (default: the directory names)")
    compare.add_argument(
        "--target", type=float, default=0.9, help="evaluation success rate to time (default 0.9)"
    )
    compare.add_argument(
        "--window", type=int, default=100_000, help="training steps before the budget to average over"
    )
    compare.add_argument("--budget", type=int, help="environment steps (default: the shortest run's)")
    compare.add_argument("--plot", metavar="FILE", help="write the overlaid curves (PNG)")
    compare.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    compare.set_defaults(func=_compare)


def _play(args: argparse.Namespace) -> int:
    from stairbot.viz.play import run_play

    result = run_play(
        args.policy,
        riser_m=args.riser_m,
        seed=args.seed,
        direction=args.direction,
        max_steps=args.max_steps,
        screenshot=Path(args.screenshot) if args.screenshot else None,
        randomized=args.randomized,
    )
    print(f"played {result.steps} steps in {result.episodes} episode(s); ended by {result.ended_by}")
    return 130 if result.ended_by == "interrupted" else 0


def _add_play(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from stairbot.viz.play import PLAY_DESCRIPTION, PLAY_EPILOG

    play = sub.add_parser(
        "play",
        help="watch a policy in the PyBullet GUI, in real time, with keys and overlays",
        description=PLAY_DESCRIPTION,
        epilog=PLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_policy_argument(play)
    play.add_argument(
        "--riser-m",
        type=float,
        help="riser height of the first episode, 0 .. 0.30 m "
        "(default: the policy's preset); up/down change it",
    )
    play.add_argument("--seed", type=int, default=0, help="episode k is reset with seed + k (default 0)")
    play.add_argument("--direction", choices=("up", "down"), help="default: the policy's preset")
    play.add_argument("--max-steps", type=int, help="quit after this many control steps (scripted runs)")
    play.add_argument(
        "--screenshot", metavar="FILE", help="on quitting, write the GUI camera's view to FILE (PNG)"
    )
    _add_condition_argument(play)
    play.set_defaults(func=_play)


def _benchmark(args: argparse.Namespace) -> int:
    from stairbot import benchmark

    result = benchmark.run_benchmark(
        args.policy,
        risers_m=args.risers,
        treads_m=args.treads,
        directions=args.directions,
        episodes=args.episodes,
        seed=args.seed,
        processes=args.processes,
        randomized=args.randomized,
        command_mps=args.command_mps,
        action_noise=args.action_noise,
        log=print,
    )
    print(result.table())
    if args.json:
        result.to_json(Path(args.json))
    if args.csv:
        result.to_csv(Path(args.csv))
    if args.plot:
        benchmark.plot_success(result, Path(args.plot))
    for path in (args.json, args.csv, args.plot):
        if path:
            print(f"wrote {path}")
    return 0


def _add_benchmark(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Defaults live in stairbot.benchmark (None here), which is only imported to run.
    parser = sub.add_parser(
        "benchmark", help="success, steps climbed, falls and time to the top over a grid of stairs"
    )
    _add_policy_argument(parser)
    parser.add_argument("--episodes", type=int, default=20, help="seeded episodes per cell (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="episode i of every cell uses seed + i")
    parser.add_argument("--processes", type=int, help="cells run in parallel (default: one per core)")
    parser.add_argument(
        "--risers",
        type=float,
        nargs="+",
        metavar="H",
        help="riser heights, m (default 0.05 .. 0.20, 0.025 apart)",
    )
    parser.add_argument(
        "--treads", type=float, nargs="+", metavar="T", help="tread depths, m (default 0.25 0.32)"
    )
    parser.add_argument("--directions", nargs="+", metavar="D", help="up and/or down (default both)")
    parser.add_argument("--json", metavar="FILE", help="write all cells and the summary as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write one row per cell as CSV")
    parser.add_argument("--plot", metavar="FILE", help="write success rate against riser height (PNG)")
    parser.add_argument(
        "--command-mps",
        type=float,
        metavar="V",
        help="fix the forward-speed command at V m/s in every cell (default: drawn per episode from "
        "the policy's own command.forward_speed_mps range)",
    )
    parser.add_argument(
        "--action-noise",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="draw every action with Gaussian noise of std SIGMA (action units, [-1, 1] scale) on the "
        "policy's mean before its clip, seeded per episode: the policy as its PPO training explores "
        "it (default 0: deterministic)",
    )
    _add_condition_argument(
        parser,
        "also run the grid under domain randomization and stair jitter, taken from the "
        "randomization section and stairs.*_jitter_m of stairs_up_randomized (up cells) and "
        "stairs_down_randomized (down cells), or of PRESET for both (e.g. stairs_up_stress); "
        "put POLICY before it",
    )
    parser.set_defaults(func=_benchmark)


def _add_clean_cells_arguments(parser: argparse.ArgumentParser, risers_m: Sequence[float]) -> None:
    """POLICY and the cells of a per-cell diagnostic on the benchmark's clean stairs (footholds,
    saturation): episodes, seed, risers (default `risers_m`), treads, directions, processes."""
    _add_policy_argument(parser)
    parser.add_argument("--episodes", type=int, default=20, help="seeded episodes per cell (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="episode i of every cell uses seed + i")
    defaults = " ".join(f"{riser:g}" for riser in risers_m)
    parser.add_argument(
        "--risers",
        type=float,
        nargs="+",
        default=list(risers_m),
        metavar="H",
        help=f"riser heights, m (default {defaults})",
    )
    parser.add_argument(
        "--treads",
        type=float,
        nargs="+",
        default=[0.25, 0.32],
        metavar="T",
        help="tread depths, m (default 0.25 0.32)",
    )
    parser.add_argument(
        "--directions", nargs="+", default=["up"], metavar="D", help="up and/or down (default up)"
    )
    parser.add_argument("--processes", type=int, help="cells run in parallel (default: one per core)")


def _clean_cells(args: argparse.Namespace) -> dict[str, Any]:
    """The cell arguments of `_add_clean_cells_arguments` as keywords of `footholds.measure` and
    `saturation.measure` (POLICY aside)."""
    return {
        "risers_m": args.risers,
        "treads_m": args.treads,
        "directions": args.directions,
        "episodes": args.episodes,
        "seed": args.seed,
        "processes": args.processes,
    }


def _footholds(args: argparse.Namespace) -> int:
    from stairbot import footholds
    from stairbot.policy_source import load_policy_source

    source = load_policy_source(args.policy)  # fails fast on a bad POLICY; names it in the title
    results = footholds.measure(
        args.policy,
        **_clean_cells(args),
        margin_m=footholds.FOOT_EDGE_MARGIN_M if args.margin_m is None else args.margin_m,
    )
    print(f"{source.name}: touchdowns on the flight, episodes {args.seed} .. {args.seed + args.episodes - 1}")
    print(footholds.table(results))
    if args.json:
        footholds.write_json(results, Path(args.json), str(args.policy), args.seed)
        print(f"wrote {args.json}")
    if args.plot:
        title = (
            f"{source.name}: touchdowns on the flight, {args.episodes} episodes per cell, seed {args.seed}"
        )
        footholds.plot(results, Path(args.plot), title)
        print(f"wrote {args.plot}")
    return 0


def _saturation(args: argparse.Namespace) -> int:
    from stairbot import saturation
    from stairbot.policy_source import load_policy_source

    source = load_policy_source(args.policy)  # fails fast on a bad POLICY; names it in the title
    results = saturation.measure(args.policy, **_clean_cells(args), command_mps=args.command_mps)
    print(
        f"{source.name}: actions at the bounds of the action space and torques at the motors' limits "
        f"on the flight, episodes "
        f"{args.seed} .. {args.seed + args.episodes - 1}"
    )
    print(saturation.table(results))
    if args.json:
        saturation.write_json(results, Path(args.json), str(args.policy), args.seed)
        print(f"wrote {args.json}")
    return 0


def _add_saturation(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "saturation",
        help="how often each joint's action sits at +-1 (the action scale's bound) and its torque at the "
        "motor's limit while the robot is on a flight",
    )
    _add_clean_cells_arguments(parser, risers_m=(0.15, 0.175))
    parser.add_argument(
        "--command-mps",
        type=float,
        metavar="V",
        help="fix the forward-speed command at V m/s (default: drawn from the policy's own range)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every cell's per-joint shares as JSON")
    parser.set_defaults(func=_saturation)


def _add_footholds(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "footholds",
        help="where the feet touch down on a flight (treads near the lip or riser, nosings, riser "
        "faces), successful and failed episodes apart",
    )
    _add_clean_cells_arguments(parser, risers_m=(0.15,))
    parser.add_argument(
        "--margin-m",
        type=float,
        help="a touchdown this close to the lip or riser (horizontally, foot centre) counts as near "
        "it (default 0.05 m, the margin of the foot_edge reward terms)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every cell's figures and histograms as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write touchdowns along the tread per cell (PNG)")
    parser.set_defaults(func=_footholds)


def _select(args: argparse.Namespace) -> int:
    from stairbot import selection

    rule = selection.SelectionRule()
    if args.quick:  # a small grid to try the command out: not a rule to choose a release by
        rule = selection.SelectionRule(
            heldout_risers_m=(0.10,),
            heldout_episodes=2,
            stress_episodes=2,
            target_cells=(("up", 0.10),),
            target_episodes=2,
        )
    known = selection.known_scores(Path(args.reuse), rule) if args.reuse else None
    result = selection.select(
        args.candidates, args.against, rule, known=known, processes=args.processes, log=print
    )
    print(result.table())
    if args.json:
        result.to_json(Path(args.json))
        print(f"wrote {args.json}")
    return 0


def _add_select(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from stairbot.selection import __doc__ as rule_text

    parser = sub.add_parser(
        "select",
        help="choose which candidate policy ships, by a fixed rule on held-out episodes",
        description=rule_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "candidates",
        nargs="+",
        metavar="CANDIDATE",
        help="policies to choose from: runs, checkpoints (RUN/checkpoints/step_N), bundles",
    )
    parser.add_argument("--against", required=True, metavar="RELEASE", help="the policy shipped now")
    parser.add_argument("--json", metavar="FILE", help="write every score, verdict and the choice")
    parser.add_argument(
        "--reuse",
        metavar="FILE",
        help="take the scores of policies already in an earlier --json FILE (same rule) instead of "
        "running them again",
    )
    parser.add_argument("--processes", type=int, help="cells run in parallel (default: one per core)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 episodes per cell on 0.10 m risers (target: up 0.10 m): to try it out",
    )
    parser.set_defaults(func=_select)


def _sensitivity(args: argparse.Namespace) -> int:
    from stairbot.sensitivity import run_sensitivity

    report = run_sensitivity(
        args.policy,
        condition_preset=args.preset,
        riser_m=args.riser_m,
        tread_m=args.tread_m,
        direction=args.direction,
        episodes=args.episodes,
        seed=args.seed,
        processes=args.processes,
        log=print,
    )
    return _print_report(report, args.json)


def _add_sensitivity(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sensitivity",
        help="one stair cell clean, under each randomization factor of a preset alone, and under all of it",
    )
    _add_policy_argument(parser)
    parser.add_argument(
        "--preset",
        default="stairs_up_stress",
        help="condition preset whose randomization and stair jitter are split into factors "
        "(default stairs_up_stress)",
    )
    parser.add_argument("--riser-m", type=float, default=0.12, help="riser height, m (default 0.12)")
    parser.add_argument("--tread-m", type=float, default=0.30, help="tread depth, m (default 0.30)")
    parser.add_argument("--direction", choices=("up", "down"), default="up", help="default up")
    parser.add_argument("--episodes", type=int, default=20, help="seeded episodes per row (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="episode i of every row uses seed + i")
    parser.add_argument("--processes", type=int, help="rows run in parallel (default: one per core)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.set_defaults(func=_sensitivity)


def _reach(args: argparse.Namespace) -> int:
    import numpy as np

    from stairbot.envs.config import ControlConfig, load_env_config
    from stairbot.robots.reach import foot_reach
    from stairbot.robots.spec import load_robot_spec
    from stairbot.training.recipe import load_recipe

    env = load_recipe(args.recipe).env if args.recipe else load_env_config(args.preset)
    spec = load_robot_spec(args.robot or env.robot)
    control = env.control
    if args.action_scale:
        given = args.action_scale
        control = ControlConfig(action_scale_rad=given[0] if len(given) == 1 else tuple(given))
    scale = control.action_scale_vector(spec.num_joints)
    print(f"{spec.name}, action scale {np.round(scale, 3).tolist()} rad (level fixed base, URDF limits):")
    for reach in foot_reach(spec, scale):
        print(
            f"  {reach.foot_link}: rises {reach.lift_m * 100:.1f} cm, {reach.ahead_m * 100:.1f} cm ahead "
            f"(thigh {reach.thigh_rad:.2f}, calf {reach.calf_rad:.2f} rad)"
        )
    return 0


def _add_reach(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "reach", help="how high each foot can rise ahead of its stance spot under an action scale"
    )
    parser.add_argument(
        "--preset", default="stairs_up", help="env preset for robot and scale (default stairs_up)"
    )
    parser.add_argument("--recipe", help="take robot and scale from this recipe's env instead")
    parser.add_argument("--robot", help="robot spec name or path (default: the preset's or recipe's)")
    parser.add_argument(
        "--action-scale",
        type=float,
        nargs="+",
        metavar="S",
        help="rad per unit action: one for all joints or one per joint (default: the preset's or recipe's)",
    )
    parser.set_defaults(func=_reach)


def _sim2sim(args: argparse.Namespace) -> int:
    from stairbot.sim2sim.runner import run_sim2sim

    report = run_sim2sim(
        args.bundle,
        riser_m=args.riser_m,
        episodes=args.episodes,
        direction=args.direction,
        seed=args.seed,
        log=print,
    )
    return _print_report(report, args.json)


def _add_sim2sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sim2sim",
        help="run an export bundle through stairbot.deploy in PyBullet and in MuJoCo, same episodes",
    )
    parser.add_argument("bundle", help="bundle directory (stairbot export --out)")
    parser.add_argument("--riser-m", type=float, help="riser height (m); default: the bundle's env.yaml")
    parser.add_argument(
        "--episodes",
        type=int,
        default=50,
        help="seeded episodes per simulator (default 50: the difference's 95%% interval is about "
        "+-12 points at 90%% success; at 20 episodes it is about +-19)",
    )
    parser.add_argument("--direction", choices=("up", "down"), help="default: the bundle's env.yaml")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--json", metavar="FILE", help="also write both simulators' results as JSON")
    parser.set_defaults(func=_sim2sim)


def _presets(args: argparse.Namespace) -> int:
    from stairbot.paths import available_presets

    for kind in ("envs", "urdf", "train"):
        print(f"{kind}: {', '.join(available_presets(kind)) or '(none)'}")
    return 0


def _average(args: argparse.Namespace) -> int:
    from stairbot.training.averaging import average_checkpoints

    out = average_checkpoints([Path(source) for source in args.sources], Path(args.out))
    print(f"wrote {out}: the mean of {len(args.sources)} checkpoints (sources in {out / 'average.json'})")
    return 0


def _distill(args: argparse.Namespace) -> int:
    from stairbot.training.distill import DISTILL_FILE, DistillSettings, distill
    from stairbot.training.routes import Route

    settings = DistillSettings(
        iterations=args.iterations,
        steps_per_iteration=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    out = distill(
        Path(args.student),
        args.teacher,
        Path(args.out),
        routes=tuple(Route.parse(conditions, teacher) for conditions, teacher in args.route or ()),
        settings=settings,
        progress=lambda line: print(line, flush=True),
    )
    print(f"wrote {out}: the distilled student (sources and iterations in {out / DISTILL_FILE})")
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    from stairbot.training.ensemble import ENSEMBLE_FILE, ensemble_checkpoints

    out = ensemble_checkpoints([Path(source) for source in args.sources], Path(args.out))
    print(f"wrote {out}: the mean action of {len(args.sources)} policies (members in {out / ENSEMBLE_FILE})")
    return 0


def _gradient_noise(args: argparse.Namespace) -> int:
    import json

    from stairbot.training.gradient_noise import format_report, measure_gradient_noise

    reports = measure_gradient_noise(
        Path(args.source), rollouts=args.rollouts, seed=args.seed, gae_lambdas=args.gae_lambda
    )
    print("\n".join(format_report(report) for report in reports))
    if args.json:
        data = {"reports": [report.to_json() for report in reports]}
        Path(args.json).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stairbot", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a policy with PPO or SAC from a recipe")
    train.add_argument("recipe", nargs="?", help="recipe name in train/ or a YAML path")
    train.add_argument("overrides", nargs="*", help="dotted recipe overrides, e.g. ppo.n_epochs=3")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    train.add_argument("--timesteps", type=int, help="total environment steps (a new total on resume)")
    train.add_argument("--seed", type=int)
    train.add_argument("--n-envs", type=int, help="parallel environments (subprocesses when > 1)")
    train.add_argument("--out", help="run directory (default runs/<recipe>-<time>)")
    train.add_argument(
        "--init-from",
        metavar="PATH",
        help="start from a run's best checkpoint, a checkpoint dir, an export bundle or 'pretrained'",
    )
    train.set_defaults(func=_train)

    evaluation = sub.add_parser("eval", help="seeded evaluation of a trained run")
    evaluation.add_argument("run_dir")
    evaluation.add_argument("--episodes", type=int, default=20)
    evaluation.add_argument("--riser-m", type=float, help="riser height (m); default: the recipe's")
    evaluation.add_argument("--direction", choices=("up", "down"), help="default: the run's env preset's")
    evaluation.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    evaluation.add_argument("--json", help="also write the report as JSON to this file")
    evaluation.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    evaluation.set_defaults(func=_eval)

    export = sub.add_parser("export", help="export a run's policy as an ONNX/TorchScript bundle")
    export.add_argument("run_dir")
    export.add_argument("--out", required=True, help="bundle directory to create")
    export.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    export.set_defaults(func=_export)

    average = sub.add_parser(
        "average",
        help="one policy from the mean weights of checkpoints that share a start (a model soup), "
        "written as a new run directory",
    )
    average.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="run directories (their best) or checkpoints (RUN/checkpoints/step_N): at least two",
    )
    average.add_argument("--out", required=True, help="run directory to create")
    average.set_defaults(func=_average)

    ensemble = sub.add_parser(
        "ensemble",
        help="one PPO policy whose action is the mean of several policies' actions (their networks "
        "side by side), written as a new run directory",
    )
    ensemble.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="PPO run directories (their best) or checkpoints (RUN/checkpoints/step_N): at least two",
    )
    ensemble.add_argument("--out", required=True, help="run directory to create")
    ensemble.set_defaults(func=_ensemble)

    distillation = sub.add_parser(
        "distill",
        help="teacher-student distillation (DAgger): fit a PPO checkpoint's actor to other policies' "
        "actions on the states it visits itself, written as a new run directory",
    )
    distillation.add_argument(
        "student", help="PPO run directory (its best) or checkpoint: the start, and the env it runs in"
    )
    distillation.add_argument(
        "--teacher",
        required=True,
        help="POLICY (run, checkpoint, bundle, pretrained) that labels every episode no --route takes",
    )
    distillation.add_argument(
        "--route",
        nargs=2,
        action="append",
        metavar=("CONDITIONS", "POLICY"),
        help="POLICY labels the episodes that meet CONDITIONS (key=value,...; keys randomized, "
        "direction, min_riser_m, max_riser_m, min_tread_m, max_tread_m) instead of --teacher; "
        "repeatable, the first match labels an episode",
    )
    distillation.add_argument("--out", required=True, help="run directory to create")
    distillation.add_argument("--iterations", type=int, default=4, help="collect-then-fit rounds")
    distillation.add_argument("--steps", type=int, default=20_000, help="control steps collected per round")
    distillation.add_argument("--epochs", type=int, default=5, help="passes over all data per round")
    distillation.add_argument("--batch-size", type=int, default=512)
    distillation.add_argument("--learning-rate", type=float, default=1e-4)
    distillation.add_argument("--seed", type=int, default=0, help="first episode seed")
    distillation.set_defaults(func=_distill)

    noise = sub.add_parser(
        "gradient-noise",
        help="how much of a PPO run's policy gradient is signal: its noise scale (the batch size "
        "past which more samples per update stop paying) at a checkpoint, in the run's own envs",
    )
    noise.add_argument("source", metavar="SOURCE", help="a PPO run directory (its best) or checkpoint")
    noise.add_argument("--rollouts", type=int, default=16, help="rollouts to collect (>= 2)")
    noise.add_argument("--seed", type=int, default=0, help="env and sampling seed")
    noise.add_argument(
        "--gae-lambda",
        type=float,
        nargs="+",
        default=[],
        metavar="L",
        help="GAE lambdas to measure on the same rollouts, beside the run's own",
    )
    noise.add_argument("--json", help="also write the reports as JSON to this file")
    noise.set_defaults(func=_gradient_noise)

    demo = sub.add_parser("demo", help="run the env with a stand-still policy and report")
    demo.add_argument("--preset", default="stairs_up", help="env preset name or YAML path")
    demo.add_argument("--episodes", type=int, default=3)
    demo.add_argument("--riser-m", type=float, default=None, help="riser height override (m)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    bench = sub.add_parser(
        "bench",
        help="env steps/s beside a raw PyBullet loop (env), PPO beside collection (train), "
        "or a bundle's per-call latency in each runtime (deploy)",
    )
    bench.add_argument("what", nargs="?", choices=("env", "train", "deploy"), default="env")
    bench.add_argument("bundle", nargs="?", help="deploy: the bundle directory (stairbot export --out)")
    bench.add_argument("--calls", type=int, default=5000, help="deploy: timed calls per runtime")
    bench.add_argument("--preset", default="stairs_up", help="env: the env preset")
    bench.add_argument("--recipe", default="ppo_stairs", help="train: the PPO recipe")
    bench.add_argument("--rollouts", type=int, default=3, help="train: PPO rollouts per measurement")
    bench.add_argument(
        "--n-envs", type=int, nargs="+", help="train: env counts (default 1, 2, one and two per core)"
    )
    bench.add_argument("--steps", type=int, default=2000, help="control steps per process")
    bench.add_argument("--processes", type=int, default=None, help="default: one per core")
    bench.add_argument("--repeats", type=int, default=None, help="measurements per row (median)")
    bench.set_defaults(func=_bench)

    _add_record_and_plot(sub)
    _add_play(sub)
    _add_benchmark(sub)
    _add_footholds(sub)
    _add_saturation(sub)
    _add_sensitivity(sub)
    _add_reach(sub)
    _add_sim2sim(sub)
    _add_select(sub)

    presets = sub.add_parser("presets", help="list shipped env presets, robots and recipes")
    presets.set_defaults(func=_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may come after options (`train ppo --timesteps 9 ppo.n_epochs=3`); argparse hands
    # positionals after an option back as extras.
    args, extras = parser.parse_known_args(argv)
    if extras:
        if args.command != "train" or any("=" not in item or item.startswith("-") for item in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.overrides = [*args.overrides, *extras]
    try:
        return int(args.func(args))
    except StairbotError as exc:
        print(f"stairbot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
