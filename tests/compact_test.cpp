// Compact DOM equals uncompacted DOM; BatchNorm folding; exports.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "was/core/error.h"
#include "was/io/export.h"
#include "was/nn/batchnorm_fold.h"
#include "was/nn/compact.h"
#include "was/nn/layers.h"
#include "was/nn/macs.h"

namespace {

namespace fs = std::filesystem;
using was::CompactableConv2d;
using was::KernelWindow;

torch::Tensor masked_weight(int64_t out, int64_t in, int64_t k, KernelWindow win) {
  auto w = torch::randn({out, in, k, k});
  auto mask = torch::zeros({k, k});
  mask.slice(0, win.r0, win.r1 + 1).slice(1, win.c0, win.c1 + 1).fill_(1);
  return w * mask;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * scale);
}

TEST(CompactTest, NonzeroWindow) {
  const auto w = masked_weight(4, 3, 5, {1, 3, 0, 1});
  const auto win = was::nonzero_window(w);
  EXPECT_EQ(win.r0, 1);
  EXPECT_EQ(win.r1, 3);
  EXPECT_EQ(win.c0, 0);
  EXPECT_EQ(win.c1, 1);
  EXPECT_TRUE(was::nonzero_window(torch::zeros({2, 2, 3, 3})).empty());
}

// Every window of a 3x3 and some of a 5x5, several geometries: the compact
// convolution equals the dense one.
TEST(CompactTest, EveryWindowAndGeometryMatchesDense) {
  torch::manual_seed(0);
  struct Geometry {
    int64_t k, stride, padding, dilation, groups, in;
  };
  for (const auto g : {Geometry{3, 1, 1, 1, 1, 4}, Geometry{3, 2, 1, 1, 1, 4}, Geometry{3, 1, 0, 1, 1, 4},
                       Geometry{5, 1, 2, 1, 1, 3}, Geometry{3, 1, 2, 2, 1, 3}, Geometry{3, 2, 1, 1, 8, 8},
                       Geometry{3, 1, 1, 1, 8, 8}, Geometry{5, 1, 2, 1, 8, 8}}) {
    for (int64_t r0 = 0; r0 < g.k; ++r0)
      for (int64_t r1 = r0; r1 < g.k; r1 += (g.k == 5 ? 2 : 1))
        for (int64_t c0 = 0; c0 < g.k; c0 += (g.k == 5 ? 2 : 1))
          for (int64_t c1 = c0; c1 < g.k; ++c1) {
            if (r0 == 0 && c0 == 0 && r1 == g.k - 1 && c1 == g.k - 1) continue;
            CompactableConv2d conv(torch::nn::Conv2dOptions(g.in, 8, g.k)
                                       .stride(g.stride)
                                       .padding(g.padding)
                                       .dilation(g.dilation)
                                       .groups(g.groups));
            conv->eval();
            {
              torch::NoGradGuard no_grad;
              conv->weight.copy_(masked_weight(8, g.in / g.groups, g.k, {r0, r1, c0, c1}));
            }
            auto plan = was::plan_compaction(*conv, conv->weight, conv->bias);
            // Depthwise layers compact to 1x1 windows (a per-channel scale)
            // and 3x3 windows of larger kernels through oneDNN; other windows
            // only where the own kernel runs (AVX-512, channels a multiple of
            // 16), the full kernel as its alternative.
            const int64_t height = r1 - r0 + 1, width = c1 - c0 + 1;
            const bool oneDNN_window = (height == 1 && width == 1) || (height == 3 && width == 3);
            if (g.groups == g.in && !oneDNN_window) {
              const bool own =
                  was::WindowConv::make(torch::randn({16, 1, 2, 2}), {}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 16) != nullptr;
              EXPECT_FALSE(plan.has_value() && !own) << height << "x" << width;
              if (!plan) continue;
              EXPECT_TRUE(plan->parts[0].dense_fallback);
            }
            ASSERT_TRUE(plan.has_value());
            EXPECT_EQ(plan->compact_taps, (r1 - r0 + 1) * (c1 - c0 + 1) * 8);
            // Odd and even sizes; small maps pad a copy of the input, large
            // ones compute a wider output and slice it.
            for (const auto& [h, w] : {std::pair<int64_t, int64_t>{11, 10}, std::pair<int64_t, int64_t>{33, 32}}) {
              const auto x = torch::randn({2, g.in, h, w});
              conv->set_plan(std::nullopt);
              const auto dense = conv->forward(x);
              conv->set_plan(plan);
              expect_close(conv->forward(x), dense);
            }
          }
  }
}

