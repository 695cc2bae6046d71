#include "model/gemma3.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/half.h"
#include "ops/ops.h"

namespace gemma_local {
namespace {

struct LayerWeights {
  ref::MatrixView q, k, v, o, gate, up, down;
  // Effective RMSNorm gains in f32 (Gemma 3's 1 + w, whichever way the file stores it).
  std::vector<float> attn_norm, q_norm, k_norm, post_attn_norm, ffn_norm, post_ffw_norm;
  std::vector<float> inv_freq;  // RoPE inverse frequencies for this layer's type, head_dim / 2
};

class Gemma3 final : public Model {
 public:
  Gemma3(std::shared_ptr<const Checkpoint> ck, const ops::Context& ctx)
      : ck_(std::move(ck)), hp_(ck_->hparams()), ctx_(ctx) {}

  Status Init();
  const HParams& hparams() const override { return hp_; }
  Status Forward(const Batch& batch, KvCache& cache, std::vector<float>* logits) const override;

 private:
  Result<ref::MatrixView> Matrix(const std::string& name) const;
  Result<std::vector<float>> Gain(const std::string& name) const;
  Status Validate(const Batch& batch, const KvCache& cache) const;
  void Attention(int64_t layer, const Batch& batch, const float* q, const KvCache& cache, float* out) const;

