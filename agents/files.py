"""What the project writes and reads: files written atomically (checkpoints, JSON, any bytes), checkpoints read
without ever running code from them and checked against what they are loaded into, and the agent's own file
format (``ReinforceAgent.state_dict``: plain data and tensors, format ``reinforce-agent/1``), all with one-line
errors. The run's files (``training/run_files.py``) are written through these."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from agents.config import AgentConfig
from agents.spaces import space_from_dict, space_to_dict


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit what it is loaded for."""


TEMPORARY_SUFFIX = ".tmp"  # of the hidden files written before their rename: ``.<name>.<random>.tmp``
_UMASK = os.umask(0o022)  # read once, at import (os.umask can only read by setting), and put back
os.umask(_UMASK)


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temporary file in the same folder, flushed and synced, then renamed over ``path``:
    a crash at any point leaves either the old file or the new one, never half of one; a failure (a full
    disk) removes the temporary file. Only a ``kill -9`` mid-write can leave one behind (see
    ``remove_temporary_files``)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    except OSError as error:  # it would name the temporary file, not the one asked for
        raise type(error)(error.errno, f"cannot write {path}: {error.strerror}") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as a plain open() would make it: mkstemp's files are private
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporary_files(folder: str | os.PathLike) -> None:
    """Remove the temporary files that interrupted ``write_atomically`` calls left in ``folder`` (only safe
    while no other process writes there)."""
    for leftover in Path(folder).glob(f".*.*{TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def save_atomically(state: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` through ``write_atomically``."""
    write_atomically(path, lambda file: torch.save(state, file))


def write_json(path: str | os.PathLike, data: Any) -> None:
    """``data`` as JSON, atomically; non-finite numbers as ``null`` (bare NaN is not JSON)."""
    text = json.dumps(_finite_or_none(data), indent=2, allow_nan=False)
    write_atomically(path, lambda file: file.write(text.encode()))


def _finite_or_none(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite_or_none(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_none(value) for value in data]
    return data


def load_safely(path: str | os.PathLike, expected: str = "a checkpoint file") -> Any:
    """``torch.load(weights_only=True)``, which never runs code from the file, with one-line errors.

    :param path: the file to read.
    :param expected: what the caller reads, named in the error when ``path`` is a folder or nothing.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: give the path of {expected}")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give the path of {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an untrusted file can fail the unpickler in many ways; all mean "unreadable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or unsafe: {reason[:100]})"
        ) from None


def _floating_tensors(tree: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every floating-point tensor in nested dicts and lists, with its path (``policy.net.0.weight``)."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point():
            yield path, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _floating_tensors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _floating_tensors(value, f"{path}.{index}")


def check_tensors(saved: dict[str, Any], blueprint: dict[str, Any], modules: Sequence[str]) -> None:
    """A one-line ``CheckpointError`` unless every floating-point tensor of ``saved`` is finite (a NaN in a
    weight or in Adam's moments would spread to every action and update) and each module's tensors in
    ``saved`` have the names and shapes of its tensors in ``blueprint``, the state of what they are loaded
    into (torch's own mismatch message runs over many lines). With a blueprint built on the meta device,
    a saved config whose layers differ from the saved tensors (say, 10**9 units) is refused before anything
    is allocated, so loading never needs more memory than the file's own tensors; a fixed cap on layer sizes
    would be arbitrary, and would refuse honest large networks.

    :param saved: the loaded state.
    :param blueprint: the state of the object to load into, whose tensors may be shapes only ("meta").
    :param modules: the keys of ``blueprint`` that hold a module's ``state_dict``.
    """
    for path, tensor in _floating_tensors(saved):
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"the checkpoint holds non-finite values in {path}: load an earlier checkpoint")
    for module in (name for name in modules if name in blueprint):
        expected, found = blueprint[module], saved.get(module)
        if not isinstance(found, dict) or found.keys() != expected.keys():
            raise CheckpointError(f"the checkpoint's {module} does not hold the tensors its config makes")
        for key, tensor in expected.items():
            if not isinstance(found[key], torch.Tensor) or found[key].shape != tensor.shape:
                shape = tuple(found[key].shape) if isinstance(found[key], torch.Tensor) else type(found[key]).__name__
                raise CheckpointError(
                    f"the checkpoint's {module} tensor {key} has shape {shape}, its config makes {tuple(tensor.shape)}"
                )


def check_moments(optimizer: torch.optim.Optimizer) -> None:
    """A one-line ``CheckpointError`` unless every moment a loaded optimizer keeps for a parameter has the
    parameter's shape (its ``load_state_dict`` does not check them, and the first step would fail)."""
    for group in optimizer.param_groups:
        for index, parameter in enumerate(group["params"]):
            for name, value in optimizer.state.get(parameter, {}).items():
                if name != "step" and isinstance(value, torch.Tensor) and value.shape != parameter.shape:
                    raise CheckpointError(
                        f"the checkpoint's optimizer {name} of parameter {index} has shape {tuple(value.shape)}, "
                        f"the parameter {tuple(parameter.shape)}"
                    )


def does_not_fit(error: Exception) -> CheckpointError:
    """The one-line ``CheckpointError`` for a checkpoint that cannot be loaded into an agent, whatever
    failed on the way (a ``CheckpointError`` already says why)."""
    if isinstance(error, CheckpointError):
        return error
    reason = f"{type(error).__name__}: {str(error).strip()}".splitlines()[0][:200]
    return CheckpointError(f"checkpoint does not fit the agent ({reason})")


# ----------------------------------------------------------------------------- the agent's file format
AGENT_FORMAT = "reinforce-agent/1"
Agent = TypeVar("Agent")  # ReinforceAgent, which imports this module


def agent_state(agent: Any) -> dict[str, Any]:
    """What ``ReinforceAgent.state_dict`` holds for ``agent`` (a ``ReinforceAgent``): the config, the spaces
    as plain data, the networks, Adam's states and the agent's random generator (for an exact resume)."""
    state = {
        "format": AGENT_FORMAT,
        "config": asdict(agent.config),
        "observation_space": space_to_dict(agent.observation_space),
        "action_space": space_to_dict(agent.action_space),
        "policy": agent.policy.state_dict(),
        "optimizer": agent.optimizer.state_dict(),
        "rng": agent.rng.bit_generator.state,
    }
    if agent.value is not None:
        state |= {"value": agent.value.state_dict(), "value_optimizer": agent.value_optimizer.state_dict()}
    return state


def agent_from_state(agent_class: type[Agent], state: dict[str, Any]) -> Agent:
    """The agent ``agent_state`` described, checked before and after loading: a one-line ``CheckpointError``
    if it does not fit or is not finite. Config fields this version does not know are dropped."""
    if not isinstance(state, dict) or state.get("format") != AGENT_FORMAT:
        raise CheckpointError(f"not a {AGENT_FORMAT} checkpoint")
    try:
        known = {f.name for f in fields(AgentConfig)}
        config = AgentConfig(**{k: v for k, v in state["config"].items() if k in known})
        agent_spaces = space_from_dict(state["observation_space"]), space_from_dict(state["action_space"])
        # the config's networks first as shapes only ("meta" tensors, no memory), checked against the saved
        # tensors: a config asking for other layers, however large, is refused before any is allocated
        with torch.device("meta"):
            check_tensors(state, agent_class(*agent_spaces, config).state_dict(), ("policy", "value"))
        agent = agent_class(*agent_spaces, config)
        agent.policy.load_state_dict(state["policy"])
        agent.optimizer.load_state_dict(state["optimizer"])
        agent.rng.bit_generator.state = state["rng"]
        if agent.value is not None:
            agent.value.load_state_dict(state["value"])
            agent.value_optimizer.load_state_dict(state["value_optimizer"])
        for optimizer in agent.optimizers:  # the policy's and the baseline's
            check_moments(optimizer)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise does_not_fit(error) from None
    return agent
