// Shadow weights and modes (WAS-SPEC §4-5) on the controller and on WasConv2d.
#include <gtest/gtest.h>

#include "was/core/error.h"
#include "was/network.h"
#include "was/shadow.h"

namespace {

using was::Mode;
using was::Policy;

// A model this project did not write: convolutions as plain members.
struct ForeignNetImpl : torch::nn::Module {
  ForeignNetImpl()
      : stem(register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)))),
        depthwise(
            register_module("depthwise", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 5).padding(2).groups(8)))),
        pointwise(register_module("pointwise", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 4, 1)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return pointwise(torch::relu(depthwise(torch::relu(stem(x))))); }
  torch::nn::Conv2d stem, depthwise, pointwise;
};
TORCH_MODULE(ForeignNet);

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(ShadowWeightsTest, AttachesToEveryConvLargerThan1x1) {
  ForeignNet net;
  was::ShadowWeights shadow(net.ptr(), Policy::parse("CT"), 0);
  ASSERT_EQ(shadow.layers().size(), 2u);
  EXPECT_EQ(shadow.layers()[0].name(), "stem");
  EXPECT_EQ(shadow.layers()[1].name(), "depthwise");
  was::ShadowWeights excluded(net.ptr(), Policy::parse("CT,exclude=stem"), 0);
  ASSERT_EQ(excluded.layers().size(), 1u);
  EXPECT_EQ(excluded.layers()[0].name(), "depthwise");
  EXPECT_THROW(was::ShadowWeights(net.ptr(), Policy::parse("CT,exclude=nothere"), 0), was::Error);
}

TEST(ShadowWeightsTest, AomEqualsPlainConvolutionWithW) {
  ForeignNet net;
  const auto x = torch::randn({2, 3, 9, 9});
  net->eval();
  const auto reference = net->forward(x);
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.4:0.6,rotate=0:90"), 3);
  shadow.use_mode(Mode::dom(5));
  shadow.use_mode(Mode::aom());
  EXPECT_TRUE(torch::equal(net->forward(x), reference));
}

TEST(ShadowWeightsTest, DomIsDeterministicAndEqualsConvWithItsShadowWeights) {
  ForeignNet net;
  net->eval();
  const auto x = torch::randn({2, 3, 9, 9});
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.4:0.6,translate=0.3:0.3"), 3);
  shadow.use_mode(Mode::dom(7));
  const auto a = net->forward(x);
  shadow.use_mode(Mode::aom());
  shadow.use_mode(Mode::dom(7));
  EXPECT_TRUE(torch::equal(net->forward(x), a));
  // By hand: the stem with its DOM shadow weights.
  const auto& stem = shadow.layers()[0];
  const auto s = stem.shadow_weight(stem.draw(7, was::StreamDomain::kDomDraw, 0));
  const auto by_hand = torch::conv2d(x, s, net->stem->bias, 1, 1);
  EXPECT_TRUE(torch::allclose(net->stem->forward(x), by_hand, 1e-6, 1e-6));
  shadow.use_mode(Mode::dom(8));
  EXPECT_FALSE(torch::equal(net->forward(x), a));
}

TEST(ShadowWeightsTest, ModeSwitchesNeverChangeW) {
  ForeignNet net;
  const auto before = snapshot(*net);
  was::ShadowWeights shadow(net.ptr(), Policy::parse("CTR"), 1);
  for (int i = 0; i < 3; ++i) {
    shadow.use_mode(Mode::dom(i));
    shadow.draw_for_training(i);
    shadow.use_mode(Mode::aom());
  }
  const auto after = snapshot(*net);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
  // W is still what the optimiser sees: the registered parameter.
  EXPECT_TRUE(net->stem->named_parameters(false)["weight"].is_same(shadow.layers()[0].plain_weight()));
}

TEST(ShadowWeightsTest, TrainingGradientOfWIsAdjointOfGradientAtS) {
  ForeignNet net;
  net->train();
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.4:1,translate=0.3:0.3,rotate=0:90"), 11);
  shadow.draw_for_training(4);
  const auto s = net->stem->weight;  // the shadow tensor of this step
  s.retain_grad();
  net->forward(torch::randn({2, 3, 9, 9})).pow(2).sum().backward();
  const auto& layer = shadow.layers()[0];
  const auto params = layer.draw(11, was::StreamDomain::kTrainingDraw, 4);
  const auto a_t = was::transform_matrix(params[0], 3, 3).t();
  const auto expected = was::apply_plane_transform(s.grad(), a_t);
  EXPECT_TRUE(torch::allclose(layer.plain_weight().grad(), expected, 1e-5, 1e-6));
}

TEST(ShadowWeightsTest, EachStepAndLayerDrawsAfresh) {
  ForeignNet net;
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.2:1,translate=0.5:0.5,rotate=0:360"), 0);
  const auto& l0 = shadow.layers()[0];
  const auto& l1 = shadow.layers()[1];
  std::set<std::string> seen;
  for (uint64_t step = 0; step < 20; ++step)
    seen.insert(l0.draw(0, was::StreamDomain::kTrainingDraw, step)[0].to_string());
  EXPECT_GT(seen.size(), 15u);
  EXPECT_NE(l0.draw(0, was::StreamDomain::kTrainingDraw, 3)[0].to_string(),
            l1.draw(0, was::StreamDomain::kTrainingDraw, 3)[0].to_string());
}

