"""Held-out figures of an image-to-image translation with known true targets.

* ``l1``: mean absolute error to the true target, images in [-1, 1] (Isola et al. 2017 train on it;
  Table 1 of pix2pix reports per-pixel accuracies of this kind), beside two baselines: the
  ``identity`` (the input itself as the output) and the ``mean image`` (the mean training target);
* ``psnr``: 10 log10(peak^2 / MSE) with peak-to-peak 2 for [-1, 1] images;
* classifier agreement: the shipped classifier (shapes: shape and colour; digits: the class) on the
  translated image equals its verdict on the true target, beside the chance level (the agreement
  of the true targets with a shuffled copy of themselves). ``undo`` maps an output back to the
  classifier's domain first (digits' negatives: inversion).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Tensor = torch.Tensor


def psnr(fake: Tensor, truth: Tensor) -> float:
    mse = float((fake - truth).square().mean())
    return 10 * math.log10(4.0 / max(mse, 1e-12))  # peak-to-peak 2 in [-1, 1]


def _verdicts(kind: str, x: Tensor) -> dict[str, Tensor]:
    from .modes import digit_classifier, shapes_classifier

    out = {}
    with torch.no_grad():
        if kind == "shapes":
            model = shapes_classifier()
            s, c = zip(*(model(b.float().cpu()) for b in x.split(500)))
            out["shape"], out["colour"] = torch.cat(s).argmax(1), torch.cat(c).argmax(1)
        elif kind == "digits":
            model = digit_classifier()
            out["digit"] = torch.cat([model(b.float().cpu()) for b in x.split(500)]).argmax(1)
    return out


UNDO: dict[str, Callable[[Tensor], Tensor]] = {"invert": lambda x: -x}


def translation_metrics(fake: Tensor, truth: Tensor, source: Tensor, train_mean: Tensor | None = None,
                        classes: str | None = None, undo: str | None = None) -> dict:
    """Figures of ``fake`` (N, C, H, W) against the true targets ``truth``, with baselines from
    ``source`` (the inputs) and ``train_mean`` (the mean training target, (C, H, W))."""
    fake, truth, source = fake.float().cpu(), truth.float().cpu(), source.float().cpu()
    res = {"num_images": len(fake), "l1": float((fake - truth).abs().mean()), "psnr": psnr(fake, truth)}
    if source.shape == truth.shape:
        res["l1_identity"] = float((source - truth).abs().mean())
    mean = train_mean if train_mean is not None else truth.mean(0)
    res["l1_mean_image"] = float((mean.float().cpu().expand_as(truth) - truth).abs().mean())
    if classes:
        back = UNDO[undo] if undo else (lambda x: x)
        got, want = _verdicts(classes, back(fake)), _verdicts(classes, back(truth))
        perm = torch.randperm(len(truth), generator=torch.Generator().manual_seed(0))
        for head in want:
            res[f"{head}_agreement"] = float((got[head] == want[head]).float().mean())
            res[f"{head}_chance"] = float((want[head][perm] == want[head]).float().mean())
    return res
