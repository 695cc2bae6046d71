// Structured output's cost on Gemma 3's vocabulary (262,145 tokens): per schema of the corpus
// (tests/constrain/corpus/handwritten.json), the compile time and every token mask of a few
// replayed walks (random allowed tokens, then steering to the shortest completion; each walk a
// fresh matcher, as each request is). The first walk is a schema's first request (cold: each new
// lexer state walks the vocabulary); the later walks share its lexer tables as the engine's
// requests with the same schema do (warm). Prints the medians and tails against issue 15's
// targets (mask median <= 50 us, p99 <= 500 us; compile median <= 20 ms). A program, not a test.
//
//   build/release/bench/constrain_bench [--tokenizer PATH] [--corpus PATH] [--walks N]
//                                       [--max-tokens N]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/constraint.h"
#include "gemma_local/tokenizer.h"

namespace {

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

int Main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::string shared = (fs::path(GEMMA_LOCAL_SOURCE_DIR).parent_path() / "shared").string();
  if (const char* env = std::getenv("GEMMA_LOCAL_SHARED_DIR")) shared = env;
  std::string tokenizer_path = shared + "/testdata/gemma3-tokenizer/tokenizer.json";
  std::string corpus_path =
      std::string(GEMMA_LOCAL_SOURCE_DIR) + "/tests/constrain/corpus/handwritten.json";
  int walks = 4;
  int max_tokens = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tokenizer") tokenizer_path = argv[i + 1];
    else if (flag == "--corpus") corpus_path = argv[i + 1];
    else if (flag == "--walks") walks = std::atoi(argv[i + 1]);
    else if (flag == "--max-tokens") max_tokens = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  auto tokenizer = gemma_local::Tokenizer::Load(tokenizer_path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
    return 1;
  }
  // Gemma 3's <eos> and <end_of_turn>.
  auto profiler = gemma_local::ConstraintProfiler::Create(*tokenizer, {1, 106});
  if (!profiler.ok()) {
    std::fprintf(stderr, "%s\n", profiler.status().ToString().c_str());
    return 1;
  }
  std::ifstream in(corpus_path);
  const nlohmann::ordered_json corpus = nlohmann::ordered_json::parse(in, nullptr, false);
  if (corpus.is_discarded()) {
    std::fprintf(stderr, "%s: not JSON\n", corpus_path.c_str());
    return 1;
  }
  std::vector<double> all_masks, cold_masks, compiles;
  int64_t complete = 0, total_walks = 0;
  std::printf("%-28s %9s | %6s %8s %8s | %6s %8s %8s\n", "schema", "compile", "cold", "p50 us",
              "p99 us", "warm", "p50 us", "p99 us");
  for (const auto& entry : corpus) {
    const std::string name = entry["name"];
    auto profile = (*profiler)->Profile(gemma_local::Constraint::JsonSchema(entry["schema"]),
                                        walks, max_tokens, 7);
    if (!profile.ok()) {
      std::printf("%-28s %s\n", name.c_str(), profile.status().ToString().c_str());
      continue;
    }
    compiles.push_back(profile->compile_us);
    all_masks.insert(all_masks.end(), profile->mask_us.begin(), profile->mask_us.end());
    cold_masks.insert(cold_masks.end(), profile->first_mask_us.begin(),
                      profile->first_mask_us.end());
    complete += profile->walks_complete;
    total_walks += walks;
    std::printf("%-28s %7.2fms | %6zu %8.1f %8.1f | %6zu %8.1f %8.1f\n", name.c_str(),
                profile->compile_us / 1000, profile->first_mask_us.size(),
                Quantile(profile->first_mask_us, 0.5), Quantile(profile->first_mask_us, 0.99),
                profile->mask_us.size(), Quantile(profile->mask_us, 0.5),
                Quantile(profile->mask_us, 0.99));
  }
  std::printf(
      "\nvocabulary: %d tokens indexed in %.0f ms (once per model)\n"
      "schemas: %zu, walks complete: %lld of %lld\n"
      "compile: median %.2f ms, p99 %.2f ms (target: median <= 20 ms)\n"
      "cold masks (first request of a schema): %zu, median %.1f us, p90 %.1f us, p99 %.1f us, "
      "max %.1f us\n"
      "warm masks (later requests, shared lexer tables): %zu, median %.1f us, p90 %.1f us, "
      "p99 %.1f us, max %.1f us (targets: median <= 50 us, p99 <= 500 us)\n",
      (*tokenizer)->vocab_size(), (*profiler)->vocab_index_ms(), compiles.size(),
      static_cast<long long>(complete), static_cast<long long>(total_walks),
      Quantile(compiles, 0.5) / 1000, Quantile(compiles, 0.99) / 1000, cold_masks.size(),
      Quantile(cold_masks, 0.5), Quantile(cold_masks, 0.9), Quantile(cold_masks, 0.99),
      Quantile(cold_masks, 1.0), all_masks.size(),
      Quantile(all_masks, 0.5), Quantile(all_masks, 0.9), Quantile(all_masks, 0.99),
      Quantile(all_masks, 1.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
