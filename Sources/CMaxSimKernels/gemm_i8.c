#include "internal.h"

// Integer GEMM of the int8 encoder (see the header for the layout and the numeric contract). Three variants:
// - scalar: the reference, reading the same packed panels;
// - AVX2: per depth quad, sixteen weights of four channels widened to 16 bits, `vpmaddwd` against the row's four
//   activations (two pair sums per channel, added once at the end); tiles of 2 rows × 16 channels;
// - AVX-512 VNNI: `vpdpbusd`, four activations (one 32-bit broadcast) against 16 channels' four weights per
//   instruction; tiles of up to 6 rows × 64 channels (24 accumulators), with the dequantising epilogue applied
//   in registers for `tsr_i8_linear`.

#define TSR_I8_PANEL 64
#define TSR_I8_QUAD_BYTES (TSR_I8_PANEL * 4)
#define TSR_INLINE static inline __attribute__((always_inline))

int32_t tsr_i8_padded_depth(int32_t k) { return (k + 3) & ~3; }

static int32_t tsr_i8_panel_count(int32_t n) { return (n + TSR_I8_PANEL - 1) / TSR_I8_PANEL; }

int64_t tsr_i8_packed_size(int32_t n, int32_t k) {
    return (int64_t)tsr_i8_panel_count(n) * TSR_I8_PANEL * (int64_t)tsr_i8_padded_depth(k);
}

void tsr_i8_pack_weights(const int8_t *weights, int32_t n, int32_t k, int8_t *packed, int32_t *compensation) {
    const int32_t quads = tsr_i8_padded_depth(k) / 4;
    memset(packed, 0, (size_t)tsr_i8_packed_size(n, k));
    for (int32_t o = 0; o < n; o++) {
        const int8_t *row = weights + (int64_t)o * k;
        int8_t *panel = packed + (int64_t)(o / TSR_I8_PANEL) * quads * TSR_I8_QUAD_BYTES + (o % TSR_I8_PANEL) * 4;
        int32_t sum = 0;
        for (int32_t d = 0; d < k; d++) {
            panel[(int64_t)(d / 4) * TSR_I8_QUAD_BYTES + d % 4] = row[d];
            sum += row[d];
        }
        compensation[o] = 128 * sum;
    }
}

// MARK: Quantisation

/// One row's scale and its inverse multiplier; both computed the same way by every variant.
static void tsr_i8_row_scale(float maximum, float *scale, float *multiplier) {
    if (maximum > 0) {
        *scale = maximum / 127.0f;
        *multiplier = 127.0f / maximum;
    } else {
        *scale = 0;
        *multiplier = 0;
    }
}

static uint8_t tsr_i8_quantize_one(float value, float multiplier) {
    float scaled = rintf(value * multiplier);
    if (scaled > 127.0f) scaled = 127.0f;
    if (scaled < -127.0f) scaled = -127.0f;
    return (uint8_t)((int32_t)scaled + 128);
}

static void tsr_i8_quantize_rows_scalar(const float *x, int32_t m, int32_t k, int32_t ldx, uint8_t *a, int32_t lda,
                                        float *scales) {
    for (int32_t i = 0; i < m; i++) {
        const float *row = x + (int64_t)i * ldx;
        uint8_t *out = a + (int64_t)i * lda;
        float maximum = 0;
        for (int32_t d = 0; d < k; d++) {
            const float magnitude = fabsf(row[d]);
            if (magnitude > maximum) maximum = magnitude;
        }
        float multiplier;
        tsr_i8_row_scale(maximum, &scales[i], &multiplier);
        for (int32_t d = 0; d < k; d++) out[d] = tsr_i8_quantize_one(row[d], multiplier);
        for (int32_t d = k; d < lda; d++) out[d] = 128;
    }
}

// MARK: Scalar

