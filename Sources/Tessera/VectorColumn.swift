import Foundation

/// The token values of a ``VectorColumn``, in the field's stored element type.
public enum TokenStorage: Sendable {
    /// `[tokenCount, dimension]` 32-bit floats, row-major.
    case float32([Float])
    /// `[tokenCount, dimension]` 16-bit floats, row-major.
    case float16([Float16])
    /// `[tokenCount, dimension]` signed bytes, row-major, and one scale per token: value = `scales[t] × values[i]`.
    case int8(values: [Int8], scales: [Float])
}

/// One vector field of a collection, packed for a scoring kernel: every slot's token vectors, back to back.
///
/// Slot `s` owns tokens `tokenOffsets[s]..<tokenOffsets[s + 1]`, rows of ``VectorField/dimension`` values in
/// the flat token array. A dense field has exactly one token per slot, so its flat array is `[slotCount,
/// dimension]`. Deleted slots keep their tokens until the view is compacted; check
/// ``ScoringView/liveSlots`` (or a filter's ``SlotBitmap``) before scoring a slot.
///
/// A column is a value: it never changes once you hold it.
public struct VectorColumn: Sendable {
    /// The field this column holds.
    public let field: VectorField
    /// Token offsets per slot, `slotCount + 1` of them, starting at 0; the last is the total token count.
    public private(set) var tokenOffsets: [Int] = [0]
    var float32Values: [Float] = []
    var float16Values: [Float16] = []
    var int8Values: [Int8] = []
    var int8Scales: [Float] = []
    /// Tokens that belong to deleted slots.
    public internal(set) var deadTokenCount: Int = 0

    init(field: VectorField) {
        self.field = field
    }

    /// The number of slots, live or deleted.
    public var slotCount: Int { tokenOffsets.count - 1 }
    /// The number of tokens, of live and deleted slots.
    public var tokenCount: Int { tokenOffsets[tokenOffsets.count - 1] }
    /// The components per token.
    public var dimension: Int { field.dimension }

    /// The flat token values in the stored element type.
    public var storage: TokenStorage {
        if field.elementType.isFloat16 { return .float16(float16Values) }
        if field.elementType.isInt8 { return .int8(values: int8Values, scales: int8Scales) }
        return .float32(float32Values)
    }

    /// The token rows of a slot.
    /// - Parameter slot: A slot in `0..<slotCount`.
    /// - Returns: The token indices, rows of the flat array.
    public func tokenRange(ofSlot slot: Int) -> Range<Int> {
        tokenOffsets[slot]..<tokenOffsets[slot + 1]
    }

    /// One slot's tokens decoded to `Float`, row-major `[tokenCount, dimension]`.
    /// - Parameter slot: A slot in `0..<slotCount`.
    /// - Returns: The values.
    public func floatValues(ofSlot slot: Int) -> [Float] {
        let rows = tokenRange(ofSlot: slot)
        let values = rows.lowerBound * dimension..<rows.upperBound * dimension
        if field.elementType.isFloat16 { return float16Values[values].map { Float($0) } }
        if field.elementType.isInt8 {
            return values.map { int8Scales[$0 / dimension] * Float(int8Values[$0]) }
        }
        return Array(float32Values[values])
    }

    /// Calls `body` with the 32-bit token values and the token offsets as spans.
    /// - Parameter body: Receives `[tokenCount, dimension]` values and `slotCount + 1` offsets. The spans are
    ///   valid only inside the call.
    /// - Returns: `body`'s result, or `nil` when the column does not store `float32`.
    public func withFloat32Tokens<R>(_ body: (Span<Float>, Span<Int>) throws -> R) rethrows -> R? {
        guard field.elementType.isFloat32 else { return nil }
        return try body(float32Values.span, tokenOffsets.span)
    }

    /// Calls `body` with the 16-bit token values and the token offsets as spans.
    /// - Parameter body: Receives `[tokenCount, dimension]` values and `slotCount + 1` offsets, valid only inside
    ///   the call.
    /// - Returns: `body`'s result, or `nil` when the column does not store `float16`.
    public func withFloat16Tokens<R>(_ body: (Span<Float16>, Span<Int>) throws -> R) rethrows -> R? {
        guard field.elementType.isFloat16 else { return nil }
        return try body(float16Values.span, tokenOffsets.span)
    }

    /// Calls `body` with the 8-bit token values, the per-token scales and the token offsets as spans.
    /// - Parameter body: Receives `[tokenCount, dimension]` values, `tokenCount` scales and `slotCount + 1`
    ///   offsets, valid only inside the call.
    /// - Returns: `body`'s result, or `nil` when the column does not store `int8`.
    public func withInt8Tokens<R>(_ body: (Span<Int8>, Span<Float>, Span<Int>) throws -> R) rethrows -> R? {
        guard field.elementType.isInt8 else { return nil }
        return try body(int8Values.span, int8Scales.span, tokenOffsets.span)
    }

    /// Appends one slot from a stored blob (see ``VectorCodec``); the caller has checked its size.
    mutating func append(blob: Data, tokenCount: Int) {
        let valueCount = tokenCount * dimension
        if field.elementType.isFloat16 {
            float16Values.append(contentsOf: VectorCodec.load(blob, count: valueCount) as [Float16])
        } else if field.elementType.isInt8 {
            int8Scales.append(contentsOf: VectorCodec.load(blob, count: tokenCount) as [Float])
            int8Values.append(contentsOf: VectorCodec.load(blob.dropFirst(tokenCount * 4), count: valueCount) as [Int8])
        } else {
            float32Values.append(contentsOf: VectorCodec.load(blob, count: valueCount) as [Float])
        }
        tokenOffsets.append(self.tokenCount + tokenCount)
    }

    /// A copy holding only the given slots, renumbered from 0 in the given order.
    func compacted(keeping slots: [Int]) -> VectorColumn {
        var result = VectorColumn(field: field)
        let liveTokenCount = slots.reduce(0) { $0 + tokenRange(ofSlot: $1).count }
        result.tokenOffsets.reserveCapacity(slots.count + 1)
        for slot in slots {
            let rows = tokenRange(ofSlot: slot)
            let values = rows.lowerBound * dimension..<rows.upperBound * dimension
            if field.elementType.isFloat16 {
                result.float16Values.reserveCapacity(liveTokenCount * dimension)
                result.float16Values.append(contentsOf: float16Values[values])
            } else if field.elementType.isInt8 {
                result.int8Values.reserveCapacity(liveTokenCount * dimension)
                result.int8Values.append(contentsOf: int8Values[values])
                result.int8Scales.append(contentsOf: int8Scales[rows])
            } else {
                result.float32Values.reserveCapacity(liveTokenCount * dimension)
                result.float32Values.append(contentsOf: float32Values[values])
            }
            result.tokenOffsets.append(result.tokenCount + rows.count)
        }
        return result
    }
}
