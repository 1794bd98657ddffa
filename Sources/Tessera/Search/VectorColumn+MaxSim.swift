public import MaxSim

extension VectorColumn {
    /// The `k` best of `candidates` (slots; repeats scored once) by MaxSim against `query`, best first: each part
    /// (sealed segment or tail) is scored by the kernel's fused top-k over its own candidates, and the per-part
    /// lists are merged exactly — the same order as one search over all slots (ties to the lower slot, NaN last).
    /// - Parameters:
    ///   - k: How many to return (≥ 0).
    ///   - query: The query's tokens.
    ///   - candidates: Slots in `0..<slotCount`.
    ///   - kernel: The kernel configuration.
    /// - Returns: Up to `k` slots with their scores.
    /// - Throws: `MaxSimError` for a dimension mismatch or a negative `k`.
    public func topK(
        _ k: Int,
        query: Multivector,
        candidates: [Int],
        kernel: MaxSimKernel
    ) throws(MaxSimError) -> [(slot: Int, score: Float)] {
        guard k > 0, !candidates.isEmpty else {
            if k < 0 { throw MaxSimError(.invalidCount, argument: "k", "must not be negative; got \(k)") }
            return []
        }
        var merged: [(slot: Int, score: Float)] = []
        let all = parts
        let documentsByBase = Dictionary(uniqueKeysWithValues: all.map { ($0.slotBase, $0.documents) })
        for (slotBase, local) in Self.split(candidates.sorted(), parts: all) {
            let documents = documentsByBase[slotBase]!
            for hit in try kernel.topK(k, query: query, documents: documents, candidates: local) {
                merged.append((slotBase + hit.index, hit.score))
            }
        }
        merged.sort { lhs, rhs in
            if lhs.score.isNaN != rhs.score.isNaN { return rhs.score.isNaN }
            if lhs.score != rhs.score, !lhs.score.isNaN { return lhs.score > rhs.score }
            return lhs.slot < rhs.slot
        }
        return Array(merged.prefix(k))
    }

    /// For each slot, the document token each query token matched (the lowest on ties).
    /// - Parameters:
    ///   - query: The query's tokens.
    ///   - slots: Slots in `0..<slotCount`.
    ///   - kernel: The kernel configuration.
    /// - Returns: One list per slot, in the order of `slots`.
    /// - Throws: `MaxSimError` for a dimension mismatch.
    public func matches(query: Multivector, slots: [Int], kernel: MaxSimKernel) throws(MaxSimError) -> [[Int32]] {
        var result = [[Int32]](repeating: [], count: slots.count)
        let queries = try Multivectors([query], dimension: query.dimension)
        let order = slots.indices.sorted { slots[$0] < slots[$1] }
        let all = parts
        var position = 0
        for (partIndex, part) in all.enumerated() {
            let end = partIndex + 1 < all.count ? all[partIndex + 1].slotBase : slotCount
            var positions: [Int] = []
            while position < order.count, slots[order[position]] < end {
                positions.append(order[position])
                position += 1
            }
            guard !positions.isEmpty else { continue }
            let explained = try kernel.scores(
                queries: queries,
                documents: part.documents,
                pairs: positions.map { MaxSimPair(query: 0, document: slots[$0] - part.slotBase) },
                withArgmax: true
            )
            for (row, original) in positions.enumerated() { result[original] = Array(explained.matches![row]) }
        }
        return result
    }

    /// Sorted slots grouped by part: each part's first slot and the slots inside it, relative to that slot.
    static func split(
        _ sorted: [Int],
        parts: [(slotBase: Int, documents: Multivectors)]
    ) -> [(slotBase: Int, local: [Int])] {
        var groups: [(slotBase: Int, local: [Int])] = []
        var position = 0
        for (index, part) in parts.enumerated() {
            let end = index + 1 < parts.count ? parts[index + 1].slotBase : part.slotBase + part.documents.count
            var local: [Int] = []
            while position < sorted.count, sorted[position] < end {
                if sorted[position] >= part.slotBase { local.append(sorted[position] - part.slotBase) }
                position += 1
            }
            if !local.isEmpty { groups.append((part.slotBase, local)) }
        }
        return groups
    }
}
