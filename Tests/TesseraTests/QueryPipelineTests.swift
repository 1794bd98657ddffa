import Foundation
import MaxSim
import TesseraQdrant
import TesseraTestSupport
import Testing

@testable import Tessera

/// A small collection where every stage's answer can be computed by hand: 16 points with a 4-d multivector
/// field, a 3-d cosine dense field, a `group` and BM25 text.
private struct SmallCollection {
    let store: CollectionStore
    var tokens: [Int: [[Float]]] = [:]
    var dense: [Int: [Float]] = [:]
    var groups: [Int: String] = [:]
    static let words = ["alpha", "beta", "gamma", "delta", "omega"]

    init(path: String, seed: UInt64 = 3) throws {
        store = try CollectionStore.create(
            at: path,
            configuration: CollectionConfiguration(fields: [multivectorField(), denseField(distance: .cosine)])
        )
        var random = SeededRandom(seed: seed)
        var points: [Point] = []
        for id in 1...16 {
            let rows = (0..<random.int(in: 1...5)).map { _ in random.signedUnits(4) }
            let vector = random.signedUnits(3)
            tokens[id] = rows
            dense[id] = vector
            groups[id] = id % 2 == 0 ? "even" : "odd"
            let text = (0..<4).map { _ in Self.words[random.int(in: 0...4)] }.joined(separator: " ")
            points.append(
                Point(
                    id: .integer(UInt64(id)),
                    payload: ["group": .string(groups[id]!), "text": .string(text)],
                    vectors: ["tokens": .multivector(rows), "dense": .dense(vector)]
                )
            )
        }
        try store.upsert(points)
    }

    func maxSim(_ query: [[Float]], _ id: Int) -> Float {
        query.reduce(0) { sum, q in
            sum + tokens[id]!.map { d in zip(q, d).reduce(0) { $0 + $1.0 * $1.1 } }.max()!
        }
    }

    func cosine(_ query: [Float], _ id: Int) -> Float {
        let d = dense[id]!
        let dot = zip(query, d).reduce(0) { $0 + $1.0 * $1.1 }
        let norms = query.reduce(0) { $0 + $1 * $1 }.squareRoot() * d.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return dot / norms
    }

    /// Ids ranked by a score, best first, ties to the smaller id (the earlier-stored point).
    static func ranked(_ ids: [Int], by score: (Int) -> Float) -> [Int] {
        let scored: [(id: Int, score: Float)] = ids.map { ($0, score($0)) }
        return scored.sorted { left, right in
            left.score != right.score ? left.score > right.score : left.id < right.id
        }.map(\.id)
    }
}

private func ids(_ response: QueryResponse) -> [Int] {
    response.points.map { point in
        if case .integer(let value) = point.id { return Int(value) }
        return -1
    }
}

private func multivector(_ rows: [[Float]]) throws -> Multivector {
    try Multivector(rows.flatMap { $0 }, dimension: rows[0].count)
}