  std::shared_ptr<const Checkpoint> ck_;
  HParams hp_;
  ops::Context ctx_;
  ref::MatrixView embed_;
  ref::MatrixView lm_head_;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
};

Result<ref::MatrixView> Gemma3::Matrix(const std::string& name) const {
  const WeightTensor* t = ck_->FindTensor(name);
  if (t == nullptr) return NotFoundError(ck_->path() + ": tensor '" + name + "' is missing");
  return ref::MatrixView{t->dtype, t->data, t->ne[1], t->ne[0]};
}

Result<std::vector<float>> Gemma3::Gain(const std::string& name) const {
  const WeightTensor* t = ck_->FindTensor(name);
  if (t == nullptr) return NotFoundError(ck_->path() + ": tensor '" + name + "' is missing");
  const int64_t n = static_cast<int64_t>(t->n_elements());
  std::vector<float> out(static_cast<size_t>(n));
  ref::DequantizeRow(ref::MatrixView{t->dtype, t->data, 1, n}, 0, out.data());
  // HF stores w and the model uses 1 + w; llama.cpp's GGUF stores 1 + w already.
  if (!ck_->norm_weights_include_unit_offset()) {
    for (float& x : out) x += 1.0f;
  }
  return out;
}

std::vector<float> InverseFrequencies(const RopeParams& rope, int64_t head_dim) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double f = std::pow(static_cast<double>(rope.theta), -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    inv[i] = static_cast<float>(f / rope.linear_factor);
  }
  return inv;
}

Status Gemma3::Init() {
  GL_RETURN_IF_ERROR(ck_->RequireDTypes({DType::kF32, DType::kF16, DType::kBF16}));
  GL_ASSIGN_OR_RETURN(embed_, Matrix("token_embd.weight"));
  lm_head_ = embed_;
  if (ck_->FindTensor("output.weight") != nullptr) {
    GL_ASSIGN_OR_RETURN(lm_head_, Matrix("output.weight"));
  }
  GL_ASSIGN_OR_RETURN(output_norm_, Gain("output_norm.weight"));
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    GL_ASSIGN_OR_RETURN(w.q, Matrix(b + "attn_q.weight"));
    GL_ASSIGN_OR_RETURN(w.k, Matrix(b + "attn_k.weight"));
    GL_ASSIGN_OR_RETURN(w.v, Matrix(b + "attn_v.weight"));
    GL_ASSIGN_OR_RETURN(w.o, Matrix(b + "attn_output.weight"));
    GL_ASSIGN_OR_RETURN(w.gate, Matrix(b + "ffn_gate.weight"));
    GL_ASSIGN_OR_RETURN(w.up, Matrix(b + "ffn_up.weight"));
    GL_ASSIGN_OR_RETURN(w.down, Matrix(b + "ffn_down.weight"));
    GL_ASSIGN_OR_RETURN(w.attn_norm, Gain(b + "attn_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.q_norm, Gain(b + "attn_q_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.k_norm, Gain(b + "attn_k_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.post_attn_norm, Gain(b + "post_attention_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.ffn_norm, Gain(b + "ffn_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.post_ffw_norm, Gain(b + "post_ffw_norm.weight"));
    // Linear RoPE scaling applies to global layers only (spec §2.2 step 4).
    w.inv_freq = InverseFrequencies(hp_.is_sliding(l) ? hp_.rope_sliding : hp_.rope_full, hp_.head_dim[l]);
    layers_.push_back(std::move(w));
  }
  return Status::Ok();
}

Status Gemma3::Validate(const Batch& batch, const KvCache& cache) const {
  std::map<int32_t, int64_t> next;  // expected next position per sequence
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchEntry& e = batch[i];
    if (e.token < 0 || e.token >= hp_.vocab_size) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": token id " + std::to_string(e.token) +
                                  " is outside the vocabulary [0, " + std::to_string(hp_.vocab_size) + ")");
    }
    auto it = next.find(e.seq);
    if (it == next.end()) it = next.emplace(e.seq, cache.Length(e.seq)).first;
    if (e.pos != it->second) {
      return InvalidArgumentError("batch entry " + std::to_string(i) + ": sequence " + std::to_string(e.seq) +
                                  " continues at position " + std::to_string(it->second) + ", got " +
                                  std::to_string(e.pos));
    }
    ++it->second;
  }
  return Status::Ok();
}

// out[t] = concat over heads of softmax(scale * q_h . K^T + mask) V, GQA groups contiguous.
// Parallel over (token, head) pairs; each pair's result is computed the same way whatever the
// split.
void Gemma3::Attention(int64_t l, const Batch& batch, const float* q, const KvCache& cache, float* out) const {
  const int64_t d = hp_.head_dim[l];
  const int64_t nh = hp_.n_heads;
  const int64_t group = nh / hp_.n_kv_heads[l];
  const int64_t src = hp_.kv_source[l];
  const bool sliding = hp_.is_sliding(l) && hp_.sliding_window > 0;
  const int64_t n_pairs = static_cast<int64_t>(batch.size()) * nh;
  ctx_.pool->ParallelFor(n_pairs, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t t = pair / nh;
      const int64_t h = pair % nh;
      const int64_t pos = batch[t].pos;
      const int64_t lo = sliding ? std::max<int64_t>(0, pos - hp_.sliding_window + 1) : 0;
      scores.resize(static_cast<size_t>(pos - lo + 1));
      const float* qh = q + (t * nh + h) * d;
      const int64_t kv_off = (h / group) * d;
      for (int64_t j = lo; j <= pos; ++j) {
        float s = ops::Dot(qh, cache.K(src, batch[t].seq, j) + kv_off, d) * hp_.attention_scale;
        if (hp_.attn_logit_softcap) s = *hp_.attn_logit_softcap * std::tanh(s / *hp_.attn_logit_softcap);
        scores[j - lo] = s;
      }
      ref::Softmax(scores.data(), static_cast<int64_t>(scores.size()));
      float* oh = out + (t * nh + h) * d;
      std::fill(oh, oh + d, 0.0f);
      for (int64_t j = lo; j <= pos; ++j) {
        const float* vj = cache.V(src, batch[t].seq, j) + kv_off;
        const float p = scores[j - lo];
        for (int64_t i = 0; i < d; ++i) oh[i] += p * vj[i];
      }
    }
  });
}

