import MaxSim
import TesseraTestSupport
import Testing

/// Scores are the same bits whatever the thread count, the batch, the entry point or the instruction set.
@Suite("Determinism")
struct DeterminismTests {
    static let elementTypes: [TokenElementType] = [.float32, .float16, .bfloat16, .int8]

    static func corpus(_ elementType: TokenElementType, seed: UInt64 = 42) throws -> (Multivector, Multivectors) {
        var random = SeededRandom(seed: seed)
        let dimension = 96
        let lengths = (0..<301).map { $0 % 50 == 0 ? 0 : random.int(in: 1...120) }
        let rows = lengths.map { MaxSimTestData.rows($0, dimension: dimension, random: &random) }
        let documents = try Multivectors(float32: rows, dimension: dimension, elementType: elementType)
        let query = try Multivector(
            MaxSimTestData.rows(33, dimension: dimension, random: &random),
            dimension: dimension
        )
        return (query, documents)
    }

    @Test("1, 2 and 7 threads give bit-identical scores and matches", arguments: elementTypes)
    func threadCounts(_ elementType: TokenElementType) throws {
        let (query, documents) = try Self.corpus(elementType)
        let results = try [1, 2, 7].map {
            try MaxSimKernel(threadCount: $0).scores(query: query, documents: documents, withArgmax: true)
        }
        #expect(results[0].scores.map(\.bitPattern) == results[1].scores.map(\.bitPattern))
        #expect(results[0].scores.map(\.bitPattern) == results[2].scores.map(\.bitPattern))
        #expect(results[0].matches == results[1].matches)
        #expect(results[0].matches == results[2].matches)
        let tops = try [1, 2, 7].map { try MaxSimKernel(threadCount: $0).topK(25, query: query, documents: documents) }
        #expect(tops[0] == tops[1])
        #expect(tops[0] == tops[2])
    }

    @Test("every supported instruction set gives the same bits", arguments: elementTypes)
    func instructionSets(_ elementType: TokenElementType) throws {
        let (query, documents) = try Self.corpus(elementType, seed: 7)
        let baseline = try MaxSimKernel(threadCount: 2, instructionSet: .scalar)
            .scores(query: query, documents: documents, withArgmax: true)
        for isa in InstructionSet.supported where isa != .scalar {
            let result = try MaxSimKernel(threadCount: 2, instructionSet: isa)
                .scores(query: query, documents: documents, withArgmax: true)
            #expect(result.scores.map(\.bitPattern) == baseline.scores.map(\.bitPattern), "\(isa)")
            #expect(result.matches == baseline.matches, "\(isa)")
        }
    }

    @Test("a pair scores the same alone, in a batch, and through every entry point", arguments: elementTypes)
    func batchComposition(_ elementType: TokenElementType) throws {
        let (query, documents) = try Self.corpus(elementType, seed: 9)
        let kernel = MaxSimKernel(threadCount: 2)
        let batch = try kernel.scores(query: query, documents: documents).scores
        let queries = try Multivectors([query], dimension: query.dimension)
        for document in [0, 1, 57, 300] {
            let alone = try kernel.scores(
                query: query,
                documents: Multivectors([documents.item(document)], dimension: 96)
            )
            #expect(alone.scores[0].bitPattern == batch[document].bitPattern)
            let pair = try kernel.scores(
                queries: queries,
                documents: documents,
                pairs: [MaxSimPair(query: 0, document: document)]
            )
            #expect(pair.scores[0].bitPattern == batch[document].bitPattern)
        }
        let all = try kernel.allPairs(queries: queries, documents: documents)
        #expect(all.scores.map(\.bitPattern) == batch.map(\.bitPattern))
        // Many queries packed together into one block score each pair as the single query does.
        var random = SeededRandom(seed: 11)
        let others = try (0..<20).map { _ in
            try Multivector(MaxSimTestData.rows(random.int(in: 1...40), dimension: 96, random: &random), dimension: 96)
        }
        let many = try Multivectors([query] + others, dimension: 96)
        let manyScores = try kernel.allPairs(queries: many, documents: documents).scores
        #expect(Array(manyScores[0..<documents.count]).map(\.bitPattern) == batch.map(\.bitPattern))
    }
}
