// Gemma 3 and Gemma 4 forward passes against llama.cpp (node-llama-cpp 3.21.1) on generated
// random-weight models that keep each variant's structure, with the inference issues' criteria: the same argmax wherever llama.cpp's top-2 gap
// exceeds 1e-3, mean |delta log-prob| over llama.cpp's top-10 below 0.02 (f32), identical greedy
// continuations, and the HF layout scoring the same as the GGUF (|delta| < 1e-4 in f32).
// Quantized cases (issue 5): the f32 GGUF is quantized with `gemma-local quantize`; llama.cpp
// quantizes activations to 8 bits too, but per 256 elements where we use 32 for some types, so
// log-probs differ more. On these random models (sharp logits) 8-bit activations alone move
// log-probs by ~0.15-0.2 on average, for llama.cpp as for us (each measured against the exact f32
// product with the same dequantized weights), so: argmax must agree where llama.cpp's top-2 gap
// exceeds 0.5 (two independent noise sources of ~0.06-0.2 each), mean |delta| below 0.35 (a
// misread block format gives > 1), and the HF checkpoint quantized at load time (--quantize) must score like the quantized GGUF. The SIMD kernels are
// checked tightly against the scalar reference in tests/backends.
//
// KV cache: llama.cpp's own default cache type is f16, but the harness (llama_ref.mjs) pins its
// cache to f32 by default so that these thresholds measure the forward pass, not cache rounding;
// our commands therefore run with --kv-type f32 too (our default is f16, like llama.cpp's). The
// f16 and q8_0 caches are checked against the reference attention on the same stored rows in
// tests/backends/attention_test.cc.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <ostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using nlohmann::json;
using testing::RunCommand;
using testing::TempDir;

std::string Harness() { return testing::SourceDir() + "/tests/reference/llama_ref.mjs"; }
bool HarnessInstalled() {
  return std::filesystem::exists(testing::SourceDir() + "/tests/reference/node_modules/node-llama-cpp") &&
         RunCommand("node --version").exit_code == 0;
}

