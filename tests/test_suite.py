"""Suite files: valid ones load, bad ones fail with one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_gan.errors import UserError
from robustbench_gan.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
name = "mini"
[dataset]
name = "digits"
[eval]
eps = [0, 0.1]
[[targets]]
name = "mlp"
[[attacks]]
name = "fgsm"
"""


def write(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["quickstart", "smoke"])
def test_shipped_suites_validate(name):
    suite = load_suite(ROOT / "suites" / f"{name}.toml")
    assert suite.name == name
    assert {t.name for t in suite.targets} >= {"mlp", "small_cnn"}
    assert {d.name for d in suite.defenses} == {"fgsm_at", "ensemble", "gan_augment"}
    assert {a.name for a in suite.attacks} == {"fgsm", "pgd"}


def test_quickstart_is_the_issue_shape():
    suite = load_suite(ROOT / "suites" / "quickstart.toml")
    assert suite.dataset.name == "digits"
    assert [t.name for t in suite.targets] == ["mlp", "small_cnn", "lenet"]
    assert suite.eps == (0.0, 0.05, 0.1, 0.2, 0.3)


def test_minimal_suite_defaults(tmp_path):
    suite = load_suite(write(tmp_path, MINIMAL))
    assert suite.seed == 0
    assert suite.model_labels == ["mlp"]
    assert suite.judge is None


def test_budgets_may_be_fractions(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL.replace("eps = [0, 0.1]", 'eps = ["8/255", 0, "0.1"]'))
    assert load_suite(path).eps == (0.0, 8 / 255, 0.1)


def test_budgets_are_sorted(tmp_path):
    suite = load_suite(write(tmp_path, MINIMAL.replace("[0, 0.1]", "[0.3, 0, 0.1]")))
    assert suite.eps == (0.0, 0.1, 0.3)


BAD = [
    ('name = "mini"', 'name = "mini"\nseed = -1', "seed: must be a whole number >= 0"),
    (
        'name = "mini"',
        'name = "mini"\n[train]\nepochs = 2.5',
        "train: epochs must be a whole number",
    ),
    (
        'name = "mini"',
        'name = "mini"\n[train]\nbatch_size = 1.5',
        "train: batch_size must be a whole",
    ),
    ('name = "mini"', 'name = "mini"\n[train]\nlr = inf', "train: lr must be a finite number"),
    ("eps = [0, 0.1]", "eps = [0, 0.1]\nbatch_size = 0", "eval.batch_size: must be >= 1"),
    ('name = "mini"', 'name = "mini"\n[gan_metrics]\nn = 0', "gan_metrics.n: must be >= 2"),
    ("eps = [0, 0.1]", "eps = [0, -0.1]", "eval.eps[1]: must be >= 0"),
    ("eps = [0, 0.1]", 'eps = [0, "x"]', "eval.eps[1]: must be a number or a fraction"),
    ("eps = [0, 0.1]", 'eps = [0, "8/0"]', "eval.eps[1]: must be a number or a fraction"),
    (
        "eps = [0, 0.1]",
        "eps = [0, 8]",
        "eval.eps: Linf budgets are on the [0, 1] pixel scale and 8 is above 1",
    ),
    (
        'name = "fgsm"',
        'name = "fgsmm"',
        "attacks[0].name: unknown attack 'fgsmm'; did you mean 'fgsm'",
    ),
    ('name = "mlp"', 'name = "mpl"', "targets[0].name: unknown classifier 'mpl'"),
    (
        'name = "digits"',
        'name = "digitz"',
        "dataset.name: unknown dataset 'digitz'; did you mean 'digits'",
    ),
    (
        'name = "fgsm"',
        'name = "pgd"\nsteps = 0',
        "attacks[0].steps: must be a whole number >= 1, got 0",
    ),
    (
        'name = "fgsm"',
        'name = "deepfool"\ntargeted = true',
        "attacks[0]: invalid parameters for deepfool",
    ),
    ('name = "fgsm"', 'name = "pgd"\nstepz = 3', "attacks[0].stepz: pgd has no parameter 'stepz'"),
    (
        'name = "mlp"',
        'name = "mlp"\nin_shape = [1, 2, 3]',
        "targets[0].in_shape: is set by the runner",
    ),
    ("[eval]", "[evaluation]", "evaluation: unknown key"),
    (
        'name = "mlp"',
        'name = "mlp"\ntrain = { epochz = 3 }',
        "targets[0].train.epochz: unknown key",
    ),
]


