#include "internal.h"

// Packed-weight float GEMMs of the encoder's projections (see the header for the layouts and the numeric
// contract). Both keep the weights packed once, at load, into panels of 64 output channels, so no product
// repacks them, and both apply the bias and the residual in registers before the single store:
// - float32: per depth step, four 16-channel weight vectors against one broadcast activation (`vfmadd231ps`);
//   tiles of up to 6 rows × 64 channels (24 accumulators); the same fused multiply-add chain as the scalar
//   variant, so the two give the same bits;
// - bfloat16: weights and activations rounded to bfloat16, per depth pair four 16-channel vectors of weight
//   pairs against one broadcast activation pair (`vdpbf16ps`, float32 accumulation); the same tiles.

#define TSR_F_PANEL 64
#define TSR_F_ROWS 6
/// Rows of a chunk kept in cache while every panel passes over them.
#define TSR_F_CHUNK 48
#define TSR_F_INLINE static inline __attribute__((always_inline))

static int32_t tsr_f_panel_count(int32_t n) { return (n + TSR_F_PANEL - 1) / TSR_F_PANEL; }

int64_t tsr_f32_packed_count(int32_t n, int32_t k) { return (int64_t)tsr_f_panel_count(n) * TSR_F_PANEL * k; }

void tsr_f32_pack_weights(const float *weights, int32_t n, int32_t k, float *packed) {
    memset(packed, 0, sizeof(float) * (size_t)tsr_f32_packed_count(n, k));
    for (int32_t o = 0; o < n; o++) {
        const float *row = weights + (int64_t)o * k;
        float *panel = packed + (int64_t)(o / TSR_F_PANEL) * k * TSR_F_PANEL + o % TSR_F_PANEL;
        for (int32_t d = 0; d < k; d++) panel[(int64_t)d * TSR_F_PANEL] = row[d];
    }
}

int32_t tsr_bf16_padded_depth(int32_t k) { return (k + 1) & ~1; }

int64_t tsr_bf16_packed_count(int32_t n, int32_t k) {
    return (int64_t)tsr_f_panel_count(n) * TSR_F_PANEL * tsr_bf16_padded_depth(k);
}

