// libFuzzer target for the safetensors reader: any input must either fail with a Status or yield
// tensors whose views lie inside the input and tile its data section exactly. Touching each
// tensor's first and last byte lets ASan catch a view that escapes the buffer.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz-st -G Ninja -DGEMMA_LOCAL_FUZZ=ON \
//       -DGEMMA_LOCAL_BUILD_TESTS=OFF
//   cmake --build build-fuzz-st --target safetensors_fuzz -j2
//   build-fuzz-st/tests/fuzz/safetensors_fuzz -max_total_time=60 CORPUS_DIR
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gemma_local::safetensors::SafetensorsFile;
  using gemma_local::safetensors::Tensor;
  auto file = SafetensorsFile::ParseBytes(data, size, "fuzz.safetensors");
  if (!file.ok()) {
    // Every error names the input.
    if (file.status().message().rfind("fuzz.safetensors: ", 0) != 0) std::abort();
    return 0;
  }
  volatile uint8_t sink = 0;
  uint64_t covered = 0;
  for (const Tensor& t : file->tensors()) {
    if (t.offset != covered) std::abort();  // sorted by offset, no hole, no overlap
    covered = t.offset + t.n_bytes;
    if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
    if (t.n_bytes > 0) {
      sink = sink + t.data[0];
      sink = sink + t.data[t.n_bytes - 1];
    }
    if (file->FindTensor(t.name) != &t) std::abort();
    if (t.n_elements() == UINT64_MAX) std::abort();  // validated: no overflow
  }
  for (const auto& [key, value] : file->metadata()) sink = sink + key.size() + value.size();
  (void)sink;
  return 0;
}
