#include "model/tensor_table.h"

namespace gemma_local {

std::vector<ExpectedTensor> ExpectedDecoderTensors(const HParams& hp) {
  const bool g4 = hp.family == ModelFamily::kGemma4;
  const int64_t H = hp.hidden_size;
  const int64_t P = hp.per_layer_input_size;
  const int64_t L = hp.n_layers;
  std::vector<ExpectedTensor> t;
  auto add = [&](std::string name, std::vector<int64_t> ne, TensorRole role, bool required = true) {
    t.push_back({std::move(name), std::move(ne), role, required});
  };
  add("token_embd.weight", {H, hp.vocab_size}, TensorRole::kEmbedding);
  add("output_norm.weight", {H}, TensorRole::kNorm);
  add("output.weight", {H, hp.vocab_size}, TensorRole::kMatrix, /*required=*/false);
  if (g4) {
    int64_t full_dim = 0;
    for (int64_t i = 0; i < L; ++i) {
      if (!hp.is_sliding(i)) full_dim = hp.head_dim[i];
    }
    if (full_dim > 0) add("rope_freqs.weight", {full_dim / 2}, TensorRole::kScale, /*required=*/false);
  }
  if (g4 && P > 0) {
    add("per_layer_token_embd.weight", {L * P, hp.per_layer_vocab_size}, TensorRole::kEmbedding);
    add("per_layer_model_proj.weight", {H, L * P}, TensorRole::kMatrix);
    add("per_layer_proj_norm.weight", {P}, TensorRole::kNorm);
  }
  for (int64_t i = 0; i < L; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const int64_t d = hp.head_dim[i];
    const int64_t q = hp.n_heads * d;
    const int64_t kv = hp.n_kv_heads[i] * d;
    const int64_t ff = hp.ffn_size[i];
    const bool owns = hp.owns_kv(i);
    add(b + "attn_norm.weight", {H}, TensorRole::kNorm);
    add(b + "attn_q.weight", {H, q}, TensorRole::kMatrix);
    add(b + "attn_k.weight", {H, kv}, TensorRole::kMatrix, owns);
    if (hp.has_v_proj[i]) add(b + "attn_v.weight", {H, kv}, TensorRole::kMatrix, owns);
    add(b + "attn_k_norm.weight", {d}, TensorRole::kNorm, owns);
    add(b + "attn_output.weight", {q, H}, TensorRole::kMatrix);
    add(b + "attn_q_norm.weight", {d}, TensorRole::kNorm);
    add(b + "post_attention_norm.weight", {H}, TensorRole::kPostNorm);
    add(b + "ffn_norm.weight", {H}, TensorRole::kNorm);
    add(b + "ffn_gate.weight", {H, ff}, TensorRole::kMatrix);
    add(b + "ffn_up.weight", {H, ff}, TensorRole::kMatrix);
    add(b + "ffn_down.weight", {ff, H}, TensorRole::kMatrix);
    add(b + "post_ffw_norm.weight", {H}, TensorRole::kPostNorm);
    if (!g4) continue;
    if (hp.n_experts > 0) {
      const int64_t E = hp.n_experts;
      const int64_t fe = hp.expert_ffn_size;
      add(b + "post_ffw_norm_1.weight", {H}, TensorRole::kPostNorm);
      add(b + "pre_ffw_norm_2.weight", {H}, TensorRole::kNorm);
      add(b + "post_ffw_norm_2.weight", {H}, TensorRole::kPostNorm);
      add(b + "ffn_gate_inp.weight", {H, E}, TensorRole::kMatrix);
      add(b + "ffn_gate_inp.scale", {H}, TensorRole::kScale);
      add(b + "ffn_down_exps.scale", {E}, TensorRole::kScale);
      // Fused gate/up (as HF and llama.cpp's converter store it) or the split pair; checkpoint
      // validation requires one of the two forms.
      add(b + "ffn_gate_up_exps.weight", {H, 2 * fe, E}, TensorRole::kMatrix, /*required=*/false);
      add(b + "ffn_gate_exps.weight", {H, fe, E}, TensorRole::kMatrix, /*required=*/false);
      add(b + "ffn_up_exps.weight", {H, fe, E}, TensorRole::kMatrix, /*required=*/false);
      add(b + "ffn_down_exps.weight", {fe, H, E}, TensorRole::kMatrix);
    }
    if (P > 0) {
      add(b + "inp_gate.weight", {H, P}, TensorRole::kMatrix);
      add(b + "proj.weight", {P, H}, TensorRole::kMatrix);
      add(b + "post_norm.weight", {H}, TensorRole::kPostNorm);
    }
    add(b + "layer_output_scale.weight", {1}, TensorRole::kLayerScalar, /*required=*/false);
  }
  return t;
}

}  // namespace gemma_local
