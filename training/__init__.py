"""Running training: the settings, the training iteration, evaluation, run checkpoints and logs that
``train.py`` and ``bench/`` share. It uses ``agents`` and ``envs``; neither uses it."""

from training.evaluation import Evaluator, solves, target_return
from training.presets import PRESETS, TUNED
from training.settings import Config, config_from_args, make_config, parse_args
from training.trainer import RunState, StopSignals, Trainer, Update
from training.workers import Workers

__all__ = [
    "PRESETS",
    "TUNED",
    "Config",
    "Evaluator",
    "RunState",
    "StopSignals",
    "Trainer",
    "Update",
    "Workers",
    "config_from_args",
    "make_config",
    "parse_args",
    "solves",
    "target_return",
]
