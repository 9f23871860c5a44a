"""Bad input to `rbg publish` and `rbg compare`: a value out of its range, text where a number
goes, a file that is not a CSV table, a broken published leaderboard, model cards or results
folder. Each is refused in one line starting `rbg: error:` naming the file (and the row and
column of a bad value), exit 2, no traceback, and every file under the temporary folder (the
published ones and the rest) byte for byte as it was."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
from committed import committed_results
from test_publish import synthetic_board, write_run

import robustbench_gan.publish.files as publish_files
from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.publish.agreement import compare_runs
from robustbench_gan.publish.checks import CHOICES, NAMES, NUMBERS, TEXT
from robustbench_gan.publish.leaderboards import PUBLISHED_COLUMNS, publish, read_leaderboard
from robustbench_gan.publish.robustness_view import read_view

MODELS = {"mlp": (0.9, {0.1: 0.5, 0.2: 0.25}), "lenet": (0.95, {0.1: 0.6, 0.2: 0.3})}
PUBLISHED = "digits-linf.csv"


def snapshot(root: Path) -> dict[str, str]:
    """The sha256 of every file under ``root`` (hidden and temporary ones too), by path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def refused(capsys: pytest.CaptureFixture[str], args: list[str], *fragments: str) -> str:
    """Runs `rbg ARGS`: exit 2 and one stderr line, `rbg: error:` and each of ``fragments``."""
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rbg: error: ") and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), (fragments, lines[0])
    return lines[0]


def publish_refused(capsys, run: Path, results: Path, root: Path, *fragments: str) -> None:
    """`rbg publish RUN --results RESULTS` is refused and no file under ``root`` changes."""
    before = snapshot(root)
    refused(capsys, ["publish", run, "--results", results], *fragments)
    assert snapshot(root) == before


@pytest.fixture(scope="module")
def published_once(tmp_path_factory) -> Path:
    """A results folder where one run (suite ``first``) was published."""
    root = tmp_path_factory.mktemp("published")
    run = write_run(root / "first", synthetic_board(MODELS, suite="first"))
    publish(run, root / "results")
    return root / "results"


@pytest.fixture
def results(published_once, tmp_path) -> Path:
    """A copy of the published folder for one test."""
    return Path(shutil.copytree(published_once, tmp_path / "results"))


def second_run(tmp_path: Path) -> Path:
    """A good run to publish into ``results``: another suite, same dataset and norm."""
    return write_run(tmp_path / "second", synthetic_board(MODELS, suite="second"))


def set_cell(csv: Path, row: int, column: str, text: str) -> None:
    """Cell (``row`` counted from 1 under the header, ``column``) of ``csv`` set to ``text``."""
    cells = pd.read_csv(csv, dtype=str, keep_default_na=False)
    cells.loc[row - 1, column] = text
    cells.to_csv(csv, index=False)


# -- defect 7: values ------------------------------------------------------------------

# (column, cell, what the line says after "row 3, column <column>: ")
SHARE, AMOUNT = "is not a number from 0 to 1", "is not a number from 0 to 1e+15"
COUNT, SEED = "is not a whole number from 1 to 1e+15", "is not a whole number from 0 to 1e+15"
BAD_VALUES = [
    ("robust_acc", "1e308", f"'1e308' {SHARE}"), ("robust_acc", "inf", f"'inf' {SHARE}"),
    ("robust_acc", "-inf", f"'-inf' {SHARE}"), ("robust_acc", "abc", "'abc' is not a number"),
    ("robust_acc", "nan", f"'nan' {SHARE}"), ("robust_acc", "1.5", f"'1.5' {SHARE}"),
    ("robust_acc", "", "empty; a number from 0 to 1 is required"),
    ("robust_acc", "0x10", "'0x10' is not a number"),
    ("robust_acc", "1_0", "'1_0' is not a number"),  # float() would take it
    ("clean_acc", "-0.1", f"'-0.1' {SHARE}"), ("clean_acc", "TRUE", "'TRUE' is not a number"),
    ("eps", "abc", "'abc' is not a number"), ("eps", "-0.1", f"'-0.1' {AMOUNT}"),
    ("eps", "inf", f"'inf' {AMOUNT}"), ("eps", "1e308", f"'1e308' {AMOUNT}"),
    ("eps", "", "empty; a number from 0 to 1e+15 is required"),
    ("eps", "8/255", "'8/255' is not a number (a CSV holds a fraction as its decimal: 0.03137"),
    ("n_eval", "abc", "'abc' is not a number"), ("n_eval", "0", f"'0' {COUNT}"),
    ("n_eval", "-5", f"'-5' {COUNT}"), ("n_eval", "2.5", f"'2.5' {COUNT}"),
    ("n_eval", "1e308", f"'1e308' {COUNT}"), ("n_eval", "inf", f"'inf' {COUNT}"),
    ("seed", "-1", f"'-1' {SEED}"), ("seed", "0.5", f"'0.5' {SEED}"),
    ("seed", "x", "'x' is not a number"),
    ("seed", "", "empty; a whole number from 0 to 1e+15 is required"),
    ("seed", " ", "empty; a whole number from 0 to 1e+15 is required"),
    ("attack_success_rate", "1.01", f"'1.01' {SHARE}"), ("mean_linf", "-1", f"'-1' {AMOUNT}"),
    ("mean_l2", "nope", "'nope' is not a number"), ("seconds", "inf", f"'inf' {AMOUNT}"),
    ("forward_passes", "-3", f"'-3' {AMOUNT}"), ("backward_passes", "x", "'x' is not a number"),
    ("target", "", "empty; a name is required"), ("suite", "", "empty; a name is required"),
    ("dataset", "  ", "empty; a name is required"), ("norm", "", "empty; a name is required"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "cell", "message"), BAD_VALUES)
