"""Every random stream of a run, derived from its seed and what it is for.

Each update's episodes (and, with several workers, each worker's action sampling) and each evaluation
are seeded afresh from (run seed, stream, index, rank), so a batch depends only on the run's seed, its
index and the policy: a resumed run needs no environment state, and evaluating, however often, never
changes training. The greedy and the sampled evaluations have streams of their own, so that adding one
never moves the other. A single process samples its actions with the agent's own generator, which its
checkpoint keeps.
"""

from __future__ import annotations

import numpy as np

TRAINING, EVALUATION, VIDEO, SAMPLING, SAMPLED_EVALUATION, BEST_EVALUATION = range(6)  # the streams


def derive_seed(seed: int, *keys: int) -> int:
    """A seed for one purpose (stream, index, rank, ...) derived from the run's seed."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def update_seeds(seed: int, update: int, rank: int, workers: int) -> tuple[int, np.random.Generator | None]:
    """The seed of update ``update``'s episodes on worker ``rank``, and the generator its actions are
    sampled with (None: the agent's own, for a single worker, whose streams stay those of a plain run)."""
    if workers == 1:
        return derive_seed(seed, TRAINING, update), None
    keys = (update, rank)
    return derive_seed(seed, TRAINING, *keys), np.random.default_rng(derive_seed(seed, SAMPLING, *keys))
