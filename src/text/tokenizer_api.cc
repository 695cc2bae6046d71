// The public Tokenizer facade (include/gemma_local/tokenizer.h) over text::TokenizerModel.
#include <sys/stat.h>

#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "gemma_local/tokenizer.h"
#include "text/tokenizer.h"

namespace gemma_local {
namespace {

constexpr uint64_t kMaxTokenizerJsonBytes = 512ull << 20;
constexpr uint64_t kMaxConfigJsonBytes = 64ull << 20;

// The file mapped read-only (no copy of the 33 MB Gemma 3 tokenizer.json); the loaders keep
// views into it only until the TokenizerModel is built.
Result<std::shared_ptr<const MappedFile>> MapWhole(const std::string& path, uint64_t max_bytes) {
  GL_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  if (file->size() > max_bytes) {
    return ResourceExhaustedError(path + ": " + std::to_string(file->size()) +
                                  " bytes exceeds the " + std::to_string(max_bytes) +
                                  "-byte limit for this file");
  }
  return file;
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::shared_ptr<const Tokenizer>> Wrap(Result<text::VocabSpec> spec) {
  if (!spec.ok()) return spec.status();
  GL_ASSIGN_OR_RETURN(auto model, text::TokenizerModel::Build(std::move(spec).value()));
  return std::make_shared<const Tokenizer>(std::make_shared<const Tokenizer::Impl>(Tokenizer::Impl{std::move(model)}));
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> text::TokenizerFromGguf(const gguf::GgufFile& file) {
  return Wrap(text::VocabSpecFromGguf(file));
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromHfJson(std::string_view tokenizer_json,
                                                               std::string_view config_json,
                                                               const std::string& source) {
  return Wrap(text::VocabSpecFromHfJson(tokenizer_json, config_json, source));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::Load(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return NotFoundError(path + ": no such file or directory");
  std::string json_path = path;
  if (S_ISDIR(st.st_mode)) {
    json_path = path + "/tokenizer.json";
    if (!IsFile(json_path)) {
      return NotFoundError(path + ": directory has no tokenizer.json (pass a .gguf file instead?)");
    }
  } else {
    GL_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
    if (file->size() >= 4 && file->bytes().substr(0, 4) == "GGUF") {
      GL_ASSIGN_OR_RETURN(auto gguf_file, gguf::GgufFile::Open(path));
      return Wrap(text::VocabSpecFromGguf(gguf_file));
    }
  }
  GL_ASSIGN_OR_RETURN(auto tokenizer_json, MapWhole(json_path, kMaxTokenizerJsonBytes));
  const size_t slash = json_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : json_path.substr(0, slash);
  std::shared_ptr<const MappedFile> config_json;
  if (IsFile(dir + "/tokenizer_config.json")) {
    GL_ASSIGN_OR_RETURN(config_json, MapWhole(dir + "/tokenizer_config.json", kMaxConfigJsonBytes));
  }
  return FromHfJson(tokenizer_json->bytes(),
                    config_json ? config_json->bytes() : std::string_view(), json_path);
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               const EncodeOptions& options) const {
  text::EncodeFlags flags;
  flags.add_bos = options.add_bos.value_or(impl_->model->add_bos());
  // EOS is the model's rule only when the caller takes the model's BOS rule too.
  flags.add_eos = !options.add_bos.has_value() && impl_->model->add_eos();
  flags.parse_special = options.parse_special;
  flags.literal_spans = options.literal_spans;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  GL_RETURN_IF_ERROR(impl_->model->Encode(text, flags, ids));
  return ids;
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                      const DecodeOptions& options) const {
  return impl_->model->Decode(ids, options.skip_special);
}

std::vector<std::pair<size_t, size_t>> Tokenizer::FindSpecialText(std::string_view text) const {
  return impl_->model->FindSpecial(text);
}

int32_t Tokenizer::vocab_size() const { return impl_->model->vocab_size(); }
int32_t Tokenizer::bos_id() const { return impl_->model->bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->model->eos_id(); }
bool Tokenizer::adds_bos() const { return impl_->model->add_bos(); }

std::optional<int32_t> Tokenizer::PieceToId(std::string_view piece) const {
  const int32_t id = impl_->model->PieceToId(piece);
  if (id < 0) return std::nullopt;
  return id;
}

Result<std::string> Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= impl_->model->vocab_size()) {
    return InvalidArgumentError("token id " + std::to_string(id) + " outside the vocabulary of " +
                                std::to_string(impl_->model->vocab_size()));
  }
  return std::string(impl_->model->Piece(id));
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < impl_->model->vocab_size() && impl_->model->IsSpecial(id);
}

TokenStreamDecoder::TokenStreamDecoder(std::shared_ptr<const Tokenizer> tokenizer,
                                       DecodeOptions options)
    : tokenizer_(std::move(tokenizer)), options_(options) {}

Result<std::string> TokenStreamDecoder::Push(int32_t id) {
  const text::TokenizerModel& m = *tokenizer_->impl().model;
  std::string bytes;
  GL_RETURN_IF_ERROR(m.AppendTokenBytes(id, options_.skip_special, bytes));
  std::string out;
  if (m.ByteValue(id) < 0) {
    // A normal piece ends any run of byte pieces: what is held back can no longer complete.
    if (options_.skip_special && m.IsSpecial(id)) return out;
    out = Finish();
    out.append(bytes);
    return out;
  }
  pending_.append(bytes);
  const size_t hold = text::IncompleteUtf8Tail(pending_);
  text::AppendUtf8Sanitized(std::string_view(pending_).substr(0, pending_.size() - hold), out);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string TokenStreamDecoder::Finish() {
  std::string out;
  text::AppendUtf8Sanitized(pending_, out);
  pending_.clear();
  return out;
}

}  // namespace gemma_local
