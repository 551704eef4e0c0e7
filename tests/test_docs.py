"""The README and docs/ as a reader meets them: short enough to read, every link resolving, no development history,
and every shell command either run here as written, run by another named test or by CI, or listed as deliberately
long with the reason; and docs/api.md's promise that every public function has type hints and a ``:param:`` line
for each parameter."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import agents
import envs
import training

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = (".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".yaml", "")  # every text file a reader may open
HISTORY = re.compile(r"session [0-9]|sessions [0-9]|issue [0-9]|the issue[']s|candidate [A-Z]\b", re.I)

RUN = "run here"
# Every command of a ```bash block in README.md and docs/, and how it is kept working. "run here" commands are run
# below, as written, from a folder holding the project's train.py and bench/ (``runs/<run>`` is a finished run).
COMMANDS: dict[str, str] = {
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e . && python train.py": (
        "CI: .ci/run makes the same environment with the test extra; the same run with --seed 3 is run here"
    ),
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e ".[test]" && ruff check . && '
    "ruff format --check . && pytest": "CI: .ci/run is this command (checked below)",
    "python train.py --seed 3": RUN,
    "python train.py --preset seed": RUN,
    "python train.py --preset textbook": RUN,
    "python train.py --env Acrobot-v1 --preset tuned": "long: the suite's 500,000 env steps, no early stop (3 min)",
    "python train.py --heuristic --max-episode-steps 200": RUN,
    "python train.py --watch runs/<run>": RUN,
    "python train.py --resume runs/<run>": RUN,
    "python train.py --env InvertedPendulum-v5": RUN,
    "python train.py --help": RUN,
    "reinforce-train --help": (
        "tests/test_installed.py::test_the_console_command_helps_trains_and_refuses_bad_input_in_its_own_name"
    ),
    "PYTHONPATH=. python train.py --env my_envs:Corridor-v0": (
        "tests/test_own_environment.py::test_train_watch_and_resume_an_environment_of_one_s_own"
    ),
    "python -m bench.suite --out bench/measured --table-only --seeds 1-5": RUN,
    "python -m bench.suite --out bench/measured --table-only --seeds 1-5 --plot suite.png": RUN,
    "python -m bench.solve --seeds 1 --no-process": RUN,
    "torchrun --standalone --nproc_per_node=2 train.py": RUN,
    "python train.py --env CartPol-v1": (
        "tests/test_bad_input.py::test_bad_input_gives_one_line_status_2_and_writes_nothing"
    ),
    "python train.py --no-stop-when-solved --total-env-steps 1000000 --eval-every-steps 250000": (
        "tests/test_checkpoints.py::test_a_signal_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one"
    ),
    "pytest tests/test_bad_input.py tests/test_failures.py tests/test_checkpoints.py": "CI: part of the test command",
    "torchrun --standalone --nproc_per_node=2 train.py --preset textbook --seed 1": (
        "tests/test_distributed.py::test_torchrun_trains_one_run_with_two_workers"
    ),
    "torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 train.py": (
        "long: needs a second machine"
    ),
    "torchrun --nnodes=2 --node_rank=1 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 train.py": (
        "long: needs a second machine"
    ),
    "python -m bench.scaling -- --preset textbook": "long: a timing, 6 runs alternating (2 min)",
    "python -m bench.scaling --num-envs 64 --episodes-per-update 64 --updates 50 -- --preset textbook": (
        "long: a timing, 6 runs of up to 3M env steps (3 min)"
    ),
    "python -m bench.scaling --updates 30 -- --env Acrobot-v1 --preset textbook": "long: a timing, 6 runs (2 min)",
    "python -m bench.scaling --updates 30 -- --env Acrobot-v1 --preset textbook --vectorization async": (
        "long: a timing, 16 processes on the machine's cores (4 min)"
    ),
    'pip install -e ".[cluster]"': "install: downloads Ray; the test extra has it, and tests/test_suite_ray.py runs it",
    "ray start --head --port=6379": "long: starts a cluster's head daemon, which outlives the command",
    "ray start --address=HEAD:6379": "long: needs a second machine",
    "python -m bench.suite --seeds 1-10 --ray auto": "long: the whole suite on a running cluster (tens of hours)",
    "rsync -a NODE:PATH/suite/runs/ suite/runs/": "long: needs a second machine",
    "python -m bench.suite --envs CartPole-v1,Acrobot-v1 --seeds 1,2 --out ray-cost-plain -- --total-env-steps 50000 "
    "--no-stop-when-solved --eval-episodes 10": "long: a timing (30 s), meaningless beside other tests",
    "python -m bench.suite --envs CartPole-v1,Acrobot-v1 --seeds 1,2 --out ray-cost-ray --ray -- --total-env-steps "
    "50000 --no-stop-when-solved --eval-episodes 10": "long: a timing with Ray (30 s), meaningless beside tests",
    'pip install -e ".[suite]"': "install: downloads packages; the tests use the test extra, which CI installs",
    "python -m bench.solve --no-process": "long: 20 seeds, both criteria (3 min)",
    "python -m bench.solve --seeds 21-40 --no-process": "long: 20 seeds, both criteria (3 min)",
    "python -m bench.solve --no-process -- --preset tuned": "long: 20 seeds, both criteria (3 min)",
    "python -m bench.solve --seeds 21-40 --no-process -- --preset tuned": "long: 20 seeds, both criteria (3 min)",
    "python -m bench.solve --no-process -- --preset textbook": "long: 20 seeds, one runs to 425,000 steps (10 min)",
    "python -m bench.solve --no-process -- --preset textbook --bootstrap mean": "long: 20 seeds (10 min)",
    "python -m bench.throughput -- --preset textbook": "long: four batch sizes up to 1,024 envs (2 min)",
    "python -m bench.threads --rounds 5": "long: a timing, 10 runs alternating; meaningless beside tests",
    "python -m bench.threads --rounds 5 --busy 1": "long: a timing with a busy core; meaningless beside tests",
    "python -m bench.solve --seeds 1-20 --criterion greedy --check-every 10000 --no-process -- --env Acrobot-v1": (
        "long: 20 Acrobot seeds (30 min)"
    ),
    "python -m bench.solve --seeds 21-40 --criterion greedy --check-every 10000 --no-process -- --env Acrobot-v1": (
        "long: 20 Acrobot seeds (12 min)"
    ),
    "python -m bench.solve --seeds 1-20 --criterion greedy --check-every 10000 --no-process -- --env Acrobot-v1 "
    "--preset tuned": "long: 20 Acrobot seeds (12 min)",
    "python -m bench.solve --seeds 1-10 --criterion greedy --check-every 10000 --no-process -- --env Acrobot-v1 "
    "--preset textbook": "long: unsolved seeds train 500,000 steps (1 h)",
    "python -m bench.solve --seeds 1-10 --budget 200000 --criterion greedy --check-every 10000 --no-process -- "
    "--env Acrobot-v1 --preset textbook --bootstrap mean": "long: 10 Acrobot seeds (30 min)",
    "python -m bench.solve --seeds 1-3 --criterion greedy --no-process -- --env InvertedPendulum-v5": (
        "long: 3 MuJoCo seeds with 100-episode checks (5 min)"
    ),
    "python -m bench.suite --envs InvertedPendulum-v5,Reacher-v5,InvertedDoublePendulum-v5 --seeds 1-5": (
        "long: the suite, 15 runs of 3M env steps (2 h)"
    ),
    "python -m bench.suite --envs Hopper-v5 --seeds 1-3": "long: the suite, 3 runs of 3M env steps (1 h)",
    "python train.py --watch suite/runs/Hopper-v5__suite__2__*": "long: needs the suite's Hopper-v5 seed 2 (1 h)",
    "python train.py --watch suite/runs/Ant-v5__suite__1__*/best_model.pt": (
        "long: needs the suite's Ant-v5 seed 1 (35 min)"
    ),
    "python train.py --watch suite/runs/Humanoid-v5__suite__1__*": (
        "long: needs the suite's Humanoid-v5 seed 1 (20 min on 2 workers)"
    ),
    "python -m bench.suite --envs Humanoid-v5 --seeds 1-3 --workers 2": (
        "long: the suite, 3 runs of 3M env steps on 2 workers (1 h)"
    ),
    "python -m bench.suite --envs Humanoid-v5 --seeds 1-3 --workers 2 --out humanoid-no-baseline -- --no-baseline": (
        "long: 3 runs of 3M env steps on 2 workers (1 h)"
    ),
    "python -m bench.suite --envs Hopper-v5 --seeds 1,2 --out hopper-gamma-0.99 -- --log-std-init -0.5 --gamma 0.99": (
        "long: 2 runs of 3M env steps (40 min)"
    ),
    "python -m bench.suite --envs Hopper-v5 --seeds 1-3,21-23 --out hopper-log-std-0.5 -- --log-std-init -0.5": (
        "long: 6 runs of 3M env steps (1.5 h)"
    ),
    "python -m bench.suite --envs Hopper-v5 --seeds 1-3,21-23 --out hopper-baseline -- --log-std-init -0.5 "
    "--baseline": "long: 6 runs of 3M env steps (1.5 h)",
    "python -m bench.suite --envs Hopper-v5 --seeds 21-23 --out hopper-held-out": (
        "long: 3 runs of 3M env steps (45 min)"
    ),
    "python -m bench.suite --envs HalfCheetah-v5,Swimmer-v5 --seeds 1-5 --workers 2": (
        "long: the suite, 10 runs of 3M env steps (1.5 h)"
    ),
    "python -m bench.suite --envs Walker2d-v5,Ant-v5,Humanoid-v5 --seeds 1-3 --workers 2": (
        "long: the suite, 9 runs of 3M env steps (4 h)"
    ),
    "python -m bench.suite --envs Pendulum-v1,MountainCarContinuous-v0,MountainCar-v0,CartPole-v1,Acrobot-v1 "
    "--seeds 1-5": "long: the suite, 25 runs of 0.5M-1M env steps (2 h)",
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-5": "long: the suite, 5 runs of 3M env steps (1.2 h)",
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-5 --out lunarlander-gamma-0.999 -- --bootstrap mean "
    "--gamma 0.999": "long: 5 runs of 3M env steps (1.2 h)",
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-5,21-23 --out lunarlander-bootstrap-mean -- --bootstrap "
    "mean": "long: 8 runs of 3M env steps (2 h)",
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-4 --out lunarlander-bootstrap-none -- --bootstrap none": (
        "long: 4 runs of 3M env steps (1 h)"
    ),
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-2 --out lunarlander-anneal-entropy -- --bootstrap mean "
    "--anneal-entropy": "long: 2 runs of 3M env steps (30 min)",
    "python train.py --watch lunarlander-anneal-entropy/runs/LunarLander-v3__suite__2__* --watch-episodes 5": (
        "long: needs the LunarLander-v3 runs with --anneal-entropy (30 min)"
    ),
    "python -m bench.suite --envs LunarLander-v3 --seeds 21-25 --out lunarlander-held-out": (
        "long: 5 runs of 3M env steps (1.2 h)"
    ),
    "python -m bench.suite --envs Acrobot-v1 --seeds 21-25 --out acrobot-held-out": (
        "long: the suite, 5 runs of 500,000 env steps (20 min)"
    ),
    "python -m bench.launchers --envs HalfCheetah-v5,Humanoid-v5 --steps 50000 --repeats 3": (
        "long: a timing of three launchers, repeated (10 min)"
    ),
    "python -m bench.suite --envs HalfCheetah-v5 --seeds 1 --workers 2 --out sweep-halfcheetah -- "
    "--total-env-steps 1000000 --log-std-init -1": "long: 1M MuJoCo env steps (10 min)",
    "python -m bench.suite --envs Walker2d-v5 --seeds 1 --workers 2 --out sweep-walker -- --total-env-steps 1000000 "
    "--hidden-sizes 64 64 --log-std-init -0.5": "long: 1M MuJoCo env steps (15 min)",
    "python -m bench.suite --envs Pendulum-v1 --seeds 1-5 --out pendulum-gaussian -- --discretize-actions none "
    "--log-std-init -1 --threads none": "long: 5 runs of 1M env steps (40 min)",
    "python -m bench.suite --envs Acrobot-v1 --seeds 1-5 --out acrobot-constant -- --no-anneal-lr": (
        "long: 5 runs of 500,000 env steps (25 min)"
    ),
    "python -m bench.suite --envs LunarLander-v3 --seeds 1-3 --out lunar-constant -- --bootstrap mean "
    "--no-anneal-lr": "long: 3 runs of 3M env steps (45 min)",
}


def bash_commands(page: Path) -> list[str]:
    """The commands of a page's ```bash blocks, one per line, without their trailing comments."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def test_the_readme_is_read_in_ten_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def test_every_command_is_run_or_listed_with_a_reason():
    found = {command for page in PAGES for command in bash_commands(page)}
    assert found == set(COMMANDS), (
        f"commands without an entry: {sorted(found - set(COMMANDS))}; "
        f"entries no page has: {sorted(set(COMMANDS) - found)}"
    )
    for command, how in COMMANDS.items():
        if how.startswith("tests/"):
            path, name = how.split("::")
            assert f"def {name}(" in (ROOT / path).read_text(), (command, how)
        else:
            assert how == RUN or how.startswith(("CI: ", "long: ", "install: ")), (command, how)


