import CMaxSimKernels

/// A projection's weights packed once, at load, for one of the encoder's own kernels, with the bias and residual
/// applied in the kernel's registers.
enum PackedLinear: Sendable {
    /// float32 panels for `tsr_f32_linear` (AVX-512; elsewhere the float32 path stays on OpenBLAS).
    case float32(FloatLinear)
    /// bfloat16 panels for `tsr_bf16_linear` (AVX-512 BF16).
    case bfloat16(BFloat16Linear)
    /// int8 panels for `tsr_i8_linear`.
    case int8(QuantizedLinear)

    /// Packs a float32 `[bias.count, inputDimension]` weight for `precision`.
    init(precision: EncoderPrecision, weight: [Float], bias: [Float], inputDimension: Int) {
        switch precision {
        case .float32: self = .float32(FloatLinear(weight: weight, bias: bias, inputDimension: inputDimension))
        case .bfloat16: self = .bfloat16(BFloat16Linear(weight: weight, bias: bias, inputDimension: inputDimension))
        case .int8: self = .int8(QuantizedLinear(weight: weight, bias: bias, inputDimension: inputDimension))
        }
    }

    /// Scratch bytes per row that a call with `inputDimension` inputs needs at most, at any precision: int8's
    /// shifted bytes and row scale, or bfloat16's rounded activations. A call over `rowCount` rows needs
    /// ``scratchByteCount(rowCount:inputDimension:)``.
    static func scratchBytesPerRow(inputDimension: Int) -> Int {
        let int8 = Int(tsr_i8_padded_depth(Int32(inputDimension))) + 4
        let bfloat16 = 2 * Int(tsr_bf16_padded_depth(Int32(inputDimension)))
        return max(int8, bfloat16)
    }

    /// Scratch bytes a call over `rowCount` rows needs at most: the rows' share and 64 bytes of alignment
    /// slack (int8's row scales start at a multiple of 64).
    static func scratchByteCount(rowCount: Int, inputDimension: Int) -> Int {
        rowCount * scratchBytesPerRow(inputDimension: inputDimension) + 64
    }

    /// `output = input · Wᵀ + bias (+ residual)` for `[rowCount, inputDimension]` input, row-major.
    /// - Parameters:
    ///   - input: `[rowCount, inputDimension]` floats.
    ///   - rowCount: The rows (tokens) of the input.
    ///   - residual: `[rowCount, outputDimension]` floats added last, or `nil`; must not overlap `output`.
    ///   - output: `[rowCount, outputDimension]` floats.
    ///   - scratch: At least ``scratchByteCount(rowCount:inputDimension:)`` bytes, 4-byte aligned, used by this
    ///     call only.
    func apply(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableRawPointer
    ) {
        switch self {
        case .float32(let linear): linear.apply(input, rowCount: rowCount, residual: residual, into: output)
        case .bfloat16(let linear):
            linear.apply(input, rowCount: rowCount, residual: residual, into: output, scratch: scratch)
        case .int8(let linear):
            linear.apply(input, rowCount: rowCount, residual: residual, into: output, scratch: scratch)
        }
    }
}

/// A float32 linear layer `y = x · Wᵀ + b` with W packed in panels of 64 channels for `tsr_f32_linear`.
struct FloatLinear: Sendable {
    let inputDimension: Int
    let outputDimension: Int
    /// `tsr_f32_packed_count(outputDimension, inputDimension)` floats.
    let packed: [Float]
    let bias: [Float]

    /// Packs a float32 `[bias.count, inputDimension]` weight.
    init(weight: [Float], bias: [Float], inputDimension: Int) {
        let outputDimension = bias.count
        precondition(weight.count == outputDimension * inputDimension, "weight shape does not match the bias")
        var packed = [Float](
            repeating: 0,
            count: Int(tsr_f32_packed_count(Int32(outputDimension), Int32(inputDimension)))
        )
        weight.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { target in
                tsr_f32_pack_weights(
                    source.baseAddress!,
                    Int32(outputDimension),
                    Int32(inputDimension),
                    target.baseAddress!
                )
            }
        }
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.packed = packed
        self.bias = bias
    }

    /// `output = input · Wᵀ + bias (+ residual)`; `isa` is the kernel variant (`TSR_ISA_AVX512` or scalar).
    func apply(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>,
        isa: Int32 = tsr_isa_best()
    ) {
        guard rowCount > 0 else { return }
        packed.withUnsafeBufferPointer { packed in
            bias.withUnsafeBufferPointer { bias in
                tsr_f32_linear(
                    isa,
                    Int32(rowCount),
                    Int32(outputDimension),
                    Int32(inputDimension),
                    input,
                    Int32(inputDimension),
                    packed.baseAddress!,
                    bias.baseAddress!,
                    residual,
                    output,
                    Int32(outputDimension)
                )
            }
        }
    }
}

