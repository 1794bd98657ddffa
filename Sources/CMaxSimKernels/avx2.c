#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

// AVX2 + FMA (+ F16C for half conversion). Register tile: up to 6 document rows × 16 query rows
// (12 ymm accumulators, 2 query vectors, 1 broadcast). The query panel for a given k is 64 contiguous bytes;
// each document row is read once per tile and broadcast one element at a time, so the document never needs
// packing and the maximum over document rows is a vertical vmaxps between accumulators.

#define TSR_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TSR_INLINE static inline __attribute__((always_inline))
#define TSR_TILE_ROWS 6
/// How far ahead of the copy loop document rows are prefetched.
#define TSR_PREFETCH_BYTES 4096

// ---------------------------------------------------------------------------------------------- float kernel

TSR_INLINE TSR_AVX2 void tsr_avx2_tile_f32(const int rows_in_tile, const int vectors, const int want_argmax,
                                           const float *panel, int32_t dimension, const float *rows,
                                           int64_t row_stride, int32_t first_j, float *rowmax, int32_t *argmax) {
    const int width = vectors * 8;
    __m256 acc[TSR_TILE_ROWS][2];
    for (int r = 0; r < rows_in_tile; r++) {
        acc[r][0] = _mm256_setzero_ps();
        acc[r][1] = _mm256_setzero_ps();
    }
    const float *q = panel;
    for (int32_t k = 0; k < dimension; k++, q += width) {
        const __m256 q0 = _mm256_loadu_ps(q);
        const __m256 q1 = vectors > 1 ? _mm256_loadu_ps(q + 8) : _mm256_setzero_ps();
        for (int r = 0; r < rows_in_tile; r++) {
            const __m256 b = _mm256_broadcast_ss(rows + r * row_stride + k);
            acc[r][0] = _mm256_fmadd_ps(b, q0, acc[r][0]);
            if (vectors > 1) acc[r][1] = _mm256_fmadd_ps(b, q1, acc[r][1]);
        }
    }
    for (int v = 0; v < vectors; v++) {
        __m256 best = _mm256_loadu_ps(rowmax + 8 * v);
        if (want_argmax) {
            __m256 index = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(argmax + 8 * v)));
            for (int r = 0; r < rows_in_tile; r++) {
                const __m256 greater = _mm256_cmp_ps(acc[r][v], best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, acc[r][v], greater);
                index = _mm256_blendv_ps(index, _mm256_castsi256_ps(_mm256_set1_epi32(first_j + r)), greater);
            }
            _mm256_storeu_si256((__m256i *)(argmax + 8 * v), _mm256_castps_si256(index));
        } else {
            // vmaxps returns its second operand unless the first is strictly greater (NaN never wins).
            for (int r = 0; r < rows_in_tile; r++) best = _mm256_max_ps(acc[r][v], best);
        }
        _mm256_storeu_ps(rowmax + 8 * v, best);
    }
}

