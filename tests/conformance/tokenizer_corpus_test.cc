// The tokenizer conformance corpus: >= 2,000 strings built programmatically and deterministically
// (fixed seed), covering English prose, code, JSON, markdown, every script family incl. CJK
// extension planes, emoji (ZWJ sequences, flags, keycaps, tags), combining marks, control
// characters, whitespace runs (spaces, tabs, newlines, CRLF, Unicode spaces; leading and
// trailing), digit runs, special-token text inside ordinary text, random code points, mixtures,
// and one ~1 MB input. Used by tokenizer_conformance_test.cc (same test binary).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/utf8.h"

namespace gemma_local {
namespace {

// ---------------------------------------------------------------------------------------------
// Corpus

struct Script {
  const char* name;
  uint32_t lo, hi;  // inclusive code point range
  const char* sample;
};

// Real phrases plus a code point range per script (ranges include unassigned code points on
// purpose: they exercise byte fallback).
const Script kScripts[] = {
    {"latin-ext", 0x00C0, 0x024F, "Ça va? Größe, naïve façade, Łódź, Đorđe, Ærøskøbing"},
    {"greek", 0x0370, 0x03FF, "Καλημέρα κόσμε, ἀρχὴ ἥμισυ παντός"},
    {"cyrillic", 0x0400, 0x04FF, "Привет, мир! Съешь же ещё этих мягких французских булок."},
    {"armenian", 0x0531, 0x058A, "Բարեւ աշխարհ"},
    {"hebrew", 0x0591, 0x05F4, "שָׁלוֹם עוֹלָם, זה טקסט בעברית"},
    {"arabic", 0x0600, 0x06FF, "مرحبا بالعالم، هذا نص عربي ٠١٢٣٤٥٦٧٨٩"},
    {"syriac", 0x0710, 0x074A, "ܫܠܡܐ ܥܠܡܐ"},
    {"thaana", 0x0780, 0x07B1, "ދިވެހިބަސް"},
    {"devanagari", 0x0900, 0x097F, "नमस्ते दुनिया, यह हिन्दी पाठ है। क्षत्रिय"},
    {"bengali", 0x0980, 0x09FE, "ওহে বিশ্ব, বাংলা লেখা"},
    {"gurmukhi", 0x0A01, 0x0A76, "ਸਤ ਸ੍ਰੀ ਅਕਾਲ"},
    {"gujarati", 0x0A81, 0x0AFF, "નમસ્તે વિશ્વ"},
    {"tamil", 0x0B82, 0x0BFA, "வணக்கம் உலகம்"},
    {"telugu", 0x0C00, 0x0C7F, "హలో ప్రపంచం"},
    {"kannada", 0x0C80, 0x0CF2, "ನಮಸ್ಕಾರ ಜಗತ್ತು"},
    {"malayalam", 0x0D00, 0x0D7F, "ഹലോ വേൾഡ്"},
    {"sinhala", 0x0D81, 0x0DF4, "ආයුබෝවන් ලෝකය"},
    {"thai", 0x0E01, 0x0E5B, "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"},
    {"lao", 0x0E81, 0x0EDF, "ສະບາຍດີໂລກ"},
    {"tibetan", 0x0F00, 0x0FDA, "བཀྲ་ཤིས་བདེ་ལེགས།"},
    {"myanmar", 0x1000, 0x109F, "မင်္ဂလာပါ ကမ္ဘာလောက"},
    {"georgian", 0x10A0, 0x10FF, "გამარჯობა მსოფლიო, ქართული დამწერლობა"},
    {"hangul-jamo", 0x1100, 0x11FF, "각 ᄒᆞᆫ"},
    {"ethiopic", 0x1200, 0x137C, "ሰላም ልዑል"},
    {"cherokee", 0x13A0, 0x13F5, "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ"},
    {"khmer", 0x1780, 0x17F9, "សួស្តី​ពិភពលោក"},
    {"mongolian", 0x1820, 0x1878, "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ"},
    {"hiragana", 0x3041, 0x309F, "こんにちは世界、ひらがなとカタカナと漢字"},
    {"katakana", 0x30A0, 0x30FF, "コンピューター・プログラミング"},
    {"bopomofo", 0x3105, 0x312F, "ㄅㄆㄇㄈ"},
    {"cjk", 0x4E00, 0x9FFF, "你好，世界！这是中文文本。繁體中文測試。"},
    {"cjk-ext-a", 0x3400, 0x4DBF, "㐀㐁㑇㒸㓁䶵"},
    {"hangul", 0xAC00, 0xD7A3, "안녕하세요 세계, 한국어 텍스트입니다."},
    {"cjk-compat", 0xF900, 0xFAFF, "豈更車賈滑"},
    {"fullwidth", 0xFF01, 0xFF5E, "ＡＢＣ１２３！？"},
    {"cjk-ext-b", 0x20000, 0x2A6DF, "𠀀𠀁𠜎𠮷𡃁𪚥"},
    {"cjk-ext-c-f", 0x2A700, 0x2EBE0, "𪜀𫝀𫠠𬺰"},
    {"cjk-ext-g-h", 0x30000, 0x323AF, "𰀀𰁜𱍊𱍐"},
    {"math-alnum", 0x1D400, 0x1D7FF, "𝐀𝐁𝐂 𝑥 + 𝑦 = 𝔷"},
    {"old-italic", 0x10300, 0x1032F, "𐌀𐌁𐌂"},
    {"cuneiform", 0x12000, 0x1236E, "𒀀𒀁𒀂"},
    {"egyptian", 0x13000, 0x1342E, "𓀀𓀁𓂀"},
    {"nko", 0x07C0, 0x07FA, "ߒߞߏ"},
    {"canadian", 0x1400, 0x167F, "ᐊᐃᐅᐸ"},
    {"runic", 0x16A0, 0x16F8, "ᚠᚢᚦᚨᚱᚲ"},
    {"braille", 0x2800, 0x28FF, "⠓⠑⠇⠇⠕"},
    {"symbols", 0x2190, 0x23FF, "→ ← ↑ ↓ ∀∃∈∉ ≤≥≠ ⌘⌥"},
    {"box-drawing", 0x2500, 0x257F, "┌─┬─┐│ │ │└─┴─┘"},
    {"pua", 0xE000, 0xE0FF, "\xEE\x80\x80\xEE\x80\x81"},
    {"supp-pua", 0xF0000, 0xF00FF, "\xF3\xB0\x80\x80"},
};

const char* kWords[] = {
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "tokenizer",
    "model",
    "Gemma",
    "inference",
    "engine",
    "local",
    "answer",
    "question",
    "because",
    "however",
    "data",
    "function",
    "return",
    "value",
    "error",
    "result",
    "thread",
    "memory",
    "cache",
    "token",
    "international",
    "unbelievable",
    "antidisestablishmentarianism",
    "I'm",
    "don't",
    "it's",
    "they're",
    "we'll",
    "O'Neil",
    "e-mail",
    "state-of-the-art",
    "co-operate",
    "naïve",
    "résumé",
    "HTTP",
    "URL",
    "JSON",
    "GPU",
    "CPU",
    "iPhone",
    "McDonald",
    "XMLHttpRequest",
    "snake_case",
    "camelCase",
    "PascalCase",
    "SCREAMING_CASE",
    "kebab-case",
    "a",
    "I",
    "an",
    "of",
    "to",
    "in",
};

const char* kSpecialStrings[] = {
    "<bos>",
    "<eos>",
    "<pad>",
    "<unk>",
    "<mask>",
    "[multimodal]",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
    "<unused0>",
    "<unused42>",
    "<unused6241>",
    "<start_of_turn",
    "end_of_turn>",
    "<<bos>>",
    "<bos",
    "bos>",
    "< bos >",
    "<BOS>",
    "</s>",
    "<s>",
    "<|turn>",
    "<turn|>",
    "<|channel>",
    "<0x41>",
    "<0xE2>",
    "<table>",
    "</td>",
    "<h1>",
    "<br>",
    "<start_of_turn>user\n",
    "<end_of_turn>\n",
};

class CorpusBuilder {
 public:
  explicit CorpusBuilder(uint32_t seed) : rng_(seed) {}

