"""Files saved by earlier versions: their agent files load, act as they did and learn on."""

import math

import numpy as np
import pytest
from builders import ROOT

from agents import EpisodeBatch, ReinforceAgent

AGENTS_OF_EARLIER_VERSIONS = {  # saved by the code at commit 9dcef84's parent; the greedy actions they took there
    "agent_bernoulli.pt": [1, 1, 0, 0, 1],
    "agent_gaussian_baseline.pt": [
        [-0.07778120785951614, 0.06871512532234192],
        [-0.02841952256858349, 0.10448499768972397],
        [0.14444106817245483, 0.13962560892105103],
        [0.11802976578474045, 0.13744373619556427],
        [0.027521280571818352, 0.12555187940597534],
    ],
}


@pytest.mark.parametrize("name", AGENTS_OF_EARLIER_VERSIONS)
def test_agent_files_saved_by_earlier_versions_load_act_alike_and_learn_on(name):
    agent = ReinforceAgent.load(ROOT / "tests" / "data" / name)
    probe = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(agent.act(probe, deterministic=True), AGENTS_OF_EARLIER_VERSIONS[name], rtol=1e-6)
    observations = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    episode = (observations, agent.sample(observations)[1], np.linspace(-1, 1, 6, dtype=np.float32))
    stats = agent.update(EpisodeBatch.from_episodes([episode, episode]))
    assert stats["skipped_steps"] == 0 and all(math.isfinite(v) for v in stats.values())
