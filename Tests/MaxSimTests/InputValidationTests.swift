import MaxSim
import Testing

@Suite("Input checks")
struct InputValidationTests {
    let kernel = MaxSimKernel(threadCount: 1)

    func expectError(
        _ code: MaxSimError.Code,
        argument: String,
        index: Int? = nil,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("expected \(code) in \(argument)", sourceLocation: sourceLocation)
        } catch let error as MaxSimError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.argument == argument, "\(error)", sourceLocation: sourceLocation)
            #expect(error.index == index, "\(error)", sourceLocation: sourceLocation)
            #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("offsets that do not start at 0, decrease, overrun or end early are rejected with their index")
    func offsets() {
        let values = TokenElements.float32([Float](repeating: 1, count: 12))
        expectError(.invalidOffsets, argument: "offsets", index: 0) {
            _ = try Multivectors(elements: values, offsets: [1, 3], dimension: 4)
        }
        expectError(.invalidOffsets, argument: "offsets", index: 2) {
            _ = try Multivectors(elements: values, offsets: [0, 2, 1, 3], dimension: 4)
        }
        expectError(.invalidOffsets, argument: "offsets", index: 1) {
            _ = try Multivectors(elements: values, offsets: [0, 4, 3], dimension: 4)
        }
        expectError(.invalidOffsets, argument: "offsets", index: 1) {
            _ = try Multivectors(elements: values, offsets: [0, 2], dimension: 4)
        }
        expectError(.invalidOffsets, argument: "offsets") {
            _ = try Multivectors(elements: values, offsets: [], dimension: 4)
        }
    }

    @Test("shapes: values not a whole number of tokens, scales, dimension")
    func shapes() {
        expectError(.dimensionMismatch, argument: "elements") {
            _ = try Multivector([1, 2, 3], dimension: 2)
        }
        expectError(.dimensionMismatch, argument: "dimension") {
            _ = try Multivector([1, 2], dimension: 0)
        }
        expectError(.invalidShape, argument: "elements.scales") {
            _ = try Multivector(elements: .int8(values: [1, 2, 3, 4], scales: [1]), dimension: 2)
        }
        expectError(.dimensionMismatch, argument: "items", index: 1) {
            _ = try Multivectors(float32: [[1, 2], [1, 2, 3]], dimension: 2)
        }
    }

    @Test("padded lengths larger than the padding are rejected with their index")
    func paddedLengths() {
        expectError(.invalidLength, argument: "lengths", index: 1) {
            _ = try PaddedMultivectors(
                elements: .float32([Float](repeating: 0, count: 2 * 3 * 2)),
                lengths: [3, 4],
                paddedLength: 3,
                dimension: 2
            )
        }
        expectError(.invalidLength, argument: "lengths", index: 0) {
            _ = try PaddedMultivectors(
                elements: .float32([Float](repeating: 0, count: 2 * 3 * 2)),
                lengths: [-1, 1],
                paddedLength: 3,
                dimension: 2
            )
        }
        expectError(.invalidShape, argument: "elements") {
            _ = try PaddedMultivectors(elements: .float32([1, 2, 3, 4]), lengths: [1], paddedLength: 3, dimension: 2)
        }
    }

    @Test("dimension mismatch, pairs out of range, negative k, bad candidates")
    func entryPoints() throws {
        let query = try Multivector([1, 0, 0, 1], dimension: 2)
        let documents = try Multivectors(float32: [[1, 0], [0, 1, 1, 1]], dimension: 2)
        let wide = try Multivectors(float32: [[1, 0, 0]], dimension: 3)
        expectError(.dimensionMismatch, argument: "query") { _ = try kernel.scores(query: query, documents: wide) }
        let queries = try Multivectors([query], dimension: 2)
        expectError(.indexOutOfRange, argument: "pairs", index: 1) {
            _ = try kernel.scores(
                queries: queries,
                documents: documents,
                pairs: [MaxSimPair(query: 0, document: 1), MaxSimPair(query: 1, document: 0)]
            )
        }
        expectError(.indexOutOfRange, argument: "pairs", index: 0) {
            _ = try kernel.scores(queries: queries, documents: documents, pairs: [MaxSimPair(query: 0, document: 2)])
        }
        expectError(.indexOutOfRange, argument: "pairs", index: 0) {
            _ = try kernel.scores(queries: queries, documents: documents, pairs: [MaxSimPair(query: 0, document: -1)])
        }
        expectError(.invalidCount, argument: "k") { _ = try kernel.topK(-1, query: query, documents: documents) }
        expectError(.indexOutOfRange, argument: "candidates", index: 1) {
            _ = try kernel.topK(1, query: query, documents: documents, candidates: [0, 5])
        }
        let padded = try PaddedMultivectors(elements: .float32([1, 0]), lengths: [1], paddedLength: 1, dimension: 2)
        let twoQueries = try PaddedMultivectors(
            elements: .float32([1, 0, 0, 1]),
            lengths: [1, 1],
            paddedLength: 1,
            dimension: 2
        )
        let threeCandidates = try PaddedMultivectors(
            elements: .float32([1, 0, 0, 1, 1, 1]),
            lengths: [1, 1, 1],
            paddedLength: 1,
            dimension: 2
        )
        expectError(.invalidShape, argument: "candidates") {
            _ = try kernel.rerank(queries: twoQueries, candidates: threeCandidates)
        }
        #expect(try kernel.rerank(queries: padded, candidates: threeCandidates).scores.count == 3)
    }

    @Test("a thread count of zero is a precondition failure")
    func zeroThreads() async {
        await #expect(processExitsWith: .failure) {
            _ = MaxSimKernel(threadCount: 0)
        }
    }
}
