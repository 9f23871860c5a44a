"""What each kind of cell does. A cell reads upstream results from the store and
returns a JSON result plus named artifacts (bytes); the executor commits both."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..attacks.base import AttackResult
from ..attacks.latent import latent_attack
from ..audit import audit_model
from ..checkpoint import tensors_to_bytes
from ..data.split import DataSplit
from ..errors import UserError
from ..gans.grid import save_image_grid, save_sample_grid
from ..gans.inception import InceptionFeatures
from ..gans.metrics import gan_metrics
from ..gans.train import train_gan
from ..models.train import TrainConfig, train_classifier
from ..registry import ATTACKS, CLASSIFIERS, DATASETS, DEFENSES, GENERATORS, Registry
from ..utils import predict, seed_everything, torch_generator
from .plan import Cell
from .store import Store

DEFAULT_GAN_STEPS = 1000


@dataclass
class CellOutput:
    result: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Context:
    """What every cell may use: the data, the device, the store and loaded models."""

    data: DataSplit
    device: torch.device
    store: Store
    progress: bool = True
    eval_batch_size: int = 256
    device_name: str = "cpu"
    versions: str = ""
    data_root: str | None = None  # where other datasets are read (a CycleGAN's other domain)
    loaded: dict[str, nn.Module] = field(default_factory=dict)  # cell id -> model on device

    def eval_set(self, n_eval: int | None) -> tuple[Tensor, Tensor]:
        n = len(self.data.x_test) if n_eval is None else min(n_eval, len(self.data.x_test))
        return self.data.x_test[:n], self.data.y_test[:n]

    # -- loading upstream results --------------------------------------------
    def trained(self, cell_id: str) -> nn.Module:
        """The classifier trained by cell ``cell_id``, loaded once and kept on the device."""
        if cell_id not in self.loaded:
            record = self.store.get(cell_id)
            if record is None:
                raise RuntimeError(f"upstream cell {cell_id} has no result")
            spec = record.spec["classifier"]
            model = build(CLASSIFIERS, spec, self.classifier_inputs())
            model.load_state_dict(self.store.load_tensors(record.artifacts["state"]))
            self.loaded[cell_id] = model.to(self.device).eval()
        return self.loaded[cell_id]

    def gan(self, cell_id: str) -> nn.Module:
        if cell_id not in self.loaded:
            record = self.store.get(cell_id)
            if record is None:
                raise RuntimeError(f"upstream cell {cell_id} has no result")
            gan = build(GENERATORS, record.spec["generator"], self.generator_inputs())
            gan.load_state_dict(self.store.load_tensors(record.artifacts["state"]))
            self.attach_domain(gan, record.spec["seed"])
            self.loaded[cell_id] = gan.to(self.device).eval()
        return self.loaded[cell_id]

    def attach_domain(self, gan: nn.Module, seed: int) -> None:
        """Give a translating GAN whose other domain is a dataset (not a transform) its images."""
        if getattr(gan, "is_transform", True):
            return
        other = DATASETS.create(gan.domain, root=self.data_root, seed=seed)
        if other.shape != self.data.shape:
            raise UserError(
                f"domain {gan.domain!r} has images of shape {other.shape}, "
                f"the suite's data {self.data.shape}"
            )
        gan.attach_domain_b(other.x_train, other.x_test)

    def model(self, ref: dict[str, Any]) -> nn.Module:
        """An evaluated model from its plan description (trained, or built by a defense)."""
        if "trained" in ref:
            return self.trained(ref["trained"])
        members = [self.model(m) for m in ref["members"]]
        extra = (
            {"generator": self.gan(ref["build"]["generator"])}
            if "generator" in ref["build"]
            else {}
        )
        defense = build(DEFENSES, ref["build"]["defense"], extra)
        return defense.build(members).to(self.device).eval()

    def classifier_inputs(self) -> dict[str, Any]:
        d = self.data
        return {"in_shape": d.shape, "num_classes": d.num_classes, "mean": d.mean, "std": d.std}

    def generator_inputs(self) -> dict[str, Any]:
        return {"in_shape": self.data.shape, "num_classes": self.data.num_classes}


def build(registry: Registry, spec: dict[str, Any], inputs: dict[str, Any]) -> Any:
    """Create a plugin from its spec; bad values are the user's to fix."""
    try:
        return registry.create(spec["name"], **inputs, **spec["params"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot build {registry.kind} {spec['name']!r}: {exc}") from None


# -- cells --------------------------------------------------------------------
def run_train_classifier(cell: Cell, ctx: Context) -> CellOutput:
    spec = cell.spec
    seed_everything(spec["seed"])
    model = build(CLASSIFIERS, spec["classifier"], ctx.classifier_inputs())
    defense = None
    if spec["defense"] is not None:
        extra: dict[str, Any] = {}
        if spec["generator"] is not None:
            extra["generator"] = ctx.gan(spec["generator"])
        if spec["static"]:
            extra["static_models"] = [ctx.model(ref) for ref in spec["static"]]
        defense = build(DEFENSES, spec["defense"], extra)
    x, y = ctx.data.x_train, ctx.data.y_train
    history = train_classifier(
        model,
        x,
        y,
        config=TrainConfig(**spec["train"]),
        seed=spec["seed"],
        device=ctx.device,
        defense=defense,
        progress=ctx.progress,
        desc=cell.label,
        amp=spec.get("amp", False),
    )
    x_test, y_test = ctx.data.x_test, ctx.data.y_test
    test_acc = share(predict(model, x_test) == y_test)
    ctx.loaded[cell.id] = model.eval()
    return CellOutput(
        {"epoch_loss": history.epoch_loss, "seconds": history.seconds, "test_acc": test_acc},
        {"state": state_bytes(model)},
    )


def run_train_gan(cell: Cell, ctx: Context) -> CellOutput:
    spec = cell.spec
    seed_everything(spec["seed"])
    gan = build(GENERATORS, spec["generator"], ctx.generator_inputs())
    ctx.attach_domain(gan, spec["seed"])
    monitor = None
    if "monitor" in spec:
        judge = ctx.trained(cell.deps[0])
        n, seed = spec["monitor"]["n"], spec["seed"]

        def monitor(g: nn.Module) -> dict[str, float]:
            values = gan_metrics(g, judge, ctx.data.x_test, ctx.data.y_test, n=n, seed=seed)
            return {"fid": values["fid"], "coverage": values["coverage"]}

    history = train_gan(
        gan,
        ctx.data.x_train,
        ctx.data.y_train,
        seed=spec["seed"],
        device=ctx.device,
        progress=ctx.progress,
        amp=spec.get("amp", False),
        monitor=monitor,
        **{"steps": DEFAULT_GAN_STEPS, **spec["train"]},
    )
    ctx.loaded[cell.id] = gan.eval()
    result = {
        "d_loss": history.d_loss,
        "g_loss": history.g_loss,
        "seconds": history.seconds,
        "steps": history.steps,
        "conditional": bool(gan.conditional),
        "options": history.options,
        "series": history.series,
        "monitor": history.monitor,
    }
    return CellOutput(result, {"state": state_bytes(gan)})


@functools.lru_cache(maxsize=1)
def inception_features(path: str, device: str) -> InceptionFeatures:
    """Inception-v3 loaded once per process, not once per generator's metrics cell."""
    return InceptionFeatures(path, device=device)


def run_gan_metrics(cell: Cell, ctx: Context) -> CellOutput:
    gan_cell, judge_cell = cell.deps
    gan, judge = ctx.gan(gan_cell), ctx.trained(judge_cell)
    spec = cell.spec
    inception = None
    if "inception_weights" in spec:
        inception = inception_features(spec["inception_weights"], str(ctx.device))
    metrics = gan_metrics(
        gan,
        judge,
        ctx.data.x_test,
        ctx.data.y_test,
        n=spec["n"],
        seed=spec["seed"],
        device=ctx.device,
        x_train=ctx.data.x_train,
        inception=inception,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.png"
        grid = save_sample_grid(gan, path, seed=spec["seed"], x=ctx.data.x_test).read_bytes()
    return CellOutput({"metrics": metrics, "judge": spec["judge"]}, {"grid": grid})


def run_latent(cell: Cell, ctx: Context) -> CellOutput:
    """The latent-space attack on one model, with a picture of what it found."""
    spec, settings = cell.spec, cell.spec["latent"]
    gan = ctx.gan(cell.deps[0])
    auxiliary = ctx.trained(cell.deps[1])
    model = ctx.model(spec["model"])
    params = {
        k: (int(v) if k in ("n", "steps") else float(v)) for k, v in settings["params"].items()
    }
    try:
        outcome = latent_attack(gan, model, auxiliary, seed=spec["seed"], **params)
    except ValueError as exc:
        raise UserError(f"latent attack: {exc}", where="latent") from None
    shown = min(len(outcome.labels), 2 * gan.num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "latent.png"
        images = torch.cat([outcome.start[:shown], outcome.found[:shown]])
        save_image_grid(images, path, nrow=shown)
        grid = path.read_bytes()
    result = {
        **outcome.summary(),
        "generator": settings["generator"],
        "auxiliary": settings["auxiliary"],
        "device": ctx.device_name,
    }
    return CellOutput(result, {"grid": grid})


def run_domain_shift(cell: Cell, ctx: Context) -> CellOutput:
    """Accuracy of a model on its test set moved to a translating generator's other domain
    (G_AB(x)) and, for transform domains, on the true transform T(x) beside it."""
    spec = cell.spec
    gan = ctx.gan(cell.deps[0])
    model = ctx.model(spec["model"])
    x, y = ctx.eval_set(spec["n_eval"])
    clean_correct = predict(model, x) == y
    translated_correct = predict(model, gan.translate(x, "ab")) == y
    true_acc = None
    if gan.is_transform:
        true_acc = share(predict(model, gan.domain_b(x, split="test")) == y)
    return CellOutput(
        {
            "domain": gan.domain,
            "n_eval": len(x),
            "clean_acc": share(clean_correct),
            "translated_acc": share(translated_correct),
            "translated_error_rate": share(~translated_correct, of=clean_correct),
            "transformed_acc": true_acc,
            "device": ctx.device_name,
            "versions": ctx.versions,
        }
    )


def run_attack(cell: Cell, ctx: Context) -> CellOutput:
    spec = cell.spec
    model = ctx.model(spec["model"])
    attack = build(
        ATTACKS, spec["attack"], {"seed": spec["seed"], "batch_size": ctx.eval_batch_size}
    )
    x, y = ctx.eval_set(spec["n_eval"])
    if getattr(attack, "needs_training_data", False):  # AdvGAN: learns on the training split
        attack.fit(model, ctx.data.x_train, ctx.data.y_train, spec["eps"])
    target = random_targets(y, ctx.data.num_classes, spec["seed"]) if attack.targeted else None
    outcome: AttackResult = attack(model, x, y, spec["eps"], target=target)
    delta = (outcome.adv - x.unsqueeze(0)).flatten(2)
    correct = outcome.pred == y.unsqueeze(0)
    clean_correct = outcome.clean_pred == y
    per_eps = []
    for i, eps in enumerate(outcome.eps):
        per_eps.append(
            {
                "eps": eps,
                "robust_acc": share(correct[i]),
                "attack_success_rate": share(~correct[i], of=clean_correct),
                "mean_linf": float(delta[i].abs().amax(1).mean()),
                "mean_l2": float(delta[i].norm(dim=1).mean()),
                "seconds": outcome.seconds[i],
                "correct": bits(correct[i]),
                "iterations": iteration_curve(outcome, i, attack),
            }
        )
    result = {
        "norm": attack.norm,
        "targeted": attack.targeted,
        "black_box": attack.black_box,
        "train_seconds": getattr(attack, "train_seconds", 0.0),
        "n_eval": len(x),
        "clean_acc": share(clean_correct),
        "clean_correct": bits(clean_correct),
        "device": ctx.device_name,
        "versions": ctx.versions,
        "per_eps": per_eps,
    }
    return CellOutput(result, {"adv": tensors_to_bytes({"adv": outcome.adv})})


def run_audit(cell: Cell, ctx: Context) -> CellOutput:
    model = ctx.model(cell.spec["model"])
    x, y = ctx.eval_set(cell.spec["n_eval"])
    return CellOutput(audit_model(model, x, y, seed=cell.spec["seed"]))


def random_targets(y: Tensor, num_classes: int, seed: int) -> Tensor:
    """A seeded target class for each image, never its true class."""
    shift = torch.randint(1, num_classes, y.shape, generator=torch_generator(seed))
    return (y + shift) % num_classes


def iteration_curve(outcome: AttackResult, index: int, attack: Any) -> list[float] | None:
    """Robust accuracy after k = 0, 1, ..., K iterations at budget ``index``.

    Only for untargeted attacks that report when each image was first fooled; an
    image counts as robust after k iterations if it was not fooled within them.
    """
    if outcome.success_step is None or attack.targeted:
        return None
    step = outcome.success_step[index]
    total = getattr(attack, "steps", 0) * getattr(attack, "restarts", 1)
    last = max(int(step.max()), total)
    fooled_by = torch.bincount(step[step >= 0], minlength=last + 1).cumsum(0)
    return [1 - int(f) / len(step) for f in fooled_by]


def run_transfer(cell: Cell, ctx: Context) -> CellOutput:
    source = ctx.store.get(cell.deps[0])
    if source is None:
        raise RuntimeError(f"upstream cell {cell.deps[0]} has no result")
    adv = ctx.store.load_tensors(source.artifacts["adv"])["adv"]
    target = ctx.model(cell.spec["target"])
    x, y = ctx.eval_set(source.spec["n_eval"])
    clean_correct = predict(target, x) == y
    per_eps = []
    for eps, adv_eps in zip(source.spec["eps"], adv):
        correct = predict(target, adv_eps) == y
        per_eps.append(
            {
                "eps": eps,
                "target_robust_acc": share(correct),
                "transfer_success_rate": share(~correct, of=clean_correct),
            }
        )
    return CellOutput({"target_clean_acc": share(clean_correct), "per_eps": per_eps})


def state_bytes(module: nn.Module) -> bytes:
    """The module's weights and buffers, on the CPU, serialized for the store."""
    return tensors_to_bytes({k: v.detach().cpu() for k, v in module.state_dict().items()})


def share(mask: Tensor, of: Tensor | None = None) -> float:
    """The share of True in ``mask`` (among the True of ``of``), as an exact double."""
    if of is not None:
        return int((mask & of).sum()) / max(int(of.sum()), 1)
    return int(mask.sum()) / max(len(mask), 1)


def bits(mask: Tensor) -> str:
    """A boolean vector as a compact '0101...' string (JSON friendly)."""
    return "".join("1" if v else "0" for v in mask.tolist())


RUNNERS: dict[str, Callable[[Cell, Context], CellOutput]] = {
    "train_classifier": run_train_classifier,
    "train_gan": run_train_gan,
    "gan_metrics": run_gan_metrics,
    "attack": run_attack,
    "transfer": run_transfer,
    "audit": run_audit,
    "domain_shift": run_domain_shift,
    "latent": run_latent,
}
