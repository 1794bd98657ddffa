import CBLAS
import CMaxSimKernels
import Foundation
import Synchronization
import TesseraPlatform

/// Documents added after an index was built: their tokens encoded against the index's centroids and codec,
/// grouped by cell like the index's own. Documents are numbered after the index's, from
/// ``CompressedIndex/documentCount``.
///
/// A value: appending copies only the cells it changes when another holder shares them.
public struct DeltaSegment: Sendable {
    /// The first document number of the segment (the base index's document count).
    public let firstDocument: Int
    /// Documents in the segment.
    public private(set) var documentCount = 0
    /// Tokens in the segment.
    public private(set) var tokenCount = 0
    var cellCodes: [[UInt8]]
    var cellDocuments: [[UInt32]]

    /// An empty segment for an index.
    /// - Parameter index: The base index.
    public init(index: CompressedIndex) {
        firstDocument = index.documentCount
        cellCodes = Array(repeating: [], count: index.centroidCount)
        cellDocuments = Array(repeating: [], count: index.centroidCount)
    }

    /// The document numbers ``append(_:tokenCounts:index:)`` gives next.
    public var endDocument: Int { firstDocument + documentCount }

    /// Encodes documents against the index's centroids and codec and adds them.
    /// - Parameters:
    ///   - values: Their token vectors, `[tokens, dimension]`, row-major, documents back to back.
    ///   - tokenCounts: Tokens per document.
    ///   - index: The base index (its centroids and codec).
    /// - Returns: The new documents' numbers.
    /// - Complexity: O(tokens × centroids × dimension), through BLAS.
    @discardableResult
    public mutating func append(_ values: [Float], tokenCounts: [Int], index: CompressedIndex) -> Range<Int> {
        precondition(values.count == tokenCounts.reduce(0, +) * index.dimension, "values do not match tokenCounts")
        let first = endDocument
        let encoded = CompressedIndex.encode(
            values,
            dimension: index.dimension,
            centroids: index.centroids,
            codec: index.codec
        )
        let bytesPerToken = index.codec.bytesPerToken
        var token = 0
        for (offset, count) in tokenCounts.enumerated() {
            for _ in 0..<count {
                let cell = Int(encoded.cells[token])
                cellCodes[cell].append(
                    contentsOf: encoded.codes[(token * bytesPerToken)..<((token + 1) * bytesPerToken)]
                )
                cellDocuments[cell].append(UInt32(first + offset))
                token += 1
            }
        }
        documentCount += tokenCounts.count
        tokenCount += token
        return first..<endDocument
    }
}

/// Search settings of the compressed index.
public struct CompressedSearchParameters: Sendable, Equatable, Codable {
    /// Cells probed per query token (`nprobe`).
    public var probeCount: Int
    /// A query token that finds none of a document's tokens in its probed cells is given the score of the
    /// centroid at this rank (0-based, by the query token's centroid scores): by default the best cell it did
    /// not probe, the most a token of that document outside the probed cells could score before its residual.
    public var imputationRank: Int?
    /// How many documents, best first, the first stage returns (to an exact rerank, or cut to `limit`).
    public var candidateCount: Int
    /// Choose cells (and imputed scores) in this many dimensions: query tokens and centroids projected onto
    /// the centroids' principal directions (``CompressedIndex/probeProjection(dimension:)``); the scores of
    /// probed cells stay exact. `nil` (or the full dimension) for no projection.
    public var probeDimension: Int?

    /// Creates parameters.
    /// - Parameters:
    ///   - probeCount: Cells per query token.
    ///   - imputationRank: The rank of the centroid whose score is imputed; `nil` for `probeCount`.
    ///   - candidateCount: Documents returned.
    ///   - probeDimension: Dimensions in which cells are chosen; `nil` for all.
    public init(probeCount: Int, imputationRank: Int? = nil, candidateCount: Int, probeDimension: Int? = nil) {
        self.probeCount = probeCount
        self.imputationRank = imputationRank
        self.candidateCount = candidateCount
        self.probeDimension = probeDimension
    }

