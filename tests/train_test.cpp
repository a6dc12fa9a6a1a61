// Training, reproducibility, checkpoints and exact resume.
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <filesystem>
#include <fstream>

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/io/checkpoint.h"
#include "was/train/trainer.h"

namespace {

using was::testing::TempDir;

namespace fs = std::filesystem;
using was::Mode;
using was::Network;
using was::Policy;

was::data::Split tiny_split() {
  was::data::SyntheticOptions o;
  o.train_size = 96;
  o.test_size = 64;
  o.num_classes = 4;
  o.image_size = 12;
  return was::data::make_synthetic(o);
}

was::RunRecord fresh_state(const was::data::Split& split, const std::string& policy) {
  was::RunRecord s;
  s.model = {"small_cnn", split.train.num_classes, split.train.channels(), split.train.height()};
  s.policy = policy;
  s.seed = 5;
  s.dataset = "synthetic";
  s.normalization = split.normalization;
  return s;
}

was::TrainOptions tiny_options(const std::string& out_dir, int64_t epochs) {
  was::TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.lr = 0.02;
  o.bn_batches = 2;
  o.progress = false;
  o.eval_every = 0;
  o.out_dir = out_dir;
  return o;
}

std::unique_ptr<Network> make_network(const was::RunRecord& s) {
  torch::manual_seed(s.seed);
  return std::make_unique<Network>(s.model, Policy::parse(s.policy), s.seed);
}

void expect_same_tensors(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto ba = a.named_buffers(), bb = b.named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
}

TEST(TrainerTest, LossFallsAndSameSeedGivesSameCurve) {
  const auto split = tiny_split();
  std::vector<double> curves[2];
  for (int run = 0; run < 2; ++run) {
    const auto state = fresh_state(split, "CT");
    auto net = make_network(state);
    was::Trainer trainer(*net, split, tiny_options("", 4), state);
    trainer.run([&](const was::EpochRecord& m) { curves[run].push_back(m.train_loss); });
  }
  ASSERT_EQ(curves[0].size(), 4u);
  EXPECT_LT(curves[0].back(), curves[0].front());
  EXPECT_EQ(curves[0], curves[1]);  // bit for bit
}

TEST(TrainerTest, ResumeGivesBitIdenticalWeights) {
  const auto split = tiny_split();
  TempDir straight_dir, resumed_dir;
  const auto state = fresh_state(split, "crop=0.4:1,translate=0.3:0.3,rotate=0:90");

  auto straight = make_network(state);
  was::Trainer(*straight, split, tiny_options(straight_dir.path().string(), 3), state).run();

  // Stop in the middle of epoch 2 (6 batches an epoch), then resume from disk.
  {
    auto first = make_network(state);
    auto options = tiny_options(resumed_dir.path().string(), 3);
    options.max_steps = 9;
    const auto stopped = was::Trainer(*first, split, options, state).run();
    EXPECT_EQ(stopped.step, 9);
    EXPECT_EQ(stopped.epoch, 1);
    EXPECT_EQ(stopped.batch, 3);
    EXPECT_FALSE(stopped.finished);
  }
  auto ckpt = was::load_checkpoint((resumed_dir.path() / "last.pt").string());
  was::Trainer trainer(*ckpt.network, split, tiny_options(resumed_dir.path().string(), 3), ckpt.state);
  trainer.restore_optimizer(ckpt);
  const auto done = trainer.run();
  EXPECT_TRUE(done.finished);
  expect_same_tensors(straight->module(), ckpt.network->module());
  for (const auto& key : {"aom", "dom:0", "train"}) {
    const auto& a = straight->batchnorm().entry(key);
    const auto& b = ckpt.network->batchnorm().entry(key);
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t j = 0; j < 3; ++j) EXPECT_TRUE(torch::equal(a[i][j], b[i][j])) << key;
  }
}

TEST(TrainerTest, ModeBatchNormCurvesLeaveTrainingUnchangedAndEndOnTheFinalFigures) {
  auto split = tiny_split();
  was::TrainOptions base = tiny_options("", 3);
  base.val_fraction = 0.25;
  was::select_training_data(split, base);
  const auto state = fresh_state(split, "CT");
  std::vector<was::EpochRecord> curves[2];
  std::unique_ptr<Network> nets[2];
  was::RunRecord done[2];
  for (int with = 0; with < 2; ++with) {
    auto options = base;
    options.eval_every = 1;
    options.mode_bn_curves = with == 1;
    nets[with] = make_network(state);
    done[with] = was::Trainer(*nets[with], split, options, state).run([&](const was::EpochRecord& m) {
      curves[with].push_back(m);
    });
  }
  // The curves are measured beside training, never in it: the same weights,
  // BatchNorm statistics and losses with and without them.
  expect_same_tensors(nets[0]->module(), nets[1]->module());
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(curves[0][e].train_loss, curves[1][e].train_loss) << e;
    EXPECT_FALSE(curves[0][e].evaluation("test_top1_aom_bn"));
    for (const char* key : {"test_top1_aom_bn", "test_top1_dom_bn", "val_top1_aom_bn", "val_top1_dom_bn"})
      EXPECT_TRUE(curves[1][e].evaluation(key)) << key << " at epoch " << e + 1;
  }
  EXPECT_EQ(done[0].results.aom->top1, done[1].results.aom->top1);
  EXPECT_EQ(curves[1].back().evaluation("test_top1_aom_bn"), done[1].results.aom->top1);
  EXPECT_EQ(curves[1].back().evaluation("val_top1_dom_bn"), done[1].results.dom->val_top1);
  EXPECT_TRUE(done[1].results.selection.count("dom_bn")) << done[1].results.to_json().dump();
  EXPECT_EQ(nets[1]->batchnorm().keys(), nets[0]->batchnorm().keys());  // nothing left behind

  auto paper = base;
  paper.mode_bn_curves = true;
  paper.protocol = "paper";
  auto net = make_network(state);
  EXPECT_THROW(was::Trainer(*net, split, paper, state), was::Error);
}

