// The real `was` tool on good and bad input: bad input gives one clear line
// on stderr, a non-zero exit, and no output written.
#include <gtest/gtest.h>

#include "cli_fixture.h"
#include "was/data/datasets.h"
#include "was/data/image.h"

namespace {

namespace fs = std::filesystem;
using was::testing::CliTest;
using was::testing::ScopedTmpfs;

TEST_F(CliTest, TrainEvalInfoEndToEnd) {
  const auto r = run(synthetic_train("run", "--was CT"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"epoch\":1"), std::string::npos) << r.out;  // one JSON line per epoch
  EXPECT_TRUE(fs::exists(dir / "run" / "last.pt"));
  EXPECT_TRUE(fs::exists(dir / "run" / "results.json"));
  const auto e = run("eval " + (dir / "run").string() + " --threads 1 --json " + (dir / "eval.json").string());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("AOM"), std::string::npos);
  EXPECT_NE(e.out.find("DOM:0"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "eval.json"));
  const auto i = run("info " + (dir / "run").string());
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("crop=0.8:1,translate=0.3:0.3"), std::string::npos) << i.out;
  // A second train into the same directory must not overwrite the run.
  expect_clean_failure(run(synthetic_train("run")), "already holds a run");
  // Resume with a conflicting model is refused.
  expect_clean_failure(run("train --resume " + (dir / "run").string() + " --model resnet18 --epochs 2"),
                       "--model cannot be combined with --resume");
  // So are the settings the checkpoint fixes: a batch size would reinterpret the stored position in the epoch.
  for (const char* flag : {"--batch-size 7", "--lr 0.5", "--weight-decay 0", "--eval-every 3"}) {
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    expect_clean_failure(run("train --resume " + (dir / "run").string() + " --epochs 2 " + flag),
                         name + " cannot be combined with --resume");
  }
}

TEST_F(CliTest, MissingDatasetDirectory) {
  expect_clean_failure(run("train --dataset fashion-mnist --data-dir " + (dir / "nowhere").string() + " --out " +
                           (dir / "out").string()),
                       (dir / "nowhere").string());
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, TruncatedIdxFile) {
  const auto d = write_fashion_dir("fm");
  const auto file = d / "train-images-idx3-ubyte.gz";
  // Rewrite it uncompressed and cut it short.
  fs::remove(file);
  was::data::write_idx_images((d / "train-images-idx3-ubyte").string(), torch::zeros({20, 1, 28, 28}, torch::kUInt8),
                              false);
  fs::resize_file(d / "train-images-idx3-ubyte", 16 + 28 * 28 * 5);
  expect_clean_failure(run("train --data-dir " + d.string() + " --out " + (dir / "out").string()),
                       "train-images-idx3-ubyte");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, WrongMagicIdxFile) {
  const auto d = write_fashion_dir("fm");
  // Labels where images belong.
  fs::copy_file(d / "train-labels-idx1-ubyte.gz", d / "train-images-idx3-ubyte.gz",
                fs::copy_options::overwrite_existing);
  expect_clean_failure(run("train --data-dir " + d.string() + " --out " + (dir / "out").string()), "magic");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, UnknownModel) {
  expect_clean_failure(run(synthetic_train("out", "--model resnet99")), "unknown model 'resnet99'");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, CropAndTranslateOutOfRange) {
  for (const char* policy : {"crop=0:0.5", "crop=0.5:1.5"}) {
    expect_clean_failure(run(synthetic_train("out", std::string("--was ") + policy)), "crop ratio");
    EXPECT_FALSE(fs::exists(dir / "out"));
  }
  for (const char* policy : {"translate=-0.1:0.3", "translate=0.3:1.2"}) {
    expect_clean_failure(run(synthetic_train("out", std::string("--was ") + policy)), "translate fractions");
    EXPECT_FALSE(fs::exists(dir / "out"));
  }
}

TEST_F(CliTest, CorruptAndTruncatedCheckpoints) {
  ASSERT_EQ(run(synthetic_train("run")).code, 0);
  const auto good = dir / "run" / "last.pt";
  const auto truncated = dir / "truncated.pt";
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 3);
  const auto garbage = dir / "garbage.pt";
  std::ofstream(garbage) << "not a checkpoint at all";
  for (const auto& p : {truncated, garbage, dir / "missing.pt"}) {
    expect_clean_failure(run("eval " + p.string() + " --json " + (dir / "e.json").string()), p.string());
    expect_clean_failure(run("info " + p.string()), p.string());
    EXPECT_FALSE(fs::exists(dir / "e.json"));
  }
}

