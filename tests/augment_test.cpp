// Tests of training augmentation: the batched crop+flip against a per-pixel
// reference, its draws, the loader, and exact resume of an augmented run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <unistd.h>
#include "temp_dir.h"

#include <atomic>
#include <filesystem>
#include <set>
#include <vector>

#include "was/core/error.h"
#include "was/core/rng.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/io/checkpoint.h"
#include "was/train/trainer.h"

namespace {

using was::testing::TempDir;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using was::data::Augmentation;
using was::data::AugmentParams;
using was::data::BatchLoader;

/// The definition, pixel by pixel: zero-pad, crop at (dy, dx), mirror.
torch::Tensor reference_augment(const torch::Tensor& images, const std::vector<AugmentParams>& params, int64_t pad) {
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  torch::Tensor out = torch::zeros_like(images);
  auto in = images.accessor<uint8_t, 4>();
  auto o = out.accessor<uint8_t, 4>();
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t cx = params[i].flip ? w - 1 - x : x;  // column of the crop
        const int64_t sy = params[i].dy + y - pad, sx = params[i].dx + cx - pad;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
        for (int64_t ch = 0; ch < c; ++ch) o[i][ch][y][x] = in[i][ch][sy][sx];
      }
    }
  }
  return out;
}

torch::Tensor random_images(int64_t b, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {b, c, h, w}).to(torch::kByte);
}

was::data::Dataset dataset(int64_t n, int64_t c, int64_t side) {
  was::data::Dataset d;
  d.images = random_images(n, c, side, side, 3);
  d.labels = torch::arange(n, torch::kLong) % 3;
  d.num_classes = 3;
  return d;
}

TEST(AugmentTest, BatchedCropFlipMatchesPerPixelReference) {
  const auto images = random_images(6, 3, 7, 9, 1);
  for (int64_t pad : {0, 1, 3}) {
    std::vector<AugmentParams> params;
    was::CounterStream rng(9, was::StreamDomain::kAugment, 0, static_cast<uint64_t>(pad));
    for (int64_t i = 0; i < 6; ++i) {
      params.push_back({rng.integer(0, 2 * pad), rng.integer(0, 2 * pad), rng.integer(0, 1) == 1});
    }
    params[0] = {0, 2 * pad, true};  // extreme corners
    params[1] = {2 * pad, 0, false};
    const auto got = was::data::apply_augmentation(images, params, pad);
    EXPECT_EQ(got.scalar_type(), torch::kByte);
    EXPECT_TRUE(torch::equal(got, reference_augment(images, params, pad))) << "pad " << pad;
  }
}

TEST(AugmentTest, CentredCropIsIdentityAndFlipOnlyMirrors) {
  const auto images = random_images(4, 2, 5, 6, 2);
  const std::vector<AugmentParams> centre(4, AugmentParams{4, 4, false});
  EXPECT_TRUE(torch::equal(was::data::apply_augmentation(images, centre, 4), images));
  const std::vector<AugmentParams> flip(4, AugmentParams{0, 0, true});
  EXPECT_TRUE(torch::equal(was::data::apply_augmentation(images, flip, 0), images.flip({3})));
}

TEST(AugmentTest, RejectsBadParameters) {
  const auto images = random_images(2, 1, 4, 4, 0);
  EXPECT_THROW(was::data::apply_augmentation(images, {AugmentParams{}}, 1), was::Error);  // one set for two
  EXPECT_THROW(was::data::apply_augmentation(images, {{0, 3, false}, {0, 0, false}}, 1), was::Error);
  EXPECT_THROW(was::data::apply_augmentation(images.to(torch::kFloat), {{}, {}}, 0), was::Error);
}

