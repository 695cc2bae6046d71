#include "model/gemma4.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/decoder_common.h"

namespace gemma_local {
namespace {

// Workspace slots of the forward pass (ops::Workspace).
enum Slot : size_t {
  kX, kH, kBranch, kBranch2, kPle, kPleRows, kQ, kK, kV, kAttn, kPleGate, kPleIn,
  kMlpGate, kMlpUp, kRouterIn, kExpertIn, kRouterLogits, kTokensIn, kTokensOut, kChoiceWeight,
  kRoutedWeight,
};
// Index slots (ops::Workspace::Int64s) of the expert routing.
enum IndexSlot : size_t { kExpertOrder, kChoiceExpert, kExpertStart, kRoutedToken, kExpertFill };

// Routed experts of one MoE layer (26B-A4B). Expert e's fused gate/up matrix is rows
// [e*2F, (e+1)*2F) of ffn_gate_up_exps (gate first, then up); its down matrix is rows [e*H,(e+1)*H)
// of ffn_down_exps.
struct MoeWeights {
  ref::MatrixView router;            // [E, H]
  std::vector<float> router_scale;   // [H]
  std::vector<float> router_gain;    // [H]: router_scale / sqrt(H), the router input's norm gain
  std::vector<float> expert_scale;   // [E]
  const WeightTensor* gate_up = nullptr;
  const WeightTensor* gate = nullptr;  // split form (gate and up separately), when not fused
  const WeightTensor* up = nullptr;
  const WeightTensor* down = nullptr;
  // Per expert e: its gate, up and down matrices (views into the tensors above, repacked for the
  // backend where it has a faster layout).
  std::vector<ref::MatrixView> expert_gate, expert_up, expert_down;
  std::vector<float> post_norm_1, pre_norm_2, post_norm_2;
};

struct LayerWeights {
  ref::MatrixView q, k, v, o, gate, up, down;
  bool has_k = false, has_v = false;
  std::vector<float> attn_norm, q_norm, k_norm, post_attn_norm, ffn_norm, post_ffw_norm;
  std::vector<float> inv_freq;
  float layer_scale = 1.0f;
  // Per-layer embeddings.
  ref::MatrixView ple_gate, ple_proj;
  std::vector<float> ple_post_norm;
  bool moe = false;
  MoeWeights experts;
};

// Row r..r+n of a 3-D expert tensor {cols, rows_per_expert, E} as a matrix of `n` rows.
ref::MatrixView ExpertRows(const WeightTensor* t, int64_t first_row, int64_t n_rows) {
  const int64_t cols = t->ne[0];
  const uint64_t row_bytes = *DTypeByteSize(t->dtype, static_cast<uint64_t>(cols));
  return ref::MatrixView{t->dtype, t->data + static_cast<uint64_t>(first_row) * row_bytes, n_rows, cols};
}

class Gemma4 final : public Model {
 public:
  Gemma4(std::shared_ptr<const Checkpoint> ck, const ops::Backend& backend)
      : ck_(std::move(ck)), hp_(ck_->hparams()), backend_(backend) {}

  Status Init();
  const HParams& hparams() const override { return hp_; }
  Status Forward(const Batch& batch, const KvView& kv, const ops::ForwardContext& ctx,
                 std::vector<float>* logits) const override;

 private:
  Result<ref::MatrixView> Matrix(const std::string& name) const { return BindMatrix(*ck_, name); }
  Result<std::vector<float>> Gain(const std::string& name) const { return BindVector(*ck_, name, 0.0f); }
  void PerLayerInputs(const ops::ForwardContext& ctx, const Batch& batch, const float* x0, std::vector<float>* ple) const;
  void Mlp(const ops::ForwardContext& ctx, const ref::MatrixView& gate, const ref::MatrixView& up,
           const ref::MatrixView& down, const float* in, int64_t n, float* out) const;
  void Experts(const ops::ForwardContext& ctx, const LayerWeights& w, const float* residual, int64_t T, float* out) const;

