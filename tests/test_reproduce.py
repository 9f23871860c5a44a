"""`rbg reproduce`: the run's suite again in a fresh store, a verdict per table (shares of
images tested against noise, tolerances for continuous columns, claims equal), recorded for
`rbg publish`; and the table comparison it rests on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from robustbench_gan.cli import main
from robustbench_gan.publish.agreement import compare_findings, compare_table
from robustbench_gan.publish.leaderboards import publish


def gan_table(**changes) -> pd.DataFrame:
    rows = [
        {"generator": "dcgan", "steps": "2500", "fid_small_cnn": "40.0", "coverage": "0.70",
         "label_fidelity": "", "beats_baseline": "True"},
        {"generator": "baseline", "steps": "0", "fid_small_cnn": "68.0", "coverage": "0.65",
         "label_fidelity": "0.98", "beats_baseline": ""},
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    for column, value in changes.items():
        frame.loc[0, column] = value
    return frame


def transfer_table(acc: str = "0.50", n: str = "360") -> pd.DataFrame:
    rows = [{"attack": "pgd", "eps": "0.1", "source": "mlp", "target": "lenet", "n_eval": n,
             "target_robust_acc": acc}]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_share_of_images_is_tested_against_its_noise():
    same = compare_table("transfer.csv", transfer_table(), transfer_table("0.48"), 360, 0.05)
    assert same.agrees and "1 of 1 share changes within noise" in same.summary
    far = compare_table("transfer.csv", transfer_table(), transfer_table("0.30"), 360, 0.05)
    assert not far.agrees
    assert far.lines[0].startswith("attack=pgd, eps=0.1, source=mlp, target=lenet: ")
    assert "target_robust_acc 0.50 -> 0.30 (-0.2; 95% interval [-0.26" in far.lines[0]
    few = compare_table(
        "transfer.csv", transfer_table(n="20"), transfer_table("0.30", "20"), 0, 0.05
    )
    assert few.agrees  # 4 images of 20: within noise
    assert not compare_table("t.csv", transfer_table(), transfer_table(n="200"), 360, 0.05).agrees


def test_a_gan_outcome_is_not_compared_but_its_claim_must_hold():
    moved = gan_table(coverage="0.40", fid_small_cnn="75.0")
    chaotic = compare_table("gan.csv", gan_table(), moved, 360, 0.05)
    assert chaotic.agrees and "not compared: coverage, fid_small_cnn" in chaotic.summary
    flipped = compare_table("gan.csv", gan_table(), gan_table(beats_baseline="False"), 360, 0.05)
    assert flipped.lines == [
        "generator=dcgan, steps=2500: beats_baseline True -> False (a claim that must be equal)"
    ]
    fewer = compare_table("gan.csv", gan_table(), gan_table().iloc[:1], 360, 0.05)
    assert fewer.lines == ["only in A: generator=baseline, steps=0"]


def test_norms_move_within_their_tolerance_and_settings_must_be_equal():
    def table(l2: str, params: str) -> pd.DataFrame:
        return pd.DataFrame([{"target": "mlp", "eps": "0.1", "mean_l2": l2, "params": params}])

    assert compare_table("t.csv", table("1.0", "a"), table("1.08", "a"), 100, 0.05).agrees
    moved = compare_table("t.csv", table("1.0", "a"), table("1.3", "a"), 100, 0.05)
    assert "beyond its relative tolerance 0.1" in moved.lines[0]
    assert not compare_table("t.csv", table("1.0", "a"), table("1.0", "b"), 100, 0.05).agrees


def test_a_finding_that_stops_holding_is_a_difference(tmp_path):
    holds = "Finding: A beats B. Under fgsm at eps 0.1 from C, ... the finding holds here.\n"
    fails = holds.replace("holds here", "**does not hold here**")
    for name, text in (("a", holds), ("b", holds), ("c", fails)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.md").write_text("# report\n\n" + text)
    assert compare_findings(tmp_path / "a", tmp_path / "b").agrees
    verdict = compare_findings(tmp_path / "a", tmp_path / "c")
    assert not verdict.agrees and "holds in A: True, in B: False" in verdict.lines[0]


@pytest.fixture
def finished_run(tmp_path, tiny_suite):
    out = tmp_path / "run"
    args = ["run", str(tiny_suite), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--seed", "1", "--jobs", "1", "--no-progress"]) == 0
    return out


def test_a_run_is_reproduced_in_a_fresh_store_and_publish_says_so(finished_run, tmp_path, capsys):
    capsys.readouterr()
    again = tmp_path / "again"
    code = main(["reproduce", str(finished_run), "--out", str(again), "--jobs", "1",
                 "--cache-dir", str(tmp_path / "fresh"), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "leaderboard.csv: agrees" in out and "rbg: reproduced: all" in out
    assert json.loads((again / "run.json").read_text())["seed"] == 1  # the run's seed
    assert any((tmp_path / "fresh").iterdir())  # the store asked for is kept
    (record,) = json.loads((finished_run / "reproductions.json").read_text())
    assert record["agrees"] is True and record["out"] == "../again"
    publish(finished_run, tmp_path / "results")
    board = pd.read_csv(tmp_path / "results" / "digits-linf.csv", keep_default_na=False)
    assert set(board["reproduced"]) == {"yes"}
    assert board["reproduced_where"].str.contains(", 20").all()


def test_a_run_that_does_not_hold_exits_1_and_names_the_table(finished_run, tmp_path, capsys):
    board = pd.read_csv(finished_run / "leaderboard.csv", keep_default_na=False)
    pick = (board["attack"] == "fgsm") & (board["eps"] == 0.1) & (board["target"] == "mlp")
    board.loc[pick, "robust_acc"] = (board.loc[pick, "robust_acc"] + 0.6).clip(upper=1.0)
    board.to_csv(finished_run / "leaderboard.csv", index=False)
    capsys.readouterr()
    code = main(["reproduce", str(finished_run), "--jobs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "leaderboard.csv: DIFFERS" in out and "tiny seed 1: mlp, fgsm, linf eps 0.1" in out
    assert "rbg: not reproduced: leaderboard.csv differ" in out
    assert (tmp_path / "run-reproduced" / "leaderboard.csv").is_file()  # the default --out
    assert json.loads((finished_run / "reproductions.json").read_text())[-1]["agrees"] is False


def test_bad_input_is_one_line_and_exit_2(finished_run, tmp_path, tiny_suite, capsys):
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    capsys.readouterr()
    assert main(["reproduce", str(finished_run), "--cache-dir", str(full)]) == 2
    assert "not empty; reproducing needs a fresh store" in capsys.readouterr().err
    assert main(["reproduce", str(tmp_path / "nowhere")]) == 2
    assert "no run.json here" in capsys.readouterr().err
    assert main(["reproduce", str(finished_run), "--out", str(finished_run)]) == 2
    assert "--out must not be the run being reproduced" in capsys.readouterr().err
    tiny_suite.write_text(tiny_suite.read_text().replace("steps = 2", "steps = 3"))
    assert main(["reproduce", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed since the run" in err


def test_rows_and_run_json_name_the_kernel_path_and_machine(finished_run):
    """The device column names torch's CPU kernel path; run.json the machine, with the
    kernel variables that were set (here ATEN_CPU_CAPABILITY=default in a subprocess)."""
    board = pd.read_csv(finished_run / "leaderboard.csv")
    capability = torch.backends.cpu.get_cpu_capability()
    assert set(board["device"]) == {f"cpu (1 thread, {capability})"}
    machine = json.loads((finished_run / "run.json").read_text())["machine"]
    assert machine["cpu_capability"] == capability and machine["threads"] == 1
    assert {"python", "torch", "numpy"} <= set(machine["libraries"])
    code = (
        "import json, torch; from robustbench_gan.runner.machine import machine_info; "
        "from robustbench_gan.runner.device import describe_device; "
        "print(json.dumps([describe_device(torch.device('cpu')), machine_info()]))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    device, info = json.loads(proc.stdout)
    assert device.endswith(", DEFAULT)") and info["cpu_capability"] == "DEFAULT"
    assert info["kernel_variables"]["ATEN_CPU_CAPABILITY"] == "default"


def test_a_key_column_with_empty_cells_still_matches_rows():
    """gan.csv's ``domain`` is empty but for translators: those rows match on the empty key."""
    frame = pd.DataFrame(
        [{"generator": "dcgan", "domain": "", "beats_baseline": "True"},
         {"generator": "cyclegan", "domain": "invert", "beats_baseline": "True"}]
    ).replace("", float("nan"))  # fmt: skip
    verdict = compare_table("gan.csv", frame, frame.copy(), 360, 0.05)
    assert verdict.agrees and verdict.lines == [] and verdict.summary.startswith("2 rows")


