// `run`, `score` and `chat` driven through the real binary on a generated model.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CommandResult made =
        RunCommand(Bin() + " dev make-model --out " + dir_.path() + " --preset tiny");
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  TempDir dir_;
};

TEST_F(GenerateCli, PromptAndTokensAgree) {
  for (const std::string& model : {dir_.File("model.gguf"), dir_.File("hf")}) {
    testing::CommandResult a =
        RunCommand(Bin() + " run --json --max-tokens 6 --model " + model + " --prompt 'the model'");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    nlohmann::json ja = nlohmann::json::parse(a.out);
    EXPECT_EQ(ja["prompt_tokens"][0], 2) << "raw text gets <bos>";
    std::string ids;
    for (const auto& t : ja["prompt_tokens"])
      ids += (ids.empty() ? "" : ",") + std::to_string(t.get<int>());
    testing::CommandResult b =
        RunCommand(Bin() + " run --json --max-tokens 6 --model " + model + " --tokens " + ids);
    ASSERT_EQ(b.exit_code, 0) << b.err;
    nlohmann::json jb = nlohmann::json::parse(b.out);
    EXPECT_EQ(ja["tokens"], jb["tokens"]);
    EXPECT_TRUE(ja["text"].is_string());
    for (const char* k :
         {"prompt_ms", "prompt_tokens_per_s", "gen_ms", "gen_tokens_per_s", "peak_rss_bytes"}) {
      EXPECT_TRUE(ja["timings"].contains(k)) << k;
    }
  }
}

TEST_F(GenerateCli, StopStringEndsGenerationAndIsCut) {
  const std::string base = Bin() + " run --json --max-tokens 12 --model " +
                           dir_.File("model.gguf") + " --prompt 'the model'";
  nlohmann::json full = nlohmann::json::parse(RunCommand(base).out);
  const std::string text = full["text"];
  ASSERT_GE(text.size(), 4u) << text;
  const std::string stop = text.substr(2, 2);  // occurs in the unconstrained output
  testing::CommandResult r = RunCommand(base + " --stop '" + stop + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["text"], text.substr(0, text.find(stop)));
  EXPECT_LT(j["tokens"].size(), full["tokens"].size());
}

