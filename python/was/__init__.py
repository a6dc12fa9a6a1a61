"""The Weight Augmentation Strategy on the C++ core of `was`.

    import was
    shadow = was.ShadowWeights(model, "CT", seed=0)   # any torch.nn.Module
    ... train with a plain PyTorch loop ...
    shadow.use_mode("dom:0"); model.eval()            # or "aom"

See the README's Python section and examples/python/train_torchvision.py.
"""

import torch  # noqa: F401  (first: the extension's tensors are this torch's)

from . import _C
from ._C import MacCount, Mode, Policy, Sparsity
from .inference import CompactConv2d, CompactModel, InferenceModel, compact, load_inference
from .measure import count_macs
from .model import Model, load, save
from .shadow import ShadowWeights, reestimate_batchnorm
from . import data, models, transforms  # noqa: E402

__all__ = [
    "Policy", "Mode", "ShadowWeights", "reestimate_batchnorm", "count_macs", "compact", "load", "load_inference",
    "save", "Model", "InferenceModel", "CompactModel", "CompactConv2d", "MacCount", "Sparsity", "data", "models",
    "transforms",
]