#define TSR_AVX2_TILE_CASES(want)                                                                              \
    switch (rows_in_tile * 2 + (width == 16 ? 1 : 0)) {                                                        \
    case 13: tsr_avx2_tile_f32(6, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break; \
    case 12: tsr_avx2_tile_f32(6, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break; \
    case 11: tsr_avx2_tile_f32(5, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break; \
    case 10: tsr_avx2_tile_f32(5, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break; \
    case 9: tsr_avx2_tile_f32(4, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 8: tsr_avx2_tile_f32(4, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 7: tsr_avx2_tile_f32(3, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 6: tsr_avx2_tile_f32(3, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 5: tsr_avx2_tile_f32(2, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 4: tsr_avx2_tile_f32(2, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    case 3: tsr_avx2_tile_f32(1, 2, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break;  \
    default: tsr_avx2_tile_f32(1, 1, want, panel, dimension, rows, stride, j0, rowmax + p, argmax_p); break; \
    }

/// Converts (or copies, prefetching ahead) rows [first, first + count) to float into `out` (row stride =
/// dimension). Copying Float rows too measured faster than broadcasting from them in place: the copy's wide
/// sequential loads keep more cache misses in flight than the multiply loop's scalar broadcasts.
TSR_AVX2 void tsr_avx2_convert_rows(const tsr_documents *documents, int64_t first, int32_t count, float *out) {
    const int32_t dimension = documents->dimension;
    for (int32_t r = 0; r < count; r++) {
        const int64_t row = first + r;
        float *dst = out + (int64_t)r * dimension;
        int32_t k = 0;
        switch (documents->element) {
        case TSR_ELEMENT_F16: {
            const uint16_t *src = (const uint16_t *)documents->rows + row * dimension;
            for (; k + 8 <= dimension; k += 8) {
                _mm_prefetch((const char *)(src + k) + TSR_PREFETCH_BYTES / 2, _MM_HINT_T0);
                _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + k))));
            }
            for (; k < dimension; k++) dst[k] = tsr_half_to_float(src[k]);
            break;
        }
        case TSR_ELEMENT_BF16: {
            const uint16_t *src = (const uint16_t *)documents->rows + row * dimension;
            for (; k + 8 <= dimension; k += 8) {
                _mm_prefetch((const char *)(src + k) + TSR_PREFETCH_BYTES / 2, _MM_HINT_T0);
                const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + k)));
                _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
            }
            for (; k < dimension; k++) dst[k] = tsr_bf16_to_float(src[k]);
            break;
        }
        case TSR_ELEMENT_I8: {
            const int8_t *src = (const int8_t *)documents->rows + row * dimension;
            const float scale = documents->scales[row];
            const __m256 scale8 = _mm256_set1_ps(scale);
            for (; k + 8 <= dimension; k += 8) {
                const __m256i wide = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(src + k)));
                _mm256_storeu_ps(dst + k, _mm256_mul_ps(_mm256_cvtepi32_ps(wide), scale8));
            }
            for (; k < dimension; k++) {
                float v = (float)src[k];
                dst[k] = v * scale;
            }
            break;
        }
        default: {
            const float *src = (const float *)documents->rows + row * dimension;
            for (; k + 8 <= dimension; k += 8) {
                _mm_prefetch((const char *)(src + k) + TSR_PREFETCH_BYTES, _MM_HINT_T0);
                _mm256_storeu_ps(dst + k, _mm256_loadu_ps(src + k));
            }
            for (; k < dimension; k++) dst[k] = src[k];
            break;
        }
        }
    }
}

static TSR_AVX2 void tsr_avx2_rowmax_float(const tsr_query_block *query, const tsr_documents *documents,
                                           int64_t first_row, int32_t row_count, float *rowmax, int32_t *argmax,
                                           float *tile) {
    const int32_t dimension = documents->dimension;
    for (int32_t j0 = 0; j0 < row_count; j0 += TSR_TILE_ROWS) {
        const int rows_in_tile = row_count - j0 < TSR_TILE_ROWS ? row_count - j0 : TSR_TILE_ROWS;
        const float *rows = tile;
        const int64_t stride = dimension;
        tsr_avx2_convert_rows(documents, first_row + j0, rows_in_tile, tile);
        const float *panel = (const float *)query->packed;
        for (int32_t p = 0; p < query->packed_row_count;) {
            const int width = query->packed_row_count - p >= 16 ? 16 : 8;
            int32_t *argmax_p = argmax ? argmax + p : NULL;
            if (argmax) {
                TSR_AVX2_TILE_CASES(1)
            } else {
                TSR_AVX2_TILE_CASES(0)
            }
            panel += (int64_t)width * dimension;
            p += width;
        }
    }
}

// -------------------------------------------------------------------------------------------- integer kernel

/// Widens int8 rows [first, first + count) to int16 into `out` (row stride = even dimension, zero-padded).
TSR_AVX2 void tsr_avx2_widen_rows(const tsr_documents *documents, int64_t first, int32_t count, int16_t *out) {
    const int32_t dimension = documents->dimension;
    const int32_t even = tsr_even_dimension(dimension);
    for (int32_t r = 0; r < count; r++) {
        const int8_t *src = (const int8_t *)documents->rows + (first + r) * dimension;
        int16_t *dst = out + (int64_t)r * even;
        int32_t k = 0;
        for (; k + 16 <= dimension; k += 16) {
            _mm_prefetch((const char *)(src + k) + TSR_PREFETCH_BYTES / 4, _MM_HINT_T0);
            _mm256_storeu_si256((__m256i *)(dst + k), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + k))));
        }
        for (; k < dimension; k++) dst[k] = src[k];
        if (even != dimension) dst[dimension] = 0;
    }
}

