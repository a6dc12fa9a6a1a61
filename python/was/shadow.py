"""WAS on any torch.nn.Module: shadow weights for its convolutions, the two
inference modes, and per-mode BatchNorm statistics.

The draws, the transforms and their backward are the C++ library's (the
same code `was train` runs), so the same seed, layer order and step give the
same shadow weights bit for bit."""

import torch
from torch import nn

from . import _C
from ._convert import as_mode, as_policy, images_of, non_negative_int

TRAINING_BATCHNORM = "train"  # the bank key of the statistics training accumulates


class _ConvState:
    """What a convolution under ShadowWeights needs when it runs."""

    __slots__ = ("controller", "index")

    def __init__(self, controller, index):
        self.controller = controller
        self.index = index

    def __deepcopy__(self, memo):
        return None  # a deep copy of the model is a plain model


def _noop_hook(module, inputs):
    return None


class _StepHook:
    """The model's forward pre-hook: counts training steps."""

    def __init__(self, controller):
        self.controller = controller

    def __call__(self, module, inputs):
        if module.training:
            self.controller._begin_training_forward()

    def __deepcopy__(self, memo):
        return _noop_hook


_SHADOW_CLASSES = {}


def _shadow_class(cls):
    """`cls` with a forward that computes with the weight ShadowWeights chooses."""
    if cls not in _SHADOW_CLASSES:

        def forward(self, input):
            state = self.__dict__.get("_was_state")
            if state is None:
                return cls.forward(self, input)
            return self._conv_forward(input, state.controller._weight_of(state.index, self), self.bias)

        _SHADOW_CLASSES[cls] = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})
    return _SHADOW_CLASSES[cls]


def _base_class(cls):
    for base, shadow in _SHADOW_CLASSES.items():
        if shadow is cls:
            return base
    return cls


def _batchnorms(module):
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None
    ]


def _snapshot(batchnorms):
    return [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in batchnorms]


def _restore(batchnorms, snapshot):
    with torch.no_grad():
        for bn, (mean, var, count) in zip(batchnorms, snapshot):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.num_batches_tracked.copy_(count)


class _TrainingSteps:
    """The step whose draws a training forward uses: counted from `first`, one
    per training forward (as `was train` counts), or fixed by the caller."""

    def __init__(self, first):
        self._explicit_step = False
        self._step = first
        self._next_step = first

    def draw_for_training(self, step):
        """Training forwards compute with the draws of `step` from now on, until
        the next call (automatic counting stops)."""
        self._step = non_negative_int(step, "step")
        self._explicit_step = True

    @property
    def step(self):
        """The step whose draws the last (or current) training forward used."""
        return self._step

    @property
    def next_step(self):
        """The step of the next training forward."""
        return self._step if self._explicit_step else self._next_step

    def _advance_step(self):
        if not self._explicit_step:
            self._step = self._next_step
            self._next_step += 1
        return self._step


