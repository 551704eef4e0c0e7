"""Every setting of a run in one flat dataclass, ``Config``: the command line, ``config.json``, the
checkpoint's copy and TensorBoard's HPARAMS are all made from it."""

from __future__ import annotations

import argparse
import math
import os
import re
import typing
from dataclasses import Field, asdict, dataclass, fields, replace
from typing import Any

from agents import AgentConfig
from agents.config import check_seed, setting
from envs.config import EnvConfig
from envs.factory import VECTORIZATIONS, EnvFactory, env_name, untrusted_module
from training.command_line import HelpFormatter, flag_value
from training.presets import PRESETS, tuned

AGENT_SETTINGS = tuple(f.name for f in fields(AgentConfig))
# what a resumed run may change: its budget, its evaluation, and the housekeeping (fields with experiment=False)
PRESET_NAMES = sorted([*PRESETS, "tuned"])  # --preset's choices
BUDGET_AND_EVALUATION = ("total_env_steps", "max_updates", "eval_every_steps", "eval_episodes", "target_return")


@dataclass
class Config(AgentConfig):
    """The agent's hyper-parameters (``AgentConfig``) and the run's own settings. Each is a flag of
    ``python train.py`` (``--help`` lists them in ``GROUPS``); docs/settings.md tells each in full."""

    env: str = setting("CartPole-v1", "Gymnasium id, or module:EnvId of your own", metavar="ID")
    seed: int = setting(1, "seeds the weights, the sampling and the environments")
    num_envs: int = setting(8, "environments stepped together by one batched forward")
    episodes_per_update: int = setting(8, "complete episodes per update, best a multiple of num_envs")
    max_episode_steps: int | None = setting(None, "time limit per episode; none: the environment's own")
    vectorization: str = setting("auto", "vector env: auto, sync, async or vector_entry_point", choices=VECTORIZATIONS)
    discretize_actions: int | None = setting(None, "N values per Box action dimension: a categorical policy")
    total_env_steps: int = setting(500_000, "budget; whole episodes may pass it by part of a batch")
    max_updates: int | None = setting(None, "stop after this many updates; none: no limit")
    eval_every_steps: int = setting(5_000, "evaluate at the first update after every N env steps")
    eval_episodes: int = setting(100, "episodes per evaluation, on seeds training never uses")
    target_return: float | None = setting(None, "mean greedy return counted as solved; none: the env's")
    stop_when_solved: bool = setting(True, "stop at the first evaluation that reaches the target")
    anneal_lr: bool = setting(False, "decay the learning rates linearly to 0 over the budget")
    anneal_entropy: bool = setting(False, "decay the entropy bonus linearly to 0 over the budget")
    # housekeeping: how the run is logged and kept, not what it learns (left out of TensorBoard's HPARAMS)
    logdir: str = setting("runs", "folder of the runs", experiment=False, metavar="DIR")
    exp_name: str = setting("reinforce", "label in run folder names; with a preset, its name", experiment=False)
    print_every: int = setting(10, "print the statistics line every N updates", experiment=False)
    histogram_every: int = setting(50, "log parameter histograms every N updates", experiment=False)
    gif: bool = setting(True, "record a GIF of one greedy episode at the end", experiment=False)
    watch_episodes: int = setting(3, "episodes that --watch plays", experiment=False)
    threads: int | None = setting(1, "torch CPU threads; none: torch's own, every core", experiment=False)
    checkpoint_every: int = setting(20, "write checkpoint.pt every N updates and at the end", experiment=False)
    max_nonfinite_updates: int = setting(10, "stop after this many non-finite updates in a row", experiment=False)

    def __post_init__(self) -> None:
        if isinstance(self.logdir, os.PathLike):  # a Path is as good a folder as a string
            self.logdir = os.fspath(self.logdir)
        super().__post_init__()
        at_least_one = (
            "num_envs",
            "episodes_per_update",
            "total_env_steps",
            "eval_every_steps",
            "eval_episodes",
            "print_every",
            "histogram_every",
            "watch_episodes",
            "checkpoint_every",
            "max_nonfinite_updates",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_episode_steps", "max_updates", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or none, got {getattr(self, name)}")
        if self.discretize_actions is not None and self.discretize_actions < 2:
            raise ValueError(f"discretize_actions must be >= 2 or none, got {self.discretize_actions}")
        try:
            check_seed(self.seed)
        except ValueError as error:
            raise ValueError(f"{error}: give another --seed") from None
        if self.target_return is not None and not math.isfinite(self.target_return):  # NaN is never reached
            raise ValueError(f"target_return must be finite or none (the environment's), got {self.target_return}")
        try:
            self.logdir.encode()  # TensorBoard writes its file names in UTF-8
        except UnicodeEncodeError:
            raise ValueError(f"logdir {self.logdir!r} is not valid UTF-8: give another --logdir") from None
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.exp_name):
            raise ValueError(
                f"exp_name must be letters, digits, '.', '_' or '-' (it names a folder), got {self.exp_name!r}"
            )
        if self.num_envs > self.episodes_per_update:
            raise ValueError(
                f"num_envs ({self.num_envs}) exceeds episodes_per_update ({self.episodes_per_update}): "
                "lower --num-envs or raise --episodes-per-update"
            )

    def env_config(self) -> EnvConfig:
        """The environment's part of the settings."""
        return EnvConfig(self.env, self.max_episode_steps, self.vectorization, self.discretize_actions)

    def agent_config(self) -> AgentConfig:
        """The agent's part of the settings."""
        return AgentConfig(**{name: getattr(self, name) for name in AGENT_SETTINGS})

    def shown(self, housekeeping: bool = True) -> dict[str, bool | int | float | str]:
        """The settings as TensorBoard shows them (sizes as ``64,64``, an unset value as ``none``), the
        run's first; without ``housekeeping``, only those that define the experiment (for HPARAMS)."""
        shown = {}
        for f in sorted(fields(Config), key=lambda f: f.name in AGENT_SETTINGS):  # the run's settings first
            value = getattr(self, f.name)
            if housekeeping or f.metadata.get("experiment", True):
                shown[f.name] = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return {name: "none" if value is None else value for name, value in shown.items()}


