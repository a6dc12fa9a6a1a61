// Exports: compact DOM equals uncompacted DOM on every model of the zoo;
// folded exports equal the network; bad files are refused; PyTorch state dicts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "was/core/error.h"
#include "was/io/export.h"

namespace {

namespace fs = std::filesystem;
using was::Mode;

struct ExportTest : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("was_export_test_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  static was::RunRecord state_of(was::Network& net) {
    was::RunRecord s;
    s.model = net.config();
    s.policy = net.policy().to_string();
    s.dataset = "synthetic";
    s.normalization = {std::vector<double>(net.config().in_channels, 0.5),
                       std::vector<double>(net.config().in_channels, 0.25)};
    return s;
  }
};

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

TEST_F(ExportTest, CompactDomEqualsDomOnEveryModel) {
  struct Case {
    const char* policy;
    int64_t seed;
  };
  for (const auto& name : was::models::model_names()) {
    std::vector<Case> cases = {{"crop=0.4:0.6", 0}, {"crop=0.2:0.4,translate=0.3:0.3", 3}};
    if (name == "small_cnn" || name == "resnet18") {  // the cheap ones get the rest
      cases.push_back({"crop=0.8:1", 1});
      cases.push_back({"crop=0.4:0.6,translate=0.3:0.3,granularity=filter", 2});
      cases.push_back({"crop=0.4:0.6,rotate=90:90", 5});
    }
    for (const auto& [policy, seed] : cases) {
      torch::manual_seed(0);
      was::Network net({name, 10, 3, 32}, was::Policy::parse(policy), 0);
      const auto images = torch::randint(0, 256, {2, 3, 32, 32}).to(torch::kUInt8);
      const auto normalised = (images.to(torch::kFloat32) / 255.0 - 0.5) / 0.25;
      const Mode mode = Mode::dom(seed);
      net.reestimate_batchnorm(mode, 1, [&](int64_t) { return torch::randn({4, 3, 32, 32}); });
      net.set_mode(mode);
      torch::Tensor reference;
      {
        torch::NoGradGuard no_grad;
        reference = net.forward(normalised);
      }
      const auto path = (dir / "m.was").string();
      was::ExportOptions options;
      options.mode = mode;
      was::export_inference(path, net, state_of(net), options);
      auto dense = was::load_inference(path, torch::kCPU, /*compact=*/false);
      auto compact = was::load_inference(path, torch::kCPU, /*compact=*/true);
      const auto d = dense.predict(images), c = compact.predict(images);
      EXPECT_LE(relative_error(c, d), 1e-5) << name << " " << policy << " seed " << seed;
      // A DOM draw that zeroes a whole biased layer leaves the BatchNorm after
      // it normalising a constant: its output is rounding noise, which folding
      // changes, and later BatchNorms amplify (the released MobileNetV2 with
      // crop 0.2:0.4 + translate). Only the export's own two forms compare then.
      bool dead_layer = false;
      for (const auto& layer : net.shadow().layers())
        dead_layer =
            dead_layer || (layer.conv().bias.defined() && layer.weight_for(mode).count_nonzero().item<int64_t>() == 0);
      if (!dead_layer) {
        EXPECT_LE(relative_error(d, reference), 1e-4) << name << " " << policy << " seed " << seed;
      }
      compact.use_channels_last();  // NHWC: the same outputs up to summation order
      EXPECT_LE(relative_error(compact.predict(images), d), 1e-4) << name << " " << policy << " NHWC";
      if (std::string(policy) != "crop=0.8:1") {
        EXPECT_FALSE(compact.compacted.empty()) << name << " " << policy;
      }
      EXPECT_EQ(dense.folded, name != "small_cnn_plain") << name;  // the one model without BatchNorm
    }
  }
}

