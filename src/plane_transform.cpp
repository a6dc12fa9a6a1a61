#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "was/core/error.h"
#include "was/plane_transform.h"

namespace was {
namespace {

// Sample positions this close to a tap are that tap: rotations by multiples of
// 90 degrees must be exact permutations despite cos(90°) = 6e-17.
constexpr double kSnap = 1e-9;

// A dense kk x kk matrix in row-major order; the planes are tiny (9 or 25
// taps), so plain loops beat a tensor op per element by far.
using PlaneMatrix = std::vector<double>;

PlaneMatrix identity_plane(int64_t kk) {
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t i = 0; i < kk; ++i) m[i * kk + i] = 1.0;
  return m;
}

PlaneMatrix multiply(const PlaneMatrix& a, const PlaneMatrix& b, int64_t kk) {
  PlaneMatrix c(kk * kk, 0.0);
  for (int64_t i = 0; i < kk; ++i)
    for (int64_t k = 0; k < kk; ++k) {
      const double aik = a[i * kk + k];
      if (aik == 0.0) continue;
      for (int64_t j = 0; j < kk; ++j) c[i * kk + j] += aik * b[k * kk + j];
    }
  return c;
}

PlaneMatrix crop_plane(int64_t kh, int64_t kw, const CropWindow& win) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t y = win.y0; y < win.y0 + win.h; ++y)
    for (int64_t x = win.x0; x < win.x0 + win.w; ++x) m[(y * kw + x) * kk + (y * kw + x)] = 1.0;
  return m;
}

PlaneMatrix translate_plane(int64_t kh, int64_t kw, int64_t dx, int64_t dy) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x) {
      const int64_t sy = y - dy, sx = x - dx;  // S[y, x] = W[y-dy, x-dx]
      if (sy >= 0 && sy < kh && sx >= 0 && sx < kw) m[(y * kw + x) * kk + (sy * kw + sx)] = 1.0;
    }
  return m;
}

double snap(double v) {
  const double r = std::round(v);
  return std::abs(v - r) < kSnap ? r : v;
}

PlaneMatrix rotate_plane(int64_t kh, int64_t kw, double angle_deg, bool nearest) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  const double a = angle_deg * M_PI / 180.0;
  const double c = std::cos(a), s = std::sin(a);
  const double cx = (kw - 1) / 2.0, cy = (kh - 1) / 2.0;
  for (int64_t row = 0; row < kh; ++row)
    for (int64_t col = 0; col < kw; ++col) {
      // Inverse mapping in centred coordinates (WAS-SPEC §3 rotate).
      const double x = col - cx, y = row - cy;
      const double src_col = snap(c * x - s * y + cx);
      const double src_row = snap(s * x + c * y + cy);
      if (nearest) {  // grid_sample's nearest: round half to even
        const auto r = static_cast<int64_t>(std::nearbyint(src_row)), q = static_cast<int64_t>(std::nearbyint(src_col));
        if (r >= 0 && r < kh && q >= 0 && q < kw) m[(row * kw + col) * kk + (r * kw + q)] = 1.0;
        continue;
      }
      const double c0 = std::floor(src_col), r0 = std::floor(src_row);
      const double fc = src_col - c0, fr = src_row - r0;
      const double taps[4][3] = {{r0, c0, (1 - fr) * (1 - fc)},
                                 {r0, c0 + 1, (1 - fr) * fc},
                                 {r0 + 1, c0, fr * (1 - fc)},
                                 {r0 + 1, c0 + 1, fr * fc}};
      for (const auto& t : taps) {
        if (t[2] == 0.0) continue;
        const auto r = static_cast<int64_t>(t[0]), q = static_cast<int64_t>(t[1]);
        if (r < 0 || r >= kh || q < 0 || q >= kw) continue;  // zeros outside
        m[(row * kw + col) * kk + (r * kw + q)] += t[2];
      }
    }
  return m;
}

// torch's upsample_bilinear2d (align_corners=False) of a window to kh x kw:
// source = (out + 0.5) * in / out - 0.5, clamped at 0; the upper tap clamped
// to the window.
PlaneMatrix resized_crop_plane(int64_t kh, int64_t kw, const CropWindow& win) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  const auto source = [](int64_t out, int64_t in_size, int64_t out_size, int64_t& i0, int64_t& i1, double& frac) {
    const double src = std::max(0.0, (double(out) + 0.5) * double(in_size) / double(out_size) - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in_size - 1);
    i1 = std::min<int64_t>(i0 + 1, in_size - 1);
    frac = src - double(i0);
  };
  for (int64_t y = 0; y < kh; ++y) {
    int64_t y0, y1;
    double fy;
    source(y, win.h, kh, y0, y1, fy);
    for (int64_t x = 0; x < kw; ++x) {
      int64_t x0, x1;
      double fx;
      source(x, win.w, kw, x0, x1, fx);
      const int64_t taps[4][2] = {{y0, x0}, {y0, x1}, {y1, x0}, {y1, x1}};
      const double weights[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx};
      for (int t = 0; t < 4; ++t)
        if (weights[t] != 0.0)
          m[(y * kw + x) * kk + ((win.y0 + taps[t][0]) * kw + (win.x0 + taps[t][1]))] += weights[t];
    }
  }
  return m;
}

