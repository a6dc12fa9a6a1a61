#include "was/run/training.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "was/core/directory_lock.h"
#include "was/core/error.h"
#include "was/core/runtime.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/models/classifier.h"
#include "was/network.h"
#include "was/run/run_data.h"

namespace was {
namespace fs = std::filesystem;

namespace {

std::string default_run_directory(const TrainRequest& a) {
  std::string tag = a.policy;
  for (char& c : tag)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  return "runs/" + a.model + "-" + tag + "-s" + std::to_string(a.seed);
}

}  // namespace

SpeedChoice choose_training_speed(const models::ModelConfig& model, const Policy& policy, uint64_t seed, int64_t batch,
                                  torch::Device device, const std::vector<SpeedSettings>& candidates,
                                  const SpeedCache* cache, const std::function<void(const std::string&)>& warn) {
  const SpeedKey key{"train", model.name + " " + policy.to_string(), batch, torch::get_num_threads(), device.str(), ""};
  // A copy of the network: the run's own weights and BatchNorm statistics
  // are never touched, and torch's generator is left as it was.
  std::optional<Network> probe;
  torch::Tensor x, y;
  const auto prepare = [&] {
    auto generator = at::detail::getDefaultCPUGenerator();
    const auto saved = generator.get_state();
    probe.emplace(model, policy, seed);
    probe->to(device);
    x = torch::randn({batch, model.in_channels, model.image_size, model.image_size},
                     torch::TensorOptions().device(device));
    y = torch::randint(0, model.num_classes, {batch}, torch::TensorOptions().dtype(torch::kLong).device(device));
    generator.set_state(saved);
  };
  uint64_t step = 0;
  const auto train_step = [&](const SpeedSettings& c) {
    probe->begin_training_step(step++);
    torch::Tensor logits;
    {
      BFloat16Autocast autocast(device, c.bf16);
      logits = probe->forward(c.channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x).to(torch::kFloat);
    }
    torch::nn::functional::cross_entropy(logits, y).backward();
    for (auto& p : probe->module().parameters()) p.mutable_grad() = torch::Tensor();
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  return choose_speed_settings_by_running(key, candidates, prepare, train_step, 3, cache, warn);
}

RunRecord train_run(TrainRequest& a) {
  const auto& explicit_flags = a.given;
  a.rendezvous.validate();
  const bool lead = a.lead();  // rank 0 (or a single process) talks and writes
  const torch::Device device = a.device;
  const bool progress = a.options.progress;  // the caller's, also for a resumed run
  const auto say = [&](const std::string& line) {
    if (lead && a.on_message) a.on_message(line);
  };

  std::unique_ptr<Network> network;
  std::optional<Checkpoint> checkpoint;
  RunRecord state;

  if (!a.resume.empty()) {
    // Everything that defines the run comes from the checkpoint.
    for (const auto& flag : {"--model",
                             "--was",
                             "--granularity",
                             "--seed",
                             "--dataset",
                             "--dom-seed",
                             "--image-size",
                             "--coarse-labels",
                             "--augment",
                             "--no-augment",
                             "--train-subset",
                             "--test-subset",
                             "--val-fraction",
                             "--val-seed",
                             "--draws",
                             "--combine",
                             "--channels-last",
                             "--nchw",
                             "--bf16",
                             "--protocol",
                             "--stochastic-dom",
                             "--curve-test-images",
                             "--mode-bn-curves",
                             "--batch-size",  // would reinterpret the stored position within the epoch
                             "--lr",
                             "--momentum",
                             "--weight-decay",
                             "--cosine",
                             "--bn-batches",
                             "--checkpoint-every",
                             "--eval-every"})
      if (std::find(explicit_flags.begin(), explicit_flags.end(), flag) != explicit_flags.end())
        throw Error(std::string(flag) + " cannot be combined with --resume: the checkpoint fixes it",
                    "drop " + std::string(flag) + ", or start a new run with another --out");
    const std::string path = resolve_checkpoint(a.resume);
    checkpoint = load_checkpoint(path, device);
    state = checkpoint->state;
    if (a.out.empty()) a.out = fs::path(path).parent_path().string();
    const fs::path out_checkpoint = fs::path(a.out) / "last.pt";
    if (fs::exists(out_checkpoint) && !fs::equivalent(out_checkpoint, path) && !a.force)
      throw Error("--out '" + a.out + "' already holds another run (last.pt)",
                  "drop --out to continue the run in its own directory, choose an empty --out, or pass --force "
                  "to replace that run");
    const int64_t epochs = a.options.epochs;
    const bool epochs_given =
        std::find(explicit_flags.begin(), explicit_flags.end(), "--epochs") != explicit_flags.end();
    a.options = state.options;
    if (epochs_given) {
      if (epochs < state.epoch)
        throw Error("--epochs " + std::to_string(epochs) + " is below the " + std::to_string(state.epoch) +
                    " epochs the checkpoint has done");
      if (epochs > state.epoch) state.finished = false;
      a.options.epochs = epochs;
    }
    a.options.progress = progress;
    a.options.out_dir = a.out;
    a.dataset = state.dataset;
    if (state.finished) {
      a.was_finished = true;
      if (lead && fs::exists(out_checkpoint)) {
        // A kill after the last checkpoint may have cut its views short.
        std::optional<DirectoryLock> lock;
        if (!a.directory_locked) lock = DirectoryLock::acquire(a.out);
        write_run_files(a.out, state);
      }
      say("run in " + a.out + " is already finished (" + std::to_string(state.epoch) +
          " epochs); pass a larger --epochs to continue it");
      return state;
    }
  } else {
    // Validate everything before anything is written.
    const bool val_given =
        std::find(explicit_flags.begin(), explicit_flags.end(), "--val-fraction") != explicit_flags.end();
    if (val_given && !(a.options.val_fraction > 0.0 && a.options.val_fraction < 1.0))
      throw Error("--val-fraction must lie in (0, 1), got " + std::to_string(a.options.val_fraction),
                  "e.g. --val-fraction 0.1 holds out a tenth of the training images");
    Policy policy = Policy::parse(a.policy);
    if (!a.granularity.empty()) policy = Policy::parse(a.policy + ",granularity=" + a.granularity);
    if (a.dom_seed < 0) throw Error("--dom-seed must be a non-negative integer");
    if (a.out.empty()) a.out = default_run_directory(a);
    if (fs::exists(fs::path(a.out) / "last.pt"))
      throw Error("'" + a.out + "' already holds a run (last.pt)",
                  "continue it with --resume " + a.out + ", or choose another --out");
    if (fs::exists(a.out) && !fs::is_directory(a.out))
      throw Error("--out '" + a.out + "' exists and is not a directory");
    state.policy = policy.to_string();
    state.seed = a.seed;
    state.dom_seed = a.dom_seed;
    state.dataset = a.dataset;
    a.options.out_dir = a.out;
    // What a protocol fixes, against what the user set (flags as option keys).
    std::vector<std::string> given_keys;
    for (const auto& flag : explicit_flags) {
      std::string key = flag.rfind("--", 0) == 0 ? flag.substr(2) : flag;
      std::replace(key.begin(), key.end(), '-', '_');
      given_keys.push_back(key == "no_augment" ? "augment" : key);
    }
    apply_protocol(a.options, given_keys);
    a.options.validate();
  }

  data::DatasetOptions data_options;
  if (checkpoint) {
    data_options = dataset_options_of(state);
  } else {
    data_options.image_size = a.image_size;
    if (a.coarse_labels) data_options.cifar100_labels = data::CifarLabels::kCoarse;
  }
  auto split = data::load_dataset(a.dataset, a.data_dir, data_options);
  select_training_data(split, a.options);  // the subset, then the validation hold-out
  if (a.options.test_subset > 0) split.test = split.test.head(a.options.test_subset);
  if (checkpoint) {
    network = std::move(checkpoint->network);
    const auto& m = state.model;
    if (split.train.channels() != m.in_channels || split.train.num_classes != m.num_classes ||
        split.train.height() != m.image_size || split.train.width() != m.image_size)
      throw Error("the checkpoint's model (" + std::to_string(m.in_channels) + "x" + std::to_string(m.image_size) +
                      "x" + std::to_string(m.image_size) + " images, " + std::to_string(m.num_classes) +
                      " classes) does not fit dataset '" + a.dataset + "' (" + std::to_string(split.train.channels()) +
                      "x" + std::to_string(split.train.height()) + "x" + std::to_string(split.train.width()) + ", " +
                      std::to_string(split.train.num_classes) + " classes)",
                  "resume with the data the run was trained on");
  } else {
    state.model = models::ModelConfig{a.model, split.train.num_classes, split.train.channels(), split.train.height()};
    // Held-out images stay out of everything the run learns from, statistics included.
    state.normalization = split.validation.size() > 0 ? data::compute_normalization(split.train) : split.normalization;
    if (auto fixed = protocol_normalization(a.options.protocol, split.train.channels())) state.normalization = *fixed;
    state.class_names = split.train.class_names;
    torch::manual_seed(a.seed);  // weight initialisation
    network = std::make_unique<Network>(state.model, Policy::parse(state.policy), state.seed);
  }
  if (split.train.height() != split.train.width())
    throw Error("dataset '" + a.dataset + "' has non-square images; the models expect square inputs");

  // Normalisation is fixed by the run, so a resumed run sees the same inputs.
  data::Split normalised = split;
  normalised.normalization = state.normalization;

  Trainer trainer(*network, normalised, a.options, state, device);  // validates the options: nothing written yet
  if (checkpoint) trainer.restore_optimizer(*checkpoint);
  // One writer per run: a second `was train` on the same directory is refused.
  std::optional<DirectoryLock> lock;
  if (lead && !a.directory_locked) lock = DirectoryLock::acquire(a.out);
  // Measured once the run can start: a refused run costs no measurement.
  if (!checkpoint && a.choose_memory_format && a.rendezvous.world_size <= 1) {
    std::vector<SpeedSettings> candidates{{false, a.options.bf16}, {true, a.options.bf16}};
    if (a.bf16_auto) candidates = {{false, false}, {true, false}, {false, true}, {true, true}};
    const auto choice =
        choose_training_speed(state.model, Policy::parse(state.policy), state.seed,
                              std::min<int64_t>(a.options.batch_size, split.train.size()), device, candidates,
                              a.speed_cache, [&](const std::string& w) { say("warning: " + w); });
    trainer.set_speed(choice.settings.channels_last, choice.settings.bf16);
    say("speed settings: " + choice.describe() + "; --channels-last or --nchw fixes them");
  }
  std::unique_ptr<distributed::ProcessGroup> group;
  if (a.rendezvous.distributed()) {
    group = std::make_unique<distributed::ProcessGroup>(a.rendezvous);
    trainer.set_process_group(group.get(), a.bucket_bytes);
    if (a.on_message)  // every rank's: where the others reach it
      a.on_message("rank " + std::to_string(group->rank()) + "/" + std::to_string(group->world_size()) +
                   ": connected at " + group->address() + " (" + group->address_source() + ")");
  }
  const bool augment = a.options.augment.value_or(data::augments_by_default(a.dataset));
  say("training " + state.model.name + " on " + a.dataset + " (" + std::to_string(split.train.size()) +
      " images, augmentation " + (augment ? data::Augmentation::standard().to_string() : "none") + "), policy " +
      state.policy + ", " + std::to_string(torch::get_num_threads()) + " threads, out " + a.out +
      (group ? ", rank 0 of " + std::to_string(a.rendezvous.world_size) + " (data-parallel)" : ""));
  trainer.set_batch_callback(a.on_batch);
  const auto final_state = trainer.run(a.on_epoch);
  if (group && a.on_message) {
    // Every rank must hold the same weights; the digests let anyone check.
    char line[96];
    std::snprintf(line, sizeof line, "rank %lld/%lld: weights digest %016llx", (long long)a.rendezvous.rank,
                  (long long)a.rendezvous.world_size,
                  (unsigned long long)distributed::weights_digest(network->module()));
    a.on_message(line);  // every rank's, not only the lead's
  }
  return final_state;
}

}  // namespace was
