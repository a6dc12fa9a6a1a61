// Images per second of the batch loader alone (gather, augmentation,
// normalisation), with and without augmentation, on CIFAR-sized data; and the
// load time of CIFAR-10 from its binary files or an image folder when given.
//
//   build/bench/was_bench_loader                         # 50,000 synthetic 3x32x32 images
//   build/bench/was_bench_loader --cifar DIR             # CIFAR-10 binary (data_batch_*.bin)
//   build/bench/was_bench_loader --image-folder DIR      # DIR/train/<class>/*.jpg, DIR/test/...
//   build/bench/was_bench_loader --model resnet18        # also: the loader's share of a training step
//
// Both configurations alternate within each round, so they see the same machine load.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "bench_util.h"
#include "was/core/runtime.h"
#include "was/data/cifar.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/network.h"

namespace {

using was::bench::Clock;

struct Args {
  std::string cifar, image_folder, model;
  int64_t batch = 128;
  int64_t images = 50000;  // synthetic set size
  int64_t batches = 0;     // timed batches per round (0: one epoch)
  int rounds = 5;
  int threads = 2;
};

using was::bench::seconds_since;

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

/// Images per second over `count` batches of an epoch, each fully materialised.
double images_per_second(const was::data::BatchLoader& loader, int64_t epoch, int64_t count) {
  const auto start = Clock::now();
  int64_t images = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto b = loader.batch(epoch, i % loader.batches_per_epoch());
    images += b.images.size(0);
  }
  return double(images) / seconds_since(start);
}

/// Seconds per SGD step of `model` on one batch (median of 3 after a warm-up).
double step_seconds(const std::string& model, const was::data::Split& split, int64_t batch) {
  was::Network net({model, split.train.num_classes, split.train.channels(), split.train.height()},
                   was::Policy::parse("none"), 0);
  torch::optim::SGD opt(net.module().parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const was::data::BatchLoader loader(split.train, split.normalization, batch, true, 0);
  std::vector<double> times;
  for (int s = 0; s < 4; ++s) {
    const auto b = loader.batch(0, s);
    const auto start = Clock::now();
    net.begin_training_step(s);
    auto loss = torch::nn::functional::cross_entropy(net.forward(b.images), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (s > 0) times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"batch-loader benchmark: images/s with and without augmentation, and data set load times"};
  app.add_option("--cifar", a.cifar, "CIFAR-10 binary directory to load and serve (default: synthetic data)");
  app.add_option("--image-folder", a.image_folder, "image folder (train/, test/) to time loading (and serve)");
  app.add_option("--model", a.model, "also time one training step of this model, for the loader's share");
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--images", a.images, "synthetic set size")->capture_default_str();
  app.add_option("--batches", a.batches, "timed batches per round (0: one epoch)")->capture_default_str();
  app.add_option("--rounds", a.rounds)->capture_default_str();
  app.add_option("--threads", a.threads, "intra-op threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    was::tune_allocator();
    const int threads = was::set_threads(a.threads);

    was::data::Split split;
    std::string source = "synthetic uint8 3x32x32";
    if (!a.image_folder.empty()) {
      const auto start = Clock::now();
      split = was::data::load_dataset("imagefolder", a.image_folder);
      const double t = seconds_since(start);
      const auto n = split.train.size() + split.test.size();
      std::printf("image folder %s: %lld images decoded in %.2f s (%.0f images/s)\n", a.image_folder.c_str(),
                  (long long)n, t, double(n) / t);
      source = "image folder";
    }
    if (!a.cifar.empty()) {
      const auto start = Clock::now();
      split = was::data::load_dataset("cifar10", a.cifar);
      const double t = seconds_since(start);
      std::printf("CIFAR-10 binary %s: %lld images read in %.2f s\n", a.cifar.c_str(),
                  (long long)(split.train.size() + split.test.size()), t);
      source = "CIFAR-10 binary";
    }
    if (a.cifar.empty() && a.image_folder.empty()) {
      torch::manual_seed(0);
      split.train.images = torch::randint(0, 256, {a.images, 3, 32, 32}).to(torch::kByte);
      split.train.labels = torch::randint(0, 10, {a.images}, torch::kLong);
      split.train.num_classes = 10;
      split.test = split.train.head(1000);
      split.normalization = was::data::compute_normalization(split.train);
    }

    const std::vector<std::pair<std::string, was::data::Augmentation>> configs = {
        {"none", was::data::Augmentation{}}, {"crop(pad=4)+hflip", was::data::Augmentation::standard()}};
    std::vector<was::data::BatchLoader> loaders;
    for (const auto& c : configs)
      loaders.emplace_back(split.train, split.normalization, a.batch, true, 0, false, torch::kCPU, c.second);
    const int64_t count = a.batches > 0 ? a.batches : loaders.front().batches_per_epoch();

    std::map<std::string, std::vector<double>> rate;
    for (size_t c = 0; c < configs.size(); ++c)
      images_per_second(loaders[c], 0, std::min<int64_t>(count, 20));  // warm-up
    for (int r = 0; r < a.rounds; ++r)
      for (size_t c = 0; c < configs.size(); ++c)
        rate[configs[c].first].push_back(images_per_second(loaders[c], r + 1, count));

    std::printf("\n%s, %lld training images, batch %lld, %d threads; %lld batches a round, %d rounds\n\n",
                source.c_str(), (long long)split.train.size(), (long long)a.batch, threads, (long long)count, a.rounds);
    std::printf("| augmentation | images/s (mean ± sd) | ms/batch |\n|---|---:|---:|\n");
    for (const auto& c : configs) {
      const auto s = stats(rate[c.first]);
      std::printf("| %s | %.0f ± %.0f | %.2f |\n", c.first.c_str(), s.mean, s.sd, 1000.0 * double(a.batch) / s.mean);
    }
    if (!a.model.empty()) {
      const double step = step_seconds(a.model, split, a.batch);
      const double batch_s = double(a.batch) / stats(rate[configs.back().first]).mean;
      std::printf("\n%s training step (batch %lld): %.3f s; the augmented loader's share: %.2f%%\n", a.model.c_str(),
                  (long long)a.batch, step, 100.0 * batch_s / (step + batch_s));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
