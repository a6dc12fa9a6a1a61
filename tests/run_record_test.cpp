// The typed run record (was/record/): one JSON mapping that files written by
// older builds still read through, one validate() for the training settings
// and for the record, and a checkpoint that refuses a record that contradicts
// itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "expect_error.h"
#include "temp_dir.h"
#include "was/io/checkpoint.h"
#include "was/record/run_record.h"
#include "was/record/train_options.h"

namespace {

using was::testing::error_of;
using Json = nlohmann::json;

// A finished run's metadata as the checkpoint stores it, every part filled.
Json full_record_json() {
  return Json::parse(R"({
    "model": {"name": "small_cnn", "num_classes": 10, "in_channels": 3, "image_size": 16},
    "policy": "crop=0.4:0.6", "seed": 3, "dom_seed": 1, "dataset": "synthetic",
    "class_names": ["a", "b"], "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    "train_options": {"epochs": 2, "batch_size": 32, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005,
                      "cosine": true, "bn_batches": 4, "checkpoint_every": 0, "eval_every": 1,
                      "augment": true, "val_fraction": 0.25, "val_seed": 7, "mode_bn_curves": true},
    "epoch": 2, "batch": 0, "step": 8, "finished": true,
    "history": [
      {"epoch": 1, "step": 4, "lr": 0.05, "train_loss": 2.0, "train_top1": 20.0, "images_per_s": 100.0,
       "seconds": 1.5, "test_top1_aom": 30.0, "test_loss_aom": 1.9, "val_top1_aom": 31.0, "test_top1_dom_bn": 29.5},
      {"epoch": 2, "step": 8, "lr": 0.0, "train_loss": 1.5, "train_top1": 40.0, "images_per_s": 110.0,
       "seconds": 1.25, "world_size": 2, "allreduce_seconds": 0.125, "test_top1_aom": 45.0, "val_top1_aom": 41.0}],
    "results": {
      "aom": {"top1": 45.0, "loss": 1.4, "top1_training_bn": 40.0, "batchnorm": "re-estimated", "val_top1": 41.0,
              "macs": 1000, "sparsity_transformed": 0.0, "sparsity_conv": 0.0},
      "dom": {"top1": 44.0, "loss": 1.5, "top1_training_bn": 39.0, "batchnorm": "re-estimated",
              "macs": 800, "sparsity_transformed": 0.3, "sparsity_conv": 0.2},
      "stochastic_dom": {"running": {"top1": [40.0, 42.0], "mean": 41.0, "sd": 1.4142135623730951, "min": 40.0,
                                     "max": 42.0, "repeats": 2},
                         "paper": {"top1": [43.0], "mean": 43.0, "sd": 0.0, "min": 43.0, "max": 43.0, "repeats": 1}},
      "selection": {"aom": {"final": 45.0, "final_epoch": 2, "best_test": 45.0, "best_test_epoch": 2,
                            "val_selected": 45.0, "val_selected_epoch": 2, "best_val": 41.0}},
      "protocol": "", "dom_seed": 1, "bn_batches": 4, "bn_augmented": true, "val_images": 16},
    "dom_profiles": [{"name": "macs", "mode": "dom:2", "objective": "macs", "val_top1": 40.0,
                      "aom_val_top1": 41.0, "macs": 700, "aom_macs": 1000, "sparsity_transformed": 0.35}]
  })");
}

TEST(RunRecordTest, JsonMappingRoundTripsEveryField) {
  Json stored = full_record_json();
  stored["results"].erase("protocol");  // the project's protocol is stored as no key
  const auto record = was::RunRecord::from_json(stored);
  EXPECT_EQ(record.to_json(), stored);
  EXPECT_EQ(record.options.val_seed, 7u);
  EXPECT_EQ(record.options.augment, std::optional<bool>(true));
  ASSERT_EQ(record.history.size(), 2u);
  EXPECT_EQ(record.history[0].evaluation("test_top1_dom_bn"), std::optional<double>(29.5));
  EXPECT_FALSE(record.history[0].evaluation("test_top1_dom"));
  EXPECT_EQ(record.history[1].world_size, std::optional<int64_t>(2));
  EXPECT_EQ(record.results.dom->sparsity_conv, 0.2);
  EXPECT_EQ(record.results.stochastic_dom->paper.top1.size(), 1u);
  EXPECT_EQ(*record.results.selection.at("aom").val_selected_epoch, 2);
  EXPECT_EQ(record.profile_mode("macs"), was::Mode::dom(2));
  EXPECT_NO_THROW(record.validate());
}

TEST(RunRecordTest, RecordsOfOlderBuildsStillRead) {
  // Before bn_augmented, stochastic DOM, selections and DOM profiles existed.
  Json old = full_record_json();
  for (const char* key : {"bn_augmented", "stochastic_dom", "selection", "val_images"}) old["results"].erase(key);
  old["results"]["aom"].erase("sparsity_conv");
  old.erase("dom_profiles");
  old["train_options"].erase("augment");
  const auto record = was::RunRecord::from_json(old);
  EXPECT_FALSE(record.results.bn_augmented);
  EXPECT_FALSE(record.options.augment);
  EXPECT_TRUE(record.dom_profiles.empty());
  EXPECT_EQ(record.results.aom->sparsity_conv, 0.0);
  EXPECT_NO_THROW(record.validate());
  // An unfinished run has no results at all.
  Json unfinished = full_record_json();
  unfinished["results"] = Json::object();
  unfinished["finished"] = false;
  EXPECT_TRUE(was::RunRecord::from_json(unfinished).results.empty());
  EXPECT_EQ(was::RunRecord::from_json(unfinished).to_json()["results"], Json::object());
}

