// The CPU backend: ops::Backend over the SIMD kernels of this directory and a thread pool it owns.
//
// Element-wise and row ops keep the arithmetic of the scalar reference (f64 sums where it sums
// in f64, the same operation order per element), parallel over rows: they are a small share of a
// forward pass, and keeping their numerics fixed keeps outputs reproducible across versions. The
// matrix products and attention are the SIMD kernels (backends/cpu/*.cc).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/cpu/quant_matmul.h"
#include "core/thread_pool.h"
#include "ops/backend.h"

namespace gemma_local::ops {
namespace {

// Rows per parallel chunk for row ops, so that tiny decode steps stay on one thread.
constexpr int64_t kRowGrainElems = 65536;
int64_t RowGrain(int64_t width) { return std::max<int64_t>(1, kRowGrainElems / std::max<int64_t>(1, width)); }

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) {}

  std::string_view name() const override { return "cpu"; }
  int threads() const override { return pool_.size(); }

  void PrepareWeights(ref::MatrixView* w, std::vector<std::vector<uint8_t>>* storage,
                      bool source_is_file_mapping) const override {
    RepackWeights(w, storage, source_is_file_mapping);
  }

  void GetRows(const ref::MatrixView& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t i = 0; i < n; ++i) ref::DequantizeRow(table, ids[i], out + i * table.cols);
  }

  void MatMul(const ref::MatrixView& w, const float* x, int64_t n_tokens, float* y) override {
    // The scratch is this backend's: forward passes of several threads take turns here (their
    // loops would serialize on the pool anyway).
    std::lock_guard<std::mutex> lock(scratch_mu_);
    ops::MatMul(Context{&pool_, nullptr, &matmul_scratch_}, w, x, n_tokens, y);
  }

  // y = x * (mean(x^2) + eps)^(-1/2) * gain, the sum of squares in f64 (as ref::RmsNorm).
  void RmsNorm(const float* x, const float* gain, int64_t n_rows, int64_t width, float eps,
               float* y) override {
    pool_.ParallelFor(n_rows, RowGrain(width), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * width;
        float* yr = y + r * width;
        double ss = 0.0;
        for (int64_t i = 0; i < width; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
        for (int64_t i = 0; i < width; ++i) yr[i] = xr[i] * scale * (gain != nullptr ? gain[i] : 1.0f);
      }
    });
  }

  // cos/sin of each (position, pair) computed once per row and shared by its heads.
  void Rope(float* x, int64_t n_rows, int64_t n_heads, int64_t head_dim, const int64_t* positions,
            const float* inv_freq) override {
    const int64_t half = head_dim / 2;
    pool_.ParallelFor(n_rows, RowGrain(n_heads * head_dim), [&](int64_t r0, int64_t r1) {
      // On the stack for every Gemma head size (a decode step allocates nothing here).
      constexpr int64_t kMaxHalf = 512;
      std::array<float, kMaxHalf> c_stack, s_stack;
      std::vector<float> c_heap, s_heap;
      if (half > kMaxHalf) {
        c_heap.resize(static_cast<size_t>(half));
        s_heap.resize(static_cast<size_t>(half));
      }
      float* c = half > kMaxHalf ? c_heap.data() : c_stack.data();
      float* s = half > kMaxHalf ? s_heap.data() : s_stack.data();
      for (int64_t r = r0; r < r1; ++r) {
        const auto p = static_cast<double>(positions[r]);
        for (int64_t i = 0; i < half; ++i) {
          const double theta = p * inv_freq[i];
          c[i] = static_cast<float>(std::cos(theta));
          s[i] = static_cast<float>(std::sin(theta));
        }
        for (int64_t h = 0; h < n_heads; ++h) {
          float* v = x + (r * n_heads + h) * head_dim;
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i];
            const float b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
          }
        }
      }
    });
  }

  // Max-subtracted, f64 sum (as ref::Softmax).
  void Softmax(float* x, int64_t n_rows, int64_t width) override {
    pool_.ParallelFor(n_rows, RowGrain(width), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* xr = x + r * width;
        float mx = -INFINITY;
        for (int64_t i = 0; i < width; ++i) mx = std::max(mx, xr[i]);
        double sum = 0.0;
        for (int64_t i = 0; i < width; ++i) {
          xr[i] = std::exp(xr[i] - mx);
          sum += xr[i];
        }
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t i = 0; i < width; ++i) xr[i] *= inv;
      }
    });
  }

  void GeluMul(float* gate, const float* up, int64_t n) override { ops::GeluMul(Context{&pool_}, gate, up, n); }

  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with std::tanh (as ref::GeluTanh).
  void Gelu(float* x, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      constexpr float k = 0.7978845608028654f;  // sqrt(2/pi)
      for (int64_t i = i0; i < i1; ++i) x[i] = 0.5f * x[i] * (1.0f + std::tanh(k * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
    });
  }

  void Mul(float* x, const float* y, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] *= y[i];
    });
  }

  void Add(float* x, const float* y, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] += y[i];
    });
  }

  void AddScaled(float* x, const float* y, float s, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] += s * y[i];
    });
  }

  void Scale(float* x, float s, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] *= s;
    });
  }

  void SoftCap(float* x, float cap, int64_t n) override {
    pool_.ParallelFor(n, kRowGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) x[i] = cap * std::tanh(x[i] / cap);
    });
  }

  void Attention(const AttentionParams& p, const Batch& batch, const float* q, const KvView& kv,
                 float* out) override;

 private:
  // Per pool worker (ThreadPool gives each running range its worker's index).
  struct AttentionScratch {
    std::vector<const uint8_t*> k_rows, v_rows;  // the visible rows of the current token
    std::vector<float> scores;
    // Room for `rows` visible rows of `heads` heads: at least 4,096 rows, then doubling, so
    // contexts up to 4k never reallocate and longer ones only when the longest context passes a
    // power of two.
    void Fit(int64_t rows, int64_t heads) {
      if (static_cast<int64_t>(k_rows.capacity()) >= rows &&
          static_cast<int64_t>(scores.capacity()) >= rows * heads) {
        return;
      }
      int64_t room = 4096;
      while (room < rows) room *= 2;
      k_rows.reserve(static_cast<size_t>(room));
      v_rows.reserve(static_cast<size_t>(room));
      scores.reserve(static_cast<size_t>(room * std::max<int64_t>(heads, 8)));
    }
  };

  ThreadPool pool_;
  std::mutex scratch_mu_;          // guards the two scratches below
  MatMulScratch matmul_scratch_;
  std::vector<AttentionScratch> attention_scratch_ = std::vector<AttentionScratch>(pool_.size());
};

