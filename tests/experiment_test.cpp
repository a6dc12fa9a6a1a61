// `was experiment`, `was report` and `was check` through the real tool:
// grids run end to end and resume after a kill without redoing finished
// cells; bad experiment files fail before any training; `check` catches a
// tampered checkpoint.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_fixture.h"
#include "was/core/directory_lock.h"
#include "was/io/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using was::testing::CliTest;
using Json = nlohmann::json;

struct ExperimentTest : CliTest {
  fs::path write_config(const std::string& name, const Json& config) {
    const auto path = dir / name;
    std::ofstream(path) << config.dump(2);
    return path;
  }

  static Json tiny_grid(int64_t epochs) {
    return {{"name", "tiny"},
            {"models", {"small_cnn"}},
            {"policies", {"none", {{"label", "CT"}, {"policy", "CT"}}}},
            {"datasets", {"synthetic"}},
            {"seeds", {0}},
            {"train", {{"epochs", epochs}, {"batch_size", 64}, {"bn_batches", 2}, {"checkpoint_every", 1}}},
            {"eval", {{"dom_seeds", {0, 1}}, {"ensemble", 2}, {"robustness", {"rotate=0:45", "crop=0.5:0.7"}}}}};
  }

  static Json read(const fs::path& p) { return Json::parse(slurp(p)); }

  /// The numbers of a cell's evaluation that must not depend on interruptions.
  static Json outcome(const fs::path& eval_json) {
    const Json e = read(eval_json);
    Json out = Json::array();
    for (const auto& m : e["modes"]) {
      Json robust = Json::array();
      for (const auto& a : m["robustness"]) robust.push_back(a["top1"]);
      out.push_back({m["mode"], m["top1"], m["loss"], m["macs"], robust});
    }
    out.push_back(e["ensemble"]["top1"]);
    return out;
  }
};

TEST_F(ExperimentTest, TinyGridRunsReportsAndSkipsFinishedCells) {
  const auto config = write_config("grid.json", tiny_grid(1));
  const auto out = dir / "grid";
  const auto r = run("experiment " + config.string() + " --out " + out.string() + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* cell : {"synthetic-small_cnn-baseline-s0", "synthetic-small_cnn-CT-s0"})
    ASSERT_TRUE(fs::exists(out / "cells" / cell / "eval.json")) << cell;
  const Json ct = read(out / "cells" / "synthetic-small_cnn-CT-s0" / "eval.json");
  ASSERT_EQ(ct["modes"].size(), 3u);  // AOM, DOM:0, DOM:1
  EXPECT_EQ(ct["modes"][0]["robustness"].size(), 2u);
  EXPECT_TRUE(ct.contains("dom_profile"));
  EXPECT_EQ(ct["ensemble"]["seeds"].size(), 2u);
  EXPECT_EQ(read(out / "summary.json").size(), 2u);

  // A second run finds everything done and recomputes nothing.
  const auto before = fs::last_write_time(out / "cells" / "synthetic-small_cnn-CT-s0" / "eval.json");
  const auto again = run("experiment " + config.string() + " --out " + out.string() + " --threads 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("[2/2] synthetic-small_cnn-CT-s0: already done"), std::string::npos) << again.err;
  EXPECT_EQ(fs::last_write_time(out / "cells" / "synthetic-small_cnn-CT-s0" / "eval.json"), before);

  // The report: the paper's tables from the cells.
  const auto rep = run("report " + out.string());
  ASSERT_EQ(rep.code, 0) << rep.err;
  const auto md = slurp(out / "report" / "report.md");
  EXPECT_NE(md.find("| synthetic | small_cnn |"), std::string::npos) << md;
  EXPECT_NE(md.find("CT AOM"), std::string::npos) << md;
  EXPECT_NE(md.find("rotate=0:45"), std::string::npos) << md;
  EXPECT_NE(md.find("DOM ensembles"), std::string::npos) << md;
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    for (const char* plot :
         {"curves-small_cnn.svg", "macs-small_cnn.svg", "robustness-small_cnn-rotate.svg", "kernels-small_cnn.svg"}) {
      EXPECT_TRUE(fs::exists(out / "report" / plot)) << plot;
      EXPECT_NE(md.find(plot), std::string::npos) << plot;
    }
    EXPECT_NE(slurp(out / "report" / "curves-small_cnn.svg").find("epoch"), std::string::npos);
  }

  // A study commits its cells without checkpoints: the report reads those copies alike.
  const auto committed = dir / "committed";
  fs::create_directories(committed / "cells");
  fs::copy_file(out / "experiment.json", committed / "experiment.json");
  for (const char* cell : {"synthetic-small_cnn-baseline-s0", "synthetic-small_cnn-CT-s0"}) {
    fs::create_directories(committed / "cells" / cell);
    for (const char* file : {"eval.json", "results.json", "metrics.jsonl"})
      fs::copy_file(out / "cells" / cell / file, committed / "cells" / cell / file);
  }
  const auto from_copies = run("report " + committed.string() + " --no-plots");
  ASSERT_EQ(from_copies.code, 0) << from_copies.err;
  const auto copied_md = slurp(committed / "report" / "report.md");
  const auto results_of = [](const std::string& text) {  // the tables, without the cost lines
    return text.substr(text.find("## Results"), text.find("## Cost") - text.find("## Results"));
  };
  const auto md_tables = results_of(slurp(out / "report" / "report.md"));
  EXPECT_EQ(results_of(copied_md), md_tables.substr(0, md_tables.find("## Plots")));
}