PlaneMatrix compose_plane(const TransformParams& p, int64_t kh, int64_t kw) {
  const int64_t kk = kh * kw;
  PlaneMatrix m = p.crop ? crop_plane(kh, kw, *p.crop) : identity_plane(kk);
  if (p.resized_crop) m = multiply(resized_crop_plane(kh, kw, *p.resized_crop), m, kk);
  if (p.dx != 0 || p.dy != 0) m = multiply(translate_plane(kh, kw, p.dx, p.dy), m, kk);
  if (p.angle_deg) m = multiply(rotate_plane(kh, kw, *p.angle_deg, p.nearest), m, kk);
  return m;
}

void check_window(int64_t kh, int64_t kw, const CropWindow& window, const char* what) {
  if (window.h < 1 || window.w < 1 || window.y0 < 0 || window.x0 < 0 || window.y0 + window.h > kh ||
      window.x0 + window.w > kw)
    throw Error(std::string(what) + " window [y0=" + std::to_string(window.y0) + ",x0=" + std::to_string(window.x0) +
                ",h=" + std::to_string(window.h) + ",w=" + std::to_string(window.w) + "] is outside a " +
                std::to_string(kh) + "x" + std::to_string(kw) + " plane");
}

torch::Tensor to_tensor(const PlaneMatrix& m, int64_t kk) {
  return torch::from_blob(const_cast<double*>(m.data()), {kk, kk}, torch::kFloat64).clone();
}

void check_plane(int64_t kh, int64_t kw) {
  if (kh < 1 || kw < 1)
    throw Error("kernel plane must be at least 1x1, got " + std::to_string(kh) + "x" + std::to_string(kw));
}

void check_angle(double angle_deg) {
  if (!std::isfinite(angle_deg)) throw Error("rotation angle must be finite, got " + std::to_string(angle_deg));
}

// Everything a caller can get wrong in one parameter set.
void check_params(const TransformParams& params, int64_t kh, int64_t kw) {
  check_plane(kh, kw);
  if (params.crop) check_window(kh, kw, *params.crop, "crop");
  if (params.resized_crop) check_window(kh, kw, *params.resized_crop, "rcrop");
  if (params.angle_deg) check_angle(*params.angle_deg);
}

void check_weight(const torch::Tensor& weight, const char* what) {
  if (!weight.defined() || weight.dim() != 4)
    throw Error(std::string(what) + ": weight must be [O, I, kh, kw], got " +
                (weight.defined() ? std::to_string(weight.dim()) + " dimensions" : std::string("an undefined tensor")));
}

}  // namespace

torch::Tensor crop_matrix(int64_t kh, int64_t kw, const CropWindow& window) {
  check_plane(kh, kw);
  check_window(kh, kw, window, "crop");
  return to_tensor(crop_plane(kh, kw, window), kh * kw);
}

torch::Tensor resized_crop_matrix(int64_t kh, int64_t kw, const CropWindow& window) {
  check_plane(kh, kw);
  check_window(kh, kw, window, "rcrop");
  return to_tensor(resized_crop_plane(kh, kw, window), kh * kw);
}

torch::Tensor translate_matrix(int64_t kh, int64_t kw, int64_t dx, int64_t dy) {
  check_plane(kh, kw);
  return to_tensor(translate_plane(kh, kw, dx, dy), kh * kw);
}

torch::Tensor rotate_matrix(int64_t kh, int64_t kw, double angle_deg, bool nearest) {
  check_plane(kh, kw);
  check_angle(angle_deg);
  return to_tensor(rotate_plane(kh, kw, angle_deg, nearest), kh * kw);
}

torch::Tensor transform_matrix(const TransformParams& params, int64_t kh, int64_t kw) {
  check_params(params, kh, kw);
  return to_tensor(compose_plane(params, kh, kw), kh * kw);
}

