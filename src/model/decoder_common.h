// Pieces shared by the Gemma decoder families: weight binding, batch validation, RoPE tables and
// causal (optionally sliding-window) GQA attention over the KV cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/model.h"
#include "ops/backend.h"
#include "ops/batch.h"
#include "ops/kv_view.h"

namespace gemma_local {

// Weight dtypes the forward pass computes with (plain floats and the GGML block formats the
// kernels and the dequantization reference support).
std::vector<DType> ComputableWeightDTypes();

// A 2-D weight as a matrix view (rows = ne[1] outputs, cols = ne[0] inputs). Rows must be whole
// quantization blocks.
Result<ref::MatrixView> BindMatrix(const Checkpoint& ck, const std::string& name);
// A 1-D weight as f32, plus `offset` per element (1 turns Gemma 3's stored w into 1 + w).
Result<std::vector<float>> BindVector(const Checkpoint& ck, const std::string& name, float offset);

// Every token id in range; within a sequence, positions continue the cache without gaps and each
// has a reserved KV row.
Status ValidateBatch(const HParams& hp, const Batch& batch, const KvView& kv);

// Stores K and V ([T, row_elems] each, f32) of layer `layer` into the reserved rows of every
// entry, converted to the table's KvType (StoreKvRow).
void WriteKv(const KvView& kv, int64_t layer, const Batch& batch, const float* k, const float* v);

// NEOX inverse frequencies for a head of `head_dim`: theta^(-2i/d) / linear_factor for the first
// partial_rotary_factor * d/2 pairs, 0 (no rotation) for the rest (Gemma 4 proportional RoPE).
std::vector<float> RopeInverseFrequencies(const RopeParams& rope, int64_t head_dim);

// out[t] (n_heads * head_dim) = concat_h softmax(scale * q_h . K_j + causal/window mask) V_j over
// the cached positions of batch[t].seq in layer hp.kv_source[layer]. Parallel over (token, head).
void CausalAttention(const ops::ForwardContext& ctx, const HParams& hp, int64_t layer, const Batch& batch,
                     const float* q, const KvView& kv, float* out);

// x[t] = embed[token_t] * sqrt(hidden) for every batch entry (x is resized to T * hidden).
// `ws` lends the token ids' buffer.
void EmbedTokens(const ops::ForwardContext& ctx, ops::Workspace& ws, const ref::MatrixView& embed,
                 const Batch& batch, std::vector<float>* x);

// The token ids / positions of a batch, in order, in the workspace's buffers kept for them
// (Workspace::kTokenIdsSlot, kPositionsSlot).
const std::vector<int32_t>& BatchTokens(const Batch& batch, ops::Workspace& ws);
const std::vector<int64_t>& BatchPositions(const Batch& batch, ops::Workspace& ws);

// x[t] += RMSNorm(branch[t]) * gain for every row (branch is normalized in place).
void AddNormedBranch(const ops::ForwardContext& ctx, const float* gain, float eps, int64_t n_rows, int64_t width,
                     float* branch, float* x);

// For each token t and head: head = RoPE(RMSNorm(head) * gain, batch[t].pos). `x` is
// [T, n_heads * head_dim].
void NormRopeHeads(const ops::ForwardContext& ctx, const std::vector<int64_t>& positions, int64_t n_heads,
                   int64_t head_dim, const float* gain, const std::vector<float>& inv_freq, float eps, float* x);

// One row of logits per entry with want_logits: lm_head . RMSNorm(x[t]) * norm_gain, soft-capped
// when hp.final_logit_softcap is set. The rows are gathered first and the LM head (the largest
// matrix: 262k rows) runs once for all of them; the result is bit-identical to one product per
// row (MatMul does not depend on which tokens share a call). The gathered rows live in
// Workspace::kOutputRowsSlot of ctx.workspace (a fresh buffer without one).
void OutputLogits(const ops::ForwardContext& ctx, const HParams& hp, const ref::MatrixView& lm_head,
                  const std::vector<float>& norm_gain, const Batch& batch, const float* x,
                  std::vector<float>* logits);

// Constructs family `M` (constructor (checkpoint, backend), Status Init()) and binds its weights.
template <typename M>
Result<std::unique_ptr<Model>> LoadFamily(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend) {
  auto model = std::make_unique<M>(std::move(checkpoint), backend);
  GL_RETURN_IF_ERROR(model->Init());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace gemma_local
