import Foundation
public import MaxSim
public import TesseraIndex

/// How a fusion node combines its prefetch lists.
public enum FusionMethod: Sendable, Equatable {
    /// Reciprocal rank fusion: `Σ weight / (k + rank)`, ranks from 1 (see ``Fusion/reciprocalRank(_:rankConstant:weights:)``).
    case rrf(k: Int = Fusion.defaultRankConstant, weights: [Float]? = nil)
    /// Distribution-based score fusion: each list scaled by its mean ± 3σ, then summed.
    case dbsf(weights: [Float]? = nil)
}

/// What a query node asks for.
public enum QueryInput: Sendable, Equatable {
    /// Late interaction (MaxSim) against a multivector field.
    case multivector(Multivector)
    /// A dense vector against a dense field (or a one-token multivector against a multivector field).
    case dense([Float])
    /// A sparse vector against a sparse field (dot product; points sharing no index are not results).
    case sparse(SparseVector)
    /// Text: BM25 over payload text when `using` is `nil` or `"bm25"`; encoded by the pipeline's
    /// ``QueryTextEncoder`` when `using` names a vector field; otherwise BM25 over the text index with scoring on
    /// the payload key `using` names (Qdrant's text query, `k1` and `b` from ``QueryParameters/bm25``).
    case text(String)
    /// The stored vector of a point in the field `using` names; the point itself is left out of the results.
    case point(PointID)
    /// Fusion of the node's prefetch lists.
    case fusion(FusionMethod)
    /// Points like the positive examples and unlike the negative ones (Qdrant's `recommend`), in the field `using`
    /// names.
    case recommend(Recommendation)
    /// Points near the target within the region the context pairs describe (Qdrant's `discover`): each point
    /// scores the number of pairs whose positive it is nearer, less the number whose negative it is nearer, plus
    /// its target similarity mapped into 0...1.
    case discover(target: QueryExample, context: [ContextPair])
    /// Points in the region the pairs describe (Qdrant's `context`): each pair whose negative a point is nearer
    /// than its positive counts against it.
    case context([ContextPair])
    /// Points ordered by a payload value (Qdrant's `order_by`), score 0, each result's value in
    /// ``ScoredPoint/orderValue``.
    case orderBy(OrderBy)
    /// Points in random order (Qdrant's `sample: random`), score 0.
    case sample
}

/// Search settings of a node (Qdrant's `params`, with Tessera's own additions).
public struct QueryParameters: Sendable, Equatable {
    /// Score every allowed point instead of using an index (HNSW graph, compressed multivector index).
    public var exact: Bool
    /// The HNSW search breadth; `nil` for ``CollectionStore/defaultHNSWEf``.
    public var hnswEf: Int?
    /// Compressed index settings (`nprobe` and friends); `nil` for the defaults of the node's limit.
    public var compressed: CompressedSearchParameters?
    /// BM25's `k1` and `b`.
    public var bm25: BM25Parameters
    /// The payload fields whose text BM25 searches, joined with spaces.
    public var textFields: [String]
    /// How BM25 turns text into terms.
    public var analyzer: TextAnalyzer
    /// Reorders a vector query's nearest candidates for diversity (Qdrant's `mmr`); `nil` for plain nearest.
    public var mmr: MaximalMarginalRelevance?
    /// The points whose statistics inverse document frequencies are computed over (Qdrant's `idf: {"corpus": …}`):
    /// the IDF modifier of a sparse field counts N and n among the live points passing it, a text index's BM25
    /// also the average length. `nil` for the whole collection (Qdrant's `"global"`). A node's own setting: it
    /// does not reach its prefetches.
    public var idfCorpus: Filter?
    /// The IDF modifier's N and n to weight this node's sparse query by, instead of the collection's own (a sharded
    /// collection's, summed over its shards before scoring); `nil` to count them here.
    public var idfStatistics: CorpusStatistics?
    /// BM25's N, total length and n to weight this node's text query over a payload text index by, instead of the
    /// collection's own (a sharded collection's, summed over its shards); `nil` to count them here.
    public var textStatistics: TextCorpusStatistics?

    /// The payload fields BM25 searches unless told otherwise: BEIR's `title` and `text`.
    public static let defaultTextFields = ["title", "text"]

    /// Creates settings.
    /// - Parameters:
    ///   - exact: Score every allowed point.
    ///   - hnswEf: HNSW search breadth.
    ///   - compressed: Compressed index settings.
    ///   - bm25: BM25's `k1` and `b`.
    ///   - textFields: Payload fields for BM25.
    ///   - analyzer: BM25's analyzer.
    public init(
        exact: Bool = false,
        hnswEf: Int? = nil,
        compressed: CompressedSearchParameters? = nil,
        bm25: BM25Parameters = BM25Parameters(),
        textFields: [String] = QueryParameters.defaultTextFields,
        analyzer: TextAnalyzer = TextAnalyzer()
    ) {
        self.exact = exact
        self.hnswEf = hnswEf
        self.compressed = compressed
        self.bm25 = bm25
        self.textFields = textFields
        self.analyzer = analyzer
    }
}

/// Maximal marginal relevance (Qdrant's `mmr`): the `candidateLimit` nearest points are found first, then picked
/// one by one, each time the candidate maximising `(1 − diversity) · similarity to the query − diversity ·
/// (its largest similarity to a point already picked)`, starting from the most similar. Scores stay the nearest
/// search's; only the order (and which candidates make the limit) changes.
public struct MaximalMarginalRelevance: Sendable, Equatable {
    /// 0 for relevance alone, 1 for diversity alone.
    public var diversity: Float
    /// How many nearest candidates to pick from; `nil` for the node's limit.
    public var candidateLimit: Int?

    /// Creates settings.
    public init(diversity: Float = 0.5, candidateLimit: Int? = nil) {
        self.diversity = diversity
        self.candidateLimit = candidateLimit
    }
}

