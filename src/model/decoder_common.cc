#include "model/decoder_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

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
  std::map<int32_t, int64_t> next;  // expected next position per sequence
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchEntry& e = batch[i];
    if (e.token < 0 || e.token >= hp.vocab_size) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": token id " + std::to_string(e.token) +
                                  " is outside the vocabulary [0, " + std::to_string(hp.vocab_size) + ")");
    }
    auto it = next.find(e.seq);
    if (it == next.end()) it = next.emplace(e.seq, kv.Length(e.seq)).first;
    if (e.pos != it->second) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": sequence " + std::to_string(e.seq) +
                                  " continues at position " + std::to_string(it->second) + ", got " +
                                  std::to_string(e.pos));
    }
    if (e.pos >= kv.Reserved(e.seq)) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": position " + std::to_string(e.pos) +
                                  " of sequence " + std::to_string(e.seq) +
                                  " has no reserved KV row (reserve before Forward)");
    }
    ++it->second;
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
    const auto bytes = static_cast<size_t>(table.row_elems) * sizeof(float);
    // Rows exist: ValidateBatch checked the reservation.
    std::memcpy(table.KRow(batch[t].pos), k + t * table.row_elems, bytes);
    std::memcpy(table.VRow(batch[t].pos), v + t * table.row_elems, bytes);
  }
}

void CausalAttention(const ops::Context& ctx, const HParams& hp, int64_t layer, const Batch& batch,
                     const float* q, const KvView& kv, float* out) {
  const int64_t d = hp.head_dim[layer];
  const int64_t nh = hp.n_heads;
  const int64_t group = nh / hp.n_kv_heads[layer];
  const int64_t src = hp.kv_source[layer];
  const bool sliding = hp.is_sliding(layer) && hp.sliding_window > 0;
  const float softcap = hp.attn_logit_softcap ? *hp.attn_logit_softcap : 0.0f;
  // A work item is one token and a run of query heads inside one KV group: the whole group when
  // there are enough items to keep every thread busy (each K/V row is then read once per group),
  // single heads otherwise (decode of one token).
  const int64_t n_tokens = static_cast<int64_t>(batch.size());
  const int64_t heads_per_item =
      n_tokens * hp.n_kv_heads[layer] >= 2 * ctx.pool->size() ? group : 1;
  const int64_t items_per_token = nh / heads_per_item;
  ctx.pool->ParallelFor(n_tokens * items_per_token, 1, [&](int64_t begin, int64_t end) {
    std::vector<const float*> k_rows, v_rows;
    std::vector<float> scratch;
    int64_t rows_token = -1;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / items_per_token;
      const int64_t h0 = (item % items_per_token) * heads_per_item;
      const int64_t pos = batch[t].pos;
      const int64_t lo = sliding ? std::max<int64_t>(0, pos - hp.sliding_window + 1) : 0;
      if (rows_token != t) {  // the visible rows are the same for every head of a token
        const KvBlockTable table = kv.Table(src, batch[t].seq);
        k_rows.clear();
        v_rows.clear();
        for (int64_t j = lo; j <= pos; ++j) {
          k_rows.push_back(table.KRow(j));
          v_rows.push_back(table.VRow(j));
        }
        rows_token = t;
      }
      const int64_t kv_off = (h0 / group) * d;
      ops::AttendGroup(q + (t * nh + h0) * d, heads_per_item, d, k_rows.data(), v_rows.data(), kv_off,
                       pos - lo + 1, hp.attention_scale, softcap, &scratch, out + (t * nh + h0) * d);
    }
  });
}

void EmbedTokens(const ref::MatrixView& embed, const Batch& batch, std::vector<float>* x) {
  const int64_t H = embed.cols;
  x->assign(batch.size() * static_cast<size_t>(H), 0.0f);
  const float scale = std::sqrt(static_cast<float>(H));
  for (size_t t = 0; t < batch.size(); ++t) {
    float* row = x->data() + t * H;
    ref::DequantizeRow(embed, batch[t].token, row);
    for (int64_t i = 0; i < H; ++i) row[i] *= scale;
  }
}

void AddNormedBranch(const float* gain, float eps, int64_t n_rows, int64_t width, float* branch, float* x) {
  for (int64_t r = 0; r < n_rows; ++r) {
    float* b = branch + r * width;
    ref::RmsNorm(b, gain, 0.0f, width, eps, b);
    for (int64_t i = 0; i < width; ++i) x[r * width + i] += b[i];
  }
}

void NormRopeHeads(const Batch& batch, int64_t n_heads, int64_t head_dim, const float* gain,
                   const std::vector<float>& inv_freq, float eps, float* x) {
  for (size_t t = 0; t < batch.size(); ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
      ref::RmsNorm(v, gain, 0.0f, head_dim, eps, v);
      ref::RopeNeox(v, head_dim, static_cast<double>(batch[t].pos), inv_freq.data());
    }
  }
}

void OutputLogits(const ops::Context& ctx, const HParams& hp, const ref::MatrixView& lm_head,
                  const std::vector<float>& norm_gain, const Batch& batch, const float* x,
                  std::vector<float>* logits) {
  const int64_t H = hp.hidden_size;
  const int64_t V = lm_head.rows;
  // y: [R, H], the normed rows that want logits.
  std::vector<float> y;
  for (size_t t = 0; t < batch.size(); ++t) {
    if (!batch[t].want_logits) continue;
    y.resize(y.size() + static_cast<size_t>(H));
    ref::RmsNorm(x + t * H, norm_gain.data(), 0.0f, H, hp.rms_norm_eps, y.data() + y.size() - H);
  }
  const int64_t R = static_cast<int64_t>(y.size()) / H;
  logits->resize(static_cast<size_t>(R * V));
  if (R == 0) return;
  ops::MatMul(ctx, lm_head, y.data(), R, logits->data());
  if (ctx.counters != nullptr) {
    ++ctx.counters->lm_head_passes;
    ctx.counters->logit_rows += R;
  }
  if (hp.final_logit_softcap) {
    const float cap = *hp.final_logit_softcap;
    for (float& l : *logits) l = cap * std::tanh(l / cap);
  }
}

}  // namespace gemma_local
