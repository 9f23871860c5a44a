"""report/tables.py and report/results.py: what the tables step receives and writes."""

from __future__ import annotations

import pandas as pd

from robustbench_gan.contract.kinds import EVALUATIONS
from robustbench_gan.contract.tables import Tables
from robustbench_gan.report.tables import build_tables
from robustbench_gan.runner.run import collect_results, prepare, run_suite
from robustbench_gan.runner.store import Store


def test_private_columns_are_not_written():
    tables = Tables()
    tables.set("board", pd.DataFrame({"a": [1], "_carried": [2]}), csv="board.csv")
    tables.set("scratch", pd.DataFrame({"b": [1]}))  # no file name: not written
    files = tables.csv_files()
    assert list(files) == ["board.csv"] and list(files["board.csv"].columns) == ["a"]
    assert list(tables.board.columns) == ["a", "_carried"] and "scratch" in tables


def test_results_hold_every_cell_by_kind_and_key_and_only_report_artifacts(tmp_path, tiny_suite):
    suite_path = tiny_suite
    cache = tmp_path / "cache"
    run_suite(suite_path, out=tmp_path / "out", cache_dir=cache, progress=False)
    suite, _, plan = prepare(suite_path, None)
    store = Store(cache)
    try:
        results = collect_results(plan, store, num_classes=10)
    finally:
        store.close()
    assert list(results.models) == ["mlp", "small_cnn"]
    assert set(results.of("attack")) == {
        (m, a) for m in ("mlp", "small_cnn") for a in ("fgsm", "pgd")
    }
    assert set(results.of("transfer")) == {
        (a, s, r) for a in ("fgsm", "pgd") for s, r in (("mlp", "small_cnn"), ("small_cnn", "mlp"))
    }
    for kind, cells in results.cells.items():
        wanted = set(EVALUATIONS.get(kind).report_artifacts)
        assert all(set(f.artifacts) == wanted for f in cells.values()), kind
    tables = build_tables(suite, results)
    board = tables["leaderboard"]
    assert len(board) == 2 * (2 * 2 + 2)  # 2 models x (2 attacks x 2 eps + 2 worst-case rows)
    written = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    written["indicators"] = written["indicators"].fillna("").astype(object)  # '' reads back as NaN
    pd.testing.assert_frame_equal(tables.csv_files()["leaderboard.csv"], written, check_dtype=False)


def test_csv_cells_never_start_a_formula(tmp_path, tiny_suite):
    """A label that a spreadsheet would run as a formula is written with an apostrophe in
    front (OWASP's advice), in the run's CSVs and in published ones; numbers stay numbers."""
    from robustbench_gan.publish.leaderboards import publish
    from robustbench_gan.render.format import csv_text

    frame = pd.DataFrame({"a": ["=1+1", "+x", "-y", "@z", "ok", None], "n": [-1.5, 2, 3, 4, 5, 6]})
    back = pd.read_csv(__import__("io").StringIO(csv_text(frame)), keep_default_na=False)
    assert list(back["a"]) == ["'=1+1", "'+x", "'-y", "'@z", "ok", ""]
    assert list(back["n"]) == [-1.5, 2, 3, 4, 5, 6]

    text = tiny_suite.read_text().replace('name = "fgsm"', 'name = "fgsm"\nlabel = "=HYPERLINK(1)"')
    tiny_suite.write_text(text)
    out = tmp_path / "out"
    run_suite(tiny_suite, out=out, cache_dir=tmp_path / "c", progress=False)
    for name in ("leaderboard.csv", "transfer.csv", "curves_eps.csv"):
        cells = pd.read_csv(out / name, keep_default_na=False).astype(str).to_numpy().ravel()
        assert not any(c.startswith(("=", "+", "@")) for c in cells), name
        assert "'=HYPERLINK(1)" in cells
    for path in publish(out, tmp_path / "results"):
        if path.suffix == ".csv":
            cells = pd.read_csv(path, keep_default_na=False).astype(str).to_numpy().ravel()
            assert "'=HYPERLINK(1)" in cells and not any(c.startswith("=") for c in cells)


def test_user_text_in_reports_carries_no_html(tmp_path, tiny_suite):
    from robustbench_gan.publish.leaderboards import publish

    text = (
        tiny_suite.read_text()
        .replace(
            'name = "tiny"',
            'name = "tiny"\ndescription = "<img src=x onerror=alert(1)>"\n'
            'notes = "<script>alert(1)</script> & more"',
        )
        .replace('name = "fgsm"', 'name = "fgsm"\nlabel = "a|<b>"')
    )
    tiny_suite.write_text(text)
    out = tmp_path / "out"
    run_suite(tiny_suite, out=out, cache_dir=tmp_path / "c", progress=False)
    report = (out / "report.md").read_text()
    assert "<script>" not in report and "<img" not in report and "<b>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in report
    assert "a\\|&lt;b&gt;" in report  # a column bar in a label does not split a table row
    for path in publish(out, tmp_path / "results"):
        if path.suffix in (".md", ".html"):
            assert "<b>" not in path.read_text(), path


def test_a_label_never_writes_outside_the_output_folder(tmp_path, tiny_suite):
    text = tiny_suite.read_text().replace('name = "pgd"', 'name = "pgd"\nlabel = "../../../up"')
    tiny_suite.write_text(text)
    out = tmp_path / "deep" / "out"
    run_suite(tiny_suite, out=out, cache_dir=tmp_path / "c", progress=False)
    cache = (tmp_path / "c").resolve()  # the store keeps drawn plots for warm runs
    written = {p.resolve() for p in tmp_path.rglob("*.png") if cache not in p.resolve().parents}
    assert written and all(out.resolve() in p.parents for p in written)
    assert any(p.name.startswith("transfer_") and "_up-" in p.name for p in written)


def test_attack_at_one_budget_shares_the_eps_axis(tmp_path, monkeypatch):
    """An attack run at one eps is drawn on the norm's whole eps axis, not a 0.03-wide one."""
    from robustbench_gan.render import plots

    board = pd.DataFrame(
        {
            "target": ["m"] * 4,
            "defense": ["none"] * 4,
            "attack": ["pgd", "pgd", "pgd", "aa"],
            "norm": ["linf"] * 4,
            "eps": [0.0, 0.1, 0.3, 0.3],
            "robust_acc": [0.9, 0.5, 0.1, 0.05],
        }
    )
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append(fig) or path)
    plots.robust_accuracy_plot(board, tmp_path / "r.png")
    axes = [ax for ax in drawn[0].axes if ax.get_title()]
    limits = {ax.get_title(): ax.get_xlim() for ax in axes}
    assert limits["aa"] == limits["pgd"]
    assert limits["aa"][0] < 0.0 and limits["aa"][1] > 0.3
