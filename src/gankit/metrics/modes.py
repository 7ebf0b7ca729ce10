"""Mode metrics: how many modes of a known target a generator covers, and how well.

* 2D mixtures (``ring8``, ``grid25``): a sample is *high quality* when it lies within 3 standard
  deviations of its nearest mode centre; a mode is *covered* when at least ``min_count`` high-quality
  samples fall to it (Srivastava et al. 2017, VEEGAN, section 5.1: 2,500 samples, min_count 1;
  PacGAN uses the same protocol).
* ``digits``: a small CNN trained on the built-in digits (shipped weights; held-out accuracy in
  its metadata, checked by the tests) classifies samples after area-resizing to 8x8; we report the
  share of samples it recognises with probability >= ``threshold`` (0.9) and how many classes appear
  among those.
* ``stacked-digits``: each RGB channel is classified on its own, giving one of 1,000 modes; we
  report the modes covered and KL(p_generated || uniform) over the 1,000 modes (the Stacked MNIST
  protocol of VEEGAN section 5.2 and PacGAN, 26,000 samples).
* ``mnist`` and ``stacked-mnist``: the same two metrics with a CNN trained on MNIST itself
  (``builtin:mnist``, files the user provides), which makes ``stacked-mnist`` VEEGAN's and PacGAN's
  Stacked MNIST protocol: real MNIST digits, an MNIST classifier, 26,000 samples, 1,000 modes.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_metric

WEIGHTS = Path(__file__).parent / "weights" / "digits_classifier.safetensors"
MNIST_WEIGHTS = Path(__file__).parent / "weights" / "mnist_classifier.safetensors"


# ----------------------------------------------------------------------------- 2D mixtures
@register_metric("modes-2d")
def toy2d_modes(samples: torch.Tensor, centers: torch.Tensor, std: float, min_count: int = 1) -> dict:
    """Modes covered and high-quality share of 2D samples (N, 2) against mixture ``centers`` (K, 2)."""
    samples, centers = samples.detach().float().cpu(), centers.float().cpu()
    dist = torch.cdist(samples, centers)  # (N, K)
    d_min, nearest = dist.min(1)
    hq = d_min <= 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(centers))
    return {"modes_covered": int((counts >= min_count).sum()), "num_modes": len(centers),
            "high_quality_share": float(hq.float().mean()), "per_mode_high_quality": counts.tolist(),
            "num_samples": len(samples)}


# ----------------------------------------------------------------------------- digits classifier
class DigitClassifier(nn.Module):
    """A small CNN for 8x8 digits in [-1, 1]; other resolutions are area-resized to 8x8 first."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        return self.net(x)


def digits_split(seed: int = 0, held_out: float = 0.2):
    """The fixed train / held-out split of the 1,797 built-in digits used for the classifier."""
    from ..data.builtin.digits import load_digits_8x8

    imgs, labels = load_digits_8x8()
    x = torch.from_numpy(imgs).float().div(127.5).sub(1).unsqueeze(1)
    y = torch.from_numpy(labels)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(x) * held_out))
    return (x[perm[n_test:]], y[perm[n_test:]]), (x[perm[:n_test]], y[perm[:n_test]])


def _roundtrip(x: torch.Tensor, res: int) -> torch.Tensor:
    """Bilinear upscale then area downscale: what a generated image at ``res`` looks like to the classifier."""
    up = F.interpolate(x, size=res, mode="bilinear", align_corners=False)
    return F.adaptive_avg_pool2d(up, 8)