/// One node of a query tree, in the shape of Qdrant's query API.
///
/// A node without `prefetch` (a leaf) searches the whole collection through the first stage of its field: the
/// compressed index or exact MaxSim for a multivector field, the HNSW graph or an exact scan for a dense
/// field, BM25 for text. A node with `prefetch` scores only the union of its children's results: exactly, by
/// its own query (MaxSim on the stored vectors for a multivector query), or by fusing the children's ranked
/// lists. A node's `filter` restricts what that node scores and passes up: a leaf searches only the points
/// passing it, an inner node scores only the children's results passing it. As in Qdrant, it does not reach the
/// children. To filter every stage, give the request a ``QueryRequest/scope`` (the presets do): every leaf then
/// searches only points passing it, and the filter is evaluated once.
public struct QueryNode: Sendable, Equatable {
    /// What the node asks for; `nil` passes its single prefetch's results through (or, for a leaf, lists
    /// points in id order with score 0).
    public var query: QueryInput?
    /// The vector field the query is compared with (`nil`: the only field of the query's kind).
    public var using: String?
    /// Only points passing this filter are scored and returned by this node (children apply their own).
    public var filter: Filter?
    /// How many results the node passes up.
    public var limit: Int
    /// Drop results scoring below this (above it, for the distances of Euclid fields).
    public var scoreThreshold: Float?
    /// Search settings.
    public var parameters: QueryParameters
    /// Children whose results this node scores or fuses.
    public var prefetch: [QueryNode]

    /// Creates a node.
    /// - Parameters:
    ///   - query: What the node asks for.
    ///   - using: The vector field.
    ///   - filter: A payload filter.
    ///   - limit: Results passed up.
    ///   - scoreThreshold: Minimum score.
    ///   - parameters: Search settings.
    ///   - prefetch: Children.
    public init(
        query: QueryInput?,
        using: String? = nil,
        filter: Filter? = nil,
        limit: Int = 10,
        scoreThreshold: Float? = nil,
        parameters: QueryParameters = QueryParameters(),
        prefetch: [QueryNode] = []
    ) {
        self.query = query
        self.using = using
        self.filter = filter
        self.limit = limit
        self.scoreThreshold = scoreThreshold
        self.parameters = parameters
        self.prefetch = prefetch
    }
}

extension QueryNode {
    /// This tree with each node's filter applied to every node below it as well (Qdrant's rule: a node's filter
    /// reaches the leaves of its prefetch tree, so a prefetch's limit counts candidates that pass it).
    /// - Parameter inherited: The filter of the nodes above this one.
    /// - Returns: The tree, each node filtered by its own filter and all its ancestors'.
    public func inheritingFilters(_ inherited: Filter? = nil) -> QueryNode {
        var node = self
        switch (inherited, filter) {
        case (nil, _): break
        case (let above?, nil): node.filter = above
        case (let above?, let own?): node.filter = above == own ? own : Filter(must: [.filter(above), .filter(own)])
        }
        node.prefetch = prefetch.map { $0.inheritingFilters(node.filter) }
        return node
    }
}

/// A whole query: the root node and what to return with each result.
public struct QueryRequest: Sendable {
    /// The root of the query tree; its `limit` is the number of results.
    public var root: QueryNode
    /// A filter for the whole tree: every leaf searches only the points passing it, so every stage's results pass
    /// it. Evaluated once, however many leaves there are.
    public var scope: Filter?
    /// How many of the root's best results to skip first (pagination).
    public var offset: Int
    /// Return each result's payload.
    public var withPayload: Bool
    /// Return these vector fields of each result (`[]`: none).
    public var withVectors: [String]
    /// Return every vector field of each result (overrides ``withVectors``).
    public var withAllVectors = false
    /// When set, the part of each payload returned (Qdrant's `with_payload` `include` or `exclude`).
    public var payloadSelector: PayloadSelector?
    /// Return, for each result of a multivector root query, the document token each query token matched.
    public var withMatches: Bool

    /// Creates a request.
    /// - Parameters:
    ///   - root: The query tree.
    ///   - scope: A filter for every stage.
    ///   - offset: Best results to skip.
    ///   - withPayload: Include payloads.
    ///   - withVectors: Vector fields to include.
    ///   - withMatches: Include matched document tokens.
    public init(
        root: QueryNode,
        scope: Filter? = nil,
        offset: Int = 0,
        withPayload: Bool = true,
        withVectors: [String] = [],
        withMatches: Bool = false
    ) {
        self.root = root
        self.scope = scope
        self.offset = offset
        self.withPayload = withPayload
        self.withVectors = withVectors
        self.withMatches = withMatches
    }
}

/// What one node of a query did, for per-stage timings and explanations.
public struct QueryStage: Sendable, Equatable {
    /// Where the node sits: `query`, `query.prefetch[0]`, `query.prefetch[0].prefetch[1]`, …
    public var path: String
    /// Other nodes of the tree that asked the same thing and were answered by this stage (see ``QueryPlan``).
    public var sharedWith: [String] = []
    /// How it scored.
    public var method: StageMethod
    /// Points it considered: the union of its children's results, or the points passing its filter for a leaf.
    public var candidateCount: Int
    /// Results it passed up.
    public var resultCount: Int
    /// Its own time (children excluded), in milliseconds.
    public var milliseconds: Double
}

/// A query's results and how each stage produced them.
public struct QueryResponse: Sendable {
    /// The results, best first.
    public var points: [ScoredPoint]
    /// One entry per step of the plan (a node asked twice runs once), inputs before the steps using them.
    public var stages: [QueryStage]
    /// The time spent evaluating filters, in milliseconds (each distinct filter once).
    public var filterMilliseconds: Double = 0
}

/// Encodes query text for a vector field (the collection's encoder), for ``QueryInput/text(_:)`` nodes that
/// name a vector field.
public protocol QueryTextEncoder: Sendable {
    /// The field's vector for `text`: ``VectorValue/dense(_:)`` for a dense field, a multivector otherwise.
    func encode(_ text: String, for field: VectorField) throws -> VectorValue
}

/// A scored slot of the scoring view.
struct SlotHit {
    var slot: Int
    var score: Float
    /// The payload value an order-by step listed the slot for.
    var orderValue: OrderValue? = nil
}

