#include "internal.h"

// Element-wise stages of the encoder: exact-erf GELU and row softmax. Every variant evaluates the same
// polynomials with the same separately rounded multiplies and adds (contraction is off), so GELU gives the same
// bits in every variant; softmax's row sum is reassociated by the lane count, a few ulps.
//
// erf(x) = x · P(x²) / Q(x²) on [-4, 4], clamped outside (erf is within 2e-8 of ±1 there): P of degree 6 and Q
// of degree 5 with Q(0) = 1, fitted by iteratively reweighted least squares on [0, 4]; 3.8e-7 maximum error in
// float32. exp(x) for x in [-87.3, 88.3] (clamped): x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to
// degree 6 (1.2e-7 relative), 2^n built in the exponent bits; n rounded with the 1.5·2²³ trick.

#define TSR_ERF_P6 -1.3789077e-8f
#define TSR_ERF_P5 4.8052215e-6f
#define TSR_ERF_P4 3.8359534e-4f
#define TSR_ERF_P3 3.8405268e-3f
#define TSR_ERF_P2 5.4347961e-2f
#define TSR_ERF_P1 1.8466468e-1f
#define TSR_ERF_P0 1.1283792f
#define TSR_ERF_Q5 6.4245167e-5f
#define TSR_ERF_Q4 1.3110121e-3f
#define TSR_ERF_Q3 1.5458537e-2f
#define TSR_ERF_Q2 1.1382641e-1f
#define TSR_ERF_Q1 4.9698836e-1f
#define TSR_INV_SQRT2 0.70710677f
#define TSR_EXP_MAGIC 12582912.0f
#define TSR_LOG2E 1.44269504f
#define TSR_LN2_HIGH 0.69314575f
#define TSR_LN2_LOW 1.4286068e-6f

static float tsr_erf_scalar(float input) {
    float x = input < -4.0f ? -4.0f : input;
    if (x > 4.0f) x = 4.0f;
    const float z = x * x;
    float p = TSR_ERF_P6;
    p = p * z + TSR_ERF_P5;
    p = p * z + TSR_ERF_P4;
    p = p * z + TSR_ERF_P3;
    p = p * z + TSR_ERF_P2;
    p = p * z + TSR_ERF_P1;
    p = p * z + TSR_ERF_P0;
    float q = TSR_ERF_Q5;
    q = q * z + TSR_ERF_Q4;
    q = q * z + TSR_ERF_Q3;
    q = q * z + TSR_ERF_Q2;
    q = q * z + TSR_ERF_Q1;
    q = q * z + 1.0f;
    return x * p / q;
}

static float tsr_exp_scalar(float input) {
    float x = input < -87.3f ? -87.3f : input;
    if (x > 88.3f) x = 88.3f;
    const float shifted = x * TSR_LOG2E + TSR_EXP_MAGIC;
    const float n = shifted - TSR_EXP_MAGIC;
    const float r = x - n * TSR_LN2_HIGH - n * TSR_LN2_LOW;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t shifted_bits, magic_bits;
    const float magic = TSR_EXP_MAGIC;
    memcpy(&shifted_bits, &shifted, 4);
    memcpy(&magic_bits, &magic, 4);
    const int32_t scale_bits = (shifted_bits - magic_bits + 127) << 23;
    float scale;
    memcpy(&scale, &scale_bits, 4);
    return p * scale;
}

static void tsr_gelu_scalar(float *values, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        const float x = values[i];
        values[i] = 0.5f * x * (1.0f + tsr_erf_scalar(x * TSR_INV_SQRT2));
    }
}

