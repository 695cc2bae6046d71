#include "runtime/chat_prompt.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

namespace gemma_local {
namespace {

// Placeholders are U+E000 <index> U+E001: private-use characters no tokenizer treats as special
// and no chat template rewrites. The two characters typed by a user are swapped out too.
constexpr std::string_view kOpen = "\xEE\x80\x80";
constexpr std::string_view kClose = "\xEE\x80\x81";

void Swap(nlohmann::ordered_json& j, const Tokenizer& tokenizer,
          std::vector<std::string>* originals) {
  if (j.is_array() || j.is_object()) {
    for (auto& x : j) Swap(x, tokenizer, originals);
    return;
  }
  if (!j.is_string()) return;
  std::string& s = j.get_ref<std::string&>();
  std::vector<std::pair<size_t, size_t>> spans = tokenizer.FindSpecialText(s);
  for (std::string_view marker : {kOpen, kClose}) {
    for (size_t p = s.find(marker); p != std::string::npos; p = s.find(marker, p + 1)) {
      spans.emplace_back(p, p + marker.size());
    }
  }
  if (spans.empty()) return;
  std::sort(spans.begin(), spans.end());
  std::string out;
  size_t done = 0;
  for (const auto& [begin, end] : spans) {
    if (begin < done) continue;  // inside a special token already swapped
    out.append(s, done, begin - done);
    out += kOpen;
    out += std::to_string(originals->size());
    out += kClose;
    originals->push_back(s.substr(begin, end - begin));
    done = end;
  }
  out.append(s, done);
  s = std::move(out);
}

}  // namespace

Result<std::vector<int32_t>> TokenizeChat(const ChatTemplate& chat_template,
                                          ChatTemplateInputs inputs, const Tokenizer& tokenizer) {
  std::vector<std::string> originals;
  Swap(inputs.messages, tokenizer, &originals);
  if (inputs.tools) Swap(*inputs.tools, tokenizer, &originals);
  GL_ASSIGN_OR_RETURN(std::string rendered, chat_template.Render(inputs));
  EncodeOptions options;
  options.parse_special = true;
  if (!originals.empty()) {
    // Put the swapped text back and note where it sits. A template may drop a message's text
    // (placeholders missing) or repeat it (each copy restored); a cut placeholder is an error.
    std::string text;
    text.reserve(rendered.size());
    size_t i = 0;
    for (size_t p = rendered.find(kOpen); p != std::string::npos; p = rendered.find(kOpen, i)) {
      text.append(rendered, i, p - i);
      const size_t digits = p + kOpen.size();
      const size_t close = rendered.find(kClose, digits);
      size_t index = originals.size();
      if (close != std::string::npos && close > digits && close - digits <= 9 &&
          std::all_of(rendered.begin() + static_cast<std::ptrdiff_t>(digits),
                      rendered.begin() + static_cast<std::ptrdiff_t>(close),
                      [](char c) { return c >= '0' && c <= '9'; })) {
        index = std::stoul(rendered.substr(digits, close - digits));
      }
      if (index >= originals.size()) {
        return InvalidArgumentError(
            "the chat template altered control-token text inside a message (e.g. \"<eos>\"); "
            "remove it from the message");
      }
      options.literal_spans.emplace_back(text.size(), text.size() + originals[index].size());
      text += originals[index];
      i = close + kClose.size();
    }
    text.append(rendered, i);
    rendered = std::move(text);
  }
  return tokenizer.Encode(rendered, options);
}

}  // namespace gemma_local
