// The backend seam: every op a forward pass computes, behind one interface, so a second backend
// (CUDA next) plugs in without touching the model code, and can be compared with the first op by
// op (tests/backends/backend_consistency_test.cc; activation dumps).
//
// A backend owns its execution resources (the CPU backend its thread pool; a GPU backend its
// stream) and receives the per-call state in a ForwardContext. Model code calls only these ops
// and never a kernel or the scalar reference directly; the scalar reference (ops/reference) is
// the oracle the ops are tested against, not the production path.
//
// Layout conventions as in ops/reference/ref_ops.h: activations row-major f32 [rows, cols];
// weights as ref::MatrixView. In-place calls (y == x) are allowed where noted.
//
// Thread-safety: ops may be called from one thread at a time per backend (a forward pass is one
// caller); a backend's results do not depend on its thread count.
//
// Batch invariance: every op computes each output row (each token; each element for the
// element-wise ops) by the same floating-point operations whatever else is in the call: the
// number of rows, the row's index, the other rows' values and the thread split. A request's
// logits then do not depend on what the engine batches beside it
// (tests/runtime/batch_invariance_test.cc).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gemma_local/status.h"
#include "ops/batch.h"
#include "ops/kv_view.h"
#include "ops/ops.h"
#include "ops/reference/ref_ops.h"

namespace gemma_local::ops {

// Causal (optionally sliding-window) grouped-query attention of one layer over the KV view.
struct AttentionParams {
  int64_t kv_layer = 0;    // the layer whose K/V the view holds (Gemma 4 KV sharing: the source)
  int64_t n_heads = 0;     // query heads
  int64_t n_kv_heads = 0;  // K/V heads; n_heads is a multiple
  int64_t head_dim = 0;
  int64_t window = 0;      // > 0: a query at p sees positions > p - window (itself included)
  float scale = 1.0f;      // applied to q . k
  float softcap = 0.0f;    // > 0: scores become softcap * tanh(s / softcap)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int threads() const = 0;

  // Gives `w` a backend-specific layout when the backend computes faster from one (the copy goes
  // to `storage`, which must outlive `w`; see ops::RepackWeights). Called once at load.
  virtual void PrepareWeights(ref::MatrixView* w, std::vector<std::vector<uint8_t>>* storage,
                              bool source_is_file_mapping) const = 0;

