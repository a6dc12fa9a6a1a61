// S = A W: the (kh*kw) x (kh*kw) matrix of each transform over the row-major
// kernel plane, and its application to every plane of a layer (a vectorised
// pass on the CPU, a matmul elsewhere); the backward applies A^T (paper eq. 6).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "was/draws.h"

namespace was {

// The matrices A (float64, CPU) of each transform; vec(S) = A vec(W).
torch::Tensor crop_matrix(int64_t kh, int64_t kw, const CropWindow& window);
torch::Tensor translate_matrix(int64_t kh, int64_t kw, int64_t dx, int64_t dy);
torch::Tensor rotate_matrix(int64_t kh, int64_t kw, double angle_deg, bool nearest = false);
/// The window resized back to kh x kw (torch's bilinear, align_corners=False).
torch::Tensor resized_crop_matrix(int64_t kh, int64_t kw, const CropWindow& window);
/// The composition rotate * translate * crop (crop applied first).
torch::Tensor transform_matrix(const TransformParams& params, int64_t kh, int64_t kw);

/// S = A W on every kernel plane of W ([O, I, kh, kw]). `a` is one matrix
/// [kk, kk] for the whole layer or one per filter [O, kk, kk]; it is moved to
/// W's device and dtype. Differentiable in W. On the CPU (planes up to 4x4) a
/// vectorised pass that skips A's zero columns; elsewhere a matmul.
torch::Tensor apply_plane_transform(const torch::Tensor& weight, const torch::Tensor& a);
/// The same as one matmul (a bmm per filter) on any device: the reference the
/// CPU pass is tested against, and the path for GPUs and larger planes.
torch::Tensor apply_dense_plane_transform(const torch::Tensor& weight, const torch::Tensor& a);

/// Applies known parameters to W: one set for the layer, or one per filter.
torch::Tensor apply_transform(const torch::Tensor& weight, const TransformParams& params);
torch::Tensor apply_transform(const torch::Tensor& weight, const std::vector<TransformParams>& per_filter);

}  // namespace was
