"""Published leaderboards rank like with like: one table per protocol, seeds pooled into one
line with their spread, Wilson intervals, ties marked, a picture, a self-contained page."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pandas as pd
import pytest
from test_publish import synthetic_board, write_run

from robustbench_gan.publish.intervals import pooled, tied_with_above, wilson
from robustbench_gan.publish.leaderboards import publish

MODELS = {
    "mlp": (0.95, {0.1: 0.50, 0.2: 0.10}),
    "small_cnn [fgsm_at]": (0.97, {0.1: 0.80, 0.2: 0.40}),
}


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, as lists of cells."""
    section = markdown.split(heading + "\n", 1)[1].split("\n\n#", 1)[0]
    lines = [x for x in section.splitlines() if x.startswith("| ")][1:]
    return [[c.strip() for c in x.strip("|").split(" | ")] for x in lines]


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook example
    assert wilson(0, 50)[0] == 0.0 and wilson(50, 50)[1] == 1.0
    assert all(math.isnan(v) for v in wilson(3, 0))
    assert pooled([0.5, 0.6], [100, 100]) == pytest.approx((*wilson(110, 200), 200))


def test_tie_rule():
    """A line is tied with the one just above when their intervals overlap (touching counts);
    ties do not chain."""
    lows, highs = [0.7, 0.65, 0.4, 0.1, 0.05], [0.8, 0.75, 0.5, 0.2, 0.12]
    assert tied_with_above(lows, highs) == [False, True, False, False, True]
    assert tied_with_above([0.5, 0.3], [0.6, 0.5]) == [False, True]
    assert tied_with_above([0.5, math.nan], [0.6, math.nan]) == [False, False]


def test_ties_are_marked_in_the_tables(tmp_path):
    models = {  # 1000 images: intervals about +-0.03
        "a": (0.99, {0.1: 0.80}),
        "b": (0.99, {0.1: 0.78}),  # overlaps a
        "c": (0.99, {0.1: 0.75}),  # overlaps b, not a
        "d": (0.99, {0.1: 0.50}),
    }
    results = tmp_path / "results"
    publish(write_run(tmp_path / "run", synthetic_board(models, n_eval=1000)), results)
    rows = table_rows((results / "digits-linf.md").read_text(), "### eps 0.1")
    assert [(r[0], r[1]) for r in rows] == [
        ("1", "a"),
        ("2 (= 1)", "b"),
        ("3 (= 2)", "c"),
        ("4", "d"),
    ]
    page = (results / "digits-linf.html").read_text()
    assert page.count('<tr class="tie">') == 2 and "3 (= 2)" in page


def test_two_seeds_make_one_line_with_mean_spread_and_pooled_interval(tmp_path):
    results = tmp_path / "results"
    publish(write_run(tmp_path / "s0", synthetic_board(MODELS, seed=0)), results)
    other = {"mlp": (0.96, {0.1: 0.56, 0.2: 0.12}), "small_cnn [fgsm_at]": (0.97, {0.1: 0.78})}
    publish(write_run(tmp_path / "s1", synthetic_board(other, seed=1)), results)

    published = pd.read_csv(results / "digits-linf.csv")
    assert sorted(published["seed"].unique()) == [0, 1]
    assert len(published) == 3 * (4 + 3)  # per-seed rows kept: 3 rows per model and eps
    for r in published.itertuples():
        expected = wilson(round(r.robust_acc * r.n_eval), r.n_eval)
        assert (r.robust_ci_low, r.robust_ci_high) == pytest.approx(expected)

    markdown = (results / "digits-linf.md").read_text()
    assert markdown.count("## Protocol") == 1
    rows = table_rows(markdown, "### eps 0.1")
    assert len(rows) == 2  # one line per model, not per seed
    header = ["rank", "model", "suite", "clean", "robust", "95% interval", "n", "seeds"]
    cnn, mlp = (dict(zip(header + ["spread", "indicators", "card", "report"], r)) for r in rows)
    assert cnn["model"] == "small_cnn [fgsm_at]" and cnn["rank"] == "1"
    assert cnn["robust"] == "0.790" and cnn["seeds"] == "2 (0, 1)" and cnn["n"] == "400"
    assert cnn["spread"] == "0.780–0.800"
    low, high, _ = pooled([0.8, 0.78], [200, 200])
    assert cnn["95% interval"] == f"{low:.3f}–{high:.3f}"
    assert mlp["robust"] == "0.530" and mlp["spread"] == "0.500–0.560" and mlp["rank"] == "2"
    assert "seed 0" in mlp["report"] and "seed 1" in mlp["report"]  # a report per run
    eps2 = table_rows(markdown, "### eps 0.2")
    assert [r[7] for r in eps2] == ["1 (0)", "2 (0, 1)"] and eps2[0][8] == ""  # one seed: no spread
    html = (results / "digits-linf.html").read_text()
    assert "0.780–0.800" in html and "2 (0, 1)" in html


