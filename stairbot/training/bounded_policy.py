"""PPO's actor-critic policy with a charge on action means beyond the action bounds.

The env clips every action to [-1, 1], and so does SB3 before it steps the env. A Gaussian policy
whose mean has drifted far past the clip acts the same whatever the mean does there, so PPO gets no
signal to bring it back: the release's front hips sat at median means of -1.58 and +1.78 (std 0.16)
on 0.15 m stairs, every sample clipped to the same splayed pose, and 0.5M steps of a reward term on
that splay (`hip_abduction_l2`) moved it by 1 %. The bound loss (rl_games' `bounds_loss_coef`, used by
the IsaacGymEnvs locomotion tasks) adds

    coef * mean over the batch of sum_j max(0, |mu_j| - bound)^2

to the PPO loss, which pulls such means back to the bound, where samples fall on both sides of the
clip again. It changes nothing the policy does inside the bound, and acting is unchanged (it only
adds gradient while PPO trains).

SB3's `PPO.train` builds the loss itself, so the term enters as a gradient hook on the mean: the hook
adds d(term)/d(mean) to the gradient flowing back into it, which is what adding the term to the loss
would do (before `max_grad_norm` clips the total, as it would).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from stable_baselines3.common.distributions import DiagGaussianDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy

from stairbot.errors import ConfigError


def bound_loss(mean: torch.Tensor, bound: float) -> torch.Tensor:
    """The charge on a (batch, actions) tensor of means: mean over rows of sum_j max(0, |mu_j| - bound)^2."""
    excess = torch.relu(mean.abs() - bound)
    return (excess * excess).sum(dim=-1).mean()


class BoundedMeanPolicy(ActorCriticPolicy):
    """`ActorCriticPolicy` whose training gradient includes `bound_loss_coef * bound_loss(mean)`.

    Args (besides ActorCriticPolicy's):
        action_bound: |mean| beyond which the charge starts, in action units (the env clips at 1).
        bound_loss_coef: weight of the charge in the PPO loss; 0 turns it off.
    """

    def __init__(
        self, *args: Any, action_bound: float = 1.0, bound_loss_coef: float = 0.0, **kwargs: Any
    ) -> None:
        if action_bound <= 0:
            raise ConfigError(f"action_bound must be > 0 (action units), got {action_bound}")
        if bound_loss_coef < 0:
            raise ConfigError(f"bound_loss_coef must be >= 0, got {bound_loss_coef}")
        self.action_bound = float(action_bound)
        self.bound_loss_coef = float(bound_loss_coef)
        super().__init__(*args, **kwargs)
        if not isinstance(self.action_dist, DiagGaussianDistribution):
            raise ConfigError(
                f"the bound loss needs a diagonal Gaussian policy, got {type(self.action_dist).__name__} "
                "(turn off gSDE for PPO or set ppo.bound_loss_coef to 0)"
            )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        # Saved with the model, so `PPO.load` (resume) rebuilds the policy with the same charge.
        data = super()._get_constructor_parameters()
        data.update(action_bound=self.action_bound, bound_loss_coef=self.bound_loss_coef)
        return data

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        mean = self.action_net(latent_pi)
        if self.bound_loss_coef > 0 and mean.requires_grad:  # only while PPO trains: rollouts run no_grad
            mean.register_hook(self._bound_gradient(mean.detach()))
        assert isinstance(self.action_dist, DiagGaussianDistribution)
        return self.action_dist.proba_distribution(mean, self.log_std)

    def _bound_gradient(self, mean: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The hook adding d(coef * bound_loss)/d(mean) = coef * 2 sign(mu) excess / rows."""
        excess = torch.relu(mean.abs() - self.action_bound)
        extra = self.bound_loss_coef * 2.0 * torch.sign(mean) * excess / mean.shape[0]
        return lambda grad: grad + extra
