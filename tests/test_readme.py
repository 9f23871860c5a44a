"""The README stays true: CI runs its test command, its plugin example works, its sample
table is the committed quickstart result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from robustbench_gan.report.format import markdown_table, robust_accuracy_matrix

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = bash_blocks()
    assert "rbg run suites/quickstart.toml" in main_job
    assert "pytest" in tests
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_plugin_example_runs_and_stays_in_the_ball():
    code = re.search(r"```python\n(.*?)\n```", README, flags=re.S).group(1)
    check = """
import torch
from robustbench_gan.registry import ATTACKS, CLASSIFIERS
model = CLASSIFIERS.create("mlp", in_shape=(1, 8, 8), num_classes=10)
x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
result = ATTACKS.create("random_sign", seed=1)(model, x, y, [0.0, 0.1])
assert torch.equal(result.adv[0], x)
assert (result.adv[1] - x).abs().max() <= 0.1 + 1e-6
assert result.adv.min() >= 0 and result.adv.max() <= 1
assert "random_sign" in ATTACKS.list("random*")
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + check], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_sample_table_is_the_committed_worst_case():
    board = pd.read_csv(ROOT / "results" / "quickstart" / "leaderboard.csv", keep_default_na=False)
    matrix = robust_accuracy_matrix(board, "worst_case", "linf").drop(columns=["eps 0"])
    sample = re.search(
        r"<!-- sample:start -->\n(.*?)\n<!-- sample:end -->", README, flags=re.S
    ).group(1)
    assert sample == markdown_table(matrix)