extension CollectionStore {
    /// Runs a query: plans it (``plan(_:)``), then runs each step once, leaves first: first stages at the leaves,
    /// exact scoring or fusion above them, each node's filter on what that node scores and the request's scope on
    /// every leaf.
    /// - Parameters:
    ///   - request: The tree and what to return.
    ///   - encoder: Encodes text queries that name a vector field.
    ///   - kernel: The MaxSim kernel configuration (threads).
    /// - Returns: The results and a record of each stage.
    /// - Throws: ``TesseraError`` naming the node (`query.prefetch[1].limit`, …) for a bad limit, an unknown
    ///   field or point, a query that does not fit its field, a fusion without prefetch, a text query without
    ///   an encoder.
    public func query(
        _ request: QueryRequest,
        encoder: (any QueryTextEncoder)? = nil,
        kernel: MaxSimKernel = MaxSimKernel()
    ) throws(TesseraError) -> QueryResponse {
        let vectorNames = request.withAllVectors ? configuration.fields.map(\.name) : request.withVectors
        for name in vectorNames where configuration.field(named: name) == nil {
            throw TesseraError(.notFound, "no vector field '\(name)'", location: .init(field: "with_vector"))
        }
        let view = scoringView()
        let plan = try plan(request, liveCount: view.liveCount)
        var run = QueryRun(store: self, view: view, plan: plan, encoder: encoder, kernel: kernel)
        let hits = try run.execute()
        let page = Array(hits.dropFirst(plan.offset))
        var matches: [[Int32]] = []
        if request.withMatches, !page.isEmpty, let (query, field) = try run.rootMultivector() {
            matches = try run.matches(query: query, field: field, slots: page.map(\.slot))
        }
        let points = page.enumerated().map { position, hit in
            var vectors: [String: VectorValue]?
            if !vectorNames.isEmpty {
                vectors = [:]
                for name in vectorNames {
                    guard let field = configuration.field(named: name), let column = view.column(named: name),
                        view.hasVector(slot: hit.slot, field: name)
                    else { continue }
                    let values = column.floatValues(ofSlot: hit.slot)
                    switch field.kind {
                    case .multivector:
                        vectors![name] = .flat(values: values, tokenCount: values.count / field.dimension)
                    case .dense, .sparse: vectors![name] = field.value(stored: values)
                    }
                }
            }
            var payload: JSONObject?
            if request.withPayload {
                payload = view.payload(ofSlot: hit.slot)
                if let selector = request.payloadSelector { payload = selector.apply(to: payload!) }
            }
            return ScoredPoint(
                id: view.pointIDs[hit.slot],
                score: hit.score,
                payload: payload,
                matchedTokens: matches.isEmpty ? nil : matches[position],
                vectors: vectors,
                orderValue: hit.orderValue
            )
        }
        return QueryResponse(points: points, stages: run.stages, filterMilliseconds: run.filterMilliseconds)
    }
}

extension CollectionStore {
    /// The live slots inverse document frequencies count for a node's `idf` corpus filter, or `nil` (every live
    /// slot) without one.
    func idfCorpusSlots(_ filter: Filter?, in view: ScoringView) -> SlotBitmap? {
        guard let filter else { return nil }
        var corpus = view.liveSlots
        corpus.formIntersection(allowedSlots(filter: filter, in: view))
        return corpus
    }

    /// The IDF modifier's counts for a query node's sparse query (its own corpus, `params.idf`): what a sharded
    /// collection's shards report before scoring, to be summed and given back as
    /// ``QueryParameters/idfStatistics``.
    /// - Returns: N and n of the query's indices, or `nil` when the node is not a sparse query of a field with the
    ///   `idf` modifier.
    /// - Throws: ``TesseraError`` for a field the collection does not have.
    public func idfStatistics(of node: QueryNode) throws(TesseraError) -> CorpusStatistics? {
        guard case .sparse(let query)? = node.query,
            let field = try configuration.queryField(of: node, path: "query"),
            case .sparse(.idf) = field.kind
        else { return nil }
        let view = scoringView()
        let corpus = idfCorpusSlots(node.parameters.idfCorpus, in: view)
        return sparseStatistics(query.indices, field: field, view: view, corpus: corpus)
    }

    /// BM25's counts for a query node's text query over a payload text index (its own corpus, `params.idf`): what
    /// a sharded collection's shards report before scoring, summed and given back as
    /// ``QueryParameters/textStatistics``.
    /// - Returns: The counts, or `nil` when the node is not a text query of a payload key.
    /// - Throws: ``TesseraError`` when the key has no text index with scoring.
    public func textStatistics(of node: QueryNode) throws(TesseraError) -> TextCorpusStatistics? {
        guard case .text(let text)? = node.query, let key = node.using, key != "bm25",
            configuration.field(named: key) == nil
        else { return nil }
        let view = scoringView()
        let corpus = idfCorpusSlots(node.parameters.idfCorpus, in: view)
        return try textStatistics(text, key: key, view: view, corpus: corpus)
    }
}

/// The state of one query's evaluation: each step's results, each filter's allowed slots.
private struct QueryRun {
    let store: CollectionStore
    let view: ScoringView
    let plan: QueryPlan
    let encoder: (any QueryTextEncoder)?
    let kernel: MaxSimKernel
    var stages: [QueryStage] = []
    var filterMilliseconds = 0.0
    private var allowedByFilter: [Int: SlotBitmap] = [:]
    private var scoped: SlotBitmap?

    init(
        store: CollectionStore,
        view: ScoringView,
        plan: QueryPlan,
        encoder: (any QueryTextEncoder)?,
        kernel: MaxSimKernel
    ) {
        self.store = store
        self.view = view
        self.plan = plan
        self.encoder = encoder
        self.kernel = kernel
    }

    /// What a node's query resolves to, once text is encoded and point ids are looked up.
    enum Resolved {
        case multivector(Multivector, VectorField, excluding: Set<Int>)
        case dense([Float], VectorField, excluding: Set<Int>)
        case examples(ExampleScoring, VectorField, excluding: Set<Int>)
        case sparse(SparseVector, VectorField, excluding: Set<Int>)
        case order(OrderBy)
        case sample
        case bm25(String)
        case textIndex(String, key: String)
        case fusion(FusionMethod)
        case none
    }

    /// The live slots passing a filter of the plan (evaluated on first use, once).
    private mutating func allowed(filter index: Int) -> SlotBitmap {
        if let known = allowedByFilter[index] { return known }
        let start = ContinuousClock.now
        var allowed = view.liveSlots
        allowed.formIntersection(store.allowedSlots(filter: plan.filters[index], in: view))
        filterMilliseconds += milliseconds(ContinuousClock.now - start)
        allowedByFilter[index] = allowed
        return allowed
    }

