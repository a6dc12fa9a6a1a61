#!/usr/bin/env python3
"""How fast oneDNN runs the kernel windows compact DOM produces, per MAC,
against the 3x3 kernel they replace: Python PyTorch (Debian's python3-torch,
the same kernels as Debian's LibTorch), batch 128, 2 threads.

Efficiency = (time of the 3x3 convolution * window MACs / 9) / time: 1.0 means
the window runs at the 3x3 kernel's FLOP/s.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 OPENBLAS_NUM_THREADS=1 \\
        python3 bench/conv_windows.py [--channels-last]
"""
import sys

import torch
import torch.nn.functional as F

from timing import median_seconds


def median_time(fn):
    return median_seconds(fn, reps=5, warmup=2)


def main():
    torch.set_num_threads(2)
    channels_last = "--channels-last" in sys.argv[1:]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    n = 128
    print(f"layout {'NHWC' if channels_last else 'NCHW'}, batch {n}, 2 threads: efficiency per window")
    with torch.no_grad():
        for c, h in [(64, 32), (128, 16), (256, 8), (512, 4)]:
            x = torch.randn(n, c, h, h).contiguous(memory_format=fmt)
            b = torch.randn(c)

            def weight(kh, kw):
                return torch.randn(c, c, kh, kw).contiguous(memory_format=fmt)

            w3, w2, w1 = weight(3, 3), weight(2, 2), weight(1, 1)
            base = median_time(lambda: F.conv2d(x, w3, b, 1, 1))
            x_flat = x.permute(0, 2, 3, 1).reshape(-1, c) if channels_last else x.view(n, c, h * h)
            w_mat = w1.reshape(c, c)
            variants = [
                # a 2x2 window in a corner: pad a copy, or pad both sides and slice
                ("2x2 pad copy", 4, lambda: F.conv2d(F.pad(x, (1, 0, 1, 0)), w2, b)),
                ("2x2 slice", 4, lambda: F.conv2d(x, w2, b, 1, 1)[:, :, :h, :h].relu_()),
                # 1x1 windows: centred (no padding), shifted by one column (pad a copy)
                ("1x1 centre", 1, lambda: F.conv2d(x, w1, b)),
                ("1x1 shifted", 1, lambda: F.conv2d(F.pad(x, (1, -1, 0, 0)), w1, b)),
                # the centred 1x1 window as a BLAS product instead of a convolution
                ("1x1 as GEMM", 1, (lambda: torch.addmm(b, x_flat, w_mat.t())) if channels_last
                 else (lambda: torch.baddbmm(b.view(1, c, 1), w_mat.expand(n, c, c), x_flat))),
            ]
            row = [f"C{c} {h}x{h}: 3x3 {base * 1e3:.1f} ms"]
            for name, macs, fn in variants:
                row.append(f"{name} {base * macs / 9 / median_time(fn):.2f}")
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
