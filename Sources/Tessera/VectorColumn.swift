import Foundation
public import MaxSim

/// One vector field of a collection, laid out for the scoring kernels: the tokens of every slot, in parts.
///
/// The sealed segments come first, one part each (their tokens read in place from the mapped segment file),
/// then the appendable tail (tokens in arrays, where writes append). Slot `s` belongs to the part whose slot
/// range holds it; within a part, a slot's tokens are rows of ``VectorField/dimension`` values, back to back.
/// A dense field has exactly one token per live slot. Deleted slots keep their tokens until the tail is
/// compacted or their segment is merged (a slot that was already deleted when its segment was sealed has no
/// tokens); check ``ScoringView/liveSlots`` (or a filter's ``SlotBitmap``) before scoring a slot.
///
/// A column is a value: it never changes once you hold it. A write changes only the tail's arrays, so a write
/// while a reader holds a column copies at most the tail, never the sealed segments.
public struct VectorColumn: Sendable {
    /// The field this column holds.
    public let field: VectorField
    /// The sealed parts in slot order; part `i` holds slots `sealedSlotBases[i] ..< sealedSlotBases[i] + count`.
    private(set) var sealedParts: [Multivectors] = []
    private(set) var sealedSlotBases: [Int] = []
    /// Slots in sealed parts; the tail's first slot.
    private(set) var sealedSlotCount = 0
    private(set) var sealedTokenCount = 0
    /// The tail's token offsets per slot, from 0.
    private(set) var tailOffsets: [Int] = [0]
    private var float32Values: [Float] = []
    private var float16Values: [Float16] = []
    private var int8Values: [Int8] = []
    private var int8Scales: [Float] = []
    /// Tokens that belong to deleted slots.
    public internal(set) var deadTokenCount: Int = 0

    init(field: VectorField) {
        self.field = field
    }

    /// The number of slots, live or deleted.
    public var slotCount: Int { sealedSlotCount + tailOffsets.count - 1 }
    /// The number of tokens, of live and deleted slots.
    public var tokenCount: Int { sealedTokenCount + tailTokenCount }
    /// The tokens of the tail.
    var tailTokenCount: Int { tailOffsets[tailOffsets.count - 1] }
    /// The tail's slot count.
    var tailSlotCount: Int { tailOffsets.count - 1 }
    /// The components per token.
    public var dimension: Int { field.dimension }