    /// The slots a step may return: live, passing the step's filter, and for a leaf passing the scope.
    private mutating func allowed(for step: QueryPlan.Step) -> SlotBitmap {
        var allowed: SlotBitmap
        if step.inputs.isEmpty, let scope = plan.scope {
            allowed = self.allowed(filter: scope)
        } else {
            allowed = view.liveSlots
        }
        if let filter = step.filter, filter != plan.scope || !step.inputs.isEmpty {
            allowed.formIntersection(self.allowed(filter: filter))
        }
        // A point without a vector in the field a step scores is no candidate of it (Qdrant's rule).
        switch step.operation {
        case .search(.dense(let field), _), .search(.multivector(let field), _), .rescore(.dense(let field)),
            .rescore(.multivector(let field)):
            if let present = view.presentSlots(field: field) { allowed.formIntersection(present) }
        default:
            break
        }
        return allowed
    }

    /// Runs every step in order; returns the root's results.
    mutating func execute() throws(TesseraError) -> [SlotHit] {
        var results: [[SlotHit]] = []
        results.reserveCapacity(plan.steps.count)
        for step in plan.steps {
            results.append(try run(step, inputs: step.inputs.map { results[$0] }))
        }
        return results[plan.root]
    }

    private mutating func run(_ step: QueryPlan.Step, inputs: [[SlotHit]]) throws(TesseraError) -> [SlotHit] {
        let path = step.paths[0]
        var node = step.node
        let resolved = try resolve(node, path: path)
        let mmr = node.parameters.mmr
        let limit = node.limit
        if let mmr {
            switch resolved {
            case .dense, .multivector: break
            default:
                throw TesseraError(
                    .invalidArgument,
                    "mmr applies to a nearest query by a vector or a multivector",
                    location: .init(field: "\(path).query.mmr")
                )
            }
            guard mmr.diversity.isFinite, (0...1).contains(mmr.diversity) else {
                throw TesseraError(
                    .invalidArgument,
                    "mmr.diversity must be in 0...1 (got \(mmr.diversity))",
                    location: .init(field: "\(path).query.mmr.diversity")
                )
            }
            node.limit = mmr.candidateLimit ?? node.limit
        }
        let allowed = allowed(for: step)
        let start = ContinuousClock.now
        if step.inputs.isEmpty {
            var (hits, method) = try leaf(resolved, node: node, path: path, allowed: allowed)
            hits = threshold(hits, node: node, resolved: resolved)
            if let mmr { hits = try diversify(hits, resolved: resolved, mmr: mmr, limit: limit) }
            record(step, method, allowed.count, hits.count, ContinuousClock.now - start)
            return hits
        }
        // The node's filter restricts what it scores and passes up: its inputs' results that pass it.
        let lists = inputs.map { list in list.filter { allowed.contains($0.slot) } }
        var union: [Int] = []
        var seen = Set<Int>()
        for list in lists { for hit in list where seen.insert(hit.slot).inserted { union.append(hit.slot) } }
        var hits: [SlotHit]
        let method: StageMethod
        switch resolved {
        case .fusion(let fusion):
            let ranked = lists.map { list in
                list.map { ScoredPoint(id: view.pointIDs[$0.slot], score: $0.score, payload: nil, matchedTokens: nil) }
            }
            let fused: [ScoredPoint]
            switch fusion {
            case .rrf(let k, let weights):
                fused = try Fusion.reciprocalRank(ranked, rankConstant: k, weights: weights)
                method = .rrf
            case .dbsf(let weights):
                fused = try Fusion.distributionBased(ranked, weights: weights)
                method = .dbsf
            }
            hits = fused.prefix(node.limit).map { SlotHit(slot: view.slot(of: $0.id)!, score: $0.score) }
        case .none:
            hits = Array(lists[0].prefix(node.limit))
            method = .passthrough
        case .multivector(let query, let field, let excluding):
            let candidates = union.filter { !excluding.contains($0) }.sorted()
            hits = try maxSim(query, field: field, candidates: candidates, limit: node.limit)
            method = .maxsimRerank
        case .examples(let scoring, let field, let excluding):
            let candidates = union.filter { !excluding.contains($0) }.sorted()
            hits = try exampleScores(scoring, field: field, candidates: candidates, limit: node.limit)
            method = scoring.method
        case .sparse(let query, let field, let excluding):
            let candidates = union.filter { !excluding.contains($0) }
            hits = store.exactSparse(query, field: field, view: view, slots: candidates, limit: node.limit).map {
                SlotHit(slot: $0.slot, score: $0.score)
            }
            method = .sparseRerank
        case .order(let order):
            hits = ordered(union.sorted(), by: order, limit: node.limit)
            method = .orderBy
        case .sample:
            hits = sampled(union, limit: node.limit)
            method = .sample
        case .dense(let query, let field, let excluding):
            let candidates = union.filter { !excluding.contains($0) }
            hits = try store.exactDense(
                field: field,
                query: query,
                view: view,
                slots: candidates,
                limit: node.limit,
                kernel: kernel
            ).map { SlotHit(slot: $0.slot, score: $0.score) }
            method = .denseRerank
        case .bm25(let text):
            var restricted = SlotBitmap(slotCount: view.slotCount)
            for slot in union { restricted.insert(slot) }
            hits = bm25(text, node: node, allowed: restricted)
            method = .bm25Rerank
        case .textIndex(let text, let key):
            var restricted = SlotBitmap(slotCount: view.slotCount)
            for slot in union { restricted.insert(slot) }
            hits = try textIndex(text, key: key, node: node, allowed: restricted)
            method = .bm25Rerank
        }
        hits = threshold(hits, node: node, resolved: resolved)
        if let mmr { hits = try diversify(hits, resolved: resolved, mmr: mmr, limit: limit) }
        record(step, method, union.count, hits.count, ContinuousClock.now - start)
        return hits
    }

