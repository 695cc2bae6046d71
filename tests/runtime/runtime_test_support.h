// Helpers the runtime tests share: generated models (one per preset for the whole binary) and
// CPU backends.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/test_support.h"
#include "ops/backend.h"
#include "testgen/make_test_model.h"

namespace gemma_local::testing {

// The GGUF file of a random model of `preset`, written once per test binary (models are
// deterministic).
inline const std::string& PresetModelPath(const std::string& preset) {
  static TempDir* dir = new TempDir();  // lives until exit
  static std::map<std::string, std::string> paths;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = paths.find(preset);
  if (it != paths.end()) return it->second;
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape(preset);
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir->File(preset));
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return paths.emplace(preset, w.ok() ? w->gguf_path : std::string()).first->second;
}

inline std::unique_ptr<ops::Backend> MakeCpuBackend(int threads) {
  Result<std::unique_ptr<ops::Backend>> b = ops::CreateBackend(ops::BackendOptions{"cpu", threads});
  EXPECT_TRUE(b.ok());
  return b.ok() ? std::move(*b) : nullptr;
}

}  // namespace gemma_local::testing
