// Damaged archives are refused: every byte flip either fails the zip CRC
// check or leaves what loads unchanged (padding), never a silently different
// checkpoint.
#include "was/core/verified_archive.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "temp_dir.h"
#include "tiny_run.h"
#include "was/core/error.h"
#include "was/io/checkpoint.h"

namespace {
namespace fs = std::filesystem;
using was::testing::TempDir;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Everything a load rebuilds from the file: its record and every tensor.
bool same_checkpoint(const was::Checkpoint& a, const was::Checkpoint& b) {
  if (a.state.to_json() != b.state.to_json()) return false;
  auto pa = a.network->module().named_parameters();
  auto pb = b.network->module().named_parameters();
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  auto ba = a.network->module().named_buffers();
  auto bb = b.network->module().named_buffers();
  for (const auto& p : ba)
    if (!torch::equal(p.value(), bb[p.key()])) return false;
  return true;
}

TEST(VerifiedArchiveTest, IntactCheckpointPasses) {
  TempDir dir;
  was::testing::train_tiny_run(dir.path().string());
  EXPECT_EQ(was::find_archive_damage(read_bytes(dir.path() / "last.pt")), "");
}

TEST(VerifiedArchiveTest, EveryByteFlipIsRefusedOrHarmless) {
  TempDir dir;
  was::testing::train_tiny_run(dir.path().string());
  const auto good_path = dir.path() / "last.pt";
  const std::string good = read_bytes(good_path);
  const auto original = was::load_checkpoint(good_path.string());
  const auto flipped_path = dir.path() / "flipped.pt";
  int refused = 0;
  int positions = 0;
  for (size_t pos = 0; pos < good.size(); pos += good.size() / 257 + 1, ++positions) {
    std::string bytes = good;
    bytes[pos] = static_cast<char>(bytes[pos] ^ 0x10);
    write_bytes(flipped_path, bytes);
    try {
      const auto loaded = was::load_checkpoint(flipped_path.string());
      EXPECT_TRUE(same_checkpoint(original, loaded)) << "a flip at byte " << pos << " loaded a different checkpoint";
    } catch (const was::Error& e) {
      ++refused;
      EXPECT_NE(std::string(e.what()).find(flipped_path.string()), std::string::npos) << e.what();
    }
  }
  // Tensor data is most of the file; only zip padding and unused header fields may be hit harmlessly.
  EXPECT_GT(refused, positions * 3 / 4) << refused << " of " << positions;
}

TEST(VerifiedArchiveTest, DamageIsNamed) {
  TempDir dir;
  was::testing::train_tiny_run(dir.path().string());
  const std::string good = read_bytes(dir.path() / "last.pt");
  EXPECT_NE(was::find_archive_damage(good.substr(0, good.size() / 2)), "");
  EXPECT_NE(was::find_archive_damage(""), "");
  EXPECT_NE(was::find_archive_damage(std::string(100, 'x')), "");
  // The middle of the file is tensor data: a flip there fails its CRC.
  std::string flipped = good;
  const size_t middle = good.size() / 2;
  flipped[middle] = static_cast<char>(flipped[middle] ^ 0x01);
  const std::string why = was::find_archive_damage(flipped);
  EXPECT_NE(why, "");

  const auto path = dir.path() / "damaged.pt";
  write_bytes(path, flipped);
  try {
    was::read_verified_archive(path.string(), "checkpoint", "train again");
    ADD_FAILURE() << "a damaged archive was read";
  } catch (const was::Error& e) {
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_EQ(e.hint(), "train again");
  }
  EXPECT_THROW(was::read_verified_archive((dir.path() / "missing.pt").string(), "checkpoint", ""), was::Error);
  EXPECT_THROW(was::read_verified_archive(dir.path().string(), "checkpoint", ""), was::Error);
}

}  // namespace
