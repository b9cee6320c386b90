"""Exceptions raised by aicircle.

Every error aicircle raises on purpose derives from :class:`AicircleError`, so a
caller can catch them all; each also derives from the built-in exception a
Python user would expect (``ValueError`` for a bad value, ``KeyError`` for an
unknown name) so that ordinary ``except`` clauses keep working.
"""


class AicircleError(Exception):
    """Base class of every error aicircle raises on purpose."""


class InvalidInput(AicircleError, ValueError):
    """A value, range or file given by the user is not acceptable."""


class ModelReadError(InvalidInput):
    """A model file is missing, unreadable or not a model PySD can parse."""


class UnsupportedFeature(InvalidInput):
    """The model uses a construct aicircle cannot compile or integrate exactly."""


class UnknownName(AicircleError, KeyError):
    """A variable, parameter, scenario or solver name that does not exist."""

    def __str__(self):
        # KeyError quotes its argument; keep the message readable instead.
        return str(self.args[0]) if self.args else ""


class TargetFileError(InvalidInput):
    """A calibration target file breaks the format of docs/design.md §3."""


class ResourceLimit(InvalidInput):
    """A batch or sample whose estimated memory exceeds the budget, refused before it is allocated."""


class IntegrationError(AicircleError, RuntimeError):
    """A solver gave up before the end of the run."""


class TimeGridWarning(UserWarning):
    """The time grid cannot honour SAVEPER or FINAL TIME exactly (the run goes on)."""


class SampleSizeWarning(UserWarning):
    """A sensitivity sample too small for the number of parameters (the indices are unreliable)."""


class LoopPolarityWarning(UserWarning):
    """A loop named in the model's comments (``R1``, ``B2``) whose letter contradicts its computed polarity."""
