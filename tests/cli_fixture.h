// Running the real `was` tool from a test: exit code, stdout and stderr, and
// a scratch directory per test.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "was/data/idx.h"

namespace was::testing {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

/// A small tmpfs mounted at `at` (created) for the test's lifetime, for full
/// and read-only disks; `ok` is false, with the reason, where it cannot be
/// mounted (mounting needs root, as CI has).
struct ScopedTmpfs {
  fs::path at;
  bool ok = false;
  std::string why_not;
  ScopedTmpfs(const fs::path& path, const std::string& options) : at(path) {
    fs::create_directories(at);
    const std::string mount = "mount -t tmpfs -o " + options + " tmpfs " + at.string() + " 2>/dev/null";
    ok = std::system(mount.c_str()) == 0;
    if (!ok) why_not = "cannot mount a tmpfs here (needs root): " + mount;
  }
  ~ScopedTmpfs() {
    if (ok) std::system(("umount " + at.string() + " 2>/dev/null").c_str());
  }
  ScopedTmpfs(const ScopedTmpfs&) = delete;
  ScopedTmpfs& operator=(const ScopedTmpfs&) = delete;
};

/// Runs the real tool in a fresh scratch directory per test.
struct CliTest : ::testing::Test {
  fs::path dir;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("was_cli_test_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  Result run(const std::string& args) { return run_with_env("", args); }

  // `env`: "NAME=VALUE " assignments for this run only.
  Result run_with_env(const std::string& env, const std::string& args) {
    const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
    const std::string cmd = env + std::string(WAS_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // Fails unless the run failed cleanly: exit `code` (2 for command-line
  // syntax, 1 otherwise), one "error:" line naming `needle`.
  void expect_clean_failure(const Result& r, const std::string& needle, int code = 1) {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
  }

  // A Fashion-MNIST directory with tiny files in the real format.
  fs::path write_fashion_dir(const std::string& name) {
    const auto d = dir / name;
    fs::create_directories(d);
    auto images = torch::randint(0, 256, {20, 1, 28, 28}).to(torch::kUInt8);
    auto labels = torch::arange(20) % 10;
    was::data::write_idx_images((d / "train-images-idx3-ubyte.gz").string(), images, true);
    was::data::write_idx_labels((d / "train-labels-idx1-ubyte.gz").string(), labels, true);
    was::data::write_idx_images((d / "t10k-images-idx3-ubyte.gz").string(), images.slice(0, 0, 10), true);
    was::data::write_idx_labels((d / "t10k-labels-idx1-ubyte.gz").string(), labels.slice(0, 0, 10), true);
    return d;
  }

  std::string synthetic_train(const std::string& out, const std::string& extra = "") {
    return "train --dataset synthetic --epochs 1 --batch-size 64 --bn-batches 1 --no-progress --out " +
           (dir / out).string() + " " + extra;
  }
};

}  // namespace was::testing
