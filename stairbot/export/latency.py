"""`stairbot bench deploy BUNDLE`: how long one policy call takes in each runtime a controller could use.

A controller calls the policy once per control period (20 ms at 50 Hz) on one observation, so what
matters is the latency of a single batch-1 float32 call, not throughput. Each runtime below is first
run on every golden input of the bundle (which checks it computes the right function and warms it
up), then on `warmup` more calls, then timed call by call with `time.perf_counter_ns` over `calls`
calls that cycle through the golden inputs. The table gives the median and the 99th percentile.

    onnxruntime   policy.onnx, InferenceSession with 1 intra-op and 1 inter-op thread, sequential
    deploy        stairbot.deploy's `load_bundle(...).act(obs)` on an (N,) observation: the same
                  session plus the runtime's checks (shape, finite values), what a Python controller pays
    torchscript   policy.pt, torch.jit.load, torch.set_num_threads(1), under torch.inference_mode()
    numpy         PolicyGraph.forward on weights.npz (the float64 reference)
    C, ctypes     policy.h compiled into a shared library (cc -std=c99 -O2) and called through ctypes:
                  the figure includes the ctypes call (argument conversion, about a microsecond)
    C, in C       the same function timed in C with clock_gettime around each call: what a C
                  controller pays

The Python-side figures include the timer's own cost (tens of ns). An older bundle without policy.h
gets one generated from its weights.npz for the C rows. Speed targets live here, never in tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stairbot.errors import StairbotError

# The target for the runtime a controller uses (a 50 Hz loop leaves 20 ms; the rest is the
# robot's own work).
TARGET_MEDIAN_US = 50.0
DEFAULT_CALLS = 5000
C_FLAGS = ("-std=c99", "-O2", "-fPIC", "-shared")
_REQUIRED = ("policy.json", "policy.onnx", "policy.pt", "weights.npz", "golden.npz")

_WRAPPER = """\
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#include "policy.h"

void bench_policy(const float *obs, float *joint_targets)
{
    stairbot_policy(obs, joint_targets);
}

static long long bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* `warmup` untimed calls, then `calls` timed ones, cycling through `count` observations. */
void bench_timed(const float *obs, int count, int warmup, int calls, float *joint_targets, long long *ns)
{
    int i;
    for (i = 0; i < warmup; ++i) {
        stairbot_policy(obs + (long)(i % count) * STAIRBOT_OBS_SIZE, joint_targets);
    }
    for (i = 0; i < calls; ++i) {
        const float *x = obs + (long)(i % count) * STAIRBOT_OBS_SIZE;
        long long start = bench_now_ns();
        stairbot_policy(x, joint_targets);
        ns[i] = bench_now_ns() - start;
    }
}
"""


@dataclass(frozen=True)
class Latency:
    """One runtime's per-call latency.

    Attributes:
        runtime: what was timed.
        calls: timed calls.
        median_us, p99_us: median and 99th percentile of a call, microseconds.
        max_abs_err_rad: largest |output - golden output| over the bundle's golden inputs.
        note: what the figure includes.
    """

    runtime: str
    calls: int
    median_us: float
    p99_us: float
    max_abs_err_rad: float
    note: str = ""


def find_c_compiler() -> str | None:
    """$CC, else the first of cc, gcc, clang on the PATH; None if there is none."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _latency(runtime: str, ns: np.ndarray, error: float, note: str = "") -> Latency:
    us = np.asarray(ns, np.float64) / 1e3
    return Latency(runtime, len(us), float(np.median(us)), float(np.percentile(us, 99)), error, note)


