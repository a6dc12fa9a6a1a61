// The model zoo (issue 3, WAS-SPEC §7): every model's size and MACs as
// docs/MODELS.md states them, which convolutions WAS transforms (§2), one
// WAS-CTR training step, AOM against DOM (§5-6).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "was/core/error.h"
#include "was/models/efficientnet_lite.h"
#include "was/models/googlenet.h"
#include "was/models/mobilenetv2.h"
#include "was/models/vgg.h"
#include "was/network.h"
#include "was/nn/macs.h"

namespace {

using was::Mode;
using was::Network;
using was::Policy;
using was::models::ModelConfig;

// docs/MODELS.md, "The zoo": 3 x 32 x 32 input, 10 classes. A change to an
// architecture fails here first: update the doc with the new figures.
struct Figures {
  const char* name;
  int64_t parameters;
  int64_t aom_macs;      // was::Network::macs(Mode::aom()).total()
  int64_t convolutions;  // all Conv2d layers
  int64_t transformed;   // those WAS transforms (kernel larger than 1x1)
  int64_t depthwise;     // of which depthwise
};
const Figures kZoo[] = {
    {"small_cnn", 94762, 10323200, 3, 3, 0},
    {"vgg16", 14724042, 313201664, 13, 13, 0},
    {"resnet18", 11173962, 555422720, 20, 17, 0},
    {"resnet34", 21282122, 1159402496, 36, 33, 0},
    {"googlenet", 5871914, 1447241728, 55, 19, 0},
    {"mobilenetv2", 2236682, 87976448, 52, 18, 17},
    {"efficientnet_lite0", 3383818, 31352192, 49, 17, 16},
};

ModelConfig cifar10(const std::string& name) { return ModelConfig{name, 10, 3, 32}; }

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

bool is_depthwise(const torch::nn::Conv2dImpl& conv) {
  return conv.options.groups() > 1 && conv.options.groups() == conv.options.in_channels();
}

// Also WAS-SPEC §2: every convolution larger than 1x1 is transformed, grouped
// and depthwise ones included; 1x1 convolutions never are. Prints the figures
// with --gtest_filter=ModelsTest.SizesMatchDocsModels.
TEST(ModelsTest, SizesMatchDocsModels) {
  for (const auto& f : kZoo) {
    Network net(cifar10(f.name), Policy::parse("CTR"), 0);
    const int64_t params = parameter_count(net.module());
    const auto count = net.macs(Mode::aom());
    const int64_t aom = count.total();
    int64_t kxk_macs = 0;  // the share of the MACs that WAS can thin out
    for (const auto& layer : count.layers)
      if (layer.op == "conv" && layer.weight_shape[2] * layer.weight_shape[3] > 1) kxk_macs += layer.macs;
    int64_t convolutions = 0, larger_than_1x1 = 0;
    for (const auto& module : net.module().modules(/*include_self=*/false)) {
      if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get())) {
        ++convolutions;
        larger_than_1x1 += conv->weight.size(2) > 1 || conv->weight.size(3) > 1;
      }
    }
    int64_t depthwise = 0;
    for (const auto& layer : net.shadow().layers()) {
      depthwise += is_depthwise(layer.conv());
      EXPECT_GT(layer.plain_weight().size(2) * layer.plain_weight().size(3), 1) << f.name << ": " << layer.name();
    }
    const auto transformed = int64_t(net.shadow().layers().size());
    std::cout << "| " << f.name << " | " << params << " | " << aom << " | " << transformed << " of " << convolutions
              << " convs (" << depthwise << " depthwise) | " << kxk_macs << " MACs in them |\n";
    EXPECT_EQ(params, f.parameters) << f.name;
    EXPECT_EQ(aom, f.aom_macs) << f.name;
    EXPECT_EQ(convolutions, f.convolutions) << f.name;
    EXPECT_EQ(transformed, f.transformed) << f.name;
    EXPECT_EQ(transformed, larger_than_1x1) << f.name;
    EXPECT_EQ(depthwise, f.depthwise) << f.name;
  }
}

TEST(ModelsTest, ClassesAndInputChannelsAreHonoured) {
  auto model = was::models::create_model(ModelConfig{"mobilenetv2", 100, 1, 32});
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::randn({2, 1, 32, 32})).sizes(), (std::vector<int64_t>{2, 100}));
}

TEST(ModelsTest, VggRefusesImagesItWouldPoolAway) {
  EXPECT_THROW(was::models::create_model(ModelConfig{"vgg16", 10, 1, 28}), was::Error);
}

