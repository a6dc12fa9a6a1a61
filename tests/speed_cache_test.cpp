// Speed settings chosen by measurement and remembered per machine
// (was/core/speed_cache.h), and `was predict` choosing its layout by them.
#include "was/core/speed_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "temp_dir.h"
#include "was/core/json_file.h"
#include "was/data/image.h"
#include "was/io/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using was::SpeedCache;
using was::SpeedChoice;
using was::SpeedKey;
using was::SpeedSettings;
using was::testing::CliTest;

const std::vector<SpeedSettings> kLayouts = {SpeedSettings{false, false}, SpeedSettings{true, false}};

SpeedKey key_of(const std::string& model) { return SpeedKey{"predict", model, 8, 2, "cpu", "Test CPU"}; }

struct Recorder {
  std::vector<std::string> warnings;
  std::function<void(const std::string&)> warn() {
    return [this](const std::string& w) { warnings.push_back(w); };
  }
};

// Channels-last "wins" by 2x; counts how often it was asked.
struct FakeTimer {
  int calls = 0;
  std::function<double(const SpeedSettings&)> fn() {
    return [this](const SpeedSettings& s) {
      ++calls;
      return s.channels_last ? 0.5 : 1.0;
    };
  }
};

// "IMAGE: CLASS P, ..." -> CLASS
std::string top_class(const std::string& line) {
  const auto start = line.find(": ") + 2;
  return line.substr(start, line.find(' ', start) - start);
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(SpeedCacheTest, MeasuresOnceThenRemembersPerKey) {
  was::testing::TempDir dir;
  const SpeedCache cache(dir.file("cache/settings.json"));
  Recorder r;
  FakeTimer t;
  auto first = was::choose_speed_settings(key_of("resnet18"), kLayouts, t.fn(), &cache, r.warn());
  EXPECT_TRUE(first.settings.channels_last);
  EXPECT_EQ(first.source, "measured");
  EXPECT_EQ(t.calls, 2);
  EXPECT_NE(first.describe().find("nchw 1 s, channels-last 0.5 s"), std::string::npos) << first.describe();
  auto second = was::choose_speed_settings(key_of("resnet18"), kLayouts, t.fn(), &cache, r.warn());
  EXPECT_TRUE(second.settings.channels_last);
  EXPECT_NE(second.source.find("cached"), std::string::npos);
  EXPECT_EQ(t.calls, 2) << "a cached choice is not measured again";
  // Another model, batch or processor is another key.
  auto other = key_of("resnet18");
  other.processor = "Another CPU";
  was::choose_speed_settings(other, kLayouts, t.fn(), &cache, r.warn());
  EXPECT_EQ(t.calls, 4);
  EXPECT_TRUE(r.warnings.empty());
  // Other candidates are another question: measured anew.
  was::choose_speed_settings(key_of("resnet18"), {SpeedSettings{false, false}, SpeedSettings{false, true}}, t.fn(),
                             &cache, r.warn());
  EXPECT_EQ(t.calls, 6);
}

TEST(SpeedCacheTest, ACorruptOrForeignFileIsIgnoredWithAWarningAndKept) {
  was::testing::TempDir dir;
  for (const std::string& text : {std::string("{ not json"), std::string("{\"kind\": \"something else\"}"),
                                  std::string("[1, 2, 3]"), std::string(2u << 20, ' ')}) {
    const auto path = dir.file("settings.json");
    write(path, text);
    const SpeedCache cache(path);
    Recorder r;
    FakeTimer t;
    auto choice = was::choose_speed_settings(key_of("vgg16"), kLayouts, t.fn(), &cache, r.warn());
    EXPECT_EQ(t.calls, 2) << "never trusted: measured";
    EXPECT_TRUE(choice.settings.channels_last);
    ASSERT_GE(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings.front().find("ignoring the speed settings cache"), std::string::npos) << r.warnings.front();
    EXPECT_EQ(read(path), text) << "a file the tool did not write is never overwritten";
  }
}

TEST(SpeedCacheTest, AMalformedEntryIsMeasuredAgainAndReplaced) {
  was::testing::TempDir dir;
  const auto path = dir.file("settings.json");
  const SpeedCache cache(path);
  Recorder r;
  FakeTimer t;
  was::choose_speed_settings(key_of("resnet18"), kLayouts, t.fn(), &cache, r.warn());
  auto j = nlohmann::json::parse(read(path));
  ASSERT_EQ(j["entries"].size(), 1u);
  j["entries"].begin().value()["settings"] = "fastest-please";
  write(path, j.dump());
  EXPECT_TRUE(
      was::choose_speed_settings(key_of("resnet18"), kLayouts, t.fn(), &cache, r.warn()).settings.channels_last);
  EXPECT_EQ(t.calls, 4);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("malformed entry"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(read(path))["entries"].begin().value()["settings"], "channels-last");
}

TEST(SpeedCacheTest, LabelsParseBackAndTheProcessorIsNamed) {
  for (bool cl : {false, true})
    for (bool bf : {false, true}) {
      const SpeedSettings s{cl, bf};
      EXPECT_EQ(*SpeedSettings::parse(s.label()), s);
    }
  EXPECT_FALSE(SpeedSettings::parse("nhwc"));
  EXPECT_FALSE(was::processor_name().empty());
  const SpeedKey unnamed{"predict", "m", 1, 1, "cpu", ""};
  EXPECT_NE(unnamed.to_string().find(was::processor_name()), std::string::npos);
}

// `was predict` without a layout flag measures once, says what it chose, and
// then reads the cache; a flag skips both. The predictions never change.
TEST_F(CliTest, PredictChoosesItsLayoutByMeasurementAndRemembersIt) {
  ASSERT_EQ(run(synthetic_train("run", "--was crop=0.4:0.6")).code, 0);
  ASSERT_EQ(run("export " + (dir / "run").string() + " --mode dom --out " + (dir / "m.was").string()).code, 0);
  const auto image = dir / "image.png";
  was::data::write_png(image.string(), torch::randint(0, 256, {1, 16, 16}, torch::kUInt8));
  const std::string predict = "predict " + (dir / "m.was").string() + " " + image.string() + " --threads 1";
  const std::string env = "WAS_CACHE_DIR=" + (dir / "cache").string() + " ";
  const auto first = run_with_env(env, predict);
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("layout: "), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("(measured: nchw "), std::string::npos) << first.err;
  EXPECT_TRUE(fs::exists(dir / "cache" / "settings.json"));
  const auto second = run_with_env(env, predict);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find("(cached in "), std::string::npos) << second.err;
  EXPECT_EQ(second.out, first.out);
  for (const char* flag : {" --nchw", " --channels-last"}) {
    const auto fixed = run_with_env(env, predict + flag);
    ASSERT_EQ(fixed.code, 0) << fixed.err;
    EXPECT_EQ(fixed.err.find("layout: "), std::string::npos) << flag;
    EXPECT_EQ(top_class(fixed.out), top_class(first.out)) << flag;
  }
  expect_clean_failure(run_with_env(env, predict + " --nchw --channels-last"), "excludes", 2);
}

}  // namespace

