// `was export`: one mode of a checkpoint as a self-contained inference file,
// or the plain weights as a state dict for Python PyTorch.
#include <iostream>

#include "common.h"
#include "was/core/error.h"
#include "was/io/export.h"
#include "was/run/run_data.h"

namespace was::cli {
namespace {

struct ExportArgs {
  std::string checkpoint;
  std::string mode = "aom";
  int64_t dom_seed = -1;
  std::string dom_profile;
  std::string out;
  std::string format = "was";
  bool no_fold = false;
  bool force = false;
  std::string data_dir;
  int64_t bn_batches = 50;
  RuntimeOptions runtime;
};

void run_export(const ExportArgs& a) {
  const torch::Device device = a.runtime.apply();
  if (a.out.empty()) throw Error("--out is required", "e.g. --out model.was");
  auto ckpt = load_checkpoint(resolve_checkpoint(a.checkpoint), device);
  Mode mode = Mode::parse(a.mode);
  if (!a.dom_profile.empty()) {
    if (a.dom_seed >= 0) throw Error("--dom and --dom-seed cannot be combined", "a profile fixes its own draw");
    mode = ckpt.state.profile_mode(a.dom_profile);
  } else if (mode.is_dom()) {
    mode.dom_seed = a.dom_seed >= 0 ? a.dom_seed : ckpt.state.dom_seed;
  }
  const std::string bn = ensure_mode_batchnorm(ckpt, mode, a.data_dir, a.bn_batches, device);
  if (a.format == "pytorch") {
    write_pytorch_state_dict(a.out, *ckpt.network, mode, a.force);
    std::cerr << "wrote " << a.out << ": plain weights W and the BatchNorm statistics of " << mode.key()
              << " (load in Python with torch.load)\n";
    return;
  }
  ExportOptions options;
  options.mode = mode;
  options.fold_batchnorm = !a.no_fold;
  options.replace_checkpoint = a.force;
  export_inference(a.out, *ckpt.network, ckpt.state, options);
  auto check = load_inference(a.out, torch::kCPU, true);
  std::cerr << "wrote " << a.out << ": " << ckpt.state.model.name << " in " << mode.key() << " (BatchNorm " << bn
            << (check.folded ? ", folded" : "") << "), " << check.compacted.size() << " compact convolutions\n";
  for (const auto& c : check.compacted) std::cerr << "  compact " << c << "\n";
  for (const auto& d : check.dense) std::cerr << "  dense   " << d << "\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd =
      app.add_subcommand("export", "write one mode as a self-contained inference file (or a PyTorch state dict)");
  cmd->add_option("checkpoint", args->checkpoint, "checkpoint file or run directory")->required();
  cmd->add_option("--mode", args->mode, "aom or dom")->check(CLI::IsMember({"aom", "dom"}))->capture_default_str();
  cmd->add_option("--dom-seed", args->dom_seed, "DOM seed (default: the one stored with the run)");
  cmd->add_option("--dom", args->dom_profile, "a DOM profile stored by was dom-search (implies --mode dom)");
  cmd->add_option("--out", args->out, "output file")->required();
  cmd->add_option("--format", args->format,
                  "was: inference file for `was predict`; pytorch: W + BatchNorm statistics for torch.load")
      ->check(CLI::IsMember({"was", "pytorch"}))
      ->capture_default_str();
  cmd->add_flag("--force", args->force, "replace --out even if it is a training checkpoint (the run is lost)");
  cmd->add_flag("--no-fold", args->no_fold, "keep BatchNorm layers instead of folding them into the convolutions");
  cmd->add_option("--data-dir", args->data_dir,
                  "dataset directory, to estimate BatchNorm statistics of a new DOM seed");
  cmd->add_option("--bn-batches", args->bn_batches, "training batches for that estimate")->capture_default_str();
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_export(*args); });
}

}  // namespace was::cli
