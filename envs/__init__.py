"""Environment construction and environment-side helpers: rollouts, evaluation, playing, baselines."""

from envs.config import EnvConfig
from envs.contract import EnvironmentFailed
from envs.factory import check_env_id, make_env, make_vector_env, time_limit, untrusted_module
from envs.heuristic import CARTPOLE_OBSERVATION, lean_policy, run_heuristic
from envs.play import display_available, encode_gif, play, play_episode, record_gif
from envs.rollout import Rollout, collect_episodes, evaluate, split_episodes

__all__ = [
    "CARTPOLE_OBSERVATION",
    "EnvConfig",
    "EnvironmentFailed",
    "Rollout",
    "check_env_id",
    "collect_episodes",
    "display_available",
    "encode_gif",
    "evaluate",
    "lean_policy",
    "make_env",
    "make_vector_env",
    "play",
    "play_episode",
    "record_gif",
    "run_heuristic",
    "split_episodes",
    "time_limit",
    "untrusted_module",
]
