#include "constrain/regex.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "core/utf8.h"

namespace gemma_local::constrain {
namespace {

void AppendInt(std::string& key, uint32_t v) {
  char buf[4];
  std::memcpy(buf, &v, 4);
  key.append(buf, 4);
}

ByteSet RangeSet(uint32_t lo, uint32_t hi) {
  ByteSet s;
  for (uint32_t b = lo; b <= hi; ++b) s.set(b);
  return s;
}

// Splits [lo, hi] (same UTF-8 length, no surrogates) into ranges whose encodings are products of
// byte ranges: byte i of every member lies in [first[i], last[i]].
void Utf8Products(uint32_t lo, uint32_t hi, std::vector<std::pair<std::string, std::string>>& out) {
  auto encode = [](uint32_t cp) {
    std::string s;
    AppendUtf8(cp, s);
    return s;
  };
  const size_t n = encode(lo).size();
  for (size_t i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;  // the low i continuation bytes
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        Utf8Products(lo, lo | m, out);
        Utf8Products((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        Utf8Products(lo, (hi & ~m) - 1, out);
        Utf8Products(hi & ~m, hi, out);
        return;
      }
    }
  }
  out.emplace_back(encode(lo), encode(hi));
}

// Two independent 64-bit accumulators (splitmix64's finalizer with different seeds and
// multipliers), so a fingerprint is a 128-bit hash of everything added.
struct FingerprintHasher {
  uint64_t lo = 0x243F6A8885A308D3ull, hi = 0x13198A2E03707344ull;
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  void Add(uint64_t v) {
    lo = Mix(lo ^ (v + 0x9E3779B97F4A7C15ull));
    hi = Mix(hi + v * 0xD6E8FEB86659FD93ull + 0xA0761D6478BD642Full);
  }
  void Add(const RegexFingerprint& f) {
    Add(f.lo);
    Add(f.hi);
  }
  RegexFingerprint Get() const { return RegexFingerprint{lo, hi}; }
};

}  // namespace

RegexArena::RegexArena() {
  nodes_.push_back(Node{Kind::kNothing});
  Node empty{Kind::kEmpty};
  empty.nullable = true;
  nodes_.push_back(empty);
}

RegexId RegexArena::Intern(Node n, std::span<const RegexId> children) {
  std::string key;
  key.push_back(static_cast<char>(n.kind));
  AppendInt(key, static_cast<uint32_t>(n.a));
  AppendInt(key, static_cast<uint32_t>(n.b));
  AppendInt(key, n.min);
  AppendInt(key, n.max);
  for (RegexId c : children) AppendInt(key, static_cast<uint32_t>(c));
  auto [it, inserted] = interned_.try_emplace(std::move(key), static_cast<RegexId>(nodes_.size()));
  if (!inserted) return it->second;
  n.list_begin = static_cast<uint32_t>(lists_.size());
  lists_.insert(lists_.end(), children.begin(), children.end());
  n.list_end = static_cast<uint32_t>(lists_.size());
  nodes_.push_back(n);
  return it->second;
}

RegexId RegexArena::Bytes(const ByteSet& set) {
  if (set.none()) return kNothing;
  std::string key = "S";
  for (int w = 0; w < 4; ++w) {
    uint64_t word = 0;
    for (int b = 0; b < 64; ++b) word |= uint64_t{set[static_cast<size_t>(w * 64 + b)]} << b;
    key.append(reinterpret_cast<const char*>(&word), 8);
  }
  auto [it, inserted] = interned_.try_emplace(std::move(key), static_cast<RegexId>(nodes_.size()));
  if (!inserted) return it->second;
  Node n{Kind::kBytes};
  n.a = static_cast<int32_t>(sets_.size());
  sets_.push_back(set);
  nodes_.push_back(n);
  return it->second;
}

RegexId RegexArena::Byte(uint8_t b) {
  ByteSet s;
  s.set(b);
  return Bytes(s);
}

RegexId RegexArena::Literal(std::string_view bytes) {
  RegexId r = kEmpty;
  for (size_t i = bytes.size(); i-- > 0;) r = Concat(Byte(static_cast<uint8_t>(bytes[i])), r);
  return r;
}

RegexId RegexArena::Concat(RegexId a, RegexId b) {
  if (a == kNothing || b == kNothing) return kNothing;
  if (a == kEmpty) return b;
  if (b == kEmpty) return a;
  if (node(a).kind == Kind::kConcat) {  // keep concatenations right-nested
    const Node& n = node(a);
    const RegexId head = n.a, tail = n.b;
    return Concat(head, Concat(tail, b));
  }
  Node n{Kind::kConcat};
  n.a = a;
  n.b = b;
  n.nullable = Nullable(a) && Nullable(b);
  return Intern(n, {});
}

RegexId RegexArena::Concat(std::span<const RegexId> parts) {
  RegexId r = kEmpty;
  for (size_t i = parts.size(); i-- > 0;) r = Concat(parts[i], r);
  return r;
}

RegexId RegexArena::Or(RegexId a, RegexId b) {
  const RegexId parts[] = {a, b};
  return Combine(Kind::kOr, parts);
}
RegexId RegexArena::Or(std::span<const RegexId> parts) { return Combine(Kind::kOr, parts); }
RegexId RegexArena::And(RegexId a, RegexId b) {
  const RegexId parts[] = {a, b};
  return Combine(Kind::kAnd, parts);
}
RegexId RegexArena::And(std::span<const RegexId> parts) { return Combine(Kind::kAnd, parts); }

// Unions and intersections are flattened, sorted and deduplicated (what keeps the number of
// derivatives finite), single-byte members are merged into one set, and the identities
// (nothing for Or, everything for And) are dropped.
RegexId RegexArena::Combine(Kind kind, std::span<const RegexId> parts) {
  const bool is_or = kind == Kind::kOr;
  const RegexId everything = Not(kNothing);
  std::vector<RegexId> flat;
  std::vector<RegexId> pending(parts.begin(), parts.end());
  bool have_set = false;
  ByteSet set;
  if (!is_or) set.set();
  while (!pending.empty()) {
    const RegexId r = pending.back();
    pending.pop_back();
    const Node& n = node(r);
    if (n.kind == kind) {
      for (RegexId c : Children(n)) pending.push_back(c);
      continue;
    }
    if (is_or) {
      if (r == kNothing) continue;
      if (r == everything) return everything;
    } else {
      if (r == kNothing) return kNothing;
      if (r == everything) continue;
    }
    if (n.kind == Kind::kBytes) {
      have_set = true;
      if (is_or) {
        set |= sets_[static_cast<size_t>(n.a)];
      } else {
        set &= sets_[static_cast<size_t>(n.a)];
      }
      continue;
    }
    flat.push_back(r);
  }
  if (have_set) {
    const RegexId s = Bytes(set);
    if (!is_or && s == kNothing) return kNothing;
    flat.push_back(s);
  }
  std::sort(flat.begin(), flat.end());
  flat.erase(std::unique(flat.begin(), flat.end()), flat.end());
  if (flat.empty()) return is_or ? kNothing : everything;
  if (flat.size() == 1) return flat[0];
  Node n{kind};
  n.nullable = !is_or;
  for (RegexId c : flat)
    n.nullable = is_or ? (n.nullable || Nullable(c)) : (n.nullable && Nullable(c));
  return Intern(n, flat);
}

RegexId RegexArena::Not(RegexId a) {
  if (node(a).kind == Kind::kNot) return node(a).a;
  Node n{Kind::kNot};
  n.a = a;
  n.nullable = !Nullable(a);
  return Intern(n, {});
}

RegexId RegexArena::Repeat(RegexId a, uint32_t min, uint32_t max) {
  if (max < min) return kNothing;
  if (max == 0 || a == kEmpty) return kEmpty;
  if (a == kNothing) return min == 0 ? kEmpty : kNothing;
  if (min == 1 && max == 1) return a;
  const Node& inner = node(a);
  if (inner.kind == Kind::kRepeat && inner.min == 0 && inner.max == kUnbounded && min <= 1 &&
      max == kUnbounded) {
    return a;  // (x*)* and (x*)+ are x*
  }
  Node n{Kind::kRepeat};
  n.a = a;
  n.min = min;
  n.max = max;
  n.nullable = min == 0 || Nullable(a);
  return Intern(n, {});
}

RegexId RegexArena::CodePoints(std::span<const std::pair<uint32_t, uint32_t>> ranges) {
  std::vector<std::pair<uint32_t, uint32_t>> sorted;
  for (auto [lo, hi] : ranges) {
    if (lo > hi) std::swap(lo, hi);
    hi = std::min<uint32_t>(hi, 0x10FFFF);
    if (lo > hi) continue;
    // Drop surrogates (not scalar values, not encodable in UTF-8).
    if (lo < 0xD800 && hi >= 0xD800) {
      sorted.emplace_back(lo, 0xD7FF);
      if (hi > 0xDFFF) sorted.emplace_back(0xE000, hi);
    } else if (lo >= 0xD800 && lo <= 0xDFFF) {
      if (hi > 0xDFFF) sorted.emplace_back(0xE000, hi);
    } else {
      sorted.emplace_back(lo, hi);
    }
  }
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  for (auto r : sorted) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  std::vector<std::pair<std::string, std::string>> products;
  for (auto [lo, hi] : merged) {
    for (uint32_t limit : {0x7Fu, 0x7FFu, 0xFFFFu, 0x10FFFFu}) {
      if (lo > hi) break;
      if (lo > limit) continue;
      const uint32_t end = std::min(hi, limit);
      Utf8Products(lo, end, products);
      lo = end + 1;
    }
  }
  std::vector<RegexId> alternatives;
  for (const auto& [first, last] : products) {
    std::vector<RegexId> seq;
    for (size_t i = 0; i < first.size(); ++i) {
      seq.push_back(Bytes(RangeSet(static_cast<uint8_t>(first[i]), static_cast<uint8_t>(last[i]))));
    }
    alternatives.push_back(Concat(seq));
  }
  return Or(alternatives);
}

RegexId RegexArena::CodePointRange(uint32_t lo, uint32_t hi) {
  const std::pair<uint32_t, uint32_t> range[] = {{lo, hi}};
  return CodePoints(range);
}

RegexId RegexArena::Substitute(RegexId r, const std::function<RegexId(const ByteSet&)>& f) {
  std::unordered_map<RegexId, RegexId> memo;
  std::function<RegexId(RegexId)> go = [&](RegexId x) -> RegexId {
    if (auto it = memo.find(x); it != memo.end()) return it->second;
    const Node n = node(x);
    RegexId out = x;
    switch (n.kind) {
      case Kind::kNothing:
      case Kind::kEmpty:
        break;
      case Kind::kBytes: {
        const ByteSet set = sets_[static_cast<size_t>(n.a)];
        out = f(set);
        break;
      }
      case Kind::kConcat:
        out = Concat(go(n.a), go(n.b));
        break;
      case Kind::kOr:
      case Kind::kAnd: {
        const std::vector<RegexId> children(lists_.begin() + n.list_begin,
                                            lists_.begin() + n.list_end);
        std::vector<RegexId> mapped;
        for (RegexId c : children) mapped.push_back(go(c));
        out = n.kind == Kind::kOr ? Or(mapped) : And(mapped);
        break;
      }
      case Kind::kNot:
        out = Not(go(n.a));
        break;
      case Kind::kRepeat:
        out = Repeat(go(n.a), n.min, n.max);
        break;
    }
    memo.emplace(x, out);
    return out;
  };
  return go(r);
}

RegexId RegexArena::Derivative(RegexId r, uint8_t b) {
  const uint64_t key = (static_cast<uint64_t>(r) << 8) | b;
  if (auto it = derivatives_.find(key); it != derivatives_.end()) return it->second;
  const RegexId d = ComputeDerivative(r, b);
  derivatives_.emplace(key, d);
  return d;
}

RegexId RegexArena::ComputeDerivative(RegexId r, uint8_t b) {
  const Node n = node(r);  // copy: the arena may grow below
  switch (n.kind) {
    case Kind::kNothing:
    case Kind::kEmpty:
      return kNothing;
    case Kind::kBytes:
      return sets_[static_cast<size_t>(n.a)][b] ? kEmpty : kNothing;
    case Kind::kConcat: {
      const RegexId head = Concat(Derivative(n.a, b), n.b);
      return Nullable(n.a) ? Or(head, Derivative(n.b, b)) : head;
    }
    case Kind::kOr:
    case Kind::kAnd: {
      const std::vector<RegexId> children(Children(n).begin(), Children(n).end());
      std::vector<RegexId> ds;
      ds.reserve(children.size());
      for (RegexId c : children) ds.push_back(Derivative(c, b));
      return n.kind == Kind::kOr ? Or(ds) : And(ds);
    }
    case Kind::kNot:
      return Not(Derivative(n.a, b));
    case Kind::kRepeat:
      return Concat(Derivative(n.a, b), Repeat(n.a, n.min == 0 ? 0 : n.min - 1,
                                               n.max == kUnbounded ? kUnbounded : n.max - 1));
  }
  return kNothing;
}

void RegexArena::Refine(RegexId r, std::array<uint8_t, 256>& classes, int& count) {
  const Node n = node(r);
  switch (n.kind) {
    case Kind::kNothing:
    case Kind::kEmpty:
      return;
    case Kind::kBytes: {
      const ByteSet& set = sets_[static_cast<size_t>(n.a)];
      int16_t remap[512];
      std::fill(std::begin(remap), std::end(remap), -1);
      int next = 0;
      for (int b = 0; b < 256; ++b) {
        const int key = classes[static_cast<size_t>(b)] * 2 + (set[static_cast<size_t>(b)] ? 1 : 0);
        if (remap[key] < 0) remap[key] = static_cast<int16_t>(next++);
        classes[static_cast<size_t>(b)] = static_cast<uint8_t>(remap[key]);
      }
      count = next;
      return;
    }
    case Kind::kConcat:
      Refine(n.a, classes, count);
      if (Nullable(n.a)) Refine(n.b, classes, count);
      return;
    case Kind::kOr:
    case Kind::kAnd:
      for (size_t i = n.list_begin; i < n.list_end; ++i) Refine(lists_[i], classes, count);
      return;
    case Kind::kNot:
    case Kind::kRepeat:
      Refine(n.a, classes, count);
      return;
  }
}

const RegexArena::ByteClasses& RegexArena::Classes(RegexId r) {
  if (auto it = classes_.find(r); it != classes_.end()) return it->second;
  ByteClasses c;
  int count = 1;
  Refine(r, c.class_of, count);
  c.representative.assign(static_cast<size_t>(count), 0);
  std::vector<bool> seen(static_cast<size_t>(count), false);
  for (int b = 0; b < 256; ++b) {
    const uint8_t k = c.class_of[static_cast<size_t>(b)];
    if (!seen[k]) {
      seen[k] = true;
      c.representative[k] = static_cast<uint8_t>(b);
    }
  }
  return classes_.emplace(r, std::move(c)).first->second;
}

Result<int32_t> RegexArena::MinLength(RegexId r) {
  if (auto it = min_length_.find(r); it != min_length_.end()) return it->second;
  std::deque<std::pair<RegexId, int32_t>> queue{{r, 0}};
  std::unordered_set<RegexId> visited{r};
  while (!queue.empty()) {
    auto [s, dist] = queue.front();
    queue.pop_front();
    if (Nullable(s)) {
      min_length_[r] = dist;
      return dist;
    }
    const std::vector<uint8_t> reps = Classes(s).representative;
    for (uint8_t b : reps) {
      const RegexId d = Derivative(s, b);
      if (d == kNothing || visited.count(d) != 0) continue;
      if (auto it = min_length_.find(d); it != min_length_.end() && it->second < 0) continue;
      if (visited.size() >= state_budget_) {
        return ResourceExhaustedError("regex has more than " + std::to_string(state_budget_) +
                                      " states within reach of one state");
      }
      visited.insert(d);
      queue.emplace_back(d, dist + 1);
    }
  }
  for (RegexId s : visited) min_length_[s] = -1;  // nothing reachable from any of them accepts
  return -1;
}

Result<bool> RegexArena::IsEmpty(RegexId r) {
  GL_ASSIGN_OR_RETURN(int32_t n, MinLength(r));
  return n < 0;
}

bool RegexArena::Matches(RegexId r, std::string_view bytes) {
  for (char c : bytes) {
    r = Derivative(r, static_cast<uint8_t>(c));
    if (r == kNothing) return false;
  }
  return Nullable(r);
}

Result<std::string> RegexArena::ShortestMatch(RegexId r) {
  struct Visit {
    RegexId state;
    int32_t parent;
    uint8_t byte;
  };
  std::vector<Visit> order{{r, -1, 0}};
  std::unordered_set<RegexId> visited{r};
  for (size_t i = 0; i < order.size(); ++i) {
    const RegexId s = order[i].state;
    if (Nullable(s)) {
      std::string out;
      for (auto k = static_cast<int32_t>(i); order[static_cast<size_t>(k)].parent >= 0;
           k = order[static_cast<size_t>(k)].parent) {
        out.push_back(static_cast<char>(order[static_cast<size_t>(k)].byte));
      }
      std::reverse(out.begin(), out.end());
      return out;
    }
    const std::vector<uint8_t> reps = Classes(s).representative;
    for (uint8_t b : reps) {
      const RegexId d = Derivative(s, b);
      if (d == kNothing || !visited.insert(d).second) continue;
      if (visited.size() > state_budget_) {
        return ResourceExhaustedError("regex has more than " + std::to_string(state_budget_) +
                                      " states within reach of one state");
      }
      order.push_back({d, static_cast<int32_t>(i), b});
    }
  }
  return InvalidArgumentError("the regular expression matches nothing");
}

RegexFingerprint CombineFingerprints(std::span<const RegexFingerprint> parts) {
  FingerprintHasher h;
  h.Add(parts.size());
  for (const RegexFingerprint& f : parts) h.Add(f);
  return h.Get();
}

RegexFingerprint RegexArena::BehaviorFingerprint(RegexId r, uint32_t horizon, uint64_t key,
                                                 FingerprintMemo* memo) const {
  // The key seeds the hash (mixed into every node), so a client cannot build a grammar whose
  // state collides with another's in a shared cache without knowing it.
  return Fingerprint(r, horizon, /*clamp=*/true, key, memo);
}

RegexFingerprint RegexArena::Fingerprint(RegexId r, uint32_t horizon, bool clamp, uint64_t key,
                                         FingerprintMemo* memo) const {
  const uint64_t slot = (static_cast<uint64_t>(static_cast<uint32_t>(r)) << 1) | (clamp ? 1 : 0);
  if (auto it = memo->find(slot); it != memo->end()) return it->second;
  const Node& n = node(r);
  FingerprintHasher h;
  h.Add(key);
  h.Add(static_cast<uint64_t>(n.kind));
  switch (n.kind) {
    case Kind::kNothing:
    case Kind::kEmpty:
      break;
    case Kind::kBytes: {
      const ByteSet& set = sets_[static_cast<size_t>(n.a)];
      for (int w = 0; w < 4; ++w) {
        uint64_t word = 0;
        for (int b = 0; b < 64; ++b) word |= uint64_t{set[static_cast<size_t>(w * 64 + b)]} << b;
        h.Add(word);
      }
      break;
    }
    case Kind::kConcat: {
      // Concatenations nest to the right (a literal of n bytes is n deep): walk the spine in a
      // loop, so a long literal cannot exhaust the stack.
      RegexId tail = r;
      size_t parts = 0;
      while (node(tail).kind == Kind::kConcat) {
        h.Add(Fingerprint(node(tail).a, horizon, clamp, key, memo));
        tail = node(tail).b;
        ++parts;
      }
      h.Add(Fingerprint(tail, horizon, clamp, key, memo));
      h.Add(parts);
      break;
    }
    case Kind::kOr:
    case Kind::kAnd: {
      // Unordered: children's ids depend on the arena's history, so sort their fingerprints.
      // Inside an intersection, bounds are exact (a clamp could make an empty
      // intersection non-empty).
      const bool inner_clamp = clamp && n.kind == Kind::kOr;
      std::vector<RegexFingerprint> children;
      for (RegexId c : Children(n))
        children.push_back(Fingerprint(c, horizon, inner_clamp, key, memo));
      std::sort(children.begin(), children.end());
      h.Add(children.size());
      for (const RegexFingerprint& c : children) h.Add(c);
      break;
    }
    case Kind::kNot:
      h.Add(Fingerprint(n.a, horizon, /*clamp=*/false, key, memo));
      break;
    case Kind::kRepeat: {
      uint64_t min = n.min, max = n.max;
      if (clamp && !Nullable(n.a) && min <= max) {
        const uint64_t bound = uint64_t{horizon} + 1;
        if (max != kUnbounded && max >= bound) max = kUnbounded;
        if (min > bound) min = bound;
      }
      h.Add(min);
      h.Add(max);
      h.Add(Fingerprint(n.a, horizon, clamp, key, memo));
      break;
    }
  }
  const RegexFingerprint f = h.Get();
  memo->emplace(slot, f);
  return f;
}

std::string RegexArena::DebugString(RegexId r) const {
  const Node& n = node(r);
  switch (n.kind) {
    case Kind::kNothing:
      return "∅";
    case Kind::kEmpty:
      return "ε";
    case Kind::kBytes: {
      const ByteSet& s = sets_[static_cast<size_t>(n.a)];
      if (s.count() == 1) {
        for (int b = 0; b < 256; ++b) {
          if (s[static_cast<size_t>(b)]) {
            return b >= 0x21 && b < 0x7F ? std::string(1, static_cast<char>(b))
                                         : "\\x" + std::to_string(b);
          }
        }
      }
      return "[" + std::to_string(s.count()) + " bytes]";
    }
    case Kind::kConcat:
      return "(" + DebugString(n.a) + DebugString(n.b) + ")";
    case Kind::kOr:
    case Kind::kAnd: {
      std::string out = "(";
      for (size_t i = n.list_begin; i < n.list_end; ++i) {
        if (i > n.list_begin) out += n.kind == Kind::kOr ? "|" : "&";
        out += DebugString(lists_[i]);
      }
      return out + ")";
    }
    case Kind::kNot:
      return "~" + DebugString(n.a);
    case Kind::kRepeat:
      return DebugString(n.a) + "{" + std::to_string(n.min) + "," +
             (n.max == kUnbounded ? std::string() : std::to_string(n.max)) + "}";
  }
  return "?";
}

}  // namespace gemma_local::constrain
