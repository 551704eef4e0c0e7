"""Named sets of settings: ``--preset textbook``, ``--preset seed`` and ``--preset tuned``.

A preset maps ``Config`` field names to values; each name is a flag of ``train.py`` (``total_env_steps`` is
``--total-env-steps``), and flags given on the command line override the preset. ``TUNED`` holds one entry
per environment of the suite (``bench/suite.py``), in the convention of rl-baselines3-zoo's hyper-parameter
files: ``python train.py --env Hopper-v5 --preset tuned`` alone runs one seed of that environment's row. An
environment with no entry keeps the defaults; ``--preset tuned`` on it is refused.

Each tuned setting carries one line saying why. What the entries reach, with the commands that measure it, is
on the results page, ``docs/results.md``; the suite's per-run results are in ``bench/measured``.
"""

from __future__ import annotations

from typing import Any

# REINFORCE as in the textbook: Monte-Carlo returns (a time limit ends an episode like a terminal state),
# one gradient step per batch, no entropy bonus, PyTorch's default initial weights, none of the robustness
# defaults (docs/results.md, "Robustness across seeds: the defaults and why").
TEXTBOOK: dict[str, Any] = dict(
    hidden_sizes=(64,),
    activation="tanh",
    init="default",
    learning_rate=0.03,
    gamma=0.99,
    bootstrap="none",
    normalize="batch",
    normalize_observations=True,
    passes=1,
    minibatch_size=None,
    baseline=False,
    value_learning_rate=0.01,
    entropy_coef=0.0,
    max_grad_norm=None,
    target_kl=None,
    log_std_init=0.0,
    action_bound="clip",
)

# The seed notebook: the textbook algorithm with 5 episodes of at most 200 steps per update, 100 updates,
# gamma 0.95, per-episode normalisation, Adam 0.01, one layer of 16 ELU units, raw observations, no early
# stop. Every agent setting is named, so that a preset does not change meaning when a default does.
PRESETS: dict[str, dict[str, Any]] = {
    "textbook": TEXTBOOK,
    "seed": {
        **TEXTBOOK,
        **dict(
            num_envs=5,
            episodes_per_update=5,
            max_episode_steps=200,
            max_updates=100,
            target_return=195.0,  # Gymnasium's CartPole-v0 pairs 200-step episodes with 195
            stop_when_solved=False,
            hidden_sizes=(16,),
            activation="elu",
            learning_rate=0.01,
            gamma=0.95,
            normalize="episode",
            normalize_observations=False,
        ),
    },
}

# ---------------------------------------------------------------------------------------- the suite
# The suite's protocol, shared by each family of environments. No early stop: every run trains its whole
# budget, so that the learning curves of the seeds cover the same steps. About 100 checks in a 3M run,
# 50 in the others.

# The MuJoCo anchors' protocol (Tianshou's examples/mujoco REINFORCE benchmark): 3M env steps, a
# deterministic test of 10 episodes after every epoch of 30,000 steps.
MUJOCO: dict[str, Any] = dict(
    total_env_steps=3_000_000,
    eval_every_steps=30_000,
    eval_episodes=10,
    stop_when_solved=False,
)

# The classic tasks (Box2D, classic control): 100 greedy episodes per check, as Gymnasium's "solved"
# (a mean over 100 episodes) is defined.
LUNAR: dict[str, Any] = dict(
    total_env_steps=3_000_000,  # the target: greedy mean >= 200 on every seed within 3M
    eval_every_steps=60_000,  # 100 episodes of up to 1,000 steps per check: 50 checks, not 100
    eval_episodes=100,
    stop_when_solved=False,
)
CLASSIC_1M: dict[str, Any] = dict(
    total_env_steps=1_000_000,  # Pendulum's target: beat -400 within 1M; the MountainCars: report
    eval_every_steps=20_000,
    eval_episodes=100,
    stop_when_solved=False,
)
CLASSIC_500K: dict[str, Any] = dict(
    total_env_steps=500_000,  # the budget of bench.solve's protocol
    eval_every_steps=10_000,
    eval_episodes=100,
    stop_when_solved=False,  # the suite draws whole curves (the solve benchmark, python -m bench.solve, stops)
)

