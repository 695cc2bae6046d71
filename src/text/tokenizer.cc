#include "text/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/utf8.h"

namespace gemma_local::text {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes, so callers
// on validated text never see them and callers on raw bytes still make progress).
inline size_t Utf8Len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

// Length of the complete valid character at the start of `s`, or 0 if none starts there.
size_t ValidCharAt(std::string_view s) {
  if (s.empty()) return 0;
  const auto c0 = static_cast<unsigned char>(s[0]);
  if (c0 < 0x80) return 1;
  const Utf8Lead lead = ClassifyUtf8Lead(c0);
  const size_t len = lead.len;
  const unsigned char lo = lead.second_lo, hi = lead.second_hi;
  if (len == 0) return 0;
  if (s.size() < len) return 0;
  const auto c1 = static_cast<unsigned char>(s[1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80 || c > 0xBF) return 0;
  }
  return len;
}

}  // namespace

size_t IncompleteUtf8Tail(std::string_view bytes) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut short but valid so far.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c0 = static_cast<unsigned char>(bytes[n - back]);
    if (c0 >= 0x80 && c0 <= 0xBF) continue;  // continuation byte; keep looking for the lead
    const Utf8Lead lead = ClassifyUtf8Lead(c0);
    const size_t len = lead.len;
    const unsigned char lo = lead.second_lo, hi = lead.second_hi;
    if (len == 0) return 0;
    if (back >= len) return 0;  // complete (or over-long run): nothing pending
    for (size_t i = 1; i < back; ++i) {
      const auto c = static_cast<unsigned char>(bytes[n - back + i]);
      const unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
      if (c < l || c > h) return 0;
    }
    return back;
  }
  return 0;
}

