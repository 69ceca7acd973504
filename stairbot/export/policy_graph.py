"""A trained policy as plain numpy: the one description every export backend is built from.

    raw observation (N,)                       what the env (or deploy's ObservationBuilder) produces
      -> clip((obs - mean) / std, +-obs_clip)  the run's observation normalization
      -> hidden layers: act(W x + b)           the actor MLP (ELU, ReLU or tanh)
      -> a = W x + b                           action mean
      -> clip(a, +-mean_clip)                  only SAC with gSDE (SB3 clips that actor's mean)
      -> squash(a): clip to [-1, 1] (PPO) or tanh (SAC), exactly what the env applies
      -> default_pose + action_scale * a       joint position targets (J,), rad, the robot's joint order

ONNX, TorchScript, C and the numpy reference (`forward`) all compute this from the same arrays, which
a bundle also carries as `weights.npz` (`save_npz` / `load_npz`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Activation(str, enum.Enum):
    ELU = "elu"
    RELU = "relu"
    TANH = "tanh"


class Squash(str, enum.Enum):
    CLIP = "clip"  # PPO: a Gaussian mean, clipped to the action space like SB3's predict()
    TANH = "tanh"  # SAC: a squashed Gaussian's deterministic action


@dataclass(frozen=True)
class Layer:
    weight: FloatArray  # (out, in)
    bias: FloatArray  # (out,)


@dataclass(frozen=True)
class PolicyGraph:
    """Everything between a raw observation and joint targets.

    Attributes:
        obs_mean, obs_std: (N,) normalization; std already includes the epsilon.
        obs_clip: normalized observations are clipped to [-obs_clip, obs_clip].
        hidden: hidden layers, each followed by `activation`.
        output: the action layer (J outputs), followed by `squash`.
        mean_clip: the output is clipped to [-mean_clip, mean_clip] before the squash (SB3's
            SAC actor with gSDE, `use_sde`, does that with a Hardtanh); None: not clipped.
        default_pose_rad: (J,) joint targets for a zero action.
        action_scale_rad: (J,) rad per unit action.
    """

    obs_mean: FloatArray
    obs_std: FloatArray
    obs_clip: float
    hidden: tuple[Layer, ...]
    output: Layer
    activation: Activation
    squash: Squash
    default_pose_rad: FloatArray
    action_scale_rad: FloatArray
    mean_clip: float | None = None

    @property
    def observation_size(self) -> int:
        return int(self.obs_mean.shape[0])

    @property
    def action_size(self) -> int:
        return int(self.output.bias.shape[0])

    def forward(self, observations: NDArray[Any]) -> FloatArray:
        """Joint targets (B, J) for observations (B, N), in float64 (the reference)."""
        x = np.clip(
            (np.asarray(observations, np.float64) - self.obs_mean) / self.obs_std,
            -self.obs_clip,
            self.obs_clip,
        )
        for layer in self.hidden:
            x = _activate(x @ layer.weight.T + layer.bias, self.activation)
        a = x @ self.output.weight.T + self.output.bias
        if self.mean_clip is not None:
            a = np.clip(a, -self.mean_clip, self.mean_clip)
        a = np.clip(a, -1.0, 1.0) if self.squash is Squash.CLIP else np.tanh(a)
        return self.default_pose_rad + self.action_scale_rad * a


def _activate(x: FloatArray, activation: Activation) -> FloatArray:
    if activation is Activation.ELU:
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if activation is Activation.RELU:
        return np.maximum(x, 0.0)
    return np.tanh(x)


def _linear_layers(sequential: Any) -> list[Layer]:
    import torch

    return [
        Layer(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy())
        for m in sequential
        if isinstance(m, torch.nn.Linear)
    ]


def from_sb3(
    model: Any,
    normalization: dict[str, np.ndarray],
    default_pose_rad: FloatArray,
    action_scale_rad: FloatArray,
    activation: Activation,
) -> PolicyGraph:
    """Extract the deterministic actor of an SB3 PPO or SAC model (MLP policies) with its run's
    normalization statistics; `action_scale_rad` is (J,) rad per unit action."""
    import torch
    from stable_baselines3 import PPO, SAC

    mean_clip = None
    if isinstance(model, PPO):
        hidden = _linear_layers(model.policy.mlp_extractor.policy_net)
        (output,) = _linear_layers([model.policy.action_net])
        squash = Squash.CLIP
    elif isinstance(model, SAC):
        hidden = _linear_layers(model.policy.actor.latent_pi)
        mu = model.policy.actor.mu
        # With gSDE, SB3 makes mu Sequential(Linear, Hardtanh(-clip_mean, clip_mean)).
        mu_modules = list(mu) if isinstance(mu, torch.nn.Sequential) else [mu]
        (output,) = _linear_layers(mu_modules)
        clips = [m for m in mu_modules if isinstance(m, torch.nn.Hardtanh)]
        if clips and (clips[0].min_val != -clips[0].max_val):
            raise TypeError(f"SAC actor mean clipped to an asymmetric range {clips[0]}: not exportable")
        mean_clip = float(clips[0].max_val) if clips else None
        squash = Squash.TANH
    else:
        raise TypeError(f"export supports PPO and SAC models, got {type(model).__name__}")
    if bool(normalization["norm_obs"]):
        mean = normalization["obs_mean"].astype(np.float64)
        std = np.sqrt(normalization["obs_var"].astype(np.float64) + float(normalization["epsilon"]))
        clip = float(normalization["clip_obs"])
    else:
        size = hidden[0].weight.shape[1] if hidden else output.weight.shape[1]
        mean, std, clip = np.zeros(size), np.ones(size), float(np.finfo(np.float32).max)
    joints = output.bias.shape[0]
    return PolicyGraph(
        obs_mean=mean,
        obs_std=std,
        obs_clip=clip,
        hidden=tuple(hidden),
        output=output,
        activation=activation,
        squash=squash,
        default_pose_rad=np.asarray(default_pose_rad, np.float64).copy(),
        action_scale_rad=np.broadcast_to(np.asarray(action_scale_rad, np.float64), (joints,)).copy(),
        mean_clip=mean_clip,
    )


def save_npz(graph: PolicyGraph, path: Path) -> None:
    """Write the graph's arrays to an npz that numpy reads without pickle (`load_npz` inverts it).

    Keys: obs_mean, obs_std, obs_clip, hidden_{i}_weight / hidden_{i}_bias (i < num_hidden),
    output_weight, output_bias, activation, squash, default_pose_rad, action_scale_rad, and
    mean_clip only where the graph has one.
    """
    arrays: dict[str, np.ndarray] = {
        "obs_mean": graph.obs_mean,
        "obs_std": graph.obs_std,
        "obs_clip": np.array(graph.obs_clip),
        "num_hidden": np.array(len(graph.hidden)),
        "output_weight": graph.output.weight,
        "output_bias": graph.output.bias,
        "activation": np.array(graph.activation.value),
        "squash": np.array(graph.squash.value),
        "default_pose_rad": graph.default_pose_rad,
        "action_scale_rad": graph.action_scale_rad,
    }
    if graph.mean_clip is not None:
        arrays["mean_clip"] = np.array(graph.mean_clip)
    for i, layer in enumerate(graph.hidden):
        arrays[f"hidden_{i}_weight"] = layer.weight
        arrays[f"hidden_{i}_bias"] = layer.bias
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stubs take the first kwarg as allow_pickle


def load_npz(path: Path) -> PolicyGraph:
    with np.load(path, allow_pickle=False) as data:
        hidden = tuple(
            Layer(data[f"hidden_{i}_weight"], data[f"hidden_{i}_bias"])
            for i in range(int(data["num_hidden"]))
        )
        return PolicyGraph(
            obs_mean=data["obs_mean"],
            obs_std=data["obs_std"],
            obs_clip=float(data["obs_clip"]),
            hidden=hidden,
            output=Layer(data["output_weight"], data["output_bias"]),
            activation=Activation(str(data["activation"])),
            squash=Squash(str(data["squash"])),
            default_pose_rad=data["default_pose_rad"],
            action_scale_rad=data["action_scale_rad"],
            mean_clip=float(data["mean_clip"]) if "mean_clip" in data else None,
        )
