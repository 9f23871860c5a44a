"""A CIFAR-10 classifier defined and trained outside robustbench_gan (train_cifar_net.py).

A plain ``nn.Module`` that expects inputs normalized with the CIFAR-10 channel statistics,
as many published models do; suites/cifar10-jpeg.toml loads its weights (cifar_net.pt) as
they are and puts the normalization in front with ``mean`` and ``std``.
"""

from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(4 * width, 10)

    def forward(self, x):
        return self.head(self.body(x))
