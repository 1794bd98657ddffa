import MaxSim
import TesseraTestSupport
import Testing

/// Every entry point against the Float64 reference over the grid of shapes and every element type.
@Suite("Parity with the Float64 reference")
struct ParityTests {
    static let dimensions = [1, 3, 8, 15, 16, 17, 64, 96, 128, 384, 768]
    static let queryLengths = [1, 5, 32, 33]
    static let documentLengths = [1, 7, 8, 9, 180, 1024]

    struct Case: CustomTestStringConvertible, Sendable {
        var elementType: TokenElementType
        var int8Mode: MaxSimKernel.Int8Mode
        var testDescription: String { "\(elementType) (\(int8Mode))" }
    }

    static let cases: [Case] = [
        Case(elementType: .float32, int8Mode: .integer),
        Case(elementType: .float16, int8Mode: .integer),
        Case(elementType: .bfloat16, int8Mode: .integer),
        Case(elementType: .int8, int8Mode: .integer),
        Case(elementType: .int8, int8Mode: .float),
    ]

    @Test("every entry point matches the reference over the shape grid", arguments: cases)
    func grid(_ testCase: Case) throws {
        let kernel = MaxSimKernel(threadCount: 2, int8Mode: testCase.int8Mode)
        var checked = 0
        for dimension in Self.dimensions {
            for queryLength in Self.queryLengths {
                for documentLength in Self.documentLengths {
                    let seed = UInt64(dimension * 1_000_000 + queryLength * 10_000 + documentLength)
                    try checkShape(
                        kernel: kernel,
                        elementType: testCase.elementType,
                        dimension: dimension,
                        queryLength: queryLength,
                        documentLength: documentLength,
                        seed: seed
                    )
                    checked += 1
                }
            }
        }
        #expect(checked == Self.dimensions.count * Self.queryLengths.count * Self.documentLengths.count)
    }

