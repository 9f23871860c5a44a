"""Benchmarking a model trained elsewhere: the suite, `rbg eval` and the Python API agree,
the weights are used as they are, and nothing stale is served when files change."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import robustbench_gan
from robustbench_gan.cli import main
from robustbench_gan.registry import DATASETS
from robustbench_gan.runner.run import run_suite

N = 120
EPS = 0.1


def suite_text(attacks: str = '"fgsm", "pgd"') -> str:
    entries = "\n".join(f"[[attacks]]\nname = {a.strip()}" for a in attacks.split(","))
    return f"""
name = "own"
[dataset]
name = "digits"
test_only = true
[eval]
eps = [{EPS}]
n = {N}
[[targets]]
name = "tinynet:Net"
label = "net"
weights = "net.pt"
{entries}
"""


def accuracies(board: pd.DataFrame) -> dict[str, tuple[float, float]]:
    rows = board[board["attack"] != "worst_case"]
    return {a: (c, r) for a, c, r in zip(rows["attack"], rows["clean_acc"], rows["robust_acc"])}


def test_suite_eval_and_api_agree_and_use_the_weights_as_they_are(own_model, capsys):
    folder, model = own_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = DATASETS.create("digits", seed=0, test_only=True)
    with torch.no_grad():
        direct = int((model(data.x_test[:N]).argmax(1) == data.y_test[:N]).sum()) / N

    (folder / "own.toml").write_text(suite_text())
    suite = run_suite(
        folder / "own.toml", out=folder / "suite", cache_dir=folder / "c", progress=False
    )
    from_suite = accuracies(suite.tables["leaderboard"])

    api = robustbench_gan.benchmark(
        "tinynet:Net", weights="net.pt", dataset="digits", eps=EPS, n_examples=N,
        attacks=["fgsm", "pgd"], cache_dir=folder / "c2", out=folder / "api",
    )  # fmt: skip
    assert main([
        "eval", "--model", "tinynet:Net", "--weights", "net.pt", "--dataset", "digits",
        "--eps", str(EPS), "--n", str(N), "--attacks", "fgsm,pgd", "--out", "cli",
        "--cache-dir", "c3", "--no-progress",
    ]) == 0  # fmt: skip
    from_cli = accuracies(pd.read_csv(folder / "cli" / "leaderboard.csv"))

    assert from_suite == accuracies(api.attacks) == from_cli
    assert from_suite["fgsm"][0] == pytest.approx(direct, abs=1e-12) == api.clean_acc
    assert api.robust_acc == min(r for _, r in from_suite.values())
    card = json.loads((folder / "cli" / "model_card.json").read_text())
    assert card["clean_acc"] == api.clean_acc and card["threat_model"] == "Linf"
    assert card["n_examples"] == N and card["number_forward_passes"] == 1
    assert len(api.broken_by) == N and set(api.broken_by) <= {"", "clean", "fgsm", "pgd"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    loaded = torch.load(folder / "net.pt", weights_only=True)
    assert all(torch.equal(before[k], v) for k, v in loaded.items())  # never written


def test_an_in_memory_module_is_benchmarked_too(own_model):
    _, model = own_model
    first = robustbench_gan.benchmark(
        model, dataset="digits", eps=EPS, n_examples=40, attacks=["fgsm"]
    )
    again = robustbench_gan.benchmark(
        model, dataset="digits", eps=EPS, n_examples=40, attacks=["fgsm"]
    )
    assert first.clean_acc == again.clean_acc and first.robust_acc <= first.clean_acc


def test_a_module_comes_back_as_it_came_and_has_one_identity(own_model):
    """benchmark() hands an nn.Module back in the modes it came with (each submodule its
    own), and the module and its weights file get the same card identity."""
    folder, model = own_model
    model.train()
    model.body[1].eval()  # mixed modes: each must come back as it was
    modes = {name: m.training for name, m in model.named_modules()}
    common = {"dataset": "digits", "eps": EPS, "n_examples": 20, "attacks": ["fgsm"]}
    from_object = robustbench_gan.benchmark(model, **common)
    assert {name: m.training for name, m in model.named_modules()} == modes
    from_file = robustbench_gan.benchmark("tinynet:Net", weights="net.pt", **common)
    card, file_card = from_object.model_card, from_file.model_card
    assert card["architecture"] == file_card["architecture"] == "tinynet:Net"
    assert card["weights_sha256"] == file_card["weights_sha256"]
    assert len(card["weights_sha256"]) == 64 and from_object.clean_acc == from_file.clean_acc
    torch.save({k: v + 1 for k, v in model.state_dict().items()}, folder / "other.pt")
    other = robustbench_gan.benchmark("tinynet:Net", weights="other.pt", **common)
    assert other.model_card["weights_sha256"] != card["weights_sha256"]


def test_an_in_memory_module_gets_its_normalization(own_model):
    """mean and std put a normalization layer in front of an nn.Module as of a file's."""
    _, model = own_model
    common = {"dataset": "digits", "eps": EPS, "n_examples": 40, "attacks": ["fgsm"]}
    norm = {"mean": [0.5], "std": [0.25]}
    from_object = robustbench_gan.benchmark(model, **common, **norm)
    from_file = robustbench_gan.benchmark("tinynet:Net", weights="net.pt", **common, **norm)
    plain = robustbench_gan.benchmark(model, **common)
    assert from_object.clean_acc == from_file.clean_acc
    assert accuracies(from_object.attacks) == accuracies(from_file.attacks)
    assert accuracies(from_object.attacks) != accuracies(plain.attacks)


