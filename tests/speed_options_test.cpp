// The training speed options compute what the default path computes:
// channels-last activations give the same outputs and gradients; bfloat16
// autocast really runs in bfloat16 and still trains.
#include <gtest/gtest.h>

#include "cli_fixture.h"
#include "was/core/runtime.h"
#include "was/io/checkpoint.h"
#include "was/network.h"

namespace {

using was::Policy;

struct StepResult {
  torch::Tensor logits;
  std::vector<torch::Tensor> grads;
};

// A forward and backward in training (a WAS draw, batch statistics) or in
// evaluation (AOM, running statistics: BatchNorm is affine).
StepResult speed_test_step(const std::string& model, bool channels_last, torch::Dtype dtype, bool training) {
  torch::manual_seed(0);
  was::Network net({model, 10, 3, 32}, Policy::parse("CT"), 0);
  net.module().to(dtype);
  torch::manual_seed(1);
  auto x = torch::randn({4, 3, 32, 32}, dtype);
  const auto y = torch::randint(0, 10, {4});
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  if (training)
    net.begin_training_step(5);
  else
    net.set_mode(was::Mode::aom());
  const auto logits = net.forward(x);
  torch::nn::functional::cross_entropy(logits, y).backward();
  StepResult r{logits.detach(), {}};
  for (const auto& p : net.module().parameters()) r.grads.push_back(p.grad().clone());
  return r;
}

TEST(SpeedOptionsTest, ChannelsLastGivesTheSameOutputsAndGradients) {
  // float32, oneDNN's NHWC kernels, BatchNorm affine: equal up to summation
  // order. (With batch statistics of 4 images, float32 rounding alone moves
  // some gradients by 10% or more, in Python PyTorch just as here.)
  for (const char* model : {"small_cnn", "resnet18", "mobilenetv2"}) {
    const auto a = speed_test_step(model, false, torch::kFloat, false);
    const auto b = speed_test_step(model, true, torch::kFloat, false);
    EXPECT_TRUE(torch::allclose(a.logits, b.logits, 1e-4, 1e-5)) << model;
    for (size_t i = 0; i < a.grads.size(); ++i) {
      const double scale = a.grads[i].abs().max().item<double>() + 1e-12;
      EXPECT_LT((a.grads[i] - b.grads[i]).abs().max().item<double>() / scale, 1e-3) << model << " parameter " << i;
    }
  }
  // float64, a WAS training step: equal up to rounding.
  for (const char* model : {"small_cnn", "resnet18", "mobilenetv2"}) {
    const auto a = speed_test_step(model, false, torch::kFloat64, true);
    const auto b = speed_test_step(model, true, torch::kFloat64, true);
    EXPECT_TRUE(torch::allclose(a.logits, b.logits, 1e-9, 1e-10)) << model;
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t i = 0; i < a.grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(a.grads[i], b.grads[i], 1e-7, 1e-9)) << model << " parameter " << i;
  }
}

TEST(SpeedOptionsTest, BFloat16AutocastRunsInBFloat16AndTrains) {
  torch::manual_seed(0);
  was::Network net({"small_cnn", 4, 3, 16}, Policy::parse("CT"), 0);
  torch::optim::SGD opt(net.module().parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  // A tiny learnable task: the class is the brightest quarter of the image.
  auto x = torch::randn({64, 3, 16, 16}) * 0.3;
  const auto y = torch::randint(0, 4, {64});
  for (int64_t i = 0; i < 64; ++i) {
    const int64_t q = y[i].item<int64_t>();
    x[i].slice(1, (q / 2) * 8, (q / 2) * 8 + 8).slice(2, (q % 2) * 8, (q % 2) * 8 + 8) += 1.0;
  }
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    net.begin_training_step(step);
    torch::Tensor logits;
    {
      was::BFloat16Autocast autocast(torch::kCPU, true);
      logits = net.forward(x);
      ASSERT_EQ(logits.scalar_type(), torch::kBFloat16);  // autocast is really on
    }
    const auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  for (const auto& p : net.module().parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);  // W stays float32
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
  // The guard restores the previous state.
  EXPECT_EQ(net.forward(x).scalar_type(), torch::kFloat);
}

TEST(SpeedOptionsTest, BFloat16StepRunsOnEveryModel) {
  // Every op of every zoo model needs a bfloat16 backward (ReLU6 had none).
  for (const auto& name : was::models::model_names()) {
    torch::manual_seed(0);
    was::Network net({name, 10, 3, 32}, Policy::parse("CT"), 0);
    net.begin_training_step(0);
    torch::Tensor logits;
    {
      was::BFloat16Autocast autocast(torch::kCPU, true);
      logits = net.forward(torch::randn({2, 3, 32, 32}));
    }
    EXPECT_NO_THROW(torch::nn::functional::cross_entropy(logits.to(torch::kFloat), torch::tensor({1, 2})).backward())
        << name;
  }
}

using SpeedOptionsCliTest = was::testing::CliTest;

TEST_F(SpeedOptionsCliTest, TrainStoresTheOptionsAndResumesWithThem) {
  const std::string out = (dir / "run").string();
  auto r =
      run("train --dataset synthetic --model small_cnn --was CT --epochs 1 --batch-size 32 --bn-batches 1 "
          "--channels-last --bf16 --no-progress --threads 1 --max-steps 2 --out " +
          out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto state = was::load_checkpoint(out + "/last.pt").state;
  EXPECT_TRUE(state.options.channels_last);
  EXPECT_TRUE(state.options.bf16);
  r = run("train --resume " + out + " --bf16");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--bf16 cannot be combined with --resume"), std::string::npos) << r.err;
}

}  // namespace