def test_a_bad_value_in_the_run_is_one_line_and_changes_nothing(
    results, tmp_path, capsys, column, cell, message
):
    run = second_run(tmp_path)
    set_cell(run / "leaderboard.csv", 3, column, cell)
    where = f"{run / 'leaderboard.csv'}: row 3, column {column}: {message}"
    publish_refused(capsys, run, results, tmp_path, where)


COMPARED = {
    ("robust_acc", "1e308"), ("robust_acc", "abc"), ("robust_acc", ""), ("eps", "8/255"),
    ("n_eval", "-5"), ("seed", "x"), ("target", ""),
}  # fmt: skip


@pytest.mark.parametrize(
    ("column", "cell", "message"), [v for v in BAD_VALUES if v[:2] in COMPARED]
)
def test_compare_refuses_the_same_values(tmp_path, capsys, column, cell, message):
    a = second_run(tmp_path)
    b = write_run(tmp_path / "b", synthetic_board(MODELS, suite="second"))
    set_cell(a / "leaderboard.csv", 3, column, cell)
    where = f"{a / 'leaderboard.csv'}: row 3, column {column}: {message}"
    refused(capsys, ["compare", a, b], where)
    refused(capsys, ["compare", b, a, "--exact"], where)


# (column, cell, what the line says) in the published CSV that publish merges into
BAD_PUBLISHED = [
    ("robust_acc", "abc", "'abc' is not a number"), ("robust_acc", "1e308", f"'1e308' {SHARE}"),
    ("n_eval", "-3", f"'-3' {COUNT}"), ("number_forward_passes", "abc", "'abc' is not a number"),
    ("number_forward_passes", "0", f"'0' {COUNT}"), ("robust_ci_low", "2", f"'2' {SHARE}"),
    ("schema_version", "0", f"'0' {COUNT}"),
    ("reproduced", "maybe", "'maybe' is not one of yes, no (or empty)"),
    ("seed", "", "empty; a whole number from 0 to 1e+15 is required"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "cell", "message"), BAD_PUBLISHED)
def test_a_broken_published_csv_is_one_line_and_changes_nothing(
    results, tmp_path, capsys, column, cell, message
):
    """A hand-edited or older broken results/<dataset>-<norm>.csv is refused like a run's."""
    set_cell(results / PUBLISHED, 3, column, cell)
    where = f"{results / PUBLISHED}: row 3, column {column}: {message}"
    publish_refused(capsys, second_run(tmp_path), results, tmp_path, where)


def test_a_refused_publish_leaves_the_folder_publishable(results, tmp_path, capsys):
    """The old crash wrote the merged CSV first, so every later publish crashed on it."""
    run = second_run(tmp_path)
    good = (run / "leaderboard.csv").read_bytes()
    set_cell(run / "leaderboard.csv", 2, "robust_acc", "1e308")
    refused(capsys, ["publish", run, "--results", results], "column robust_acc")
    (run / "leaderboard.csv").write_bytes(good)
    assert main(["publish", str(run), "--results", str(results)]) == 0
    published = pd.read_csv(results / PUBLISHED)
    assert set(published["suite"]) == {"first", "second"}
    assert main(["publish", str(run), "--results", str(results)]) == 0  # and again
    assert not [p.name for p in results.iterdir() if p.name.startswith(".")]  # no temporary


