#include "common.h"

#include <cerrno>
#include <cstdlib>
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

namespace {

CLI::Validator whole_number_in_range(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const char* begin = text.c_str();
        while (*begin == ' ') ++begin;
        if (is_unsigned && *begin == '-') return "must not be negative, got " + text;
        char* end = nullptr;
        errno = 0;
        if (is_unsigned)
          (void)std::strtoull(begin, &end, 0);
        else
          (void)std::strtoll(begin, &end, 0);
        if (end == begin) return "";  // not a number at all: CLI11's own conversion names it
        if (errno == ERANGE) return "is out of range for a whole number: " + text;
        return "";
      },
      "");
}

void check_whole_numbers(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type == "INT" || type == "UINT") option->check(whole_number_in_range(type == "UINT"));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_whole_numbers(*sub);
}

}  // namespace

void refuse_out_of_range_whole_numbers(CLI::App& app) { check_whole_numbers(app); }

void set_command_line(int argc, char** argv) { stored_command_line().assign(argv, argv + argc); }
const std::vector<std::string>& command_line() { return stored_command_line(); }

}  // namespace was::cli
