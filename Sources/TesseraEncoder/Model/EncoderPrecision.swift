/// The arithmetic of the encoder's dense products (the four projections of every layer).
///
/// Attention, softmax, LayerNorm and GELU run in float32 at every precision; only the projections, about 90% of
/// a forward pass's multiply-adds, change.
public enum EncoderPrecision: String, Sendable, Hashable, Codable, CaseIterable {
    /// float32 products: the reference (the encoder's packed-weight AVX-512 kernel, or OpenBLAS `sgemm` on a CPU
    /// without AVX-512).
    case float32 = "f32"
    /// Weights rounded to bfloat16 once at load, activations per product, float32 accumulation (AVX-512 BF16
    /// `vdpbf16ps`); only on a CPU with AVX512_BF16 (``BertModel/supports(_:)``).
    case bfloat16 = "bf16"
    /// Weights quantised per output channel once at load (symmetric int8), activations per token at run time,
    /// integer products with 32-bit accumulation (AVX-512 VNNI, AVX2 or scalar, chosen at run time), then
    /// dequantised to float32.
    case int8
}