void AppendUtf8Sanitized(std::string_view bytes, std::string& out) {
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t len = ValidCharAt(bytes.substr(i));
    if (len == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
}

Result<std::shared_ptr<const TokenizerModel>> TokenizerModel::Build(VocabSpec spec) {
  const std::string& src = spec.source;
  const size_t n = spec.pieces.size();
  if (n == 0) return CorruptDataError(src + ": empty vocabulary");
  if (n > (1u << 30)) return CorruptDataError(src + ": vocabulary too large");
  if (spec.kinds.size() != n) {
    return CorruptDataError(src + ": " + std::to_string(spec.kinds.size()) + " token types for " +
                            std::to_string(n) + " pieces");
  }
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return CorruptDataError(src + ": " + std::to_string(spec.scores.size()) + " scores for " +
                            std::to_string(n) + " pieces");
  }
  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return CorruptDataError(src + ": " + what + " id " + std::to_string(id) +
                              " outside the vocabulary of " + std::to_string(n));
    }
    return Status::Ok();
  };
  GL_RETURN_IF_ERROR(check_id(spec.bos_id, "BOS"));
  GL_RETURN_IF_ERROR(check_id(spec.eos_id, "EOS"));
  GL_RETURN_IF_ERROR(check_id(spec.unk_id, "UNK"));
  GL_RETURN_IF_ERROR(check_id(spec.pad_id, "PAD"));
  if (spec.add_bos && spec.bos_id < 0) return CorruptDataError(src + ": add_bos set but no BOS");
  if (spec.add_eos && spec.eos_id < 0) return CorruptDataError(src + ": add_eos set but no EOS");

  std::shared_ptr<TokenizerModel> m(new TokenizerModel());
  m->source_ = std::move(spec.source);
  m->algorithm_ = spec.algorithm;
  m->split_newline_runs_ = spec.split_newline_runs;
  m->scores_ = std::move(spec.scores);
  if (m->scores_.empty()) m->scores_.assign(n, 0.0f);
  m->kinds_ = std::move(spec.kinds);
  m->bos_id_ = spec.bos_id;
  m->eos_id_ = spec.eos_id;
  m->unk_id_ = spec.unk_id;
  m->pad_id_ = spec.pad_id;
  m->add_bos_ = spec.add_bos;
  m->add_eos_ = spec.add_eos;

  size_t total = 0;
  for (std::string_view p : spec.pieces) total += p.size();
  if (total >= (uint64_t{1} << 32)) return CorruptDataError(m->source_ + ": pieces too large");
  m->piece_bytes_.reserve(total);
  m->piece_offsets_.reserve(n + 1);
  m->piece_offsets_.push_back(0);
  m->byte_value_.assign(n, -1);
  std::fill(std::begin(m->byte_to_id_), std::end(m->byte_to_id_), -1);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view p = spec.pieces[i];
    if (!IsValidUtf8(p)) {
      return CorruptDataError(m->source_ + ": piece " + std::to_string(i) +
                              " is not valid UTF-8: " + EscapeForMessage(p));
    }
    m->piece_bytes_.append(p);
    m->piece_offsets_.push_back(static_cast<uint32_t>(m->piece_bytes_.size()));
    if (p.size() == 6 && p.substr(0, 3) == "<0x" && p[5] == '>' &&
        std::isxdigit(static_cast<unsigned char>(p[3])) &&
        std::isxdigit(static_cast<unsigned char>(p[4]))) {
      const int v = std::stoi(std::string(p.substr(3, 2)), nullptr, 16);
      // Only pieces typed BYTE (GGUF) or any "<0xNN>" piece (HF ByteFallback) decode as bytes.
      if (m->kinds_[i] == PieceKind::kByte || m->kinds_[i] == PieceKind::kNormal) {
        m->byte_value_[i] = static_cast<int16_t>(v);
        if (m->byte_to_id_[v] < 0) m->byte_to_id_[v] = static_cast<int32_t>(i);
      }
    }
  }
  std::vector<std::pair<int32_t, int32_t>> duplicates;
  m->piece_index_.Build(m->piece_bytes_, m->piece_offsets_, &duplicates);
  if (!spec.distinct.empty()) {
    for (const auto& [a, b] : duplicates) {
      if (spec.distinct[static_cast<size_t>(a)] && spec.distinct[static_cast<size_t>(b)]) {
        return CorruptDataError(m->source_ + ": model.vocab has the key " +
                                EscapeForMessage(m->Piece(a)) + " twice");
      }
    }
  }

  for (int c = 0; c < 128; ++c)
    m->ascii_id_[c] = m->PieceToId(std::string(1, static_cast<char>(c)));
  m->split_at_space_ = m->PieceToId(kSpaceMarker) >= 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view p = m->Piece(static_cast<int32_t>(i));
    for (size_t at = p.find(kSpaceMarker, 1); at != std::string_view::npos;
         at = p.find(kSpaceMarker, at + 1)) {
      m->piece_before_space_[static_cast<unsigned char>(p[at - 1])] = true;
    }
  }
  m->is_special_.assign(n, 0);
  for (int32_t id : spec.special_ids) {
    GL_RETURN_IF_ERROR(check_id(id, "special token"));
    if (id >= 0) m->is_special_[static_cast<size_t>(id)] = 1;
  }

  // Merges: (left id, right id) -> (rank, result id). The first occurrence of a pair keeps its
  // rank.
  // Merges: (left id, right id) -> (rank, result id). The first occurrence of a pair keeps its
  // rank. Lookups go in batches (PieceIndex::FindBatch): this loop is most of the load time.
  m->merges_.Reserve(spec.merges.size());
  constexpr size_t kBatch = 32;
  std::string joined;
  std::string_view keys[3 * kBatch];
  uint64_t hashes[3 * kBatch];
  int32_t ids[3 * kBatch];
  for (size_t base = 0; base < spec.merges.size(); base += kBatch) {
    const size_t count = std::min(kBatch, spec.merges.size() - base);
    joined.clear();
    for (size_t k = 0; k < count; ++k) {
      const MergeSpec& ms = spec.merges[base + k];
      joined.append(ms.a);
      joined.append(ms.b);
    }
    size_t off = 0;
    for (size_t k = 0; k < count; ++k) {
      const MergeSpec& ms = spec.merges[base + k];
      keys[3 * k] = ms.a;
      keys[3 * k + 1] = ms.b;
      keys[3 * k + 2] = std::string_view(joined).substr(off, ms.a.size() + ms.b.size());
      off += ms.a.size() + ms.b.size();
    }
    m->piece_index_.FindBatch(keys, 3 * count, hashes, ids);
    for (size_t k = 0; k < count; ++k) {
      if (ids[3 * k] >= 0 && ids[3 * k + 1] >= 0) m->merges_.Prefetch(ids[3 * k], ids[3 * k + 1]);
    }
    for (size_t k = 0; k < count; ++k) {
      const size_t r = base + k;
      const int32_t ia = ids[3 * k], ib = ids[3 * k + 1], ir = ids[3 * k + 2];
      if (ia < 0 || ib < 0 || ir < 0) {
        const auto& [a, b] = spec.merges[r];
        return CorruptDataError(m->source_ + ": merge " + std::to_string(r) + " (" +
                                EscapeForMessage(a) + " " + EscapeForMessage(b) +
                                ") uses a piece that is not in the vocabulary");
      }
      m->merges_.Insert(ia, ib, static_cast<int32_t>(r), ir);
    }
  }

  // Added-token trie.
  m->trie_.emplace_back();
  for (const auto& [id, special] : spec.added) {
    GL_RETURN_IF_ERROR(check_id(id, "added token"));
    const std::string_view p = m->Piece(id);
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : p) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = m->trie_edges_.find(key);
      if (it == m->trie_edges_.end()) {
        m->trie_.emplace_back();
        const int32_t child = static_cast<int32_t>(m->trie_.size() - 1);
        m->trie_edges_.emplace(key, child);
        node = child;
      } else {
        node = it->second;
      }
    }
    // Duplicate contents: the later id wins, as for the piece map.
    m->trie_[static_cast<size_t>(node)].id = id;
    m->trie_[static_cast<size_t>(node)].special = special;
    m->added_first_byte_[static_cast<unsigned char>(p[0])] = true;
  }
  return std::shared_ptr<const TokenizerModel>(std::move(m));
}