namespace {

// `was train` without a memory-format flag times both formats on a copy of
// the network, says what it chose and keeps it in the run's options; the
// cache answers the next run; a flag skips it; bf16 is a candidate only
// when --bf16 auto asks for it.
TEST_F(CliTest, TrainChoosesItsMemoryFormatByMeasurementOnlyWhenLeftOpen) {
  const std::string env = "WAS_CACHE_DIR=" + (dir / "cache").string() + " ";
  const auto first = run_with_env(env, synthetic_train("a", "--was CT --threads 1"));
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("speed settings: "), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("(measured: nchw "), std::string::npos) << first.err;
  EXPECT_EQ(first.err.find("bf16"), std::string::npos) << "bf16 only when asked for: " << first.err;
  const bool chose_channels_last = first.err.find("speed settings: channels-last") != std::string::npos;
  EXPECT_EQ(was::read_run_state((dir / "a" / "last.pt").string()).options.channels_last, chose_channels_last);

  const auto second = run_with_env(env, synthetic_train("b", "--was CT --threads 1"));
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find("(cached in "), std::string::npos) << second.err;
  EXPECT_EQ(was::read_run_state((dir / "b" / "last.pt").string()).options.channels_last, chose_channels_last);

  const auto fixed = run_with_env(env, synthetic_train("c", "--was CT --threads 1 --nchw"));
  ASSERT_EQ(fixed.code, 0) << fixed.err;
  EXPECT_EQ(fixed.err.find("speed settings"), std::string::npos) << fixed.err;
  EXPECT_FALSE(was::read_run_state((dir / "c" / "last.pt").string()).options.channels_last);

  const auto with_bf16 = run_with_env(env, synthetic_train("d", "--was CT --threads 1 --bf16 auto"));
  ASSERT_EQ(with_bf16.code, 0) << with_bf16.err;
  EXPECT_NE(with_bf16.err.find("channels-last+bf16 "), std::string::npos) << "four candidates timed: " << with_bf16.err;

  expect_clean_failure(run_with_env(env, synthetic_train("e", "--bf16 sometimes")), "--bf16 takes on, off or auto");
  expect_clean_failure(run_with_env(env, "train --resume " + (dir / "a").string() + " --nchw"),
                       "--nchw cannot be combined with --resume");
}

}  // namespace