def test_every_checked_column_is_one_the_leaderboards_have():
    checked = [*NUMBERS, *NAMES, *CHOICES, *TEXT]
    assert sorted(checked) == sorted(set(checked)) == sorted(PUBLISHED_COLUMNS)


def test_strange_but_valid_values_publish(results, tmp_path, capsys):
    """Whole numbers written as floats, padded numbers, a BOM, eps in exponent form and a
    label that would start a formula: published, the label behind an apostrophe, and the
    folder takes the next publish (the apostrophe read back as written)."""
    run = second_run(tmp_path)
    csv = run / "leaderboard.csv"
    set_cell(csv, 1, "n_eval", "200.0")
    set_cell(csv, 2, "seed", " 0 ")
    set_cell(csv, 3, "mean_l2", "NaN")
    cells = pd.read_csv(csv, dtype=str, keep_default_na=False)
    cells["eps"] = cells["eps"].replace({"0.1": "1e-1"})
    cells["target"] = cells["target"].replace({"mlp": "=HYPERLINK(1)"})
    csv.write_bytes(b"\xef\xbb\xbf" + cells.to_csv(index=False).encode())
    assert main(["publish", str(run), "--results", str(results)]) == 0
    capsys.readouterr()
    published = pd.read_csv(results / PUBLISHED, keep_default_na=False)
    assert "'=HYPERLINK(1)" in set(published["target"])
    assert not published["target"].str.startswith("=").any()
    assert set(published["n_eval"]) == {200}
    board = read_leaderboard(results / PUBLISHED)
    assert board["seed"].dtype.kind == "i" and board["eps"].dtype.kind == "f"
    assert main(["publish", str(run), "--results", str(results)]) == 0
    again = pd.read_csv(results / PUBLISHED, keep_default_na=False)
    assert "'=HYPERLINK(1)" in set(again["target"]) and len(again) == len(published)


def test_the_committed_leaderboards_read(tmp_path):
    """Every committed run leaderboard and published CSV passes the checks (a published
    robustness view, those of its own)."""
    published = sorted(committed_results().glob("*.csv"))
    views = [f for f in published if f.name.endswith("-robustness.csv")]
    files = [f for f in published if f not in views]
    files += sorted(committed_results().glob("*/leaderboard.csv"))
    assert len(files) >= 5
    for file in files:
        assert len(read_leaderboard(file)), file
    for file in views:
        assert len(read_view(file)), file


# -- defect 9: files that are not CSV tables --------------------------------------------


def bad_files() -> dict[str, tuple[bytes, str]]:
    """case -> (the file's bytes, what the one line says)."""
    text = synthetic_board(MODELS, suite="second").to_csv(index=False)
    header, first, *rest = text.splitlines()
    rng = random.Random(0)

    def table(head: str, rows: list[str], column: str = "", cell: str = "") -> bytes:
        """``head`` and ``rows``, with a last column named ``column`` holding ``cell``."""
        extra = [f",{column}", *[f",{cell}"] * len(rows)] if column else [""] * (len(rows) + 1)
        return "\n".join(x + y for x, y in zip([head, *rows], extra)).encode()

    return {
        "random_bytes": (rng.randbytes(4096), "is a binary file"),
        "random_text_bytes": (bytes(rng.choice(range(1, 128)) for _ in range(4096)),
                              "is not a CSV table"),
        "gzip": (gzip.compress(text.encode()), "is a binary file"),
        "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(200), "is a binary file"),
        "utf16": (text.encode("utf-16"), "is UTF-16 text, not a CSV: save it as UTF-8"),
        "utf16_without_bom": (text.encode("utf-16-le"), "is a binary file"),
        "latin1": (text.replace("mlp", "mlp\u00e9").encode("latin-1"),
                   "is not UTF-8 text (byte 0xe9 at position"),
        "empty": (b"", "is empty"),
        "blank_lines": (b"\n \n\n", "is empty"),
        "header_only": ((header + "\n").encode(), "holds no rows (a header only)"),
        "missing_columns": (text.replace("robust_acc", "robust").encode(),
                            "missing columns: robust_acc"),
        "semicolons": (text.replace(",", ";").encode(), "its values are separated by ';'"),
        "duplicate_column": (table(header, [first, *rest], "robust_acc", "0.5"),
                             "column 'robust_acc' appears twice in the header (columns 11 and 23)"),
        "nameless_column": (table("," + header, ["0," + x for x in [first, *rest]]),
                            "column 1 of the header has no name"),  # written with its index
        "ragged_row": (table(header, [first + ",1,2", *rest]),
                       "is not a CSV table (Error tokenizing data. C error: Expected 22 fields"),
        "open_quote": (table(header, [first, *rest, '"second,no end']),
                       "is not a CSV table (Error tokenizing data. C error: EOF inside string"),
        "formula_in_header": (table(header, [first, *rest], "=cmd|' /C calc'!A0", "1"),
                              "column \"=cmd|' /C calc'!A0\" of the header would start a "
                              "spreadsheet formula"),
        "huge_field": (table(header, ["x" * 200_001 + first[first.index(",") :], *rest]),
                       "row 1, column 1: a cell of 200001 characters (at most 100000)"),
    }  # fmt: skip