    /// Maximal marginal relevance over nearest candidates (see ``MaximalMarginalRelevance``), with similarities as
    /// the field's raw scores (minus squared distances for Euclid). Ties go to the later candidate, and a picked
    /// candidate's place is taken by the last one still pending, as Qdrant's server orders them.
    private func diversify(
        _ hits: [SlotHit],
        resolved: Resolved,
        mmr: MaximalMarginalRelevance,
        limit: Int
    ) throws(TesseraError) -> [SlotHit] {
        guard !hits.isEmpty, limit > 0 else { return [] }
        let query: [Float]
        let field: VectorField
        switch resolved {
        case .dense(let values, let target, _): (query, field) = (values, target)
        case .multivector(let tokens, let target, _): (query, field) = (floatValues(of: tokens), target)
        default: return hits
        }
        guard let column = view.column(named: field.name) else { return hits }
        let slots = hits.map(\.slot)
        let relevance = try column.similarities(of: query, field: field, slots: slots, kernel: kernel)
        var similarity: [[Float]] = []
        for slot in slots {
            similarity.append(
                try column.similarities(
                    of: column.floatValues(ofSlot: slot),
                    field: field,
                    slots: slots,
                    kernel: kernel
                )
            )
        }
        func lastArgmax(_ values: [Float]) -> Int {
            var best = 0
            for index in values.indices where values[index] >= values[best] { best = index }
            return best
        }
        func swapRemove(_ pending: inout [Int], _ position: Int) -> Int {
            let taken = pending[position]
            pending[position] = pending[pending.count - 1]
            pending.removeLast()
            return taken
        }
        let lambda = 1 - mmr.diversity
        var pending = Array(slots.indices)
        var selected = [swapRemove(&pending, lastArgmax(pending.map { relevance[$0] }))]
        while selected.count < limit, !pending.isEmpty {
            let scores = pending.map { candidate in
                let nearest = selected.map { similarity[candidate][$0] }.max()!
                return lambda * relevance[candidate] - (1 - lambda) * nearest
            }
            if scores.allSatisfy({ $0 == -.infinity }) { break }
            selected.append(swapRemove(&pending, lastArgmax(scores)))
        }
        return selected.map { hits[$0] }
    }

    private mutating func leaf(
        _ resolved: Resolved,
        node: QueryNode,
        path: String,
        allowed: SlotBitmap
    )
        throws(TesseraError) -> ([SlotHit], StageMethod)
    {
        let limit = node.limit
        switch resolved {
        case .fusion, .none:
            // The planner refuses a fusion without prefetch; a leaf without a query lists points in id order.
            let slots = allowed.slots.sorted { view.pointIDs[$0] < view.pointIDs[$1] }
            return (slots.prefix(limit).map { SlotHit(slot: $0, score: 0) }, .idOrder)
        case .bm25(let text):
            return (bm25(text, node: node, allowed: allowed), .bm25)
        case .textIndex(let text, let key):
            return (try textIndex(text, key: key, node: node, allowed: allowed), .bm25)
        case .examples(let scoring, let field, let excluding):
            var allowed = allowed
            for slot in excluding { allowed.remove(slot) }
            return (try exampleScores(scoring, field: field, candidates: allowed.slots, limit: limit), scoring.method)
        case .sparse(let query, let field, let excluding):
            var allowed = allowed
            for slot in excluding { allowed.remove(slot) }
            let hits = store.sparseCandidates(query, field: field, view: view, allowed: allowed, limit: limit)
            return (hits.map { SlotHit(slot: $0.slot, score: $0.score) }, .sparse)
        case .order(let order):
            return (ordered(allowed.slots, by: order, limit: limit), .orderBy)
        case .sample:
            return (sampled(allowed.slots, limit: limit), .sample)
        case .dense(let query, let field, let excluding):
            var allowed = allowed
            for slot in excluding { allowed.remove(slot) }
            let (hits, method) = try store.denseCandidates(
                field: field,
                query: query,
                view: view,
                allowed: allowed,
                limit: limit,
                ef: node.parameters.hnswEf,
                exact: node.parameters.exact,
                kernel: kernel
            )
            return (hits.map { SlotHit(slot: $0.slot, score: $0.score) }, method == .hnsw ? .hnsw : .dense)
        case .multivector(let query, let field, let excluding):
            var allowed = allowed
            for slot in excluding { allowed.remove(slot) }
            if !node.parameters.exact, limit > 0 {
                var settings = node.parameters.compressed ?? .defaults(limit: limit)
                settings.candidateCount = limit
                if let first = try store.compressedCandidates(
                    field: field.name,
                    query: query,
                    view: view,
                    allowed: allowed,
                    parameters: settings,
                    threadCount: kernel.threadCount
                ) {
                    return (first.prefix(limit).map { SlotHit(slot: $0.slot, score: $0.score) }, .compressed)
                }
            }
            return (try maxSim(query, field: field, candidates: allowed.slots, limit: limit), .maxsim)
        }
    }

    private func bm25(_ text: String, node: QueryNode, allowed: SlotBitmap) -> [SlotHit] {
        store.textHits(
            text,
            fields: node.parameters.textFields,
            analyzer: node.parameters.analyzer,
            parameters: node.parameters.bm25,
            view: view,
            allowed: allowed,
            limit: node.limit
        ).map { SlotHit(slot: $0.slot, score: $0.score) }
    }

    private func textIndex(
        _ text: String,
        key: String,
        node: QueryNode,
        allowed: SlotBitmap
    ) throws(TesseraError) -> [SlotHit] {
        try store.textIndexHits(
            text,
            key: key,
            parameters: node.parameters.bm25,
            view: view,
            allowed: allowed,
            corpus: idfCorpus(of: node),
            statistics: node.parameters.textStatistics,
            limit: node.limit
        ).map { SlotHit(slot: $0.slot, score: $0.score) }
    }

    /// The live slots a node's inverse document frequencies count, or `nil` for all of them.
    func idfCorpus(of node: QueryNode) -> SlotBitmap? {
        store.idfCorpusSlots(node.parameters.idfCorpus, in: view)
    }

