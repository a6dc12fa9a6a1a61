#include "was/nn/window_conv.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define WAS_WINDOW_CONV_AVX512 1
#endif

namespace was {
namespace {

constexpr int64_t kMaxTaps = 25;
constexpr int64_t kBlock = 32;  // output channels per register tile: two 16-float vectors
constexpr int kPixels = 12;     // output pixels per register tile: 24 accumulators of 32

std::atomic<int> g_choice{-1};  // -1: not read from the environment yet

struct Geometry {
  int64_t n, h, w, c, oh, ow, o, kh, kw, sh, sw, dh, dw, top, left;
};

#ifdef WAS_WINDOW_CONV_AVX512
// One tile times one block of output channels (32, or the last 16): kPixels
// consecutive output pixels (in N, OH, OW order, across rows and images),
// accumulated in registers over the tile's taps and the input channels.
template <int NV>
__attribute__((target("avx512f"))) inline void accumulate_block(const float* const (*taps)[kPixels], int ntaps,
                                                                const int* tap_index, const float* packed_block,
                                                                int64_t c, const float* bias, float* out,
                                                                int64_t out_stride, int valid) {
  __m512 acc[kPixels][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + 16 * v);
    for (int p = 0; p < kPixels; ++p) acc[p][v] = b;
  }
  for (int t = 0; t < ntaps; ++t) {
    const float* w = packed_block + tap_index[t] * c * kBlock;
    const float* const* px = taps[t];
    for (int64_t k = 0; k < c; ++k) {
      __m512 wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + k * kBlock + 16 * v);
      for (int p = 0; p < kPixels; ++p) {
        const __m512 x = _mm512_set1_ps(px[p][k]);
        for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_fmadd_ps(x, wv[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < valid; ++p)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + p * out_stride + 16 * v, acc[p][v]);
}

// Where each tap of a tile reads its pixels: the input pixel, or a row of
// zeros outside the map; computed once and shared by every block.
struct TilePointers {
  const float* taps[kMaxTaps][kPixels];
  int tap_index[kMaxTaps];
  int ntaps = 0, valid = 0;
  int64_t m0 = 0;
};

void point_tile(TilePointers& t, const float* input, const Geometry& g, int64_t m0, const float* zeros) {
  const int64_t pixels = g.n * g.oh * g.ow;
  t.m0 = m0;
  t.valid = int(std::min<int64_t>(kPixels, pixels - m0));
  int64_t n[kPixels], y[kPixels], x[kPixels];
  {
    int64_t ox = m0 % g.ow, rest = m0 / g.ow, oy = rest % g.oh, on = rest / g.oh;
    for (int p = 0; p < kPixels; ++p) {
      n[p] = on, y[p] = oy, x[p] = ox;
      if (++ox == g.ow) {
        ox = 0;
        if (++oy == g.oh) oy = 0, ++on;
      }
    }
  }
  t.ntaps = 0;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      bool any = false;
      for (int p = 0; p < kPixels; ++p) {
        const int64_t iy = y[p] * g.sh + i * g.dh - g.top, ix = x[p] * g.sw + j * g.dw - g.left;
        const bool inside = p < t.valid && iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        t.taps[t.ntaps][p] = inside ? input + ((n[p] * g.h + iy) * g.w + ix) * g.c : zeros;
        any |= inside;
      }
      if (any) t.tap_index[t.ntaps++] = int(i * g.kw + j);  // a tap outside the map for the whole tile costs nothing
    }
}

__attribute__((target("avx512f"))) void run_block(const TilePointers& t, const float* packed, const float* bias,
                                                  float* out, const Geometry& g, int64_t b) {
  const int64_t taps_total = g.kh * g.kw;
  const float* packed_block = packed + b * taps_total * g.c * kBlock;
  float* o = out + t.m0 * g.o + b * kBlock;
  if (g.o - b * kBlock >= kBlock)
    accumulate_block<2>(t.taps, t.ntaps, t.tap_index, packed_block, g.c, bias + b * kBlock, o, g.o, t.valid);
  else
    accumulate_block<1>(t.taps, t.ntaps, t.tap_index, packed_block, g.c, bias + b * kBlock, o, g.o, t.valid);
}

// A depthwise convolution: each channel its own filter, so a tile is
// kPixels pixels times 32 (or the last 16) channels, one vector load of
// input per multiply-add of 16 channels.
template <int NV>
__attribute__((target("avx512f"))) inline void accumulate_depthwise(const TilePointers& t, const float* packed,
                                                                    int64_t channels, int64_t c0, const float* bias,
                                                                    float* out, int64_t out_stride) {
  __m512 acc[kPixels][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + c0 + 16 * v);
    for (int p = 0; p < kPixels; ++p) acc[p][v] = b;
  }
  for (int k = 0; k < t.ntaps; ++k) {
    const float* w = packed + t.tap_index[k] * channels + c0;
    __m512 wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
    for (int p = 0; p < kPixels; ++p)
      for (int v = 0; v < NV; ++v)
        acc[p][v] = _mm512_fmadd_ps(_mm512_loadu_ps(t.taps[k][p] + c0 + 16 * v), wv[v], acc[p][v]);
  }
  for (int p = 0; p < t.valid; ++p)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + p * out_stride + c0 + 16 * v, acc[p][v]);
}