static void tsr_i8_gemm_scalar(int32_t m, int32_t n, int32_t k, const uint8_t *a, int32_t lda, const int8_t *packed,
                               int32_t *c, int32_t ldc) {
    const int32_t quads = tsr_i8_padded_depth(k) / 4;
    for (int32_t i = 0; i < m; i++) {
        const uint8_t *row = a + (int64_t)i * lda;
        for (int32_t o = 0; o < n; o++) {
            const int8_t *w = packed + (int64_t)(o / TSR_I8_PANEL) * quads * TSR_I8_QUAD_BYTES + (o % TSR_I8_PANEL) * 4;
            int32_t sum = 0;
            for (int32_t q = 0; q < quads; q++) {
                const int8_t *quad = w + (int64_t)q * TSR_I8_QUAD_BYTES;
                const uint8_t *values = row + 4 * q;
                sum += (int32_t)values[0] * quad[0] + (int32_t)values[1] * quad[1] + (int32_t)values[2] * quad[2] +
                       (int32_t)values[3] * quad[3];
            }
            c[(int64_t)i * ldc + o] = sum;
        }
    }
}

/// The dequantising epilogue over an int32 tile `tile[rows][64]` (stride 64) for channels `first ..< first +
/// width`: the same operations, in the same order, as the AVX-512 in-register epilogue.
static void tsr_i8_epilogue(const int32_t *tile, int32_t rows, int32_t first, int32_t width, const float *row_scales,
                            const int32_t *compensation, const float *channel_scales, const float *bias,
                            const float *residual, float *out, int32_t ldo) {
    for (int32_t r = 0; r < rows; r++) {
        for (int32_t j = 0; j < width; j++) {
            const int32_t o = first + j;
            const float scale = row_scales[r] * channel_scales[o];
            float value = (float)(tile[r * TSR_I8_PANEL + j] - compensation[o]);
            value = value * scale;
            value = value + bias[o];
            if (residual) value = value + residual[(int64_t)r * ldo + o];
            out[(int64_t)r * ldo + o] = value;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TSR_I8_AVX2 __attribute__((target("avx2,fma")))
#define TSR_I8_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

// MARK: AVX2

/// Sums the pair sums of two accumulators of four channels each (lanes c0a c0b c1a c1b | c2a c2b c3a c3b) into
/// eight channels in order.
TSR_INLINE TSR_I8_AVX2 __m256i tsr_i8_avx2_fold(__m256i low, __m256i high) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(low, high), 0xD8);
}

/// Rows `rows` (1 or 2) × the 16 channels at byte offset `16 · 4 · block` of each quad of `panel`.
TSR_INLINE TSR_I8_AVX2 void tsr_i8_avx2_tile(const int rows, const uint8_t *a0, const uint8_t *a1,
                                             const int8_t *panel, int32_t quads, int32_t block, int32_t *out0,
                                             int32_t *out1) {
    __m256i acc[2][4];
    for (int r = 0; r < 2; r++)
        for (int g = 0; g < 4; g++) acc[r][g] = _mm256_setzero_si256();
    const int8_t *w = panel + block * 64;
    for (int32_t q = 0; q < quads; q++) {
        const int8_t *quad = w + (int64_t)q * TSR_I8_QUAD_BYTES;
        __m256i weights[4];
        for (int g = 0; g < 4; g++)
            weights[g] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(quad + 16 * g)));
        int32_t bytes0, bytes1 = 0;
        memcpy(&bytes0, a0 + 4 * q, 4);
        if (rows > 1) memcpy(&bytes1, a1 + 4 * q, 4);
        const __m256i x0 = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(bytes0)));
        for (int g = 0; g < 4; g++) acc[0][g] = _mm256_add_epi32(acc[0][g], _mm256_madd_epi16(x0, weights[g]));
        if (rows > 1) {
            const __m256i x1 = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(bytes1)));
            for (int g = 0; g < 4; g++) acc[1][g] = _mm256_add_epi32(acc[1][g], _mm256_madd_epi16(x1, weights[g]));
        }
    }
    _mm256_storeu_si256((__m256i *)(void *)out0, tsr_i8_avx2_fold(acc[0][0], acc[0][1]));
    _mm256_storeu_si256((__m256i *)(void *)(out0 + 8), tsr_i8_avx2_fold(acc[0][2], acc[0][3]));
    if (rows > 1) {
        _mm256_storeu_si256((__m256i *)(void *)out1, tsr_i8_avx2_fold(acc[1][0], acc[1][1]));
        _mm256_storeu_si256((__m256i *)(void *)(out1 + 8), tsr_i8_avx2_fold(acc[1][2], acc[1][3]));
    }
}

