"""A network of the C++ zoo as a torch.nn.Module: a run of `was train` (or a
new one), its shadow weights, modes and per-mode BatchNorm statistics.

The parameters and buffers are the C++ network's own tensors, so a Python
optimiser trains the network the CLI evaluates, and `was.save` writes a
checkpoint the CLI reads."""

import warnings

import torch
from torch import nn

from . import _C
from ._convert import as_mode, images_of, non_negative_int
from .shadow import _TrainingSteps

_TRAINING_BATCHNORM = "train"


class RunShadow(_TrainingSteps):
    """The shadow weights of a zoo model, with the API of was.ShadowWeights."""

    def __init__(self, run, first_step, weight_versions):
        self._run = run
        self._weight_versions = weight_versions
        self.applied = None  # (mode key, per-mode BN, W versions) the C++ network computes with
        self._mode = _C.Mode.aom()
        self._use_mode_batchnorm = True
        _TrainingSteps.__init__(self, first_step)

    @property
    def policy(self):
        return self._run.policy

    @property
    def seed(self):
        return self._run.seed

    @property
    def enabled(self):
        return self._run.num_layers() > 0

    def layers(self):
        return [self._run.layer(i) for i in range(self._run.num_layers())]

    @property
    def mode(self):
        return self._mode

    def use_mode(self, mode, use_mode_batchnorm=True):
        mode = as_mode(mode)
        if mode.is_dom and not self.enabled:
            raise ValueError("this model has no transformed convolution (policy none): it has no DOM (use aom)")
        self._mode = mode
        self._use_mode_batchnorm = use_mode_batchnorm
        self._apply_mode()

    def _apply_mode(self):
        """Sets the C++ network to the mode (its DOM weights drawn from the current W)."""
        wanted = (self._mode.key(), self._use_mode_batchnorm, self._weight_versions())
        if self.applied != wanted:
            self._run.set_mode(self._mode, self._use_mode_batchnorm)
            self.applied = wanted

    def active_weights(self):
        return self._run.active_weights()

    def sparsity(self, mode):
        return self._run.sparsity(as_mode(mode))

    def batchnorm_keys(self):
        return self._run.batchnorm_keys()

    def __repr__(self):
        return f"<was zoo shadow weights {self._run.policy.to_string()} seed {self.seed}: {self._run.num_layers()} transformed; mode {self._mode.key()}>"


