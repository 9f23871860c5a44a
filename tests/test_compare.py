"""`rbg compare`: rows matched on suite, seed, model, attack, norm and eps; bookkeeping left
out; accuracy changes tested against the noise of their images (exit 1 only on a significant
one), --exact for a digit-for-digit compare; 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from committed import committed
from test_publish import synthetic_board, write_run

from robustbench_gan.cli import main
from robustbench_gan.contract.schema import LATER_COLUMNS
from robustbench_gan.publish.compare import compare
from robustbench_gan.publish.compare_stats import compare_across_seeds
from robustbench_gan.publish.leaderboards import publish

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = committed("quickstart")
MODELS = {"mlp": (0.95, {0.1: 0.5, 0.2: 0.1}), "lenet": (0.96, {0.1: 0.6, 0.2: 0.2})}


@pytest.fixture
def run_a(tmp_path):
    return write_run(tmp_path / "a", synthetic_board(MODELS))


def variant(tmp_path, change) -> Path:
    board = synthetic_board(MODELS)
    changed = change(board)  # edits in place, or returns a new board
    return write_run(tmp_path / "b", board if changed is None else changed)


def rbg_compare(capsys, *args: object) -> tuple[int, str]:
    code = main(["compare", *map(str, args)])
    return code, capsys.readouterr().out


def test_a_run_against_itself(run_a, capsys):
    code, out = rbg_compare(capsys, run_a, run_a / "leaderboard.csv", "--exact")
    assert code == 0 and "no differences beyond tolerance 0" in out
    code, out = rbg_compare(capsys, run_a, run_a / "leaderboard.csv")
    assert code == 0 and "the runs agree" in out and "0 tested" in out
    assert compare(QUICKSTART, QUICKSTART / "leaderboard.csv").differs is False


def copy_run(source: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("leaderboard.csv", "samples.csv"):
        (folder / name).write_bytes((source / name).read_bytes())
    return folder


def test_a_moved_accuracy_is_named_with_its_interval_and_p_value(tmp_path, capsys):
    """The committed quickstart against a copy where one row moved by 0.2: exit 1, that row
    named, with the difference, its 95% interval and the test; one image less is noise."""
    b = copy_run(QUICKSTART, tmp_path / "b")
    board = pd.read_csv(b / "leaderboard.csv", keep_default_na=False)
    pick = (board["target"] == "lenet") & (board["attack"] == "pgd") & (board["eps"] == 0.1)
    before = float(board.loc[pick, "robust_acc"].iloc[0])
    board.loc[pick, "robust_acc"] = before - 0.2
    board.to_csv(b / "leaderboard.csv", index=False)
    code, out = rbg_compare(capsys, QUICKSTART, b)
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert code == 1 and len(changed) == 1, out
    assert changed[0].startswith("changed: quickstart seed 0: lenet, pgd, linf eps 0.1: robust_acc")
    assert "(-0.2; 95% interval [-0.2" in changed[0] and "two-proportion p=" in changed[0]
    assert "1 rows changed (1 with a significant accuracy change" in out

    board.loc[pick, "robust_acc"] = before - 1 / 360  # one image of 360
    board.to_csv(b / "leaderboard.csv", index=False)
    code, out = rbg_compare(capsys, QUICKSTART, b)
    assert code == 0 and "the runs agree: 1 accuracy change within noise" in out, out
    noise = [line for line in out.splitlines() if line.startswith("within noise")]
    assert len(noise) == 1 and "lenet, pgd, linf eps 0.1" in noise[0] and "p=" in noise[0]
    assert rbg_compare(capsys, QUICKSTART, b, "--exact")[0] == 1


def test_norms_and_passes_move_within_their_tolerance(run_a, tmp_path, capsys):
    def nudge(board):
        board["mean_linf"] *= 1.05
        board["forward_passes"] *= 1.5

    b = variant(tmp_path, nudge)
    assert rbg_compare(capsys, run_a, b)[0] == 0
    code, out = rbg_compare(capsys, run_a, variant(tmp_path, lambda b: b.__setitem__(
        "mean_l2", b["mean_l2"] * 1.5)))  # fmt: skip
    assert code == 1 and "mean_l2" in out and "beyond its relative tolerance 0.1" in out
    assert main(["compare", str(run_a), str(b), "--exact", "--across-seeds"]) == 2


def test_one_changed_accuracy_is_named(run_a, tmp_path, capsys):
    def lower(board):
        pick = (board["target"] == "mlp") & (board["attack"] == "pgd") & (board["eps"] == 0.1)
        board.loc[pick, "robust_acc"] = 0.485

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, lower), "--exact")
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert changed == [
        "changed: smoke seed 0: mlp, pgd, linf eps 0.1: robust_acc 0.5 -> 0.485 (-0.015)"
    ]
    assert "1 rows changed, 0 added, 0 removed" in out


def test_bookkeeping_columns_do_not_count(run_a, tmp_path, capsys):
    def bookkeeping(board):
        board["seconds"] *= 3
        board["device"] = "cuda:0"
        board["versions"] = "robustbench_gan 0.2.0"
        board["cell_id"] = "other"

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, bookkeeping))
    assert code == 0, out
    # a published file (its date, schema, links, intervals) against the run it came from
    publish(run_a, tmp_path / "results")
    code, out = rbg_compare(capsys, run_a, tmp_path / "results" / "digits-linf.csv")
    assert code == 0, out
    published = pd.read_csv(tmp_path / "results" / "digits-linf.csv")
    published["published"] = "1999-01-01"
    published["report"] = "elsewhere/report.md"
    published.to_csv(tmp_path / "again.csv", index=False)
    code, out = rbg_compare(
        capsys, tmp_path / "results" / "digits-linf.csv", tmp_path / "again.csv"
    )
    assert code == 0 and "the runs agree" in out


def test_tolerance(run_a, tmp_path, capsys):
    def nudge(board):
        board.loc[0, "robust_acc"] += 0.005
        board.loc[1, "clean_acc"] -= 0.004

    b = variant(tmp_path, nudge)
    assert rbg_compare(capsys, run_a, b, "--exact", "--tolerance", "0.01")[0] == 0
    code, out = rbg_compare(capsys, run_a, b, "--exact", "--tolerance", "0.0045")
    assert code == 1 and "robust_acc" in out and "clean_acc" not in out
    assert rbg_compare(capsys, run_a, b, "--exact")[0] == 1
    assert compare(run_a, b, tolerance=0.006).changed == []
    assert main(["compare", str(run_a), str(b), "--tolerance", "-1"]) == 2


def test_added_removed_and_text_changes(run_a, tmp_path, capsys):
    def edit(board):
        extra = board.iloc[[0]].assign(suite="new")
        board = pd.concat([board.iloc[:-1], extra], ignore_index=True)
        board.loc[0, "indicators"] = "unavailable_gradients"
        return board

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, edit))
    assert code == 1
    assert "only in B (added): new seed 0: mlp, fgsm, linf eps 0.1" in out
    assert "only in A (removed): smoke seed 0: lenet, worst_case, linf eps 0.2" in out
    assert "indicators '' -> 'unavailable_gradients'" in out
    comparison = compare(run_a, tmp_path / "b")
    assert len(comparison.added) == len(comparison.removed) == len(comparison.changed) == 1


def test_other_seed_is_another_row(run_a, tmp_path, capsys):
    b = write_run(tmp_path / "b", synthetic_board(MODELS, seed=1))
    comparison = compare(run_a, b)
    assert comparison.changed == [] and len(comparison.added) == len(comparison.removed) == 12


def test_an_old_leaderboard_without_the_later_columns(run_a, tmp_path, capsys):
    old = synthetic_board(MODELS).drop(columns=LATER_COLUMNS)
    b = write_run(tmp_path / "b", old)
    code, out = rbg_compare(capsys, run_a, b)
    assert code == 0 and "not compared, only in A: forward_passes, backward_passes" in out


def test_bad_input_is_one_line_and_exit_2(run_a, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing"), str(run_a)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no leaderboard.csv here" in err
    doubled = pd.concat([synthetic_board(MODELS)] * 2)
    b = write_run(tmp_path / "b", doubled)
    assert main(["compare", str(run_a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "repeat" in err


# --across-seeds: rows matched without the seed, accuracy changes tested against noise


def write_samples(folder: Path, board: pd.DataFrame, labels_from: int = 0) -> None:
    """A samples.csv agreeing with a synthetic board (attacks fgsm then pgd): per model and
    eps > 0, the first images are robust, the next few broken by pgd (what fgsm leaves), the
    rest of the clean-correct ones by fgsm. ``labels_from`` shifts the labels: other images."""
    rows = []
    for (target, defense, norm, eps), group in board[board["eps"] > 0].groupby(
        ["target", "defense", "norm", "eps"], sort=False
    ):
        by_attack = group.set_index("attack")
        n = int(by_attack.loc["worst_case", "n_eval"])
        clean = round(by_attack.loc["worst_case", "clean_acc"] * n)
        robust = round(by_attack.loc["worst_case", "robust_acc"] * n)
        after_fgsm = round(by_attack.loc["fgsm", "robust_acc"] * n)
        for image in range(n):
            label = (image + labels_from) % 10
            broken_by = "" if image < robust or image >= clean else "pgd"
            broken_by = "fgsm" if after_fgsm <= image < clean else broken_by
            rows.append({
                "target": target, "defense": defense, "norm": norm, "eps": eps,
                "image": image, "label": label,
                "clean_pred": label if image < clean else (label + 1) % 10,
                "broken_by": broken_by, "adv_pred": "", "linf": "", "l2": "",
                "robust": int(image < robust),
            })  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)


def seed_run(tmp_path: Path, name: str, models: dict, seed: int, labels_from=None) -> Path:
    board = synthetic_board(models, seed=seed)
    folder = write_run(tmp_path / name, board)
    if labels_from is not None:
        write_samples(folder, board, labels_from)
    return folder


def test_across_seeds_matches_rows_without_the_seed(tmp_path, capsys):
    """Two seeds of a suite: every row is matched, small changes are within noise (exit 0);
    a large drop is named with its test (exit 1)."""
    a = seed_run(tmp_path, "a", MODELS, 0)
    close = {"mlp": (0.94, {0.1: 0.48, 0.2: 0.12}), "lenet": (0.96, {0.1: 0.62, 0.2: 0.2})}
    b = seed_run(tmp_path, "b", close, 1)
    code, out = rbg_compare(capsys, a, b, "--across-seeds")
    assert code == 0, out
    assert "the runs agree" in out
    # mlp's clean accuracy once, its 3 rows at eps 0.1 and 3 at 0.2; lenet's 3 rows at 0.1
    assert "10 accuracy changes within noise (10 tested" in out
    assert len([line for line in out.splitlines() if line.startswith("within noise")]) == 10
    assert "not compared (across seeds): attack_success_rate, mean_linf" in out

    far = {"mlp": (0.95, {0.1: 0.5, 0.2: 0.1}), "lenet": (0.96, {0.1: 0.3, 0.2: 0.2})}
    code, out = rbg_compare(capsys, a, seed_run(tmp_path, "c", far, 1), "--across-seeds")
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert len(changed) == 3 and all("lenet" in line and "eps 0.1" in line for line in changed)
    assert (
        "changed: smoke seed 0 vs 1: lenet, worst_case, linf eps 0.1: robust_acc 0.6 -> 0.3 "
        "(-0.3; 95% interval [-0.388, -0.204]; two-proportion p=" in out
    )
    assert "3 rows changed (3 with a significant accuracy change, 0 in other columns only)" in out


def test_across_seeds_pairs_the_outcomes_of_the_same_images(tmp_path, capsys):
    """Where both runs have per-image outcomes of the same images, McNemar's exact test sees
    what the unpaired test cannot: 15 of 200 images lost, none gained (p = 2 / 2^15); pgd's
    row has no exact per-image outcomes (fgsm broke images first), so it is tested unpaired
    and stays within noise. With other images every test is unpaired."""
    worse = {"mlp": (0.95, {0.1: 0.425, 0.2: 0.1}), "lenet": (0.96, {0.1: 0.6, 0.2: 0.2})}
    a = seed_run(tmp_path, "a", MODELS, 0, labels_from=0)
    b = seed_run(tmp_path, "b", worse, 1, labels_from=0)
    comparison = compare_across_seeds(a, b)
    found = {label: changes for label, changes in comparison.changed}
    assert set(found) == {
        "smoke seed 0 vs 1: mlp, fgsm, linf eps 0.1", "smoke seed 0 vs 1: mlp, worst_case, linf eps 0.1"
    }  # fmt: skip
    (change,) = found["smoke seed 0 vs 1: mlp, worst_case, linf eps 0.1"]
    assert change.how == f"95% interval [-0.075, -0.042]; McNemar exact p={2 / 2**15:.2g}"
    assert (comparison.tested, comparison.within_noise) == (3, 1)  # pgd's row
    code, out = rbg_compare(capsys, a, b / "leaderboard.csv", "--across-seeds")
    assert code == 1 and "within noise: smoke seed 0 vs 1: mlp, pgd, linf eps 0.1" in out

    elsewhere = seed_run(tmp_path, "c", worse, 1, labels_from=3)  # other images
    code, out = rbg_compare(capsys, a, elsewhere, "--across-seeds")
    assert code == 0 and "3 accuracy changes within noise (3 tested" in out
    assert compare_across_seeds(a, b, alpha=1e-6).changed == []


def test_across_seeds_still_compares_settings(tmp_path, capsys):
    a = seed_run(tmp_path, "a", MODELS, 0)
    board = synthetic_board(MODELS, seed=1)
    board.loc[board["attack"] == "pgd", "attack_params"] = '{"name": "pgd", "params": {}}'
    code, out = rbg_compare(capsys, a, write_run(tmp_path / "b", board), "--across-seeds")
    assert code == 1 and "attack_params" in out
    assert "4 rows changed (0 with a significant accuracy change, 4 in other columns only)" in out
    two_seeds = pd.concat([synthetic_board(MODELS), synthetic_board(MODELS, seed=1)])
    c = write_run(tmp_path / "c", two_seeds)
    assert main(["compare", str(a), str(c), "--across-seeds"]) == 2
    assert "several seeds (0, 1)" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--across-seeds", "--alpha", "2"]) == 2


def test_the_significance_tests():
    import math

    import numpy as np

    from robustbench_gan.publish.significance import holm, mcnemar_exact, two_proportions

    a = np.array([True] * 20 + [False] * 5)
    assert mcnemar_exact(a, a) == 1.0
    b = a.copy()
    b[:6] = False  # 6 lost, none gained
    assert math.isclose(mcnemar_exact(a, b), 2 * 0.5**6)
    b[20:23] = True  # 3 gained: 2 P(X <= 3), X ~ Binomial(9, 1/2)
    assert math.isclose(mcnemar_exact(a, b), 2 * sum(math.comb(9, k) for k in range(4)) / 2**9)
    assert math.isclose(two_proportions(50, 100, 60, 100), 0.15522, abs_tol=1e-5)  # z = 1.4213
    assert two_proportions(0, 60, 0, 60) == 1.0 and math.isnan(two_proportions(1, 0, 1, 5))
    assert holm([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    assert holm([0.01, math.nan], 0.05) == [True, False]
    scipy_stats = pytest.importorskip("scipy.stats")
    for lost, gained in ((40, 25), (3, 0), (700, 640)):
        expected = scipy_stats.binomtest(gained, lost + gained, 0.5).pvalue
        a = np.r_[np.ones(lost, bool), np.zeros(gained, bool)]
        assert math.isclose(mcnemar_exact(a, ~a), expected, rel_tol=1e-9)
    table = [[50, 50], [60, 40]]  # the z-test is the chi-square test without correction
    chi2 = scipy_stats.chi2_contingency(table, correction=False).pvalue
    assert math.isclose(two_proportions(50, 100, 60, 100), chi2, rel_tol=1e-9)
