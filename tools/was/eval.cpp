// `was eval`: top-1, MACs and sparsity of AOM and DOM, side by side.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common.h"
#include "modes.h"
#include "was/data/loader.h"
#include "was/error.h"
#include "was/eval/evaluate.h"
#include "was/io/checkpoint.h"

namespace was::cli {
namespace fs = std::filesystem;
namespace {

struct EvalArgs {
  std::vector<std::string> checkpoints;
  std::string mode = "both";
  int64_t dom_seed = -1;
  std::string data_dir;
  std::string json_out;
  int64_t batch_size = 256;
  int64_t bn_batches = 50;
  int64_t test_subset = 0;
  RuntimeOptions runtime;
};

struct Row {
  std::string run, mode;
  double top1 = 0, top1_training_bn = 0;
  int64_t macs = 0, aom_macs = 0;
  double sparsity_transformed = 0, sparsity_conv = 0;
  std::string batchnorm;
};

std::vector<Row> evaluate_checkpoint(const std::string& arg, const EvalArgs& a, torch::Device device) {
  const std::string path = resolve_checkpoint(arg);
  auto ckpt = load_checkpoint(path, device);
  auto& net = *ckpt.network;
  const auto split = data::load_dataset(ckpt.state.dataset, a.data_dir, dataset_options_of(ckpt.state));
  if (split.test.channels() != ckpt.state.model.in_channels || split.test.num_classes != ckpt.state.model.num_classes)
    throw Error("checkpoint '" + path + "' does not fit the images in the data directory");
  const auto test_set = a.test_subset > 0 ? split.test.head(a.test_subset) : split.test;
  data::BatchLoader test(test_set, ckpt.state.normalization, a.batch_size, false, 0, false, device);

  std::vector<Mode> modes;
  if (a.mode == "aom" || a.mode == "both") modes.push_back(Mode::aom());
  if ((a.mode == "dom" || a.mode == "both")) {
    if (!net.shadow().enabled() && a.mode == "dom")
      throw Error("'" + path + "' was trained without WAS (policy none): it has no DOM", "evaluate it with --mode aom");
    if (net.shadow().enabled()) modes.push_back(Mode::dom(a.dom_seed >= 0 ? a.dom_seed : ckpt.state.dom_seed));
  }
  const int64_t aom_macs = net.macs(Mode::aom()).total();
  std::vector<Row> rows;
  for (const auto& mode : modes) {
    Row row;
    row.run = arg;
    row.mode = mode.is_dom() ? "DOM:" + std::to_string(mode.dom_seed) : "AOM";
    row.batchnorm = ensure_mode_batchnorm(ckpt, mode, a.data_dir, a.bn_batches, a.batch_size, device);
    row.top1 = evaluate(net, test, mode, true).top1();
    row.top1_training_bn = evaluate(net, test, mode, false).top1();
    row.macs = net.macs(mode).total();
    row.aom_macs = aom_macs;
    const auto sp = net.sparsity(mode);
    row.sparsity_transformed = sp.transformed_rate();
    row.sparsity_conv = sp.conv_rate();
    rows.push_back(row);
  }
  return rows;
}

void print_table(const std::vector<Row>& rows) {
  size_t width = 3;
  for (const auto& r : rows) width = std::max(width, r.run.size());
  std::printf("%-*s  %-7s  %7s  %14s  %10s  %8s  %13s  %10s\n", int(width), "run", "mode", "top-1", "top-1 train-BN",
              "MACs (M)", "vs AOM", "sparsity WAS", "sparsity all");
  for (const auto& r : rows)
    std::printf("%-*s  %-7s  %6.2f%%  %13.2f%%  %10.3f  %7.1f%%  %12.1f%%  %9.1f%%\n", int(width), r.run.c_str(),
                r.mode.c_str(), r.top1, r.top1_training_bn, double(r.macs) / 1e6,
                100.0 * double(r.macs) / double(std::max<int64_t>(r.aom_macs, 1)), 100.0 * r.sparsity_transformed,
                100.0 * r.sparsity_conv);
}

void run_eval(const EvalArgs& a) {
  const torch::Device device = a.runtime.apply();
  if (a.batch_size < 1) throw Error("--batch-size must be at least 1");
  if (a.bn_batches < 0) throw Error("--bn-batches must not be negative");
  std::vector<Row> rows;
  for (const auto& c : a.checkpoints) {
    auto r = evaluate_checkpoint(c, a, device);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  print_table(rows);
  if (!a.json_out.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows)
      j.push_back({{"run", r.run},
                   {"mode", r.mode},
                   {"top1", r.top1},
                   {"top1_training_bn", r.top1_training_bn},
                   {"batchnorm", r.batchnorm},
                   {"macs", r.macs},
                   {"flops", 2 * r.macs},
                   {"aom_macs", r.aom_macs},
                   {"sparsity_transformed", r.sparsity_transformed},
                   {"sparsity_conv", r.sparsity_conv}});
    const std::string tmp = a.json_out + ".tmp";
    {
      std::ofstream out(tmp);
      out << j.dump(2) << "\n";
      if (!out) throw Error("could not write '" + a.json_out + "'");
    }
    fs::rename(tmp, a.json_out);
  }
}

}  // namespace

std::string ensure_mode_batchnorm(Checkpoint& ckpt, const Mode& mode, const std::string& data_dir, int64_t bn_batches,
                                  int64_t batch_size, torch::Device device) {
  constexpr uint64_t kBatchNormSeedSalt = 0x5eed;
  auto& net = *ckpt.network;
  if (net.batchnorm().has(mode.key())) return "per-mode";
  if (bn_batches <= 0 || net.batchnorm().num_layers() == 0) return "training";
  // A DOM seed never used before: estimate its statistics now.
  const auto split = data::load_dataset(ckpt.state.dataset, data_dir, dataset_options_of(ckpt.state));
  data::BatchLoader source(split.train, ckpt.state.normalization, batch_size, true,
                           ckpt.state.seed ^ kBatchNormSeedSalt, false, device);
  const int64_t n = std::min(bn_batches, source.batches_per_epoch());
  net.reestimate_batchnorm(mode, n, [&](int64_t i) { return source.batch(0, i).images; });
  return "per-mode (estimated now)";
}

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "evaluate checkpoints in AOM and DOM: top-1, MACs, sparsity");
  cmd->add_option("checkpoints", args->checkpoints, "checkpoint files or run directories")->required();
  cmd->add_option("--mode", args->mode, "aom, dom or both")
      ->check(CLI::IsMember({"aom", "dom", "both"}))
      ->capture_default_str();
  cmd->add_option("--dom-seed", args->dom_seed, "DOM seed (default: the one stored with the run)");
  cmd->add_option("--data-dir", args->data_dir, "dataset directory (default: the dataset's standard place)");
  cmd->add_option("--batch-size", args->batch_size, "evaluation batch size")->capture_default_str();
  cmd->add_option("--bn-batches", args->bn_batches,
                  "training batches to estimate BatchNorm statistics for a DOM seed that has none stored")
      ->capture_default_str();
  cmd->add_option("--test-subset", args->test_subset, "evaluate on the first N test images only (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", args->json_out, "also write the rows as JSON to this file");
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace was::cli