TEST(ModelsTest, WasCtrTrainingStepChangesW) {
  torch::manual_seed(0);
  const auto x = torch::randn({2, 3, 32, 32});
  const auto y = torch::tensor({1, 7}, torch::kLong);
  for (const auto& f : kZoo) {
    torch::manual_seed(0);
    Network net(cifar10(f.name), Policy::parse("CTR"), 0);
    std::vector<torch::Tensor> before;
    for (const auto& layer : net.shadow().layers()) before.push_back(layer.plain_weight().detach().clone());
    torch::optim::SGD sgd(net.module().parameters(), torch::optim::SGDOptions(0.1));
    net.begin_training_step(0);
    const auto logits = net.forward(x);
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10})) << f.name;
    const auto loss = torch::nn::functional::cross_entropy(logits, y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    EXPECT_TRUE(std::isfinite(loss.item<double>())) << f.name;
    for (size_t i = 0; i < before.size(); ++i) {
      const auto& layer = net.shadow().layers()[i];
      EXPECT_FALSE(torch::equal(layer.plain_weight(), before[i]))
          << f.name << ": W of " << layer.name() << " unchanged";
    }
  }
}

// Prints the DOM column of docs/MODELS.md with --gtest_filter=ModelsTest.AomAndDomDiffer.
TEST(ModelsTest, AomAndDomDiffer) {
  torch::manual_seed(0);
  const auto x = torch::randn({2, 3, 32, 32});
  for (const auto& f : kZoo) {
    // DOM MACs count the non-zero taps of S, and the initialisation's normal
    // sampler emits an exact 0.0 about once in 10^7 draws: fix W's seed.
    torch::manual_seed(0);
    Network net(cifar10(f.name), Policy::parse("crop=0.4:0.6"), 0);
    // Each mode's BatchNorm statistics (WAS-SPEC §5); with the initial ones
    // (mean 0, variance 1) the ReLU6 networks saturate and both modes print 6s.
    net.reestimate_batchnorm(Mode::aom(), 1, [&](int64_t) { return x; });
    net.reestimate_batchnorm(Mode::dom(0), 1, [&](int64_t) { return x; });
    torch::NoGradGuard no_grad;
    net.set_mode(Mode::aom());
    const auto aom = net.forward(x);
    net.set_mode(Mode::dom(0));
    const auto dom = net.forward(x);
    EXPECT_EQ(dom.sizes(), (std::vector<int64_t>{2, 10})) << f.name;
    EXPECT_FALSE(torch::allclose(aom, dom, 1e-4, 1e-4)) << f.name;

    const int64_t dom_macs = net.macs(Mode::dom(0)).total();
    std::cout << "| " << f.name << " | DOM crop 0.4:0.6 " << dom_macs << " | " << 100.0 * dom_macs / f.aom_macs
              << "% of AOM |\n";
    EXPECT_LT(dom_macs, f.aom_macs) << f.name;
  }
}

// The layouts docs/MODELS.md sets beside the paper's Table 2 (3 x 32 x 32, 10
// classes); prints them with --gtest_filter=ModelsTest.PaperLayoutVariants.
TEST(ModelsTest, PaperLayoutVariants) {
  using namespace was::models;
  const ModelConfig config = cifar10("variant");
  struct Variant {
    std::string name;
    std::shared_ptr<ClassifierImpl> model;
    int64_t parameters, macs;
  };
  const std::vector<Variant> variants = {
      {"vgg16, classifier 512-4096-4096-10",
       std::make_shared<VggImpl>(vgg16_widths(), config, VggOptions().classifier_hidden(4096)), 33642442, 332111872},
      {"googlenet, two 3x3 for each 5x5",
       std::make_shared<GoogLeNetImpl>(config, GoogLeNetOptions().factorize_5x5(true)), 6158346, 1521756160},
      {"mobilenetv2, stem stride 1, stage 2 stride 2",
       std::make_shared<MobileNetV2Impl>(config, MobileNetV2Options().stage2_stride(2)), 2236682, 24461312},
      {"mobilenetv2, stem stride 2, stage 2 stride 1",
       std::make_shared<MobileNetV2Impl>(config, MobileNetV2Options().stem_stride(2)), 2236682, 22003712},
      {"mobilenetv2, ImageNet strides", std::make_shared<MobileNetV2Impl>(config, MobileNetV2Options::imagenet()),
       2236682, 6124928},
      {"efficientnet_lite0, ImageNet strides",
       std::make_shared<EfficientNetLiteImpl>(config, EfficientNetLiteOptions::imagenet()), 3383818, 7847648},
      {"efficientnet_lite0, stem stride 1, stage 2 stride 1",
       std::make_shared<EfficientNetLiteImpl>(config, EfficientNetLiteOptions().stage2_stride(1)), 3383818, 115539968},
  };
  for (const auto& v : variants) {
    v.model->eval();
    torch::NoGradGuard no_grad;
    const int64_t macs = was::count_macs([&](torch::Tensor x) { return v.model->forward(x); }, {1, 3, 32, 32}).total();
    const int64_t params = parameter_count(*v.model);
    std::cout << "| " << v.name << " | " << params << " | " << macs << " |\n";
    EXPECT_EQ(params, v.parameters) << v.name;
    EXPECT_EQ(macs, v.macs) << v.name;
  }
}

}  // namespace
