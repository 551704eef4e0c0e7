"""The seed notebook's hard-coded CartPole policy, kept as a baseline."""

from __future__ import annotations

import numpy as np

CARTPOLE_OBSERVATION = ("cart position", "cart velocity", "pole angle", "pole angular velocity")


def lean_policy(observations: np.ndarray) -> np.ndarray:
    """Push the cart toward the side the pole leans: right (1) if the pole angle is positive."""
    return (np.asarray(observations)[..., 2] > 0).astype(np.int64)


def describe_returns(returns: np.ndarray) -> str:
    """The notebook's statistics line."""
    returns = np.asarray(returns, dtype=np.float64)
    return f"Mean: {returns.mean():.1f}, Std: {returns.std():.2f}, Min: {returns.min():g}, Max: {returns.max():g}"