/// A bfloat16 linear layer `y = x · Wᵀ + b`: W rounded to bfloat16 (nearest, ties to even) once and packed for
/// `tsr_bf16_linear`; each call rounds its input rows the same way and accumulates in float32.
struct BFloat16Linear: Sendable {
    let inputDimension: Int
    let outputDimension: Int
    /// `tsr_bf16_packed_count(outputDimension, inputDimension)` bfloat16 values.
    let packed: [UInt16]
    let bias: [Float]

    /// Rounds and packs a float32 `[bias.count, inputDimension]` weight.
    init(weight: [Float], bias: [Float], inputDimension: Int) {
        let outputDimension = bias.count
        precondition(weight.count == outputDimension * inputDimension, "weight shape does not match the bias")
        var packed = [UInt16](
            repeating: 0,
            count: Int(tsr_bf16_packed_count(Int32(outputDimension), Int32(inputDimension)))
        )
        weight.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { target in
                tsr_bf16_pack_weights(
                    source.baseAddress!,
                    Int32(outputDimension),
                    Int32(inputDimension),
                    target.baseAddress!
                )
            }
        }
        self.inputDimension = inputDimension
        self.outputDimension = outputDimension
        self.packed = packed
        self.bias = bias
    }

    /// `output = input · Wᵀ + bias (+ residual)` with the input rounded to bfloat16 into `scratch` (at least
    /// `2 · rowCount · tsr_bf16_padded_depth(inputDimension)` bytes); `isa` `TSR_ISA_AVX512` runs `vdpbf16ps`
    /// where the CPU has it, anything else the scalar variant.
    func apply(
        _ input: UnsafePointer<Float>,
        rowCount: Int,
        residual: UnsafePointer<Float>?,
        into output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutableRawPointer,
        isa: Int32 = tsr_isa_best()
    ) {
        guard rowCount > 0 else { return }
        let depth = Int(tsr_bf16_padded_depth(Int32(inputDimension)))
        let activations = scratch.bindMemory(to: UInt16.self, capacity: rowCount * depth)
        tsr_bf16_convert_rows(
            isa,
            input,
            Int32(rowCount),
            Int32(inputDimension),
            Int32(inputDimension),
            activations,
            Int32(depth)
        )
        packed.withUnsafeBufferPointer { packed in
            bias.withUnsafeBufferPointer { bias in
                tsr_bf16_linear(
                    isa,
                    Int32(rowCount),
                    Int32(outputDimension),
                    Int32(inputDimension),
                    activations,
                    Int32(depth),
                    packed.baseAddress!,
                    bias.baseAddress!,
                    residual,
                    output,
                    Int32(outputDimension)
                )
            }
        }
    }
}

/// The four projections of one layer, packed.
struct PackedLayerWeights: Sendable {
    let queryKeyValue: PackedLinear
    let attentionOutput: PackedLinear
    let intermediate: PackedLinear
    let output: PackedLinear

    init(_ layer: BertLayerWeights, precision: EncoderPrecision, hidden: Int, intermediate: Int) {
        queryKeyValue = PackedLinear(
            precision: precision,
            weight: layer.queryKeyValueWeight,
            bias: layer.queryKeyValueBias,
            inputDimension: hidden
        )
        attentionOutput = PackedLinear(
            precision: precision,
            weight: layer.attentionOutputWeight,
            bias: layer.attentionOutputBias,
            inputDimension: hidden
        )
        self.intermediate = PackedLinear(
            precision: precision,
            weight: layer.intermediateWeight,
            bias: layer.intermediateBias,
            inputDimension: hidden
        )
        output = PackedLinear(
            precision: precision,
            weight: layer.outputWeight,
            bias: layer.outputBias,
            inputDimension: intermediate
        )
    }
}
