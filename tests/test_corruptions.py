"""Common corruptions (robustbench_gan/corruptions/): the call's contract, the two sets,
severity against a simple distortion measure, and agreement with the reference code.

Agreement: the ImageNet-C constants against ``imagecorruptions`` and the CIFAR-10-C constants
against a port of Hendrycks' ``make_cifar_c.py`` (below: Wand's motion blur replaced by
``imagecorruptions``' port of it, as that package does), on the same 8-bit images with the
same random draws (each image's RandomState loaded into NumPy's global stream, which the
references draw from), compared after the same truncation to uint8. They agree to the pixel
(today: 0 of 10,000s of values differ but for frost and motion blur's rare 1/255 on a
48x40 image, from float rounding); the bound asserted is 1/255 on at most 0.1% of the values.
``imagecorruptions`` 1.1.2 predates NumPy 2, scikit-image 0.19 and setuptools 81, so it is
loaded with the three names it misses put back (``np.float_``, ``gaussian(multichannel=)``,
``pkg_resources.resource_filename``). Skipped without ``imagecorruptions``, OpenCV or
scikit-image (the ``test`` extra installs all three).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import sys
import types
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_gan.corruptions import HENDRYCKS, MNIST_C, corruption_set, image_rng
from robustbench_gan.errors import UserError
from robustbench_gan.registry import CORRUPTIONS

ALL = HENDRYCKS + MNIST_C
#: frost overlays the pictures the imagecorruptions package ships: without it, frost is skipped
FROST_PICTURES = importlib.util.find_spec("imagecorruptions") is not None


def runs_here(name: str) -> bool:
    return name != "frost" or FROST_PICTURES


def skip_unless_it_runs_here(name: str) -> None:
    if not runs_here(name):
        pytest.skip("frost needs the frost pictures of imagecorruptions, not installed")


#: no random draw: the same output under every seed
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate"}
DETERMINISTIC |= {"jpeg_compression", "mnist_c_scale", "mnist_c_stripe", "mnist_c_canny_edges"}
DETERMINISTIC |= {"mnist_c_brightness"}
#: the published constants are not monotone in the mean absolute change: glass blur's sigma
#: falls from severity 3 to 4 (CIFAR-10-C) or 2 to 3 (ImageNet-C) as its iterations rise;
#: frost darkens the image while it adds frost, the two cancelling; CIFAR-10-C's elastic
#: transform moves pixels furthest at severity 1 (an affine jitter of 2.6 px, falling);
#: CIFAR-10-C's snow at 2 (many small flakes) and 3 (fewer, larger) are about as strong, the
#: order depending on the image
NOT_MONOTONE = {"glass_blur", "frost", "elastic_transform", "snow"}


def smooth_images(n: int, h: int, w: int, channels: int, seed: int = 0) -> torch.Tensor:
    """CIFAR-like test images on the 8-bit grid: smooth colour fields, edges and some noise."""
    from scipy.ndimage import zoom

    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        field = zoom(rng.rand(h // 4 + 2, w // 4 + 2, channels), (4, 4, 1), order=1)[:h, :w]
        field[h // 3 : h // 2, :, :] *= 0.4
        out.append(np.clip(field + 0.05 * rng.randn(h, w, channels), 0, 1))
    return torch.from_numpy(np.round(np.stack(out) * 255) / 255).permute(0, 3, 1, 2).float()


def digit_images() -> torch.Tensor:
    """Grey 28x28 digit-like strokes (a 0, a 1, a 7) on black."""
    from PIL import ImageDraw

    pictures = []
    for shape in ("zero", "one", "seven"):
        picture = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(picture)
        if shape == "zero":
            draw.ellipse((8, 5, 20, 23), outline=255, width=3)
        elif shape == "one":
            draw.line((14, 4, 14, 24), fill=255, width=3)
        else:
            draw.line((7, 6, 21, 6), fill=255, width=3)
            draw.line((21, 6, 11, 24), fill=255, width=3)
        pictures.append(np.asarray(picture))
    return torch.from_numpy(np.stack(pictures))[:, None].float() / 255


def real_images() -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A few real CIFAR-10 test JPEGs and MNIST test digits from $RBG_DATA_DIR, if there."""
    root = os.environ.get("RBG_DATA_DIR")
    cifar = mnist = None
    if root and (Path(root) / "cifar10-jpeg" / "test").is_dir():
        files = sorted((Path(root) / "cifar10-jpeg" / "test").glob("*/000[01].jpg"))
        arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        cifar = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    digits = Path(root or "") / "mnist" / "t10k-images-idx3-ubyte.gz"
    if root and digits.is_file():
        with gzip.open(digits) as f:
            data = np.frombuffer(f.read(8 * 784 + 16), np.uint8, offset=16)
        mnist = torch.from_numpy(data.reshape(-1, 1, 28, 28).copy()).float() / 255
    return cifar, mnist


