import Foundation
import MaxSim
import TesseraTestSupport
import Testing

@testable import Tessera

/// Encodes any text as fixed vectors: two token rows for a multivector field, one vector for a dense field, and
/// counts how often it was asked.
private final class FixedEncoder: QueryTextEncoder, @unchecked Sendable {
    private let lock = NSLock()
    private var calls = 0
    var callCount: Int { lock.withLock { calls } }

    func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        lock.withLock { calls += 1 }
        if field.isMultivector { return .multivector([[0.5, -0.2, 0.1, 0.9], [-0.3, 0.8, 0.4, 0.1]]) }
        return .dense([0.2, 0.7, -0.1])
    }
}

/// 40 points: a 4-d multivector field `tokens`, a 3-d cosine field `pooled`, a `group` and BM25 text.
private func makeCollection(at path: String) throws -> CollectionStore {
    let store = try CollectionStore.create(
        at: path,
        configuration: CollectionConfiguration(fields: [multivectorField(), denseField("pooled")])
    )
    var random = SeededRandom(seed: 11)
    let words = ["alpha", "beta", "gamma", "delta", "omega"]
    var points: [Point] = []
    for id in 1...40 {
        let text = (0..<5).map { _ in words[random.int(in: 0...4)] }.joined(separator: " ")
        points.append(
            Point(
                id: .integer(UInt64(id)),
                payload: ["group": .string(id % 3 == 0 ? "third" : "rest"), "text": .string(text)],
                vectors: [
                    "tokens": .multivector((0..<random.int(in: 1...5)).map { _ in random.signedUnits(4) }),
                    "pooled": .dense(random.signedUnits(3)),
                ]
            )
        )
    }
    try store.upsert(points)
    return store
}