class Model(nn.Module):
    """A zoo network (was.load, was.models.create). forward takes normalised
    images; predict takes uint8 images and normalises them as the run did."""

    def __init__(self, run):
        super().__init__()
        self._run = run
        self.shadow = RunShadow(run, run.step, self._versions)
        # The C++ tensors themselves, so optimisers, state_dict and
        # load_state_dict act on the network the library runs.
        for name, t in run.named_parameters():
            self._parameters[name] = t
        for name, t in run.named_buffers():
            self._buffers[name] = t
        run.train(True)
        # The W each mode's stored BatchNorm statistics were estimated with.
        self._batchnorm_weights = {key: self._versions() for key in run.batchnorm_keys()}

    # --- what it is -----------------------------------------------------------------
    @property
    def model_name(self):
        return self._run.model_name

    @property
    def num_classes(self):
        return self._run.num_classes

    @property
    def image_size(self):
        return self._run.image_size

    @property
    def class_names(self):
        return self._run.class_names

    @property
    def normalization(self):
        return (self._run.mean, self._run.std)

    @property
    def dataset(self):
        return self._run.dataset

    def record(self):
        """The run record (as `was info` shows it), as a dict."""
        import json

        return json.loads(self._run.record_json())

    # --- running --------------------------------------------------------------------
    def _versions(self):
        return tuple(p._version for p in self._parameters.values())

    def forward(self, x):
        if self.training:
            self._run.begin_training_step(self.shadow._advance_step())
        else:
            self.shadow._apply_mode()  # again after W changed: DOM is drawn from the current W
        return self._run.forward(x)

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"train takes a bool, not {type(mode).__name__}")
        if mode == self.training:
            return self
        super().train(mode)
        self.shadow.applied = None
        if not mode:
            # What training accumulated, for the modes without statistics of their own.
            self._run.store_batchnorm(_TRAINING_BATCHNORM)
        elif _TRAINING_BATCHNORM in self._run.batchnorm_keys():
            # Evaluation may have put a mode's statistics in the buffers.
            self._run.restore_batchnorm(_TRAINING_BATCHNORM)
        self._run.train(mode)
        return self

    def normalize(self, images):
        """uint8 images [N, C, H, W] as the network's input (the run's normalisation)."""
        device = next(iter(self._parameters.values())).device
        return _C.normalize(images, self._run.mean, self._run.std, str(device))

    @torch.no_grad()
    def predict(self, images):
        """Logits for uint8 images, in evaluation (the current mode)."""
        was_training = self.training
        self.eval()
        try:
            return self(self.normalize(images))
        finally:
            self.train(was_training)

    def _apply(self, fn, *args, **kwargs):
        # In place (set_data), so that the C++ network keeps these very tensors.
        with torch.no_grad():
            for t in list(self._parameters.values()) + list(self._buffers.values()):
                moved = fn(t)
                if moved is not t:
                    t.data = moved
                if t.grad is not None:
                    grad = fn(t.grad)
                    if grad is not t.grad:
                        t.grad.data = grad
        self._run.to(str(next(iter(self._parameters.values())).device))
        self.shadow.applied = None
        return self

    def _reestimate_batchnorm(self, mode, batches):
        images = [images_of(b) for b in batches]
        if not images:
            raise ValueError("re-estimating BatchNorm needs at least one batch (batches was empty)")
        if self.training:
            self._run.store_batchnorm(_TRAINING_BATCHNORM)
        self._run.reestimate_batchnorm(mode, len(images), lambda i: images[i])
        self._batchnorm_weights[mode.key()] = self._versions()
        self.shadow._mode = mode
        self.shadow._use_mode_batchnorm = True
        self.shadow.applied = None
        if self.training:
            self._run.restore_batchnorm(_TRAINING_BATCHNORM)
            self._run.train(True)
        return len(images)

    def extra_repr(self):
        return f"{self._run.model_name}, {self._run.num_classes} classes, policy {self._run.policy}"

    def __deepcopy__(self, memo):
        raise TypeError("a was model cannot be deep-copied (its network is C++): was.load the run again")


def load(path, device="cpu"):
    """A run of `was train` (its directory or a checkpoint file) as a was.Model, in eval()."""
    model = Model(_C.Run.load(str(path), device))
    return model.eval()


def save(model, path):
    """Writes `model` as a checkpoint `was eval`, `was export` and `was train --resume` read
    (W, BatchNorm statistics of every mode, the run record with the step reached;
    no optimiser state: the optimiser is Python's)."""
    if not isinstance(model, Model):
        raise TypeError(
            "was.save writes zoo models (was.load, was.models.create); for any other module use "
            "torch.save(module.state_dict(), path)"
        )
    now = model._versions()
    stale = [k for k, v in model._batchnorm_weights.items() if k != _TRAINING_BATCHNORM and v != now]
    if stale:
        warnings.warn(
            f"the BatchNorm statistics of {', '.join(stale)} were estimated before W last changed: "
            "re-estimate them (was.reestimate_batchnorm) before saving a finished model, "
            "or `was check` will find them stale",
            UserWarning,
            stacklevel=2,
        )
    model._run.step = model.shadow.next_step
    model._run.save(str(path))


def create(name, num_classes=10, in_channels=3, image_size=32, policy="none", seed=0, normalization=None):
    """A new zoo network (`was models` lists them), initialised from torch's generator."""
    from ._convert import as_policy

    mean, std = ([], []) if normalization is None else (list(normalization[0]), list(normalization[1]))
    run = _C.Run.create(name, num_classes, in_channels, image_size, as_policy(policy), non_negative_int(seed, "seed"), mean, std)
    return Model(run)
