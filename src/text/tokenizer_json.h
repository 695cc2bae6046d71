// Fast reader for Hugging Face tokenizer.json: the two members that make up almost all of the file
// (model.vocab, 262k entries, and model.merges, 514k entries, for Gemma 3) are scanned straight
// into string views; every other member is handed to nlohmann::json as before.
//
// Why: building nlohmann's DOM for those members (a std::map node and a std::string per entry,
// then tearing it down) took about 1 s of the 1.2 s load of the Gemma 3 tokenizer.json.
//
// Contract: the result is what nlohmann::json::parse(text) followed by reading those members
// would give. The whole text is validated as strict RFC 8259 JSON (an optional UTF-8 BOM first, as
// nlohmann allows; invalid UTF-8 anywhere, raw control characters in strings, bad escapes, lone
// surrogates, trailing content are all errors). Duplicate object keys keep the later value, as
// nlohmann does, except inside model.vocab, whose entries are reported in document order with
// duplicates left to the caller.
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::text {

struct HfJsonMerge {
  // kPair: ["a", "b"]; kJoined: "a b" (a = whole string, split by the caller); kOther: anything
  // else (the caller rejects it).
  enum Kind : uint8_t { kPair, kJoined, kOther };
  std::string_view a, b;
  Kind kind = kOther;
};

struct HfTokenizerJson {
  // The top-level object without model.vocab / model.merges when those were read below.
  nlohmann::json doc;
  bool has_vocab = false;  // model.vocab was an object
  // (key, id) in document order; keys whose value is not an integer are in `vocab_not_integer`.
  std::vector<std::pair<std::string_view, int64_t>> vocab;
  std::vector<std::string_view> vocab_not_integer;
  bool has_merges = false;  // model.merges was an array
  std::vector<HfJsonMerge> merges;
  // Unescaped copies of strings that contained escapes; the views above point either into the
  // parsed text or into these (a deque never moves its elements).
  std::deque<std::string> owned;
};

// Parses `text`; the views in `out` point into `text` (which must outlive them) or `out.owned`.
// kCorruptData naming `source` when the text is not a JSON object.
Status ParseHfTokenizerJson(std::string_view text, const std::string& source, HfTokenizerJson& out);

}  // namespace gemma_local::text
