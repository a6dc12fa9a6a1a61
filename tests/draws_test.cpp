// Issue 8's training options: the validation hold-out, and K shadow-weight
// draws per step combined by their mean or by the lowest loss.
#include <gtest/gtest.h>

#include <set>

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/train/trainer.h"

namespace {

using was::Network;
using was::Policy;

was::data::Split draws_split() {
  was::data::SyntheticOptions o;
  o.train_size = 64;
  o.test_size = 32;
  o.num_classes = 4;
  o.image_size = 10;
  return was::data::make_synthetic(o);
}

was::RunRecord draws_state(const was::data::Split& split, const std::string& policy) {
  was::RunRecord s;
  s.model = {"small_cnn", split.train.num_classes, split.train.channels(), split.train.height()};
  s.policy = policy;
  s.seed = 3;
  s.dataset = "synthetic";
  s.normalization = split.normalization;
  return s;
}

was::TrainOptions one_step_options(int64_t draws, const std::string& combine) {
  was::TrainOptions o;
  o.epochs = 1;
  o.batch_size = 32;
  o.lr = 0.05;
  o.momentum = 0.0;  // one step: the update is exactly -lr * gradient
  o.bn_batches = 0;
  o.eval_every = 0;
  o.max_steps = 1;
  o.progress = false;
  o.draws = draws;
  o.combine = combine;
  return o;
}

std::unique_ptr<Network> draws_network(const was::RunRecord& s) {
  torch::manual_seed(11);
  return std::make_unique<Network>(s.model, Policy::parse(s.policy), s.seed);
}

/// The first batch exactly as the trainer sees it.
was::data::Batch first_training_batch(const was::data::Split& split, const was::RunRecord& s, int64_t batch_size) {
  was::data::BatchLoader loader(split.train, split.normalization, batch_size, true, s.seed);
  return loader.batch(0, 0);
}

/// The loss of `draw` on `batch` for the network's current W, in training mode.
torch::Tensor loss_of_draw(Network& net, const was::data::Batch& batch, int64_t draw) {
  net.begin_training_step(0, draw);
  return torch::nn::functional::cross_entropy(net.forward(batch.images), batch.labels);
}

void expect_parameters_near(Network& a, Network& b, double tol) {
  auto pa = a.module().named_parameters(), pb = b.module().named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::allclose(item.value(), pb[item.key()], 0.0, tol)) << item.key();
}

TEST(HoldOut, IsDisjointCompleteAndSeeded) {
  const auto split = draws_split();
  auto [kept, held] = was::data::hold_out(split.train, 0.25, 9);
  EXPECT_EQ(held.size(), 16);
  EXPECT_EQ(kept.size(), 48);
  // Every image lands on exactly one side (the synthetic images are distinct).
  std::set<std::vector<uint8_t>> all, parts;
  const auto add = [](std::set<std::vector<uint8_t>>& set, const was::data::Dataset& d) {
    for (int64_t i = 0; i < d.size(); ++i) {
      const auto img = d.images[i].contiguous();
      set.insert(std::vector<uint8_t>(img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel()));
    }
  };
  add(all, split.train);
  add(parts, kept);
  add(parts, held);
  EXPECT_EQ(all.size(), 64u);
  EXPECT_EQ(parts, all);
  auto [kept2, held2] = was::data::hold_out(split.train, 0.25, 9);
  EXPECT_TRUE(torch::equal(held.images, held2.images));
  auto [kept3, held3] = was::data::hold_out(split.train, 0.25, 10);
  EXPECT_FALSE(torch::equal(held.images, held3.images));
  for (double bad : {0.0, 1.0, -0.1, 1.5, 0.001}) EXPECT_THROW(was::data::hold_out(split.train, bad, 0), was::Error);
}

