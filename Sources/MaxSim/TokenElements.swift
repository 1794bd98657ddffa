internal import CMaxSimKernels

/// The element type of stored token vectors.
public enum TokenElementType: String, Sendable, Hashable, CaseIterable, Codable {
    /// IEEE single, 4 bytes per value.
    case float32
    /// IEEE half, 2 bytes per value; conversion to Float is exact.
    case float16
    /// bfloat16 (the upper half of a Float), 2 bytes per value; conversion to Float is exact.
    case bfloat16
    /// Signed 8-bit integers with one Float scale per token (value = scale × int8), 1 byte per value.
    case int8

    /// Bytes one value takes (not counting int8's per-token scale).
    public var byteCount: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        case .int8: 1
        }
    }

    var kernelCode: Int32 {
        switch self {
        case .float32: Int32(TSR_ELEMENT_F32)
        case .float16: Int32(TSR_ELEMENT_F16)
        case .bfloat16: Int32(TSR_ELEMENT_BF16)
        case .int8: Int32(TSR_ELEMENT_I8)
        }
    }
}

/// A flat array of token values `[tokenCount, dimension]` in one element type.
public enum TokenElements: Sendable, Equatable {
    /// Float32 values.
    case float32([Float])
    /// Float16 values.
    case float16([Float16])
    /// BFloat16 values.
    case bfloat16([BFloat16])
    /// Int8 values with one scale per token: token t's value k is `scales[t] * values[t * dimension + k]`.
    case int8(values: [Int8], scales: [Float])
    /// Values of any type read in place from a mapped file (a sealed segment). Equal to another case only when
    /// that is mapped too and holds the same bits.
    case mapped(MappedTokens)

    /// The element type.
    public var elementType: TokenElementType {
        switch self {
        case .float32: .float32
        case .float16: .float16
        case .bfloat16: .bfloat16
        case .int8: .int8
        case .mapped(let tokens): tokens.elementType
        }
    }

    /// The number of values (tokens × dimension).
    public var valueCount: Int {
        switch self {
        case .float32(let values): values.count
        case .float16(let values): values.count
        case .bfloat16(let values): values.count
        case .int8(let values, _): values.count
        case .mapped(let tokens): tokens.valueCount
        }
    }

    /// Bytes the values and scales occupy.
    public var byteCount: Int {
        switch self {
        case .int8(let values, let scales): values.count + 4 * scales.count
        case .mapped(let tokens): tokens.valueCount * tokens.elementType.byteCount + 4 * tokens.scaleCount
        default: valueCount * elementType.byteCount
        }
    }

    /// The value at a flat index as a Float (exact except for int8, which multiplies by its token's scale).
    /// - Parameters:
    ///   - index: the flat index, `token * dimension + k`.
    ///   - dimension: the token dimension (needed to find an int8 value's scale).
    /// - Returns: the value.
    public func floatValue(at index: Int, dimension: Int) -> Float {
        switch self {
        case .float32(let values): values[index]
        case .float16(let values): Float(values[index])
        case .bfloat16(let values): values[index].floatValue
        case .int8(let values, let scales): Float(values[index]) * scales[index / dimension]
        case .mapped(let tokens): tokens.floatValue(at: index, dimension: dimension)
        }
    }

    /// All values converted to Float (int8 multiplied by its token's scale).
    /// - Parameter dimension: the token dimension.
    /// - Returns: `[tokenCount * dimension]` Floats.
    public func floatValues(dimension: Int) -> [Float] {
        switch self {
        case .float32(let values): return values
        case .float16(let values): return values.map { Float($0) }
        case .bfloat16(let values): return values.map(\.floatValue)
        case .int8(let values, let scales):
            var out = [Float](repeating: 0, count: values.count)
            for index in 0..<values.count {
                out[index] = Float(values[index]) * scales[index / dimension]
            }
            return out
        case .mapped(let tokens):
            var out: [Float] = []
            out.reserveCapacity(tokens.valueCount)
            tokens.appendFloatValues(0..<tokens.valueCount, dimension: dimension, to: &out)
            return out
        }
    }

    /// The same values held in arrays (a copy for ``mapped(_:)``, `self` otherwise).
    public var arrayBacked: TokenElements {
        if case .mapped(let tokens) = self { return tokens.arrayBacked }
        return self
    }

