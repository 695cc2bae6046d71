#include "model/gemma3.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/half.h"
#include "model/decoder_common.h"
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
  explicit Gemma3(std::shared_ptr<const Checkpoint> ck) : ck_(std::move(ck)), hp_(ck_->hparams()) {}

  Status Init();
  const HParams& hparams() const override { return hp_; }
  Status Forward(const Batch& batch, const KvView& kv, const ops::Context& ctx,
                 std::vector<float>* logits) const override;

 private:
  Result<ref::MatrixView> Matrix(const std::string& name) const { return BindMatrix(*ck_, name); }
  // HF stores w and the model uses 1 + w; llama.cpp's GGUF stores 1 + w already.
  Result<std::vector<float>> Gain(const std::string& name) const {
    return BindVector(*ck_, name, ck_->norm_weights_include_unit_offset() ? 0.0f : 1.0f);
  }

  std::shared_ptr<const Checkpoint> ck_;
  HParams hp_;
  ref::MatrixView embed_;
  ref::MatrixView lm_head_;
  std::vector<std::vector<uint8_t>> packed_;  // backend copies the views above point into
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
};

Status Gemma3::Init() {
  GL_RETURN_IF_ERROR(ck_->RequireDTypes(ComputableWeightDTypes()));
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
    w.inv_freq = RopeInverseFrequencies(hp_.is_sliding(l) ? hp_.rope_sliding : hp_.rope_full, hp_.head_dim[l]);
    for (ref::MatrixView* m : {&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down}) {
      ops::RepackWeights(m, &packed_, ck_->all_tensors_file_backed());
    }
    layers_.push_back(std::move(w));
  }
  ops::RepackWeights(&lm_head_, &packed_, ck_->all_tensors_file_backed());
  return Status::Ok();
}

Status Gemma3::Forward(const Batch& batch, const KvView& kv, const ops::Context& ctx,
                       std::vector<float>* logits) const {
  logits->clear();
  GL_RETURN_IF_ERROR(ValidateBatch(hp_, batch, kv));
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = hp_.hidden_size;
  const float eps = hp_.rms_norm_eps;
  std::vector<float> x;
  EmbedTokens(embed_, batch, &x);
  std::vector<float> h(x.size()), branch(x.size());
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    const int64_t d = hp_.head_dim[l];
    const int64_t nq = hp_.n_heads * d;
    const int64_t nkv = hp_.n_kv_heads[l] * d;
    for (int64_t t = 0; t < T; ++t) ref::RmsNorm(&x[t * H], w.attn_norm.data(), 0.0f, H, eps, &h[t * H]);
    std::vector<float> q(static_cast<size_t>(T * nq)), k(static_cast<size_t>(T * nkv)), v(static_cast<size_t>(T * nkv));
    ops::MatMul(ctx, w.q, h.data(), T, q.data());
    ops::MatMul(ctx, w.k, h.data(), T, k.data());
    ops::MatMul(ctx, w.v, h.data(), T, v.data());
    NormRopeHeads(batch, hp_.n_heads, d, w.q_norm.data(), w.inv_freq, eps, q.data());
    NormRopeHeads(batch, hp_.n_kv_heads[l], d, w.k_norm.data(), w.inv_freq, eps, k.data());
    WriteKv(kv, l, batch, k.data(), v.data());
    std::vector<float> attn(static_cast<size_t>(T * nq));
    CausalAttention(ctx, hp_, l, batch, q.data(), kv, attn.data());
    ops::MatMul(ctx, w.o, attn.data(), T, branch.data());
    for (int64_t t = 0; t < T; ++t) {
      ref::RmsNorm(&branch[t * H], w.post_attn_norm.data(), 0.0f, H, eps, &branch[t * H]);
      for (int64_t i = 0; i < H; ++i) x[t * H + i] += branch[t * H + i];
      ref::RmsNorm(&x[t * H], w.ffn_norm.data(), 0.0f, H, eps, &h[t * H]);
    }
    const int64_t ff = hp_.ffn_size[l];
    std::vector<float> gate(static_cast<size_t>(T * ff)), up(static_cast<size_t>(T * ff));
    ops::MatMul(ctx, w.gate, h.data(), T, gate.data());
    ops::MatMul(ctx, w.up, h.data(), T, up.data());
    ops::GeluMul(ctx, gate.data(), up.data(), static_cast<int64_t>(gate.size()));
    ops::MatMul(ctx, w.down, gate.data(), T, branch.data());
    AddNormedBranch(w.post_ffw_norm.data(), eps, T, H, branch.data(), x.data());
  }
  OutputLogits(ctx, hp_, lm_head_, output_norm_, batch, x.data(), logits);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma3(std::shared_ptr<const Checkpoint> checkpoint) {
  return LoadFamily<Gemma3>(std::move(checkpoint));
}

}  // namespace gemma_local
