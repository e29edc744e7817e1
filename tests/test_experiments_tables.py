"""The experiments' printed tables: one unit and one precision per column,
"mean +- std" only where there is a spread, checked against hand-written
strings."""

import csv

import pytest

from kdrop.experiments import tables


@pytest.mark.parametrize(
    "value, column, expected",
    [
        (3.6, "test_error_%", "3.60"),
        (0.5568, "test_error_%_std", "0.56"),
        (2.85, "test_minus_train_error_%", "2.85"),
        (-0.125, "test_minus_train_error_%", "-0.12"),  # half to even
        (0.00025, "test_loss", "0.0003"),  # not 2.50e-04
        (0.0999, "test_loss_mean", "0.0999"),
        (2.18, "mean_activation", "2.1800"),
        (12.345, "seconds", "12.3"),
        (3, "seeds", "3"),
        ("none", "variant", "none"),
        ([0.5, 0.25], "rates", "0.5000 0.2500"),
    ],
)
def test_format_value(value, column, expected):
    assert tables.format_value(value, column) == expected


def test_format_mean_std():
    assert tables.format_mean_std(3.6, 0.5568, 3, "test_error_%") == "3.60 +- 0.56"
    assert tables.format_mean_std(0.078, 0.00025, 2, "test_loss") == (
        "0.0780 +- 0.0003"
    )
    # One seed: the value alone, not "+- 0".
    assert tables.format_mean_std(3.6, 0.0, 1, "test_error_%") == "3.60"


def seed_rows():
    return [
        {"variant": "none", "seed": 0, "test_error_%": 3.0, "test_loss": 0.1},
        {"variant": "none", "seed": 1, "test_error_%": 4.0, "test_loss": 0.12},
        {"variant": "inverted", "seed": 0, "test_error_%": 2.5, "test_loss": 0.08},
        {"variant": "inverted", "seed": 1, "test_error_%": 2.5, "test_loss": 0.08},
    ]


def test_report_seeds_prints_mean_and_sample_std(tmp_path, capsys):
    summary = tables.report_seeds(
        seed_rows(), str(tmp_path), "variant", ["test_error_%", "test_loss"]
    )
    printed = capsys.readouterr().out
    # none: errors 3, 4 -> 3.5 +- 0.7071; losses 0.1, 0.12 -> 0.11 +- 0.0141.
    expected = "\n".join(
        [
            " variant  seeds  test_error_%         test_loss",
            "--------  -----  ------------  ----------------",
            "    none      2  3.50 +- 0.71  0.1100 +- 0.0141",
            "inverted      2  2.50 +- 0.00  0.0800 +- 0.0000",
        ]
    )
    assert expected in printed
    assert "(mean +- sample std over seeds;" in printed
    assert summary[0]["test_error_%_std"] == pytest.approx(0.5**0.5)
    # The CSV files keep every digit.
    with open(tmp_path / "aggregate.csv") as handle:
        saved = list(csv.DictReader(handle))
    assert float(saved[0]["test_loss_std"]) == pytest.approx(0.02 / 2**0.5)


def test_report_seeds_with_one_seed_prints_the_values_alone(tmp_path, capsys):
    rows = [row for row in seed_rows() if row["seed"] == 1]
    tables.report_seeds(rows, str(tmp_path), "variant", ["test_error_%", "test_loss"])
    printed = capsys.readouterr().out
    expected = "\n".join(
        [
            " variant  seeds  test_error_%  test_loss",
            "--------  -----  ------------  ---------",
            "    none      1          4.00     0.1200",
            "inverted      1          2.50     0.0800",
        ]
    )
    assert expected in printed
    assert "+-" not in printed.replace("(one seed", "")
    assert "one seed: the values alone" in printed


def test_report_merges_mean_and_std_columns(tmp_path, capsys):
    rows = [
        {
            "prediction": "mc",
            "seeds": 3,
            "accuracy_mean": 0.9468,
            "accuracy_std": 0.00412,
            "nll_mean": 0.171234,
            "nll_std": 0.0002,
        },
        {
            "prediction": "deterministic",
            "seeds": 1,
            "accuracy_mean": 0.94,
            "accuracy_std": 0.0,
            "nll_mean": 0.2,
            "nll_std": 0.0,
        },
    ]
    text = tables.report(rows, str(tmp_path), "calibration.csv")
    assert text == "\n".join(
        [
            "   prediction  seeds          accuracy               nll",
            "-------------  -----  ----------------  ----------------",
            "           mc      3  0.9468 +- 0.0041  0.1712 +- 0.0002",
            "deterministic      1            0.9400            0.2000",
        ]
    )
    assert "0.171234" in (tmp_path / "calibration.csv").read_text()