    /// Converts Float values to the given element type: rounding to nearest for the 16-bit types, and for
    /// int8 a symmetric per-token quantisation (scale = max |value| / 127, values rounded to nearest).
    /// - Parameters:
    ///   - values: `[tokenCount, dimension]` Floats.
    ///   - dimension: the token dimension.
    ///   - elementType: the element type to produce.
    /// - Returns: the converted values.
    public static func converting(_ values: [Float], dimension: Int, to elementType: TokenElementType) -> TokenElements
    {
        switch elementType {
        case .float32: return .float32(values)
        case .float16: return .float16(values.map { Float16($0) })
        case .bfloat16: return .bfloat16(values.map { BFloat16($0) })
        case .int8:
            let (quantized, scales) = Int8Quantizer.quantize(values, dimension: dimension)
            return .int8(values: quantized, scales: scales)
        }
    }

    /// Calls `body` with the bytes of values `values` (flat indices) and, for int8, of the scales of `tokens`
    /// (empty for other types); the buffers are valid only inside the call.
    /// - Parameters:
    ///   - values: A range of flat value indices inside the values.
    ///   - tokens: The tokens those values belong to (for int8's scales).
    ///   - body: Reads the bytes.
    /// - Returns: `body`'s result.
    public func withUnsafeBytes<R>(
        values: Range<Int>,
        tokens: Range<Int>,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        let type = elementType
        return try withUnsafeRawPointers { base, scales in
            let valueBytes = UnsafeRawBufferPointer(
                start: values.isEmpty ? nil : base.map { $0 + values.lowerBound * type.byteCount },
                count: values.isEmpty ? 0 : values.count * type.byteCount
            )
            let scaleBytes = UnsafeRawBufferPointer(
                start: tokens.isEmpty || type != .int8 ? nil : scales.map { UnsafeRawPointer($0 + tokens.lowerBound) },
                count: tokens.isEmpty || type != .int8 ? 0 : 4 * tokens.count
            )
            return try body(valueBytes, scaleBytes)
        }
    }

    /// Runs `body` with the raw bytes of the values and, for int8, of the scales.
    func withUnsafeRawPointers<R>(
        _ body: (UnsafeRawPointer?, UnsafePointer<Float>?) throws -> R
    ) rethrows -> R {
        switch self {
        case .float32(let values): return try values.withUnsafeBytes { try body($0.baseAddress, nil) }
        case .float16(let values): return try values.withUnsafeBytes { try body($0.baseAddress, nil) }
        case .bfloat16(let values): return try values.withUnsafeBytes { try body($0.baseAddress, nil) }
        case .int8(let values, let scales):
            return try values.withUnsafeBytes { valueBytes in
                try scales.withUnsafeBufferPointer { try body(valueBytes.baseAddress, $0.baseAddress) }
            }
        case .mapped(let tokens):
            return try withExtendedLifetime(tokens) { try body(tokens.values, tokens.scales) }
        }
    }
}

/// Symmetric per-token int8 quantisation.
public enum Int8Quantizer {
    /// Quantises each token (row) to int8 with its own scale: `scale = max |x| / 127` (1 for an all-zero row),
    /// `q = round(x / scale)` clamped to −127…127. The round-trip error of a value is at most `scale / 2`.
    /// - Parameters:
    ///   - values: `[tokenCount, dimension]` Floats.
    ///   - dimension: the token dimension (> 0).
    /// - Returns: the int8 values and one scale per token.
    public static func quantize(_ values: [Float], dimension: Int) -> (values: [Int8], scales: [Float]) {
        precondition(dimension > 0, "dimension must be positive")
        let tokenCount = values.count / dimension
        var quantized = [Int8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 1, count: tokenCount)
        for token in 0..<tokenCount {
            let base = token * dimension
            var maxMagnitude: Float = 0
            for k in 0..<dimension where values[base + k].isFinite {
                maxMagnitude = max(maxMagnitude, abs(values[base + k]))
            }
            let scale: Float = maxMagnitude > 0 ? maxMagnitude / 127 : 1
            scales[token] = scale
            for k in 0..<dimension {
                let scaled = (values[base + k] / scale).rounded(.toNearestOrEven)
                quantized[base + k] = scaled.isNaN ? 0 : Int8(max(-127, min(127, scaled)))
            }
        }
        return (quantized, scales)
    }
}