    /// The defaults for a result size: 8 cells per query token up to `limit` 100, 16 up to 1,000, 32 beyond;
    /// `max(limit, 100)` candidates (the rerank's input). On SciFact and Cranfield, nprobe 8 already gives
    /// the Recall@100 of nprobe 16–32 at half their latency (see the README).
    /// - Parameter limit: How many results the caller wants.
    /// - Returns: The parameters.
    public static func defaults(limit: Int) -> CompressedSearchParameters {
        let probes = limit <= 100 ? 8 : (limit <= 1000 ? 16 : 32)
        return CompressedSearchParameters(probeCount: probes, candidateCount: max(limit, 100))
    }
}

/// One document found by the compressed index.
public struct CompressedHit: Sendable, Equatable {
    /// The document number (the base index's, or a delta segment's).
    public var document: Int
    /// The approximate MaxSim score.
    public var score: Float
}

extension CompressedIndex {
    /// Scores documents against a query without decompressing their residuals (WARP-style).
    ///
    /// 1. Centroid scores: `Q · Cᵀ` by `sgemm`; each query token probes its ``CompressedSearchParameters/probeCount``
    ///    best cells.
    /// 2. For every token in a probed cell: `q·centroid + Σ_b table[b][code[b]]`, the lookup table holding each
    ///    code byte's contribution `Σ q[d]·weight[d][bucket]`; per document, the best such score for the query
    ///    token.
    /// 3. A query token that found nothing of a document gets an imputed score (see
    ///    ``CompressedSearchParameters/imputationRank``); a document's score is the sum over query tokens.
    /// 4. The best ``CompressedSearchParameters/candidateCount`` documents, best first (ties to the lower
    ///    document number).
    /// - Parameters:
    ///   - query: Query token vectors, `[queryTokenCount, dimension]`, row-major.
    ///   - queryTokenCount: The query's tokens.
    ///   - parameters: Probes, imputation, candidates.
    ///   - allowed: A bitmap over documents `0..<(delta?.endDocument ?? documentCount)` (bit `d % 64` of word
    ///     `d / 64`); documents whose bit is clear are never scored. Deleted and filtered-out documents go here.
    ///   - delta: Documents added since the build.
    ///   - threadCount: Threads; query tokens are split between them.
    /// - Returns: Up to `candidateCount` documents, best first.
    /// - Complexity: O(Lq·K·dim) for the centroid scores plus O(probed tokens × code bytes).
    public func search(
        query: [Float],
        queryTokenCount: Int,
        parameters: CompressedSearchParameters,
        allowed: [UInt64],
        delta: DeltaSegment? = nil,
        threadCount: Int = 1
    ) -> [CompressedHit] {
        timedSearch(
            query: query,
            queryTokenCount: queryTokenCount,
            parameters: parameters,
            allowed: allowed,
            delta: delta,
            threadCount: threadCount
        ).hits
    }

