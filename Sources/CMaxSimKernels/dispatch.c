#include "internal.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#define TSR_X86 1
#endif

int tsr_isa_supported(int isa) {
    switch (isa) {
    case TSR_ISA_SCALAR:
        return 1;
#if TSR_X86
    case TSR_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case TSR_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
#if defined(__aarch64__)
    case TSR_ISA_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}

int tsr_isa_best(void) {
    static int best = -1;
    int cached = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (cached >= 0) return cached;
    int found = TSR_ISA_SCALAR;
    if (tsr_isa_supported(TSR_ISA_AVX512)) {
        found = TSR_ISA_AVX512;
    } else if (tsr_isa_supported(TSR_ISA_AVX2)) {
        found = TSR_ISA_AVX2;
    } else if (tsr_isa_supported(TSR_ISA_NEON)) {
        found = TSR_ISA_NEON;
    }
    __atomic_store_n(&best, found, __ATOMIC_RELAXED);
    return found;
}

int32_t tsr_packed_row_count(int32_t row_count) { return (row_count + 7) & ~7; }

int32_t tsr_even_dimension(int32_t dimension) { return (dimension + 1) & ~1; }

void tsr_pack_query_f32(const float *rows, int32_t row_count, int32_t dimension, float *packed) {
    const int32_t packed_rows = tsr_packed_row_count(row_count);
    int32_t panel_start = 0;
    float *out = packed;
    while (panel_start < packed_rows) {
        const int32_t width = packed_rows - panel_start >= 16 ? 16 : 8;
        for (int32_t k = 0; k < dimension; k++) {
            for (int32_t w = 0; w < width; w++) {
                const int32_t row = panel_start + w;
                out[k * width + w] = row < row_count ? rows[(int64_t)row * dimension + k] : 0.0f;
            }
        }
        out += (int64_t)width * dimension;
        panel_start += width;
    }
}

void tsr_pack_query_i8(const int8_t *rows, int32_t row_count, int32_t dimension, int16_t *packed) {
    const int32_t packed_rows = tsr_packed_row_count(row_count);
    const int32_t pairs = tsr_even_dimension(dimension) / 2;
    int32_t panel_start = 0;
    int16_t *out = packed;
    while (panel_start < packed_rows) {
        const int32_t width = packed_rows - panel_start >= 16 ? 16 : 8;
        for (int32_t p = 0; p < pairs; p++) {
            for (int32_t w = 0; w < width; w++) {
                const int32_t row = panel_start + w;
                for (int32_t half = 0; half < 2; half++) {
                    const int32_t k = 2 * p + half;
                    int16_t value = 0;
                    if (row < row_count && k < dimension) value = rows[(int64_t)row * dimension + k];
                    out[(p * width + w) * 2 + half] = value;
                }
            }
        }
        out += (int64_t)width * pairs * 2;
        panel_start += width;
    }
}

size_t tsr_scratch_byte_count(int32_t dimension, int32_t packed_row_count) {
    // Converted tile rows (float, or int16 pairs for the integer kernel) + row maxima + argmax.
    const size_t tile = (size_t)TSR_MAX_TILE_ROWS * (size_t)(tsr_even_dimension(dimension) + 16) * sizeof(float);
    const size_t rows = (size_t)(packed_row_count + 16) * (sizeof(float) + sizeof(int32_t));
    return ((tile + 63) & ~(size_t)63) + ((rows + 63) & ~(size_t)63) + 64;
}

static tsr_rowmax_fn tsr_rowmax_for(int isa) {
    switch (isa) {
#if TSR_X86
    case TSR_ISA_AVX2:
        return tsr_rowmax_avx2;
    case TSR_ISA_AVX512:
        return tsr_rowmax_avx512;
#endif
#if defined(__aarch64__)
    case TSR_ISA_NEON:
        return tsr_rowmax_neon;
#endif
    default:
        return tsr_rowmax_scalar;
    }
}

void tsr_score_documents(int isa, const tsr_query_block *query, const tsr_documents *documents,
                         const int64_t *ids, int64_t first, int64_t count, float *scores, int32_t *argmax,
                         int64_t argmax_stride, void *scratch) {
    const tsr_rowmax_fn rowmax_fn = tsr_rowmax_for(isa);
    const int32_t packed_rows = query->packed_row_count;
    const size_t tile_bytes =
        ((size_t)TSR_MAX_TILE_ROWS * (size_t)(tsr_even_dimension(documents->dimension) + 16) * sizeof(float) + 63) &
        ~(size_t)63;
    float *rowmax = (float *)((char *)scratch + tile_bytes);
    int32_t *row_argmax = (int32_t *)(rowmax + ((packed_rows + 16) & ~15));
    const int32_t real_rows = query->segment_offsets[query->segment_count];

    for (int64_t t = 0; t < count; t++) {
        const int64_t doc = ids ? ids[t] : first + t;
        const int64_t begin = documents->row_begin[doc];
        const int32_t row_count = (int32_t)(documents->row_end[doc] - begin);
        if (row_count == 0) {
            for (int32_t i = 0; i < packed_rows; i++) {
                rowmax[i] = 0.0f;
                row_argmax[i] = -1;
            }
        } else {
            rowmax_fn(query, documents, begin, row_count, rowmax, argmax ? row_argmax : NULL, scratch);
        }
        for (int32_t s = 0; s < query->segment_count; s++) {
            float sum = 0.0f;
            for (int32_t i = query->segment_offsets[s]; i < query->segment_offsets[s + 1]; i++) {
                float contribution = rowmax[i];
                if (query->integer) {
                    contribution = contribution * query->row_scales[i];
                }
                sum = sum + contribution;
            }
            scores[t * query->segment_count + s] = sum;
        }
        if (argmax) {
            memcpy(argmax + t * argmax_stride, row_argmax, sizeof(int32_t) * (size_t)real_rows);
        }
    }
}
