"""The VGG and ViT classifier families: shapes, normalization, gradients, training, saving."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustbench_gan.errors import UserError
from robustbench_gan.models import Classifier
from robustbench_gan.models.pretrained import ModelSource, load_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS
from robustbench_gan.suite import load_suite

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
#: tiny members of each family, to keep the tests fast
TINY = {
    "vgg": {"width": 4},
    "vit": {"dim": 16, "depth": 2, "heads": 2},
}
FAMILIES = sorted(TINY)


def tiny(name: str, shape: tuple[int, ...], seed: int = 0, **kwargs) -> Classifier:
    torch.manual_seed(seed)
    params = {**TINY[name], **kwargs}
    return CLASSIFIERS.create(name, in_shape=shape, num_classes=10, **params)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_logits_and_input_gradients(name, shape):
    model = tiny(name, shape).eval()
    x = torch.rand(3, *shape, requires_grad=True)
    logits = model(x)
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()
    assert model.features(x).shape == (3, model.feature_dim)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).any(dim=(1, 2, 3)).all()  # every image gets a gradient


@pytest.mark.parametrize("name", FAMILIES)
def test_input_gradients_are_exact(name):
    """Attacks differentiate the model: its autograd gradient agrees with finite differences."""
    params = {"dim": 8, "depth": 1} if name == "vit" else {"width": 2}
    model = tiny(name, (2, 4, 4), **params).double().eval()
    x = torch.rand(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: model(v).square().sum(), (x,))


@pytest.mark.parametrize("name", FAMILIES)
def test_normalization_is_the_first_layer(name):
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    model = tiny(name, (3, 32, 32), mean=mean, std=std).eval()
    x = torch.rand(4, 3, 32, 32)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    expected = model.head(model.body((x - m) / s))
    torch.testing.assert_close(model(x), expected)
    plain = tiny(name, (3, 32, 32)).eval()  # same seed, default mean and std: other logits
    assert not torch.allclose(plain(x), model(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_few_steps_lower_the_loss(name, digits):
    model = tiny(name, digits.shape, mean=digits.mean, std=digits.std).train()
    x, y = digits.x_train[:256], digits.y_train[:256]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15 if name == "vgg" else 40):  # a transformer starts slower
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", FAMILIES)
def test_state_dict_round_trip(name, tmp_path):
    model = tiny(name, (3, 32, 32)).train()
    model(torch.rand(8, 3, 32, 32))  # move batch norm's running statistics off their start
    model.eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    other = tiny(name, (3, 32, 32), seed=1).eval()
    other.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(model(x), other(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_the_seed_fixes_the_initial_weights(name):
    a, b, c = (tiny(name, (1, 8, 8), seed=s).state_dict() for s in (0, 0, 1))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_vgg_has_the_papers_layers():
    """VGG-11 (configuration A): convs of 64, 128, 256 x2, 512 x4, five pools on 32x32."""
    model = CLASSIFIERS.create("vgg", in_shape=(3, 32, 32), num_classes=10)
    convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 128, 256, 256, 512, 512, 512, 512]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 5
    assert model.feature_dim == 512
    for depth, count in ((13, 10), (16, 13), (19, 16)):
        model = tiny("vgg", (1, 8, 8), depth=depth)
        assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == count
    # on 8x8 digits three pools reach 1x1; the last two are no-ops
    model = tiny("vgg", (1, 8, 8))
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3


def test_vit_tokens_and_default_patch():
    model = CLASSIFIERS.create("vit", in_shape=(3, 32, 32), num_classes=10)
    assert model.patch == 4 and model.body.pos_embed.shape == (1, 65, 64)
    assert tiny("vit", (1, 28, 28)).patch == 4
    assert tiny("vit", (1, 8, 8)).patch == 2
    assert tiny("vit", (3, 17, 23)).patch == 1
    assert tiny("vit", (1, 28, 28), patch=7).body.pos_embed.shape == (1, 17, 16)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match=r"patch 5 does not divide .*32x32"):
        CLASSIFIERS.create("vit", in_shape=(3, 32, 32), patch=5)
    with pytest.raises(ValueError, match=r"patch 3 does not divide .*8x12"):
        CLASSIFIERS.create("vit", in_shape=(1, 8, 12), patch=3)
    with pytest.raises(ValueError, match="heads 3 does not divide dim 64"):
        CLASSIFIERS.create("vit", in_shape=(3, 32, 32), heads=3)
    with pytest.raises(ValueError, match="^patch must be "):
        CLASSIFIERS.create("vit", in_shape=(3, 32, 32), patch=0)
    with pytest.raises(ValueError, match="^depth must be one of 11, 13, 16 or 19"):
        CLASSIFIERS.create("vgg", in_shape=(3, 32, 32), depth=12)
    with pytest.raises(ValueError, match="^width must be "):
        CLASSIFIERS.create("vgg", in_shape=(3, 32, 32), width=0)


SUITE = """
name = "families"
[dataset]
name = "digits"
[eval]
eps = [0, 0.1]
[[targets]]
name = "vgg"
width = 16
{vgg}
[[targets]]
name = "vit"
{vit}
[[attacks]]
name = "fgsm"
"""


def test_a_suite_trains_them(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(vgg="depth = 13", vit="patch = 2"))
    suite = load_suite(path)
    assert [(t.name, dict(t.params)) for t in suite.targets] == [
        ("vgg", {"width": 16, "depth": 13}),
        ("vit", {"patch": 2}),
    ]


@pytest.mark.parametrize(
    ("vgg", "vit", "message"),
    [
        ("depth = 12", "", "targets[0].depth: must be one of 11, 13, 16 or 19, got 12"),
        ("depth = 11.0", "", "targets[0].depth: must be one of 11, 13, 16 or 19, got 11.0"),
        ("", "depth = 0", "targets[1].depth: must be a whole number >= 1, got 0"),
        ("", "mlp_ratio = 0", "targets[1].mlp_ratio: must be a finite number > 0, got 0"),
        ("", "patch = 2.5", "targets[1].patch: must be a whole number >= 1, got 2.5"),
    ],
)
def test_a_suite_names_the_field(tmp_path, vgg, vit, message):
    """``rbg validate`` refuses what the constructor would, before any data is read."""
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(vgg=vgg, vit=vit))
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_a_patch_that_does_not_fit_the_data_is_a_user_error():
    """The data's shape is known only when the model is built: one line, no traceback."""
    inputs = {"in_shape": (3, 32, 32), "num_classes": 10, "mean": None, "std": None}
    with pytest.raises(UserError, match=r"cannot build classifier 'vit': patch 5 does not"):
        load_classifier(ModelSource("vit", {"patch": 5}), runner_inputs=inputs)
    bad_depth = ModelSource("vgg", {"depth": 12})
    with pytest.raises(UserError, match="depth must be one of 11, 13, 16 or 19, got 12"):
        load_classifier(bad_depth, runner_inputs=inputs)


def test_vit_blocks_declare_their_residual_branches(digits):
    """SGM decays a ViT's attention and MLP branches: gamma 1 is the plain gradient."""
    from robustbench_gan.attacks.sgm import residual_branch_ends

    torch.manual_seed(0)
    model = CLASSIFIERS.create("vit", in_shape=(1, 8, 8), num_classes=10, depth=2).eval()
    assert len(residual_branch_ends(model)) == 4
    x, y = digits.x_test[:16], digits.y_test[:16]
    plain = ATTACKS.create("mifgsm", keep_first_success=False)(model, x, y, [0.1]).adv
    same = ATTACKS.create("sgm", gamma=1.0, decay=1.0)(model, x, y, [0.1]).adv
    assert torch.equal(plain, same)
    assert not torch.equal(
        ATTACKS.create("sgm", gamma=0.2, decay=1.0)(model, x, y, [0.1]).adv, plain
    )
