// Tokenizer benchmark (issue 3, "Speed"): encode and decode throughput on a deterministic ~10 MB
// mixed corpus, one thread, and the load time and memory of the real 262,144-entry Gemma 3
// vocabulary from tokenizer.json and from a GGUF file.
//
//   tokenizer_bench [--tokenizer_json=FILE] [--gguf=FILE] [--corpus_mb=N]
//                   [--write_corpus=FILE.jsonl] [google benchmark flags]
//
// Inputs: --tokenizer_json (or $GEMMA_LOCAL_TOKENIZER_JSON; default
// ../shared/testdata/gemma3-tokenizer/tokenizer.json beside the source tree, or under
// $GEMMA_LOCAL_SHARED_DIR). --gguf (or $GEMMA_LOCAL_TOKENIZER_GGUF); without it a GGUF carrying the
// same vocabulary is generated once into a temporary directory by the test-model generator (what
// `gemma-local dev make-model --preset tiny --tokenizer gemma3:DIR` writes). Without a
// tokenizer.json every benchmark is skipped with a message, and the program exits 0.
//
// --write_corpus writes the corpus as JSONL (one ASCII-escaped JSON string per document, in
// order) and exits: bench/tokenizer_vs_llamacpp feeds the same documents to llama.cpp.
//
// Reported: "MB/s" counters are 10^6 bytes of UTF-8 input (encode) or output (decode) per second;
// Google Benchmark's own bytes_per_second is in MiB. Load benchmarks report per-load wall time and
// `rss_retained_MB` (resident memory still held once the tokenizer is loaded, after returning freed
// heap pages with malloc_trim) and `rss_peak_MB` (peak resident growth during the load, from
// VmHWM after resetting it through /proc/self/clear_refs; 0 when the kernel refuses the reset).
// Times and rates are CPU time of the (single) benchmark thread, which on a quiet machine equals
// wall time and on a shared one is far steadier. With --benchmark_repetitions=N every repetition
// is printed: take the best (Google Benchmark's aggregates are means and medians).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gemma_local/tokenizer.h"
// Only to generate a GGUF when none is given (as `gemma-local dev make-model` does).
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Options (parsed from argv before Google Benchmark sees it; no global mutable state beyond the
// one immutable-after-startup context that the registered benchmarks capture by pointer).

struct BenchContext {
  std::string tokenizer_json;  // empty: not found
  std::string gguf;            // empty: none given and none generated
  std::vector<std::string> corpus;
  size_t corpus_bytes = 0;
};

// ---------------------------------------------------------------------------------------------
// Corpus: documents of mixed kinds, fully determined by the seed (splitmix64).

// Appends code point `cp` (<= U+10FFFF, not a surrogate) as UTF-8. The bench sees only the public
// API, so it carries this small encoder rather than core/utf8.h's.
void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(Next() % n); }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }

 private:
  uint64_t s_;
};

constexpr const char* kWords[] = {"the",
                                  "of",
                                  "and",
                                  "to",
                                  "in",
                                  "a",
                                  "is",
                                  "that",
                                  "for",
                                  "it",
                                  "as",
                                  "was",
                                  "with",
                                  "be",
                                  "by",
                                  "on",
                                  "not",
                                  "he",
                                  "this",
                                  "are",
                                  "or",
                                  "his",
                                  "from",
                                  "at",
                                  "which",
                                  "but",
                                  "have",
                                  "an",
                                  "had",
                                  "they",
                                  "you",
                                  "were",
                                  "their",
                                  "one",
                                  "all",
                                  "we",
                                  "can",
                                  "her",
                                  "has",
                                  "there",
                                  "been",
                                  "if",
                                  "more",
                                  "when",
                                  "will",
                                  "would",
                                  "who",
                                  "so",
                                  "no",
                                  "model",
                                  "language",
                                  "token",
                                  "inference",
                                  "memory",
                                  "weather",
                                  "river",
                                  "mountain",
                                  "government",
                                  "history",
                                  "although",
                                  "particularly",
                                  "development",
                                  "international",
                                  "understanding",
                                  "responsibility",
                                  "nevertheless",
                                  "quickly",
                                  "gently",
                                  "Tokenization",
                                  "Wednesday",
                                  "London",
                                  "Mississippi",
                                  "quantum",
                                  "photosynthesis",
                                  "café",
                                  "naïve",
                                  "résumé",
                                  "über",
                                  "jalapeño",
                                  "façade",
                                  "coöperate"};
