// API keys: the server keeps SHA-256 digests of its keys, never compares the keys themselves, and
// compares digests in constant time, so neither a key's bytes nor its length leak through timing.
// A key is named in logs by its key id: the first 12 hex digits of its digest.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gemma_local::server {

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(std::string_view data);
std::string Hex(const uint8_t* bytes, size_t n);

class ApiKeys {
 public:
  explicit ApiKeys(const std::vector<std::string>& keys);
  bool enabled() const { return !digests_.empty(); }
  // The key id of the key in an "Authorization: Bearer KEY" header value, or nullopt when the
  // header is missing, malformed or names no key. Every key is compared (no early exit).
  std::optional<std::string> Check(std::string_view authorization) const;

 private:
  std::vector<Sha256Digest> digests_;
};

}  // namespace gemma_local::server