# Per environment: the protocol, then the agent settings that measured best on it (docs/results.md); an entry
# that says "protocol only" keeps the agent defaults.
#
# MuJoCo: each entry has a batch of about 2,000-16,000 steps of complete episodes per update. The defaults'
# 8 episodes can be 40 steps where the first policies fall at once, and so many small Adam steps drive the
# log-std to its floor. MUJOCO_A: Tianshou's REINFORCE settings for MuJoCo (two layers of 64, Adam 0.001,
# one gradient step per batch, no entropy bonus, the learning rate decayed linearly to 0).
MUJOCO_A: dict[str, Any] = dict(
    hidden_sizes=(64, 64),
    learning_rate=0.001,
    passes=1,
    entropy_coef=0.0,  # a Gaussian's entropy gradient on its log-std is constant: the bonus never fades
    anneal_lr=True,
)
TUNED: dict[str, dict[str, Any]] = {
    # MuJoCo (Gymnasium's v5; the anchors ran v2/v3 under mujoco-py), cheapest first
    "InvertedPendulum-v5": {
        **MUJOCO,  # protocol only: the defaults reach the 1,000-step cap
    },
    "InvertedDoublePendulum-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 32,  # episodes of 5 to 1,000 steps
    },
    "Reacher-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 40,  # every episode is 50 steps: 2,000 per update
    },
    "Swimmer-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 4,
        "episodes_per_update": 4,  # every episode is 1,000 steps: 4,000 per update
        "gamma": 0.9999,  # rl-baselines3-zoo's: the reward is forward speed, and a stroke pays off long after it
    },
    "HalfCheetah-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 4,
        "episodes_per_update": 4,  # 4,000 steps per update (every episode is 1,000)
        # a run's 750 Adam steps barely move the log-std: its start is the noise throughout, paid in control cost
        "log_std_init": -1.0,
    },
    "Hopper-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 16,  # episodes of 20 to 1,000 steps: 300-16,000 per update
        # std 0.37: the log-std barely moves in a run, and from -0.5 the greedy hopper (the mean of a policy
        # with std 0.6) stood or fell on some seeds; at std 1 it settles lower still
        "log_std_init": -1.0,
        # a 200-step horizon values landing the hop: at 0.99 the hopper learns to lunge and fall, at 0.999 to stand
        "gamma": 0.995,
    },
    "Walker2d-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 16,  # Hopper's: the same early falls, episodes of 10 to 1,000 steps
        "hidden_sizes": (256, 256),  # with two layers of 64 the greedy walker dives and falls in every variant tried
        "log_std_init": -0.5,  # Spinning Up's and Tianshou's start; from -1 the walker learns less
    },
    "Ant-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 32,  # about 4,000 steps: with 8, the noise flips the ant and the return falls
        "log_std_init": -0.5,  # Ant's control cost is 0.5 |a|^2 per step: at std 1 it outweighs staying up
    },
    "Humanoid-v5": {
        **MUJOCO,
        **MUJOCO_A,
        "num_envs": 8,
        "episodes_per_update": 32,  # InvertedDoublePendulum's: the first policies fall within about 25 steps
        "action_bound": "tanh",  # actions in [-0.4, 0.4]: at std 1 about 70% of samples would clip to a bound
        "log_std_init": -0.5,  # Walker2d's and Ant's start (Spinning Up's and Tianshou's)
        "baseline": True,  # how long the humanoid stays up depends on its state: a batch mean can't tell
    },
    # Box2D (pip install "gymnasium[box2d]")
    "LunarLander-v3": {
        **LUNAR,
        "baseline": True,  # the return depends mostly on where the lander starts: a batch mean can't tell
        "num_envs": 16,
        "episodes_per_update": 16,  # episodes of about 100 to 1,000 steps; 8 let one bad batch undo a policy
        "learning_rate": 0.003,  # 0.01 reaches 200 and falls off it within a few hundred thousand steps
        "anneal_lr": True,  # the landed policy holds: steps shrink as it converges
        # a lander the time limit cuts is worth V of where it is, not the batch's mean reward per step, which
        # counts the landings' bonuses into hovering's future (with the mean, seed 2 ended at 190.1)
        "bootstrap": "value",
    },
    # classic control
    "Pendulum-v1": {
        **CLASSIC_1M,
        **MUJOCO_A,
        "baseline": True,  # a Pendulum return depends mostly on where the episode starts: a batch mean can't tell
        "discretize_actions": 5,  # torques -1.6, -0.8, 0, 0.8, 1.6: beats a Gaussian policy on every seed
        "gamma": 0.9,  # rl-baselines3-zoo's; 0.95 and 0.98 reach less
        "num_envs": 2,
        "episodes_per_update": 2,  # 400 steps per update: 2,500 updates in 1M steps
        "learning_rate": 0.003,  # 0.001 reaches less; 0.01 ends up spinning the pendulum
    },
    "MountainCarContinuous-v0": {
        **CLASSIC_1M,  # protocol only: the agent defaults
    },
    "MountainCar-v0": {
        **CLASSIC_1M,  # protocol only: the agent defaults
    },
    "CartPole-v1": {
        **CLASSIC_500K,
        "learning_rate": 0.02,  # solves in fewer steps and holds 500; Acrobot loses seeds at it: not the default
    },
    "Acrobot-v1": {
        **CLASSIC_500K,
        "anneal_lr": True,  # the defaults reach -100 and some seeds fall off it; smaller steps as it converges hold it
    },
}


def tuned(env: str) -> dict[str, Any]:
    """The settings of ``--preset tuned`` for ``env``; a one-line ``ValueError`` when it has no entry."""
    if env not in TUNED:
        raise ValueError(f"--preset tuned has no entry for {env}; environments with one: {', '.join(TUNED)}")
    return TUNED[env]
