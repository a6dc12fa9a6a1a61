// `was train`: train a network, with or without WAS, and evaluate both modes;
// on several processes with --nproc, or --rank/--world-size across hosts.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "progress.h"
#include "train.h"
#include "was/core/error.h"
#include "was/core/speed_cache.h"
#include "was/distributed/local_launch.h"
#include "was/distributed/network_address.h"
#include "was/models/classifier.h"
#include "was/run/training.h"

namespace was::cli {
namespace fs = std::filesystem;

void print_results(const RunRecord& state, const std::string& out_dir) {
  const auto& r = state.results;
  std::cerr << "\nfinished: " << state.epoch << " epochs, " << state.step << " steps";
  if (!out_dir.empty()) std::cerr << ", checkpoint " << (fs::path(out_dir) / "last.pt").string();
  std::cerr << "\n";
  for (const char* mode : {"aom", "dom"}) {
    const ModeResult* m = r.mode(mode);
    if (m == nullptr) continue;
    std::fprintf(stderr, "  %s top-1 %.2f%% (training BN %.2f%%)  MACs %.2f M  sparsity %.1f%%\n",
                 mode[0] == 'a' ? "AOM" : "DOM", m->top1, m->top1_training_bn, double(m->macs) / 1e6,
                 100.0 * m->sparsity_transformed);
  }
  if (r.stochastic_dom)
    for (const auto* s : {&r.stochastic_dom->running, &r.stochastic_dom->paper})
      std::fprintf(stderr, "  stochastic DOM (%s) top-1 %.2f%% +- %.2f over %d passes\n",
                   s == &r.stochastic_dom->running ? "running statistics" : "BatchNorm in training mode, as the paper",
                   s->mean, s->sd, int(s->top1.size()));
  if (!r.selection.empty()) {
    std::fprintf(stderr, "  selection       final     best test (epoch)   validation-selected (epoch)\n");
    for (const auto& [curve, sel] : r.selection) {
      std::fprintf(stderr, "  %-12s %8.2f%%  %8.2f%% (%3lld)", curve.c_str(), sel.final_top1, sel.best_test_top1,
                   (long long)sel.best_test_epoch);
      if (sel.val_selected_top1)
        std::fprintf(stderr, "   %8.2f%% (%3lld)", *sel.val_selected_top1, (long long)*sel.val_selected_epoch);
      std::fprintf(stderr, "\n");
    }
  }
}

RunRecord run_train(TrainArgs& a, const std::vector<std::string>& explicit_flags) {
  const auto given = [&](const char* flag) {
    return std::find(explicit_flags.begin(), explicit_flags.end(), flag) != explicit_flags.end();
  };
  TrainRequest r;
  r.rendezvous = a.rendezvous;
  r.rendezvous.read_environment(given("--rank"), given("--world-size"), given("--master-addr"), given("--master-port"),
                                given("--dist-iface"));
  r.device = a.runtime.apply();
  r.model = a.model;
  r.dataset = a.dataset;
  r.data_dir = a.data_dir;
  r.policy = a.policy;
  r.granularity = a.granularity;
  r.seed = a.seed;
  r.dom_seed = a.dom_seed;
  r.image_size = a.image_size;
  r.coarse_labels = a.coarse_labels;
  r.options = a.options;
  if (given("--bf16")) {
    if (a.bf16 != "" && a.bf16 != "on" && a.bf16 != "off" && a.bf16 != "auto")
      throw Error("--bf16 takes on, off or auto, not '" + a.bf16 + "'",
                  "--bf16 (or --bf16 on) trains in bfloat16; --bf16 auto lets the measurement choose");
    r.options.bf16 = a.bf16 == "" || a.bf16 == "on";
    r.bf16_auto = a.bf16 == "auto";
  }
  // Neither --channels-last nor --nchw: measured (a fresh, single-process run).
  static const SpeedCache speed_cache;
  r.choose_memory_format = !given("--channels-last") && !given("--nchw");
  r.speed_cache = &speed_cache;
  r.options.progress = !a.no_progress;
  if (a.augment || a.no_augment) r.options.augment = a.augment;
  r.out = a.out;
  r.resume = a.resume;
  r.force = a.force;
  r.given = explicit_flags;
  r.directory_locked = a.directory_locked;
  r.bucket_bytes = static_cast<int64_t>(a.bucket_mb * double(1 << 20));
  const bool print_epochs = a.print_epochs;
  r.on_epoch = [print_epochs](const EpochRecord& metrics) {
    if (print_epochs) std::cout << metrics.to_json().dump() << std::endl;
  };
  r.on_message = [](const std::string& line) { std::cerr << line << "\n"; };
  r.on_batch = progress_on_stderr();
  const RunRecord state = train_run(r);
  a.out = r.out;
  if (state.finished && r.lead() && !r.was_finished) print_results(state, r.out);
  return state;
}

namespace {

/// `--nproc N`: this command line again, N times, as ranks 0..N-1 on this
/// machine, the cores shared among them unless --threads says otherwise.
void launch_local_ranks(const TrainArgs& a, const std::vector<std::string>& explicit_flags) {
  const auto given = [&](const char* flag) {
    return std::find(explicit_flags.begin(), explicit_flags.end(), flag) != explicit_flags.end();
  };
  if (given("--rank") || given("--world-size"))
    throw Error("--nproc starts its own ranks: drop --rank and --world-size");
  std::vector<std::string> args;
  const auto& original = command_line();
  for (size_t i = 0; i < original.size(); ++i) {
    if (original[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (original[i].rfind("--nproc=", 0) == 0) continue;
    args.push_back(original[i]);
  }
  if (!given("--threads")) {
    const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
    args.push_back("--threads");
    args.push_back(std::to_string(std::max<int64_t>(1, cores / a.nproc)));
  }
  const int64_t port = given("--master-port") ? a.rendezvous.master_port : distributed::free_local_port();
  distributed::launch_local_ranks("/proc/self/exe", args, a.nproc, port);
}

/// What the run trains and evaluates on.
void add_data_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  std::string models;
  for (const auto& name : models::model_names()) models += (models.empty() ? "" : ", ") + name;
  cmd->add_option("--model", args->model, "network: " + models)->capture_default_str();
  cmd->add_option("--dataset", args->dataset, "cifar10, cifar100, fashion-mnist, imagefolder or synthetic")
      ->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir,
                  "dataset directory (default: the dataset's standard place; cifar10, cifar100 and imagefolder "
                  "need it)");
  cmd->add_option("--image-size", args->image_size,
                  "imagefolder: resize every image to N x N, bilinear (default: keep, all images the same size)");
  cmd->add_flag("--coarse-labels", args->coarse_labels, "cifar100: the 20 coarse classes instead of the 100 fine ones");
  auto* augment = cmd->add_flag("--augment", args->augment,
                                "random crop (4-pixel padding) + horizontal flip of training images (default for "
                                "cifar10, cifar100, imagefolder)");
  cmd->add_flag("--no-augment", args->no_augment,
                "no training augmentation (default for fashion-mnist, synthetic; the paper's protocol)")
      ->excludes(augment);
  cmd->add_option("--test-subset", args->options.test_subset, "evaluate on the first N test images only (0: all)")
      ->capture_default_str();
  cmd->add_option("--train-subset", args->options.train_subset, "train on the first N images only (0: all)")
      ->capture_default_str();
  cmd->add_option("--val-fraction", args->options.val_fraction,
                  "hold out this fraction of the training images as a validation split, in (0, 1); stored with "
                  "the run and never trained on");
  cmd->add_option("--val-seed", args->options.val_seed, "which training images are held out")->capture_default_str();
}

/// The WAS policy, its DOM and the draws per step.
void add_was_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  cmd->add_option("--was", args->policy,
                  "WAS policy: none, a preset C, T, R, CT, CTR (e.g. CT@p=0.5), or transforms such as "
                  "crop=0.4:0.6,translate=0.3:0.3,rotate=0:90 with @p=P per transform")
      ->capture_default_str();
  cmd->add_option("--granularity", args->granularity, "one draw per layer (default) or per filter")
      ->check(CLI::IsMember({"layer", "filter"}));
  cmd->add_option("--dom-seed", args->dom_seed, "the DOM draw stored with the model")->capture_default_str();
  cmd->add_option("--draws", args->options.draws,
                  "shadow-weight draws per step (1: the ordinary WAS step; cost grows about K times)")
      ->capture_default_str();
  cmd->add_option("--combine", args->options.combine,
                  "how K draws make one update: mean (mean of the K losses) or min (only the draw with the lowest "
                  "loss, the paper's competition)")
      ->check(CLI::IsMember({"mean", "min"}))
      ->capture_default_str();
}

/// SGD, its schedule, and the speed options.
void add_optimiser_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  cmd->add_option("--epochs", args->options.epochs, "epochs")->capture_default_str();
  cmd->add_option("--batch-size", args->options.batch_size, "batch size")->capture_default_str();
  cmd->add_option("--lr", args->options.lr, "SGD learning rate")->capture_default_str();
  cmd->add_option("--momentum", args->options.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", args->options.weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_flag("--cosine", args->options.cosine, "cosine learning-rate decay to 0");
  auto* cl = cmd->add_flag(
      "--channels-last", args->options.channels_last,
      "speed: NHWC activations (oneDNN's channels-last kernels); same arithmetic, other summation order. Without it "
      "or --nchw a fresh run times both on a few steps and takes the faster (remembered in "
      "~/.cache/was/settings.json)");
  cmd->add_flag("--nchw", args->nchw, "speed: NCHW activations, without measuring")->excludes(cl);
  cmd->add_option("--bf16", args->bf16,
                  "speed: bfloat16 autocast of the forward pass (weights and updates stay float32); fast on CPUs with "
                  "AVX512-BF16 or AMX; evaluation stays float32. --bf16 auto: measured with the memory formats, "
                  "chosen only if faster; never without this flag")
      ->expected(0, 1);
}

/// BatchNorm re-estimation, curves, the protocol and the final evaluation.
void add_evaluation_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  cmd->add_option("--bn-batches", args->options.bn_batches,
                  "batches to re-estimate each mode's BatchNorm statistics after training (0: keep training ones)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", args->options.checkpoint_every, "also checkpoint every N steps (0: per epoch)")
      ->capture_default_str();
  cmd->add_option("--eval-every", args->options.eval_every, "test-set evaluation every N epochs (0: at the end)")
      ->capture_default_str();
  cmd->add_option("--protocol", args->options.protocol,
                  "paper: the authors' released training (SGD 0.01/0.9, no weight decay or schedule, batch 128, no "
                  "augmentation, Normalize 0.5/0.5, 500 epochs unless --epochs) and its evaluation every epoch "
                  "(also with BatchNorm in training mode), reported beside the project's")
      ->check(CLI::IsMember(protocol_names()));
  cmd->add_option("--stochastic-dom", args->options.stochastic_dom,
                  "passes of the stochastic DOM (a fresh draw per test batch, the paper's DOM) in the final "
                  "evaluation (default 0; 5 under --protocol paper)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--curve-test-images", args->options.curve_test_images,
                  "per-epoch test curves on the first N test images only (0: all); the final evaluation uses all")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--mode-bn-curves", args->options.mode_bn_curves,
                "also curves with BatchNorm re-estimated per mode at every --eval-every epoch (validation and "
                "test), so that an epoch is selected on what the final evaluation reports");
}