class ShadowWeights(_TrainingSteps):
    """Applies WAS to every torch.nn.Conv2d of `module` whose kernel is larger
    than 1x1 (grouped and depthwise included), except those named in
    `exclude` or in the policy's exclusions.

    Training: each training forward of `module` computes with fresh shadow
    weights S = T(W) of a step, drawn from the stream (seed, layer, step);
    the gradient reaches W through the transform. Steps count by themselves
    from 0, one per training forward of `module`, as `was train` counts
    them; after draw_for_training(step) they are the caller's.

    Inference (module.eval()): the weights of the mode chosen by
    use_mode(): W (AOM) or a fixed seeded draw (DOM), with that mode's
    BatchNorm statistics when reestimate_batchnorm stored them.

    W stays each convolution's registered `weight`; a paper-family policy
    with a gain adds one parameter `shadow_gain` per transformed convolution
    (create the optimiser after ShadowWeights). A deep copy of the module is
    a plain module; remove() gives the module back as it was.
    """

    def __init__(self, module, policy="CT", seed=0, exclude=()):
        from .model import Model  # a zoo model carries its own controller

        if isinstance(module, Model):
            raise TypeError("a was model has its shadow weights already: use model.shadow")
        if not isinstance(module, nn.Module):
            raise TypeError(f"ShadowWeights needs a torch.nn.Module, not {type(module).__name__}")
        policy = as_policy(policy)
        if isinstance(exclude, str):
            exclude = [exclude]
        exclude = list(exclude)
        if exclude:
            policy = policy.excluding(exclude)
        self.module = module
        self.policy = policy
        self.seed = non_negative_int(seed, "seed")

        convs = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(
                f"{type(module).__name__} has no torch.nn.Conv2d: WAS transforms convolution kernels "
                "(use it on a convolutional network)"
            )
        names = [name for name, _ in convs]
        for name in policy.exclude:
            if name not in names:
                raise ValueError(
                    f"policy excludes '{name}', but the model has no convolution of that name "
                    f"(convolutions of this model: {', '.join(names)})"
                )
        self._layers = []  # _C.ShadowLayer, in module order
        self._convs = []  # the transformed convolutions
        self._plain_convs = []
        for name, conv in convs:
            kh, kw = conv.weight.shape[2], conv.weight.shape[3]
            if policy.empty or name in policy.exclude or (kh == 1 and kw == 1):
                self._plain_convs.append(conv)
                continue
            if conv.__dict__.get("_was_state") is not None:
                raise ValueError(f"convolution '{name}' is under another ShadowWeights already (remove() that one first)")
            base = _base_class(type(conv))
            if base.forward is not nn.Conv2d.forward:
                raise ValueError(
                    f"convolution '{name}' ({base.__name__}) has a forward of its own, which WAS cannot give "
                    f"shadow weights (exclude it: exclude=['{name}'])"
                )
            self._convs.append(conv)
        for index, conv in enumerate(self._convs):
            name = names[[c for _, c in convs].index(conv)]
            gain = None
            if policy.gain:
                gain = conv._parameters.get("shadow_gain")
                if gain is None:
                    # U[0, 1) from torch's generator, as the C++ layers (and the released code) start it.
                    w = conv.weight
                    gain = nn.Parameter(torch.rand((), dtype=w.dtype, device=w.device))
                    conv.register_parameter("shadow_gain", gain)
            self._layers.append(_C.ShadowLayer(name, index, conv.weight, gain, policy))
        for index, conv in enumerate(self._convs):
            conv.__class__ = _shadow_class(_base_class(type(conv)))
            conv._was_state = _ConvState(self, index)
        self._hook = module.register_forward_pre_hook(_StepHook(self))

        self._mode = _C.Mode.aom()
        self._dom = [None] * len(self._layers)  # (what it was computed from, DOM weight)
        _TrainingSteps.__init__(self, 0)
        self._batchnorms = _batchnorms(module)
        self._bank = {}
        self._active_bn = TRAINING_BATCHNORM

    # --- what it transforms ---------------------------------------------------------
    @property
    def enabled(self):
        return bool(self._layers)

    def layers(self):
        """The transformed convolutions as the C++ layers that draw for them."""
        return [self._layer(i, conv) for i, conv in enumerate(self._convs)]

    def _layer(self, index, conv):
        layer = self._layers[index]
        gain = conv._parameters.get("shadow_gain") if self.policy.gain else None
        if layer.plain_weight is not conv.weight or (gain is not None and layer.gain is not gain):
            # W was replaced (not updated in place): draw for the new tensor.
            layer = _C.ShadowLayer(layer.name, index, conv.weight, gain, self.policy)
            self._layers[index] = layer
        return layer

    def _begin_training_forward(self):
        self._advance_step()
        if self._batchnorms and self._active_bn != TRAINING_BATCHNORM:
            _restore(self._batchnorms, self._bank[TRAINING_BATCHNORM])
            self._active_bn = TRAINING_BATCHNORM

    # --- inference ----------------------------------------------------------------------
    @property
    def mode(self):
        return self._mode

    def use_mode(self, mode, use_mode_batchnorm=True):
        """Evaluation computes with `mode`'s weights (W or the DOM draw) and,
        where stored, its BatchNorm statistics (else training's)."""
        mode = as_mode(mode)
        if mode.is_dom and not self.enabled:
            raise ValueError("this model has no transformed convolution (policy none): it has no DOM (use aom)")
        self._mode = mode
        self._dom = [None] * len(self._layers)
        if mode.is_dom:
            for i, conv in enumerate(self._convs):
                self._dom_weight(i, conv)
        if not self._batchnorms:
            return
        self._leave_training_batchnorm()
        key = mode.key()
        target = key if use_mode_batchnorm and key in self._bank else TRAINING_BATCHNORM
        if target != self._active_bn:
            _restore(self._batchnorms, self._bank[target])
            self._active_bn = target

    def _leave_training_batchnorm(self):
        if self._active_bn == TRAINING_BATCHNORM and self._batchnorms:
            self._bank[TRAINING_BATCHNORM] = _snapshot(self._batchnorms)

    def _dom_weight(self, index, conv):
        w = conv.weight
        gain = conv._parameters.get("shadow_gain")
        source = (id(w), w._version, w.device, w.dtype, None if gain is None else (id(gain), gain._version))
        cached = self._dom[index]
        if cached is None or cached[0] != source:
            cached = (source, self._layer(index, conv).weight_for(self._mode))
            self._dom[index] = cached
        return cached[1]

    def _weight_of(self, index, conv):
        if conv.training:
            return self._layer(index, conv).training_weight(self.seed, self._step)
        if not self._mode.is_dom:
            return conv.weight
        return self._dom_weight(index, conv)

    def active_weights(self):
        """The tensors the transformed convolutions compute with in evaluation."""
        if not self._mode.is_dom:
            return [conv.weight for conv in self._convs]
        return [self._dom_weight(i, conv) for i, conv in enumerate(self._convs)]

    def sparsity(self, mode):
        """Zero weights of the transformed layers and of all convolutions in `mode`."""
        mode = as_mode(mode)
        transformed = [self._layer(i, conv).weight_for(mode) for i, conv in enumerate(self._convs)]
        return _C.sparsity_of(transformed, [conv.weight for conv in self._plain_convs])

    # --- BatchNorm per mode -------------------------------------------------------------
    def batchnorm_keys(self):
        return sorted(self._bank)

    def _reestimate(self, mode, batches):
        mode = as_mode(mode)
        if not self._batchnorms:
            return 0
        self.use_mode(mode, use_mode_batchnorm=False)
        before = _snapshot(self._batchnorms)
        flags = [(m, m.training) for m in self.module.modules()]
        momenta = [bn.momentum for bn in self._batchnorms]
        count = 0
        try:
            self.module.eval()
            for bn in self._batchnorms:
                bn.momentum = None  # a cumulative average: the exact mean over the batches
                bn.reset_running_stats()
                bn.train()
            with torch.no_grad():
                for batch in batches:
                    self.module(images_of(batch))
                    count += 1
            if count == 0:
                raise ValueError("re-estimating BatchNorm needs at least one batch (batches was empty)")
        except BaseException:
            _restore(self._batchnorms, before)
            raise
        finally:
            for bn, momentum in zip(self._batchnorms, momenta):
                bn.momentum = momentum
            for m, training in flags:
                m.training = training
        self._bank[mode.key()] = _snapshot(self._batchnorms)
        self._active_bn = mode.key()
        return count

    # --- state --------------------------------------------------------------------------
    def state_dict(self):
        """The step counter and the per-mode BatchNorm statistics (W is the module's)."""
        return {
            "policy": self.policy.to_string(),
            "seed": self.seed,
            "next_step": self.next_step,
            "batchnorm": {key: [list(t) for t in entry] for key, entry in self._bank.items()},
        }

    def load_state_dict(self, state):
        if state.get("policy") != self.policy.to_string() or state.get("seed") != self.seed:
            raise ValueError(
                f"this state is of policy {state.get('policy')!r} seed {state.get('seed')!r}, "
                f"not {self.policy.to_string()!r} seed {self.seed} (attach ShadowWeights as it was saved)"
            )
        bank = {}
        for key, entry in state.get("batchnorm", {}).items():
            if len(entry) != len(self._batchnorms):
                raise ValueError(f"BatchNorm statistics of '{key}' are for {len(entry)} layers, the module has {len(self._batchnorms)}")
            bank[key] = [tuple(t) for t in entry]
        self._bank = bank
        _TrainingSteps.__init__(self, non_negative_int(state.get("next_step", 0), "next_step"))

    def remove(self):
        """Gives the convolutions back their own forward (W unchanged)."""
        for conv in self._convs:
            conv.__class__ = _base_class(type(conv))
            conv.__dict__.pop("_was_state", None)
        self._hook.remove()
        self._convs = []
        self._layers = []

    def __repr__(self):
        return (
            f"<was.ShadowWeights {self.policy.to_string()} seed {self.seed}: {len(self._layers)} transformed, "
            f"{len(self._plain_convs)} plain convolutions; mode {self._mode.key()}>"
        )


def reestimate_batchnorm(model, shadow, mode, batches):
    """Re-estimates `mode`'s BatchNorm statistics as the exact average over
    `batches` (images, or (images, labels) pairs, normalised and on the
    model's device) and stores them for use_mode. Returns the number of
    batches used (0 when the model has no BatchNorm)."""
    from .model import Model

    if isinstance(model, Model):
        if shadow is not None and shadow is not model.shadow:
            raise ValueError("a was model re-estimates with its own shadow weights: pass shadow=None or model.shadow")
        return model._reestimate_batchnorm(as_mode(mode), batches)
    if not isinstance(shadow, ShadowWeights) or shadow.module is not model:
        raise ValueError("shadow must be the was.ShadowWeights attached to this model")
    return shadow._reestimate(mode, batches)
