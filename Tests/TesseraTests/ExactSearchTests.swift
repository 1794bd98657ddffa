import Foundation
import MaxSim
import Tessera
import TesseraTestSupport
import Testing

@Suite("Exact search")
struct ExactSearchTests {
    static func makeCollection(
        elementType: ElementType,
        pointCount: Int = 120,
        seed: UInt64 = 17
    ) throws -> (CollectionStore, URL, [PointID: [Float]], [PointID: JSONObject]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-search-\(UUID())")
        let field = VectorField(
            name: "tokens",
            dimension: 16,
            kind: .multivector(comparator: .maxSim),
            elementType: elementType
        )
        let store = try CollectionStore.create(
            at: directory.path,
            configuration: CollectionConfiguration(fields: [field])
        )
        var random = SeededRandom(seed: seed)
        var vectors: [PointID: [Float]] = [:]
        var payloads: [PointID: JSONObject] = [:]
        var points: [Point] = []
        for index in 0..<pointCount {
            let id = PointID.integer(UInt64(index * 3 + 1))
            let values = random.signedUnits(random.int(in: 1...12) * 16)
            let payload: JSONObject = ["group": .integer(Int64(index % 4)), "name": .string("doc \(index)")]
            vectors[id] = values
            payloads[id] = payload
            points.append(
                Point(
                    id: id,
                    payload: payload,
                    vectors: ["tokens": .flat(values: values, tokenCount: values.count / 16)]
                )
            )
        }
        try store.upsert(points)
        return (store, directory, vectors, payloads)
    }

    /// Reference ranking: MaxSim in Float64 on what the store holds, best first, ties by id order of insertion.
    static func reference(
        _ query: [Float],
        store: CollectionStore,
        allowed: (PointID) -> Bool
    ) throws -> [(PointID, Double)] {
        let view = store.scoringView()
        let column = try #require(view.column(named: "tokens"))
        let queryVector = try Multivector(query, dimension: 16)
        var scored: [(PointID, Double, Int)] = []
        for slot in view.liveSlots.slots where allowed(view.pointIDs[slot]) {
            let document = try Multivector(column.floatValues(ofSlot: slot), dimension: 16)
            scored.append(
                (view.pointIDs[slot], MaxSimReference.score(query: queryVector, document: document).score, slot)
            )
        }
        return scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.2 < $1.2 }.map { ($0.0, $0.1) }
    }

    @Test(
        "results equal the reference ranking, with filters, offset and threshold",
        arguments: [ElementType.float32, .float16, .int8]
    )
    func matchesReference(_ elementType: ElementType) throws {
        let (store, directory, _, payloads) = try Self.makeCollection(elementType: elementType)
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = SeededRandom(seed: 99)
        let query = random.signedUnits(5 * 16)
        let kernel = MaxSimKernel(threadCount: 2, int8Mode: .float)
        let expected = try Self.reference(query, store: store) { _ in true }
        let results = try store.search(
            SearchRequest(query: try Multivector(query, dimension: 16), limit: 10),
            kernel: kernel
        )
        #expect(results.map(\.id) == expected.prefix(10).map(\.0))
        for (result, reference) in zip(results, expected) {
            #expect(abs(Double(result.score) - reference.1) < 1e-4)
            #expect(result.payload == payloads[result.id])
        }
        let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": 2}}]}"#)
        let filtered = try store.search(
            SearchRequest(query: try Multivector(query, dimension: 16), filter: filter, limit: 5, offset: 2),
            kernel: kernel
        )
        let expectedFiltered = try Self.reference(query, store: store) { payloads[$0]?["group"] == .integer(2) }
        #expect(filtered.map(\.id) == expectedFiltered.dropFirst(2).prefix(5).map(\.0))
        let threshold = Float(expected[3].1) - 1e-3
        let thresholded = try store.search(
            SearchRequest(query: try Multivector(query, dimension: 16), limit: 50, scoreThreshold: threshold),
            kernel: kernel
        )
        #expect(thresholded.count == 4)
    }

    @Test("matched tokens explain the score; deletes and replacements are seen at once")
    func matchesAndUpdates() throws {
        let (store, directory, vectors, _) = try Self.makeCollection(elementType: .float32)
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = PointID.integer(1)
        let query = Array(vectors[first]!.prefix(32))  // the first two tokens of point 1: it must rank first
        let results = try store.search(
            SearchRequest(query: try Multivector(query, dimension: 16), limit: 3, withMatches: true)
        )
        #expect(results[0].id == first)
        #expect(results[0].matchedTokens == [0, 1])
        _ = try store.delete(ids: [first])
        let afterDelete = try store.search(SearchRequest(query: try Multivector(query, dimension: 16), limit: 3))
        #expect(!afterDelete.contains { $0.id == first })
        try store.upsert([Point(id: .integer(9999), vectors: ["tokens": .flat(values: query, tokenCount: 2)])])
        let afterInsert = try store.search(SearchRequest(query: try Multivector(query, dimension: 16), limit: 1))
        #expect(afterInsert.first?.id == .integer(9999))
    }

    @Test("bad requests are errors naming the field")
    func badRequests() throws {
        let (store, directory, _, _) = try Self.makeCollection(elementType: .float32, pointCount: 3)
        defer { try? FileManager.default.removeItem(at: directory) }
        let wrongDimension = try Multivector([Float](repeating: 1, count: 8), dimension: 8)
        #expect(throws: TesseraError.self) { try store.search(SearchRequest(query: wrongDimension)) }
        let query = try Multivector([Float](repeating: 1, count: 16), dimension: 16)
        #expect(throws: TesseraError.self) { try store.search(SearchRequest(query: query, field: "nope")) }
        #expect(throws: TesseraError.self) { try store.search(SearchRequest(query: query, limit: -1)) }
        #expect(try store.search(SearchRequest(query: query, limit: 100)).count == 3)
        #expect(try store.search(SearchRequest(query: query, limit: 0)).isEmpty)
    }
}