def train_digit_classifier(seed: int = 0, epochs: int = 60) -> tuple[DigitClassifier, float]:
    """Trains the classifier on the training split (with shifts and resize round trips); returns (model, held-out acc)."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = digits_split()
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            xb, yb = xtr[perm[i:i + 64]], ytr[perm[i:i + 64]]
            if torch.rand(()) < 0.5:
                xb = _roundtrip(xb, 32)
            shift = torch.randint(-1, 2, (2,))
            xb = torch.roll(xb, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3)) if torch.rand(()) < 0.3 else xb
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    acc = held_out_accuracy(model)
    return model, acc


@torch.no_grad()
def held_out_accuracy(model: nn.Module, res: int = 8) -> float:
    (_, _), (xte, yte) = digits_split()
    model.eval()
    x = xte if res == 8 else F.interpolate(xte, size=res, mode="bilinear", align_corners=False)
    return float((model(x).argmax(1) == yte).float().mean())


def _shipped(cls: type[nn.Module], path: Path) -> nn.Module:
    """A shipped classifier from its safetensors file, in eval mode and frozen."""
    from safetensors.torch import load_file

    model = cls()
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False)


@torch.no_grad()
def _probs(model: nn.Module, images: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([F.softmax(model(x.float().cpu()), 1) for x in images.split(batch)])


@functools.lru_cache(maxsize=1)
def digit_classifier() -> DigitClassifier:
    """The shipped classifier (``metrics/weights/digits_classifier.safetensors``), in eval mode."""
    return _shipped(DigitClassifier, WEIGHTS)


def classify_digits(images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Class probabilities (N, 10) for single-channel images (N, 1, H, W) in [-1, 1]."""
    return _probs(digit_classifier(), images, batch)


def _recognised(images: torch.Tensor, classify, threshold: float) -> dict:
    """Share of (N, C, H, W) images (grey: the channel mean) read with p >= threshold, and the classes among them."""
    probs = classify(images if images.shape[1] == 1 else images.mean(1, keepdim=True))
    conf, cls = probs.max(1)
    ok = conf >= threshold
    counts = torch.bincount(cls[ok], minlength=probs.shape[1])
    return {"recognised_share": float(ok.float().mean()), "classes_covered": int((counts > 0).sum()),
            "per_class": counts.tolist(), "num_samples": len(probs), "threshold": threshold}


def _stacked(images: torch.Tensor, classify, num_modes: int = 1000) -> dict:
    """Each RGB channel classified on its own: modes covered and KL(p || uniform) over the 1,000."""
    n = images.shape[0]
    digits = [classify(images[:, k:k + 1]).argmax(1) for k in range(3)]
    code = digits[0] * 100 + digits[1] * 10 + digits[2]
    p = torch.bincount(code, minlength=num_modes).double() / n
    nz = p > 0
    kl = float((p[nz] * (p[nz] * num_modes).log()).sum())  # KL(p || U) = sum p log(p / (1/1000)); VEEGAN sec. 5.2
    return {"modes_covered": int(nz.sum()), "num_modes": num_modes, "kl_to_uniform": kl, "num_samples": n}


@register_metric("modes-digits")
def digits_modes(images: torch.Tensor, threshold: float = 0.9) -> dict:
    """Confidently recognised share and classes covered for generated digits (N, 1, H, W)."""
    return _recognised(images, classify_digits, threshold)


@register_metric("modes-stacked-digits")
def stacked_digits_modes(images: torch.Tensor, num_modes: int = 1000) -> dict:
    """Stacked MNIST protocol: modes covered out of 1,000 and KL(p_gen || uniform) for (N, 3, H, W) samples."""
    return _stacked(images, classify_digits, num_modes)


# ----------------------------------------------------------------------------- MNIST classifier
class MnistClassifier(nn.Module):
    """A small CNN for 28x28 MNIST digits in [-1, 1] (99.4% on the test split); other sizes are
    resized to 28 px first (bilinear, antialiased when shrinking)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 3
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 9, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(to_28(x))


def to_28(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) resized to 28 px as the MNIST classifier reads it."""
    if x.shape[-1] == 28:
        return x
    return F.interpolate(x, size=28, mode="bilinear", align_corners=False, antialias=x.shape[-1] > 28)


def mnist_tensors(path: str = "") -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """MNIST's train and test splits at 28 px in [-1, 1] (``builtin:mnist``'s files)."""
    from ..data.builtin.mnist import mnist

    out = []
    for split in ("train", "test"):
        ds = mnist(path=path, split=split, res=28)
        out.append((ds.data.float().div(127.5).sub(1), ds.labels))
    return out[0], out[1]


