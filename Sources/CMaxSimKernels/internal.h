#ifndef TESSERA_CMAXSIMKERNELS_INTERNAL_H
#define TESSERA_CMAXSIMKERNELS_INTERNAL_H

#include "CMaxSimKernels.h"

#include <math.h>
#include <string.h>

// Products and sums are written as separate statements and contraction is off, so no variant fuses
// what another does not: every fused multiply-add in this library is an explicit fma call or intrinsic.
#pragma STDC FP_CONTRACT OFF

/// Document rows processed together by one register tile (the widest variant's tile height).
#define TSR_MAX_TILE_ROWS 12

/// Computes, for every packed query row i, rowmax[i] = max over the document's rows of q_i · d and the
/// first row reaching it in argmax[i] (when argmax is not NULL). Leaves -INFINITY / -1 when no row wins.
/// For the integer kernel the maxima are of (int32 dot) * row scale; the query scale is applied later.
typedef void (*tsr_rowmax_fn)(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                              int32_t row_count, float *rowmax, int32_t *argmax, void *scratch);

void tsr_rowmax_scalar(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                       int32_t row_count, float *rowmax, int32_t *argmax, void *scratch);
#if defined(__x86_64__) || defined(__i386__)
void tsr_rowmax_avx2(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                     int32_t row_count, float *rowmax, int32_t *argmax, void *scratch);
/// Row conversions shared by the AVX2 and AVX-512 variants (AVX2 + F16C code).
void tsr_avx2_convert_rows(const tsr_documents *documents, int64_t first, int32_t count, float *out);
void tsr_avx2_widen_rows(const tsr_documents *documents, int64_t first, int32_t count, int16_t *out);
void tsr_rowmax_avx512(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                       int32_t row_count, float *rowmax, int32_t *argmax, void *scratch);
#endif
#if defined(__aarch64__)
void tsr_rowmax_neon(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                     int32_t row_count, float *rowmax, int32_t *argmax, void *scratch);
#endif

/// Exact IEEE half → float.
static inline float tsr_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            // Subnormal half: normalise into a float.
            int shift = 0;
            while ((mantissa & 0x400u) == 0) {
                mantissa <<= 1;
                shift++;
            }
            mantissa &= 0x3FFu;
            bits = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | (mantissa << 13);
        }
    } else if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float tsr_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// Converts one document row to float (exact for f16/bf16; scale * value for int8).
static inline void tsr_row_to_float(const tsr_documents *documents, int64_t row, float *out) {
    const int32_t dimension = documents->dimension;
    switch (documents->element) {
    case TSR_ELEMENT_F32:
        memcpy(out, (const float *)documents->rows + row * dimension, sizeof(float) * (size_t)dimension);
        break;
    case TSR_ELEMENT_F16: {
        const uint16_t *src = (const uint16_t *)documents->rows + row * dimension;
        for (int32_t k = 0; k < dimension; k++) out[k] = tsr_half_to_float(src[k]);
        break;
    }
    case TSR_ELEMENT_BF16: {
        const uint16_t *src = (const uint16_t *)documents->rows + row * dimension;
        for (int32_t k = 0; k < dimension; k++) out[k] = tsr_bf16_to_float(src[k]);
        break;
    }
    case TSR_ELEMENT_I8: {
        const int8_t *src = (const int8_t *)documents->rows + row * dimension;
        const float scale = documents->scales[row];
        for (int32_t k = 0; k < dimension; k++) {
            float v = (float)src[k];
            out[k] = v * scale;
        }
        break;
    }
    }
}

#endif
