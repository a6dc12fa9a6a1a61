// JSON a user hands the tool (experiment files, study results): read with
// limits, and read into C++ types with messages that name the file and key,
// never nlohmann's own ("[json.exception.type_error.302] ...").
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "was/core/error.h"

namespace was {

/// Far beyond any file the tool writes or documents; enough to refuse a
/// runaway or hostile file before it costs memory or stack.
struct JsonLimits {
  uint64_t max_bytes = 16u << 20;
  int max_depth = 32;
};

/// Parses the JSON file `path`. Throws was::Error naming `what` and the path
/// for a missing file, a directory, a file over the limits (size, nesting
/// depth, with the line of the first too-deep value) or invalid JSON.
nlohmann::json read_json_file(const std::string& path, const std::string& what, const JsonLimits& limits = {});

/// The deepest nesting of arrays and objects in `text` (strings skipped), and
/// the 1-based line where `max_depth` is first exceeded (0 if it is not).
std::pair<int, int64_t> json_nesting(const std::string& text, int max_depth);

template <typename T>
const char* json_type_wanted() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_integral_v<T>) return std::is_unsigned_v<T> ? "a non-negative whole number" : "a whole number";
  return "a finite number";
}

/// `value` as T, or false if it is of another JSON type or out of T's range
/// (1e20 as an int64, -1 as an unsigned, 1.5 as a whole number, NaN).
template <typename T>
bool json_to(const nlohmann::json& value, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) return false;
    out = value.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) return false;
    out = value.get<std::string>();
  } else if constexpr (std::is_integral_v<T>) {
    using limits = std::numeric_limits<T>;
    if (value.is_number_unsigned()) {
      const auto u = value.get<uint64_t>();
      if (u > static_cast<uint64_t>(limits::max())) return false;
      out = static_cast<T>(u);
    } else if (value.is_number_integer()) {
      const auto i = value.get<int64_t>();
      if (std::is_unsigned_v<T> && i < 0) return false;
      out = static_cast<T>(i);
    } else if (value.is_number_float()) {  // 1e3 is a whole number; 1.5 and 1e30 are not ones we take
      const double d = value.get<double>();
      if (std::trunc(d) != d || d < double(limits::min()) || d >= double(limits::max())) return false;
      out = static_cast<T>(d);
    } else {
      return false;
    }
  } else {
    if (!value.is_number() || !std::isfinite(value.get<double>())) return false;
    out = value.get<T>();
  }
  return true;
}

/// `value` as T; throws was::Error "WHERE is VALUE, not TYPE" otherwise.
template <typename T>
T json_as(const nlohmann::json& value, const std::string& where) {
  T out{};
  if (!json_to(value, out)) {
    std::string shown = value.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    throw Error(where + " is " + shown + ", not " + json_type_wanted<T>());
  }
  return out;
}

/// A JSON list of T; throws was::Error naming `where` and the bad element.
template <typename T>
std::vector<T> json_list_as(const nlohmann::json& value, const std::string& where) {
  if (!value.is_array()) throw Error(where + " must be a list, not " + std::string(value.type_name()));
  std::vector<T> out;
  for (size_t i = 0; i < value.size(); ++i) out.push_back(json_as<T>(value[i], where + "[" + std::to_string(i) + "]"));
  return out;
}

}  // namespace was