  std::shared_ptr<const Checkpoint> ck_;
  HParams hp_;
  const ops::Backend& backend_;  // prepares the weights at load
  ref::MatrixView embed_, lm_head_, ple_embed_, ple_model_proj_;
  std::vector<std::vector<uint8_t>> packed_;  // backend copies the views above/below point into
  std::vector<float> output_norm_, ple_proj_norm_;
  std::vector<LayerWeights> layers_;
};

Status Gemma4::Init() {
  GL_RETURN_IF_ERROR(ck_->RequireDTypes(ComputableWeightDTypes()));
  GL_ASSIGN_OR_RETURN(embed_, Matrix("token_embd.weight"));
  lm_head_ = embed_;
  if (ck_->FindTensor("output.weight") != nullptr) {
    GL_ASSIGN_OR_RETURN(lm_head_, Matrix("output.weight"));
  }
  GL_ASSIGN_OR_RETURN(output_norm_, Gain("output_norm.weight"));
  const int64_t P = hp_.per_layer_input_size;
  if (P > 0) {
    GL_ASSIGN_OR_RETURN(ple_embed_, Matrix("per_layer_token_embd.weight"));
    GL_ASSIGN_OR_RETURN(ple_model_proj_, Matrix("per_layer_model_proj.weight"));
    GL_ASSIGN_OR_RETURN(ple_proj_norm_, Gain("per_layer_proj_norm.weight"));
  }
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    GL_ASSIGN_OR_RETURN(w.q, Matrix(b + "attn_q.weight"));
    GL_ASSIGN_OR_RETURN(w.o, Matrix(b + "attn_output.weight"));
    GL_ASSIGN_OR_RETURN(w.q_norm, Gain(b + "attn_q_norm.weight"));
    if (hp_.owns_kv(l)) {
      GL_ASSIGN_OR_RETURN(w.k, Matrix(b + "attn_k.weight"));
      GL_ASSIGN_OR_RETURN(w.k_norm, Gain(b + "attn_k_norm.weight"));
      w.has_k = true;
      if (hp_.has_v_proj[l]) {
        GL_ASSIGN_OR_RETURN(w.v, Matrix(b + "attn_v.weight"));
        w.has_v = true;
      }
    }
    GL_ASSIGN_OR_RETURN(w.attn_norm, Gain(b + "attn_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.post_attn_norm, Gain(b + "post_attention_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.ffn_norm, Gain(b + "ffn_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.post_ffw_norm, Gain(b + "post_ffw_norm.weight"));
    GL_ASSIGN_OR_RETURN(w.gate, Matrix(b + "ffn_gate.weight"));
    GL_ASSIGN_OR_RETURN(w.up, Matrix(b + "ffn_up.weight"));
    GL_ASSIGN_OR_RETURN(w.down, Matrix(b + "ffn_down.weight"));
    if (ck_->FindTensor(b + "layer_output_scale.weight") != nullptr) {
      GL_ASSIGN_OR_RETURN(std::vector<float> s, Gain(b + "layer_output_scale.weight"));
      w.layer_scale = s[0];
    }
    if (P > 0) {
      GL_ASSIGN_OR_RETURN(w.ple_gate, Matrix(b + "inp_gate.weight"));
      GL_ASSIGN_OR_RETURN(w.ple_proj, Matrix(b + "proj.weight"));
      GL_ASSIGN_OR_RETURN(w.ple_post_norm, Gain(b + "post_norm.weight"));
    }
    if (hp_.n_experts > 0) {
      MoeWeights& m = w.experts;
      w.moe = true;
      GL_ASSIGN_OR_RETURN(m.router, Matrix(b + "ffn_gate_inp.weight"));
      GL_ASSIGN_OR_RETURN(m.router_scale, Gain(b + "ffn_gate_inp.scale"));
      const float inv_sqrt_h = 1.0f / std::sqrt(static_cast<float>(hp_.hidden_size));
      for (float g : m.router_scale) m.router_gain.push_back(g * inv_sqrt_h);
      GL_ASSIGN_OR_RETURN(m.expert_scale, Gain(b + "ffn_down_exps.scale"));
      GL_ASSIGN_OR_RETURN(m.post_norm_1, Gain(b + "post_ffw_norm_1.weight"));
      GL_ASSIGN_OR_RETURN(m.pre_norm_2, Gain(b + "pre_ffw_norm_2.weight"));
      GL_ASSIGN_OR_RETURN(m.post_norm_2, Gain(b + "post_ffw_norm_2.weight"));
      m.gate_up = ck_->FindTensor(b + "ffn_gate_up_exps.weight");
      m.gate = ck_->FindTensor(b + "ffn_gate_exps.weight");
      m.up = ck_->FindTensor(b + "ffn_up_exps.weight");
      m.down = ck_->FindTensor(b + "ffn_down_exps.weight");
      if (m.down == nullptr || (m.gate_up == nullptr && (m.gate == nullptr || m.up == nullptr))) {
        return NotFoundError(ck_->path() + ": layer " + std::to_string(l) + " lacks its expert weights");
      }
      const int64_t F = hp_.expert_ffn_size, H = hp_.hidden_size;
      for (int64_t e = 0; e < hp_.n_experts; ++e) {
        const bool fused = m.gate_up != nullptr;
        m.expert_gate.push_back(fused ? ExpertRows(m.gate_up, e * 2 * F, F) : ExpertRows(m.gate, e * F, F));
        m.expert_up.push_back(fused ? ExpertRows(m.gate_up, e * 2 * F + F, F) : ExpertRows(m.up, e * F, F));
        m.expert_down.push_back(ExpertRows(m.down, e * H, H));
        for (ref::MatrixView* v : {&m.expert_gate.back(), &m.expert_up.back(), &m.expert_down.back()}) {
          backend_.PrepareWeights(v, &packed_, ck_->all_tensors_file_backed());
        }
      }
    }
    w.inv_freq = RopeInverseFrequencies(hp_.is_sliding(l) ? hp_.rope_sliding : hp_.rope_full, hp_.head_dim[l]);
    for (ref::MatrixView* m : {&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down, &w.ple_gate, &w.ple_proj}) {
      if (m->data != nullptr) backend_.PrepareWeights(m, &packed_, ck_->all_tensors_file_backed());
    }
    layers_.push_back(std::move(w));
  }
  backend_.PrepareWeights(&lm_head_, &packed_, ck_->all_tensors_file_backed());
  return Status::Ok();
}

// PLE (spec §2.3.2): ple[t] = (norm(W_proj x0 / sqrt(H)) + E_ple[token] * sqrt(P)) / sqrt(2), [L, P].
void Gemma4::PerLayerInputs(const ops::ForwardContext& ctx, const Batch& batch, const float* x0,
                            std::vector<float>* ple) const {
  ops::Backend& be = *ctx.backend;
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t L = hp_.n_layers, P = hp_.per_layer_input_size, LP = L * P;
  ple->resize(static_cast<size_t>(T * LP));
  be.MatMul(ple_model_proj_, x0, T, ple->data());  // ple: [T, L * P]
  be.Scale(ple->data(), 1.0f / std::sqrt(static_cast<float>(hp_.hidden_size)), T * LP);
  be.RmsNorm(ple->data(), ple_proj_norm_.data(), T * L, P, hp_.rms_norm_eps, ple->data());
  std::vector<float>& rows = ctx.workspace->Buf(kPleRows, T * LP);  // E_ple[token]: [T, L * P]
  const std::vector<int32_t>& ids = BatchTokens(batch, *ctx.workspace);
  be.GetRows(ple_embed_, ids.data(), T, rows.data());
  be.Scale(rows.data(), std::sqrt(static_cast<float>(P)), T * LP);
  be.Add(ple->data(), rows.data(), T * LP);
  be.Scale(ple->data(), 1.0f / std::sqrt(2.0f), T * LP);
}

// out = down(gelu_tanh(gate in) * up in) for n rows.
void Gemma4::Mlp(const ops::ForwardContext& ctx, const ref::MatrixView& gate, const ref::MatrixView& up,
                 const ref::MatrixView& down, const float* in, int64_t n, float* out) const {
  std::vector<float>& g = ctx.workspace->Buf(kMlpGate, n * gate.rows);
  std::vector<float>& u = ctx.workspace->Buf(kMlpUp, n * up.rows);
  ctx.backend->MatMul(gate, in, n, g.data());
  ctx.backend->MatMul(up, in, n, u.data());
  ctx.backend->GeluMul(g.data(), u.data(), static_cast<int64_t>(g.size()));
  ctx.backend->MatMul(down, g.data(), n, out);
}

// Routed experts (spec §2.3.4): router on the residual, softmax over all experts, top-k,
// renormalise, per-expert scale; out[t] = post_norm_2(sum_e w_e * expert_e(pre_norm_2(r))).
// Tokens are grouped per expert so each expert's weights are read once per batch.
void Gemma4::Experts(const ops::ForwardContext& ctx, const LayerWeights& w, const float* r, int64_t T, float* out) const {
  const MoeWeights& m = w.experts;
  const int64_t H = hp_.hidden_size, E = hp_.n_experts, K = hp_.n_experts_used;
  const float eps = hp_.rms_norm_eps;
  ops::Backend& be = *ctx.backend;
  ops::Workspace& ws = *ctx.workspace;
  std::vector<float>& z = ws.Buf(kRouterIn, T * H);
  std::vector<float>& h2 = ws.Buf(kExpertIn, T * H);
  std::vector<float>& logits = ws.Buf(kRouterLogits, T * E);
  be.RmsNorm(r, m.router_gain.data(), T, H, eps, z.data());
  be.RmsNorm(r, m.pre_norm_2.data(), T, H, eps, h2.data());
  be.MatMul(m.router, z.data(), T, logits.data());
  be.Softmax(logits.data(), T, E);
  // Per expert: the tokens routed to it (in token order) and their weights, as one list sorted
  // by expert (a counting sort over the T * K choices) in the workspace: no allocation.
  std::vector<int64_t>& ids = ws.Int64s(kExpertOrder, E);
  std::vector<int64_t>& choice = ws.Int64s(kChoiceExpert, T * K);
  std::vector<float>& choice_weight = ws.Buf(kChoiceWeight, T * K);
  std::vector<int64_t>& start = ws.Int64s(kExpertStart, E + 1);
  std::fill(start.begin(), start.end(), 0);
  for (int64_t t = 0; t < T; ++t) {
    const float* lt = &logits[t * E];
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + K, ids.end(),
                      [&](int64_t a, int64_t b) { return lt[a] != lt[b] ? lt[a] > lt[b] : a < b; });
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += lt[ids[k]];
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = ids[k];
      choice[t * K + k] = e;
      choice_weight[t * K + k] = static_cast<float>(lt[e] / sum) * m.expert_scale[e];
      ++start[e + 1];
    }
  }
  for (int64_t e = 0; e < E; ++e) start[e + 1] += start[e];
  std::vector<int64_t>& routed_token = ws.Int64s(kRoutedToken, T * K);
  std::vector<float>& routed_weight = ws.Buf(kRoutedWeight, T * K);
  std::vector<int64_t>& fill = ws.Int64s(kExpertFill, E);
  std::copy_n(start.begin(), E, fill.begin());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t slot = fill[choice[t * K + k]]++;
      routed_token[slot] = t;
      routed_weight[slot] = choice_weight[t * K + k];
    }
  }
  std::fill(out, out + T * H, 0.0f);
  std::vector<float>& xin = ws.Buf(kTokensIn, 0);
  std::vector<float>& y = ws.Buf(kTokensOut, 0);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t first = start[e];
    const int64_t n = start[e + 1] - first;
    if (n == 0) continue;
    xin.resize(static_cast<size_t>(n * H));
    for (int64_t i = 0; i < n; ++i) std::copy_n(&h2[routed_token[first + i] * H], H, &xin[i * H]);
    y.resize(static_cast<size_t>(n * H));
    Mlp(ctx, m.expert_gate[e], m.expert_up[e], m.expert_down[e], xin.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) {
      be.AddScaled(out + routed_token[first + i] * H, &y[i * H], routed_weight[first + i], H);
    }
  }
  be.RmsNorm(out, m.post_norm_2.data(), T, H, eps, out);
}

