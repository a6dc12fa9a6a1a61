// `was report DIR`: a Markdown report with the paper's tables and gnuplot
// plots, from a grid directory (`was experiment`) or a single run directory.
#include <iostream>

#include "common.h"
#include "was/report/report.h"

namespace was::cli {
namespace {

struct ReportArgs {
  std::string dir, out;
  bool no_plots = false;
};

void run_report(const ReportArgs& a) {
  const auto input = report::load_report_input(a.dir);
  report::ReportOptions options;
  options.out = a.out.empty() ? std::filesystem::path(a.dir) / "report" : std::filesystem::path(a.out);
  options.plots = !a.no_plots;
  options.on_warning = [](const std::string& message) { std::cerr << "warning: " << message << "\n"; };
  const auto path = report::write_report(input, options);
  std::cerr << "report: " << path.string() << " (" << input.runs.size() << " runs)\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report",
                                 "write a Markdown report with tables laid out as the paper's and SVG plots (gnuplot) "
                                 "for a grid directory or a run directory");
  cmd->add_option("dir", args->dir, "grid directory (was experiment) or run directory (was train)")->required();
  cmd->add_option("--out", args->out, "report directory (default DIR/report)");
  cmd->add_flag("--no-plots", args->no_plots, "tables only");
  cmd->callback([args] { run_report(*args); });
}

}  // namespace was::cli