# -- the call's contract --------------------------------------------------------------------
def test_the_two_sets():
    assert corruption_set(3) == list(HENDRYCKS) and len(set(HENDRYCKS)) == 15
    assert corruption_set(1) == list(MNIST_C) and len(set(MNIST_C)) == 15
    assert set(ALL) <= set(CORRUPTIONS.list())
    assert CORRUPTIONS.list("mnist_c_*") == sorted(MNIST_C)
    for name in ALL:
        family = "mnist_c" if name in MNIST_C else "hendrycks"
        assert CORRUPTIONS.get(name).family == family
    with pytest.raises(ValueError, match="1 or 3"):
        corruption_set(2)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(3, 3, 32, 32), (2, 1, 28, 28), (2, 1, 8, 8), (1, 3, 12, 20)])
def test_shape_range_grid_and_determinism(name, shape):
    skip_unless_it_runs_here(name)
    corruption = CORRUPTIONS.create(name)
    x = smooth_images(shape[0], shape[2], shape[3], shape[1], seed=1)
    for severity in (1, 5):
        y = corruption(x, severity, 3)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert float(y.min()) >= 0 and float(y.max()) <= 1
        assert torch.equal(torch.round(y * 255), y * 255)  # the uint8 grid
        assert torch.equal(corruption(x, severity, 3), y)  # the seed decides
        assert torch.equal(corruption(x[1:], severity, 3, start=1), y[1:])  # not the batch
    if name not in DETERMINISTIC and shape == (3, 3, 32, 32):
        assert not torch.equal(corruption(x, 5, 4), y)


def test_the_seeds_own_stream_leaves_the_global_ones_alone():
    np.random.seed(5)
    torch.manual_seed(5)
    expected = (np.random.rand(), float(torch.rand(1)))
    np.random.seed(5)
    torch.manual_seed(5)
    for name in filter(runs_here, ALL):
        CORRUPTIONS.create(name)(smooth_images(1, 32, 32, 3), 3, 0)
    assert (np.random.rand(), float(torch.rand(1))) == expected


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c, x: c(x, 0, 0), "severity"),
        (lambda c, x: c(x, 6, 0), "severity"),
        (lambda c, x: c(x, 2.0, 0), "severity"),
        (lambda c, x: c(x, True, 0), "severity"),
        (lambda c, x: c(x, 3, -1), "seed"),
        (lambda c, x: c(x, 3, 0, start=-1), "start"),
        (lambda c, x: c(x[:, :2], 3, 0), "1 or 3 channels"),
        (lambda c, x: c(x[..., :7, :], 3, 0), "at least 8x8"),
        (lambda c, x: c(x[0], 3, 0), r"\(N, C, H, W\)"),
        (lambda c, x: c((x * 255).to(torch.uint8), 3, 0), "floating point"),
        (lambda c, x: c(x * 2, 3, 0), r"\[0, 1\]"),
    ],
)
def test_what_a_call_cannot_run_on(call, message):
    with pytest.raises(ValueError, match=message):
        call(CORRUPTIONS.create("gaussian_noise"), smooth_images(1, 16, 16, 3))


def test_which_constants_apply():
    auto = CORRUPTIONS.create("fog")
    assert auto.constant_set(32, 32) == "cifar" and auto.constant_set(64, 48) == "cifar"
    assert auto.constant_set(65, 32) == "imagenet" and auto.constant_set(224, 224) == "imagenet"
    assert CORRUPTIONS.create("fog", constants="imagenet").constant_set(32, 32) == "imagenet"
    assert CORRUPTIONS.create("fog", constants="cifar").constant_set(224, 224) == "cifar"
    with pytest.raises(ValueError, match="constants"):
        CORRUPTIONS.create("fog", constants="tiny")
    x = smooth_images(1, 32, 32, 3)
    assert not torch.equal(auto(x, 3, 0), CORRUPTIONS.create("fog", constants="imagenet")(x, 3, 0))


