// Stacked LSTM as one stateful MXNet external operator (MXNet >= 1.9, lib_api.h version 11).
//
// Operator `sinlstm_stack`, attribute `hidden_sizes` ("10,20,1").
//   inputs:  data (B, L, n0) in NTC layout, then one flat parameter vector per layer
//            in the layout of mx.sym.RNN (mode='lstm', one layer):
//            i2h_weight (4h, n), h2h_weight (4h, h), i2h_bias (4h), h2h_bias (4h);
//            gates in the order input, forget, cell (g), output.
//   output:  the last layer's hidden state at every step, (B, L) (last hidden size is 1).
// Optional attribute `step_weights` ("w_0,...,w_{L-1}", float32 values, one per step): the
//   output's gradient is weighed per step. The output stays the prediction, computed as
//   pred * (1 - w_t) + pred * w_t, and backward takes ograd * w_t as the prediction's
//   gradient: exactly what `BlockGrad(broadcast_mul(pred, 1 - w)) + broadcast_mul(pred, w)`
//   computes in MXNet's graph (float32 arithmetic, same order), in no extra operator.
// Optional attribute `last_step` ("1" or "0", default "0"): "1" returns the last step only, (B, 1), the
//   numbers of slice_axis on the full output (its gradient enters at the last step, zeros elsewhere).
//   Not with step_weights.
// Initial states are zero. Forward keeps the activations backward needs in the operator's
// state; backward gives the gradients of data and of every parameter vector.
//
// The library also exports a plain C interface for inference without MXNet (sinlstm_direct_create,
// sinlstm_direct_forward, sinlstm_direct_free; see DirectModel at the end): the same forward pass, with
// the same numbers, on float32 buffers of the caller.
//
// Layout inside: the batch is cut into blocks of BB windows; every per-step quantity of a
// block is stored feature-major, (features, BB), so each feature row is one SIMD vector
// (GCC/Clang vector extensions: AVX-512, AVX2 or SSE, whatever the target has). Blocks
// are independent, so a step's gate matrix is a (4h x K) by (K x BB) product held in
// registers, and the weight gradient is one long reduction over (blocks, steps, lanes).
// Padded lanes of the last block carry zero inputs and zero output gradients, so they
// add nothing to the parameter gradients.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mxnet/lib_api.h"

using namespace mxnet::ext;

namespace {

constexpr int BB = 16;  // windows per block = lanes of one vector
constexpr const char* kOpName = "sinlstm_stack";

typedef float vf32 __attribute__((vector_size(BB * sizeof(float))));
typedef int32_t vi32 __attribute__((vector_size(BB * sizeof(int32_t))));
typedef double vf64 __attribute__((vector_size(BB * sizeof(double))));

template <class T> struct VecOf;
template <> struct VecOf<float> { typedef vf32 type; };
template <> struct VecOf<double> { typedef vf64 type; };

template <class V, class T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
inline void store(T* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }
template <class V, class T>
inline V splat(T s) { return V{} + s; }

// exp for float vectors: Cody-Waite range reduction and a degree-6 polynomial
// (relative error about 2 ulp on the clamped range), all lanes in SIMD registers.
inline vf32 vexp(vf32 x) {
  const vf32 hi = splat<vf32>(88.0f), lo = splat<vf32>(-87.0f);
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const vf32 shifter = splat<vf32>(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  vf32 n = (x * 1.44269504088896341f + shifter) - shifter;
  vf32 r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  vf32 p = splat<vf32>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  vi32 bits = (__builtin_convertvector(n, vi32) + 127) << 23;
  vf32 scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
inline vf64 vexp(vf64 x) {
  for (int i = 0; i < BB; ++i) x[i] = std::exp(x[i]);
  return x;
}
template <class V>
inline V vsigmoid(V x) { return 1.0f / (1.0f + vexp(-x)); }
template <class V>
inline V vtanh(V x) { return 1.0f - 2.0f / (1.0f + vexp(x + x)); }

template <class V>
inline double hsum(const V& v) {
  double s = 0;
  for (int i = 0; i < BB; ++i) s += v[i];
  return s;
}

bool parse_hidden(const std::unordered_map<std::string, std::string>& attrs, std::vector<int>* sizes,
                  std::string* err) {
  auto it = attrs.find("hidden_sizes");
  if (it == attrs.end()) {
    *err = std::string(kOpName) + ": attribute hidden_sizes is required, e.g. hidden_sizes='10,20,1'";
    return false;
  }
  sizes->clear();
  std::stringstream ss(it->second);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 100000) {
      *err = std::string(kOpName) + ": hidden_sizes must be positive integers separated by commas, got '" +
             it->second + "'";
      return false;
    }
    sizes->push_back(static_cast<int>(v));
  }
  if (sizes->empty() || sizes->back() != 1) {
    *err = std::string(kOpName) + ": hidden_sizes must end with 1 (the output is the last layer's hidden "
           "state), got '" + it->second + "'";
    return false;
  }
  return true;
}

// The optional per-step weights (see the header); an absent attribute gives an empty vector.
bool parse_weights(const std::unordered_map<std::string, std::string>& attrs, std::vector<float>* weights,
                   std::string* err) {
  weights->clear();
  auto it = attrs.find("step_weights");
  if (it == attrs.end()) return true;
  std::stringstream ss(it->second);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    const float f = static_cast<float>(v);
    if (item.empty() || *end != '\0' || !std::isfinite(f) || static_cast<double>(f) != v) {
      *err = std::string(kOpName) + ": step_weights must be float32 values separated by commas, got '" +
             it->second + "'";
      return false;
    }
    weights->push_back(f);
  }
  if (weights->empty()) {
    *err = std::string(kOpName) + ": step_weights must hold one weight per step, got none";
    return false;
  }
  return true;
}

// The optional `last_step` flag; with step_weights it is an error (the weights are per step of the output).
bool parse_last_step(const std::unordered_map<std::string, std::string>& attrs, bool* last_step, std::string* err) {
  *last_step = false;
  auto it = attrs.find("last_step");
  if (it == attrs.end()) return true;
  if (it->second != "0" && it->second != "1") {
    *err = std::string(kOpName) + ": last_step must be '0' or '1', got '" + it->second + "'";
    return false;
  }
  *last_step = it->second == "1";
  if (*last_step && attrs.count("step_weights") != 0) {
    *err = std::string(kOpName) + ": last_step='1' returns one step, so step_weights (one per step) cannot apply";
    return false;
  }
  return true;
}