namespace {

// S = A W on the CPU as one pass over the planes: each output plane is the sum
// over the input taps i of W[r, i] times column i of A, a 16-lane vector (one
// FMA per tap with AVX-512), and the taps whose column is all zero (most of
// them under a crop) are skipped. BLAS runs the same [rows, 9] x [9, 9] product
// 1.6-1.7x slower (forward + backward, bench/train_step_bench.cpp): the
// matrices are too thin for its blocking.
constexpr int64_t kLanes = 16;  // planes of up to 4x4 taps

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WAS_PLANE_KERNEL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WAS_PLANE_KERNEL_CLONES
#endif

// kLanes values of T as one vector (GCC/Clang vector extension: a zmm register
// in the AVX-512 clone, two ymm or four xmm registers in the others), loaded
// and stored with memcpy: vectors need not be aligned.
template <typename T>
struct LaneVector;
template <>
struct LaneVector<float> {
  typedef float type __attribute__((vector_size(kLanes * sizeof(float))));
};
template <>
struct LaneVector<double> {
  typedef double type __attribute__((vector_size(kLanes * sizeof(double))));
};

// A's non-zero columns, per group (the layer, or one filter): tap index and
// the column padded to kLanes.
template <typename T>
struct PlaneColumns {
  using Vec = typename LaneVector<T>::type;
  int64_t groups = 0, kk = 0;
  std::vector<int64_t> begin;  // [groups + 1] into tap/column
  std::vector<int64_t> tap;
  std::vector<T> column;  // kLanes values per entry
};

template <typename T>
PlaneColumns<T> plane_columns(const torch::Tensor& a, bool transpose) {
  const auto m = a.to(torch::kCPU, torch::kFloat64).contiguous();
  PlaneColumns<T> c;
  c.groups = m.dim() == 2 ? 1 : m.size(0);
  c.kk = m.size(-1);
  const double* v = m.data_ptr<double>();
  for (int64_t g = 0; g < c.groups; ++g) {
    c.begin.push_back(static_cast<int64_t>(c.tap.size()));
    const double* mg = v + g * c.kk * c.kk;
    for (int64_t i = 0; i < c.kk; ++i) {
      std::array<T, kLanes> col{};
      bool any = false;
      for (int64_t j = 0; j < c.kk; ++j) {
        col[j] = static_cast<T>(transpose ? mg[i * c.kk + j] : mg[j * c.kk + i]);  // S[j] += A[j][i] W[i]
        any = any || col[j] != T(0);
      }
      if (!any) continue;
      c.tap.push_back(i);
      c.column.insert(c.column.end(), col.begin(), col.end());
    }
  }
  c.begin.push_back(static_cast<int64_t>(c.tap.size()));
  return c;
}

// Planes [first, last) of x into y, four at a time (four independent chains
// of FMAs instead of one). A plane stores a full vector of kLanes values,
// spilling into the planes after it, which are written later, as long as the
// spill stays inside the range; the last planes store only their kk values,
// so no other thread's range is touched.
template <typename T>
WAS_PLANE_KERNEL_CLONES void transform_planes(const T* __restrict x, T* __restrict y, int64_t first, int64_t last,
                                              int64_t planes_per_group, const PlaneColumns<T>& c) {
  using Vec = typename PlaneColumns<T>::Vec;
  const int64_t kk = c.kk;
  const int64_t spill_end = last - (kLanes + kk - 1) / kk;  // planes before it may store kLanes values
  // A macro, not a lambda: a lambda would not be compiled for the clone's target.
#define WAS_STORE_PLANE(r, v) std::memcpy(y + (r)*kk, &(v), ((r) < spill_end ? kLanes : kk) * sizeof(T))
  for (int64_t r = first; r < last;) {
    const int64_t g = r / planes_per_group, group_end = std::min(last, (g + 1) * planes_per_group);
    const int64_t count = c.begin[g + 1] - c.begin[g];
    const int64_t* __restrict taps = c.tap.data() + c.begin[g];
    const T* __restrict columns = c.column.data() + c.begin[g] * kLanes;
    for (; r + 4 <= group_end; r += 4) {
      const T* in = x + r * kk;
      Vec a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t e = 0; e < count; ++e) {
        Vec col;
        std::memcpy(&col, columns + e * kLanes, sizeof(Vec));
        const int64_t t = taps[e];
        a0 += in[t] * col;
        a1 += in[kk + t] * col;
        a2 += in[2 * kk + t] * col;
        a3 += in[3 * kk + t] * col;
      }
      WAS_STORE_PLANE(r, a0);
      WAS_STORE_PLANE(r + 1, a1);
      WAS_STORE_PLANE(r + 2, a2);
      WAS_STORE_PLANE(r + 3, a3);
    }
    for (; r < group_end; ++r) {
      const T* in = x + r * kk;
      Vec acc = {};
      for (int64_t e = 0; e < count; ++e) {
        Vec col;
        std::memcpy(&col, columns + e * kLanes, sizeof(Vec));
        acc += in[taps[e]] * col;
      }
      WAS_STORE_PLANE(r, acc);
    }
  }
#undef WAS_STORE_PLANE
}