  std::vector<std::string> Build() {
    AddFixed();
    AddProse(220);
    AddCode(160);
    AddJson(120);
    AddMarkdown(100);
    AddScripts(8);
    AddEmoji(140);
    AddCombining(100);
    AddControl(100);
    AddWhitespace(160);
    AddDigits(120);
    AddSpecial(160);
    AddRandomUnicode(150);
    AddMixed(220);
    AddLarge();
    return std::move(out_);
  }

 private:
  size_t Uniform(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }
  const char* Word() { return kWords[Uniform(std::size(kWords))]; }

  std::string Sentence() {
    std::string s;
    const size_t n = 3 + Uniform(14);
    for (size_t i = 0; i < n; ++i) {
      std::string w = Word();
      if (i == 0 && !w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 32);
      if (i) s += Coin(0.05) ? "  " : " ";
      s += w;
      if (Coin(0.08)) s += ",";
      if (Coin(0.03)) s += " (" + std::to_string(Uniform(2027)) + ")";
    }
    static const char* kEnd[] = {".", "!", "?", "...", ";", ":", " —", "\u2026", ".\"", "?!"};
    s += kEnd[Uniform(std::size(kEnd))];
    return s;
  }

  void AddFixed() {
    for (const char* s : {"",
                          " ",
                          "  ",
                          "\n",
                          "\t",
                          "\r\n",
                          "a",
                          " a",
                          "a ",
                          " a ",
                          "Hello",
                          " Hello",
                          "Hello world",
                          "hello  world",
                          "Hello,\nworld",
                          "▁",
                          "▁▁",
                          " ▁ ",
                          "a▁b",
                          "\xC2\xA0",
                          "\xE3\x80\x80",
                          "\xEF\xBB\xBF"
                          "BOM",
                          "\xEF\xBF\xBD",
                          "\xF4\x8F\xBF\xBF",
                          "\xEF\xBF\xBF"}) {
      out_.emplace_back(s);
    }
    for (const Script& sc : kScripts) out_.emplace_back(sc.sample);
  }

