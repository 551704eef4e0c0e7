"""The suite's report (bench/suite.py): the markdown table beside the anchors, rliable's interquartile
means with stratified bootstrap confidence intervals, the learning curves. It reads only DIR/results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from agents.files import write_json
from bench.anchors import ANCHORS, NO_ANCHOR
from bench.common import BadFile, is_number, read_json, seed_list


def result_path(out: Path, env: str, seed: int) -> Path:
    return out / "results" / f"{env.replace('/', '-')}__{seed}.json"


RESULT_KEYS = ("env", "seed", "config", "env_steps", "final_eval", "eval_curve", "train_return_end", "wall_seconds")
REDO = "remove it, and the same command trains that run again"


def result_fault(result: Any) -> str | None:
    """What keeps ``result`` (a per-run JSON) from being read as the suite writes it, or None."""
    if not isinstance(result, dict):
        return f"a JSON {type(result).__name__}, not an object"
    missing = [key for key in RESULT_KEYS if key not in result]
    if missing:
        return f"no {', '.join(missing)}"
    if not isinstance(result["config"], dict) or not isinstance(result["seed"], int):
        return "its config is not an object, or its seed not a whole number"
    curve = result["eval_curve"]
    if not isinstance(curve, list) or not all(
        isinstance(point, list) and len(point) == 2 and all(map(is_number, point)) for point in curve
    ):
        return "its eval_curve is not a list of [env steps, return] numbers"
    final = result["final_eval"]
    if not (
        isinstance(final, dict) and isinstance(final.get("greedy"), dict) and is_number(final["greedy"].get("mean"))
    ):
        return "its final_eval has no greedy mean"
    numbers_or_none = ("train_return_end", "wall_seconds")
    if not is_number(result["env_steps"]) or any(
        not (result[k] is None or is_number(result[k])) for k in numbers_or_none
    ):
        return "its env_steps, train_return_end or wall_seconds is not a number"
    return None


def read_result(path: Path) -> dict:
    """One run's result JSON, checked (a ``BadFile`` naming what is wrong)."""
    if path.exists() and not path.is_file():
        raise BadFile(f"{path} is not a result file (a folder): {REDO}")
    return read_json(path, "a result of the suite", REDO, result_fault)


def load_results(out: Path, env: str, seeds: list[int]) -> list[dict]:
    paths = [result_path(out, env, seed) for seed in seeds]
    return [read_result(path) for path in paths if path.exists()]