torch::Tensor transform_planes_cpu(const torch::Tensor& input, const torch::Tensor& a, bool transpose) {
  RECORD_FUNCTION(transpose ? "was::plane_transform_backward" : "was::plane_transform", std::vector<c10::IValue>{});
  const auto in = input.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "transform_planes", [&] {
    const auto columns = plane_columns<scalar_t>(a, transpose);
    const int64_t planes = in.numel() / columns.kk, per_group = planes / columns.groups;
    const scalar_t* x = in.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    at::parallel_for(0, planes, 8192, [&](int64_t first, int64_t last) {
      transform_planes<scalar_t>(x, y, first, last, per_group, columns);
    });
  });
  return out;
}

// The CPU path as an autograd function: dL/dW = A^T dL/dS (paper eq. 6).
struct PlaneTransformCpu : public torch::autograd::Function<PlaneTransformCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& weight,
                               const torch::Tensor& a) {
    ctx->saved_data["a"] = a;
    return transform_planes_cpu(weight, a, false);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    return {transform_planes_cpu(grad[0], ctx->saved_data["a"].toTensor(), true), torch::Tensor()};
  }
};

std::string shape_of(const torch::Tensor& t) {
  std::string text = "[";
  for (int64_t d = 0; d < t.dim(); ++d) text += (d ? ", " : "") + std::to_string(t.size(d));
  return text + "]";
}

void check_plane_matrices(const torch::Tensor& weight, const torch::Tensor& a) {
  check_weight(weight, "apply_plane_transform");
  const int64_t out = weight.size(0), kk = weight.size(2) * weight.size(3);
  if (!a.defined()) throw Error("apply_plane_transform: the matrix is an undefined tensor");
  if (a.dim() == 2) {
    if (a.size(0) != kk || a.size(1) != kk)
      throw Error("apply_plane_transform: matrix " + shape_of(a) + " does not fit a plane of " + std::to_string(kk) +
                  " taps");
  } else if (a.dim() != 3 || a.size(0) != out || a.size(1) != kk || a.size(2) != kk) {
    throw Error("apply_plane_transform: per-filter matrices must be [" + std::to_string(out) + ", " +
                std::to_string(kk) + ", " + std::to_string(kk) + "], got " + shape_of(a));
  }
}

}  // namespace

torch::Tensor apply_plane_transform(const torch::Tensor& weight, const torch::Tensor& a) {
  check_plane_matrices(weight, a);
  const bool float_cpu =
      weight.device().is_cpu() && (weight.scalar_type() == torch::kFloat || weight.scalar_type() == torch::kDouble);
  if (float_cpu && weight.size(2) * weight.size(3) <= kLanes) return PlaneTransformCpu::apply(weight, a.detach());
  return apply_dense_plane_transform(weight, a);
}

torch::Tensor apply_dense_plane_transform(const torch::Tensor& weight, const torch::Tensor& a) {
  check_plane_matrices(weight, a);
  const int64_t out = weight.size(0), kk = weight.size(2) * weight.size(3);
  const auto m = a.to(weight.device(), weight.scalar_type());
  if (m.dim() == 2) return weight.reshape({-1, kk}).matmul(m.t()).view(weight.sizes());
  return torch::bmm(weight.reshape({out, -1, kk}), m.transpose(1, 2)).view(weight.sizes());
}

torch::Tensor apply_transform(const torch::Tensor& weight, const TransformParams& params) {
  check_weight(weight, "apply_transform");
  return apply_plane_transform(weight, transform_matrix(params, weight.size(2), weight.size(3)));
}

torch::Tensor apply_transform(const torch::Tensor& weight, const std::vector<TransformParams>& per_filter) {
  check_weight(weight, "apply_transform");
  const int64_t out = weight.size(0), kh = weight.size(2), kw = weight.size(3), kk = kh * kw;
  if (static_cast<int64_t>(per_filter.size()) != out)
    throw Error("apply_transform: " + std::to_string(per_filter.size()) + " parameter sets for " + std::to_string(out) +
                " filters");
  auto stacked = torch::empty({out, kk, kk}, torch::kFloat64);
  auto* dst = stacked.data_ptr<double>();
  for (int64_t o = 0; o < out; ++o) {
    check_params(per_filter[o], kh, kw);
    const PlaneMatrix m = compose_plane(per_filter[o], kh, kw);
    std::copy(m.begin(), m.end(), dst + o * kk * kk);
  }
  return apply_plane_transform(weight, stacked);
}

}  // namespace was
