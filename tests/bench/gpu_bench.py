"""GPU throughput on CIFAR-shaped data: ResNet-18 training, PGD-10 and BigGAN training images
per second, with and without bfloat16 autocast. Prints a short table to paste into
tests/bench/README.md.

    python tests/bench/gpu_bench.py                  # on the GPU
    python tests/bench/gpu_bench.py --device cpu --batch-size 8 --gan-batch-size 4 \
        --steps 2 --width 4                          # smoke

Random images and labels: throughput does not depend on the pixels. A BigGAN training step
(``gans.train.train_gan`` with the family's defaults) is two discriminator updates and one
generator update on minibatches of ``--gan-batch-size``; its images/s counts one minibatch
per step.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from robustbench_gan.gans import train_gan
from robustbench_gan.registry import ATTACKS, CLASSIFIERS, GENERATORS


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, steps: int) -> float:
    """Seconds per call of ``fn`` after one warm-up call."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def rate(value: float) -> str:
    """Images per second, three significant digits below 100 (a loaded CPU can run under one
    image per second: never printed as 0)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def autocast(device: torch.device, on: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def biggan_training(device: torch.device, width: int, batch_size: int, steps: int):
    """A maker of calls that each run ``steps`` BigGAN training steps (10 classes)."""
    torch.manual_seed(0)
    gan = GENERATORS.create("biggan", in_shape=(3, 32, 32), num_classes=10, ngf=width, ndf=width)
    x = torch.rand(4 * batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (len(x),), device=device)
    options = dict(steps=steps, batch_size=batch_size, device=device, progress=False)

    def make(amp: bool):
        return lambda: train_gan(gan, x, y, amp=amp, **options)

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gan-batch-size", type=int, default=256, help="BigGAN minibatch")
    parser.add_argument(
        "--width", type=int, default=64, help="ResNet-18 base width and BigGAN's ngf = ndf"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("gpu_bench: no CUDA device here (use --device cpu for a smoke run)")
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = CLASSIFIERS.create("resnet18", in_shape=(3, 32, 32), num_classes=10, width=args.width)
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(device, memory_format=layout)
    x = torch.rand(args.batch_size, 3, 32, 32, device=device).to(memory_format=layout)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    attack = ATTACKS.create("pgd", steps=10, batch_size=args.batch_size)

    def train_step(amp: bool):
        def step():
            model.train()
            with autocast(device, amp):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    def pgd(amp: bool):
        def run():
            model.eval()
            with autocast(device, amp):
                attack.generate(model, x, y, 8 / 255)

        return run

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {name}; torch {torch.__version__}; batch {args.batch_size}; ResNet-18 width {args.width}"
    )
    print("| workload | float32 img/s | bf16 autocast img/s | speed-up |")
    print("|---|---|---|---|")
    for label, make in (("ResNet-18 training step", train_step), ("PGD-10 attack", pgd)):
        fp32, bf16 = (
            args.batch_size / timed(make(amp), device, args.steps) for amp in (False, True)
        )
        print(f"| {label} | {rate(fp32)} | {rate(bf16)} | {bf16 / fp32:.2f}x |")
    gan_batch = args.gan_batch_size
    make = biggan_training(device, args.width, gan_batch, args.steps)
    fp32, bf16 = (gan_batch * args.steps / timed(make(amp), device, 1) for amp in (False, True))
    label = f"BigGAN training step (batch {gan_batch}, 2 D + 1 G updates)"
    print(f"| {label} | {rate(fp32)} | {rate(bf16)} | {bf16 / fp32:.2f}x |")


if __name__ == "__main__":
    main()