def test_frost_without_imagecorruptions_says_what_to_install(monkeypatch):
    from robustbench_gan.corruptions import weather

    caches = (weather._frost_folder, weather.frost_picture, weather._frost_small)
    monkeypatch.setattr(weather, "FROST_PACKAGE", "no_such_package_of_frost_pictures")
    for cached in caches:
        cached.cache_clear()
    try:
        with pytest.raises(UserError, match="pip install imagecorruptions"):
            CORRUPTIONS.create("frost")(smooth_images(1, 32, 32, 3), 3, 0)
    finally:
        monkeypatch.undo()
        for cached in caches:
            cached.cache_clear()


def test_mnist_c_severity_3_is_the_published_corruption():
    """MNIST-C's noise and light are ImageNet-C's at one severity (corruptions.py defaults)."""
    x = digit_images()
    for mnist, hendrycks, severity in [
        ("mnist_c_shot_noise", "shot_noise", 5),
        ("mnist_c_impulse_noise", "impulse_noise", 4),
        ("mnist_c_brightness", "brightness", 5),
        ("mnist_c_motion_blur", "motion_blur", 1),
    ]:
        reference = CORRUPTIONS.create(hendrycks, constants="imagenet")(x, severity, 2)
        assert torch.equal(CORRUPTIONS.create(mnist)(x, 3, 2), reference), mnist


# -- severity -------------------------------------------------------------------------------
def distortion(name: str, x: torch.Tensor) -> np.ndarray:
    """Mean absolute change from the clean images at severities 1..5 (two seeds' mean)."""
    corruption = CORRUPTIONS.create(name)
    return np.array(
        [
            np.mean([float((corruption(x, s, seed) - x).abs().mean()) for seed in (0, 1)])
            for s in range(1, 6)
        ]
    )


@pytest.mark.parametrize("name", ALL)
def test_severity_raises_the_distortion(name):
    skip_unless_it_runs_here(name)
    cifar, mnist = real_images()
    sets = [smooth_images(4, 32, 32, 3)] if name in HENDRYCKS else [digit_images()]
    real = cifar if name in HENDRYCKS else mnist
    sets += [real] if real is not None else []
    for x in sets:
        change = distortion(name, x)
        assert (change > 0).all(), change
        if name not in NOT_MONOTONE:
            assert (np.diff(change) >= -5e-4).all(), change


# -- agreement with the references ----------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    """``imagecorruptions.corruptions`` loaded on today's libraries, NumPy's global stream
    restored afterwards."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    if importlib.util.find_spec("imagecorruptions") is None:
        pytest.skip("imagecorruptions is not installed")
    import skimage.filters

    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("pkg_resources") is None:
            shim = types.ModuleType("pkg_resources")
            folder = importlib.util.find_spec("imagecorruptions").submodule_search_locations[0]
            shim.resource_filename = lambda package, name: os.path.join(folder, name)
            patch.setitem(sys.modules, "pkg_resources", shim)
        patch.setattr(np, "float_", np.float64, raising=False)
        import imagecorruptions.corruptions as ic

        def gaussian(image, sigma=1, *args, multichannel=None, **kwargs):
            if multichannel:
                kwargs["channel_axis"] = -1
            return skimage.filters.gaussian(image, sigma, *args, **kwargs)

        patch.setattr(ic, "gaussian", gaussian)
        state = np.random.get_state()
        yield ic
        np.random.set_state(state)


def run_reference(function, ic, picture: np.ndarray, severity: int, seed: int, index: int):
    """``function(PIL image, severity)`` drawing what image ``index`` draws under ``seed``."""
    stream = image_rng(seed, index)
    if function.__name__ == "impulse_noise":  # skimage's own Generator, seeded as ours is
        import skimage.util

        drawn = stream.randint(2**31)
        original = skimage.util.random_noise
        with pytest.MonkeyPatch.context() as patch:
            noise = lambda *a, **k: original(*a, rng=np.random.default_rng(drawn), **k)  # noqa: E731
            patch.setattr(ic.sk.util, "random_noise", noise)
            return np.uint8(function(Image.fromarray(picture), severity))
    np.random.set_state(stream.get_state())
    return np.uint8(function(Image.fromarray(picture), severity))