TEST_F(CliTest, ResumeFromCorruptCheckpointLeavesNothing) {
  const auto garbage = dir / "garbage.pt";
  std::ofstream(garbage) << "junk";
  expect_clean_failure(run("train --resume " + garbage.string() + " --out " + (dir / "out").string()),
                       garbage.string());
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, BadOptionValues) {
  expect_clean_failure(run(synthetic_train("out", "--epochs 0")), "--epochs");
  expect_clean_failure(run(synthetic_train("out", "--threads -2")), "--threads");
  expect_clean_failure(run(synthetic_train("out", "--device tpu")), "device");
  expect_clean_failure(run(synthetic_train("out", "--granularity sideways")), "--granularity", 2);
  expect_clean_failure(run(synthetic_train("out", "--epochs many")), "--epochs", 2);
  expect_clean_failure(run(synthetic_train("out", "--val-fraction 1.5")), "--val-fraction");
  expect_clean_failure(run(synthetic_train("out", "--val-fraction 0")), "--val-fraction");
  expect_clean_failure(run(synthetic_train("out", "--was CT --draws 0")), "--draws");
  expect_clean_failure(run(synthetic_train("out", "--was CT --draws 2 --combine median")), "--combine", 2);
  EXPECT_FALSE(fs::exists(dir / "out"));
}

// --- data sets: CIFAR, image folders, augmentation flags ---------------------------

// root/{train,test}/{a,b}/N.png, `side` x `side` random images.
fs::path write_image_folder(const fs::path& root, int64_t side, int per_class = 4) {
  for (const char* split : {"train", "test"}) {
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(root / split / cls);
      for (int i = 0; i < per_class; ++i)
        was::data::write_png((root / split / cls / (std::to_string(i) + ".png")).string(),
                             torch::randint(0, 256, {3, side, side}).to(torch::kUInt8));
    }
  }
  return root;
}

TEST_F(CliTest, CifarDirectoryErrors) {
  const std::string out = " --no-progress --out " + (dir / "out").string();
  expect_clean_failure(run("train --dataset cifar10" + out), "no default location");
  const auto missing = run("train --dataset cifar10 --data-dir " + (dir / "nowhere").string() + out);
  expect_clean_failure(missing, (dir / "nowhere").string());
  EXPECT_NE(missing.err.find("to_cifar_bin.py"), std::string::npos) << missing.err;
  // Files in the layout, but 2 records each instead of 10000, then one cut short.
  const auto d = dir / "c10";
  fs::create_directories(d);
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"})
    std::ofstream(d / name, std::ios::binary) << std::string(2 * 3073, '\1');
  expect_clean_failure(run("train --dataset cifar10 --data-dir " + d.string() + out),
                       (d / "data_batch_1.bin").string() + "' holds 2 records, expected 10000");
  fs::resize_file(d / "data_batch_1.bin", 2 * 3073 - 7);
  expect_clean_failure(run("train --dataset cifar10 --data-dir " + d.string() + out), "not a whole number");
  expect_clean_failure(run("train --dataset cifar100 --data-dir " + d.string() + out), "holds no train.bin");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, ImageFolderTrainEvalAndAugmentFlags) {
  const auto root = write_image_folder(dir / "folder", 10);
  const std::string train = "train --dataset imagefolder --data-dir " + root.string() +
                            " --image-size 8 --epochs 1 --batch-size 4 --bn-batches 1 --no-progress --threads 1";
  auto r = run(train + " --was CT --out " + (dir / "aug").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("augmentation crop(pad=4)+hflip"), std::string::npos) << r.err;  // on by default
  auto i = run("info --json " + (dir / "aug").string());
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("\"augment\": true"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("\"image_size\": 8"), std::string::npos) << i.out;
  // eval reloads the folder at the run's image size (the run does not store where the data live).
  const auto e = run("eval " + (dir / "aug").string() + " --data-dir " + root.string() + " --threads 1");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("DOM:0"), std::string::npos) << e.out;

  r = run(train + " --no-augment --out " + (dir / "plain").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("augmentation none"), std::string::npos) << r.err;
  i = run("info --json " + (dir / "plain").string());
  EXPECT_NE(i.out.find("\"augment\": false"), std::string::npos) << i.out;

  // The run fixes the choice; both flags at once are a syntax error.
  expect_clean_failure(run("train --resume " + (dir / "plain").string() + " --augment --epochs 2"),
                       "--augment cannot be combined with --resume");
  expect_clean_failure(run(train + " --augment --no-augment --out " + (dir / "both").string()), "--no-augment", 2);
  expect_clean_failure(run(synthetic_train("sized", "--image-size 8")), "image size");
  EXPECT_FALSE(fs::exists(dir / "both"));
  EXPECT_FALSE(fs::exists(dir / "sized"));
}

