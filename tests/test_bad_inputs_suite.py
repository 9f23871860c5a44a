"""Suites that could only fail once the work was done are refused before it starts: attacks
that need more classes than the data has (each attack declares ``min_classes``), datasets of
fewer than 2 classes, and entries that differ only in their labels (one cell, two labels).
Every refusal is exactly one line `rbg: error: ...`, exit 2, and nothing is trained or stored."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import robustbench_gan
from robustbench_gan.attacks.base import Attack
from robustbench_gan.cli import main
from robustbench_gan.contract.data import DataSplit
from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.attack import random_classes
from robustbench_gan.registry import ATTACKS, DATASETS
from robustbench_gan.runner.run import run_suite
from robustbench_gan.suite import load_suite

# -- image folders and suites on them --------------------------------------------------------


def image_folder(base: Path, classes: int, train: int = 4, test: int = 2) -> Path:
    """base/imgs with train/ and test/ holding ``classes`` class folders of 8x8 grey PNGs."""
    rng = np.random.default_rng(classes)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            folder = base / "imgs" / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
                pixels[c % 8, :] = 25 * c  # a little signal per class
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return base / "imgs"


def folder_suite(tmp_path: Path, classes: int, attack: str) -> Path:
    """A tiny suite on an image folder of ``classes`` classes; attacks[1] is ``attack``."""
    folder = image_folder(tmp_path, classes)
    suite = tmp_path / "x.toml"
    suite.write_text(
        f"""name = "x"
[dataset]
name = "imagefolder"
path = "{folder}"
channels = 1

[train]
epochs = 1
batch_size = 8

[eval]
eps = [0, 0.1]

[[targets]]
name = "mlp"
hidden = 4

[[attacks]]
name = "fgsm"

