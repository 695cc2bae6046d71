#include "model/decoder_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/reference/quant_ref.h"

namespace gemma_local {

std::vector<DType> ComputableWeightDTypes() {
  std::vector<DType> out;
  for (int i = 0; i < static_cast<int>(DType::kCount); ++i) {
    const auto t = static_cast<DType>(i);
    if (ref::CanDequantize(t)) out.push_back(t);
  }
  return out;
}

Result<ref::MatrixView> BindMatrix(const Checkpoint& ck, const std::string& name) {
  const WeightTensor* t = ck.FindTensor(name);
  if (t == nullptr) return NotFoundError(ck.path() + ": tensor '" + name + "' is missing");
  if (t->ne.size() != 2) return CorruptDataError(ck.path() + ": tensor '" + name + "' must be 2-D");
  const uint32_t block = Traits(t->dtype).block_elems;
  if (block > 1 && t->ne[0] % block != 0) {
    return CorruptDataError(ck.path() + ": tensor '" + name + "' (" + DTypeName(t->dtype) + ") has rows of " +
                            std::to_string(t->ne[0]) + " elements, not a multiple of the " +
                            std::to_string(block) + "-element block");
  }
  return ref::MatrixView{t->dtype, t->data, t->ne[1], t->ne[0]};
}

Result<std::vector<float>> BindVector(const Checkpoint& ck, const std::string& name, float offset) {
  const WeightTensor* t = ck.FindTensor(name);
  if (t == nullptr) return NotFoundError(ck.path() + ": tensor '" + name + "' is missing");
  const int64_t n = static_cast<int64_t>(t->n_elements());
  std::vector<float> out(static_cast<size_t>(n));
  ref::DequantizeRow(ref::MatrixView{t->dtype, t->data, 1, n}, 0, out.data());
  for (float& x : out) x += offset;
  return out;
}

Status ValidateBatch(const HParams& hp, const Batch& batch, const KvView& kv) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchEntry& e = batch[i];
    if (e.token < 0 || e.token >= hp.vocab_size) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": token id " + std::to_string(e.token) +
                                  " is outside the vocabulary [0, " + std::to_string(hp.vocab_size) + ")");
    }
    // The expected position: one after the sequence's previous entry (already checked), else
    // the cache's length. The backward scan stops at once in a prompt chunk and after at most
    // one entry per other sequence in a decode batch; no map, so no allocation.
    int64_t expected = -1;
    for (size_t j = i; j-- > 0;) {
      if (batch[j].seq == e.seq) {
        expected = batch[j].pos + 1;
        break;
      }
    }
    if (expected < 0) expected = kv.Length(e.seq);
    if (e.pos != expected) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": sequence " + std::to_string(e.seq) +
                                  " continues at position " + std::to_string(expected) + ", got " +
                                  std::to_string(e.pos));
    }
    if (e.pos >= kv.Reserved(e.seq)) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": position " + std::to_string(e.pos) +
                                  " of sequence " + std::to_string(e.seq) +
                                  " has no reserved KV row (reserve before Forward)");
    }
  }
  return Status::Ok();
}

