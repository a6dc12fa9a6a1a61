// The project's own small-window kernel (window_conv.h) equals the dense DOM
// convolution on every window, stride, padding, dilation and size it serves.
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include "was/nn/compact.h"
#include "was/nn/layers.h"
#include "was/nn/macs.h"
#include "was/nn/window_conv.h"

namespace {

using was::KernelWindow;
using was::WindowConv;
using was::WindowKernelChoice;
constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

// Restores the process-wide kernel choice when a test ends.
struct ChoiceGuard {
  WindowKernelChoice saved = was::window_kernel_choice();
  ~ChoiceGuard() { was::set_window_kernel_choice(saved); }
};

bool kernel_available(std::string* why) {
  return WindowConv::make(torch::randn({16, 4, 2, 2}), {}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, why) != nullptr;
}

torch::Tensor masked_weight(int64_t out, int64_t in, int64_t k, KernelWindow win) {
  auto w = torch::randn({out, in, k, k});
  auto mask = torch::zeros({k, k});
  mask.slice(0, win.r0, win.r1 + 1).slice(1, win.c0, win.c1 + 1).fill_(1);
  return w * mask;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * scale) << what;
}

TEST(WindowConvTest, EveryWindowStridePaddingAndSizeEqualsTheDenseConvolution) {
  std::string why;
  if (!kernel_available(&why)) GTEST_SKIP() << "own kernel unavailable here: " << why;
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  struct Geometry {
    int64_t k, stride, padding, dilation, in, out, groups = 1;
  };
  // 48 output channels: a block of 32 and a tail of 16; 3 input channels: odd;
  // depthwise layers (groups = channels) of 48, 32 and 16 channels.
  const Geometry geometries[] = {{3, 1, 1, 1, 16, 32},     {3, 2, 1, 1, 3, 48},      {3, 1, 0, 1, 5, 16},
                                 {5, 1, 2, 1, 4, 32},      {3, 1, 2, 2, 3, 16},      {5, 2, 2, 1, 8, 64},
                                 {3, 1, 1, 1, 48, 48, 48}, {3, 2, 1, 1, 32, 32, 32}, {5, 1, 2, 1, 16, 16, 16},
                                 {5, 2, 2, 1, 16, 16, 16}};
  int64_t checked = 0;
  for (const auto& g : geometries) {
    const int64_t step = g.k == 5 ? 2 : 1;
    for (int64_t r0 = 0; r0 < g.k; ++r0)
      for (int64_t r1 = r0; r1 < g.k; r1 += step)
        for (int64_t c0 = 0; c0 < g.k; c0 += step)
          for (int64_t c1 = c0; c1 < g.k; ++c1) {
            if (r0 == 0 && c0 == 0 && r1 == g.k - 1 && c1 == g.k - 1) continue;
            const torch::nn::Conv2d conv(torch::nn::Conv2dOptions(g.in, g.out, g.k)
                                             .stride(g.stride)
                                             .padding(g.padding)
                                             .dilation(g.dilation)
                                             .groups(g.groups));
            const auto weight = masked_weight(g.out, g.in / g.groups, g.k, {r0, r1, c0, c1});
            const auto bias = torch::randn({g.out});
            const auto plan = was::plan_compaction(*conv, weight, bias);
            ASSERT_TRUE(plan.has_value());
            ASSERT_EQ(plan->parts.size(), 1u);
            const auto& own = plan->parts[0].own_kernel;
            ASSERT_NE(own, nullptr);
            // Odd and even maps, a map smaller than the kernel, batch 1 and 3:
            // windows touch every border, tiles span rows and images.
            for (const auto& [n, h, w] :
                 {std::tuple<int64_t, int64_t, int64_t>{1, 11, 10}, {3, 7, 9}, {2, 2, 3}, {1, 33, 32}}) {
              const int64_t extent = g.dilation * (g.k - 1) + 1;
              if (std::min(h, w) + 2 * g.padding < extent) continue;  // the dense layer refuses the map
              const auto x = torch::randn({n, g.in, h, w});
              const auto dense = torch::conv2d(x, weight, bias, g.stride, g.padding, g.dilation, g.groups);
              const std::string what = std::to_string(r1 - r0 + 1) + "x" + std::to_string(c1 - c0 + 1) + " at (" +
                                       std::to_string(r0) + "," + std::to_string(c0) + ") of " + std::to_string(g.k) +
                                       "x" + std::to_string(g.k) + ", stride " + std::to_string(g.stride) +
                                       ", dilation " + std::to_string(g.dilation) + ", input " + std::to_string(n) +
                                       "x" + std::to_string(h) + "x" + std::to_string(w);
              const auto nhwc = x.contiguous(kChannelsLast);
              if (!own->accepts(nhwc)) {  // only a crop past the whole map (negative padding) is refused
                if (!plan->parts[0].dense_fallback)
                  EXPECT_LT(h + plan->parts[0].pad[2] + plan->parts[0].pad[3], r1 - r0 + 1) << what;
                continue;
              }
              const auto mine = (*own)(nhwc);
              EXPECT_TRUE(mine.is_contiguous(kChannelsLast)) << what;
              expect_close(mine, dense, what);
              ++checked;
            }
          }
  }
  EXPECT_GT(checked, 600);
}

