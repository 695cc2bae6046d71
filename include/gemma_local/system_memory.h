// What the operating system says about this machine's and this process's memory
// (implemented in src/core).
#pragma once

#include <cstdint>
#include <optional>

namespace gemma_local {

// Memory the system can give new allocations without swapping (Linux:
// MemAvailable of /proc/meminfo); nullopt where the system does not say.
std::optional<int64_t> AvailableMemoryBytes();

// Peak resident set size of this process so far.
int64_t PeakRssBytes();

}  // namespace gemma_local