FILE_CASES = sorted(bad_files())


@pytest.mark.parametrize("given", ["run", "published", "compare"])
@pytest.mark.parametrize("case", FILE_CASES)
def test_a_file_that_is_not_a_leaderboard_is_one_line(results, tmp_path, capsys, case, given):
    """As the run's leaderboard.csv, as the published CSV merged into, as either side of
    `rbg compare` (statistical and --exact)."""
    data, message = bad_files()[case]
    run = second_run(tmp_path)
    if given == "compare":
        (tmp_path / "bad.csv").write_bytes(data)
        bad = tmp_path / "bad.csv"
        refused(capsys, ["compare", bad, run], f"{bad}: ", message)
        refused(capsys, ["compare", run, bad, "--exact"], f"{bad}: ", message)
        return
    bad = run / "leaderboard.csv" if given == "run" else results / PUBLISHED
    bad.write_bytes(data)
    publish_refused(capsys, run, results, tmp_path, f"{bad}: ", message)


def test_a_run_table_that_is_not_a_csv_is_one_line_in_reproduce(tmp_path):
    """`rbg reproduce` judges every table of two runs (agreement.py reads them)."""
    a, b = second_run(tmp_path), write_run(tmp_path / "b", synthetic_board(MODELS, suite="second"))
    for folder in (a, b):
        pd.DataFrame({"attack": ["fgsm"], "eps": [0.1], "acc": [0.5]}).to_csv(
            folder / "transfer.csv", index=False
        )
    (a / "transfer.csv").write_text("attack,eps,acc\nfgsm,0.1,0.5,9\n")  # a field too many
    with pytest.raises(UserError) as info:
        compare_runs(a, b)
    assert len(str(info.value).splitlines()) == 1 and str(a / "transfer.csv") in str(info.value)


def test_a_binary_samples_file_leaves_compare_to_its_z_test(tmp_path, capsys):
    a = second_run(tmp_path)
    b = write_run(tmp_path / "b", synthetic_board(MODELS, suite="second"))
    (a / "samples.csv").write_bytes(random.Random(1).randbytes(4096))
    assert main(["compare", str(a), str(b)]) == 0
    assert "the runs agree" in capsys.readouterr().out


# -- neighbours: the results folder, model cards, reproductions, repeated rows, writing ----


def test_a_results_folder_that_is_a_file(tmp_path, capsys):
    run = second_run(tmp_path)
    (tmp_path / "results").write_text("not a folder\n")
    publish_refused(capsys, run, tmp_path / "results", tmp_path, "is not a folder")
    publish_refused(capsys, run, tmp_path / "results" / "sub", tmp_path, "cannot write")


def test_a_published_csv_that_is_a_folder(tmp_path, capsys):
    run = second_run(tmp_path)
    (tmp_path / "results" / PUBLISHED).mkdir(parents=True)
    publish_refused(capsys, run, tmp_path / "results", tmp_path, "is not a file")


def test_a_folder_in_the_way_of_a_picture_changes_nothing(results, tmp_path, capsys):
    """The write fails on the way (a picture's name is a folder): everything is put back."""
    picture = next(results.glob("digits-linf-*.png"))
    run = write_run(tmp_path / "again", synthetic_board(MODELS, suite="first", seed=1))
    picture.unlink()
    picture.mkdir()
    publish_refused(capsys, run, results, tmp_path, str(picture), "cannot write")
    assert picture.is_dir()


