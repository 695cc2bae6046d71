// Every op of every backend this build has, against the scalar reference (ops/reference), on
// random odd shapes, with guard elements around each output that must stay untouched. Table
// driven: a new backend (CUDA) is covered by appearing in ops::AvailableBackends(); a new op by
// one row in kOps.
//
// Tolerances: 0 where the backend keeps the reference's arithmetic (row ops, element-wise ops,
// gathers); relative 1e-5 for the SIMD reductions (matrix products, attention) and the vector tanh
// of the fused GeGLU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/backend.h"
#include "ops/reference/ref_ops.h"
#include "runtime/kv_cache.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

constexpr int kGuard = 7;
constexpr float kGuardValue = -12345.5f;

// A buffer of n floats with guard elements on both sides.
struct Guarded {
  explicit Guarded(int64_t n) : data(static_cast<size_t>(n + 2 * kGuard), kGuardValue), size(n) {}
  float* get() { return data.data() + kGuard; }
  std::vector<float> values() const { return {data.begin() + kGuard, data.end() - kGuard}; }
  bool guards_intact() const {
    for (int i = 0; i < kGuard; ++i) {
      if (data[i] != kGuardValue || data[data.size() - 1 - i] != kGuardValue) return false;
    }
    return true;
  }
  std::vector<float> data;
  int64_t size;
};

std::vector<float> Random(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Compares with a relative tolerance (0 = bit-identical).
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (rel == 0) {
      ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0) << what << " element " << i << ": " << got[i]
                                                                   << " vs " << want[i];
    } else {
      ASSERT_NEAR(got[i], want[i], rel * (1.0 + std::fabs(want[i]))) << what << " element " << i;
    }
  }
}

struct Shape {
  int64_t rows, cols;
};
const Shape kShapes[] = {{1, 1}, {1, 7}, {3, 33}, {5, 64}, {17, 129}, {2, 1000}, {64, 31}};

using OpCheck = std::function<void(ops::Backend&, std::mt19937&, const Shape&, const std::string& what)>;
struct OpCase {
  const char* name;
  OpCheck check;
};

// Runs `backend_op` on a guarded copy of `input` and compares with `ref_op` on a plain copy.
void ElementWise(const std::vector<float>& input, const std::function<void(float*)>& backend_op,
                 const std::function<void(float*)>& ref_op, double rel, const std::string& what) {
  Guarded got(static_cast<int64_t>(input.size()));
  std::copy(input.begin(), input.end(), got.get());
  backend_op(got.get());
  std::vector<float> want = input;
  ref_op(want.data());
  EXPECT_TRUE(got.guards_intact()) << what << ": wrote outside its output";
  ExpectClose(got.values(), want, rel, what);
}

