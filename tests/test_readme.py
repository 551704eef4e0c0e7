"""The README's Python example runs as written."""

import math
import re
from pathlib import Path


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert (tmp_path / "cartpole.pt").is_file()
    assert all(math.isfinite(v) for v in namespace["stats"].values())
