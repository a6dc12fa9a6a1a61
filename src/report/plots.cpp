#include "was/report/plots.h"

#include <cstdlib>
#include <sstream>

#include "was/core/atomic_file.h"

namespace was::report {
namespace fs = std::filesystem;

Plots::Plots(fs::path dir, bool enabled, Warn warn) : dir_(std::move(dir)), enabled_(enabled), warn_(std::move(warn)) {
  if (enabled_ && std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    this->warn("gnuplot not found, no plots (apt-get install gnuplot-nox)");
    enabled_ = false;
  }
}

std::string Plots::render(const std::string& name, const std::string& title, const std::string& data,
                          const std::string& script, int height) {
  if (!enabled_) return "";
  write_file_atomically((dir_ / (name + ".dat")).string(), data, "plot data");
  std::ostringstream gp;
  gp << "set terminal svg size 900," << height << " dynamic font 'Helvetica,13' background '#ffffff'\n"
     << "set termoption noenhanced\n"
     << "set output '" << name << ".svg.tmp'\n"
     << "set title \"" << title << "\"\nset grid\nset key outside right top\n"
     << "datafile = '" << name << ".dat'\n"
     << script;
  const auto gp_path = dir_ / (name + ".gp");
  write_file_atomically(gp_path.string(), gp.str(), "gnuplot script");
  // Run inside the report directory: the script names its files relative to it, so it can be rerun there.
  const std::string cmd = "cd '" + dir_.string() + "' && gnuplot '" + name + ".gp' 2>'" + name + ".log'";
  if (std::system(cmd.c_str()) != 0) {
    warn("gnuplot failed on " + gp_path.string() + " (see " + name + ".log)");
    return "";
  }
  fs::rename(dir_ / (name + ".svg.tmp"), dir_ / (name + ".svg"));
  fs::remove(dir_ / (name + ".log"));
  return "![" + title + "](" + name + ".svg)\n";
}

}  // namespace was::report
