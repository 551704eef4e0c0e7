"""A REINFORCE (vanilla policy-gradient) agent for Gymnasium spaces, in PyTorch: Discrete or Box actions,
Box or Discrete observations; acting, learning, saving and loading need no environment."""

from agents.agent import AgentConfig, CheckpointError, ReinforceAgent, check_spaces
from agents.reinforce import (
    EpisodeBatch,
    Policy,
    discounted_returns,
    normalize_advantages,
    policy_gradient_loss,
)

__all__ = [
    "AgentConfig",
    "CheckpointError",
    "EpisodeBatch",
    "Policy",
    "ReinforceAgent",
    "check_spaces",
    "discounted_returns",
    "normalize_advantages",
    "policy_gradient_loss",
]
