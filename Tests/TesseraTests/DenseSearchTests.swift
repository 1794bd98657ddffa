import Foundation
import TesseraIndex
import TesseraTestSupport
import Testing

@testable import Tessera

@Suite("Dense first stage: exact and HNSW")
struct DenseSearchTests {
    static let dimension = 16

    /// A collection of `count` points with a cosine dense field and a `bucket` payload (id % 4).
    static func makeStore(path: String, count: Int, seed: UInt64) throws -> (CollectionStore, [[Float]]) {
        let store = try CollectionStore.create(
            at: path,
            configuration: CollectionConfiguration(fields: [denseField(dimension: dimension, distance: .cosine)])
        )
        var random = SeededRandom(seed: seed)
        var vectors: [[Float]] = []
        var points: [Point] = []
        for id in 0..<count {
            let vector = random.signedUnits(dimension)
            vectors.append(vector)
            points.append(
                Point(
                    id: .integer(UInt64(id)),
                    payload: ["bucket": .integer(Int64(id % 4))],
                    vectors: ["dense": .dense(vector)]
                )
            )
        }
        try store.upsert(points)
        return (store, vectors)
    }

    static func denseQuery(
        _ store: CollectionStore,
        _ vector: [Float],
        limit: Int,
        filter: Filter? = nil,
        exact: Bool = false
    )
        throws -> QueryResponse
    {
        try store.query(
            QueryRequest(
                root: QueryNode(
                    query: .dense(vector),
                    filter: filter,
                    limit: limit,
                    parameters: QueryParameters(exact: exact)
                ),
                withPayload: false
            )
        )
    }

