import Foundation
import MaxSim
import TesseraTestSupport
import Testing

@testable import TesseraIndex

/// A synthetic corpus of unit token vectors with planted answers: every token of query `q` has a near-copy in
/// each of the ten documents `answers[q]`: an exact copy in the first, then copies with noise growing from the
/// second answer to the last, so that the first answer and the exact top-10 stand well clear of the other
/// documents (random tokens) while the order inside the top-10 is close.
private struct SyntheticCorpus {
    let dimension: Int
    var tokenCounts: [Int] = []
    var values: [Float] = []
    var queries: [[Float]] = []
    var answers: [[Int]] = []
    let queryTokenCount = 4

    init(documentCount: Int, dimension: Int, seed: UInt64) {
        self.dimension = dimension
        var random = SeededRandom(seed: seed)
        func unit(_ raw: [Float]) -> [Float] {
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return raw.map { $0 / max(norm, 1e-12) }
        }
        for _ in 0..<documentCount {
            let count = random.int(in: 4...12)
            tokenCounts.append(count)
            for _ in 0..<count { values += unit(random.signedUnits(dimension)) }
        }
        let offsets = tokenCounts.reduce(into: [0]) { $0.append($0.last! + $1) }
        let queryCount = 6
        precondition(documentCount >= queryCount * 60, "too few documents for the planted answers")
        for query in 0..<queryCount {
            var tokens: [Float] = []
            for _ in 0..<queryTokenCount { tokens += unit(random.signedUnits(dimension)) }
            let planted = (0..<10).map { query * 60 + $0 * 6 }
            for (rank, document) in planted.enumerated() {
                let noise: Float = rank == 0 ? 0 : 0.1 + 0.033 * Float(rank - 1)
                for i in 0..<queryTokenCount {
                    let source = tokens[(i * dimension)..<((i + 1) * dimension)]
                    let copy = unit(zip(source, random.signedUnits(dimension)).map { $0 + noise * $1 })
                    let target = (offsets[document] + i) * dimension
                    values.replaceSubrange(target..<(target + dimension), with: copy)
                }
            }
            queries.append(tokens)
            answers.append(planted)
        }
    }

    var documentCount: Int { tokenCounts.count }

    var source: TokenSource {
        let offsets = tokenCounts.reduce(into: [0]) { $0.append($0.last! + $1) }
        let values = values
        let dimension = dimension
        return TokenSource(dimension: dimension, documentTokenCounts: tokenCounts) { documents in
            Array(values[(offsets[documents.lowerBound] * dimension)..<(offsets[documents.upperBound] * dimension)])
        }
    }

    var keys: [[UInt8]] { (0..<documentCount).map { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8), 7] } }

    /// Exact MaxSim of a query against every document, in Float64.
    func exactScores(_ query: [Float]) -> [Double] {
        var scores: [Double] = []
        var token = 0
        for count in tokenCounts {
            var total = 0.0
            for i in 0..<queryTokenCount {
                var best = -Double.infinity
                for j in token..<(token + count) {
                    var dot = 0.0
                    for d in 0..<dimension {
                        dot += Double(query[i * dimension + d]) * Double(values[j * dimension + d])
                    }
                    best = max(best, dot)
                }
                total += best
            }
            scores.append(total)
            token += count
        }
        return scores
    }
}

private func allAllowed(_ count: Int) -> [UInt64] {
    var bits = [UInt64](repeating: 0, count: (count + 63) / 64)
    for document in 0..<count { bits[document >> 6] |= 1 << UInt64(document & 63) }
    return bits
}

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("tessera-index-\(UUID().uuidString)-\(name)").path
}

@Suite("Compressed index")
struct CompressedIndexTests {
    private static let corpus = SyntheticCorpus(documentCount: 400, dimension: 32, seed: 42)

    private static func buildIndex(bits: Int = 4, centroids: Int = 32) throws -> (CompressedIndex, IndexContents) {
        let contents = try CompressedIndex.build(
            source: corpus.source,
            documentKeys: corpus.keys,
            options: CompressedIndexOptions(centroidCount: centroids, bitCount: bits, chunkTokenCount: 500)
        )
        let path = temporaryPath("index.tidx")
        try contents.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return (try CompressedIndex(path: path), contents)
    }