TEST_F(CliTest, ImageFolderBadInput) {
  const auto root = write_image_folder(dir / "folder", 8, 2);
  const std::string train =
      "train --dataset imagefolder --data-dir " + root.string() + " --no-progress --out " + (dir / "out").string();
  fs::create_directories(root / "train" / "c");  // an empty class folder
  expect_clean_failure(run(train), (root / "train" / "c").string() + "' holds no images");
  fs::remove(root / "train" / "c");
  std::ofstream(root / "train" / "b" / "notes.txt") << "not an image";
  expect_clean_failure(run(train), (root / "train" / "b" / "notes.txt").string());
  fs::remove(root / "train" / "b" / "notes.txt");
  std::ofstream(root / "train" / "b" / "9.jpg") << "not a JPEG either";
  expect_clean_failure(run(train), (root / "train" / "b" / "9.jpg").string() + "' is not a JPEG or PNG image");
  fs::remove(root / "train" / "b" / "9.jpg");
  was::data::write_png((root / "test" / "a" / "big.png").string(), torch::zeros({3, 12, 12}, torch::kUInt8));
  expect_clean_failure(run(train), "--image-size");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST_F(CliTest, OutOfRangeWholeNumbersAreRefusedBeforeAnythingRuns) {
  // CLI11 alone clamps an overflow to 2^63 - 1 and wraps a negative unsigned to 2^64 - 1.
  const std::string out = (dir / "out").string();
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--epochs 99999999999999999999", "--epochs: is out of range for a whole number"},
           {"--seed -1", "--seed: must not be negative"},
           {"--val-seed -3", "--val-seed: must not be negative"},
           {"--batch-size -99999999999999999999", "--batch-size: is out of range"}}) {
    expect_clean_failure(run("train --dataset synthetic --model small_cnn --out " + out + " " + args), needle, 2);
    EXPECT_FALSE(fs::exists(out)) << args;
  }
  // Other subcommands too.
  expect_clean_failure(run("eval " + out + " --batch-size 99999999999999999999"), "--batch-size: is out of range", 2);
}

TEST_F(CliTest, ResumeRefusesDataOfAnotherImageSize) {
  const auto d = write_fashion_dir("fm");
  const std::string out = (dir / "out").string();
  const auto first = run("train --dataset fashion-mnist --data-dir " + d.string() +
                         " --epochs 2 --batch-size 10 --max-steps 1 --no-progress --out " + out);
  ASSERT_EQ(first.code, 0) << first.err;
  const auto before = slurp(dir / "out" / "last.pt");
  // The same files again, 20 x 20 instead of 28 x 28.
  auto images = torch::randint(0, 256, {20, 1, 20, 20}).to(torch::kUInt8);
  was::data::write_idx_images((d / "train-images-idx3-ubyte.gz").string(), images, true);
  was::data::write_idx_images((d / "t10k-images-idx3-ubyte.gz").string(), images.slice(0, 0, 10), true);
  expect_clean_failure(run("train --resume " + out + " --data-dir " + d.string() + " --no-progress"),
                       "(1x28x28 images, 10 classes) does not fit dataset 'fashion-mnist' (1x20x20, 10 classes)");
  EXPECT_EQ(slurp(dir / "out" / "last.pt"), before);  // the checkpoint is untouched
}