def compare(name: str, functions: dict, ic, x: torch.Tensor, constants: str) -> tuple[int, float]:
    """(largest difference in 1/255, share of values that differ) over severities 1..5."""
    corruption = CORRUPTIONS.create(name, constants=constants)
    pictures = np.round(x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    worst, differ, total = 0, 0, 0
    for severity in range(1, 6):
        ours = np.round(corruption(x, severity, 7).permute(0, 2, 3, 1).numpy() * 255).astype(int)
        for i, picture in enumerate(pictures):
            theirs = run_reference(
                functions[name],
                ic,
                picture.squeeze(-1) if x.shape[1] == 1 else picture,
                severity,
                7,
                i,
            )
            gap = np.abs(ours[i].reshape(theirs.shape) - theirs.astype(int))
            worst, differ, total = (
                max(worst, int(gap.max())),
                differ + int((gap > 0).sum()),
                total + gap.size,
            )
    return worst, differ / total


@pytest.mark.parametrize("name", HENDRYCKS)
def test_imagenet_constants_agree_with_imagecorruptions(name, reference):
    functions = {n: getattr(reference, n) for n in HENDRYCKS}
    for h, w in ((32, 32), (48, 40)):
        worst, share = compare(name, functions, reference, smooth_images(2, h, w, 3), "imagenet")
        assert worst <= 1 and share <= 1e-3, (h, w, worst, share)


#: grey images: imagecorruptions' grey motion blur raises IndexError, its glass blur blurs a
#: 2-D image along one axis (multichannel=True takes the columns for channels) and its frost
#: greys the BGR picture with RGB's weights; the rest agree
GREY_DIFFERENT = {"motion_blur", "glass_blur", "frost"}


@pytest.mark.parametrize("name", sorted(set(HENDRYCKS) - GREY_DIFFERENT))
def test_grey_images_agree_with_imagecorruptions(name, reference):
    functions = {n: getattr(reference, n) for n in HENDRYCKS}
    worst, share = compare(name, functions, reference, smooth_images(2, 32, 32, 1), "imagenet")
    assert worst <= 1 and share <= 1e-3, (worst, share)


@pytest.mark.parametrize("name", HENDRYCKS)
def test_cifar_constants_agree_with_make_cifar_c(name, reference):
    worst, share = compare(
        name, make_cifar_c(reference), reference, smooth_images(3, 32, 32, 3), "cifar"
    )
    assert worst <= 1 and share <= 1e-3, (worst, share)


#: the MNIST-C corruptions that are a Hendrycks one at one severity (checked above)
MNIST_C_AS_HENDRYCKS = {"mnist_c_shot_noise", "mnist_c_impulse_noise", "mnist_c_brightness"}
MNIST_C_AS_HENDRYCKS |= {"mnist_c_motion_blur"}


@pytest.mark.parametrize("name", sorted(set(MNIST_C) - MNIST_C_AS_HENDRYCKS))
def test_mnist_c_severity_3_agrees_with_mnist_c_code(name, reference):
    functions = mnist_c_code(reference)
    x = digit_images()
    real = real_images()[1]
    x = torch.cat([x, real]) if real is not None else x
    ours = np.round(CORRUPTIONS.create(name)(x, 3, 5)[:, 0].numpy() * 255).astype(int)
    pictures = np.round(x[:, 0].numpy() * 255).astype(np.uint8)
    gaps = []
    for i, picture in enumerate(pictures):
        np.random.set_state(image_rng(5, i).get_state())
        theirs = np.uint8(functions[name.removeprefix("mnist_c_")](Image.fromarray(picture)))
        gaps.append(np.abs(ours[i] - theirs.astype(int)))
    gap = np.stack(gaps)
    assert gap.max() <= 1 and (gap > 0).mean() <= 1e-3, (gap.max(), (gap > 0).mean())


def test_canny_is_skimages():
    skimage_canny = pytest.importorskip("skimage.feature").canny

    from robustbench_gan.corruptions.lines import canny

    for image in digit_images()[:, 0].double().numpy():
        for sigma in (0.5, 1.0, 1.5):
            assert np.array_equal(canny(image, sigma), skimage_canny(image, sigma))


def mnist_c_code(ic) -> dict:
    """MNIST-C's corruptions.py (github.com/google-research/mnist-c) at its default severities,
    as written there: ``np.int`` is ``int``, scikit-image's old shear matrix is written out
    (``AffineTransform(shear=)`` changed in 0.19) and its old ``gaussian(multichannel=True)`` of
    a grey image (blurring down the columns only) is ``channel_axis=-1``."""
    from skimage import feature, transform
    from skimage.filters import gaussian

    def glass_blur(x, c=(0.7, 1, 2)):
        x = np.uint8(gaussian(np.array(x) / 255.0, sigma=c[0], channel_axis=-1) * 255)
        for _ in range(c[2]):
            for h in range(28 - c[1], c[1], -1):
                for w in range(28 - c[1], c[1], -1):
                    if np.random.choice([True, False], 1)[0]:
                        dx, dy = np.random.randint(-c[1], c[1], size=(2,))
                        x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
        return np.clip(gaussian(x / 255.0, sigma=c[0], channel_axis=-1), 0, 1) * 255

    def warp(x, a):  # inverse map a, keeping the centre (13.5, 13.5) in place
        a = np.array(a, dtype=float)
        m = np.vstack([np.hstack([a, 13.5 * (1 - a.sum(axis=1))[:, None]]), [0, 0, 1]])
        affine = transform.AffineTransform(matrix=m)
        return np.clip(transform.warp(np.array(x) / 255.0, inverse_map=affine), 0, 1) * 255

    def shear(x):
        c = 0.4 * np.random.choice([-1, 1], 1)[0]
        return warp(x, [[1, -np.sin(c)], [0, np.cos(c)]])

    def rotate(x):
        c = 0.4 * np.random.choice([-1, 1], 1)[0]
        return warp(x, [[np.cos(c), -np.sin(c)], [np.sin(c), np.cos(c)]])

    def scale(x):
        return warp(x, [[1 / 0.7, 0], [0, 1 / 0.7]])

    def translate(x):
        bit = np.random.choice([-1, 1], 2)
        affine = transform.AffineTransform(translation=[3 * bit[0], 3 * bit[1]])
        return np.clip(transform.warp(np.array(x) / 255.0, inverse_map=affine), 0, 1) * 255

    def stripe(x):
        x = np.array(x).astype(np.float32)
        x[:, :7] = 255.0 - x[:, :7]
        x[:, 21:] = 255.0 - x[:, 21:]
        return x

    def fog(x, c=(3.0, 1.4)):
        x = np.array(x) / 255.0
        top = x.max()
        x = x + c[0] * ic.plasma_fractal(wibbledecay=c[1])[:28, :28]
        return np.clip(x * top / (top + c[0]), 0, 1) * 255

    def spatter(x, c=(0.65, 0.3, 1, 0.65, 1.5, 1)):
        x = np.array(x, dtype=np.float32) / 255.0
        liquid = gaussian(np.random.normal(size=x.shape, loc=c[0], scale=c[1]), sigma=c[2])
        liquid[liquid < c[3]] = 0
        m = gaussian(np.where(liquid > c[3], 1, 0).astype(np.float32), sigma=c[4])
        m[m < 0.8] = 0
        color = 63 / 255.0 * np.ones_like(x) * m
        x *= 1 - m
        return np.clip(x + color, 0, 1) * 255

    def line_from_points(c0, r0, c1, r1):
        if c1 == c0:
            return np.zeros((28, 28))
        cc, rr = np.meshgrid(np.linspace(0, 27, 28), np.linspace(0, 27, 28), sparse=True)
        m = (r1 - r0) / (c1 - c0)
        dist = np.clip(np.abs(rr - (m * (cc - c0) + r0)), 0, 2.3 - 1e-10)
        corruption = np.clip(np.log(1 - dist / 2.3) + 1, 0, 1)
        corruption[:, : int(np.floor(c0))] = 0
        corruption[:, int(np.ceil(c1)) :] = 0
        return np.clip(corruption, 0, 1)

    def dotted_line(x):
        x = np.array(x) / 255.0
        r0, r1 = np.random.randint(low=0, high=27, size=2)
        corruption = line_from_points(0, r0, 27, r1)
        idx, off = np.arange(0, 30, 2), True
        for i in range(1, len(idx)):
            if off:
                corruption[:, idx[i - 1] : idx[i]] = 0
            off = not off
        return np.clip(x + corruption, 0, 1) * 255

    def zigzag(x, a=2.0, b=2.0):
        x = np.array(x) / 255.0
        c0, c1 = 2, 25
        r0 = np.random.randint(low=0, high=27)
        r1 = r0 + np.random.randint(low=-5, high=5)
        theta = np.arctan((r1 - r0) / (c1 - c0))
        d = (c1 - c0) / np.cos(theta)
        endpoints = [(0, 0)]
        for i in range(int((d - a) // (2 * a)) + 1):
            r_i = (-1) ** i * b
            endpoints.append(((2 * i + 1) * a, r_i))
        max_c = (2 * a) * (d // (2 * a))
        if d != max_c:
            endpoints.append((d, r_i / (2 * (d - max_c))))
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        cs, rs = turn.dot(np.array(endpoints).T)
        cs, rs = cs + c0, rs + r0
        for i in range(1, len(cs)):
            x = np.clip(x + line_from_points(cs[i - 1], rs[i - 1], cs[i], rs[i]), 0, 1)
        return x * 255

    def canny_edges(x):
        return feature.canny(np.array(x) / 255.0).astype(np.float32) * 255

    names = {name.removeprefix("mnist_c_") for name in MNIST_C}
    return {f.__name__: f for f in locals().values() if callable(f) and f.__name__ in names}


def make_cifar_c(ic) -> dict:
    """Hendrycks' make_cifar_c.py (github.com/hendrycks/robustness, ImageNet-C/create_c): its
    15 corruptions as written there, Wand's motion blur (an 8-bit PNG through ImageMagick)
    replaced by ``imagecorruptions``' port of it, skimage's ``multichannel`` by
    ``channel_axis``."""
    import cv2
    import skimage as sk
    from scipy.ndimage import map_coordinates
    from scipy.ndimage import zoom as scizoom

    def blur(x, sigma, **kw):
        return sk.filters.gaussian(x, sigma=sigma, channel_axis=-1 if x.ndim == 3 else None, **kw)

    def disk(radius, alias_blur=0.1, dtype=np.float32):
        grid, ksize = (
            (np.arange(-8, 9), (3, 3)) if radius <= 8 else (np.arange(-radius, radius + 1), (5, 5))
        )
        xs, ys = np.meshgrid(grid, grid)
        aliased = np.array((xs**2 + ys**2) <= radius**2, dtype=dtype)
        aliased /= np.sum(aliased)
        return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)

    def clipped_zoom(img, z):
        h = img.shape[0]
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        img = scizoom(img[top : top + ch, top : top + ch], (z, z, 1), order=1)
        trim = (img.shape[0] - h) // 2
        return img[trim : trim + h, trim : trim + h]

    def gaussian_noise(x, s):
        x = np.array(x) / 255.0
        return (
            np.clip(
                x + np.random.normal(size=x.shape, scale=[0.04, 0.06, 0.08, 0.09, 0.10][s - 1]),
                0,
                1,
            )
            * 255
        )

    def shot_noise(x, s):
        c, x = [500, 250, 100, 75, 50][s - 1], np.array(x) / 255.0
        return np.clip(np.random.poisson(x * c) / c, 0, 1) * 255

    def impulse_noise(x, s):
        c = [0.01, 0.02, 0.03, 0.05, 0.07][s - 1]
        return (
            np.clip(ic.sk.util.random_noise(np.array(x) / 255.0, mode="s&p", amount=c), 0, 1) * 255
        )

    def defocus_blur(x, s):
        c, x = (
            [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][s - 1],
            np.array(x) / 255.0,
        )
        kernel = disk(radius=c[0], alias_blur=c[1])
        return (
            np.clip(np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], 2), 0, 1)
            * 255
        )

    def glass_blur(x, s):
        c = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][s - 1]
        x = np.uint8(blur(np.array(x) / 255.0, c[0]) * 255)
        for _ in range(c[2]):
            for h in range(32 - c[1], c[1], -1):
                for w in range(32 - c[1], c[1], -1):
                    dx, dy = np.random.randint(-c[1], c[1], size=(2,))
                    x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
        return np.clip(blur(x / 255.0, c[0]), 0, 1) * 255

    def motion_blur(x, s):
        c = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][s - 1]
        return np.clip(ic._motion_blur(np.array(x), c[0], c[1], np.random.uniform(-45, 45)), 0, 255)

    def zoom_blur(x, s):
        c = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
             np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][s - 1]  # fmt: skip
        x = (np.array(x) / 255.0).astype(np.float32)
        out = np.zeros_like(x)
        for z in c:
            out += clipped_zoom(x, z)
        return np.clip((x + out) / (len(c) + 1), 0, 1) * 255

    def snow(x, s):
        c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][s - 1]  # fmt: skip
        x = np.array(x, dtype=np.float32) / 255.0
        layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
        layer = clipped_zoom(layer[..., np.newaxis], c[2])
        layer[layer < c[3]] = 0
        layer = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
        layer = (
            np.round(ic._motion_blur(layer, c[4], c[5], np.random.uniform(-135, -45)))[..., None]
            / 255.0
        )
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
        x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
        return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255

    def frost(x, s):
        c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][s - 1]
        index = np.random.randint(5)
        names = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
        picture = cv2.imread(ic.resource_filename(ic.__name__, "./frost/" + names[index]))
        picture = cv2.resize(picture, (0, 0), fx=0.2, fy=0.2)
        top, left = (
            np.random.randint(0, picture.shape[0] - 32),
            np.random.randint(0, picture.shape[1] - 32),
        )
        picture = picture[top : top + 32, left : left + 32][..., [2, 1, 0]]
        return np.clip(c[0] * np.array(x) + c[1] * picture, 0, 255)

    def fog(x, s):
        c, x = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][s - 1], np.array(x) / 255.0
        top = x.max()
        x += c[0] * ic.plasma_fractal(mapsize=32, wibbledecay=c[1])[:32, :32][..., np.newaxis]
        return np.clip(x * top / (top + c[0]), 0, 1) * 255

    def brightness(x, s):
        x = sk.color.rgb2hsv(np.array(x) / 255.0)
        x[:, :, 2] = np.clip(x[:, :, 2] + [0.05, 0.1, 0.15, 0.2, 0.3][s - 1], 0, 1)
        return np.clip(sk.color.hsv2rgb(x), 0, 1) * 255

    def contrast(x, s):
        c, x = [0.75, 0.5, 0.4, 0.3, 0.15][s - 1], np.array(x) / 255.0
        means = np.mean(x, axis=(0, 1), keepdims=True)
        return np.clip((x - means) * c + means, 0, 1) * 255

    def elastic_transform(image, s):
        side = 32
        c = [(side * 0, side * 0, side * 0.08), (side * 0.05, side * 0.2, side * 0.07), (side * 0.08, side * 0.06, side * 0.06),
             (side * 0.1, side * 0.04, side * 0.05), (side * 0.1, side * 0.03, side * 0.03)][s - 1]  # fmt: skip
        image = np.array(image, dtype=np.float32) / 255.0
        shape = image.shape
        centre, third = np.float32(shape[:2]) // 2, min(shape[:2]) // 3
        pts1 = np.float32([centre + third, [centre[0] + third, centre[1] - third], centre - third])
        pts2 = pts1 + np.random.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
        matrix = cv2.getAffineTransform(pts1, pts2)
        image = cv2.warpAffine(image, matrix, shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)
        dx, dy = (
            (
                sk.filters.gaussian(
                    np.random.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3
                )
                * c[0]
            ).astype(np.float32)[..., None]
            for _ in range(2)
        )
        xs, ys, zs = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
        indices = (
            np.reshape(ys + dy, (-1, 1)),
            np.reshape(xs + dx, (-1, 1)),
            np.reshape(zs, (-1, 1)),
        )
        return (
            np.clip(map_coordinates(image, indices, order=1, mode="reflect").reshape(shape), 0, 1)
            * 255
        )

    def pixelate(x, s):
        c = [0.95, 0.9, 0.85, 0.75, 0.65][s - 1]
        return x.resize((int(32 * c), int(32 * c)), Image.BOX).resize((32, 32), Image.BOX)

    def jpeg_compression(x, s):
        output = BytesIO()
        x.save(output, "JPEG", quality=[80, 65, 58, 50, 40][s - 1])
        return Image.open(output)

    found = {f.__name__: f for f in locals().values() if callable(f) and f.__name__ in HENDRYCKS}
    assert set(found) == set(HENDRYCKS)
    return found
