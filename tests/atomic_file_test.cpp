// Files that matter: written whole or not at all, the previous version kept.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "expect_error.h"
#include "temp_dir.h"
#include "was/core/atomic_file.h"

namespace {

namespace fs = std::filesystem;

std::string contents_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AtomicFileTest, ReplacesWholeAndLeavesNoTemporary) {
  was::testing::TempDir dir("atomic");
  const auto path = dir.path() / "f.json";
  was::write_file_atomically(path.string(), std::string("first"));
  was::write_file_atomically(path.string(), std::string("second, longer"));
  EXPECT_EQ(contents_of(path), "second, longer");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  // An archive goes the same way, its directories created.
  torch::serialize::OutputArchive archive;
  archive.write("x", torch::arange(5));
  const auto nested = dir.path() / "a" / "b" / "m.pt";
  was::write_archive_atomically(nested.string(), archive, "archive");
  torch::serialize::InputArchive in;
  in.load_from(nested.string());
  torch::Tensor x;
  in.read("x", x);
  EXPECT_TRUE(torch::equal(x, torch::arange(5)));
}

TEST(AtomicFileTest, AFailedWriteNamesTheFileAndKeepsTheOldOne) {
  was::testing::TempDir dir("atomic_fail");
  // The temporary name is a directory: the write cannot start.
  const auto path = dir.path() / "kept.json";
  was::write_file_atomically(path.string(), std::string("old"));
  fs::create_directories(path.string() + ".tmp/inside");
  const auto message =
      was::testing::error_of([&] { was::write_file_atomically(path.string(), std::string("new"), "report"); });
  EXPECT_NE(message.find("cannot write report"), std::string::npos) << message;
  EXPECT_NE(message.find("kept.json"), std::string::npos) << message;
  EXPECT_EQ(contents_of(path), "old");
  // A missing directory: nothing is created.
  const auto missing = dir.path() / "no" / "such" / "f.json";
  EXPECT_NE(was::testing::error_of([&] {
              was::write_file_atomically(missing.string(), std::string("x"));
            }).find("cannot write"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path() / "no"));
}

}  // namespace