TEST_F(CliTest, NoCommandReplacesAnotherRunsCheckpoint) {
  ASSERT_EQ(run(synthetic_train("a", "--was C --max-steps 1")).code, 0);
  ASSERT_EQ(run(synthetic_train("b", "--max-steps 1")).code, 0);
  const auto a_before = slurp(dir / "a" / "last.pt"), b_before = slurp(dir / "b" / "last.pt");
  // An export onto a run's own checkpoint, or onto another run's.
  for (const auto& target : {dir / "a" / "last.pt", dir / "b" / "last.pt"})
    for (const char* format : {"was", "pytorch"})
      expect_clean_failure(
          run("export " + (dir / "a").string() + " --format " + std::string(format) + " --out " + target.string()),
          "is a training checkpoint: writing the export over it would lose the run");
  // Resuming one run into another's directory.
  expect_clean_failure(run("train --resume " + (dir / "a").string() + " --out " + (dir / "b").string()),
                       "already holds another run");
  EXPECT_EQ(slurp(dir / "a" / "last.pt"), a_before);
  EXPECT_EQ(slurp(dir / "b" / "last.pt"), b_before);
  // --force says the user means it: the export replaces the checkpoint.
  const auto forced = run("export " + (dir / "a").string() + " --force --out " + (dir / "b" / "last.pt").string());
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_NE(slurp(dir / "b" / "last.pt"), b_before);
  EXPECT_NE(run("info " + (dir / "b" / "last.pt").string()).code, 0);  // no longer a checkpoint
  // Naming the run's own directory is no conflict.
  EXPECT_EQ(run("train --resume " + (dir / "a").string() + " --out " + (dir / "a").string() + " --no-progress").code,
            0);
}

}  // namespace

// A checkpoint or export with one flipped byte in its tensor data is refused
// by every command that reads it, and the original stays untouched.
TEST_F(CliTest, ByteFlippedCheckpointsAndExportsAreRefused) {
  ASSERT_EQ(run(synthetic_train("run", "--was C")).code, 0);
  ASSERT_EQ(run("export " + (dir / "run").string() + " --out " + (dir / "model.was").string()).code, 0);
  const auto flip_middle = [&](const fs::path& from, const fs::path& to) {
    std::string bytes = slurp(from);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x04);
    std::ofstream(to, std::ios::binary) << bytes;
  };
  const auto damaged = dir / "damaged" / "last.pt";
  fs::create_directories(damaged.parent_path());
  flip_middle(dir / "run" / "last.pt", damaged);
  for (const std::string& command :
       {"eval " + damaged.string(), "info " + damaged.string(), "check " + damaged.string(),
        "export " + damaged.string() + " --out " + (dir / "x.was").string(),
        "train --resume " + damaged.string() + " --no-progress"}) {
    SCOPED_TRACE(command);
    expect_clean_failure(run(command), "checkpoint '" + damaged.string() + "' is damaged: entry '");
  }
  EXPECT_FALSE(fs::exists(dir / "x.was"));

  const auto damaged_export = dir / "damaged.was";
  flip_middle(dir / "model.was", damaged_export);
  const auto image = dir / "image.png";
  was::data::write_png(image.string(), torch::zeros({1, 16, 16}, torch::kUInt8));
  expect_clean_failure(run("predict " + damaged_export.string() + " " + image.string()),
                       "inference file '" + damaged_export.string() + "' is damaged: entry '");
  EXPECT_EQ(run("predict " + (dir / "model.was").string() + " " + image.string()).code, 0);
}

// A kill between the end-of-epoch checkpoint and metrics.jsonl (or
// results.json) leaves them short; resuming rewrites them from the checkpoint,
// so no epoch reported as finished is lost.
TEST_F(CliTest, KillBetweenCheckpointAndMetricsLosesNoLine) {
  const auto run_dir = dir / "run";
  // 512 images in batches of 64: 8 steps an epoch, so 12 steps stop inside epoch 2.
  ASSERT_EQ(run(synthetic_train("run", "--epochs 2 --max-steps 12")).code, 0);
  const auto count_lines = [&](const fs::path& p) {
    const std::string text = slurp(p);
    return std::count(text.begin(), text.end(), '\n');
  };
  ASSERT_EQ(count_lines(run_dir / "metrics.jsonl"), 1);
  std::ofstream(run_dir / "metrics.jsonl", std::ios::trunc).close();  // as if killed before the line landed
  ASSERT_EQ(run("train --resume " + run_dir.string() + " --no-progress").code, 0);
  EXPECT_EQ(count_lines(run_dir / "metrics.jsonl"), 2);
  const std::string complete_metrics = slurp(run_dir / "metrics.jsonl");
  const std::string complete_results = slurp(run_dir / "results.json");

  // Killed after the final checkpoint: the finished run's files come back whole.
  fs::remove(run_dir / "results.json");
  std::ofstream(run_dir / "metrics.jsonl", std::ios::trunc)
      << complete_metrics.substr(0, complete_metrics.find('\n') + 1);
  const auto r = run("train --resume " + run_dir.string() + " --no-progress");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("already finished"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(run_dir / "metrics.jsonl"), complete_metrics);
  EXPECT_EQ(slurp(run_dir / "results.json"), complete_results);
}

