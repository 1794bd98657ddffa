import Foundation
import Testing

@testable import Tessera

/// Sparse fields: storage through the tail and sealed segments, the inverted indexes, IDF, queries and fusion.
@Suite("Sparse vectors")
struct SparseTests {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "dense", dimension: 2, kind: .dense(distance: .dot)),
        .sparse(name: "plain"),
        .sparse(name: "weighted", modifier: .idf),
    ])

    static func sparse(_ entries: [UInt32: Float]) throws -> SparseVector {
        try SparseVector(indices: Array(entries.keys), values: entries.keys.map { entries[$0]! })
    }

    /// Seven points: term 1 in points 0–3, term 2 in points 0 and 4, term 3 in point 5; point 6 leaves both sparse
    /// fields out. Points 0–3 are sealed in a segment, 4–6 stay in the tail.
    static func store(at path: String) throws -> CollectionStore {
        let store = try CollectionStore.create(at: path, configuration: configuration)
        let terms: [[UInt32: Float]] = [[1: 1, 2: 1], [1: 2], [1: 3], [1: 1], [2: 2], [3: 1], [:]]
        var points: [Point] = []
        for (index, entries) in terms.enumerated() {
            var vectors: [String: VectorValue] = ["dense": .dense([Float(index), 1])]
            if !entries.isEmpty {
                vectors["plain"] = .sparse(try sparse(entries))
                vectors["weighted"] = .sparse(try sparse(entries))
            }
            points.append(Point(id: .integer(UInt64(index)), payload: [:], vectors: vectors))
        }
        try store.upsert(Array(points[0..<4]))
        try #require(try store.sealTail() != nil)
        try store.upsert(Array(points[4...]))
        return store
    }

    @Test("vectors check their entries, sort them and keep every 32-bit index exactly")
    func values() throws {
        let vector = try SparseVector(indices: [4_000_000_000, 7, 65536], values: [1, 2, 3])
        #expect(vector.indices == [7, 65536, 4_000_000_000])
        #expect(vector.values == [2, 3, 1])
        #expect(SparseVector(packed: vector.packed.values) == vector)
        #expect(SparseVector(packed: SparseVector.empty.packed.values).isEmpty)
        #expect(throws: TesseraError.self) { try SparseVector(indices: [1, 1], values: [1, 2]) }
        #expect(throws: TesseraError.self) { try SparseVector(indices: [1], values: [1, 2]) }
        #expect(throws: TesseraError.self) { try SparseVector(indices: [1], values: [.nan]) }
        #expect(vector.dot(try SparseVector(indices: [7, 9], values: [10, 1])) == 20)
        #expect(vector.dot(try SparseVector(indices: [9], values: [1])) == nil)
    }

    @Test("queries over sealed segments and the tail, with IDF weights, reruns and fusion")
    func search() throws {
        try withCollectionPath { path in
            // Term 1 in points 0–3, term 2 in points 0 and 4, term 3 only in point 5; point 6 has no entries.
            let store = try Self.store(at: path)
            func run(_ node: QueryNode) throws -> [(UInt64, Float)] {
                try store.query(QueryRequest(root: node)).points.map { point in
                    guard case .integer(let id) = point.id else { return (0, point.score) }
                    return (id, point.score)
                }
            }
            let query = try Self.sparse([1: 1, 2: 0.5])
            let plain = try run(QueryNode(query: .sparse(query), using: "plain"))
            #expect(plain.map(\.0) == [2, 1, 0, 3, 4])
            #expect(plain.map(\.1) == [3, 2, 1.5, 1, 1])
            // IDF over the six points with entries: term 1 in 4 of them, term 2 in 2, so point 4 (2 × 0.5 of the rarer
            // term) passes point 0.
            func idf(_ n: Double) -> Float { Float(log((6 - n + 0.5) / (n + 0.5) + 1)) }
            let weighted = try run(QueryNode(query: .sparse(query), using: "weighted", limit: 2))
            #expect(weighted.map(\.0) == [2, 4])
            #expect(abs(weighted[0].1 - 3 * idf(4)) < 1e-5)
            #expect(abs(weighted[1].1 - idf(2)) < 1e-5)
            // A point id takes its stored vector, and is left out.
            #expect(try run(QueryNode(query: .point(.integer(4)), using: "plain")).map(\.0) == [0])
            // A rerank of dense candidates by a sparse query, and a fusion of the two.
            let rerank = QueryNode(
                query: .sparse(query),
                using: "plain",
                limit: 3,
                prefetch: [QueryNode(query: .dense([1, 0]), using: "dense", limit: 3)]
            )
            #expect(try run(rerank).map(\.0) == [4])
            let fused = QueryNode(
                query: .fusion(.rrf()),
                limit: 7,
                prefetch: [
                    QueryNode(query: .sparse(query), using: "plain"), QueryNode(query: .dense([1, 0]), using: "dense"),
                ]
            )
            #expect(Set(try run(fused).map(\.0)) == [0, 1, 2, 3, 4, 5, 6])
            // Read back: entries as stored; a field left out reads back as no vector.
            let records = try store.get(ids: [.integer(0), .integer(6)], withVectors: true)
            #expect(records[0].vectors?["plain"] == .sparse(try Self.sparse([1: 1, 2: 1])))
            #expect(records[1].vectors?["plain"] == nil)
            // Deleting a sealed point drops it from the results and from the IDF statistics.
            try store.delete(ids: [.integer(2)])
            let after = try run(QueryNode(query: .sparse(query), using: "weighted", limit: 1))
            #expect(after.map(\.0) == [1])
            #expect(abs(after[0].1 - 2 * Float(log((5 - 3 + 0.5) / (3 + 0.5) + 1))) < 1e-5)
            #expect(throws: TesseraError.self) { try run(QueryNode(query: .dense([1, 0]), using: "plain")) }
            #expect(throws: TesseraError.self) { try run(QueryNode(query: .sparse(query), using: "dense")) }
            // An empty vector given is a vector (as in Qdrant): it reads back empty and counts in N.
            try store.upsert([
                Point(id: .integer(7), payload: [:], vectors: ["dense": .dense([0, 1]), "weighted": .sparse(.empty)])
            ])
            #expect(try store.get(ids: [.integer(7)], withVectors: true).first?.vectors?["weighted"] == .sparse(.empty))
            let counted = try run(QueryNode(query: .sparse(query), using: "weighted", limit: 1))
            #expect(abs(counted[0].1 - 2 * Float(log((6 - 3 + 0.5) / (3 + 0.5) + 1))) < 1e-5)
            try store.close()
        }
    }

    @Test("examples in a sparse field: recommend (each strategy), discovery and context, IDF-weighted where asked")
    func examples() throws {
        try withCollectionPath { path in
            let store = try Self.store(at: path)
            func run(_ query: QueryInput, _ using: String = "plain") throws -> [(UInt64, Float)] {
                try store.query(QueryRequest(root: QueryNode(query: query, using: using))).points.map { point in
                    guard case .integer(let id) = point.id else { return (0, point.score) }
                    return (id, point.score)
                }
            }
            func point(_ id: UInt64) -> QueryExample { .point(.integer(id)) }
            func given(_ entries: [UInt32: Float]) throws -> QueryExample { .vector(.sparse(try Self.sparse(entries))) }
            // Sums of dot products (no shared index counts 0); the example point and the empty point 6 are left out.
            let sum = try run(
                .recommend(Recommendation(positive: [point(4)], negative: [try given([1: 1])], strategy: .sumScores))
            )
            #expect(sum.map(\.0) == [0, 5, 3, 1, 2])
            #expect(sum.map(\.1) == [1, 0, -1, -2, -3])
            // The average: 2·mean({1: 1, 2: 1}, {3: 2}) − {1: 2} = {1: −1, 2: 1, 3: 2}, searched as a sparse query.
            let average = try run(
                .recommend(Recommendation(positive: [point(0), try given([3: 2])], negative: [point(1)]))
            )
            #expect(average.map(\.0) == [4, 5, 3, 2])
            #expect(average.map(\.1) == [2, 2, -1, -3])
            // Best scores: the best positive when it beats the best negative (sigmoid), else minus the best negative's;
            // 4 against 2 beats no candidate, and 5 shares an index with neither (0 against 0).
            let best = try run(
                .recommend(Recommendation(positive: [point(4)], negative: [point(2)], strategy: .bestScore))
            )
            #expect(best.map(\.0) == [5, 0, 3, 1])
            let sigmoid = ExampleScoring.scaledFastSigmoid
            #expect(best.map(\.1) == [-sigmoid(0), -sigmoid(3), -sigmoid(3), -sigmoid(6)])
            // Discovery: one pair (4 against 2) and the target {3: 1}.
            let discovered = try run(
                .discover(target: try given([3: 1]), context: [ContextPair(positive: point(4), negative: point(2))])
            )
            #expect(discovered.map(\.0) == [5, 0, 1, 3])
            #expect(discovered.map(\.1) == [0.75, -0.5, -0.5, -0.5])
            let context = try run(.context([ContextPair(positive: point(4), negative: point(2))]))
            #expect(context.first?.0 == 5)
            // With the IDF modifier each example is weighted as a query: {3: 1} holds the rarest index.
            let weighted = try run(
                .recommend(Recommendation(positive: [try given([3: 1])], strategy: .sumScores)),
                "weighted"
            )
            #expect(weighted.first?.0 == 5)
            #expect(weighted.first.map { abs($0.1 - Float(log((6 - 1 + 0.5) / (1 + 0.5) + 1))) < 1e-5 } == true)
            // A point without a vector in the field is no example; a dense example for a sparse field is refused.
            #expect(throws: TesseraError.self) { try run(.recommend(Recommendation(positive: [point(6)]))) }
            #expect(throws: TesseraError.self) {
                try run(.recommend(Recommendation(positive: [.vector(.dense([1, 0]))])))
            }
            try store.close()
        }
    }
}
