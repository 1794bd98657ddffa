internal import CMaxSimKernels
import Synchronization

/// Ranking order of top-k results: higher score first, then lower index. NaN scores rank below every number.
@inline(__always)
func ranksBefore(_ a: ScoredDocument, _ b: ScoredDocument) -> Bool {
    let aScore = a.score.isNaN ? -Float.infinity : a.score
    let bScore = b.score.isNaN ? -Float.infinity : b.score
    if aScore != bScore { return aScore > bScore }
    if a.score.isNaN != b.score.isNaN { return b.score.isNaN }
    return a.index < b.index
}

/// A bounded heap keeping the best `capacity` documents seen; its root is the worst one kept.
struct TopKHeap {
    private(set) var items: [ScoredDocument] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    /// Offers a document; O(log k).
    mutating func offer(_ candidate: ScoredDocument) {
        guard capacity > 0 else { return }
        if items.count < capacity {
            items.append(candidate)
            siftUp(items.count - 1)
        } else if ranksBefore(candidate, items[0]) {
            items[0] = candidate
            siftDown(0)
        }
    }

    // The heap order puts the worst-ranked item at the root: parent ranks after (or equal to) its children.
    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard ranksBefore(items[parent], items[child]) else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { break }
            var worst = left
            let right = left + 1
            if right < items.count, ranksBefore(items[left], items[right]) { worst = right }
            guard ranksBefore(items[parent], items[worst]) else { break }
            items.swapAt(parent, worst)
            parent = worst
        }
    }
}

extension MaxSimKernel {
    /// The `k` best documents for one query, best first, selected while scoring: each thread keeps a bounded
    /// heap of its best `k`, so no full score array is built or sorted.
    ///
    /// Ties in score go to the lower document index; NaN scores rank last. The result is the same for any
    /// thread count.
    /// - Parameters:
    ///   - k: how many documents to return (≥ 0); fewer when there are fewer candidates.
    ///   - query: the query's tokens.
    ///   - documents: packed documents.
    ///   - candidates: restrict scoring to these document indices (e.g. the survivors of a filter); `nil`
    ///     scores every document. Repeated indices are scored once.
    /// - Returns: up to `k` documents with their scores, best first.
    /// - Throws: `MaxSimError` for a negative `k`, a candidate out of range, or a dimension mismatch.
    /// - Complexity: O(Lq × T × dimension + N log k) for T tokens in N scored documents.
    public func topK(
        _ k: Int,
        query: Multivector,
        documents: Multivectors,
        candidates: [Int]? = nil
    )
        throws(MaxSimError) -> [ScoredDocument]
    {
        guard k >= 0 else { throw MaxSimError(.invalidCount, argument: "k", "must not be negative; got \(k)") }
        try Self.checkDimensions(query: query.dimension, documents: documents.dimension, argument: "query")
        var ids: [Int]?
        if let candidates {
            for (index, candidate) in candidates.enumerated() where candidate < 0 || candidate >= documents.count {
                throw MaxSimError(
                    .indexOutOfRange,
                    argument: "candidates",
                    index: index,
                    "document \(candidate) is outside 0..<\(documents.count)"
                )
            }
            ids = Array(Set(candidates)).sorted()
        }
        let count = ids?.count ?? documents.count
        guard k > 0, count > 0 else { return [] }
        let block = PackedQueryBlock(
            source: query.elements,
            dimension: query.dimension,
            ranges: [0..<query.tokenCount],
            integer: usesIntegerKernel(for: documents.elements)
        )
        let layout = DocumentLayout(documents)
        let tokenTotal = ids.map { $0.reduce(0) { $0 + layout.tokenCount(of: $1) } } ?? documents.tokenCount
        let chunk = chunkSize(documentCount: count, tokenCount: tokenTotal)
        let chunkCount = (count + chunk - 1) / chunk
        let workerCount = min(threadCount, chunkCount)
        let scratchBytes = tsr_scratch_byte_count(Int32(documents.dimension), Int32(block.packedRowCount))
        let scratch = UnsafeMutableRawPointer.allocate(
            byteCount: (scratchBytes + chunk * 4) * workerCount,
            alignment: 64
        )
        defer { scratch.deallocate() }
        let scratchAddress = UInt(bitPattern: scratch)
        let heaps = Mutex([TopKHeap?](repeating: nil, count: workerCount))
        let idValues = ids ?? []
        let useIDs = ids != nil
        let isa = instructionSet.code
        block.withKernelView { queryView in
            layout.withKernelView { documentView in
                idValues.withUnsafeBufferPointer { idBuffer in
                    let pointers = TopKPointers(
                        query: queryView,
                        documents: documentView,
                        ids: useIDs ? UnsafeRawPointer(idBuffer.baseAddress!).assumingMemoryBound(to: Int64.self) : nil
                    )
                    parallelForEachChunk(chunkCount: chunkCount) { chunkIndex, worker in
                        let start = chunkIndex * chunk
                        let end = min(count, start + chunk)
                        let base =
                            UnsafeMutableRawPointer(bitPattern: scratchAddress)! + worker * (scratchBytes + chunk * 4)
                        let chunkScores = (base + scratchBytes).assumingMemoryBound(to: Float.self)
                        tsr_score_documents(
                            isa,
                            pointers.query,
                            pointers.documents,
                            pointers.ids.map { $0 + start },
                            Int64(start),
                            Int64(end - start),
                            chunkScores,
                            nil,
                            0,
                            base
                        )
                        heaps.withLock { heaps in
                            var heap = heaps[worker] ?? TopKHeap(capacity: k)
                            for position in 0..<(end - start) {
                                let index = pointers.ids.map { Int($0[start + position]) } ?? (start + position)
                                heap.offer(ScoredDocument(index: index, score: chunkScores[position]))
                            }
                            heaps[worker] = heap
                        }
                    }
                }
            }
        }
        var merged = heaps.withLock { $0.compactMap { $0 }.flatMap(\.items) }
        merged.sort(by: ranksBefore)
        return Array(merged.prefix(k))
    }
}

/// Raw pointers for the top-k workers; see ``SendablePointers`` for why this is safe.
struct TopKPointers: @unchecked Sendable {
    let query: UnsafePointer<tsr_query_block>
    let documents: UnsafePointer<tsr_documents>
    let ids: UnsafePointer<Int64>?
}
