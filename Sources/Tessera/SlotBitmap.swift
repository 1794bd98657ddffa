/// A set of slots of a ``ScoringView``, one bit per slot: the live points, or the points a filter allows.
///
/// Bit `slot % 64` of word `slot / 64` is set when the slot is in the set. Bits at and past ``slotCount`` are
/// always clear.
public struct SlotBitmap: Hashable, Sendable {
    /// The number of slots the bitmap covers (set or not).
    public private(set) var slotCount: Int
    /// The 64-bit words, `(slotCount + 63) / 64` of them.
    public private(set) var words: [UInt64]

    /// Creates a bitmap with every slot clear, or every slot set.
    /// - Parameters:
    ///   - slotCount: The number of slots covered.
    ///   - allSet: Whether every slot starts in the set.
    public init(slotCount: Int, allSet: Bool = false) {
        self.slotCount = slotCount
        self.words = [UInt64](repeating: allSet ? ~0 : 0, count: (slotCount + 63) / 64)
        if allSet, slotCount % 64 != 0 {
            words[words.count - 1] = (1 << UInt64(slotCount % 64)) - 1
        }
    }

    /// Whether a slot is in the set; slots outside `0..<slotCount` are not.
    /// - Parameter slot: The slot.
    /// - Returns: `true` when the slot's bit is set.
    public func contains(_ slot: Int) -> Bool {
        guard slot >= 0, slot < slotCount else { return false }
        return words[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }

    /// The number of slots in the set.
    /// - Complexity: O(slotCount / 64).
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The slots in the set, in increasing order.
    public var slots: [Int] {
        var result: [Int] = []
        result.reserveCapacity(count)
        for (wordIndex, word) in words.enumerated() {
            var rest = word
            while rest != 0 {
                result.append(wordIndex << 6 + rest.trailingZeroBitCount)
                rest &= rest - 1
            }
        }
        return result
    }

    /// Keeps only the slots that are also in `other`.
    /// - Parameter other: A bitmap over the same slots.
    /// - Precondition: `other.slotCount == slotCount`.
    public mutating func formIntersection(_ other: SlotBitmap) {
        precondition(other.slotCount == slotCount, "bitmaps cover different slot counts")
        for index in words.indices { words[index] &= other.words[index] }
    }

    /// Adds the slots that are in `other`.
    /// - Parameter other: A bitmap over the same slots.
    /// - Precondition: `other.slotCount == slotCount`.
    public mutating func formUnion(_ other: SlotBitmap) {
        precondition(other.slotCount == slotCount, "bitmaps cover different slot counts")
        for index in words.indices { words[index] |= other.words[index] }
    }

    /// Removes the slots that are in `other`.
    /// - Parameter other: A bitmap over the same slots.
    /// - Precondition: `other.slotCount == slotCount`.
    public mutating func subtract(_ other: SlotBitmap) {
        precondition(other.slotCount == slotCount, "bitmaps cover different slot counts")
        for index in words.indices { words[index] &= ~other.words[index] }
    }

    /// Calls `body` with each slot in the set, in increasing order.
    /// - Parameter body: Called once per slot.
    public func forEachSlot(_ body: (Int) throws -> Void) rethrows {
        for (wordIndex, word) in words.enumerated() {
            var rest = word
            while rest != 0 {
                try body(wordIndex << 6 + rest.trailingZeroBitCount)
                rest &= rest - 1
            }
        }
    }

    mutating func insert(_ slot: Int) {
        words[slot >> 6] |= 1 << UInt64(slot & 63)
    }

    mutating func remove(_ slot: Int) {
        words[slot >> 6] &= ~(1 << UInt64(slot & 63))
    }

    /// Adds one slot at the end.
    mutating func append(_ isSet: Bool) {
        if slotCount % 64 == 0 { words.append(0) }
        slotCount += 1
        if isSet { insert(slotCount - 1) }
    }
}