  void AddProse(int n) {
    for (int i = 0; i < n; ++i) {
      std::string p;
      const size_t k = 1 + Uniform(6);
      for (size_t j = 0; j < k; ++j) {
        if (j) p += Coin(0.2) ? "\n\n" : " ";
        p += Sentence();
      }
      out_.push_back(p);
    }
  }

  void AddCode(int n) {
    static const char* kSnippets[] = {
        "int main(int argc, char** argv) {\n  return 0;\n}\n",
        "def f(x):\n    if x > 0:\n        return x * 2\n    return -x\n",
        "for (let i = 0; i < n; ++i) { sum += a[i]; }",
        "#include <vector>\nstd::vector<int> v{1, 2, 3};\n",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
        "fn main() {\n\tprintln!(\"{}\", 42);\n}\n",
        "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1",
        "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
        "if (a && b || !c) { /* comment */ x <<= 2; y >>= 1; z ^= ~w; }",
        "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
        "public static void Main(string[] args) => Console.WriteLine(\"Hi\");",
        "\tif err != nil {\n\t\treturn nil, fmt.Errorf(\"wrap: %w\", err)\n\t}\n",
        "const re = /^[a-z0-9_.+-]+@[a-z0-9-]+\\.[a-z]{2,}$/i;",
        "matrix = [[1,0,0],[0,1,0],[0,0,1]]\r\nprint(matrix)\r\n",
        "    \n    \n        pass\n",
    };
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 1 + Uniform(4);
      for (size_t j = 0; j < k; ++j) {
        std::string snip = kSnippets[Uniform(std::size(kSnippets))];
        if (Coin(0.3)) {  // re-indent with a random unit
          const std::string unit = Coin() ? "\t" : std::string(1 + Uniform(8), ' ');
          std::string r;
          for (char c : snip) {
            r.push_back(c);
            if (c == '\n') r += unit;
          }
          snip = r;
        }
        s += snip;
      }
      out_.push_back(s);
    }
  }

  nlohmann::json RandomJson(int depth) {
    const size_t kind = depth > 3 ? Uniform(4) : Uniform(6);
    switch (kind) {
      case 0:
        return static_cast<int64_t>(Uniform(2000000)) - 1000000;
      case 1:
        return Uniform(1000) / 7.0;
      case 2:
        return std::string(Word()) + (Coin() ? " " + std::string(Word()) : "");
      case 3:
        return Coin() ? nlohmann::json(nullptr) : nlohmann::json(Coin());
      case 4: {
        nlohmann::json a = nlohmann::json::array();
        for (size_t i = Uniform(5); i > 0; --i) a.push_back(RandomJson(depth + 1));
        return a;
      }
      default: {
        nlohmann::json o = nlohmann::json::object();
        for (size_t i = Uniform(5); i > 0; --i) o[Word()] = RandomJson(depth + 1);
        return o;
      }
    }
  }

  void AddJson(int n) {
    for (int i = 0; i < n; ++i) {
      const int indent = static_cast<int>(Uniform(4)) * 2 - 1;  // -1 compact, 1, 3, 5
      out_.push_back(RandomJson(0).dump(indent, Coin(0.8) ? ' ' : '\t'));
    }
  }

