#include "cli/engine_flags.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace gemma_local::cli {

Result<int64_t> ParseByteSize(const std::string& text) {
  const auto bad = [&] {
    return InvalidArgumentError("'" + text +
                                "' is not a size (examples: 1073741824, 512MiB, 1.5GiB, 2G)");
  };
  size_t end = 0;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == 0) return bad();
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (ec != std::errc() || ptr != text.data() + end) return bad();
  std::string unit = text.substr(end);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "ib") unit.resize(unit.size() - 2);
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  double scale = 1;
  if (unit == "k") {
    scale = 1024.0;
  } else if (unit == "m") {
    scale = 1024.0 * 1024.0;
  } else if (unit == "g") {
    scale = 1024.0 * 1024.0 * 1024.0;
  } else if (unit == "t") {
    scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
  } else if (!unit.empty()) {
    return bad();
  }
  const double bytes = std::floor(value * scale);
  if (!std::isfinite(bytes) || bytes > 9.0e18) return bad();
  return static_cast<int64_t>(bytes);
}

std::string CheckKvType(const std::string& type) {
  std::string accepted;
  for (const char* t : kKvTypes) {
    if (type == t) return "";
    accepted += (accepted.empty() ? "" : ", ") + std::string(t);
  }
  return "'" + type + "' is not a KV cache type (accepted: " + accepted + ")";
}

void AddEngineFlags(CLI::App* cmd, EngineFlags* flags) {
  cmd->add_option(
      "--kv-budget", flags->kv_budget,
      "KV cache pool size, e.g. 2GiB (default: 3/4 of the memory available after loading)");
  cmd->add_option("--kv-type", flags->kv_type,
                  "how the KV cache stores K/V: f16 (default), q8_0 (8-bit blocks, head sizes that "
                  "are multiples of 32) or f32");
  cmd->add_option("--max-running", flags->max_running,
                  "requests decoded together at most (default 16)");
  cmd->add_option("--decode-latency-factor", flags->decode_latency_factor,
                  "beside generating requests, prompt chunks keep a step under this many times a "
                  "generating-only step (default 1.8; 0 = no cap)");
  cmd->add_flag("--no-prefix-cache", flags->no_prefix_cache,
                "recompute shared prompt prefixes instead of reusing their KV");
}

Status ApplyEngineFlags(const EngineFlags& flags, EngineOptions* options) {
  if (!flags.kv_budget.empty()) {
    Result<int64_t> bytes = ParseByteSize(flags.kv_budget);
    if (!bytes.ok()) return InvalidArgumentError("--kv-budget: " + bytes.status().message());
    if (*bytes < 1)
      return InvalidArgumentError("--kv-budget: must be at least 1 byte, got '" + flags.kv_budget +
                                  "'");
    options->kv_budget_bytes = *bytes;
  }
  if (!flags.kv_type.empty()) {
    if (std::string error = CheckKvType(flags.kv_type); !error.empty())
      return InvalidArgumentError("--kv-type: " + error);
    options->kv_type = flags.kv_type;
  }
  if (flags.max_running < 0) {
    return InvalidArgumentError("--max-running: must be >= 1, got " +
                                std::to_string(flags.max_running));
  }
  if (flags.max_running > 0) options->max_running_requests = flags.max_running;
  if (flags.no_prefix_cache) options->prefix_caching = false;
  if (flags.decode_latency_factor >= 0) {
    if (flags.decode_latency_factor > 0 && flags.decode_latency_factor < 1) {
      return InvalidArgumentError("--decode-latency-factor: must be 0 (no cap) or >= 1, got " +
                                  std::to_string(flags.decode_latency_factor));
    }
    options->decode_latency_factor = flags.decode_latency_factor;
  }
  return Status::Ok();
}

}  // namespace gemma_local::cli
