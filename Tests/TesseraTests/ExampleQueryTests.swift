import TesseraQdrant
import Testing

@testable import Tessera

/// Recommendation, discovery, context, order-by and sample queries; grouped queries, facets and distance matrices.
extension PointID {
    /// The integer of an integer id (0 for a UUID).
    fileprivate var number: UInt64 {
        if case .integer(let value) = self { return value }
        return 0
    }
}

@Suite("Example queries, groups, facets and matrices")
struct ExampleQueryTests {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "dot", dimension: 2, kind: .dense(distance: .dot)),
        VectorField(name: "far", dimension: 2, kind: .dense(distance: .euclid)),
        VectorField(name: "tokens", dimension: 2, kind: .multivector(comparator: .maxSim)),
    ])

    /// Five points on a line: point i at (i, 1) in both dense fields, tokens (i, 0) and (0, 1).
    static func withStore(_ body: (CollectionStore) throws -> Void) throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: configuration)
            let kinds: [JSONValue] = ["a", "b", "a", 2.5, ["b", "c", "b"]]
            try store.upsert(
                (0..<5).map { index in
                    let x = Float(index)
                    return Point(
                        id: .integer(UInt64(index)),
                        payload: [
                            "kind": kinds[index], "n": .integer(Int64(index % 2)), "price": .double(10 - Double(x)),
                        ],
                        vectors: [
                            "dot": .dense([x, 1]), "far": .dense([x, 1]), "tokens": .multivector([[x, 0], [0, 1]]),
                        ]
                    )
                }
            )
            try body(store)
            try store.close()
        }
    }

    static func run(
        _ store: CollectionStore,
        _ query: QueryInput,
        using: String,
        limit: Int = 10
    ) throws
        -> [ScoredPoint]
    {
        try store.query(QueryRequest(root: QueryNode(query: query, using: using, limit: limit))).points
    }

    @Test("recommendation strategies score as Qdrant does and leave the examples out")
    func recommend() throws {
        try Self.withStore { store in
            // average_vector: 2·(3, 1) − (0, 1) = (6, 1); dot products 6i + 1, examples 3 and 0 left out.
            let average = Recommendation(positive: [.point(.integer(3))], negative: [.point(.integer(0))])
            let averaged = try Self.run(store, .recommend(average), using: "dot")
            #expect(averaged.map(\.id.number) == [4, 2, 1])
            #expect(averaged.map(\.score) == [25, 13, 7])
            // best_score: a point nearer its best positive than its best negative scores sigmoid(positive).
            let best = Recommendation(
                positive: [.vector(.dense([1, 0]))],
                negative: [.point(.integer(0))],
                strategy: .bestScore
            )
            let scored = try Self.run(store, .recommend(best), using: "dot")
            // Point i: positive i, negative 1; i = 1 ties, so it takes −sigmoid(1) = −0.75.
            #expect(scored.map(\.id.number) == [4, 3, 2, 1])
            #expect(zip(scored.map(\.score), [0.9, 0.875, 5.0 / 6.0, -0.75]).allSatisfy { abs($0 - $1) < 1e-6 })
            // sum_scores with Euclid similarities (minus squared distances): −(i−1)² + (i−4)².
            let sum = Recommendation(
                positive: [.vector(.dense([1, 1]))],
                negative: [.vector(.dense([4, 1]))],
                strategy: .sumScores
            )
            let summed = try Self.run(store, .recommend(sum), using: "far")
            #expect(summed.map(\.id.number) == [0, 1, 2, 3, 4])
            #expect(summed.map(\.score) == [15, 9, 3, -3, -9])
            // Multivector average: positive tokens and negated negative tokens, searched by MaxSim.
            let tokens = Recommendation(positive: [.point(.integer(1))], negative: [.vector(.multivector([[0, 1]]))])
            let multi = try Self.run(store, .recommend(tokens), using: "tokens")
            // Query tokens (1,0), (0,1), (0,−1) against (i,0),(0,1): i + 1 + 0.
            #expect(multi.map(\.id.number) == [4, 3, 2, 0])
            #expect(multi.map(\.score) == [5, 4, 3, 1])
            #expect(throws: TesseraError.self) {
                let negativeOnly = Recommendation(positive: [], negative: [.point(.integer(1))])
                return try Self.run(store, .recommend(negativeOnly), using: "dot")
            }
            #expect(throws: TesseraError.self) {
                try Self.run(store, .recommend(Recommendation(positive: [.point(.integer(99))])), using: "dot")
            }
            #expect(throws: TesseraError.self) {
                try Self.run(store, .recommend(Recommendation(positive: [.vector(.dense([1, 2, 3]))])), using: "dot")
            }
        }
    }

    @Test("discovery counts the context pairs a point satisfies; context penalises the ones it does not")
    func discoverAndContext() throws {
        try Self.withStore { store in
            // Pair: nearer (4, 1) than (0, 1) in Euclid terms means x > 2. Target (2, 1): similarity −(x−2)².
            let pair = ContextPair(positive: .vector(.dense([4, 1])), negative: .vector(.dense([0, 1])))
            let discovered = try Self.run(
                store,
                .discover(target: .vector(.dense([2, 1])), context: [pair]),
                using: "far"
            )
            func sigmoid(_ x: Float) -> Float { 0.5 * (x / (1 + abs(x)) + 1) }
            #expect(discovered.map(\.id.number) == [3, 4, 2, 1, 0])
            #expect(
                discovered.map(\.score) == [
                    1 + sigmoid(-1), 1 + sigmoid(-4), sigmoid(0), -1 + sigmoid(-1), -1 + sigmoid(-4),
                ]
            )
            let context = try Self.run(store, .context([pair]), using: "far")
            // Inside the region (x > 2) a point scores 0; at x = 2 the tie costs ε; below, fastSigmoid(difference).
            #expect(context.prefix(2).map(\.score) == [0, 0])
            #expect(Set(context.prefix(2).map(\.id.number)) == [3, 4])
            #expect(context.map(\.id.number).suffix(3) == [2, 1, 0])
            #expect(context.last!.score == Float(-16) / 17)
            // Point examples are left out.
            let pointPair = ContextPair(positive: .point(.integer(4)), negative: .point(.integer(0)))
            #expect(Set(try Self.run(store, .context([pointPair]), using: "dot").map(\.id.number)) == [1, 2, 3])
        }
    }

    @Test("maximal marginal relevance picks diverse candidates and keeps their nearest scores")
    func mmr() throws {
        try Self.withStore { store in
            // Euclid, query (4, 1): candidates 4, 3, 2, 1 (distances 0, 1, 2, 3). Relevance is minus the squared
            // distance; with diversity 1 each pick is the candidate least similar to those picked: 4 first, then 1
            // (farthest from 4; 0 is not a candidate), then 2 and 3 tie (each −1 from its nearest pick) and the
            // tie goes to the later pending candidate: 3, which took the place of the picked 4.
            var parameters = QueryParameters()
            parameters.mmr = MaximalMarginalRelevance(diversity: 1, candidateLimit: 4)
            let node = QueryNode(query: .dense([4, 1]), using: "far", limit: 3, parameters: parameters)
            let picked = try store.query(QueryRequest(root: node)).points
            #expect(picked.map(\.id.number) == [4, 1, 3])
            #expect(picked.map(\.score) == [0, 3, 1])
            // Diversity 0 is the nearest order.
            parameters.mmr = MaximalMarginalRelevance(diversity: 0, candidateLimit: 5)
            let nearest = try store.query(
                QueryRequest(root: QueryNode(query: .dense([4, 1]), using: "far", limit: 3, parameters: parameters))
            )
            #expect(nearest.points.map(\.id.number) == [4, 3, 2])
            parameters.mmr = MaximalMarginalRelevance(diversity: 1.5)
            #expect(throws: TesseraError.self) {
                try store.query(
                    QueryRequest(root: QueryNode(query: .dense([4, 1]), using: "far", parameters: parameters))
                )
            }
            let decoded = try QueryRequest(
                json:
                    #"{"query": {"nearest": [4, 1], "mmr": {"diversity": 1, "candidates_limit": 4}}, "using": "far", "limit": 3}"#
            )
            #expect(decoded.root.parameters.mmr == MaximalMarginalRelevance(diversity: 1, candidateLimit: 4))
            #expect(try store.query(decoded).points.map(\.id.number) == [4, 1, 3])
            for bad in [
                #"{"query": {"fusion": "rrf", "mmr": {}}}"#, #"{"query": {"nearest": [1, 2], "mmr": {"lambda": 1}}}"#,
                #"{"query": {"recommend": {"positive": [1]}, "sample": "random"}}"#,
            ] {
                #expect(throws: TesseraError.self) { try QueryRequest(json: bad) }
            }
        }
    }

    @Test("order-by and sample queries, as leaves and over a prefetch")
    func orderAndSample() throws {
        try Self.withStore { store in
            let order = OrderBy(key: try PayloadKey("price"), direction: .descending)
            let ordered = try Self.run(store, .orderBy(order), using: "dot", limit: 3)
            #expect(ordered.map(\.id.number) == [0, 1, 2])
            #expect(ordered.map(\.orderValue) == [.double(10), .double(9), .double(8)])
            #expect(ordered.allSatisfy { $0.score == 0 })
            // Over a prefetch: the three best dot products for (1, 0) are points 4, 3, 2, then ordered by price.
            let node = QueryNode(
                query: .orderBy(order),
                limit: 2,
                prefetch: [QueryNode(query: .dense([1, 0]), using: "dot", limit: 3)]
            )
            #expect(try store.query(QueryRequest(root: node)).points.map(\.id.number) == [2, 3])
            let sampled = try Self.run(store, .sample, using: "dot", limit: 3)
            #expect(sampled.count == 3 && Set(sampled.map(\.id.number)).count == 3)
            let all = try Self.run(store, .sample, using: "dot", limit: 10)
            #expect(Set(all.map(\.id.number)) == [0, 1, 2, 3, 4])
        }
    }

    @Test("grouped queries: groups in the order of their best hit, arrays join several, floats none")
    func groups() throws {
        try Self.withStore { store in
            let request = QueryRequest(
                root: QueryNode(query: .dense([1, 0]), using: "dot", limit: 1),
                withPayload: false
            )
            let groups = try store.queryGroups(request, groupBy: try PayloadKey("kind"), groupSize: 2, limit: 5)
            // Best first: 4 (b, c), 3 (a float: no group), 2 (a), 1 (b), 0 (a).
            #expect(groups.map(\.id) == ["b", "c", "a"])
            #expect(groups.map { $0.hits.map(\.id.number) } == [[4, 1], [4], [2, 0]])
            #expect(groups.allSatisfy { $0.hits.allSatisfy { $0.payload == nil } })
            let limited = try store.queryGroups(request, groupBy: try PayloadKey("n"), groupSize: 1, limit: 1)
            #expect(limited.map(\.id) == [0] && limited[0].hits.map(\.id.number) == [4])
            #expect(throws: TesseraError.self) {
                try store.queryGroups(request, groupBy: try PayloadKey("n"), groupSize: 0, limit: 1)
            }
        }
    }

    @Test("facets count each value once per point, most frequent first, then by value")
    func facets() throws {
        try Self.withStore { store in
            let kinds = try store.facet(key: try PayloadKey("kind"))
            #expect(
                kinds == [
                    FacetHit(value: "a", count: 2), FacetHit(value: "b", count: 2), FacetHit(value: "c", count: 1),
                ]
            )
            let odd = try Filter(json: #"{"must": {"key": "n", "match": {"value": 1}}}"#)
            #expect(try store.facet(key: try PayloadKey("kind"), filter: odd) == [FacetHit(value: "b", count: 1)])
            #expect(try store.facet(key: try PayloadKey("n"), limit: 1) == [FacetHit(value: 0, count: 3)])
        }
    }

    @Test("a distance matrix over a full sample lists each point's nearest others")
    func matrix() throws {
        try Self.withStore { store in
            let matrix = try store.distanceMatrix(field: "far", sample: 10, limit: 2)
            #expect(matrix.ids.map(\.number) == [0, 1, 2, 3, 4])
            #expect(matrix.neighbours.map { $0.map(\.id.number) } == [[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]])
            #expect(matrix.neighbours[0].map(\.score) == [1, 2])
            let sampled = try store.distanceMatrix(field: "dot", sample: 3, limit: 5)
            #expect(sampled.ids.count == 3 && sampled.neighbours.allSatisfy { $0.count == 2 })
            #expect(throws: TesseraError.self) { try store.distanceMatrix(field: "dot", sample: 1) }
        }
    }
}
