#include "server/metrics.h"

#include <cmath>
#include <cstdio>

namespace gemma_local::server {
namespace {

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

void Metric(std::string& out, const char* name, const char* type, const char* help, double v) {
  Header(out, name, type, help);
  out += name;
  out += ' ';
  out += Number(v);
  out += '\n';
}

// A histogram in seconds from the engine's millisecond buckets (which are not cumulative).
void Histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h) {
  Header(out, name, "histogram", help);
  int64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kBoundsMs.size(); ++i) {
    cumulative += h.counts[i];
    out += std::string(name) + "_bucket{le=\"" + Number(LatencyHistogram::kBoundsMs[i] / 1000.0) +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  out += std::string(name) + "_sum " + Number(h.sum_ms / 1000.0) + "\n";
  out += std::string(name) + "_count " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string RouteLabel(const std::string& method, const std::string& path) {
  static constexpr const char* kRoutes[] = {"/",
                                            "/health",
                                            "/metrics",
                                            "/v1/models",
                                            "/v1/chat/completions",
                                            "/v1/completions",
                                            "/tokenize",
                                            "/detokenize"};
  for (const char* r : kRoutes) {
    if (path == r) return method + " " + r;
  }
  return "other";
}

void ServerMetrics::CountRequest(const std::string& route, int status, double latency_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  request_latency_.Observe(latency_ms);
}

std::string ServerMetrics::Render(const EngineStats* stats) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Header(out, "gemma_local_http_requests_total", "counter",
           "HTTP requests answered, by route and status code.");
    for (const auto& [key, count] : requests_) {
      out += "gemma_local_http_requests_total{route=\"" + key.first + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }
    Histogram(out, "gemma_local_http_request_duration_seconds",
              "Time from a request's arrival to the end of its response (streams included).",
              request_latency_);
  }
  Metric(out, "gemma_local_model_ready", "gauge", "1 once the model is loaded.",
         stats != nullptr ? 1 : 0);
  if (stats == nullptr) return out;
  const EngineStats& s = *stats;
  Metric(out, "gemma_local_requests_queued", "gauge", "Requests waiting to start.",
         static_cast<double>(s.queued));
  Metric(out, "gemma_local_requests_running", "gauge", "Requests started and not finished.",
         static_cast<double>(s.running));
  Header(out, "gemma_local_requests_finished_total", "counter",
         "Engine requests (one per choice) by outcome.");
  const std::pair<const char*, int64_t> outcomes[] = {{"completed", s.completed},
                                                      {"cancelled", s.cancelled},
                                                      {"failed", s.failed},
                                                      {"timed_out", s.timed_out}};
  for (const auto& [name, v] : outcomes) {
    out += std::string("gemma_local_requests_finished_total{outcome=\"") + name + "\"} " +
           std::to_string(v) + "\n";
  }
  Metric(out, "gemma_local_prompt_tokens_total", "counter",
         "Prompt positions computed (prefix-cache hits not included).",
         static_cast<double>(s.prompt_tokens));
  Metric(out, "gemma_local_generated_tokens_total", "counter", "Tokens generated.",
         static_cast<double>(s.generated_tokens));
  Metric(out, "gemma_local_preemptions_total", "counter",
         "Requests whose KV cache was dropped to make room (recomputed later).",
         static_cast<double>(s.preemptions));
  Metric(out, "gemma_local_kv_cache_budget_bytes", "gauge", "The KV cache pool's byte budget.",
         static_cast<double>(s.kv_budget_bytes));
  Metric(out, "gemma_local_kv_cache_used_bytes", "gauge", "KV cache bytes held by requests.",
         static_cast<double>(s.kv_bytes_in_use));
  Metric(out, "gemma_local_kv_cache_blocks_in_use", "gauge", "KV cache blocks held by requests.",
         static_cast<double>(s.kv_blocks_in_use));
  Metric(out, "gemma_local_kv_cache_blocks_cached", "gauge",
         "KV cache blocks held by no request, kept for prefix-cache hits.",
         static_cast<double>(s.kv_blocks_cached));
  Metric(out, "gemma_local_kv_cache_usage_ratio", "gauge",
         "KV cache bytes held by requests over the budget.",
         s.kv_budget_bytes > 0
             ? static_cast<double>(s.kv_bytes_in_use) / static_cast<double>(s.kv_budget_bytes)
             : 0.0);
  Metric(out, "gemma_local_prefix_cache_queries_total", "counter",
         "Prompt positions looked up in the prefix cache.",
         static_cast<double>(s.prefix_cache_queries));
  Metric(out, "gemma_local_prefix_cache_hits_total", "counter",
         "Prompt positions found in the prefix cache.", static_cast<double>(s.prefix_cache_hits));
  Metric(out, "gemma_local_prefix_cache_hit_ratio", "gauge",
         "Prefix-cache hits over queries since start.",
         s.prefix_cache_queries > 0 ? static_cast<double>(s.prefix_cache_hits) /
                                          static_cast<double>(s.prefix_cache_queries)
                                    : 0.0);
  Histogram(out, "gemma_local_time_to_first_token_seconds",
            "Submit to the first generated token, queue time included.", s.ttft);
  Histogram(out, "gemma_local_inter_token_latency_seconds",
            "Time between consecutive generated tokens of a request.", s.itl);
  return out;
}

}  // namespace gemma_local::server
