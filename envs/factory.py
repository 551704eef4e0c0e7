"""Building Gymnasium environments, with one-line errors for what cannot be built: unknown ids, missing
packages, unsupported spaces, and environments without a time limit."""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import math
import os
import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers import DiscretizeAction, TimeLimit

from agents import check_spaces
from envs.contract import first_line
from envs.workers import in_worker

EnvFactory = Callable[..., gym.Env]  # makes one environment (of a class of one's own, say)
VECTORIZATIONS: tuple[str, ...] = ("auto", "vector_entry_point", "sync", "async")
# What bounds the loops over an environment whose time limit they are not told (an environment of a user's own
# given to collect_episodes or play_episode): longer than any of Gymnasium's own limits (Atari's 108,000 frames).
LONGEST_EPISODE = 1_000_000
# The most joint actions --discretize-actions may make (bins ** action dimensions): one logit each.
MOST_ACTION_BINS = 4096


def episode_too_long(max_episode_steps: int) -> ValueError:
    """The one-line error of a loop over an environment whose episode outlasted its bound."""
    return ValueError(
        f"an episode ran past {max_episode_steps} steps without ending: give the environment a time limit, "
        "or a larger max_episode_steps"
    )


def untrusted_module(saved_env: str, given_env: str | None, source: str) -> None:
    """A one-line ``ValueError`` when ``saved_env`` is ``module:EnvId`` and the user did not name that same id:
    importing a module runs its code, and a file from elsewhere (a shared run folder) may name one it brings
    along. Naming it on the command line (or to ``fit``) is the user's choice.

    :param saved_env: the environment id read from a file.
    :param given_env: the id the user gave (None: none given).
    :param source: the file the id was read from, as the message names it (its path, or "the run's checkpoint").
    """
    module = saved_env.rpartition(":")[0]
    if module and given_env != saved_env:
        raise ValueError(
            f"{source} names the environment {saved_env!r}, whose module {module!r} would be imported (its code "
            f"run): to trust it, give the environment yourself (--env {saved_env})"
        )


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registry entry of ``env_id``, or a one-line ``ValueError`` (with close matches for a typo).

    :param env_id: a Gymnasium id, or ``module:EnvId``, Gymnasium's form for an environment of one's own:
        ``module`` is imported first and registers ``EnvId`` (``gymnasium.register``); every process that makes
        the environment imports it.
    """
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except (Exception, SystemExit) as error:  # the module is the user's code: any error on import is theirs
            reason = first_line(error)
            missing = isinstance(error, ModuleNotFoundError) and f"{module}.".startswith(f"{error.name}.")
            fix = "add its folder to PYTHONPATH (PYTHONPATH=. for the current one)" if missing else "fix the module"
            raise ValueError(
                f"cannot import {module!r} for the environment {env_id!r} ({type(error).__name__}: {reason}): {fix}"
            ) from None
    try:
        return gym.spec(name)
    except gym.error.Error:
        if module:
            raise ValueError(
                f"{module} registers no environment {name!r}: call gymnasium.register({name!r}, entry_point=...) in it"
            ) from None
        close = difflib.get_close_matches(env_id, gym.registry.keys(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium.pprint_registry() for the ids"
        raise ValueError(f"unknown environment id {env_id!r}: {hint}") from None


def time_limit(env: str | EnvFactory, max_episode_steps: int | None = None) -> int:
    """The most steps an episode of ``env`` lasts.

    :param env: a Gymnasium id, or a callable that makes one environment (made, and closed, to read its own limit).
    :param max_episode_steps: the time limit, returned as it is when given; without it, the environment's own.
        An environment without one is refused with a one-line ``ValueError``: its episodes, and so every loop
        over them, might never end (Gymnasium's CliffWalking-v1 has none).
    """
    if max_episode_steps is not None:
        return max_episode_steps
    limit = check_env_id(env).max_episode_steps if isinstance(env, str) else _made_limit(env)
    if limit is None:
        raise no_time_limit(env_name(env))
    return limit


def no_time_limit(name: str) -> ValueError:
    return ValueError(f"{name} has no time limit, so an episode may never end: give --max-episode-steps N")


def env_name(env: str | EnvFactory) -> str:
    """An id as it is; a callable by its name, made safe in a folder name (``Corridor``)."""
    if isinstance(env, str):
        return env
    name = getattr(env, "__name__", None) or type(env).__name__
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "env"


def _own_limit(env: gym.Env) -> int | None:
    """The time limit an environment carries: its registry entry's, or that of a ``TimeLimit`` among its
    wrappers (a class of one's own wrapped by hand has no registry entry)."""
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return env.spec.max_episode_steps
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit):
            return env._max_episode_steps
        env = env.env
    return None


def _made_limit(factory: EnvFactory) -> int | None:
    """The time limit of the environment ``factory`` makes (see ``_own_limit``)."""
    return _read_made(factory, _own_limit)


def made_spec(factory: EnvFactory) -> gym.envs.registration.EnvSpec | None:
    """The registry entry of the environment ``factory`` makes (one made by ``gymnasium.make`` has one; an
    instance of one's own class has none)."""
    return _read_made(factory, lambda env: env.spec)


def _read_made(factory: EnvFactory, read: Callable[[gym.Env], Any]) -> Any:
    """``read`` of one environment ``factory`` makes, closed afterwards."""
    env = factory()
    try:
        return read(env)
    finally:
        env.close()


def _gymnasium_extra(module: str) -> str | None:
    """The extra of Gymnasium's package that installs ``module`` (``jax``: ``jax``), from the package's own
    requirements; None if none does."""
    try:
        requirements = importlib.metadata.requires("gymnasium") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        found = re.match(r'([\w.\-]+).*extra == "([\w\-]+)"', requirement)
        if found and found.group(1).lower().replace("_", "-") == module.lower().replace("_", "-"):
            return found.group(2)
    return None


def _cannot_build(env_id: str, error: BaseException) -> ValueError:
    """One line for an environment whose construction failed: on an import, what to install where it is known."""
    text = str(error).strip()
    extra = re.search(r'pip install "?([\w.\-]+\[[\w\-,]+\])"?', text)  # as Gymnasium's DependencyNotInstalled says
    if extra:
        return ValueError(f'{env_id} needs a package that is not installed: run pip install "{extra.group(1)}"')
    if isinstance(error, ModuleNotFoundError) and error.name:
        gym_extra = _gymnasium_extra(error.name.split(".")[0])
        fix = f'run pip install "gymnasium[{gym_extra}]"' if gym_extra else "install the package that provides it"
        return ValueError(f"{env_id} needs the module {error.name}, which is not installed: {fix}")
    reason = f"{type(error).__name__}: {first_line(error)}" if text else type(error).__name__
    return ValueError(f"{env_id} cannot be built ({reason}): fix the environment, or the settings it is made with")


def make_env(
    env: str | EnvFactory,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    action_bins: int | None = None,
) -> gym.Env:
    """One environment, for rendering and single-environment use.

    :param env: a Gymnasium id whose spaces the agent supports, or a callable that makes one such environment.
    :param max_episode_steps: the time limit (None: the environment's own; an environment without one is
        refused, see ``time_limit``).
    :param render_mode: Gymnasium's render mode, ``"human"`` or ``"rgb_array"`` for example (None: no rendering);
        a callable is given it only when it takes one.
    :param action_bins: discretise the actions into this many values per dimension (``discretize_actions``).
    """
    if isinstance(env, str):
        check_env_id(env)
        kwargs = {} if render_mode is None else {"render_mode": render_mode}  # an environment may take no arguments
        build = functools.partial(gym.make, env, max_episode_steps=max_episode_steps, **kwargs)
    else:
        build = functools.partial(_own_env, env, max_episode_steps, render_mode)
    return _checked(env, max_episode_steps, lambda: discretize_actions(build(), action_bins))


def _own_env(factory: EnvFactory, max_episode_steps: int | None, render_mode: str | None) -> gym.Env:
    """What ``factory`` makes, asked to render in ``render_mode`` where it takes one, cut at ``max_episode_steps``."""
    env = factory(render_mode=render_mode) if render_mode is not None and _takes_render_mode(factory) else factory()
    if not isinstance(env, gym.Env):
        raise ValueError(f"{env_name(factory)} made {type(env).__name__}, not a gymnasium.Env: return the environment")
    for name in ("observation_space", "action_space"):
        if not isinstance(getattr(env, name, None), spaces.Space):
            raise ValueError(f"{env_name(factory)} has no {name}: set one (a gymnasium.spaces.Space) in its __init__")
    return env if max_episode_steps is None else TimeLimit(env, max_episode_steps)


def _takes_render_mode(factory: EnvFactory) -> bool:
    """Whether ``factory`` takes a ``render_mode`` argument (a class or function without one makes an environment
    that does not draw)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return False
    return any(p.name == "render_mode" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def discretize_actions(env: gym.Env, bins: int | None) -> gym.Env:
    """``env`` with each dimension of its Box actions split into ``bins`` evenly spaced values, the centres of
    ``bins`` equal intervals (Gymnasium's ``DiscretizeAction``): one Discrete action per combination, for a
    categorical policy over them (Tang and Agrawal, 2020). ``env`` itself for ``bins`` None; a one-line
    ``ValueError`` (``env`` closed) for actions that are not a Box, or too many combinations."""
    if bins is None:
        return env
    space, name = env.action_space, env.spec.id if env.spec else "the environment"
    problem = None
    if bins < 2:
        problem = f"--discretize-actions {bins}: give 2 or more values per action dimension"
    elif not isinstance(space, spaces.Box):
        problem = f"{name}'s actions are {space}, not a Box: leave --discretize-actions unset"
    elif bins ** int(math.prod(space.shape)) > MOST_ACTION_BINS:
        problem = (
            f"--discretize-actions {bins} on {name}'s {math.prod(space.shape)} action dimensions makes "
            f"{bins}^{math.prod(space.shape)} joint actions, more than {MOST_ACTION_BINS}: give fewer bins"
        )
    if problem:
        env.close()
        raise ValueError(problem)
    return DiscretizeAction(env, bins)


def _checked(env_id: str | EnvFactory, max_episode_steps: int | None, build: Callable[[], Any]) -> Any:
    """The environment (or vector environment) ``build`` makes, if the agent supports its spaces and its
    episodes are bounded; one-line errors otherwise, and a missing package named."""
    try:
        env = build()
    except ValueError:  # ours, one line each (discretize_actions), or the environment's own
        raise
    except (Exception, SystemExit) as error:  # a missing package, or the environment's code failing
        raise _cannot_build(env_name(env_id), error) from None
    try:
        check_spaces(*_spaces(env))
        if isinstance(env_id, str):
            time_limit(env_id, max_episode_steps)
        elif isinstance(env, gym.Env) and max_episode_steps is None and _own_limit(env) is None:
            raise no_time_limit(env_name(env_id))  # what the callable made must carry its own limit
    except ValueError:
        env.close()
        raise
    return env


def _spaces(env: gym.Env | VectorEnv) -> tuple[spaces.Space, spaces.Space]:
    if isinstance(env, VectorEnv):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def make_vector_env(
    env: str | EnvFactory,
    num_envs: int,
    max_episode_steps: int | None = None,
    vectorization: str = "auto",
    action_bins: int | None = None,
) -> VectorEnv:
    """``num_envs`` copies of ``env`` stepped together; ``"auto"`` takes the environment's native vector
    implementation where it has one (CartPole does), else ``SyncVectorEnv``.

    Every mode autoresets NEXT_STEP: the rollout masks the reset step (see ``envs.rollout``).

    :param env: a Gymnasium id whose spaces the agent supports, or a callable that makes one such environment.
    :param num_envs: sub-environments stepped together.
    :param max_episode_steps: the time limit (None: the environment's own; an environment without one is
        refused, see ``time_limit``).
    :param vectorization: one of ``VECTORIZATIONS`` (``"auto"`` with ``action_bins`` or a callable: sync, which
        takes wrappers).
    :param action_bins: discretise the actions into this many values per dimension (``discretize_actions``).
    """
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"unknown vectorization {vectorization!r}: choose one of {', '.join(VECTORIZATIONS)}")
    if not isinstance(env, str) or vectorization == "async":
        return _vector_of_envs(env, num_envs, max_episode_steps, vectorization, action_bins)
    env_id, spec = env, check_env_id(env)
    if vectorization == "auto":
        native = spec.vector_entry_point is not None and action_bins is None
        vectorization = "vector_entry_point" if native else "sync"
    if vectorization == "vector_entry_point" and action_bins is not None:
        raise ValueError("--discretize-actions wraps each environment: use --vectorization sync or async")
    if vectorization == "vector_entry_point" and spec.vector_entry_point is None:
        raise ValueError(f"{env_id} has no native vector implementation: use --vectorization sync or async")
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    if vectorization != "vector_entry_point":
        kwargs["vector_kwargs"] = {"autoreset_mode": AutoresetMode.NEXT_STEP}
        if action_bins is not None:
            make_env(env_id, max_episode_steps, action_bins=action_bins).close()  # its one-line errors, here
            kwargs["wrappers"] = [lambda env: DiscretizeAction(env, action_bins)]
    return _checked(
        env_id, max_episode_steps, lambda: gym.make_vec(env_id, num_envs, vectorization_mode=vectorization, **kwargs)
    )


def _vector_of_envs(
    env: str | EnvFactory, num_envs: int, max_episode_steps: int | None, vectorization: str, action_bins: int | None
) -> VectorEnv:
    """``make_vector_env`` for a callable, and for any environment in async mode: Gymnasium's sync or async
    vector environment of ``make_env``'s environments; an async worker leaves the stop signals to the main process."""
    if vectorization == "vector_entry_point":
        raise ValueError("an environment made by a callable has no native vector implementation: use sync or async")
    make_env(env, max_episode_steps, action_bins=action_bins).close()  # its one-line errors, here
    build = functools.partial(make_env, env, max_episode_steps, action_bins=action_bins)
    if vectorization == "async":
        return AsyncVectorEnv(
            [functools.partial(in_worker, build, os.getpid())] * num_envs, autoreset_mode=AutoresetMode.NEXT_STEP
        )
    return SyncVectorEnv([build] * num_envs, autoreset_mode=AutoresetMode.NEXT_STEP)
