#!/usr/bin/python3
"""WAS on torchvision's ResNet-18 with a plain PyTorch training loop.

torchvision's resnet18, adapted to 32x32 images as CIFAR users adapt it (a
3x3 stride-1 first convolution, no max-pool), trained on CIFAR-10 with
WAS's shadow weights for a short budget, then measured in both modes: top-1
with training BatchNorm and with per-mode re-estimated BatchNorm, MACs,
sparsity, and the compacted DOM's speed against the dense DOM.

    scripts/install_python.sh            # once: makes `import was` work
    /usr/bin/python3 ../shared/datasets/cifar10-jpeg/to_cifar_bin.py /work/data/cifar10   # once
    /usr/bin/python3 examples/python/train_torchvision.py --data-dir /work/data/cifar10

Everything WAS adds is marked `# WAS`; the rest is an ordinary loop.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch
import torchvision
from torch import nn

import was


def processor():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def resnet18_cifar(classes):
    net = torchvision.models.resnet18(num_classes=classes)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


def augment(x, generator):
    """Random crop (4-pixel zero padding) and horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


@torch.no_grad()
def top1(model, images, labels, batch):
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        correct += (model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum().item()
    return 100.0 * correct / len(images)


@torch.no_grad()
def median_ms(run, x, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run(x)
        times.append(1000 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/work/data/cifar10", help="CIFAR-10 binary batches (data_batch_*.bin)")
    ap.add_argument("--policy", default="CT", help="WAS policy (was.Policy.parse)")
    ap.add_argument("--steps", type=int, default=150, help="training steps of --batch images")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--test-images", type=int, default=2000, help="first N test images (0: all 10,000)")
    ap.add_argument("--bn-batches", type=int, default=20, help="training batches per mode for BatchNorm re-estimation")
    ap.add_argument("--dom-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    try:
        data = was.data.load("cifar10", args.data_dir)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    mean, std = data["mean"], data["std"]
    train_x = was.data.normalize(data["train"][0], mean, std)
    train_y = data["train"][1]
    test_x = was.data.normalize(data["test"][0], mean, std)
    test_y = data["test"][1]
    if args.test_images:
        test_x, test_y = test_x[: args.test_images], test_y[: args.test_images]

    model = resnet18_cifar(data["num_classes"])
    shadow = was.ShadowWeights(model, args.policy, seed=args.seed)  # WAS: before the optimiser (paper: gains)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    print(f"resnet18 (torchvision, 32x32 form) on CIFAR-10, policy {shadow.policy}, {len(shadow.layers())} "
          f"transformed convolutions, {args.steps} steps of {args.batch}, {args.threads} threads, {processor()}")

    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        index = torch.randint(0, len(train_x), (args.batch,), generator=generator)
        x, y = augment(train_x[index], generator), train_y[index]
        loss = nn.functional.cross_entropy(model(x), y)  # WAS: the forward uses fresh shadow weights
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # WAS: the gradient reaches W through the transform
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - start:6.1f} s", flush=True)
    train_s = time.perf_counter() - start

    dom = was.Mode.dom(args.dom_seed)
    rows = {}
    for name, mode in [("AOM", was.Mode.aom()), (f"DOM:{args.dom_seed}", dom)]:
        shadow.use_mode(mode)  # WAS: the mode's weights, training's BatchNorm statistics
        training_bn = top1(model, test_x, test_y, 256)
        bn_batches = [train_x[i * args.batch : (i + 1) * args.batch] for i in range(args.bn_batches)]
        was.reestimate_batchnorm(model, shadow, mode, bn_batches)  # WAS: this mode's own statistics
        shadow.use_mode(mode)
        macs = was.count_macs(model, test_x[:1], shadow, mode)
        rows[name] = {"top1_training_bn": training_bn, "top1": top1(model, test_x, test_y, 256),
                      "macs": macs.total, "sparsity": shadow.sparsity(mode).transformed_rate}

    # Compact DOM: the sparse convolutions as the smaller dense ones, timed against the dense DOM.
    shadow.use_mode(dom)
    model.eval()
    compact = was.compact(model, shadow, dom)
    x = test_x[: args.batch]
    with torch.no_grad():
        difference = (compact(x) - model(x)).abs().max().item()
        for _ in range(2):  # warm-up
            model(x), compact(x)
    dense_ms, compact_ms = [], []
    for _ in range(5):  # alternating rounds: the ratio is measured within one run
        dense_ms.append(median_ms(model, x, 3))
        compact_ms.append(median_ms(compact, x, 3))
    dense_ms, compact_ms = sorted(dense_ms)[2], sorted(compact_ms)[2]

    aom, domr = rows["AOM"], rows[f"DOM:{args.dom_seed}"]
    print()
    print(f"| after {args.steps} steps ({train_s / 60:.1f} min) | AOM | DOM:{args.dom_seed} |")
    print("|---|---:|---:|")
    print(f"| top-1, training BatchNorm ({len(test_x)} test images) | {aom['top1_training_bn']:.2f} | {domr['top1_training_bn']:.2f} |")
    print(f"| top-1, BatchNorm re-estimated per mode | {aom['top1']:.2f} | {domr['top1']:.2f} |")
    print(f"| MACs per image (M) | {aom['macs'] / 1e6:.1f} | {domr['macs'] / 1e6:.1f} |")
    print(f"| sparsity of the transformed layers | {100 * aom['sparsity']:.1f}% | {100 * domr['sparsity']:.1f}% |")
    print()
    print(f"compact DOM at batch {args.batch}: {len(compact.compacted)} of {len(shadow.layers())} convolutions compacted, "
          f"dense {dense_ms:.0f} ms, compact {compact_ms:.0f} ms: {dense_ms / compact_ms:.2f}x; "
          f"max |compact - dense| {difference:.1e} ({processor()}, {args.threads} threads)")
    if args.json:
        result = {"args": vars(args), "processor": processor(), "train_seconds": train_s, "modes": rows,
                  "compact": {"layers": compact.compacted, "dense_ms": dense_ms, "compact_ms": compact_ms,
                              "speedup": dense_ms / compact_ms, "max_difference": difference}}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
