// The report layer (was/report/): a grid of committed study cells (no
// checkpoints) read in the experiment file's order, and the Markdown written
// from the typed results.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "expect_error.h"
#include "temp_dir.h"
#include "was/report/report.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using was::testing::error_of;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A cell as scripts/study_does_was_help.sh commits it: eval.json, results.json, metrics.jsonl.
void committed_cell(const fs::path& grid, const std::string& label, uint64_t seed, double top1, double best_test,
                    double val_selected) {
  const auto dir = grid / "cells" / ("synthetic-small_cnn-" + label + "-s" + std::to_string(seed));
  const std::string policy = label == "baseline" ? "none" : "crop=0.4:0.6";
  Json modes = Json::array({{{"key", "aom"},
                             {"mode", "AOM"},
                             {"top1", top1},
                             {"macs", 1000},
                             {"aom_macs", 1000},
                             {"sparsity_transformed", 0.0},
                             {"robustness", Json::array()}}});
  write(dir / "eval.json", Json{{"dataset", "synthetic"},
                                {"model", "small_cnn"},
                                {"policy", policy},
                                {"seed", seed},
                                {"cell", {{"policy_label", label}}},
                                {"train_seconds", 60.0},
                                {"eval_seconds", 6.0},
                                {"modes", modes}}
                               .dump());
  write(dir / "results.json", Json{{"aom", {{"top1", top1}, {"batchnorm", "re-estimated"}, {"macs", 1000}}},
                                   {"selection",
                                    {{"aom_bn",
                                      {{"final", top1},
                                       {"final_epoch", 2},
                                       {"best_test", best_test},
                                       {"best_test_epoch", 1},
                                       {"val_selected", val_selected},
                                       {"val_selected_epoch", 1},
                                       {"best_val", 50.0}}}}},
                                   {"dom_seed", 0},
                                   {"bn_batches", 4}}
                                  .dump());
  // Two epochs, the second written twice (a resumed run): the last line wins; a line cut short is skipped.
  write(dir / "metrics.jsonl",
        "{\"epoch\":1,\"train_loss\":2.0,\"images_per_s\":90.0,\"test_top1_aom_bn\":" + std::to_string(best_test) +
            "}\n{\"epoch\":2,\"train_loss\":9.0,\"images_per_s\":1.0}\n"
            "{\"epoch\":2,\"train_loss\":1.0,\"images_per_s\":100.0,\"test_top1_aom_bn\":" +
            std::to_string(top1) + "}\n{\"epoch\":3,\"trai");
}

TEST(ReportTest, CommittedCellsReportInTheExperimentsOrder) {
  was::testing::TempDir dir;
  const fs::path grid = dir.path() / "grid";
  write(grid / "experiment.json", Json{{"name", "order"},
                                       {"models", {"small_cnn"}},
                                       {"policies", {{{"label", "C"}}, {{"label", "baseline"}}}},
                                       {"train", {{"epochs", 2}}},
                                       {"eval", Json::object()}}
                                      .dump());
  committed_cell(grid, "baseline", 0, 40.0, 42.0, 41.0);
  committed_cell(grid, "baseline", 1, 44.0, 46.0, 45.0);
  committed_cell(grid, "C", 0, 50.0, 53.0, 52.0);

  const auto input = was::report::load_report_input(grid);
  ASSERT_TRUE(input.grid);
  ASSERT_EQ(input.runs.size(), 3u);
  EXPECT_EQ(input.runs[0].label, "C");  // the experiment file lists C first
  EXPECT_EQ(input.runs[1].seed, 0u);
  EXPECT_EQ(input.runs[2].seed, 1u);
  const auto& baseline = input.runs[1];
  ASSERT_EQ(baseline.epochs.size(), 2u);
  EXPECT_EQ(baseline.epochs[1].train_loss, 1.0);
  EXPECT_EQ(baseline.results.selection.at("aom_bn").best_test_top1, 42.0);
  EXPECT_EQ(baseline.train_seconds, 60.0);

  was::report::ReportOptions options;
  options.out = dir.path() / "report";
  options.plots = false;
  const auto path = was::report::write_report(input, options);
  const std::string md = slurp(path);
  // The selection table: baseline's two seeds as mean ± sd, and best test - validation-selected.
  EXPECT_NE(md.find("| synthetic | small_cnn | baseline | AOM, BatchNorm re-estimated per mode (as the final "
                    "evaluation) | 42.00 ± 2.83 | 44.00 ± 2.83 | 43.00 ± 2.83 | +1.00 |"),
            std::string::npos)
      << md;
  EXPECT_LT(md.find("| C |"), md.find("| baseline |"));
  EXPECT_NE(md.find("Total: 3.3 minutes"), std::string::npos) << md;
}

TEST(ReportTest, RefusesWhatIsNotAGridOrARun) {
  was::testing::TempDir dir;
  EXPECT_NE(error_of([&] { was::report::load_report_input(dir.path()); }).find("neither experiment.json nor last.pt"),
            std::string::npos);
  write(dir.path() / "experiment.json", "{}");
  EXPECT_NE(error_of([&] { was::report::load_report_input(dir.path()); }).find("no evaluated cell yet"),
            std::string::npos);
  write(dir.path() / "cells" / "x" / "eval.json", "{\"modes\": [");
  write(dir.path() / "cells" / "x" / "results.json", "{}");
  EXPECT_NE(error_of([&] { was::report::load_report_input(dir.path()); }).find("is not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([&] { was::report::load_report_input(dir.path() / "missing"); }).find("is not a directory"),
            std::string::npos);
}

}  // namespace