RESUMABLE = {*BUDGET_AND_EVALUATION, "stop_when_solved"} | {
    f.name for f in fields(Config) if not f.metadata.get("experiment", True)
}


def make_config(flags: dict[str, Any], preset: str | None = None, saved: dict[str, Any] | None = None) -> Config:
    """A run's settings: the defaults, then the preset's settings or a resumed run's saved ones, then the flags
    given.

    :param flags: the settings given, by name (as ``parse_args`` returns them); a value of the wrong type or out
        of range raises a one-line ``ValueError``.
    :param preset: a name of ``PRESETS`` (another name: a one-line ``ValueError``), or ``"tuned"``: the entry of
        the environment the flags name (or the default one), refused with a one-line ``ValueError`` where there is
        none. Ignored with ``saved``.
    :param saved: a resumed run's settings, as its checkpoint holds them. The flags may change only the budget,
        the evaluation and the housekeeping (a one-line ``ValueError`` otherwise): a resumed run's agent cannot
        change, since its weights were learnt with those settings.
    """
    if saved is None:
        label = {"exp_name": preset} if preset else {}
        if preset is None:
            settings = {}
        elif preset == "tuned":
            settings = tuned(flags.get("env", Config.env))
        elif preset in PRESETS:
            settings = PRESETS[preset]
        else:  # the command line's choices refuse it before this; a caller of the API gets the same line
            raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESET_NAMES)}")
        return Config(**{**label, **settings, **flags})
    return resumed_config(saved, flags)