    /// The best `limit` of `candidates` by an example query's scores, best first (ties to the lower slot).
    private func exampleScores(
        _ scoring: ExampleScoring,
        field: VectorField,
        candidates: [Int],
        limit: Int
    ) throws(TesseraError) -> [SlotHit] {
        guard limit > 0, !candidates.isEmpty else { return [] }
        guard let column = view.column(named: field.name) else {
            throw TesseraError(.notFound, "no vector field '\(field.name)'", location: .init(field: "using"))
        }
        var candidates = candidates
        var similarities: [[Float]] = []
        if field.isSparse {
            // Points without a vector in the field are not candidates (an empty vector is one); no shared index is
            // a similarity of 0.
            var vectors: [SparseVector] = []
            candidates = candidates.filter { slot in
                let rows = column.floatValues(ofSlot: slot)
                if !rows.isEmpty { vectors.append(SparseVector(packed: rows)) }
                return !rows.isEmpty
            }
            guard !candidates.isEmpty else { return [] }
            for example in scoring.examples {
                let query = SparseVector(packed: example)
                similarities.append(vectors.map { query.dot($0) ?? 0 })
            }
        } else {
            for example in scoring.examples {
                similarities.append(
                    try column.similarities(of: example, field: field, slots: candidates, kernel: kernel)
                )
            }
        }
        let scores = scoring.scores(similarities, candidateCount: candidates.count)
        var hits = zip(candidates, scores).map { SlotHit(slot: $0, score: $1) }
        hits.sort { left, right in
            if left.score.isNaN != right.score.isNaN { return right.score.isNaN }
            if left.score != right.score, !left.score.isNaN { return left.score > right.score }
            return left.slot < right.slot
        }
        return Array(hits.prefix(limit))
    }

    /// The first `limit` entries of `slots` ordered by a payload value, score 0.
    private func ordered(_ slots: [Int], by order: OrderBy, limit: Int) -> [SlotHit] {
        CollectionStore.ordered(slots, by: order, in: view).prefix(limit).map {
            SlotHit(slot: $0.slot, score: 0, orderValue: $0.value)
        }
    }

    /// `limit` of `slots` picked at random, score 0.
    private func sampled(_ slots: [Int], limit: Int) -> [SlotHit] {
        var generator = SystemRandomNumberGenerator()
        var pool = slots
        let count = min(limit, pool.count)
        for index in 0..<count { pool.swapAt(index, Int.random(in: index..<pool.count, using: &generator)) }
        return pool.prefix(count).map { SlotHit(slot: $0, score: 0) }
    }

    private func maxSim(
        _ query: Multivector,
        field: VectorField,
        candidates: [Int],
        limit: Int
    )
        throws(TesseraError) -> [SlotHit]
    {
        guard let column = view.column(named: field.name) else {
            throw TesseraError(.notFound, "no vector field '\(field.name)'", location: .init(field: "using"))
        }
        guard limit > 0, !candidates.isEmpty else { return [] }
        do {
            return try column.topK(limit, query: query, candidates: candidates, kernel: kernel)
                .map { SlotHit(slot: $0.slot, score: $0.score) }
        } catch {
            throw TesseraError(.invalidArgument, "scoring failed: \(error)", location: .init(field: "query"))
        }
    }

    private func threshold(_ hits: [SlotHit], node: QueryNode, resolved: Resolved) -> [SlotHit] {
        guard let threshold = node.scoreThreshold else { return hits }
        if case .dense(_, let field, _) = resolved, case .dense(.euclid) = field.kind {
            return hits.filter { $0.score <= threshold }
        }
        return hits.filter { $0.score >= threshold }
    }

    private mutating func record(
        _ step: QueryPlan.Step,
        _ method: StageMethod,
        _ candidates: Int,
        _ results: Int,
        _ time: Duration
    ) {
        stages.append(
            QueryStage(
                path: step.paths[0],
                sharedWith: Array(step.paths.dropFirst()),
                method: method,
                candidateCount: candidates,
                resultCount: results,
                milliseconds: milliseconds(time)
            )
        )
    }

    private func milliseconds(_ time: Duration) -> Double {
        let (seconds, attoseconds) = time.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// A query vector checked against the field (dimension, finite values, one vector for a dense field), scaled
    /// to unit length for a cosine dense field.
    private func vector(
        _ values: [Float],
        tokenCount: Int,
        for field: VectorField,
        excluding: Set<Int>,
        path: String
    ) throws(TesseraError)
        -> Resolved
    {
        guard values.count == tokenCount * field.dimension, tokenCount >= 1 else {
            throw TesseraError(
                .dimensionMismatch,
                "the query has \(tokenCount == 1 ? "\(values.count)" : "\(tokenCount) vectors of \(values.count / max(1, tokenCount))") "
                    + "values but field '\(field.name)' has dimension \(field.dimension)",
                location: .init(field: "\(path).query")
            )
        }
        guard values.allSatisfy(\.isFinite) else {
            throw TesseraError(
                .invalidArgument,
                "the query has a value that is not a finite number",
                location: .init(field: "\(path).query")
            )
        }
        if field.isMultivector {
            do {
                return .multivector(
                    try Multivector(values, dimension: field.dimension),
                    field,
                    excluding: excluding
                )
            } catch {
                throw TesseraError(.invalidArgument, "bad query: \(error)", location: .init(field: "\(path).query"))
            }
        }
        guard tokenCount == 1 else {
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is a dense field; the query gives \(tokenCount) vectors",
                location: .init(field: "\(path).query")
            )
        }
        var query = values
        if case .dense(.cosine) = field.kind { normalize(&query) }
        return .dense(query, field, excluding: excluding)
    }