int32_t TokenizerModel::PieceToId(std::string_view piece) const { return piece_index_.Find(piece); }

TokenizerModel::AddedMatch TokenizerModel::MatchAdded(std::string_view text, size_t pos,
                                                      bool parse_special) const {
  AddedMatch best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]);
    auto it = trie_edges_.find(key);
    if (it == trie_edges_.end()) break;
    node = it->second;
    const TrieNode& t = trie_[static_cast<size_t>(node)];
    if (t.id >= 0 && (parse_special || !t.special)) {
      best.id = t.id;
      best.length = i + 1 - pos;
      best.special = t.special;
    }
  }
  return best;
}

// Per-call encoding state: reused buffers (no allocation per word) and a cache of the ids of
// words already encoded in this call. The cache lives only for one Encode call, so the model
// stays immutable and shareable; results never depend on it (a word's ids are a function of the
// word alone once words are cut where no piece can cross, see SplitsBefore).
struct TokenizerModel::EncodeState {
  struct BpeSymbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct BpeCand {
    int32_t rank;
    int32_t pos;
    int32_t left;
    int32_t right;
    int32_t result;
  };
  struct SpmSymbol {
    uint32_t start;
    uint32_t len;  // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct SpmCand {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;
  };

  // word -> ids, open addressing; keys and values live in flat arrays.
  class WordCache {
   public:
    static constexpr size_t kMaxWordBytes = 64;
    static constexpr size_t kMaxEntries = size_t{1} << 16;

    bool Lookup(std::string_view word, uint64_t h, std::vector<int32_t>& out) const {
      if (slots_.empty()) return false;
      for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
        const Entry& e = slots_[i];
        if (e.key_len == 0) return false;
        if (e.hash == h && std::string_view(keys_).substr(e.key_off, e.key_len) == word) {
          out.insert(out.end(), ids_.begin() + e.ids_off, ids_.begin() + e.ids_off + e.ids_len);
          return true;
        }
      }
    }

    void Insert(std::string_view word, uint64_t h, const int32_t* ids, size_t n) {
      if (word.empty() || count_ >= kMaxEntries) return;
      if (2 * (count_ + 1) > slots_.size()) Grow();
      const Entry e{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(word.size()),
                    static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(n)};
      keys_.append(word);
      ids_.insert(ids_.end(), ids, ids + n);
      Place(e);
      ++count_;
    }

