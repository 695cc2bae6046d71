// Flags every command that runs the engine shares: the KV cache pool and the scheduler.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "gemma_local/engine.h"
#include "gemma_local/status.h"

namespace gemma_local::cli {

struct EngineFlags {
  std::string kv_budget;    // "" = the engine's default (share of available memory)
  std::string kv_type;      // "" = the engine's default (f16)
  int64_t max_running = 0;  // 0 = the engine's default
  bool no_prefix_cache = false;
  double decode_latency_factor = -1;  // < 0 = the engine's default
};

// The KV cache types --kv-type accepts (EngineOptions::kv_type), in the order help text lists them.
inline constexpr const char* kKvTypes[] = {"f16", "q8_0", "f32"};

void AddEngineFlags(CLI::App* cmd, EngineFlags* flags);
// "" when `type` is one of kKvTypes, else what is wrong (without the flag's name).
std::string CheckKvType(const std::string& type);
// Sets the options the flags give; errors name the flag and the value.
Status ApplyEngineFlags(const EngineFlags& flags, EngineOptions* options);
// "1073741824", "512MiB", "512M", "1.5GiB", "2g", "64KiB": bytes (binary units; K/M/G/T alone
// mean KiB/MiB/GiB/TiB). Errors say what was expected.
Result<int64_t> ParseByteSize(const std::string& text);

}  // namespace gemma_local::cli
