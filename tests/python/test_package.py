"""The Python package `was` (python/): the same draws, weights and numbers
as the CLI, on zoo models and on any torch.nn.Module, and clear exceptions
for bad input.

ctest runs it with PYTHONPATH=build/python and WAS_CLI=build/was."""
import json
import os
import subprocess
import warnings

import pytest
import torch
import torchvision
from torch import nn

import was

warnings.filterwarnings("ignore", category=DeprecationWarning)
WAS_CLI = os.environ.get("WAS_CLI", "build/was")
torch.set_num_threads(2)


def cli(*args, check=True):
    r = subprocess.run([WAS_CLI, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"was {' '.join(map(str, args))} failed: {r.stderr}")
    return r


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One epoch of small_cnn on the synthetic task, trained by `was train`."""
    out = tmp_path_factory.mktemp("run") / "run"
    cli("train", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "64", "--bn-batches", "2",
        "--no-progress", "--threads", "1", "--was", "CT", "--seed", "5", "--out", out)
    return out


class SmallCnn(nn.Module):
    """src/models/small_cnn.cpp in Python: the same modules, registered in the same order."""

    def __init__(self, in_channels=1, classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.fc = nn.Linear(128, classes)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(32), nn.BatchNorm2d(64), nn.BatchNorm2d(128)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def twin_of(model):
    twin = SmallCnn()
    twin.load_state_dict(model.state_dict())
    return twin


def synthetic():
    return was.data.load("synthetic")


def top1(model, images, labels, batch=256):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            correct += (model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum().item()
    return 100.0 * correct / len(images)


# --- policies, modes, transforms -----------------------------------------------------


def test_policies_and_modes_parse_as_the_cli_does():
    assert was.Policy.parse("CT") == was.Policy.preset("CT")
    for text in ["CT", "CT@p=0.5", "paper:CT", "crop=0.4:0.6,granularity=filter,exclude=conv1", "none"]:
        p = was.Policy.parse(text)
        assert was.Policy.parse(p.to_string()) == p
    assert was.Policy.parse("paper:CT").is_paper and was.Policy.parse("paper:CT").gain
    assert was.Policy.parse("none").empty
    assert was.Mode.parse("dom:3") == was.Mode.dom(3) and was.Mode.dom(3).dom_seed == 3
    assert was.Mode.aom().key() == "aom" and not was.Mode.aom().is_dom
    assert len({was.Mode.dom(1), was.Mode.parse("dom:1"), was.Mode.aom()}) == 2


def test_explicit_transforms_match_their_matrices_and_are_linear():
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    p = was.transforms.Params(crop=(0, 1, 2, 2), dx=1, dy=0)
    s = was.transforms.apply(w, p)
    a = was.transforms.matrix(p, 3, 3)
    assert torch.allclose(s.reshape(12, 9), w.reshape(12, 9) @ a.T)
    assert torch.equal(was.transforms.apply_matrix(w, a), s)
    per_filter = was.transforms.draw("CT", 3, 3, seed=1, count=4)
    s2 = was.transforms.apply(w, per_filter)
    for f in range(4):
        assert torch.allclose(s2[f], was.transforms.apply(w[f : f + 1], per_filter[f])[0])
    assert p.crop == (0, 1, 2, 2) and p.dx == 1


# --- draws: Python equals C++ ------------------------------------------------------------


def test_python_draws_equal_the_cli_draws(run_dir, tmp_path):
    model = was.load(run_dir)
    record = model.record()
    twin = twin_of(model)
    shadow = was.ShadowWeights(twin, record["policy"], seed=record["seed"])
    assert [layer.name for layer in shadow.layers()] == [layer.name for layer in model.shadow.layers()]
    # Training draws of several steps, bit for bit.
    for step in [0, 1, 7, 123456]:
        for py, cpp in zip(shadow.layers(), model.shadow.layers()):
            assert torch.equal(py.training_weight(record["seed"], step), cpp.training_weight(record["seed"], step))
    # DOM weights: those `was export --mode dom` writes (unfolded), and the C++ model's.
    dom_seed = record["dom_seed"]
    cli("export", run_dir, "--mode", "dom", "--no-fold", "--out", tmp_path / "dom.was")
    exported = dict(was.load_inference(tmp_path / "dom.was", compact=False).named_parameters())
    shadow.use_mode(was.Mode.dom(dom_seed))
    model.shadow.use_mode(was.Mode.dom(dom_seed))
    for layer, py, cpp in zip(shadow.layers(), shadow.active_weights(), model.shadow.active_weights()):
        assert torch.equal(py, exported[layer.name + ".weight"])
        assert torch.equal(py, cpp)
    assert shadow.sparsity("dom:%d" % dom_seed).transformed_zeros == model.shadow.sparsity("dom:%d" % dom_seed).transformed_zeros
    # The training forward of a step: the same logits from the Python twin and the C++ model.
    x = torch.randn(8, 1, 16, 16)
    model.train()
    twin.train()
    model.shadow.draw_for_training(42)
    shadow.draw_for_training(42)
    torch.testing.assert_close(twin(x), model(x), atol=1e-5, rtol=1e-5)


def test_steps_count_by_themselves_from_zero():
    torch.manual_seed(0)
    net = SmallCnn()
    shadow = was.ShadowWeights(net, "CT", seed=3)
    seen = []
    net.train()
    for _ in range(3):
        net(torch.randn(2, 1, 16, 16))
        seen.append(shadow.step)
    assert seen == [0, 1, 2] and shadow.next_step == 3
    shadow.draw_for_training(10)
    net(torch.randn(2, 1, 16, 16))
    net(torch.randn(2, 1, 16, 16))
    assert shadow.step == 10 and shadow.next_step == 10
    net.eval()
    net(torch.randn(2, 1, 16, 16))
    assert shadow.step == 10  # evaluation draws nothing


def test_gradients_reach_w_as_the_transpose_of_the_transform():
    torch.manual_seed(1)
    net = SmallCnn()
    shadow = was.ShadowWeights(net, "CTR", seed=9)
    for i, layer in enumerate(shadow.layers()):
        w = layer.plain_weight
        s = layer.training_weight(9, 4)
        g = torch.randn_like(s)
        w.grad = None
        (s * g).sum().backward()
        (params,) = layer.draw(9, "training", 4)
        a = was.transforms.matrix(params, 3, 3).to(w.dtype)
        o, c = w.shape[0], w.shape[1]
        expected = (g.reshape(o * c, 9) @ a).reshape_as(w)  # vec(S) = A vec(W): dL/dW = A^T dL/dS
        torch.testing.assert_close(w.grad, expected, atol=1e-6, rtol=1e-5)
        assert not torch.equal(s, w), f"layer {i}: the draw should move W"


def test_one_python_training_step_equals_the_cpp_model_step(run_dir):
    model = was.load(run_dir)
    twin = twin_of(model)
    record = model.record()
    shadow = was.ShadowWeights(twin, record["policy"], seed=record["seed"])
    x, y = torch.randn(16, 1, 16, 16), torch.randint(0, 4, (16,))
    for m, s in [(model, model.shadow), (twin, shadow)]:
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        m.train()
        s.draw_for_training(3)
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    twin_state = twin.state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(twin_state[name], value, atol=1e-5, rtol=1e-5, msg=name)


def test_mode_switches_never_change_w():
    torch.manual_seed(2)
    net = torchvision.models.mobilenet_v2(num_classes=10)
    shadow = was.ShadowWeights(net, "CT", seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith("weight")}
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    for mode in ["dom:0", "aom", "dom:5", "aom"]:
        shadow.use_mode(mode)
        net(x)
    for k, v in net.state_dict().items():
        if k in before:
            assert torch.equal(v, before[k]), k
    depthwise = [layer for layer in shadow.layers() if layer.plain_weight.shape[1] == 1]
    assert depthwise, "mobilenet_v2's depthwise convolutions are transformed"


def resnet18_cifar():
    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


# MobileNetV2 at 64x64: at 32x32 its last maps are 1x1, where a 1-tap window
# of a strided 3x3 kernel can read padding only and leave no gradient at all.
@pytest.mark.parametrize("make,size", [(resnet18_cifar, 32), (lambda: torchvision.models.mobilenet_v2(num_classes=10), 64),
                                       (lambda: torchvision.models.vgg16_bn(num_classes=10), 32)])
def test_torchvision_models_train_switch_modes_and_compact(make, size):
    torch.manual_seed(3)
    net = make()
    shadow = was.ShadowWeights(net, "crop=0.4:0.6", seed=1)
    big = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(shadow.layers()) == len(big)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    net.train()
    x, y = torch.randn(4, 3, size, size), torch.randint(0, 10, (4,))
    w0 = big[0].weight.detach().clone()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    assert not torch.equal(w0, big[0].weight), "the step updates W"
    assert was.reestimate_batchnorm(net, shadow, "dom:0", [x, x]) == 2
    shadow.use_mode("dom:0")
    net.eval()
    with torch.no_grad():
        dense = net(x)
    compacted = was.compact(net, shadow, "dom:0")
    assert compacted.compacted, "some layers are compacted"
    with torch.no_grad():
        torch.testing.assert_close(compacted(x), dense, atol=1e-5, rtol=1e-5)
    assert shadow.mode == was.Mode.dom(0)  # compact leaves the model as it was
    macs_aom = was.count_macs(net, x, shadow, "aom")
    macs_dom = was.count_macs(net, x, shadow, "dom:0")
    assert macs_dom.total < macs_aom.total
    assert 0.3 < shadow.sparsity("dom:0").transformed_rate < 0.9


def test_grouped_convolutions_are_transformed_and_compacted():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=2),
                        nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8))
    shadow = was.ShadowWeights(net, "crop=0.4:0.6", seed=2)
    assert [layer.name for layer in shadow.layers()] == ["0", "2", "4"]
    x = torch.randn(2, 4, 11, 11)
    net.eval()
    shadow.use_mode("dom:1")
    with torch.no_grad():
        torch.testing.assert_close(was.compact(net, shadow, "dom:1")(x), net(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", was.models.names())
def test_compact_equals_dense_dom_on_every_zoo_model(name):
    torch.manual_seed(5)
    model = was.models.create(name, num_classes=10, policy="crop=0.4:0.6", seed=1)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    model.shadow.use_mode("dom:0")
    with torch.no_grad():
        dense = model(x)
        compacted = was.compact(model, mode="dom:0")
        torch.testing.assert_close(compacted(x), dense, atol=1e-5, rtol=1e-5)
    assert compacted.compacted, f"{name}: nothing compacted"


# --- runs of the CLI -------------------------------------------------------------------------


def test_a_loaded_run_evaluates_to_the_cli_top1(run_dir, tmp_path):
    cli("eval", run_dir, "--threads", "1", "--json", tmp_path / "eval.json")
    rows = {row["key"]: row for row in json.loads((tmp_path / "eval.json").read_text())[0]["modes"]}
    assert set(rows) == {"aom", "dom:0"}
    model = was.load(run_dir)
    images, labels = synthetic()["test"]
    x = model.normalize(images)
    twin = twin_of(model)
    shadow = was.ShadowWeights(twin, model.shadow.policy, seed=model.shadow.seed)
    for key, row in rows.items():
        model.shadow.use_mode(key)
        assert top1(model, x, labels) == pytest.approx(row["top1"], abs=1e-9), key
        # The CLI's MACs and sparsity, from the zoo model and from its Python twin.
        assert was.count_macs(model, x[:1], mode=key).total == row["macs"], key
        assert was.count_macs(twin, x[:1], shadow, key).total == row["macs"], key
        assert shadow.sparsity(key).transformed_rate == pytest.approx(row["sparsity_transformed"], abs=1e-12)
    assert model.record()["policy"] == model.shadow.policy.to_string()


def test_save_round_trips_through_the_cli(run_dir, tmp_path):
    # Untouched, a saved run passes every check of `was check`.
    was.save(was.load(run_dir), tmp_path / "same.pt")
    assert "11 passed, 0 failed" in cli("check", tmp_path / "same.pt").stdout
    # Trained further in Python, it evaluates in the CLI as in Python.
    model = was.load(run_dir)
    data = synthetic()
    images, labels = data["train"]
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(model.normalize(images[i * 64 : (i + 1) * 64])), labels[i * 64 : (i + 1) * 64]).backward()
        opt.step()
    batches = [model.normalize(images[i * 64 : (i + 1) * 64]) for i in range(4)]
    saved = tmp_path / "python.pt"
    with pytest.warns(UserWarning, match="re-estimate"):
        was.save(model, tmp_path / "stale.pt")  # W moved on since the stored statistics
    for mode in ["aom", "dom:0"]:
        was.reestimate_batchnorm(model, None, mode, batches)
    model.eval()
    model.shadow.use_mode("aom")
    test_images, test_labels = data["test"]
    expected = top1(model, model.normalize(test_images), test_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        was.save(model, saved)
    cli("eval", saved, "--mode", "aom", "--bn-batches", "0", "--threads", "1", "--json", tmp_path / "e.json")
    (row,) = json.loads((tmp_path / "e.json").read_text())[0]["modes"]
    assert row["top1"] == pytest.approx(expected, abs=1e-9)
    again = was.load(saved)
    assert again.record()["step"] == model.record()["step"] == model.shadow.next_step
    for (k, a), (_, b) in zip(again.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k


def test_load_inference_reads_cli_exports(run_dir, tmp_path):
    cli("export", run_dir, "--mode", "dom", "--out", tmp_path / "m.was")
    im = was.load_inference(tmp_path / "m.was")
    images, labels = synthetic()["test"]
    assert im.mode.is_dom and im.predict(images[:4]).shape == (4, 4)
    model = was.load(run_dir)
    model.shadow.use_mode(im.mode)
    with torch.no_grad():
        torch.testing.assert_close(im.predict(images[:64]), model.predict(images[:64]), atol=1e-4, rtol=1e-4)


# --- bad input -------------------------------------------------------------------------------


def test_bad_input_raises_clear_exceptions(run_dir, tmp_path):
    r = cli("train", "--dataset", "synthetic", "--was", "CX", "--out", tmp_path / "x", check=False)
    cli_message = r.stderr.strip().removeprefix("error: ")
    with pytest.raises(ValueError) as e:
        was.Policy.parse("CX")
    assert str(e.value) in cli_message or cli_message in str(e.value)
    with pytest.raises(ValueError, match="crop"):
        was.Policy.parse("crop=0.9:0.2")
    with pytest.raises(ValueError, match="mode"):
        was.Mode.parse("dom:-1")
    with pytest.raises(ValueError, match="non-negative"):
        was.Mode.dom(-2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        was.load(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match="corrupt"):
        was.load(corrupt)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run_dir / "last.pt").read_bytes()[:5000])
    with pytest.raises(ValueError):
        was.load(truncated)
    with pytest.raises(ValueError):
        was.load_inference(run_dir / "last.pt")  # a checkpoint, not an export
    with pytest.raises(ValueError, match="no torch.nn.Conv2d"):
        was.ShadowWeights(nn.Sequential(nn.Linear(3, 3)), "CT")
    with pytest.raises(ValueError, match="excludes 'nope'"):
        was.ShadowWeights(SmallCnn(), "CT", exclude=["nope"])
    with pytest.raises(ValueError, match="non-negative"):
        was.ShadowWeights(SmallCnn(), "CT", seed=-1)
    with pytest.raises(TypeError):
        was.ShadowWeights(SmallCnn(), 3)
    with pytest.raises(ValueError, match="window"):
        was.transforms.apply(torch.randn(2, 2, 3, 3), was.transforms.Params(crop=(2, 2, 3, 3)))
    with pytest.raises(ValueError):
        was.transforms.apply(torch.randn(3, 3), was.transforms.Params(dx=1))
    with pytest.raises(ValueError):
        was.transforms.Params(crop=(1, 2))
    with pytest.raises(ValueError, match="no DOM"):
        was.ShadowWeights(SmallCnn(), "none").use_mode("dom:0")
    with pytest.raises(ValueError, match="unknown model"):
        was.models.create("resnet999")
    with pytest.raises(ValueError):
        was.compact(SmallCnn(), None, "dom:0")
    with pytest.raises(TypeError):
        was.save(SmallCnn(), tmp_path / "x.pt")
    model = was.load(run_dir)
    with pytest.raises(ValueError, match="channels"):
        model.predict(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError):
        was.count_macs(model, torch.zeros(3))
    with pytest.raises(RuntimeError):
        model(torch.zeros(2, 7, 16, 16))  # LibTorch's own shape error, as an exception
    with pytest.raises(ValueError, match="unknown device"):
        was.load(run_dir, device="tpu")
    assert not (tmp_path / "x.pt").exists()


def test_paper_gain_copies_and_remove():
    torch.manual_seed(6)
    net = SmallCnn()
    shadow = was.ShadowWeights(net, "paper:C", seed=1)
    gains = [conv.shadow_gain for conv in (net.conv1, net.conv2, net.conv3)]
    assert all(0 <= g.item() < 1 for g in gains) and "conv1.shadow_gain" in net.state_dict()
    net.train()
    net(torch.randn(4, 1, 16, 16)).sum().backward()
    assert all(g.grad is not None and g.grad.item() != 0 for g in gains), "the gain is learnt"
    layer = shadow.layers()[0]
    (params,) = layer.draw(0, "dom", 0)  # DOM seed 0: the stream (0, dom, layer, 0)
    torch.testing.assert_close(layer.dom_weight(0), gains[0].detach() * was.transforms.apply(net.conv1.weight.detach(), params))
    # A deep copy is a plain module; remove() gives the module back.
    import copy

    shadow.use_mode("dom:0")
    net.eval()
    x = torch.randn(2, 1, 16, 16)
    plain = copy.deepcopy(net)
    with torch.no_grad():
        assert not torch.allclose(net(x), plain(x)), "the original runs its DOM"
        shadow.remove()
        torch.testing.assert_close(net(x), plain(x))
    assert type(net.conv1) is nn.Conv2d