   private:
    struct Entry {
      uint64_t hash;
      uint32_t key_off, key_len, ids_off, ids_len;
    };
    void Place(const Entry& e) {
      size_t i = e.hash & (slots_.size() - 1);
      while (slots_[i].key_len != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = e;
    }
    void Grow() {
      std::vector<Entry> old = std::move(slots_);
      slots_.assign(old.empty() ? 1024 : old.size() * 2, Entry{0, 0, 0, 0, 0});
      for (const Entry& e : old) {
        if (e.key_len != 0) Place(e);
      }
    }
    std::vector<Entry> slots_;
    std::string keys_;
    std::vector<int32_t> ids_;
    size_t count_ = 0;
  };

  std::string escaped;
  std::vector<BpeSymbol> bpe_sym;
  std::vector<BpeCand> bpe_heap;
  std::vector<SpmSymbol> spm_sym;
  std::vector<SpmCand> spm_heap;
  bool use_cache = false;
  WordCache cache;
};

Status TokenizerModel::Encode(std::string_view text, const EncodeFlags& flags,
                              std::vector<int32_t>& out) const {
  // Symbol positions are 32-bit (half the scratch memory of size_t); the "▁" escape can triple
  // a segment, so inputs are capped well below 4 GiB / 3.
  if (text.size() > (size_t{1} << 30)) {
    return ResourceExhaustedError("tokenizer input of " + std::to_string(text.size()) +
                                  " bytes exceeds the 1 GiB limit");
  }
  if (const size_t bad = FirstInvalidUtf8Offset(text); bad != text.size()) {
    return InvalidArgumentError("tokenizer input is not valid UTF-8 at byte " +
                                std::to_string(bad));
  }
  const size_t start = out.size();
  EncodeState st;
  // Short texts rarely repeat a word; the cache only pays off on long inputs.
  st.use_cache = text.size() >= 4096;
  size_t seg = 0, i = 0;
  const auto& spans = flags.literal_spans;
  size_t span = 0;  // the first literal span that ends after i
  while (i < text.size()) {
    if (added_first_byte_[static_cast<unsigned char>(text[i])]) {
      AddedMatch m = MatchAdded(text, i, flags.parse_special);
      if (m.id >= 0 && m.special && !spans.empty()) {
        while (span < spans.size() && spans[span].second <= i) ++span;
        if (span < spans.size() && spans[span].first < i + m.length) {
          m = MatchAdded(text, i, /*parse_special=*/false);  // literal text: no special tokens
        }
      }
      if (m.id >= 0) {
        if (i > seg) EncodeSegment(text.substr(seg, i - seg), st, out);
        out.push_back(m.id);
        i += m.length;
        seg = i;
        continue;
      }
    }
    ++i;
  }
  if (text.size() > seg) EncodeSegment(text.substr(seg), st, out);
  // BOS goes first unless the text itself already produced it (a rendered chat template that
  // starts with "<bos>"): a second BOS degrades Gemma's output.
  if (flags.add_bos && bos_id_ >= 0 && (out.size() == start || out[start] != bos_id_)) {
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(start), bos_id_);
  }
  if (flags.add_eos && eos_id_ >= 0) out.push_back(eos_id_);
  return Status::Ok();
}

std::vector<std::pair<size_t, size_t>> TokenizerModel::FindSpecial(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t i = 0; i < text.size();) {
    if (added_first_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedMatch m = MatchAdded(text, i, /*parse_special=*/true);
      if (m.id >= 0) {
        if (m.special) found.emplace_back(i, i + m.length);
        i += m.length;
        continue;
      }
    }
    ++i;
  }
  return found;
}

void TokenizerModel::EncodeSegment(std::string_view raw, EncodeState& st,
                                   std::vector<int32_t>& out) const {
  std::string& scratch = st.escaped;
  scratch.clear();
  scratch.reserve(raw.size() + raw.size() / 4);
  for (char c : raw) {
    if (c == ' ') {
      scratch.append(kSpaceMarker);
    } else {
      scratch.push_back(c);
    }
  }
  const std::string_view text = scratch;
  if (!split_newline_runs_) {
    EncodeWords(text, st, out);
    return;
  }
  // Gemma 4 GGUF: newline runs and the text between them are merged separately.
  size_t i = 0;
  while (i < text.size()) {
    const bool nl = text[i] == '\n';
    size_t j = i;
    while (j < text.size() && (text[j] == '\n') == nl) ++j;
    const std::string_view chunk = text.substr(i, j - i);
    const int32_t whole = nl ? PieceToId(chunk) : -1;
    if (whole >= 0) {
      out.push_back(whole);
    } else {
      EncodeWords(chunk, st, out);
    }
    i = j;
  }
}

