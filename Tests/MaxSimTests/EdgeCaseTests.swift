import MaxSim
import TesseraTestSupport
import Testing

@Suite("Edge cases: empty documents, NaN, ties, top-k")
struct EdgeCaseTests {
    let kernel = MaxSimKernel(threadCount: 2)

    @Test("a document with no tokens scores 0 with matches -1 in every entry point")
    func emptyDocument() throws {
        let dimension = 8
        var random = SeededRandom(seed: 3)
        let query = try Multivector(random.signedUnits(5 * dimension), dimension: dimension)
        let documents = try Multivectors(float32: [[], random.signedUnits(3 * dimension), []], dimension: dimension)
        let result = try kernel.scores(query: query, documents: documents, withArgmax: true)
        #expect(result.scores[0] == 0)
        #expect(result.scores[2] == 0)
        #expect(Array(result.matches![0]) == [Int32](repeating: -1, count: 5))
        #expect(!result.scores.contains { $0.isNaN })
        let padded = try PaddedMultivectors(
            elements: .float32(random.signedUnits(2 * 4 * dimension)),
            lengths: [0, 4],
            paddedLength: 4,
            dimension: dimension
        )
        let all = try kernel.allPairs(
            queries: try PaddedMultivectors(
                elements: query.elements,
                lengths: [5],
                paddedLength: 5,
                dimension: dimension
            ),
            documents: padded,
            withArgmax: true
        )
        #expect(all.scores[0] == 0)
        #expect(Array(all.matches![0]) == [Int32](repeating: -1, count: 5))
        let top = try kernel.topK(3, query: query, documents: documents)
        #expect(top.map(\.index).sorted() == [0, 1, 2])
    }

    @Test("an empty query scores 0 against everything")
    func emptyQuery() throws {
        let query = try Multivector([], dimension: 4)
        let documents = try Multivectors(float32: [[1, 2, 3, 4]], dimension: 4)
        #expect(try kernel.scores(query: query, documents: documents).scores == [0])
    }

    @Test("a NaN document token never wins; an all-NaN query token contributes -infinity")
    func nanSemantics() throws {
        let query = try Multivector([1, 0, 0, 1], dimension: 2)
        let documents = try Multivectors(float32: [[.nan, .nan, 0.5, 0.25]], dimension: 2)
        let result = try kernel.scores(query: query, documents: documents, withArgmax: true)
        #expect(result.scores[0] == 0.75)
        #expect(Array(result.matches![0]) == [1, 1])
        let nanQuery = try Multivector([.nan, 0, 0, 1], dimension: 2)
        let nanResult = try kernel.scores(query: nanQuery, documents: documents)
        #expect(nanResult.scores[0] == -.infinity)
    }

    @Test("argmax ties go to the lowest document token")
    func argmaxTies() throws {
        let query = try Multivector([1, 0, 0, 1], dimension: 2)
        // Tokens 1 and 3 tie for query token 0; tokens 0 and 2 tie for query token 1.
        let document: [Float] = [0, 2, 3, 0, 0, 2, 3, 0]
        for isa in InstructionSet.supported {
            let result = try MaxSimKernel(threadCount: 1, instructionSet: isa)
                .scores(query: query, documents: try Multivectors(float32: [document], dimension: 2), withArgmax: true)
            #expect(Array(result.matches![0]) == [1, 0], "\(isa)")
        }
    }

    @Test("top-k equals sorting every score, ties by lower index", arguments: [0, 1, 5, 64, 500])
    func topKMatchesSort(_ k: Int) throws {
        var random = SeededRandom(seed: UInt64(100 + k))
        let dimension = 16
        var rows = (0..<200).map { _ in
            MaxSimTestData.rows(random.int(in: 1...30), dimension: dimension, random: &random)
        }
        // Exact duplicates produce exact score ties.
        for index in stride(from: 10, to: 200, by: 17) { rows[index] = rows[index - 5] }
        let documents = try Multivectors(float32: rows, dimension: dimension)
        let query = try Multivector(random.signedUnits(9 * dimension), dimension: dimension)
        let scores = try kernel.scores(query: query, documents: documents).scores
        let expected = scores.enumerated().map { ScoredDocument(index: $0.offset, score: $0.element) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
        for threads in [1, 2, 7] {
            let top = try MaxSimKernel(threadCount: threads).topK(k, query: query, documents: documents)
            #expect(top == Array(expected.prefix(k)), "threads \(threads)")
        }
        // Restricting to candidates keeps the same order among them.
        let candidates = Array(stride(from: 0, to: 200, by: 3)) + [3, 6]
        let restricted = try kernel.topK(k, query: query, documents: documents, candidates: candidates)
        let allowed = Set(candidates)
        #expect(restricted == Array(expected.filter { allowed.contains($0.index) }.prefix(k)))
    }
}