    @Test("with every cell probed, a document's score is MaxSim over its reconstructed tokens")
    func lookupScoringMatchesReconstruction() throws {
        let (index, _) = try Self.buildIndex(bits: 2)
        // Reconstruct every token: centroid + decoded residual, grouped back by document.
        var reconstructed = [[Float]](repeating: [], count: index.documentCount)
        for cell in 0..<index.centroidCount {
            for token in Int(index.cellOffsets[cell])..<Int(index.cellOffsets[cell + 1]) {
                let code = Array(
                    UnsafeBufferPointer(
                        start: index.codes + token * index.codec.bytesPerToken,
                        count: index.codec.bytesPerToken
                    )
                )
                let residual = index.codec.decode(code)
                let document = Int(index.tokenDocuments[token])
                for d in 0..<index.dimension {
                    reconstructed[document].append(index.centroids[cell * index.dimension + d] + residual[d])
                }
            }
        }
        let query = Self.corpus.queries[0]
        let hits = index.search(
            query: query,
            queryTokenCount: 4,
            parameters: CompressedSearchParameters(
                probeCount: index.centroidCount,
                candidateCount: index.documentCount
            ),
            allowed: allAllowed(index.documentCount)
        )
        #expect(hits.count == index.documentCount)
        let dimension = index.dimension
        for hit in hits {
            let tokens = reconstructed[hit.document]
            var expected: Float = 0
            for i in 0..<4 {
                var best = -Float.infinity
                for j in 0..<(tokens.count / dimension) {
                    var dot: Float = 0
                    for d in 0..<dimension { dot += query[i * dimension + d] * tokens[j * dimension + d] }
                    best = max(best, dot)
                }
                expected += best
            }
            #expect(abs(hit.score - expected) <= 1e-4 * max(1, abs(expected)), "document \(hit.document)")
        }
    }