  void AddMarkdown(int n) {
    for (int i = 0; i < n; ++i) {
      std::string s = std::string(1 + Uniform(4), '#') + " " + Sentence() + "\n\n";
      s += "- " + Sentence() + "\n- **" + Word() + "** and _" + Word() + "_\n";
      s += "  1. nested `code` item\n\n";
      s += "| a | b |\n|---|:-:|\n| " + std::to_string(Uniform(100)) + " | " + Word() + " |\n\n";
      if (Coin()) s += "```python\nprint(\"" + std::string(Word()) + "\")\n```\n";
      if (Coin()) s += "> quote " + Sentence() + "\n\n[link](https://example.com/a?b=c&d=e#f)";
      out_.push_back(s);
    }
  }

  std::string ScriptWord(const Script& sc) {
    std::string w;
    const size_t len = 1 + Uniform(8);
    for (size_t k = 0; k < len; ++k) {
      AppendUtf8(sc.lo + static_cast<uint32_t>(Uniform(sc.hi - sc.lo + 1)), w);
    }
    return w;
  }

  void AddScripts(int per_script) {
    for (const Script& sc : kScripts) {
      for (int i = 0; i < per_script; ++i) {
        std::string s;
        const size_t words = 1 + Uniform(6);
        for (size_t k = 0; k < words; ++k) {
          if (k) s += Coin(0.8) ? " " : (Coin() ? "\n" : ", ");
          s += Coin(0.4) ? std::string(sc.sample) : ScriptWord(sc);
        }
        out_.push_back(s);
      }
    }
  }

  void AddEmoji(int n) {
    static const char* kEmoji[] = {
        "😀",
        "👍",
        "👍🏽",
        "👩‍💻",
        "👨‍👩‍👧‍👦",
        "🏳️‍🌈",
        "🏴‍☠️",
        "🇯🇵",
        "🇺🇸",
        "🇩🇪🇫🇷",
        "🇺🇳",
        "1️⃣",
        "#️⃣",
        "❤️",
        "❤",
        "☺️",
        "🧑🏿‍🤝‍🧑🏻",
        "🫠",
        "🪿",
        "🦀",
        "🐍",
        "🎉🎊",
        "✈️",
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
        "👁️‍🗨️",
        "🤷‍♀️",
        "🙋🏼‍♂️",
        "🧔‍♀️",
        "😶‍🌫️",
        "💯",
        "🔥🔥🔥",
    };
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 1 + Uniform(6);
      for (size_t j = 0; j < k; ++j) {
        if (Coin(0.4)) s += Coin() ? " " : std::string(Word()) + " ";
        s += kEmoji[Uniform(std::size(kEmoji))];
      }
      out_.push_back(s);
    }
  }

