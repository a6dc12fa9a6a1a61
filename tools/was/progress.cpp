#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace was::cli {

BatchCallback progress_on_stderr() {
  const bool tty = isatty(STDERR_FILENO) != 0;
  return [tty](const BatchProgress& p) {
    if (tty) {
      constexpr int kWidth = 28;
      const int filled = p.batches ? static_cast<int>(kWidth * p.batch / p.batches) : kWidth;
      std::string bar(filled, '=');
      if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
      std::fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.2f%% %.0f img/s ", (long long)p.epoch,
                   (long long)p.epochs, bar.c_str(), (long long)p.batch, (long long)p.batches, p.loss, p.top1,
                   p.images_per_s);
      if (p.batch == p.batches) std::fputc('\n', stderr);
    } else {
      const int64_t every = std::max<int64_t>(p.batches / 5, 1);
      if (p.batch % every != 0 && p.batch != p.batches) return;
      std::fprintf(stderr, "epoch %lld/%lld batch %lld/%lld loss %.4f acc %.2f%% %.0f img/s\n", (long long)p.epoch,
                   (long long)p.epochs, (long long)p.batch, (long long)p.batches, p.loss, p.top1, p.images_per_s);
    }
    std::fflush(stderr);
  };
}

}  // namespace was::cli