def _res_roundtrip(x: torch.Tensor, res: int) -> torch.Tensor:
    """A 28 px digit shrunk to ``res`` and read back at 28, as a generator trained at ``res`` is read."""
    return to_28(F.interpolate(x, size=res, mode="bilinear", align_corners=False, antialias=res < 28))


@torch.no_grad()
def mnist_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, res: int = 28) -> float:
    model.eval()
    xs = x if res == 28 else _res_roundtrip(x, res)
    return float(torch.cat([model(b).argmax(1) for b in xs.split(1000)]).eq(y).float().mean())


def train_mnist_classifier(train, test, seed: int = 0, epochs: int = 4) -> tuple[MnistClassifier, dict]:
    """Trains on MNIST's 60,000 training digits with shifts of up to 2 px and, for half the batches,
    a round trip through 16 or 32 px; returns the model and its test accuracy at 28, 16 and 32 px."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = train, test
    model = MnistClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * ((len(xtr) + 127) // 128))
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            xb, yb = xtr[perm[i:i + 128]], ytr[perm[i:i + 128]]
            if torch.rand(()) < 0.5:
                xb = _res_roundtrip(xb, 16 if torch.rand(()) < 0.5 else 32)
            shift = torch.randint(-2, 3, (2,))
            xb = torch.roll(xb, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval(), {f"test_accuracy_{r}px": mnist_accuracy(model, xte, yte, r) for r in (28, 16, 32)}


@functools.lru_cache(maxsize=1)
def mnist_classifier() -> MnistClassifier:
    """The shipped MNIST classifier (``metrics/weights/mnist_classifier.safetensors``), in eval mode."""
    return _shipped(MnistClassifier, MNIST_WEIGHTS)


def classify_mnist(images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Class probabilities (N, 10) for single-channel images (N, 1, H, W) in [-1, 1]."""
    return _probs(mnist_classifier(), images, batch)


@register_metric("modes-mnist")
def mnist_modes(images: torch.Tensor, threshold: float = 0.9) -> dict:
    """Confidently recognised share and classes covered for generated MNIST digits (N, 1, H, W)."""
    return _recognised(images, classify_mnist, threshold)


@register_metric("modes-stacked-mnist")
def stacked_mnist_modes(images: torch.Tensor, num_modes: int = 1000) -> dict:
    """Stacked MNIST (VEEGAN section 5.2, PacGAN section 5): modes covered out of 1,000 and
    KL(p_gen || uniform), each channel read by the MNIST classifier."""
    return _stacked(images, classify_mnist, num_modes)


# ----------------------------------------------------------------------------- shapes classifier
SHAPES_WEIGHTS = Path(__file__).parent / "weights" / "shapes_classifier.safetensors"


class ShapesClassifier(nn.Module):
    """A small CNN for built-in ``shapes`` images (RGB in [-1, 1], resized to 32 px) with two heads:
    shape (4 classes + "none") and colour (6 classes + "none"). The "none" class is trained on
    noise, smooth noise, empty backgrounds, blends of two images and (since version 2, in the last
    layer) frames filled by one shape colour, so that garbage is not confidently called a shape."""

    num_shapes, num_colours = 5, 7  # the last class of each head is "none"

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4
            nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, self.num_shapes + self.num_colours))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] > 32:
            x = F.adaptive_avg_pool2d(x, 32)
        elif x.shape[-1] < 32:
            x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
        out = self.net(x)
        return out[:, :self.num_shapes], out[:, self.num_shapes:]


def _shapes_tensors(n: int, seed: int):
    from ..data.builtin.shapes import shapes

    ds = shapes(res=32, n=n, seed=seed)
    x = ds.data.float().div(127.5).sub(1)
    f = ds.meta["factors"]
    return x, torch.from_numpy(f["shape"]).long(), torch.from_numpy(f["colour"]).long()


