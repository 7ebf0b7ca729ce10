"""Adversarial losses (pure functions of discriminator outputs) and regularizers."""
from .adversarial import LOSSES, Loss, d_loss, g_loss, list_losses
from .regularizers import clip_weights, gradient_penalty, path_length_penalty, path_lengths, r1_penalty

__all__ = ["LOSSES", "Loss", "d_loss", "g_loss", "list_losses", "clip_weights", "gradient_penalty", "path_length_penalty", "path_lengths",
           "r1_penalty"]