TEST(TrainerTest, BatchNormIsReestimatedWithTheTrainingAugmentation) {
  const auto split = tiny_split();
  const auto state = fresh_state(split, "CT");
  auto options = tiny_options("", 1);
  options.augment = true;
  auto net = make_network(state);
  const auto done = was::Trainer(*net, split, options, state).run();
  EXPECT_EQ(done.results.bn_augmented, std::optional<bool>(true));
  const auto augmentation = was::batchnorm_augmentation_of(done);
  EXPECT_TRUE(augmentation.enabled());

  // The stored DOM statistics are those of augmented batches, not of plain ones.
  const auto dom = Mode::dom(0);
  const auto stored = net->batchnorm().entry(dom.key())[0][0].clone();
  was::reestimate_batchnorm_after_training(*net, dom, split.train, split.normalization, state.seed, 2, torch::kCPU,
                                           augmentation);
  EXPECT_TRUE(torch::equal(net->batchnorm().entry(dom.key())[0][0], stored));
  was::reestimate_batchnorm_after_training(*net, dom, split.train, split.normalization, state.seed, 2);
  EXPECT_FALSE(torch::equal(net->batchnorm().entry(dom.key())[0][0], stored));

  // Runs finished before the choice was recorded re-estimated without augmentation.
  auto older = done;
  older.results.bn_augmented.reset();
  EXPECT_FALSE(was::batchnorm_augmentation_of(older).enabled());
  auto unfinished = done;
  unfinished.results = was::RunResults{};
  EXPECT_TRUE(was::batchnorm_augmentation_of(unfinished).enabled());
}

TEST(CheckpointTest, RoundTripRestoresEverything) {
  const auto split = tiny_split();
  TempDir dir;
  const auto state = fresh_state(split, "CT");
  auto net = make_network(state);
  was::Trainer trainer(*net, split, tiny_options(dir.path().string(), 1), state);
  const auto done = trainer.run();
  auto ckpt = was::load_checkpoint((dir.path() / "last.pt").string());
  expect_same_tensors(net->module(), ckpt.network->module());
  EXPECT_EQ(ckpt.state.to_json(), done.to_json());
  EXPECT_EQ(ckpt.network->policy().to_string(), Policy::parse("CT").to_string());
  EXPECT_EQ(ckpt.network->batchnorm().keys(), net->batchnorm().keys());
  // The optimiser's momentum buffers come back too.
  torch::optim::SGD fresh(ckpt.network->module().parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  ckpt.restore_optimizer(fresh);
  const auto& saved = trainer.optimizer().state();
  EXPECT_EQ(fresh.state().size(), saved.size());
  // Both modes evaluate the same after the round trip.
  const auto x = torch::randn({4, 1, 12, 12});
  for (const auto& mode : {Mode::aom(), Mode::dom(0)}) {
    net->set_mode(mode);
    ckpt.network->set_mode(mode);
    EXPECT_TRUE(torch::equal(net->forward(x), ckpt.network->forward(x))) << mode.key();
  }
}

TEST(CheckpointTest, CorruptTruncatedAndForeignFilesAreRefused) {
  const auto split = tiny_split();
  TempDir dir;
  const auto state = fresh_state(split, "C");
  auto net = make_network(state);
  const auto good = (dir.path() / "good.pt").string();
  was::save_checkpoint(good, *net, state);
  EXPECT_FALSE(fs::exists(good + ".tmp"));

  const auto size = fs::file_size(good);
  const auto truncated = (dir.path() / "truncated.pt").string();
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, size / 2);
  const auto garbage = (dir.path() / "garbage.pt").string();
  std::ofstream(garbage) << "this is not a checkpoint";

  // Weights of a 4-class model under a config that says 7 classes.
  auto mismatched_state = state;
  mismatched_state.model.num_classes = 7;
  const auto mismatched = (dir.path() / "mismatched.pt").string();
  was::save_checkpoint(mismatched, *net, mismatched_state);

  for (const auto& path : {truncated, garbage, mismatched, (dir.path() / "missing.pt").string()}) {
    try {
      was::load_checkpoint(path);
      ADD_FAILURE() << "loaded " << path;
    } catch (const was::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(was::load_checkpoint(good));
}

}  // namespace