/// Data-parallel training on one machine (--nproc) or across hosts.
void add_distributed_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  cmd->add_option("--nproc", args->nproc,
                  "data-parallel: start N processes on this machine (threads split among them), gradients "
                  "all-reduced over Gloo")
      ->check(CLI::Range(int64_t{1}, int64_t{256}));
  cmd->add_option("--rank", args->rendezvous.rank, "data-parallel: this process's rank (or RANK)");
  cmd->add_option("--world-size", args->rendezvous.world_size,
                  "data-parallel: number of processes in all (or WORLD_SIZE)");
  cmd->add_option("--master-addr", args->rendezvous.master_addr, "data-parallel: rank 0's host (or MASTER_ADDR)")
      ->capture_default_str();
  cmd->add_option("--master-port", args->rendezvous.master_port, "data-parallel: rank 0's port (or MASTER_PORT)")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
      "--dist-iface",
      [args](const std::string& list) { args->rendezvous.interfaces = distributed::split_interfaces(list); },
      "data-parallel: the network interface(s) the ranks reach each other through, comma-separated (or "
      "GLOO_SOCKET_IFNAME; default: the one that routes to --master-addr)");
  cmd->add_option("--dist-timeout", args->rendezvous.timeout_s,
                  "data-parallel: seconds before a missing or silent rank stops the others")
      ->capture_default_str();
  cmd->add_option("--bucket-mb", args->bucket_mb,
                  "data-parallel: gradients travel in buckets of this many MiB, each all-reduced as soon as "
                  "backward has filled it (0: one bucket after backward)")
      ->check(CLI::Range(0.0, 4096.0))
      ->capture_default_str();
}