const OpCase kOps[] = {
    {"RmsNorm",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       const std::vector<float> x = Random(rng, s.rows * s.cols, 3.0f), gain = Random(rng, s.cols);
       for (const float* g : {gain.data(), static_cast<const float*>(nullptr)}) {
         Guarded got(s.rows * s.cols);
         be.RmsNorm(x.data(), g, s.rows, s.cols, 1e-6f, got.get());
         std::vector<float> want(x.size());
         for (int64_t r = 0; r < s.rows; ++r) ref::RmsNorm(&x[r * s.cols], g, 0.0f, s.cols, 1e-6f, &want[r * s.cols]);
         EXPECT_TRUE(got.guards_intact()) << what;
         ExpectClose(got.values(), want, 0, what);
       }
     }},
    {"Rope",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       const int64_t head_dim = 2 * ((s.cols + 1) / 2), n_heads = 3;
       std::vector<float> inv(static_cast<size_t>(head_dim / 2));
       for (size_t i = 0; i < inv.size(); ++i) inv[i] = i % 5 == 4 ? 0.0f : std::pow(10000.0f, -2.0f * i / head_dim);
       std::vector<int64_t> pos(static_cast<size_t>(s.rows));
       for (auto& p : pos) p = static_cast<int64_t>(rng() % 40000);
       ElementWise(
           Random(rng, s.rows * n_heads * head_dim),
           [&](float* x) { be.Rope(x, s.rows, n_heads, head_dim, pos.data(), inv.data()); },
           [&](float* x) {
             for (int64_t r = 0; r < s.rows; ++r) {
               for (int64_t h = 0; h < n_heads; ++h) {
                 ref::RopeNeox(x + (r * n_heads + h) * head_dim, head_dim, static_cast<double>(pos[r]), inv.data());
               }
             }
           },
           0, what);
     }},
    {"Softmax",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       ElementWise(
           Random(rng, s.rows * s.cols, 4.0f), [&](float* x) { be.Softmax(x, s.rows, s.cols); },
           [&](float* x) {
             for (int64_t r = 0; r < s.rows; ++r) ref::Softmax(x + r * s.cols, s.cols);
           },
           0, what);
     }},
    {"GeluMul",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       const std::vector<float> up = Random(rng, s.rows * s.cols);
       ElementWise(
           Random(rng, s.rows * s.cols, 3.0f), [&](float* x) { be.GeluMul(x, up.data(), s.rows * s.cols); },
           [&](float* x) {
             for (int64_t i = 0; i < s.rows * s.cols; ++i) x[i] = ref::GeluTanh(x[i]) * up[i];
           },
           1e-5, what);
     }},
    {"Gelu",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       ElementWise(
           Random(rng, s.rows * s.cols, 3.0f), [&](float* x) { be.Gelu(x, s.rows * s.cols); },
           [&](float* x) {
             for (int64_t i = 0; i < s.rows * s.cols; ++i) x[i] = ref::GeluTanh(x[i]);
           },
           0, what);
     }},
    {"AddMulScaleSoftCap",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       const int64_t n = s.rows * s.cols;
       const std::vector<float> y = Random(rng, n);
       ElementWise(
           Random(rng, n, 20.0f),
           [&](float* x) {
             be.Add(x, y.data(), n);
             be.Mul(x, y.data(), n);
             be.AddScaled(x, y.data(), 0.37f, n);
             be.Scale(x, 1.7f, n);
             be.SoftCap(x, 15.0f, n);
           },
           [&](float* x) {
             for (int64_t i = 0; i < n; ++i) {
               x[i] += y[i];
               x[i] *= y[i];
               x[i] += 0.37f * y[i];
               x[i] *= 1.7f;
               x[i] = 15.0f * std::tanh(x[i] / 15.0f);
             }
           },
           0, what);
     }},
    {"GetRowsAndMatMul",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       const std::vector<float> w = Random(rng, s.rows * s.cols);
       ref::MatrixView view{DType::kF32, reinterpret_cast<const uint8_t*>(w.data()), s.rows, s.cols};
       std::vector<std::vector<uint8_t>> storage;
       be.PrepareWeights(&view, &storage, false);
       std::vector<int32_t> ids = {static_cast<int32_t>(s.rows - 1), 0, static_cast<int32_t>(s.rows / 2)};
       Guarded rows(static_cast<int64_t>(ids.size()) * s.cols);
       be.GetRows(view, ids.data(), static_cast<int64_t>(ids.size()), rows.get());
       std::vector<float> want_rows;
       for (int32_t id : ids) want_rows.insert(want_rows.end(), w.begin() + id * s.cols, w.begin() + (id + 1) * s.cols);
       EXPECT_TRUE(rows.guards_intact()) << what;
       ExpectClose(rows.values(), want_rows, 0, what + " GetRows");
       for (int64_t tokens : {1, 3, 8}) {
         const std::vector<float> x = Random(rng, tokens * s.cols);
         Guarded y(tokens * s.rows);
         be.MatMul(view, x.data(), tokens, y.get());
         std::vector<float> want(static_cast<size_t>(tokens * s.rows));
         ref::MatMul(view, x.data(), tokens, want.data());
         EXPECT_TRUE(y.guards_intact()) << what;
         ExpectClose(y.values(), want, 1e-5, what + " MatMul tokens=" + std::to_string(tokens));
       }
     }},
    {"Attention",
     [](ops::Backend& be, std::mt19937& rng, const Shape& s, const std::string& what) {
       // Two sequences in one batch over a block KV cache of each storage type; a window and a
       // soft-cap on odd shapes (q8_0: heads of whole 32-blocks). The reference reads the same
       // stored rows (ref::AttendGroupStored).
       for (KvType type : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
         HParams hp = *testgen::PresetShape("tiny");
         const int64_t head_dim =
             type == KvType::kQ8_0 ? 32 * (1 + s.cols % 3) : 2 * (1 + s.cols % 24);
         const int64_t kv_heads = 2, n_heads = 6;
         hp.head_dim.assign(static_cast<size_t>(hp.n_layers), head_dim);
         hp.n_kv_heads.assign(static_cast<size_t>(hp.n_layers), kv_heads);
         hp.n_heads = n_heads;
         ASSERT_TRUE(KvCache::Validate(hp, type).ok());
         KvCache cache(hp, KvCacheOptions{/*block_rows=*/5, 0, true, type});
         const std::string label = what + " " + KvTypeName(type);
         const int64_t cached = s.rows % 9, fresh = 1 + s.rows % 4;
         Batch batch;
         for (int32_t seq : {0, 1}) {
           ASSERT_TRUE(cache.Reserve(seq, cached + fresh).ok());
           for (int64_t p = 0; p < cached + fresh; ++p) {
             const KvBlockTable t = cache.Table(0, seq);
             const std::vector<float> k = Random(rng, kv_heads * head_dim),
                                      v = Random(rng, kv_heads * head_dim);
             StoreKvRow(t.type, k.data(), t.row_elems, t.KRow(p));
             StoreKvRow(t.type, v.data(), t.row_elems, t.VRow(p));
           }
           cache.Commit(seq, cached);
           for (int64_t p = cached; p < cached + fresh; ++p) batch.push_back({seq, p, 0, false});
         }
         for (int64_t window : {int64_t{0}, int64_t{3}}) {
           for (float softcap : {0.0f, 5.0f}) {
             ops::AttentionParams ap{0, n_heads, kv_heads, head_dim, window, 0.3f, softcap};
             const auto T = static_cast<int64_t>(batch.size());
             const std::vector<float> q = Random(rng, T * n_heads * head_dim);
             Guarded out(T * n_heads * head_dim);
             be.Attention(ap, batch, q.data(), cache, out.get());
             std::vector<float> want(static_cast<size_t>(T * n_heads * head_dim));
             for (int64_t t = 0; t < T; ++t) {
               const KvBlockTable table = cache.Table(0, batch[t].seq);
               const int64_t lo = window > 0 ? std::max<int64_t>(0, batch[t].pos - window + 1) : 0;
               std::vector<const uint8_t*> kr, vr;
               for (int64_t j = lo; j <= batch[t].pos; ++j) {
                 kr.push_back(table.KRow(j));
                 vr.push_back(table.VRow(j));
               }
               const int64_t group = n_heads / kv_heads;
               for (int64_t g = 0; g < kv_heads; ++g) {
                 ref::AttendGroupStored(&q[(t * n_heads + g * group) * head_dim], group, head_dim,
                                        KvDType(table.type), kr.data(), vr.data(), g * head_dim,
                                        static_cast<int64_t>(kr.size()), 0.3f, softcap,
                                        &want[(t * n_heads + g * group) * head_dim]);
               }
             }
             EXPECT_TRUE(out.guards_intact()) << label;
             ExpectClose(out.values(), want, 1e-5,
                         label + " window=" + std::to_string(window) +
                             " softcap=" + std::to_string(softcap));
           }
         }
       }
     }},
};

TEST(BackendConsistency, EveryOpOfEveryBackendMatchesTheReference) {
  const std::vector<std::string> backends = ops::AvailableBackends();
  ASSERT_FALSE(backends.empty());
  for (const std::string& name : backends) {
    for (int threads : {1, 3}) {
      Result<std::unique_ptr<ops::Backend>> be = ops::CreateBackend(ops::BackendOptions{name, threads});
      ASSERT_TRUE(be.ok()) << be.status().ToString();
      for (const OpCase& op : kOps) {
        std::mt19937 rng(7);
        for (const Shape& s : kShapes) {
          const std::string what = name + "/" + std::to_string(threads) + "t " + op.name + " [" +
                                   std::to_string(s.rows) + "x" + std::to_string(s.cols) + "]";
          op.check(**be, rng, s, what);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(BackendConsistency, UnknownBackendsAreRefused) {
  Result<std::unique_ptr<ops::Backend>> be = ops::CreateBackend(ops::BackendOptions{"cuda", 1});
  ASSERT_FALSE(be.ok());
  EXPECT_NE(be.status().message().find("cuda"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local