TSR_INLINE TSR_AVX2 void tsr_avx2_tile_i8(const int rows_in_tile, const int vectors, const int want_argmax,
                                          const int16_t *panel, int32_t pairs, const int16_t *rows,
                                          int64_t row_stride, const float *row_scales, int32_t first_j,
                                          float *rowmax, int32_t *argmax) {
    const int width = vectors * 8;
    __m256i acc[TSR_TILE_ROWS][2];
    for (int r = 0; r < rows_in_tile; r++) {
        acc[r][0] = _mm256_setzero_si256();
        acc[r][1] = _mm256_setzero_si256();
    }
    const int16_t *q = panel;
    for (int32_t p = 0; p < pairs; p++, q += 2 * width) {
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)q);
        const __m256i q1 = vectors > 1 ? _mm256_loadu_si256((const __m256i *)(q + 16)) : _mm256_setzero_si256();
        for (int r = 0; r < rows_in_tile; r++) {
            int32_t pair;
            memcpy(&pair, rows + r * row_stride + 2 * p, sizeof pair);
            const __m256i b = _mm256_set1_epi32(pair);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(b, q0));
            if (vectors > 1) acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(b, q1));
        }
    }
    for (int v = 0; v < vectors; v++) {
        __m256 best = _mm256_loadu_ps(rowmax + 8 * v);
        __m256 index = _mm256_setzero_ps();
        if (want_argmax) index = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(argmax + 8 * v)));
        for (int r = 0; r < rows_in_tile; r++) {
            const __m256 sim = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][v]), _mm256_set1_ps(row_scales[r]));
            if (want_argmax) {
                const __m256 greater = _mm256_cmp_ps(sim, best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, sim, greater);
                index = _mm256_blendv_ps(index, _mm256_castsi256_ps(_mm256_set1_epi32(first_j + r)), greater);
            } else {
                best = _mm256_max_ps(sim, best);
            }
        }
        if (want_argmax) _mm256_storeu_si256((__m256i *)(argmax + 8 * v), _mm256_castps_si256(index));
        _mm256_storeu_ps(rowmax + 8 * v, best);
    }
}

#define TSR_AVX2_I8_CASES(want)                                                                                 \
    switch (rows_in_tile * 2 + (width == 16 ? 1 : 0)) {                                                         \
    case 13: tsr_avx2_tile_i8(6, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break; \
    case 12: tsr_avx2_tile_i8(6, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break; \
    case 11: tsr_avx2_tile_i8(5, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break; \
    case 10: tsr_avx2_tile_i8(5, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break; \
    case 9: tsr_avx2_tile_i8(4, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 8: tsr_avx2_tile_i8(4, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 7: tsr_avx2_tile_i8(3, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 6: tsr_avx2_tile_i8(3, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 5: tsr_avx2_tile_i8(2, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 4: tsr_avx2_tile_i8(2, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    case 3: tsr_avx2_tile_i8(1, 2, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break;  \
    default: tsr_avx2_tile_i8(1, 1, want, panel, pairs, tile, even, scales, j0, rowmax + p, argmax_p); break; \
    }

static TSR_AVX2 void tsr_avx2_rowmax_integer(const tsr_query_block *query, const tsr_documents *documents,
                                             int64_t first_row, int32_t row_count, float *rowmax, int32_t *argmax,
                                             int16_t *tile) {
    const int32_t dimension = documents->dimension;
    const int32_t even = tsr_even_dimension(dimension);
    const int32_t pairs = even / 2;
    for (int32_t j0 = 0; j0 < row_count; j0 += TSR_TILE_ROWS) {
        const int rows_in_tile = row_count - j0 < TSR_TILE_ROWS ? row_count - j0 : TSR_TILE_ROWS;
        tsr_avx2_widen_rows(documents, first_row + j0, rows_in_tile, tile);
        const float *scales = documents->scales + first_row + j0;
        const int16_t *panel = (const int16_t *)query->packed;
        for (int32_t p = 0; p < query->packed_row_count;) {
            const int width = query->packed_row_count - p >= 16 ? 16 : 8;
            int32_t *argmax_p = argmax ? argmax + p : NULL;
            if (argmax) {
                TSR_AVX2_I8_CASES(1)
            } else {
                TSR_AVX2_I8_CASES(0)
            }
            panel += (int64_t)width * even;
            p += width;
        }
    }
}

TSR_AVX2 void tsr_rowmax_avx2(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                              int32_t row_count, float *rowmax, int32_t *argmax, void *scratch) {
    for (int32_t i = 0; i < query->packed_row_count; i++) {
        rowmax[i] = -INFINITY;
        if (argmax) argmax[i] = -1;
    }
    if (query->integer) {
        tsr_avx2_rowmax_integer(query, documents, first_row, row_count, rowmax, argmax, (int16_t *)scratch);
    } else {
        tsr_avx2_rowmax_float(query, documents, first_row, row_count, rowmax, argmax, (float *)scratch);
    }
}

#endif
