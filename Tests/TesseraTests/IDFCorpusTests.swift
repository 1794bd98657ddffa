import Foundation
import TesseraTestSupport
import Testing

@testable import Tessera

/// `QueryParameters.idfCorpus` (Qdrant's `idf: {"corpus": filter}`): inverse document frequencies counted over the
/// points passing a filter rank exactly as a collection holding only those points, while every allowed point is
/// still scored.
@Suite("IDF over a corpus filter")
struct IDFCorpusTests {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "dense", dimension: 2, kind: .dense(distance: .dot)),
        .sparse(name: "weighted", modifier: .idf),
    ])
    static let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

    /// 40 points over three tenants: sparse vectors over 8 indices and texts over 6 words, from a fixed seed.
    static func points() throws -> [Point] {
        var random = SeededRandom(seed: 11)
        var points: [Point] = []
        for index in 0..<40 {
            let indices = (0..<8).filter { _ in random.next() % 3 == 0 }.map(UInt32.init)
            let values = indices.map { _ in Float(random.next() % 100 + 1) / 50 }
            let body = (0...(random.next() % 9)).map { _ in words[Int(random.next() % 6)] }.joined(separator: " ")
            points.append(
                Point(
                    id: .integer(UInt64(index)),
                    payload: ["tenant": .integer(Int64(index % 3)), "body": .string(body)],
                    vectors: [
                        "dense": .dense([1, Float(index)]),
                        "weighted": .sparse(try SparseVector(indices: indices, values: values)),
                    ]
                )
            )
        }
        return points
    }

    @Test("a sparse IDF query and a text index query with a corpus score as over the corpus alone")
    func corpusEqualsSubcollection() throws {
        try withCollectionPath { root in
            let points = try Self.points()
            let tenant = try Filter(json: #"{"must": [{"key": "tenant", "match": {"value": 0}}]}"#)
            let everything = try CollectionStore.create(at: root + "/all", configuration: Self.configuration)
            try everything.upsert(Array(points[..<20]))
            try #require(try everything.sealTail() != nil)
            try everything.upsert(Array(points[20...]))
            let corpusOnly = try CollectionStore.create(at: root + "/tenant", configuration: Self.configuration)
            try corpusOnly.upsert(points.filter { $0.payload["tenant"] == .integer(0) })
            for store in [everything, corpusOnly] {
                try store.createPayloadIndex(field: "body", type: .scoredText)
            }
            func scores(_ store: CollectionStore, _ node: QueryNode) throws -> [PointID: Float] {
                Dictionary(
                    uniqueKeysWithValues: try store.query(QueryRequest(root: node)).points.map { ($0.id, $0.score) }
                )
            }
            var corpus = QueryParameters()
            corpus.idfCorpus = tenant
            let queries: [(QueryInput, String)] = [
                (.sparse(try SparseVector(indices: [1, 4, 6], values: [1, 0.5, 2])), "weighted"),
                (.sparse(try SparseVector(indices: [0, 7], values: [1, 1])), "weighted"),
                (.text("alpha zeta"), "body"), (.text("gamma beta delta"), "body"),
            ]
            for (query, using) in queries {
                let narrowed = try scores(
                    everything,
                    QueryNode(query: query, using: using, limit: 40, parameters: corpus)
                )
                let alone = try scores(corpusOnly, QueryNode(query: query, using: using, limit: 40))
                let global = try scores(everything, QueryNode(query: query, using: using, limit: 40))
                #expect(!alone.isEmpty, "\(query)")
                for (id, score) in alone {
                    let mine = try #require(narrowed[id], "\(query): \(id) missing")
                    #expect(abs(mine - score) <= 1e-5 * max(1, abs(score)), "\(query): \(id) \(mine) vs \(score)")
                }
                // Points outside the corpus are still results, and the statistics did change.
                #expect(narrowed.keys.contains { points[Int($0.description)!].payload["tenant"] != .integer(0) })
                let changed = alone.contains { id, score in
                    guard let before = global[id] else { return false }
                    return abs(before - score) > 1e-4
                }
                #expect(changed, "\(query)")
            }
            try everything.close()
            try corpusOnly.close()
        }
    }

    @Test("shards given the summed IDF statistics score a sparse query as the whole collection does")
    func summedStatisticsEqualTheWholeCollection() throws {
        try withCollectionPath { root in
            let points = try Self.points()
            let whole = try CollectionStore.create(at: root + "/whole", configuration: Self.configuration)
            try whole.upsert(points)
            let shards = try (0..<3).map { shard in
                let store = try CollectionStore.create(at: root + "/shard\(shard)", configuration: Self.configuration)
                try store.upsert(points.enumerated().filter { $0.offset % 3 == shard }.map(\.element))
                return store
            }
            try #require(try shards[0].sealTail() != nil)
            let query = QueryInput.sparse(try SparseVector(indices: [1, 4, 6], values: [1, 0.5, 2]))
            let node = QueryNode(query: query, using: "weighted", limit: 40)
            let parts = try shards.map { try #require(try $0.idfStatistics(of: node)) }
            let total = CorpusStatistics.sum(parts)
            #expect(total == (try whole.idfStatistics(of: node)))
            #expect(total.points == 40)
            var given = QueryParameters()
            given.idfStatistics = total
            let want = Dictionary(
                uniqueKeysWithValues: try whole.query(QueryRequest(root: node)).points.map { ($0.id, $0.score) }
            )
            var merged: [PointID: Float] = [:]
            var local: [PointID: Float] = [:]
            for shard in shards {
                for point in try shard.query(
                    QueryRequest(root: QueryNode(query: query, using: "weighted", limit: 40, parameters: given))
                ).points {
                    merged[point.id] = point.score
                }
                for point in try shard.query(QueryRequest(root: node)).points { local[point.id] = point.score }
            }
            #expect(merged == want)
            // Each shard's own statistics rank differently: the pre-pass is what makes them agree.
            #expect(local != want)
            // A dense query, or a field without the modifier, has no statistics to gather.
            #expect(try whole.idfStatistics(of: QueryNode(query: .dense([1, 0]), using: "dense", limit: 5)) == nil)
        }
    }

    @Test("shards given the summed BM25 statistics score a text index query as the whole collection does")
    func summedTextStatisticsEqualTheWholeCollection() throws {
        try withCollectionPath { root in
            let points = try Self.points()
            let whole = try CollectionStore.create(at: root + "/whole", configuration: Self.configuration)
            try whole.upsert(points)
            try whole.createPayloadIndex(field: "body", type: .scoredText)
            let shards = try (0..<3).map { shard in
                let store = try CollectionStore.create(at: root + "/shard\(shard)", configuration: Self.configuration)
                try store.upsert(points.enumerated().filter { $0.offset % 3 == shard }.map(\.element))
                try store.createPayloadIndex(field: "body", type: .scoredText)
                return store
            }
            let node = QueryNode(query: .text("gamma beta delta zeta"), using: "body", limit: 40)
            let total = TextCorpusStatistics.sum(try shards.map { try #require(try $0.textStatistics(of: node)) })
            #expect(total == (try whole.textStatistics(of: node)))
            var given = QueryParameters()
            given.textStatistics = total
            let want = Dictionary(
                uniqueKeysWithValues: try whole.query(QueryRequest(root: node)).points.map { ($0.id, $0.score) }
            )
            var merged: [PointID: Float] = [:]
            var local: [PointID: Float] = [:]
            for shard in shards {
                let weighted = QueryNode(query: node.query, using: "body", limit: 40, parameters: given)
                for point in try shard.query(QueryRequest(root: weighted)).points { merged[point.id] = point.score }
                for point in try shard.query(QueryRequest(root: node)).points { local[point.id] = point.score }
            }
            #expect(!want.isEmpty)
            #expect(merged == want)
            #expect(local != want)
            // Not a text query of a payload key: nothing to gather.
            #expect(try whole.textStatistics(of: QueryNode(query: .dense([1, 0]), using: "dense", limit: 5)) == nil)
        }
    }
}