int64_t param_size(int n, int h) { return 4LL * h * (n + h) + 8LL * h; }

// Memory blocks handed from forward to backward. Training runs one bucket's forward and
// backward after the other, so one block serves every bucket length: memory stays flat
// however many lengths are bound. Never freed (process lifetime).
class Pool {
 public:
  Pool() = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {  // the shared pool() is never destroyed; a DirectModel's own pool frees its blocks here
    for (Block& b : free_) std::free(b.ptr);
  }
  struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  Block acquire(size_t bytes) {
    Block b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        auto best = std::max_element(free_.begin(), free_.end(),
                                     [](const Block& a, const Block& c) { return a.bytes < c.bytes; });
        b = *best;
        free_.erase(best);
      }
    }
    if (b.bytes < bytes) {
      std::free(b.ptr);
      b.bytes = (bytes + 4095) / 4096 * 4096;
      b.ptr = nullptr;
      if (posix_memalign(&b.ptr, 128, b.bytes) != 0) {
        b.ptr = nullptr;
        b.bytes = 0;
      }
    }
    return b;
  }
  void release(Block* b) {
    if (b->ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(*b);
    *b = Block();
  }

 private:
  std::mutex mu_;
  std::vector<Block> free_;
};
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

// Threads. The work of a call that is independent across items (blocks of windows, rows of a
// weight gradient) is shared by the calling thread (MXNet's engine worker) and helper threads
// started on first use. Each thread has a fixed share of the items and takes over what another
// has not started; an item computes the same thing whichever thread runs it, and every reduction
// keeps its order, so the results are bit-identical for any thread count.
// $SINLSTM_NATIVE_THREADS sets the count (1: the calling thread alone; at most kMaxThreads),
// default min(2, hardware threads). A helper that fails to start leaves fewer threads, never an
// error. Helpers are detached and their state is never freed, so nothing waits for them at exit
// (MXNet never unloads a library); a forked child starts its own.
constexpr int kDefaultThreads = 2;
constexpr int kMaxThreads = 64;
constexpr const char* kThreadsEnv = "SINLSTM_NATIVE_THREADS";
// A call with fewer (blocks of 16 windows x steps) than this runs on the calling thread alone.
// The operator alone gains from 2 blocks on (batch 300, L=9: 1.6x), but in a fit the helper's
// work lands on the core of the Python thread, which needs it too: sharing pays only when one
// call's work (about 5 us per block and step on one thread) clearly exceeds the Python thread's
// cost per batch (about 0.5 ms). 160 = batch 300 of length 9 (171) and longer; lengths 1..9 at
// batch 300 ran 5-14 % slower end to end with a threshold of 24 to 150 (BENCHMARKS.md).
constexpr int kMinParallelBlockSteps = 160;

constexpr int kSpinRounds = 4000;  // polling rounds (about 10 ns each) before a thread sleeps or yields

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int wanted_threads() {
  const char* env = std::getenv(kThreadsEnv);
  if (env != nullptr && *env != '\0' && std::strspn(env, "0123456789") == std::strlen(env)) {
    const long v = std::strtol(env, nullptr, 10);  // saturates at LONG_MAX
    if (v >= 1) return static_cast<int>(std::min<long>(v, kMaxThreads));
  }
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, std::min(kDefaultThreads, hw));
}

class Workers {
 public:
  typedef void (*Task)(void* ctx, int item, int worker);

  explicit Workers(int wanted) {
    for (int id = 1; id < wanted; ++id) {
      try {
        std::thread(&Workers::serve, this, id).detach();
      } catch (...) {  // std::system_error (no more threads), std::bad_alloc: carry on with fewer
        break;
      }
      threads_ = id + 1;
    }
  }
  int threads() const { return threads_; }
  // While held, idle helpers poll for the next run instead of sleeping (see serve).
  void hold() { held_.fetch_add(1, std::memory_order_relaxed); }
  void release() { held_.fetch_sub(1, std::memory_order_relaxed); }

