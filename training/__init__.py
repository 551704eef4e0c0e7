"""Running training: ``fit`` (a whole run), its settings, the training iteration, evaluation, run files and
logs that ``train.py`` and ``bench/`` share. It uses ``agents`` and ``envs``; neither uses it."""

from training.evaluation import Evaluation, Evaluator, solves, target_return
from training.fit import Callback, FitResult, fit
from training.presets import PRESETS, TUNED
from training.run_files import RunWriteError, saved_config
from training.settings import Config, config_from_args, make_config, parse_args
from training.trainer import RunState, Trainer, Update
from training.workers import WorkerLost, Workers

__all__ = [
    "PRESETS",
    "TUNED",
    "Callback",
    "Config",
    "Evaluation",
    "Evaluator",
    "FitResult",
    "RunState",
    "RunWriteError",
    "Trainer",
    "Update",
    "WorkerLost",
    "Workers",
    "config_from_args",
    "fit",
    "make_config",
    "parse_args",
    "saved_config",
    "solves",
    "target_return",
]