    /// The field a node's query goes to, and the query in the field's terms.
    func resolve(_ node: QueryNode, path: String) throws(TesseraError) -> Resolved {
        switch node.query {
        case nil:
            return .none
        case .fusion(let method)?:
            return .fusion(method)
        case .multivector(let query)?:
            let target = try queryField(of: node, path: path)
            var values = floatValues(of: query)
            // A cosine multivector field holds unit token vectors: the query's tokens are scaled alike, so that
            // MaxSim sums cosines (as Qdrant does).
            if target.storesUnitVectors { normalizeRows(&values, dimension: target.dimension) }
            return try vector(values, tokenCount: query.tokenCount, for: target, excluding: [], path: path)
        case .dense(let values)?:
            let target = try queryField(of: node, path: path)
            return try vector(values, tokenCount: 1, for: target, excluding: [], path: path)
        case .sparse(let query)?:
            let target = try queryField(of: node, path: path)
            let weighted = store.weightedSparseQuery(
                query,
                field: target,
                view: view,
                corpus: idfCorpus(of: node),
                statistics: node.parameters.idfStatistics
            )
            return .sparse(weighted, target, excluding: [])
        case .text(let text)?:
            guard let name = node.using, name != "bm25" else { return .bm25(text) }
            if store.configuration.field(named: name) == nil { return .textIndex(text, key: name) }
            let target = try queryField(of: node, path: path)
            guard let encoder else {
                throw TesseraError(
                    .invalidArgument,
                    "a text query for vector field '\(name)' needs the collection's encoder, which is not loaded",
                    location: .init(field: "\(path).query")
                )
            }
            let encoded: VectorValue
            do {
                encoded = try encoder.encode(text, for: target)
            } catch var error as TesseraError {
                // A model that is not the one the field was built with, a dimension that does not fit: the
                // encoder's own error, located at this node.
                error.location.field = "\(path).query"
                throw error
            } catch {
                throw TesseraError(
                    .invalidArgument,
                    "encoding the query failed: \(error)",
                    location: .init(field: "\(path).query")
                )
            }
            let (values, tokenCount) = encoded.flattened
            return try vector(values, tokenCount: tokenCount, for: target, excluding: [], path: path)
        case .point(let id)?:
            let target = try queryField(of: node, path: path)
            guard let slot = view.slot(of: id), let column = view.column(named: target.name) else {
                throw TesseraError(.notFound, "no point \(id)", location: .init(field: "\(path).query"))
            }
            guard view.hasVector(slot: slot, field: target.name) else {
                throw TesseraError(
                    .notFound,
                    "point \(id) has no vector in field '\(target.name)'",
                    location: .init(field: "\(path).query")
                )
            }
            let values = column.floatValues(ofSlot: slot)
            if target.isSparse {
                let query = store.weightedSparseQuery(
                    SparseVector(packed: values),
                    field: target,
                    view: view,
                    corpus: idfCorpus(of: node)
                )
                return .sparse(query, target, excluding: [slot])
            }
            return try vector(
                values,
                tokenCount: values.count / target.dimension,
                for: target,
                excluding: [slot],
                path: path
            )
        case .recommend(let recommendation)?:
            return try resolveRecommendation(recommendation, node: node, path: path)
        case .discover(let target, let context)?:
            let field = try queryField(of: node, path: path)
            var excluding = Set<Int>()
            let corpus = idfCorpus(of: node)
            let goal = try exampleValues(
                target,
                field: field,
                path: path,
                normalized: true,
                corpus: corpus,
                excluding: &excluding
            )
            let pairs = try contextValues(context, field: field, path: path, corpus: corpus, excluding: &excluding)
            let scoring = ExampleScoring(kind: .discover(target: goal.values, context: pairs), method: .discover)
            return .examples(scoring, field, excluding: excluding)
        case .context(let context)?:
            let field = try queryField(of: node, path: path)
            var excluding = Set<Int>()
            let pairs = try contextValues(
                context,
                field: field,
                path: path,
                corpus: idfCorpus(of: node),
                excluding: &excluding
            )
            return .examples(ExampleScoring(kind: .context(pairs), method: .context), field, excluding: excluding)
        case .orderBy(let order)?:
            return .order(order)
        case .sample?:
            return .sample
        }
    }

    /// A recommendation in the field's terms: one query vector for ``RecommendStrategy/averageVector``, example
    /// scores otherwise; the example points are left out of the results.
    private func resolveRecommendation(
        _ recommendation: Recommendation,
        node: QueryNode,
        path: String
    ) throws(TesseraError) -> Resolved {
        let field = try queryField(of: node, path: path)
        let location = TesseraError.Location(field: "\(path).query")
        var excluding = Set<Int>()
        let strategy = recommendation.strategy
        if strategy == .averageVector, recommendation.positive.isEmpty {
            throw TesseraError(
                .invalidArgument,
                "a recommendation with strategy average_vector needs at least one positive example",
                location: location
            )
        }
        if recommendation.positive.isEmpty, recommendation.negative.isEmpty {
            throw TesseraError(
                .invalidArgument,
                "a recommendation needs at least one positive or negative example",
                location: location
            )
        }
        var positive: [[Float]] = []
        var negative: [[Float]] = []
        let normalized = strategy != .averageVector
        let corpus = idfCorpus(of: node)
        for (examples, into) in [(recommendation.positive, 0), (recommendation.negative, 1)] {
            for example in examples {
                let values = try exampleValues(
                    example,
                    field: field,
                    path: path,
                    normalized: normalized,
                    corpus: corpus,
                    excluding: &excluding
                ).values
                if into == 0 { positive.append(values) } else { negative.append(values) }
            }
        }
        switch strategy {
        case .bestScore:
            return .examples(
                ExampleScoring(kind: .best(positive: positive, negative: negative), method: .recommend),
                field,
                excluding: excluding
            )
        case .sumScores:
            return .examples(
                ExampleScoring(kind: .sum(positive: positive, negative: negative), method: .recommend),
                field,
                excluding: excluding
            )
        case .averageVector:
            if field.isSparse {
                // Qdrant's sparse average: the mean of the positives, then `2·mean(positive) − mean(negative)`
                // over the union of their indices; weighted by IDF as any sparse query.
                func mean(_ vectors: [[Float]]) -> [UInt32: Float] {
                    var sum: [UInt32: Float] = [:]
                    for packed in vectors {
                        let vector = SparseVector(packed: packed)
                        for (index, value) in zip(vector.indices, vector.values) { sum[index, default: 0] += value }
                    }
                    return sum.mapValues { $0 / Float(vectors.count) }
                }
                var entries = mean(positive)
                if !negative.isEmpty {
                    let away = mean(negative)
                    for index in Set(entries.keys).union(away.keys) {
                        let toward = entries[index] ?? 0
                        entries[index] = toward + toward - (away[index] ?? 0)
                    }
                }
                let indices = entries.keys.sorted()
                let query = SparseVector(sortedIndices: indices, values: indices.map { entries[$0]! })
                let weighted = store.weightedSparseQuery(query, field: field, view: view, corpus: corpus)
                return .sparse(weighted, field, excluding: excluding)
            }
            if field.isMultivector {
                // The positive tokens and the negated negative ones: MaxSim then adds the best match of each.
                var values = positive.flatMap { $0 }
                for tokens in negative { values.append(contentsOf: tokens.map { -$0 }) }
                if field.storesUnitVectors { normalizeRows(&values, dimension: field.dimension) }
                guard
                    case .multivector(let query, _, _) = try vector(
                        values,
                        tokenCount: values.count / field.dimension,
                        for: field,
                        excluding: excluding,
                        path: path
                    )
                else { preconditionFailure("a multivector field resolves to a multivector query") }
                return .multivector(query, field, excluding: excluding)
            }
            let dimension = field.dimension
            func mean(_ vectors: [[Float]]) -> [Float] {
                var sum = [Float](repeating: 0, count: dimension)
                for vector in vectors { for index in 0..<dimension { sum[index] += vector[index] } }
                return sum.map { $0 / Float(vectors.count) }
            }
            var query = mean(positive)
            if !negative.isEmpty {
                let away = mean(negative)
                for index in 0..<dimension { query[index] = query[index] + query[index] - away[index] }
            }
            return try vector(query, tokenCount: 1, for: field, excluding: excluding, path: path)
        }
    }

