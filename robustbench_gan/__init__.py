"""robustbench_gan: adversarial robustness benchmarks for PyTorch classifiers, GANs in the loop."""

__version__ = "0.1.0"
