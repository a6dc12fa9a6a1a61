"""The C++ model zoo (`was models`)."""

from . import _C
from .model import create  # noqa: F401  (was.models.create)


def names():
    return _C.model_names()
