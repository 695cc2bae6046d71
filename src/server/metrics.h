// GET /metrics: Prometheus text exposition (format 0.0.4) of the server's request counts and the
// engine's own counters, gauges and latency histograms (EngineStats).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "gemma_local/engine.h"

namespace gemma_local::server {

// The route label of a request path: the known routes by name, anything else "other" (so a
// client cannot grow the label set).
std::string RouteLabel(const std::string& method, const std::string& path);

class ServerMetrics {
 public:
  // One answered request (any route, any status, including ones refused before routing).
  void CountRequest(const std::string& route, int status, double latency_ms);
  // The exposition text; `stats` is null while the model loads.
  std::string Render(const EngineStats* stats) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // guarded by mu_
  LatencyHistogram request_latency_;                         // guarded by mu_
};

}  // namespace gemma_local::server
