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

/* w = the sums of the squares' window [c - lo, c + hi] (clipped at both ends) of channel c at
 * every position of a unit, for NCHW units: x holds C lines of len, one per channel. The
 * paper's n = 5 away from the ends is one pass of five loads; any other window adds line by
 * line. */
static void window_nchw(float *restrict w, const float *restrict x, i64 C, i64 len, i64 c,
                        int lo, int hi) {
  i64 first = c - lo < 0 ? 0 : c - lo, last = c + hi > C - 1 ? C - 1 : c + hi;
  const float *r = x + first * len;
  if (last - first == 4) {
    const float *r1 = r + len, *r2 = r1 + len, *r3 = r2 + len, *r4 = r3 + len;
    for (i64 p = 0; p < len; ++p) w[p] = (r[p] + r1[p]) + (r2[p] + r3[p]) + r4[p];
    return;
  }
  memcpy(w, r, len * sizeof *w);
  for (i64 j = first + 1; j <= last; ++j)
    for (i64 p = 0; p < len; ++p) w[p] += x[j * len + p];
}

/* The sum of x[j] over j in [c - lo, c + hi], clipped at both ends. */
static inline float clipped_sum(const float *x, i64 C, i64 c, int lo, int hi) {
  float sum = 0;
  for (i64 j = c - lo < 0 ? 0 : c - lo; j <= c + hi && j < C; ++j) sum += x[j];
  return sum;
}

/* The same for one position of a channels-last unit: x holds its C channels. */
static void window_last(float *restrict w, const float *restrict x, i64 C, int lo, int hi) {
  if (lo == 2 && hi == 2 && C >= 5) {
    for (i64 c = 2; c < C - 2; ++c) w[c] = (x[c - 2] + x[c - 1]) + (x[c] + x[c + 1]) + x[c + 2];
    for (i64 c = 0; c < C; c = c == 1 ? C - 2 : c + 1) w[c] = clipped_sum(x, C, c, lo, hi);
    return;
  }
  for (i64 c = 0; c < C; ++c) w[c] = clipped_sum(x, C, c, lo, hi);
}

/* w = the window sums of line o of a unit's buffer src, of either layout. */
static void window(float *restrict w, const float *restrict src, i64 C, i64 len, int last,
                   i64 o, int lo, int hi) {
  if (last)
    window_last(w, src + o * C, C, lo, hi);
  else
    window_nchw(w, src, C, len, o, lo, hi);
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

/* One unit of `outer` lines of `inner` values, the lines `so` apart in the tensors a, g and
 * res (of type TYPE, read and written in place, computed in float). Forward: b = a d. Backward:
 * g d - 2 alpha beta a W^T(g b / s), with g d kept in buf[GD] and g b / s in buf[T] between
 * the two window passes. */
#define DEFINE_UNIT(NAME, TYPE, LOAD, STORE)                                                       \
  static void NAME(const TYPE *a, const TYPE *g, TYPE *res, i64 so, float *buf[BUFFERS], i64 C,    \
                   i64 len, int last, int before, int after, float alpha, float beta,              \
                   float k) {                                                                      \
    float *restrict x = buf[X], *restrict t = buf[T], *restrict gd = buf[GD];                      \
    float *restrict w = buf[W];                                                                    \
    const i64 outer = last ? len : C, inner = last ? C : len;                                      \
    const float coeff = 2.0f * alpha * beta;                                                       \
    float inverse;                                                                                 \
    for (i64 o = 0; o < outer; ++o) {                                                              \
      const TYPE *ao = a + o * so;                                                                 \
      float *restrict xo = x + o * inner;                                                          \
      for (i64 q = 0; q < inner; ++q) {                                                            \
        float v = LOAD(ao + q);                                                                    \
        xo[q] = v * v;                                                                             \
      }                                                                                            \
    }                                                                                              \
    for (i64 o = 0; o < outer; ++o) {                                                              \
      window(w, x, C, len, last, o, before, after);                                                \
      const TYPE *ao = a + o * so;                                                                 \
      if (g == 0) {                                                                                \
        TYPE *ro = res + o * so;                                                                   \
        for (i64 q = 0; q < inner; ++q)                                                            \
          STORE(ro + q, LOAD(ao + q) * inverse_power(w[q], alpha, beta, k, &inverse));             \
        continue;                                                                                  \
      }                                                                                            \
      const TYPE *go = g + o * so;                                                                 \
      float *restrict gdo = gd + o * inner, *restrict to = t + o * inner;                          \
      for (i64 q = 0; q < inner; ++q) {                                                            \
        gdo[q] = LOAD(go + q) * inverse_power(w[q], alpha, beta, k, &inverse);                     \
        to[q] = gdo[q] * LOAD(ao + q) * inverse; /* g b / s */                                     \
      }                                                                                            \
    }                                                                                              \
    if (g == 0) return;                                                                            \
    for (i64 o = 0; o < outer; ++o) {                                                              \
      window(w, t, C, len, last, o, after, before);                                                \
      const TYPE *ao = a + o * so;                                                                 \
      const float *restrict gdo = gd + o * inner;                                                  \
      TYPE *ro = res + o * so;                                                                     \
      for (i64 q = 0; q < inner; ++q) STORE(ro + q, gdo[q] - coeff * LOAD(ao + q) * w[q]);         \
    }                                                                                              \
  }

DEFINE_UNIT(unit_f32, float, f32_load, f32_store)
DEFINE_UNIT(unit_bf16, uint16_t, bf16_load, bf16_store)

#ifdef _OPENMP
#define OPENMP_THREAD(t, n) (t = omp_get_thread_num(), n = omp_get_num_threads())
#else
#define OPENMP_THREAD(t, n) (void)0
#endif

/* Units [u0, u1); g == NULL is forward (out = b), else backward (out = grad_a). Needs
 * sp == 1 (NCHW) or sc == 1 (channels-last); a, g and out share the strides. Returns 1
 * where memory ran out. */
#define ENTRY(NAME, TYPE, UNIT)                                                                    \
  int NAME(const TYPE *a, const TYPE *g, TYPE *out, i64 C, i64 P, i64 sn, i64 sc, i64 sp,          \
           int before, int after, double alpha, double beta, double k, i64 u0, i64 u1) {           \
    int last = sc == 1 && sp != 1;                                                                 \
    i64 blocks = (P + BLOCK - 1) / BLOCK;                                                          \
    float *memory = (float *)malloc(sizeof(float) * BUFFERS * (size_t)(C * BLOCK));                \
    if (memory == 0) return 1;                                                                     \
    float *buf[BUFFERS];                                                                           \
    for (int b = 0; b < BUFFERS; ++b) buf[b] = memory + b * C * BLOCK;                             \
    for (i64 u = u0; u < u1; ++u) {                                                                \
      i64 n = u / blocks, p0 = (u % blocks) * BLOCK;                                               \
      i64 len = P - p0 < BLOCK ? P - p0 : BLOCK;                                                   \
      i64 at = n * sn + p0 * sp;                                                                   \
      UNIT(a + at, g ? g + at : 0, out + at, last ? sp : sc, buf, C, len, last, before,            \
           after, (float)alpha, (float)beta, (float)k);                                            \
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