__attribute__((target("avx512f"))) void run_block_depthwise(const TilePointers& t, const float* packed,
                                                            const float* bias, float* out, const Geometry& g,
                                                            int64_t b) {
  float* o = out + t.m0 * g.o;
  if (g.o - b * kBlock >= kBlock)
    accumulate_depthwise<2>(t, packed, g.c, b * kBlock, bias, o, g.o);
  else
    accumulate_depthwise<1>(t, packed, g.c, b * kBlock, bias, o, g.o);
}

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#else
bool have_avx512() { return false; }
#endif

}  // namespace

std::optional<WindowKernelChoice> parse_window_kernel_choice(const std::string& text) {
  if (text == "auto") return WindowKernelChoice::automatic;
  if (text == "onednn") return WindowKernelChoice::onednn;
  if (text == "own") return WindowKernelChoice::own;
  return std::nullopt;
}

WindowKernelChoice window_kernel_choice() {
  int c = g_choice.load();
  if (c < 0) {
    const char* env = std::getenv("WAS_COMPACT_KERNEL");
    const auto parsed = env ? parse_window_kernel_choice(env) : std::nullopt;
    c = int(parsed.value_or(WindowKernelChoice::automatic));
    g_choice.store(c);
  }
  return WindowKernelChoice(c);
}

void set_window_kernel_choice(WindowKernelChoice choice) { g_choice.store(int(choice)); }

std::shared_ptr<const WindowConv> WindowConv::make(const torch::Tensor& weight, const torch::Tensor& bias,
                                                   std::array<int64_t, 2> stride, std::array<int64_t, 2> dilation,
                                                   std::array<int64_t, 4> pad, int64_t groups, std::string* why_not) {
  const auto refuse = [why_not](const std::string& why) -> std::shared_ptr<const WindowConv> {
    if (why_not != nullptr) *why_not = why;
    return nullptr;
  };
  if (!have_avx512()) return refuse("the processor has no AVX-512");
  if (weight.dim() != 4 || weight.scalar_type() != torch::kFloat32 || !weight.device().is_cpu())
    return refuse("not a float32 CPU convolution");
  const bool depthwise = groups > 1 && weight.dim() == 4 && weight.size(1) == 1 && weight.size(0) == groups;
  if (groups != 1 && !depthwise) return refuse("grouped convolution other than depthwise");
  const int64_t out = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  if (out % 16 != 0) return refuse("output channels not a multiple of 16");
  if (kh * kw > kMaxTaps) return refuse("more than 25 taps");
  torch::NoGradGuard no_grad;
  std::shared_ptr<WindowConv> k(new WindowConv());
  k->weight_ = weight.detach().contiguous();
  k->depthwise_ = depthwise;
  k->out_channels_ = out, k->in_channels_ = depthwise ? groups : weight.size(1), k->kh_ = kh, k->kw_ = kw;
  k->stride_ = stride, k->dilation_ = dilation, k->pad_ = pad;
  const int64_t blocks = (out + kBlock - 1) / kBlock, padded = blocks * kBlock;
  // [O, I, kh, kw] -> [blocks, kh*kw, I, 32]: one block's taps and channels in the order the tile reads them.
  const auto w = torch::constant_pad_nd(k->weight_, {0, 0, 0, 0, 0, 0, 0, padded - out});
  k->packed_ = depthwise  // [kh*kw, O]: one tap's weights for every channel in a row
                   ? k->weight_.reshape({out, kh * kw}).t().contiguous()
                   : w.reshape({blocks, kBlock, k->in_channels_, kh * kw}).permute({0, 3, 2, 1}).contiguous();
  k->bias_ = torch::zeros({padded}, weight.options());
  if (bias.defined()) k->bias_.slice(0, 0, out).copy_(bias.detach());
  return k;
}

