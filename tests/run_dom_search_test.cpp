// The DOM search as a library call: candidates scored on the validation
// split, the choice, and the profiles stored in the checkpoint.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include "tiny_run.h"

#include <cmath>

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/io/checkpoint.h"
#include "was/run/dom_search.h"
#include "was/train/trainer.h"

namespace {

using was::testing::TempDir;

void train_run_with_validation_split(const std::string& dir) {
  was::testing::train_tiny_run(dir, {"crop=0.4:0.9", /*seed=*/1, /*bn_batches=*/1, /*val_fraction=*/0.25});
}

TEST(DomSearchLibraryTest, ScoresChoosesAndStoresProfiles) {
  TempDir dir;
  train_run_with_validation_split(dir.path().string());
  const auto path = (dir.path() / "last.pt").string();
  auto ckpt = was::load_checkpoint(path);
  was::DomSearchSpec spec;
  spec.candidates = 3;
  spec.keep = 2;
  spec.max_drop = 100.0;  // every candidate qualifies: the fewest MACs win
  spec.bn_batches = 1;
  size_t scored = 0;
  const auto result = was::search_dom(ckpt, spec, "", torch::kCPU, [&](size_t i, size_t) { scored = i; });
  ASSERT_EQ(result.candidates.size(), 3u);
  EXPECT_EQ(scored, 3u);
  ASSERT_EQ(result.chosen.size(), 2u);
  EXPECT_LE(result.candidates[result.chosen[0]].macs, result.candidates[result.chosen[1]].macs);
  EXPECT_TRUE(std::any_of(result.candidates.begin(), result.candidates.end(), [](const auto& c) { return c.pareto; }));
  EXPECT_EQ(result.profiles[0].name, "macs");
  EXPECT_EQ(result.profiles[1].name, "macs-2");
  EXPECT_TRUE(ckpt.state.dom_profiles.empty());  // nothing stored yet

  was::store_dom_profiles(ckpt, spec, result);
  const auto reread = was::load_checkpoint(path);
  ASSERT_EQ(reread.state.dom_profiles.size(), 2u);
  EXPECT_EQ(reread.state.dom_profiles[0].mode, result.candidates[result.chosen[0]].mode.key());
  EXPECT_TRUE(reread.network->batchnorm().has(result.candidates[result.chosen[0]].mode.key()));

  // A budget no candidate meets: the choice is empty and storing it writes nothing.
  was::DomSearchSpec tight = spec;
  tight.objective = "accuracy";
  tight.max_macs = 1e-9;
  auto again = was::load_checkpoint(path);
  const auto none = was::search_dom(again, tight, "", torch::kCPU);
  EXPECT_TRUE(none.chosen.empty());
  EXPECT_THROW(was::store_dom_profiles(again, tight, none), was::Error);
  EXPECT_EQ(was::load_checkpoint(path).state.dom_profiles.size(), 2u);

  was::DomSearchSpec nan_drop;
  nan_drop.max_drop = std::nan("");
  EXPECT_THROW(nan_drop.validate(), was::Error);
  EXPECT_THROW(was::DomObjective::parse("speed"), was::Error);
}

}  // namespace
