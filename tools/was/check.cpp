// `was check CHECKPOINT`: the self-check's lines and verdict on the terminal;
// the checks are the library's (was/run/self_check.h).
#include <cstdio>

#include "common.h"
#include "was/core/error.h"
#include "was/run/self_check.h"

namespace was::cli {
namespace {

struct CheckArgs {
  std::string checkpoint, data_dir;
  double tolerance = 1e-4;
  RuntimeOptions runtime;
};

void run_check(const CheckArgs& a) {
  if (!(a.tolerance > 0)) throw Error("--tolerance must be positive");
  const torch::Device device = a.runtime.apply();
  const std::string path = resolve_checkpoint(a.checkpoint);
  auto ckpt = load_checkpoint(path, device);
  std::printf("checking %s: %s, policy %s, DOM seed %lld\n", path.c_str(), ckpt.state.model.name.c_str(),
              ckpt.state.policy.c_str(), (long long)ckpt.state.dom_seed);
  const auto report = check_checkpoint(ckpt, a.data_dir, a.tolerance, device, [](const CheckLine& line) {
    std::printf("%s  %s\n", line.tag(), line.what.c_str());
  });
  std::printf("\n%d passed, %d failed, %d skipped\n", report.passed, report.failed, report.skipped);
  if (!report.consistent())
    throw Error("check failed: " + std::to_string(report.failed) + " of " +
                    std::to_string(report.passed + report.failed) + " checks on '" + path + "'",
                "the checkpoint was modified or saved by an incompatible build: retrain or restore it");
  std::printf("verdict: %s\n", report.verdict().c_str());
}

}  // namespace

void add_check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  auto* cmd = app.add_subcommand(
      "check",
      "self-check a checkpoint: AOM = plain forward with W, DOM = forward with its shadow weights, per-mode "
      "BatchNorm, stored MACs and sparsity; non-zero exit on any mismatch");
  cmd->add_option("checkpoint", args->checkpoint, "checkpoint file or run directory")->required();
  cmd->add_option("--data-dir", args->data_dir,
                  "dataset directory, to recompute the BatchNorm statistics (default: the dataset's standard place)");
  cmd->add_option("--tolerance", args->tolerance, "largest relative difference accepted")->capture_default_str();
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_check(*args); });
}

}  // namespace was::cli
