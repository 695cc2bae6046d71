// An ops::ActivationSink that writes a forward call's named intermediates to a directory, for
// comparing backends (or this engine with llama.cpp's eval callback) layer by layer: one raw
// little-endian f32 file per tensor, "<call>-<name>.f32" (call zero-padded to 6 digits), and one
// line per tensor in index.jsonl: {"call", "name", "rows", "cols", "file"}. The first write error
// is kept (status()); later records are dropped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gemma_local/status.h"
#include "ops/backend.h"

namespace gemma_local {

class ActivationDump final : public ops::ActivationSink {
 public:
  ActivationDump(std::string dir, int64_t call);
  void Record(std::string_view name, const float* data, int64_t rows, int64_t cols) override;
  const Status& status() const { return status_; }

 private:
  std::string dir_;
  int64_t call_;
  Status status_;
};

}  // namespace gemma_local
