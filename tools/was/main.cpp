// was: train and serve networks with the Weight Augmentation Strategy.
#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>

#include "common.h"
#include "was/core/error.h"
#include "was/core/runtime.h"

namespace was::cli {
void add_export_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_experiment_command(CLI::App& app);
void add_check_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_dom_search_command(CLI::App& app);
void add_models_command(CLI::App& app);
}  // namespace was::cli

namespace {

// "filesystem error: cannot create directories: Read-only file system [DIR]"
// as the tool's own messages read: "cannot create directories 'DIR': ...".
std::string describe_filesystem_error(const std::filesystem::filesystem_error& e) {
  std::string operation = e.what();
  const std::string prefix = "filesystem error: ";
  if (operation.rfind(prefix, 0) == 0) operation = operation.substr(prefix.size());
  const std::string reason = e.code().message();
  const auto cut = operation.find(": " + reason);
  if (cut != std::string::npos) operation = operation.substr(0, cut);
  std::string paths;
  if (!e.path1().empty()) paths += " '" + e.path1().string() + "'";
  if (!e.path2().empty()) paths += " and '" + e.path2().string() + "'";
  return operation + paths + ": " + reason;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any large allocation: keep LibTorch's buffers off mmap/munmap.
  was::tune_allocator();
  was::cli::set_command_line(argc, argv);
  was::quiet_backend_logging();

  CLI::App app{
      "was: train convolutional networks with the Weight Augmentation Strategy and serve one set of weights in "
      "two modes, AOM (plain weights) and DOM (a seeded draw of shadow weights).\n\n"
      "Start with:\n"
      "  was train --dataset fashion-mnist --was CT --epochs 3 --out runs/ct\n"
      "  was eval runs/ct\n"
      "  was info runs/ct\n",
      "was"};
  app.require_subcommand(1);
  // As in most tools, a repeated option takes its last value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "was 0.1.0");
  was::cli::add_train_command(app);
  was::cli::add_eval_command(app);
  was::cli::add_info_command(app);
  was::cli::add_export_command(app);
  was::cli::add_predict_command(app);
  was::cli::add_experiment_command(app);
  was::cli::add_report_command(app);
  was::cli::add_check_command(app);
  was::cli::add_dom_search_command(app);
  was::cli::add_models_command(app);
  was::cli::refuse_out_of_range_whole_numbers(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see was --help, or was COMMAND --help)" << std::endl;
    return 2;
  } catch (const was::Error& e) {
    std::cerr << "error: " << e.what();
    if (!e.hint().empty()) std::cerr << " (" << e.hint() << ")";
    std::cerr << std::endl;
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "error: " << describe_filesystem_error(e)
              << " (check the path and its permissions, and free disk space)" << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
