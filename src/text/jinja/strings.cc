#include "text/jinja/strings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "text/jinja/builtins.h"
#include "text/jinja/lexer.h"

namespace gemma_local::jinja {

namespace {
bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Up(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char Down(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

uint32_t Decode(const std::string& cp) {
  const unsigned char c = static_cast<unsigned char>(cp[0]);
  if (cp.size() == 1) return c;
  uint32_t v = cp.size() == 2 ? (c & 0x1f) : cp.size() == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < cp.size(); ++k) v = (v << 6) | (static_cast<unsigned char>(cp[k]) & 0x3f);
  return v;
}
bool IsLineBreak(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d ||
         cp == 0x1e || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}
}  // namespace

std::string AsciiLower(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = Down(c);
  return out;
}

std::string AsciiUpper(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = Up(c);
  return out;
}

std::string Capitalize(const std::string& s) {
  std::string out = AsciiLower(s);
  if (!out.empty()) out[0] = Up(out[0]);
  return out;
}

std::string JinjaTitle(const std::string& s) {
  // re.split(r"([-\s\(\{\[\<]+)") then item[0].upper() + item[1:].lower() for each piece.
  std::string out;
  bool word_start = true;
  for (const std::string& cp : CodePoints(s)) {
    const uint32_t c = Decode(cp);
    const bool sep = IsPythonSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out += cp;
      word_start = true;
    } else {
      out += cp.size() == 1 ? std::string(1, word_start ? Up(cp[0]) : Down(cp[0])) : cp;
      word_start = false;
    }
  }
  return out;
}

std::string PyTitle(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    if (IsAsciiAlpha(c)) {
      c = prev_cased ? Down(c) : Up(c);
      prev_cased = true;
    } else {
      prev_cased = static_cast<unsigned char>(c) >= 0x80 && prev_cased;
    }
  }
  return out;
}

int64_t WordCount(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool w = c >= 0x80 || std::isalnum(c) || c == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> lines;
  std::string cur;
  const std::vector<std::string> cps = CodePoints(s);
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t c = Decode(cps[i]);
    if (IsLineBreak(c)) {
      if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == "\n") ++i;
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += cps[i];
    }
  }
  if (!cur.empty()) lines.push_back(std::move(cur));
  return lines;
}

