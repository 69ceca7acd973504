"""A PolicyGraph as one self-contained C header (`policy.h`) for microcontroller-class controllers.

The header holds the whole policy as `static const float` arrays (normalization, every layer's
weights row-major and biases, default pose, action scale), `#define`s for the sizes, and one inference
function with no allocation and no dependency beyond <math.h> (and only when the graph needs it:
`expm1f` for ELU, `tanhf` for tanh layers or the tanh squash; ReLU with the clip squash needs nothing):

    #include "policy.h"
    float obs[STAIRBOT_OBS_SIZE], q_target[STAIRBOT_NUM_JOINTS];
    stairbot_policy(obs, q_target);                 /* static scratch: not reentrant */
    stairbot_policy_r(obs, q_target, scratch);      /* caller's scratch[STAIRBOT_SCRATCH_SIZE] */

It computes `PolicyGraph.forward` in float32 with the operations of policy.onnx's graph, in its order
(subtract the mean, divide by the std, clip, dense layers, activation, squash, scale, add the default
pose); only the sums inside a layer may be accumulated in another order than ONNX Runtime's, a few
float32 ulps, far inside the bundle's golden tolerance. Floats are printed with 9 significant digits, which
round-trips every float32. The comments at the top carry the joint order, units, observation layout
and provenance when `to_c_header` is given the bundle metadata (policy.json's content).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stairbot.export.policy_graph import Activation, PolicyGraph, Squash

DEFAULT_PREFIX = "stairbot"
_VALUES_PER_LINE = 8
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def c_float(value: float) -> str:
    """`value` as a C float literal that parses back to the same float32 (`-0.5f`, `1e-05f`, `2.0f`)."""
    v = float(np.float32(value))
    if not math.isfinite(v):
        raise ValueError(f"cannot write a non-finite value ({v}) into a C header")
    text = f"{v:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"  # `1f` and `-0f` are not C floats
    return text + "f"


def _array_body(values: Iterable[float], indent: str) -> str:
    items = [c_float(v) for v in values]
    lines = [
        indent + ", ".join(items[i : i + _VALUES_PER_LINE]) + ","
        for i in range(0, len(items), _VALUES_PER_LINE)
    ]
    return "\n".join(lines)


def _vector(name: str, size_macro: str, values: np.ndarray) -> str:
    return f"static const float {name}[{size_macro}] = {{\n{_array_body(values.ravel(), '    ')}\n}};\n"


def _matrix(name: str, rows_macro: str, cols_macro: str, values: np.ndarray) -> str:
    rows = "\n".join(f"    {{\n{_array_body(row, '        ')}\n    }}," for row in values)
    return f"static const float {name}[{rows_macro}][{cols_macro}] = {{\n{rows}\n}};\n"


def _comment_text(text: Any) -> str:
    """Plain ASCII that cannot close the comment it sits in."""
    return str(text).encode("ascii", "backslashreplace").decode().replace("*/", "* /")


def _header_comment(graph: PolicyGraph, metadata: Mapping[str, Any] | None, p: str, m: str) -> str:
    libm = _libm_functions(graph)
    mean = (
        "W x + b" if graph.mean_clip is None else f"clip(W x + b, -{graph.mean_clip:g}, {graph.mean_clip:g})"
    )
    squash = f"clip({mean}, -1, 1)" if graph.squash is Squash.CLIP else f"tanh({mean})"
    lines = [
        "policy.h: a stairbot policy as one dependency-free C99 header (generated; do not edit).",
        "",
        f"    float obs[{m}_OBS_SIZE], q_target[{m}_NUM_JOINTS];",
        f"    {p}_policy(obs, q_target);              uses a static scratch: not reentrant",
        f"    {p}_policy_r(obs, q_target, scratch);   scratch: your float[{m}_SCRATCH_SIZE]",
        "",
        "It computes, in float32, the function policy.onnx, policy.pt and weights.npz compute:",
        f"    x = clip((obs - {p}_obs_mean) / {p}_obs_std, -{p}_norm_clip, {p}_norm_clip)",
        f"    x = {graph.activation.value}(W x + b)     for each of the {len(graph.hidden)} hidden layers",
        f"    a = {squash}     the output layer",
        f"    q_target = {p}_default_pose_rad + {p}_action_scale_rad * a",
        "No allocation, a few words of stack (the scratch is the caller's or static), and from <math.h> "
        + (f"only {', '.join(libm)} (link with -lm)." if libm else "nothing."),
        "Include it from one .c file: the arrays are static, so each file that includes it gets a copy.",
    ]
    if metadata is None:
        lines += [
            "",
            f"obs: {graph.observation_size} floats, fed raw (the normalization is inside).",
            f"q_target: {graph.action_size} joint position targets, rad, in the policy's joint order.",
        ]
        return _box(lines)

    robot, action = metadata.get("robot", {}), metadata.get("action", {})
    control, observation = metadata.get("control", {}), metadata.get("observation", {})
    model, provenance = metadata.get("model", {}), metadata.get("provenance", {})
    golden = metadata.get("golden", {})
    lines += [
        "",
        f"Produced by {provenance.get('exported_by', 'stairbot')} from the {model.get('checkpoint', '?')} "
        f"checkpoint of {model.get('algorithm', '?')} run {provenance.get('run_dir', '?')}",
        f"(net_arch {model.get('net_arch', '?')}, {model.get('num_timesteps', '?')} training steps). "
        f"It reproduces the bundle's golden.npz to {golden.get('atol_rad', '?')} rad.",
        "",
        f"q_target[{m}_NUM_JOINTS]: joint position targets, rad, robot {robot.get('name', '?')}, "
        "in this order",
        f"(action scale {action.get('scale_rad', '?')} rad per unit, squash {graph.squash.value}):",
        f"    {'index':>5}  {'joint':<20}{'default rad':>12}{'kp N.m/rad':>12}{'kd N.m.s/rad':>14}"
        f"{'limit N.m':>11}",
    ]
    names = robot.get("joint_names") or [f"joint {i}" for i in range(graph.action_size)]
    kp, kd = robot.get("kp_nm_per_rad"), robot.get("kd_nms_per_rad")
    limit = robot.get("torque_limits_nm")
    for i, name in enumerate(names):
        lines.append(
            f"    {i:>5}  {name:<20}{graph.default_pose_rad[i]:>12.4f}{_item(kp, i):>12}{_item(kd, i):>14}"
            f"{_item(limit, i):>11}"
        )
    if control:
        lines += [
            f"Call it every {control.get('dt_s')} s; between calls a PD loop at "
            f"{control.get('physics_dt_s')} s (decimation {control.get('decimation')}) tracks q_target:",
            "    tau = clip(kp * (q_target - q) - kd * qd, -limit, limit)",
        ]
    lines += [
        "",
        f"obs[{m}_OBS_SIZE]: the env's observation, fed raw (the normalization is inside): each term is the",
        f"raw value times its scale, the whole clipped to +-{observation.get('clip', '?')}.",
        f"    {'start':>5}  {'size':>4}  {'scale':>6}  term",
    ]
    for term in observation.get("terms", []):
        lines.append(
            f"    {term.get('start', '?'):>5}  {term.get('size', '?'):>4}  {_num(term.get('scale')):>6}  "
            f"{term.get('name', '?')}: {term.get('description', '')}"
        )
    scan = observation.get("height_scan")
    if scan:
        lines += [
            f"height_scan points, base frame, m, {scan.get('order', '')}:",
            f"    x {scan.get('x_points_m')}",
            f"    y {scan.get('y_points_m')}",
        ]
    history = observation.get("history")
    if history:
        lines += [
            f"proprio_history: keep the first {history.get('frame_size')} floats of each obs fed to the",
            f"    policy; the next obs repeats the last {history.get('steps')} of them, "
            f"{history.get('order')} (an episode's first obs repeats its own).",
        ]
    if observation.get("command"):
        lines.append(f"command: {observation['command']}")
    return _box(lines)


def _item(values: Any, i: int) -> str:
    return _num(values[i]) if values is not None and i < len(values) else "?"


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def _box(lines: list[str]) -> str:
    body = "\n".join((" * " + _comment_text(line)).rstrip() for line in lines)
    return f"/*\n{body}\n */\n"


def _libm_functions(graph: PolicyGraph) -> list[str]:
    needed = []
    if graph.hidden and graph.activation is Activation.ELU:
        needed.append("expm1f")
    if (graph.hidden and graph.activation is Activation.TANH) or graph.squash is Squash.TANH:
        needed.append("tanhf")
    return needed


def c_header_source(
    graph: PolicyGraph, metadata: Mapping[str, Any] | None = None, *, prefix: str = DEFAULT_PREFIX
) -> str:
    """The text of policy.h for `graph` (see the module docstring).

    Args:
        graph: the policy.
        metadata: policy.json's content, for the comments (joint order, observation layout,
            provenance); optional.
        prefix: a C identifier that starts every name the header defines (`stairbot_policy`,
            `STAIRBOT_OBS_SIZE`), so that several policies can live in one firmware.
    """
    if not _IDENTIFIER.match(prefix):
        raise ValueError(f"prefix must be a C identifier (letters, digits, _), got {prefix!r}")
    p, m = prefix.lower(), prefix.upper()
    widths = [int(layer.bias.shape[0]) for layer in graph.hidden]
    # Ping-pong scratch: the normalized observation and odd hidden layers live in buffer A, even
    # hidden layers in buffer B; the output layer writes straight into joint_targets.
    size_a = max([graph.observation_size, *widths[1::2]])
    size_b = max(widths[0::2], default=0)
    libm = _libm_functions(graph)

    out = [_header_comment(graph, metadata, p, m)]
    out += [f"#ifndef {m}_POLICY_H", f"#define {m}_POLICY_H", ""]
    if libm:
        out += [f"#include <math.h> /* {', '.join(libm)} */", ""]
    out += [
        f"#define {m}_OBS_SIZE {graph.observation_size}",
        f"#define {m}_NUM_JOINTS {graph.action_size}",
        f"#define {m}_NUM_HIDDEN {len(graph.hidden)}",
        *(f"#define {m}_HIDDEN{i}_SIZE {w}" for i, w in enumerate(widths)),
        "/* Floats of scratch the inference needs: the normalized observation and each hidden layer's",
        " * output, in two ping-pong buffers. */",
        f"#define {m}_SCRATCH_SIZE {size_a + size_b}",
        f'#define {m}_ACTIVATION "{graph.activation.value}"',
        f'#define {m}_SQUASH "{graph.squash.value}"',
        "",
        "/* Normalized observations are clipped to [-norm_clip, norm_clip]. */",
        f"static const float {p}_norm_clip = {c_float(graph.obs_clip)};",
        "/* Observation normalization: (obs - mean) / std; std already includes the epsilon. */",
        _vector(f"{p}_obs_mean", f"{m}_OBS_SIZE", graph.obs_mean),
        _vector(f"{p}_obs_std", f"{m}_OBS_SIZE", graph.obs_std),
    ]
    inputs = f"{m}_OBS_SIZE"
    for i, layer in enumerate(graph.hidden):
        rows = f"{m}_HIDDEN{i}_SIZE"
        out += [
            f"/* Hidden layer {i}: weight[out][in] (row-major) and bias[out]; "
            f"then {graph.activation.value}. */",
            _matrix(f"{p}_hidden{i}_weight", rows, inputs, layer.weight),
            _vector(f"{p}_hidden{i}_bias", rows, layer.bias),
        ]
        inputs = rows
    if graph.mean_clip is not None:
        out += [
            "/* The output layer's values are clipped to [-mean_clip, mean_clip] before the squash. */",
            f"static const float {p}_mean_clip = {c_float(graph.mean_clip)};",
        ]
    out += [
        f"/* Output layer: weight[out][in] (row-major) and bias[out]; then {graph.squash.value}. */",
        _matrix(f"{p}_output_weight", f"{m}_NUM_JOINTS", inputs, graph.output.weight),
        _vector(f"{p}_output_bias", f"{m}_NUM_JOINTS", graph.output.bias),
        "/* Joint targets = default_pose_rad + action_scale_rad * squashed action, rad. */",
        _vector(f"{p}_default_pose_rad", f"{m}_NUM_JOINTS", graph.default_pose_rad),
        _vector(f"{p}_action_scale_rad", f"{m}_NUM_JOINTS", graph.action_scale_rad),
        _functions(graph, p, m, size_a),
        f"#endif /* {m}_POLICY_H */",
        "",
    ]
    return "\n".join(out)


def _functions(graph: PolicyGraph, p: str, m: str, size_a: int) -> str:
    activation = {
        Activation.ELU: "x[i] > 0.0f ? x[i] : expm1f(x[i])",
        Activation.RELU: "x[i] > 0.0f ? x[i] : 0.0f",
        Activation.TANH: "tanhf(x[i])",
    }[graph.activation]
    mean = "a_i" if graph.mean_clip is None else f"{p}_clip(a_i, -{p}_mean_clip, {p}_mean_clip)"
    squash = f"tanhf({mean})" if graph.squash is Squash.TANH else f"{p}_clip({mean}, -1.0f, 1.0f)"
    layers, source, inputs = [], "a", f"{m}_OBS_SIZE"
    for i in range(len(graph.hidden)):
        target, rows = ("b" if source == "a" else "a"), f"{m}_HIDDEN{i}_SIZE"
        layers += [
            f"    {p}_dense(&{p}_hidden{i}_weight[0][0], {p}_hidden{i}_bias, {source}, {target}, "
            f"{inputs}, {rows});",
            f"    {p}_activate({target}, {rows});",
        ]
        source, inputs = target, rows
    activate_fn = (
        f"""
