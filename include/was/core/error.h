// The one exception type the library throws for anything a user can cause.
#pragma once

#include <stdexcept>
#include <string>

namespace was {

/// A problem with the user's input (file, option, checkpoint). `what()` names
/// the problem; `hint()` says how to fix it. The CLI prints both and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = "")
      : std::runtime_error(message), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

/// A file or directory the user named is not there (the Python package raises
/// FileNotFoundError for it, ValueError for every other Error).
class NotFoundError : public Error {
 public:
  using Error::Error;
};

/// `text` in single quotes, as error messages name files and values.
inline std::string in_quotes(const std::string& text) { return "'" + text + "'"; }

}  // namespace was
