"""The experiments' tables: CSV files, printed tables, mean and std over
seeds."""

import csv
import os

import numpy as np


def _cell(value):
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(item) for item in value)
    return str(value)


def write_csv(rows, path):
    """Writes `rows` (dicts with the same keys) to `path` as CSV."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {
                key: _cell(value) if isinstance(value, (list, tuple)) else value
                for key, value in row.items()
            }
            for row in rows
        )


def _table(rows):
    columns = list(rows[0])
    table = [columns] + [[_cell(row[column]) for column in columns] for row in rows]
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
    text = _table(rows)
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
    over seeds to `out/aggregate.csv`, prints the aggregate as "mean +- std"
    and returns the aggregate rows."""
    write_csv(rows, os.path.join(out, "summary.csv"))
    summary = aggregate(rows, by, columns)
    write_csv(summary, os.path.join(out, "aggregate.csv"))
    table = [
        {
            by: row[by],
            "seeds": row["seeds"],
            **{
                column: f"{_cell(row[column + '_mean'])} +- "
                f"{_cell(row[column + '_std'])}"
                for column in columns
            },
        }
        for row in summary
    ]
    print("\n" + _table(table))
    print(
        f"(mean +- sample std over seeds; one row per seed in "
        f"{os.path.join(out, 'summary.csv')}, the aggregate in aggregate.csv)"
    )
    return summary
