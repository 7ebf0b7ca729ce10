"""User-facing errors.

A :class:`GankitError` carries one sentence that names the thing that is wrong and the fix.
The CLI prints it on one line and exits with code 2, without a traceback.
"""


class GankitError(Exception):
    """An error caused by the user's input (a path, option, dataset or checkpoint)."""


class DataError(GankitError):
    """A dataset that cannot be opened or decoded."""


class ConfigError(GankitError):
    """An unknown family, preset or override, or an invalid value."""


class CheckpointError(GankitError):
    """A missing, corrupt or mismatched checkpoint."""