constexpr const char* kPunct[] = {".", ".", ".", ",", ";", ":", "!", "?", " —", "...", "\"", "'s"};

void AppendProse(Rng& rng, std::string& out) {
  const uint32_t sentences = 2 + rng.Below(6);
  for (uint32_t s = 0; s < sentences; ++s) {
    const uint32_t words = 4 + rng.Below(18);
    for (uint32_t w = 0; w < words; ++w) {
      std::string word = rng.Pick(kWords);
      if (w == 0 && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 32);
      out += word;
      if (w + 1 < words) out += rng.Below(12) == 0 ? rng.Pick(kPunct) + std::string(" ") : " ";
    }
    out += rng.Below(5) == 0 ? rng.Pick(kPunct) : ".";
    out += ' ';
  }
  out += rng.Below(3) == 0 ? "\n\n" : "\n";
}

constexpr const char* kCodeLines[] = {
    "#include <vector>",
    "int main(int argc, char** argv) {",
    "  for (size_t i = 0; i < n; ++i) sum += values[i] * weights[i];",
    "  if (status != 0) return -1;",
    "}",
    "def tokenize(text: str, *, add_bos: bool = True) -> list[int]:",
    "    return [vocab.get(piece, unk_id) for piece in pieces]",
    "\tconst auto it = std::find_if(begin(xs), end(xs), [&](int x) { return x > 0x7f; });",
    "fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u32> = vec![1, 2, 3]; Ok(()) }",
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC;",
    "    // TODO(someone): handle the empty case before dereferencing",
    "export const add = (a, b) => a + b; /* arrow function */",
    "<div class=\"row\"><span id=\"x-1\">&lt;tag&gt;</span></div>",
    "$ ./configure --prefix=/usr/local && make -j8 2>&1 | tee build.log"};

void AppendCode(Rng& rng, std::string& out) {
  const uint32_t lines = 3 + rng.Below(12);
  for (uint32_t l = 0; l < lines; ++l) {
    out.append(rng.Below(4) * 2, ' ');
    out += rng.Pick(kCodeLines);
    out += rng.Below(10) == 0 ? "\r\n" : "\n";
  }
}

void AppendJson(Rng& rng, std::string& out) {
  const uint32_t fields = 2 + rng.Below(8);
  out += "{";
  for (uint32_t f = 0; f < fields; ++f) {
    if (f) out += rng.Below(2) ? ", " : ",\n  ";
    out += "\"" + std::string(rng.Pick(kWords)) + "_" + std::to_string(rng.Below(100)) + "\": ";
    switch (rng.Below(5)) {
      case 0:
        out += std::to_string(rng.Below(1000000));
        break;
      case 1:
        out += std::to_string(rng.Below(1000)) + "." + std::to_string(rng.Below(10000));
        break;
      case 2:
        out += rng.Below(2) ? "true" : "null";
        break;
      case 3:
        out += "[1, 2, {\"k\": \"v\\n\\t\\u00e9\"}]";
        break;
      default:
        out += "\"" + std::string(rng.Pick(kWords)) + " " + rng.Pick(kWords) + "\"";
    }
  }
  out += "}\n";
}

void AppendCjk(Rng& rng, std::string& out) {
  const uint32_t chars = 20 + rng.Below(120);
  for (uint32_t c = 0; c < chars; ++c) {
    const uint32_t kind = rng.Below(20);
    if (kind < 12) {
      AppendUtf8(0x4E00 + rng.Below(0x1000), out);  // common CJK ideographs
    } else if (kind < 15) {
      AppendUtf8(0x3041 + rng.Below(0x56), out);  // hiragana
    } else if (kind < 17) {
      AppendUtf8(0xAC00 + rng.Below(0x2BA4), out);  // Hangul syllables
    } else if (kind < 18) {
      AppendUtf8(0x20000 + rng.Below(0x2000), out);  // extension B (4-byte)
    } else {
      AppendUtf8(rng.Below(2) ? 0x3002 : 0xFF0C, out);  // 。 ，
    }
  }
  out += "\n";
}