static void tsr_softmax_rows_scalar(float *values, int32_t rows, int32_t columns) {
    for (int32_t row = 0; row < rows; row++) {
        float *line = values + (int64_t)row * columns;
        float maximum = -INFINITY;
        for (int32_t c = 0; c < columns; c++)
            if (line[c] > maximum) maximum = line[c];
        float total = 0;
        for (int32_t c = 0; c < columns; c++) {
            line[c] = tsr_exp_scalar(line[c] - maximum);
            total += line[c];
        }
        const float inverse = 1.0f / total;
        for (int32_t c = 0; c < columns; c++) line[c] *= inverse;
    }
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TSR_ACT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define TSR_ACT_AVX2 __attribute__((target("avx2,fma")))
#define TSR_ACT_INLINE static inline __attribute__((always_inline))

// MARK: AVX-512

TSR_ACT_INLINE TSR_ACT_AVX512 __m512 tsr_erf_512(__m512 input) {
    const __m512 x = _mm512_min_ps(_mm512_max_ps(input, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(TSR_ERF_P6);
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P5));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P4));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P3));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P2));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P1));
    p = _mm512_add_ps(_mm512_mul_ps(p, z), _mm512_set1_ps(TSR_ERF_P0));
    __m512 q = _mm512_set1_ps(TSR_ERF_Q5);
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(TSR_ERF_Q4));
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(TSR_ERF_Q3));
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(TSR_ERF_Q2));
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(TSR_ERF_Q1));
    q = _mm512_add_ps(_mm512_mul_ps(q, z), _mm512_set1_ps(1.0f));
    return _mm512_div_ps(_mm512_mul_ps(x, p), q);
}

TSR_ACT_INLINE TSR_ACT_AVX512 __m512 tsr_exp_512(__m512 input) {
    const __m512 x = _mm512_min_ps(_mm512_max_ps(input, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 magic = _mm512_set1_ps(TSR_EXP_MAGIC);
    const __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(TSR_LOG2E)), magic);
    const __m512 n = _mm512_sub_ps(shifted, magic);
    const __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(TSR_LN2_HIGH))),
                                   _mm512_mul_ps(n, _mm512_set1_ps(TSR_LN2_LOW)));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 120));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 24));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 6));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    const __m512i exponent = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
    const __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(exponent, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(scale));
}

static TSR_ACT_AVX512 void tsr_gelu_512(float *values, int64_t count) {
    const int64_t end = count - count % 16;
    for (int64_t i = 0; i < end; i += 16) {
        const __m512 x = _mm512_loadu_ps(values + i);
        const __m512 erf = tsr_erf_512(_mm512_mul_ps(x, _mm512_set1_ps(TSR_INV_SQRT2)));
        _mm512_storeu_ps(values + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                                                   _mm512_add_ps(_mm512_set1_ps(1.0f), erf)));
    }
    tsr_gelu_scalar(values + end, count - end);
}

static TSR_ACT_AVX512 void tsr_softmax_rows_512(float *values, int32_t rows, int32_t columns) {
    const int32_t end = columns - columns % 16;
    for (int32_t row = 0; row < rows; row++) {
        float *line = values + (int64_t)row * columns;
        __m512 lanes = _mm512_set1_ps(-INFINITY);
        for (int32_t c = 0; c < end; c += 16) lanes = _mm512_max_ps(lanes, _mm512_loadu_ps(line + c));
        float maximum = _mm512_reduce_max_ps(lanes);
        for (int32_t c = end; c < columns; c++)
            if (line[c] > maximum) maximum = line[c];
        const __m512 top = _mm512_set1_ps(maximum);
        __m512 sums = _mm512_setzero_ps();
        for (int32_t c = 0; c < end; c += 16) {
            const __m512 e = tsr_exp_512(_mm512_sub_ps(_mm512_loadu_ps(line + c), top));
            _mm512_storeu_ps(line + c, e);
            sums = _mm512_add_ps(sums, e);
        }
        float total = _mm512_reduce_add_ps(sums);
        for (int32_t c = end; c < columns; c++) {
            line[c] = tsr_exp_scalar(line[c] - maximum);
            total += line[c];
        }
        const float inverse = 1.0f / total;
        const __m512 factor = _mm512_set1_ps(inverse);
        for (int32_t c = 0; c < end; c += 16) _mm512_storeu_ps(line + c, _mm512_mul_ps(_mm512_loadu_ps(line + c), factor));
        for (int32_t c = end; c < columns; c++) line[c] *= inverse;
    }
}

// MARK: AVX2

