"""A REINFORCE (vanilla policy-gradient) agent for Gymnasium spaces, in PyTorch: Discrete or Box actions,
Box or Discrete observations; acting, learning, saving and loading need no environment."""

from agents.agent import ReinforceAgent
from agents.batch import EpisodeBatch
from agents.config import AgentConfig
from agents.files import CheckpointError
from agents.reinforce import (
    Policy,
    discounted_returns,
    normalize_advantages,
    policy_gradient_loss,
    reinforce_loss,
)
from agents.spaces import check_spaces

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
    "reinforce_loss",
]
