#include "model/tensor_names.h"

#include <gtest/gtest.h>

namespace gemma_local {
namespace {

TEST(TensorNames, HfToCanonical) {
  EXPECT_EQ(CanonicalNameFromHf("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(CanonicalNameFromHf("model.language_model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(CanonicalNameFromHf("language_model.model.layers.3.self_attn.q_proj.weight"), "blk.3.attn_q.weight");
  EXPECT_EQ(CanonicalNameFromHf("model.layers.12.post_feedforward_layernorm.weight"), "blk.12.post_ffw_norm.weight");
  EXPECT_EQ(CanonicalNameFromHf("model.language_model.layers.0.layer_scalar"), "blk.0.layer_output_scale.weight");
  EXPECT_EQ(CanonicalNameFromHf("model.language_model.layers.1.experts.gate_up_proj"), "blk.1.ffn_gate_up_exps.weight");
  EXPECT_EQ(CanonicalNameFromHf("lm_head.weight"), "output.weight");
  EXPECT_FALSE(CanonicalNameFromHf("model.vision_tower.vision_model.embeddings.patch_embedding.weight"));
  EXPECT_FALSE(CanonicalNameFromHf("model.layers.x.self_attn.q_proj.weight"));
  EXPECT_FALSE(CanonicalNameFromHf("model.layers.1.unknown.weight"));
  EXPECT_FALSE(CanonicalNameFromHf("embed_tokens.weight"));
}

TEST(TensorNames, CanonicalToHfRoundTrips) {
  for (const char* name : {"token_embd.weight", "blk.0.attn_k.weight", "blk.7.ffn_down_exps.scale",
                           "blk.2.inp_gate.weight", "per_layer_model_proj.weight"}) {
    auto hf = HfNameFromCanonical(name, "model.language_model.");
    ASSERT_TRUE(hf) << name;
    EXPECT_EQ(CanonicalNameFromHf(*hf), name);
  }
  EXPECT_FALSE(HfNameFromCanonical("rope_freqs.weight", "model."));
}

}  // namespace
}  // namespace gemma_local
