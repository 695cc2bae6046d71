#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace gemma_local::server {

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

std::string Hex(const uint8_t* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

ApiKeys::ApiKeys(const std::vector<std::string>& keys) {
  for (const std::string& k : keys) digests_.push_back(Sha256(k));
}

std::optional<std::string> ApiKeys::Check(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return std::nullopt;
  }
  const Sha256Digest given = Sha256(authorization.substr(kBearer.size()));
  int match = -1;
  for (size_t i = 0; i < digests_.size(); ++i) {
    if (CRYPTO_memcmp(given.data(), digests_[i].data(), given.size()) == 0) {
      match = static_cast<int>(i);
    }
  }
  if (match < 0) return std::nullopt;
  return Hex(digests_[match].data(), 6);
}

}  // namespace gemma_local::server
