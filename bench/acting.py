"""How long one call of ``agent.sample_unchecked`` takes: the per-step cost of acting in a rollout (the numpy
path, which a rollout calls at every step), for each head (Bernoulli, Categorical, Gaussian) and batch size. Each
row is the median over ``--repeats`` rounds of the mean time of ``--calls`` calls on fresh observations; the
slowest round is printed beside it.

    python -m bench.acting
    python -m bench.acting --batches 1,16,256 --repeats 5 --out acting.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

from agents import AgentConfig, ReinforceAgent

OBSERVATIONS = spaces.Box(-1.0, 1.0, (4,), np.float32)
HEADS = {
    "Bernoulli (2 actions)": spaces.Discrete(2),
    "Categorical (3 actions)": spaces.Discrete(3),
    "Gaussian (2 dimensions)": spaces.Box(-1.0, 1.0, (2,), np.float32),
}


def seconds_per_call(agent: ReinforceAgent, batch: int, calls: int) -> float:
    observations = np.random.default_rng(0).uniform(-1, 1, (calls, batch, 4)).astype(np.float32)
    agent.sample_unchecked(observations[0])  # the numpy copy is taken at the first call
    started = time.perf_counter()
    for obs in observations:
        agent.sample_unchecked(obs)
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,16,256", help="observations per call (default: 1,16,256)")
    parser.add_argument("--calls", type=int, default=5000, help="calls per round (default: 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--out", help="write the rows as JSON")
    args = parser.parse_args()
    rows = []
    for head, action_space in HEADS.items():
        agent = ReinforceAgent(OBSERVATIONS, action_space, AgentConfig(), seed=0)
        for batch in (int(b) for b in args.batches.split(",")):
            rounds = [seconds_per_call(agent, batch, args.calls) for _ in range(args.repeats)]
            rows.append({"head": head, "batch": batch, "median_us": 1e6 * float(np.median(rounds)), "rounds": rounds})
            print(f"{head:24} | batch {batch:4d} | {rows[-1]['median_us']:7.1f} us (slowest {1e6 * max(rounds):.1f})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
