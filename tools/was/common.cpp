#include "common.h"

#include <filesystem>

#include "was/core/error.h"
#include "was/core/runtime.h"

namespace was::cli {
namespace fs = std::filesystem;

void RuntimeOptions::add_to(CLI::App& app) {
  app.add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();
  app.add_option("--device", device, "cpu, cuda or cuda:N (cuda needs a CUDA build of LibTorch)")
      ->capture_default_str();
}

torch::Device RuntimeOptions::apply() const {
  const auto dev = parse_device(device);
  set_threads(threads);
  return dev;
}

namespace {
std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_command_line(int argc, char** argv) { stored_command_line().assign(argv, argv + argc); }
const std::vector<std::string>& command_line() { return stored_command_line(); }

}  // namespace was::cli
