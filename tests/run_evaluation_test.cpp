// The run layer's evaluation, called as a library: a stored run evaluated
// again gives the figures training reported, plus DOM profiles, ensembles
// and robustness sweeps, without the CLI.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include "tiny_run.h"

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/io/checkpoint.h"
#include "was/run/evaluation.h"
#include "was/run/run_data.h"
#include "was/run/self_check.h"
#include "was/train/trainer.h"

namespace {

using was::testing::TempDir;

void train_tiny_run(const std::string& dir, const std::string& policy) {
  was::testing::train_tiny_run(dir, {policy, /*seed=*/3, /*bn_batches=*/2});
}

TEST(RunEvaluationTest, StoredRunGivesTrainingsFiguresProfilesEnsemblesAndSweeps) {
  TempDir dir;
  train_tiny_run(dir.path().string(), "CT");
  auto ckpt = was::load_checkpoint(was::resolve_checkpoint(dir.path().string()));
  const double trained_aom = ckpt.state.results.aom->top1;
  const double trained_dom = ckpt.state.results.dom->top1;

  was::EvalSpec spec;
  spec.dom_seeds = {0, 1};
  spec.ensemble = 2;
  spec.bn_batches = 2;
  spec.augmentations = {was::data::TestAugmentation::parse("rotate=0:30")};
  const auto out = was::evaluate_run(ckpt, spec, "", torch::kCPU, "tiny");
  ASSERT_EQ(out["modes"].size(), 3u);
  EXPECT_EQ(out["modes"][0]["mode"], "AOM");
  EXPECT_EQ(out["modes"][1]["mode"], "DOM:0");
  EXPECT_NEAR(out["modes"][0]["top1"].get<double>(), trained_aom, 1e-9);  // the stored run, measured again
  EXPECT_NEAR(out["modes"][1]["top1"].get<double>(), trained_dom, 1e-9);
  EXPECT_EQ(out["modes"][2]["batchnorm"], "per-mode (estimated now)");  // seed 1 was never used in training
  EXPECT_LT(out["modes"][1]["macs"].get<int64_t>(), out["modes"][0]["macs"].get<int64_t>());
  EXPECT_EQ(out["modes"][0]["robustness"].size(), 1u);
  EXPECT_EQ(out["modes"][1]["robustness"].size(), 1u);
  EXPECT_EQ(out["modes"][2]["robustness"].size(), 0u);  // the sweep covers AOM and the first DOM seed
  EXPECT_LE(out["dom_profile"]["top1_min"].get<double>(), out["dom_profile"]["top1_max"].get<double>());
  EXPECT_EQ(out["ensemble"]["seeds"], nlohmann::json({0, 1}));
  EXPECT_EQ(was::mode_label(was::Mode::dom(4)), "DOM:4");

  was::EvalSpec bad;
  bad.bn_batches = -1;
  EXPECT_THROW(was::evaluate_run(ckpt, bad, "", torch::kCPU, "tiny"), was::Error);
  EXPECT_THROW(was::EvalSpec::from_json({{"dom_seed", 1}}), was::Error);  // a misspelt key is named
}

TEST(RunEvaluationTest, ABaselineHasNoDomAndARunDirectoryMustHoldACheckpoint) {
  TempDir dir;
  train_tiny_run(dir.path().string(), "none");
  auto ckpt = was::load_checkpoint(was::resolve_checkpoint(dir.path().string()));
  was::EvalSpec spec;
  spec.mode = "dom";
  EXPECT_THROW(was::evaluate_run(ckpt, spec, "", torch::kCPU, "base"), was::Error);
  spec.mode = "both";
  EXPECT_EQ(was::evaluate_run(ckpt, spec, "", torch::kCPU, "base")["modes"].size(), 1u);
  TempDir empty;
  EXPECT_THROW(was::resolve_checkpoint(empty.path().string()), was::Error);
}

}  // namespace

namespace {

TEST(SelfCheckLibraryTest, AHealthyRunIsConsistentAndATamperedOneFails) {
  TempDir dir;
  train_tiny_run(dir.path().string(), "CT");
  auto ckpt = was::load_checkpoint(was::resolve_checkpoint(dir.path().string()));
  std::vector<std::string> seen;
  const auto healthy = was::check_checkpoint(ckpt, "", 1e-4, torch::kCPU, [&](const was::CheckLine& line) {
    seen.push_back(std::string(line.tag()) + " " + line.what);
  });
  EXPECT_TRUE(healthy.consistent()) << healthy.failed;
  EXPECT_GE(healthy.passed, 6);  // AOM and DOM: statistics, forward, MACs, sparsity, re-estimation
  EXPECT_EQ(seen.size(), healthy.lines.size());

  // The stored DOM statistics no longer being those the weights give is caught.
  auto& stats = ckpt.network->batchnorm().mutable_entry(was::Mode::dom(0).key());
  stats[0][0] += 1.0;
  const auto tampered = was::check_checkpoint(ckpt, "", 1e-4, torch::kCPU);
  EXPECT_FALSE(tampered.consistent());
  EXPECT_THROW(was::check_checkpoint(ckpt, "", 0.0, torch::kCPU), was::Error);
}

}  // namespace
