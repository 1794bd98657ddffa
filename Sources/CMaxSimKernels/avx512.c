#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

// AVX-512F, BW and VNNI (vpdpwssd for the integer kernel). Register tile: up to 12 document rows × 2 query panels of 16 rows
// (24 zmm accumulators). An 8-row tail panel is read with a lane mask, so lanes 8–15 stay zero and are never
// stored. Same numeric contract as the other variants (one fused multiply-add chain per similarity).

#define TSR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define TSR_INLINE static inline __attribute__((always_inline))
#define TSR_512_ROWS 12

TSR_INLINE TSR_AVX512 __mmask16 tsr_lane_mask(int width) { return width == 16 ? (__mmask16)0xFFFF : (__mmask16)0x00FF; }

TSR_INLINE TSR_AVX512 void tsr_512_update(const int want_argmax, __m512 sim, __m512 *best, __m512i *index,
                                          int32_t j) {
    if (want_argmax) {
        const __mmask16 greater = _mm512_cmp_ps_mask(sim, *best, _CMP_GT_OQ);
        *best = _mm512_mask_blend_ps(greater, *best, sim);
        *index = _mm512_mask_blend_epi32(greater, *index, _mm512_set1_epi32(j));
    } else {
        *best = _mm512_max_ps(sim, *best);
    }
}

// panels: 1 or 2 consecutive panels; widths of each (16, or 8 for a tail panel).
TSR_INLINE TSR_AVX512 void tsr_512_tile_f32(const int rows_in_tile, const int panels, const int want_argmax,
                                            const float *panel0, const float *panel1, int width0, int width1,
                                            int32_t dimension, const float *rows, int64_t row_stride,
                                            int32_t first_j, float *rowmax0, float *rowmax1, int32_t *argmax0,
                                            int32_t *argmax1) {
    __m512 acc[TSR_512_ROWS][2];
    for (int r = 0; r < rows_in_tile; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    const __mmask16 mask0 = tsr_lane_mask(width0);
    const __mmask16 mask1 = tsr_lane_mask(width1);
    for (int32_t k = 0; k < dimension; k++) {
        const __m512 q0 = _mm512_maskz_loadu_ps(mask0, panel0 + (int64_t)k * width0);
        const __m512 q1 = panels > 1 ? _mm512_maskz_loadu_ps(mask1, panel1 + (int64_t)k * width1) : _mm512_setzero_ps();
        for (int r = 0; r < rows_in_tile; r++) {
            const __m512 b = _mm512_set1_ps(rows[r * row_stride + k]);
            acc[r][0] = _mm512_fmadd_ps(b, q0, acc[r][0]);
            if (panels > 1) acc[r][1] = _mm512_fmadd_ps(b, q1, acc[r][1]);
        }
    }
    for (int v = 0; v < panels; v++) {
        const __mmask16 mask = v == 0 ? mask0 : mask1;
        float *rowmax = v == 0 ? rowmax0 : rowmax1;
        int32_t *argmax = v == 0 ? argmax0 : argmax1;
        __m512 best = _mm512_maskz_loadu_ps(mask, rowmax);
        __m512i index = _mm512_setzero_si512();
        if (want_argmax) index = _mm512_maskz_loadu_epi32(mask, argmax);
        for (int r = 0; r < rows_in_tile; r++) tsr_512_update(want_argmax, acc[r][v], &best, &index, first_j + r);
        _mm512_mask_storeu_ps(rowmax, mask, best);
        if (want_argmax) _mm512_mask_storeu_epi32(argmax, mask, index);
    }
}

TSR_INLINE TSR_AVX512 void tsr_512_tile_i8(const int rows_in_tile, const int panels, const int want_argmax,
                                           const int16_t *panel0, const int16_t *panel1, int width0, int width1,
                                           int32_t pairs, const int16_t *rows, int64_t row_stride,
                                           const float *row_scales, int32_t first_j, float *rowmax0,
                                           float *rowmax1, int32_t *argmax0, int32_t *argmax1) {
    __m512i acc[TSR_512_ROWS][2];
    for (int r = 0; r < rows_in_tile; r++) {
        acc[r][0] = _mm512_setzero_si512();
        acc[r][1] = _mm512_setzero_si512();
    }
    const __mmask16 mask0 = tsr_lane_mask(width0);
    const __mmask16 mask1 = tsr_lane_mask(width1);
    for (int32_t p = 0; p < pairs; p++) {
        const __m512i q0 = _mm512_maskz_loadu_epi32(mask0, panel0 + (int64_t)p * 2 * width0);
        const __m512i q1 =
            panels > 1 ? _mm512_maskz_loadu_epi32(mask1, panel1 + (int64_t)p * 2 * width1) : _mm512_setzero_si512();
        for (int r = 0; r < rows_in_tile; r++) {
            int32_t pair;
            memcpy(&pair, rows + r * row_stride + 2 * p, sizeof pair);
            const __m512i b = _mm512_set1_epi32(pair);
            // VNNI: multiply int16 pairs and add both products to the int32 lane in one instruction.
            acc[r][0] = _mm512_dpwssd_epi32(acc[r][0], b, q0);
            if (panels > 1) acc[r][1] = _mm512_dpwssd_epi32(acc[r][1], b, q1);
        }
    }
    for (int v = 0; v < panels; v++) {
        const __mmask16 mask = v == 0 ? mask0 : mask1;
        float *rowmax = v == 0 ? rowmax0 : rowmax1;
        int32_t *argmax = v == 0 ? argmax0 : argmax1;
        __m512 best = _mm512_maskz_loadu_ps(mask, rowmax);
        __m512i index = _mm512_setzero_si512();
        if (want_argmax) index = _mm512_maskz_loadu_epi32(mask, argmax);
        for (int r = 0; r < rows_in_tile; r++) {
            const __m512 sim = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][v]), _mm512_set1_ps(row_scales[r]));
            tsr_512_update(want_argmax, sim, &best, &index, first_j + r);
        }
        _mm512_mask_storeu_ps(rowmax, mask, best);
        if (want_argmax) _mm512_mask_storeu_epi32(argmax, mask, index);
    }
}