[[attacks]]
{attack}
"""
    )
    return suite


def run_args(tmp_path: Path, suite: Path) -> list[str]:
    out, cache = tmp_path / "out", tmp_path / "cache"
    return ["run", str(suite), "--out", str(out), "--cache-dir", str(cache), "--no-progress",
            "--jobs", "1", "--device", "cpu"]  # fmt: skip


def refused(capsys, args: list[str]) -> str:
    """The one line of a refusal (exit 2, no traceback), and how long it took."""
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rbg: error: ") and "Traceback" not in err
    return lines[0]


def nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


# -- defect 6: attacks that need more classes than the data has ------------------------------

TOO_FEW = {  # case -> (classes in the folder, attacks[1] as written, what it needs)
    "apgd_dlr_on_2": (2, 'name = "apgd_dlr"\nsteps = 2', "apgd_dlr needs at least 3"),
    "apgd_t_on_3": (
        3,
        'name = "apgd_dlr"\nlabel = "apgd-t"\ntargeted = true\nsteps = 2',
        "apgd_dlr (label 'apgd-t') needs at least 4",
    ),
    "cascade_on_3": (
        3,
        'name = "cascade"\nlabel = "wc"',
        "cascade (label 'wc') needs at least 4",
    ),
    "autoattack_on_3": (3, 'name = "autoattack"', "autoattack needs at least 4"),
    "autoattack_rand_on_2": (
        2,
        'name = "autoattack"\nversion = "rand"',
        "autoattack needs at least 3",
    ),
    "fab_t_on_3": (3, 'name = "fab"\nn_target_classes = 3', "fab needs at least 4"),
}


@pytest.mark.parametrize("case", sorted(TOO_FEW))
def test_an_attack_needing_more_classes_is_refused_before_anything_trains(case, tmp_path, capsys):
    classes, attack, needs = TOO_FEW[case]
    suite = folder_suite(tmp_path, classes, attack)
    line = f"rbg: error: {suite}: attacks[1]: {needs} classes, dataset 'imagefolder' has {classes}"
    assert main(["validate", str(suite)]) == 0  # without the data it cannot know the classes
    capsys.readouterr()
    assert refused(capsys, ["validate", str(suite), "--data-dir", str(tmp_path)]) == line
    start = time.perf_counter()
    assert refused(capsys, run_args(tmp_path, suite)) == line
    assert time.perf_counter() - start < 5  # fails fast: reads the images, trains nothing
    nothing_written(tmp_path)


def eval_args(tmp_path: Path, folder: Path, *attacks: str) -> list[str]:
    chosen = ["--attacks", ",".join(attacks)] if attacks else []  # default: standard
    return ["eval", "--model", "mlp", "--dataset", "imagefolder", "--eps", "0.1", "--n", "2",
            "--dataset-param", f"path={folder}", "--out", str(tmp_path / "out"), *chosen,
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--device", "cpu"]  # fmt: skip


def test_rbg_eval_and_benchmark_check_the_classes_too(tmp_path, capsys, monkeypatch):
    """They name the attack in the message: their errors point at the arguments given."""
    monkeypatch.chdir(tmp_path)
    three, two = image_folder(tmp_path / "three", 3), image_folder(tmp_path / "two", 2)
    # AutoAttack's standard version: its APGD-T reads the 4th largest logit
    standard = "autoattack (label 'standard') needs at least 4 classes, dataset 'imagefolder' has 3"
    assert refused(capsys, eval_args(tmp_path, three)).endswith(standard)
    line = refused(capsys, eval_args(tmp_path, two, "fgsm", "apgd_dlr"))
    assert line.endswith(" apgd_dlr needs at least 3 classes, dataset 'imagefolder' has 2")
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8, 3))
    with pytest.raises(UserError) as info:
        robustbench_gan.benchmark(
            model, dataset="imagefolder", dataset_params={"path": str(three), "channels": 1},
            eps=0.1, n_examples=2, cache_dir=tmp_path / "cache", device="cpu",
        )  # fmt: skip
    assert str(info.value).endswith(standard) and "\n" not in str(info.value)
    nothing_written(tmp_path)


def test_a_dataset_of_fewer_than_two_classes_is_refused_wherever_it_is_loaded(tmp_path, capsys):
    x, y = torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(UserError, match=r"^flat: 1 class \['a'\]; a classifier needs at least 2"):
        DataSplit("flat", x, y, x, y, 1, ("a",))
    suite = folder_suite(tmp_path, 1, 'name = "pgd"\nsteps = 2')
    folder = tmp_path / "imgs"
    message = (
        f"imagefolder: {folder / 'test'} holds one class folder (c0); a classifier needs at "
        "least 2 classes, one folder each"
    )
    with pytest.raises(UserError) as info:  # before reading any image, train/ or not
        DATASETS.create("imagefolder", path=folder, test_only=True)
    assert str(info.value) == message
    for args in (["validate", str(suite), "--data-dir", str(tmp_path)], run_args(tmp_path, suite)):
        assert refused(capsys, args) == f"rbg: error: {suite}: dataset: {message}"
    assert refused(capsys, eval_args(tmp_path, folder, "fgsm")).endswith(message)
    nothing_written(tmp_path)


def robust_model(classes: int) -> nn.Module:
    """A linear model that says class 0 whatever the image: every part of a composite runs."""
    torch.manual_seed(classes)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, classes))
    with torch.no_grad():
        model[1].weight.mul_(0.01)
        model[1].bias.zero_()[0] = 3.0
    return model


DECLARED = {  # attack settings -> the classes it declares it needs
    "apgd_ce": ({"name": "apgd_ce", "steps": 2}, 2),
    "apgd_dlr": ({"name": "apgd_dlr", "steps": 2}, 3),
    "apgd_t": ({"name": "apgd_dlr", "steps": 2, "targeted": True}, 4),
    "fab": ({"name": "fab", "steps": 2}, 2),
    "fab_t_3": ({"name": "fab", "steps": 2, "n_target_classes": 3}, 4),
    "cascade": ({"name": "cascade", "attacks": ["apgd_ce", "apgd_dlr"]}, 3),
    "cascade_t": (
        {
            "name": "cascade",
            "n_target_classes": 9,  # a composite caps its targets at C - 1
            "attacks": [{"name": "apgd_dlr", "steps": 2, "targeted": True}],
        },
        4,
    ),
    "autoattack_rand": ({"name": "autoattack", "version": "rand", "steps": 2}, 3),
    "autoattack": ({"name": "autoattack", "steps": 2, "n_queries": 5}, 4),
    "fab_t_clipped": ({"name": "fab", "steps": 2, "n_target_classes": 9, "clip_targets": True}, 2),
}


@pytest.mark.parametrize("case", sorted(DECLARED))
def test_the_declared_requirement_is_the_true_one(case):
    """At ``min_classes`` classes the attack runs; one class fewer it fails as it did."""
    params, needs = DECLARED[case]
    settings = dict(params)
    attack: Attack = ATTACKS.create(settings.pop("name"), **settings)
    assert attack.min_classes == needs
    x = torch.rand(6, 1, 4, 4)
    for classes in (needs, needs - 1) if needs > 2 else (needs,):
        y = torch.zeros(6, dtype=torch.long)
        target = random_classes(y, classes, 0) if attack.targeted else None
        if classes == needs:
            attack(robust_model(classes), x, y, [0.1], target_class=target)
        else:
            with pytest.raises(ValueError, match="classes"):
                attack(robust_model(classes), x, y, [0.1], target_class=target)


def test_enough_classes_run_through(tmp_path):
    """At its boundary the run goes through: a worst case with APGD-T on 4 classes."""
    parts = '[{name = "apgd_ce", steps = 2}, {name = "apgd_dlr", targeted = true, steps = 2}]'
    attacks = f'name = "cascade"\nlabel = "wc"\nattacks = {parts}\n\n'
    attacks += '[[attacks]]\nname = "apgd_dlr"\nsteps = 2'
    suite = folder_suite(tmp_path, 4, attacks)
    assert main(["validate", str(suite), "--data-dir", str(tmp_path)]) == 0
    assert main(run_args(tmp_path, suite)) == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert {"fgsm", "wc", "apgd_dlr"} <= set(board["attack"])


# -- defect 8: entries that differ only in their labels --------------------------------------

DIGITS = """name = "dup"
[dataset]
name = "digits"
test_fraction = 0.2
max_train = 100
max_test = 10