/// One panel's int32 results for rows `first ..< first + rows` (rows ≤ 16) into `tile[rows][64]`.
static TSR_I8_AVX2 void tsr_i8_avx2_panel(const uint8_t *a, int32_t lda, int32_t rows, const int8_t *panel,
                                          int32_t quads, int32_t width, int32_t *tile) {
    const int32_t blocks = (width + 15) / 16;
    for (int32_t r = 0; r < rows; r += 2) {
        const uint8_t *a0 = a + (int64_t)r * lda;
        for (int32_t block = 0; block < blocks; block++) {
            int32_t *out0 = tile + r * TSR_I8_PANEL + 16 * block;
            if (r + 1 < rows) {
                tsr_i8_avx2_tile(2, a0, a0 + lda, panel, quads, block, out0, out0 + TSR_I8_PANEL);
            } else {
                tsr_i8_avx2_tile(1, a0, a0, panel, quads, block, out0, out0);
            }
        }
    }
}

// MARK: AVX-512 VNNI

#define TSR_I8_512_ROWS 6

TSR_INLINE TSR_I8_AVX512 __mmask16 tsr_i8_512_mask(int32_t valid) {
    if (valid >= 16) return (__mmask16)0xFFFF;
    if (valid <= 0) return 0;
    return (__mmask16)((1u << valid) - 1u);
}

/// Rows `rows` (≤ 6) from `a` × one 64-channel panel; `width` valid channels starting at `first`. `mode` 0 stores
/// int32 sums to `c`, 1 applies the linear epilogue into `out`.
TSR_INLINE TSR_I8_AVX512 void tsr_i8_512_tile(const int rows, const int mode, const uint8_t *a, int32_t lda,
                                              const int8_t *panel, int32_t quads, int32_t first, int32_t width,
                                              int32_t *c, int32_t ldc, const float *row_scales,
                                              const int32_t *compensation, const float *channel_scales,
                                              const float *bias, const float *residual, float *out, int32_t ldo) {
    __m512i acc[TSR_I8_512_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_si512();
    const int8_t *w = panel;
    for (int32_t q = 0; q < quads; q++) {
        const __m512i w0 = _mm512_loadu_si512((const void *)w);
        const __m512i w1 = _mm512_loadu_si512((const void *)(w + 64));
        const __m512i w2 = _mm512_loadu_si512((const void *)(w + 128));
        const __m512i w3 = _mm512_loadu_si512((const void *)(w + 192));
        w += TSR_I8_QUAD_BYTES;
        for (int r = 0; r < rows; r++) {
            int32_t bytes;
            memcpy(&bytes, a + (int64_t)r * lda + 4 * q, 4);
            const __m512i x = _mm512_set1_epi32(bytes);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
            acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], x, w2);
            acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], x, w3);
        }
    }
    for (int j = 0; j < 4; j++) {
        const __mmask16 mask = tsr_i8_512_mask(width - 16 * j);
        if (!mask) break;
        const int32_t o = first + 16 * j;
        if (mode == 0) {
            for (int r = 0; r < rows; r++) _mm512_mask_storeu_epi32(c + (int64_t)r * ldc + o, mask, acc[r][j]);
        } else {
            const __m512i comp = _mm512_maskz_loadu_epi32(mask, compensation + o);
            const __m512 channel = _mm512_maskz_loadu_ps(mask, channel_scales + o);
            const __m512 shift = _mm512_maskz_loadu_ps(mask, bias + o);
            for (int r = 0; r < rows; r++) {
                const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(row_scales[r]), channel);
                __m512 value = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], comp));
                value = _mm512_mul_ps(value, scale);
                value = _mm512_add_ps(value, shift);
                if (residual)
                    value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, residual + (int64_t)r * ldo + o));
                _mm512_mask_storeu_ps(out + (int64_t)r * ldo + o, mask, value);
            }
        }
    }
}

