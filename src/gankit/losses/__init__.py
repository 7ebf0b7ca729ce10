"""Adversarial losses (pure functions of discriminator outputs) and regularizers."""
from .adversarial import (LOSSES, GanMode, Loss, d_loss, g_loss, halved_d_loss, list_losses, target_g_loss,
                          widen)
from .regularizers import clip_weights, gradient_penalty, path_length_penalty, path_lengths, r1_penalty

__all__ = ["LOSSES", "GanMode", "Loss", "d_loss", "g_loss", "halved_d_loss", "list_losses", "target_g_loss", "clip_weights", "gradient_penalty", "path_length_penalty", "path_lengths",
           "r1_penalty", "widen"]
