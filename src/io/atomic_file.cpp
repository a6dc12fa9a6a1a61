#include "was/io/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "was/error.h"

namespace was {
namespace fs = std::filesystem;

void write_file_atomically(const std::string& path, const void* data, size_t size, const std::string& what) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error("cannot write " + what + " '" + path + "'",
                  "check that the directory exists and is writable, and free disk space");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

}  // namespace was
