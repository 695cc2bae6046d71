// The real gemma-local binary, driven as a user would: `dev make-model`, then `inspect`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

CommandResult Cli(const std::string& args) { return RunCommand(BinaryPath() + " " + args); }

TEST(InspectCli, JsonContractOnBothLayouts) {
  TempDir dir;
  CommandResult made = Cli("dev make-model --out " + dir.path() + " --preset 4b-like --dtype f16 --seed 3");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  nlohmann::json by_layout[2];
  const std::string paths[2] = {dir.File("model.gguf"), dir.File("hf")};
  for (int i = 0; i < 2; ++i) {
    CommandResult r = Cli("inspect --json " + paths[i]);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    for (const char* key : {"architecture", "n_layers", "hidden_size", "n_heads", "n_kv_heads", "head_dim",
                            "ffn_size", "vocab_size", "sliding_window", "context_length", "n_params",
                            "tensor_types", "file_bytes", "has_tokenizer", "has_chat_template", "memory"}) {
      EXPECT_TRUE(j.contains(key)) << key;
    }
    for (const char* key : {"weights_f16", "weights_q8_0", "weights_q4_0", "kv_bytes_per_token"}) {
      EXPECT_TRUE(j["memory"].contains(key)) << key;
    }
    EXPECT_EQ(j["architecture"], "gemma3");
    EXPECT_EQ(j["n_layers"], 6);
    EXPECT_EQ(j["hidden_size"], 128);
    EXPECT_EQ(j["n_heads"], 8);
    EXPECT_EQ(j["n_kv_heads"], 4);
    EXPECT_EQ(j["head_dim"], 32);
    EXPECT_EQ(j["sliding_window"], 64);
    EXPECT_EQ(j["rope"]["linear_factor_full"], 8.0);
    by_layout[i] = j;
  }
  for (const char* key : {"n_params", "vocab_size", "memory"}) {
    if (std::string(key) == "memory") {
      by_layout[0]["memory"].erase("weights_as_stored");
      by_layout[1]["memory"].erase("weights_as_stored");
    }
    EXPECT_EQ(by_layout[0][key], by_layout[1][key]) << key;
  }
  EXPECT_EQ(by_layout[0]["tensor_types"]["f16"], by_layout[1]["tensor_types"]["f16"].get<int>() - 1 - 6 * 6)
      << "GGUF keeps output_norm and the 6 per-layer 1-D norms in f32";
}

// make-model keeps Gemma 4's heterogeneous layers (the llama.cpp consistency cases depend on it):
// full layers with their own head dim and KV-head count, and --layers cannot flatten them.
TEST(InspectCli, Gemma4PresetsKeepPerLayerShapes) {
  TempDir dir;
  CommandResult made = Cli("dev make-model --out " + dir.path() + " --preset g4-26b-like");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CommandResult r = Cli("inspect --json " + dir.File("model.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["layer_groups"].size(), 2u);
  EXPECT_EQ(j["layer_groups"][0]["layer_type"], "sliding");
  EXPECT_EQ(j["layer_groups"][0]["head_dim"], 32);
  EXPECT_EQ(j["layer_groups"][0]["n_kv_heads"], 2);
  EXPECT_EQ(j["layer_groups"][1]["layer_type"], "full");
  EXPECT_EQ(j["layer_groups"][1]["head_dim"], 64);
  EXPECT_EQ(j["layer_groups"][1]["n_kv_heads"], 1);
  CommandResult relayered = Cli("dev make-model --out " + dir.File("x") + " --preset g4-e2b-like --layers 4");
  EXPECT_EQ(relayered.exit_code, 2);
  EXPECT_NE(relayered.err.find("--layers cannot change a Gemma 4 preset"), std::string::npos) << relayered.err;
}

TEST(InspectCli, TextOutput) {
  TempDir dir;
  ASSERT_EQ(Cli("dev make-model --out " + dir.path() + " --preset g4-26b-like").exit_code, 0);
  CommandResult r = Cli("inspect " + dir.File("model.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("gemma4"), std::string::npos);
  EXPECT_NE(r.out.find("experts"), std::string::npos);
}

TEST(InspectCli, BadInputGivesMessageAndExitCodeNotSignal) {
  TempDir dir;
  testing::WriteFile(dir.File("junk.gguf"), std::string("GGUF\x03\x00\x00\x00", 8) + std::string(100, '\xff'));
  testing::WriteFile(dir.File("empty.gguf"), "");
  const std::string cases[] = {dir.File("junk.gguf"), dir.File("empty.gguf"), dir.File("missing.gguf"),
                               dir.path()};
  for (const std::string& path : cases) {
    CommandResult r = Cli("inspect --json " + path);
    EXPECT_FALSE(r.signaled) << path;
    EXPECT_EQ(r.exit_code, 1) << path;
    EXPECT_NE(r.err.find("error:"), std::string::npos) << path << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << path;
  }
  CommandResult usage = Cli("inspect");
  EXPECT_EQ(usage.exit_code, 2);
  CommandResult bad_preset = Cli("dev make-model --out " + dir.File("x") + " --preset nope");
  EXPECT_EQ(bad_preset.exit_code, 2);
  EXPECT_NE(bad_preset.err.find("nope"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local
