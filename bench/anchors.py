"""The published numbers the suite (``bench/suite.py``) puts beside ours. These are THEIR numbers, copied
from their pages; none was measured here.

- Tianshou REINFORCE: the REINFORCE tables of Tianshou's MuJoCo benchmark,
  https://github.com/thu-ml/tianshou/tree/master/examples/mujoco (README, "Onpolicy Algorithms"),
  at 3M and 10M env steps. 10 seeds; the metric (its footnote 6) is the maximum over training of the
  10-seed mean of a deterministic test of 10 episodes, ± one standard deviation over seeds. Gym 0.17.3's
  MuJoCo v3 environments (v2 for Reacher and the two pendulums) under mujoco-py; ours are Gymnasium's v5
  under the mujoco bindings, whose dynamics and rewards differ in details.
- Spinning Up VPG (PyTorch), https://spinningup.openai.com/en/latest/spinningup/bench.html: read from its
  plots at 3M env steps (hence "~", as Tianshou's README quotes them). Its curves are the average return
  of the stochastic training batch, so the suite compares them with our ``charts/episodic_return`` near
  the end of training, not with a greedy evaluation. Its VPG learns a value function (GAE): more than
  REINFORCE without a baseline.
- rl-baselines3-zoo (Stable-Baselines3), single runs, for context only:
  https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md

Targets: for a MuJoCo row the better of Tianshou 3M and Spinning Up; LunarLander-v3 a greedy
100-episode mean of at least 200 on every seed within 3M; Pendulum-v1 above -400 within 1M; CartPole-v1 and
Acrobot-v1 Gymnasium's reward_threshold (475, -100); MountainCarContinuous-v0 and MountainCar-v0 none
(reported only).
"""

from __future__ import annotations

from typing import NamedTuple


class Anchor(NamedTuple):
    tianshou_3m: tuple[float, float] | None  # mean, std over 10 seeds
    tianshou_10m: tuple[float, float] | None
    spinning_up: float | None  # read from a plot
    target: float | None


NO_ANCHOR = Anchor(None, None, None, None)
ANCHORS: dict[str, Anchor] = {
    "InvertedPendulum-v5": Anchor((999.2, 2.4), (1000.0, 0.0), None, 1000.0),
    "InvertedDoublePendulum-v5": Anchor((1059.7, 307.7), (7726.2, 1287.3), None, 1060.0),
    "Reacher-v5": Anchor((-10.5, 0.7), (-5.5, 0.2), None, -10.5),
    "Swimmer-v5": Anchor((35.3, 1.4), (35.6, 2.6), 51.0, 51.0),
    "HalfCheetah-v5": Anchor((884.0, 41.0), (1138.8, 104.7), 600.0, 884.0),
    "Hopper-v5": Anchor((395.8, 64.5), (416.0, 104.7), 800.0, 800.0),
    "Walker2d-v5": Anchor((412.0, 52.4), (440.9, 148.2), 460.0, 460.0),
    "Ant-v5": Anchor((474.9, 133.5), (1108.1, 323.1), 5.0, 475.0),
    "Humanoid-v5": Anchor((438.2, 47.8), (464.3, 58.4), None, 438.0),
    "LunarLander-v3": Anchor(None, None, None, 200.0),
    "Pendulum-v1": Anchor(None, None, None, -400.0),
    "MountainCarContinuous-v0": Anchor(None, None, None, None),
    "MountainCar-v0": Anchor(None, None, None, None),
    "CartPole-v1": Anchor(None, None, None, 475.0),
    "Acrobot-v1": Anchor(None, None, None, -100.0),
}

# rl-baselines3-zoo's single runs (algorithm, return, env steps): context, not a target
ZOO: dict[str, list[tuple[str, float, int]]] = {
    "LunarLander-v3": [("A2C", 156.0, 200_000), ("PPO", 242.0, 1_000_000)],
    "Pendulum-v1": [("A2C", -163.0, 1_000_000)],
    "Hopper-v5": [("A2C", 733.0, 1_000_000)],
    "HalfCheetah-v5": [("A2C", 3041.0, 1_000_000)],
    "Swimmer-v5": [("A2C", 201.0, 1_000_000)],
}
