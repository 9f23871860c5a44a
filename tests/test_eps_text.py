"""One way to write a budget in report tables, headings and plot labels (render.format's
eps_text): k/255 for whole grey levels, else the shortest decimal; CSVs keep raw floats."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_publish import synthetic_board, write_run

from robustbench_gan.publish.leaderboards import publish
from robustbench_gan.render.format import eps_text, markdown_table, robust_accuracy_matrix


@pytest.mark.parametrize(
    ("eps", "text"),
    [
        (0.0, "0"), (8 / 255, "8/255"), (2 / 255, "2/255"), (0.00784313725490196, "2/255"),
        (3 / 255, "3/255"), (16 / 255, "16/255"), (0.1, "0.1"), (0.3, "0.3"), (0.05, "0.05"),
        (0.2, "0.2"), (0.6, "0.6"), (1.0, "1"), (0.5, "0.5"), (1.5, "1.5"), (0.0078, "0.0078"),
        (0.0313725, "0.0313725"), (1e-5, "1e-05"), (math.nan, ""), (None, ""),
    ],
)  # fmt: skip
def test_eps_text(eps, text):
    assert eps_text(eps) == text


def test_tables_and_headings_write_budgets_one_way(tmp_path):
    frame = pd.DataFrame({"attack": ["pgd", "pgd"], "eps": [2 / 255, 0.1], "acc": [0.5, 0.25]})
    assert markdown_table(frame).splitlines()[2:] == [
        "| pgd | 2/255 | 0.500 |", "| pgd | 0.1 | 0.250 |"
    ]  # fmt: skip
    board = synthetic_board({"mlp": (0.9, {0.0: 0.9, 2 / 255: 0.6, 0.1: 0.3})})
    matrix = robust_accuracy_matrix(board, "worst_case", "linf")
    assert list(matrix.columns) == ["model", "clean", "eps 0", "eps 2/255", "eps 0.1"]
    results = tmp_path / "results"
    publish(write_run(tmp_path / "run", board), results)
    assert "### eps 2/255" in (results / "digits-linf.md").read_text()
    assert "<h3>eps 2/255</h3>" in (results / "digits-linf.html").read_text()
    published = pd.read_csv(results / "digits-linf.csv")
    assert 2 / 255 in set(published["eps"])  # the CSV keeps the float
