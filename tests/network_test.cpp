// MACs (WAS-SPEC §6), per-mode BatchNorm statistics (§5) and the model zoo.
#include <gtest/gtest.h>

#include "was/core/error.h"
#include "was/network.h"
#include "was/nn/macs.h"

namespace {

using was::Mode;
using was::Network;
using was::Policy;
using was::models::ModelConfig;

TEST(MacsTest, ResNet18CifarIs555MillionMacs) {
  Network net(ModelConfig{"resnet18", 10, 3, 32}, Policy::parse("none"), 0);
  const auto macs = net.macs(Mode::aom());
  // The figure common FLOP counters give for CIFAR ResNet-18: 555.42 M.
  EXPECT_NEAR(double(macs.total()), 555.42e6, 555.42e6 * 0.005);
  EXPECT_EQ(macs.linear, 512 * 10);
  int64_t convs = 0;
  for (const auto& l : macs.layers) convs += l.op == "conv";
  EXPECT_EQ(convs, 20);  // 17 3x3 + 3 projection shortcuts
}

TEST(MacsTest, DomMacsAreNonZeroShadowWeightsTimesOutputPositions) {
  Network net(ModelConfig{"small_cnn", 10, 1, 28}, Policy::parse("crop=0.4:0.6,translate=0.3:0.3"), 0);
  const Mode dom = Mode::dom(4);
  const auto count = net.macs(dom);
  net.set_mode(dom);
  const auto weights = net.shadow().active_weights();
  // small_cnn: 28x28 -> conv1 at 28x28, conv2 at 14x14, conv3 at 7x7.
  const int64_t positions[] = {28 * 28, 14 * 14, 7 * 7};
  int64_t expected = 0;
  for (size_t i = 0; i < weights.size(); ++i) expected += weights[i].count_nonzero().item<int64_t>() * positions[i];
  EXPECT_EQ(count.conv, expected);
  EXPECT_LT(count.total(), net.macs(Mode::aom()).total());
  // AOM counts every tap.
  const auto aom = net.macs(Mode::aom());
  EXPECT_EQ(aom.conv, (32 * 1 * 9) * 28 * 28 + (64 * 32 * 9) * 14 * 14 + (128 * 64 * 9) * 7 * 7);
}

TEST(MacsTest, GroupedConvolutionsCountTheirOwnWeights) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).padding(1).groups(8));
  const auto count = was::count_macs([&](torch::Tensor x) { return conv(x); }, {1, 8, 10, 10});
  EXPECT_EQ(count.conv, 8 * 1 * 9 * 100);
}

// Feeds the same fixed batches to a re-estimation and checks the result is
// the exact average of per-batch statistics.
TEST(BatchNormTest, ReestimationIsTheAverageOverBatches) {
  Network net(ModelConfig{"small_cnn", 4, 1, 8}, Policy::parse("CT"), 0);
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 3; ++i) batches.push_back(torch::randn({16, 1, 8, 8}) * (i + 1));
  net.reestimate_batchnorm(Mode::aom(), 3, [&](int64_t i) { return batches[i]; });
  // bn1 sees conv1's output; compute its batch means by hand.
  auto& module = net.module();
  auto conv1 = module.named_children()["conv1"]->as<torch::nn::Conv2dImpl>();
  torch::Tensor mean_sum = torch::zeros({32});
  {
    torch::NoGradGuard no_grad;
    for (const auto& b : batches) mean_sum += conv1->forward(b).mean({0, 2, 3});
  }
  const auto bn1_mean = module.named_children()["bn1"]->named_buffers()["running_mean"];
  EXPECT_TRUE(torch::allclose(bn1_mean, mean_sum / 3, 1e-4, 1e-5));
  EXPECT_FALSE(module.is_training());
}

TEST(BatchNormTest, StatisticsSwitchWithTheMode) {
  Network net(ModelConfig{"small_cnn", 4, 1, 8}, Policy::parse("crop=0.4:0.6"), 0);
  const auto data = torch::randn({32, 1, 8, 8});
  net.reestimate_batchnorm(Mode::aom(), 1, [&](int64_t) { return data; });
  net.reestimate_batchnorm(Mode::dom(0), 1, [&](int64_t) { return data; });
  auto mean_of_bn1 = [&] { return net.module().named_children()["bn1"]->named_buffers()["running_mean"].clone(); };
  net.set_mode(Mode::aom());
  const auto aom_mean = mean_of_bn1();
  net.set_mode(Mode::dom(0));
  const auto dom_mean = mean_of_bn1();
  EXPECT_FALSE(torch::allclose(aom_mean, dom_mean));
  net.set_mode(Mode::aom());
  EXPECT_TRUE(torch::equal(mean_of_bn1(), aom_mean));
  EXPECT_EQ(net.batchnorm().keys(), (std::vector<std::string>{"aom", "dom:0"}));
}

TEST(ModelZooTest, ShapesAndUnknownNames) {
  for (const auto& name : {"small_cnn", "resnet18"}) {
    auto model = was::models::create_model(ModelConfig{name, 7, 3, 32});
    model->eval();
    EXPECT_EQ(model->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 7})) << name;
  }
  try {
    was::models::create_model(ModelConfig{"resnet99", 10, 3, 32});
    FAIL() << "accepted an unknown model";
  } catch (const was::Error& e) {
    EXPECT_NE(std::string(e.hint()).find("resnet18"), std::string::npos);
  }
}

TEST(ModelZooTest, ResNet18ParameterCount) {
  auto model = was::models::create_model(ModelConfig{"resnet18", 10, 3, 32});
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  EXPECT_EQ(params, 11173962);  // the CIFAR ResNet-18 figure (bias-free convs, BN affine, fc with bias)
}

}  // namespace