    /// The context pairs' vectors, in the field's terms; their points join `excluding`.
    private func contextValues(
        _ context: [ContextPair],
        field: VectorField,
        path: String,
        corpus: SlotBitmap?,
        excluding: inout Set<Int>
    ) throws(TesseraError) -> [(positive: [Float], negative: [Float])] {
        var pairs: [(positive: [Float], negative: [Float])] = []
        for pair in context {
            let positive = try exampleValues(
                pair.positive,
                field: field,
                path: path,
                normalized: true,
                corpus: corpus,
                excluding: &excluding
            )
            let negative = try exampleValues(
                pair.negative,
                field: field,
                path: path,
                normalized: true,
                corpus: corpus,
                excluding: &excluding
            )
            pairs.append((positive.values, negative.values))
        }
        return pairs
    }

    /// A stored point's values in `field` (a 404 when it is not stored or has no vector there); its slot joins
    /// `excluding`.
    private func storedValues(
        of id: PointID,
        field: VectorField,
        location: TesseraError.Location,
        excluding: inout Set<Int>
    ) throws(TesseraError) -> [Float] {
        guard let slot = view.slot(of: id), let column = view.column(named: field.name) else {
            throw TesseraError(.notFound, "no point \(id)", location: location)
        }
        guard view.hasVector(slot: slot, field: field.name) else {
            throw TesseraError(.notFound, "point \(id) has no vector in field '\(field.name)'", location: location)
        }
        excluding.insert(slot)
        return column.floatValues(ofSlot: slot)
    }

    /// An example's vector for `field` (a point's stored vector, or the one given), checked against the field's
    /// dimension; scaled to unit length where the field holds unit vectors and `normalized` is set. A point's slot
    /// joins `excluding`.
    private func exampleValues(
        _ example: QueryExample,
        field: VectorField,
        path: String,
        normalized: Bool,
        corpus: SlotBitmap?,
        excluding: inout Set<Int>
    ) throws(TesseraError) -> (values: [Float], tokenCount: Int) {
        let location = TesseraError.Location(field: "\(path).query")
        if field.isSparse {
            // A sparse example: its packed rows, weighted by IDF (as Qdrant weights every example of a query)
            // unless it is to be averaged first.
            var vector: SparseVector
            switch example {
            case .point(let id):
                vector = SparseVector(
                    packed: try storedValues(of: id, field: field, location: location, excluding: &excluding)
                )
            case .vector(.sparse(let given)):
                vector = given
            case .vector:
                throw TesseraError(
                    .invalidArgument,
                    "field '\(field.name)' is a sparse field: an example is a sparse vector or a point id",
                    location: location
                )
            }
            if normalized { vector = store.weightedSparseQuery(vector, field: field, view: view, corpus: corpus) }
            return (vector.packed.values, vector.indices.count)
        }
        if case .vector(.sparse) = example {
            throw TesseraError(
                .invalidArgument,
                "field '\(field.name)' is not a sparse field: a sparse example needs one",
                location: location
            )
        }
        var values: [Float]
        let tokenCount: Int
        switch example {
        case .point(let id):
            values = try storedValues(of: id, field: field, location: location, excluding: &excluding)
            tokenCount = values.count / field.dimension
        case .vector(let value):
            (values, tokenCount) = value.flattened
            guard tokenCount >= 1, values.count == tokenCount * field.dimension else {
                throw TesseraError(
                    .dimensionMismatch,
                    "an example has \(values.count) values in \(tokenCount) vector(s) but field '\(field.name)' has "
                        + "dimension \(field.dimension)",
                    location: location
                )
            }
            guard field.isMultivector || tokenCount == 1 else {
                throw TesseraError(
                    .invalidArgument,
                    "field '\(field.name)' is a dense field; an example gives \(tokenCount) vectors",
                    location: location
                )
            }
            guard values.allSatisfy(\.isFinite) else {
                throw TesseraError(
                    .invalidArgument,
                    "an example has a value that is not a finite number",
                    location: location
                )
            }
            if normalized {
                if field.isMultivector {
                    if field.storesUnitVectors { normalizeRows(&values, dimension: field.dimension) }
                } else if case .dense(.cosine) = field.kind {
                    normalize(&values)
                }
            }
        }
        return (values, tokenCount)
    }

    /// The field of a node's query (never `nil` for the vector queries that call it).
    private func queryField(of node: QueryNode, path: String) throws(TesseraError) -> VectorField {
        guard let field = try store.configuration.queryField(of: node, path: path) else {
            throw TesseraError(.invalidArgument, "the query names no vector field", location: .init(field: path))
        }
        return field
    }

    /// The root's multivector query, when it is one (for matched tokens).
    func rootMultivector() throws(TesseraError) -> (Multivector, VectorField)? {
        let root = plan.steps[plan.root]
        if case .multivector(let query, let field, _) = try resolve(root.node, path: "query") { return (query, field) }
        return nil
    }

    /// For each slot, the document token each query token matched.
    func matches(query: Multivector, field: VectorField, slots: [Int]) throws(TesseraError) -> [[Int32]] {
        guard let column = view.column(named: field.name) else { return [] }
        do {
            return try column.matches(query: query, slots: slots, kernel: kernel)
        } catch {
            throw TesseraError(.invalidArgument, "explaining failed: \(error)", location: .init(field: "query"))
        }
    }
}