// The filter is a constant: decoding it cannot fail.
private let evenFilter = try! Filter(json: #"{"must": [{"key": "group", "match": {"value": "even"}}]}"#)

@Suite("Query pipeline")
struct QueryPipelineTests {
    let query: [[Float]] = [[0.5, -0.2, 0.1, 0.9], [-0.3, 0.8, 0.4, 0.1]]
    let denseQuery: [Float] = [0.2, -0.7, 0.4]

    @Test("leaves: MaxSim, dense and BM25 each equal a brute-force ranking, with the filter applied")
    func leaves() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let all = Array(1...16)
            let even = all.filter { $0 % 2 == 0 }

            let maxSim = try collection.store.query(
                QueryRequest(root: QueryNode(query: .multivector(multivector(query)), limit: 5))
            )
            #expect(ids(maxSim) == Array(SmallCollection.ranked(all) { collection.maxSim(query, $0) }.prefix(5)))
            #expect(maxSim.stages.map(\.method) == [.maxsim])
            for (point, id) in zip(maxSim.points, ids(maxSim)) {
                #expect(abs(point.score - collection.maxSim(query, id)) < 1e-4)
            }

            let dense = try collection.store.query(
                QueryRequest(root: QueryNode(query: .dense(denseQuery), filter: evenFilter, limit: 4))
            )
            #expect(ids(dense) == Array(SmallCollection.ranked(even) { collection.cosine(denseQuery, $0) }.prefix(4)))
            #expect(dense.stages.first?.method == .dense)
            #expect(dense.stages.first?.candidateCount == 8)

            let text = try collection.store.query(
                QueryRequest(root: QueryNode(query: .text("gamma omega"), filter: evenFilter, limit: 16))
            )
            let expected = try collection.store.textSearch(
                TextSearchRequest(text: "gamma omega", fields: ["title", "text"], filter: evenFilter, limit: 16)
            )
            #expect(text.points.map(\.id) == expected.map(\.id))
            #expect(text.points.map(\.score) == expected.map(\.score))
            #expect(!text.points.isEmpty)
        }
    }

    @Test("nested prefetch: the root rescores exactly the union of its children's results")
    func nestedPrefetch() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let all = Array(1...16)
            let denseTop = Array(SmallCollection.ranked(all) { collection.cosine(denseQuery, $0) }.prefix(3))
            let inner = QueryNode(
                query: .dense(denseQuery),
                limit: 6,
                prefetch: [QueryNode(query: .dense(denseQuery), limit: 3)]
            )
            let root = QueryNode(
                query: .multivector(try multivector(query)),
                limit: 10,
                prefetch: [inner, QueryNode(query: .text("alpha"), limit: 2)]
            )
            let response = try collection.store.query(QueryRequest(root: root))
            let textTop = try collection.store.textSearch(
                TextSearchRequest(text: "alpha", fields: ["title", "text"], limit: 2)
            ).map { point -> Int in
                if case .integer(let value) = point.id { return Int(value) }
                return -1
            }
            let union = Array(Set(denseTop + textTop))
            #expect(ids(response) == SmallCollection.ranked(union) { collection.maxSim(query, $0) })
            #expect(
                response.stages.map(\.path) == [
                    "query.prefetch[0].prefetch[0]", "query.prefetch[0]", "query.prefetch[1]", "query",
                ]
            )
            #expect(response.stages.map(\.method) == [.dense, .denseRerank, .bm25, .maxsimRerank])
            #expect(response.stages[1].candidateCount == 3)
            #expect(response.stages[3].candidateCount == union.count)
        }
    }

    @Test("a node's filter restricts what it scores, as in Qdrant; a filter on every node holds at every stage")
    func filtersAtEveryLevel() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let highIDs = Filter(must: [.hasID(Set((9...16).map { PointID.integer(UInt64($0)) }))])
            let children = [
                QueryNode(query: .dense(denseQuery), limit: 6),
                QueryNode(query: .multivector(try multivector(query)), filter: highIDs, limit: 6),
            ]
            let root = QueryNode(
                query: .multivector(try multivector(query)),
                filter: evenFilter,
                limit: 10,
                prefetch: children
            )
            let response = try collection.store.query(QueryRequest(root: root))
            // The children search unfiltered by the root (the dense leaf sees all 16 points; the other its own 8).
            #expect(response.stages[0].candidateCount == 16)
            #expect(response.stages[1].candidateCount == 8)
            let denseTop = SmallCollection.ranked(Array(1...16)) { collection.cosine(denseQuery, $0) }.prefix(6)
            let lateTop = SmallCollection.ranked(Array(9...16)) { collection.maxSim(query, $0) }.prefix(6)
            let union = Set(denseTop).union(lateTop).filter { $0 % 2 == 0 }
            #expect(ids(response) == SmallCollection.ranked(Array(union)) { collection.maxSim(query, $0) })
            #expect(response.stages[2].candidateCount == union.count)

            // The same filter on every node: every stage sees only even points.
            var everywhere = root
            everywhere.prefetch = children.map { child in
                var child = child
                child.filter = child.filter.map { Filter(must: [.filter($0), .filter(evenFilter)]) } ?? evenFilter
                return child
            }
            let filtered = try collection.store.query(QueryRequest(root: everywhere))
            #expect(filtered.stages[0].candidateCount == 8)
            #expect(filtered.stages[1].candidateCount == 4)  // even ∩ 9...16
            #expect(ids(filtered).allSatisfy { $0 % 2 == 0 })
            let evenDense = SmallCollection.ranked([2, 4, 6, 8, 10, 12, 14, 16]) { collection.cosine(denseQuery, $0) }
            let expected = Set(evenDense.prefix(6)).union([10, 12, 14, 16])
            #expect(ids(filtered) == SmallCollection.ranked(Array(expected)) { collection.maxSim(query, $0) })

            // A fusion node's filter holds for the fused list.
            let fused = try collection.store.query(
                QueryRequest(root: QueryNode(query: .fusion(.rrf()), filter: evenFilter, limit: 16, prefetch: children))
            )
            #expect(!fused.points.isEmpty)
            #expect(ids(fused).allSatisfy { $0 % 2 == 0 })
        }
    }

    @Test("fusion: RRF and DBSF of the children's lists as computed by hand; ties in order of first appearance")
    func fusion() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let dense = QueryNode(query: .dense(denseQuery), limit: 5)
            let late = QueryNode(query: .multivector(try multivector(query)), limit: 5)
            let denseList = ids(try collection.store.query(QueryRequest(root: dense)))
            let lateList = ids(try collection.store.query(QueryRequest(root: late)))
            let fused = try collection.store.query(
                QueryRequest(root: QueryNode(query: .fusion(.rrf()), limit: 20, prefetch: [dense, late]))
            )
            var expected: [Int: Float] = [:]
            var firstSeen: [Int] = []
            for list in [denseList, lateList] {
                for (position, id) in list.enumerated() {
                    if expected[id] == nil { firstSeen.append(id) }
                    expected[id, default: 0] += 1 / Float(position + 2)  // 1 / (k + rank), k = 2, rank from 1
                }
            }
            let order = firstSeen.enumerated().sorted {
                expected[$0.element]! > expected[$1.element]!
                    || (expected[$0.element]! == expected[$1.element]! && $0.offset < $1.offset)
            }.map(\.element)
            #expect(ids(fused) == order)
            #expect(fused.points.map(\.score) == order.map { expected[$0]! })
            #expect(fused.stages.last?.method == .rrf)

            // Two lists in opposite orders tie every point: the first list's order wins.
            let byID = QueryNode(query: nil, filter: Filter(must: [.hasID([.integer(3), .integer(5)])]), limit: 2)
            let reversed = QueryNode(
                query: .dense(collection.dense[5]!),
                filter: Filter(must: [.hasID([.integer(3), .integer(5)])]),
                limit: 2
            )
            let reversedIDs = ids(try collection.store.query(QueryRequest(root: reversed)))
            #expect(reversedIDs == [5, 3])
            let tie = try collection.store.query(
                QueryRequest(root: QueryNode(query: .fusion(.rrf(k: 60)), limit: 2, prefetch: [byID, reversed]))
            )
            #expect(ids(tie) == [3, 5])
            #expect(tie.points[0].score == tie.points[1].score)

            let dbsf = try collection.store.query(
                QueryRequest(root: QueryNode(query: .fusion(.dbsf()), limit: 20, prefetch: [dense, late]))
            )
            let lists = try [dense, late].map { try collection.store.query(QueryRequest(root: $0)).points }
            let byHand = try Fusion.distributionBased(lists)
            #expect(dbsf.points.map(\.id) == byHand.map(\.id))
            #expect(dbsf.points.map(\.score) == byHand.map(\.score))
        }
    }

    @Test("edges: empty candidate sets, a limit beyond the collection, offset, score threshold, point-id queries")
    func edges() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let nothing = Filter(must: [.hasID([.integer(999)])])
            let empty = try collection.store.query(
                QueryRequest(
                    root: QueryNode(
                        query: .multivector(try multivector(query)),
                        limit: 5,
                        prefetch: [QueryNode(query: .dense(denseQuery), filter: nothing, limit: 5)]
                    )
                )
            )
            #expect(empty.points.isEmpty)
            #expect(empty.stages.map(\.resultCount) == [0, 0])

            let everything = try collection.store.query(
                QueryRequest(root: QueryNode(query: .multivector(try multivector(query)), limit: 1000))
            )
            #expect(Set(ids(everything)) == Set(1...16))

            let paged = try collection.store.query(
                QueryRequest(root: QueryNode(query: .multivector(try multivector(query)), limit: 4), offset: 3)
            )
            #expect(ids(paged) == Array(ids(everything)[3..<7]))

            let cut = everything.points[5].score
            let thresholded = try collection.store.query(
                QueryRequest(
                    root: QueryNode(query: .multivector(try multivector(query)), limit: 16, scoreThreshold: cut)
                )
            )
            #expect(ids(thresholded) == Array(ids(everything).prefix(6)))

            let byPoint = try collection.store.query(
                QueryRequest(root: QueryNode(query: .point(.integer(7)), using: "dense", limit: 3))
            )
            let others = Array(1...16).filter { $0 != 7 }
            #expect(
                ids(byPoint)
                    == Array(SmallCollection.ranked(others) { collection.cosine(collection.dense[7]!, $0) }.prefix(3))
            )

            let withVectors = try collection.store.query(
                QueryRequest(
                    root: QueryNode(query: .point(.integer(7)), using: "tokens", limit: 1),
                    withPayload: false,
                    withVectors: ["tokens"],
                    withMatches: false
                )
            )
            let top = try #require(withVectors.points.first)
            #expect(top.payload == nil)
            let topID: Int = if case .integer(let value) = top.id { Int(value) } else { -1 }
            #expect(top.vectors?["tokens"]?.flattened.values == collection.tokens[topID]!.flatMap { $0 })
        }
    }

    @Test("bad trees are refused with the node named, and nothing is scored")
    func errors() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            func failure(_ root: QueryNode) -> TesseraError? {
                do {
                    _ = try collection.store.query(QueryRequest(root: root))
                    return nil
                } catch { return error }
            }
            let fusionLeaf = failure(QueryNode(query: .fusion(.rrf()), limit: 3))
            #expect(fusionLeaf?.location.field == "query.prefetch")
            let unknown = failure(
                QueryNode(query: .fusion(.rrf()), prefetch: [QueryNode(query: .dense(denseQuery), using: "nope")])
            )
            #expect(unknown?.code == .notFound)
            #expect(unknown?.location.field == "query.prefetch[0].using")
            let negative = failure(QueryNode(query: .dense(denseQuery), prefetch: [QueryNode(query: nil, limit: -1)]))
            #expect(negative?.location.field == "query.prefetch[0].limit")
            let wrongSize = failure(QueryNode(query: .dense([1, 2, 3, 4, 5])))
            #expect(wrongSize?.code == .dimensionMismatch)
            let missingPoint = failure(QueryNode(query: .point(.integer(99)), using: "dense"))
            #expect(missingPoint?.code == .notFound)
            let noEncoder = failure(QueryNode(query: .text("alpha"), using: "tokens"))
            #expect(noEncoder?.message.contains("encoder") == true)
            let twoPrefetches = failure(
                QueryNode(
                    query: nil,
                    prefetch: [QueryNode(query: .dense(denseQuery)), QueryNode(query: .dense(denseQuery))]
                )
            )
            #expect(twoPrefetches?.location.field == "query.query")
        }
    }

    @Test("Qdrant's query JSON decodes into the same tree and gives the same results")
    func json() throws {
        try withCollectionPath { path in
            let collection = try SmallCollection(path: path)
            let body = """
                {"prefetch": [
                   {"query": [0.2, -0.7, 0.4], "using": "dense", "limit": 6},
                   {"query": {"text": "alpha beta"}, "limit": 4, "params": {"k1": 0.9, "b": 0.4}}
                 ],
                 "query": [[0.5, -0.2, 0.1, 0.9], [-0.3, 0.8, 0.4, 0.1]],
                 "using": "tokens",
                 "filter": {"must": [{"key": "group", "match": {"value": "even"}}]},
                 "limit": 3, "offset": 1, "with_payload": ["group"], "with_vector": false, "explain": true}
                """
            let request = try QueryRequest(json: body)
            #expect(request.root.prefetch.count == 2)
            #expect(request.root.prefetch[1].parameters.bm25 == BM25Parameters(k1: 0.9, b: 0.4))
            #expect(request.offset == 1)
            #expect(request.payloadSelector == (try PayloadSelector(include: ["group"])))
            let response = try collection.store.query(request)
            // As in Qdrant, the root's filter applies to the prefetches as well.
            let built = try collection.store.query(
                QueryRequest(
                    root: QueryNode(
                        query: .multivector(try multivector(query)),
                        using: "tokens",
                        filter: evenFilter,
                        limit: 3,
                        prefetch: [
                            QueryNode(query: .dense(denseQuery), using: "dense", filter: evenFilter, limit: 6),
                            QueryNode(
                                query: .text("alpha beta"),
                                filter: evenFilter,
                                limit: 4,
                                parameters: QueryParameters(bm25: BM25Parameters(k1: 0.9, b: 0.4))
                            ),
                        ]
                    ),
                    offset: 1
                )
            )
            #expect(response.points.map(\.id) == built.points.map(\.id))
            #expect(response.points.allSatisfy { $0.payload.map { Array($0.keys) } == ["group"] })
            #expect(response.points.allSatisfy { $0.matchedTokens?.count == 2 })

            let rrf = try QueryRequest(
                json: #"{"prefetch": {"query": 3, "using": "dense"}, "query": {"rrf": {"k": 7}}}"#
            )
            guard case .fusion(.rrf(let k, _))? = rrf.root.query else {
                Issue.record("rrf did not decode")
                return
            }
            #expect(k == 7)
            guard case .point(.integer(3))? = rrf.root.prefetch.first?.query else {
                Issue.record("a point id did not decode")
                return
            }
            for (bad, field) in [
                (#"{"query": [1, "x"]}"#, "query[1]"),
                (#"{"query": {"formula": {}}}"#, "query.formula"),
                (#"{"query": {"recommend": {"strategy": "best"}}}"#, "query.recommend.strategy"),
                (#"{"prefetch": [{"limit": "ten"}]}"#, "prefetch[0].limit"),
                (#"{"query": [[1, 2], [3]]}"#, "query"),
                (#"{"filter": {"must": [{"key": "a", "match": {}}]}}"#, nil),
                (#"{"limt": 3}"#, "limt"),
            ] as [(String, String?)] {
                do throws(TesseraError) {
                    _ = try QueryRequest(json: bad)
                    Issue.record("accepted \(bad)")
                } catch {
                    if let field { #expect(error.location.field == field, "\(bad): \(error)") }
                }
            }
        }
    }
}
