#!/usr/bin/env python3
"""Three ways to apply an integer crop + translate to a 512x512x3x3 weight,
forward and backward, timed in Python PyTorch (docs/PERFORMANCE.md): the tap
matrix product `was` used before its vectorised CPU pass, a gather of taps
times a 0/1 mask, and a slice padded back to 3x3. Prints the median
milliseconds of each.

    python3 bench/transform_variants.py     # Debian: python3-torch
"""
import torch
import torch.nn.functional as F

from timing import median_seconds


def median_ms(fn, reps=10):
    return 1e3 * median_seconds(fn, reps)


def main():
    torch.set_num_threads(2)
    w = torch.randn(512, 512, 3, 3, requires_grad=True)
    # Keep rows/columns 0..1 of the plane and move them down/right by one.
    taps = torch.tensor([0, 0, 1, 3, 3, 4, 6, 6, 7])
    mask = torch.tensor([0, 1, 1, 0, 1, 1, 0, 1, 1.])
    a = torch.zeros(9, 9)
    for i in range(9):
        if mask[i]:
            a[i, taps[i]] = 1

    def product():
        s = w.reshape(-1, 9).matmul(a.t()).view(w.shape)
        s.backward(torch.ones_like(s))

    def gather():
        s = (w.reshape(-1, 9).index_select(1, taps) * mask).view(w.shape)
        s.backward(torch.ones_like(s))

    def padded_slice():
        s = F.pad(w[:, :, 0:2, 0:2], (1, 0, 1, 0))
        s.backward(torch.ones_like(s))

    for name, fn in [('tap matrix product', product), ('gather x mask', gather), ('padded slice', padded_slice)]:
        print('%-20s %7.2f ms' % (name, median_ms(fn)))


if __name__ == '__main__':
    main()
