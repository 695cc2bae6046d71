// config.json -> HParams: real Gemma 3 / Gemma 4 config shapes, transformers defaults, v5 keys,
// and errors that name the field.
#include "model/hf_config.h"

#include <cmath>

#include <gtest/gtest.h>

namespace gemma_local {
namespace {

using nlohmann::json;

HParams Parse(const json& config) {
  Result<HParams> hp = HParamsFromConfigJson(config, "config.json");
  EXPECT_TRUE(hp.ok()) << hp.status().ToString();
  return hp.ok() ? *hp : HParams{};
}

std::string ErrorOf(const json& config) {
  Result<HParams> hp = HParamsFromConfigJson(config, "config.json");
  EXPECT_FALSE(hp.ok());
  return hp.ok() ? "" : hp.status().message();
}

json Gemma3_1B() {
  return {{"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"},
          {"hidden_size", 1152}, {"intermediate_size", 6912}, {"num_hidden_layers", 26},
          {"num_attention_heads", 4}, {"num_key_value_heads", 1}, {"head_dim", 256},
          {"max_position_embeddings", 32768}, {"query_pre_attn_scalar", 256},
          {"sliding_window", 512}, {"sliding_window_pattern", 6}, {"rope_scaling", nullptr},
          {"rope_theta", 1000000.0}, {"rope_local_base_freq", 10000.0}, {"vocab_size", 262144},
          {"hidden_activation", "gelu_pytorch_tanh"}, {"final_logit_softcapping", nullptr}};
}

TEST(HfConfig, Gemma3OneBillion) {
  HParams hp = Parse(Gemma3_1B());
  EXPECT_EQ(hp.family, ModelFamily::kGemma3);
  EXPECT_EQ(hp.n_layers, 26);
  EXPECT_EQ(hp.vocab_size, 262144);
  EXPECT_EQ(hp.sliding_window, 512);
  EXPECT_FLOAT_EQ(hp.attention_scale, 0.0625f);
  EXPECT_EQ(hp.n_full_layers(), 4);
  for (int64_t i = 0; i < 26; ++i) EXPECT_EQ(hp.is_sliding(i), (i + 1) % 6 != 0) << i;
  EXPECT_FALSE(hp.final_logit_softcap.has_value());
  EXPECT_EQ(hp.rope_full.theta, 1e6f);
  EXPECT_EQ(hp.rope_sliding.theta, 1e4f);
  EXPECT_EQ(hp.rope_full.linear_factor, 1.0f);
  for (int64_t i = 0; i < 26; ++i) EXPECT_TRUE(hp.owns_kv(i));
}

TEST(HfConfig, Gemma3TwentySevenBWrappedWithDefaults) {
  // The hub text_config lists only non-default keys; everything else is Gemma3TextConfig's.
  json config = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"model_type", "gemma3"},
                 {"text_config", {{"head_dim", 128}, {"hidden_size", 5376}, {"intermediate_size", 21504},
                                  {"model_type", "gemma3_text"}, {"num_attention_heads", 32},
                                  {"num_hidden_layers", 62}, {"num_key_value_heads", 16},
                                  {"query_pre_attn_scalar", 168}, {"rope_scaling", {{"factor", 8.0}, {"rope_type", "linear"}}},
                                  {"sliding_window", 1024}}},
                 {"eos_token_id", {1, 106}}};
  HParams hp = Parse(config);
  EXPECT_EQ(hp.n_layers, 62);
  EXPECT_EQ(hp.head_dim[0], 128);
  EXPECT_FLOAT_EQ(hp.attention_scale, static_cast<float>(1.0 / std::sqrt(168.0)));
  EXPECT_EQ(hp.vocab_size, 262208);  // default
  EXPECT_EQ(hp.rope_full.linear_factor, 8.0f);
  EXPECT_EQ(hp.rope_sliding.linear_factor, 1.0f);  // scaling applies to global layers only
  EXPECT_EQ(hp.context_length, 131072);
  EXPECT_TRUE(hp.is_sliding(60));
  EXPECT_TRUE(hp.is_sliding(61));
  EXPECT_FALSE(hp.is_sliding(59));
}