Status Gemma3::Forward(const Batch& batch, KvCache& cache, std::vector<float>* logits) const {
  logits->clear();
  GL_RETURN_IF_ERROR(Validate(batch, cache));
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = hp_.hidden_size;
  const float eps = hp_.rms_norm_eps;
  std::vector<float> x(static_cast<size_t>(T * H));
  const float embed_scale = std::sqrt(static_cast<float>(H));
  for (int64_t t = 0; t < T; ++t) {
    ref::DequantizeRow(embed_, batch[t].token, x.data() + t * H);
    for (int64_t i = 0; i < H; ++i) x[t * H + i] *= embed_scale;
  }
  std::vector<float> h(x.size()), branch(x.size());
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    const int64_t d = hp_.head_dim[l];
    const int64_t nq = hp_.n_heads * d;
    const int64_t nkv = hp_.n_kv_heads[l] * d;
    for (int64_t t = 0; t < T; ++t) ref::RmsNorm(&x[t * H], w.attn_norm.data(), 0.0f, H, eps, &h[t * H]);
    std::vector<float> q(static_cast<size_t>(T * nq)), k(static_cast<size_t>(T * nkv)), v(static_cast<size_t>(T * nkv));
    ops::MatMul(ctx_, w.q, h.data(), T, q.data());
    ops::MatMul(ctx_, w.k, h.data(), T, k.data());
    ops::MatMul(ctx_, w.v, h.data(), T, v.data());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t hh = 0; hh < hp_.n_heads; ++hh) {
        float* qh = &q[(t * hp_.n_heads + hh) * d];
        ref::RmsNorm(qh, w.q_norm.data(), 0.0f, d, eps, qh);
        ref::RopeNeox(qh, d, static_cast<double>(batch[t].pos), w.inv_freq.data());
      }
      for (int64_t hh = 0; hh < hp_.n_kv_heads[l]; ++hh) {
        float* kh = &k[(t * hp_.n_kv_heads[l] + hh) * d];
        ref::RmsNorm(kh, w.k_norm.data(), 0.0f, d, eps, kh);
        ref::RopeNeox(kh, d, static_cast<double>(batch[t].pos), w.inv_freq.data());
      }
      GL_RETURN_IF_ERROR(cache.Write(l, batch[t].seq, batch[t].pos, &k[t * nkv], &v[t * nkv]));
    }
    std::vector<float> attn(static_cast<size_t>(T * nq));
    Attention(l, batch, q.data(), cache, attn.data());
    ops::MatMul(ctx_, w.o, attn.data(), T, branch.data());
    for (int64_t t = 0; t < T; ++t) {
      ref::RmsNorm(&branch[t * H], w.post_attn_norm.data(), 0.0f, H, eps, &branch[t * H]);
      for (int64_t i = 0; i < H; ++i) x[t * H + i] += branch[t * H + i];
      ref::RmsNorm(&x[t * H], w.ffn_norm.data(), 0.0f, H, eps, &h[t * H]);
    }
    const int64_t ff = hp_.ffn_size[l];
    std::vector<float> gate(static_cast<size_t>(T * ff)), up(static_cast<size_t>(T * ff));
    ops::MatMul(ctx_, w.gate, h.data(), T, gate.data());
    ops::MatMul(ctx_, w.up, h.data(), T, up.data());
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = ref::GeluTanh(gate[i]) * up[i];
    ops::MatMul(ctx_, w.down, gate.data(), T, branch.data());
    for (int64_t t = 0; t < T; ++t) {
      ref::RmsNorm(&branch[t * H], w.post_ffw_norm.data(), 0.0f, H, eps, &branch[t * H]);
      for (int64_t i = 0; i < H; ++i) x[t * H + i] += branch[t * H + i];
    }
  }
  const int64_t V = lm_head_.rows;
  std::vector<float> y(static_cast<size_t>(H));
  for (int64_t t = 0; t < T; ++t) {
    if (!batch[t].want_logits) continue;
    ref::RmsNorm(&x[t * H], output_norm_.data(), 0.0f, H, eps, y.data());
    const size_t base = logits->size();
    logits->resize(base + static_cast<size_t>(V));
    ops::MatMul(ctx_, lm_head_, y.data(), 1, logits->data() + base);
    if (hp_.final_logit_softcap) {
      const float cap = *hp_.final_logit_softcap;
      for (int64_t i = 0; i < V; ++i) (*logits)[base + i] = cap * std::tanh((*logits)[base + i] / cap);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma3(std::shared_ptr<const Checkpoint> checkpoint, const ops::Context& ctx) {
  if (ctx.pool == nullptr) return InvalidArgumentError("LoadGemma3: the ops context has no thread pool");
  auto model = std::make_unique<Gemma3>(std::move(checkpoint), ctx);
  GL_RETURN_IF_ERROR(model->Init());
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace gemma_local
