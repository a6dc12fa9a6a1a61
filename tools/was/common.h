// What the subcommands of the `was` tool share.
#pragma once

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <string>

#include "was/run/run_data.h"

namespace was::cli {

/// --threads and --device, common to every subcommand that computes.
struct RuntimeOptions {
  int threads = 0;
  std::string device = "cpu";

  void add_to(CLI::App& app);
  /// Sets the thread count and returns the device (throws was::Error).
  torch::Device apply() const;
};

/// The process's own command line, kept by main() for `--nproc`, which
/// starts copies of it.
void set_command_line(int argc, char** argv);
const std::vector<std::string>& command_line();

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_info_command(CLI::App& app);

}  // namespace was::cli