[train]
epochs = 1
batch_size = 32

[eval]
eps = [0, 0.1]
"""
MLP = '[[targets]]\nname = "mlp"\nhidden = 4\n'
FGSM = '[[attacks]]\nname = "fgsm"\n'
GAN = '[[generators]]\nname = "cdcgan"\nngf = 4\nndf = 4\ntrain = { steps = 2, batch_size = 8 }\n'
FGSM_AT = '[[defenses]]\nname = "fgsm_at"\nbase = "mlp"\neps = 0.1\n'


def entries(*blocks: str) -> str:
    return DIGITS + "\n".join(f"\n{b}" for b in blocks)


def labelled(block: str, label: str) -> str:
    return f'{block}label = "{label}"\n'


COPIES = {  # case -> (suite, the one line after the file's name)
    "targets": (
        entries(labelled(MLP, "a"), labelled(MLP, "b"), FGSM),
        "targets[0] and targets[1] are the same model under two labels ('a', 'b')",
    ),
    "targets_as_trained": (  # one of them spells out the suite's own training settings
        entries(MLP, labelled(MLP + "train = { epochs = 1, batch_size = 32 }\n", "b"), FGSM),
        "targets[0] and targets[1] are the same model under two labels ('mlp', 'b')",
    ),
    "generators": (
        entries(MLP, labelled(GAN, "g1"), labelled(GAN, "g2"), FGSM),
        "generators[0] and generators[1] are the same generator under two labels ('g1', 'g2')",
    ),
    "attacks": (
        entries(MLP, labelled(FGSM, "f1"), labelled(FGSM, "f2")),
        "attacks[0] and attacks[1] are the same attack under two labels ('f1', 'f2')",
    ),
    "training_defenses": (
        entries(MLP, labelled(FGSM_AT, "d1"), labelled(FGSM_AT, "d2"), FGSM),
        "defenses[0] and defenses[1] are the same defense under two labels ('d1', 'd2')",
    ),
    "training_defenses_as_trained": (  # one trains as its base does, the other says so
        entries(
            MLP,
            FGSM_AT,
            labelled(FGSM_AT + "train = { epochs = 1, batch_size = 32 }\n", "d2"),
            FGSM,
        ),
        "defenses[0] and defenses[1] are the same defense under two labels ('fgsm_at', 'd2')",
    ),
    "model_defenses": (
        entries(
            MLP,
            labelled(MLP.replace("4", "8"), "wide"),
            *(
                labelled('[[defenses]]\nname = "ensemble"\nmembers = ["mlp", "wide"]\n', e)
                for e in ("e1", "e2")
            ),  # fmt: skip
            FGSM,
        ),
        "defenses[0] and defenses[1] are the same defense under two labels ('e1', 'e2')",
    ),
}
KEEP_ONE = ": keep one (a label changes nothing that is computed)"


@pytest.mark.parametrize("case", sorted(COPIES))
def test_entries_that_differ_only_in_labels_are_refused_by_validate_and_run(case, tmp_path, capsys):
    text, message = COPIES[case]
    suite = tmp_path / "dup.toml"
    suite.write_text(text)
    line = f"rbg: error: {suite}: {message}{KEEP_ONE}"
    assert refused(capsys, ["validate", str(suite)]) == line
    assert refused(capsys, run_args(tmp_path, suite)) == line
    nothing_written(tmp_path)


SAME_LABEL = {  # case -> (suite, what the one line says): refused as before
    "targets": (
        entries(labelled(MLP, "a"), labelled(MLP.replace("4", "8"), "a"), FGSM),
        "targets[1].label: label 'a' is used twice in [[targets]]",
    ),
    "generators": (
        entries(MLP, labelled(GAN, "g"), labelled(GAN.replace("ngf = 4", "ngf = 8"), "g"), FGSM),
        "generators[1].label: label 'g' is used twice in [[generators]]",
    ),
    "attacks": (
        entries(MLP, labelled(FGSM, "f"), labelled('[[attacks]]\nname = "pgd"\n', "f")),
        "attacks[1].label: label 'f' is used twice in [[attacks]]",
    ),
    "defenses": (
        entries(MLP, labelled(FGSM_AT, "d"), labelled(FGSM_AT.replace("0.1", "0.2"), "d"), FGSM),
        "defenses[1].label: model label 'mlp+d' is used twice",
    ),
    "defense_as_target": (
        entries(
            MLP,
            labelled(MLP.replace("4", "8"), "wide"),
            labelled('[[defenses]]\nname = "ensemble"\nmembers = ["mlp", "wide"]\n', "wide"),
            FGSM,
        ),
        "defenses[0].label: model label 'wide' is used twice",
    ),
}


@pytest.mark.parametrize("case", sorted(SAME_LABEL))
def test_one_label_on_two_different_entries_is_refused_as_before(case, tmp_path, capsys):
    text, message = SAME_LABEL[case]
    suite = tmp_path / "dup.toml"
    suite.write_text(text)
    for args in (["validate", str(suite)], run_args(tmp_path, suite)):
        line = refused(capsys, args)
        assert line.startswith(f"rbg: error: {suite}: {message}"), line
    nothing_written(tmp_path)


def test_entries_that_differ_in_a_setting_each_get_their_rows(tmp_path, capsys):
    """Two fgsm entries of other budgets, two targets of other epochs: four cells, all rows."""
    text = entries(
        MLP,
        labelled(MLP + "train = { epochs = 2 }\n", "longer"),
        labelled(FGSM, "f1"),
        labelled(FGSM + "eps = [0, 0.2]\n", "f2"),
    )
    suite = tmp_path / "pair.toml"
    suite.write_text(text)
    assert main(["validate", str(suite)]) == 0
    assert main(run_args(tmp_path, suite)) == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    rows = set(zip(board["target"], board["attack"]))
    assert {("mlp", "f1"), ("mlp", "f2"), ("longer", "f1"), ("longer", "f2")} <= rows


def test_the_plan_refuses_one_cell_under_two_keys_before_anything_runs(tmp_path):
    """What the suite could not tell apart (a Suite built in code) is caught by the plan."""
    suite = tmp_path / "one.toml"
    suite.write_text(entries(MLP, labelled(FGSM, "f1"), labelled(FGSM + "eps = [0, 0.2]\n", "f2")))
    loaded = load_suite(suite)
    twin = dataclasses.replace(loaded.attacks[0], label="f2", where="attacks[1]")
    copied = dataclasses.replace(loaded, attacks=(loaded.attacks[0], twin))
    with pytest.raises(UserError) as info:
        run_suite(copied, out=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert str(info.value) == (
        f"{suite}: 'f1 on mlp' and 'f2 on mlp' are one computation under two labels (a label "
        "enters no cell id): keep one of the entries behind them"
    )
    nothing_written(tmp_path)


def test_a_defense_training_with_such_an_attack_is_refused_before_anything_trains(tmp_path, capsys):
    """Adversarial training with APGD-DLR on 2 classes: the defense's entry is named, not a
    ValueError once the targets are trained (the defense is built only at run time here: it
    needs its static models, so the requirement is its attack's)."""
    suite = folder_suite(tmp_path, 2, 'name = "pgd"\nsteps = 2')
    text = suite.read_text() + (
        '\n[[targets]]\nname = "mlp"\nlabel = "static"\nhidden = 3\n'
        '\n[[defenses]]\nname = "ensemble_at"\nbase = "mlp"\nstatic = ["static"]\neps = 0.1\n'
        'attack = "apgd_dlr"\nattack_params = {steps = 2}\n'
    )
    suite.write_text(text)
    line = (
        f"rbg: error: {suite}: defenses[0]: ensemble_at needs at least 3 classes, "
        "dataset 'imagefolder' has 2"
    )
    assert refused(capsys, ["validate", str(suite), "--data-dir", str(tmp_path)]) == line
    assert refused(capsys, run_args(tmp_path, suite)) == line
    nothing_written(tmp_path)


@pytest.mark.parametrize("eps", ["1e308", '"1e7"', '"1/1e-300"'])
def test_a_budget_beyond_any_image_is_refused(eps, tmp_path, capsys):
    """An L2 budget of 1e308 passed validation, then overflowed the report's ``k/255``."""
    suite = folder_suite(tmp_path, 3, 'name = "pgd"')
    suite.write_text(suite.read_text().replace("eps = [0, 0.1]", f"eps = [0, {eps}]"))
    line = refused(capsys, ["validate", str(suite)])
    assert line.startswith(f"rbg: error: {suite}: eval.eps[1]: must be at most 1e+06, got ")


def test_any_finite_budget_has_a_text():
    from robustbench_gan.render.format import eps_text

    assert eps_text(1e308).startswith("1000000000") and eps_text(8 / 255) == "8/255"