    /// Two queries (lengths Lq and ⌈Lq/2⌉) and three documents (lengths Ld, ⌊Ld/2⌋ + 1 and 0), every pair.
    func checkShape(
        kernel: MaxSimKernel,
        elementType: TokenElementType,
        dimension: Int,
        queryLength: Int,
        documentLength: Int,
        seed: UInt64
    ) throws {
        var random = SeededRandom(seed: seed)
        let documentLengths = [documentLength, documentLength / 2 + 1, 0]
        let queryLengths = [queryLength, (queryLength + 1) / 2]
        let documentRows = documentLengths.map { MaxSimTestData.rows($0, dimension: dimension, random: &random) }
        let queryRows = queryLengths.map {
            MaxSimTestData.rows($0, dimension: dimension, random: &random, zeroPhase: 3)
        }
        let documents = try Multivectors(float32: documentRows, dimension: dimension, elementType: elementType)
        let queries = try Multivectors(float32: queryRows, dimension: dimension)
        let context = "seed \(seed): \(elementType), dim \(dimension), Lq \(queryLength), Ld \(documentLength)"

        // Reference for every (query, document).
        var reference: [[MaxSimReference.Result]] = []
        for q in 0..<queries.count {
            let query = MaxSimTestData.effectiveQuery(queries.item(q), documents: elementType, kernel: kernel)
            reference.append(
                (0..<documents.count).map { MaxSimReference.score(query: query, document: documents.item($0)) }
            )
        }
        func expectClose(_ value: Float, _ q: Int, _ d: Int, _ entry: String) {
            let expected = reference[q][d]
            let bound = MaxSimTestData.tolerance(
                dimension: dimension,
                queryTokens: queryLengths[q],
                magnitude: expected.magnitude
            )
            #expect(
                abs(Double(value) - expected.score) <= bound,
                "\(entry) q\(q) d\(d): \(value) vs \(expected.score) (bound \(bound)); \(context)"
            )
        }
        func expectMatches(_ matches: ArraySlice<Int32>, _ q: Int, _ d: Int, _ entry: String) {
            let expected = reference[q][d]
            let bound = MaxSimTestData.tolerance(dimension: dimension, queryTokens: 0, magnitude: expected.magnitude)
            for (token, match) in matches.enumerated() {
                let (first, second) = expected.best[token]
                // Only where no other document token comes within the rounding bound can the argmax be exact.
                guard first - second > 2 * bound || documentLengths[d] <= 1 else { continue }
                #expect(
                    Int(match) == expected.argmax[token],
                    "\(entry) argmax q\(q) d\(d) token \(token): \(match) vs \(expected.argmax[token]); \(context)"
                )
            }
        }

        // One query against packed documents, with argmax.
        for q in 0..<queries.count {
            let result = try kernel.scores(query: queries.item(q), documents: documents, withArgmax: true)
            for d in 0..<documents.count {
                expectClose(result.scores[d], q, d, "scores")
                expectMatches(result.matches![d], q, d, "scores")
            }
        }
        // Packed pairs, in a scrambled order with a repeat.
        var pairs: [MaxSimPair] = []
        for d in 0..<documents.count { for q in 0..<queries.count { pairs.append(MaxSimPair(query: q, document: d)) } }
        pairs.append(MaxSimPair(query: 0, document: 0))
        pairs.shuffle(using: &random)
        let pairResult = try kernel.scores(queries: queries, documents: documents, pairs: pairs, withArgmax: true)
        for (index, pair) in pairs.enumerated() {
            expectClose(pairResult.scores[index], pair.query, pair.document, "pairs")
            expectMatches(pairResult.matches![index], pair.query, pair.document, "pairs")
        }
        // Padded forms.
        let paddedQueries = try Self.padded(queryRows, lengths: queryLengths, dimension: dimension, .float32)
        let paddedDocuments = try Self.padded(documentRows, lengths: documentLengths, dimension: dimension, elementType)
        let all = try kernel.allPairs(queries: paddedQueries, documents: paddedDocuments, withArgmax: true)
        for q in 0..<queries.count {
            for d in 0..<documents.count {
                expectClose(all.scores[q * documents.count + d], q, d, "allPairs")
                expectMatches(all.matches![q * documents.count + d], q, d, "allPairs")
            }
        }
        // Rerank: each query gets every document as its candidates (B × C with C = 3).
        let candidateRows = queryRows.indices.flatMap { _ in documentRows }
        let candidateLengths = queryRows.indices.flatMap { _ in documentLengths }
        let candidates = try Self.padded(candidateRows, lengths: candidateLengths, dimension: dimension, elementType)
        let reranked = try kernel.rerank(queries: paddedQueries, candidates: candidates, withArgmax: true)
        for q in 0..<queries.count {
            for d in 0..<documents.count {
                expectClose(reranked.scores[q * documents.count + d], q, d, "rerank")
                expectMatches(reranked.matches![q * documents.count + d], q, d, "rerank")
            }
        }
        // Fused top-k agrees with the scores of the same call path, best first, ties by index.
        for q in 0..<queries.count {
            let scores = try kernel.scores(query: queries.item(q), documents: documents).scores
            let expected = scores.enumerated().map { ScoredDocument(index: $0.offset, score: $0.element) }
                .sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
            let top = try kernel.topK(2, query: queries.item(q), documents: documents)
            #expect(top == Array(expected.prefix(2)), "topK q\(q); \(context)")
        }
    }

    static func padded(
        _ rows: [[Float]],
        lengths: [Int],
        dimension: Int,
        _ elementType: TokenElementType
    ) throws -> PaddedMultivectors {
        let paddedLength = max(1, lengths.max() ?? 0)
        var values = [Float](repeating: 0.5, count: rows.count * paddedLength * dimension)
        for (item, itemRows) in rows.enumerated() {
            for (index, value) in itemRows.enumerated() { values[item * paddedLength * dimension + index] = value }
        }
        return try PaddedMultivectors(
            elements: TokenElements.converting(values, dimension: dimension, to: elementType),
            lengths: lengths,
            paddedLength: paddedLength,
            dimension: dimension
        )
    }
}
