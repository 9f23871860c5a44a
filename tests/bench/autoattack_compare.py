"""AutoAttack side by side on 500 images (issue 29): ``autoattack`` standard and fast, the
reference code (``pyautoattack``) and torchattacks, with robust accuracy, passes per image
(per part for ours) and CPU seconds; and FAB-T alone, ours within the budget against the
reference's, on the images standard's APGD-CE and APGD-T left robust.

    python tests/bench/autoattack_compare.py --data-dir ../shared/data --model mnist \\
        --parts standard,fast,reference,torchattacks,fab --out mnist.json

``mnist``: a small CNN (width 16) PGD-trained at eps 0.3 (5 steps, 3 epochs) on the official
MNIST training split, attacked at 0.3 on the first 500 test images; ``cifar``: the committed
cifar_net (suites/models) on the first 500 cifar10-jpeg test images at 2/255. The trained
model is kept in --models. Standard's verdicts are kept there too, so a later call can
compare other parts with them. Results: tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn
from zoo import trained  # tests/bench/zoo.py: load the weights kept, else train and keep

import robustbench_gan.attacks.autoattack as autoattack_module
from robustbench_gan.attacks.cascade import Cascade
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.base import Normalize
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS, DATASETS, DEFENSES
from robustbench_gan.utils import PassCounter

SUITES = Path(__file__).resolve().parents[2] / "suites"
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def pgd_mnist(root: Path, folder: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    data = DATASETS.create("mnist", root=str(root / "mnist-full"), seed=0)
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=data.shape, num_classes=10, mean=data.mean, std=data.std, width=16
    )
    fit = functools.partial(
        train_classifier, x=data.x_train, y=data.y_train, seed=0,
        config=TrainConfig(epochs=3, batch_size=128, lr=0.001),
        objective=DEFENSES.create("pgd_at", eps=0.3, steps=5, eps_warmup=0.5),
    )  # fmt: skip
    model = trained(model, folder / "pgd_mnist.pt", fit)  # kept there the first time
    return model, data.x_test[:500], data.y_test[:500], 0.3


def cifar_net(root: Path, folder: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    spec = importlib.util.spec_from_file_location("cifar_net", SUITES / "models/cifar_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net()
    net.load_state_dict(torch.load(SUITES / "models/cifar_net.pt", weights_only=True))
    model = nn.Sequential(Normalize(CIFAR_MEAN, CIFAR_STD), net).eval()
    data = DATASETS.create("imagefolder", root=str(root), path="cifar10-jpeg", seed=0, max_train=10)
    return model, data.x_test[:500], data.y_test[:500], 2 / 255


# -- passes per part of ours: every part run and MALT's ranking counted on its own ----------
TALLY: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
RUN_PART, RANK = Cascade._run_part, autoattack_module.by_linearized_distance


def tallied(name: str, model: nn.Module, call):
    counter = PassCounter()
    with counter.watching(model):
        out = call()
    TALLY[name][0] += counter.forward
    TALLY[name][1] += counter.backward
    return out


def run_part(self, index, craft, judge, *state, **kwargs):
    return tallied(
        self.parts[index], judge, lambda: RUN_PART(self, index, craft, judge, *state, **kwargs)
    )


def rank(model, *args, **kwargs):
    return tallied("malt_ranking", model, lambda: RANK(model, *args, **kwargs))


def ours(model, x, y, eps, version: str) -> tuple[dict, torch.Tensor, torch.Tensor]:
    TALLY.clear()
    attack = ATTACKS.create("autoattack", version=version)
    start = time.process_time()
    result = attack(model, x, y, [eps])
    seconds = time.process_time() - start
    forward, backward = result.forward_passes[0], result.backward_passes[0]
    parts = {k: [round(f / len(x), 1), round(b / len(x), 1)] for k, (f, b) in TALLY.items()}
    parts["indicators"] = [
        round(forward - sum(p[0] for p in parts.values()), 1),
        round(backward - sum(p[1] for p in parts.values()), 1),
    ]
    row = {
        "acc": float(result.accuracy(y)[0]), "fwd": forward, "bwd": backward,
        "cpu_s": round(seconds, 1), "fired": getattr(attack, "fired", None), "parts": parts,
    }  # fmt: skip
    return row, result.pred[0] == y, attack.fooled_by[0]


def counted(model: nn.Module, n: int, call):
    counter = PassCounter()
    start = time.process_time()
    with counter.watching(model):
        out = call()
    return out, counter.forward / n, counter.backward / n, round(time.process_time() - start, 1)


def peer(model, x, y, eps, which: str) -> tuple[dict, torch.Tensor]:
    if which == "reference":
        from pyautoattack.autoattack import AutoAttack

        attack = AutoAttack(model, eps=eps, norm="Linf", version="standard", seed=0)
        attack.verbose = False
        (adv, _), fwd, bwd, seconds = counted(
            model, len(x), lambda: attack.run_standard_evaluation(x, y, batch_size=250)
        )
    else:
        import torchattacks

        attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, n_classes=10, seed=0)
        adv, fwd, bwd, seconds = counted(model, len(x), lambda: attack(x, y))
    with torch.no_grad():
        right = model(adv).argmax(1) == y
    return {"acc": float(right.float().mean()), "fwd": fwd, "bwd": bwd, "cpu_s": seconds}, right


def fab_t(model, x, y, eps, left: torch.Tensor) -> dict:
    from pyautoattack.fab_pt import FABAttack_PT

    xs, ys = x[left], y[left]
    reference = FABAttack_PT(
        model, n_restarts=1, n_iter=100, eps=eps, seed=0, norm="Linf", targeted=True,
        n_target_classes=9,
    )  # fmt: skip
    adv, ref_fwd, ref_bwd, ref_s = counted(model, len(xs), lambda: reference.perturb(xs, ys))
    mine = ATTACKS.create("fab", n_target_classes=9, clip_targets=True, within_budget=True)
    result, fwd, bwd, seconds = counted(model, len(xs), lambda: mine(model, xs, ys, [eps]))
    with torch.no_grad():
        inside = (adv - xs).flatten(1).abs().amax(1) <= eps + 1e-6
        ref_fooled = int(((model(adv).argmax(1) != ys) & inside).sum())
    return {
        "images": len(xs), "ref_fwd": ref_fwd, "ref_bwd": ref_bwd, "ref_s": ref_s,
        "ref_fooled": ref_fooled, "ours_fwd": fwd, "ours_bwd": bwd, "ours_s": seconds,
        "ours_fooled": int(result.success[0].sum()),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--model", choices=("mnist", "cifar"), required=True)
    parser.add_argument("--parts", default="standard,fast,reference,torchattacks,fab")
    parser.add_argument("--models", default="/tmp/aa-compare", type=Path)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    Cascade._run_part, autoattack_module.by_linearized_distance = run_part, rank
    load = pgd_mnist if args.model == "mnist" else cifar_net
    model, x, y, eps = load(args.data_dir, args.models)
    parts, out = args.parts.split(","), {}
    kept = args.models / f"{args.model}-standard.pt"
    if "standard" in parts:
        out["standard"], right, fooled_by = ours(model, x, y, eps, "standard")
        args.models.mkdir(parents=True, exist_ok=True)
        torch.save({"right": right, "fooled_by": fooled_by, "row": out["standard"]}, kept)
    else:
        saved = torch.load(kept, weights_only=True)
        right, fooled_by, out["standard"] = saved["right"], saved["fooled_by"], saved["row"]
    if "fast" in parts:
        out["fast"], fast_right, _ = ours(model, x, y, eps, "fast")
        out["fast"]["verdicts_differ"] = int((fast_right != right).sum())
    for which in ("reference", "torchattacks"):
        if which in parts:
            out[which], peer_right = peer(model, x, y, eps, which)
            out[which]["verdicts_differ_from_standard"] = int((peer_right != right).sum())
    if "fab" in parts:
        with torch.no_grad():
            correct = model(x).argmax(1) == y
        left = (correct & ((fooled_by < 0) | (fooled_by >= 2))).nonzero().squeeze(1)
        out["fab_t"] = fab_t(model, x, y, eps, left)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