/* The hidden layers' activation ({graph.activation.value}), in place. */
static inline void {p}_activate(float *x, int n)
{{
    int i;
    for (i = 0; i < n; ++i) {{
        x[i] = {activation};
    }}
}}
"""
        if graph.hidden
        else ""
    )
    return f"""static inline float {p}_clip(float x, float lo, float hi)
{{
    return x < lo ? lo : (x > hi ? hi : x);
}}

/* y[o] = sum_i w[o][i] x[i] + b[o] for o < out (w row-major, out x in). Four rows at a time: four
 * independent sums, each still over i in order (so the same result as one row at a time), keep the
 * floating-point pipeline busy. */
static inline void {p}_dense(const float *w, const float *b, const float *x, float *y, int in, int out)
{{
    int o = 0, i;
    for (; o + 4 <= out; o += 4, w += 4 * in) {{
        const float *w1 = w + in, *w2 = w1 + in, *w3 = w2 + in;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (i = 0; i < in; ++i) {{
            s0 += w[i] * x[i];
            s1 += w1[i] * x[i];
            s2 += w2[i] * x[i];
            s3 += w3[i] * x[i];
        }}
        y[o] = s0 + b[o];
        y[o + 1] = s1 + b[o + 1];
        y[o + 2] = s2 + b[o + 2];
        y[o + 3] = s3 + b[o + 3];
    }}
    for (; o < out; ++o, w += in) {{
        float s = 0.0f;
        for (i = 0; i < in; ++i) {{
            s += w[i] * x[i];
        }}
        y[o] = s + b[o];
    }}
}}
{activate_fn}
/* The policy: obs, the raw observation -> joint_targets, rad. `scratch` holds {m}_SCRATCH_SIZE floats,
 * is overwritten, and must not overlap obs or joint_targets. Reentrant. */