TSR_ACT_INLINE TSR_ACT_AVX2 __m256 tsr_erf_256(__m256 input) {
    const __m256 x = _mm256_min_ps(_mm256_max_ps(input, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(TSR_ERF_P6);
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P5));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(TSR_ERF_P0));
    __m256 q = _mm256_set1_ps(TSR_ERF_Q5);
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(TSR_ERF_Q4));
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(TSR_ERF_Q3));
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(TSR_ERF_Q2));
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(TSR_ERF_Q1));
    q = _mm256_add_ps(_mm256_mul_ps(q, z), _mm256_set1_ps(1.0f));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

TSR_ACT_INLINE TSR_ACT_AVX2 __m256 tsr_exp_256(__m256 input) {
    const __m256 x = _mm256_min_ps(_mm256_max_ps(input, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 magic = _mm256_set1_ps(TSR_EXP_MAGIC);
    const __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(TSR_LOG2E)), magic);
    const __m256 n = _mm256_sub_ps(shifted, magic);
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(TSR_LN2_HIGH))),
                                   _mm256_mul_ps(n, _mm256_set1_ps(TSR_LN2_LOW)));
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 120));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 24));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 6));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    const __m256i exponent = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

TSR_ACT_INLINE TSR_ACT_AVX2 float tsr_act_sum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

TSR_ACT_INLINE TSR_ACT_AVX2 float tsr_act_max_256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static TSR_ACT_AVX2 void tsr_gelu_256(float *values, int64_t count) {
    const int64_t end = count - count % 8;
    for (int64_t i = 0; i < end; i += 8) {
        const __m256 x = _mm256_loadu_ps(values + i);
        const __m256 erf = tsr_erf_256(_mm256_mul_ps(x, _mm256_set1_ps(TSR_INV_SQRT2)));
        _mm256_storeu_ps(values + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                                                   _mm256_add_ps(_mm256_set1_ps(1.0f), erf)));
    }
    tsr_gelu_scalar(values + end, count - end);
}

static TSR_ACT_AVX2 void tsr_softmax_rows_256(float *values, int32_t rows, int32_t columns) {
    const int32_t end = columns - columns % 8;
    for (int32_t row = 0; row < rows; row++) {
        float *line = values + (int64_t)row * columns;
        __m256 lanes = _mm256_set1_ps(-INFINITY);
        for (int32_t c = 0; c < end; c += 8) lanes = _mm256_max_ps(lanes, _mm256_loadu_ps(line + c));
        float maximum = tsr_act_max_256(lanes);
        for (int32_t c = end; c < columns; c++)
            if (line[c] > maximum) maximum = line[c];
        const __m256 top = _mm256_set1_ps(maximum);
        __m256 sums = _mm256_setzero_ps();
        for (int32_t c = 0; c < end; c += 8) {
            const __m256 e = tsr_exp_256(_mm256_sub_ps(_mm256_loadu_ps(line + c), top));
            _mm256_storeu_ps(line + c, e);
            sums = _mm256_add_ps(sums, e);
        }
        float total = tsr_act_sum_256(sums);
        for (int32_t c = end; c < columns; c++) {
            line[c] = tsr_exp_scalar(line[c] - maximum);
            total += line[c];
        }
        const float inverse = 1.0f / total;
        const __m256 factor = _mm256_set1_ps(inverse);
        for (int32_t c = 0; c < end; c += 8) _mm256_storeu_ps(line + c, _mm256_mul_ps(_mm256_loadu_ps(line + c), factor));
        for (int32_t c = end; c < columns; c++) line[c] *= inverse;
    }
}

#endif

// MARK: Entry points

void tsr_gelu(int isa, float *values, int64_t count) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_gelu_512(values, count);
        return;
    }
    if (isa == TSR_ISA_AVX2) {
        tsr_gelu_256(values, count);
        return;
    }
#endif
    (void)isa;
    tsr_gelu_scalar(values, count);
}

void tsr_softmax_rows(int isa, float *values, int32_t rows, int32_t columns) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == TSR_ISA_AVX512) {
        tsr_softmax_rows_512(values, rows, columns);
        return;
    }
    if (isa == TSR_ISA_AVX2) {
        tsr_softmax_rows_256(values, rows, columns);
        return;
    }
#endif
    (void)isa;
    tsr_softmax_rows_scalar(values, rows, columns);
}
