"""Multiply-accumulates, counted as the CLI counts them (WAS-SPEC §6)."""

from . import _C
from ._convert import as_mode, as_tensor


def count_macs(model, example_input, shadow=None, mode=None):
    """MACs per image of one forward of `model` (in evaluation) on an input
    shaped like `example_input`: every convolution and linear layer as run,
    a DOM convolution by its non-zero shadow weights only. Returns a
    was.MacCount (conv, linear, total, flops, layers)."""
    from .model import Model

    example_input = as_tensor(example_input, "example_input")
    if example_input.dim() < 2:
        raise ValueError(f"example_input of shape {tuple(example_input.shape)} has no batch dimension")
    if isinstance(model, Model):
        if shadow is not None and shadow is not model.shadow:
            raise ValueError("a was model counts with its own shadow weights: pass shadow=None or model.shadow")
        shadow = model.shadow
    elif shadow is not None and getattr(shadow, "module", None) is not model:
        raise ValueError("shadow must be the was.ShadowWeights attached to this model")
    if mode is not None and shadow is None:
        if as_mode(mode).is_dom:
            raise ValueError("a DOM needs the model's shadow weights: pass shadow=")
    previous_mode = shadow.mode if shadow is not None else None
    was_training = model.training
    model.eval()
    try:
        if mode is not None and shadow is not None:
            shadow.use_mode(mode)
        if isinstance(model, Model):
            shadow._apply_mode()
        sparse = shadow.active_weights() if shadow is not None and shadow.mode.is_dom else []
        shape = [1] + list(example_input.shape[1:])
        return _C.count_macs(lambda x: model(x.to(example_input.dtype)), shape, str(example_input.device), sparse)
    finally:
        if shadow is not None and mode is not None:
            shadow.use_mode(previous_mode)
        model.train(was_training)