def saved_settings(saved: dict[str, Any]) -> Config:
    """A run's settings as its checkpoint holds them; a one-line ``ValueError`` when they are unusable."""
    try:
        return Config(**saved)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the run's saved settings are unusable ({error}): start a new run") from None


def resumed_config(saved: dict[str, Any], changes: dict[str, Any]) -> Config:
    """A resumed run's settings: its ``saved`` ones with ``changes``, which may touch only the budget, the
    evaluation and the housekeeping (``RESUMABLE``); a one-line ``ValueError`` for any other, since the agent's
    weights were learnt with them and its environments and batches follow from them."""
    before = saved_settings(saved)
    untrusted_module(before.env, changes.get("env"), "the run's checkpoint")
    config = Config(**{**asdict(before), **changes})
    changed = [
        f.name for f in fields(Config) if f.name not in RESUMABLE and getattr(config, f.name) != getattr(before, f.name)
    ]
    if changed:
        what = "the agent's settings" if set(changed) <= set(AGENT_SETTINGS) else "the run's settings"
        raise ValueError(
            f"--resume cannot change {what} ({', '.join(changed)}): start a new run (a resume may change the "
            "budget, the evaluation and the housekeeping)"
        )
    return config


def run_settings(
    config: Config | None, env: str | EnvFactory | None, saved: dict[str, Any] | None
) -> tuple[Config, EnvConfig]:
    """A run's settings and environment: ``config`` (default ``Config()``; for a resumed run its ``saved`` ones,
    which a ``config`` given may change only as ``resumed_config`` allows); its environment ``env`` where one
    is given (an id, or a callable whose name then stands for it in ``config.env``)."""
    label = {} if env is None else {"env": env if isinstance(env, str) else env_name(env)}
    if saved is not None:
        config = resumed_config(saved, {**(asdict(config) if config is not None else {}), **label})
    else:
        config = replace(config or Config(), **label)
    env_config = config.env_config()
    return config, env_config if env is None or isinstance(env, str) else replace(env_config, env=env)


