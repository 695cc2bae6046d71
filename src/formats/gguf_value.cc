// GGUF metadata values: type names, helper constructors, and the typed getters of GgufFile.
//
// The getters never throw: every variant access goes through std::get_if, so a Value whose `type`
// and held alternative disagree (only possible for hand-built values) yields an error, not
// std::bad_variant_access.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "formats/gguf.h"

#include "core/error_text.h"

namespace gemma_local::gguf {
namespace {

bool IsIntType(ValueType t) {
  switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kU16:
    case ValueType::kI16:
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kU64:
    case ValueType::kI64:
      return true;
    default:
      return false;
  }
}

bool IsFloatType(ValueType t) { return t == ValueType::kF32 || t == ValueType::kF64; }

// "u32", or "array of string" / "array of array" for arrays, for "expected X, got Y" messages.
std::string Describe(const Value& v) {
  if (v.type == ValueType::kArray) {
    if (const auto* arr = std::get_if<ArrayValue>(&v.data)) {
      return std::string("array of ") + ValueTypeName(arr->elem_type);
    }
  }
  return ValueTypeName(v.type);
}

// Quotes a key for an error message: printable UTF-8 as is (so unicode keys stay readable), and
// anything else (control bytes, invalid UTF-8 in hand-built files, very long keys) escaped.
// One integer element as int64, or an error fragment (no file/key prefix).
Result<int64_t> IntOf(const Value& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return CorruptDataError(std::string(ValueTypeName(v.type)) + " value " + std::to_string(*u) +
                              " does not fit in int64");
    }
    return static_cast<int64_t>(*u);
  }
  if (const auto* s = std::get_if<int64_t>(&v.data)) return *s;
  return InternalError(std::string("value of type ") + ValueTypeName(v.type) + " holds no integer");
}

// One integer or float element as double, or an error fragment.
Result<double> FloatOf(const Value& v) {
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return static_cast<double>(*u);
  if (const auto* s = std::get_if<int64_t>(&v.data)) return static_cast<double>(*s);
  return InternalError(std::string("value of type ") + ValueTypeName(v.type) + " holds no number");
}

}  // namespace

const char* ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kU8:
      return "u8";
    case ValueType::kI8:
      return "i8";
    case ValueType::kU16:
      return "u16";
    case ValueType::kI16:
      return "i16";
    case ValueType::kU32:
      return "u32";
    case ValueType::kI32:
      return "i32";
    case ValueType::kF32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kU64:
      return "u64";
    case ValueType::kI64:
      return "i64";
    case ValueType::kF64:
      return "f64";
  }
  return "unknown";
}

Value Value::StringArray(const std::vector<std::string>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (const auto& s : v) elems.push_back(String(s));
  return Array(ValueType::kString, std::move(elems));
}

Value Value::F32Array(const std::vector<float>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (float f : v) elems.push_back(F32(f));
  return Array(ValueType::kF32, std::move(elems));
}

Value Value::I32Array(const std::vector<int32_t>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (int32_t i : v) elems.push_back(I32(i));
  return Array(ValueType::kI32, std::move(elems));
}

Value Value::U32Array(const std::vector<uint32_t>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (uint32_t u : v) elems.push_back(U32(u));
  return Array(ValueType::kU32, std::move(elems));
}

Value Value::BoolArray(const std::vector<bool>& v) {
  std::vector<Value> elems;
  elems.reserve(v.size());
  for (bool b : v) elems.push_back(Bool(b));
  return Array(ValueType::kBool, std::move(elems));
}