// A depthwise 1x1 window runs as a per-channel multiply-add of the shifted
// input; it must still count as the convolution it replaces.
TEST(CompactTest, DepthwiseOneByOneWindowRunsElementwiseAndCountsItsMacs) {
  torch::manual_seed(2);
  for (const int64_t stride : {1, 2}) {
    CompactableConv2d conv(torch::nn::Conv2dOptions(6, 6, 3).stride(stride).padding(1).groups(6).bias(true));
    conv->eval();
    {
      torch::NoGradGuard no_grad;
      conv->weight.copy_(masked_weight(6, 1, 3, {0, 0, 2, 2}));  // top-right tap
    }
    const auto plan = was::plan_compaction(*conv, conv->weight, conv->bias);
    ASSERT_TRUE(plan.has_value());
    const auto x = torch::randn({2, 6, 9, 8});
    conv->set_plan(std::nullopt);
    const auto dense = conv->forward(x);
    conv->set_plan(plan);
    expect_close(conv->forward(x), dense);
    const auto macs = was::count_macs([&](torch::Tensor in) { return conv->forward(in); }, {1, 6, 9, 8}, torch::kCPU,
                                      {plan->parts[0].weight});
    ASSERT_EQ(macs.layers.size(), 1u);
    EXPECT_EQ(macs.total(), 6 * dense.size(2) * dense.size(3)) << "stride " << stride;
  }
}

TEST(CompactTest, FiltersWithDifferentSupportsAreGrouped) {
  torch::manual_seed(1);
  CompactableConv2d conv(torch::nn::Conv2dOptions(3, 6, 3).padding(1).bias(true));
  conv->eval();
  {
    torch::NoGradGuard no_grad;
    const KernelWindow windows[] = {{0, 1, 0, 1}, {1, 2, 1, 2}, {0, 1, 0, 1}, {1, 1, 1, 1}, {0, 2, 0, 2}, {1, 2, 1, 2}};
    for (int f = 0; f < 6; ++f) conv->weight[f].copy_(masked_weight(1, 3, 3, windows[f])[0]);
  }
  const auto x = torch::randn({3, 3, 8, 8});
  const auto dense = conv->forward(x);
  auto plan = was::plan_compaction(*conv, conv->weight, conv->bias);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->parts.size(), 4u);
  EXPECT_EQ(plan->compact_taps, 4 + 4 + 4 + 1 + 9 + 4);
  conv->set_plan(plan);
  expect_close(conv->forward(x), dense);
}

TEST(CompactTest, FullKernelsAreLeftAlone) {
  CompactableConv2d conv(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
  EXPECT_FALSE(was::plan_compaction(*conv, conv->weight, conv->bias).has_value());
}

TEST(CompactTest, FoldedBatchNormEqualsConvThenBatchNorm) {
  torch::manual_seed(2);
  CompactableConv2d conv(torch::nn::Conv2dOptions(3, 5, 3).padding(1).bias(false));
  was::FoldableBatchNorm2d bn(5);
  {
    torch::NoGradGuard no_grad;
    bn->running_mean.copy_(torch::randn({5}));
    bn->running_var.copy_(torch::rand({5}) + 0.5);
    bn->weight.copy_(torch::randn({5}));
    bn->bias.copy_(torch::randn({5}));
  }
  conv->eval();
  bn->eval();
  const auto x = torch::randn({2, 3, 7, 7});
  const auto reference = bn->forward(conv->forward(x));
  auto [w, b] = was::fold_batchnorm(conv->weight, conv->bias, *bn);
  expect_close(torch::conv2d(x, w, b, 1, 1), reference);
  bn->set_folded(true);
  EXPECT_TRUE(torch::equal(bn->forward(x), x));
}

}  // namespace
