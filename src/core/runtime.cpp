#include "was/core/runtime.h"

#include <c10/util/Logging.h>
#if defined(C10_USE_GLOG) && __has_include(<glog/logging.h>)
#include <glog/logging.h>
#define WAS_HAVE_GLOG 1
#endif

#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <malloc.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <thread>

#include "was/core/error.h"

namespace was {

bool tune_allocator() {
  if (const char* env = std::getenv("WAS_GLIBC_MALLOC"); env != nullptr && std::string(env) == "1") return false;
#if defined(__GLIBC__)
  const bool mmap_ok = mallopt(M_MMAP_MAX, 0) == 1;
  // mallopt takes an int: 2 GiB is the largest threshold it accepts, far above
  // what one step frees.
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  // Grow the heap in 64 MiB steps rather than one brk per large buffer.
  const bool pad_ok = mallopt(M_TOP_PAD, 64 << 20) == 1;
  return mmap_ok && trim_ok && pad_ok;
#else
  return false;
#endif
}

int set_threads(int threads) {
  if (threads < 0) throw Error("--threads must be 0 (all cores) or positive, got " + std::to_string(threads));
  const int n = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(n);
  // When the system BLAS is OpenBLAS (Debian's libopenblas0-pthread), its own
  // thread pool fights LibTorch's OpenMP threads for the same cores: a
  // ResNet-18 batch-1 forward had a p90 of 110 ms instead of 13 ms here.
  // LibTorch already parallelises around BLAS calls, so keep BLAS serial.
  using SetThreads = void (*)(int);
  if (auto* openblas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) openblas(1);
  return n;
}

torch::Device parse_device(const std::string& text) {
  c10::optional<torch::Device> device;
  try {
    device = torch::Device(text);
  } catch (const std::exception&) {
    throw Error("unknown device '" + text + "'", "use cpu, cuda or cuda:N");
  }
  if (device->is_cuda() && !torch::cuda::is_available())
    throw Error("device '" + text + "' requested, but this build of LibTorch sees no CUDA device",
                "use --device cpu, or build against a CUDA-enabled LibTorch");
  if (!device->is_cpu() && !device->is_cuda()) throw Error("device '" + text + "' is not supported", "use cpu or cuda");
  return *device;
}

void quiet_backend_logging() {
  const char* keep = std::getenv("WAS_TORCH_LOG");
  if (keep != nullptr && *keep != '\0' && *keep != '0') return;
#ifdef WAS_HAVE_GLOG
  FLAGS_minloglevel = 3;  // FATAL only
#endif
  FLAGS_caffe2_log_level = 3;
}

// LibTorch 2.4 names autocast state by device type; 1.13 had one function
// pair per device (still there, deprecated, in 2.x).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define WAS_AUTOCAST_BY_DEVICE_TYPE 1
#endif

BFloat16Autocast::BFloat16Autocast(torch::Device device, bool enabled) : enabled_(enabled), cuda_(device.is_cuda()) {
  if (!enabled_) return;
  namespace ac = at::autocast;
#ifdef WAS_AUTOCAST_BY_DEVICE_TYPE
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  was_enabled_ = ac::is_autocast_enabled(type);
  previous_dtype_ = ac::get_autocast_dtype(type);
  ac::set_autocast_dtype(type, at::kBFloat16);
  ac::set_autocast_enabled(type, true);
#else
  if (cuda_) {
    was_enabled_ = ac::is_enabled();
    previous_dtype_ = ac::get_autocast_gpu_dtype();
    ac::set_autocast_gpu_dtype(at::kBFloat16);
    ac::set_enabled(true);
  } else {
    was_enabled_ = ac::is_cpu_enabled();
    previous_dtype_ = ac::get_autocast_cpu_dtype();
    ac::set_autocast_cpu_dtype(at::kBFloat16);
    ac::set_cpu_enabled(true);
  }
#endif
  ac::increment_nesting();
}

BFloat16Autocast::~BFloat16Autocast() {
  if (!enabled_) return;
  namespace ac = at::autocast;
  // The bfloat16 copies of the weights are cached for the scope: drop them.
  if (ac::decrement_nesting() == 0) ac::clear_cache();
#ifdef WAS_AUTOCAST_BY_DEVICE_TYPE
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  ac::set_autocast_enabled(type, was_enabled_);
  ac::set_autocast_dtype(type, previous_dtype_);
#else
  if (cuda_) {
    ac::set_enabled(was_enabled_);
    ac::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    ac::set_cpu_enabled(was_enabled_);
    ac::set_autocast_cpu_dtype(previous_dtype_);
  }
#endif
}

}  // namespace was
