/* The paper's local response normalisation (section 3.3) on a CPU, forward and backward, each
 * reading the tensors once and writing the result once: lit_alexnet/nn/lrn_cpu.py compiles
 * this file once per machine and calls it through ctypes, one range of work units per thread.
 *
 * A tensor is seen as (N, C, P) with P the collapsed spatial positions and strides
 * (sn, sc, sp): NCHW has sp == 1, channels-last sc == 1. A unit of work is a block of BLOCK
 * positions of one image, all its channels; what it computes between reading and writing
 * stays in small float buffers, in cache (bfloat16 is converted as it is read and written):
 *
 *   s = k + alpha * W(a^2),  d = s^-beta,  b = a * d
 *   grad_a = g * d - 2 alpha beta * a * W^T(g * b / s)
 *
 * W sums channels [c - before, c + after], W^T channels [c - after, c + before]. float32 and
 * bfloat16 are computed in float32. s is recomputed in backward from a (which autograd keeps
 * anyway), so forward writes only b.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef int64_t i64;
enum { BLOCK = 64 };

/* w[q] = the sum of x[q + j * cs] for j in [-lo, hi], q in [0, n): the window of a row of a
 * unit's padded buffer (cs, the step between channels: 1 channels-last, BLOCK NCHW), whose
 * zero padding clips the window at the first and last channel. The paper's n = 5 is one pass
 * of five loads; any other window adds line by line. */
static inline void window(float *restrict w, const float *restrict x, i64 n, i64 cs, int lo,
                          int hi) {
  const float *r = x - lo * cs;
  if (lo + hi == 4) {
    const float *r1 = r + cs, *r2 = r1 + cs, *r3 = r2 + cs, *r4 = r3 + cs;
    for (i64 q = 0; q < n; ++q) w[q] = (r[q] + r1[q]) + (r2[q] + r3[q]) + r4[q];
    return;
  }
  memcpy(w, r, n * sizeof *w);
  for (int j = 1; j <= lo + hi; ++j)
    for (i64 q = 0; q < n; ++q) w[q] += r[j * cs + q];
}

/* d = s^-beta and 1 / s for s = k + alpha * w: for the paper's beta = 0.75, q = s^-1/4 by two
 * square roots gives d = q^3 and 1 / s = q^4, with no pow and one division. */
static inline float inverse_power(float w, float alpha, float beta, float k, float *inverse) {
  float s = k + alpha * w;
  if (beta == 0.75f) {
    float q = 1.0f / sqrtf(sqrtf(s));
    *inverse = (q * q) * (q * q);
    return q * q * q;
  }
  *inverse = 1.0f / s;
  return powf(s, -beta);
}

enum { X, T, GD, W, BUFFERS };

static inline float f32_load(const float *p) { return *p; }
static inline void f32_store(float *p, float v) { *p = v; }

