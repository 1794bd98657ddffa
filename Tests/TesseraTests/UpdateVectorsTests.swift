import MaxSim
import TesseraPlatform
import Testing

@testable import Tessera

/// Replacing some vector fields of stored points (Qdrant's `update_vectors`).
@Suite("Vector updates")
struct UpdateVectorsTests {
    @Test("fields are replaced in the tail and in sealed segments; payloads, other fields and searches follow")
    func replace() throws {
        var random = SplitMix64.printed("update vectors")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: CollectionStoreTests.configuration)
            try store.upsert((0..<6).map { CollectionStoreTests.point($0, using: &random) })
            try #require(try store.sealTail() != nil)
            try store.upsert((6..<9).map { CollectionStoreTests.point($0, using: &random) })
            let before = try store.get(ids: [.integer(2), .integer(7)], withVectors: true)
            let sealedTokens: VectorValue = .multivector([[1, 0, 0, 0], [0, 0, 0, 1]])
            try store.updateVectors([
                (.integer(2), ["tokens": sealedTokens]),
                (.integer(7), ["dense": .dense([9, 8, 7])]),
                (.integer(7), ["tokens": .multivector([[0, 1, 0, 0]])]),
            ])
            let after = try store.get(ids: [.integer(2), .integer(7)], withVectors: true)
            #expect(after[0].vectors?["tokens"] == sealedTokens)
            #expect(after[0].vectors?["dense"] == before[0].vectors?["dense"])
            #expect(after[0].payload == before[0].payload)
            #expect(after[1].vectors?["dense"] == .dense([9, 8, 7]))
            #expect(after[1].vectors?["tokens"] == .multivector([[0, 1, 0, 0]]))
            #expect(after[1].payload == before[1].payload)
            #expect(store.count() == 9)
            // The scoring view follows: point 7 is the best dense match for its new vector, point 2 for its tokens.
            let dense = try store.query(
                QueryRequest(root: QueryNode(query: .dense([9, 8, 7]), using: "dense", limit: 1))
            )
            #expect(dense.points.first?.id == .integer(7))
            var exact = QueryParameters()
            exact.exact = true
            let tokens = try Multivector([1, 0, 0, 0, 0, 0, 0, 1], dimension: 4)
            let maxSim = try store.query(
                QueryRequest(root: QueryNode(query: .multivector(tokens), using: "tokens", limit: 9, parameters: exact))
            )
            #expect(maxSim.points.first { $0.id == .integer(2) }?.score == 2)
            // Reopened, the changes are there.
            try store.close()
            let reopened = try CollectionStore.open(at: path)
            let stored = try reopened.get(ids: [.integer(7)], withVectors: true)
            #expect(stored.first?.vectors?["dense"] == .dense([9, 8, 7]))
            try reopened.close()
        }
    }

    @Test("a missing id lets the others through, then names it; a bad vector writes nothing")
    func errors() throws {
        var random = SplitMix64.printed("update vectors errors")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: CollectionStoreTests.configuration)
            try store.upsert((0..<3).map { CollectionStoreTests.point($0, using: &random) })
            do throws(TesseraError) {
                try store.updateVectors([
                    (.integer(42), ["dense": .dense([1, 1, 1])]), (.integer(1), ["dense": .dense([2, 2, 2])]),
                ])
                Issue.record("a missing id was not reported")
            } catch {
                #expect(error.code == .notFound && error.message.contains("42"))
            }
            #expect(try store.get(ids: [.integer(1)], withVectors: true).first?.vectors?["dense"] == .dense([2, 2, 2]))
            let kept = try store.get(ids: [.integer(0)], withVectors: true)
            for bad: [String: VectorValue] in [
                ["dense": .dense([1, 2])], ["nope": .dense([1, 2, 3])], ["tokens": .multivector([])],
            ] {
                #expect(throws: TesseraError.self) {
                    try store.updateVectors([(.integer(0), ["dense": .dense([5, 5, 5])]), (.integer(0), bad)])
                }
            }
            #expect(try store.get(ids: [.integer(0)], withVectors: true) == kept)
            try store.close()
        }
    }
}