// Product of the dims. Parsed infos are validated (every dim >= 1, product <= INT64_MAX); for a
// hand-built info with a dim < 1 or an overflowing product this returns 0 rather than wrapping.
uint64_t TensorInfo::n_elements() const {
  uint64_t n = 1;
  for (int64_t d : ne) {
    if (d < 1 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return 0;
  }
  return n;
}

// Linear scans: real files hold tens of keys and hundreds of tensors, and lookups happen once at
// load time; an index would cost memory in every copy of GgufFile for no measurable gain.
const Value* GgufFile::Find(std::string_view key) const {
  for (const auto& kv : metadata_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

// Looks `key` up and checks its type with `accepts`; errors say "missing" or "expected X, got Y".
template <typename Pred>
Result<const Value*> Lookup(const GgufFile& file, std::string_view key, const char* expected,
                            Pred accepts) {
  const Value* v = file.Find(key);
  if (v == nullptr) return NotFoundError(file.path() + ": key " + QuoteName(key) + " is missing");
  if (!accepts(*v)) {
    return CorruptDataError(file.path() + ": key " + QuoteName(key) + ": expected " + expected +
                            ", got " + Describe(*v));
  }
  return v;
}

// Accepts an array whose element type satisfies `elem_ok`.
template <typename Pred>
auto ArrayOf(Pred elem_ok) {
  return [elem_ok](const Value& v) {
    const auto* arr = std::get_if<ArrayValue>(&v.data);
    return v.type == ValueType::kArray && arr != nullptr && elem_ok(arr->elem_type);
  };
}

// Converts every element with `convert`; element errors are prefixed with file, key and index.
template <typename T, typename Convert>
Result<std::vector<T>> ConvertArray(const GgufFile& file, std::string_view key, const Value& v,
                                    Convert convert) {
  const auto& arr = *std::get_if<ArrayValue>(&v.data);  // Lookup checked the alternative
  std::vector<T> out;
  out.reserve(arr.elems.size());
  for (size_t i = 0; i < arr.elems.size(); ++i) {
    const Value& e = arr.elems[i];
    if (e.type != arr.elem_type) {
      return CorruptDataError(file.path() + ": key " + QuoteName(key) + ": element " +
                              std::to_string(i) + " has type " + ValueTypeName(e.type) +
                              " in an array of " + ValueTypeName(arr.elem_type));
    }
    Result<T> r = convert(e);
    if (!r.ok()) {
      return r.status().WithContext(file.path() + ": key " + QuoteName(key) + ": element " +
                                    std::to_string(i));
    }
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key, "an integer",
                                             [](const Value& x) { return IsIntType(x.type); }));
  Result<int64_t> r = IntOf(*v);
  if (!r.ok()) return r.status().WithContext(path_ + ": key " + QuoteName(key));
  return r;
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key, "a number", [](const Value& x) {
                        return IsFloatType(x.type) || IsIntType(x.type);
                      }));
  Result<double> r = FloatOf(*v);
  if (!r.ok()) return r.status().WithContext(path_ + ": key " + QuoteName(key));
  return r;
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key, "bool", [](const Value& x) {
                        return x.type == ValueType::kBool && std::holds_alternative<bool>(x.data);
                      }));
  return *std::get_if<bool>(&v->data);
}

Result<std::string> GgufFile::GetString(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key, "string", [](const Value& x) {
                        return x.type == ValueType::kString &&
                               std::holds_alternative<std::string>(x.data);
                      }));
  return *std::get_if<std::string>(&v->data);
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key, "an array of integers",
                                             ArrayOf([](ValueType t) { return IsIntType(t); })));
  return ConvertArray<int64_t>(*this, key, *v, IntOf);
}

Result<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v,
                      Lookup(*this, key, "an array of numbers",
                             ArrayOf([](ValueType t) { return IsFloatType(t) || IsIntType(t); })));
  return ConvertArray<double>(*this, key, *v, FloatOf);
}

Result<std::vector<bool>> GgufFile::GetBoolArray(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v,
                      Lookup(*this, key, "an array of bool",
                             ArrayOf([](ValueType t) { return t == ValueType::kBool; })));
  return ConvertArray<bool>(*this, key, *v, [](const Value& e) -> Result<bool> {
    if (const auto* b = std::get_if<bool>(&e.data)) return *b;
    return InternalError("bool element holds no bool");
  });
}

Result<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  GL_ASSIGN_OR_RETURN(const Value* v,
                      Lookup(*this, key, "an array of string",
                             ArrayOf([](ValueType t) { return t == ValueType::kString; })));
  return ConvertArray<std::string>(*this, key, *v, [](const Value& e) -> Result<std::string> {
    if (const auto* s = std::get_if<std::string>(&e.data)) return *s;
    return InternalError("string element holds no string");
  });
}

int ScalarWidth(ValueType type) {
  switch (type) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
      return 1;
    case ValueType::kU16:
    case ValueType::kI16:
      return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
      return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

}  // namespace gemma_local::gguf
