#ifndef TESSERA_CMAXSIMKERNELS_H
#define TESSERA_CMAXSIMKERNELS_H

// Hot loops of the MaxSim kernel library. C only for what Swift cannot express here: instruction-set
// variants compiled with __attribute__((target(...))) and chosen at run time. No allocation, no strings;
// every buffer is owned by the caller.
//
// Numeric contract shared by every variant (so that results are bit-identical across instruction sets,
// thread counts and batch shapes):
// - a float similarity q·d is one fused multiply-add chain over k = 0 ..< dimension, starting from +0;
// - a query row's maximum visits document rows in increasing order and replaces the running maximum only
//   when the new similarity is strictly greater (ties keep the lowest row; a NaN similarity never wins);
// - a document with no rows gives every query row the value 0 and the argmax -1;
// - a score is the sum of its query rows' maxima in row order, in float.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set variants.
enum {
    TSR_ISA_SCALAR = 0,
    TSR_ISA_AVX2 = 1,
    TSR_ISA_AVX512 = 2,
    TSR_ISA_NEON = 3,
};

/// Document element types.
enum {
    TSR_ELEMENT_F32 = 0,
    TSR_ELEMENT_F16 = 1,
    TSR_ELEMENT_BF16 = 2,
    /// Int8 rows with one float scale per row (value = scale * int8), converted to float before the product.
    TSR_ELEMENT_I8 = 3,
};

/// 1 when this CPU can run the variant, else 0.
int tsr_isa_supported(int isa);

/// The fastest variant this CPU supports (checked once).
int tsr_isa_best(void);

/// Query rows padded up to a multiple of 8: the row count of a packed query.
int32_t tsr_packed_row_count(int32_t row_count);

/// Packs float query rows `[row_count, dimension]` into panels of 16 rows (the last may hold 8), each
/// stored `[dimension][width]`; rows past `row_count` are zero. `packed` holds
/// `tsr_packed_row_count(row_count) * dimension` floats.
void tsr_pack_query_f32(const float *rows, int32_t row_count, int32_t dimension, float *packed);

/// Dimension rounded up to even: the pair count times two used by the integer layout.
int32_t tsr_even_dimension(int32_t dimension);

/// Packs int8 query rows `[row_count, dimension]` for the integer kernel: panels of 16 rows (last may hold
/// 8), each stored `[dimension / 2][width][2]` as int16, zero-padded. `packed` holds
/// `tsr_packed_row_count(row_count) * tsr_even_dimension(dimension)` int16 values.
void tsr_pack_query_i8(const int8_t *rows, int32_t row_count, int32_t dimension, int16_t *packed);

/// Scratch bytes one call of the scoring functions needs for a given dimension and packed row count.
size_t tsr_scratch_byte_count(int32_t dimension, int32_t packed_row_count);

/// A set of documents: document d owns rows `[row_begin[d], row_end[d])` of `rows`, a `[rowCount, dimension]`
/// array. Packed documents pass their offsets as `row_begin` and the offsets shifted by one as `row_end`;
/// padded documents pass each item's first row and first row + length.
typedef struct {
    const void *rows;
    /// One float per row for TSR_ELEMENT_I8 (and the integer kernel); NULL otherwise.
    const float *scales;
    const int64_t *row_begin;
    const int64_t *row_end;
    int32_t element;
    int32_t dimension;
} tsr_documents;

/// A packed query block: one or more queries whose rows were packed together.
/// Query s owns packed rows `[segment_offsets[s], segment_offsets[s + 1])`.
typedef struct {
    const void *packed;
    /// For the integer kernel: one float scale per packed row; NULL for the float kernel.
    const float *row_scales;
    const int32_t *segment_offsets;
    int32_t segment_count;
    int32_t packed_row_count;
    /// 1: packed holds int16 pairs from tsr_pack_query_i8 and documents must be TSR_ELEMENT_I8.
    int32_t integer;
} tsr_query_block;