    static func queries(_ count: Int, seed: UInt64) -> [[Float]] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.signedUnits(dimension) }
    }

    @Test("cosine fields store unit vectors; exact dense scores are cosines")
    func cosineStorage() throws {
        try withCollectionPath { path in
            let (store, vectors) = try Self.makeStore(path: path, count: 20, seed: 1)
            let record = try store.get(ids: [.integer(3)], withVectors: true).first
            let stored = storedValues(record, "dense")
            let norm = vectors[3].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for (value, original) in zip(stored, vectors[3]) { #expect(abs(value - original / norm) < 1e-6) }
            let top = try Self.denseQuery(store, vectors[3].map { $0 * 5 }, limit: 1, exact: true)
            #expect(top.points.first?.id == .integer(3))
            #expect(abs((top.points.first?.score ?? 0) - 1) < 1e-5)
        }
    }

    @Test("HNSW recall@10 against exact search, with and without a filter; small filters run exactly")
    func recall() throws {
        try withCollectionPath { path in
            let (store, _) = try Self.makeStore(path: path, count: 3000, seed: 2)
            let status = try store.buildDenseIndex(options: HNSWOptions(m: 16, efConstruction: 200))
            #expect(status.graphCount == 3000)
            let bucket = try Filter(json: #"{"must_not": [{"key": "bucket", "match": {"value": 0}}]}"#)
            var found = 0
            var total = 0
            for (index, query) in Self.queries(40, seed: 3).enumerated() {
                let filter = index % 2 == 0 ? nil : bucket
                let exact = try Self.denseQuery(store, query, limit: 10, filter: filter, exact: true)
                let graph = try Self.denseQuery(store, query, limit: 10, filter: filter)
                #expect(graph.stages.first?.method == .hnsw)
                #expect(exact.stages.first?.method == .dense)
                let truth = Set(exact.points.map(\.id))
                found += graph.points.filter { truth.contains($0.id) }.count
                total += truth.count
                if let filter {
                    #expect(
                        graph.points.allSatisfy { point in
                            guard case .integer(let id) = point.id else { return false }
                            return id % 4 != 0
                                && filter.matches(payload: ["bucket": .integer(Int64(id % 4))], id: point.id)
                        }
                    )
                }
            }
            let recall = Double(found) / Double(total)
            print("collection HNSW recall@10: \(recall)")
            #expect(recall >= 0.97)
            // A filter keeping 750 points (under 1,000) is answered exactly.
            let small = try Filter(json: #"{"must": [{"key": "bucket", "match": {"value": 1}}]}"#)
            let query = Self.queries(1, seed: 4)[0]
            let filtered = try Self.denseQuery(store, query, limit: 10, filter: small)
            #expect(filtered.stages.first?.method == .dense)
            #expect(
                filtered.points.map(\.id)
                    == (try Self.denseQuery(store, query, limit: 10, filter: small, exact: true)).points.map(\.id)
            )
        }
    }

    @Test("the graph survives reopening; deletes and replacements are honoured; later points are found")
    func persistenceAndUpdates() throws {
        try withCollectionPath { path in
            var (store, vectors) = try Self.makeStore(path: path, count: 1500, seed: 5)
            _ = try store.buildDenseIndex()
            let query = vectors[42]
            let before = try Self.denseQuery(store, query, limit: 5)
            #expect(before.points.first?.id == .integer(42))
            try store.close()
            store = try CollectionStore.open(at: path)
            let reopened = try Self.denseQuery(store, query, limit: 5)
            #expect(reopened.stages.first?.method == .hnsw)
            #expect(reopened.points.map(\.id) == before.points.map(\.id))

            // Delete the best match and move another point onto the query: the graph never returns the old ones.
            _ = try store.delete(ids: [.integer(42)])
            let moved = Point(id: .integer(7), payload: [:], vectors: ["dense": .dense(query.map { $0 * 2 })])
            let added = Point(id: .integer(5000), payload: [:], vectors: ["dense": .dense(query.map { -$0 })])
            try store.upsert([moved, added])
            let after = try Self.denseQuery(store, query, limit: 5)
            #expect(after.stages.first?.method == .hnsw)
            #expect(!after.points.contains { $0.id == .integer(42) })
            #expect(after.points.first?.id == .integer(7))
            #expect(abs((after.points.first?.score ?? 0) - 1) < 1e-5)
            let opposite = try Self.denseQuery(store, query.map { -$0 }, limit: 1)
            #expect(opposite.points.first?.id == .integer(5000))
            let status = try #require(try store.denseIndexStatus())
            #expect(status.deletedCount == 2)  // 42 deleted, 7 replaced
            #expect(status.pendingPointCount == 2)  // 7 and 5000 are scored exactly beside the graph
            vectors[7] = query

            // After reopening, the replaced vector is detected by comparison with the stored one.
            try store.close()
            store = try CollectionStore.open(at: path)
            let again = try Self.denseQuery(store, query, limit: 5)
            #expect(again.points.map(\.id) == after.points.map(\.id))
            #expect(try store.denseIndexStatus()?.deletedCount == 2)
        }
    }

    @Test("a torn graph file is detected: the collection says so and searches exactly")
    func tornFile() throws {
        try withCollectionPath { path in
            var (store, vectors) = try Self.makeStore(path: path, count: 1200, seed: 6)
            let status = try store.buildDenseIndex()
            try store.close()
            let graph = HNSWFiles.graphPath(status.file)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: graph))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: graph))
            store = try CollectionStore.open(at: path)
            let broken = try #require(try store.denseIndexStatus())
            #expect(broken.error?.code == .corrupted)
            #expect(broken.error?.location.path == graph)
            let response = try Self.denseQuery(store, vectors[9], limit: 10)
            #expect(response.stages.first?.method == .dense)
            #expect(
                response.points.map(\.id)
                    == (try Self.denseQuery(store, vectors[9], limit: 10, exact: true)).points.map(\.id)
            )
            // Rebuilding replaces the broken files.
            _ = try store.buildDenseIndex()
            #expect(try store.denseIndexStatus()?.error == nil)
            #expect(!FileManager.default.fileExists(atPath: graph))
            vectors.removeAll()
        }
    }
}
