// Plots drawn by gnuplot (Debian's gnuplot-nox) as SVG files, for `was
// report` and `was dom-search`. Without gnuplot the commands still write
// their tables and say that the plots are missing.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace was::report {

class Plots {
 public:
  using Warn = std::function<void(const std::string&)>;
  /// Plots go to `dir`; `enabled` false (or no gnuplot on PATH) draws nothing.
  /// `warn` hears of a missing gnuplot and of plots that failed.
  Plots(std::filesystem::path dir, bool enabled, Warn warn = {});
  bool enabled() const { return enabled_; }
  void warn(const std::string& message) const {
    if (warn_) warn_(message);
  }

  /// Writes `data` to NAME.dat and a gnuplot script NAME.gp (rerunnable in
  /// `dir`: it names its files relative to it) whose preamble sets the SVG
  /// terminal, the title and `datafile`, followed by `script`; renders
  /// NAME.svg. Returns the Markdown image line, or "" when plots are off or
  /// gnuplot fails (a warning names the log).
  std::string render(const std::string& name, const std::string& title, const std::string& data,
                     const std::string& script, int height = 520);

 private:
  std::filesystem::path dir_;
  bool enabled_;
  Warn warn_;
};

}  // namespace was::report