/// The run directory, resuming, the seed and progress.
void add_run_options(CLI::App* cmd, const std::shared_ptr<TrainArgs>& args) {
  cmd->add_option("--seed", args->seed, "run seed: initialisation, data order, shadow-weight draws")
      ->capture_default_str();
  cmd->add_option("--max-steps", args->options.max_steps, "stop (resumably) after N steps in total (0: no limit)");
  cmd->add_option("--out", args->out,
                  "run directory for last.pt, metrics.jsonl, results.json "
                  "(default runs/MODEL-POLICY-sSEED)");
  cmd->add_option("--resume", args->resume, "continue the run of a checkpoint or run directory exactly");
  cmd->add_flag("--force", args->force, "with --resume and --out: replace the run that --out holds");
  cmd->add_flag("--no-progress", args->no_progress, "no progress bar or progress lines");
  args->runtime.add_to(*cmd);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "train a network (with --was, a WAS network) and evaluate AOM and DOM");
  add_data_options(cmd, args);
  add_was_options(cmd, args);
  add_optimiser_options(cmd, args);
  add_evaluation_options(cmd, args);
  add_distributed_options(cmd, args);
  add_run_options(cmd, args);
  cmd->callback([args, cmd] {
    std::vector<std::string> given;
    for (const auto* opt : cmd->get_options())
      if (opt->count() > 0) given.push_back(opt->get_name());
    if (args->nproc > 1)
      launch_local_ranks(*args, given);
    else
      run_train(*args, given);
  });
}

}  // namespace was::cli
