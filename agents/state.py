"""The agent's saved state (``ReinforceAgent.state_dict``: plain data and tensors, format
``reinforce-agent/1``) and the agent rebuilt from it, checked before anything is loaded."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

import torch

from agents.checkpoint import CheckpointError, check_moments, check_tensors, does_not_fit
from agents.config import AgentConfig
from agents.spaces import space_from_dict, space_to_dict

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
        for optimizer in agent._optimizers:  # the policy's and the baseline's
            check_moments(optimizer)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise does_not_fit(error) from None
    return agent