  // task(ctx, i, worker) for every i in [0, items), worker < threads(); returns when all are done.
  // A second caller while one runs (several engine workers) runs its items alone.
  void run(int items, Task task, void* ctx) {
    std::unique_lock<std::mutex> caller(caller_, std::try_to_lock);
    if (threads_ < 2 || items < 2 || !caller.owns_lock()) {
      for (int i = 0; i < items; ++i) task(ctx, i, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = task;
      ctx_ = ctx;
      items_ = items;
      for (int w = 0; w < threads_; ++w) claimed_[w].count.store(0, std::memory_order_relaxed);
      open_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = false;  // a helper waking from now on skips this call
    }
    // A busy helper is inside its last item (tens of microseconds): poll rather than sleep, since
    // waking the caller would cost about as much again.
    for (int s = 0; busy_.load(std::memory_order_acquire) != 0; ++s) {
      if (s < kSpinRounds) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  int share_begin(int w) const { return static_cast<int>(int64_t(items_) * w / threads_); }
  void work(int worker) {
    // Thread w first runs its own share [begin(w), begin(w + 1)), the same blocks in every call (the
    // forward's activations stay in its cache for the backward), then helps with the others' shares.
    for (int k = 0; k < threads_; ++k) {
      const int w = (worker + k) % threads_;
      const int begin = share_begin(w), size = share_begin(w + 1) - begin;
      for (int i; (i = claimed_[w].count.fetch_add(1, std::memory_order_relaxed)) < size;)
        task_(ctx_, begin + i, worker);
    }
  }
  void serve(int worker) {
    uint64_t seen = 0;
    for (;;) {
      // Between the parts of one backward pass the next part follows within microseconds: poll.
      // Otherwise sleep at once, leaving the core to the Python thread.
      for (int s = 0; s < kSpinRounds && held_.load(std::memory_order_relaxed) > 0 &&
                      generation_.load(std::memory_order_acquire) == seen;
           ++s)
        cpu_relax();
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
      seen = generation_.load(std::memory_order_relaxed);
      if (!open_) continue;
      busy_.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      work(worker);
      busy_.fetch_sub(1, std::memory_order_release);
    }
  }

  int threads_ = 1;
  std::mutex caller_, mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  struct Counter {  // one per cache line
    std::atomic<int> count{0};
    char pad[64 - sizeof(std::atomic<int>)];
  };
  Counter claimed_[kMaxThreads];  // items of each share handed out
  bool open_ = false;
  std::atomic<int> busy_{0};
  std::atomic<int> held_{0};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int items_ = 0;
};

Workers& workers() {
  static std::mutex mu;
  static Workers* current = nullptr;
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (current == nullptr || owner != getpid()) {  // a forked child has none of its parent's helpers
    current = new Workers(wanted_threads());
    owner = getpid();
  }
  return *current;
}

// Keeps the helpers polling between the parallel parts of one pass (none when not threaded).
class HoldWorkers {
 public:
  explicit HoldWorkers(bool threaded) : workers_(threaded ? &workers() : nullptr) {
    if (workers_ != nullptr) workers_->hold();
  }
  ~HoldWorkers() {
    if (workers_ != nullptr) workers_->release();
  }
  HoldWorkers(const HoldWorkers&) = delete;
  HoldWorkers& operator=(const HoldWorkers&) = delete;

 private:
  Workers* workers_;
};

// f(i, worker) for i in [0, items), on the helper threads too when `threaded`.
template <class F>
void parallel_for(int items, bool threaded, F& f) {
  if (!threaded) {
    for (int i = 0; i < items; ++i) f(i, 0);
    return;
  }
  workers().run(items, [](void* ctx, int i, int worker) { (*static_cast<F*>(ctx))(i, worker); }, &f);
}

// Where each per-block, per-step array lives inside the saved-activation block.
struct Layout {
  int B = 0, L = 0, n0 = 0, nblk = 0;
  std::vector<int> h, n;
  std::vector<size_t> hoff, coff, goff;  // per layer, in elements
  size_t xoff = 0, total = 0;

  void plan(const std::vector<int>& hidden, int B_, int L_, int n0_) {
    B = B_;
    L = L_;
    n0 = n0_;
    nblk = (B + BB - 1) / BB;
    h = hidden;
    n.assign(h.size(), 0);
    hoff.assign(h.size(), 0);
    coff.assign(h.size(), 0);
    goff.assign(h.size(), 0);
    size_t off = 0;
    xoff = off;
    off += size_t(nblk) * L * n0 * BB;
    for (size_t l = 0; l < h.size(); ++l) {
      n[l] = l == 0 ? n0 : h[l - 1];
      hoff[l] = off;
      off += size_t(nblk) * (L + 1) * h[l] * BB;
      coff[l] = off;
      off += size_t(nblk) * (L + 1) * h[l] * BB;
      goff[l] = off;
      off += size_t(nblk) * L * 4 * h[l] * BB;
    }
    total = off;
  }
  size_t X(int blk, int t) const { return xoff + (size_t(blk) * L + t) * n0 * BB; }
  size_t H(int l, int blk, int t) const { return hoff[l] + (size_t(blk) * (L + 1) + t) * h[l] * BB; }
  size_t C(int l, int blk, int t) const { return coff[l] + (size_t(blk) * (L + 1) + t) * h[l] * BB; }
  size_t G(int l, int blk, int t) const { return goff[l] + (size_t(blk) * L + t) * 4 * h[l] * BB; }
};

bool worth_threads(int nblk, int L) { return nblk >= 2 && int64_t(nblk) * L >= kMinParallelBlockSteps; }
bool worth_threads(const Layout& lay) { return worth_threads(lay.nblk, lay.L); }

// out rows j0..j0+JC-1 of (4h x BB) = bias + WT^T [x; hp] with WT stored (K x 4h).
template <class T, int JC>
inline void gate_tile(const T* WT, int G4, const T* bias, const T* x, int n, const T* hp, int h, T* out,
                      int j0) {
  typedef typename VecOf<T>::type V;
  V acc[JC];
  for (int jj = 0; jj < JC; ++jj) acc[jj] = splat<V>(bias[j0 + jj]);
  for (int k = 0; k < n; ++k) {
    const V v = load<V>(x + size_t(k) * BB);
    const T* w = WT + size_t(k) * G4 + j0;
    for (int jj = 0; jj < JC; ++jj) acc[jj] += w[jj] * v;
  }
  for (int k = 0; k < h; ++k) {
    const V v = load<V>(hp + size_t(k) * BB);
    const T* w = WT + size_t(n + k) * G4 + j0;
    for (int jj = 0; jj < JC; ++jj) acc[jj] += w[jj] * v;
  }
  for (int jj = 0; jj < JC; ++jj) store(out + size_t(j0 + jj) * BB, acc[jj]);
}

// dIn rows k0..k0+KC-1 of (K x BB) = W^T dpre, W stored (4h x K).
template <class T, int KC>
inline void input_grad_tile(const T* W, int G4, int K, const T* dpre, T* din, int k0) {
  typedef typename VecOf<T>::type V;
  V acc[KC];
  for (int kk = 0; kk < KC; ++kk) acc[kk] = V{};
  for (int j = 0; j < G4; ++j) {
    const V d = load<V>(dpre + size_t(j) * BB);
    const T* w = W + size_t(j) * K + k0;
    for (int kk = 0; kk < KC; ++kk) acc[kk] += w[kk] * d;
  }
  for (int kk = 0; kk < KC; ++kk) store(din + size_t(k0 + kk) * BB, acc[kk]);
}

// Chunk (blk, t) of a per-step array: base + blk * bs + t * ts.
template <class T>
struct Chunks {
  const T* base;
  size_t bs, ts;
  const T* at(int blk, int t) const { return base + blk * bs + t * ts; }
};

// dW[j][k] (row stride ldw) = sum over blocks, steps and lanes of A[j] * Bm[k], for a JT x KT tile.
template <class T, int JT, int KT>
inline void outer_tile(const Chunks<T>& A, const Chunks<T>& Bm, int nblk, int L, int j0, int k0, T* dW,
                       int ldw) {
  typedef typename VecOf<T>::type V;
  V acc[JT][KT];
  for (int jj = 0; jj < JT; ++jj)
    for (int kk = 0; kk < KT; ++kk) acc[jj][kk] = V{};
  for (int blk = 0; blk < nblk; ++blk) {
    for (int t = 0; t < L; ++t) {
      const T* a = A.at(blk, t) + size_t(j0) * BB;
      const T* b = Bm.at(blk, t) + size_t(k0) * BB;
      V av[JT], bv[KT];
      for (int jj = 0; jj < JT; ++jj) av[jj] = load<V>(a + size_t(jj) * BB);
      for (int kk = 0; kk < KT; ++kk) bv[kk] = load<V>(b + size_t(kk) * BB);
      for (int jj = 0; jj < JT; ++jj)
        for (int kk = 0; kk < KT; ++kk) acc[jj][kk] += av[jj] * bv[kk];
    }
  }
  for (int jj = 0; jj < JT; ++jj)
    for (int kk = 0; kk < KT; ++kk) dW[size_t(j0 + jj) * ldw + k0 + kk] = static_cast<T>(hsum(acc[jj][kk]));
}

#if defined(__AVX512F__)
constexpr int kJT = 4, kKT = 4;
#else
constexpr int kJT = 2, kKT = 4;
#endif

// Rows j0..j0+kJT-1 of dW (G4 x K): each row's tiles sum over (blocks, steps, lanes) in one order.
template <class T>
void outer_rows(const Chunks<T>& A, const Chunks<T>& Bm, int nblk, int L, int j0, int K, T* dW) {
  int k0 = 0;
  for (; k0 + kKT <= K; k0 += kKT) outer_tile<T, kJT, kKT>(A, Bm, nblk, L, j0, k0, dW, K);
  for (; k0 < K; ++k0) outer_tile<T, kJT, 1>(A, Bm, nblk, L, j0, k0, dW, K);
}

template <class T>
struct Weights {
  std::vector<T> WT, W, bias;  // per layer, concatenated: (K x 4h), (4h x K) (backward only), (4h)
  std::vector<size_t> off, boff;
  // `backward` false: W stays empty (forward_block reads WT and bias only).
  void prepare(const Layout& lay, const std::vector<const T*>& params, bool backward = true) {
    size_t wsize = 0, bsize = 0;
    off.clear();
    boff.clear();
    for (size_t l = 0; l < lay.h.size(); ++l) {
      off.push_back(wsize);
      boff.push_back(bsize);
      wsize += size_t(4) * lay.h[l] * (lay.n[l] + lay.h[l]);
      bsize += size_t(4) * lay.h[l];
    }
    WT.resize(wsize);
    W.resize(backward ? wsize : 0);
    bias.resize(bsize);
    for (size_t l = 0; l < lay.h.size(); ++l) {
      const int h = lay.h[l], n = lay.n[l], G4 = 4 * h, K = n + h;
      const T* p = params[l];
      const T* wih = p;
      const T* whh = p + size_t(G4) * n;
      const T* bih = whh + size_t(G4) * h;
      const T* bhh = bih + G4;
      T* wt = WT.data() + off[l];
      T* w = backward ? W.data() + off[l] : nullptr;
      for (int j = 0; j < G4; ++j) {
        for (int k = 0; k < K; ++k) {
          const T v = k < n ? wih[size_t(j) * n + k] : whh[size_t(j) * h + (k - n)];
          if (backward) w[size_t(j) * K + k] = v;
          wt[size_t(k) * G4 + j] = v;
        }
        bias[boff[l] + j] = bih[j] + bhh[j];
      }
    }
  }
};

template <class T>
void forward_block(const Layout& lay, const Weights<T>& wts, T* save, int blk) {
  typedef typename VecOf<T>::type V;
  const int L = lay.L;
  for (size_t l = 0; l < lay.h.size(); ++l) {
    const int h = lay.h[l], n = lay.n[l], G4 = 4 * h;
    const T* WT = wts.WT.data() + wts.off[l];
    const T* bias = wts.bias.data() + wts.boff[l];
    std::memset(save + lay.H(l, blk, 0), 0, sizeof(T) * h * BB);
    std::memset(save + lay.C(l, blk, 0), 0, sizeof(T) * h * BB);
    for (int t = 0; t < L; ++t) {
      const T* x = l == 0 ? save + lay.X(blk, t) : save + lay.H(l - 1, blk, t + 1);
      const T* hp = save + lay.H(l, blk, t);
      const T* cp = save + lay.C(l, blk, t);
      T* g = save + lay.G(l, blk, t);
      T* c = save + lay.C(l, blk, t + 1);
      T* hn = save + lay.H(l, blk, t + 1);
      int j0 = 0;
      for (; j0 + 8 <= G4; j0 += 8) gate_tile<T, 8>(WT, G4, bias, x, n, hp, h, g, j0);
      for (; j0 < G4; j0 += 4) gate_tile<T, 4>(WT, G4, bias, x, n, hp, h, g, j0);
      for (int u = 0; u < h; ++u) {
        T* gi = g + size_t(u) * BB;
        T* gf = g + size_t(h + u) * BB;
        T* gg = g + size_t(2 * h + u) * BB;
        T* go = g + size_t(3 * h + u) * BB;
        const V i = vsigmoid(load<V>(gi)), f = vsigmoid(load<V>(gf));
        const V gv = vtanh(load<V>(gg)), o = vsigmoid(load<V>(go));
        const V cv = f * load<V>(cp + size_t(u) * BB) + i * gv;
        store(gi, i);
        store(gf, f);
        store(gg, gv);
        store(go, o);
        store(c + size_t(u) * BB, cv);
        store(hn + size_t(u) * BB, o * vtanh(cv));
      }
    }
  }
}

// Block blk of the windows x (B, L, n0) into xb (L, n0, BB), feature-major; lanes past B are zeros.
template <class T>
void gather_block(const T* x, int B, int L, int n0, int blk, T* xb) {
  std::memset(xb, 0, sizeof(T) * size_t(L) * n0 * BB);
  for (int bb = 0; bb < BB && blk * BB + bb < B; ++bb) {
    const T* xs = x + size_t(blk * BB + bb) * L * n0;
    for (int t = 0; t < L; ++t)
      for (int k = 0; k < n0; ++k) xb[(size_t(t) * n0 + k) * BB + bb] = xs[size_t(t) * n0 + k];
  }
}

// The top layer's hidden state at steps t0..L-1 of the windows of block blk (of B windows), computed in
// block `at` of `save` as `lay` places it, into y (B, L - t0).
template <class T>
void scatter_outputs(const Layout& lay, const T* save, int at, int top, int blk, int B, int t0, T* y) {
  const int L = lay.L, ny = L - t0;
  for (int bb = 0; bb < BB && blk * BB + bb < B; ++bb)
    for (int t = t0; t < L; ++t) y[size_t(blk * BB + bb) * ny + t - t0] = save[lay.H(top, at, t + 1) + bb];
}

// Backward through layer l of one block. dy: gradient w.r.t. this layer's output at every
// step, (L, h, BB); dx (nullable): gradient w.r.t. its input, (L, n, BB). The activated
// gates in `save` are overwritten with the gradients of the gate pre-activations.
template <class T>
void backward_block(const Layout& lay, const Weights<T>& wts, T* save, int l, int blk, const T* dy, T* dx,
                    T* scratch) {
  typedef typename VecOf<T>::type V;
  const int L = lay.L, h = lay.h[l], n = lay.n[l], G4 = 4 * h, K = n + h;
  const T* W = wts.W.data() + wts.off[l];
  T* din = scratch;                       // (K, BB): [dx_t; dh_{t-1}]
  T* dc = scratch + size_t(K) * BB;       // (h, BB)
  std::memset(scratch, 0, sizeof(T) * (K + h) * BB);
  const T* dhrec = din + size_t(n) * BB;  // recurrent part of the previous (later) step
  for (int t = L - 1; t >= 0; --t) {
    T* g = save + lay.G(l, blk, t);
    const T* c = save + lay.C(l, blk, t + 1);
    const T* cp = save + lay.C(l, blk, t);
    const T* dyt = dy + (size_t(t) * h) * BB;
    for (int u = 0; u < h; ++u) {
      T* gi = g + size_t(u) * BB;
      T* gf = g + size_t(h + u) * BB;
      T* gg = g + size_t(2 * h + u) * BB;
      T* go = g + size_t(3 * h + u) * BB;
      const V i = load<V>(gi), f = load<V>(gf), gv = load<V>(gg), o = load<V>(go);
      const V dh = load<V>(dyt + size_t(u) * BB) + load<V>(dhrec + size_t(u) * BB);
      const V tc = vtanh(load<V>(c + size_t(u) * BB));
      const V dcv = load<V>(dc + size_t(u) * BB) + dh * o * (1.0f - tc * tc);
      store(dc + size_t(u) * BB, dcv * f);
      store(gi, dcv * gv * i * (1.0f - i));
      store(gf, dcv * load<V>(cp + size_t(u) * BB) * f * (1.0f - f));
      store(gg, dcv * i * (1.0f - gv * gv));
      store(go, dh * tc * o * (1.0f - o));
    }
    int k0 = 0;
    for (; k0 + 8 <= K; k0 += 8) input_grad_tile<T, 8>(W, G4, K, g, din, k0);
    for (; k0 + 4 <= K; k0 += 4) input_grad_tile<T, 4>(W, G4, K, g, din, k0);
    for (; k0 < K; ++k0) input_grad_tile<T, 1>(W, G4, K, g, din, k0);
    if (dx != nullptr) std::memcpy(dx + size_t(t) * n * BB, din, sizeof(T) * n * BB);
  }
}

class LstmStackOp : public CustomStatefulOp {
 public:
  LstmStackOp(std::vector<int> hidden, std::vector<float> weights, bool last_step)
      : hidden_(std::move(hidden)), weights_(std::move(weights)), last_step_(last_step) {}
  ~LstmStackOp() override { pool().release(&saved_); }

  MXReturnValue Forward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                        const OpResource& res) override {
    if ((*inputs)[0].dtype == kFloat64) return forward<double>(inputs, outputs);
    return forward<float>(inputs, outputs);
  }

  MXReturnValue Backward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                         const OpResource& res) override {
    if ((*inputs)[1].dtype == kFloat64) return backward<double>(inputs, outputs);
    return backward<float>(inputs, outputs);
  }

 private:
  Weights<float>& weights(float) { return wf_; }
  Weights<double>& weights(double) { return wd_; }

  template <class T>
  MXReturnValue forward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs) {
    MXTensor& data = (*inputs)[0];
    const int B = static_cast<int>(data.shape[0]), L = static_cast<int>(data.shape[1]);
    const int n0 = static_cast<int>(data.shape[2]);
    if (!weights_.empty() && weights_.size() != size_t(L)) {
      MX_ERROR_MSG << kOpName << ": step_weights holds " << weights_.size() << " weights for windows of length " << L;
      return MX_FAIL;
    }
    lay_.plan(hidden_, B, L, n0);
    if (saved_.bytes < lay_.total * sizeof(T)) {
      pool().release(&saved_);
      saved_ = pool().acquire(lay_.total * sizeof(T));
      if (saved_.ptr == nullptr) {
        MX_ERROR_MSG << kOpName << ": out of memory for " << lay_.total * sizeof(T) << " bytes of activations";
        return MX_FAIL;
      }
    }
    dtype_ = data.dtype;
    std::vector<const T*> params;
    for (size_t l = 0; l < hidden_.size(); ++l) params.push_back((*inputs)[1 + l].data<T>());
    Weights<T>& wts = weights(T());
    wts.prepare(lay_, params);
    T* save = static_cast<T*>(saved_.ptr);
    const T* x = data.data<T>();
    T* y = (*outputs)[0].data<T>();
    const int top = static_cast<int>(hidden_.size()) - 1;
    const Layout& lay = lay_;
    const int t0 = last_step_ ? L - 1 : 0;  // the output's steps t0..L-1
    auto block = [&](int blk, int) {
      gather_block<T>(x, B, L, n0, blk, save + lay.X(blk, 0));
      forward_block<T>(lay, wts, save, blk);
      scatter_outputs<T>(lay, save, blk, top, blk, B, t0, y);
    };
    parallel_for(lay_.nblk, worth_threads(lay_), block);
    if (!weights_.empty()) weigh_output<T>(y, B, L);
    return MX_SUCCESS;
  }