  // out[i] = row ids[i] of `table` as f32, for i < n (x: [n, table.cols]).
  virtual void GetRows(const ref::MatrixView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // y[t] = W x[t] for t < n_tokens (y: [n_tokens, w.rows]).
  virtual void MatMul(const ref::MatrixView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // y[r] = RMSNorm(x[r]) * gain for r < n_rows rows of `width` (gain may be null: no gain).
  // y may equal x.
  virtual void RmsNorm(const float* x, const float* gain, int64_t n_rows, int64_t width, float eps,
                       float* y) = 0;
  // NEOX RoPE in place on x: [n_rows, n_heads * head_dim], row r at positions[r], with
  // head_dim / 2 inverse frequencies (ref::RopeNeox per head).
  virtual void Rope(float* x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                    const int64_t* positions, const float* inv_freq) = 0;
  // In-place softmax of n_rows rows of `width`.
  virtual void Softmax(float* x, int64_t n_rows, int64_t width) = 0;
  // gate[i] = GeluTanh(gate[i]) * up[i], i < n (the MLP's fused GeGLU; may use a vector tanh,
  // then for every element alike).
  virtual void GeluMul(float* gate, const float* up, int64_t n) = 0;
  // x[i] = GeluTanh(x[i]) with the precision of std::tanh, i < n.
  virtual void Gelu(float* x, int64_t n) = 0;
  // x[i] *= y[i], i < n.
  virtual void Mul(float* x, const float* y, int64_t n) = 0;
  // x[i] += y[i], i < n (residual adds).
  virtual void Add(float* x, const float* y, int64_t n) = 0;
  // x[i] += s * y[i], i < n.
  virtual void AddScaled(float* x, const float* y, float s, int64_t n) = 0;
  // x[i] *= s, i < n.
  virtual void Scale(float* x, float s, int64_t n) = 0;
  // x[i] = cap * tanh(x[i] / cap), i < n.
  virtual void SoftCap(float* x, float cap, int64_t n) = 0;
  // out[t] ([n_heads * head_dim]) = attention of q[t] over the cached positions of batch[t].seq
  // (ref::AttendGroupStored per KV group with the causal / window mask, reading the rows in the
  // table's KvType).
  virtual void Attention(const AttentionParams& p, const Batch& batch, const float* q,
                         const KvView& kv, float* out) = 0;
};

struct BackendOptions {
  std::string name = "cpu";  // the only one today
  int threads = 0;           // 0 = one per hardware thread
};

// The backends this build has ("cpu").
std::vector<std::string> AvailableBackends();
// Creates a backend (defined by the backend implementations).
Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options);

// Receives named intermediates of a forward pass (opt-in: see ForwardContext::Dump).
class ActivationSink {
 public:
  virtual ~ActivationSink() = default;
  // `name` follows llama.cpp's tensor names where one exists ("inp_embd", "attn_norm-3",
  // "Qcur-3", "kqv_out-3", "ffn_out-3", "l_out-3", "result_norm", "result_output"); data is
  // [rows, cols] f32, valid during the call only.
  virtual void Record(std::string_view name, const float* data, int64_t rows, int64_t cols) = 0;
};

// Scratch buffers a forward pass reuses across calls: buffer `slot` keeps its allocation, so once
// a workspace has seen its largest batch a forward pass allocates no activations (fresh large
// allocations cost a page fault per 4 KiB on every call; measured 20-30% of a small model's
// prefill). One workspace per concurrent forward pass; references stay valid for its lifetime.
// The index buffers (token ids, positions, expert routing) work the same way, so a decode step
// on a warm workspace allocates nothing at all.
class Workspace {
 public:
  static constexpr size_t kSlots = 32;
  static constexpr size_t kIndexSlots = 8;
  // Float buffer slots the shared decoder code keeps for itself (model/decoder_common.h).
  static constexpr size_t kOutputRowsSlot = kSlots - 1;
  // Index slots the shared decoder code keeps for itself.
  static constexpr size_t kTokenIdsSlot = kIndexSlots - 1;
  static constexpr size_t kPositionsSlot = kIndexSlots - 2;

  // Buffer `slot` (< kSlots) with n floats; contents unspecified.
  std::vector<float>& Buf(size_t slot, int64_t n) { return Sized(bufs_.at(slot), n); }
  // Index buffers `slot` (< kIndexSlots) with n elements; contents unspecified.
  std::vector<int32_t>& Int32s(size_t slot, int64_t n) { return Sized(int32s_.at(slot), n); }
  std::vector<int64_t>& Int64s(size_t slot, int64_t n) { return Sized(int64s_.at(slot), n); }

 private:
  template <typename T>
  static std::vector<T>& Sized(std::vector<T>& b, int64_t n) {
    b.resize(static_cast<size_t>(n));
    return b;
  }

  std::array<std::vector<float>, kSlots> bufs_;
  std::array<std::vector<int32_t>, kIndexSlots> int32s_;
  std::array<std::vector<int64_t>, kIndexSlots> int64s_;
};

// Everything one forward call computes with.
struct ForwardContext {
  Backend* backend = nullptr;              // required
  ForwardCounters* counters = nullptr;     // optional
  ActivationSink* activations = nullptr;   // optional: receives every named intermediate
  Workspace* workspace = nullptr;          // optional: the forward pass uses a fresh one without

  bool dumping() const { return activations != nullptr; }
  void Dump(std::string_view name, const float* data, int64_t rows, int64_t cols) const {
    if (activations != nullptr) activations->Record(name, data, rows, cols);
  }
  // "name-<layer>".
  void Dump(std::string_view name, int64_t layer, const float* data, int64_t rows, int64_t cols) const {
    if (activations != nullptr) {
      activations->Record(std::string(name) + "-" + std::to_string(layer), data, rows, cols);
    }
  }
};

}  // namespace gemma_local::ops