TEST(AugmentTest, DrawsDependOnSeedEpochAndSampleOnly) {
  const Augmentation a = Augmentation::standard();
  EXPECT_EQ(a.pad, 4);
  EXPECT_TRUE(a.hflip);
  EXPECT_EQ(a.to_string(), "crop(pad=4)+hflip");
  EXPECT_EQ(Augmentation{}.to_string(), "none");
  auto same = [](const AugmentParams& x, const AugmentParams& y) {
    return x.dy == y.dy && x.dx == y.dx && x.flip == y.flip;
  };
  EXPECT_TRUE(same(was::data::draw_augmentation(a, 1, 2, 3), was::data::draw_augmentation(a, 1, 2, 3)));
  int differ_seed = 0, differ_epoch = 0, flips = 0;
  std::set<int64_t> offsets;
  constexpr int kSamples = 2000;
  for (int i = 0; i < kSamples; ++i) {
    const auto p = was::data::draw_augmentation(a, 1, 2, i);
    differ_seed += !same(p, was::data::draw_augmentation(a, 7, 2, i));
    differ_epoch += !same(p, was::data::draw_augmentation(a, 1, 3, i));
    flips += p.flip;
    offsets.insert(p.dy);
    offsets.insert(p.dx);
  }
  EXPECT_GT(differ_seed, kSamples * 9 / 10);
  EXPECT_GT(differ_epoch, kSamples * 9 / 10);
  EXPECT_NEAR(flips, kSamples / 2, kSamples / 10);
  EXPECT_EQ(offsets, (std::set<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  // Flip only: no crop offsets.
  const auto flip_only = was::data::draw_augmentation({0, true}, 1, 0, 5);
  EXPECT_EQ(flip_only.dy, 0);
  EXPECT_EQ(flip_only.dx, 0);
}

TEST(AugmentTest, LoaderAugmentsTheOrderSliceBeforeNormalising) {
  const auto d = dataset(23, 3, 8);
  const auto norm = was::data::compute_normalization(d);
  const Augmentation a = Augmentation::standard();
  BatchLoader loader(d, norm, 5, true, 11, false, torch::kCPU, a);
  EXPECT_EQ(loader.augmentation().pad, 4);
  const auto order = loader.order(2);
  const auto b = loader.batch(2, 1);
  std::vector<int64_t> idx(order.begin() + 5, order.begin() + 10);
  std::vector<AugmentParams> params;
  for (int64_t s : idx) params.push_back(was::data::draw_augmentation(a, 11, 2, s));
  const auto raw = d.images.index_select(0, torch::tensor(idx));
  EXPECT_TRUE(torch::equal(b.images, was::data::normalize(reference_augment(raw, params, 4), norm)));
  EXPECT_TRUE(torch::equal(b.labels, d.labels.index_select(0, torch::tensor(idx))));
  // Epochs differ; asking again gives the same batch.
  EXPECT_FALSE(torch::equal(loader.batch(3, 1).images, b.images));
  EXPECT_TRUE(torch::equal(loader.batch(2, 1).images, b.images));
}

TEST(AugmentTest, SampleAugmentationDoesNotDependOnBatchSize) {
  const auto d = dataset(30, 3, 8);
  const auto norm = was::data::compute_normalization(d);
  auto epoch_images = [&](int64_t batch_size) {
    BatchLoader loader(d, norm, batch_size, true, 4, false, torch::kCPU, Augmentation::standard());
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) parts.push_back(loader.batch(1, i).images);
    return torch::cat(parts);
  };
  EXPECT_TRUE(torch::equal(epoch_images(4), epoch_images(7)));
}

TEST(AugmentTest, LoaderWithoutAugmentationIsPlain) {
  const auto d = dataset(10, 3, 8);
  const auto norm = was::data::compute_normalization(d);
  BatchLoader plain(d, norm, 10, false, 0);
  EXPECT_FALSE(plain.augmentation().enabled());
  EXPECT_TRUE(torch::equal(plain.batch(0, 0).images, was::data::normalize(d.images, norm)));
}

TEST(AugmentTest, LoaderRejectsPaddingAsLargeAsTheImage) {
  const auto d = dataset(4, 1, 4);
  const auto norm = was::data::compute_normalization(d);
  try {
    BatchLoader(d, norm, 2, true, 0, false, torch::kCPU, Augmentation::standard());
    FAIL() << "no error";
  } catch (const was::Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("padding 4"));
    EXPECT_THAT(e.hint(), HasSubstr("--no-augment"));
  }
  EXPECT_NO_THROW(BatchLoader(d, norm, 2, true, 0, false, torch::kCPU, {3, true}));
}

TEST(AugmentTest, DefaultsByDataset) {
  for (const char* name : {"cifar10", "cifar100", "imagefolder"}) EXPECT_TRUE(was::data::augments_by_default(name));
  for (const char* name : {"fashion-mnist", "synthetic"}) EXPECT_FALSE(was::data::augments_by_default(name));
}

