import Tessera
import Testing

@testable import TesseraQdrant

@Suite("lookup_from: point ids read from another collection")
struct LookupTests {
    static func decode(_ json: String) throws -> Qdrant.QueryRequest {
        try JSONValueDecoder().decode(Qdrant.QueryRequest.self, from: try JSONValue.parse(json))
    }

    @Test("ids in the query and its examples become the looked-up vectors; nodes without lookup_from keep theirs")
    func resolve() throws {
        let body = try Self.decode(
            #"""
            {"query": {"recommend": {"positive": [1, [0.5, 0.5]], "negative": [2]}}, "using": "dense",
             "lookup_from": {"collection": "other", "vector": "side"},
             "prefetch": [{"query": 3, "using": "dense", "lookup_from": {"collection": "other"}}, {"query": 4}]}
            """#
        )
        var asked: [String] = []
        let resolved = try body.node.resolvingLookups { collection, field, id in
            asked.append("\(collection).\(field).\(id)")
            return .dense([Float(id.description)!, 0])
        }
        #expect(asked == ["other.dense.3", "other.side.1", "other.side.2"])
        guard case .recommend(let recommendation)? = resolved.query else {
            Issue.record("the recommendation changed kind")
            return
        }
        #expect(recommendation.positive == [.vector(.dense([1, 0])), .vector(.dense([0.5, 0.5]))])
        #expect(recommendation.negative == [.vector(.dense([2, 0]))])
        guard case .dense(let values)? = resolved.prefetch?[0].query, case .point? = resolved.prefetch?[1].query else {
            Issue.record("the prefetches did not resolve as expected")
            return
        }
        #expect(values == [3, 0])
        #expect(resolved.lookupFrom == nil)
    }

    @Test("a lookup without a vector name needs `using`")
    func needsField() throws {
        let body = try Self.decode(#"{"query": 3, "lookup_from": {"collection": "other"}}"#)
        #expect(throws: (any Error).self) { try body.node.resolvingLookups { _, _, _ in .dense([1]) } }
        #expect(throws: (any Error).self) {
            try Self.decode(#"{"query": 3, "lookup_from": {"collection": "o", "x": 1}}"#)
        }
    }
}
