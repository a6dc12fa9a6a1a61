// Gradient all-reduce overlapped with backward: two ranks (threads of this
// process, over Gloo on loopback) get the sum of their gradients, and buckets
// start inside backward; WAS's shadow weights are drawn when each layer runs,
// so W's gradient arrives during backward, not after it.
#include <gtest/gtest.h>

#include <thread>

#include "free_port.h"
#include "was/distributed/gradient_reducer.h"
#include "was/network.h"

namespace {

using was::Policy;

// One rank's step on its own batch; the network is the same on every rank.
struct RankStep {
  std::vector<torch::Tensor> grads;
  size_t buckets = 0, started_in_backward = 0;
};

// Each rank's batch (drawn up front: torch's generator is shared by threads).
std::pair<torch::Tensor, torch::Tensor> reducer_test_batch(int rank) {
  torch::manual_seed(100 + rank);
  auto x = torch::randn({4, 3, 16, 16});
  return {x, torch::randint(0, 10, {4})};
}

void reducer_test_backward(was::Network& net, const std::pair<torch::Tensor, torch::Tensor>& batch) {
  net.begin_training_step(3);
  torch::nn::functional::cross_entropy(net.forward(batch.first), batch.second).backward();
}

std::unique_ptr<was::Network> reducer_test_network() {
  torch::manual_seed(0);
  return std::make_unique<was::Network>(was::models::ModelConfig{"small_cnn", 10, 3, 16}, Policy::parse("CT"), 0);
}

TEST(GradientReducerTest, RanksGetTheSumWithBucketsStartedDuringBackward) {
  if (!was::distributed::ProcessGroup::supported()) GTEST_SKIP() << "this LibTorch has no c10d/Gloo";
  const int port = was::testing::free_loopback_port();
  RankStep steps[2];
  std::unique_ptr<was::Network> nets[2] = {reducer_test_network(), reducer_test_network()};
  const std::pair<torch::Tensor, torch::Tensor> batches[2] = {reducer_test_batch(0), reducer_test_batch(1)};
  auto rank_main = [&](int rank) {
    was::distributed::Rendezvous r;
    r.rank = rank;
    r.world_size = 2;
    r.master_port = port;
    r.timeout_s = 30;
    was::distributed::ProcessGroup group(r);
    auto& net = nets[rank];
    // 4 KiB buckets: many of them, most filled while backward still runs.
    was::distributed::GradientReducer reducer(group, net->module().parameters(), 4096);
    // Twice: the first backward also teaches the reducer its gradient order.
    for (int step = 0; step < 2; ++step) {
      for (auto& p : net->module().parameters()) p.mutable_grad() = torch::Tensor();
      reducer.prepare();
      reducer_test_backward(*net, batches[rank]);
      reducer.finish();
    }
    for (const auto& p : net->module().parameters()) steps[rank].grads.push_back(p.grad().clone());
    steps[rank].buckets = reducer.bucket_count();
    steps[rank].started_in_backward = reducer.buckets_started_in_backward();
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();

  // The reference: each rank's gradient computed alone, summed.
  std::vector<torch::Tensor> expected;
  for (int rank = 0; rank < 2; ++rank) {
    auto net = reducer_test_network();
    reducer_test_backward(*net, batches[rank]);
    const auto params = net->module().parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (rank == 0)
        expected.push_back(params[i].grad().clone());
      else
        expected[i] += params[i].grad();
    }
  }
  ASSERT_EQ(steps[0].grads.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(torch::allclose(steps[0].grads[i], expected[i], 1e-5, 1e-6)) << "parameter " << i;
    EXPECT_TRUE(torch::equal(steps[0].grads[i], steps[1].grads[i])) << "parameter " << i;
  }
  EXPECT_GT(steps[0].buckets, 4u);
  // Every bucket but those holding the first layers' gradients starts inside backward.
  EXPECT_GE(steps[0].started_in_backward, steps[0].buckets - 2);
}

TEST(GradientReducerTest, ShadowWeightGradientsArriveDuringBackward) {
  // The last convolution's W gets its gradient before the first BatchNorm's
  // parameters: the transform T(W) runs next to its convolution.
  auto net = reducer_test_network();
  const auto named = net->module().named_parameters();
  std::vector<std::string> order;
  std::vector<std::pair<torch::Tensor, unsigned>> hooks;
  std::string first_bn, last_conv_weight;
  for (const auto& item : named) {
    if (first_bn.empty() && item.key().find("bn") != std::string::npos) first_bn = item.key();
    if (item.value().dim() == 4 && item.value().size(2) > 1) last_conv_weight = item.key();
    const std::string name = item.key();
    hooks.emplace_back(item.value(),
                       item.value().register_hook([&order, name](const torch::Tensor&) { order.push_back(name); }));
  }
  ASSERT_FALSE(first_bn.empty());
  ASSERT_FALSE(last_conv_weight.empty());
  reducer_test_backward(*net, reducer_test_batch(0));
  for (auto& [p, h] : hooks) p.remove_hook(h);
  const auto at = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  ASSERT_EQ(order.size(), named.size());
  EXPECT_LT(at(last_conv_weight), at(first_bn)) << last_conv_weight << " vs " << first_bn;
}

}  // namespace