bool TokenizerModel::SplitsBefore(std::string_view text, size_t pos) const {
  const auto c = static_cast<unsigned char>(text[pos - 1]);
  if (piece_before_space_[c]) return false;
  if (algorithm_ == Algorithm::kSpmScores || !piece_before_space_[static_cast<unsigned char>('>')]) return true;
  // BPE: a character missing from the vocabulary becomes <0xNN> pieces, whose strings end in '>'.
  if (c < 0x80) return ascii_id_[c] >= 0;
  size_t j = pos - 1;
  while (j > 0 && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) --j;
  return PieceToId(text.substr(j, pos - j)) >= 0;
}

void TokenizerModel::EncodeWords(std::string_view text, EncodeState& st,
                                 std::vector<int32_t>& out) const {
  auto word = [&](std::string_view w) {
    const bool cacheable = st.use_cache && w.size() <= EncodeState::WordCache::kMaxWordBytes;
    const uint64_t h = cacheable ? HashBytes(w) : 0;
    if (cacheable && st.cache.Lookup(w, h, out)) return;
    const size_t before = out.size();
    if (algorithm_ == Algorithm::kSpmScores) {
      EncodeSpm(w, st, out);
    } else {
      EncodeBpe(w, st, out);
    }
    if (cacheable) st.cache.Insert(w, h, out.data() + before, out.size() - before);
  };
  if (!split_at_space_) {
    word(text);
    return;
  }
  size_t start = 0;
  for (size_t i = 1; i < text.size();) {
    const size_t pos = text.find(kSpaceMarker, i);
    if (pos == std::string_view::npos) break;
    if (SplitsBefore(text, pos)) {
      word(text.substr(start, pos - start));
      start = pos;
    }
    i = pos + kSpaceMarker.size();
  }
  word(text.substr(start));
}

void TokenizerModel::PushBytes(std::string_view bytes, std::vector<int32_t>& out) const {
  for (unsigned char c : bytes) {
    const int32_t id = byte_to_id_[c];
    if (id >= 0) {
      out.push_back(id);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
    }
  }
}

void TokenizerModel::EncodeBpe(std::string_view word, EncodeState& st,
                               std::vector<int32_t>& out) const {
  using Symbol = EncodeState::BpeSymbol;
  std::vector<Symbol>& sym = st.bpe_sym;
  sym.clear();
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(Utf8Len(static_cast<unsigned char>(word[i])), word.size() - i);
    const std::string_view ch = word.substr(i, len);
    const auto c0 = static_cast<unsigned char>(word[i]);
    const int32_t id = c0 < 0x80 ? ascii_id_[c0] : PieceToId(ch);
    if (id >= 0) {
      sym.push_back({id, 0, 0});
    } else {
      // Byte fallback happens before merging, as in Hugging Face BPE.
      for (unsigned char c : ch) {
        const int32_t b = byte_to_id_[c] >= 0 ? byte_to_id_[c] : unk_id_;
        if (b >= 0) sym.push_back({b, 0, 0});
      }
    }
    i += len;
  }
  const int32_t n = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i < n; ++i) {
    sym[static_cast<size_t>(i)].prev = i - 1;
    sym[static_cast<size_t>(i)].next = i + 1 < n ? i + 1 : -1;
  }
  using Cand = EncodeState::BpeCand;
  // Min-heap on (rank, pos): lowest rank first, leftmost on ties.
  auto worse = [](const Cand& a, const Cand& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::vector<Cand>& heap = st.bpe_heap;
  heap.clear();
  auto consider = [&](int32_t pos) {
    if (pos < 0) return;
    const Symbol& s = sym[static_cast<size_t>(pos)];
    if (s.next < 0) return;
    const int32_t right = sym[static_cast<size_t>(s.next)].id;
    const MergeTable::Entry* e = merges_.Find(s.id, right);
    if (e == nullptr) return;
    heap.push_back({e->rank, pos, s.id, right, e->result});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Cand c = heap.back();
    heap.pop_back();
    Symbol& s = sym[static_cast<size_t>(c.pos)];
    // Stale entries: the left symbol was absorbed or changed, or its right neighbour changed.
    if (s.id != c.left || s.next < 0) continue;
    Symbol& r = sym[static_cast<size_t>(s.next)];
    if (r.id != c.right) continue;
    s.id = c.result;
    r.id = -1;
    s.next = r.next;
    if (s.next >= 0) sym[static_cast<size_t>(s.next)].prev = c.pos;
    consider(s.prev);
    consider(c.pos);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    out.push_back(sym[static_cast<size_t>(i)].id);
  }
}

