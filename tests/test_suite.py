"""bench.suite smoke-run on two cheap environments for a few thousand steps (the suite itself is a
benchmark, not a test): results, the table, resuming, --table-only, bad input; and ``--preset tuned``."""

import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest
from builders import ROOT, run_cli

from bench.common import parse_seeds, seed_list
from bench.suite_process import last_words, wall_seconds
from training import TUNED, Config, make_config, parse_args
from training.run_files import lock_folder

SMOKE = ["--", "--total-env-steps", "3000", "--eval-every-steps", "1000", "--eval-episodes", "2"]
ANCHOR_COLUMNS = ("Tianshou 3M", "Tianshou 10M", "Spinning Up VPG 3M", "target")


def suite(*args):
    return subprocess.run([sys.executable, "-m", "bench.suite", *args], capture_output=True, text=True, cwd=ROOT)


def table(stdout):
    """The printed markdown table: its header's columns, and its rows by environment."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    rows = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        rows[cells[0]] = dict(zip(header, cells))
    return header, rows


def test_suite_smoke_run_writes_results_and_a_table_and_does_not_train_again(tmp_path):
    out, png = tmp_path / "suite", tmp_path / "curves.png"
    args = ["--envs", "CartPole-v1,Pendulum-v1", "--seeds", "1", "--out", str(out)]
    first = suite(*args, "--plot", str(png), *SMOKE)
    assert first.returncode == 0, first.stderr
    for env in ("CartPole-v1", "Pendulum-v1"):
        result = json.loads((out / "results" / f"{env}__1.json").read_text())
        steps = [step for step, _ in result["eval_curve"]]
        assert steps and all(later > earlier for earlier, later in zip(steps, steps[1:]))
        assert [step for step, _ in result["sampled_eval_curve"]] == steps  # both evaluations at every check
        assert result["run_dir"].startswith("runs/") and result["config"]["logdir"] == "runs"  # relative to --out
        assert result["config"]["env"] == env and result["config"]["total_env_steps"] == 3000
        assert result["train_curve"] and result["train_return_end"] is not None
        assert set(result["final_eval"]["greedy"]) == {"mean", "std", "min", "max"}
        summary = json.loads((out / result["run_dir"] / "summary.json").read_text())
        assert result["versions"] == summary["versions"] and "mujoco" in result["versions"]  # the test extra's
        best = result["best_eval"]
        assert best["greedy_mean"] == pytest.approx(max(value for _, value in result["eval_curve"]))  # float32 in TB
        assert set(best["reevaluated"]) == {"mean", "std", "min", "max"}
    header, rows = table(first.stdout)
    assert set(ANCHOR_COLUMNS) <= set(header) and set(rows) == {"CartPole-v1", "Pendulum-v1"}
    assert rows["Pendulum-v1"]["seeds"] == "1" and rows["Pendulum-v1"]["target"] == "-400.0"
    assert rows["CartPole-v1"]["ours: final eval"].endswith("± 0.0")  # one seed
    assert rows["CartPole-v1"]["ours: best model, re-evaluated"].endswith("± 0.0")
    assert png.is_file() or importlib.util.find_spec("matplotlib") is None
    folders = sorted(path.name for path in (out / "runs").iterdir())

    again = suite(*args, *SMOKE)  # resumable: nothing is trained twice
    assert again.returncode == 0, again.stderr
    assert "CartPole-v1 seed 1: done" in again.stderr and "Pendulum-v1 seed 1: done" in again.stderr
    assert sorted(path.name for path in (out / "runs").iterdir()) == folders
    assert table(again.stdout) == (header, rows)

    only = suite(*args, "--table-only")
    assert only.returncode == 0, only.stderr
    assert table(only.stdout) == (header, rows) and "training" not in only.stderr

    other = suite(*args, *SMOKE[:2], "4000", *SMOKE[3:])  # one --out, one protocol
    assert other.returncode == 2 and "other settings (total_env_steps)" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_results_and_run_files_that_are_not_what_the_suite_wrote_are_one_line(tmp_path):
    """Truncated or hand-edited results and run settings are one line naming the file, not a traceback; a bad
    sessions file (only wall times) is started again instead of blocking its run."""
    out = tmp_path / "suite"
    args = ["--envs", "CartPole-v1", "--seeds", "1", "--out", str(out)]
    assert suite(*args, *SMOKE).returncode == 0
    result_file = out / "results" / "CartPole-v1__1.json"
    good = json.loads(result_file.read_text())
    broken = {
        "[]": "a JSON list, not an object",
        "{": "JSONDecodeError",
        json.dumps({k: v for k, v in good.items() if k != "config"}): "no config",
        json.dumps({**good, "eval_curve": [[1000, "x"]]}): "eval_curve is not a list of [env steps, return] numbers",
        json.dumps({**good, "final_eval": {}}): "final_eval has no greedy mean",
    }
    for text, fault in broken.items():
        result_file.write_text(text)
        for extra in (["--table-only"], SMOKE) if text == "[]" else (["--table-only"],):  # training reads it first
            refused = suite(*args, *extra)
            assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
            assert refused.stderr.startswith(f"suite.py: error: {result_file} is not a result of the suite")
            assert fault in refused.stderr and refused.stderr.rstrip().endswith("trains that run again")
    result_file.unlink()
    result_file.mkdir()  # a folder where the result should be
    assert "(a folder)" in suite(*args, "--table-only").stderr
    result_file.rmdir()
    run = next(p for p in (out / "runs").iterdir() if p.is_dir())
    (out / "runs" / "CartPole-v1__suite__1.sessions.json").write_text("not json")  # only wall times: started again
    (run / "summary.json").unlink()  # so that the run is trained again, from its checkpoint
    again = suite(*args, *SMOKE)
    assert again.returncode == 0, again.stderr
    assert json.loads(result_file.read_text())["wall_seconds"] > 0
    result_file.unlink()
    (run / "config.json").write_text("not json")
    refused = suite(*args, *SMOKE)
    assert refused.returncode == 2 and f"{run / 'config.json'} is not a run's settings" in refused.stderr


def test_the_table_names_the_seeds_found_and_counts_those_whose_evaluation_reached_the_target(tmp_path):
    out = tmp_path / "suite"
    curves = {1: [-50.0, 210.0, 150.0], 2: [-50.0, 120.0, 190.0]}  # LunarLander-v3's target: 200
    (out / "results").mkdir(parents=True)
    for env in ("LunarLander-v3", "MountainCar-v0"):  # MountainCar-v0 has no target
        for seed, returns in curves.items():
            result = dict(seed=seed, env=env, config={}, env_steps=3000, wall_seconds=1.0, train_return_end=0.0)
            result |= dict(eval_curve=[[1000 * (k + 1), r] for k, r in enumerate(returns)])
            result |= dict(final_eval={"greedy": {"mean": returns[-1], "std": 0.0, "min": 0.0, "max": 0.0}})
            (out / "results" / f"{env}__{seed}.json").write_text(json.dumps(result))
    only = suite("--envs", "LunarLander-v3,MountainCar-v0", "--seeds", "1-3", "--out", str(out), "--table-only")
    assert only.returncode == 0, only.stderr
    rows = table(only.stdout)[1]
    assert rows["LunarLander-v3"]["seeds"] == "1-2"  # those found of the seeds asked for
    assert rows["LunarLander-v3"]["seeds at target"] == "1/2"  # seed 1 at its second check, then below again
    assert rows["LunarLander-v3"]["ours: best seed-mean eval"] == "170.0"  # the checks' means: -50, 165, 170
    assert rows["MountainCar-v0"]["seeds at target"] == "-"
    assert rows["LunarLander-v3"]["ours: best model, re-evaluated"] == "-"  # results from before best_model.pt


def test_the_bootstrap_intervals_are_the_same_on_every_run(tmp_path):
    out = tmp_path / "suite"
    (out / "results").mkdir(parents=True)
    for seed, final in enumerate([-120.0, 40.0, 95.0, 180.0, 230.0], start=1):  # spread: resamples differ
        result = dict(seed=seed, env="LunarLander-v3", env_steps=3000, wall_seconds=1.0, workers=1, config={})
        result |= dict(train_return_end=0.0, eval_curve=[[3000, final]])
        result |= dict(final_eval={"greedy": {"mean": final, "std": 0.0, "min": 0.0, "max": 0.0}})
        (out / "results" / f"LunarLander-v3__{seed}.json").write_text(json.dumps(result))
    runs = [suite("--envs", "LunarLander-v3", "--seeds", "1-5", "--out", str(out), "--table-only") for _ in range(3)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    assert "LunarLander-v3: " in runs[0].stdout and runs[0].stdout == runs[1].stdout == runs[2].stdout


def test_one_seed_gives_iqms_without_an_interval_and_two_seeds_give_one(tmp_path):
    out = tmp_path / "suite"
    (out / "results").mkdir(parents=True)
    args = ["--envs", "InvertedPendulum-v5", "--out", str(out), "--table-only"]  # anchored: the aggregate IQM too
    for seed, final in ((1, 1000.0), (2, 600.0)):
        result = dict(seed=seed, env="InvertedPendulum-v5", env_steps=3000, wall_seconds=1.0, workers=1, config={})
        result |= dict(train_return_end=0.0, eval_curve=[[3000, final]])
        result |= dict(final_eval={"greedy": {"mean": final, "std": 0.0, "min": 0.0, "max": 0.0}})
        (out / "results" / f"InvertedPendulum-v5__{seed}.json").write_text(json.dumps(result))
    one = suite(*args, "--seeds", "1")
    assert one.returncode == 0, one.stderr
    assert "  InvertedPendulum-v5: 1000.0 (one seed: no interval)\n" in one.stdout
    assert "1 environment x 1 seed: 1.00 (one seed: no interval) (1 = Tianshou's 3M figure)" in one.stdout
    two = suite(*args, "--seeds", "1-2")
    assert two.returncode == 0, two.stderr
    per_env, aggregate = (
        re.search(r"InvertedPendulum-v5: .*", two.stdout)[0],
        re.search(r"x 2 seeds: .*", two.stdout)[0],
    )
    assert re.search(r"\[\d+\.\d, \d+\.\d\] \(seeds: 2\)$", per_env) and "no interval" not in per_env
    assert re.search(r"\[\d\.\d\d, \d\.\d\d\] \(1 = ", aggregate) and "no interval" not in aggregate


def test_seed_list_is_the_shortest_text_parse_seeds_reads_back():
    for seeds, text in (([1, 2, 3, 5], "1-3,5"), ([4], "4"), ([0, 2, 3, 4, 7, 8], "0,2-4,7-8")):
        assert seed_list(seeds) == text and parse_seeds(text) == seeds
    assert seed_list([]) == "-"


def test_too_many_seeds_are_refused_before_they_are_listed():
    """1-10000000000 would make a list of ten billion seeds (a MemoryError, or the memory filled)."""
    with pytest.raises(ValueError, match="names more than 10,000 seeds: give fewer"):
        parse_seeds("1-10000000000")
    result = suite("--seeds", "1-10000000000", "--table-only")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr


def test_suite_workers_run_under_torchrun_with_the_same_batch_and_resume_with_their_count(tmp_path):
    out = tmp_path / "suite"
    args = ["--envs", "CartPole-v1", "--seeds", "1", "--out", str(out)]
    first = suite(*args, "--workers", "2", *SMOKE)
    assert first.returncode == 0, first.stderr
    result = json.loads((out / "results" / "CartPole-v1__1.json").read_text())
    assert result["workers"] == 2 and result["env_steps"] >= 3000
    defaults = asdict(Config())  # each of the 2 workers plays half of the preset's batch
    assert result["config"]["num_envs"] * 2 == defaults["num_envs"]
    assert result["config"]["episodes_per_update"] * 2 == defaults["episodes_per_update"]
    assert "(2 workers)" in table(first.stdout)[1]["CartPole-v1"]["wall s"]

    other = suite(*args, *SMOKE)  # one process would change each run's share of the batch
    assert other.returncode == 2 and "or the --workers it was run with" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def suite_at_its_third_update(out, args):
    """A suite started with ``args``, once its first run (CartPole-v1, seed 1) has made 3 updates; its log."""
    command = [sys.executable, "-m", "bench.suite", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    log = out / "runs" / "CartPole-v1__suite__1.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and "update    3" in log.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, "the first run never reached update 3"
        time.sleep(0.2)
    return process, log


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_suite_stops_with_its_run_checkpointed_and_starts_no_other(tmp_path, workers):
    out = tmp_path / "suite"
    args = ["--envs", "CartPole-v1", "--seeds", "1,2", "--out", str(out), "--workers", str(workers)]
    process, _ = suite_at_its_third_update(out, [*args, "--", "--print-every", "1"])
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    # torchrun exits 1 when stopped: the suite must still read it as a stop, not a failed run to pass over
    assert process.returncode == 143, stderr
    assert "stopped during CartPole-v1 seed 1; the same command continues the suite" in stderr
    assert not (out / "runs" / "CartPole-v1__suite__2.log").exists() and not list((out / "results").iterdir())
    (run,) = (out / "runs").glob("CartPole-v1__suite__1__*")
    assert (run / "checkpoint.pt").is_file() and not (run / "model.pt").exists()


def test_a_killed_suite_leaves_no_run_behind_and_one_suite_holds_its_out(tmp_path):
    """kill -9 of the suite stops its train.py, which would otherwise train on as an orphan holding the run's lock
    against the re-run; a second suite on the same --out, which would train every run twice, is refused."""
    out = tmp_path / "suite"
    args = ["--envs", "CartPole-v1", "--seeds", "1", "--out", str(out)]
    flags = ["--", "--total-env-steps", "5000000", "--eval-every-steps", "50000", "--eval-episodes", "2"]
    process, log = suite_at_its_third_update(out, [*args, *flags, "--print-every", "1"])
    deadline = time.monotonic() + 120
    second = suite(*args, *flags)
    assert second.returncode == 2 and "is in use by another suite.py" in second.stderr, second.stderr
    process.kill()
    process.communicate(timeout=60)
    while "SIGTERM: stopped after update" not in log.read_text():  # the run stops as a SIGTERM stops it
        assert time.monotonic() < deadline, "the run went on after its suite was killed"
        time.sleep(0.2)
    (run,) = (out / "runs").glob("CartPole-v1__suite__1__*")
    assert (run / "checkpoint.pt").is_file()
    lock_folder(run, "train.py").close()  # no orphan holds it: the next suite resumes the run


def test_a_failed_run_is_reported_by_its_own_line_and_its_failed_sessions_take_no_wall_time(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("train.py: error: the environment's step raised ...\nTraceback...\n" + "=" * 40 + "\n")
    assert last_words(log) == "train.py: error: the environment's step raised ..."
    log.write_text("[rank0]: RuntimeError: gloo connection closed\n" + "=" * 40 + "\n")  # torchrun frames its report
    assert last_words(log) == "[rank0]: RuntimeError: gloo connection closed"
    sessions = [{"seconds": 100.0, "status": 143}, {"seconds": 3.0, "status": 2}, {"seconds": 50.0, "status": 0}]
    assert wall_seconds(sessions) == 150.0 and wall_seconds(None) is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--envs", "CartPole-v1,Nope-v0"], "no --preset tuned entry for Nope-v0"),
        (["--seeds", "3-x"], "bad seeds"),
        (["--envs", "CartPole-v1", "--workers", "3"], "--workers 3 does not divide CartPole-v1's num_envs 8"),
        (["--workers", "0"], "--workers 0: give 1 or more"),
        (["--plot", "{tmp}/no_folder/curves.png"], "no folder"),  # before hours of runs, not after
        (["--envs", ""], "--envs: no environment named"),
    ],
)
def test_suite_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = suite(*[arg.replace("{tmp}", str(tmp_path)) for arg in args], "--out", str(tmp_path / "suite"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "suite").exists()


def test_preset_tuned_without_an_entry_is_one_line_naming_the_environments_with_one(tmp_path):
    result = run_cli("--env", "FrozenLake-v1", "--preset", "tuned", "--logdir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "--preset tuned has no entry for FrozenLake-v1" in line and all(env in line for env in TUNED)
    assert not (tmp_path / "runs").exists()


def tuned_config(argv):
    flags, mode = parse_args(argv)
    return make_config(flags, mode.preset)


def test_an_unknown_preset_given_to_make_config_is_one_line_naming_the_presets():
    with pytest.raises(ValueError, match=r"^unknown preset 'tunned': choose one of seed, textbook, tuned$"):
        make_config({}, "tunned")


def test_preset_tuned_takes_the_entry_of_the_env_and_flags_override_it():
    config = tuned_config(["--env", "Pendulum-v1", "--preset", "tuned"])
    assert {name: getattr(config, name) for name in TUNED["Pendulum-v1"]} == TUNED["Pendulum-v1"]
    assert (config.total_env_steps, config.eval_episodes, config.stop_when_solved) == (1_000_000, 100, False)
    assert config.exp_name == "tuned"
    protocol_only = tuned_config(["--env", "MountainCar-v0", "--preset", "tuned"])  # an entry without agent settings
    assert protocol_only.agent_config() == Config().agent_config()
    config = tuned_config(["--env", "Pendulum-v1", "--preset", "tuned", "--total-env-steps", "5000"])
    assert config.total_env_steps == 5000 and config.eval_every_steps == TUNED["Pendulum-v1"]["eval_every_steps"]
    assert tuned_config(["--preset", "tuned"]).total_env_steps == TUNED["CartPole-v1"]["total_env_steps"]
    assert TUNED["Hopper-v5"]["eval_episodes"] == 10 and TUNED["Hopper-v5"]["total_env_steps"] == 3_000_000
    # a resumed run keeps its own settings, whatever the preset
    saved = asdict(Config(env="Pendulum-v1", total_env_steps=1234))
    assert make_config({}, "tuned", saved).total_env_steps == 1234


def test_every_stored_result_was_trained_with_its_environments_tuned_entry(tmp_path):
    """The published rows are what `python -m bench.suite` trains today: a change of an entry without
    training its row again fails here. The settings are compared, not the flags that gave them (a row may
    have been trained with flags after `--` that its entry now holds); each worker's share of the batch is
    as the suite gives it."""
    from bench.suite import differences
    from bench.suite_runs import expected_config

    results = sorted((ROOT / "bench" / "measured" / "results").glob("*-v*__*.json"))
    assert {path.name.split("__")[0] for path in results} == set(TUNED)
    for path in results:
        result = json.loads(path.read_text())
        expected = expected_config(result["env"], result["seed"], [], tmp_path, result["workers"])
        assert differences(result["config"], expected) == [], path.name
