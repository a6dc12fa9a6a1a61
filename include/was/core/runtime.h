// Process-wide settings that decide LibTorch's speed on a CPU.
#pragma once

#include <torch/torch.h>

#include <string>

namespace was {

/// Keeps large buffers on the heap instead of mmap/munmap: with glibc's
/// defaults every activation of a training step is mapped and unmapped again,
/// and the page faults can cost several times the arithmetic (foundation
/// issue: 6.9 s vs 1.5 s per ResNet-18 step; 1.27x on a later machine,
/// docs/PERFORMANCE.md "Allocator and threads"). Equivalent to MALLOC_MMAP_MAX_=0
/// MALLOC_TRIM_THRESHOLD_=64GiB. Call once, before the first large allocation;
/// returns false if glibc refused. WAS_GLIBC_MALLOC=1 leaves the defaults (for
/// measuring them).
bool tune_allocator();

/// Silences LibTorch's own log lines (c10d socket errors, glog warnings):
/// the tool reports every failure itself, once. WAS_TORCH_LOG=1 keeps them.
void quiet_backend_logging();

/// Intra-op threads: `threads` > 0, or all cores when 0. Returns the number set.
int set_threads(int threads);

/// Mixed precision for a scope, as Python's torch.autocast(device,
/// dtype=torch.bfloat16): convolutions and matrix products run in bfloat16,
/// precision-sensitive ops (losses, BatchNorm, reductions) in float32, and
/// the weights and their gradients stay float32. Fast where the CPU has
/// bfloat16 instructions (AVX512-BF16, AMX) and on recent GPUs.
class BFloat16Autocast {
 public:
  BFloat16Autocast(torch::Device device, bool enabled);
  ~BFloat16Autocast();
  BFloat16Autocast(const BFloat16Autocast&) = delete;
  BFloat16Autocast& operator=(const BFloat16Autocast&) = delete;

 private:
  bool enabled_;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

/// Parses "cpu", "cuda", "cuda:N"; throws was::Error with a hint when the
/// device is not available in this build.
torch::Device parse_device(const std::string& text);

}  // namespace was
