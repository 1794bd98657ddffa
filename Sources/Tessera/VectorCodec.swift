import Foundation

/// Validation and (de)serialisation of vector values.
///
/// Blob layouts (all little-endian), for `tokenCount` rows of `dimension` values:
/// - `float32`: `tokenCount × dimension` IEEE binary32 values, 4 bytes each.
/// - `float16`: `tokenCount × dimension` IEEE binary16 values, 2 bytes each.
/// - `int8`: `tokenCount` binary32 scales, then `tokenCount × dimension` signed bytes; value = scale × byte.
enum VectorCodec {
    /// The largest finite `Float16`.
    static let float16Max: Float = 65504

    /// Checks a value against its field and returns it row-major.
    /// - Throws: ``TesseraError/Code/dimensionMismatch``, or ``TesseraError/Code/invalidArgument`` for a
    ///   wrong kind, an empty multivector or a non-finite value; the location names the point and the field.
    static func validate(
        _ value: VectorValue,
        field: VectorField,
        pointID: PointID
    ) throws(TesseraError) -> (values: [Float], tokenCount: Int) {
        let location = TesseraError.Location(field: "point \(pointID), vector '\(field.name)'")
        switch (value, field.kind) {
        case (.dense, .multivector):
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is a multivector field; point \(pointID) gives a single dense vector",
                location: location
            )
        case (.multivector, .dense), (.flat, .dense):
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is a dense field; point \(pointID) gives a multivector",
                location: location
            )
        case (.sparse, .dense), (.sparse, .multivector):
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is not a sparse field; point \(pointID) gives a sparse vector",
                location: location
            )
        case (.dense, .sparse), (.multivector, .sparse), (.flat, .sparse):
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is a sparse field; point \(pointID) must give indices and values",
                location: location
            )
        default:
            break
        }
        if case .multivector(let rows) = value {
            for (row, vector) in rows.enumerated() where vector.count != field.dimension {
                throw TesseraError(
                    .dimensionMismatch,
                    "point \(pointID), field '\(field.name)': token \(row) has \(vector.count) values; "
                        + "the field's dimension is \(field.dimension)",
                    location: location
                )
            }
        }
        let (values, tokenCount) = value.flattened
        if tokenCount < 1 {
            throw TesseraError(
                .invalidArgument,
                "point \(pointID), field '\(field.name)': a vector needs at least one token",
                location: location
            )
        }
        if values.count != tokenCount * field.dimension {
            throw TesseraError(
                .dimensionMismatch,
                "point \(pointID), field '\(field.name)': \(values.count) values for \(tokenCount) token(s); "
                    + "the field's dimension is \(field.dimension), so \(tokenCount * field.dimension) were expected",
                location: location
            )
        }
        let limit: Float = field.elementType.isFloat16 ? float16Max : .greatestFiniteMagnitude
        for (index, element) in values.enumerated() where !(element.isFinite && abs(element) <= limit) {
            throw TesseraError(
                .invalidArgument,
                "point \(pointID), field '\(field.name)': value \(element) at token \(index / field.dimension), "
                    + "component \(index % field.dimension) is "
                    + (element.isFinite ? "outside float16's range ±65504" : "not finite"),
                location: location
            )
        }
        return (values, tokenCount)
    }

    /// Serialises validated values.
    static func encode(_ values: [Float], tokenCount: Int, dimension: Int, elementType: ElementType) -> Data {
        if elementType.isFloat16 {
            return bytesOf(values.map { Float16($0) })
        }
        if elementType.isInt8 {
            let (quantised, scales) = quantise(values, tokenCount: tokenCount, dimension: dimension)
            var data = bytesOf(scales)
            data.append(bytesOf(quantised))
            return data
        }
        return bytesOf(values)
    }

    /// Symmetric per-row int8 quantisation: `scale = maxabs / 127`, `q = round(value / scale)`.
    static func quantise(_ values: [Float], tokenCount: Int, dimension: Int) -> (values: [Int8], scales: [Float]) {
        var quantised = [Int8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 0, count: tokenCount)
        for row in 0..<tokenCount {
            let base = row * dimension
            var maxMagnitude: Float = 0
            for index in base..<base + dimension { maxMagnitude = max(maxMagnitude, abs(values[index])) }
            let scale = maxMagnitude / 127
            scales[row] = scale
            guard scale > 0 else { continue }
            for index in base..<base + dimension {
                let q = (values[index] / scale).rounded(.toNearestOrEven)
                quantised[index] = Int8(max(-127, min(127, q)))
            }
        }
        return (quantised, scales)
    }

    /// The byte count of a blob.
    static func byteCount(tokenCount: Int, dimension: Int, elementType: ElementType) -> Int {
        if elementType.isFloat16 { return tokenCount * dimension * 2 }
        if elementType.isInt8 { return tokenCount * 4 + tokenCount * dimension }
        return tokenCount * dimension * 4
    }

    /// Reads a blob back as `Float` values, row-major.
    /// - Throws: ``TesseraError/Code/corrupted`` when the blob's size does not fit the token count.
    static func decode(
        _ blob: Data,
        tokenCount: Int,
        dimension: Int,
        elementType: ElementType
    ) throws(TesseraError)
        -> [Float]
    {
        try checkSize(blob, tokenCount: tokenCount, dimension: dimension, elementType: elementType)
        if elementType.isFloat16 {
            let halves: [Float16] = load(blob, count: tokenCount * dimension)
            return halves.map { Float($0) }
        }
        if elementType.isInt8 {
            let scales: [Float] = load(blob, count: tokenCount)
            let quantised: [Int8] = load(blob.dropFirst(tokenCount * 4), count: tokenCount * dimension)
            var values = [Float](repeating: 0, count: tokenCount * dimension)
            for index in values.indices { values[index] = scales[index / dimension] * Float(quantised[index]) }
            return values
        }
        return load(blob, count: tokenCount * dimension)
    }

    static func checkSize(
        _ blob: Data,
        tokenCount: Int,
        dimension: Int,
        elementType: ElementType
    )
        throws(TesseraError)
    {
        let expected = byteCount(tokenCount: tokenCount, dimension: dimension, elementType: elementType)
        if blob.count != expected || tokenCount < 1 {
            throw TesseraError(
                .corrupted,
                "vector blob has \(blob.count) bytes; \(tokenCount) token(s) of dimension \(dimension) "
                    + "as \(elementType) need \(expected)",
                location: .init(offset: min(blob.count, expected))
            )
        }
    }

    /// The little-endian bytes of an array of fixed-width numbers.
    static func bytesOf<T: BitwiseCopyable>(_ values: [T]) -> Data {
        #if _endian(big)
        #error("Tessera's storage format is little-endian; big-endian hosts need a byte-swapping path")
        #endif
        return values.withUnsafeBytes { Data($0) }
    }

    /// Loads `count` fixed-width little-endian numbers from the start of `bytes`; the caller has checked the size.
    static func load<T: BitwiseCopyable>(_ bytes: Data, count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buffer, initialised in
            bytes.withUnsafeBytes { raw in
                // `raw` may be unaligned for T: copy bytes, never load through a typed pointer.
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw.prefix(count * MemoryLayout<T>.stride))
                )
            }
            initialised = count
        }
    }
}

/// Scales each row `[dimension]` of a row-major matrix to unit length; zero rows stay zero. Each row gets exactly
/// the arithmetic of ``normalize(_:)``, in place.
func normalizeRows(_ values: inout [Float], dimension: Int) {
    guard dimension > 0, values.count > dimension else {
        normalize(&values)
        return
    }
    values.withUnsafeMutableBufferPointer { buffer in
        var start = 0
        while start < buffer.count {
            let end = min(buffer.count, start + dimension)
            var sum: Float = 0
            for index in start..<end { sum += buffer[index] * buffer[index] }
            if sum > 0 {
                let scale = 1 / sum.squareRoot()
                for index in start..<end { buffer[index] *= scale }
            }
            start = end
        }
    }
}

/// Scales a vector to unit length; a zero vector stays zero.
func normalize(_ values: inout [Float]) {
    var sum: Float = 0
    for value in values { sum += value * value }
    guard sum > 0 else { return }
    let scale = 1 / sum.squareRoot()
    for index in values.indices { values[index] *= scale }
}
