"""A Suite written back as its suite table reads back to the same Suite; benchmark() builds
its suite from its arguments, and the table its eval folder records reads back to it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_gan.api import recorded_table
from robustbench_gan.api_suite import benchmark_suite
from robustbench_gan.registry import ATTACKS, DATASETS, search_path
from robustbench_gan.suite import load_suite, parse_suite
from robustbench_gan.suite.table import suite_table

SUITES = sorted((Path(__file__).parent.parent / "suites").glob("*.toml"))


def read_back(table: dict, path: Path, **kwargs):
    with search_path(path.parent):  # module:attr models beside the suite file
        return parse_suite(json.loads(json.dumps(table)), path, **kwargs)  # JSON-ready too


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_bundled_suite_reads_back_from_its_table(path):
    suite = load_suite(path)
    again = read_back(suite_table(suite), suite.path)
    # the kinds' own tables ([latent], [[reference]], ...) are theirs, not written back
    assert dataclasses.replace(again, sections=suite.sections) == suite


def test_only_what_differs_from_the_defaults_is_written(tmp_path):
    (tmp_path / "s.toml").write_text(
        '[eval]\neps = [0.1, 0.2]\n[[targets]]\nname = "mlp"\n[[attacks]]\nname = "fgsm"\n'
        '[[attacks]]\nname = "fgm"\neps = [1.0]\n'
    )
    table = suite_table(load_suite(tmp_path / "s.toml"))
    assert table == {
        "name": "s",
        "seed": 0,
        "dataset": {"name": DATASETS.default()},
        "eval": {"eps": [0.1, 0.2]},
        "targets": [{"name": "mlp", "label": "mlp"}],
        "attacks": [
            {"name": "fgsm", "label": "fgsm"},
            {"name": "fgm", "label": "fgm", "eps": [1.0]},
        ],
    }


def test_a_model_zoo_target_reads_back_from_a_relative_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RBG_MODEL_DIR", raising=False)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.toml").write_text(
        '[dataset]\nname = "cifar10"\n[eval]\neps = [0.03]\n[[attacks]]\nname = "fgsm"\n'
        '[[targets]]\nname = "robustbench:Standard"\nthreat_model = "Linf"\nmodel_dir = "m"\n'
    )
    suite = load_suite(Path("sub/s.toml"))
    source = suite.targets[0].source
    assert (source.dataset, source.model_dir) == ("cifar10", "sub/m")  # the zoo's own keys
    table = suite_table(suite)
    assert table["targets"][0]["model_dir"] == "m"
    assert read_back(table, suite.path) == suite


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


COMMON = {"dataset": "digits", "threat_model": "Linf", "eps": "8/255", "n_examples": 16,
          "batch_size": 8, "seed": 1}  # fmt: skip


@pytest.mark.parametrize("attacks", ["standard", ["fgsm", "pgd"]])
def test_the_benchmark_suite_is_built_from_its_arguments(attacks, tmp_path):
    suite = benchmark_suite(Net(), attacks=attacks, folder=tmp_path, **COMMON)
    assert suite.name == "benchmark-Net" and suite.eps == (8 / 255,) and suite.n_eval == 16
    assert suite.dataset.params == {"test_only": True} and suite.seed == 1
    assert [t.label for t in suite.targets] == ["Net"] and suite.targets[0].loaded
    if attacks == "standard":  # the attack registered with the preset, under its name
        name, params = ATTACKS.preset("standard")
        (spec,) = suite.attacks
        assert (spec.name, spec.label) == (name, "standard")
        assert dict(spec.params) == {**params, "norm": "linf"}
    else:
        assert [a.label for a in suite.attacks] == attacks
    # the record's table reads back to the same suite, given the model as identified
    again = read_back(recorded_table(suite), suite.path, targets=suite.targets)
    assert dataclasses.replace(again, name=suite.name) == suite


def test_a_recorded_table_of_an_older_version_still_reads_back(tmp_path):
    """Eval folders written before held a placeholder target in their table: it is not read."""
    suite = benchmark_suite(Net(), attacks=["fgsm"], folder=tmp_path, **COMMON)
    older = {**recorded_table(suite), "name": "benchmark", "targets": [{"name": "mlp"}]}
    again = read_back(older, suite.path, targets=suite.targets)
    assert dataclasses.replace(again, name=suite.name) == suite
