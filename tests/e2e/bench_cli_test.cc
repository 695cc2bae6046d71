// `gemma-local bench` through the real binary on a tiny generated model: the JSON contract, sane
// numbers, and errors for bad flags and bad models. Speed itself is not judged here.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CommandResult made =
        RunCommand(Bin() + " dev make-model --out " + dir_.path() + " --preset tiny");
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  // A short run: small prompt, 16 MiB bandwidth buffer (the default 1 GiB is for real runs).
  std::string Short(const std::string& model) const {
    return Bin() + " bench --model " + model +
           " --prompt-tokens 8 --gen-tokens 4 --repetitions 1 --threads 2 --bandwidth-bytes "
           "16777216"
           " --bandwidth-passes 2";
  }
  TempDir dir_;
};

TEST_F(BenchCli, JsonHasTheContractKeysWithSaneValues) {
  for (const std::string& model : {dir_.File("model.gguf"), dir_.File("hf")}) {
    testing::CommandResult r = RunCommand(Short(model) + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    for (const char* key :
         {"prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "peak_rss_bytes",
          "bandwidth_gb_per_s", "decode_bandwidth_share", "model_bytes_per_token"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_number()) << model << ": " << key << " in " << r.out;
      const double v = j[key].get<double>();
      EXPECT_TRUE(std::isfinite(v) && v > 0) << model << ": " << key << " = " << v;
    }
    EXPECT_EQ(j["prompt_tokens"], 8);
    EXPECT_EQ(j["gen_tokens"], 4);
    EXPECT_EQ(j["threads"], 2);
    EXPECT_EQ(j["runs"].size(), 1u);
    // The tiny model's weights are a few hundred KiB; the tied LM head (the embedding) is counted.
    EXPECT_GT(j["model_bytes_per_token"].get<double>(), 1e4);
    EXPECT_LT(j["model_bytes_per_token"].get<double>(), 1e8);
    EXPECT_GT(j["peak_rss_bytes"].get<double>(), 1e6);
    EXPECT_LT(j["peak_rss_bytes"].get<double>(), 1e10);
    EXPECT_LT(j["bandwidth_gb_per_s"].get<double>(), 1e4);
  }
}

TEST_F(BenchCli, SamePromptForBothLayoutsAndSeeds) {
  auto checksum = [&](const std::string& model, const std::string& extra) {
    testing::CommandResult r = RunCommand(Short(model) + " --json" + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["prompt_checksum"].get<uint32_t>();
  };
  const uint32_t gguf = checksum(dir_.File("model.gguf"), "");
  EXPECT_EQ(gguf, checksum(dir_.File("hf"), ""));
  EXPECT_NE(gguf, checksum(dir_.File("model.gguf"), " --seed 7"));
}

TEST_F(BenchCli, TextReport) {
  testing::CommandResult r = RunCommand(Short(dir_.File("model.gguf")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* word : {"prefill", "decode", "time to first", "peak RSS", "bandwidth"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " in " << r.out;
  }
}

TEST_F(BenchCli, BadFlagsExitTwo) {
  const std::string model = " --model " + dir_.File("model.gguf");
  for (const std::string& flags :
       {model + " --gen-tokens 1", model + " --prompt-tokens 0", model + " --repetitions 0",
        model + " --threads -1", model + " --bandwidth-bytes 1000", model + " --prompt-tokens abc",
        model + " --no-such-flag", std::string(" --prompt-tokens 8")}) {
    testing::CommandResult r = RunCommand(Bin() + " bench" + flags);
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << flags;
  }
}

TEST_F(BenchCli, BadModelExitsOne) {
  testing::WriteFile(dir_.File("junk.gguf"), "not a gguf file at all");
  for (const std::string& model : {dir_.File("missing.gguf"), dir_.File("junk.gguf")}) {
    testing::CommandResult r = RunCommand(Short(model) + " --json");
    EXPECT_EQ(r.exit_code, 1) << model << ": " << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

}  // namespace
}  // namespace gemma_local