// --- the trainer ----------------------------------------------------------------------

was::data::Split small_split(const std::string& name) {
  was::data::SyntheticOptions o;
  o.train_size = 48;
  o.test_size = 16;
  o.num_classes = 3;
  o.channels = 3;
  o.image_size = 10;
  auto split = was::data::make_synthetic(o);
  split.name = name;  // stands in for a natural-image data set
  return split;
}

was::RunRecord state_for(const was::data::Split& split) {
  was::RunRecord s;
  s.model = {"small_cnn", split.train.num_classes, split.train.channels(), split.train.height()};
  s.policy = "CT";
  s.seed = 3;
  s.dataset = split.name;
  s.normalization = split.normalization;
  return s;
}

was::TrainOptions options_for(const fs::path& out, int64_t epochs) {
  was::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.lr = 0.02;
  o.bn_batches = 1;
  o.progress = false;
  o.eval_every = 0;
  o.out_dir = out.string();
  return o;
}

std::unique_ptr<was::Network> network_for(const was::RunRecord& s) {
  torch::manual_seed(s.seed);
  return std::make_unique<was::Network>(s.model, was::Policy::parse(s.policy), s.seed);
}

TEST(AugmentTest, TrainerStoresTheResolvedChoice) {
  TempDir dir;
  for (const auto& [name, given, expected] : {std::make_tuple("cifar10", std::optional<bool>{}, true),
                                              std::make_tuple("synthetic", std::optional<bool>{}, false),
                                              std::make_tuple("cifar10", std::optional<bool>{false}, false),
                                              std::make_tuple("synthetic", std::optional<bool>{true}, true)}) {
    const auto split = small_split(name);
    const auto state = state_for(split);
    auto net = network_for(state);
    auto options = options_for(dir.path(), 1);
    options.augment = given;
    was::Trainer trainer(*net, split, options, state);
    const auto stored = trainer.state().to_json()["train_options"];
    ASSERT_TRUE(stored.contains("augment")) << name;
    EXPECT_EQ(stored["augment"].get<bool>(), expected) << name;
    EXPECT_EQ(trainer.state().options.augment, std::optional<bool>(expected));
  }
  // Runs stored before augmentation existed carry no choice: the data set's default applies.
  EXPECT_FALSE(was::TrainOptions::from_json({{"epochs", 2}}).augment.has_value());
}

TEST(AugmentTest, ResumedAugmentedRunIsBitIdentical) {
  const auto split = small_split("cifar10");  // augmented by default
  const auto state = state_for(split);
  TempDir straight_dir, resumed_dir, plain_dir;

  auto straight = network_for(state);
  was::Trainer(*straight, split, options_for(straight_dir.path(), 2), state).run();

  {  // Stop mid-epoch (3 batches an epoch), then resume from disk with the stored options.
    auto first = network_for(state);
    auto options = options_for(resumed_dir.path(), 2);
    options.max_steps = 4;
    const auto stopped = was::Trainer(*first, split, options, state).run();
    ASSERT_EQ(stopped.step, 4);
    ASSERT_FALSE(stopped.finished);
  }
  auto ckpt = was::load_checkpoint((resumed_dir.path() / "last.pt").string());
  auto options = ckpt.state.options;
  ASSERT_EQ(options.augment, std::optional<bool>(true));
  options.progress = false;
  options.out_dir = resumed_dir.path().string();
  was::Trainer trainer(*ckpt.network, split, options, ckpt.state);
  trainer.restore_optimizer(ckpt);
  EXPECT_TRUE(trainer.run().finished);
  for (const auto& item : straight->module().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), ckpt.network->module().named_parameters()[item.key()])) << item.key();
  }

  // Augmentation changes what is learnt: the same run without it ends elsewhere.
  auto plain = network_for(state);
  auto plain_options = options_for(plain_dir.path(), 2);
  plain_options.augment = false;
  was::Trainer(*plain, split, plain_options, state).run();
  bool all_equal = true;
  for (const auto& item : straight->module().named_parameters())
    all_equal = all_equal && torch::equal(item.value(), plain->module().named_parameters()[item.key()]);
  EXPECT_FALSE(all_equal);
}

}  // namespace