def test_different_protocols_get_different_tables(tmp_path):
    results = tmp_path / "results"
    publish(write_run(tmp_path / "a", synthetic_board(MODELS, suite="smoke")), results)
    strong = (("fgsm", "fgsm", {}), ("pgd", "pgd", {"steps": 40}), ("sq", "square", {}))
    board = synthetic_board({"lenet": (0.96, {0.1: 0.3})}, suite="full", attacks=strong)
    publish(write_run(tmp_path / "b", board), results)
    fewer_images = synthetic_board({"lenet": (0.96, {0.1: 0.6})}, suite="quick", n_eval=100)
    publish(write_run(tmp_path / "c", fewer_images), results)
    # other labels, same attacks and settings: the same protocol as the first run
    relabelled = (("f", "fgsm", {}), ("pgd10", "pgd", {"steps": 10}))
    board = synthetic_board({"resnet": (0.99, {0.1: 0.9})}, suite="mine", attacks=relabelled)
    publish(write_run(tmp_path / "d", board), results)

    markdown = (results / "digits-linf.md").read_text()
    assert markdown.count("## Protocol") == 3
    assert "## Protocol 1: fgsm; pgd (steps=40); square" in markdown  # most attacks first
    assert markdown.count("Attacks: fgsm; pgd (steps=10).") == 2  # 200 and 100 images
    assert "digits, 100 images per run, linf" in markdown
    sections = markdown.split("## Protocol")[1:]
    first = [s for s in sections if "200 images" in s and "steps=10" in s][0]
    assert "| resnet |" in first and "| mlp |" in first and "lenet" not in first
    assert [r[1] for r in table_rows(first, "### eps 0.1")][0] == "resnet"
    published = pd.read_csv(results / "digits-linf.csv")
    worst = published[published["attack"] == "worst_case"].groupby("suite")["protocol"].first()
    assert worst["smoke"] == worst["mine"] and worst.nunique() == 3
    pictures = sorted(p.name for p in results.glob("digits-linf-*.png"))
    assert len(pictures) == 3 and all(f"({p})" in markdown for p in pictures)

    # the same suite and seed published again with other attacks: its old picture goes
    publish(write_run(tmp_path / "c", fewer_images.assign(n_eval=200)), results)
    assert len(list(results.glob("digits-linf-*.png"))) == 2


def test_pictures_and_page_are_self_contained(tmp_path):
    results = tmp_path / "results"
    written = publish(write_run(tmp_path / "run", synthetic_board(MODELS)), results)
    (png,) = [p for p in written if p.suffix == ".png"]
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    page = (results / "digits-linf.html").read_text()
    assert page.startswith("<!doctype html>") and 'src="data:image/png;base64,' in page
    for external in ("<script", "<link", "http://", "https://", 'src="/', "@import"):
        assert external not in page, external
    checker = TagChecker()
    checker.feed(page)
    assert checker.stack == [] and checker.errors == []
    assert checker.counts["table"] == 2 and checker.counts["tr"] == 2 * 3  # header + 2 models


def test_user_text_is_escaped(tmp_path):
    board = synthetic_board({"<b>x</b>|y": (0.9, {0.1: 0.5})}, suite="<i>s</i>")
    board["attack_params"] = board["attack_params"].str.replace(
        '"params": {}', '"params": {"note": "<script>alert(1)</script>"}'
    )
    board.loc[0, "indicators"] = "<u>flag</u>"
    publish(write_run(tmp_path / "run", board), tmp_path / "results")
    for suffix in (".md", ".html"):
        text = (tmp_path / "results" / f"digits-linf{suffix}").read_text()
        for tag in ("<b>", "<i>", "<script>", "<u>"):
            assert tag not in text, (suffix, tag)


def test_worst_case_protocol_reads_its_attacks_settings(tmp_path):
    """Two runs whose worst-case rows name the same labels but whose attacks differ in their
    settings are different protocols."""
    results = tmp_path / "results"
    publish(write_run(tmp_path / "a", synthetic_board(MODELS, suite="a")), results)
    slow = (("fgsm", "fgsm", {}), ("pgd", "pgd", {"steps": 100}))
    publish(write_run(tmp_path / "b", synthetic_board(MODELS, suite="b", attacks=slow)), results)
    published = pd.read_csv(results / "digits-linf.csv")
    worst = published[published["attack"] == "worst_case"]
    assert worst.groupby("suite")["protocol"].first().nunique() == 2
    assert json.loads(worst["attack_params"].iloc[0]) == {"attacks": ["fgsm", "pgd"]}


class TagChecker(HTMLParser):
    """Open and close tags balance (void elements aside)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)