bool WindowConv::accepts(const torch::Tensor& input) const {
  if (input.dim() != 4 || input.scalar_type() != torch::kFloat32 || !input.device().is_cpu()) return false;
  if (input.size(1) != in_channels_ || input.size(0) == 0) return false;
  if (!input.is_contiguous(torch::MemoryFormat::ChannelsLast)) return false;
  if (torch::GradMode::is_enabled() && input.requires_grad()) return false;
  const int64_t eh = dilation_[0] * (kh_ - 1) + 1, ew = dilation_[1] * (kw_ - 1) + 1;
  return input.size(2) + pad_[2] + pad_[3] >= eh && input.size(3) + pad_[0] + pad_[1] >= ew;
}

torch::Tensor WindowConv::operator()(const torch::Tensor& input) const {
  TORCH_CHECK(accepts(input), "WindowConv: input ", input.sizes(), " is not one this kernel runs");
  RECORD_FUNCTION("was::window_conv", std::vector<c10::IValue>{input, weight_});  // declares `guard`
  Geometry g{};
  g.n = input.size(0), g.c = in_channels_, g.h = input.size(2), g.w = input.size(3);
  g.kh = kh_, g.kw = kw_, g.sh = stride_[0], g.sw = stride_[1], g.dh = dilation_[0], g.dw = dilation_[1];
  g.left = pad_[0], g.top = pad_[2], g.o = out_channels_;
  g.oh = (g.h + pad_[2] + pad_[3] - (g.dh * (g.kh - 1) + 1)) / g.sh + 1;
  g.ow = (g.w + pad_[0] + pad_[1] - (g.dw * (g.kw - 1) + 1)) / g.sw + 1;
  auto out = torch::empty({g.n, g.o, g.oh, g.ow}, input.options().memory_format(torch::MemoryFormat::ChannelsLast));
#ifdef WAS_WINDOW_CONV_AVX512
  const std::vector<float> zeros(size_t(g.c), 0.0f);
  const int64_t pixels = g.n * g.oh * g.ow, tiles = (pixels + kPixels - 1) / kPixels;
  const int64_t blocks = (g.o + kBlock - 1) / kBlock;
  // Tiles are taken in chunks: each block of weights is read once per chunk
  // (it stays in L1/L2 across the chunk's tiles) instead of once per tile.
  constexpr int64_t chunk = 16;
  const int64_t chunks = (tiles + chunk - 1) / chunk;
  // Few chunks (batch 1, small maps): split the output channels too, so every thread has work.
  const int64_t want = 8 * int64_t(at::get_num_threads());
  const int64_t splits = std::clamp<int64_t>((want + chunks - 1) / chunks, 1, blocks);
  const int64_t per_split = (blocks + splits - 1) / splits;
  const float* in = input.data_ptr<float>();
  const float* packed = packed_.data_ptr<float>();
  const float* bias = bias_.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, chunks * splits, 1, [&](int64_t first, int64_t last) {
    std::vector<TilePointers> ptrs(static_cast<size_t>(chunk));
    for (int64_t item = first; item < last; ++item) {
      const int64_t c = item / splits, split = item % splits;
      const int64_t t0 = c * chunk, count = std::min(chunk, tiles - t0);
      for (int64_t k = 0; k < count; ++k) point_tile(ptrs[k], in, g, (t0 + k) * kPixels, zeros.data());
      const int64_t b0 = split * per_split, b1 = std::min(blocks, b0 + per_split);
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t k = 0; k < count; ++k)
          if (depthwise_)
            run_block_depthwise(ptrs[k], packed, bias, o, g, b);
          else
            run_block(ptrs[k], packed, bias, o, g, b);
    }
  });
#endif
  if (guard.isActive() && guard.needsOutputs()) guard.setOutputs(std::vector<c10::IValue>{out});
  return out;
}

}  // namespace was