// `run --json-schema` and friends: the output is a complete value, the outcome is reported, and
// a schema the engine cannot enforce fails before generating, naming the keyword.
TEST_F(GenerateCli, StructuredOutputFlags) {
  std::ofstream(dir_.File("schema.json"))
      << R"({"type": "object", "properties": {"id": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["id", "tags"]})";
  const std::string base = Bin() + " run --json --max-tokens 40 --temperature 1 --seed 4 --model " +
                           dir_.File("model.gguf") + " --prompt 'the model'";
  testing::CommandResult r = RunCommand(base + " --json-schema " + dir_.File("schema.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["constraint"]["complete"], true);
  EXPECT_EQ(j["constraint"]["valid"], true);
  const nlohmann::json value = nlohmann::json::parse(j["text"].get<std::string>());
  EXPECT_GE(value["id"].get<int64_t>(), 1);
  testing::CommandResult choice = RunCommand(base + " --choice yes --choice no");
  ASSERT_EQ(choice.exit_code, 0) << choice.err;
  const std::string picked = nlohmann::json::parse(choice.out)["text"];
  EXPECT_TRUE(picked == "yes" || picked == "no") << picked;
  std::ofstream(dir_.File("bad.json")) << R"({"properties": {"h": {"format": "hostname"}}})";
  testing::CommandResult bad = RunCommand(base + " --json-schema " + dir_.File("bad.json"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("\"format\" at \"/properties/h\""), std::string::npos) << bad.err;
  testing::CommandResult two = RunCommand(base + " --json-object --regex a");
  EXPECT_NE(two.exit_code, 0);
}

TEST_F(GenerateCli, ChatPromptHasExactlyOneBos) {
  testing::CommandResult r = RunCommand(Bin() + " run --json --chat --max-tokens 4 --model " +
                                        dir_.File("hf") + " --prompt 'hello' --system 'be brief'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  const auto prompt = j["prompt_tokens"].get<std::vector<int>>();
  ASSERT_GE(prompt.size(), 2u);
  EXPECT_EQ(prompt[0], 2);
  EXPECT_NE(prompt[1], 2);
  EXPECT_NE(std::find(prompt.begin(), prompt.end(), 105), prompt.end())
      << "<start_of_turn> from the template";
}

TEST_F(GenerateCli, ScoreFromText) {
  testing::CommandResult r = RunCommand(Bin() + " score --json --top-k 3 --model " +
                                        dir_.File("model.gguf") + " --prompt 'hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["positions"].size(), j["tokens"].size());
  EXPECT_EQ(j["positions"][0]["top"].size(), 3u);
}

TEST_F(GenerateCli, ChatReadsStdinAndUnderstandsCommands) {
  testing::CommandResult r =
      RunCommand("printf 'hello\\n/system be nice\\nthe model\\n/reset\\n/exit\\n' | " + Bin() +
                 " chat --max-tokens 4 --model " + dir_.File("hf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(system message set"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(conversation cleared)"), std::string::npos) << r.out;
}

TEST_F(GenerateCli, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(RunCommand(Bin() + " run --chat --model " + dir_.File("hf")).exit_code, 2);
  EXPECT_EQ(RunCommand(Bin() + " run --model " + dir_.File("hf") + " --tokens 2,x").exit_code, 2);
  EXPECT_EQ(
      RunCommand(Bin() + " run --model " + dir_.File("hf") + " --tokens 2,3 --top-p 0").exit_code,
      2);
  testing::CommandResult big =
      RunCommand(Bin() + " run --model " + dir_.File("hf") + " --tokens 2,99999");
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("99999"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

// `score --dump-activations DIR`: every named intermediate of every forward call, with its shape,
// for Gemma 3 and Gemma 4 (PLE, KV sharing) models; the dumped logits are the scored ones.
TEST(DumpActivationsCli, WritesNamedIntermediatesWithShapes) {
  for (const char* preset : {"tiny", "g4-e2b-like"}) {
    TempDir dir;
    testing::CommandResult made = RunCommand(testing::BinaryPath() + " dev make-model --out " +
                                             dir.File("m") + " --preset " + preset);
    ASSERT_EQ(made.exit_code, 0) << made.err;
    testing::CommandResult r = RunCommand(
        testing::BinaryPath() + " score --json --top-k 1 --model " + dir.File("m/model.gguf") +
        " --tokens 2,300,301 --dump-activations " + dir.File("dump"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream index(testing::ReadFile(dir.File("dump/index.jsonl")));
    std::map<std::string, nlohmann::json> by_name;
    std::string line;
    while (std::getline(index, line)) {
      nlohmann::json j = nlohmann::json::parse(line);
      const std::string file = testing::ReadFile(dir.File("dump/" + j["file"].get<std::string>()));
      EXPECT_EQ(file.size(), j["rows"].get<size_t>() * j["cols"].get<size_t>() * 4) << line;
      by_name[j["name"]] = j;
    }
    for (const char* name : {"inp_embd", "attn_norm-0", "Qcur-0", "kqv_out-0", "ffn_inp-0",
                             "ffn_out-0", "l_out-0", "l_out-1", "result_norm", "result_output"}) {
      ASSERT_TRUE(by_name.count(name)) << preset << ": " << name;
      EXPECT_EQ(by_name[name]["rows"], 3) << name;
    }
    const nlohmann::json scores = nlohmann::json::parse(r.out);
    const nlohmann::json& out = by_name["result_output"];
    const std::string logits =
        testing::ReadFile(dir.File("dump/" + out["file"].get<std::string>()));
    // The best-scored id of position 0 is the arg-max of the dumped logits' first row.
    const auto* row = reinterpret_cast<const float*>(logits.data());
    const int64_t vocab = out["cols"];
    const int64_t best = std::max_element(row, row + vocab) - row;
    EXPECT_EQ(best, scores["positions"][0]["top"][0][0].get<int64_t>()) << preset;
  }
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

// Ctrl-C (SIGINT) during a streaming reply cancels it within a step: the reply ends with
// " [stopped]", the prompt comes back, and the session ends normally at end of input.
TEST(ChatCli, InterruptStopsAStreamingReply) {
  TempDir dir;
  testing::CommandResult made = RunCommand(testing::BinaryPath() + " dev make-model --out " +
                                           dir.File("m") + " --preset g4-e2b-like");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // --ignore-eos: the reply cannot end by itself before the signal (builds differ in rounding, so
  // a random model's greedy reply may otherwise end early in one of them).
  const std::string chat = testing::BinaryPath() +
                           " chat --ignore-eos --context 60000 --max-tokens 20000 --model " +
                           dir.File("m/model.gguf");
  const std::string out = dir.File("out"), err = dir.File("err");
  // The banner on stderr is printed once the SIGINT handler is installed (before that, SIGINT is
  // ignored: sh starts background jobs with it ignored). Then wait for the reply to stream, and
  // send SIGINT every half second until the process exits: one that lands between prompts is
  // cleared by design, so a single signal could race (an exited child stays a zombie until waited
  // for, so "still running" reads its state). Every wait is bounded; a process that survives all of
  // them is killed, so the test always ends by itself.
  const std::string script =
      "(printf 'hello\\n' | " + chat + " >" + out + " 2>" + err +
      " & pid=$!; i=0; while [ $i -lt 1200 ] && ! grep -q 'Ctrl-C stops a reply' " + err +
      "; do sleep 0.1; i=$((i+1)); done; i=0; while [ $i -lt 200 ] && [ \"$(wc -c <" + out +
      ")\" -lt 200 ]; do sleep 0.1; i=$((i+1)); done; i=0; while [ $i -lt 240 ] && [ -e /proc/$pid "
      "] && "
      "! grep -q '^State:[[:space:]]*Z' /proc/$pid/status 2>/dev/null; do kill -INT $pid; sleep "
      "0.5; "
      "i=$((i+1)); done; kill -KILL $pid 2>/dev/null; wait $pid)";
  testing::CommandResult r = RunCommand(script);
  const std::string text = testing::ReadFile(out);
  EXPECT_EQ(r.exit_code, 0) << testing::ReadFile(err);
  EXPECT_NE(text.find(" [stopped]\n> "), std::string::npos)
      << text.substr(text.size() > 400 ? text.size() - 400 : 0);
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

// The engine flags: the pool's budget (a request that can never fit is refused with sizes), the
// prefix cache that carries a chat conversation's KV into its next turn, bad values named.
TEST(EngineFlagsCli, KvBudgetPrefixCacheAndBadValues) {
  TempDir dir;
  testing::CommandResult made = RunCommand(testing::BinaryPath() + " dev make-model --out " +
                                           dir.File("m") + " --preset tiny");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string model = dir.File("m/model.gguf");
  const std::string run =
      testing::BinaryPath() + " run --model " + model + " --prompt 'the model' --max-tokens 50";
  testing::CommandResult tiny_pool = RunCommand(run + " --kv-budget 1KiB");
  EXPECT_EQ(tiny_pool.exit_code, 1) << tiny_pool.err;
  EXPECT_NE(tiny_pool.err.find("KiB of KV cache"), std::string::npos) << tiny_pool.err;
  EXPECT_EQ(RunCommand(run + " --kv-budget 4MiB --max-running 2").exit_code, 0);
  for (const std::string bad : {"--kv-budget 12XB", "--kv-budget 0", "--max-running -1"}) {
    testing::CommandResult r = RunCommand(run + " " + bad);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find(bad.substr(0, bad.find(' '))), std::string::npos) << r.err;
  }
  const std::string chat = testing::BinaryPath() + " chat --stats --max-tokens 8 --model " + model;
  testing::CommandResult turns =
      RunCommand("printf 'hello there, how are you today?\\nand tomorrow?\\n' | " + chat);
  ASSERT_EQ(turns.exit_code, 0) << turns.err;
  const size_t second = turns.err.find("[prompt", turns.err.find("[prompt") + 1);
  ASSERT_NE(second, std::string::npos) << turns.err;
  const std::string line = turns.err.substr(second, turns.err.find('\n', second) - second);
  EXPECT_EQ(line.find(", 0 from the cached conversation"), std::string::npos) << line;
  testing::CommandResult cold =
      RunCommand("printf 'hello there, how are you today?\\nand tomorrow?\\n' | " + chat +
                 " --no-prefix-cache");
  ASSERT_EQ(cold.exit_code, 0);
  EXPECT_EQ(cold.out, turns.out) << "the cached conversation replies exactly as one recomputed";
}

// --kv-type: every storage type runs; a bad name is a usage error naming the flag and the accepted
// types; q8_0 on heads that are not whole 32-element blocks is refused by the engine, by name.
TEST(EngineFlagsCli, KvType) {
  TempDir dir;
  const std::string bin = testing::BinaryPath();
  for (const char* preset : {"tiny", "all-global"}) {
    const std::string make = " dev make-model --out " + dir.File(preset) + " --preset " + preset;
    ASSERT_EQ(RunCommand(bin + make).exit_code, 0) << preset;
  }
  const std::string run = bin + " run --json --max-tokens 6 --tokens 2,300,301,302 --model ";
  for (const char* type : {"f16", "q8_0", "f32"}) {
    testing::CommandResult r = RunCommand(run + dir.File("tiny/model.gguf") + " --kv-type " + type);
    EXPECT_EQ(r.exit_code, 0) << type << ": " << r.err;
  }
  testing::CommandResult bad = RunCommand(run + dir.File("tiny/model.gguf") + " --kv-type q4_0");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--kv-type"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("f16, q8_0, f32"), std::string::npos) << bad.err;
  testing::CommandResult heads =
      RunCommand(run + dir.File("all-global/model.gguf") + " --kv-type q8_0");
  EXPECT_EQ(heads.exit_code, 2) << heads.err;
  EXPECT_NE(heads.err.find("q8_0"), std::string::npos) << heads.err;
  EXPECT_NE(heads.err.find("head_dim 16"), std::string::npos) << heads.err;
  EXPECT_EQ(RunCommand(run + dir.File("all-global/model.gguf")).exit_code, 0)
      << "f16 (the default) fits";
}

}  // namespace
}  // namespace gemma_local
