public import TesseraPlatform

/// Token values that live in a memory-mapped file rather than in a Swift array: the rows of a sealed segment.
///
/// The values are read in place (no copy); pages are read from disk when a kernel first touches them and the
/// kernel may drop them again under memory pressure. The object keeps its `SharedMapping` alive, so the rows
/// stay valid for as long as any value holding them lives.
public final class MappedTokens: Sendable, Equatable {
    /// The element type of the values.
    public let elementType: TokenElementType
    /// The number of values (tokens × dimension).
    public let valueCount: Int
    private let mapping: SharedMapping
    private let valueOffset: Int
    private let scaleOffset: Int
    /// The number of int8 scales (one per token); 0 for other element types.
    let scaleCount: Int

    /// Wraps `valueCount` values of `elementType` at byte `valueOffset` of `mapping` (and, for int8, one Float
    /// scale per token at `scaleOffset`).
    /// - Parameters:
    ///   - mapping: The mapped file.
    ///   - valueOffset: Where the values begin; a multiple of the element size.
    ///   - valueCount: How many values.
    ///   - elementType: Their type.
    ///   - scaleOffset: Where int8's per-token scales begin (a multiple of 4); ignored for other types.
    ///   - dimension: Values per token (for the number of int8 scales).
    /// - Throws: ``MaxSimError/Code/invalidShape`` when the values or scales do not lie inside the mapping or are
    ///   misaligned.
    public convenience init(
        mapping: SharedMapping,
        valueOffset: Int,
        valueCount: Int,
        elementType: TokenElementType,
        scaleOffset: Int = 0,
        dimension: Int
    ) throws(MaxSimError) {
        func inside(_ offset: Int, _ byteCount: Int, alignment: Int, _ what: String) throws(MaxSimError) {
            guard offset >= 0, byteCount >= 0, offset % alignment == 0, offset <= mapping.byteCount,
                byteCount <= mapping.byteCount - offset
            else {
                throw MaxSimError(
                    .invalidShape,
                    argument: what,
                    "bytes \(offset)..<\(offset + byteCount) are misaligned or outside the \(mapping.byteCount)-byte "
                        + "mapping"
                )
            }
        }
        try inside(valueOffset, valueCount * elementType.byteCount, alignment: elementType.byteCount, "values")
        if elementType == .int8 {
            guard dimension > 0 else {
                throw MaxSimError(.dimensionMismatch, argument: "dimension", "must be positive; got \(dimension)")
            }
            try inside(scaleOffset, 4 * (valueCount / dimension), alignment: 4, "scales")
        }
        self.init(
            mapping: mapping,
            valueOffset: valueOffset,
            valueCount: valueCount,
            elementType: elementType,
            scaleOffset: scaleOffset,
            scaleCount: elementType == .int8 ? valueCount / dimension : 0
        )
    }

    private init(
        mapping: SharedMapping,
        valueOffset: Int,
        valueCount: Int,
        elementType: TokenElementType,
        scaleOffset: Int,
        scaleCount: Int
    ) {
        self.mapping = mapping
        self.valueOffset = valueOffset
        self.valueCount = valueCount
        self.elementType = elementType
        self.scaleOffset = scaleOffset
        self.scaleCount = scaleCount
    }

    /// The first value's address (valid while this object lives); `nil` for no values.
    var values: UnsafeRawPointer? {
        valueCount == 0 ? nil : mapping.baseAddress.map { $0 + valueOffset }
    }

    /// The first int8 scale's address; `nil` for other element types or no values.
    var scales: UnsafePointer<Float>? {
        guard elementType == .int8, valueCount > 0, let base = mapping.baseAddress else { return nil }
        return (base + scaleOffset).assumingMemoryBound(to: Float.self)
    }