private let thirdFilter = try! Filter(json: #"{"must": [{"key": "group", "match": {"value": "third"}}]}"#)

/// The tree with `filter` put on every node, the way a filter was made to hold at every stage before scopes.
private func filteredEverywhere(_ node: QueryNode, _ filter: Filter) -> QueryNode {
    var copy = node
    copy.filter = filter
    copy.prefetch = node.prefetch.map { filteredEverywhere($0, filter) }
    return copy
}

@Suite("Query plans")
struct QueryPlanTests {
    @Test("the hybrid preset: each first stage once, the filter evaluated once and on the leaves only")
    func hybridPlan() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            let request = try store.queryRequest(
                for: TextQuery("alpha gamma", options: PresetOptions(candidates: 20), filter: thirdFilter, limit: 5)
            )
            let plan = try store.plan(request)
            // bm25 and dense, then the MaxSim rerank of their union, then the fusion of the rerank with both.
            #expect(
                plan.steps.map(\.operation) == [
                    .search(.bm25, exact: false), .search(.dense(field: "pooled"), exact: false),
                    .rescore(.multivector(field: "tokens")), .fuse(.dbsf()),
                ]
            )
            #expect(plan.steps[0].paths == ["query.prefetch[0].prefetch[0]", "query.prefetch[1]"])
            #expect(plan.steps[1].paths == ["query.prefetch[0].prefetch[1]", "query.prefetch[2]"])
            #expect(plan.steps[2].inputs == [0, 1])
            #expect(plan.steps[3].inputs == [2, 0, 1])
            #expect(plan.root == 3)
            #expect(plan.leaves.count == 2)
            #expect(plan.steps.map(\.node.limit) == [20, 20, 20, 5])
            // One filter, the scope: no step filters on its own.
            #expect(plan.filters == [thirdFilter])
            #expect(plan.scope == 0)
            #expect(plan.steps.allSatisfy { $0.filter == nil })
        }
    }

    @Test("a memoised leaf runs once and its stage names every node it answered")
    func memoisedStages() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            let encoder = FixedEncoder()
            let query = TextQuery("alpha gamma", options: PresetOptions(candidates: 20), filter: thirdFilter, limit: 5)
            let response = try store.query(try store.queryRequest(for: query), encoder: encoder)
            #expect(response.stages.map(\.method) == [.bm25, .dense, .maxsimRerank, .dbsf])
            #expect(response.stages[0].sharedWith == ["query.prefetch[1]"])
            // The dense leaf and the rerank each encode once.
            #expect(encoder.callCount == 2)
            #expect(!response.points.isEmpty)
            #expect(
                response.points.allSatisfy { point in
                    guard case .integer(let id) = point.id else { return false }
                    return id % 3 == 0
                }
            )
        }
    }

    @Test("every preset answers as the same tree with the filter copied onto every node")
    func scopeMatchesCopiedFilters() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            let presets: [QueryPreset] = [
                .exact, .bm25, .dense(rerank: false), .dense(rerank: true), .hybrid(fusion: nil),
                .hybrid(fusion: .rrf()), .hybrid(fusion: .dbsf()),
            ]
            for preset in presets {
                let query = TextQuery(
                    "beta omega",
                    preset: preset,
                    options: PresetOptions(candidates: 12),
                    filter: thirdFilter,
                    limit: 6
                )
                let scoped = try store.search(query, encoder: FixedEncoder())
                var copied = try store.queryRequest(for: query)
                copied.root = filteredEverywhere(copied.root, thirdFilter)
                copied.scope = nil
                let reference = try store.query(copied, encoder: FixedEncoder())
                #expect(scoped.points.map(\.id) == reference.points.map(\.id), "\(preset)")
                #expect(scoped.points.map(\.score) == reference.points.map(\.score), "\(preset)")
                #expect(!scoped.points.isEmpty, "\(preset)")
            }
        }
    }

    @Test("one filter on several nodes is one filter of the plan")
    func repeatedFilters() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            let leaf = QueryNode(query: .dense([0.1, 0.2, 0.3]), using: "pooled", filter: thirdFilter, limit: 10)
            let request = QueryRequest(
                root: QueryNode(
                    query: .multivector(try Multivector([1, 0, 0, 0], dimension: 4)),
                    using: "tokens",
                    filter: thirdFilter,
                    limit: 3,
                    prefetch: [leaf]
                )
            )
            let plan = try store.plan(request)
            #expect(plan.filters.count == 1)
            #expect(plan.steps.map(\.filter) == [0, 0])
            #expect(plan.scope == nil)
        }
    }

    @Test("a two-level rescore plans as Qdrant's: a leaf, then each rescoring on the one before")
    func doubleRescore() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            let request = QueryRequest(
                root: QueryNode(
                    query: .multivector(try Multivector([1, 0, 0, 0, 0, 1, 0, 0], dimension: 4)),
                    using: "tokens",
                    limit: 10,
                    prefetch: [
                        QueryNode(
                            query: .dense([0.3, 0.1, 0.2]),
                            using: "pooled",
                            limit: 30,
                            prefetch: [QueryNode(query: .text("alpha"), limit: 1000)]
                        )
                    ]
                ),
                offset: 2
            )
            let plan = try store.plan(request)
            #expect(
                plan.steps.map(\.operation) == [
                    .search(.bm25, exact: false), .rescore(.dense(field: "pooled")),
                    .rescore(.multivector(field: "tokens")),
                ]
            )
            #expect(plan.steps.map(\.inputs) == [[], [0], [1]])
            // Limits are capped at the collection's 40 points; the root's covers the offset.
            #expect(plan.steps.map(\.node.limit) == [40, 30, 12])
            #expect(plan.offset == 2)
        }
    }

    @Test("bad trees are refused at planning, naming the node")
    func refusals() throws {
        try withTemporaryDirectory { path in
            let store = try makeCollection(at: path)
            func location(_ root: QueryNode) -> String? {
                do {
                    _ = try store.plan(QueryRequest(root: root))
                    return nil
                } catch {
                    return error.location.field
                }
            }
            #expect(location(QueryNode(query: .fusion(.rrf()))) == "query.prefetch")
            let bad = QueryNode(query: .text("a"), limit: -1)
            #expect(location(QueryNode(query: .fusion(.rrf()), prefetch: [bad])) == "query.prefetch[0].limit")
            let two = [QueryNode(query: .text("a")), QueryNode(query: .text("b"))]
            #expect(location(QueryNode(query: nil, prefetch: two)) == "query.query")
            #expect(location(QueryNode(query: .dense([1, 2, 3]), using: "nope")) == "query.using")
            // A text query whose `using` names no vector field names a payload key: planned, then refused when
            // no text index with scoring is declared there.
            let textIndexQuery = QueryRequest(root: QueryNode(query: .text("a"), using: "nope"))
            #expect(location(textIndexQuery.root) == nil)
            let missing = #expect(throws: TesseraError.self) { try store.query(textIndexQuery) }
            #expect(missing?.code == .invalidArgument)
            #expect(missing?.message.contains("'nope'") == true)
            #expect(location(QueryNode(query: .dense([1, 2, 3]), prefetch: [two[0]])) == nil)
        }
    }

    @Test("text fields resolve from the configuration: the encoder-built field first, else the only one")
    func textFieldResolution() {
        let identity = EncoderIdentity(modelName: "m", contentHash: "h", profile: .plain)
        var built = multivectorField("colbert")
        built.encoder = identity
        var pooled = denseField("mean")
        pooled.encoder = identity
        let two = CollectionConfiguration(fields: [multivectorField("raw"), built, denseField("other"), pooled])
        #expect(two.textTokenField?.name == "colbert")
        #expect(two.textDenseField?.name == "mean")
        let rest = CollectionConfiguration(fields: [multivectorField("vectors"), denseField("embedding")])
        #expect(rest.textTokenField?.name == "vectors")
        #expect(rest.textDenseField?.name == "embedding")
        let ambiguous = CollectionConfiguration(fields: [multivectorField("a"), multivectorField("b")])
        #expect(ambiguous.textTokenField == nil)
        #expect(ambiguous.textDenseField == nil)
    }

    @Test("a node's filter reaches every node below it (Qdrant's rule), ANDed with their own")
    func inheritedFilters() throws {
        let group = Filter(must: [
            .field(FieldCondition(key: try PayloadKey("group"), test: .match(.value(.string("third")))))
        ])
        let text = Filter(must: [
            .field(FieldCondition(key: try PayloadKey("text"), test: .match(.value(.string("alpha")))))
        ])
        let tree = QueryNode(
            query: nil,
            filter: group,
            prefetch: [
                QueryNode(query: nil, prefetch: [QueryNode(query: nil)]),
                QueryNode(query: nil, filter: text),
                QueryNode(query: nil, filter: group),
            ]
        )
        let inherited = tree.inheritingFilters()
        #expect(inherited.filter == group)
        #expect(inherited.prefetch[0].filter == group)
        #expect(inherited.prefetch[0].prefetch[0].filter == group)
        #expect(inherited.prefetch[1].filter == Filter(must: [.filter(group), .filter(text)]))
        #expect(inherited.prefetch[2].filter == group)
        // Without filters above, nothing changes.
        #expect(
            QueryNode(query: nil, prefetch: [QueryNode(query: nil, filter: text)]).inheritingFilters()
                .prefetch[0].filter == text
        )
    }
}
