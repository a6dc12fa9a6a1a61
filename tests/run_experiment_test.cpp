// The experiment grid as a library call: cells in order, messages through
// the callback (nothing printed), finished cells read back, not retrained.
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <fstream>

#include "was/core/error.h"
#include "was/was.h"  // the umbrella header: everything, in one include

namespace {

using was::testing::TempDir;

TEST(RunGridTest, RunsEveryCellOnceAndReportsThroughTheCallback) {
  TempDir dir;
  const nlohmann::json grid = {{"name", "lib"},
                               {"models", {"small_cnn"}},
                               {"policies", {"none", {{"label", "C"}, {"policy", "C"}, {"seeds", {0, 1}}}}},
                               {"datasets", {"synthetic"}},
                               {"seeds", {0}},
                               {"train", {{"epochs", 1}, {"batch_size", 64}, {"bn_batches", 1}}},
                               {"eval", {{"bn_batches", 1}}}};
  const auto config = dir.file("grid.json");
  std::ofstream(config) << grid.dump();
  const auto e = was::Experiment::load(config, "");
  std::vector<std::string> names;
  for (const auto& c : was::cells_of(e)) names.push_back(c.name());
  EXPECT_EQ(names, (std::vector<std::string>{"synthetic-small_cnn-baseline-s0", "synthetic-small_cnn-C-s0",
                                             "synthetic-small_cnn-C-s1"}));

  std::vector<std::string> lines;
  int trained = 0;
  was::GridOptions options;
  options.out = dir.file("out");
  options.on_message = [&](const std::string& line) { lines.push_back(line); };
  options.on_cell_trained = [&](const std::string&, const was::RunRecord& state) { trained += state.finished; };
  const auto first = was::run_grid(e, options);
  EXPECT_EQ(trained, 3);
  EXPECT_EQ(first.summary.size(), 3u);
  EXPECT_EQ(first.skipped, 0u);
  EXPECT_EQ(lines.front(), was::grid_headline(e, options.out));
  EXPECT_NE(std::find(lines.begin(), lines.end(), "[3/3] synthetic-small_cnn-C-s1: training"), lines.end());

  lines.clear();
  const auto again = was::run_grid(e, options);
  EXPECT_EQ(trained, 3);  // nothing trained twice
  EXPECT_EQ(again.summary, first.summary);
  EXPECT_EQ(lines.size(), 4u);  // the headline and three "already done"

  // Another grid's settings in the same directory are refused before anything trains.
  nlohmann::json other = grid;
  other["train"]["epochs"] = 2;
  std::ofstream(config) << other.dump();
  EXPECT_THROW(was::check_grid(was::Experiment::load(config, ""), options.out), was::Error);
}

}  // namespace