TEST_F(ExperimentTest, KilledMidCellResumesToTheSameResults) {
  const auto config = write_config("grid.json", tiny_grid(12));
  // The reference: one uninterrupted run.
  const auto reference = dir / "reference";
  ASSERT_EQ(run("experiment " + config.string() + " --out " + reference.string() + " --threads 1").code, 0);

  // The same grid, killed while its second cell trains.
  const auto out = dir / "killed";
  const auto pid_file = dir / "pid";
  const std::string cmd = std::string(WAS_CLI_PATH) + " experiment " + config.string() + " --out " + out.string() +
                          " --threads 1 >/dev/null 2>&1 & echo $! > " + pid_file.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto second = out / "cells" / "synthetic-small_cnn-CT-s0";
  const auto first_eval = out / "cells" / "synthetic-small_cnn-baseline-s0" / "eval.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(second / "last.pt") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const pid_t pid = std::stoi(slurp(pid_file));
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(fs::exists(second / "last.pt"));
  ASSERT_TRUE(fs::exists(first_eval));
  ASSERT_FALSE(fs::exists(second / "results.json")) << "the kill came after the cell finished";
  const auto first_time = fs::last_write_time(first_eval);

  const auto r = run("experiment " + config.string() + " --out " + out.string() + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("baseline-s0: already done"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CT-s0: resuming training"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(first_eval), first_time);
  EXPECT_EQ(outcome(second / "eval.json"), outcome(reference / "cells" / "synthetic-small_cnn-CT-s0" / "eval.json"));
}

TEST_F(ExperimentTest, BadExperimentFilesFailBeforeTraining) {
  const auto out = dir / "grid";
  const auto expect_refused = [&](Json config, const std::string& needle) {
    const auto path = write_config("bad.json", config);
    expect_clean_failure(run("experiment " + path.string() + " --out " + out.string()), needle);
    EXPECT_FALSE(fs::exists(out / "cells")) << needle;
  };
  Json c = tiny_grid(1);
  c["epochz"] = 3;
  expect_refused(c, "unknown key 'epochz'");
  c = tiny_grid(1);
  c["train"]["epochz"] = 3;
  expect_refused(c, "unknown key 'epochz'");
  c = tiny_grid(1);
  c["models"] = {"small_cnn", "resnet99"};
  expect_refused(c, "unknown model 'resnet99'");
  c = tiny_grid(1);
  c["policies"] = {"none", "crop=2:3"};
  expect_refused(c, "crop");
  c = tiny_grid(1);
  c["datasets"] = {"mnist"};
  expect_refused(c, "unknown dataset 'mnist'");
  c = tiny_grid(1);
  c["seeds"] = Json::array();
  expect_refused(c, "\"seeds\" lists nothing");
  c = tiny_grid(1);
  c["eval"]["robustness"] = {"rotate=90:0"};
  expect_refused(c, "rotate=90:0");
  c = tiny_grid(1);
  c["train"]["epochs"] = 0;
  expect_refused(c, "epochs must be at least 1");

  // Hostile values: each message names the file and the key, never nlohmann's text.
  const std::string file = "experiment '" + (dir / "bad.json").string() + "': ";
  c = tiny_grid(1);
  c["train"]["epochs"] = 1e30;
  expect_refused(c, file + "\"train\": training setting \"epochs\" is 1e+30, not a whole number");
  c = tiny_grid(1);
  c["seeds"] = {-1};
  expect_refused(c, file + "\"seeds\"[0] is -1, not a non-negative whole number");
  c = tiny_grid(1);
  c["policies"] = {{{"label", "a"}, {"policy", 5}}};
  expect_refused(c, file + "\"policies\"[0]: policy is 5, not a string");
  c = tiny_grid(1);
  c["eval"]["ensemble"] = "two";
  expect_refused(c, file + "evaluation setting \"ensemble\" is \"two\", not a whole number");
  c = tiny_grid(1);
  c["models"] = "small_cnn";
  expect_refused(c, "\"models\" must be a list");
  // Names that would leave the grid directory.
  for (const char* label : {"../../escape", "a/b", ".hidden", "a b"}) {
    c = tiny_grid(1);
    c["policies"] = {{{"label", label}, {"policy", "C"}}};
    expect_refused(c, "cannot name a directory");
  }
  c = tiny_grid(1);
  c["name"] = "../outside";
  expect_refused(c, "cannot name a directory");
  EXPECT_FALSE(fs::exists(dir / "escape"));
  // Limits: a grid of a million cells, nesting a thousand deep.
  c = tiny_grid(1);
  c["seeds"] = Json::array();
  for (int s = 0; s < 1000; ++s) c["seeds"].push_back(s);
  c["models"] = Json::array();
  for (int m = 0; m < 1000; ++m) c["models"].push_back("small_cnn");
  expect_refused(c, "cells, over the limit of 10000");
  const auto deep = dir / "deep.json";
  std::ofstream(deep) << "{\"description\": " << std::string(1000, '[') << std::string(1000, ']') << "}";
  expect_clean_failure(run("experiment " + deep.string()), "nests lists and objects 1001 deep (line 1)");
  fs::create_directories(dir / "a-directory.json");
  expect_clean_failure(run("experiment " + (dir / "a-directory.json").string()), "is a directory, not a JSON file");
}

TEST_F(ExperimentTest, OutputThatIsAFileAndUnknownBudgetsAreRefused) {
  const auto config = write_config("grid.json", tiny_grid(1));
  std::ofstream(dir / "file") << "x";
  expect_clean_failure(run("experiment " + config.string() + " --out " + (dir / "file").string()), "not a directory");
  expect_clean_failure(run("experiment " + config.string() + " --out " + (dir / "g").string() + " --budget cpu"),
                       "no budget 'cpu'");
  expect_clean_failure(run("experiment " + config.string() + " --out " + (dir / "g").string() + " --budget 1.5"),
                       "(0, 1]");
  expect_clean_failure(run("experiment " + (dir / "missing.json").string()), "missing.json");
  std::ofstream(dir / "broken.json") << "{\"models\": [";
  expect_clean_failure(run("experiment " + (dir / "broken.json").string()), "not valid JSON");
  EXPECT_FALSE(fs::exists(dir / "g"));
}

// --only runs the named cells and nothing else (a study resumed on a machine
// that holds only some of its cells), and writes no summary of a partial grid.
TEST_F(ExperimentTest, OnlyRunsTheMatchingCells) {
  const auto config = write_config("grid.json", tiny_grid(1));
  const auto out = dir / "grid";
  const auto listed = run("experiment " + config.string() + " --out " + out.string() + " --only '*-CT-?0' --dry-run");
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_EQ(listed.out, "synthetic-small_cnn-CT-s0\n");
  const auto r = run("experiment " + config.string() + " --out " + out.string() + " --only '*-CT-?0' --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "cells" / "synthetic-small_cnn-CT-s0" / "eval.json"));
  EXPECT_FALSE(fs::exists(out / "cells" / "synthetic-small_cnn-baseline-s0"));
  EXPECT_FALSE(fs::exists(out / "summary.json"));
  EXPECT_NE(r.err.find("1 cells were left out by --only"), std::string::npos) << r.err;
  expect_clean_failure(run("experiment " + config.string() + " --out " + out.string() + " --only '*-CTR-s0'"),
                       "--only '*-CTR-s0' matches no cell of experiment tiny");
  // Without the filter the grid completes what is left and writes its summary.
  const auto rest = run("experiment " + config.string() + " --out " + out.string() + " --threads 1");
  ASSERT_EQ(rest.code, 0) << rest.err;
  EXPECT_NE(rest.err.find("CT-s0: already done"), std::string::npos) << rest.err;
  EXPECT_EQ(read(out / "summary.json").size(), 2u);
}

// An unfinished run is judged as unfinished, and a check that could not be
// made (the training data unreadable) is never called consistent.
TEST_F(ExperimentTest, CheckSaysWhatItCouldNotCheck) {
  ASSERT_EQ(run(synthetic_train("unfinished", "--epochs 3 --max-steps 12")).code, 0);
  const auto unfinished = run("check " + (dir / "unfinished").string() + " --threads 1");
  EXPECT_EQ(unfinished.code, 0) << unfinished.out << unfinished.err;
  EXPECT_EQ(unfinished.out.find("FAIL"), std::string::npos) << unfinished.out;
  EXPECT_NE(unfinished.out.find("SKIP  unfinished run (epoch 1 of 3)"), std::string::npos) << unfinished.out;
  EXPECT_NE(unfinished.out.find("verdict: consistent so far: an unfinished run"), std::string::npos) << unfinished.out;

  const auto fashion = write_fashion_dir("fashion");
  ASSERT_EQ(run("train --dataset fashion-mnist --data-dir " + fashion.string() +
                " --epochs 1 --batch-size 10 --bn-batches 1 --no-progress --out " + (dir / "run").string())
                .code,
            0);
  const auto ok = run("check " + (dir / "run").string() + " --data-dir " + fashion.string() + " --threads 1");
  EXPECT_NE(ok.out.find("verdict: consistent\n"), std::string::npos) << ok.out;
  fs::remove_all(fashion);
  const auto blind = run("check " + (dir / "run").string() + " --data-dir " + fashion.string() + " --threads 1");
  EXPECT_EQ(blind.code, 0) << blind.out << blind.err;
  EXPECT_NE(blind.out.find("SKIP  AOM BatchNorm statistics not recomputed"), std::string::npos) << blind.out;
  EXPECT_EQ(blind.out.find("verdict: consistent\n"), std::string::npos) << blind.out;
  EXPECT_NE(blind.out.find("verdict: consistent in the "), std::string::npos) << blind.out;
  EXPECT_NE(blind.out.find("could not be made (see SKIP lines)"), std::string::npos) << blind.out;
}

TEST_F(ExperimentTest, CheckPassesAndCatchesTampering) {
  ASSERT_EQ(run(synthetic_train("run", "--was crop=0.4:0.6 --bn-batches 2")).code, 0);
  const auto ok = run("check " + (dir / "run").string() + " --threads 1");
  ASSERT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("verdict: consistent"), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find("FAIL"), std::string::npos) << ok.out;

  const auto tampered = [&](const std::string& name, const std::function<void(was::Checkpoint&)>& edit) {
    auto ckpt = was::load_checkpoint((dir / "run" / "last.pt").string());
    edit(ckpt);
    fs::create_directories(dir / name);
    was::save_checkpoint((dir / name / "last.pt").string(), *ckpt.network, ckpt.state);
    return run("check " + (dir / name).string() + " --threads 1");
  };
  const auto bn = tampered("bn", [](was::Checkpoint& c) {
    auto& entry = c.network->batchnorm().mutable_entry("dom:0");
    entry[0][0] = entry[0][0] + 0.5;  // the first layer's running mean
  });
  EXPECT_EQ(bn.code, 1) << bn.out;
  EXPECT_NE(bn.out.find("FAIL  DOM BatchNorm statistics"), std::string::npos) << bn.out;
  EXPECT_NE(bn.err.find("check failed"), std::string::npos) << bn.err;

  const auto macs = tampered("macs", [](was::Checkpoint& c) { c.state.results.dom->macs += 1000; });
  EXPECT_EQ(macs.code, 1) << macs.out;
  EXPECT_NE(macs.out.find("FAIL  DOM (seed 0) MACs"), std::string::npos) << macs.out;

  const auto missing = tampered("nobn", [](was::Checkpoint& c) {
    auto& aom = c.network->batchnorm().mutable_entry("aom");
    aom = c.network->batchnorm().entry("dom:0");  // AOM silently serving DOM's statistics
  });
  EXPECT_EQ(missing.code, 1) << missing.out;
  EXPECT_NE(missing.out.find("FAIL  AOM BatchNorm statistics"), std::string::npos) << missing.out;
}

}  // namespace

namespace {

struct ExperimentSharingTest : ExperimentTest {
  /// The tool in the background, its output in files of its own.
  std::string command(const std::string& args, const std::string& tag) const {
    return std::string(WAS_CLI_PATH) + " " + args + " >" + (dir / (tag + ".out")).string() + " 2>" +
           (dir / (tag + ".err")).string();
  }
};

TEST_F(ExperimentSharingTest, PolicySeedsAddCellsAndTwoProcessesShareAGrid) {
  Json grid = tiny_grid(2);
  grid["policies"] = {"none", {{"label", "CT"}, {"policy", "CT"}, {"seeds", {0, 1}}}};
  const auto config = write_config("grid.json", grid);
  const auto out = dir / "grid";
  const auto listed = run("experiment " + config.string() + " --out " + out.string() + " --dry-run");
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_EQ(listed.out, "synthetic-small_cnn-baseline-s0\nsynthetic-small_cnn-CT-s0\nsynthetic-small_cnn-CT-s1\n");
  EXPECT_NE(listed.err.find("3 cells"), std::string::npos) << listed.err;

  // Two processes at once: each cell is trained by exactly one of them.
  const std::string args = "experiment " + config.string() + " --out " + out.string() + " --threads 1";
  int status_a = -1, status_b = -1;
  std::thread a([&] { status_a = std::system(command(args, "a").c_str()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::thread b([&] { status_b = std::system(command(args, "b").c_str()); });
  a.join();
  b.join();
  EXPECT_EQ(status_a, 0) << slurp(dir / "a.err");
  EXPECT_EQ(status_b, 0) << slurp(dir / "b.err");
  for (const char* cell :
       {"synthetic-small_cnn-baseline-s0", "synthetic-small_cnn-CT-s0", "synthetic-small_cnn-CT-s1"}) {
    const auto metrics = slurp(out / "cells" / cell / "metrics.jsonl");
    EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 2) << cell << ": trained twice?\n" << metrics;
    EXPECT_TRUE(fs::exists(out / "cells" / cell / "eval.json")) << cell;
  }
  // The run that finds every cell done writes the whole summary.
  const auto last = run(args);
  ASSERT_EQ(last.code, 0) << last.err;
  EXPECT_EQ(read(out / "summary.json").size(), 3u);

  const auto empty = write_config("empty-seeds.json", [&] {
    Json g = grid;
    g["policies"][1]["seeds"] = Json::array();
    return g;
  }());
  expect_clean_failure(run("experiment " + empty.string() + " --out " + (dir / "g2").string()), "must not be empty");
}

TEST_F(ExperimentSharingTest, ARunDirectoryInUseIsRefused) {
  const auto run_dir = dir / "busy";
  auto lock = was::DirectoryLock::try_acquire(run_dir.string());
  ASSERT_TRUE(lock.has_value());
  EXPECT_EQ(was::DirectoryLock::holder_of(run_dir.string()), static_cast<long>(::getpid()));
  EXPECT_FALSE(was::DirectoryLock::try_acquire(run_dir.string()).has_value());  // another open: refused
  const auto r = run("train --model small_cnn --dataset synthetic --epochs 1 --threads 1 --out " + run_dir.string());
  expect_clean_failure(r, "in use by another process (pid " + std::to_string(::getpid()) + ")");
  EXPECT_FALSE(fs::exists(run_dir / "last.pt"));
  lock.reset();  // released: the run may start
  const auto ok = run("train --model small_cnn --dataset synthetic --epochs 1 --threads 1 --out " + run_dir.string());
  EXPECT_EQ(ok.code, 0) << ok.err;
}

}  // namespace