def test_ci_runs_the_readme_test_command():
    test_command = next(command for command in bash_commands(ROOT / "README.md") if command.endswith("pytest"))
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == test_command


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """A folder as a user's clone has it (train.py, bench/) with one finished run in ``runs/``."""
    folder = tmp_path_factory.mktemp("clone")
    for name in ("train.py", "bench"):
        (folder / name).symlink_to(ROOT / name)
    short = ["--total-env-steps", "3000", "--eval-episodes", "5", "--no-gif"]
    subprocess.run([sys.executable, "train.py", *short], cwd=folder, check=True, capture_output=True, timeout=300)
    (run,) = (folder / "runs").iterdir()
    return folder, run.relative_to(folder)


@pytest.mark.parametrize("command", [command for command, how in COMMANDS.items() if how == RUN])
def test_the_command_runs_as_written(command, user_folder):
    folder, run = user_folder
    words = [sys.executable if word == "python" else word for word in command.replace("runs/<run>", str(run)).split()]
    result = subprocess.run(words, cwd=folder, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    if command == "python train.py --seed 3":  # the quick start shows what it prints
        shown = re.search(r"python train.py --seed 3\n```\n.*?```\n(.*?)```", README.read_text(), re.S).group(1)
        assert same_but_times(result.stdout.splitlines()[-len(shown.splitlines()) :]) == same_but_times(
            shown.splitlines()
        )


def same_but_times(lines: list[str]) -> list[str]:
    """Printed lines without what differs between two runs: the seconds of training, the run folder's time."""
    return [
        re.sub(r"__\d+\b", "__<time>", re.sub(r"[\d.]+ s of training", "<t> s of training", line)) for line in lines
    ]


def prose(page: Path) -> str:
    """A page without its code blocks: a link or a heading in code is not one."""
    return re.sub(r"```.*?```", "", page.read_text(), flags=re.S)


def relative_links(page: Path) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)) if not re.match(r"[a-z]+:", target)]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", prose(page), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_resolves(page):
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target} has no such heading"


def test_no_development_history_in_the_project():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix in SOURCES and path.is_file():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                assert not HISTORY.search(line), f"{name}:{number}: {line.strip()}"


def public_functions() -> list:
    """The functions (not the classes) that the ``__all__`` of ``agents``, ``envs`` and ``training`` export."""
    return [
        item
        for package in (agents, envs, training)
        for item in (getattr(package, name) for name in package.__all__)
        if inspect.isfunction(item)
    ]


def test_every_public_function_has_a_docstring_type_hints_and_a_param_line_for_each_parameter():
    functions, missing = public_functions(), []
    for function in functions:
        name, doc = f"{function.__module__}.{function.__qualname__}", inspect.getdoc(function) or ""
        if not doc:
            missing.append(f"{name}: no docstring")
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.annotation is parameter.empty:
                missing.append(f"{name}: {parameter.name} has no type hint")
            if not re.search(rf"^:param {parameter.name}:", doc, re.M):
                missing.append(f"{name}: no ':param {parameter.name}:' line")
    assert functions, "no public function found"
    assert not missing, "\n".join(missing)