TEST_F(ExportTest, AomExportEqualsAomNetwork) {
  torch::manual_seed(1);
  was::Network net({"resnet18", 10, 3, 32}, was::Policy::parse("CT"), 0);
  net.reestimate_batchnorm(Mode::aom(), 1, [](int64_t) { return torch::randn({8, 3, 32, 32}); });
  const auto images = torch::randint(0, 256, {2, 3, 32, 32}).to(torch::kUInt8);
  net.set_mode(Mode::aom());
  torch::Tensor reference;
  {
    torch::NoGradGuard no_grad;
    reference = net.forward((images.to(torch::kFloat32) / 255.0 - 0.5) / 0.25);
  }
  const auto path = (dir / "aom.was").string();
  was::export_inference(path, net, state_of(net), {Mode::aom(), true});
  auto m = was::load_inference(path);
  EXPECT_LE(relative_error(m.predict(images), reference), 1e-4);
  EXPECT_TRUE(m.compacted.empty());  // W has no zero borders
}

TEST_F(ExportTest, BadFilesAndMismatchesAreRefused) {
  torch::manual_seed(2);
  was::Network net({"small_cnn", 4, 1, 16}, was::Policy::parse("C"), 0);
  const auto good = (dir / "good.was").string();
  was::export_inference(good, net, state_of(net), {Mode::dom(0), true});
  EXPECT_NO_THROW(was::load_inference(good));
  // The mode asked for must be the one stored.
  EXPECT_THROW(was::load_inference(good, torch::kCPU, true, Mode::aom()), was::Error);
  EXPECT_NO_THROW(was::load_inference(good, torch::kCPU, true, Mode::dom(0)));

  const auto truncated = (dir / "truncated.was").string();
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  const auto garbage = (dir / "garbage.was").string();
  std::ofstream(garbage) << "nope";
  // Another version: a well-formed archive whose metadata says version 99.
  const auto other = (dir / "other.was").string();
  {
    torch::serialize::OutputArchive archive;
    archive.write("was_export_meta", c10::IValue(std::string(R"({"kind":"was-inference","version":99})")));
    archive.save_to(other);
  }
  // A checkpoint is not an export.
  const auto checkpoint = (dir / "ckpt.pt").string();
  was::save_checkpoint(checkpoint, net, state_of(net));
  for (const auto& path : {truncated, garbage, other, checkpoint, (dir / "missing.was").string()}) {
    try {
      was::load_inference(path);
      ADD_FAILURE() << "loaded " << path;
    } catch (const was::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  // Images of the wrong size or channels.
  auto m = was::load_inference(good);
  EXPECT_THROW(m.predict(torch::zeros({1, 1, 15, 16}, torch::kUInt8)), was::Error);
  EXPECT_THROW(m.predict(torch::zeros({1, 3, 16, 16}, torch::kUInt8)), was::Error);
  EXPECT_NO_THROW(m.predict(torch::zeros({1, 1, 16, 16}, torch::kUInt8)));
}

TEST_F(ExportTest, PyTorchStateDictRoundTrip) {
  torch::manual_seed(3);
  was::Network net({"resnet18", 10, 3, 32}, was::Policy::parse("CT"), 0);
  net.reestimate_batchnorm(Mode::aom(), 1, [](int64_t) { return torch::randn({4, 3, 32, 32}); });
  const auto path = (dir / "state_dict.pt").string();
  was::write_pytorch_state_dict(path, net, Mode::aom());
  const auto loaded = was::read_pytorch_state_dict(path);
  auto params = net.module().named_parameters();
  auto buffers = net.module().named_buffers();
  EXPECT_EQ(loaded.size(), params.size() + buffers.size());
  for (const auto& [name, t] : loaded) {
    const torch::Tensor* expected = params.find(name);
    if (expected == nullptr) expected = buffers.find(name);
    ASSERT_NE(expected, nullptr) << name;
    EXPECT_TRUE(torch::equal(*expected, t)) << name;
  }
  EXPECT_NE(params.find("layer1.0.conv1.weight"), nullptr);  // the names a Python user expects
}

}  // namespace