@pytest.mark.parametrize("failing", [1, 2, 4, 5])
@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_failed_rename_puts_every_file_back(
    results, tmp_path, capsys, monkeypatch, failing, error
):
    """Rename number ``failing`` of the set fails (a full disk, Ctrl-C): every published file
    is as it was, no temporary file is left, and the publish after it works."""
    run = write_run(tmp_path / "new", synthetic_board({"cnn": (0.9, {0.3: 0.1})}, n_eval=100))
    calls = []

    def rename(source, target):
        calls.append(target)
        if len(calls) == failing:
            raise error(28, "No space left on device") if error is OSError else error()
        publish_files.os.replace(source, target)

    monkeypatch.setattr(publish_files, "replace", rename)
    before = snapshot(tmp_path)
    if error is OSError:
        refused(capsys, ["publish", run, "--results", results], "cannot write (No space left")
    else:
        assert main(["publish", str(run), "--results", str(results)]) == 130
    assert snapshot(tmp_path) == before
    monkeypatch.undo()
    assert main(["publish", str(run), "--results", str(results)]) == 0
    assert not [p.name for p in results.iterdir() if p.name.startswith(".")]
    assert len(calls) >= failing


BAD_CARDS = {
    "not_json": (b"{not json", "not a list of model cards"),
    "binary": (b"\x89PNG\r\n\x1a\n\xff\xfe", "not a list of model cards"),
    "a_dict": (b'{"target": "mlp"}', "not a list of model cards (a dict)"),
    "too_deep": (b"[" * 100_000 + b"]" * 100_000, "not a list of model cards"),
    "passes_text": ([{"number_forward_passes": "abc"}], "card 1, number_forward_passes: 'abc'"),
    "passes_negative": ([{"number_forward_passes": -1}], "'-1' is not a whole number from 1"),
    "passes_huge": ([{"number_forward_passes": 1e308}], "'1e+308' is not a whole number from 1"),
    "passes_bool": ([{"number_forward_passes": True}], "'True' is not a whole number from 1"),
    "architecture_number": ([{"architecture": 5}], "card 1, architecture: '5' is not a text"),
    "no_target": ([{"target": None}], "card 1, target: 'None' is not a name"),
    "twice": ([{}, {}], "cards 1 and 2 are both of mlp [none] at linf"),
    "twice_spelled_apart": ([{}, {"threat_model": "LINF"}], "cards 1 and 2 are both of mlp"),
    "threat_model_unknown": ([{"threat_model": "L1"}], "threat_model: 'L1' is not one of Linf"),
}


@pytest.mark.parametrize("case", sorted(BAD_CARDS))
def test_bad_model_cards_are_one_line(results, tmp_path, capsys, case):
    content, message = BAD_CARDS[case]
    run = second_run(tmp_path)
    if isinstance(content, list):
        card = {"target": "mlp", "defense": "none", "threat_model": "Linf",
                "architecture": "mlp", "number_forward_passes": 1}  # fmt: skip
        content = json.dumps([{**card, **change} for change in content]).encode()
    (run / "model_cards.json").write_bytes(content)
    publish_refused(capsys, run, results, tmp_path, str(run / "model_cards.json"), message)


def test_a_broken_reproduction_record_is_one_line(results, tmp_path, capsys):
    run = second_run(tmp_path)
    (run / "reproductions.json").write_text(json.dumps([{"kernel_variables": [1, 2, 3]}]))
    publish_refused(capsys, run, results, tmp_path, "reproductions.json", "not a list")


def test_a_repeated_row_is_not_published_twice(results, tmp_path, capsys):
    run = second_run(tmp_path)
    board = pd.read_csv(run / "leaderboard.csv", keep_default_na=False)
    pd.concat([board, board.iloc[[2]]]).to_csv(run / "leaderboard.csv", index=False)
    publish_refused(capsys, run, results, tmp_path, f"rows 3 and {len(board) + 1}")
    published = pd.read_csv(results / PUBLISHED, keep_default_na=False)
    pd.concat([published, published.iloc[[0]]]).to_csv(results / PUBLISHED, index=False)
    (run / "leaderboard.csv").write_text(board.to_csv(index=False))
    publish_refused(capsys, run, results, tmp_path, str(results / PUBLISHED), "rows 1 and")


def test_a_run_of_domain_rows_only_has_nothing_to_publish(results, tmp_path, capsys):
    board = synthetic_board(MODELS, suite="second", attacks=(("fgsm", "fgsm", {}),))
    board = board.assign(norm="domain", eps=float("nan"), attack="to_svhn")
    board = board.drop_duplicates(["target", "defense", "attack"])
    run = write_run(tmp_path / "domain", board)
    publish_refused(capsys, run, results, tmp_path, "no rows to publish")
