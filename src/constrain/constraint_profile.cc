// ConstraintProfiler (constraint.h): compile and per-token mask timings without a model, for
// bench/constrain_bench.cc (MaskBench's method: replay token walks, time every mask).
#include <chrono>
#include <random>

#include "constrain/constraint_compile.h"
#include "constrain/matcher.h"
#include "constrain/vocab_index.h"
#include "gemma_local/constraint.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local {

struct ConstraintProfiler::State {
  std::shared_ptr<const constrain::VocabIndex> vocab;
  std::vector<int32_t> stop_ids;
  double vocab_index_ms = 0;
};

ConstraintProfiler::ConstraintProfiler(std::unique_ptr<State> state) : state_(std::move(state)) {}
ConstraintProfiler::~ConstraintProfiler() = default;

double ConstraintProfiler::vocab_index_ms() const { return state_->vocab_index_ms; }

Result<std::unique_ptr<ConstraintProfiler>> ConstraintProfiler::Create(
    std::shared_ptr<const Tokenizer> tokenizer, std::vector<int32_t> stop_ids) {
  if (tokenizer == nullptr) return InvalidArgumentError("ConstraintProfiler needs a tokenizer");
  auto state = std::make_unique<State>();
  const auto start = std::chrono::steady_clock::now();
  GL_ASSIGN_OR_RETURN(state->vocab, constrain::VocabIndex::Build(*tokenizer));
  state->vocab_index_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (int32_t id : stop_ids) {
    if (id < 0 || id >= state->vocab->vocab_size()) {
      return InvalidArgumentError("stop id " + std::to_string(id) + " is not in the vocabulary");
    }
  }
  state->stop_ids = std::move(stop_ids);
  return std::unique_ptr<ConstraintProfiler>(new ConstraintProfiler(std::move(state)));
}

Result<ConstraintProfile> ConstraintProfiler::Profile(const Constraint& constraint, int walks,
                                                      int max_tokens, uint64_t seed) const {
  using Clock = std::chrono::steady_clock;
  ConstraintProfile profile;
  const auto compile_start = Clock::now();
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const constrain::CompiledConstraint> compiled,
                      constrain::CompileConstraint(constraint));
  profile.compile_us =
      std::chrono::duration<double, std::micro>(Clock::now() - compile_start).count();
  std::mt19937_64 rng(seed);
  constrain::TokenMask mask(state_->vocab->vocab_size());
  for (int w = 0; w < walks; ++w) {
    constrain::Matcher matcher(compiled->grammar, state_->vocab, state_->stop_ids,
                               compiled->lexer);
    std::vector<double>& times = w == 0 ? profile.first_mask_us : profile.mask_us;
    for (int step = 0; step < max_tokens && !matcher.finished(); ++step) {
      const auto start = Clock::now();
      GL_RETURN_IF_ERROR(matcher.FillMask(&mask));
      times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      int32_t id = -1;
      if (step < max_tokens / 2) {
        const int32_t n = mask.Count();
        int32_t k = static_cast<int32_t>(rng() % static_cast<uint64_t>(n));
        mask.ForEach([&](int32_t i) {
          if (k-- == 0) id = i;
        });
      } else {
        id = matcher.SteerToken(mask);
      }
      GL_RETURN_IF_ERROR(matcher.Accept(id));
    }
    profile.walks_complete += matcher.finished() ? 1 : 0;
  }
  return profile;
}

}  // namespace gemma_local