    /// ``search(query:queryTokenCount:parameters:allowed:delta:threadCount:)``, with the time of each stage.
    /// - Parameters:
    ///   - query: Query token vectors, `[queryTokenCount, dimension]`, row-major.
    ///   - queryTokenCount: The query's tokens.
    ///   - parameters: Probes, imputation, candidates.
    ///   - allowed: The documents that may be scored (see `search`).
    ///   - delta: Documents added since the build.
    ///   - threadCount: Threads.
    /// - Returns: The hits, best first, and the stage timings.
    public func timedSearch(
        query: [Float],
        queryTokenCount: Int,
        parameters: CompressedSearchParameters,
        allowed: [UInt64],
        delta: DeltaSegment? = nil,
        threadCount: Int = 1
    ) -> (hits: [CompressedHit], timings: CompressedSearchTimings) {
        let clock = ContinuousClock()
        let started = clock.now
        var timings = CompressedSearchTimings()
        precondition(query.count == queryTokenCount * dimension, "query has \(query.count) values")
        let totalDocuments = delta?.endDocument ?? documentCount
        precondition(allowed.count * 64 >= totalDocuments, "allowed bitmap too short")
        guard queryTokenCount > 0, parameters.candidateCount > 0, centroidCount > 0 else { return ([], timings) }
        let probeCount = max(1, min(parameters.probeCount, centroidCount))
        let imputationRank = min(max(parameters.imputationRank ?? probeCount, 0), centroidCount - 1)

        // 1. Centroid scores [Lq, K]: exact, or in the projected space when asked.
        let projection = parameters.probeDimension.flatMap { $0 < dimension ? probeProjection(dimension: $0) : nil }
        var centroidScoreMatrix = [Float](repeating: 0, count: queryTokenCount * centroidCount)
        if let projection {
            let projected = projection.project(query, rowCount: queryTokenCount, inputDimension: dimension)
            GEMM.multiplyTransposed(
                projected,
                projection.centroids,
                rows: queryTokenCount,
                columns: centroidCount,
                depth: projection.dimension,
                into: &centroidScoreMatrix
            )
        } else {
            GEMM.multiplyTransposed(
                query,
                centroids,
                rows: queryTokenCount,
                columns: centroidCount,
                depth: dimension,
                into: &centroidScoreMatrix
            )
        }
        // Per query token: probed cells (best first) and the imputed score.
        var probeLists = [[Int]](repeating: [], count: queryTokenCount)
        var imputedScores = [Float](repeating: 0, count: queryTokenCount)
        let selectCount = max(probeCount, imputationRank + 1)
        for token in 0..<queryTokenCount {
            let row = centroidScoreMatrix[(token * centroidCount)..<((token + 1) * centroidCount)]
            let best = topIndices(row, count: selectCount)
            probeLists[token] = Array(best.prefix(probeCount))
            imputedScores[token] = row[row.startIndex + best[min(imputationRank, best.count - 1)]]
        }
        if projection != nil {
            // The probed cells' base scores, exact.
            query.withUnsafeBufferPointer { q in
                centroids.withUnsafeBufferPointer { c in
                    for token in 0..<queryTokenCount {
                        for cell in probeLists[token] {
                            centroidScoreMatrix[token * centroidCount + cell] = cblas_sdot(
                                Int32(dimension),
                                q.baseAddress! + token * dimension,
                                1,
                                c.baseAddress! + cell * dimension,
                                1
                            )
                        }
                    }
                }
            }
        }

        let probed = clock.now
        timings.centroidSeconds = seconds(probed - started)

        // 2–3. Per thread, a share of the query tokens; per document, Σ over found tokens of (best − imputed).
        let threads = max(1, min(threadCount, queryTokenCount))
        let results = Mutex<[Int: (total: [Float], seen: [Bool])]>([:])
        let probes = probeLists
        let imputed = imputedScores
        let centroidScores = centroidScoreMatrix
        // A fixed split (worker t takes tokens t, t + threads, …) and a merge in worker order, so that the sums,
        // and the scores, are the same bits on every run.
        ParallelFor.eachWorker(workerCount: threads) { thread in
            var total = [Float](repeating: 0, count: totalDocuments)
            var seen = [Bool](repeating: false, count: totalDocuments)
            var best = [Float](repeating: -.infinity, count: totalDocuments)
            var touched = [UInt32](repeating: 0, count: totalDocuments)
            var table = [Float](repeating: 0, count: codec.bytesPerToken * 256)
            var token = thread
            while token < queryTokenCount {
                let queryRow = Array(query[(token * dimension)..<((token + 1) * dimension)])
                codec.lookupTable(query: queryRow.span, into: &table)
                var touchedCount: Int64 = 0
                allowed.withUnsafeBufferPointer { allowedBits in
                    best.withUnsafeMutableBufferPointer { bestScores in
                        touched.withUnsafeMutableBufferPointer { touchedDocuments in
                            table.withUnsafeBufferPointer { lookup in
                                for cell in probes[token] {
                                    let base = centroidScores[token * centroidCount + cell]
                                    let start = Int(cellOffsets[cell])
                                    let count = Int(cellOffsets[cell + 1]) - start
                                    if count > 0 {
                                        tsr_warp_score_cell(
                                            codes + start * codec.bytesPerToken,
                                            Int64(codec.bytesPerToken),
                                            tokenDocuments + start,
                                            Int64(count),
                                            lookup.baseAddress,
                                            base,
                                            allowedBits.baseAddress,
                                            bestScores.baseAddress,
                                            touchedDocuments.baseAddress,
                                            &touchedCount
                                        )
                                    }
                                    if let delta, !delta.cellDocuments[cell].isEmpty {
                                        delta.cellCodes[cell].withUnsafeBufferPointer { deltaCodes in
                                            delta.cellDocuments[cell].withUnsafeBufferPointer { deltaDocuments in
                                                tsr_warp_score_cell(
                                                    deltaCodes.baseAddress,
                                                    Int64(codec.bytesPerToken),
                                                    deltaDocuments.baseAddress,
                                                    Int64(deltaDocuments.count),
                                                    lookup.baseAddress,
                                                    base,
                                                    allowedBits.baseAddress,
                                                    bestScores.baseAddress,
                                                    touchedDocuments.baseAddress,
                                                    &touchedCount
                                                )
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                for position in 0..<Int(touchedCount) {
                    let document = Int(touched[position])
                    total[document] += best[document] - imputed[token]
                    seen[document] = true
                    best[document] = -.infinity
                }
                token += threads
            }
            results.withLock { $0[thread] = (total, seen) }
        }
        let partials = results.withLock { $0 }
        let totals = (0..<threads).map { partials[$0]!.total }
        let seens = (0..<threads).map { partials[$0]!.seen }

        let scoredAt = clock.now
        timings.scoringSeconds = seconds(scoredAt - probed)

        // 4. Sum, then select.
        let imputedSum = imputed.reduce(0, +)
        var candidates: [CompressedHit] = []
        for document in 0..<totalDocuments {
            var found = false
            var score = imputedSum
            for thread in 0..<threads where seens[thread][document] {
                found = true
                score += totals[thread][document]
            }
            if found { candidates.append(CompressedHit(document: document, score: score)) }
        }
        let hits = selectBest(candidates, count: parameters.candidateCount)
        timings.selectionSeconds = seconds(clock.now - scoredAt)
        return (hits, timings)
    }
}

/// Where the time of one compressed search went.
public struct CompressedSearchTimings: Sendable, Equatable, Codable {
    /// Centroid scores (`sgemm`) and the choice of probed cells and imputed scores.
    public var centroidSeconds: Double = 0
    /// Lookup tables and the scoring of every token of the probed cells, on all threads.
    public var scoringSeconds: Double = 0
    /// Summing per document and selecting the best.
    public var selectionSeconds: Double = 0

    /// Zero timings.
    public init() {}
}

private func seconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
}

/// The indices of the `count` largest values, largest first (ties to the lower index).
func topIndices(_ values: ArraySlice<Float>, count: Int) -> [Int] {
    let count = min(count, values.count)
    guard count > 0 else { return [] }
    // A sorted buffer of the best so far; `count` is small (tens), so insertion beats a heap.
    var best: [(value: Float, index: Int)] = []
    best.reserveCapacity(count + 1)
    for (offset, value) in values.enumerated() {
        if best.count == count, !(value > best[count - 1].value) { continue }
        var position = best.count
        while position > 0, value > best[position - 1].value { position -= 1 }
        best.insert((value, offset), at: position)
        if best.count > count { best.removeLast() }
    }
    return best.map(\.index)
}

/// The `count` best hits, best first (ties to the lower document number).
func selectBest(_ hits: [CompressedHit], count: Int) -> [CompressedHit] {
    if hits.count <= count {
        return hits.sorted { $0.score > $1.score || ($0.score == $1.score && $0.document < $1.document) }
    }
    // Partial selection: keep a min-heap of size `count`.
    var heap: [CompressedHit] = []
    heap.reserveCapacity(count)
    func worse(_ a: CompressedHit, _ b: CompressedHit) -> Bool {
        a.score < b.score || (a.score == b.score && a.document > b.document)
    }
    func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var child = left
            if left + 1 < heap.count, worse(heap[left + 1], heap[left]) { child = left + 1 }
            guard worse(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            parent = child
        }
    }
    for hit in hits {
        if heap.count < count {
            heap.append(hit)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard worse(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else if worse(heap[0], hit) {
            heap[0] = hit
            siftDown(0)
        }
    }
    return heap.sorted { $0.score > $1.score || ($0.score == $1.score && $0.document < $1.document) }
}
