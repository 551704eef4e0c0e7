"""The agent's hyper-parameters: ``AgentConfig``, each field with its default and one line of help."""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.network import ACTIVATIONS

# each setting of a few named values is a Literal, which check_types holds it to
Normalization = Literal["batch", "episode", "none"]
NORMALIZATIONS: tuple[str, ...] = typing.get_args(Normalization)
Bootstrap = Literal["none", "mean", "value"]
Initialization = Literal["default", "orthogonal"]
ActionBound = Literal["clip", "tanh"]
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)  # gelu: its tanh form
LOG_STD_RANGE = (-5.0, 2.0)  # a Gaussian policy's std from 0.007 to 7.4: wide enough to explore, never 0 or inf


def check_entropy_coef(entropy_coef: float) -> None:
    """A one-line ``ValueError`` unless the entropy bonus's weight is >= 0 and finite."""
    if not (math.isfinite(entropy_coef) and entropy_coef >= 0):
        raise ValueError(f"entropy_coef must be >= 0 and finite, got {entropy_coef}")


def check_seed(seed: int | None) -> int | None:
    """``seed`` if torch, numpy and Gymnasium all take it (torch none from 2**64, numpy and Gymnasium none
    below 0), or None; else a one-line ``ValueError``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64):
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1 ({2**64 - 1}), got {seed!r}")
    return seed


def setting(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with its one line of help (``train.py`` makes each field a flag; docs/settings.md tells
    each in full)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class AgentConfig:
    """Hyper-parameters of the agent; the run's settings (environment, budget, logging) extend them in
    ``training.Config``. The defaults are the textbook algorithm with four changes measured to make it
    robust across seeds (docs/results.md, "Robustness across seeds"): ``init="orthogonal"``, ``bootstrap="mean"``,
    ``entropy_coef=0.02``, and ``passes=2`` at ``learning_rate=0.01`` (the textbook: ``"default"``,
    ``"none"``, 0, 1 at 0.03).

    :param hidden_sizes: units of each hidden layer of the policy (and of the baseline).
    :param activation: hidden activation, one of ``ACTIVATION_NAMES``.
    :param init: initial weights: PyTorch's default, or orthogonal with zero biases and the policy's output
        layer scaled by 0.01, so that the first policy is close to uniform (Andrychowicz et al. 2021).
    :param learning_rate: Adam learning rate of the policy.
    :param gamma: discount factor of the returns.
    :param bootstrap: what follows the last step of an episode cut by a time limit: nothing (``"none"``:
        the Monte-Carlo return of the episode as if it were complete), or the batch's mean reward per step
        discounted over an endless future (``"mean"``: ``mean / (1 - gamma)``), so that the returns of a
        truncated episode do not fall with the time left (Pardo et al. 2018, "Time Limits in RL"), or the
        baseline's value of the state the time limit cut the episode in (``"value"``: needs ``baseline``, and
        batches that carry that state, ``EpisodeBatch.last_observations``; the rollouts' batches do).
    :param normalize: advantage normalisation: over the whole batch, per episode, or none.
    :param normalize_observations: scale the policy's inputs by running statistics (see ``ObservationNormalizer``).
    :param passes: gradient passes over each batch (1: the textbook update; the default 2 reuses each
        batch for a second step, as Tianshou's REINFORCE does).
    :param minibatch_size: steps per gradient step within a pass (None: the whole batch).
    :param baseline: subtract a learnt state value V(s) from the returns (REINFORCE with baseline).
    :param value_learning_rate: Adam learning rate of the baseline.
    :param entropy_coef: weight of the entropy bonus in the policy's loss (it keeps the policy exploring
        while no reward tells its actions apart).
    :param max_grad_norm: clip each network's gradient to this norm (None: no clipping).
    :param target_kl: the most a gradient step may move the policy, as the mean KL divergence over the batch's
        states from the policy that sampled it: a step beyond it is halved along its direction until within (a
        backtracking line search, as TRPO's), and the batch's remaining passes are skipped (as PPO's users
        stop their epochs). None: no limit.
    :param log_std_init: the initial log standard deviation of a Gaussian policy (continuous actions; 0:
        std 1; Spinning Up's VPG and Tianshou's REINFORCE start at -0.5, std 0.61).
    :param action_bound: how a Gaussian's sample ``u`` becomes an action inside a Box's bounds: clipped to
        them (``"clip"``), or squashed into them, ``low + (high - low) * (tanh(u) + 1) / 2`` (``"tanh"``, as
        Tianshou's REINFORCE for MuJoCo; it needs finite bounds). Either way the policy learns from ``u``:
        a fixed invertible map of the sample leaves the score function, and so the gradient, unchanged.
    """

    hidden_sizes: tuple[int, ...] = setting((64,), "units of each hidden layer")
    activation: str = setting("tanh", "hidden activation: elu, relu, tanh, gelu or silu", choices=ACTIVATION_NAMES)
    init: Initialization = setting("orthogonal", "orthogonal (output x 0.01), or default: PyTorch's")
    learning_rate: float = setting(0.01, "Adam learning rate of the policy")
    gamma: float = setting(0.99, "discount factor of the returns")
    bootstrap: Bootstrap = setting("mean", "after a time limit: mean / (1 - gamma), V(s), or none")
    normalize: Normalization = setting("batch", "advantage normalisation: batch, episode or none")
    normalize_observations: bool = setting(True, "scale the policy's inputs by running statistics")
    passes: int = setting(2, "gradient passes over each batch; 1: the textbook update")
    minibatch_size: int | None = setting(None, "steps per gradient step; none: the whole batch")
    baseline: bool = setting(False, "subtract a learnt state value V(s) from the returns")
    value_learning_rate: float = setting(0.01, "Adam learning rate of the baseline V(s)")
    entropy_coef: float = setting(0.02, "weight of the entropy bonus in the loss")
    max_grad_norm: float | None = setting(None, "clip each network's gradient norm; none: no clipping")
    target_kl: float | None = setting(None, "most KL a step may move the policy; none: no limit")
    log_std_init: float = setting(0.0, "initial log std of a Gaussian policy")
    action_bound: ActionBound = setting("clip", "a Gaussian sample into a Box's bounds: clip or tanh")

    def __post_init__(self) -> None:
        check_types(self)
        self.hidden_sizes = tuple(int(size) for size in self.hidden_sizes)
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {list(self.hidden_sizes)}")
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATION_NAMES)}")
        # a non-finite hyper-parameter would put NaN or infinity into the first update's weights
        for name in ("learning_rate", "value_learning_rate"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0 and finite, got {getattr(self, name)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.bootstrap == "mean" and self.gamma >= 1:
            raise ValueError(
                "bootstrap mean needs gamma < 1 (an endless future of rewards has no finite sum): give a gamma "
                "below 1, or bootstrap none"
            )
        if self.bootstrap == "value" and not self.baseline:
            raise ValueError(
                "bootstrap value needs the baseline's V(s): turn the baseline on (--baseline), or bootstrap mean "
                "or none"
            )
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.minibatch_size is not None and self.minibatch_size < 1:
            raise ValueError(f"minibatch_size must be >= 1 or none, got {self.minibatch_size}")
        check_entropy_coef(self.entropy_coef)
        if not LOG_STD_RANGE[0] <= self.log_std_init <= LOG_STD_RANGE[1]:
            raise ValueError(
                f"log_std_init must be in [{LOG_STD_RANGE[0]}, {LOG_STD_RANGE[1]}], got {self.log_std_init}"
            )
        if self.target_kl is not None and not (math.isfinite(self.target_kl) and self.target_kl > 0):
            raise ValueError(f"target_kl must be > 0 and finite, or none (no limit), got {self.target_kl}")
        if self.max_grad_norm is not None and not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be > 0 and finite, or none (no clipping), got {self.max_grad_norm}")

    def check_distributed(self) -> None:
        """Raise a one-line ``ValueError`` unless updates can be shared among processes."""
        if self.minibatch_size is not None:  # processes would take different numbers of gradient steps
            raise ValueError("minibatch_size is not supported with several processes yet: leave it unset")


def check_types(settings: Any) -> None:
    """Refuse, with a ``ValueError`` naming the setting, a value that is not of the setting's annotated type
    (``Config(total_env_steps="3000")``): it would fail later as a ``TypeError`` far from its cause. Numpy's
    numbers count as numbers, a list as a tuple; a bool is not a number here."""
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        value, kind = getattr(settings, f.name), hints[f.name]
        if typing.get_origin(kind) is Literal and value not in typing.get_args(kind):
            raise ValueError(f"unknown {f.name} {value!r}: choose one of {', '.join(typing.get_args(kind))}")
        if not _of_type(value, kind):
            raise ValueError(f"{f.name} must be {_type_name(kind)}, got {value!r}")


def _of_type(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_of_type(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, (tuple, list)) and all(_of_type(item, args[0]) for item in value)
    if kind in (int, float):
        return isinstance(value, numbers.Integral if kind is int else numbers.Real) and not isinstance(value, bool)
    return kind is Any or (value is None if kind is type(None) else isinstance(value, kind))


def _type_name(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is tuple:
        return f"a sequence of {_type_name(args[0])}"
    return "none" if kind is type(None) else kind.__name__
