#include "internal.h"

// Portable variant: the numeric contract written out plainly. Every other variant gives the same bits.

static void tsr_rowmax_scalar_float(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                                    int32_t row_count, float *rowmax, int32_t *argmax, float *row) {
    const int32_t dimension = documents->dimension;
    const float *packed = (const float *)query->packed;
    for (int32_t j = 0; j < row_count; j++) {
        tsr_row_to_float(documents, first_row + j, row);
        int32_t panel_start = 0;
        const float *panel = packed;
        while (panel_start < query->packed_row_count) {
            const int32_t width = query->packed_row_count - panel_start >= 16 ? 16 : 8;
            for (int32_t w = 0; w < width; w++) {
                float sim = 0.0f;
                for (int32_t k = 0; k < dimension; k++) sim = fmaf(row[k], panel[k * width + w], sim);
                const int32_t i = panel_start + w;
                if (sim > rowmax[i]) {
                    rowmax[i] = sim;
                    if (argmax) argmax[i] = j;
                }
            }
            panel += (int64_t)width * dimension;
            panel_start += width;
        }
    }
}

static void tsr_rowmax_scalar_integer(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                                      int32_t row_count, float *rowmax, int32_t *argmax) {
    const int32_t dimension = documents->dimension;
    const int32_t pairs = tsr_even_dimension(dimension) / 2;
    const int16_t *packed = (const int16_t *)query->packed;
    for (int32_t j = 0; j < row_count; j++) {
        const int8_t *row = (const int8_t *)documents->rows + (first_row + j) * dimension;
        const float scale = documents->scales[first_row + j];
        int32_t panel_start = 0;
        const int16_t *panel = packed;
        while (panel_start < query->packed_row_count) {
            const int32_t width = query->packed_row_count - panel_start >= 16 ? 16 : 8;
            for (int32_t w = 0; w < width; w++) {
                int32_t dot = 0;
                for (int32_t k = 0; k < dimension; k++) {
                    dot += (int32_t)row[k] * (int32_t)panel[((k / 2) * width + w) * 2 + (k & 1)];
                }
                float sim = (float)dot;
                sim = sim * scale;
                const int32_t i = panel_start + w;
                if (sim > rowmax[i]) {
                    rowmax[i] = sim;
                    if (argmax) argmax[i] = j;
                }
            }
            panel += (int64_t)width * pairs * 2;
            panel_start += width;
        }
    }
}

void tsr_rowmax_scalar(const tsr_query_block *query, const tsr_documents *documents, int64_t first_row,
                       int32_t row_count, float *rowmax, int32_t *argmax, void *scratch) {
    for (int32_t i = 0; i < query->packed_row_count; i++) {
        rowmax[i] = -INFINITY;
        if (argmax) argmax[i] = -1;
    }
    if (query->integer) {
        tsr_rowmax_scalar_integer(query, documents, first_row, row_count, rowmax, argmax);
    } else {
        tsr_rowmax_scalar_float(query, documents, first_row, row_count, rowmax, argmax, (float *)scratch);
    }
}