TEST(HfConfig, Gemma3AllDefaults) {
  HParams hp = Parse({{"model_type", "gemma3"}});
  EXPECT_EQ(hp.n_layers, 26);
  EXPECT_EQ(hp.hidden_size, 2304);
  EXPECT_EQ(hp.ffn_size[0], 9216);
  EXPECT_EQ(hp.n_heads, 8);
  EXPECT_EQ(hp.n_kv_heads[0], 4);
  EXPECT_EQ(hp.sliding_window, 4096);
  EXPECT_FLOAT_EQ(hp.rms_norm_eps, 1e-6f);
}

TEST(HfConfig, Gemma3V5KeysMatchLegacyKeys) {
  json legacy = Gemma3_1B();
  legacy["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  json v5 = Gemma3_1B();
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  v5.erase("rope_local_base_freq");
  v5.erase("sliding_window_pattern");
  v5["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
                           {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  json types = json::array();
  for (int i = 0; i < 26; ++i) types.push_back((i + 1) % 6 ? "sliding_attention" : "full_attention");
  v5["layer_types"] = types;
  EXPECT_EQ(Parse(legacy), Parse(v5));
}

TEST(HfConfig, Gemma3NullWindowMeansAllGlobal) {
  json c = Gemma3_1B();
  c["sliding_window"] = nullptr;
  HParams hp = Parse(c);
  EXPECT_EQ(hp.sliding_window, 0);
  EXPECT_EQ(hp.n_full_layers(), 26);
}

json Gemma4Text(const std::string& variant) {
  json t = {{"model_type", "gemma4_text"}, {"final_logit_softcapping", 30.0}};
  json types = json::array();
  if (variant == "e2b") {
    t.update({{"hidden_size", 1536}, {"intermediate_size", 6144}, {"num_hidden_layers", 35},
              {"num_attention_heads", 8}, {"num_key_value_heads", 1}, {"num_kv_shared_layers", 20},
              {"use_double_wide_mlp", true}, {"hidden_size_per_layer_input", 256}});
    for (int i = 0; i < 35; ++i) types.push_back((i + 1) % 5 ? "sliding_attention" : "full_attention");
  } else {  // 31b
    t.update({{"hidden_size", 5376}, {"intermediate_size", 21504}, {"num_hidden_layers", 60},
              {"num_attention_heads", 32}, {"num_key_value_heads", 16}, {"num_global_key_value_heads", 4},
              {"attention_k_eq_v", true}, {"hidden_size_per_layer_input", 0}, {"sliding_window", 1024},
              {"max_position_embeddings", 262144}});
    for (int i = 0; i < 60; ++i) types.push_back((i + 1) % 6 ? "sliding_attention" : "full_attention");
  }
  t["layer_types"] = types;
  return {{"architectures", {"Gemma4ForConditionalGeneration"}}, {"model_type", "gemma4"}, {"text_config", t}};
}

TEST(HfConfig, Gemma4E2BSharingAndDoubleWide) {
  HParams hp = Parse(Gemma4Text("e2b"));
  EXPECT_EQ(hp.family, ModelFamily::kGemma4);
  EXPECT_FLOAT_EQ(hp.attention_scale, 1.0f);
  EXPECT_EQ(hp.final_logit_softcap, 30.0f);
  EXPECT_EQ(hp.per_layer_input_size, 256);
  EXPECT_EQ(hp.vocab_size, 262144);
  EXPECT_EQ(hp.sliding_window, 512);
  for (int64_t i = 0; i < 15; ++i) {
    EXPECT_TRUE(hp.owns_kv(i)) << i;
    EXPECT_EQ(hp.ffn_size[i], 6144) << i;
  }
  for (int64_t i = 15; i < 35; ++i) {
    EXPECT_EQ(hp.kv_source[i], hp.is_sliding(i) ? 13 : 14) << i;
    EXPECT_EQ(hp.ffn_size[i], 12288) << i;
  }
  EXPECT_EQ(hp.head_dim[0], 256);
  EXPECT_EQ(hp.head_dim[4], 512);
  EXPECT_EQ(hp.rope_full.partial_rotary_factor, 0.25f);
  EXPECT_EQ(hp.rope_full.theta, 1e6f);
}

TEST(HfConfig, Gemma4ThirtyOneBKEqualsV) {
  HParams hp = Parse(Gemma4Text("31b"));
  EXPECT_EQ(hp.n_kv_heads[0], 16);
  EXPECT_EQ(hp.n_kv_heads[5], 4);
  EXPECT_TRUE(hp.has_v_proj[0]);
  EXPECT_FALSE(hp.has_v_proj[5]);
  EXPECT_EQ(hp.per_layer_input_size, 0);
  EXPECT_EQ(hp.context_length, 262144);
}

TEST(HfConfig, Gemma4LastLayerForcedFull) {
  json c = Gemma4Text("31b");
  c["text_config"]["layer_types"][59] = "sliding_attention";
  EXPECT_FALSE(Parse(c).is_sliding(59));
}

TEST(HfConfig, Gemma4MoE) {
  json c = Gemma4Text("31b");
  c["text_config"].update({{"enable_moe_block", true}, {"num_experts", 128}, {"top_k_experts", 8},
                           {"moe_intermediate_size", 704}});
  HParams hp = Parse(c);
  EXPECT_EQ(hp.n_experts, 128);
  EXPECT_EQ(hp.n_experts_used, 8);
  EXPECT_EQ(hp.expert_ffn_size, 704);
  c["text_config"].erase("num_experts");
  EXPECT_NE(ErrorOf(c).find("enable_moe_block"), std::string::npos);
}

TEST(HfConfig, ErrorsNameTheField) {
  json c = Gemma3_1B();
  c["hidden_size"] = "wide";
  EXPECT_NE(ErrorOf(c).find("hidden_size: expected an integer, got string"), std::string::npos);
  json w = {{"model_type", "gemma3"}, {"text_config", {{"num_hidden_layers", true}}}};
  EXPECT_NE(ErrorOf(w).find("text_config.num_hidden_layers"), std::string::npos);
  json m = Gemma3_1B();
  m["model_type"] = "llama";
  EXPECT_NE(ErrorOf(m).find("llama"), std::string::npos);
  json a = Gemma3_1B();
  a["hidden_activation"] = "silu";
  EXPECT_NE(ErrorOf(a).find("silu"), std::string::npos);
  json r = Gemma3_1B();
  r["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(ErrorOf(r).find("yarn"), std::string::npos);
  json l = Gemma3_1B();
  l["layer_types"] = {"full_attention"};
  EXPECT_NE(ErrorOf(l).find("layer_types"), std::string::npos);
  json h = Gemma3_1B();
  h["num_key_value_heads"] = 3;
  EXPECT_NE(ErrorOf(h).find("n_kv_heads"), std::string::npos);
  EXPECT_FALSE(HParamsFromConfigJson(json::array(), "config.json").ok());
}

TEST(HfConfig, RoundTripThroughEmitter) {
  for (const json& c : {Gemma3_1B(), Gemma4Text("e2b"), Gemma4Text("31b")}) {
    HParams hp = Parse(c);
    EXPECT_EQ(Parse(ConfigJsonFromHParams(hp, HfConfigLayout::kCausalLm)), hp);
    EXPECT_EQ(Parse(ConfigJsonFromHParams(hp, HfConfigLayout::kConditionalGeneration)), hp);
  }
}

}  // namespace
}  // namespace gemma_local