  void AddCombining(int n) {
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 1 + Uniform(10);
      for (size_t j = 0; j < k; ++j) {
        AppendUtf8(Coin(0.7) ? 'a' + static_cast<uint32_t>(Uniform(26))
                                : 0x0410 + static_cast<uint32_t>(Uniform(32)), s);
        for (size_t m = Uniform(Coin(0.1) ? 12 : 3); m > 0; --m) {
          static const uint32_t kRanges[][2] = {
              {0x0300, 0x036F}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20FF},
              {0xFE20, 0xFE2F}, {0x0591, 0x05BD}, {0x064B, 0x065F}, {0x093C, 0x094D}};
          const auto& r = kRanges[Uniform(std::size(kRanges))];
          AppendUtf8(r[0] + static_cast<uint32_t>(Uniform(r[1] - r[0] + 1)), s);
        }
        if (Coin(0.3)) s += " ";
      }
      // Precomposed vs decomposed forms must stay distinct (no normalization in Gemma's pipeline).
      if (Coin(0.2)) s += " e\xCC\x81 \xC3\xA9 A\xCC\x8A \xE2\x84\xAB";
      out_.push_back(s);
    }
  }

  void AddControl(int n) {
    for (int i = 0; i < n; ++i) {
      std::string s = Coin() ? std::string(Word()) : "";
      const size_t k = 1 + Uniform(6);
      for (size_t j = 0; j < k; ++j) {
        const size_t which = Uniform(5);
        uint32_t cp = which == 0   ? static_cast<uint32_t>(Uniform(32))
                      : which == 1 ? 0x7F
                      : which == 2 ? 0x80 + static_cast<uint32_t>(Uniform(32))
                      : which == 3 ? 0x200B + static_cast<uint32_t>(Uniform(5))   // ZW*, LRM
                                   : 0x2028 + static_cast<uint32_t>(Uniform(8));  // LS, PS, bidi
        AppendUtf8(cp, s);
        if (Coin(0.5)) s += Word();
      }
      out_.push_back(s);
    }
    out_.push_back(std::string("nul\0inside", 10));
    out_.push_back(std::string("\0", 1));
  }

  void AddWhitespace(int n) {
    static const char* kWs[] = {" ",    "  ",   "\t",       "\n",           "\r\n",
                                "\r",   "\n\n", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x83",
                                "\x0B", "\x0C", " \t "};
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 1 + Uniform(5);
      for (size_t j = 0; j < k; ++j) {
        const size_t run = 1 + Uniform(Coin(0.2) ? 70 : 6);
        const char* ws = kWs[Uniform(std::size(kWs))];
        for (size_t r = 0; r < run; ++r) s += ws;
        if (Coin(0.7)) s += Word();
      }
      out_.push_back(s);
    }
  }

  void AddDigits(int n) {
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t len = 1 + Uniform(Coin(0.2) ? 60 : 8);
      for (size_t k = 0; k < len; ++k) s.push_back(static_cast<char>('0' + Uniform(10)));
      switch (Uniform(6)) {
        case 0:
          s = "$" + s + ".99";
          break;
        case 1:
          s = s + "," + std::to_string(Uniform(1000)) + "," + std::to_string(Uniform(1000));
          break;
        case 2:
          s = "v" + std::to_string(Uniform(20)) + "." + s + "-rc1";
          break;
        case 3:
          s = "Call 555-" + s + " or +1 (800) " + s;
          break;
        case 4:
          s = s + "\xD9\xA3\xD9\xA4 \xE0\xA5\xA8\xE0\xA5\xA9 \xEF\xBC\x91\xEF\xBC\x92";
          break;
        default:
          break;
      }
      out_.push_back(s);
    }
  }

  void AddSpecial(int n) {
    for (const char* sp : kSpecialStrings) out_.emplace_back(sp);
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 1 + Uniform(5);
      for (size_t j = 0; j < k; ++j) {
        if (Coin(0.6)) s += Coin() ? Sentence() : std::string(Word());
        if (Coin(0.3)) s += Coin() ? " " : "\n";
        s += kSpecialStrings[Uniform(std::size(kSpecialStrings))];
      }
      out_.push_back(s);
    }
    out_.push_back("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    out_.push_back("<start_of_turn>user\nIgnore that. <end_of_turn><start_of_turn>model\nOK");
  }

  void AddRandomUnicode(int n) {
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t len = 1 + Uniform(20);
      for (size_t k = 0; k < len; ++k) {
        uint32_t cp;
        do {
          cp = Coin(0.7) ? static_cast<uint32_t>(Uniform(0x10000))
                         : static_cast<uint32_t>(Uniform(0x110000));
        } while (cp >= 0xD800 && cp <= 0xDFFF);
        AppendUtf8(cp, s);
      }
      out_.push_back(s);
    }
  }

  void AddMixed(int n) {
    const size_t base = out_.size();
    for (int i = 0; i < n; ++i) {
      std::string s;
      const size_t k = 2 + Uniform(4);
      for (size_t j = 0; j < k; ++j) {
        const std::string& part = out_[Uniform(base)];
        size_t cut = std::min<size_t>(part.size(), 400);
        while (cut < part.size() && (static_cast<unsigned char>(part[cut]) & 0xC0) == 0x80) --cut;
        s += part.substr(0, cut);
        if (Coin()) s += Coin() ? " " : "\n";
      }
      out_.push_back(s);
    }
  }

  void AddLarge() {
    std::string big;
    big.reserve(1100000);
    const size_t base = out_.size();
    while (big.size() < (1u << 20)) {
      big += out_[Uniform(base)];
      big += Coin(0.7) ? " " : "\n";
    }
    out_.push_back(std::move(big));
  }

  std::mt19937 rng_;
  std::vector<std::string> out_;
};

}  // namespace

const std::vector<std::string>& TokenizerConformanceCorpus() {
  static const std::vector<std::string> corpus = CorpusBuilder(20260611).Build();
  return corpus;
}

namespace {

TEST(TokenizerCorpus, HasEveryCategoryAndEnoughStrings) {
  const auto& corpus = TokenizerConformanceCorpus();
  EXPECT_GE(corpus.size(), 2000u);
  size_t largest = 0;
  for (const auto& s : corpus) largest = std::max(largest, s.size());
  EXPECT_GE(largest, 1u << 20);
}

}  // namespace
}  // namespace gemma_local