  // pred * (1 - w_t) + pred * w_t in place, each product rounded to T first (as MXNet's graph does)
  template <class T>
  void weigh_output(T* y, int B, int L) const {
    for (int t = 0; t < L; ++t) {
      const T w = static_cast<T>(weights_[t]);
      const T keep = static_cast<T>(1) - w;
      for (int b = 0; b < B; ++b) {
        volatile T kept = y[size_t(b) * L + t] * keep;  // volatile: each product rounded, no fused multiply-add
        volatile T weighed = y[size_t(b) * L + t] * w;
        y[size_t(b) * L + t] = kept + weighed;
      }
    }
  }

  // Backward in two parallel parts: every layer of each block (blocks are independent through the whole
  // stack: a block's output gradient for layer l - 1 is its own input gradient of layer l), then the weight
  // gradients of every layer by output rows (they read only the gate gradients and the inputs saved in
  // `save`, which nothing overwrites after the first part).
  template <class T>
  MXReturnValue backward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs) {
    MXTensor& data = (*inputs)[1];
    const int B = static_cast<int>(data.shape[0]), L = static_cast<int>(data.shape[1]);
    if (saved_.ptr == nullptr || lay_.B != B || lay_.L != L || dtype_ != data.dtype) {
      MX_ERROR_MSG << kOpName << ": backward without a matching forward (batch " << B << ", length " << L << ")";
      return MX_FAIL;
    }
    int maxw = 0, maxk = 0;
    for (size_t l = 0; l < hidden_.size(); ++l) {
      maxw = std::max(maxw, std::max(lay_.h[l], lay_.n[l]));
      maxk = std::max(maxk, lay_.n[l] + 2 * lay_.h[l]);
    }
    const bool threaded = worth_threads(lay_);
    const int nthreads = threaded ? workers().threads() : 1;
    HoldWorkers hold(threaded);
    // per thread: a block's output and input gradients of one layer, (L, maxw, BB) each, and its scratch
    const size_t dsize = size_t(L) * maxw * BB, tsize = 2 * dsize + size_t(maxk) * BB;
    Pool::Block work = pool().acquire(sizeof(T) * nthreads * tsize);
    if (work.ptr == nullptr) {
      MX_ERROR_MSG << kOpName << ": out of memory for the backward pass";
      return MX_FAIL;
    }
    T* threads_work = static_cast<T*>(work.ptr);
    const T* ograd = (*inputs)[0].data<T>();
    T* ddata = (*outputs)[0].data<T>();
    auto block = [&](int blk, int worker) {
      T* mine = threads_work + worker * tsize;
      backward_stack<T>(blk, ograd, ddata, mine, mine + dsize, mine + 2 * dsize);
    };
    parallel_for(lay_.nblk, threaded, block);
    weight_grads<T>(outputs, threaded);
    pool().release(&work);
    // the activations are consumed: hand the block to the next bucket's forward
    pool().release(&saved_);
    lay_.B = 0;
    return MX_SUCCESS;
  }

  // Backward of every layer, top first, for one block: its part of ddata (nullable), the gate gradients in
  // `save`. dy, dx: (L, maxw, BB) each; scratch: backward_block's.
  template <class T>
  void backward_stack(int blk, const T* ograd, T* ddata, T* dy, T* dx, T* scratch) {
    const Layout& lay = lay_;
    const int B = lay.B, L = lay.L;
    const int lanes = std::min(BB, B - blk * BB);
    // gradient w.r.t. the top layer's output (h = 1); with last_step only the last step's (the others zero)
    std::memset(dy, 0, sizeof(T) * size_t(L) * BB);
    const int t0 = last_step_ ? L - 1 : 0, ny = L - t0;
    for (int bb = 0; bb < lanes; ++bb)
      for (int t = t0; t < L; ++t) {
        const T g = ograd[size_t(blk * BB + bb) * ny + t - t0];
        dy[size_t(t) * BB + bb] = weights_.empty() ? g : g * static_cast<T>(weights_[t]);
      }
    for (int l = static_cast<int>(hidden_.size()) - 1; l >= 0; --l) {
      const bool want_dx = l > 0 || ddata != nullptr;
      backward_block<T>(lay, weights(T()), static_cast<T*>(saved_.ptr), l, blk, dy, want_dx ? dx : nullptr,
                        scratch);
      std::swap(dy, dx);
    }
    if (ddata == nullptr) return;
    const int n0 = lay.n0;  // dy holds layer 0's input gradient now
    for (int bb = 0; bb < lanes; ++bb)
      for (int t = 0; t < L; ++t)
        for (int k = 0; k < n0; ++k)
          ddata[(size_t(blk * BB + bb) * L + t) * n0 + k] = dy[(size_t(t) * n0 + k) * BB + bb];
  }

  // The parameter gradients of every layer (outputs[1 + l], nullable) from the gate gradients in `save`:
  // one item per kJT output rows of a layer, each row summed over blocks, steps and lanes in one order.
  template <class T>
  void weight_grads(std::vector<MXTensor>* outputs, bool threaded) {
    const Layout& lay = lay_;
    const T* save = static_cast<const T*>(saved_.ptr);
    std::vector<std::pair<int, int>> tiles;  // (layer, first row)
    for (int l = static_cast<int>(hidden_.size()) - 1; l >= 0; --l)
      if ((*outputs)[1 + l].data<T>() != nullptr)
        for (int j0 = 0; j0 < 4 * lay.h[l]; j0 += kJT) tiles.emplace_back(l, j0);  // 4h: a multiple of kJT
    const int L = lay.L, nblk = lay.nblk;
    auto rows = [&](int item, int) {
      const int l = tiles[item].first, j0 = tiles[item].second, h = lay.h[l], n = lay.n[l], G4 = 4 * h;
      const Chunks<T> dpre{save + lay.G(l, 0, 0), size_t(L) * G4 * BB, size_t(G4) * BB};
      const Chunks<T> xin = l == 0 ? Chunks<T>{save + lay.X(0, 0), size_t(L) * n * BB, size_t(n) * BB}
                                   : Chunks<T>{save + lay.H(l - 1, 0, 1), size_t(L + 1) * n * BB, size_t(n) * BB};
      const Chunks<T> hin{save + lay.H(l, 0, 0), size_t(L + 1) * h * BB, size_t(h) * BB};
      T* dwih = (*outputs)[1 + l].data<T>();
      T* dwhh = dwih + size_t(G4) * n;
      outer_rows<T>(dpre, xin, nblk, L, j0, n, dwih);
      outer_rows<T>(dpre, hin, nblk, L, j0, h, dwhh);
      bias_grad<T>(dpre, nblk, L, j0, j0 + kJT, dwhh + size_t(G4) * h);
    };
    parallel_for(static_cast<int>(tiles.size()), threaded, rows);
    for (size_t l = 0; l < hidden_.size(); ++l) {
      T* grad = (*outputs)[1 + l].data<T>();
      if (grad == nullptr) continue;
      const int h = lay.h[l], G4 = 4 * h;
      T* dbih = grad + size_t(G4) * (lay.n[l] + h);
      std::memcpy(dbih + G4, dbih, sizeof(T) * G4);  // the h2h bias has the i2h bias' gradient
    }
  }

  template <class T>
  static void bias_grad(const Chunks<T>& dpre, int nblk, int L, int j_begin, int j_end, T* db) {
    typedef typename VecOf<T>::type V;
    for (int j = j_begin; j < j_end; ++j) {
      V acc = V{};
      for (int blk = 0; blk < nblk; ++blk)
        for (int t = 0; t < L; ++t) acc += load<V>(dpre.at(blk, t) + size_t(j) * BB);
      db[j] = static_cast<T>(hsum(acc));
    }
  }

  std::vector<int> hidden_;
  std::vector<float> weights_;  // per-step gradient weights, empty for none
  bool last_step_;               // output (B, 1): the last step only
  Layout lay_;
  Pool::Block saved_;
  MXDType dtype_ = kFloat32;
  Weights<float> wf_;
  Weights<double> wd_;
};