void AppendArabic(Rng& rng, std::string& out) {
  const uint32_t words = 5 + rng.Below(20);
  for (uint32_t w = 0; w < words; ++w) {
    const uint32_t letters = 2 + rng.Below(7);
    for (uint32_t l = 0; l < letters; ++l) AppendUtf8(0x0627 + rng.Below(0x24), out);
    if (rng.Below(8) == 0) AppendUtf8(0x064B + rng.Below(8), out);  // harakat
    out += w + 1 < words ? " " : "\u06D4\n";
  }
}

void AppendEmoji(Rng& rng, std::string& out) {
  const uint32_t n = 3 + rng.Below(15);
  for (uint32_t i = 0; i < n; ++i) {
    switch (rng.Below(5)) {
      case 0:
        out += "\U0001F468\u200D\U0001F469\u200D\U0001F467";
        break;  // ZWJ family
      case 1:   // a flag: two regional indicators
        AppendUtf8(0x1F1E6 + rng.Below(26), out);
        AppendUtf8(0x1F1E6 + rng.Below(26), out);
        break;
      case 2:
        out += "\U0001F44D";
        AppendUtf8(0x1F3FB + rng.Below(5), out);
        break;
      default:
        AppendUtf8(0x1F600 + rng.Below(0x50), out);
    }
    if (rng.Below(3) == 0) out += ' ';
  }
  out += "\n";
}

void AppendWhitespace(Rng& rng, std::string& out) {
  switch (rng.Below(4)) {
    case 0:
      out.append(1 + rng.Below(40), ' ');
      break;
    case 1:
      out.append(1 + rng.Below(6), '\t');
      break;
    case 2:
      out.append(1 + rng.Below(8), '\n');
      break;
    default:
      for (uint32_t i = rng.Below(4) + 1; i > 0; --i) out += "\r\n";
  }
  out += rng.Pick(kWords);
  out += "\n";
}

void AppendDigits(Rng& rng, std::string& out) {
  const uint32_t n = 2 + rng.Below(10);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t len = 1 + rng.Below(rng.Below(4) == 0 ? 30 : 6);
    for (uint32_t d = 0; d < len; ++d) out.push_back(static_cast<char>('0' + rng.Below(10)));
    out += rng.Pick({" ", ", ", ".", "-", "/", " + ", " = "});
  }
  out += "\n";
}

// ~`total_bytes` of UTF-8 in documents of ~256 KB; the mix by bytes is roughly prose 40%, code
// 18%, JSON 12%, CJK 10%, Arabic 6%, emoji 5%, whitespace runs 4%, digits 5%.
std::vector<std::string> MakeCorpus(size_t total_bytes) {
  constexpr size_t kDocBytes = 256 * 1024;
  Rng rng(0x6E6D6D61u);
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < total_bytes) {
    std::string doc;
    doc.reserve(kDocBytes + 4096);
    while (doc.size() < kDocBytes) {
      const uint32_t k = rng.Below(100);
      if (k < 36)
        AppendProse(rng, doc);
      else if (k < 50)
        AppendCode(rng, doc);
      else if (k < 62)
        AppendJson(rng, doc);
      else if (k < 72)
        AppendCjk(rng, doc);
      else if (k < 78)
        AppendArabic(rng, doc);
      else if (k < 85)
        AppendEmoji(rng, doc);
      else if (k < 92)
        AppendWhitespace(rng, doc);
      else
        AppendDigits(rng, doc);
    }
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------
// Memory probes (Linux /proc).

int64_t ProcStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t klen = std::char_traits<char>::length(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0) return std::atoll(line.c_str() + klen + 1);
  }
  return -1;
}

bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

// ---------------------------------------------------------------------------------------------
// Benchmarks.

std::shared_ptr<const Tokenizer> LoadOrDie(benchmark::State& state, const std::string& path) {
  auto tok = Tokenizer::Load(path);
  if (!tok.ok()) {
    state.SkipWithError(("load failed: " + tok.status().ToString()).c_str());
    return nullptr;
  }
  return std::move(tok).value();
}