void CpuBackend::Attention(const AttentionParams& p, const Batch& batch, const float* q, const KvView& kv,
                           float* out) {
  const int64_t d = p.head_dim;
  const int64_t nh = p.n_heads;
  const int64_t group = nh / p.n_kv_heads;
  // A work item is one token and a run of query heads inside one KV group: the whole group when
  // there are enough items to keep every thread busy (each K/V row is then read once per group),
  // single heads otherwise (decode of one token). AttendGroup computes each head by the same
  // operations whatever the heads beside it, so this choice changes speed only, never a token's
  // result (batch invariance; tests/backends/attention_test.cc).
  const auto n_tokens = static_cast<int64_t>(batch.size());
  const int64_t heads_per_item = n_tokens * p.n_kv_heads >= 2 * pool_.size() ? group : 1;
  const int64_t items_per_token = nh / heads_per_item;
  // Every worker's scratch is sized here, before the loop: which worker gets which token depends
  // on timing, and none may allocate inside it.
  int64_t max_rows = 0;
  for (const BatchEntry& e : batch) {
    max_rows = std::max(max_rows, p.window > 0 ? std::min<int64_t>(e.pos + 1, p.window) : e.pos + 1);
  }
  std::lock_guard<std::mutex> lock(scratch_mu_);  // forward passes of several threads take turns
  for (AttentionScratch& s : attention_scratch_) s.Fit(max_rows, heads_per_item);
  pool_.ParallelFor(n_tokens * items_per_token, 1, [&](int worker, int64_t begin, int64_t end) {
    // The worker's own buffers, kept between calls: a decode step allocates nothing here.
    AttentionScratch& mine = attention_scratch_[static_cast<size_t>(worker)];
    std::vector<const uint8_t*>& k_rows = mine.k_rows;
    std::vector<const uint8_t*>& v_rows = mine.v_rows;
    std::vector<float>& scratch = mine.scores;
    int64_t rows_token = -1;
    KvType type = KvType::kF32;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / items_per_token;
      const int64_t h0 = (item % items_per_token) * heads_per_item;
      const int64_t pos = batch[t].pos;
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
      if (rows_token != t) {  // the visible rows are the same for every head of a token
        const KvBlockTable table = kv.Table(p.kv_layer, batch[t].seq);
        type = table.type;
        k_rows.clear();
        v_rows.clear();
        for (int64_t j = lo; j <= pos; ++j) {
          k_rows.push_back(table.KRow(j));
          v_rows.push_back(table.VRow(j));
        }
        rows_token = t;
      }
      const int64_t kv_off = (h0 / group) * d;
      AttendGroup(q + (t * nh + h0) * d, heads_per_item, d, type, k_rows.data(), v_rows.data(),
                  kv_off, pos - lo + 1, p.scale, p.softcap, &scratch, out + (t * nh + h0) * d);
    }
  });
}

}  // namespace

std::vector<std::string> AvailableBackends() { return {"cpu"}; }

Result<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  if (options.name != "cpu") {
    return InvalidArgumentError("backend '" + options.name + "' is not available (this build has: cpu)");
  }
  return std::unique_ptr<Backend>(new CpuBackend(options.threads));
}

}  // namespace gemma_local::ops