TEST(RunRecordTest, ValidateNamesWhatContradicts) {
  const auto good = was::RunRecord::from_json(full_record_json());
  auto r = good;
  r.epoch = 3;
  EXPECT_NE(error_of([&] { r.validate(); }).find("done 3 epochs but records 2"), std::string::npos);
  r = good;
  r.history[1].epoch = 5;
  EXPECT_NE(error_of([&] { r.validate(); }).find("epoch 5 at position 2"), std::string::npos);
  r = good;
  r.dom_profiles.push_back(r.dom_profiles.front());
  EXPECT_NE(error_of([&] { r.validate(); }).find("two DOM profiles named 'macs'"), std::string::npos);
  r = good;
  r.dom_profiles[0].mode = "sideways";
  EXPECT_NE(error_of([&] { r.validate(); }).find("profile 'macs'"), std::string::npos);
  r = good;
  r.policy = "crop=7:8";
  EXPECT_NE(error_of([&] { r.validate(); }).find("policy 'crop=7:8'"), std::string::npos);
  r = good;
  r.results = was::RunResults{};
  EXPECT_NE(error_of([&] { r.validate(); }).find("finished but holds no results"), std::string::npos);
  r = good;
  r.normalization.std[1] = 0.0;
  EXPECT_NE(error_of([&] { r.validate(); }).find("normalisation"), std::string::npos);
  r = good;
  r.options.lr = 0.0;
  EXPECT_NE(error_of([&] { r.validate(); }).find("lr must be"), std::string::npos);
}

TEST(TrainOptionsTest, ValidateIsTheOneCheckOfEverySetting) {
  const auto refused = [](auto change) {
    was::TrainOptions o;
    change(o);
    return error_of([&] { o.validate(); });
  };
  EXPECT_NO_THROW(was::TrainOptions{}.validate());
  EXPECT_NE(refused([](auto& o) { o.epochs = 0; }).find("epochs must be at least 1, got 0 | hint: set --epochs"),
            std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.batch_size = -2; }).find("batch_size must be at least 1"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.eval_every = -1; }).find("eval_every must be non-negative"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lr = std::numeric_limits<double>::infinity(); }).find("lr must be a positive"),
            std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.lr = std::nan(""); }).find("lr must be a positive"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.weight_decay = -1e-4; }).find("weight_decay"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.val_fraction = 1.0; }).find("val_fraction must lie in (0, 1)"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.combine = "max"; }).find("combine must be mean or min"), std::string::npos);
  EXPECT_NE(refused([](auto& o) { o.protocol = "papers"; }).find("unknown protocol 'papers'"), std::string::npos);
  EXPECT_NE(refused([](auto& o) {
              o.protocol = "paper";
              o.mode_bn_curves = true;
            }).find("--mode-bn-curves is for the project's protocol"),
            std::string::npos);
}

TEST(TrainOptionsTest, ValuesOfTheWrongTypeOrRangeNameTheirKey) {
  const auto read = [](const Json& j) { return error_of([&] { was::TrainOptions::from_json(j); }); };
  EXPECT_NE(read({{"epochs", "ten"}}).find("\"epochs\" is \"ten\", not a whole number"), std::string::npos);
  EXPECT_NE(read({{"epochs", 1.5}}).find("\"epochs\" is 1.5"), std::string::npos);
  EXPECT_NE(read(Json::parse(R"({"epochs": 99999999999999999999})")).find("\"epochs\""), std::string::npos);
  EXPECT_NE(read({{"val_seed", -1}}).find("\"val_seed\" is -1, not a non-negative whole number"), std::string::npos);
  EXPECT_NE(read({{"cosine", 1}}).find("\"cosine\" is 1, not true or false"), std::string::npos);
  EXPECT_NE(read({{"lr", "fast"}}).find("\"lr\" is \"fast\", not a finite number"), std::string::npos);
  EXPECT_NE(read(Json::array()).find("not an object"), std::string::npos);
  // A whole number written as a float is one.
  EXPECT_EQ(was::TrainOptions::from_json({{"epochs", 3.0}}).epochs, 3);
  EXPECT_EQ(was::TrainOptions::from_json({{"augment", nullptr}}).augment, std::nullopt);
}

TEST(RunRecordTest, CheckpointRefusesARecordThatContradictsItself) {
  was::testing::TempDir dir;
  const auto record = was::RunRecord::from_json(full_record_json());
  torch::manual_seed(0);
  was::Network net(record.model, was::Policy::parse(record.policy), record.seed);
  const std::string good = dir.file("good.pt"), bad = dir.file("bad.pt");
  was::save_checkpoint(good, net, record);
  EXPECT_EQ(was::read_run_state(good).to_json(), record.to_json());
  auto broken = record;
  broken.epoch = 7;  // seven epochs done, two recorded
  was::save_checkpoint(bad, net, broken);
  const std::string message = error_of([&] { was::load_checkpoint(bad); });
  EXPECT_NE(message.find("holds an inconsistent run record: the run has done 7 epochs"), std::string::npos) << message;
  EXPECT_NE(message.find("bad.pt"), std::string::npos) << message;
}

}  // namespace