def aligned(results: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The k-th checks of every seed, for the k all seeds have: mean env steps (k,), returns (seeds, k)."""
    checks = min(len(r["eval_curve"]) for r in results)
    points = np.array([r["eval_curve"][:checks] for r in results], dtype=float).reshape(len(results), checks, 2)
    return points[:, :, 0].mean(axis=0), points[:, :, 1]


def shown(value: float | None, spread: float | None = None, prefix: str = "") -> str:
    if value is None:
        return "-"
    return f"{prefix}{value:.1f}" + ("" if spread is None else f" ± {spread:.1f}")


def reaching(results: list[dict], target: float | None) -> str:
    """How many seeds' greedy evaluations reached ``target`` at some check, of how many ("-": no target)."""
    if target is None:
        return "-"
    return f"{sum(max(point[1] for point in r['eval_curve']) >= target for r in results)}/{len(results)}"


def table(envs: list[str], seeds: list[int], out: Path) -> dict[str, list[dict]]:
    """Print the markdown table; the results per environment."""
    print(
        "| environment | seeds | ours: best seed-mean eval | ours: final eval | ours: best model, re-evaluated "
        "| ours: training return, last 10% | Tianshou 3M | Tianshou 10M | Spinning Up VPG 3M | target "
        "| seeds at target | env steps | wall s |"
    )
    print("|---" * 13 + "|")
    found = {}
    for env in envs:
        results = found[env] = load_results(out, env, seeds)
        anchor = ANCHORS.get(env, NO_ANCHOR)
        theirs = [shown(*(anchor.tianshou_3m or (None,))), shown(*(anchor.tianshou_10m or (None,)))]
        theirs += [shown(anchor.spinning_up, prefix="~"), shown(anchor.target)]
        ours = ["-"] * 4 + theirs + ["-", "-", "-"]
        if results and all(r["eval_curve"] for r in results):
            finals = [r["final_eval"]["greedy"]["mean"] for r in results]
            # the best check's agent on fresh episodes (results from before best_model.pt have none)
            bests = [(r.get("best_eval") or {}).get("reevaluated") for r in results]
            best = [b["mean"] for b in bests if b is not None] if all(bests) else []
            ends = [r["train_return_end"] for r in results if r["train_return_end"] is not None]
            walls = [r["wall_seconds"] or 0.0 for r in results]
            workers = sorted({r.get("workers", 1) for r in results} - {1})  # torchrun's processes per run
            ours = [
                shown(float(aligned(results)[1].mean(axis=0).max())),
                shown(float(np.mean(finals)), float(np.std(finals))),
                shown(float(np.mean(best)), float(np.std(best))) if best else "-",
                shown(float(np.mean(ends)) if ends else None),
                *theirs,
                reaching(results, anchor.target),
                f"{np.mean([r['env_steps'] for r in results]):,.0f}",
                f"{sum(walls):,.0f}" + (f" ({'/'.join(map(str, workers))} workers)" if workers else ""),
            ]
        print(f"| {env} | {seed_list([r['seed'] for r in results])} | " + " | ".join(ours) + " |")
    print(
        "\nseeds: the seeds whose results were found, of --seeds; best seed-mean eval: the maximum over checks of"
        "\nthe mean over seeds of the greedy evaluation (Tianshou's metric); final eval: the last greedy evaluation,"
        "\nmean ± std over seeds of each seed's mean; best model, re-evaluated: each seed's best check's agent"
        "\n(best_model.pt) on fresh episodes at the end, mean ± std over seeds; training return: the stochastic"
        "\ntraining batches over the last 10% of training (what Spinning Up plots); seeds at target: the seeds"
        "\nwhose greedy evaluation reached the target at some check."
    )
    return found


def random_return(env: str, out: Path, episodes: int = 10) -> float:
    """A uniform-random policy's mean return over ``episodes`` seeded episodes, measured once and kept."""
    path = out / "results" / f"random__{env.replace('/', '-')}.json"
    if path.is_file():

        def fault(saved: Any) -> str | None:
            return None if isinstance(saved, dict) and is_number(saved.get("mean")) else "no mean return"

        return read_json(path, "a random policy's return", REDO, fault)["mean"]
    from envs import make_env, time_limit

    environment, returns = make_env(env), []
    environment.action_space.seed(0)
    for episode in range(episodes):
        environment.reset(seed=episode)
        total = 0.0
        for _ in range(time_limit(env)):  # bounded: the time limit ends the episode by then
            _, reward, terminated, truncated, _ = environment.step(environment.action_space.sample())
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    environment.close()
    write_json(path, {"env": env, "episodes": episodes, "returns": returns, "mean": float(np.mean(returns))})
    return float(np.mean(returns))


# A bootstrap resamples the seeds of each environment: from one seed every resample is that seed, and the
# interval [x, x] would only repeat the estimate.
ONE_SEED = "(one seed: no interval)"


def interquartile_means(found: dict[str, list[dict]], out: Path, reps: int = 2000) -> None:
    """rliable's IQM with 95% stratified bootstrap confidence intervals: per environment over seeds, and
    over the environments with a Tianshou anchor on normalised scores."""
    try:
        from rliable import library, metrics
    except ImportError:
        print('\nrliable is not installed: pip install -e ".[suite]" adds the IQMs with bootstrap confidence intervals')
        return

    def iqm(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores)])

    def estimate(scores: dict[str, np.ndarray]) -> tuple[dict, dict]:
        # rliable's StratifiedBootstrap draws its resamples from numpy's global generator (np.random.choice),
        # whatever random_state it is given: seeding that one makes the printed intervals the same on every run
        np.random.seed(0)
        return library.get_interval_estimates(scores, iqm, reps=reps)

    finals = {env: {r["seed"]: r["final_eval"]["greedy"]["mean"] for r in runs} for env, runs in found.items() if runs}
    if not finals:
        return
    points, intervals = estimate({env: np.array(list(by_seed.values()))[:, None] for env, by_seed in finals.items()})
    print(f"\nIQM of the final greedy returns over seeds, 95% stratified bootstrap CI (rliable, {reps} samples):")
    for env in finals:
        low, high = intervals[env][:, 0]
        shown_interval = f"[{low:.1f}, {high:.1f}] (seeds: {len(finals[env])})" if len(finals[env]) > 1 else ONE_SEED
        print(f"  {env}: {points[env][0]:.1f} {shown_interval}")
    anchored = [env for env in finals if ANCHORS.get(env) and ANCHORS[env].tianshou_3m]
    seeds = sorted(set.intersection(*(set(finals[env]) for env in anchored))) if anchored else []
    if not seeds:
        return
    columns = []
    for env in anchored:
        random, anchor = random_return(env, out), ANCHORS[env].tianshou_3m[0]
        columns.append([(finals[env][seed] - random) / (anchor - random) for seed in seeds])
    points, intervals = estimate({"all": np.array(columns).T})
    low, high = intervals["all"][:, 0]
    shown_interval = f"[{low:.2f}, {high:.2f}]" if len(seeds) > 1 else ONE_SEED
    over = f"{_count(len(anchored), 'environment')} x {_count(len(seeds), 'seed')}"
    print(
        f"aggregate IQM of (ours - random) / (Tianshou 3M - random) over {over}: {points['all'][0]:.2f} "
        f"{shown_interval} (1 = Tianshou's 3M figure)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def plot(found: dict[str, list[dict]], path: str) -> None:
    """Per environment: the seeds' mean greedy evaluation and their min-max band against env steps, the
    Tianshou 3M anchor dashed, the target dotted."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('--plot needs matplotlib: pip install -e ".[suite]"', file=sys.stderr)
        return
    envs = [env for env, results in found.items() if results and all(r["eval_curve"] for r in results)]
    if not envs:
        print("--plot: no results to draw", file=sys.stderr)
        return
    columns = min(3, len(envs))
    rows = -(-len(envs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for axis, env in zip(axes.flat, envs):
        steps, returns = aligned(found[env])
        axis.plot(steps, returns.mean(axis=0), lw=1.5, label=f"ours: mean over seeds ({len(returns)})")
        axis.fill_between(steps, returns.min(axis=0), returns.max(axis=0), alpha=0.25, label="min-max over seeds")
        anchor = ANCHORS.get(env)
        if anchor and anchor.tianshou_3m:
            axis.axhline(anchor.tianshou_3m[0], color="red", ls="--", lw=1, label="Tianshou REINFORCE, 3M")
        if anchor and anchor.target is not None:
            axis.axhline(anchor.target, color="black", ls=":", lw=1, label="target")
        axis.set(title=env, xlabel="env steps", ylabel="greedy evaluation return")
        axis.legend(fontsize=7, loc="lower right")
    for axis in axes.flat[len(envs) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"curves: {path}", file=sys.stderr)
