"""Training recipes shared by several families: the alternating adversarial phases, the StyleGAN
recipe and the Wasserstein families' data handling. A family's own file holds that family; the
contract lives in :mod:`gankit.models.family`."""
from .adversarial import adversarial_phases, g_slots

__all__ = ["adversarial_phases", "g_slots"]
