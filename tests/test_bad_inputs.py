"""The bad-input corpus: each case ends in one line naming the file and field, exit 2, no
traceback and no output files, and `rbg validate` refuses exactly what `rbg run` refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robustbench_gan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = (ROOT / "suites" / "smoke.toml").read_text()


def sub(old: str, new: str) -> str:
    assert old in SMOKE, old
    return SMOKE.replace(old, new, 1)


# case -> (suite text, what the one line must say); every one is refused when read
CORPUS = {
    "float_batch_size": (sub("batch_size = 64", "batch_size = 2.5"), "batch_size"),
    "float_epochs": (sub("epochs = 6", "epochs = 1.5"), "epochs"),
    "gan_metrics_n_zero": (sub("n = 60", "n = 0"), "gan_metrics.n"),
    "gan_metrics_n_negative": (sub("n = 60", "n = -3"), "gan_metrics.n"),
    "eps_1e308": (sub("eps = [0, 0.1, 0.3]", "eps = [0, 1e308]"), "eval.eps"),
    "eps_nan": (sub("eps = [0, 0.1, 0.3]", "eps = [0, nan]"), "eval.eps"),
    "lr_inf": (sub("lr = 0.005", "lr = inf"), "lr"),
    "test_fraction_above_1": (
        sub("test_fraction = 0.2", "test_fraction = 1.5"),
        "dataset.test_fraction",
    ),
    "test_fraction_zero": (
        sub("test_fraction = 0.2", "test_fraction = 0"),
        "dataset.test_fraction",
    ),
    "max_train_zero": (sub("max_train = 400", "max_train = 0"), "dataset.max_train"),
    "max_train_negative": (sub("max_train = 400", "max_train = -4"), "dataset.max_train"),
    "max_test_float": (sub("max_test = 60", "max_test = 6.5"), "dataset.max_test"),
    "max_test_string": (sub("max_test = 60", 'max_test = "60"'), "dataset.max_test"),
    "eval_batch_size_zero": (
        sub("eps = [0, 0.1, 0.3]", "eps = [0, 0.1, 0.3]\nbatch_size = 0"),
        "eval.batch_size",
    ),
    "eval_batch_size_negative": (
        sub("eps = [0, 0.1, 0.3]", "eps = [0, 0.1, 0.3]\nbatch_size = -2"),
        "eval.batch_size",
    ),
    "seed_negative": (sub("seed = 0", "seed = -1"), "seed:"),
    "seed_float": (sub("seed = 0", "seed = 0.5"), "seed:"),
    "name_absolute": (sub('name = "smoke"', 'name = "/tmp/rbg-pwned"'), "name:"),
    "name_dotdot": (sub('name = "smoke"', 'name = "../../rbg-pwned"'), "name:"),
    "name_dot": (sub('name = "smoke"', 'name = "."'), "name:"),
    "steps_float": (sub("steps = 5", "steps = 2.5"), "attacks[1]"),
    "pgd_steps_zero": (sub("steps = 5", "steps = 0"), "attacks[1]"),
    "unknown_key": (sub("[eval]", "[eval]\nepss = [0.1]"), "eval"),
    "not_a_plugin_attack": (
        SMOKE + '\n[[attacks]]\nname = "subprocess:run"\nargs = ["touch", "TOUCHED"]\n',
        "'subprocess:run' was not called",
    ),
    "not_a_plugin_classifier": (
        SMOKE + '\n[[targets]]\nname = "os:system"\ncommand = "touch TOUCHED"\n',
        "'os:system' was not called",
    ),
}


def one_line_refusal(capsys, args: list[str], where: Path, message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rbg: error: {where}"), lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_validate_and_run_refuse_alike(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, message = CORPUS[case]
    suite = tmp_path / f"{case}.toml"
    suite.write_text(text)
    one_line_refusal(capsys, ["validate", str(suite)], suite, message)
    out = tmp_path / "out"
    run = ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    one_line_refusal(capsys, [*run, "--no-progress"], suite, message)
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p != suite)
    assert written == []  # no CSV, no store, no plot, no file touched by a plugin


def test_the_corpus_in_a_real_process_has_no_traceback(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(CORPUS["not_a_plugin_attack"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_gan", "validate", str(suite)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "TOUCHED").exists()


def test_strange_but_valid_values_run(tmp_path, capsys):
    """eps 1.5 in L2 and a very long description are not errors."""
    text = sub('description = "', 'description = "' + "x" * 200_000).replace(
        'name = "pgd"\nsteps = 5', 'name = "pgd"\nsteps = 5\nnorm = "l2"\neps = [1.5]'
    )
    suite = tmp_path / "s.toml"
    suite.write_text(text)
    assert main(["validate", str(suite)]) == 0


def test_a_marked_factory_function_is_a_plugin(tmp_path, monkeypatch):
    (tmp_path / "rbg_marked_models.py").write_text(
        "import robustbench_gan\nfrom torch import nn\n\n"
        "@robustbench_gan.plugin\ndef make(in_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n\n"
        "def unmarked(in_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n"
    )
    suite = tmp_path / "s.toml"
    base = '[eval]\neps = [0]\n[[attacks]]\nname = "fgsm"\n[[targets]]\nname = "rbg_marked_models:{}"\n'
    suite.write_text(base.format("make"))
    assert main(["validate", str(suite)]) == 0
    suite.write_text(base.format("unmarked"))
    assert main(["validate", str(suite)]) == 2


def write_float_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of big-endian float32 (type code 0x0D)."""
    header = bytes([0, 0, 0x0D, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    path.write_bytes(header + array.astype(">f4").tobytes())


@pytest.mark.parametrize(
    ("pixel", "message"), [(float("nan"), "must be finite"), (300.0, "must lie in [0, 255]")]
)
def test_images_that_are_not_pixels_are_refused_naming_the_file(tmp_path, capsys, pixel, message):
    data = tmp_path / "data"
    data.mkdir()
    images = np.random.default_rng(0).uniform(0, 255, size=(40, 28, 28))
    images[3, 5, 5] = pixel
    write_float_idx(data / "t10k-images-idx3-ubyte", images)
    labels = np.arange(40, dtype=np.uint8) % 10
    header = bytes([0, 0, 0x08, 1]) + np.asarray([40], dtype=">u4").tobytes()
    (data / "t10k-labels-idx1-ubyte").write_bytes(header + labels.tobytes())
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[dataset]\nname = "mnist"\ntest_fraction = 0.5\n[eval]\neps = [0]\n'
        '[[targets]]\nname = "mlp"\n[[attacks]]\nname = "fgsm"\n'
    )
    for command in (["validate", str(suite)], ["run", str(suite), "--out", str(tmp_path / "o")]):
        assert main([*command, "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "t10k-images-idx3-ubyte" in err and message in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.csv"))


def test_publish_never_writes_outside_results(tmp_path):
    from robustbench_gan.publish.leaderboards import publish

    run = tmp_path / "run"
    run.mkdir()
    row = "suite,seed,dataset,target,defense,attack,norm,eps,clean_acc,robust_acc,flags"
    (run / "leaderboard.csv").write_text(
        f"{row}\nsmoke,0,../../x,mlp,none,fgsm,linf,0.1,0.9,0.5,\n"
    )
    from robustbench_gan.contract.schema import LEADERBOARD_COLUMNS

    missing = [c for c in LEADERBOARD_COLUMNS if c not in row.split(",")]
    if missing:  # fill the rest of the schema with blanks
        header, values = (run / "leaderboard.csv").read_text().splitlines()
        header += "," + ",".join(missing)
        values += "," * len(missing)
        (run / "leaderboard.csv").write_text(f"{header}\n{values}\n")
    results = tmp_path / "a" / "b" / "results"
    written = publish(run, results)
    assert written and all(p.resolve().is_relative_to(results.resolve()) for p in written)
    assert not list(tmp_path.glob("a/x*")) and not list(tmp_path.glob("x*"))