    /// The value at a flat index as a Float.
    func floatValue(at index: Int, dimension: Int) -> Float {
        let base = values!
        switch elementType {
        case .float32: return base.loadUnaligned(fromByteOffset: 4 * index, as: Float.self)
        case .float16: return Float(base.loadUnaligned(fromByteOffset: 2 * index, as: Float16.self))
        case .bfloat16: return base.loadUnaligned(fromByteOffset: 2 * index, as: BFloat16.self).floatValue
        case .int8:
            return Float(base.load(fromByteOffset: index, as: Int8.self)) * scales![index / dimension]
        }
    }

    /// Values `range` (flat indices) converted to Float, appended to `output`.
    func appendFloatValues(_ range: Range<Int>, dimension: Int, to output: inout [Float]) {
        guard !range.isEmpty else { return }
        let base = values!
        switch elementType {
        case .float32:
            output.append(
                contentsOf: UnsafeBufferPointer(
                    start: (base + 4 * range.lowerBound).assumingMemoryBound(to: Float.self),
                    count: range.count
                )
            )
        case .float16:
            let halves = UnsafeBufferPointer(
                start: (base + 2 * range.lowerBound).assumingMemoryBound(to: Float16.self),
                count: range.count
            )
            output.append(contentsOf: halves.lazy.map { Float($0) })
        default:
            for index in range { output.append(floatValue(at: index, dimension: dimension)) }
        }
    }

    /// The values `range` (flat indices) as an array-backed copy; for int8, with the scales of `tokens`.
    func copy(values range: Range<Int>, tokens: Range<Int>) -> TokenElements {
        let base = values
        func array<T>(_: T.Type) -> [T] {
            guard let base, !range.isEmpty else { return [] }
            return Array(
                UnsafeBufferPointer(
                    start: (base + MemoryLayout<T>.stride * range.lowerBound).assumingMemoryBound(to: T.self),
                    count: range.count
                )
            )
        }
        switch elementType {
        case .float32: return .float32(array(Float.self))
        case .float16: return .float16(array(Float16.self))
        case .bfloat16: return .bfloat16(array(BFloat16.self))
        case .int8:
            let scaleValues =
                tokens.isEmpty
                ? [] : Array(UnsafeBufferPointer(start: scales! + tokens.lowerBound, count: tokens.count))
            return .int8(values: array(Int8.self), scales: scaleValues)
        }
    }

    /// A view of `count` values from flat index `start` (and, for int8, `tokenCount` scales from token
    /// `firstToken`), sharing the mapping. The range lies inside this object's values.
    func slice(values start: Int, count: Int, firstToken: Int, tokenCount: Int) -> MappedTokens {
        MappedTokens(
            mapping: mapping,
            valueOffset: valueOffset + start * elementType.byteCount,
            valueCount: count,
            elementType: elementType,
            scaleOffset: scaleOffset + 4 * firstToken,
            scaleCount: elementType == .int8 ? tokenCount : 0
        )
    }

    /// Whether two objects hold the same values.
    func hasSameValues(as other: MappedTokens) -> Bool {
        guard elementType == other.elementType, valueCount == other.valueCount, scaleCount == other.scaleCount
        else { return false }
        if valueCount == 0 { return true }
        let valueBytes = UnsafeRawBufferPointer(start: values, count: valueCount * elementType.byteCount)
        let otherBytes = UnsafeRawBufferPointer(start: other.values, count: valueCount * elementType.byteCount)
        guard valueBytes.elementsEqual(otherBytes) else { return false }
        return UnsafeBufferPointer(start: scales, count: scaleCount)
            .elementsEqual(UnsafeBufferPointer(start: other.scales, count: scaleCount))
    }

    /// Whether both hold the same values, bit for bit.
    public static func == (lhs: MappedTokens, rhs: MappedTokens) -> Bool { lhs === rhs || lhs.hasSameValues(as: rhs) }

    /// The values copied into arrays.
    var arrayBacked: TokenElements { copy(values: 0..<valueCount, tokens: 0..<scaleCount) }

    /// The int8 scales as an array (empty for other element types).
    var scaleArray: [Float] { Array(UnsafeBufferPointer(start: scales, count: scaleCount)) }
}