std::vector<float> RopeInverseFrequencies(const RopeParams& rope, int64_t head_dim) {
  const int64_t pairs = head_dim / 2;
  const auto rotated = static_cast<int64_t>(std::llround(rope.partial_rotary_factor * static_cast<double>(pairs)));
  std::vector<float> inv(static_cast<size_t>(pairs), 0.0f);
  for (int64_t i = 0; i < std::min(rotated, pairs); ++i) {
    const double f = std::pow(static_cast<double>(rope.theta), -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    inv[i] = static_cast<float>(f / rope.linear_factor);
  }
  return inv;
}

void WriteKv(const KvView& kv, int64_t layer, const Batch& batch, const float* k, const float* v) {
  for (size_t t = 0; t < batch.size(); ++t) {
    const KvBlockTable table = kv.Table(layer, batch[t].seq);
    const int64_t n = table.row_elems;
    // Rows exist: ValidateBatch checked the reservation. They are converted to the cache's type
    // here, once; attention reads them as stored.
    StoreKvRow(table.type, k + t * n, n, table.KRow(batch[t].pos));
    StoreKvRow(table.type, v + t * n, n, table.VRow(batch[t].pos));
  }
}

void CausalAttention(const ops::ForwardContext& ctx, const HParams& hp, int64_t layer, const Batch& batch,
                     const float* q, const KvView& kv, float* out) {
  ops::AttentionParams p;
  p.kv_layer = hp.kv_source[layer];
  p.n_heads = hp.n_heads;
  p.n_kv_heads = hp.n_kv_heads[layer];
  p.head_dim = hp.head_dim[layer];
  p.window = hp.is_sliding(layer) && hp.sliding_window > 0 ? hp.sliding_window : 0;
  p.scale = hp.attention_scale;
  p.softcap = hp.attn_logit_softcap ? *hp.attn_logit_softcap : 0.0f;
  ctx.backend->Attention(p, batch, q, kv, out);
}

const std::vector<int32_t>& BatchTokens(const Batch& batch, ops::Workspace& ws) {
  std::vector<int32_t>& ids =
      ws.Int32s(ops::Workspace::kTokenIdsSlot, static_cast<int64_t>(batch.size()));
  for (size_t t = 0; t < batch.size(); ++t) ids[t] = batch[t].token;
  return ids;
}

const std::vector<int64_t>& BatchPositions(const Batch& batch, ops::Workspace& ws) {
  std::vector<int64_t>& pos =
      ws.Int64s(ops::Workspace::kPositionsSlot, static_cast<int64_t>(batch.size()));
  for (size_t t = 0; t < batch.size(); ++t) pos[t] = batch[t].pos;
  return pos;
}

void EmbedTokens(const ops::ForwardContext& ctx, ops::Workspace& ws, const ref::MatrixView& embed,
                 const Batch& batch, std::vector<float>* x) {
  const int64_t H = embed.cols;
  const auto T = static_cast<int64_t>(batch.size());
  x->assign(static_cast<size_t>(T * H), 0.0f);
  const std::vector<int32_t>& ids = BatchTokens(batch, ws);
  ctx.backend->GetRows(embed, ids.data(), T, x->data());
  ctx.backend->Scale(x->data(), std::sqrt(static_cast<float>(H)), T * H);
}

void AddNormedBranch(const ops::ForwardContext& ctx, const float* gain, float eps, int64_t n_rows, int64_t width,
                     float* branch, float* x) {
  ctx.backend->RmsNorm(branch, gain, n_rows, width, eps, branch);
  ctx.backend->Add(x, branch, n_rows * width);
}

void NormRopeHeads(const ops::ForwardContext& ctx, const std::vector<int64_t>& positions, int64_t n_heads,
                   int64_t head_dim, const float* gain, const std::vector<float>& inv_freq, float eps, float* x) {
  const auto T = static_cast<int64_t>(positions.size());
  ctx.backend->RmsNorm(x, gain, T * n_heads, head_dim, eps, x);
  ctx.backend->Rope(x, T, n_heads, head_dim, positions.data(), inv_freq.data());
}

void OutputLogits(const ops::ForwardContext& ctx, const HParams& hp, const ref::MatrixView& lm_head,
                  const std::vector<float>& norm_gain, const Batch& batch, const float* x,
                  std::vector<float>* logits) {
  const int64_t H = hp.hidden_size;
  const int64_t V = lm_head.rows;
  // y: [R, H], the rows that want logits, then normed in place.
  int64_t R = 0;
  for (const BatchEntry& e : batch) R += e.want_logits ? 1 : 0;
  std::vector<float> local;
  std::vector<float>& y = ctx.workspace != nullptr
                              ? ctx.workspace->Buf(ops::Workspace::kOutputRowsSlot, R * H)
                              : local;
  y.resize(static_cast<size_t>(R * H));
  for (size_t t = 0, r = 0; t < batch.size(); ++t) {
    if (batch[t].want_logits) std::copy_n(x + t * H, H, &y[r++ * H]);
  }
  logits->resize(static_cast<size_t>(R * V));
  if (R == 0) return;
  ctx.backend->RmsNorm(y.data(), norm_gain.data(), R, H, hp.rms_norm_eps, y.data());
  ctx.Dump("result_norm", y.data(), R, H);
  ctx.backend->MatMul(lm_head, y.data(), R, logits->data());
  if (ctx.counters != nullptr) {
    ++ctx.counters->lm_head_passes;
    ctx.counters->logit_rows += R;
  }
  if (hp.final_logit_softcap) ctx.backend->SoftCap(logits->data(), *hp.final_logit_softcap, R * V);
  ctx.Dump("result_output", logits->data(), R, V);
}

}  // namespace gemma_local