// run_compact takes the own kernel where it is chosen and the input fits,
// oneDNN otherwise; every choice gives the dense result, NCHW and NHWC.
TEST(WindowConvTest, RunCompactGivesTheDenseResultUnderEveryChoiceAndLayout) {
  std::string why;
  if (!kernel_available(&why)) GTEST_SKIP() << "own kernel unavailable here: " << why;
  ChoiceGuard restore;
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  was::CompactableConv2d conv(torch::nn::Conv2dOptions(16, 32, 3).padding(1).bias(true));
  conv->eval();
  conv->weight.copy_(masked_weight(32, 16, 3, {1, 2, 0, 1}));  // a 2x2 window off the centre
  const auto plan = was::plan_compaction(*conv, conv->weight, conv->bias);
  ASSERT_TRUE(plan.has_value());
  const auto x = torch::randn({4, 16, 12, 13});
  const auto dense = conv->forward(x);
  conv->set_plan(plan);
  // Which kernel ran: the own one is recorded as was::window_conv.
  static thread_local int own_calls = 0;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()) == "was::window_conv") ++own_calls;
        return nullptr;
      }));
  for (const auto choice : {WindowKernelChoice::own, WindowKernelChoice::onednn, WindowKernelChoice::automatic}) {
    was::set_window_kernel_choice(choice);
    own_calls = 0;
    expect_close(conv->forward(x), dense, "NCHW");
    EXPECT_EQ(own_calls, 0) << "NCHW input never reaches the own kernel";
    expect_close(conv->forward(x.contiguous(kChannelsLast)), dense, "NHWC");
    if (choice == WindowKernelChoice::own) EXPECT_EQ(own_calls, 1);
    if (choice == WindowKernelChoice::onednn) EXPECT_EQ(own_calls, 0);
  }
  at::removeCallback(handle);
  // Automatic measured this shape once and remembers the winner.
  const std::string chosen = plan->kernel_for(x.sizes().vec());
  EXPECT_TRUE(chosen == "own" || chosen == "onednn") << chosen;
  EXPECT_EQ(plan->kernel_for({1, 16, 5, 5}), "not measured");
}

TEST(WindowConvTest, RefusesWhatItCannotRun) {
  std::string why;
  if (!kernel_available(&why)) GTEST_SKIP() << "own kernel unavailable here: " << why;
  const auto w = torch::randn({32, 8, 2, 2});
  EXPECT_EQ(WindowConv::make(torch::randn({24, 8, 2, 2}), {}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, &why), nullptr);
  EXPECT_NE(why.find("multiple of 16"), std::string::npos) << why;
  EXPECT_EQ(WindowConv::make(torch::randn({32, 4, 2, 2}), {}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 2, &why), nullptr);
  EXPECT_NE(why.find("grouped"), std::string::npos) << why;
  EXPECT_EQ(WindowConv::make(w.to(torch::kFloat64), {}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, &why), nullptr);
  const auto own = WindowConv::make(w, {}, {1, 1}, {1, 1}, {1, 0, 1, 0}, 1);
  ASSERT_NE(own, nullptr);
  const auto x = torch::randn({2, 8, 6, 6});
  EXPECT_TRUE(own->accepts(x.contiguous(kChannelsLast)));
  EXPECT_FALSE(own->accepts(x));                                                     // NCHW
  EXPECT_FALSE(own->accepts(x.to(torch::kFloat64).contiguous(kChannelsLast)));       // double
  EXPECT_FALSE(own->accepts(torch::randn({2, 7, 6, 6}).contiguous(kChannelsLast)));  // channels
  EXPECT_FALSE(own->accepts(x.contiguous(kChannelsLast).requires_grad_()));          // autograd
  EXPECT_FALSE(own->accepts(torch::randn({2, 8, 6}).contiguous()));                  // 3-D
}

// The MACs counter counts the own kernel as the convolution it replaces.
TEST(WindowConvTest, CountsAsAConvolution) {
  std::string why;
  if (!kernel_available(&why)) GTEST_SKIP() << "own kernel unavailable here: " << why;
  const auto w = torch::randn({16, 8, 2, 2});
  const auto own = WindowConv::make(w, {}, {1, 1}, {1, 1}, {1, 0, 1, 0}, 1);
  ASSERT_NE(own, nullptr);
  const auto macs = was::count_macs([&](torch::Tensor in) { return (*own)(in.contiguous(kChannelsLast)); },
                                    {1, 8, 6, 6}, torch::kCPU, {});
  ASSERT_EQ(macs.layers.size(), 1u);
  EXPECT_EQ(macs.total(), 16 * 8 * 4 * 6 * 6);
}

}  // namespace