MXReturnValue parseAttrs(const std::unordered_map<std::string, std::string>& attrs, int* num_in,
                         int* num_out) {
  std::vector<int> sizes;
  std::string err;
  if (!parse_hidden(attrs, &sizes, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  std::vector<float> weights;
  bool last_step = false;
  if (!parse_weights(attrs, &weights, &err) || !parse_last_step(attrs, &last_step, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  *num_in = 1 + static_cast<int>(sizes.size());
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue inferType(const std::unordered_map<std::string, std::string>& attrs, std::vector<int>* in_types,
                        std::vector<int>* out_types) {
  int dtype = -1;
  for (int t : *in_types)
    if (t != -1) {
      dtype = t;
      break;
    }
  if (dtype == -1) dtype = kFloat32;
  for (int t : *in_types) {
    if (t != -1 && t != dtype) {
      MX_ERROR_MSG << kOpName << ": data and parameters must have one dtype, got " << dtype << " and " << t;
      return MX_FAIL;
    }
  }
  if (dtype != kFloat32 && dtype != kFloat64) {
    MX_ERROR_MSG << kOpName << ": supports float32 and float64 only, got dtype code " << dtype;
    return MX_FAIL;
  }
  for (auto& t : *in_types) t = dtype;
  (*out_types)[0] = dtype;
  return MX_SUCCESS;
}

MXReturnValue inferShape(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<std::vector<unsigned int>>* in_shapes,
                         std::vector<std::vector<unsigned int>>* out_shapes) {
  std::vector<int> sizes;
  std::string err;
  if (!parse_hidden(attrs, &sizes, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  // MXNet marks an unknown size as -1 (seen here as 0xFFFFFFFF); an unknown shape reaches us empty.
  const auto& ds = (*in_shapes)[0];
  const auto known = [](unsigned d) { return d != 0 && d != 0xFFFFFFFFu; };
  if (ds.size() != 3 || !known(ds[0]) || !known(ds[1]) || !known(ds[2])) {
    std::stringstream got;
    for (size_t i = 0; i < ds.size(); ++i) got << (i ? "," : "") << (known(ds[i]) ? long(ds[i]) : -1L);
    MX_ERROR_MSG << kOpName << ": needs the full data shape (batch, length, features), got (" << got.str()
                 << ")";
    return MX_FAIL;
  }
  std::vector<float> weights;
  bool last_step = false;
  if (!parse_weights(attrs, &weights, &err) || !parse_last_step(attrs, &last_step, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  if (!weights.empty() && weights.size() != ds[1]) {
    MX_ERROR_MSG << kOpName << ": step_weights holds " << weights.size() << " weights for windows of length "
                 << ds[1];
    return MX_FAIL;
  }
  int n = static_cast<int>(ds[2]);
  for (size_t l = 0; l < sizes.size(); ++l) {
    const unsigned expected = static_cast<unsigned>(param_size(n, sizes[l]));
    auto& ps = (*in_shapes)[1 + l];
    if (!ps.empty() && !(ps.size() == 1 && ps[0] == expected)) {
      MX_ERROR_MSG << kOpName << ": parameters of layer " << l << " must have shape (" << expected << ",)";
      return MX_FAIL;
    }
    ps = {expected};
    n = sizes[l];
  }
  (*out_shapes)[0] = {ds[0], last_step ? 1u : ds[1]};
  return MX_SUCCESS;
}

MXReturnValue createOpState(const std::unordered_map<std::string, std::string>& attrs, const MXContext& ctx,
                            const std::vector<std::vector<unsigned int>>& in_shapes,
                            const std::vector<int> in_types, CustomStatefulOp** op_inst) {
  std::vector<int> sizes;
  std::string err;
  if (!parse_hidden(attrs, &sizes, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  std::vector<float> weights;
  bool last_step = false;
  if (!parse_weights(attrs, &weights, &err) || !parse_last_step(attrs, &last_step, &err)) {
    MX_ERROR_MSG << err;
    return MX_FAIL;
  }
  *op_inst = CustomStatefulOp::create<LstmStackOp>(sizes, weights, last_step);
  return MX_SUCCESS;
}

// ---- Direct inference: the forward pass on caller-owned float32 buffers, without MXNet ------------------
// For serving (sinlstm_sym.native.direct): a model made once from the operator's parameter vectors (transposed
// once, as the operator's forward does on every call), then forward calls that involve no MXNet engine. Each
// block of 16 windows runs in a one-block layout of its own (the activations of one block, reused by the
// thread's next block), so memory follows the number of threads, not of windows; the arithmetic of a block
// is the operator's (gather_block, forward_block, scatter_outputs), so the outputs are bit-identical to the
// operator's inference output (no step weights: an inference symbol never carries them).
// Concurrent calls on one model are safe: the weights are read-only after construction and each call takes
// its own scratch. Calls may also run while MXNet's engine runs the operator in another thread: the helper
// threads serve one caller at a time and a second caller runs its blocks alone (Workers::run), and the
// operator's own activation pool is not touched. Calls below the operator's threading threshold
// (worth_threads) never wake a helper.
constexpr size_t kKeepScratchBytes = size_t(16) << 20;  // scratch blocks larger than this are freed after a call

class DirectModel {
 public:
  DirectModel(std::vector<int> hidden, int n0, const std::vector<const float*>& params)
      : hidden_(std::move(hidden)), n0_(n0) {
    Layout sizes;
    sizes.plan(hidden_, 0, 1, n0_);  // the sizes h and n of every layer
    weights_.prepare(sizes, params, false);
  }

  // y: (B, L), or (B, 1) with last_step. False with *err when scratch memory cannot be had.
  bool forward(const float* x, int B, int L, bool last_step, float* y, std::string* err) {
    Layout one;
    one.plan(hidden_, BB, L, n0_);
    const int nblk = (B + BB - 1) / BB, top = static_cast<int>(hidden_.size()) - 1, t0 = last_step ? L - 1 : 0;
    const bool threaded = worth_threads(nblk, L);
    std::vector<Pool::Block> scratch(threaded ? workers().threads() : 1);
    bool ok = true;
    for (Pool::Block& b : scratch) {
      b = scratch_.acquire(one.total * sizeof(float));
      ok = ok && b.ptr != nullptr;
    }
    if (ok) {
      auto block = [&](int blk, int worker) {
        float* save = static_cast<float*>(scratch[worker].ptr);
        gather_block<float>(x, B, L, n0_, blk, save + one.X(0, 0));
        forward_block<float>(one, weights_, save, 0);
        scatter_outputs<float>(one, save, 0, top, blk, B, t0, y);
      };
      parallel_for(nblk, threaded, block);
    } else {
      *err = std::string(kOpName) + ": out of memory for " + std::to_string(one.total * sizeof(float)) +
             " bytes of activations per thread";
    }
    for (Pool::Block& b : scratch) {
      if (b.bytes > kKeepScratchBytes) {
        std::free(b.ptr);
      } else {
        scratch_.release(&b);
      }
    }
    return ok;
  }

 private:
  std::vector<int> hidden_;
  int n0_;
  Weights<float> weights_;  // WT and bias only
  Pool scratch_;
};

void set_error(const std::string& message, char* err, size_t err_len) {
  if (err == nullptr || err_len == 0) return;
  const size_t n = std::min(message.size(), err_len - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

}  // namespace

// The C interface of direct inference (no MXNet types; see DirectModel). Errors return a failure value and
// a NUL-terminated message in err (err_len bytes); nothing throws across it.
extern "C" {

// The version of this interface, checked by the caller before use.
int sinlstm_direct_version() { return 1; }

// A model for windows of n0 features through `layers` LSTM layers of hidden sizes hidden[0..layers-1] (the
// last one 1), params[l] the flat parameter vector of layer l in the operator's layout (copied: the caller
// keeps ownership). nullptr on failure.
void* sinlstm_direct_create(const float* const* params, const int* hidden, int layers, int n0, char* err,
                            size_t err_len) {
  try {
    if (params == nullptr || hidden == nullptr || layers < 1 || n0 < 1) {
      set_error(std::string(kOpName) + ": direct model needs parameters, at least one layer and n0 >= 1", err,
                err_len);
      return nullptr;
    }
    std::vector<int> sizes(hidden, hidden + layers);
    std::vector<const float*> vectors(params, params + layers);
    for (int l = 0; l < layers; ++l) {
      if (sizes[l] < 1 || sizes[l] > 100000 || vectors[l] == nullptr) {
        set_error(std::string(kOpName) + ": layer " + std::to_string(l) +
                  " needs a hidden size in 1..100000 and a parameter vector", err, err_len);
        return nullptr;
      }
    }
    if (sizes.back() != 1) {
      set_error(std::string(kOpName) + ": the last hidden size must be 1", err, err_len);
      return nullptr;
    }
    return new DirectModel(sizes, n0, vectors);
  } catch (const std::exception& e) {
    set_error(std::string(kOpName) + ": cannot make the direct model (" + e.what() + ")", err, err_len);
    return nullptr;
  }
}

// The outputs of B windows of L steps: data (B, L, n0) and out (B, L), or (B, 1) when last_step is not 0,
// float32 in C order. 0 on success, 1 on failure.
int sinlstm_direct_forward(void* model, const float* data, int64_t B, int64_t L, int last_step, float* out,
                           char* err, size_t err_len) {
  try {
    if (model == nullptr || data == nullptr || out == nullptr || B < 1 || L < 1 || B > INT32_MAX - BB ||
        L > INT32_MAX - 1) {
      set_error(std::string(kOpName) + ": direct forward needs a model, data and output buffers, and a batch and "
                "length from 1 to 2^31 - 17", err, err_len);
      return 1;
    }
    std::string message;
    if (static_cast<DirectModel*>(model)->forward(data, static_cast<int>(B), static_cast<int>(L), last_step != 0,
                                                  out, &message))
      return 0;
    set_error(message, err, err_len);
    return 1;
  } catch (const std::exception& e) {
    set_error(std::string(kOpName) + ": direct forward failed (" + e.what() + ")", err, err_len);
    return 1;
  }
}

// Frees a model of sinlstm_direct_create (nullptr: nothing).
void sinlstm_direct_free(void* model) { delete static_cast<DirectModel*>(model); }

}  // extern "C"

REGISTER_OP(sinlstm_stack)
    .setParseAttrs(parseAttrs)
    .setInferType(inferType)
    .setInferShape(inferShape)
    .setCreateOpState(createOpState, "cpu");

MXReturnValue initialize(int version) {
  if (version >= 10900) return MX_SUCCESS;
  MX_ERROR_MSG << kOpName << ": needs MXNet 1.9 or newer, loaded into version " << version;
  return MX_FAIL;
}
