"""Inference modules: exports of `was export`, and compact DOM, whose sparse
convolutions run as the smaller dense convolutions `was predict` runs."""

import copy

import torch
from torch import nn

from . import _C
from ._convert import as_mode, as_tensor


class InferenceModel(nn.Module):
    """One mode of a zoo network, ready to predict (was.load_inference, was.compact)."""

    def __init__(self, model):
        super().__init__()
        self._im = model
        for name, t in model.named_parameters():
            self._parameters[name] = t
        for name, t in model.named_buffers():
            self._buffers[name] = t
        self.requires_grad_(False)
        self.eval()

    mode = property(lambda self: self._im.mode)
    policy = property(lambda self: self._im.policy)
    class_names = property(lambda self: self._im.class_names)
    normalization = property(lambda self: (self._im.mean, self._im.std))
    folded = property(lambda self: self._im.folded)
    compacted = property(lambda self: list(self._im.compacted), doc="'layer: 3x3 -> 2x2' per compacted convolution")
    dense = property(lambda self: list(self._im.dense), doc="transformed-looking layers left dense, and why")

    def use_channels_last(self):
        """Runs NHWC from now on (faster for depthwise convolutions; the same outputs up to summation order)."""
        self._im.use_channels_last()
        return self

    def forward(self, x):
        return self._im.forward(as_tensor(x, "the input"))

    def predict(self, images):
        """Logits for uint8 images [N, C, H, W], normalised as the run was."""
        return self._im.predict(as_tensor(images, "images"))

    def _apply(self, fn, *args, **kwargs):
        raise TypeError("an inference model stays on the device it was loaded on: load it again with device=...")

    def extra_repr(self):
        return f"{self._im.model_name}, mode {self._im.mode.key()}, {len(self._im.compacted)} convolutions compacted"


def load_inference(path, device="cpu", compact=True):
    """Reads a `was export` file; compact DOM layers run as smaller convolutions unless compact=False."""
    return InferenceModel(_C.load_inference(str(path), device, compact))


class CompactConv2d(nn.Module):
    """A convolution whose DOM weight is zero outside a window, run as that
    window (inference only): the C++ library's plan, as `was predict` runs it."""

    def __init__(self, conv, weight):
        super().__init__()
        bias = None if conv.bias is None else conv.bias.detach()
        self._impl = _C.CompactConv(weight.detach(), bias, list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
        self.description = self._impl.describe()
        self.compacted = self._impl.compacted

    def forward(self, x):
        return self._impl.forward(x)

    def use_channels_last(self):
        self._impl.to_channels_last()

    def extra_repr(self):
        return self.description


class CompactModel(nn.Module):
    """A copy of a Python model in one DOM, its sparse convolutions compacted."""

    def __init__(self, model, mode, compacted, dense):
        super().__init__()
        self.model = model
        self.mode = mode
        self.compacted = compacted
        self.dense = dense

    def forward(self, x):
        return self.model(x)

    def use_channels_last(self):
        for m in self.model.modules():
            if isinstance(m, CompactConv2d):
                m.use_channels_last()
            elif isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        return self

    def train(self, mode=True):
        if mode:
            raise TypeError("a compacted model is for inference only (train the model it came from)")
        return super().train(False)


def _set_submodule(root, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def compact(model, shadow=None, mode="dom"):
    """An inference module of `model` in `mode` whose DOM convolutions run as
    the smaller dense convolutions of their non-zero windows, equal to the dense
    DOM (within 1e-5) and faster by what the taps saved allow.

    For a zoo model (was.load, was.models.create) it is what `was export`
    followed by `was predict` runs; for any other module, a copy of it with
    each compactable convolution replaced by a CompactConv2d."""
    from .model import Model
    from .shadow import ShadowWeights

    mode = as_mode(mode)
    if not mode.is_dom:
        raise ValueError("compact runs a DOM (mode dom or dom:SEED); AOM is the model as it is")
    if isinstance(model, Model):
        if shadow is not None and shadow is not model.shadow:
            raise ValueError("a was model compacts with its own shadow weights: pass shadow=None or model.shadow")
        if not model.shadow.enabled:
            raise ValueError("this model has no transformed convolution (policy none): it has no DOM")
        return InferenceModel(model._run.inference_model(mode, False, True))
    if not isinstance(shadow, ShadowWeights) or shadow.module is not model:
        raise ValueError("shadow must be the was.ShadowWeights attached to this model")
    if not shadow.enabled:
        raise ValueError("this model has no transformed convolution (policy none): it has no DOM")

    previous_mode, was_training = shadow.mode, model.training
    model.eval()
    shadow.use_mode(mode)  # the copy takes this mode's BatchNorm statistics
    try:
        with torch.no_grad():
            weights = shadow.active_weights()
            copied = copy.deepcopy(model)  # a plain module: ShadowWeights does not follow a copy
            names = [layer.name for layer in shadow.layers()]
            compacted, dense = [], []
            for name, weight in zip(names, weights):
                conv = copied.get_submodule(name)
                shape = f"{weight.shape[2]}x{weight.shape[3]}"
                why = None
                if conv.padding_mode != "zeros":
                    why = f"padding mode {conv.padding_mode}"
                elif isinstance(conv.padding, str):
                    why = f"padding '{conv.padding}'"
                if why is None:
                    replacement = CompactConv2d(conv, weight)
                    if replacement.compacted:
                        _set_submodule(copied, name, replacement)
                        compacted.append(f"{name}: {replacement.description}")
                        continue
                    why = replacement.description
                conv.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
                dense.append(f"{name}: {shape} ({why})" if not why.startswith(shape) else f"{name}: {why}")
            for p in copied.parameters():
                p.requires_grad_(False)
    finally:
        shadow.use_mode(previous_mode)
        model.train(was_training)
    result = CompactModel(copied, mode, compacted, dense)
    return result.eval()
