"""Exceptions raised by noharm.

Every error a user can trigger is a subclass of :class:`NoharmError`, which is
also a :class:`ValueError`, so ``except ValueError`` keeps working.  Messages
name the column, group or value at fault and say how to fix it.
"""
from __future__ import annotations


class NoharmError(ValueError):
    """Base class of every error noharm raises on bad input."""


class NotNumericError(NoharmError, TypeError):
    """Input that should be numbers holds something else (also a ``TypeError``)."""


class MissingValuesError(NoharmError):
    """X, y or the groups contain missing values."""


class TargetError(NoharmError):
    """The target is not binary, or has the wrong shape."""


class ColumnNotFoundError(NoharmError):
    """A named target or group column does not exist."""


class LengthMismatchError(NoharmError):
    """X, y and the groups have different numbers of rows."""


class GroupError(NoharmError):
    """A subgroup is absent, too small, single-class or unseen."""


class NotFittedError(NoharmError):
    """The estimator is used before ``fit``.  The models raise
    :class:`noharm.models.base.NotFittedError`, which is also scikit-learn's (this module
    does not import scikit-learn, so that ``noharm audit bounds`` starts fast)."""


class DatasetError(NoharmError):
    """An unknown dataset name, or a data file that cannot be read."""


class DataNotFoundError(DatasetError):
    """A data file is missing and could not be downloaded."""


class ChecksumError(DatasetError):
    """A data file does not match its published sha256."""


class ConfigError(NoharmError):
    """A parameter or option has an invalid value."""


class PersistenceError(NoharmError):
    """A saved model directory is missing, corrupt or from another version."""


class FeatureMismatchError(NoharmError):
    """X has other features than the ones a model was fitted with."""
