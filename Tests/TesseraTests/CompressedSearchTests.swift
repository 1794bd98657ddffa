import Foundation
import MaxSim
import Tessera
import TesseraIndex
import TesseraTestSupport
import Testing

@Suite("Compressed index in a collection", .serialized)
struct CompressedSearchTests {
    static let generous = CompressedSearchParameters(probeCount: 1_000, candidateCount: 1_000)
    static let options = CompressedIndexOptions(centroidCount: 24, bitCount: 4)

    /// A query made of (noisy copies of) a point's own tokens, so that point is the clear best.
    static func query(copying values: [Float], seed: UInt64) throws -> Multivector {
        var random = SeededRandom(seed: seed)
        let tokens = Array(values.prefix(min(values.count, 3 * 16)))
        return try Multivector(tokens.map { $0 + 0.01 * random.signedUnit() }, dimension: 16)
    }

    static func ids(_ results: [ScoredPoint]) -> [PointID] { results.map(\.id) }

    @Test("compressed + exact rerank with generous parameters equals exact search; filters hold")
    func rerankEqualsExact() throws {
        let (store, directory, vectors, _) = try ExactSearchTests.makeCollection(elementType: .float32, pointCount: 200)
        defer { try? FileManager.default.removeItem(at: directory) }
        let status = try store.buildCompressedIndex(field: "tokens", options: Self.options)
        #expect(status.report?.centroidCount == 24)
        #expect(status.pendingPointCount == 0)
        #expect(status.error == nil)
        var random = SeededRandom(seed: 5)
        for round in 0..<5 {
            let query = try Multivector(random.signedUnits(4 * 16), dimension: 16)
            let filter: Filter? =
                round.isMultiple(of: 2) ? nil : try Filter(json: #"{"must":[{"key":"group","match":{"value":1}}]}"#)
            let exact = try store.search(SearchRequest(query: query, field: "tokens", filter: filter, limit: 10))
            let reranked = try store.search(
                SearchRequest(
                    query: query,
                    field: "tokens",
                    filter: filter,
                    limit: 10,
                    method: .compressed(Self.generous, rerank: true)
                )
            )
            #expect(reranked == exact)
            let compressedOnly = try store.search(
                SearchRequest(
                    query: query,
                    field: "tokens",
                    filter: filter,
                    limit: 10,
                    method: .compressed(nil, rerank: false)
                )
            )
            #expect(compressedOnly.count == 10)
            if filter != nil {
                #expect(compressedOnly.allSatisfy { $0.payload?["group"] == .integer(1) })
            }
        }
        // A query copying a point's tokens finds it first through the compressed index alone.
        let target = PointID.integer(31)
        let hits = try store.search(
            SearchRequest(
                query: try Self.query(copying: vectors[target]!, seed: 1),
                field: "tokens",
                limit: 3,
                method: .compressed(nil, rerank: false)
            )
        )
        #expect(hits.first?.id == target)
    }

    @Test("upserts, replacements and deletes after the build are visible at once and after reopening")
    func updatesWithoutRetraining() throws {
        let (store, directory, vectors, _) = try ExactSearchTests.makeCollection(elementType: .float16, pointCount: 150)
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try store.buildCompressedIndex(field: "tokens", options: Self.options)
        var random = SeededRandom(seed: 77)
        let method = SearchMethod.compressed(nil, rerank: false)

        // A new point.
        let newID = PointID.integer(10_000)
        let newValues = random.signedUnits(5 * 16)
        try store.upsert([Point(id: newID, payload: [:], vectors: ["tokens": .flat(values: newValues, tokenCount: 5)])])
        let newQuery = try Self.query(copying: newValues, seed: 2)
        #expect(
            try store.search(SearchRequest(query: newQuery, field: "tokens", limit: 1, method: method)).first?.id
                == newID
        )

        // A replaced point: its new vectors are found, its old ones no longer.
        let replaced = PointID.integer(40)
        let oldQuery = try Self.query(copying: vectors[replaced]!, seed: 3)
        #expect(
            try store.search(SearchRequest(query: oldQuery, field: "tokens", limit: 1, method: method)).first?.id
                == replaced
        )
        let replacement = random.signedUnits(4 * 16)
        try store.upsert([
            Point(id: replaced, payload: [:], vectors: ["tokens": .flat(values: replacement, tokenCount: 4)])
        ])
        let replacementQuery = try Self.query(copying: replacement, seed: 4)
        #expect(
            try store.search(SearchRequest(query: replacementQuery, field: "tokens", limit: 1, method: method)).first?
                .id
                == replaced
        )
        // The old tokens scored about 3 × ‖t‖² ≈ 16 against their own copies; the replacement is unrelated.
        let afterReplace = try store.search(
            SearchRequest(
                query: oldQuery,
                field: "tokens",
                limit: 200,
                method: .compressed(Self.generous, rerank: false)
            )
        )
        let replacedScore = try #require(afterReplace.first { $0.id == replaced }?.score)
        #expect(replacedScore < 10, "the replaced point still scores like its old vectors: \(replacedScore)")

        // A deleted point never comes back.
        let deleted = PointID.integer(4)
        let deletedQuery = try Self.query(copying: vectors[deleted]!, seed: 5)
        try store.delete(ids: [deleted])
        #expect(
            !Self.ids(try store.search(SearchRequest(query: deletedQuery, field: "tokens", limit: 20, method: method)))
                .contains(deleted)
        )
        #expect(try store.compressedIndexStatus(field: "tokens")?.pendingPointCount == 3)

        // Reopened: the pending table says which points to re-encode.
        try store.close()
        let reopened = try CollectionStore.open(at: directory.path)
        #expect(
            try reopened.search(SearchRequest(query: newQuery, field: "tokens", limit: 1, method: method)).first?.id
                == newID
        )
        #expect(
            try reopened.search(SearchRequest(query: replacementQuery, field: "tokens", limit: 1, method: method))
                .first?.id
                == replaced
        )
        #expect(
            !Self.ids(
                try reopened.search(SearchRequest(query: deletedQuery, field: "tokens", limit: 20, method: method))
            ).contains(deleted)
        )
        #expect(try reopened.compressedIndexStatus(field: "tokens")?.pendingPointCount == 3)

        // A rebuild takes everything in and clears the backlog.
        let rebuilt = try reopened.buildCompressedIndex(field: "tokens", options: Self.options)
        #expect(rebuilt.pendingPointCount == 0)
        #expect(rebuilt.report?.documentCount == 150)
        #expect(
            try reopened.search(SearchRequest(query: newQuery, field: "tokens", limit: 1, method: method)).first?.id
                == newID
        )
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".tidx") }
        #expect(files.count == 1, "old generations are removed: \(files)")
    }

    @Test("a torn index file is reported and the collection answers with exact search")
    func tornIndexFallsBackToExact() throws {
        let (store, directory, _, _) = try ExactSearchTests.makeCollection(elementType: .float32, pointCount: 100)
        defer { try? FileManager.default.removeItem(at: directory) }
        let status = try store.buildCompressedIndex(field: "tokens", options: Self.options)
        try store.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: status.file))
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: status.file))

        let reopened = try CollectionStore.open(at: directory.path)
        let broken = try #require(try reopened.compressedIndexStatus(field: "tokens"))
        #expect(broken.error?.code == .corrupted)
        #expect(broken.error?.location.path == status.file)
        var random = SeededRandom(seed: 8)
        let query = try Multivector(random.signedUnits(3 * 16), dimension: 16)
        let exact = try reopened.search(SearchRequest(query: query, field: "tokens", limit: 10))
        let fallback = try reopened.search(
            SearchRequest(query: query, field: "tokens", limit: 10, method: .compressed(nil, rerank: false))
        )
        #expect(fallback == exact)
        // Rebuilding repairs it.
        let repaired = try reopened.buildCompressedIndex(field: "tokens", options: Self.options)
        #expect(repaired.error == nil)
    }
}