def test_new_weights_or_new_code_are_never_served_from_the_cache(own_model):
    folder, model = own_model
    (folder / "own.toml").write_text(suite_text('"fgsm"'))

    def run():
        out = run_suite(
            folder / "own.toml", out=folder / "o", cache_dir=folder / "c", progress=False
        )
        return out.counts, out.tables["leaderboard"]["clean_acc"].iloc[0]

    counts, clean = run()
    assert run()[0]["run"] == 0  # unchanged: all cached
    state = model.state_dict()
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, folder / "net.pt")
    counts, zeroed = run()
    assert counts["run"] > 0 and zeroed != clean  # the new weights are evaluated
    torch.save(state, folder / "net.pt")
    source = (folder / "tinynet.py").read_text()
    (folder / "tinynet.py").write_text(source + "\n# an edit\n")
    counts, _ = run()
    assert counts["run"] > 0  # edited plugin source: recomputed


def test_standard_is_at_least_as_strong_as_pgd40(own_model):
    """On every model (one loaded, two trained here), 'standard' leaves at most half a point
    more than PGD-40 with a random start at the same budget."""
    folder, _ = own_model
    text = """
name = "strength"
[dataset]
name = "digits"
[train]
epochs = 6
[eval]
eps = [0.05, 0.1]
n = 60
[[targets]]
name = "tinynet:Net"
label = "net"
weights = "net.pt"
[[targets]]
name = "lenet"
[[targets]]
name = "small_cnn"
[[attacks]]
name = "autoattack"
label = "standard"
[[attacks]]
name = "pgd"
label = "pgd40"
steps = 40
random_start = true
"""
    (folder / "s.toml").write_text(text)
    board = run_suite(folder / "s.toml", out=folder / "o", cache_dir=folder / "c", progress=False)
    rows = board.tables["leaderboard"]
    for (target, eps), group in rows.groupby(["target", "eps"]):
        at = group.set_index("attack")["robust_acc"]
        assert at["standard"] <= at["pgd40"] + 0.005, (target, eps, at.to_dict())


def test_a_judge_without_features_is_named_in_one_line(own_model):
    from robustbench_gan.errors import UserError

    folder, _ = own_model
    text = suite_text('"fgsm"') + (
        '[[generators]]\nname = "cdcgan"\nngf = 8\nndf = 8\ntrain = { steps = 2 }\n'
        '[gan_metrics]\njudge = "net"\nn = 20\n'
    )
    (folder / "judge.toml").write_text(text)
    with pytest.raises(UserError, match=r"gan_metrics.judge: the judge 'net' has no features\(\)"):
        run_suite(folder / "judge.toml", out=folder / "o", cache_dir=folder / "c", progress=False)


