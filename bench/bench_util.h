// Small helpers shared by the benchmarks.
#pragma once

#include <string>
#include <vector>

namespace was::bench {

/// "a,b,,c" -> {"a", "b", "c"} (empty fields dropped).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace was::bench