static inline void {p}_policy_r(const float obs[{m}_OBS_SIZE], float joint_targets[{m}_NUM_JOINTS],
                                float scratch[{m}_SCRATCH_SIZE])
{{
    float *a = scratch, *b = scratch + {size_a};
    int i;
    (void)b;
    for (i = 0; i < {m}_OBS_SIZE; ++i) {{
        a[i] = {p}_clip((obs[i] - {p}_obs_mean[i]) / {p}_obs_std[i], -{p}_norm_clip, {p}_norm_clip);
    }}
{chr(10).join(layers)}
    {p}_dense(&{p}_output_weight[0][0], {p}_output_bias, {source}, joint_targets, {inputs}, {m}_NUM_JOINTS);
    for (i = 0; i < {m}_NUM_JOINTS; ++i) {{
        float a_i = joint_targets[i];
        joint_targets[i] = {p}_default_pose_rad[i] + {p}_action_scale_rad[i] * {squash};
    }}
}}

/* The policy with a static scratch buffer ({m}_SCRATCH_SIZE floats): not reentrant, so one caller
 * at a time (not from an interrupt that can preempt another call). */
static inline void {p}_policy(const float obs[{m}_OBS_SIZE], float joint_targets[{m}_NUM_JOINTS])
{{
    static float scratch[{m}_SCRATCH_SIZE];
    {p}_policy_r(obs, joint_targets, scratch);
}}

"""


def to_c_header(
    graph: PolicyGraph,
    path: Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    """Write `graph` as the self-contained C header `path` (see `c_header_source`)."""
    Path(path).write_text(c_header_source(graph, metadata, prefix=prefix))