void BM_Load(benchmark::State& state, const std::string* path) {
  if (path->empty()) {
    state.SkipWithError("no tokenizer file (see the header of bench/tokenizer_bench.cc)");
    return;
  }
  double retained_mb = 0, peak_mb = 0;
  for (auto _ : state) {
    state.PauseTiming();
    malloc_trim(0);
    const bool peak_ok = ResetPeakRss();
    const int64_t before = ProcStatusKb("VmRSS:");
    state.ResumeTiming();
    std::shared_ptr<const Tokenizer> tok = LoadOrDie(state, *path);
    state.PauseTiming();
    if (!tok) break;
    const int64_t peak = ProcStatusKb("VmHWM:");
    malloc_trim(0);
    const int64_t after = ProcStatusKb("VmRSS:");
    retained_mb = static_cast<double>(after - before) / 1024.0;
    peak_mb = peak_ok ? static_cast<double>(peak - before) / 1024.0 : 0.0;
    benchmark::DoNotOptimize(tok->vocab_size());
    tok.reset();  // freed outside the timed region
    state.ResumeTiming();
  }
  state.counters["rss_retained_MB"] = retained_mb;
  state.counters["rss_peak_MB"] = peak_mb;
}

void SetThroughput(benchmark::State& state, size_t bytes, size_t tokens) {
  const double iters = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.counters["MB/s"] =
      benchmark::Counter(iters * static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
  state.counters["Mtok/s"] =
      benchmark::Counter(iters * static_cast<double>(tokens) / 1e6, benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}

// Encodes every corpus document (no BOS, special tokens parsed as in HF `encode`).
void BM_Encode(benchmark::State& state, const BenchContext* ctx, const std::string* path) {
  if (path->empty()) {
    state.SkipWithError("no tokenizer file (see the header of bench/tokenizer_bench.cc)");
    return;
  }
  auto tok = LoadOrDie(state, *path);
  if (!tok) return;
  EncodeOptions opt;
  opt.add_bos = false;
  size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string& doc : ctx->corpus) {
      auto ids = tok->Encode(doc, opt);
      if (!ids.ok()) {
        state.SkipWithError(ids.status().ToString().c_str());
        return;
      }
      tokens += ids->size();
      benchmark::DoNotOptimize(ids->data());
    }
  }
  SetThroughput(state, ctx->corpus_bytes, tokens);
}

// Decodes the ids of every corpus document (encoded once, outside the timing).
void BM_Decode(benchmark::State& state, const BenchContext* ctx, const std::string* path,
               bool streaming) {
  if (path->empty()) {
    state.SkipWithError("no tokenizer file (see the header of bench/tokenizer_bench.cc)");
    return;
  }
  auto tok = LoadOrDie(state, *path);
  if (!tok) return;
  EncodeOptions opt;
  opt.add_bos = false;
  std::vector<std::vector<int32_t>> ids;
  size_t tokens = 0;
  for (const std::string& doc : ctx->corpus) {
    auto r = tok->Encode(doc, opt);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    tokens += r->size();
    ids.push_back(std::move(r).value());
  }
  size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const auto& doc_ids : ids) {
      if (streaming) {
        TokenStreamDecoder dec(tok);
        for (int32_t id : doc_ids) {
          auto piece = dec.Push(id);
          if (!piece.ok()) {
            state.SkipWithError(piece.status().ToString().c_str());
            return;
          }
          bytes += piece->size();
        }
        bytes += dec.Finish().size();
      } else {
        auto text = tok->Decode(doc_ids);
        if (!text.ok()) {
          state.SkipWithError(text.status().ToString().c_str());
          return;
        }
        bytes += text->size();
        benchmark::DoNotOptimize(text->data());
      }
    }
  }
  SetThroughput(state, bytes, tokens);
}

// ---------------------------------------------------------------------------------------------
// Setup.

std::string FindTokenizerJson(const std::string& flag) {
  if (!flag.empty()) return fs::is_regular_file(flag) ? flag : std::string();
  if (const char* env = std::getenv("GEMMA_LOCAL_TOKENIZER_JSON")) {
    return fs::is_regular_file(env) ? std::string(env) : std::string();
  }
  std::string shared = fs::path(GEMMA_LOCAL_SOURCE_DIR).parent_path() / "shared";
  if (const char* env = std::getenv("GEMMA_LOCAL_SHARED_DIR")) shared = env;
  const std::string p = shared + "/testdata/gemma3-tokenizer/tokenizer.json";
  return fs::is_regular_file(p) ? p : std::string();
}

