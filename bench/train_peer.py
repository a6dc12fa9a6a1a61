#!/usr/bin/env python3
"""The Python PyTorch peer of bench/train_compare: the training loop a user
would otherwise write, on the same networks (the CIFAR forms of was's zoo),
batch, optimiser and threads. Prints one JSON line: median seconds per full
training step (forward, backward, SGD step; data already in memory), peak
RSS, and eval-mode inference images/s at batch 1 and at the training batch.

    python3 bench/train_peer.py --model resnet18 --batch 128 --steps 3 --threads 2

The allocator is the caller's business (MALLOC_* environment variables), as
it is for a Python user.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(cin, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(*conv_bn(cin, planes, 1, stride))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):  # CIFAR form: 3x3 stride-1 stem, no max-pool
    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, 64, 3)
        stages, cin = [], 64
        for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            stages.append(nn.Sequential(BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)))
            cin = planes
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ResNet20(nn.Module):  # He et al.'s CIFAR ResNet-20, option A shortcuts (as the zoo's resnet20)
    class Block(nn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            self.conv1, self.bn1 = conv_bn(cin, planes, 3, stride)
            self.conv2, self.bn2 = conv_bn(planes, planes, 3)
            self.stride, self.pad = stride, planes - cin

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            short = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.pad > 0:
                short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return F.relu(out + short)

    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, 16, 3)
        blocks, cin = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(3):
                blocks.append(ResNet20.Block(cin, planes, stride if i == 0 else 1))
                cin = planes
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = []
        if t != 1:
            layers += conv_bn(cin, hidden, 1) + [nn.ReLU6()]
        layers += conv_bn(hidden, hidden, 3, stride, hidden) + [nn.ReLU6()]
        layers += conv_bn(hidden, cout, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):  # CIFAR strides: stem and stage 2 at stride 1
    def __init__(self, classes=10):
        super().__init__()
        layers, cin = conv_bn(3, 32, 3) + [nn.ReLU6()], 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += conv_bn(cin, 1280, 1) + [nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class VGG16(nn.Module):  # configuration D with BatchNorm, one linear layer on the 512-d feature
    def __init__(self, classes=10):
        super().__init__()
        layers, cin = [], 3
        for w in [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']:
            if w == 'M':
                layers.append(nn.MaxPool2d(2))
            else:
                layers += conv_bn(cin, w, 3) + [nn.ReLU(inplace=True)]
                cin = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


MODELS = {'resnet18': ResNet18, 'resnet20': ResNet20, 'mobilenetv2': MobileNetV2, 'vgg16': VGG16}


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='resnet18', choices=sorted(MODELS))
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--infer-reps', type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = MODELS[a.model]()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    net.train()
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    net.eval()
    infer = {}
    with torch.no_grad():
        for batch, reps in [(a.batch, 3), (1, a.infer_reps)]:
            xb = torch.randn(batch, 3, 32, 32)
            net(xb)
            t = []
            for _ in range(reps):
                t0 = time.perf_counter()
                net(xb)
                t.append(time.perf_counter() - t0)
            infer[batch] = batch / median(t)
    print(json.dumps({'step_s': median(times), 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      'infer_ips_large': infer[a.batch], 'infer_ips_1': infer[1],
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