uint16_t tsr_bf16_round(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu)) return (uint16_t)((bits >> 16) | 0x0040u);
    // Subnormals become signed zero, as vcvtneps2bf16 makes them.
    if ((bits & 0x7F800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

float tsr_bf16_widen(uint16_t value) { return tsr_bf16_to_float(value); }

void tsr_bf16_pack_weights(const float *weights, int32_t n, int32_t k, uint16_t *packed) {
    const int32_t depth = tsr_bf16_padded_depth(k);
    memset(packed, 0, sizeof(uint16_t) * (size_t)tsr_bf16_packed_count(n, k));
    for (int32_t o = 0; o < n; o++) {
        const float *row = weights + (int64_t)o * k;
        uint16_t *panel = packed + (int64_t)(o / TSR_F_PANEL) * depth * TSR_F_PANEL + (o % TSR_F_PANEL) * 2;
        for (int32_t d = 0; d < k; d++) panel[(int64_t)(d / 2) * 2 * TSR_F_PANEL + d % 2] = tsr_bf16_round(row[d]);
    }
}

int tsr_bf16_supported(void) {
    static int supported = -1;
    int cached = __atomic_load_n(&supported, __ATOMIC_RELAXED);
    if (cached >= 0) return cached;
    int found = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    found = tsr_isa_supported(TSR_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#endif
    __atomic_store_n(&supported, found, __ATOMIC_RELAXED);
    return found;
}

// MARK: Scalar

static void tsr_f32_linear_scalar(int32_t m, int32_t n, int32_t k, const float *a, int32_t lda, const float *packed,
                                  const float *bias, const float *residual, float *out, int32_t ldo) {
    for (int32_t i = 0; i < m; i++) {
        const float *row = a + (int64_t)i * lda;
        for (int32_t o = 0; o < n; o++) {
            const float *w = packed + (int64_t)(o / TSR_F_PANEL) * k * TSR_F_PANEL + o % TSR_F_PANEL;
            float sum = 0;
            for (int32_t d = 0; d < k; d++) sum = fmaf(row[d], w[(int64_t)d * TSR_F_PANEL], sum);
            float value = sum + bias[o];
            if (residual) value = value + residual[(int64_t)i * ldo + o];
            out[(int64_t)i * ldo + o] = value;
        }
    }
}

static void tsr_bf16_convert_rows_scalar(const float *x, int32_t m, int32_t k, int32_t ldx, uint16_t *a,
                                         int32_t lda) {
    for (int32_t i = 0; i < m; i++) {
        const float *row = x + (int64_t)i * ldx;
        uint16_t *target = a + (int64_t)i * lda;
        for (int32_t d = 0; d < k; d++) target[d] = tsr_bf16_round(row[d]);
        for (int32_t d = k; d < lda; d++) target[d] = 0;
    }
}

static void tsr_bf16_linear_scalar(int32_t m, int32_t n, int32_t k, const uint16_t *a, int32_t lda,
                                   const uint16_t *packed, const float *bias, const float *residual, float *out,
                                   int32_t ldo) {
    const int32_t depth = tsr_bf16_padded_depth(k);
    for (int32_t i = 0; i < m; i++) {
        const uint16_t *row = a + (int64_t)i * lda;
        for (int32_t o = 0; o < n; o++) {
            const uint16_t *w = packed + (int64_t)(o / TSR_F_PANEL) * depth * TSR_F_PANEL + (o % TSR_F_PANEL) * 2;
            float sum = 0;
            for (int32_t p = 0; p < depth / 2; p++) {
                const uint16_t *pair = w + (int64_t)p * 2 * TSR_F_PANEL;
                // A bfloat16 product is exact in float32, so each step rounds once, as vdpbf16ps does (odd
                // element first).
                sum = fmaf(tsr_bf16_to_float(row[2 * p + 1]), tsr_bf16_to_float(pair[1]), sum);
                sum = fmaf(tsr_bf16_to_float(row[2 * p]), tsr_bf16_to_float(pair[0]), sum);
            }
            float value = sum + bias[o];
            if (residual) value = value + residual[(int64_t)i * ldo + o];
            out[(int64_t)i * ldo + o] = value;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TSR_F_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define TSR_F_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

TSR_F_INLINE TSR_F_AVX512 __mmask16 tsr_f_mask(int32_t valid) {
    if (valid >= 16) return (__mmask16)0xFFFF;
    if (valid <= 0) return 0;
    return (__mmask16)((1u << valid) - 1u);
}

/// `out = acc + bias (+ residual)` for `rows` rows of one panel's four accumulators.
#define TSR_F_EPILOGUE()                                                                                               \
    for (int j = 0; j < 4; j++) {                                                                                      \
        const __mmask16 mask = tsr_f_mask(width - 16 * j);                                                             \
        if (!mask) break;                                                                                              \
        const int32_t o = first + 16 * j;                                                                              \
        const __m512 shift = _mm512_maskz_loadu_ps(mask, bias + o);                                                    \
        for (int r = 0; r < rows; r++) {                                                                               \
            __m512 value = _mm512_add_ps(acc[r][j], shift);                                                            \
            if (residual)                                                                                              \
                value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, residual + (int64_t)r * ldo + o));            \
            _mm512_mask_storeu_ps(out + (int64_t)r * ldo + o, mask, value);                                            \
        }                                                                                                              \
    }

TSR_F_INLINE TSR_F_AVX512 void tsr_f32_512_tile(const int rows, const float *a, int32_t lda, const float *panel,
                                                int32_t k, int32_t first, int32_t width, const float *bias,
                                                const float *residual, float *out, int32_t ldo) {
    __m512 acc[TSR_F_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
    const float *w = panel;
    for (int32_t d = 0; d < k; d++) {
        const __m512 w0 = _mm512_loadu_ps(w);
        const __m512 w1 = _mm512_loadu_ps(w + 16);
        const __m512 w2 = _mm512_loadu_ps(w + 32);
        const __m512 w3 = _mm512_loadu_ps(w + 48);
        w += TSR_F_PANEL;
        for (int r = 0; r < rows; r++) {
            const __m512 x = _mm512_set1_ps(a[(int64_t)r * lda + d]);
            acc[r][0] = _mm512_fmadd_ps(x, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(x, w2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(x, w3, acc[r][3]);
        }
    }
    TSR_F_EPILOGUE()
}

static TSR_F_AVX512 void tsr_f32_512_run(int32_t m, int32_t n, int32_t k, const float *a, int32_t lda,
                                         const float *packed, const float *bias, const float *residual, float *out,
                                         int32_t ldo) {
    const int32_t panels = tsr_f_panel_count(n);
    for (int32_t chunk = 0; chunk < m; chunk += TSR_F_CHUNK) {
        const int32_t chunk_end = chunk + TSR_F_CHUNK < m ? chunk + TSR_F_CHUNK : m;
        for (int32_t p = 0; p < panels; p++) {
            const float *panel = packed + (int64_t)p * k * TSR_F_PANEL;
            const int32_t first = p * TSR_F_PANEL;
            const int32_t width = n - first < TSR_F_PANEL ? n - first : TSR_F_PANEL;
            for (int32_t i = chunk; i < chunk_end; i += TSR_F_ROWS) {
                const int32_t rows = chunk_end - i < TSR_F_ROWS ? chunk_end - i : TSR_F_ROWS;
                const float *x = a + (int64_t)i * lda;
                const float *r = residual ? residual + (int64_t)i * ldo : NULL;
                float *y = out + (int64_t)i * ldo;
                switch (rows) {
                case 6: tsr_f32_512_tile(6, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                case 5: tsr_f32_512_tile(5, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                case 4: tsr_f32_512_tile(4, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                case 3: tsr_f32_512_tile(3, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                case 2: tsr_f32_512_tile(2, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                default: tsr_f32_512_tile(1, x, lda, panel, k, first, width, bias, r, y, ldo); break;
                }
            }
        }
    }
}

TSR_F_INLINE TSR_F_BF16 void tsr_bf16_512_tile(const int rows, const uint16_t *a, int32_t lda,
                                               const uint16_t *panel, int32_t pairs, int32_t first, int32_t width,
                                               const float *bias, const float *residual, float *out, int32_t ldo) {
    __m512 acc[TSR_F_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
    const uint16_t *w = panel;
    for (int32_t p = 0; p < pairs; p++) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512((const void *)w);
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512((const void *)(w + 32));
        const __m512bh w2 = (__m512bh)_mm512_loadu_si512((const void *)(w + 64));
        const __m512bh w3 = (__m512bh)_mm512_loadu_si512((const void *)(w + 96));
        w += 2 * TSR_F_PANEL;
        for (int r = 0; r < rows; r++) {
            int32_t bits;
            memcpy(&bits, a + (int64_t)r * lda + 2 * p, 4);
            const __m512bh x = (__m512bh)_mm512_set1_epi32(bits);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, w1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], x, w2);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], x, w3);
        }
    }
    TSR_F_EPILOGUE()
}

static TSR_F_BF16 void tsr_bf16_512_run(int32_t m, int32_t n, int32_t k, const uint16_t *a, int32_t lda,
                                        const uint16_t *packed, const float *bias, const float *residual, float *out,
                                        int32_t ldo) {
    const int32_t depth = tsr_bf16_padded_depth(k);
    const int32_t pairs = depth / 2;
    const int32_t panels = tsr_f_panel_count(n);
    for (int32_t chunk = 0; chunk < m; chunk += TSR_F_CHUNK) {
        const int32_t chunk_end = chunk + TSR_F_CHUNK < m ? chunk + TSR_F_CHUNK : m;
        for (int32_t p = 0; p < panels; p++) {
            const uint16_t *panel = packed + (int64_t)p * depth * TSR_F_PANEL;
            const int32_t first = p * TSR_F_PANEL;
            const int32_t width = n - first < TSR_F_PANEL ? n - first : TSR_F_PANEL;
            for (int32_t i = chunk; i < chunk_end; i += TSR_F_ROWS) {
                const int32_t rows = chunk_end - i < TSR_F_ROWS ? chunk_end - i : TSR_F_ROWS;
                const uint16_t *x = a + (int64_t)i * lda;
                const float *r = residual ? residual + (int64_t)i * ldo : NULL;
                float *y = out + (int64_t)i * ldo;
                switch (rows) {
                case 6: tsr_bf16_512_tile(6, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                case 5: tsr_bf16_512_tile(5, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                case 4: tsr_bf16_512_tile(4, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                case 3: tsr_bf16_512_tile(3, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                case 2: tsr_bf16_512_tile(2, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                default: tsr_bf16_512_tile(1, x, lda, panel, pairs, first, width, bias, r, y, ldo); break;
                }
            }
        }
    }
}

static TSR_F_BF16 void tsr_bf16_convert_rows_512(const float *x, int32_t m, int32_t k, int32_t ldx, uint16_t *a,
                                                 int32_t lda) {
    const int32_t vector_end = k - k % 16;
    for (int32_t i = 0; i < m; i++) {
        const float *row = x + (int64_t)i * ldx;
        uint16_t *target = a + (int64_t)i * lda;
        for (int32_t d = 0; d < vector_end; d += 16) {
            const __m256bh converted = _mm512_cvtneps_pbh(_mm512_loadu_ps(row + d));
            _mm256_storeu_si256((__m256i *)(void *)(target + d), (__m256i)converted);
        }
        for (int32_t d = vector_end; d < k; d++) target[d] = tsr_bf16_round(row[d]);
        for (int32_t d = k; d < lda; d++) target[d] = 0;
    }
}

#endif

// MARK: Entry points

void tsr_f32_linear(int isa, int32_t m, int32_t n, int32_t k, const float *a, int32_t lda, const float *packed,
                    const float *bias, const float *residual, float *out, int32_t ldo) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_f32_512_run(m, n, k, a, lda, packed, bias, residual, out, ldo);
        return;
    }
#endif
    (void)isa;
    tsr_f32_linear_scalar(m, n, k, a, lda, packed, bias, residual, out, ldo);
}

void tsr_bf16_convert_rows(int isa, const float *x, int32_t m, int32_t k, int32_t ldx, uint16_t *a, int32_t lda) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512 && tsr_bf16_supported()) {
        tsr_bf16_convert_rows_512(x, m, k, ldx, a, lda);
        return;
    }
#endif
    (void)isa;
    tsr_bf16_convert_rows_scalar(x, m, k, ldx, a, lda);
}

void tsr_bf16_linear(int isa, int32_t m, int32_t n, int32_t k, const uint16_t *a, int32_t lda, const uint16_t *packed,
                     const float *bias, const float *residual, float *out, int32_t ldo) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512 && tsr_bf16_supported()) {
        tsr_bf16_512_run(m, n, k, a, lda, packed, bias, residual, out, ldo);
        return;
    }
#endif
    (void)isa;
    tsr_bf16_linear_scalar(m, n, k, a, lda, packed, bias, residual, out, ldo);
}
