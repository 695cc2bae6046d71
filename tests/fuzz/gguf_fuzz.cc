// libFuzzer target for the GGUF reader (and, through a round trip, the writer).
//
// Checks, beyond "no crash / no sanitizer report":
// - every error names the file ("fuzz.gguf: ...") and has a non-empty message;
// - an accepted file's tensor views lie inside the input (first and last byte are read, so ASan
//   flags any escape);
// - every typed getter on every key returns OK or an error, never crashes;
// - writer/reader agreement: whatever the reader accepts, the writer re-serializes, the reader
//   accepts that again, and a second re-serialization is byte-identical (idempotence).
//
// Run (builds every fuzz target with clang, runs each from tests/fuzz/seeds/<target>/):
//   scripts/run_fuzzers.sh 30
// Or by hand, with the dictionary:
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DGEMMA_LOCAL_FUZZ=ON \
//       -DGEMMA_LOCAL_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-fuzz --target gguf_fuzz -j2
//   mkdir -p build-fuzz/corpus-gguf && build-fuzz/tests/fuzz/gguf_fuzz -max_total_time=30 \
//       -max_len=65536 -rss_limit_mb=2048 -dict=tests/fuzz/gguf.dict build-fuzz/corpus-gguf \
//       tests/fuzz/seeds/gguf_fuzz
// The seeds are written by a test (GgufSeedCorpus in tests/formats/gguf_test.cc):
//   GGUF_SEED_CORPUS_DIR=tests/fuzz/seeds/gguf_fuzz <build>/tests/formats_tests \
//       --gtest_filter='GgufSeedCorpus.*'
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace {

using gemma_local::Result;
using gemma_local::Status;
using gemma_local::gguf::GgufFile;
using gemma_local::gguf::GgufWriter;

constexpr char kName[] = "fuzz.gguf";

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "gguf_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void CheckError(const Status& s) {
  if (s.ok()) return;
  if (s.message().rfind(std::string(kName) + ": ", 0) != 0) {
    Fail("error does not name the file", s.ToString());
  }
}

// Rebuilds the file through GgufWriter (same keys and tensors in order; offsets recomputed).
Result<std::vector<uint8_t>> Reserialize(const GgufFile& file) {
  GgufWriter w;
  for (const auto& kv : file.metadata()) w.Set(kv.key, kv.value);
  for (const auto& t : file.tensors()) {
    Status s = w.AddTensor(t.name, t.dtype, t.ne, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
    if (!s.ok()) Fail("writer rejects a tensor the reader accepted", s.ToString());
  }
  return w.Serialize(file.alignment());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<GgufFile> file = GgufFile::ParseBytes(data, size, kName);
  if (!file.ok()) {
    CheckError(file.status());
    return 0;
  }

  for (const auto& kv : file->metadata()) {
    CheckError(file->GetInt(kv.key).status());
    CheckError(file->GetFloat(kv.key).status());
    CheckError(file->GetBool(kv.key).status());
    CheckError(file->GetString(kv.key).status());
    CheckError(file->GetIntArray(kv.key).status());
    CheckError(file->GetFloatArray(kv.key).status());
    CheckError(file->GetBoolArray(kv.key).status());
    CheckError(file->GetStringArray(kv.key).status());
    if (file->Find(kv.key) != &kv.value) Fail("Find returns another entry", kv.key);
  }

  volatile uint8_t sink = 0;
  for (const auto& t : file->tensors()) {
    if (t.n_bytes == 0 || t.data < data || t.data + t.n_bytes > data + size) {
      Fail("tensor view outside the input", t.name);
    }
    sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    if (file->FindTensor(t.name) != &t) Fail("FindTensor returns another tensor", t.name);
  }
  (void)sink;

  Result<std::vector<uint8_t>> once = Reserialize(*file);
  if (!once.ok()) Fail("writer rejects metadata the reader accepted", once.status().ToString());
  Result<GgufFile> reparsed = GgufFile::ParseBytes(once->data(), once->size(), kName);
  if (!reparsed.ok()) Fail("reader rejects the writer's output", reparsed.status().ToString());
  if (reparsed->metadata().size() != file->metadata().size() ||
      reparsed->tensors().size() != file->tensors().size()) {
    Fail("round trip changed the number of keys or tensors", "");
  }
  Result<std::vector<uint8_t>> twice = Reserialize(*reparsed);
  if (!twice.ok() || *twice != *once) Fail("re-serialization is not idempotent", "");
  return 0;
}