def _negatives(x: torch.Tensor) -> torch.Tensor:
    """Images that show no single clean shape: uniform noise, smooth noise, backgrounds, blends."""
    n = len(x) // 4
    from ..data.builtin.shapes import BACKGROUNDS

    bg = torch.tensor(list(BACKGROUNDS.values()), dtype=torch.float32).div(127.5).sub(1)
    uniform = torch.rand(n, 3, 32, 32) * 2 - 1
    smooth = F.interpolate(torch.rand(n, 3, 4, 4) * 2 - 1, size=32, mode="bilinear", align_corners=False)
    empty = bg[torch.randint(0, len(bg), (n,))].view(n, 3, 1, 1).expand(n, 3, 32, 32) + 0.05 * torch.randn(n, 3, 32, 32)
    i, j = torch.randint(0, len(x), (2, n))
    blend = 0.5 * (x[i] + x[j])
    return torch.cat([uniform, smooth, empty, blend]).clamp(-1, 1)


def _with_none(x: torch.Tensor, ys: torch.Tensor, yc: torch.Tensor, neg: torch.Tensor):
    """The training set with ``neg`` appended, labelled "none" (the last class) in both heads."""
    return (torch.cat([x, neg]), torch.cat([ys, torch.full((len(neg),), ShapesClassifier.num_shapes - 1)]),
            torch.cat([yc, torch.full((len(neg),), ShapesClassifier.num_colours - 1)]))


def _fields(n: int, generator: torch.Generator) -> torch.Tensor:
    """Frames filled by one shape colour, flat or shaded by smooth noise: no shape on a background.
    The first classifier, which never saw them, called half of the flat ones a large square of
    that colour, and a collapsed generator drew nothing else (docs/metrics.md)."""
    from ..data.builtin.shapes import COLOURS

    col = torch.tensor(list(COLOURS.values()), dtype=torch.float32).div(127.5).sub(1)
    base = col[torch.randint(0, len(col), (n,), generator=generator)].view(n, 3, 1, 1)
    shade = F.interpolate(torch.rand(n, 1, 4, 4, generator=generator) * 2 - 1, size=32, mode="bilinear",
                          align_corners=False)
    amp = torch.rand(n, 1, 1, 1, generator=generator) * 0.8
    noise = 0.03 * torch.randn(n, 3, 32, 32, generator=generator)
    return (base + amp * shade + noise).clamp(-1, 1)


