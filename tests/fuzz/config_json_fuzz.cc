// libFuzzer target: config.json -> HParams must return a value or an error for any bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  auto hp = gemma_local::HParamsFromConfigJson(config, "fuzz/config.json");
  if (hp.ok()) {
    // Round-trip what was accepted: emitting and re-reading must not fail.
    nlohmann::json again = gemma_local::ConfigJsonFromHParams(*hp, gemma_local::HfConfigLayout::kConditionalGeneration);
    (void)gemma_local::HParamsFromConfigJson(again, "fuzz/config.json");
  }
  return 0;
}