namespace {

// `was eval` without a layout flag times NCHW against channels-last on the
// evaluation's batch, says what it chose and records it in the JSON; the
// cache answers next time; a flag skips both. Top-1 does not depend on it.
TEST_F(CliTest, EvalChoosesItsLayoutByMeasurementAndRemembersIt) {
  ASSERT_EQ(run(synthetic_train("run", "--was CT")).code, 0);
  const std::string env = "WAS_CACHE_DIR=" + (dir / "cache").string() + " ";
  const auto eval = [&](const std::string& name, const std::string& flags) {
    const auto json = dir / (name + ".json");
    const auto r = run_with_env(env, "eval " + (dir / "run").string() + " --threads 1 --json " + json.string() + flags);
    EXPECT_EQ(r.code, 0) << r.err;
    return std::make_pair(r, fs::exists(json) ? was::read_json_file(json.string(), "JSON") : nlohmann::json());
  };
  const auto [first, first_json] = eval("first", "");
  EXPECT_NE(first.err.find("speed settings: "), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("(measured: nchw "), std::string::npos) << first.err;
  const std::string chosen = first_json.at(0).at("speed_settings");
  EXPECT_TRUE(chosen == "nchw" || chosen == "channels-last") << chosen;
  const auto [second, second_json] = eval("second", "");
  EXPECT_NE(second.err.find("(cached in "), std::string::npos) << second.err;
  EXPECT_EQ(second_json.at(0).at("speed_settings"), chosen);
  for (const auto& [flag, label] :
       {std::pair<std::string, std::string>{" --nchw", "nchw"}, {" --channels-last", "channels-last"}}) {
    const auto [fixed, fixed_json] = eval(label, flag);
    EXPECT_EQ(fixed.err.find("speed settings"), std::string::npos) << flag;
    EXPECT_EQ(fixed_json.at(0).at("speed_settings"), label);
    for (size_t m = 0; m < first_json.at(0).at("modes").size(); ++m)
      EXPECT_NEAR(fixed_json.at(0).at("modes").at(m).at("top1").get<double>(),
                  first_json.at(0).at("modes").at(m).at("top1").get<double>(), 1e-9)
          << flag;
  }
  expect_clean_failure(run_with_env(env, "eval " + (dir / "run").string() + " --nchw --channels-last"), "excludes", 2);
}

}  // namespace
