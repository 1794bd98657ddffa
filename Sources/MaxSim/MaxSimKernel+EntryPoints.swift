extension MaxSimKernel {
    /// Scores one query against every document of a packed set.
    /// - Parameters:
    ///   - query: the query's tokens `[Lq, dimension]`.
    ///   - documents: packed documents.
    ///   - withArgmax: also return each query token's matched document token.
    /// - Returns: one score per document, in document order.
    /// - Throws: `MaxSimError` when the dimensions differ.
    /// - Complexity: O(Lq × T × dimension) for T document tokens, spread over ``threadCount`` threads.
    public func scores(
        query: Multivector,
        documents: Multivectors,
        withArgmax: Bool = false
    ) throws(MaxSimError)
        -> MaxSimResult
    {
        try Self.checkDimensions(query: query.dimension, documents: documents.dimension, argument: "query")
        let block = PackedQueryBlock(
            source: query.elements,
            dimension: query.dimension,
            ranges: [0..<query.tokenCount],
            integer: usesIntegerKernel(for: documents.elements)
        )
        let (scores, argmax) = run(block: block, documents: DocumentLayout(documents), ids: nil, withArgmax: withArgmax)
        return MaxSimResult(
            scores: scores,
            matches: withArgmax ? Self.matches(argmax, stride: query.tokenCount, count: documents.count) : nil
        )
    }

    /// Scores a list of (query, document) pairs over packed queries and packed documents.
    ///
    /// Pairs are grouped by query internally, so each query is packed once however many pairs name it.
    /// - Parameters:
    ///   - queries: packed queries.
    ///   - documents: packed documents.
    ///   - pairs: the pairs to score, in any order, repeats allowed.
    ///   - withArgmax: also return, for each pair, each of its query's tokens' matched document token.
    /// - Returns: one score per pair, in pair order.
    /// - Throws: `MaxSimError` naming `pairs` and the index of a pair out of range, or a dimension mismatch.
    public func scores(
        queries: Multivectors,
        documents: Multivectors,
        pairs: [MaxSimPair],
        withArgmax: Bool = false
    ) throws(MaxSimError) -> MaxSimResult {
        try Self.checkDimensions(query: queries.dimension, documents: documents.dimension, argument: "queries")
        var byQuery = [Int: [Int]]()
        for (index, pair) in pairs.enumerated() {
            guard pair.query >= 0, pair.query < queries.count else {
                throw MaxSimError(
                    .indexOutOfRange,
                    argument: "pairs",
                    index: index,
                    "query \(pair.query) is outside 0..<\(queries.count)"
                )
            }
            guard pair.document >= 0, pair.document < documents.count else {
                throw MaxSimError(
                    .indexOutOfRange,
                    argument: "pairs",
                    index: index,
                    "document \(pair.document) is outside 0..<\(documents.count)"
                )
            }
            byQuery[pair.query, default: []].append(index)
        }
        var scores = [Float](repeating: 0, count: pairs.count)
        var matchOffsets = [0]
        var matchIndices = [Int32]()
        if withArgmax {
            matchOffsets.reserveCapacity(pairs.count + 1)
            for pair in pairs {
                matchOffsets.append(matchOffsets[matchOffsets.count - 1] + queries.tokenRange(of: pair.query).count)
            }
            matchIndices = [Int32](repeating: -1, count: matchOffsets[matchOffsets.count - 1])
        }
        let layout = DocumentLayout(documents)
        let integer = usesIntegerKernel(for: documents.elements)
        for query in byQuery.keys.sorted() {
            let pairIndices = byQuery[query]!
            let block = PackedQueryBlock(
                source: queries.elements,
                dimension: queries.dimension,
                ranges: [queries.tokenRange(of: query)],
                integer: integer
            )
            let ids = pairIndices.map { pairs[$0].document }
            let result = run(block: block, documents: layout, ids: ids, withArgmax: withArgmax)
            let queryLength = block.realRowCount
            for (position, pairIndex) in pairIndices.enumerated() {
                scores[pairIndex] = result.scores[position]
                if withArgmax {
                    let start = matchOffsets[pairIndex]
                    for token in 0..<queryLength {
                        matchIndices[start + token] = result.argmax[position * queryLength + token]
                    }
                }
            }
        }
        return MaxSimResult(
            scores: scores,
            matches: withArgmax ? MatchedTokens(indices: matchIndices, offsets: matchOffsets) : nil
        )
    }

    /// Reranks each query's own candidates: queries `[B, Lq, dimension]` against candidates
    /// `[B, C, Ld, dimension]` (candidate item `b * C + c` belongs to query `b`).
    /// - Parameters:
    ///   - queries: B padded queries.
    ///   - candidates: B × C padded candidates, query-major.
    ///   - withArgmax: also return each query token's matched candidate token.
    /// - Returns: scores `[B, C]` (row-major); matches per (b, c) in the same order.
    /// - Throws: `MaxSimError` when `candidates.count` is not a multiple of `queries.count`, or dimensions differ.
    public func rerank(
        queries: PaddedMultivectors,
        candidates: PaddedMultivectors,
        withArgmax: Bool = false
    )
        throws(MaxSimError) -> MaxSimResult
    {
        try Self.checkDimensions(query: queries.dimension, documents: candidates.dimension, argument: "queries")
        let batch = queries.count
        guard batch > 0 ? candidates.count % batch == 0 : candidates.count == 0 else {
            throw MaxSimError(
                .invalidShape,
                argument: "candidates",
                "\(candidates.count) candidates are not a whole number per query for \(batch) queries"
            )
        }
        let perQuery = batch > 0 ? candidates.count / batch : 0
        let layout = DocumentLayout(candidates)
        let integer = usesIntegerKernel(for: candidates.elements)
        var scores = [Float](repeating: 0, count: batch * perQuery)
        var matchOffsets = [0]
        var matchIndices = [Int32]()
        for b in 0..<batch {
            let start = b * queries.paddedLength
            let block = PackedQueryBlock(
                source: queries.elements,
                dimension: queries.dimension,
                ranges: [start..<(start + queries.lengths[b])],
                integer: integer
            )
            let result = run(
                block: block,
                documents: layout,
                ids: Array((b * perQuery)..<((b + 1) * perQuery)),
                withArgmax: withArgmax
            )
            scores.replaceSubrange((b * perQuery)..<((b + 1) * perQuery), with: result.scores)
            if withArgmax {
                matchIndices.append(contentsOf: result.argmax)
                for _ in 0..<perQuery { matchOffsets.append(matchOffsets[matchOffsets.count - 1] + queries.lengths[b]) }
            }
        }
        return MaxSimResult(
            scores: scores,
            matches: withArgmax ? MatchedTokens(indices: matchIndices, offsets: matchOffsets) : nil
        )
    }

    /// Scores every query against every document: `[B, Lq, dimension] × [C, Ld, dimension] → [B, C]`.
    ///
    /// Queries are packed together into blocks of up to ``allPairsBlockRowCount`` token rows, so each document
    /// tile is loaded once per block rather than once per query.
    /// - Parameters:
    ///   - queries: B padded queries.
    ///   - documents: C padded documents.
    ///   - withArgmax: also return matches per (b, c).
    /// - Returns: scores `[B, C]` (row-major).
    /// - Throws: `MaxSimError` when dimensions differ.
    public func allPairs(
        queries: PaddedMultivectors,
        documents: PaddedMultivectors,
        withArgmax: Bool = false
    )
        throws(MaxSimError) -> MaxSimResult
    {
        try Self.checkDimensions(query: queries.dimension, documents: documents.dimension, argument: "queries")
        let ranges = (0..<queries.count).map { b in
            (b * queries.paddedLength)..<(b * queries.paddedLength + queries.lengths[b])
        }
        return try allPairs(
            source: queries.elements,
            dimension: queries.dimension,
            queryRanges: ranges,
            documents: DocumentLayout(documents),
            withArgmax: withArgmax
        )
    }

    /// Scores every packed query against every packed document: `[B, C]` row-major.
    /// - Parameters:
    ///   - queries: packed queries.
    ///   - documents: packed documents.
    ///   - withArgmax: also return matches per (b, c).
    /// - Returns: scores `[B, C]`.
    /// - Throws: `MaxSimError` when dimensions differ.
    public func allPairs(
        queries: Multivectors,
        documents: Multivectors,
        withArgmax: Bool = false
    )
        throws(MaxSimError) -> MaxSimResult
    {
        try Self.checkDimensions(query: queries.dimension, documents: documents.dimension, argument: "queries")
        return try allPairs(
            source: queries.elements,
            dimension: queries.dimension,
            queryRanges: (0..<queries.count).map { queries.tokenRange(of: $0) },
            documents: DocumentLayout(documents),
            withArgmax: withArgmax
        )
    }

    /// Query token rows packed into one block for the all-pairs form. 512 rows × 128 dimensions of Float is
    /// 256 KiB, half of a Zen 3 core's L2.
    public static let allPairsBlockRowCount = 512

    private func allPairs(
        source: TokenElements,
        dimension: Int,
        queryRanges: [Range<Int>],
        documents: DocumentLayout,
        withArgmax: Bool
    ) throws(MaxSimError) -> MaxSimResult {
        let batch = queryRanges.count
        let columns = documents.count
        var scores = [Float](repeating: 0, count: batch * columns)
        var matchIndices = [Int32]()
        var matchOffsets = [0]
        if withArgmax {
            for b in 0..<batch {
                for _ in 0..<columns {
                    matchOffsets.append(matchOffsets[matchOffsets.count - 1] + queryRanges[b].count)
                }
            }
            matchIndices = [Int32](repeating: -1, count: matchOffsets[matchOffsets.count - 1])
        }
        let integer = usesIntegerKernel(for: documents.elements)
        var first = 0
        while first < batch {
            // Grow the block while it stays within the row budget (always at least one query).
            var last = first + 1
            var rows = queryRanges[first].count
            while last < batch, rows + queryRanges[last].count <= Self.allPairsBlockRowCount {
                rows += queryRanges[last].count
                last += 1
            }
            let block = PackedQueryBlock(
                source: source,
                dimension: dimension,
                ranges: Array(queryRanges[first..<last]),
                integer: integer
            )
            let result = run(block: block, documents: documents, ids: nil, withArgmax: withArgmax)
            let blockQueries = last - first
            for c in 0..<columns {
                for q in 0..<blockQueries {
                    scores[(first + q) * columns + c] = result.scores[c * blockQueries + q]
                }
            }
            if withArgmax {
                let stride = block.realRowCount
                for c in 0..<columns {
                    for q in 0..<blockQueries {
                        let segment = Int(block.segmentOffsets[q])..<Int(block.segmentOffsets[q + 1])
                        let target = matchOffsets[(first + q) * columns + c]
                        for (position, row) in segment.enumerated() {
                            matchIndices[target + position] = result.argmax[c * stride + row]
                        }
                    }
                }
            }
            first = last
        }
        return MaxSimResult(
            scores: scores,
            matches: withArgmax ? MatchedTokens(indices: matchIndices, offsets: matchOffsets) : nil
        )
    }
}