TEST(ShadowWeightsTest, FilterGranularityDrawsPerFilter) {
  ForeignNet net;
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.2:0.6,granularity=filter"), 0);
  const auto params = shadow.layers()[0].draw(0, was::StreamDomain::kDomDraw, 0);
  ASSERT_EQ(params.size(), 8u);
  std::set<std::string> distinct;
  for (const auto& p : params) distinct.insert(p.to_string());
  EXPECT_GT(distinct.size(), 1u);
  // Each filter's shadow plane is its own draw applied to its own W.
  const auto s = shadow.layers()[0].shadow_weight(params);
  const auto w = shadow.layers()[0].plain_weight();
  for (int64_t o = 0; o < 8; ++o)
    EXPECT_TRUE(torch::allclose(s[o], was::apply_transform(w.slice(0, o, o + 1), params[o])[0], 1e-6, 1e-7));
}

TEST(ShadowWeightsTest, SparsityCountsZerosOfShadowWeights) {
  ForeignNet net;
  was::ShadowWeights shadow(net.ptr(), Policy::parse("crop=0.2:0.4"), 0);  // 3x3 -> 1x1, 5x5 -> 1x1 or 2x2
  const auto aom = shadow.sparsity(Mode::aom());
  EXPECT_EQ(aom.transformed_zeros, 0);
  const auto dom = shadow.sparsity(Mode::dom(0));
  EXPECT_EQ(dom.transformed_weights, 8 * 3 * 9 + 8 * 25);
  EXPECT_GT(dom.transformed_rate(), 0.7);
  EXPECT_EQ(dom.conv_weights, dom.transformed_weights + 4 * 8);  // + the 1x1
  EXPECT_LT(dom.conv_rate(), dom.transformed_rate());
}

TEST(WasConv2dTest, DropInWithModesAndFreshTrainingDraws) {
  was::WasConv2d conv(torch::nn::Conv2dOptions(2, 4, 3).padding(1), Policy::parse("crop=0.4:0.6"), 5, 0);
  const auto x = torch::randn({1, 2, 6, 6});
  conv->eval();
  conv->set_mode(Mode::aom());
  EXPECT_TRUE(torch::allclose(conv->forward(x), torch::conv2d(x, conv->weight, conv->bias, 1, 1)));
  conv->set_mode(Mode::dom(2));
  const auto dom = conv->forward(x);
  const auto s = conv->shadow().dom_weight(2);
  EXPECT_TRUE(torch::allclose(dom, torch::conv2d(x, s, conv->bias, 1, 1), 1e-6, 1e-6));
  conv->train();
  const auto t0 = conv->forward(x);
  const auto t1 = conv->forward(x);
  EXPECT_EQ(conv->step(), 2u);
  EXPECT_FALSE(torch::equal(t0, t1));  // a fresh draw per forward
}

TEST(WasConv2dTest, ControllerDrivesWasConv2dLayers) {
  auto seq = torch::nn::Sequential(was::WasConv2d(torch::nn::Conv2dOptions(2, 4, 3), Policy::parse("C"), 0, 0));
  was::ShadowWeights shadow(seq.ptr(), Policy::parse("CT"), 9);
  ASSERT_EQ(shadow.layers().size(), 1u);
  auto* conv = seq[0]->as<was::WasConv2dImpl>();
  ASSERT_NE(conv, nullptr);
  const auto& layer = shadow.layers()[0];
  EXPECT_EQ(layer.policy().to_string(), Policy::parse("C").to_string());  // the layer keeps its own policy
  const auto x = torch::randn({1, 2, 5, 5});
  // The controller's mode, not the layer's own (AOM), decides what it computes.
  seq->eval();
  shadow.use_mode(Mode::dom(3));
  EXPECT_TRUE(torch::equal(seq->forward(x), torch::conv2d(x, layer.dom_weight(3), conv->bias)));
  EXPECT_TRUE(conv->mode() == Mode::aom());
  // Training: the controller's draw of its step, keyed by its seed (9) and the layer's index.
  seq->train();
  shadow.draw_for_training(42);
  const auto expected = torch::conv2d(x, layer.training_weight(9, 42), conv->bias);
  EXPECT_TRUE(torch::equal(seq->forward(x), expected));
  EXPECT_TRUE(torch::equal(seq->forward(x), expected));  // the same step until the next draw
  EXPECT_EQ(conv->step(), 0u);                           // its own counter stays unused
}

TEST(ModeTest, ParseAndKeys) {
  EXPECT_EQ(Mode::parse("aom").key(), "aom");
  EXPECT_EQ(Mode::parse("dom").key(), "dom:0");
  EXPECT_EQ(Mode::parse("dom:12").key(), "dom:12");
  EXPECT_THROW(Mode::parse("dom:-1"), was::Error);
  EXPECT_THROW(Mode::parse("fast"), was::Error);
}

}  // namespace
