"""The cascade composite: AutoAttack's protocol over registered attacks; and its old name
``worst_case``, now only the leaderboard's label, refused in one line."""

from __future__ import annotations

import pytest
import torch

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

EPS = [0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "lenet", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    train_classifier(
        model,
        digits.x_train,
        digits.y_train,
        config=TrainConfig(epochs=8, lr=3e-3),
        seed=0,
        progress=False,
    )
    return model.eval(), digits.x_test[:200], digits.y_test[:200]


def accuracy(attack, setup):
    model, x, y = setup
    return attack(model, x, y, EPS).accuracy(y)


def test_default_parts_are_apgd_ce_apgd_t_and_square():
    """A cheaper list than AutoAttack's standard version (no FAB-T, Square with its
    standalone defaults); ``autoattack`` is that version."""
    attack = ATTACKS.create("cascade")
    assert [type(a).__name__ for a in attack.attacks] == ["APGDCE", "APGDDLR", "SquareAttack"]
    assert [a.targeted for a in attack.attacks] == [False, True, False]
    assert attack.attacks[2].n_queries == 5000 and attack.attacks[2].rescale_schedule
    assert attack.attacks[2].window_per == "sample"
    l2 = ATTACKS.create("cascade", norm="l2")
    assert [a.norm for a in l2.attacks] == ["l2", "l2"]  # square is Linf only


def test_deterministic_parts_give_at_most_the_minimum_exactly(setup):
    parts = ["fgsm", {"name": "bim", "steps": 5}, {"name": "mifgsm", "steps": 5}]
    composite = accuracy(ATTACKS.create("cascade", attacks=parts), setup)
    alone = torch.stack([accuracy(ATTACKS.create(p) if isinstance(p, str) else
                                  ATTACKS.create(p["name"], steps=5), setup) for p in parts])  # fmt: skip
    assert (composite <= alone.min(0).values + 1e-12).all(), (composite, alone)


def test_random_parts_give_at_most_the_minimum_within_a_point(setup):
    parts = [
        {"name": "pgd", "steps": 10},
        {"name": "apgd_ce", "steps": 10},
        {"name": "square", "n_queries": 200},
    ]
    composite = accuracy(ATTACKS.create("cascade", attacks=parts), setup)
    alone = torch.stack(
        [
            accuracy(
                ATTACKS.create(p["name"], **{k: v for k, v in p.items() if k != "name"}), setup
            )
            for p in parts
        ]
    )
    # parts inside the composite see only the images still robust, so their random draws
    # differ from a standalone run; on average the composite can only be stronger
    assert (composite <= alone.min(0).values + 0.01).all(), (composite, alone)


def test_targeted_parts_cycle_through_the_likeliest_wrong_classes(setup, monkeypatch):
    seen = []
    apgd = ATTACKS.get("apgd_dlr")
    original = apgd.perturb

    def spy(self, model, x, y, eps, target_class):
        seen.append(target_class.clone())
        assert (target_class != y).all()
        return original(self, model, x, y, eps, target_class)

    monkeypatch.setattr(apgd, "perturb", spy)
    model, x, y = setup
    attack = ATTACKS.create(
        "cascade",
        attacks=[{"name": "apgd_dlr", "targeted": True, "steps": 3}],
        n_target_classes=3,
    )
    attack(model, x[:20], y[:20], [0.01])
    assert 1 <= len(seen) <= 3  # one run per target rank while images stay robust


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attacks": []}, "at least one"),
        ({"attacks": ["cascade"]}, "not cascade"),
        ({"attacks": [{"name": "pgd", "norm": "l2"}]}, "composite in linf"),
        ({"n_target_classes": 0}, "n_target_classes"),
    ],
)
def test_bad_configurations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ATTACKS.create("cascade", **kwargs)


def test_the_composite_says_which_part_fooled_each_image(setup):
    """fooled_by marks exactly the clean-correct images whose example is misclassified, each
    by the first part (in order) that fooled it; the plain attacks report no parts."""
    model, x, y = setup
    attack = ATTACKS.create("cascade", attacks=["fgsm", {"name": "pgd", "steps": 5}], seed=0)
    assert attack.parts == ("fgsm", "pgd")
    result = attack(model, x, y, [0.0, 0.1, 0.3])
    assert len(attack.fooled_by) == 3
    for i, fooled_by in enumerate(attack.fooled_by):
        broken = (result.clean_pred == y) & (result.pred[i] != y)
        assert torch.equal(fooled_by >= 0, broken), i
    assert (attack.fooled_by[0] == -1).all()  # eps 0 fools nothing
    fgsm_alone = ATTACKS.create("fgsm", seed=0)(model, x, y, [0.1])
    by_fgsm = (fgsm_alone.clean_pred == y) & (fgsm_alone.pred[0] != y)
    assert torch.equal(attack.fooled_by[1] == 0, by_fgsm)  # FGSM runs first, on every image
    assert ATTACKS.create("pgd").parts == () and ATTACKS.create("pgd").fooled_by is None


# -- the old name: "worst_case" is the leaderboard's label, not an attack -------------------

HINT = "the composite attack is now called 'cascade'"
LABEL = "'worst_case' is the leaderboard's label of the per-image worst case"

SUITE = """name = "renamed"
[dataset]
name = "digits"
[eval]
eps = [0, 0.1]
[[targets]]
name = "mlp"
[[attacks]]
name = "worst_case"
"""


def test_the_old_name_is_refused_in_one_line_naming_the_new():
    """``worst_case`` is no alias (one name, one meaning): asking for it, from Python or
    nested in a cascade, says in one line what the attack is called now and what the word
    means; the registry lists neither it nor any close match."""
    from robustbench_gan.errors import UserError

    for ask in (
        lambda: ATTACKS.create("worst_case"),
        lambda: ATTACKS.get("worst_case"),
        lambda: ATTACKS.create("cascade", attacks=["fgsm", "worst_case"]),
    ):
        with pytest.raises(UserError) as err:
            ask()
        message = str(err.value)
        assert "\n" not in message and HINT in message and LABEL in message, message
    assert "worst_case" not in ATTACKS and "worst_case" not in ATTACKS.list(aliases=True)
    assert ATTACKS.get("autoattack_like") is ATTACKS.get("cascade")
    assert ATTACKS.aliases("cascade") == ["autoattack_like"]


@pytest.mark.parametrize("label", [None, "aa_like"])
def test_a_suite_naming_the_old_name_gets_the_hint(tmp_path, capsys, label):
    """With or without a label of its own (without one the label would be the reserved
    ``worst_case``), the suite's error is the rename, at the entry's name."""
    from robustbench_gan.cli import main

    suite = tmp_path / "renamed.toml"
    suite.write_text(SUITE + (f'label = "{label}"\n' if label else ""))
    assert main(["validate", str(suite)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rbg: error: "), lines
    assert "attacks[0].name" in lines[0] and HINT in lines[0] and LABEL in lines[0], lines[0]
    suite.write_text(SUITE.replace('"worst_case"', '"cascade"') + 'label = "aa_like"\n')
    assert main(["validate", str(suite)]) == 0


def test_the_benchmark_api_gets_the_hint():
    from robustbench_gan.api_suite import attack_requests
    from robustbench_gan.errors import UserError

    with pytest.raises(UserError, match=HINT):
        attack_requests(["pgd", "worst_case"], "linf")
