"""One scheme for every warning a robustness number can carry: its names, meanings and remedies.

Six of them are the indicators of attack failure of Pintor et al., "Indicators of Attack
Failure: Debugging and Improving Optimization of Adversarial Examples", NeurIPS 2022,
https://arxiv.org/abs/2106.09947 (their names, definitions and thresholds; where this project
measures one differently, :data:`INDICATORS` says how). The others are the sanity checks of
AutoAttack (Croce & Hein 2020) and Carlini et al. 2019 ("On evaluating adversarial
robustness") that the audit raised before, now in the same column.

Every indicator names the remedy the ``adaptive`` attack runs when it fires (``remedy``;
empty where no attack can help: the row itself is wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contract.schema import RENAMED_INDICATORS

PINTOR = "Pintor et al. 2022"
SANITY = "sanity check"


@dataclass(frozen=True)
class Indicator:
    name: str
    meaning: str
    source: str  # PINTOR or SANITY
    level: str  # "image" (also per image in samples.csv), "row" or "model"
    remedy: str = ""  # the adaptive attack's remedy for it (attacks/adaptive.py)


_ALL = (
    Indicator(
        "unavailable_gradients",
        "the input gradient of the cross-entropy or margin loss is zero or not finite on more "
        "than 1% of correctly classified images, or cannot be computed (gradient masking: "
        "gradient attacks see nothing; BPDA, transfer or a scale-invariant loss)",
        PINTOR, "image", "bpda",
    ),
    Indicator(
        "unstable_predictions",
        "the margin loss moves by more than 10% on average under small random perturbations "
        "(uniform in a box of side 8/255) on more than 1% of the images the attack left "
        "robust (the 95% interval of the share above 1%; where no image is left robust, no "
        "attack failed), or two forward passes on the same input differ (a randomized or "
        "rugged model: average gradients over draws, EOT)",
        PINTOR, "image", "eot",
    ),
    Indicator(
        "silent_success",
        "the attack passed through an adversarial point but returned a point that is not "
        "adversarial, on at least one image (the attack keeps the wrong iterate)",
        PINTOR, "row", "restarts",
    ),
    Indicator(
        "incomplete_optimization",
        "a 100-step gradient probe's best loss still fell by more than 5% of its range over "
        "the last 10 steps on more than 1% of the images it left robust (the 95% interval of "
        "the share above 1%; more steps and restarts should find more)",
        PINTOR, "image", "restarts",
    ),
    Indicator(
        "transfer_failure",
        "examples crafted on the model's differentiable stand-in fool it on images this "
        "attack left robust (more than 1% of the evaluated images): the white-box attack "
        "failed where a transfer attack did not",
        PINTOR, "image", "surrogate",
    ),
    Indicator(
        "unconstrained_attack_failure",
        "PGD with an unbounded budget (eps = 1, the whole image space) leaves more than 5% "
        "accuracy: the attack cannot follow the model's gradients",
        PINTOR, "image", "bpda",
    ),
    Indicator(
        "acc_rises_with_eps", "robust accuracy is higher than at a smaller eps (a broken attack)",
        SANITY, "row",
    ),
    Indicator(
        "eps0_not_clean", "at eps 0 robust accuracy differs from clean accuracy", SANITY, "row"
    ),
    Indicator(
        "black_box_beats_white_box",
        "a black-box attack beats the best white-box attack by more than 1 point at this eps "
        "(gradient masking?)",
        SANITY, "row", "surrogate",
    ),
    Indicator(
        "outputs_probabilities",
        "the model outputs probabilities, not logits (softmax saturates gradients; attack the "
        "logits)",
        SANITY, "model", "margin",
    ),
    Indicator(
        "non_finite_outputs",
        "the model gives NaN or inf logits on some evaluation images: its predictions there "
        "are arbitrary, and so are its clean and robust accuracy",
        SANITY, "model",
    ),
    Indicator(
        "near_chance",
        "clean accuracy is within 1.5x of chance (1 / number of classes): check the input "
        "scale ([0, 1]), the normalization and the class order before reading robustness",
        SANITY, "row",
    ),
    Indicator(
        "invalid_output",
        "the attack returned non-finite images for some inputs; they were counted as not "
        "fooled (a bug in the attack: its robust accuracy is an upper bound)",
        SANITY, "row",
    ),
    Indicator(
        "projected_output",
        "the attack returned images outside the eps-ball or [0, 1]; they were projected back "
        "(an attack that ignores its budget may be weaker than it should be)",
        SANITY, "row",
    ),
    Indicator(
        "naive_evaluation",
        "the attacks saw only the classifier, not the purifier in front of it (Defense-GAN, "
        "gradient = naive): a number for comparison, not a robustness claim; the BPDA + EOT "
        "row of the same model is the one to trust",
        SANITY, "model", "bpda",
    ),
)  # fmt: skip

#: name -> indicator, in the order the report's legend lists them
INDICATORS: dict[str, Indicator] = {indicator.name: indicator for indicator in _ALL}

#: the names the audit wrote before the indicators of attack failure, and the indicator that
#: replaced each; the new one fires wherever the old one did (its check is a superset), so an
#: older results folder is read with the new names (contract/schema.py upgrade_board)
RENAMED = RENAMED_INDICATORS


def meaning(name: str) -> str:
    """What an indicator means (an older name is read as its successor)."""
    return INDICATORS[RENAMED.get(name, name)].meaning


def split(value: object) -> list[str]:
    """The names in a ``;``-joined cell (empty, NaN or None: none)."""
    if not isinstance(value, str):
        return []
    return [name for name in value.split(";") if name]