def test_the_suite_digest_ignores_comments_and_layout(tmp_path, tiny_suite):
    from robustbench_gan.runner.run import suite_digest

    before = suite_digest(tiny_suite)
    tiny_suite.write_text(
        "# a note\n" + tiny_suite.read_text().replace("[[attacks]]", "\n[[attacks]]")
    )
    assert suite_digest(tiny_suite) == before
    tiny_suite.write_text(tiny_suite.read_text().replace("steps = 2", "steps = 3"))
    assert suite_digest(tiny_suite) != before
    assert suite_digest(tmp_path / "nowhere.toml") is None


def test_a_curve_that_stops_earlier_is_compared_on_its_common_part():
    """An attack that exits early ends its iteration curve when every image is broken: the
    points past the other run's end are counted, not a difference."""

    def curve(points: int) -> pd.DataFrame:
        rows = [{"target": "mlp", "attack": "square", "eps": "0.1", "iteration": str(i),
                 "robust_acc": str(max(0.0, 0.5 - 0.1 * i))} for i in range(points)]  # fmt: skip
        return pd.DataFrame(rows)

    verdict = compare_table("curves_iterations.csv", curve(8), curve(6), 200, 0.05)
    assert verdict.agrees and "2 curve points past the other run's end" in verdict.summary
