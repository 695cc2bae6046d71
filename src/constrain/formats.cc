#include "constrain/formats.h"

#include <cctype>
#include <string>

namespace gemma_local::constrain {
namespace {

bool Digits(std::string_view s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// RFC 3339 full-date.
bool Date(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !Digits(s, 0, 4, &y) ||
      !Digits(s, 5, 2, &m) || !Digits(s, 8, 2, &d)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= kDays[m - 1] + (m == 2 && IsLeap(y) ? 1 : 0);
}

// RFC 3339 full-time: a leap second only where the time in UTC is 23:59:60.
bool Time(std::string_view s) {
  int h, mi, sec;
  if (s.size() < 9 || s[2] != ':' || s[5] != ':' || !Digits(s, 0, 2, &h) || !Digits(s, 3, 2, &mi) ||
      !Digits(s, 6, 2, &sec)) {
    return false;
  }
  size_t i = 8;
  if (i < s.size() && s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i >= s.size()) return false;
  int off_minutes = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    if (i + 1 != s.size()) return false;
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om;
    if (s.size() != i + 6 || s[i + 3] != ':' || !Digits(s, i + 1, 2, &oh) ||
        !Digits(s, i + 4, 2, &om) || oh > 23 || om > 59) {
      return false;
    }
    off_minutes = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return false;
  }
  if (h > 23 || mi > 59 || sec > 60) return false;
  if (sec == 60) {
    const int utc = ((h * 60 + mi - off_minutes) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59) return false;
  }
  return true;
}

bool DateTime(std::string_view s) {
  return s.size() > 11 && (s[10] == 'T' || s[10] == 't') && Date(s.substr(0, 10)) &&
         Time(s.substr(11));
}

bool Uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool Hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool Ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || j - i > 3 || (j - i > 1 && s[i] == '0')) return false;
    if (std::stoi(std::string(s.substr(i, j - i))) > 255) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool Ipv6(std::string_view s) {
  // Hex groups of 1-4 digits separated by ':', at most one "::", 8 groups (or fewer with "::").
  if (s.empty()) return false;
  const size_t dc = s.find("::");
  if (dc != std::string_view::npos && s.find("::", dc + 1) != std::string_view::npos) return false;
  int groups = 0;
  size_t i = 0;
  if (dc == 0) i = 2;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && std::isxdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i || j - i > 4) {
      // An embedded IPv4 tail counts as two groups.
      if (j < s.size() && s[j] == '.' && Ipv4(s.substr(i))) return groups + 2 <= 8;
      return false;
    }
    if (j < s.size() && s[j] == '.')
      return Ipv4(s.substr(i)) && groups + 2 <= (dc == s.npos ? 8 : 7);
    ++groups;
    if (j == s.size()) break;
    if (s[j] != ':') return false;
    i = j + 1;
    if (i < s.size() && s[i] == ':')
      ++i;  // the "::"
    else if (i == s.size())
      return false;  // a trailing single ':'
  }
  return dc == std::string_view::npos ? groups == 8 : groups <= 7;
}

bool Email(std::string_view s) {
  const size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
  const std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    for (size_t i = 1; i + 1 < local.size(); ++i) {
      const char c = local[i];
      if (c == '\\') {
        ++i;
      } else if (c == '"' || static_cast<unsigned char>(c) < 32) {
        return false;
      }
    }
  } else {
    if (local.front() == '.' || local.back() == '.' || local.find("..") != local.npos) return false;
    for (char c : local) {
      if (!std::isalnum(static_cast<unsigned char>(c)) &&
          std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) == std::string_view::npos) {
        return false;
      }
    }
  }
  if (domain.front() == '[') {
    if (domain.back() != ']') return false;
    const std::string_view literal = domain.substr(1, domain.size() - 2);
    if (literal.rfind("IPv6:", 0) == 0) return Ipv6(literal.substr(5));
    return Ipv4(literal);
  }
  return Hostname(domain);
}

bool Unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}
bool SubDelim(char c) { return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos; }

// Characters of `s` are unreserved, sub-delims, `extra`, or %XX escapes.
bool Chars(std::string_view s, std::string_view extra) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (!Unreserved(c) && !SubDelim(c) && extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// RFC 3986 URI (absolute: a scheme is required).
bool Uri(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (size_t i = 1; i < colon; ++i) {
    const char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  std::string_view rest = s.substr(colon + 1);
  if (const size_t hash = rest.find('#'); hash != rest.npos) {
    if (!Chars(rest.substr(hash + 1), ":@/?")) return false;
    rest = rest.substr(0, hash);
  }
  if (const size_t q = rest.find('?'); q != rest.npos) {
    if (!Chars(rest.substr(q + 1), ":@/?")) return false;
    rest = rest.substr(0, q);
  }
  if (rest.rfind("//", 0) == 0) {
    rest = rest.substr(2);
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path = slash == rest.npos ? std::string_view() : rest.substr(slash);
    if (const size_t at = authority.rfind('@'); at != authority.npos) {
      if (!Chars(authority.substr(0, at), ":")) return false;
      authority = authority.substr(at + 1);
    }
    std::string_view host = authority;
    if (!authority.empty() && authority.front() == '[') {
      const size_t close = authority.find(']');
      if (close == authority.npos || !Ipv6(authority.substr(1, close - 1))) return false;
      host = authority.substr(0, close + 1);
      authority = authority.substr(close + 1);
      if (!authority.empty() && authority.front() != ':') return false;
    } else {
      const size_t pc = authority.find(':');
      host = authority.substr(0, pc);
      authority = pc == authority.npos ? std::string_view() : authority.substr(pc);
      if (!Chars(host, "")) return false;
    }
    if (!authority.empty()) {  // ":port"
      for (size_t i = 1; i < authority.size(); ++i) {
        if (authority[i] < '0' || authority[i] > '9') return false;
      }
    }
    return Chars(path, ":@/");
  }
  return Chars(rest, ":@/");
}

}  // namespace

bool IsCheckedFormat(std::string_view f) {
  return f == "date" || f == "time" || f == "date-time" || f == "uuid" || f == "email" ||
         f == "uri";
}

bool MatchesFormat(std::string_view f, std::string_view v) {
  if (f == "date") return Date(v);
  if (f == "time") return Time(v);
  if (f == "date-time") return DateTime(v);
  if (f == "uuid") return Uuid(v);
  if (f == "email") return Email(v);
  if (f == "uri") return Uri(v);
  return true;
}

}  // namespace gemma_local::constrain