def retrain_shapes_head(model: "ShapesClassifier", seed: int = 0, epochs: int = 10,
                        n: int = 16000) -> tuple["ShapesClassifier", dict]:
    """Trains ``model``'s last layer afresh (seeded) on the features of the first classifier's
    training set plus n/4 colour fields (:func:`_fields`) as "none". Every layer before it is kept,
    so the features behind fd-shapes, kd-shapes, precision/recall and the PPL distance do not change.
    Returns the model and the held-out accuracy."""
    torch.manual_seed(seed)
    x, ys, yc = _shapes_tensors(n, 1000)
    x, ys, yc = _with_none(x, ys, yc, torch.cat([_negatives(x), _fields(n // 4, torch.Generator().manual_seed(seed + 1))]))
    model = model.eval().requires_grad_(False)
    with torch.no_grad():
        h = torch.cat([model.net[:-1](b) for b in x.split(1000)])
    head = nn.Linear(h.shape[1], model.num_shapes + model.num_colours)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(h))
        for i in range(0, len(h), 128):
            idx = perm[i:i + 128]
            out = head(h[idx])
            loss = (F.cross_entropy(out[:, :model.num_shapes], ys[idx])
                    + F.cross_entropy(out[:, model.num_shapes:], yc[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.net[-1].load_state_dict(head.state_dict())
    return model, shapes_held_out_accuracy(model)


def train_shapes_classifier(seed: int = 0, epochs: int = 4, n: int = 16000,
                            augment=None) -> tuple[ShapesClassifier, dict]:
    """Trains on ``n`` shapes (seed 1000) plus n/4 "none" images and reports accuracy on 2,000
    held-out shapes (seed 2000). ``augment(batch)``, when given, transforms each training batch
    (the shipped weights use none)."""
    torch.manual_seed(seed)
    x, ys, yc = _shapes_tensors(n, 1000)
    x, ys, yc = _with_none(x, ys, yc, _negatives(x))
    n = len(x)
    model = ShapesClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 128):
            idx = perm[i:i + 128]
            ps, pc = model(x[idx] if augment is None else augment(x[idx]))
            loss = F.cross_entropy(ps, ys[idx]) + F.cross_entropy(pc, yc[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), shapes_held_out_accuracy(model)


@torch.no_grad()
def shapes_held_out_accuracy(model: nn.Module) -> dict:
    x, ys, yc = _shapes_tensors(2000, 2000)
    ps, pc = model.eval()(x)
    return {"shape": float((ps.argmax(1) == ys).float().mean()), "colour": float((pc.argmax(1) == yc).float().mean())}


@functools.lru_cache(maxsize=1)
def shapes_classifier() -> ShapesClassifier:
    """The shipped classifier (``metrics/weights/shapes_classifier.safetensors``), in eval mode."""
    return _shipped(ShapesClassifier, SHAPES_WEIGHTS)


@register_metric("modes-shapes")
@torch.no_grad()
def shapes_modes(images: torch.Tensor, threshold: float = 0.9, batch: int = 500,
                 model: ShapesClassifier | None = None) -> dict:
    """For generated shapes (N, 3, H, W): the share whose shape and colour are both recognised with
    probability >= ``threshold``, and how many shapes, colours and (shape, colour) pairs appear;
    by the shipped classifier unless ``model`` is given."""
    model = shapes_classifier() if model is None else model
    ps, pc = zip(*(model(x.float().cpu()) for x in images.split(batch)))
    ps, pc = F.softmax(torch.cat(ps), 1), F.softmax(torch.cat(pc), 1)
    (cs, s), (cc, c) = ps.max(1), pc.max(1)
    n_s, n_c = model.num_shapes - 1, model.num_colours - 1  # without "none"
    ok = (cs >= threshold) & (cc >= threshold) & (s < n_s) & (c < n_c)
    pairs = torch.bincount(s[ok] * n_c + c[ok], minlength=n_s * n_c)
    return {"recognised_share": float(ok.float().mean()),
            "shapes_covered": int((pairs.view(n_s, n_c).sum(1) > 0).sum()),
            "colours_covered": int((pairs.view(n_s, n_c).sum(0) > 0).sum()),
            "pairs_covered": int((pairs > 0).sum()), "num_pairs": len(pairs), "per_pair": pairs.tolist(),
            "num_samples": len(images), "threshold": threshold}


# ----------------------------------------------------------------------------- dispatch
DEFAULT_SAMPLES = {"toy2d": 2500, "digits": 5000, "stacked-digits": 26000, "shapes": 5000, "mnist": 5000,
                   "stacked-mnist": 26000}


@torch.no_grad()
def generate(G: nn.Module, n: int, device=None, batch: int = 500, seed: int = 123, sampler=None) -> torch.Tensor:
    """``n`` samples of ``G`` on the CPU: ``sampler(b, generator)`` per batch, or G of seeded z."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        if sampler is not None:
            out.append(sampler(min(batch, n - i), g).cpu())
            continue
        z = torch.randn(min(batch, n - i), G.z_dim, generator=g)
        out.append(G(z.to(device or "cpu")).cpu())
    return torch.cat(out)


def evaluate_generator(G: nn.Module, dataset, n: int | None = None, device=None, sampler=None) -> dict:
    """Runs the mode metric that fits ``dataset.mode_metric`` on ``n`` samples of ``G`` (drawn by
    ``sampler(n, generator)`` when given: the family's, see :meth:`gankit.models.family.Family.sampler`)."""
    kind = dataset.mode_metric
    if kind is None:
        raise ValueError(f"dataset {dataset.name} has no mode metric")
    n = n or DEFAULT_SAMPLES[kind]
    was_training = G.training
    G.eval()
    samples = generate(G, n, device, sampler=sampler)
    G.train(was_training)
    if kind == "toy2d":
        res = toy2d_modes(samples, dataset.meta["centers"], dataset.meta["std"])
    elif kind == "digits":
        res = digits_modes(samples)
    elif kind == "shapes":
        res = shapes_modes(samples)
    elif kind == "mnist":
        res = mnist_modes(samples)
    elif kind == "stacked-mnist":
        res = stacked_mnist_modes(samples)
    else:
        res = stacked_digits_modes(samples)
    return {"metric": f"modes-{kind}", **res}


