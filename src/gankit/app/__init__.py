"""The web demo (``gankit demo``)."""
