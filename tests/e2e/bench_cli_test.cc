// `gemma-local bench` through the real binary on a tiny generated model: the JSON contract, sane
// numbers, and errors for bad flags and bad models. Speed itself is not judged here.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
    EXPECT_EQ(j["kv_type"], "f16");
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

// --kv-type reaches the engine in both modes and is reported.
TEST_F(BenchCli, KvTypeInBothModes) {
  testing::CommandResult single =
      RunCommand(Short(dir_.File("model.gguf")) + " --json --kv-type f32");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_EQ(nlohmann::json::parse(single.out)["kv_type"], "f32");
  testing::CommandResult serving = RunCommand(
      Bin() + " bench --model " + dir_.File("model.gguf") +
      " --concurrency 2 --gen-tokens 3 --prompt-tokens 6 --threads 2 --kv-type q8_0 --json");
  ASSERT_EQ(serving.exit_code, 0) << serving.err;
  const nlohmann::json j = nlohmann::json::parse(serving.out);
  EXPECT_EQ(j["kv_type"], "q8_0");
  EXPECT_EQ(j["levels"][0]["decode_tokens"], 4);
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

// --concurrency: the serving benchmark's JSON contract, one object per level.
TEST_F(BenchCli, ConcurrencyJsonHasOneObjectPerLevel) {
  testing::CommandResult r = RunCommand(Bin() + " bench --model " + dir_.File("model.gguf") +
                                        " --concurrency 1,3 --gen-tokens 4 --prompt-tokens 8"
                                        " --shared-prefix 4 --threads 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens"], 8);
  EXPECT_EQ(j["gen_tokens"], 4);
  EXPECT_EQ(j["shared_prefix"], 4);
  ASSERT_TRUE(j.contains("levels") && j["levels"].is_array()) << r.out;
  ASSERT_EQ(j["levels"].size(), 2u) << r.out;
  const int expected_concurrency[] = {1, 3};
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& level = j["levels"][i];
    for (const char* key : {"concurrency", "aggregate_decode_tokens_per_s", "ttft_ms_p50",
                            "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99", "peak_rss_bytes"}) {
      ASSERT_TRUE(level.contains(key) && level[key].is_number()) << key << " in " << level;
      const double v = level[key].get<double>();
      EXPECT_TRUE(std::isfinite(v) && v > 0) << key << " = " << v;
    }
    EXPECT_EQ(level["concurrency"], expected_concurrency[i]);
    EXPECT_EQ(j["kv_type"], "f16");
    EXPECT_GE(level["ttft_ms_p99"].get<double>(), level["ttft_ms_p50"].get<double>()) << level;
    EXPECT_GE(level["itl_ms_p99"].get<double>(), level["itl_ms_p50"].get<double>()) << level;
    EXPECT_GT(level["peak_rss_bytes"].get<double>(), 1e6);
    EXPECT_LT(level["peak_rss_bytes"].get<double>(), 1e10);
    // Every request generated exactly 4 ids: 3 after its first.
    EXPECT_EQ(level["decode_tokens"], 3 * expected_concurrency[i]) << level;
    EXPECT_GE(level["forward_calls"].get<int64_t>(), 4) << level;
  }
}

// --long-prompt: one more request arrives beside the streams; its TTFT and the streams' latency
// meanwhile are reported, and the level's own figures still count the C clients only.
TEST_F(BenchCli, LongPromptReportsItsTtftAndTheStreamsLatencyMeanwhile) {
  testing::CommandResult r = RunCommand(Bin() + " bench --model " + dir_.File("model.gguf") +
                                        " --concurrency 2 --gen-tokens 12 --prompt-tokens 6"
                                        " --long-prompt 40 --max-batch 8 --threads 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["long_prompt"], 40);
  const nlohmann::json& level = j["levels"][0];
  EXPECT_EQ(level["decode_tokens"], 2 * 11) << level;
  EXPECT_GT(level["long_prompt_ttft_ms"].get<double>(), 0) << level;
  EXPECT_GE(level["itl_during_long_prompt_count"].get<int64_t>(), 0) << level;
  EXPECT_GE(level["itl_during_long_prompt_ms_p99"].get<double>(),
            level["itl_during_long_prompt_ms_p50"].get<double>())
      << level;
  r = RunCommand(Bin() + " bench --model " + dir_.File("model.gguf") + " --long-prompt 40");
  EXPECT_EQ(r.exit_code, 2) << "--long-prompt needs --concurrency";
}

// --warm-prefix: the shared prefix runs once first (its TTFT reported), and the client finds it
// cached.
TEST_F(BenchCli, WarmPrefixRunsThePrefixFirstAndTheClientReusesIt) {
  testing::CommandResult r = RunCommand(Bin() + " bench --model " + dir_.File("model.gguf") +
                                        " --concurrency 1 --gen-tokens 3 --prompt-tokens 40"
                                        " --shared-prefix 36 --warm-prefix --threads 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["warm_prefix"], true);
  const nlohmann::json& level = j["levels"][0];
  EXPECT_GT(level["prefix_cold_ttft_ms"].get<double>(), 0) << level;
  EXPECT_EQ(level["cached_prompt_tokens"], 32) << "two full 16-row blocks of the 36 shared ids";
}

TEST_F(BenchCli, ConcurrencyTextTable) {
  testing::CommandResult r = RunCommand(Bin() + " bench --model " + dir_.File("model.gguf") +
                                        " --concurrency 2 --gen-tokens 3 --prompt-tokens 6"
                                        " --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* word : {"concurrency", "decode tok/s", "TTFT p99", "ITL p50", "peak RSS"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " in " << r.out;
  }
}

TEST_F(BenchCli, BadConcurrencyFlagsExitTwoNamingTheFlag) {
  const std::string model = " --model " + dir_.File("model.gguf");
  struct Case {
    std::string flags;
    std::string names;  // the flag the message must name
  };
  for (const Case& c : std::vector<Case>{
           {" --concurrency 0", "--concurrency"},
           {" --concurrency ''", "--concurrency"},
           {" --concurrency 1,,4", "--concurrency"},
           {" --concurrency 1,x", "--concurrency"},
           {" --concurrency -2", "--concurrency"},
           {" --concurrency 2000", "--concurrency"},
           {" --concurrency 2 --prompt-tokens 0", "--prompt-tokens"},
           {" --concurrency 2 --prompt-tokens 1", "--prompt-tokens"},
           {" --concurrency 2 --gen-tokens 1", "--gen-tokens"},
           {" --concurrency 2 --prompt-tokens 8 --shared-prefix 8", "--shared-prefix"},
           {" --concurrency 2 --shared-prefix -1", "--shared-prefix"},
           {" --concurrency 2 --max-batch 0", "--max-batch"},
           {" --concurrency 2 --kv-budget lots", "--kv-budget"},
           {" --concurrency 2 --kv-budget 0", "--kv-budget"},
           {" --concurrency 2 --kv-type f8", "--kv-type"},
           {" --kv-type Q8_0", "--kv-type"},
           {" --no-prefix-cache", "--no-prefix-cache"},
           {" --shared-prefix 4", "--shared-prefix"},
           {" --concurrency 2 --repetitions 2", "--repetitions"}}) {
    testing::CommandResult r = RunCommand(Bin() + " bench" + model + c.flags);
    EXPECT_EQ(r.exit_code, 2) << c.flags << ": " << r.err;
    EXPECT_NE(r.err.find(c.names), std::string::npos) << c.flags << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.flags << ": " << r.out;
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
