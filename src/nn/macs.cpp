#include "was/nn/macs.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <cstring>

namespace was {
namespace {

// The observer state of the count in progress on this thread.
struct CountState {
  MacCount* count = nullptr;
  const std::vector<torch::Tensor>* sparse = nullptr;
};
thread_local CountState t_state;

struct OpContext : at::ObserverContext {
  torch::Tensor weight;
  torch::Tensor input;
  bool linear = false;
  bool counted = false;
};

bool is_sparse_counted(const torch::Tensor& w) {
  for (const auto& s : *t_state.sparse)
    if (s.unsafeGetTensorImpl() == w.unsafeGetTensorImpl() || (s.defined() && s.data_ptr() == w.data_ptr()))
      return true;
  return false;
}

// The ops that carry a layer's multiply-accumulates. Only the outermost one is
// counted: linear is recorded as addmm or matmul -> mm depending on the build.
enum class OpKind { kNone, kConv, kMatmul };

OpKind kind_of(const char* name) {
  // was::depthwise_conv1x1 and was::window_conv: compact DOM's own kernels (compact.h).
  if (std::strcmp(name, "aten::convolution") == 0 || std::strcmp(name, "was::depthwise_conv1x1") == 0 ||
      std::strcmp(name, "was::window_conv") == 0)
    return OpKind::kConv;
  for (const char* m : {"aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::bmm"})
    if (std::strcmp(name, m) == 0) return OpKind::kMatmul;
  return OpKind::kNone;
}

thread_local int t_depth = 0;  // counted ops in progress on this thread

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (t_state.count == nullptr) return nullptr;
  const OpKind kind = kind_of(fn.name());
  if (kind == OpKind::kNone) return nullptr;
  if (t_depth++ > 0) return std::make_unique<OpContext>();  // nested: mark only
  const auto inputs = fn.inputs();
  auto ctx = std::make_unique<OpContext>();
  // convolution(input, weight, ...), linear(input, weight, ...), mm(a, b),
  // matmul(a, b), bmm(a, b), addmm(bias, a, b): take the data operand and the weight.
  const size_t first = std::strcmp(fn.name(), "aten::addmm") == 0 ? 1 : 0;
  if (inputs.size() < first + 2 || !inputs[first].isTensor() || !inputs[first + 1].isTensor()) return ctx;
  ctx->input = inputs[first].toTensor();
  ctx->weight = inputs[first + 1].toTensor();
  ctx->linear = kind == OpKind::kMatmul;
  ctx->counted = true;
  return ctx;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* raw) {
  auto* ctx = static_cast<OpContext*>(raw);
  if (ctx == nullptr) return;
  --t_depth;
  if (!ctx->counted || t_state.count == nullptr) return;
  const auto& outputs = fn.outputs();
  if (outputs.empty() || !outputs[0].isTensor()) return;
  const auto out = outputs[0].toTensor();
  const auto& w = ctx->weight;
  LayerMacs layer;
  layer.weight_shape = w.sizes().vec();
  layer.output_shape = out.sizes().vec();
  const int64_t batch = std::max<int64_t>(ctx->input.dim() > 1 ? ctx->input.size(0) : 1, 1);
  if (ctx->linear) {
    layer.op = "linear";
    // Every output element is a dot product over the input's last dimension.
    layer.dense_macs = out.numel() * ctx->input.size(-1) / batch;
    layer.macs = layer.dense_macs;
    t_state.count->linear += layer.macs;
  } else {
    layer.op = "conv";
    // Every output position of every image costs numel(W) (groups included:
    // W is [O, I/groups, kh, kw]).
    int64_t positions = 1;
    for (int64_t d = 2; d < out.dim(); ++d) positions *= out.size(d);
    layer.dense_macs = w.numel() * positions;
    layer.sparse_counted = is_sparse_counted(w);
    layer.macs = layer.sparse_counted ? w.count_nonzero().item<int64_t>() * positions : layer.dense_macs;
    t_state.count->conv += layer.macs;
  }
  t_state.count->layers.push_back(std::move(layer));
}

}  // namespace

MacCount count_macs(const std::function<torch::Tensor(torch::Tensor)>& forward, const std::vector<int64_t>& input_shape,
                    torch::Device device, const std::vector<torch::Tensor>& sparse_weights) {
  MacCount count;
  torch::NoGradGuard no_grad;
  auto input = torch::zeros(input_shape, torch::TensorOptions().device(device));
  t_state = CountState{&count, &sparse_weights};
  t_depth = 0;
  auto handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end).needsInputs(true).needsOutputs(true));
  try {
    forward(input);
  } catch (...) {
    at::removeCallback(handle);
    t_state = CountState{};
    throw;
  }
  at::removeCallback(handle);
  t_state = CountState{};
  return count;
}

}  // namespace was