static inline float bf16_load(const uint16_t *p) {
  uint32_t u = (uint32_t)*p << 16;
  float v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* Round to nearest even, NaN kept quiet: c10::BFloat16's conversion. */
static inline void bf16_store(uint16_t *p, float v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  *p = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

/* A unit's buffers X (the squares) and T (g b / s) hold its `outer` rows of `inner` values
 * `rs` apart from `base` on, with zeros around them where a window reaches past the first or
 * last channel: NCHW rows are channels (rs = BLOCK, pad rows above and below), channels-last
 * rows are positions (rs = C + 2 pad, pad zeros either side of each). The zeros are never
 * written, so they are set once, when the buffers are allocated. */
typedef struct {
  i64 outer, inner, rs, base, cs;
} Layout;

static Layout layout_of(int last, i64 C, i64 len, int pad) {
  Layout l;
  l.outer = last ? len : C;
  l.inner = last ? C : len;
  l.rs = last ? C + 2 * pad : BLOCK;
  l.base = last ? pad : pad * BLOCK;
  l.cs = last ? 1 : BLOCK;
  return l;
}

/* One unit (of type TYPE, read and written in place, computed in float): a, g and res hold
 * its rows `so` apart. Forward: b = a d. Backward: g d - 2 alpha beta a W^T(g b / s), with g d
 * kept in buf[GD] and g b / s in buf[T] between the two windows. */
#define DEFINE_UNIT(NAME, TYPE, LOAD, STORE)                                                       \
  static void NAME(const TYPE *a, const TYPE *g, TYPE *res, i64 so, float *buf[BUFFERS],          \
                   Layout l, int before, int after, float alpha, float beta, float k) {            \
    float *restrict x = buf[X] + l.base, *restrict t = buf[T] + l.base;                            \
    float *restrict gd = buf[GD], *restrict w = buf[W];                                            \
    const float coeff = 2.0f * alpha * beta;                                                       \
    float inverse;                                                                                 \
    for (i64 o = 0; o < l.outer; ++o) {                                                            \
      const TYPE *ao = a + o * so;                                                                 \
      float *restrict xo = x + o * l.rs;                                                           \
      for (i64 q = 0; q < l.inner; ++q) {                                                          \
        float v = LOAD(ao + q);                                                                    \
        xo[q] = v * v;                                                                             \
      }                                                                                            \
    }                                                                                              \
    for (i64 o = 0; o < l.outer; ++o) {                                                            \
      window(w, x + o * l.rs, l.inner, l.cs, before, after);                                       \
      const TYPE *ao = a + o * so;                                                                 \
      if (g == 0) {                                                                                \
        TYPE *ro = res + o * so;                                                                   \
        for (i64 q = 0; q < l.inner; ++q)                                                          \
          STORE(ro + q, LOAD(ao + q) * inverse_power(w[q], alpha, beta, k, &inverse));             \
        continue;                                                                                  \
      }                                                                                            \
      const TYPE *go = g + o * so;                                                                 \
      float *restrict gdo = gd + o * l.inner, *restrict to = t + o * l.rs;                         \
      for (i64 q = 0; q < l.inner; ++q) {                                                          \
        gdo[q] = LOAD(go + q) * inverse_power(w[q], alpha, beta, k, &inverse);                     \
        to[q] = gdo[q] * LOAD(ao + q) * inverse; /* g b / s */                                     \
      }                                                                                            \
    }                                                                                              \
    if (g == 0) return;                                                                            \
    for (i64 o = 0; o < l.outer; ++o) {                                                            \
      window(w, t + o * l.rs, l.inner, l.cs, after, before);                                       \
      const TYPE *ao = a + o * so;                                                                 \
      const float *restrict gdo = gd + o * l.inner;                                                \
      TYPE *ro = res + o * so;                                                                     \
      for (i64 q = 0; q < l.inner; ++q) STORE(ro + q, gdo[q] - coeff * LOAD(ao + q) * w[q]);       \
    }                                                                                              \
  }

DEFINE_UNIT(unit_f32, float, f32_load, f32_store)
DEFINE_UNIT(unit_bf16, uint16_t, bf16_load, bf16_store)

#ifdef _OPENMP
#define OPENMP_THREAD(t, n) (t = omp_get_thread_num(), n = omp_get_num_threads())
#else
#define OPENMP_THREAD(t, n) (void)0
#endif

/* An NCHW unit reads C rows of BLOCK positions a whole channel plane apart: more streams than
 * the hardware prefetchers follow, so each unit asks for the next one's rows (into L2, where
 * they wait out the current unit's arithmetic); 20-25% off forward and backward out of cache
 * on a Zen 4 EPYC (benchmarks/lrn-bf16-attempts-cpu.md). */
static inline void prefetch_rows(const void *p, i64 rows, i64 step, i64 bytes) {
  const char *c = (const char *)p;
  for (i64 r = 0; r < rows; ++r)
    for (i64 b = 0; b < bytes; b += 64) __builtin_prefetch(c + r * step + b, 0, 1);
}

/* Units [u0, u1); g == NULL is forward (out = b), else backward (out = grad_a). Needs
 * sp == 1 (NCHW) or sc == 1 (channels-last); a, g and out share the strides. Returns 1
 * where memory ran out. */
#define ENTRY(NAME, TYPE, UNIT)                                                                    \
  int NAME(const TYPE *a, const TYPE *g, TYPE *out, i64 C, i64 P, i64 sn, i64 sc, i64 sp,          \
           int before, int after, double alpha, double beta, double k, i64 u0, i64 u1) {           \
    int last = sc == 1 && sp != 1;                                                                 \
    i64 blocks = (P + BLOCK - 1) / BLOCK;                                                          \
    int pad = before > after ? before : after;                                                     \
    i64 size = (C + 2 * pad) * BLOCK; /* either layout's padded rows */                            \
    float *memory = (float *)calloc((size_t)(BUFFERS * size), sizeof(float));                      \
    if (memory == 0) return 1;                                                                     \
    float *buf[BUFFERS];                                                                           \
    for (int b = 0; b < BUFFERS; ++b) buf[b] = memory + b * size;                                  \
    for (i64 u = u0; u < u1; ++u) {                                                                \
      i64 n = u / blocks, p0 = (u % blocks) * BLOCK;                                               \
      i64 len = P - p0 < BLOCK ? P - p0 : BLOCK;                                                   \
      i64 at = n * sn + p0 * sp;                                                                   \
      if (!last && u + 1 < u1) { /* NCHW: the next unit's rows, fetched while this one runs */    \
        i64 p1 = (u + 1) % blocks * BLOCK, next = (u + 1) / blocks * sn + p1;                      \
        i64 bytes = (P - p1 < BLOCK ? P - p1 : BLOCK) * (i64)sizeof(TYPE);                         \
        prefetch_rows(a + next, C, sc * (i64)sizeof(TYPE), bytes);                                 \
        if (g) prefetch_rows(g + next, C, sc * (i64)sizeof(TYPE), bytes);                          \
      }                                                                                            \
      UNIT(a + at, g ? g + at : 0, out + at, last ? sp : sc, buf, layout_of(last, C, len, pad),    \
           before, after, (float)alpha, (float)beta, (float)k);                                    \
    }                                                                                              \
    free(memory);                                                                                  \
    return 0;                                                                                      \
  }                                                                                                \
  /* All units, on `threads` threads: OpenMP's, which are torch's own where torch's libgomp        \
   * is loaded (the same soname), so no second pool spins against it. */                           \
  int NAME##_all(const TYPE *a, const TYPE *g, TYPE *out, i64 C, i64 P, i64 sn, i64 sc, i64 sp,    \
                 int before, int after, double alpha, double beta, double k, i64 units,            \
                 int threads) {                                                                    \
    int failed = 0;                                                                                \
    (void)threads;                                                                                 \
    _Pragma("omp parallel num_threads(threads) reduction(| : failed)") {                           \
      i64 t = 0, n = 1;                                                                            \
      OPENMP_THREAD(t, n);                                                                         \
      failed |= NAME(a, g, out, C, P, sn, sc, sp, before, after, alpha, beta, k,                   \
                     units * t / n, units * (t + 1) / n);                                          \
    }                                                                                              \
    return failed;                                                                                 \
  }


ENTRY(lrn_f32, float, unit_f32)
ENTRY(lrn_bf16, uint16_t, unit_bf16)