    @Test("generous parameters return exactly the exact top-10")
    func generousParametersFindExactTopTen() throws {
        let (index, _) = try Self.buildIndex()
        for (number, query) in Self.corpus.queries.enumerated() {
            let exact = Self.corpus.exactScores(query)
            let exactTop = Array(
                exact.indices.sorted { exact[$0] > exact[$1] || (exact[$0] == exact[$1] && $0 < $1) }.prefix(10)
            )
            #expect(Set(exactTop) == Set(Self.corpus.answers[number]), "the planted answers are the exact top-10")
            let hits = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(probeCount: index.centroidCount, candidateCount: 10),
                allowed: allAllowed(index.documentCount)
            )
            #expect(Set(hits.map(\.document)) == Set(exactTop))
            #expect(hits.first?.document == exactTop.first)
        }
    }

    @Test("a narrow probe still finds the planted document first; disallowed documents never appear")
    func narrowProbeAndFilter() throws {
        let (index, _) = try Self.buildIndex()
        for (number, query) in Self.corpus.queries.enumerated() {
            let planted = Self.corpus.answers[number][0]
            let hits = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(probeCount: 2, candidateCount: 10),
                allowed: allAllowed(index.documentCount),
                threadCount: 2
            )
            #expect(hits.first?.document == planted)
            var allowed = allAllowed(index.documentCount)
            allowed[planted >> 6] &= ~(1 << UInt64(planted & 63))
            let filtered = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(probeCount: 2, candidateCount: 50),
                allowed: allowed
            )
            #expect(!filtered.contains { $0.document == planted })
            #expect(!filtered.isEmpty)
        }
    }

    @Test("the file round-trips: sections, keys, report and search results")
    func persistenceRoundTrip() throws {
        let (index, contents) = try Self.buildIndex()
        #expect(index.documentCount == contents.documentCount)
        #expect(index.tokenCount == contents.tokenCount)
        #expect(index.centroids == contents.centroids)
        #expect(index.codec == contents.codec)
        #expect(index.report == contents.report)
        for document in [0, 1, 200, 399] {
            #expect(index.key(ofDocument: document) == contents.documentKeys[document])
            #expect(index.tokenCount(ofDocument: document) == Self.corpus.tokenCounts[document])
        }
        #expect((0..<index.tokenCount).allSatisfy { index.tokenDocuments[$0] == contents.tokenDocuments[$0] })
        #expect(index.bytesPerToken > 0)
        // 4-bit codes of 32 dimensions are 16 bytes, plus a 4-byte document number.
        #expect(index.bytesPerToken < 32 * 4 / 4)
    }

    @Test("a torn file (cut at random offsets, or a flipped byte) is reported as corrupted with an offset")
    func tornFileDetected() throws {
        let (_, contents) = try Self.buildIndex()
        let path = temporaryPath("torn.tidx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try contents.write(to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        var random = SeededRandom(seed: 9)
        var cuts = [0, 8, 100, 255, 256, whole.count - 1]
        for _ in 0..<20 { cuts.append(random.int(in: 1...(whole.count - 1))) }
        for cut in cuts {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: IndexError.self, "cut at \(cut)") { try CompressedIndex(path: path) }
            #expect(error?.code == .corrupted, "cut at \(cut): \(String(describing: error))")
            #expect(error?.offset != nil)
        }
        var flipped = whole
        flipped[whole.count / 2] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: IndexError.self) { try CompressedIndex(path: path) }
        #expect(error?.code == .corrupted)
        try Data("not an index at all, but long enough to have a header? no".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: IndexError.self) { try CompressedIndex(path: path) }
    }

    @Test("cells chosen in projected dimensions: orthonormal directions; probing every cell changes nothing")
    func probeProjection() throws {
        let (index, _) = try Self.buildIndex()
        let projection = try #require(index.probeProjection(dimension: 16))
        #expect(projection.dimension == 16)
        #expect(projection.retainedEnergy > 0.5 && projection.retainedEnergy <= 1.0001)
        for a in 0..<16 {
            for b in 0..<16 {
                var dot: Float = 0
                for d in 0..<index.dimension {
                    dot +=
                        projection.components[a * index.dimension + d] * projection.components[b * index.dimension + d]
                }
                #expect(abs(dot - (a == b ? 1 : 0)) < 1e-4, "components \(a), \(b)")
            }
        }
        #expect(index.probeProjection(dimension: index.dimension) == nil)
        #expect(index.probeProjection(dimension: 0) == nil)
        let all = allAllowed(index.documentCount)
        for (number, query) in Self.corpus.queries.enumerated() {
            let full = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(probeCount: index.centroidCount, candidateCount: 10),
                allowed: all
            )
            let projected = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(
                    probeCount: index.centroidCount,
                    candidateCount: 10,
                    probeDimension: 16
                ),
                allowed: all
            )
            #expect(projected.map(\.document) == full.map(\.document))
            for (a, b) in zip(projected, full) { #expect(abs(a.score - b.score) < 1e-3) }
            // A narrow probe in 16 dimensions still puts the planted document first.
            let narrow = index.search(
                query: query,
                queryTokenCount: 4,
                parameters: CompressedSearchParameters(probeCount: 4, candidateCount: 10, probeDimension: 16),
                allowed: all
            )
            #expect(narrow.first?.document == Self.corpus.answers[number][0])
        }
    }

    @Test("documents added after the build are searchable through a delta segment")
    func deltaSegment() throws {
        let (index, _) = try Self.buildIndex()
        var delta = DeltaSegment(index: index)
        // A new document identical to a new query's (random) tokens outscores everything.
        var random = SeededRandom(seed: 99)
        let query = (0..<4).flatMap { _ in
            let raw = random.signedUnits(index.dimension)
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return raw.map { $0 / norm }
        }
        let documents = delta.append(query, tokenCounts: [4], index: index)
        #expect(documents == index.documentCount..<(index.documentCount + 1))
        let hits = index.search(
            query: query,
            queryTokenCount: 4,
            parameters: CompressedSearchParameters(probeCount: 4, candidateCount: 5),
            allowed: allAllowed(index.documentCount + 1),
            delta: delta
        )
        #expect(hits.first?.document == index.documentCount)
        #expect(abs((hits.first?.score ?? 0) - 4) < 0.2)
        // Not allowed: gone.
        var allowed = allAllowed(index.documentCount + 1)
        allowed[index.documentCount >> 6] &= ~(1 << UInt64(index.documentCount & 63))
        let without = index.search(
            query: query,
            queryTokenCount: 4,
            parameters: CompressedSearchParameters(probeCount: 4, candidateCount: 5),
            allowed: allowed,
            delta: delta
        )
        #expect(!without.contains { $0.document == index.documentCount })
    }

    @Test("build arguments are checked")
    func buildErrors() throws {
        let corpus = Self.corpus
        let wrongKeys = #expect(throws: IndexError.self) {
            try CompressedIndex.build(source: corpus.source, documentKeys: [], options: CompressedIndexOptions())
        }
        #expect(wrongKeys?.field == "documentKeys")
        let empty = TokenSource(dimension: 4, documentTokenCounts: [0, 0]) { _ in [] }
        #expect(throws: IndexError.self) {
            try CompressedIndex.build(source: empty, documentKeys: [[1], [2]], options: CompressedIndexOptions())
        }
        #expect(CompressedIndexOptions.colbertCentroidCount(tokenCount: 1_242_251) == 16_384)
        #expect(CompressedIndexOptions.defaultCentroidCount(tokenCount: 1_242_251) == 4_096)
        #expect(CompressedIndexOptions.colbertCentroidCount(tokenCount: 10) == 10)
    }
}