TEST(HoldOut, RunTrainsOnTheRestAndReportsValidation) {
  auto split = draws_split();
  auto options = one_step_options(1, "mean");
  options.max_steps = 0;
  options.bn_batches = 1;
  options.val_fraction = 0.25;
  was::select_training_data(split, options);
  ASSERT_EQ(split.train.size(), 48);
  ASSERT_EQ(split.validation.size(), 16);
  const auto s = draws_state(split, "CT");
  auto net = draws_network(s);
  was::EpochRecord last;
  const auto final_state = was::Trainer(*net, split, options, s).run([&](const was::EpochRecord& m) { last = m; });
  EXPECT_TRUE(last.evaluation("val_top1_aom"));
  EXPECT_TRUE(last.evaluation("val_top1_dom"));
  EXPECT_TRUE(final_state.results.aom->val_top1);
  EXPECT_EQ(final_state.results.val_images, 16);
  EXPECT_EQ(final_state.step, 2);  // 48 images, batch 32: the held-out 16 were never a batch
}

TEST(Draws, OneDrawIsTheOrdinaryStep) {
  const auto split = draws_split();
  const auto s = draws_state(split, "crop=0.4:0.6,translate=0.3:0.3");
  auto plain = draws_network(s), one = draws_network(s);
  auto options = one_step_options(1, "mean");
  options.max_steps = 4;
  was::Trainer(*plain, split, options, s).run();
  options.combine = "min";  // irrelevant for one draw
  was::Trainer(*one, split, options, s).run();
  expect_parameters_near(*plain, *one, 0.0);  // bit for bit
}

TEST(Draws, MeanFollowsTheMeanGradientOfTheDraws) {
  const auto split = draws_split();
  const auto s = draws_state(split, "crop=0.4:0.6,translate=0.3:0.3");
  auto trained = draws_network(s), reference = draws_network(s);
  was::Trainer(*trained, split, one_step_options(3, "mean"), s).run();

  const auto batch = first_training_batch(split, s, 32);
  for (int64_t k = 0; k < 3; ++k) (loss_of_draw(*reference, batch, k) / 3.0).backward();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : reference->module().parameters())
      if (p.grad().defined()) p.sub_(0.05 * p.grad());
  }
  expect_parameters_near(*trained, *reference, 1e-6);
}

TEST(Draws, MinBackpropagatesOnlyTheBestDraw) {
  const auto split = draws_split();
  const auto s = draws_state(split, "crop=0.4:0.6,translate=0.3:0.3");
  auto trained = draws_network(s), reference = draws_network(s);
  was::Trainer(*trained, split, one_step_options(4, "min"), s).run();

  const auto batch = first_training_batch(split, s, 32);
  std::vector<double> losses;
  {
    torch::NoGradGuard no_grad;
    for (int64_t k = 0; k < 4; ++k) losses.push_back(loss_of_draw(*reference, batch, k).item<double>());
  }
  const auto best = std::min_element(losses.begin(), losses.end()) - losses.begin();
  ASSERT_NE(std::set<double>(losses.begin(), losses.end()).size(), 1u) << "the draws must differ for this test";
  // Scoring left the running statistics alone: reset the reference's to the initial ones.
  auto fresh = draws_network(s);
  auto buffers = reference->module().named_buffers();
  for (const auto& b : fresh->module().named_buffers()) buffers[b.key()].copy_(b.value());
  loss_of_draw(*reference, batch, best).backward();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : reference->module().parameters())
      if (p.grad().defined()) p.sub_(0.05 * p.grad());
  }
  expect_parameters_near(*trained, *reference, 1e-6);
  // The BatchNorm running statistics moved by one forward pass only.
  auto tb = trained->module().named_buffers();
  for (const auto& b : reference->module().named_buffers())
    EXPECT_TRUE(torch::allclose(b.value().to(torch::kDouble), tb[b.key()].to(torch::kDouble), 0.0, 1e-6)) << b.key();
}

TEST(Draws, BadOptionsAreRefused) {
  const auto split = draws_split();
  const auto s = draws_state(split, "CT");
  auto net = draws_network(s);
  EXPECT_THROW(was::Trainer(*net, split, one_step_options(0, "mean"), s), was::Error);
  EXPECT_THROW(was::Trainer(*net, split, one_step_options(2, "median"), s), was::Error);
}

}  // namespace
