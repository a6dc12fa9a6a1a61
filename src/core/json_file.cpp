#include "was/core/json_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace was {
namespace fs = std::filesystem;

std::pair<int, int64_t> json_nesting(const std::string& text, int max_depth) {
  int depth = 0, deepest = 0;
  int64_t line = 1, too_deep_at = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (c == '\n') ++line;
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (depth > max_depth && too_deep_at == 0) too_deep_at = line;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return {deepest, too_deep_at};
}

nlohmann::json read_json_file(const std::string& path, const std::string& what, const JsonLimits& limits) {
  const std::string named = what + " '" + path + "'";
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFoundError(named + " does not exist", "check the path");
  if (fs::is_directory(path, ec)) throw Error(named + " is a directory, not a JSON file", "pass the file itself");
  const auto size = fs::file_size(path, ec);
  if (!ec && size > limits.max_bytes)
    throw Error(named + " is " + std::to_string(size) + " bytes, over the " + std::to_string(limits.max_bytes) +
                    "-byte limit for such a file",
                "check that it is the file you meant");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + named + ": " + std::strerror(errno), "check the path and its permissions");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read " + named + ": " + std::strerror(errno), "check the path and its permissions");
  const auto [deepest, line] = json_nesting(text, limits.max_depth);
  if (line > 0)
    throw Error(named + " nests lists and objects " + std::to_string(deepest) + " deep (line " + std::to_string(line) +
                    "), over the limit of " + std::to_string(limits.max_depth),
                "flatten it: no setting needs more than a few levels");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    const auto cut = why.find("] ");  // drop "[json.exception.parse_error.101] "
    if (why.rfind("[json.exception.", 0) == 0 && cut != std::string::npos) why = why.substr(cut + 2);
    throw Error(named + " is not valid JSON: " + why, "fix the file (a JSON linter names the spot)");
  }
}

}  // namespace was