@Suite("Retrieval metrics")
struct RetrievalMetricsTests {
    @Test("nDCG@10 with graded relevance, computed by hand")
    func ndcg() {
        // Ranking d1 (grade 0), d2 (2), d3 (1); judged relevant: d2 = 2, d3 = 1, d4 = 1.
        let relevant = ["d1": 0, "d2": 2, "d3": 1, "d4": 1]
        let dcg = 2 / log2(3.0) + 1 / log2(4.0)
        let idcg = 2 / log2(2.0) + 1 / log2(3.0) + 1 / log2(4.0)
        let value = RetrievalMetrics.ndcg(ranking: ["d1", "d2", "d3"], relevant: relevant, cutoff: 10)
        #expect(abs(value - dcg / idcg) < 1e-12)
        #expect(RetrievalMetrics.ndcg(ranking: ["d2", "d3", "d4"], relevant: relevant, cutoff: 10) == 1)
        #expect(RetrievalMetrics.ndcg(ranking: ["x"], relevant: [:], cutoff: 10) == 0)
        // Past the cut-off nothing counts.
        #expect(RetrievalMetrics.ndcg(ranking: ["d1", "d2"], relevant: relevant, cutoff: 1) == 0)
    }

    @Test("Recall@k and MRR@k computed by hand")
    func recallAndReciprocalRank() {
        let relevant = ["a": 1, "b": 3, "c": 0]
        #expect(RetrievalMetrics.recall(ranking: ["x", "b", "y"], relevant: relevant, cutoff: 100) == 0.5)
        #expect(RetrievalMetrics.recall(ranking: ["x", "b", "a"], relevant: relevant, cutoff: 2) == 0.5)
        #expect(RetrievalMetrics.reciprocalRank(ranking: ["c", "x", "b"], relevant: relevant, cutoff: 10) == 1.0 / 3)
        #expect(RetrievalMetrics.reciprocalRank(ranking: ["c", "x", "b"], relevant: relevant, cutoff: 2) == 0)
    }
}
