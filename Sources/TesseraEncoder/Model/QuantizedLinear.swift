import CMaxSimKernels

/// A linear layer `y = x · Wᵀ + b` with W quantised to int8 per output channel and packed for the integer GEMM
/// (`tsr_i8_gemm`'s panels of 64 channels).
///
/// Channel o's scale is `max_k |W[o][k]| / 127` and its weights `round-half-even(W[o][k] / scale)` in
/// [-127, 127]. At run time each input row is quantised the same way (per token, symmetric), shifted by 128 to
/// unsigned bytes for VNNI's `vpdpbusd`, and the product's int32 sums are dequantised with both scales; the
/// shift is undone by subtracting `128 · Σ_k W[o][k]`, so the integer result is exact.
struct QuantizedLinear: Sendable {
    let inputDimension: Int
    let outputDimension: Int
    /// `tsr_i8_packed_size(outputDimension, inputDimension)` bytes.
    let packed: [Int8]
    /// `128 · Σ_k W[o][k]` per channel.
    let compensation: [Int32]
    /// Per channel.
    let scales: [Float]
    let bias: [Float]

    /// Quantises a float32 `[outputDimension, inputDimension]` weight.
    init(weight: [Float], bias: [Float], inputDimension: Int) {
        let outputDimension = bias.count
        precondition(weight.count == outputDimension * inputDimension, "weight shape does not match the bias")
        var quantized = [Int8](repeating: 0, count: weight.count)
        var scales = [Float](repeating: 0, count: outputDimension)
        for channel in 0..<outputDimension {
            let row = weight[(channel * inputDimension)..<((channel + 1) * inputDimension)]
            let maximum = row.reduce(Float(0)) { max($0, abs($1)) }
            guard maximum > 0 else { continue }
            scales[channel] = maximum / 127
            let multiplier = 127 / maximum
            for (offset, value) in row.enumerated() {
                let rounded = (value * multiplier).rounded(.toNearestOrEven)
                quantized[channel * inputDimension + offset] = Int8(min(127, max(-127, rounded)))
            }
        }
        var packed = [Int8](
            repeating: 0,
            count: Int(tsr_i8_packed_size(Int32(outputDimension), Int32(inputDimension)))
        )
        var compensation = [Int32](repeating: 0, count: outputDimension)
        quantized.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { target in
                compensation.withUnsafeMutableBufferPointer { sums in
                    tsr_i8_pack_weights(
                        source.baseAddress!,
                        Int32(outputDimension),
                        Int32(inputDimension),
                        target.baseAddress!,
                        sums.baseAddress!
                    )
                }
            }
        }
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.packed = packed
        self.compensation = compensation
        self.scales = scales
        self.bias = bias
    }

    /// `output = input · Wᵀ + bias (+ residual)` for `[rowCount, inputDimension]` input, row-major.
    /// - Parameters:
    ///   - input: `[rowCount, inputDimension]` floats.
    ///   - rowCount: The rows (tokens) of the input.
    ///   - residual: `[rowCount, outputDimension]` floats added last, or `nil`; must not overlap `output`.
    ///   - output: `[rowCount, outputDimension]` floats.
    ///   - scratch: At least `rowCount · (tsr_i8_padded_depth(inputDimension) + 4) + 64` bytes, 4-byte aligned:
    ///     the shifted activation bytes, then the row scales.
    ///   - isa: The kernel variant (`tsr_isa_best()` unless a test asks for another).
    func apply(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableRawPointer,
        isa: Int32 = tsr_isa_best()
    ) {
        guard rowCount > 0 else { return }
        let depth = Int(tsr_i8_padded_depth(Int32(inputDimension)))
        let activations = scratch.bindMemory(to: UInt8.self, capacity: rowCount * depth)
        // The scales after the bytes, at the next multiple of 64 bytes.
        let scaleOffset = (rowCount * depth + 63) & ~63
        let rowScales = (scratch + scaleOffset).bindMemory(to: Float.self, capacity: rowCount)
        // The non-AVX-512 variants' int32 tile: 16 rows × one 64-channel panel (4 KiB).
        let tile = UnsafeMutablePointer<Int32>.allocate(capacity: 64 * 16)
        defer { tile.deallocate() }
        tsr_i8_quantize_rows(
            isa,
            input,
            Int32(rowCount),
            Int32(inputDimension),
            Int32(inputDimension),
            activations,
            Int32(depth),
            rowScales
        )
        packed.withUnsafeBufferPointer { packed in
            compensation.withUnsafeBufferPointer { compensation in
                scales.withUnsafeBufferPointer { scales in
                    bias.withUnsafeBufferPointer { bias in
                        tsr_i8_linear(
                            isa,
                            Int32(rowCount),
                            Int32(outputDimension),
                            Int32(inputDimension),
                            activations,
                            Int32(depth),
                            rowScales,
                            packed.baseAddress!,
                            compensation.baseAddress!,
                            scales.baseAddress!,
                            bias.baseAddress!,
                            residual,
                            output,
                            Int32(outputDimension),
                            tile
                        )
                    }
                }
            }
        }
    }
}