std::string StripChars(const std::string& s, const std::string& chars, bool left, bool right) {
  const std::vector<std::string> set = CodePoints(chars);
  const std::vector<std::string> cps = CodePoints(s);
  auto in_set = [&](const std::string& cp) {
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_set(cps[b])) ++b;
  if (right)
    while (e > b && in_set(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

Result<Value> ReplaceString(const std::string& s, const std::string& old_s,
                            const std::string& new_s, int64_t count, size_t max_bytes) {
  std::string out;
  int64_t done = 0;
  auto grow = [&](size_t extra) { return out.size() + extra <= max_bytes; };
  if (old_s.empty()) {
    const std::vector<std::string> cps = CodePoints(s);
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        if (!grow(new_s.size())) return InvalidArgumentError("replace: result too large");
        out += new_s;
        ++done;
      }
      if (i < cps.size()) out += cps[i];
    }
    return Value::String(std::move(out));
  }
  size_t pos = 0;
  while (true) {
    const size_t hit = (count < 0 || done < count) ? s.find(old_s, pos) : std::string::npos;
    if (hit == std::string::npos) {
      out.append(s, pos, std::string::npos);
      break;
    }
    if (!grow(hit - pos + new_s.size())) return InvalidArgumentError("replace: result too large");
    out.append(s, pos, hit - pos);
    out += new_s;
    pos = hit + old_s.size();
    ++done;
  }
  if (out.size() > max_bytes) return InvalidArgumentError("replace: result too large");
  return Value::String(std::move(out));
}

Result<Value> PySplit(const std::string& s, const Value& sep, int64_t maxsplit) {
  ValueList parts;
  if (sep.is_none()) {
    const std::vector<std::string> cps = CodePoints(s);
    size_t i = 0;
    int64_t splits = 0;
    while (true) {
      while (i < cps.size() && IsPythonSpace(Decode(cps[i]))) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        std::string rest;
        for (size_t k = i; k < cps.size(); ++k) rest += cps[k];
        parts.push_back(Value::String(std::move(rest)));
        break;
      }
      std::string word;
      while (i < cps.size() && !IsPythonSpace(Decode(cps[i]))) word += cps[i++];
      parts.push_back(Value::String(std::move(word)));
      ++splits;
    }
    return Value::List(std::move(parts));
  }
  if (!sep.is_string()) return InvalidArgumentError("must be str or None, not " + sep.TypeName());
  const std::string& d = sep.as_string();
  if (d.empty()) return InvalidArgumentError("empty separator");
  size_t pos = 0;
  int64_t splits = 0;
  while (true) {
    const size_t hit = (maxsplit < 0 || splits < maxsplit) ? s.find(d, pos) : std::string::npos;
    if (hit == std::string::npos) {
      parts.push_back(Value::String(s.substr(pos)));
      break;
    }
    parts.push_back(Value::String(s.substr(pos, hit - pos)));
    pos = hit + d.size();
    ++splits;
  }
  return Value::List(std::move(parts));
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace gemma_local::jinja

namespace gemma_local::jinja {

Result<std::string> PercentFormat(const std::string& fmt, const Value& args, size_t max_bytes) {
  // Python's printf-style formatting: a tuple supplies positional values, a dict supplies
  // %(name)s values, anything else is the single value.
  const bool is_tuple = args.is_tuple();
  const bool is_map = args.is_dict();
  const ValueList single = {args};
  const ValueList& values = is_tuple ? args.as_list() : single;
  size_t next = 0;
  bool used_map = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) return InvalidArgumentError("incomplete format");
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) return InvalidArgumentError("incomplete format key");
      if (!is_map) return InvalidArgumentError("format requires a mapping");
      arg = args.Find(fmt.substr(i + 1, close - i - 1));
      if (arg == nullptr)
        return InvalidArgumentError("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      used_map = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i]) != nullptr) flags += fmt[i++];
    std::string width_s, prec_s;
    bool has_prec = false;
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) width_s += fmt[i++];
    if (i < fmt.size() && fmt[i] == '.') {
      has_prec = true;
      ++i;
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) prec_s += fmt[i++];
    }
    if (width_s.size() > 3 || prec_s.size() > 3 || flags.size() > 5) {
      return InvalidArgumentError("format spec too large");
    }
    const int width = width_s.empty() ? 0 : std::atoi(width_s.c_str());
    const int prec = prec_s.empty() ? 0 : std::atoi(prec_s.c_str());
    const std::string spec = "%" + flags + width_s + (has_prec ? "." + prec_s : "");
    if (i >= fmt.size()) return InvalidArgumentError("incomplete format");
    const char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (next >= values.size())
        return InvalidArgumentError("not enough arguments for format string");
      arg = &values[next++];
    }
    char buf[512];
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        const std::string s = conv == 's' ? arg->Str() : arg->Repr();
        std::string text = s;
        if (has_prec) {
          std::vector<std::string> cps = CodePoints(text);
          if (cps.size() > static_cast<size_t>(prec)) {
            text.clear();
            for (int k = 0; k < prec; ++k) text += cps[static_cast<size_t>(k)];
          }
        }
        const size_t n = CodePoints(text).size();
        if (static_cast<size_t>(width) > n) {
          const std::string pad(static_cast<size_t>(width) - n, ' ');
          text = flags.find('-') != std::string::npos ? text + pad : pad + text;
        }
        out += text;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (!arg->is_number())
          return InvalidArgumentError("%" + std::string(1, conv) +
                                      " format: a real number is required, not " + arg->TypeName());
        if (arg->is_float() && !(std::fabs(arg->as_float()) < 9.2e18)) {
          // Python prints the exact big integer; we have 64 bits, so this is an error.
          return InvalidArgumentError("%" + std::string(1, conv) + " format: number out of range");
        }
        const long long v =
            arg->is_float() ? static_cast<long long>(arg->as_float()) : arg->as_int();
        const char c = conv == 'i' ? 'd' : conv;
        if (c == 'c') return InvalidArgumentError("%c format is not supported");
        std::snprintf(buf, sizeof(buf), (spec + "ll" + std::string(1, c)).c_str(), v);
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg->is_number())
          return InvalidArgumentError("must be real number, not " + arg->TypeName());
        std::snprintf(buf, sizeof(buf), (spec + std::string(1, conv)).c_str(), arg->as_float());
        out += buf;
        break;
      }
      default:
        return InvalidArgumentError(std::string("unsupported format character '") + conv + "'");
    }
    if (out.size() > max_bytes) return InvalidArgumentError("format: result too large");
  }
  if (!used_map && !is_map && next < values.size()) {
    return InvalidArgumentError("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace gemma_local::jinja

namespace gemma_local::jinja {

std::string Center(const std::string& s, int64_t width) {
  const int64_t n = static_cast<int64_t>(CodePoints(s).size());
  if (width <= n) return s;
  const int64_t marg = width - n;
  const int64_t left = marg / 2 + (marg & width & 1);
  return std::string(static_cast<size_t>(left), ' ') + s +
         std::string(static_cast<size_t>(marg - left), ' ');
}

}  // namespace gemma_local::jinja
