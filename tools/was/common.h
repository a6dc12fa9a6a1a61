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

/// Gives every whole-number option of `app` and its subcommands a check that
/// runs before CLI11 converts the text, whose strtoll clamps an overflow
/// (--epochs 99999999999999999999 would train for 2^63 epochs) and whose
/// strtoull wraps a negative (--seed -1 would be 2^64 - 1).
void refuse_out_of_range_whole_numbers(CLI::App& app);

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_info_command(CLI::App& app);

}  // namespace was::cli
