"""The README stays true: CI runs its test command, its plugin example works, its sample
table is the committed quickstart result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from committed import committed

from robustbench_gan.contract.schema import upgrade_board
from robustbench_gan.render.format import markdown_table, robust_accuracy_matrix

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
    code = next(
        b for b in re.findall(r"```python\n(.*?)\n```", README, flags=re.S) if "@ATTACKS" in b
    )
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
    board = upgrade_board(
        pd.read_csv(committed("quickstart") / "leaderboard.csv", keep_default_na=False)
    )
    matrix = robust_accuracy_matrix(board, "worst_case", "linf").drop(columns=["eps 0"])
    sample = re.search(
        r"<!-- sample:start -->\n(.*?)\n<!-- sample:end -->", README, flags=re.S
    ).group(1)
    assert sample == markdown_table(matrix)


GAN_SAMPLE = ["generator", "steps", "fid_small_cnn", "coverage", "label_fidelity", "beats_baseline"]


def gan_sample_table() -> str:
    """The README's GAN table, from the committed quickstart gan.csv."""
    gan = pd.read_csv(committed("quickstart") / "gan.csv")
    return markdown_table(gan[GAN_SAMPLE])


def test_gan_sample_is_the_committed_gan_table():
    sample = re.search(
        r"<!-- gan-sample:start -->\n(.*?)\n<!-- gan-sample:end -->", README, flags=re.S
    ).group(1)
    assert sample == gan_sample_table()
    gan = pd.read_csv(committed("quickstart") / "gan.csv")
    assert gan.set_index("generator").loc[["dcgan", "cdcgan"], "beats_baseline"].all()


MY_MODELS = """
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)
"""


def own_model_block(kind: str) -> str:
    return re.search(rf"<!-- own-model:{kind} -->\n```\w+\n(.*?)\n```", README, flags=re.S).group(1)


def test_the_three_routes_for_your_own_model_run_and_agree(tmp_path, monkeypatch):
    import torch
    from conftest import fit_full_batch

    from robustbench_gan.cli import main
    from robustbench_gan.registry import DATASETS
    from robustbench_gan.runner.run import run_suite

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RBG_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "my_models.py").write_text(MY_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_models

    data = DATASETS.create("digits", seed=0)
    torch.manual_seed(0)
    net = fit_full_batch(my_models.Net(), data.x_train, data.y_train, steps=20)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    monkeypatch.delitem(sys.modules, "my_models")

    header = '[dataset]\nname = "digits"\ntest_only = true\n[eval]\neps = [0.1]\nn = 100\n'
    attacks = '[[attacks]]\nname = "fgsm"\n[[attacks]]\nname = "pgd"\n'
    (tmp_path / "mine.toml").write_text(header + own_model_block("suite") + "\n" + attacks)
    board = run_suite(tmp_path / "mine.toml", out=tmp_path / "suite", progress=False).tables
    suite_acc = board["leaderboard"].set_index("attack")["robust_acc"]

    command = own_model_block("cli").split()
    assert command[0] == "rbg"
    assert main([*command[1:], "--no-progress"]) == 0
    cli = pd.read_csv(tmp_path / "results" / "eval-Net" / "leaderboard.csv").set_index("attack")

    namespace: dict = {}
    exec(own_model_block("python"), namespace)
    api = namespace["result"].attacks.set_index("attack")
    for attack in ("fgsm", "pgd"):
        assert suite_acc[attack] == cli.loc[attack, "robust_acc"] == api.loc[attack, "robust_acc"]