#define TSR_512_ROW_CASES(CALL)                                                                                \
    switch (rows_in_tile) {                                                                                    \
    case 12: CALL(12); break;                                                                                  \
    case 11: CALL(11); break;                                                                                  \
    case 10: CALL(10); break;                                                                                  \
    case 9: CALL(9); break;                                                                                    \
    case 8: CALL(8); break;                                                                                    \
    case 7: CALL(7); break;                                                                                    \
    case 6: CALL(6); break;                                                                                    \
    case 5: CALL(5); break;                                                                                    \
    case 4: CALL(4); break;                                                                                    \
    case 3: CALL(3); break;                                                                                    \
    case 2: CALL(2); break;                                                                                    \
    default: CALL(1); break;                                                                                   \
    }

#define TSR_512_F32(R, NP, WANT)                                                                               \
    tsr_512_tile_f32(R, NP, WANT, panel0, panel1, width0, width1, dimension, rows, dimension, j0, rowmax + p,   \
                     rowmax + p + width0, argmax_p0, argmax_p1)
#define TSR_512_F32_2A(R) TSR_512_F32(R, 2, 1)
#define TSR_512_F32_2N(R) TSR_512_F32(R, 2, 0)
#define TSR_512_F32_1A(R) TSR_512_F32(R, 1, 1)
#define TSR_512_F32_1N(R) TSR_512_F32(R, 1, 0)

#define TSR_512_I8(R, NP, WANT)                                                                                \
    tsr_512_tile_i8(R, NP, WANT, ipanel0, ipanel1, width0, width1, pairs, tile16, even, scales, j0, rowmax + p, \
                    rowmax + p + width0, argmax_p0, argmax_p1)
#define TSR_512_I8_2A(R) TSR_512_I8(R, 2, 1)
#define TSR_512_I8_2N(R) TSR_512_I8(R, 2, 0)
#define TSR_512_I8_1A(R) TSR_512_I8(R, 1, 1)
#define TSR_512_I8_1N(R) TSR_512_I8(R, 1, 0)

TSR_AVX512 void tsr_rowmax_avx512(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                                  int32_t row_count, float *rowmax, int32_t *argmax, void *scratch) {
    const int32_t dimension = documents->dimension;
    const int32_t even = tsr_even_dimension(dimension);
    const int32_t pairs = even / 2;
    const int32_t packed_rows = query->packed_row_count;
    for (int32_t i = 0; i < packed_rows; i++) {
        rowmax[i] = -INFINITY;
        if (argmax) argmax[i] = -1;
    }
    float *tile = (float *)scratch;
    int16_t *tile16 = (int16_t *)scratch;
    for (int32_t j0 = 0; j0 < row_count; j0 += TSR_512_ROWS) {
        const int rows_in_tile = row_count - j0 < TSR_512_ROWS ? row_count - j0 : TSR_512_ROWS;
        const float *rows = tile;
        const float *scales = documents->scales ? documents->scales + first_row + j0 : NULL;
        if (query->integer) {
            tsr_avx2_widen_rows(documents, first_row + j0, rows_in_tile, tile16);
        } else {
            tsr_avx2_convert_rows(documents, first_row + j0, rows_in_tile, tile);
        }
        int64_t panel_offset = 0;
        for (int32_t p = 0; p < packed_rows;) {
            const int width0 = packed_rows - p >= 16 ? 16 : 8;
            const int has_second = packed_rows - p - width0 > 0;
            const int width1 = has_second ? (packed_rows - p - width0 >= 16 ? 16 : 8) : 16;
            int32_t *argmax_p0 = argmax ? argmax + p : NULL;
            int32_t *argmax_p1 = argmax && has_second ? argmax + p + width0 : NULL;
            if (query->integer) {
                const int16_t *ipanel0 = (const int16_t *)query->packed + panel_offset * 1;
                const int16_t *ipanel1 = ipanel0 + (int64_t)width0 * even;
                if (has_second) {
                    if (argmax) { TSR_512_ROW_CASES(TSR_512_I8_2A) } else { TSR_512_ROW_CASES(TSR_512_I8_2N) }
                } else {
                    if (argmax) { TSR_512_ROW_CASES(TSR_512_I8_1A) } else { TSR_512_ROW_CASES(TSR_512_I8_1N) }
                }
                panel_offset += (int64_t)(width0 + (has_second ? width1 : 0)) * even;
            } else {
                const float *panel0 = (const float *)query->packed + panel_offset;
                const float *panel1 = panel0 + (int64_t)width0 * dimension;
                if (has_second) {
                    if (argmax) { TSR_512_ROW_CASES(TSR_512_F32_2A) } else { TSR_512_ROW_CASES(TSR_512_F32_2N) }
                } else {
                    if (argmax) { TSR_512_ROW_CASES(TSR_512_F32_1A) } else { TSR_512_ROW_CASES(TSR_512_F32_1N) }
                }
                panel_offset += (int64_t)(width0 + (has_second ? width1 : 0)) * dimension;
            }
            p += width0 + (has_second ? width1 : 0);
        }
    }
}

#endif