/// Scores documents against every query of a block.
///
/// For t in [0, count): document `ids ? ids[t] : first + t` is scored against each query s, and the score
/// is written to `scores[t * segment_count + s]`. When `argmax` is not NULL, for every packed row i the
/// matched document row (relative to the document's first row, or -1) goes to
/// `argmax[t * argmax_stride + i]` for i < segment_offsets[segment_count].
/// `scratch` holds tsr_scratch_byte_count bytes, aligned to 64.
void tsr_score_documents(int isa, const tsr_query_block *query, const tsr_documents *documents,
                         const int64_t *ids, int64_t first, int64_t count, float *scores, int32_t *argmax,
                         int64_t argmax_stride, void *scratch);

/// Compressed-index scoring of one centroid cell for one query token, without decompressing residuals.
///
/// Token t (t < token_count) of the cell has the packed residual code `codes[t * bytes_per_token ...]` and
/// belongs to document `documents[t]`. Its score is `base + sum_b table[b * 256 + code[b]]` (`base` is the
/// query token's dot product with the cell's centroid; `table` is the query token's lookup table,
/// `bytes_per_token * 256` floats). Documents whose bit in `allowed` is clear are skipped. For the others,
/// `best[document]` keeps the maximum; a document seen for the first time (its `best` still -INFINITY) is
/// appended to `touched` and `*touched_count` is incremented. The caller sizes `touched` for every document.
void tsr_warp_score_cell(const uint8_t *codes, int64_t bytes_per_token, const uint32_t *documents,
                         int64_t token_count, const float *table, float base, const uint64_t *allowed,
                         float *best, uint32_t *touched, int64_t *touched_count);

// MARK: Integer GEMM for the int8 encoder
//
// `C[m, n] = A[m, k] · Wᵀ` with A unsigned 8-bit (activations quantised per row and shifted by 128), W signed
// 8-bit (`[n, k]`, one row per output channel, quantised per channel) and 32-bit accumulation. Integer sums
// are exact (k ≤ 2^16 keeps them far from overflow), so every variant gives the same bits. W is packed once
// into panels of 64 channels: panel p, depth quad q holds 256 bytes, channel c's four weights `W[64p + c][4q
// ..< 4q + 4]` at byte 4c (zeros past n and k). The AVX-512 variant runs VNNI `vpdpbusd`, the AVX2 variant
// widens to 16 bits and runs `vpmaddwd`.

/// `k` rounded up to a multiple of 4: the row stride A needs at least, and the packed depth.
int32_t tsr_i8_padded_depth(int32_t k);

/// Bytes of W packed: `n` rounded up to 64 times `tsr_i8_padded_depth(k)`.
int64_t tsr_i8_packed_size(int32_t n, int32_t k);

/// Packs `weights` `[n, k]` (row-major) into `packed` (`tsr_i8_packed_size(n, k)` bytes) and writes each
/// channel's compensation `128 · Σ_k W[o][k]` to `compensation[n]` (what the shift of A by 128 adds).
void tsr_i8_pack_weights(const int8_t *weights, int32_t n, int32_t k, int8_t *packed, int32_t *compensation);

/// Quantises float rows `x[m, k]` (row stride `ldx`) per row, symmetric: `scale = max |x| / 127`,
/// `q = round-half-even(x · 127 / max |x|)` in [-127, 127], stored as `q + 128` in `a[m, lda]` (`lda ≥
/// tsr_i8_padded_depth(k)`; the padding gets 128). `scales[m]` gets each row's scale (0 for a zero row,
/// whose bytes are all 128). Every variant gives the same bytes and scales.
void tsr_i8_quantize_rows(int isa, const float *x, int32_t m, int32_t k, int32_t ldx, uint8_t *a, int32_t lda,
                          float *scales);

/// `c[i][o] = Σ_k a[i][k] · W[o][k]` for o < n (row stride `ldc`), over the padded depth.
void tsr_i8_gemm(int isa, int32_t m, int32_t n, int32_t k, const uint8_t *a, int32_t lda, const int8_t *packed,
                 int32_t *c, int32_t ldc);

/// A quantised linear layer: `out[i][o] = ((float)(c[i][o] - compensation[o]) · (row_scales[i] ·
/// channel_scales[o]) + bias[o]) + residual[i][o]` (the residual only when not NULL; row stride `ldo` for both),
/// each operation rounded in that order, with c from `tsr_i8_gemm`. `scratch` holds `64 · 16` int32 at least.
void tsr_i8_linear(int isa, int32_t m, int32_t n, int32_t k, const uint8_t *a, int32_t lda,
                   const float *row_scales, const int8_t *packed, const int32_t *compensation,
                   const float *channel_scales, const float *bias, const float *residual, float *out, int32_t ldo,
                   int32_t *scratch);

