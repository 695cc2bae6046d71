#include "model/gemma3.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/half.h"
#include "model/decoder_common.h"

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
  Gemma3(std::shared_ptr<const Checkpoint> ck, const ops::Backend& backend)
      : ck_(std::move(ck)), hp_(ck_->hparams()), backend_(backend) {}

  Status Init();
  const HParams& hparams() const override { return hp_; }
  Status Forward(const Batch& batch, const KvView& kv, const ops::ForwardContext& ctx,
                 std::vector<float>* logits) const override;

 private:
  Result<ref::MatrixView> Matrix(const std::string& name) const { return BindMatrix(*ck_, name); }
  // HF stores w and the model uses 1 + w; llama.cpp's GGUF stores 1 + w already.
  Result<std::vector<float>> Gain(const std::string& name) const {
    return BindVector(*ck_, name, ck_->norm_weights_include_unit_offset() ? 0.0f : 1.0f);
  }

  std::shared_ptr<const Checkpoint> ck_;
  HParams hp_;
  const ops::Backend& backend_;  // prepares the weights at load
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
      backend_.PrepareWeights(m, &packed_, ck_->all_tensors_file_backed());
    }
    layers_.push_back(std::move(w));
  }
  backend_.PrepareWeights(&lm_head_, &packed_, ck_->all_tensors_file_backed());
  return Status::Ok();
}

Status Gemma3::Forward(const Batch& batch, const KvView& kv, const ops::ForwardContext& ctx,
                       std::vector<float>* logits) const {
  logits->clear();
  GL_RETURN_IF_ERROR(ValidateBatch(hp_, batch, kv));
  ops::Workspace local;
  ops::Workspace& ws = ctx.workspace != nullptr ? *ctx.workspace : local;
  enum Slot : size_t { kX, kH, kBranch, kQ, kK, kV, kAttn, kGate, kUp };
  ops::Backend& be = *ctx.backend;
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = hp_.hidden_size;
  const float eps = hp_.rms_norm_eps;
  const std::vector<int64_t>& positions = BatchPositions(batch, ws);
  std::vector<float>& x = ws.Buf(kX, T * H);  // x: [T, H], the residual stream
  EmbedTokens(ctx, ws, embed_, batch, &x);
  ctx.Dump("inp_embd", x.data(), T, H);
  std::vector<float>& h = ws.Buf(kH, T * H);
  std::vector<float>& branch = ws.Buf(kBranch, T * H);
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    const int64_t d = hp_.head_dim[l];
    const int64_t nq = hp_.n_heads * d;
    const int64_t nkv = hp_.n_kv_heads[l] * d;
    be.RmsNorm(x.data(), w.attn_norm.data(), T, H, eps, h.data());
    ctx.Dump("attn_norm", l, h.data(), T, H);
    // q: [T, n_heads * d]; k, v: [T, n_kv_heads * d]
    std::vector<float>& q = ws.Buf(kQ, T * nq);
    std::vector<float>& k = ws.Buf(kK, T * nkv);
    std::vector<float>& v = ws.Buf(kV, T * nkv);
    be.MatMul(w.q, h.data(), T, q.data());
    be.MatMul(w.k, h.data(), T, k.data());
    be.MatMul(w.v, h.data(), T, v.data());
    NormRopeHeads(ctx, positions, hp_.n_heads, d, w.q_norm.data(), w.inv_freq, eps, q.data());
    NormRopeHeads(ctx, positions, hp_.n_kv_heads[l], d, w.k_norm.data(), w.inv_freq, eps, k.data());
    ctx.Dump("Qcur", l, q.data(), T, nq);
    ctx.Dump("Kcur", l, k.data(), T, nkv);
    ctx.Dump("Vcur", l, v.data(), T, nkv);
    WriteKv(kv, l, batch, k.data(), v.data());
    std::vector<float>& attn = ws.Buf(kAttn, T * nq);
    CausalAttention(ctx, hp_, l, batch, q.data(), kv, attn.data());
    ctx.Dump("kqv_out", l, attn.data(), T, nq);
    be.MatMul(w.o, attn.data(), T, branch.data());
    be.RmsNorm(branch.data(), w.post_attn_norm.data(), T, H, eps, branch.data());
    be.Add(x.data(), branch.data(), T * H);
    ctx.Dump("ffn_inp", l, x.data(), T, H);
    be.RmsNorm(x.data(), w.ffn_norm.data(), T, H, eps, h.data());
    const int64_t ff = hp_.ffn_size[l];
    std::vector<float>& gate = ws.Buf(kGate, T * ff);
    std::vector<float>& up = ws.Buf(kUp, T * ff);
    be.MatMul(w.gate, h.data(), T, gate.data());
    be.MatMul(w.up, h.data(), T, up.data());
    be.GeluMul(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
    be.MatMul(w.down, gate.data(), T, branch.data());
    ctx.Dump("ffn_out", l, branch.data(), T, H);
    AddNormedBranch(ctx, w.post_ffw_norm.data(), eps, T, H, branch.data(), x.data());
    ctx.Dump("l_out", l, x.data(), T, H);
  }
  OutputLogits(ctx, hp_, lm_head_, output_norm_, batch, x.data(), logits);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma3(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend) {
  return LoadFamily<Gemma3>(std::move(checkpoint), backend);
}

}  // namespace gemma_local