// A GGUF with the vocabulary of `tokenizer_json`'s directory, written under `dir`.
std::string MakeGguf(const std::string& tokenizer_json, const std::string& dir) {
  auto shape = testgen::PresetShape("tiny");
  if (!shape.ok()) return {};
  testgen::TestModelOptions opt;
  opt.hparams = *shape;
  opt.tokenizer = testgen::TokenizerSource::kGemma3Files;
  opt.tokenizer_dir = fs::path(tokenizer_json).parent_path().string();
  opt.write_hf = false;
  auto written = testgen::WriteTestModel(opt, dir);
  if (!written.ok()) {
    std::fprintf(stderr, "tokenizer_bench: cannot generate a GGUF: %s\n",
                 written.status().ToString().c_str());
    return {};
  }
  return written->gguf_path;
}

int WriteCorpus(const BenchContext& ctx, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  for (const std::string& doc : ctx.corpus) {
    out << nlohmann::json(doc).dump(-1, ' ', /*ensure_ascii=*/true) << "\n";
  }
  out.flush();
  if (!out) {
    std::fprintf(stderr, "tokenizer_bench: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %zu documents, %zu bytes of UTF-8, to %s\n", ctx.corpus.size(),
              ctx.corpus_bytes, path.c_str());
  return 0;
}

int Main(int argc, char** argv) {
  std::string json_flag, gguf_flag, corpus_out;
  double corpus_mb = 10.0;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string_view name) -> const char* {
      return a.substr(0, name.size()) == name ? argv[i] + name.size() : nullptr;
    };
    if (const char* v = value("--tokenizer_json="))
      json_flag = v;
    else if (const char* v = value("--gguf="))
      gguf_flag = v;
    else if (const char* v = value("--write_corpus="))
      corpus_out = v;
    else if (const char* v = value("--corpus_mb="))
      corpus_mb = std::atof(v);
    else
      rest.push_back(argv[i]);
  }

  BenchContext ctx;
  ctx.corpus = MakeCorpus(static_cast<size_t>(std::max(corpus_mb, 0.01) * 1e6));
  for (const auto& d : ctx.corpus) ctx.corpus_bytes += d.size();
  if (!corpus_out.empty()) return WriteCorpus(ctx, corpus_out);

  ctx.tokenizer_json = FindTokenizerJson(json_flag);
  std::string tmp_dir;
  if (ctx.tokenizer_json.empty()) {
    std::fprintf(stderr,
                 "tokenizer_bench: SKIPPING: no Gemma 3 tokenizer.json (pass --tokenizer_json=FILE "
                 "or set GEMMA_LOCAL_TOKENIZER_JSON; default "
                 "../shared/testdata/gemma3-tokenizer/tokenizer.json)\n");
    return 0;
  }
  if (!gguf_flag.empty()) {
    ctx.gguf = gguf_flag;
  } else if (const char* env = std::getenv("GEMMA_LOCAL_TOKENIZER_GGUF")) {
    ctx.gguf = env;
  } else {
    std::string pattern = (fs::temp_directory_path() / "tokenizer_bench_XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      tmp_dir = pattern;
      ctx.gguf = MakeGguf(ctx.tokenizer_json, tmp_dir);
    }
  }
  std::fprintf(stderr, "tokenizer.json: %s\nGGUF: %s\ncorpus: %zu documents, %zu bytes\n",
               ctx.tokenizer_json.c_str(), ctx.gguf.empty() ? "(none)" : ctx.gguf.c_str(),
               ctx.corpus.size(), ctx.corpus_bytes);

  // Loads first, so their RSS probes run before the other benchmarks fragment the heap.
  auto add = [](benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMillisecond); };
  add(benchmark::RegisterBenchmark("Load/tokenizer.json", BM_Load, &ctx.tokenizer_json));
  add(benchmark::RegisterBenchmark("Load/gguf", BM_Load, &ctx.gguf));
  add(benchmark::RegisterBenchmark("Encode/tokenizer.json", BM_Encode, &ctx, &ctx.tokenizer_json));
  add(benchmark::RegisterBenchmark("Encode/gguf", BM_Encode, &ctx, &ctx.gguf));
  add(benchmark::RegisterBenchmark("Decode/tokenizer.json", BM_Decode, &ctx, &ctx.tokenizer_json,
                                   false));
  add(benchmark::RegisterBenchmark("DecodeStream/tokenizer.json", BM_Decode, &ctx,
                                   &ctx.tokenizer_json, true));

  int bargc = static_cast<int>(rest.size());
  benchmark::Initialize(&bargc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, rest.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!tmp_dir.empty()) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
  }
  return 0;
}

}  // namespace
}  // namespace gemma_local

int main(int argc, char** argv) { return gemma_local::Main(argc, argv); }