void TokenizerModel::EncodeSpm(std::string_view word, EncodeState& st,
                               std::vector<int32_t>& out) const {
  using Symbol = EncodeState::SpmSymbol;
  std::vector<Symbol>& sym = st.spm_sym;
  sym.clear();
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(Utf8Len(static_cast<unsigned char>(word[i])), word.size() - i);
    const int32_t idx = static_cast<int32_t>(sym.size());
    sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), idx - 1,
                   i + len < word.size() ? idx + 1 : -1});
    i += len;
  }
  using Cand = EncodeState::SpmCand;
  // Max-heap on score, leftmost on ties (llama.cpp's llm_bigram_spm comparator).
  auto worse = [](const Cand& a, const Cand& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::vector<Cand>& heap = st.spm_heap;
  heap.clear();
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<size_t>(left)];
    const Symbol& r = sym[static_cast<size_t>(right)];
    const int32_t id = PieceToId(word.substr(l.start, l.len + r.len));
    if (id < 0) return;
    heap.push_back({scores_[static_cast<size_t>(id)], left, right, l.len + r.len});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) consider(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Cand c = heap.back();
    heap.pop_back();
    Symbol& l = sym[static_cast<size_t>(c.left)];
    Symbol& r = sym[static_cast<size_t>(c.right)];
    // Symbols only grow, so a size mismatch identifies every stale candidate.
    if (l.len == 0 || r.len == 0 || l.len + r.len != c.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& s = sym[static_cast<size_t>(i)];
    const std::string_view piece = word.substr(s.start, s.len);
    const int32_t id = PieceToId(piece);
    if (id >= 0) {
      out.push_back(id);
    } else {
      PushBytes(piece, out);
    }
  }
}

Status TokenizerModel::AppendTokenBytes(int32_t id, bool skip_special, std::string& out) const {
  if (id < 0 || id >= vocab_size()) {
    return InvalidArgumentError("token id " + std::to_string(id) + " outside the vocabulary of " +
                                std::to_string(vocab_size()));
  }
  if (skip_special && IsSpecial(id)) return Status::Ok();
  const int b = ByteValue(id);
  if (b >= 0) {
    out.push_back(static_cast<char>(b));
    return Status::Ok();
  }
  const std::string_view p = Piece(id);
  size_t i = 0;
  while (i < p.size()) {
    const size_t hit = p.find(kSpaceMarker, i);
    if (hit == std::string_view::npos) {
      out.append(p.substr(i));
      break;
    }
    out.append(p.substr(i, hit - i));
    out.push_back(' ');
    i = hit + kSpaceMarker.size();
  }
  return Status::Ok();
}

Result<std::string> TokenizerModel::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  std::string bytes;  // current run of byte pieces
  auto flush = [&] {
    if (bytes.empty()) return;
    if (IsValidUtf8(bytes)) {
      out.append(bytes);
    } else {
      for (size_t k = 0; k < bytes.size(); ++k) out.append(kReplacement);
    }
    bytes.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      return InvalidArgumentError("token id " + std::to_string(id) + " outside the vocabulary of " +
                                  std::to_string(vocab_size()));
    }
    if (skip_special && IsSpecial(id)) continue;
    if (ByteValue(id) >= 0) {
      bytes.push_back(static_cast<char>(ByteValue(id)));
      continue;
    }
    flush();
    GL_RETURN_IF_ERROR(AppendTokenBytes(id, skip_special, out));
  }
  flush();
  return out;
}

}  // namespace gemma_local::text
