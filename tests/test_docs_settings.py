"""docs/settings.md against the settings themselves: every field of ``Config`` in its ``--help`` group, with its
default and the presets' values as the code has them, and no setting that does not exist."""

import re

import pytest
from builders import ROOT

import train
from training import Config, make_config
from training.command_line import flag_value
from training.settings import GROUPS

ROW = re.compile(r"^\| `([a-z_]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|([^|]+)\|$")  # setting, default, 2 presets, meaning
PRESETS_SHOWN = ("textbook", "seed")


def documented() -> dict[str, list[tuple[str, ...]]]:
    """The rows of the doc's tables of settings, by the title of their section."""
    sections, title = {}, None
    for line in (ROOT / "docs" / "settings.md").read_text().splitlines():
        if line.startswith("## "):
            title = line.removeprefix("## ").lower()
        elif row := ROW.match(line):
            sections.setdefault(title, []).append(tuple(cell.strip() for cell in row.groups()))
    return sections


def help_groups(monkeypatch, capsys) -> dict[str, list[str]]:
    """The settings of ``python train.py --help`` by group, as field names."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit:
        train.main(["--help"])
    assert exit.value.code == 0
    groups, title = {}, None
    for line in capsys.readouterr().out.splitlines():
        if heading := re.fullmatch(r"([a-z ]+):", line):
            title = heading.group(1)
        elif title not in (None, "modes") and (flag := re.match(r"  --(?:\[no-\])?([a-z-]+)", line)):
            groups.setdefault(title, []).append(flag.group(1).replace("-", "_"))
    return groups


def test_every_setting_is_documented_once_in_its_group_and_nothing_else():
    assert {title: [row[0] for row in rows] for title, rows in documented().items()} == {
        group: list(names) for group, names in GROUPS.items()
    }
    assert list(documented()) == list(GROUPS)  # in --help's order


def test_the_documented_defaults_and_preset_values_are_the_codes():
    defaults = Config()
    presets = [make_config({}, name) for name in PRESETS_SHOWN]
    for rows in documented().values():
        for name, default, *in_presets, meaning in rows:
            value = getattr(defaults, name)
            assert default == flag_value(value), name
            in_code = [getattr(preset, name) for preset in presets]
            assert in_presets == [flag_value(v) if v != value else "" for v in in_code], name
            assert meaning, name


def test_help_shows_the_documented_groups(monkeypatch, capsys):
    assert help_groups(monkeypatch, capsys) == {title: [row[0] for row in rows] for title, rows in documented().items()}