# ----------------------------------------------------------------------------- the command line
# The groups of the settings, in the order of --help and of docs/settings.md; each setting is in one.
GROUPS: dict[str, tuple[str, ...]] = {
    "environment": ("env", "seed", "num_envs", "max_episode_steps", "discretize_actions"),
    "budget and stopping": ("total_env_steps", "max_updates", "stop_when_solved", "max_nonfinite_updates"),
    "evaluation": ("eval_every_steps", "eval_episodes", "target_return", "watch_episodes"),
    "algorithm": (
        "episodes_per_update",
        *("hidden_sizes", "activation", "init", "learning_rate", "anneal_lr", "gamma", "bootstrap", "normalize"),
        *("normalize_observations", "passes", "minibatch_size", "baseline", "value_learning_rate"),
        *("entropy_coef", "anneal_entropy"),
        *("max_grad_norm", "target_kl", "log_std_init", "action_bound"),
    ),
    "outputs": ("logdir", "exp_name", "print_every", "histogram_every", "gif", "checkpoint_every"),
    "system": ("threads", "vectorization"),
}
USAGE = """%(prog)s [--preset NAME] [--SETTING VALUE ...]
       %(prog)s --resume RUN_DIR [--SETTING VALUE ...]
       %(prog)s --watch PATH | --heuristic [--SETTING VALUE ...]"""


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line, exit status 2 (the benchmarks' command lines use it too)."""

    def error(self, message: str) -> typing.NoReturn:
        # under torchrun every worker parses the same flags: the main one (rank 0) says what is wrong
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n" if os.environ.get("RANK", "0") == "0" else None)


def _or_none(convert: type) -> typing.Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__  # argparse names it in "invalid int value"
    return parse


def _add_flag(group: argparse._ArgumentGroup, name: str, kind: Any, default: Any, metadata: Any) -> None:
    """One ``--flag`` for a setting, parsed by its type; absent flags stay absent (not defaulted), so
    that a preset's or a resumed run's value is kept."""
    options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
    options["help"] = f"{metadata['help']} (default: {flag_value(default)})"
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(kind) is tuple:
        options.update(type=int, nargs="+", metavar="N")
    elif typing.get_origin(kind) is typing.Literal:
        options.update(choices=typing.get_args(kind), metavar="NAME")
    else:
        optional = type(None) in typing.get_args(kind)
        convert = next(a for a in typing.get_args(kind) if a is not type(None)) if optional else kind
        metavar = {int: "N", float: "X"}.get(convert, "NAME")
        options.update(type=_or_none(convert) if optional else convert, choices=metadata.get("choices"))
        options["metavar"] = metadata.get("metavar", metavar)
    group.add_argument("--" + name.replace("_", "-"), **options)


def grouped_fields() -> dict[str, list[Field]]:
    """The fields of ``Config`` in their ``GROUPS``; a ``RuntimeError`` unless each is in exactly one."""
    by_name = {f.name: f for f in fields(Config)}
    named = [name for names in GROUPS.values() for name in names]
    if sorted(named) != sorted(by_name):  # a setting with no group would have no flag
        raise RuntimeError(f"GROUPS must name each field of Config once, not {sorted(named)}")
    return {group: [by_name[name] for name in names] for group, names in GROUPS.items()}


def parse_args(
    argv: list[str] | None = None, description: str | None = None, epilog: str | None = None, prog: str | None = None
) -> tuple[dict[str, Any], Any]:
    """The settings given as flags (only those given), and the mode flags.

    A bad command line, or ``--help``, exits (status 2 after one line of error, or 0 after the help).

    :param argv: the command line's arguments, without the program (None: ``sys.argv[1:]``).
    :param description: the text ``--help`` shows before the flags.
    :param epilog: the text ``--help`` shows after the flags.
    :param prog: the program's name in the usage and the errors (None: that of ``sys.argv[0]``).
    :return: the settings given, by name, and a namespace of the mode flags: ``preset``, ``heuristic``,
        ``watch``, ``resume``.
    """
    parser = Parser(
        prog=prog, usage=USAGE, description=description, epilog=epilog, formatter_class=HelpFormatter, add_help=False
    )
    modes = parser.add_argument_group("modes")
    modes.add_argument("-h", "--help", action="help", help="show this help and exit")
    modes.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        metavar="NAME",
        help="start from textbook, seed or tuned (the suite's settings for --env)",
    )
    one_mode = modes.add_mutually_exclusive_group()  # each is a mode of its own: two would leave one unheard
    one_mode.add_argument("--heuristic", action="store_true", help="evaluate the notebook's hard-coded CartPole policy")
    one_mode.add_argument(
        "--watch", metavar="PATH", help="play a saved agent: its run folder or model file (window or GIF)"
    )
    one_mode.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a stopped run in its folder (flags may change its budget)"
    )
    hints = typing.get_type_hints(Config)
    for title, settings in grouped_fields().items():
        group = parser.add_argument_group(title)
        for f in settings:
            _add_flag(group, f.name, hints[f.name], f.default, f.metadata)
    args = parser.parse_args(argv)
    if args.resume and args.preset:
        parser.error("--resume continues a run with its own settings: give no --preset")
    flags = {f.name: getattr(args, f.name) for f in fields(Config) if hasattr(args, f.name)}
    modes = argparse.Namespace(**{name: getattr(args, name) for name in ("preset", "heuristic", "watch", "resume")})
    return flags, modes


def config_from_args(argv: list[str]) -> Config:
    """The ``Config`` a command line describes (defaults, then ``--preset``, then the flags), for the
    benchmark scripts, which run no mode.

    :param argv: the command line's arguments, without the program (see ``parse_args``); the mode flags other
        than ``--preset`` are ignored.
    """
    flags, modes = parse_args(argv)
    return make_config(flags, modes.preset)
