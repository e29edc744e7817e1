"""Every script's --help, as a user reads it."""

import os
import re
import runpy
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(
    name for name in os.listdir(os.path.join(ROOT, "scripts")) if name.endswith(".py")
)


def option_entries(text):
    """{option: its whole entry, lines joined} of an argparse --help text:
    an entry starts on a line indented by two spaces and a dash, and its
    help text goes on over the lines indented further."""
    entries, current = {}, None
    for line in text.splitlines():
        if re.match(r"^  -", line):
            current = line.split()[0].rstrip(",")
            entries[current] = line.strip()
        elif current is not None and re.match(r"^   +\S", line):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def test_option_entries_reads_continuation_lines():
    text = (
        "options:\n"
        "  -h, --help  show this help message and exit\n"
        "  --train-size TRAIN_SIZE\n"
        "                        train on N images (default:\n"
        "                        all) (default: 4000)\n"
        "\n"
        "  --out OUT   folder (default: docs)\n"
    )
    entries = option_entries(text)
    assert entries["--train-size"].endswith("(default: all) (default: 4000)")
    assert entries["--out"] == "--out OUT   folder (default: docs)"


def help_text(script, capsys, monkeypatch):
    """What `python scripts/<script> --help` prints; it must exit with 0."""
    path = os.path.join(ROOT, "scripts", script)
    monkeypatch.setattr(sys, "argv", [path, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(path, run_name="__main__")
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_states_each_default_once(script, capsys, monkeypatch):
    entries = option_entries(help_text(script, capsys, monkeypatch))
    assert "-h" in entries  # the entries were read
    for entry in entries.values():
        assert len(re.findall(r"default:", entry)) <= 1, entry
        # argparse shows a default of None as "None", which cannot be typed.
        assert "(default: None)" not in entry, entry


def test_the_main_jobs_help_names_its_options_and_log_folder(capsys, monkeypatch):
    entries = option_entries(help_text("cnn_dropout.py", capsys, monkeypatch))
    for option in ("--epochs", "--seed", "--seeds", "--out", "--variants", "--dataset"):
        assert option in entries
    assert "logs/cnn_dropout" in entries["--out"]