def _time_calls(fn: Callable[[Any], object], inputs: list[Any], warmup: int, calls: int) -> np.ndarray:
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    ns = np.empty(calls, np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        x = inputs[i % len(inputs)]
        start = clock()
        fn(x)
        ns[i] = clock() - start
    return ns


def _max_error(fn: Callable[[Any], object], inputs: list[Any], golden: np.ndarray) -> float:
    outputs = np.concatenate([np.asarray(fn(x), np.float64).reshape(1, -1) for x in inputs])
    return float(np.max(np.abs(outputs - golden)))


@contextmanager
def _onnxruntime(bundle: Path, io: dict[str, Any]) -> Iterator[Callable[[np.ndarray], object]]:
    from stairbot.deploy import onnx_session

    session = onnx_session(bundle / "policy.onnx")  # the session stairbot.deploy runs
    outputs, name = [io["output"]["name"]], io["input"]["name"]
    yield lambda x: session.run(outputs, {name: x})[0]


@contextmanager
def _torchscript(bundle: Path) -> Iterator[Callable[[np.ndarray], object]]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module = torch.jit.load(str(bundle / "policy.pt"), map_location="cpu").eval()
        with torch.inference_mode():
            yield lambda x: module(torch.from_numpy(x))
    finally:
        torch.set_num_threads(threads)


def _compile_policy(bundle: Path, folder: Path, compiler: str) -> ctypes.CDLL:
    """The bundle's policy.h (or one made from weights.npz for a bundle without it) with the bench
    wrapper, as a shared library in `folder`."""
    from stairbot.export.c_source import to_c_header
    from stairbot.export.policy_graph import load_npz

    header = folder / "policy.h"
    if (bundle / "policy.h").is_file():
        shutil.copyfile(bundle / "policy.h", header)
    else:
        metadata = json.loads((bundle / "policy.json").read_text())
        to_c_header(load_npz(bundle / "weights.npz"), header, metadata)
    (folder / "bench.c").write_text(_WRAPPER)
    library = folder / "libstairbot_policy.so"
    done = subprocess.run(
        [compiler, *C_FLAGS, "-o", str(library), str(folder / "bench.c"), "-lm"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StairbotError(f"compiling policy.h with {compiler} failed:\n{done.stderr.strip()}")
    lib = ctypes.CDLL(str(library))
    floats = ctypes.POINTER(ctypes.c_float)
    lib.bench_policy.argtypes = [floats, floats]
    lib.bench_policy.restype = None
    lib.bench_timed.argtypes = [
        floats,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        floats,
        ctypes.POINTER(ctypes.c_longlong),
    ]
    lib.bench_timed.restype = None
    return lib


def _c_rows(
    bundle: Path, inputs: np.ndarray, golden: np.ndarray, *, warmup: int, calls: int, compiler: str
) -> list[Latency]:
    floats = ctypes.POINTER(ctypes.c_float)
    with tempfile.TemporaryDirectory(prefix="stairbot-bench-") as folder:
        lib = _compile_policy(bundle, Path(folder), compiler)
        out = np.zeros(golden.shape[1], np.float32)
        out_ptr = out.ctypes.data_as(floats)
        rows = [np.ascontiguousarray(x) for x in inputs]
        pointers = [x.ctypes.data_as(floats) for x in rows]

        def call(pointer: Any) -> np.ndarray:
            lib.bench_policy(pointer, out_ptr)
            return out

        error = _max_error(call, pointers, golden)
        ns = _time_calls(call, pointers, warmup, calls)
        in_c = np.empty(calls, np.int64)
        flat = np.ascontiguousarray(inputs, np.float32)
        lib.bench_timed(
            flat.ctypes.data_as(floats),
            len(flat),
            warmup,
            calls,
            out_ptr,
            in_c.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong)),
        )
    flags = " ".join(C_FLAGS[:2])
    return [
        _latency("C policy.h via ctypes", ns, error, f"{flags}; includes the ctypes call"),
        _latency("C policy.h, timed in C", in_c, error, f"{flags}; clock_gettime per call"),
    ]


def _read_bundle(bundle: Path, calls: int) -> dict[str, Any]:
    """policy.json of `bundle`, after checking the arguments."""
    if calls < 1:
        raise StairbotError(f"calls must be at least 1, got {calls}")
    missing = [name for name in _REQUIRED if not (bundle / name).is_file()]
    if missing:
        raise StairbotError(f"{bundle} is not a stairbot bundle (missing {', '.join(missing)})")
    metadata: dict[str, Any] = json.loads((bundle / "policy.json").read_text())
    return metadata


def measure(
    bundle: Path, calls: int = DEFAULT_CALLS, warmup: int | None = None, compiler: str | None = None
) -> list[Latency]:
    """Per-call latency of every runtime on `bundle` (see the module docstring).

    Args:
        bundle: a bundle directory from `stairbot export`.
        calls: timed calls per runtime.
        warmup: untimed calls before them, after the golden check (default calls // 10).
        compiler: the C compiler; default `find_c_compiler()`. Without one the C rows are left out.
    """
    from stairbot.deploy import BundleError, load_bundle
    from stairbot.export.policy_graph import load_npz

    metadata = _read_bundle(bundle, calls)
    warmup = calls // 10 if warmup is None else warmup
    with np.load(bundle / "golden.npz", allow_pickle=False) as data:
        inputs = np.asarray(data["inputs"], np.float32)
        golden = np.asarray(data["outputs"], np.float64)
    batch1 = [np.ascontiguousarray(x[None, :]) for x in inputs]  # what a controller feeds: (1, N)
    try:
        policy = load_bundle(bundle)  # checks every file's hash and the golden vectors first
    except BundleError as exc:
        raise StairbotError(f"{bundle}: {exc}") from exc

    results = []
    with _onnxruntime(bundle, metadata["io"]) as fn:
        error = _max_error(fn, batch1, golden)
        results.append(_latency("onnxruntime (1 thread)", _time_calls(fn, batch1, warmup, calls), error))
    flat = list(inputs)
    results.append(
        _latency(
            "stairbot.deploy act()",
            _time_calls(policy.act, flat, warmup, calls),
            _max_error(policy.act, flat, golden),
            "onnxruntime + the runtime's checks",
        )
    )
    with _torchscript(bundle) as fn:
        error = _max_error(fn, batch1, golden)
        results.append(
            _latency(
                "torchscript (1 thread)",
                _time_calls(fn, batch1, warmup, calls),
                error,
                "from_numpy + forward, inference_mode",
            )
        )
    graph = load_npz(bundle / "weights.npz")
    error = _max_error(graph.forward, batch1, golden)
    results.append(
        _latency(
            "numpy (PolicyGraph.forward)",
            _time_calls(graph.forward, batch1, warmup, calls),
            error,
            "float64 reference",
        )
    )
    compiler = compiler or find_c_compiler()
    if compiler is not None:
        results += _c_rows(bundle, inputs, golden, warmup=warmup, calls=calls, compiler=compiler)
    return results


def table(results: list[Latency]) -> str:
    """The results as a fixed-width text table."""
    lines = [f"{'runtime':<28}{'median us':>11}{'p99 us':>10}{'max err rad':>13}  note"]
    for r in results:
        row = f"{r.runtime:<28}{r.median_us:>11.1f}{r.p99_us:>10.1f}{r.max_abs_err_rad:>13.1e}  {r.note}"
        lines.append(row.rstrip())
    return "\n".join(lines)


def run(bundle: Path, calls: int = DEFAULT_CALLS) -> list[Latency]:
    """Measure `bundle` (see `measure`) and print the table, with the target for the runtimes a
    controller uses (onnxruntime bare and through stairbot.deploy, or the C header)."""
    metadata = _read_bundle(bundle, calls)
    model, io = metadata.get("model", {}), metadata["io"]
    compiler = find_c_compiler()
    shapes = [io.get(key, {}).get("shape", "?") for key in ("input", "output")]
    print(
        f"bundle {bundle}: {shapes[0]} -> {shapes[1]}, "
        f"net_arch {model.get('net_arch', '?')} {model.get('activation', '')}; batch 1, float32, "
        f"{calls} timed calls per runtime"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    results = measure(bundle, calls, compiler=compiler)
    print(table(results))
    if compiler is None:
        print("no C compiler found ($CC, cc, gcc, clang): the C rows are left out")
    for r in results:
        if r.runtime.startswith(("onnxruntime", "stairbot.deploy", "C policy.h, timed")):
            verdict = "meets" if r.median_us <= TARGET_MEDIAN_US else "misses"
            print(f"{r.runtime}: median {r.median_us:.1f} us {verdict} the {TARGET_MEDIAN_US:.0f} us target")
    return results