Status Gemma4::Forward(const Batch& batch, const KvView& kv, const ops::ForwardContext& in_ctx,
                       std::vector<float>* logits) const {
  logits->clear();
  GL_RETURN_IF_ERROR(ValidateBatch(hp_, batch, kv));
  ops::Workspace local;
  ops::ForwardContext ctx = in_ctx;  // with a workspace for the helpers below
  if (ctx.workspace == nullptr) ctx.workspace = &local;
  ops::Workspace& ws = *ctx.workspace;
  ops::Backend& be = *ctx.backend;
  const int64_t T = static_cast<int64_t>(batch.size());
  const int64_t H = hp_.hidden_size;
  const int64_t P = hp_.per_layer_input_size;
  const float eps = hp_.rms_norm_eps;
  const std::vector<int64_t>& positions = BatchPositions(batch, ws);
  std::vector<float>& x = ws.Buf(kX, T * H);  // x: [T, H], the residual stream
  EmbedTokens(ctx, ws, embed_, batch, &x);
  ctx.Dump("inp_embd", x.data(), T, H);
  std::vector<float>& ple = ws.Buf(kPle, 0);  // [T, L * P]
  if (P > 0) PerLayerInputs(ctx, batch, x.data(), &ple);
  std::vector<float>& h = ws.Buf(kH, T * H);
  std::vector<float>& branch = ws.Buf(kBranch, T * H);
  std::vector<float>& branch2 = ws.Buf(kBranch2, T * H);
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    const int64_t d = hp_.head_dim[l];
    const int64_t nkv_heads = hp_.n_kv_heads[l];
    const int64_t nq = hp_.n_heads * d;
    const int64_t nkv = nkv_heads * d;
    be.RmsNorm(x.data(), w.attn_norm.data(), T, H, eps, h.data());
    ctx.Dump("attn_norm", l, h.data(), T, H);
    std::vector<float>& q = ws.Buf(kQ, T * nq);  // q: [T, n_heads * d]
    be.MatMul(w.q, h.data(), T, q.data());
    NormRopeHeads(ctx, positions, hp_.n_heads, d, w.q_norm.data(), w.inv_freq, eps, q.data());
    ctx.Dump("Qcur", l, q.data(), T, nq);
    if (w.has_k) {
      // K = RoPE(norm_k(W_k h)); V = norm(W_v h), or of the raw K projection on K=V layers.
      std::vector<float>& k = ws.Buf(kK, T * nkv);
      std::vector<float>& v = ws.Buf(kV, T * nkv);
      be.MatMul(w.k, h.data(), T, k.data());
      if (w.has_v) {
        be.MatMul(w.v, h.data(), T, v.data());
      } else {
        v = k;
      }
      NormRopeHeads(ctx, positions, nkv_heads, d, w.k_norm.data(), w.inv_freq, eps, k.data());
      be.RmsNorm(v.data(), nullptr, T * nkv_heads, d, eps, v.data());
      ctx.Dump("Kcur", l, k.data(), T, nkv);
      ctx.Dump("Vcur", l, v.data(), T, nkv);
      WriteKv(kv, l, batch, k.data(), v.data());
    }
    std::vector<float>& attn = ws.Buf(kAttn, T * nq);
    CausalAttention(ctx, hp_, l, batch, q.data(), kv, attn.data());
    ctx.Dump("kqv_out", l, attn.data(), T, nq);
    be.MatMul(w.o, attn.data(), T, branch.data());
    be.RmsNorm(branch.data(), w.post_attn_norm.data(), T, H, eps, branch.data());
    be.Add(x.data(), branch.data(), T * H);
    ctx.Dump("ffn_inp", l, x.data(), T, H);
    be.RmsNorm(x.data(), w.ffn_norm.data(), T, H, eps, h.data());
    Mlp(ctx, w.gate, w.up, w.down, h.data(), T, branch.data());
    if (w.moe) {
      be.RmsNorm(branch.data(), w.experts.post_norm_1.data(), T, H, eps, branch.data());
      Experts(ctx, w, x.data(), T, branch2.data());
      ctx.Dump("ffn_moe_out", l, branch2.data(), T, H);
      be.Add(branch.data(), branch2.data(), T * H);
    }
    ctx.Dump("ffn_out", l, branch.data(), T, H);
    AddNormedBranch(ctx, w.post_ffw_norm.data(), eps, T, H, branch.data(), x.data());
    if (P > 0) {
      // x += post_norm(W_proj (gelu(W_gate x) * ple_l)); ple_l gathered to [T, P] first.
      std::vector<float>& g = ws.Buf(kPleGate, T * P);
      std::vector<float>& u = ws.Buf(kPleIn, T * P);
      for (int64_t t = 0; t < T; ++t) {
        std::copy_n(&ple[(t * hp_.n_layers + l) * P], P, &u[t * P]);
      }
      be.MatMul(w.ple_gate, x.data(), T, g.data());
      be.Gelu(g.data(), T * P);
      be.Mul(g.data(), u.data(), T * P);
      be.MatMul(w.ple_proj, g.data(), T, branch.data());
      AddNormedBranch(ctx, w.ple_post_norm.data(), eps, T, H, branch.data(), x.data());
    }
    if (w.layer_scale != 1.0f) be.Scale(x.data(), w.layer_scale, T * H);
    ctx.Dump("l_out", l, x.data(), T, H);
  }
  OutputLogits(ctx, hp_, lm_head_, output_norm_, batch, x.data(), logits);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma4(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend) {
  return LoadFamily<Gemma4>(std::move(checkpoint), backend);
}

}  // namespace gemma_local
