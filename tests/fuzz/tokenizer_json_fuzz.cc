// libFuzzer target: any bytes as a Hugging Face tokenizer: the bytes up to the first NUL are
// tokenizer.json, the rest (when there is a NUL) tokenizer_config.json. Loading must give a
// tokenizer or an error; a loaded tokenizer must encode and decode a short text, and decode ids
// taken from the input, to values or errors. An exception, crash, hang, leak or an allocation
// out of proportion to the input is a library bug.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "gemma_local/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t nul = bytes.find('\0');
  const std::string_view tokenizer_json = bytes.substr(0, nul);
  const std::string_view config_json =
      nul == std::string_view::npos ? std::string_view() : bytes.substr(nul + 1);
  auto tokenizer = gemma_local::Tokenizer::FromHfJson(tokenizer_json, config_json, "fuzz");
  if (!tokenizer.ok()) return 0;
  const gemma_local::Tokenizer& t = **tokenizer;
  for (bool special : {false, true}) {
    auto ids = t.Encode("Hello w\xC3\xB6rld <bos>\n\n a", {.parse_special = special});
    if (ids.ok()) (void)t.Decode(*ids);
  }
  // Ids from the input bytes, some out of range on purpose.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size && ids.size() < 16; i += 2) {
    ids.push_back(static_cast<int32_t>(data[i] | (data[i + 1] << 8)) - 16);
  }
  (void)t.Decode(ids, {.skip_special = true});
  gemma_local::TokenStreamDecoder stream(*tokenizer);
  for (int32_t id : ids) (void)stream.Push(id);
  (void)stream.Finish();
  return 0;
}
