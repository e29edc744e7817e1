"""The experiments' tables: CSV files, printed tables, mean and std over
seeds."""

import csv
import os

import numpy as np


def decimals(column):
    """Decimals a printed table gives the floats of `column`: 2 for a
    percentage (a name ending in "%", e.g. "test_error_%"), 1 for
    "seconds", 4 for every other quantity (losses, rates, fractions, AUROC),
    so that a column reads in one unit and one precision."""
    column = str(column)
    for suffix in ("_mean", "_std"):
        column = column.removesuffix(suffix)
    if column.endswith("%"):
        return 2
    if column.startswith("seconds") or column.endswith("seconds"):
        return 1
    return 4


def format_value(value, column=""):
    """`value` as a table cell of `column`: a float in fixed notation with
    `decimals(column)` decimals (never scientific notation), a list as its
    items joined by spaces, anything else as `str`.

    Example:

    ```python
    from kdrop.experiments.tables import format_value

    assert format_value(3.6, "test_error_%") == "3.60"
    assert format_value(0.00025, "test_loss") == "0.0003"
    ```
    """
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{decimals(column)}f}"
    if isinstance(value, (list, tuple)):
        return " ".join(format_value(item, column) for item in value)
    return str(value)


def format_mean_std(mean, std, seeds, column=""):
    """ "mean +- std" of `column` over `seeds` runs, both with
    `decimals(column)` decimals; the mean alone for a single run, whose
    spread is unknown, not 0.

    Example:

    ```python
    from kdrop.experiments.tables import format_mean_std

    assert format_mean_std(3.6, 0.5568, 3, "test_error_%") == "3.60 +- 0.56"
    assert format_mean_std(3.6, 0.0, 1, "test_error_%") == "3.60"
    ```
    """
    text = format_value(float(mean), column)
    if seeds >= 2:
        text += f" +- {format_value(float(std), column)}"
    return text


def write_csv(rows, path):
    """Writes `rows` (dicts with the same keys) to `path` as CSV."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {
                key: format_value(value, key)
                if isinstance(value, (list, tuple))
                else value
                for key, value in row.items()
            }
            for row in rows
        )


def _merge_mean_std(row):
    """A row with each `<c>_mean`, `<c>_std` pair as one cell `<c>`,
    `format_mean_std` over the row's "seeds" (2 if it has none)."""
    merged = {}
    for column, value in row.items():
        base = column.removesuffix("_mean")
        if column.endswith("_std") and column.removesuffix("_std") + "_mean" in row:
            continue
        if base != column and f"{base}_std" in row:
            merged[base] = format_mean_std(
                value, row[f"{base}_std"], row.get("seeds", 2), base
            )
        else:
            merged[column] = value
    return merged


def format_table(rows):
    """`rows` (dicts with the same keys) as the text of a printed table:
    right-aligned columns, a rule under the header, each float in its
    column's unit and precision (`format_value`), each `<c>_mean`,
    `<c>_std` pair merged into one column `<c>` (`format_mean_std`).

    Example:

    ```python
    from kdrop.experiments.tables import format_table

    rows = [{"variant": "a", "seeds": 1, "loss_mean": 0.1, "loss_std": 0.0}]
    assert format_table(rows).splitlines()[-1] == "      a      1  0.1000"
    ```
    """
    rows = [_merge_mean_std(row) for row in rows]
    columns = list(rows[0])
    table = [columns] + [
        [format_value(row[column], column) for column in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def report(rows, out, name="summary.csv"):
    """Writes `rows` (dicts with the same keys) to `out/name` as CSV, prints
    them as a table and returns the table text."""
    write_csv(rows, os.path.join(out, name))
    text = format_table(rows)
    print("\n" + text)
    print(f"(written to {os.path.join(out, name)})")
    return text


def mean_std(values):
    """Mean and sample standard deviation (n - 1 in the denominator, 0 for
    a single value) of `values`."""
    values = np.asarray(values, dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def aggregate(rows, by, columns):
    """One row per value of `rows[i][by]`, in order of first appearance:
    `{by, seeds (rows averaged), <column>_mean, <column>_std}` for each of
    `columns`, over the rows with that value (`mean_std`)."""
    groups = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    result = []
    for key, group in groups.items():
        summary = {by: key, "seeds": len(group)}
        for column in columns:
            summary[f"{column}_mean"], summary[f"{column}_std"] = mean_std(
                [row[column] for row in group]
            )
        result.append(summary)
    return result


def report_seeds(rows, out, by, columns):
    """Writes the per-seed `rows` to `out/summary.csv` and their `aggregate`
    over seeds to `out/aggregate.csv`, prints the aggregate (`format_table`:
    "mean +- std" with two seeds or more, the value alone with one) and
    returns the aggregate rows."""
    write_csv(rows, os.path.join(out, "summary.csv"))
    summary = aggregate(rows, by, columns)
    write_csv(summary, os.path.join(out, "aggregate.csv"))
    print("\n" + format_table(summary))
    spread = (
        "mean +- sample std over seeds"
        if max(row["seeds"] for row in summary) >= 2
        else "one seed: the values alone, their spread unknown"
    )
    print(
        f"({spread}; one row per seed in "
        f"{os.path.join(out, 'summary.csv')}, the aggregate in aggregate.csv)"
    )
    return summary