static TSR_I8_AVX512 void tsr_i8_512_rows(const int mode, int32_t rows, const uint8_t *a, int32_t lda,
                                          const int8_t *panel, int32_t quads, int32_t first, int32_t width, int32_t *c,
                                          int32_t ldc, const float *row_scales, const int32_t *compensation,
                                          const float *channel_scales, const float *bias, const float *residual,
                                          float *out, int32_t ldo) {
#define TSR_I8_TILE(R, M)                                                                                              \
    tsr_i8_512_tile(R, M, a, lda, panel, quads, first, width, c, ldc, row_scales, compensation, channel_scales, bias, \
                    residual, out, ldo)
    if (mode == 0) {
        switch (rows) {
        case 6: TSR_I8_TILE(6, 0); break;
        case 5: TSR_I8_TILE(5, 0); break;
        case 4: TSR_I8_TILE(4, 0); break;
        case 3: TSR_I8_TILE(3, 0); break;
        case 2: TSR_I8_TILE(2, 0); break;
        default: TSR_I8_TILE(1, 0); break;
        }
    } else {
        switch (rows) {
        case 6: TSR_I8_TILE(6, 1); break;
        case 5: TSR_I8_TILE(5, 1); break;
        case 4: TSR_I8_TILE(4, 1); break;
        case 3: TSR_I8_TILE(3, 1); break;
        case 2: TSR_I8_TILE(2, 1); break;
        default: TSR_I8_TILE(1, 1); break;
        }
    }
#undef TSR_I8_TILE
}

/// Rows of a chunk kept in cache while every panel passes over them.
#define TSR_I8_512_CHUNK 48

static TSR_I8_AVX512 void tsr_i8_512_run(const int mode, int32_t m, int32_t n, int32_t k, const uint8_t *a,
                                         int32_t lda, const int8_t *packed, int32_t *c, int32_t ldc,
                                         const float *row_scales, const int32_t *compensation,
                                         const float *channel_scales, const float *bias, const float *residual,
                                         float *out, int32_t ldo) {
    const int32_t quads = tsr_i8_padded_depth(k) / 4;
    const int32_t panels = tsr_i8_panel_count(n);
    for (int32_t chunk = 0; chunk < m; chunk += TSR_I8_512_CHUNK) {
        const int32_t chunk_end = chunk + TSR_I8_512_CHUNK < m ? chunk + TSR_I8_512_CHUNK : m;
        for (int32_t p = 0; p < panels; p++) {
            const int8_t *panel = packed + (int64_t)p * quads * TSR_I8_QUAD_BYTES;
            const int32_t first = p * TSR_I8_PANEL;
            const int32_t width = n - first < TSR_I8_PANEL ? n - first : TSR_I8_PANEL;
            for (int32_t i = chunk; i < chunk_end; i += TSR_I8_512_ROWS) {
                const int32_t rows = chunk_end - i < TSR_I8_512_ROWS ? chunk_end - i : TSR_I8_512_ROWS;
                tsr_i8_512_rows(mode, rows, a + (int64_t)i * lda, lda, panel, quads, first, width,
                                c ? c + (int64_t)i * ldc : NULL, ldc, row_scales ? row_scales + i : NULL, compensation,
                                channel_scales, bias, residual ? residual + (int64_t)i * ldo : NULL,
                                out ? out + (int64_t)i * ldo : NULL, ldo);
            }
        }
    }
}

static TSR_I8_AVX512 void tsr_i8_quantize_rows_avx512(const float *x, int32_t m, int32_t k, int32_t ldx, uint8_t *a,
                                                      int32_t lda, float *scales) {
    const int32_t vector_end = k - k % 16;
    for (int32_t i = 0; i < m; i++) {
        const float *row = x + (int64_t)i * ldx;
        uint8_t *out = a + (int64_t)i * lda;
        __m512 lanes = _mm512_setzero_ps();
        for (int32_t d = 0; d < vector_end; d += 16) lanes = _mm512_max_ps(lanes, _mm512_abs_ps(_mm512_loadu_ps(row + d)));
        float maximum = _mm512_reduce_max_ps(lanes);
        for (int32_t d = vector_end; d < k; d++) {
            const float magnitude = fabsf(row[d]);
            if (magnitude > maximum) maximum = magnitude;
        }
        float multiplier;
        tsr_i8_row_scale(maximum, &scales[i], &multiplier);
        const __m512 factor = _mm512_set1_ps(multiplier);
        const __m512 upper = _mm512_set1_ps(127.0f);
        const __m512 lower = _mm512_set1_ps(-127.0f);
        const __m512i offset = _mm512_set1_epi32(128);
        for (int32_t d = 0; d < vector_end; d += 16) {
            __m512 scaled = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(row + d), factor),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            scaled = _mm512_min_ps(_mm512_max_ps(scaled, lower), upper);
            const __m512i shifted = _mm512_add_epi32(_mm512_cvttps_epi32(scaled), offset);
            _mm_storeu_si128((__m128i *)(void *)(out + d), _mm512_cvtepi32_epi8(shifted));
        }
        for (int32_t d = vector_end; d < k; d++) out[d] = tsr_i8_quantize_one(row[d], multiplier);
        for (int32_t d = k; d < lda; d++) out[d] = 128;
    }
}

