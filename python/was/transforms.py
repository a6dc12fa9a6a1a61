"""Kernel-plane transforms with explicit parameters (include/was/transforms.h).

Params(crop=(y0, x0, h, w), resized_crop=(...), dx=0, dy=0, angle=None, nearest=False)
describes one draw; apply(weight, params) gives S = T(W) for a [O, I, kh, kw]
weight, differentiably (one Params for the layer, or a list of one per filter)."""

from . import _C
from ._convert import as_policy, as_tensor

Params = _C.TransformParams


def apply(weight, params):
    """S = T_params(W): one Params for every plane, or a list with one per output filter."""
    weight = as_tensor(weight, "weight")
    if isinstance(params, Params):
        return _C.apply_transform(weight, params)
    params = list(params)
    if not all(isinstance(p, Params) for p in params):
        raise TypeError("params must be a was.transforms.Params or a list of them")
    return _C.apply_transform(weight, params)


def matrix(params, kh, kw):
    """The (kh*kw) x (kh*kw) float64 matrix A of a draw: vec(S) = A vec(W), row-major planes."""
    return _C.transform_matrix(params, kh, kw)


def apply_matrix(weight, a):
    """S = A W on every plane: `a` is [kk, kk] for the layer or [O, kk, kk] per filter."""
    return _C.apply_plane_transform(as_tensor(weight, "weight"), as_tensor(a, "matrix"))


crop_matrix = _C.crop_matrix
resized_crop_matrix = _C.resized_crop_matrix
translate_matrix = _C.translate_matrix
rotate_matrix = _C.rotate_matrix


def draw(policy, kh, kw, seed, stream="training", layer=0, step=0, count=1):
    """The draws θ of the stream (seed, stream, layer, step), as the layers draw them:
    `count` Params (one per filter under filter granularity)."""
    return _C.draw_params(as_policy(policy), kh, kw, seed, stream, layer, step, count)
