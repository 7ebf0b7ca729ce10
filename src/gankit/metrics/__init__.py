"""Evaluation metrics, each registered by name with a streaming class and a function.

========================  ===============================================  ============================
name                      streaming class                                  function
========================  ===============================================  ============================
``fid``                   :class:`~gankit.metrics.fid.FID`                 :func:`frechet_distance`
``kid``                   :class:`~gankit.metrics.kid.KID`                 :func:`kid`
``is``                    :class:`~gankit.metrics.inception_score.InceptionScore`  :func:`inception_score`
``pr``                    :class:`~gankit.metrics.precision_recall.PrecisionRecall`  :func:`precision_recall`
``ppl-z`` ``ppl-w`` ...   :class:`~gankit.metrics.ppl.PerceptualPathLength`  :func:`path_length_samples`
``separability``          :class:`~gankit.metrics.separability.LinearSeparability`  :func:`separability_scores`
``modes-*``               (functions)                                      :mod:`gankit.metrics.modes`
========================  ===============================================  ============================

:func:`evaluate` runs any of them on a generator (``gankit eval``). Example::

    >>> import gankit, torch
    >>> from gankit.metrics import FID, build_extractor
    >>> fid = FID(build_extractor("shapes"))                 # doctest: +SKIP
    >>> fid.update(real_uint8, real=True); fid.update(G(torch.randn(64, G.z_dim)))  # doctest: +SKIP
    >>> fid.compute()                                        # doctest: +SKIP
    {'fd-shapes': 3.21}
"""
from ..registry import METRICS
from . import modes  # noqa: F401
from .evaluate import evaluate
from .features import build_extractor, list_extractors
from .fid import FID, frechet_distance
from .inception_score import InceptionScore, inception_score
from .kid import KID, kid
from .perceptual import build_distance
from .ppl import PerceptualPathLength, path_length_samples
from .precision_recall import PrecisionRecall, precision_recall
from .separability import LinearSeparability, separability_scores


def list_metrics() -> list[str]:
    return METRICS.names()


__all__ = ["list_metrics", "modes", "evaluate", "build_extractor", "list_extractors", "build_distance",
           "FID", "frechet_distance", "KID", "kid", "InceptionScore", "inception_score", "PrecisionRecall",
           "precision_recall", "PerceptualPathLength", "path_length_samples", "LinearSeparability",
           "separability_scores"]
