// Lookup-table scoring for the compressed index: one table read per code byte, no residual decompression.
#include <math.h>
#include "CMaxSimKernels.h"

void tsr_warp_score_cell(const uint8_t *codes, int64_t bytes_per_token, const uint32_t *documents,
                         int64_t token_count, const float *table, float base, const uint64_t *allowed,
                         float *best, uint32_t *touched, int64_t *touched_count) {
    int64_t count = *touched_count;
    for (int64_t t = 0; t < token_count; t++) {
        const uint32_t document = documents[t];
        if (!((allowed[document >> 6] >> (document & 63)) & 1)) continue;
        const uint8_t *code = codes + t * bytes_per_token;
        // Four partial sums break the add dependency chain; the table rows are 256 floats apart.
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t b = 0;
        for (; b + 4 <= bytes_per_token; b += 4) {
            s0 += table[(b + 0) * 256 + code[b + 0]];
            s1 += table[(b + 1) * 256 + code[b + 1]];
            s2 += table[(b + 2) * 256 + code[b + 2]];
            s3 += table[(b + 3) * 256 + code[b + 3]];
        }
        for (; b < bytes_per_token; b++) s0 += table[b * 256 + code[b]];
        const float score = base + ((s0 + s1) + (s2 + s3));
        const float previous = best[document];
        if (previous == -INFINITY) touched[count++] = document;
        if (score > previous) best[document] = score;
    }
    *touched_count = count;
}
