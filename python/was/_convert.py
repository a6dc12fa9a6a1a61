"""What every entry point accepts: policies and modes as objects or text,
non-negative integers, and the errors a Python user expects for the rest."""

import torch

from . import _C


def as_policy(policy):
    if isinstance(policy, _C.Policy):
        return policy
    if isinstance(policy, str):
        return _C.Policy.parse(policy)
    raise TypeError(f"policy must be a was.Policy or its text (e.g. 'CT'), not {type(policy).__name__}")


def as_mode(mode):
    if isinstance(mode, _C.Mode):
        return mode
    if isinstance(mode, str):
        return _C.Mode.parse(mode)
    raise TypeError(f"mode must be a was.Mode or its text ('aom', 'dom:SEED'), not {type(mode).__name__}")


def non_negative_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value}")
    return value


def as_tensor(value, what):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, not {type(value).__name__}")
    return value


def images_of(batch):
    """The images of a batch given as a tensor or as (images, labels, ...)."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    return as_tensor(batch, "a batch (a tensor, or a tuple whose first element is one)")