struct Case {
  std::string name;
  std::string make_args;  // for `dev make-model`
  int n_tokens;           // prompt length (longer than the sliding window)
  std::string dtype;
  std::string quantize = "";  // a `gemma-local quantize --type` mix, or empty
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

json RunJson(const std::string& cmd) {
  testing::CommandResult r = RunCommand(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
  return r.exit_code == 0 ? json::parse(r.out) : json();
}

std::string TokenList(int n, int vocab, uint32_t seed) {
  std::string s = "2";  // <bos>
  uint32_t x = seed;
  for (int i = 1; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s += "," + std::to_string(300 + (x >> 8) % static_cast<uint32_t>(vocab - 300));
  }
  return s;
}

// Every projection 256 wide or a multiple (whole K-quant super-blocks, no fallback types).
constexpr char kK256[] = "--preset tiny --hidden 256 --ffn 512 --heads 2 --kv-heads 1 --head-dim 128 --layers 4 --seed 36";

class DecoderVsLlamaCpp : public ::testing::TestWithParam<Case> {};

TEST_P(DecoderVsLlamaCpp, LogitsAndGreedyMatch) {
  GL_REQUIRE_REFERENCE(HarnessInstalled(), "llama.cpp reference harness not installed (run scripts/setup.sh)");
  const Case& c = GetParam();
#if defined(__SANITIZE_ADDRESS__)
  // Under the sanitizers every run is ~5x slower; two quantized cases cover the code there.
  if (!c.quantize.empty() && c.name != "k256_q4_k_m" && c.name != "1b_like_q4_0") {
    GTEST_SKIP() << "quantized case covered by the Release build (sanitizer build runs two)";
  }
#endif
  TempDir dir;
  const std::string bin = testing::BinaryPath();
  testing::CommandResult made =
      RunCommand(bin + " dev make-model --out " + dir.path() + " --dtype " + c.dtype + " " + c.make_args);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string tokens = TokenList(c.n_tokens, 512, 12345);
  std::string gguf = dir.File("model.gguf");
  std::string hf = dir.File("hf");
  const bool quantized = !c.quantize.empty();
  if (quantized) {
    testing::CommandResult q =
        RunCommand(bin + " quantize " + gguf + " " + dir.File("q.gguf") + " --type " + c.quantize);
    ASSERT_EQ(q.exit_code, 0) << q.err;
    gguf = dir.File("q.gguf");
    hf += " --quantize " + c.quantize;
  }
  const double clear_gap = quantized ? 0.5 : 1e-3;
  const int vocab = 512;
  const std::string score =
      bin + " score --kv-type f32 --json --top-k " + std::to_string(vocab) + " --model ";
  json ours = RunJson(score + gguf + " --tokens " + tokens);
  json ours_hf = RunJson(score + hf + " --tokens " + tokens);
  json ref = RunJson("node " + Harness() + " --model " + gguf + " --top-k 10 --tokens " + tokens);
  ASSERT_FALSE(ours.is_null() || ours_hf.is_null() || ref.is_null());
  ASSERT_EQ(ours["positions"].size(), ref["positions"].size());

  double sum_abs = 0;
  int n_terms = 0, clear = 0, argmax_ok = 0;
  for (size_t i = 0; i < ref["positions"].size(); ++i) {
    std::map<int, double> mine;
    for (const auto& e : ours["positions"][i]["top"]) mine[e[0].get<int>()] = e[1].get<double>();
    const json& top = ref["positions"][i]["top"];
    for (const auto& e : top) {
      if (e[1].is_null()) continue;
      sum_abs += std::fabs(mine.at(e[0].get<int>()) - e[1].get<double>());
      ++n_terms;
    }
    if (top[0][1].get<double>() - top[1][1].get<double>() > clear_gap) {
      ++clear;
      argmax_ok += ours["positions"][i]["top"][0][0] == top[0][0];
    }
    // HF layout == GGUF layout.
    const double tol = c.dtype == "f32" && !quantized ? 1e-4 : 2e-3;
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_EQ(ours["positions"][i]["top"][k][0], ours_hf["positions"][i]["top"][k][0]) << "position " << i;
      EXPECT_NEAR(ours["positions"][i]["top"][k][1].get<double>(), ours_hf["positions"][i]["top"][k][1].get<double>(), tol)
          << "position " << i;
    }
  }
  const bool moe_quantized = quantized && c.name.find("26b") != std::string::npos;
  if (moe_quantized) {
    // MoE + 8-bit activations: whenever the 8th and 9th router logits are closer than the
    // activation noise, llama.cpp and we may pick different experts for one token, and that token's
    // K/V then shifts every later position (llama.cpp's own q8_0 run parts from its f32 run the
    // same way). Most positions must still agree.
    EXPECT_GE(argmax_ok, clear * 85 / 100) << "argmax differs at too many clear-gap positions";
  } else if (quantized) {
    // 8-bit activations make a random-weight model chaotic: an f32 rounding-order change that
    // flips one activation's rounding moves later log-probs by up to ~0.3 (measured on
    // g4_e2b_like_q4_0: f64 instead of f32 attention sums moves them by 0.03, a different f32
    // summation order by 0.32), and llama.cpp sums in yet another order. One miss in twenty
    // clear positions is that noise; a real kernel error misses many and fails the mean below.
    EXPECT_GE(argmax_ok, clear - std::max(1, clear / 20)) << "argmax differs at positions with a clear top-2 gap";
  } else {
    EXPECT_EQ(argmax_ok, clear) << "argmax differs at positions with a clear top-2 gap";
  }
  EXPECT_GT(clear, quantized ? c.n_tokens / 4 : c.n_tokens / 2);
  const double mean_abs = sum_abs / n_terms;
  EXPECT_LT(mean_abs, quantized ? 0.35 : c.dtype == "f32" ? 0.02 : 0.05)
      << "mean |delta log-prob| over llama.cpp's top-10";
  RecordProperty("mean_abs_delta_logprob", std::to_string(mean_abs));

  // Greedy continuation of a short prompt.
  const std::string prompt = TokenList(12, 512, 777);
  json gen = RunJson(bin + " run --kv-type f32 --json --max-tokens 32 --model " + gguf +
                     " --tokens " + prompt);
  json ref_gen = RunJson("node " + Harness() + " --model " + gguf + " --top-k 2 --generate 32 --tokens " + prompt);
  ASSERT_FALSE(gen.is_null() || ref_gen.is_null());
  std::vector<int> ours_ids = gen["tokens"].get<std::vector<int>>();
  std::vector<int> ref_ids = ref_gen["generated"].get<std::vector<int>>();
  // llama.cpp's harness does not stop at EOS; compare up to our stop.
  ref_ids.resize(ours_ids.size());
  size_t same = 0;
  while (same < ours_ids.size() && ours_ids[same] == ref_ids[same]) ++same;
  if (same < ours_ids.size()) {
    // Greedy paths may part only at a near-tie: llama.cpp's own top-2 gap there must be tiny.
    std::string prefix = prompt;
    for (size_t i = 0; i < same; ++i) prefix += "," + std::to_string(ours_ids[i]);
    json at = RunJson("node " + Harness() + " --model " + gguf + " --top-k 2 --tokens " + prefix);
    const json& top = at["positions"].back()["top"];
    const double gap = top[0][1].get<double>() - top[1][1].get<double>();
    if (!moe_quantized) {
      EXPECT_LT(gap, quantized ? clear_gap : 5e-3)
          << "greedy continuations differ at step " << same << " where llama.cpp's top-2 gap is " << gap;
    }
    RecordProperty("greedy_divergence_step", static_cast<int>(same));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecoderVsLlamaCpp,
    ::testing::Values(Case{"tiny_f32", "--preset tiny --seed 11", 24, "f32"},
                      Case{"1b_like_f32", "--preset 1b-like --seed 12", 530, "f32"},
                      Case{"4b_like_f32", "--preset 4b-like --seed 13", 80, "f32"},
                      Case{"27b_like_f32", "--preset 27b-like --seed 14", 40, "f32"},
                      Case{"all_global_f32", "--preset all-global --seed 15", 40, "f32"},
                      Case{"4b_like_f16", "--preset 4b-like --seed 16", 80, "f16"},
                      Case{"g4_e2b_like_f32", "--preset g4-e2b-like --seed 21", 40, "f32"},
                      Case{"g4_31b_like_f32", "--preset g4-31b-like --seed 22", 40, "f32"},
                      Case{"g4_26b_like_f32", "--preset g4-26b-like --seed 23", 40, "f32"},
                      Case{"g4_e2b_like_f16", "--preset g4-e2b-like --seed 24", 40, "f16"},
                      Case{"g4_e4b_like_f32", "--preset g4-e4b-like --seed 25", 40, "f32"},
                      // Quantized: 1152-wide rows exercise the K-quant fallbacks (q5_0, q8_0),
                      // the 256-multiple shape every K-quant kernel.
                      Case{"1b_like_q4_0", "--preset 1b-like --layers 4 --ffn 2304 --seed 31", 64, "f32", "q4_0"},
                      Case{"1b_like_q8_0", "--preset 1b-like --layers 4 --ffn 2304 --seed 32", 64, "f32", "q8_0"},
                      Case{"1b_like_q4_k_m", "--preset 1b-like --layers 4 --ffn 2304 --seed 33", 64, "f32", "q4_k_m"},
                      Case{"k256_q4_k_m", kK256, 40, "f32", "q4_k_m"},
                      Case{"k256_q5_k_m", kK256, 40, "f32", "q5_k_m"},
                      Case{"k256_q6_k", kK256, 40, "f32", "q6_k"},
                      Case{"k256_q3_k_m", kK256, 40, "f32", "q3_k_m"},
                      Case{"k256_q2_k", kK256, 40, "f32", "q2_k"},
                      Case{"k256_q4_1", kK256, 40, "f32", "q4_1"},
                      Case{"g4_e2b_like_q4_0", "--preset g4-e2b-like --seed 34", 40, "f32", "q4_0"},
                      Case{"g4_26b_like_q8_0", "--preset g4-26b-like --seed 35", 40, "f32", "q8_0"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace gemma_local