def test_rbg_verify_checks_external_examples(own_model, capsys):
    folder, model = own_model
    data = DATASETS.create("digits", seed=0, test_only=True)
    x, y = data.x_test[:20], data.y_test[:20]
    x_req = x.clone().requires_grad_(True)
    F.cross_entropy(model(x_req), y).backward()
    adv = (x + 0.1 * x_req.grad.sign()).clamp(0, 1).detach()
    torch.save(adv, folder / "adv.pt")
    args = ["verify", "--model", "tinynet:Net", "--weights", "net.pt", "--adv", "adv.pt",
            "--dataset", "digits", "--eps", "0.1"]  # fmt: skip
    assert main(args) == 0
    valid = capsys.readouterr().out
    with torch.no_grad():
        expected = int((model(adv).argmax(1) == y).sum()) / 20
    assert f"{expected:.4f}" in valid
    bad = adv.clone()
    bad[3] = (x[3] + 0.3).clamp(0, 1)  # outside the ball
    bad[5, 0, 0, 0] = 1.5  # outside [0, 1]
    torch.save(bad, folder / "adv.pt")
    assert main(args) == 1
    assert torch.equal(torch.load(folder / "adv.pt", weights_only=True), bad)  # never clipped


def test_a_torchvision_architecture_trains_and_loads(tmp_path, fake_cifar10):
    """torchvision:NAME gets only its entry's arguments (no in_shape): trained by a suite, and
    loaded from the weights that training wrote."""
    fake_cifar10(tmp_path / "data", per_batch=10)
    text = """
name = "tv"
[dataset]
name = "cifar10"
[train]
epochs = 1
batch_size = 16
[eval]
eps = [0, 0.01]
n = 8
[[targets]]
name = "torchvision:squeezenet1_1"
label = "squeeze"
num_classes = 10
[[attacks]]
name = "fgsm"
"""
    (tmp_path / "tv.toml").write_text(text)
    run = run_suite(
        tmp_path / "tv.toml", out=tmp_path / "o", cache_dir=tmp_path / "c",
        data_dir=tmp_path / "data", progress=False,
    )  # fmt: skip
    trained = run.tables["leaderboard"]
    from robustbench_gan.runner.store import Store

    store = Store(tmp_path / "c")
    record = next(r for r in map(store.get, [trained["cell_id"].iloc[0]]) if r)
    train_cell = record.spec["model"]["trained"]
    state = store.load_tensors(store.get(train_cell).artifacts["state"])
    store.close()
    torch.save(state, tmp_path / "squeeze.pt")
    loaded_text = text.replace('label = "squeeze"', 'label = "squeeze"\nweights = "squeeze.pt"')
    (tmp_path / "tv2.toml").write_text(loaded_text)
    again = run_suite(
        tmp_path / "tv2.toml", out=tmp_path / "o2", cache_dir=tmp_path / "c",
        data_dir=tmp_path / "data", progress=False,
    )  # fmt: skip
    columns = ["attack", "eps", "clean_acc", "robust_acc"]
    pd.testing.assert_frame_equal(trained[columns], again.tables["leaderboard"][columns])


def test_standard_says_which_part_broke_each_image(own_model):
    _, model = own_model
    result = robustbench_gan.benchmark(model, dataset="digits", eps=0.1, n_examples=30)
    parts = {"apgd-ce", "apgd-t", "fab-t", "square"}  # AutoAttack's standard version
    assert set(result.broken_by) <= {"", "clean"} | parts
    broken = sum(b in parts for b in result.broken_by)
    assert broken == round((result.clean_acc - result.robust_acc) * 30)
    assert result.model_card["attacks"] == ["standard"]


def test_standard_is_autoattack_standard(own_model):
    """`standard` runs AutoAttack's standard version: its four parts, in its order, each
    credited with the images it broke."""
    _, model = own_model
    result = robustbench_gan.benchmark(
        model, dataset="digits", eps=0.05, n_examples=20, out="std", progress=False
    )
    order = pd.read_csv("std/attack_contributions.csv")["attack"].drop_duplicates().tolist()
    assert order == [f"standard: {p}" for p in ("apgd-ce", "apgd-t", "fab-t", "square")]
    assert json.loads(open("std/model_card.json").read())["attacks"] == ["standard"]
    assert len(result.broken_by) == 20


def test_eval_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = ["eval", "--dataset", "digits", "--n", "10", "--cache-dir", "c", "--no-progress"]
    assert main([*common, "--model", "torchvision:resnet18", "--param", "num_classes=10",
                 "--eps", "8/255"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "fails on the data's images (shape (1, 8, 8)" in err and "\n" not in err
    assert main([*common, "--model", "torchvision:resnet18", "--eps", "8"]) == 2
    assert "eps 8 is above 1" in capsys.readouterr().err