// A disk that fills during training: one clear line, the previous checkpoint
// intact, no temporary file left, and the run resumes once there is space.
// Needs a small tmpfs (root, as CI is); skipped where it cannot be mounted.
TEST_F(CliTest, FullDiskFailsCleanlyAndResumes) {
  const auto disk = dir / "disk";
  // One small_cnn checkpoint (about 0.8 MB) fits; a second beside it does not.
  const ScopedTmpfs mounted(disk, "size=1100k");
  if (!mounted.ok) GTEST_SKIP() << mounted.why_not;

  const auto run_dir = disk / "run";
  const auto r =
      run("train --dataset synthetic --epochs 2 --batch-size 64 --bn-batches 1 --no-progress "
          "--checkpoint-every 4 --out " +
          run_dir.string());
  // Training had started: the error is the last line, after the "training ..." one.
  EXPECT_EQ(r.code, 1) << r.err;
  const auto error_at = r.err.find("error: ");
  ASSERT_NE(error_at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n', error_at), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("cannot write checkpoint '" + (run_dir / "last.pt").string() + "': No space left on device"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(run_dir / "last.pt.tmp"));
  const auto info = run("info " + (run_dir / "last.pt").string() + " --json");
  ASSERT_EQ(info.code, 0) << info.err;  // the checkpoint before the full disk
  EXPECT_NE(info.out.find("\"step\": 4"), std::string::npos) << info.out;

  // The export of that checkpoint does not fit either: nothing half-written.
  expect_clean_failure(run("export " + run_dir.string() + " --out " + (disk / "model.was").string()),
                       "No space left on device");
  EXPECT_FALSE(fs::exists(disk / "model.was"));
  EXPECT_FALSE(fs::exists(disk / "model.was.tmp"));

  ASSERT_EQ(std::system(("mount -o remount,size=8m " + disk.string()).c_str()), 0);
  const auto resumed = run("train --resume " + run_dir.string() + " --no-progress");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(run_dir / "results.json"));
  const std::string metrics = slurp(run_dir / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 2);
}

// A diverging run stops at the first non-finite loss, exits non-zero, and
// keeps the last checkpoint written before it.
TEST_F(CliTest, NonFiniteLossStopsTrainingAndKeepsTheLastGoodCheckpoint) {
  const auto r = run(synthetic_train("run", "--epochs 3 --lr 1e30 --checkpoint-every 1"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("error: training diverged at epoch 1, step 2: the loss is"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lower --lr (this step's is 1e+30)"), std::string::npos) << r.err;
  const auto info = run("info " + (dir / "run").string() + " --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("\"step\": 1,"), std::string::npos) << info.out;  // the step before the divergence
}

// A read-only output: one line naming the path and the cause, from every
// command that writes (before, a backtrace or the raw filesystem_error).
TEST_F(CliTest, ReadOnlyOutputIsOneClearLine) {
  ASSERT_EQ(run(synthetic_train("run")).code, 0);
  const auto ro = dir / "ro";
  const ScopedTmpfs mounted(ro, "ro,size=64k");
  if (!mounted.ok) GTEST_SKIP() << mounted.why_not;
  expect_clean_failure(run(synthetic_train((ro / "run").string())), "Read-only file system");
  expect_clean_failure(run("export " + (dir / "run").string() + " --out " + (ro / "m.was").string()),
                       "cannot write inference file '" + (ro / "m.was").string() + "': Read-only file system");
  expect_clean_failure(run("report " + (dir / "run").string() + " --out " + (ro / "report").string()),
                       "cannot create directories '" + (ro / "report").string() + "': Read-only file system");
}
