public import MaxSim

extension VectorColumn {
    /// The column as the MaxSim kernels read it: the flat token array (no copy) and the slot offsets.
    ///
    /// Slots of deleted points are included (their tokens stay until compaction); restrict scoring to live
    /// slots with a candidate list.
    /// - Returns: one multivector per slot.
    /// - Complexity: O(slot count) to validate the offsets; the token values are shared, not copied.
    public func multivectors() -> Multivectors {
        let elements: TokenElements
        switch storage {
        case .float32(let values): elements = .float32(values)
        case .float16(let values): elements = .float16(values)
        case .int8(let values, let scales): elements = .int8(values: values, scales: scales)
        }
        // The column maintains the packed invariants (offsets from 0, non-decreasing, ending at the token
        // count, whole tokens, one scale per int8 token), so construction cannot fail.
        return try! Multivectors(elements: elements, offsets: tokenOffsets, dimension: dimension)
    }
}
