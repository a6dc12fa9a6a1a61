#include "was/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <limits>

#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/runtime.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/distributed/gradient_reducer.h"
#include "was/distributed/process_group.h"
#include "was/eval/evaluate.h"
#include "was/record/selection.h"

namespace was {
namespace fs = std::filesystem;
namespace {

// BN re-estimation and evaluation batches never need the training batch size.
constexpr int64_t kEvalBatch = 256;
// Keeps the re-estimation order apart from every training epoch's order.
constexpr uint64_t kBatchNormSeedSalt = 0xb0b0b0b0ULL;
// And the paper's shuffled test batches apart from both.
constexpr uint64_t kPaperEvalSeedSalt = 0x7e57b47cULL;

using Clock = std::chrono::steady_clock;

std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Trainer::Trainer(Network& network, const data::Split& split, TrainOptions options, RunRecord state,
                 torch::Device device)
    : network_(network), split_(split), options_(std::move(options)), state_(std::move(state)), device_(device) {
  options_.validate();
  network_.to(device_);
  optimizer_ = std::make_unique<torch::optim::SGD>(
      network_.module().parameters(),
      torch::optim::SGDOptions(options_.lr).momentum(options_.momentum).weight_decay(options_.weight_decay));
  if (!options_.augment) options_.augment = data::augments_by_default(split_.name);
  state_.options = options_;
}

double Trainer::learning_rate_at(int64_t step) const {
  if (!options_.cosine) return options_.lr;
  const int64_t batches = (split_.train.size() + options_.batch_size - 1) / options_.batch_size;
  const int64_t total = options_.epochs * batches;
  return options_.lr * 0.5 * (1.0 + std::cos(M_PI * double(step) / double(std::max<int64_t>(total, 1))));
}

void Trainer::set_speed(bool channels_last, bool bf16) {
  options_.channels_last = state_.options.channels_last = channels_last;
  options_.bf16 = state_.options.bf16 = bf16;
}

void Trainer::set_process_group(distributed::ProcessGroup* group, int64_t bucket_bytes) {
  group_ = group;
  reducer_.reset();
  if (group_ == nullptr || group_->world_size() == 1) return;
  const int64_t w = group_->world_size(), n = split_.train.size(), b = options_.batch_size;
  if (b < w || (n % b != 0 && n % b < w))
    throw Error("a batch of " + std::to_string(b) + " (or the last one, of " + std::to_string(n % b) +
                    ") cannot be shared by " + std::to_string(w) + " ranks",
                "use a --batch-size of at least the world size, and a training set whose last batch is too");
  // Every host must continue the same run: a stale copy of last.pt on one
  // host would train other steps and hang the collectives.
  const std::vector<int64_t> mine = {state_.epoch, state_.step, n, b, options_.epochs, int64_t(state_.seed)};
  auto lead = torch::tensor(mine, torch::kInt64);
  group_->broadcast({lead}, 0);
  const bool differs = !torch::equal(lead, torch::tensor(mine, torch::kInt64));
  auto differing = torch::tensor({int64_t(differs)}, torch::kInt64);
  group_->allreduce_sum({differing});
  if (differing.item<int64_t>() > 0) {
    const auto describe = [](const torch::Tensor& v) {
      return "epoch " + std::to_string(v[0].item<int64_t>()) + ", step " + std::to_string(v[1].item<int64_t>()) + ", " +
             std::to_string(v[2].item<int64_t>()) + " images in batches of " + std::to_string(v[3].item<int64_t>()) +
             ", " + std::to_string(v[4].item<int64_t>()) + " epochs, seed " + std::to_string(v[5].item<int64_t>());
    };
    throw Error("rank " + std::to_string(group_->rank()) + ": the ranks do not hold the same run (" +
                    std::to_string(differing.item<int64_t>()) + " differ from rank 0; rank 0: " + describe(lead) +
                    "; this rank: " + describe(torch::tensor(mine, torch::kInt64)) + ")",
                "give every host the same data and checkpoint (a shared --out, or a copy of rank 0's last.pt) "
                "and the same flags");
  }
  // Identical starting points, whatever each rank initialised or loaded.
  std::vector<torch::Tensor> state;
  for (const auto& p : network_.module().parameters()) state.push_back(p);
  for (const auto& buf : network_.module().buffers()) state.push_back(buf);
  group_->broadcast(state, 0);
  reducer_ = std::make_unique<distributed::GradientReducer>(*group_, network_.module().parameters(), bucket_bytes);
}

data::Augmentation Trainer::batchnorm_augmentation() const {
  return options_.augment.value_or(false) ? data::Augmentation::standard() : data::Augmentation{};
}

bool Trainer::writes() const { return group_ == nullptr || group_->rank() == 0; }

std::pair<data::Batch, double> Trainer::local_share(const data::Batch& global) const {
  if (group_ == nullptr || group_->world_size() == 1) return {global, 1.0};
  const int64_t n = global.labels.size(0), w = group_->world_size(), r = group_->rank();
  const int64_t begin = r * n / w, end = (r + 1) * n / w;
  data::Batch local{global.images.slice(0, begin, end), global.labels.slice(0, begin, end)};
  return {local, double(end - begin) / double(n)};
}

void Trainer::begin_gradient_reduction() {
  if (reducer_) reducer_->prepare();
}

void Trainer::finish_gradient_reduction() {
  // Each rank's loss was scaled by its share: the sum is the global mean.
  if (reducer_) allreduce_seconds_ += reducer_->finish();
}

void Trainer::average_batchnorm_statistics() {
  if (group_ == nullptr || group_->world_size() == 1) return;
  std::vector<torch::Tensor> stats;
  for (const auto& item : network_.module().named_buffers())
    if (item.key().find("running_mean") != std::string::npos || item.key().find("running_var") != std::string::npos)
      stats.push_back(item.value());
  group_->allreduce_sum(stats);
  torch::NoGradGuard no_grad;
  for (auto& s : stats) s.div_(double(group_->world_size()));
}

torch::Tensor Trainer::training_forward(const torch::Tensor& images) {
  const auto x = options_.channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images;
  BFloat16Autocast autocast(device_, options_.bf16);
  return network_.forward(x).to(torch::kFloat);  // the loss in float32, as autocast would compute it
}

std::pair<double, torch::Tensor> Trainer::train_step(const data::Batch& batch, double share) {
  namespace F = torch::nn::functional;
  const auto step = static_cast<uint64_t>(state_.step);
  optimizer_->zero_grad();
  const int64_t draws = network_.shadow().enabled() ? options_.draws : 1;  // a baseline has one weight
  // One draw forward and backward, the gradients combined across ranks, one update.
  const auto train_on_draw = [&](int64_t draw) -> std::pair<double, torch::Tensor> {
    network_.begin_training_step(step, draw);
    const auto logits = training_forward(batch.images);
    const auto loss = F::cross_entropy(logits, batch.labels);
    begin_gradient_reduction();
    (share == 1.0 ? loss : loss * share).backward();
    finish_gradient_reduction();
    optimizer_->step();
    return {loss.item<double>(), logits.detach()};
  };
  if (draws == 1) return train_on_draw(0);
  if (options_.combine == "mean") {
    // Gradients of the K losses accumulate: the mean's gradient, one graph at a time.
    double total = 0.0;
    torch::Tensor first;
    for (int64_t k = 0; k < draws; ++k) {
      network_.begin_training_step(step, k);
      const auto logits = training_forward(batch.images);
      const auto loss = F::cross_entropy(logits, batch.labels);
      if (k == draws - 1) begin_gradient_reduction();
      (loss * (share / double(draws))).backward();
      total += loss.item<double>();
      if (k == 0) first = logits.detach();
    }
    finish_gradient_reduction();
    optimizer_->step();
    return {total / double(draws), first};
  }
  // "min": score every draw without gradients, then train on the best one.
  int64_t best = 0;
  {
    static const std::string kScoring = "train:scoring";
    torch::NoGradGuard no_grad;
    auto& bank = network_.batchnorm();
    bank.store(kScoring);  // scoring forwards must not move the running statistics
    auto losses = torch::zeros({draws}, torch::kDouble);
    for (int64_t k = 0; k < draws; ++k) {
      network_.begin_training_step(step, k);
      losses[k] = F::cross_entropy(training_forward(batch.images), batch.labels).item<double>() * share;
    }
    // Every rank must pick the same draw: the global batch's losses decide.
    if (group_ != nullptr) group_->allreduce_sum({losses});
    best = losses.argmin().item<int64_t>();
    bank.restore(kScoring);
    bank.erase(kScoring);
  }
  return train_on_draw(best);
}

void Trainer::save() {
  if (options_.out_dir.empty() || !writes()) return;
  save_checkpoint((fs::path(options_.out_dir) / "last.pt").string(), network_, state_, optimizer_.get());
  write_run_files(options_.out_dir, state_);
}

void write_run_files(const std::string& dir, const RunRecord& record) {
  std::string lines;
  for (const auto& epoch : record.history) lines += epoch.to_json().dump() + "\n";
  write_file_atomically((fs::path(dir) / "metrics.jsonl").string(), lines, "metrics file");
  if (record.finished)
    write_file_atomically((fs::path(dir) / "results.json").string(), record.results.to_json().dump(2) + "\n",
                          "results file");
}

RunRecord Trainer::run(const EpochCallback& on_epoch) {
  // Augmentation draws per (seed, epoch, sample), so a resumed run sees the same batches.
  data::BatchLoader train(split_.train, split_.normalization, options_.batch_size, /*shuffle=*/true, state_.seed,
                          /*drop_last=*/false, device_,
                          *options_.augment ? data::Augmentation::standard() : data::Augmentation{});
  if (!options_.out_dir.empty() && writes()) {
    fs::create_directories(options_.out_dir);
    write_run_files(options_.out_dir, state_);  // a resumed run's lines, as its checkpoint holds them
  }
  const int64_t batches = train.batches_per_epoch();

  for (int64_t epoch = state_.epoch; epoch < options_.epochs; ++epoch) {
    const auto start = Clock::now();
    allreduce_seconds_ = 0.0;
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0;
    bool stopped = false;
    // The next batch is gathered, augmented and normalised on another thread
    // while this step computes (batches depend on (epoch, index) only).
    std::future<data::Batch> next;
    const auto prefetch = [&train, epoch](int64_t b) {
      return std::async(std::launch::async, [&train, epoch, b] { return train.batch(epoch, b); });
    };
    for (int64_t b = state_.batch; b < batches; ++b) {
      if (options_.max_steps > 0 && state_.step >= options_.max_steps) {
        stopped = true;
        break;
      }
      const data::Batch global = next.valid() ? next.get() : train.batch(epoch, b);
      if (b + 1 < batches) next = prefetch(b + 1);
      const auto [batch, share] = local_share(global);
      for (auto& group : optimizer_->param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(learning_rate_at(state_.step));
      const auto [loss, logits] = train_step(batch, share);
      if (!std::isfinite(loss))  // nothing after this step is saved: the last checkpoint stays the good one
        throw Error("training diverged at epoch " + std::to_string(epoch + 1) + ", step " +
                        std::to_string(state_.step + 1) + ": the loss is " + (std::isnan(loss) ? "NaN" : "infinite"),
                    "lower --lr (this step's is " + format_number(learning_rate_at(state_.step)) +
                        "); the last checkpoint, if any, is intact and predates the divergence");
      ++state_.step;
      state_.batch = b + 1;

      const int64_t n = batch.labels.size(0);
      loss_sum += loss * double(n);
      correct += logits.argmax(1).eq(batch.labels).sum().item<int64_t>();
      seen += n;
      if (on_batch_ && options_.progress && writes())
        on_batch_(BatchProgress{epoch + 1, options_.epochs, b + 1, batches, loss_sum / double(seen),
                                100.0 * double(correct) / double(seen), double(seen) / seconds_since(start)});
      if (options_.checkpoint_every > 0 && state_.step % options_.checkpoint_every == 0) save();
    }
    if (stopped) {
      save();
      return state_;
    }
    if (group_ != nullptr && group_->world_size() > 1) {
      // Every rank reports the global batch, and evaluates with the same statistics.
      auto totals = torch::tensor({loss_sum, double(correct), double(seen)}, torch::kDouble);
      group_->allreduce_sum({totals});
      loss_sum = totals[0].item<double>();
      correct = static_cast<int64_t>(totals[1].item<double>());
      seen = static_cast<int64_t>(totals[2].item<double>());
      average_batchnorm_statistics();
    }
    const double train_seconds = seconds_since(start);
    state_.epoch = epoch + 1;
    state_.batch = 0;

    EpochRecord metrics;
    metrics.epoch = epoch + 1;
    metrics.step = state_.step;
    metrics.lr = learning_rate_at(state_.step - 1);
    metrics.train_loss = seen ? loss_sum / double(seen) : 0.0;
    metrics.train_top1 = seen ? 100.0 * double(correct) / double(seen) : 0.0;
    metrics.images_per_s = train_seconds > 0 ? double(seen) / train_seconds : 0.0;
    metrics.seconds = train_seconds;
    if (group_ != nullptr && group_->world_size() > 1) {
      metrics.world_size = group_->world_size();
      metrics.allreduce_seconds = allreduce_seconds_;
    }
    const bool last = state_.epoch == options_.epochs;
    const bool curve_epoch = options_.eval_every > 0 && state_.epoch % options_.eval_every == 0;
    if (paper_protocol()) {
      if (curve_epoch || last) evaluate_as_paper(metrics, epoch);
    } else if (split_.validation.size() > 0) {
      // The held-out images: the curves a choice may be made on (training BN, as below).
      data::BatchLoader val(split_.validation, split_.normalization, kEvalBatch, false, 0, false, device_);
      metrics.evaluations["val_top1_aom"] = evaluate(network_, val, Mode::aom(), false).top1();
      if (network_.shadow().enabled())
        metrics.evaluations["val_top1_dom"] = evaluate(network_, val, Mode::dom(state_.dom_seed), false).top1();
    }
    if (!paper_protocol() && curve_epoch && !last) {
      // Mid-training curves use the training-time BN statistics of both modes.
      const int64_t n = options_.curve_test_images;
      const data::Dataset curve_images = n > 0 && n < split_.test.size() ? split_.test.head(n) : split_.test;
      data::BatchLoader test(curve_images, split_.normalization, kEvalBatch, false, 0, false, device_);
      const auto aom = evaluate(network_, test, Mode::aom(), false);
      metrics.evaluations["test_top1_aom"] = aom.top1();
      metrics.evaluations["test_loss_aom"] = aom.loss;
      if (network_.shadow().enabled())
        metrics.evaluations["test_top1_dom"] = evaluate(network_, test, Mode::dom(state_.dom_seed), false).top1();
      if (options_.mode_bn_curves) evaluate_with_mode_batchnorm(metrics, curve_images);
    }
    if (last && !paper_protocol()) {  // the project's last epoch reports the final evaluation
      state_.history.push_back(metrics);
      finish();  // writes the final figures into this epoch's curves
      metrics = state_.history.back();
    } else {
      state_.history.push_back(metrics);
      if (last) finish();
    }
    save();
    if (on_epoch && writes()) on_epoch(metrics);
  }
  if (!state_.finished) {  // resumed after the last epoch, before finishing
    finish();
    save();
  }
  return state_;
}

void Trainer::evaluate_with_mode_batchnorm(EpochRecord& metrics, const data::Dataset& test_images) {
  torch::NoGradGuard no_grad;
  auto& bank = network_.batchnorm();
  if (bank.num_layers() == 0) return;
  // The training statistics (BatchNorm's momentum state) go back in
  // afterwards; no mode's statistics stay behind in the checkpoint.
  const std::vector<std::string> before = bank.keys();
  const auto existed = [&](const std::string& key) {
    return std::find(before.begin(), before.end(), key) != before.end();
  };
  const std::string kSaved = "curve:saved-training";
  bank.store(kSaved);
  std::vector<Mode> modes = {Mode::aom()};
  if (network_.shadow().enabled()) modes.push_back(Mode::dom(state_.dom_seed));
  data::BatchLoader test(test_images, split_.normalization, kEvalBatch, false, 0, false, device_);
  for (const auto& mode : modes) {
    bank.restore(kSaved);
    reestimate_batchnorm_after_training(network_, mode, split_.train, split_.normalization, state_.seed,
                                        options_.bn_batches, device_, batchnorm_augmentation());
    const std::string name = mode.is_dom() ? "dom" : "aom";
    metrics.evaluations["test_top1_" + name + "_bn"] = evaluate(network_, test, mode, true).top1();
    if (split_.validation.size() > 0) {
      data::BatchLoader val(split_.validation, split_.normalization, kEvalBatch, false, 0, false, device_);
      metrics.evaluations["val_top1_" + name + "_bn"] = evaluate(network_, val, mode, true).top1();
    }
    if (!existed(mode.key())) bank.erase(mode.key());
  }
  bank.restore(kSaved);
  bank.erase(kSaved);
  network_.set_mode(Mode::aom(), /*use_mode_batchnorm=*/false);
}

void Trainer::evaluate_as_paper(EpochRecord& metrics, int64_t epoch) {
  // Test (and validation) images each epoch, as the released main.py does;
  // its shuffled batches of 128 with their own BatchNorm statistics, and the
  // project's running statistics beside them.
  const bool was = network_.shadow().enabled();
  const auto add = [&](const std::string& prefix, const data::Dataset& images) {
    data::BatchLoader in_order(images, split_.normalization, kEvalBatch, false, 0, false, device_);
    data::BatchLoader shuffled(images, split_.normalization, 128, true, state_.seed ^ kPaperEvalSeedSalt, false,
                               device_);
    const auto running = [&](const EvalWeights& w) {
      return evaluate(network_, in_order, w, Normalisation::kRunning, /*use_mode_batchnorm=*/false).top1();
    };
    const auto batch = [&](const EvalWeights& w) {
      return evaluate(network_, shuffled, w, Normalisation::kBatch, false, epoch, state_.seed).top1();
    };
    const auto draws = EvalWeights::stochastic(static_cast<uint64_t>(epoch));
    metrics.evaluations[prefix + "aom"] = running(EvalWeights::of(Mode::aom()));
    metrics.evaluations[prefix + "aom_paper"] = batch(EvalWeights::of(Mode::aom()));
    if (!was) return;
    metrics.evaluations[prefix + "dom"] = running(EvalWeights::of(Mode::dom(state_.dom_seed)));
    metrics.evaluations[prefix + "dom_paper"] = batch(EvalWeights::of(Mode::dom(state_.dom_seed)));
    metrics.evaluations[prefix + "sdom"] = running(draws);
    metrics.evaluations[prefix + "sdom_paper"] = batch(draws);
  };
  const int64_t n = options_.curve_test_images;
  add("test_top1_", n > 0 && n < split_.test.size() ? split_.test.head(n) : split_.test);
  if (split_.validation.size() > 0) add("val_top1_", split_.validation);
  network_.set_mode(Mode::aom());
}

int64_t reestimate_batchnorm_after_training(Network& network, const Mode& mode, const data::Dataset& train,
                                            const data::Normalization& normalization, uint64_t run_seed,
                                            int64_t bn_batches, torch::Device device,
                                            const data::Augmentation& augmentation) {
  if (bn_batches <= 0 || network.batchnorm().num_layers() == 0) return 0;
  data::BatchLoader source(train, normalization, kEvalBatch, true, run_seed ^ kBatchNormSeedSalt, false, device,
                           augmentation);
  const int64_t n = std::min(bn_batches, source.batches_per_epoch());
  network.reestimate_batchnorm(mode, n, [&](int64_t i) { return source.batch(0, i).images; });
  return n;
}

data::Augmentation batchnorm_augmentation_of(const RunRecord& state) {
  const bool finished_before_the_record = !state.results.empty() && !state.results.bn_augmented;
  if (finished_before_the_record || !state.results.bn_augmented.value_or(true)) return {};
  return state.options.augment.value_or(false) ? data::Augmentation::standard() : data::Augmentation{};
}

void Trainer::finish() {
  torch::NoGradGuard no_grad;
  data::BatchLoader test(split_.test, split_.normalization, kEvalBatch, false, 0, false, device_);
  const int64_t bn_batches = std::min(options_.bn_batches, (split_.train.size() + kEvalBatch - 1) / kEvalBatch);
  auto& bank = network_.batchnorm();
  bank.store(kTrainingBatchNorm);

  RunResults results;
  std::vector<Mode> modes = {Mode::aom()};
  if (network_.shadow().enabled()) modes.push_back(Mode::dom(state_.dom_seed));
  for (const auto& mode : modes) {
    const auto with_training_bn = evaluate(network_, test, mode, /*use_mode_batchnorm=*/false);
    ModeResult r;
    r.top1_training_bn = with_training_bn.top1();
    if (bn_batches > 0 && bank.num_layers() > 0) {
      reestimate_batchnorm_after_training(network_, mode, split_.train, split_.normalization, state_.seed, bn_batches,
                                          device_, batchnorm_augmentation());
      const auto with_mode_bn = evaluate(network_, test, mode, true);
      r.top1 = with_mode_bn.top1();
      r.loss = with_mode_bn.loss;
      r.batchnorm = "re-estimated";
    } else {
      r.top1 = with_training_bn.top1();
      r.loss = with_training_bn.loss;
      r.batchnorm = "training";
    }
    if (split_.validation.size() > 0) {
      data::BatchLoader val(split_.validation, split_.normalization, kEvalBatch, false, 0, false, device_);
      r.val_top1 = evaluate(network_, val, mode, true).top1();
    }
    r.macs = network_.macs(mode).total();
    const auto sparsity = network_.sparsity(mode);
    r.sparsity_transformed = sparsity.transformed_rate();
    r.sparsity_conv = sparsity.conv_rate();
    (mode.is_dom() ? results.dom : results.aom) = r;
  }
  if (network_.shadow().enabled() && options_.stochastic_dom > 0) {
    // A fresh draw per test batch, several passes: the paper's DOM figure.
    bank.restore(kTrainingBatchNorm);
    data::BatchLoader shuffled(split_.test, split_.normalization, 128, true, state_.seed ^ kPaperEvalSeedSalt, false,
                               device_);
    results.stochastic_dom = StochasticDomResult{
        evaluate_stochastic_dom(network_, test, options_.stochastic_dom, Normalisation::kRunning),
        evaluate_stochastic_dom(network_, shuffled, options_.stochastic_dom, Normalisation::kBatch, state_.seed)};
  }
  if (!paper_protocol() && !state_.history.empty() && state_.history.back().epoch == state_.epoch) {
    // The last point of the project's curves is the final evaluation.
    auto& last = state_.history.back().evaluations;
    for (const char* name : {"aom", "dom"}) {
      const ModeResult* r = results.mode(name);
      if (r == nullptr) continue;
      last[std::string("test_top1_") + name] = r->top1;
      if (options_.mode_bn_curves && r->batchnorm == "re-estimated") {
        last[std::string("test_top1_") + name + "_bn"] = r->top1;
        if (r->val_top1) last[std::string("val_top1_") + name + "_bn"] = *r->val_top1;
      }
    }
  }
  results.selection = select_all_epochs(state_.history);
  results.protocol = options_.protocol;
  results.dom_seed = state_.dom_seed;
  results.bn_batches = bn_batches;
  results.bn_augmented = batchnorm_augmentation().enabled();
  results.val_images = split_.validation.size();
  state_.results = results;
  state_.finished = true;
  network_.set_mode(Mode::aom());
}

}  // namespace was