    /// The part holding a slot and the slot's index within it (`part == nil`: the tail).
    private func locate(_ slot: Int) -> (part: Int?, index: Int) {
        guard slot < sealedSlotCount else { return (nil, slot - sealedSlotCount) }
        var low = 0
        var high = sealedSlotBases.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if sealedSlotBases[middle] <= slot { low = middle } else { high = middle - 1 }
        }
        return (low, slot - sealedSlotBases[low])
    }

    /// The number of tokens a slot holds.
    /// - Parameter slot: A slot in `0..<slotCount`.
    /// - Returns: Its token count (0 for a slot deleted before its segment was sealed).
    public func tokenCount(ofSlot slot: Int) -> Int {
        let (part, index) = locate(slot)
        guard let part else { return tailOffsets[index + 1] - tailOffsets[index] }
        return sealedParts[part].tokenRange(of: index).count
    }

    /// One slot's tokens decoded to `Float`, row-major `[tokenCount, dimension]`.
    /// - Parameter slot: A slot in `0..<slotCount`.
    /// - Returns: The values.
    public func floatValues(ofSlot slot: Int) -> [Float] {
        let (part, index) = locate(slot)
        if let part { return sealedParts[part].item(index).elements.floatValues(dimension: dimension) }
        let rows = tailOffsets[index]..<tailOffsets[index + 1]
        let values = rows.lowerBound * dimension..<rows.upperBound * dimension
        if field.elementType.isFloat16 { return float16Values[values].map { Float($0) } }
        if field.elementType.isInt8 {
            return values.map { int8Scales[$0 / dimension] * Float(int8Values[$0]) }
        }
        return Array(float32Values[values])
    }

    /// Calls `body` with the stored bytes of one slot: its values in the stored element type and, for int8, its
    /// per-token scales (empty otherwise). The buffers are valid only inside the call.
    func withStoredBytes<R>(
        ofSlot slot: Int,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        let (part, index) = locate(slot)
        if let part {
            let documents = sealedParts[part]
            let rows = documents.tokenRange(of: index)
            return try documents.elements.withUnsafeBytes(
                values: rows.lowerBound * dimension..<rows.upperBound * dimension,
                tokens: rows,
                body
            )
        }
        let rows = tailOffsets[index]..<tailOffsets[index + 1]
        let values = rows.lowerBound * dimension..<rows.upperBound * dimension
        if field.elementType.isFloat16 {
            return try float16Values[values].withUnsafeBytes {
                try body($0, UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        if field.elementType.isInt8 {
            return try int8Values[values].withUnsafeBytes { valueBytes in
                try int8Scales[rows].withUnsafeBytes { try body(valueBytes, $0) }
            }
        }
        return try float32Values[values].withUnsafeBytes { try body($0, UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// The column as the MaxSim kernels read it, one packed ``Multivectors`` per part with the slot its first
    /// item stands for: the sealed segments' mapped tokens, then the tail's arrays (shared, not copied).
    /// - Complexity: O(tail slots) to validate the tail's offsets.
    public var parts: [(slotBase: Int, documents: Multivectors)] {
        var result = zip(sealedSlotBases, sealedParts).map { (slotBase: $0, documents: $1) }
        if tailSlotCount > 0 { result.append((sealedSlotCount, tailDocuments())) }
        return result
    }

    /// The tail's tokens as packed multivectors (the arrays are shared, not copied).
    func tailDocuments() -> Multivectors {
        let elements: TokenElements
        if field.elementType.isFloat16 {
            elements = .float16(float16Values)
        } else if field.elementType.isInt8 {
            elements = .int8(values: int8Values, scales: int8Scales)
        } else {
            elements = .float32(float32Values)
        }
        // The column maintains the packed invariants (offsets from 0, non-decreasing, ending at the token
        // count, whole tokens, one scale per int8 token), so construction cannot fail.
        return try! Multivectors(elements: elements, offsets: tailOffsets, dimension: dimension)
    }

    /// Appends one slot to the tail from a stored blob (see ``VectorCodec``); the caller has checked its size.
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
        tailOffsets.append(tailTokenCount + tokenCount)
    }

    /// Appends a sealed part after the existing ones; the tail must be empty.
    mutating func appendSealed(_ documents: Multivectors, deadTokenCount dead: Int) {
        precondition(tailSlotCount == 0, "sealed parts go before the tail")
        sealedSlotBases.append(sealedSlotCount)
        sealedParts.append(documents)
        sealedSlotCount += documents.count
        sealedTokenCount += documents.tokenCount
        deadTokenCount += dead
    }

    /// The column with a sealed part inserted after the existing ones, before the tail (whose slots move up by
    /// `documents.count`): an imported segment. Every inserted slot is live.
    /// - Parameter documents: The segment's tokens, read from its file.
    /// - Returns: The new column.
    func insertingSealed(_ documents: Multivectors) -> VectorColumn {
        var result = self
        result.sealedSlotBases.append(sealedSlotCount)
        result.sealedParts.append(documents)
        result.sealedSlotCount += documents.count
        result.sealedTokenCount += documents.tokenCount
        return result
    }

    /// The column with its tail's first `documents.count` slots become a sealed part (`documents`, the same
    /// slots' tokens as written to the segment file); later tail slots move down to the new tail.
    /// - Parameter documents: The sealed slots' tokens, read from the segment file.
    /// - Returns: The new column.
    func sealingTail(as documents: Multivectors) -> VectorColumn {
        var result = self
        let sealedCount = documents.count
        result.sealedSlotBases.append(sealedSlotCount)
        result.sealedParts.append(documents)
        result.sealedSlotCount += sealedCount
        result.sealedTokenCount += documents.tokenCount
        // The tail's dead tokens in the sealed slots were written as empty slots: no longer stored.
        let droppedTokens = tailOffsets[sealedCount] - documents.tokenCount
        result.deadTokenCount -= droppedTokens
        result.keepTailSlots(Array(sealedCount..<tailSlotCount), from: self)
        return result
    }

    /// The column with sealed parts `parts` replaced by one part, `documents`: the slots of those parts that were
    /// live, in order. Later slots move down.
    /// - Parameters:
    ///   - parts: The sealed parts replaced.
    ///   - documents: Their kept slots' tokens, read from the new segment file.
    ///   - removedDeadTokens: The dead tokens of the replaced parts that are gone.
    /// - Returns: The new column.
    func replacingSealed(_ parts: Range<Int>, with documents: Multivectors, removedDeadTokens: Int) -> VectorColumn {
        var result = self
        result.sealedParts.replaceSubrange(parts, with: [documents])
        result.sealedSlotBases = []
        var base = 0
        for part in result.sealedParts {
            result.sealedSlotBases.append(base)
            base += part.count
        }
        result.sealedSlotCount = base
        result.sealedTokenCount = result.sealedParts.reduce(0) { $0 + $1.tokenCount }
        result.deadTokenCount -= removedDeadTokens
        return result
    }

    /// The dead tokens of the tail, given which of its slots are live.
    func tailDeadTokenCount(live: (Int) -> Bool) -> Int {
        (0..<tailSlotCount).reduce(0) { $0 + (live($1) ? 0 : tailOffsets[$1 + 1] - tailOffsets[$1]) }
    }

    /// The column with the tail holding only the given tail slots (indices from the tail's first slot), in order.
    func keepingTailSlots(_ slots: [Int], removedDeadTokens: Int) -> VectorColumn {
        var result = self
        result.keepTailSlots(slots, from: self)
        result.deadTokenCount -= removedDeadTokens
        return result
    }

    private mutating func keepTailSlots(_ slots: [Int], from source: VectorColumn) {
        float32Values = []
        float16Values = []
        int8Values = []
        int8Scales = []
        tailOffsets = [0]
        tailOffsets.reserveCapacity(slots.count + 1)
        let tokenTotal = slots.reduce(0) { $0 + source.tailOffsets[$1 + 1] - source.tailOffsets[$1] }
        if field.elementType.isFloat16 {
            float16Values.reserveCapacity(tokenTotal * dimension)
        } else if field.elementType.isInt8 {
            int8Values.reserveCapacity(tokenTotal * dimension)
            int8Scales.reserveCapacity(tokenTotal)
        } else {
            float32Values.reserveCapacity(tokenTotal * dimension)
        }
        for slot in slots {
            let rows = source.tailOffsets[slot]..<source.tailOffsets[slot + 1]
            let values = rows.lowerBound * dimension..<rows.upperBound * dimension
            if field.elementType.isFloat16 {
                float16Values.append(contentsOf: source.float16Values[values])
            } else if field.elementType.isInt8 {
                int8Values.append(contentsOf: source.int8Values[values])
                int8Scales.append(contentsOf: source.int8Scales[rows])
            } else {
                float32Values.append(contentsOf: source.float32Values[values])
            }
            tailOffsets.append(tailTokenCount + rows.count)
        }
    }
}