// MARK: Packed float GEMMs for the encoder
//
// `out[m, n] = A[m, k] · Wᵀ + bias (+ residual)` with W `[n, k]` (one row per output channel) packed once into
// panels of 64 channels (zeros past n). float32: panel p holds `[k][64]` floats, channel c's weight for depth d
// at `d · 64 + c`. bfloat16: panel p holds, per depth pair q, 64 × 2 values, channel c's `W[64p + c][2q ..< 2q +
// 2]` at `2c` (zero past k). Per output: a float32 sum from +0 over the depth in order (bfloat16: per pair the
// odd element's product first, each step rounded once; a bfloat16 product is exact in float32), then `+ bias`,
// then `+ residual` (only when not NULL; row stride `ldo` for both). The float32 variants give the same bits;
// bfloat16 hardware may round its dot products differently from the scalar variant by a few ulps.

/// Floats of a float32 W packed: `n` rounded up to 64 times `k`.
int64_t tsr_f32_packed_count(int32_t n, int32_t k);

/// Packs `weights` `[n, k]` (row-major) into `packed` (`tsr_f32_packed_count(n, k)` floats).
void tsr_f32_pack_weights(const float *weights, int32_t n, int32_t k, float *packed);

/// The float32 projection; `isa` TSR_ISA_AVX512 or TSR_ISA_SCALAR (any other value runs the scalar variant).
void tsr_f32_linear(int isa, int32_t m, int32_t n, int32_t k, const float *a, int32_t lda, const float *packed,
                    const float *bias, const float *residual, float *out, int32_t ldo);

/// 1 when this CPU has AVX-512 BF16 (`vdpbf16ps`, `vcvtneps2bf16`), else 0 (checked once).
int tsr_bf16_supported(void);

/// `k` rounded up to even: the packed depth and the least row stride of bfloat16 activations.
int32_t tsr_bf16_padded_depth(int32_t k);

/// bfloat16 values of W packed: `n` rounded up to 64 times `tsr_bf16_padded_depth(k)`.
int64_t tsr_bf16_packed_count(int32_t n, int32_t k);

/// Rounds to nearest, ties to even; subnormals become signed zero and a NaN stays a (quiet) NaN.
uint16_t tsr_bf16_round(float value);

/// The float a bfloat16 value stands for (exact).
float tsr_bf16_widen(uint16_t value);

/// Packs float32 `weights` `[n, k]` (row-major) as bfloat16 into `packed` (`tsr_bf16_packed_count(n, k)`).
void tsr_bf16_pack_weights(const float *weights, int32_t n, int32_t k, uint16_t *packed);

/// Rounds float rows `x[m, k]` (row stride `ldx`) to bfloat16 in `a[m, lda]` (`lda ≥ tsr_bf16_padded_depth(k)`;
/// the padding gets 0) as `tsr_bf16_round` does; every variant gives the same values.
void tsr_bf16_convert_rows(int isa, const float *x, int32_t m, int32_t k, int32_t ldx, uint16_t *a, int32_t lda);

/// The bfloat16 projection; `isa` TSR_ISA_AVX512 runs `vdpbf16ps` when `tsr_bf16_supported()`, anything else
/// the scalar variant.
void tsr_bf16_linear(int isa, int32_t m, int32_t n, int32_t k, const uint16_t *a, int32_t lda, const uint16_t *packed,
                     const float *bias, const float *residual, float *out, int32_t ldo);

// MARK: Element-wise stages of the encoder

/// Exact GELU in place, `x · ½ · (1 + erf(x / √2))`, with a rational erf within 4e-7 of the true value; every
/// variant gives the same bits.
void tsr_gelu(int isa, float *values, int64_t count);

/// Softmax over each row of `values[rows, columns]` in place, subtracting the row maximum first; exp within
/// 1.2e-7 relative. Variants differ only in how the row sum is associated.
void tsr_softmax_rows(int isa, float *values, int32_t rows, int32_t columns);

#ifdef __cplusplus
}
#endif

#endif