@pytest.mark.parametrize("old, new, message", BAD)
def test_bad_fields_name_file_and_field(tmp_path, old, new, message):
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(UserError) as err:
        load_suite(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert message in text, text
    assert "\n" not in text


def test_malformed_toml_names_line(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[[attacks]\nname = 'pgd'\n")
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: invalid TOML")
    assert "line" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="suite file not found"):
        load_suite(tmp_path / "nope.toml")


DEFENSES = (
    MINIMAL
    + """
[[targets]]
name = "small_cnn"
[[generators]]
name = "cdcgan"
"""
)


@pytest.mark.parametrize(
    "block, message",
    [
        (
            '[[defenses]]\nname = "fgsm_at"\nbase = "resnet"',
            "defenses[0].base: 'resnet' is not a target label",
        ),
        ('[[defenses]]\nname = "fgsm_at"', "defenses[0].base: is required"),
        (
            '[[defenses]]\nname = "fgsm_at"\nbase = "mlp"\neps = 2.0',
            "defenses[0]: invalid parameters for fgsm_at",
        ),
        (
            '[[defenses]]\nname = "ensemble"\nmembers = ["mlp"]',
            "defenses[0].members: needs at least 2",
        ),
        (
            '[[defenses]]\nname = "ensemble"\nmembers = ["mlp", "x"]',
            "defenses[0].members: 'x' is not a model",
        ),
        (
            '[[defenses]]\nname = "gan_augment"\nbase = "mlp"\ngenerator = "gan"',
            "defenses[0].generator: 'gan' is not",
        ),
        ('[[defenses]]\nname = "gan_augment"\nbase = "mlp"', "defenses[0].generator: is required"),
    ],
)
def test_defense_links_are_checked(tmp_path, block, message):
    with pytest.raises(UserError) as err:
        load_suite(write(tmp_path, DEFENSES + block))
    assert message in str(err.value), str(err.value)


def test_defended_models_get_labels(tmp_path):
    text = (
        DEFENSES
        + """
[[defenses]]
name = "fgsm_at"
base = "small_cnn"
[[defenses]]
name = "ensemble"
members = ["mlp", "small_cnn+fgsm_at"]
"""
    )
    suite = load_suite(write(tmp_path, text))
    assert suite.model_labels == ["mlp", "small_cnn", "small_cnn+fgsm_at", "ensemble"]
    assert suite.judge == "mlp"  # defaults to the first target when there are generators


@pytest.mark.parametrize(
    "block, message",
    [
        (
            'metric = "accuracy"\nmodel = "mlp"\nattack = "fgsm"\neps = 0.1\nvalue = 0.5',
            "reference[0].metric: must be one of",
        ),
        (
            'metric = "error"\nmodel = "vgg"\nattack = "fgsm"\neps = 0.1\nvalue = 0.5',
            "reference[0].model: 'vgg' is not a model",
        ),
        (
            'metric = "error"\nmodel = "mlp"\nattack = "pgd"\neps = 0.1\nvalue = 0.5',
            "reference[0].attack: 'pgd' is not an attack",
        ),
        (
            'metric = "error"\nmodel = "mlp"\nattack = "fgsm"\neps = 0.25\nvalue = 0.5',
            "reference[0].eps: fgsm does not run at eps 0.25",
        ),
        (
            'metric = "transfer_error"\nmodel = "mlp"\nattack = "fgsm"\neps = 0.1\nvalue = 0.5',
            "reference[0].source: is required",
        ),
    ],
)
def test_references_are_checked(tmp_path, block, message):
    with pytest.raises(UserError) as err:
        load_suite(write(tmp_path, MINIMAL + '\n[[reference]]\npaper = "P"\n' + block))
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "block, message",
    [
        (
            'better = "mlp"\nworse = "lenet"\nsources = ["mlp"]\nattack = "fgsm"\neps = 0.1',
            "finding[0].sources: mlp cannot be its own source",
        ),
        (
            'better = "mlp"\nworse = "vgg"\nsources = ["lenet"]\nattack = "fgsm"\neps = 0.1',
            "finding[0].worse: 'vgg' is not a model",
        ),
        (
            'better = "mlp"\nworse = "lenet"\nsources = []\nattack = "fgsm"\neps = 0.1',
            "finding[0].sources: must be a non-empty list",
        ),
    ],
)
def test_findings_are_checked(tmp_path, block, message):
    text = MINIMAL + '\n[[targets]]\nname = "lenet"\n[[finding]]\nclaim = "C."\n' + block
    with pytest.raises(UserError) as err:
        load_suite(write(tmp_path, text))
    assert message in str(err.value), str(err.value)


def test_batch_sizes_per_device(tmp_path):
    text = MINIMAL.replace(
        "[eval]",
        "[train]\nbatch_size = { cpu = 32, cuda = 512 }\n[eval]\nbatch_size = { cpu = 100, cuda = 2000 }",
    )
    text = text.replace(
        'name = "mlp"', 'name = "mlp"\ntrain = { batch_size = { cpu = 16, cuda = 256 } }'
    )
    path = write(tmp_path, text)
    cpu, cuda = load_suite(path), load_suite(path, "cuda")
    assert (cpu.train.batch_size, cpu.eval_batch_size, cpu.targets[0].train.batch_size) == (
        32,
        100,
        16,
    )
    assert (cuda.train.batch_size, cuda.eval_batch_size, cuda.targets[0].train.batch_size) == (
        512,
        2000,
        256,
    )
    with pytest.raises(UserError, match="train.batch_size: has no entry for cuda"):
        load_suite(
            write(
                tmp_path, MINIMAL.replace("[eval]", "[train]\nbatch_size = { cpu = 32 }\n[eval]")
            ),
            "cuda",
        )
    with pytest.raises(UserError, match="train.batch_size.tpu: unknown key"):
        load_suite(
            write(tmp_path, MINIMAL.replace("[eval]", "[train]\nbatch_size = { tpu = 32 }\n[eval]"))
        )


GAN = '\n[[generators]]\nname = "cdcgan"\n'


@pytest.mark.parametrize(
    "block, message",
    [
        (GAN + 'label = "baseline"\n', "generators[0].label: label 'baseline' is reserved"),
        (GAN + 'train = { loss = "wasserstein" }\n', "generators[0].train: unknown GAN loss"),
        (GAN + "train = { accumulate = 0 }\n", "generators[0].train: accumulate must be >= 1"),
        (GAN + "train = { momentum = 0.9 }\n", "generators[0].train.momentum: unknown key"),
        (
            GAN + '[gan_metrics]\ninception_weights = "nowhere.pth"\n',
            "gan_metrics.inception_weights: no Inception weights file",
        ),
        (GAN + '[latent]\ngenerator = "gan"\nauxiliary = "mlp"\n', "latent.generator"),
        (GAN + '[latent]\ngenerator = "cdcgan"\nauxiliary = "vgg"\n', "latent.auxiliary"),
        (
            GAN + '[latent]\ngenerator = "cdcgan"\nauxiliary = "mlp"\nsteps = -1\n',
            "latent.steps: must be a whole number >= 1, got -1",
        ),
        (
            GAN + '[latent]\ngenerator = "cdcgan"\nauxiliary = "mlp"\nlambda_z = -1\n',
            "latent.lambda_z: must be a finite number >= 0, got -1",
        ),
        (GAN + '[latent]\ngenerator = "cdcgan"\nauxiliary = "mlp"\nzeta = 1\n', "latent"),
    ],
)
def test_generator_settings_are_checked(tmp_path, block, message):
    with pytest.raises(UserError) as err:
        load_suite(write(tmp_path, MINIMAL + block))
    assert message in str(err.value), str(err.value)


def test_inception_weights_are_found_beside_the_suite(tmp_path):
    (tmp_path / "inception.pth").write_bytes(b"not read at validation")
    text = MINIMAL + GAN + '[gan_metrics]\ninception_weights = "inception.pth"\n'
    suite = load_suite(write(tmp_path, text))
    assert suite.inception_weights == str((tmp_path / "inception.pth").resolve())
    assert suite.gan_baseline
