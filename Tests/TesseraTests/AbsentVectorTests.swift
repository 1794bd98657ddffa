import Foundation
import MaxSim
import TesseraIndex
import TesseraTestSupport
import Testing

@testable import Tessera

/// Points without a vector in some field (Qdrant's optional named vectors, and `delete_vectors`): read back
/// without it, never a candidate of searches in it (exact, HNSW, compressed, rescoring), through the tail, sealed
/// segments, index builds, deleteVectors, updateVectors and a reopen.
@Suite("Points without a vector in a field")
struct AbsentVectorTests {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "dense", dimension: 4, kind: .dense(distance: .cosine)),
        VectorField(name: "tokens", dimension: 4, kind: .multivector(comparator: .maxSim), elementType: .float32),
    ])

    @Test("absent vectors are kept, read back as absent and never searched, until given back")
    func absences() throws {
        try withCollectionPath { path in
            var random = SeededRandom(seed: 5)
            var points: [Point] = []
            var hasDense = Set<UInt64>()
            var hasTokens = Set<UInt64>()
            for index in 0..<60 {
                var vectors: [String: VectorValue] = [:]
                if index % 4 != 1 {
                    vectors["dense"] = .dense(random.signedUnits(4))
                    hasDense.insert(UInt64(index))
                }
                if index % 5 != 2 {
                    vectors["tokens"] = .multivector((0..<random.int(in: 1...3)).map { _ in random.signedUnits(4) })
                    hasTokens.insert(UInt64(index))
                }
                points.append(
                    Point(id: .integer(UInt64(index)), payload: ["n": .integer(Int64(index))], vectors: vectors)
                )
            }
            var store = try CollectionStore.create(at: path, configuration: Self.configuration)
            try store.upsert(Array(points[..<30]))
            try #require(try store.sealTail() != nil)
            try store.upsert(Array(points[30...]))
            func ids(_ node: QueryNode) throws -> Set<UInt64> {
                Set(
                    try store.query(QueryRequest(root: node)).points.compactMap { point -> UInt64? in
                        guard case .integer(let id) = point.id else { return nil }
                        return id
                    }
                )
            }
            func check(_ what: String) throws {
                let records = try store.get(ids: (0..<60).map { PointID.integer(UInt64($0)) }, withVectors: true)
                for record in records {
                    guard case .integer(let id) = record.id else { continue }
                    #expect((record.vectors?["dense"] != nil) == hasDense.contains(id), "\(what): \(id) dense")
                    #expect((record.vectors?["tokens"] != nil) == hasTokens.contains(id), "\(what): \(id) tokens")
                }
                for exact in [false, true] {
                    let parameters = QueryParameters(exact: exact)
                    let dense = QueryNode(
                        query: .dense([1, 0, 0, 0]),
                        using: "dense",
                        limit: 100,
                        parameters: parameters
                    )
                    #expect(try ids(dense) == hasDense, "\(what): dense, exact \(exact)")
                    let tokens = QueryNode(
                        query: .multivector(try Multivector([1, 0, 0, 0, 0, 1, 0, 0], dimension: 4)),
                        using: "tokens",
                        limit: 100,
                        parameters: parameters
                    )
                    #expect(try ids(tokens) == hasTokens, "\(what): tokens, exact \(exact)")
                    var rescore = tokens
                    rescore.prefetch = [dense]
                    #expect(try ids(rescore) == hasDense.intersection(hasTokens), "\(what): rescoring, exact \(exact)")
                }
                #expect(throws: TesseraError.self) { try ids(QueryNode(query: .point(.integer(1)), using: "dense")) }
            }
            try check("tail and a segment")
            _ = try store.buildDenseIndex(field: "dense")
            _ = try store.buildCompressedIndex(
                field: "tokens",
                options: CompressedIndexOptions(centroidCount: 8, bitCount: 2)
            )
            try check("with indexes")
            // Removed from a sealed point and a tail point; then sealed, reopened.
            try store.deleteVectors(ids: [.integer(4), .integer(40)], fields: ["dense"])
            try store.deleteVectors(ids: [.integer(8)], fields: ["tokens", "dense"])
            hasDense.subtract([4, 40, 8])
            hasTokens.remove(8)
            try check("after deleteVectors")
            #expect(throws: TesseraError.self) { try store.deleteVectors(ids: [.integer(3)], fields: ["nope"]) }
            #expect(throws: TesseraError.self) { try store.deleteVectors(ids: [.integer(999)], fields: ["dense"]) }
            try #require(try store.sealTail() != nil)
            try store.close()
            store = try CollectionStore.open(at: path)
            try check("sealed and reopened")
            try store.updateVectors([(id: .integer(4), vectors: ["dense": .dense([1, 0, 0, 0])])])
            hasDense.insert(4)
            try check("after updateVectors")
            try store.close()
            store = try CollectionStore.open(at: path)
            try check("reopened again")
            try store.checkIntegrity()
            try store.close()
        }
    }
}
