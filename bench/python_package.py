#!/usr/bin/python3
"""What the Python package costs and gives, as ratios measured in one run.

1. Training loop overhead: one plain PyTorch loop step (SGD, cross-entropy)
   of torchvision's ResNet-18 in its CIFAR form (3x3 stride-1 first
   convolution, no max-pool), batch 128, with was.ShadowWeights against the
   same loop on the same model without it. Rounds alternate, the medians
   are compared. Target: at most 1.03x.
2. Compact DOM against dense DOM at batch 128 (and 1):
   - in Python, on that torchvision model under was.ShadowWeights
     (was.compact: CompactConv2d modules calling the library's plans);
   - the library's inference models as `was predict` runs them (a zoo
     ResNet-18 exported in memory, compacted or not: the code of
     `was predict` against `was predict --no-compact`).
   The same policy and DOM seed, and the same layer order, give both
   networks the same windows. Target: the same speedup.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_package.py [--steps 2 --rounds 5]
"""
import argparse
import os
import subprocess
import sys
import time

import torch
import torchvision
from torch import nn

import was


def processor():
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown processor"


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def resnet18_cifar():
    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


def training_overhead(args):
    torch.manual_seed(0)
    plain = resnet18_cifar()
    shadowed = resnet18_cifar()
    shadowed.load_state_dict(plain.state_dict())
    shadow = was.ShadowWeights(shadowed, args.policy, seed=0)
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    loops = {}
    for name, model in [("plain", plain), ("was", shadowed)]:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        model.train()

        def step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        loops[name] = step
    for step in loops.values():  # warm-up: oneDNN's kernels, the allocator
        step()
    # The machine's speed drifts within a run (rounds differ by 1.5x here):
    # each round times both loops back to back, in alternating order, and
    # the overhead is the median of the per-round ratios.
    # Process time too: on a shared machine wall time also counts what other
    # tenants take, process time only what this process ran.
    times = {name: [] for name in loops}
    cpu = {name: [] for name in loops}
    for r in range(args.rounds):
        for name in (["plain", "was"] if r % 2 == 0 else ["was", "plain"]):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                loops[name]()
            times[name].append((time.perf_counter() - start) / args.steps)
            cpu[name].append((time.process_time() - start_cpu) / args.steps)
    ratios = [w / p for w, p in zip(times["was"], times["plain"])]
    cpu_ratios = [w / p for w, p in zip(cpu["was"], cpu["plain"])]

    # What WAS adds, alone: every layer's draw, S = T(W) and its backward A^T.
    layers = shadow.layers()
    grads = [torch.randn_like(layer.plain_weight) for layer in layers]
    draw_s = []
    for rep in range(2 * args.rounds):
        start = time.perf_counter()
        for layer, g in zip(layers, grads):
            (layer.training_weight(0, rep) * g).sum().backward()
        draw_s.append(time.perf_counter() - start)
    print(f"training step, ResNet-18 (torchvision, CIFAR form), batch {args.batch}, policy {shadow.policy}, "
          f"{len(layers)} transformed convolutions, {args.rounds} rounds of {args.steps} steps:")
    print(f"  plain loop        {median(times['plain']):.3f} s/step  (rounds {', '.join(f'{t:.3f}' for t in times['plain'])})")
    print(f"  loop with was     {median(times['was']):.3f} s/step  (rounds {', '.join(f'{t:.3f}' for t in times['was'])})")
    print(f"  overhead, wall    {median(ratios):.3f}x, median of the rounds' ratios ({min(ratios):.3f} to {max(ratios):.3f})")
    print(f"  overhead, process {median(cpu_ratios):.3f}x ({min(cpu_ratios):.3f} to {max(cpu_ratios):.3f}; target <= 1.03x)")
    print(f"  the draws alone   {1000 * median(draw_s):.1f} ms a step (S = T(W) and A^T for every layer): "
          f"{median(draw_s) / median(times['plain']):.3f} of a plain step")
    return median(ratios)


def paired_ratio(first, second, x, reps, warm=2):
    """Median time of first(x) over that of second(x), calls alternating."""
    with torch.no_grad():
        for _ in range(warm):
            first(x)
            second(x)
        t1, t2 = [], []
        for _ in range(reps):
            start = time.perf_counter()
            first(x)
            t1.append(time.perf_counter() - start)
            start = time.perf_counter()
            second(x)
            t2.append(time.perf_counter() - start)
    return median(t1) / median(t2), median(t1), median(t2)


def compact_speedup(args):
    mode = was.Mode.dom(0)
    torch.manual_seed(1)
    py_model = resnet18_cifar()
    shadow = was.ShadowWeights(py_model, args.dom_policy, seed=0)
    py_model.eval()
    shadow.use_mode(mode)
    py_compact = was.compact(py_model, shadow, mode)

    zoo = was.models.create("resnet18", num_classes=10, policy=args.dom_policy, seed=0)
    zoo.eval()
    # BatchNorm unfolded as in the Python model (like for like), and folded as `was export` writes it.
    predict_dense = was.InferenceModel(zoo._run.inference_model(mode, False, False))  # was predict --no-compact
    predict_compact = was.InferenceModel(zoo._run.inference_model(mode, False, True))  # was predict
    folded_dense = was.InferenceModel(zoo._run.inference_model(mode, True, False))
    folded_compact = was.InferenceModel(zoo._run.inference_model(mode, True, True))
    same_windows = [c.split(": ", 1)[1] for c in py_compact.compacted] == [
        c.split(": ", 1)[1] for c in predict_compact.compacted]
    print(f"compact DOM against dense DOM, ResNet-18, policy {shadow.policy}, DOM seed 0 "
          f"({len(py_compact.compacted)} layers compacted in Python, {len(predict_compact.compacted)} in the export; "
          f"same windows: {'yes' if same_windows else 'no'}):")
    results = {}
    for batch, reps in [(args.batch, args.infer_reps), (1, 10 * args.infer_reps)]:
        x = torch.randn(batch, 3, 32, 32)
        py, py_dense_s, py_compact_s = paired_ratio(py_model, py_compact, x, reps)
        cpp, cpp_dense_s, cpp_compact_s = paired_ratio(predict_dense, predict_compact, x, reps)
        folded = paired_ratio(folded_dense, folded_compact, x, reps)[0]
        print(f"  batch {batch:3d}: Python was.compact {py:.2f}x ({1000 * py_dense_s:.1f} -> {1000 * py_compact_s:.1f} ms), "
              f"was predict's models {cpp:.2f}x ({1000 * cpp_dense_s:.1f} -> {1000 * cpp_compact_s:.1f} ms), "
              f"Python/predict {py / cpp:.2f}; predict with BatchNorm folded {folded:.2f}x")
        results[batch] = (py, cpp, folded)
    return results


def main():
    ap = argparse.ArgumentParser(description="the Python package's overhead and compact speedup")
    ap.add_argument("--policy", default="CT", help="training policy of the loop")
    ap.add_argument("--dom-policy", default="crop=0.4:0.6", help="policy of the compacted DOM")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--infer-reps", type=int, default=9, help="paired calls at the large batch (10x at batch 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{processor()}, {args.threads} threads, torch {torch.__version__}")
    if not args.skip_training:
        training_overhead(args)
    compact_speedup(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
