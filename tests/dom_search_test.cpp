// `was dom-search`: DOM profiles chosen on the validation split, stored in the
// checkpoint, used by eval/export/info and verified by check.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_fixture.h"

namespace {

namespace fs = std::filesystem;
using was::testing::CliTest;

struct DomSearchTest : CliTest {
  std::string run_dir() const { return (dir / "run").string(); }

  // The mild crop 0.8:1 keeps most draws whole, so some candidates match AOM.
  void train_with_validation(const std::string& extra = "") {
    const auto r = run(synthetic_train("run", "--was C --epochs 2 --val-fraction 0.25 --bn-batches 2 " + extra));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  nlohmann::json info() {
    const auto r = run("info --json " + run_dir());
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
};

TEST_F(DomSearchTest, StoresProfilesThatMeetTheirConstraint) {
  train_with_validation();
  const auto r = run("dom-search " + run_dir() +
                     " --objective macs --max-drop 2 --candidates 6 --keep 2 "
                     "--policy crop=0.5:0.5 --threads 1 --plot " +
                     (dir / "plot").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("dom:0/crop=0.5:0.5"), std::string::npos) << r.out;  // the inference policy was tried
  const auto j = info();
  ASSERT_EQ(j["dom_profiles"].size(), 2u) << j.dump();
  for (const auto& p : j["dom_profiles"]) {
    EXPECT_GE(p["val_top1"].get<double>(), p["aom_val_top1"].get<double>() - 2.0) << p.dump();
    EXPECT_LE(p["macs"].get<int64_t>(), p["aom_macs"].get<int64_t>());
  }
  // Sorted by MACs: the first profile is the cheapest that qualifies.
  EXPECT_LE(j["dom_profiles"][0]["macs"].get<int64_t>(), j["dom_profiles"][1]["macs"].get<int64_t>());
  EXPECT_EQ(j["dom_profiles"][0]["name"], "macs");
  EXPECT_EQ(j["dom_profiles"][1]["name"], "macs-2");
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    EXPECT_TRUE(fs::exists(dir / "plot" / "dom-search.svg"));
  }

  // The stored profiles serve eval and export, and check verifies them.
  const auto e = run("eval " + run_dir() + " --dom macs --threads 1");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find(j["dom_profiles"][0]["mode"].get<std::string>().substr(4)), std::string::npos) << e.out;
  const auto x = run("export " + run_dir() + " --dom macs-2 --out " + (dir / "m.was").string());
  ASSERT_EQ(x.code, 0) << x.err;
  const auto c = run("check " + run_dir() + " --threads 1");
  ASSERT_EQ(c.code, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("PASS  DOM profile"), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("FAIL"), std::string::npos) << c.out;
  // And the run can still be resumed: the optimiser state was kept.
  const auto more = run("train --resume " + run_dir() + " --epochs 3 --no-progress --threads 1");
  EXPECT_EQ(more.code, 0) << more.err;
}

TEST_F(DomSearchTest, ImpossibleConstraintsWriteNothing) {
  train_with_validation();
  const auto before = slurp(dir / "run" / "last.pt");
  expect_clean_failure(run("dom-search " + run_dir() + " --objective accuracy --max-macs 0.000001 --candidates 3"),
                       "no candidate fits");
  EXPECT_EQ(slurp(dir / "run" / "last.pt"), before);
  const auto robust = run("dom-search " + run_dir() + " --objective robust:rotate=0:45 --candidates 3 --threads 1");
  ASSERT_EQ(robust.code, 0) << robust.err;
  EXPECT_EQ(info()["dom_profiles"][0]["name"], "robust");
}

TEST_F(DomSearchTest, NeverOpensTheTestSplit) {
  const auto data = write_fashion_dir("fashion");
  const auto r = run("train --dataset fashion-mnist --data-dir " + data.string() +
                     " --was crop=0.4:0.6 --epochs 1 --batch-size 8 --bn-batches 1 --val-fraction 0.25 --no-progress "
                     "--out " +
                     run_dir());
  ASSERT_EQ(r.code, 0) << r.err;
  // Without its test files the data set can no longer be evaluated...
  fs::remove(data / "t10k-images-idx3-ubyte.gz");
  fs::remove(data / "t10k-labels-idx1-ubyte.gz");
  EXPECT_NE(run("eval " + run_dir() + " --data-dir " + data.string()).code, 0);
  // ...but a search, which only ever reads the training files, still runs.
  const auto s = run("dom-search " + run_dir() + " --data-dir " + data.string() +
                     " --objective macs --max-drop 100 --candidates 3 --threads 1");
  EXPECT_EQ(s.code, 0) << s.err;
}

TEST_F(DomSearchTest, BadRequestsAreRefused) {
  const auto plain = run(synthetic_train("novalidation", "--was CT --bn-batches 1"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  expect_clean_failure(run("dom-search " + (dir / "novalidation").string() + " --objective macs"),
                       "no validation split");
  train_with_validation();
  expect_clean_failure(run("dom-search " + run_dir() + " --objective speed"), "unknown objective 'speed'");
  expect_clean_failure(run("dom-search " + run_dir() + " --objective macs --max-drop -1"), "--max-drop");
  expect_clean_failure(run("dom-search " + run_dir() + " --objective robust:spin=0:1"), "spin");
  expect_clean_failure(run("eval " + run_dir() + " --dom nosuch"), "no DOM profile named 'nosuch'");
  expect_clean_failure(run("export " + run_dir() + " --dom nosuch --out " + (dir / "x.was").string()),
                       "no DOM profile named 'nosuch'");
  EXPECT_FALSE(fs::exists(dir / "x.was"));
}

}  // namespace
