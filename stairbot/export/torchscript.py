"""A PolicyGraph as a TorchScript module: `torch.jit.load(path)(observation) -> joint_targets`."""

# No `from __future__ import annotations` here: TorchScript reads the class annotations at runtime.
from pathlib import Path

import numpy as np
import torch

from stairbot.export.policy_graph import Activation, PolicyGraph, Squash


class ExportedPolicy(torch.nn.Module):
    """observation (B, N) -> joint targets (B, J), float32, normalization and action scaling inside."""

    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    default_pose_rad: torch.Tensor
    action_scale_rad: torch.Tensor

    def __init__(self, graph: PolicyGraph) -> None:
        super().__init__()
        activation = {
            Activation.ELU: torch.nn.ELU,
            Activation.RELU: torch.nn.ReLU,
            Activation.TANH: torch.nn.Tanh,
        }
        layers: list[torch.nn.Module] = []
        for layer in graph.hidden:
            layers += [_linear(layer.weight, layer.bias), activation[graph.activation]()]
        layers.append(_linear(graph.output.weight, graph.output.bias))
        self.mlp = torch.nn.Sequential(*layers)
        self.register_buffer("obs_mean", _tensor(graph.obs_mean))
        self.register_buffer("obs_std", _tensor(graph.obs_std))
        self.register_buffer("default_pose_rad", _tensor(graph.default_pose_rad))
        self.register_buffer("action_scale_rad", _tensor(graph.action_scale_rad))
        self.obs_clip = float(graph.obs_clip)
        self.tanh_squash = graph.squash is Squash.TANH
        self.clip_mean = graph.mean_clip is not None
        self.mean_clip = float(graph.mean_clip or 0.0)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((observation - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)
        a = self.mlp(x)
        if self.clip_mean:
            a = torch.clamp(a, -self.mean_clip, self.mean_clip)
        a = torch.tanh(a) if self.tanh_squash else torch.clamp(a, -1.0, 1.0)
        return self.default_pose_rad + self.action_scale_rad * a


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(values, np.float32))


def _linear(weight: np.ndarray, bias: np.ndarray) -> torch.nn.Linear:
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(_tensor(weight))
        linear.bias.copy_(_tensor(bias))
    return linear


def to_torchscript(graph: PolicyGraph, path: Path) -> None:
    """Write `graph` as a scripted module, loadable with `torch.jit.load` (no stairbot needed)."""
    torch.jit.save(torch.jit.script(ExportedPolicy(graph).eval()), str(path))