#endif

// MARK: Entry points

void tsr_i8_quantize_rows(int isa, const float *x, int32_t m, int32_t k, int32_t ldx, uint8_t *a, int32_t lda,
                          float *scales) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_i8_quantize_rows_avx512(x, m, k, ldx, a, lda, scales);
        return;
    }
#endif
    (void)isa;
    tsr_i8_quantize_rows_scalar(x, m, k, ldx, a, lda, scales);
}

void tsr_i8_gemm(int isa, int32_t m, int32_t n, int32_t k, const uint8_t *a, int32_t lda, const int8_t *packed,
                 int32_t *c, int32_t ldc) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_i8_512_run(0, m, n, k, a, lda, packed, c, ldc, NULL, NULL, NULL, NULL, NULL, NULL, 0);
        return;
    }
    if (isa == TSR_ISA_AVX2) {
        const int32_t quads = tsr_i8_padded_depth(k) / 4;
        int32_t tile[16 * TSR_I8_PANEL];
        for (int32_t p = 0; p < tsr_i8_panel_count(n); p++) {
            const int32_t first = p * TSR_I8_PANEL;
            const int32_t width = n - first < TSR_I8_PANEL ? n - first : TSR_I8_PANEL;
            for (int32_t i = 0; i < m; i += 16) {
                const int32_t rows = m - i < 16 ? m - i : 16;
                tsr_i8_avx2_panel(a + (int64_t)i * lda, lda, rows, packed + (int64_t)p * quads * TSR_I8_QUAD_BYTES,
                                  quads, width, tile);
                for (int32_t r = 0; r < rows; r++)
                    memcpy(c + (int64_t)(i + r) * ldc + first, tile + r * TSR_I8_PANEL, sizeof(int32_t) * width);
            }
        }
        return;
    }
#endif
    (void)isa;
    tsr_i8_gemm_scalar(m, n, k, a, lda, packed, c, ldc);
}

void tsr_i8_linear(int isa, int32_t m, int32_t n, int32_t k, const uint8_t *a, int32_t lda,
                   const float *row_scales, const int8_t *packed, const int32_t *compensation,
                   const float *channel_scales, const float *bias, const float *residual, float *out, int32_t ldo,
                   int32_t *scratch) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_i8_512_run(1, m, n, k, a, lda, packed, NULL, 0, row_scales, compensation, channel_scales, bias, residual,
                       out, ldo);
        return;
    }
#endif
    // Other variants: int32 sums of 16 rows × one panel into `scratch`, then the same epilogue.
    const int32_t quads = tsr_i8_padded_depth(k) / 4;
    for (int32_t p = 0; p < tsr_i8_panel_count(n); p++) {
        const int32_t first = p * TSR_I8_PANEL;
        const int32_t width = n - first < TSR_I8_PANEL ? n - first : TSR_I8_PANEL;
        const int8_t *panel = packed + (int64_t)p * quads * TSR_I8_QUAD_BYTES;
        for (int32_t i = 0; i < m; i += 16) {
            const int32_t rows = m - i < 16 ? m - i : 16;
#if defined(__x86_64__) || defined(__i386__)
            if (isa == TSR_ISA_AVX2) {
                tsr_i8_avx2_panel(a + (int64_t)i * lda, lda, rows, panel, quads, width, scratch);
            } else
#endif
            {
                // The scalar product of this panel, one channel at a time.
                for (int32_t r = 0; r < rows; r++) {
                    tsr_i8_gemm_scalar(1, width, k, a + (int64_t)(i + r) * lda, lda, panel, scratch + r * TSR_I8_PANEL,
                                       TSR_I8_PANEL);
                }
            }
            tsr_i8_epilogue(scratch, rows, first, width, row_scales + i, compensation, channel_scales, bias,
                            residual ? residual + (int64_t)i * ldo : NULL, out + (int64_t)i * ldo, ldo);
        }
    }
}
