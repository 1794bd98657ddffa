#include "internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

// NEON (AArch64). Register tile: up to 6 document rows × one query panel (16 rows = 4 vectors, or 8 = 2):
// 24 accumulators of the 32 vector registers. vfmaq_f32 is a fused multiply-add, so the similarity bits match
// the other variants. The integer kernel uses the portable loop (the scalar variant's) on this architecture.

#define TSR_INLINE static inline __attribute__((always_inline))
#define TSR_NEON_ROWS 6

TSR_INLINE void tsr_neon_tile(const int rows_in_tile, const int vectors, const int want_argmax, const float *panel,
                              int32_t dimension, const float *rows, int64_t row_stride, int32_t first_j,
                              float *rowmax, int32_t *argmax) {
    float32x4_t acc[TSR_NEON_ROWS][4];
    for (int r = 0; r < rows_in_tile; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = vdupq_n_f32(0.0f);
    const int width = vectors * 4;
    for (int32_t k = 0; k < dimension; k++) {
        float32x4_t q[4];
        for (int v = 0; v < vectors; v++) q[v] = vld1q_f32(panel + (int64_t)k * width + 4 * v);
        for (int r = 0; r < rows_in_tile; r++) {
            const float32x4_t b = vdupq_n_f32(rows[r * row_stride + k]);
            for (int v = 0; v < vectors; v++) acc[r][v] = vfmaq_f32(acc[r][v], b, q[v]);
        }
    }
    for (int v = 0; v < vectors; v++) {
        float32x4_t best = vld1q_f32(rowmax + 4 * v);
        uint32x4_t index = want_argmax ? vreinterpretq_u32_s32(vld1q_s32(argmax + 4 * v)) : vdupq_n_u32(0);
        for (int r = 0; r < rows_in_tile; r++) {
            const uint32x4_t greater = vcgtq_f32(acc[r][v], best);
            best = vbslq_f32(greater, acc[r][v], best);
            if (want_argmax) index = vbslq_u32(greater, vdupq_n_u32((uint32_t)(first_j + r)), index);
        }
        vst1q_f32(rowmax + 4 * v, best);
        if (want_argmax) vst1q_s32(argmax + 4 * v, vreinterpretq_s32_u32(index));
    }
}

void tsr_rowmax_neon(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                     int32_t row_count, float *rowmax, int32_t *argmax, void *scratch) {
    if (query->integer) {
        tsr_rowmax_scalar(query, documents, first_row, row_count, rowmax, argmax, scratch);
        return;
    }
    const int32_t dimension = documents->dimension;
    for (int32_t i = 0; i < query->packed_row_count; i++) {
        rowmax[i] = -INFINITY;
        if (argmax) argmax[i] = -1;
    }
    float *tile = (float *)scratch;
    for (int32_t j0 = 0; j0 < row_count; j0 += TSR_NEON_ROWS) {
        const int rows_in_tile = row_count - j0 < TSR_NEON_ROWS ? row_count - j0 : TSR_NEON_ROWS;
        const float *rows = tile;
        if (documents->element == TSR_ELEMENT_F32) {
            rows = (const float *)documents->rows + (first_row + j0) * dimension;
        } else {
            for (int r = 0; r < rows_in_tile; r++) tsr_row_to_float(documents, first_row + j0 + r, tile + (int64_t)r * dimension);
        }
        const float *panel = (const float *)query->packed;
        for (int32_t p = 0; p < query->packed_row_count;) {
            const int width = query->packed_row_count - p >= 16 ? 16 : 8;
            const int vectors = width / 4;
            int32_t *argmax_p = argmax ? argmax + p : NULL;
#define TSR_NEON_CALL(R)                                                                                         \
    if (vectors == 4) {                                                                                          \
        if (argmax) tsr_neon_tile(R, 4, 1, panel, dimension, rows, dimension, j0, rowmax + p, argmax_p);         \
        else tsr_neon_tile(R, 4, 0, panel, dimension, rows, dimension, j0, rowmax + p, argmax_p);                \
    } else {                                                                                                     \
        if (argmax) tsr_neon_tile(R, 2, 1, panel, dimension, rows, dimension, j0, rowmax + p, argmax_p);         \
        else tsr_neon_tile(R, 2, 0, panel, dimension, rows, dimension, j0, rowmax + p, argmax_p);                \
    }
            switch (rows_in_tile) {
            case 6: TSR_NEON_CALL(6); break;
            case 5: TSR_NEON_CALL(5); break;
            case 4: TSR_NEON_CALL(4); break;
            case 3: TSR_NEON_CALL(3); break;
            case 2: TSR_NEON_CALL(2); break;
            default: TSR_NEON_CALL(1); break;
            }
#undef TSR_NEON_CALL
            panel += (int64_t)width * dimension;
            p += width;
        }
    }
}

#endif
