import TesseraIndex

/// How one stage of a query scored its points (recorded in ``QueryStage/method``).
public enum StageMethod: String, Sendable, Hashable, CaseIterable {
    /// The compressed multivector index, over the whole collection.
    case compressed
    /// Exact MaxSim over every allowed point.
    case maxsim
    /// Exact MaxSim over the union of the stage's inputs.
    case maxsimRerank = "maxsim rerank"
    /// The HNSW graph of a dense field.
    case hnsw
    /// An exact scan of a dense field.
    case dense
    /// Exact dense scores of the union of the stage's inputs.
    case denseRerank = "dense rerank"
    /// BM25 over payload text.
    case bm25
    /// BM25 scores of the union of the stage's inputs.
    case bm25Rerank = "bm25 rerank"
    /// A sparse field's inverted indexes (and a scan of the appendable tail).
    case sparse
    /// Sparse dot products of the union of the stage's inputs.
    case sparseRerank = "sparse rerank"
    /// Reciprocal rank fusion of the inputs.
    case rrf
    /// Distribution-based score fusion of the inputs.
    case dbsf
    /// The single input's results, cut to the limit.
    case passthrough
    /// Allowed points in id order, score 0.
    case idOrder = "id order"
    /// Recommendation scores (best or summed) from examples, an exact scan of the candidates.
    case recommend
    /// Discovery scores (context pairs and a target), an exact scan of the candidates.
    case discover
    /// Context scores (pairs of examples), an exact scan of the candidates.
    case context
    /// The candidates ordered by a payload value.
    case orderBy = "order by"
    /// The candidates in random order.
    case sample = "random sample"
}

/// What a query's leaf or rescoring step compares its query with.
public enum PlanTarget: Sendable, Hashable {
    /// BM25 over payload text.
    case bm25
    /// Late interaction (MaxSim) against a multivector field.
    case multivector(field: String)
    /// A dense field's distance.
    case dense(field: String)
    /// A sparse field's dot product.
    case sparse(field: String)
    /// BM25 over the text index with scoring on a payload key (Qdrant's text query).
    case textIndex(key: String)
}

/// What one step of a ``QueryPlan`` does.
public enum PlanOperation: Sendable, Equatable {
    /// A first stage over the whole collection (the points passing the step's filters): the field's index when
    /// it serves and `exact` is false (compressed index, HNSW graph), else an exact scan; BM25 for text.
    case search(PlanTarget, exact: Bool)
    /// Scores the union of the inputs' results exactly by the step's query.
    case rescore(PlanTarget)
    /// Fuses the inputs' ranked lists.
    case fuse(FusionMethod)
    /// Passes its single input's results through.
    case passthrough
    /// Lists the allowed points in id order.
    case scroll
    /// Orders the allowed points (a leaf) or the union of the inputs' results by a payload value.
    case order(OrderBy)
    /// Picks from the allowed points (a leaf) or the union of the inputs' results at random.
    case sample
}

/// A query tree turned into the steps that run: leaves first, each distinct subtree once, each distinct filter
/// evaluated once.
///
/// ``CollectionStore/plan(_:)`` builds one from a ``QueryRequest``; ``CollectionStore/query(_:encoder:kernel:)``
/// runs it. Two nodes of the tree that ask the same thing of the same inputs (the BM25 and dense lists of the hybrid
/// preset, used by the MaxSim rerank and again by the fusion) are one step, listed with both paths. A request's
/// ``QueryRequest/scope`` filter restricts what every leaf searches, so it holds at every stage without being
/// evaluated at each: an inner node's candidates come from leaves that already passed it.
public struct QueryPlan: Sendable, Equatable {
    /// One step of a plan.
    public struct Step: Sendable, Equatable {
        /// The tree nodes this step answers (`query`, `query.prefetch[1]`, …), in the order they were met.
        public var paths: [String]
        /// What the step does.
        public var operation: PlanOperation
        /// The node it came from, without its prefetch (its query, filter, limit, parameters, threshold).
        public var node: QueryNode
        /// The steps whose results this one scores or fuses, in prefetch order (indices into ``QueryPlan/steps``).
        public var inputs: [Int]
        /// The node's own filter, as an index into ``QueryPlan/filters``.
        public var filter: Int?
    }

    /// The steps, each after its inputs.
    public var steps: [Step]
    /// The distinct filters the steps use, each evaluated once per query.
    public var filters: [Filter]
    /// The filter every leaf applies (``QueryRequest/scope``), as an index into ``filters``.
    public var scope: Int?
    /// The step whose results the query returns.
    public var root: Int
    /// The best results skipped first (capped at the collection's size).
    public var offset: Int

    /// The steps that search the collection (no inputs).
    public var leaves: [Step] { steps.filter(\.inputs.isEmpty) }
}

extension CollectionStore {
    /// Plans a query: checks every node (limits, fields, fusions), caps limits and candidate counts at the
    /// collection's size, merges the nodes that ask the same thing, and lists each distinct filter once.
    /// - Parameter request: The query tree.
    /// - Returns: The steps that answer it.
    /// - Throws: ``TesseraError`` naming the node (`query.prefetch[1].limit`, …) for a negative limit or offset, an
    ///   unknown field, a field that does not fit the query, a fusion without prefetch, several prefetches without a
    ///   query to combine them.
    public func plan(_ request: QueryRequest) throws(TesseraError) -> QueryPlan {
        try plan(request, liveCount: scoringView().liveCount)
    }

    func plan(_ request: QueryRequest, liveCount: Int) throws(TesseraError) -> QueryPlan {
        guard request.offset >= 0 else {
            throw TesseraError(
                .invalidArgument,
                "offset must not be negative (got \(request.offset))",
                location: .init(field: "offset")
            )
        }
        var planner = Planner(configuration: configuration)
        // Limits, offsets and candidate counts are capped by the collection's size, as Qdrant caps them: no request
        // allocates or loops for more results than there are points, and `limit + offset` cannot overflow.
        var root = request.root
        Self.capLimits(&root, to: liveCount)
        let offset = min(request.offset, liveCount)
        if root.limit >= 0 { root.limit += offset }
        let scope = request.scope.flatMap { $0.isEmpty ? nil : planner.filterIndex($0) }
        let rootStep = try planner.add(root, path: "query")
        return QueryPlan(
            steps: planner.steps,
            filters: planner.filters,
            scope: scope,
            root: rootStep,
            offset: offset
        )
    }

    /// Caps every node's limit and candidate counts at `cap` (negative values are left for the planner to refuse
    /// with the node's path).
    static func capLimits(_ node: inout QueryNode, to cap: Int) {
        node.limit = min(node.limit, cap)
        if let ef = node.parameters.hnswEf { node.parameters.hnswEf = min(ef, max(cap, 1)) }
        if let candidates = node.parameters.mmr?.candidateLimit {
            node.parameters.mmr?.candidateLimit = min(candidates, cap)
        }
        if var compressed = node.parameters.compressed {
            compressed.candidateCount = min(compressed.candidateCount, cap)
            if let rank = compressed.imputationRank { compressed.imputationRank = min(rank, 1 << 20) }
            node.parameters.compressed = compressed
        }
        for index in node.prefetch.indices { capLimits(&node.prefetch[index], to: cap) }
    }
}

/// Builds a plan's steps, merging equal subtrees.
struct Planner {
    let configuration: CollectionConfiguration
    var steps: [QueryPlan.Step] = []
    var filters: [Filter] = []

    init(configuration: CollectionConfiguration) { self.configuration = configuration }

    mutating func filterIndex(_ filter: Filter) -> Int {
        if let known = filters.firstIndex(of: filter) { return known }
        filters.append(filter)
        return filters.count - 1
    }

    /// Adds a node and its subtree; returns the node's step.
    mutating func add(_ node: QueryNode, path: String) throws(TesseraError) -> Int {
        guard node.limit >= 0 else {
            throw TesseraError(
                .invalidArgument,
                "limit must not be negative (got \(node.limit))",
                location: .init(field: "\(path).limit")
            )
        }
        var inputs: [Int] = []
        for (position, child) in node.prefetch.enumerated() {
            inputs.append(try add(child, path: "\(path).prefetch[\(position)]"))
        }
        let target = try Self.target(of: node, in: configuration, path: path)
        let operation: PlanOperation
        if case .order(let order) = target {
            operation = .order(order)
        } else if case .sample = target {
            operation = .sample
        } else if inputs.isEmpty {
            switch target {
            case .order, .sample: preconditionFailure("handled above")
            case .fusion:
                throw TesseraError(
                    .invalidArgument,
                    "a fusion query needs prefetch lists to fuse",
                    location: .init(field: "\(path).prefetch")
                )
            case .none: operation = .scroll
            case .field(let field): operation = .search(field, exact: node.parameters.exact)
            }
        } else {
            switch target {
            case .order, .sample: preconditionFailure("handled above")
            case .fusion(let method): operation = .fuse(method)
            case .none:
                guard inputs.count == 1 else {
                    throw TesseraError(
                        .invalidArgument,
                        "a node with \(inputs.count) prefetches needs a query or a fusion to combine them",
                        location: .init(field: "\(path).query")
                    )
                }
                operation = .passthrough
            case .field(let field): operation = .rescore(field)
            }
        }
        var own = node
        own.prefetch = []
        let filter = node.filter.flatMap { $0.isEmpty ? nil : filterIndex($0) }
        if let same = steps.firstIndex(where: { $0.node == own && $0.inputs == inputs && $0.operation == operation }) {
            steps[same].paths.append(path)
            return same
        }
        steps.append(QueryPlan.Step(paths: [path], operation: operation, node: own, inputs: inputs, filter: filter))
        return steps.count - 1
    }

    enum Target {
        case field(PlanTarget)
        case fusion(FusionMethod)
        case order(OrderBy)
        case sample
        case none
    }

    /// What a node's query is compared with, from the collection's configuration alone (no encoding, no lookup).
    static func target(
        of node: QueryNode,
        in configuration: CollectionConfiguration,
        path: String
    ) throws(TesseraError) -> Target {
        func target(_ field: VectorField) -> Target {
            switch field.kind {
            case .multivector: .field(.multivector(field: field.name))
            case .dense: .field(.dense(field: field.name))
            case .sparse: .field(.sparse(field: field.name))
            }
        }
        if let query = node.query, let name = node.using, configuration.field(named: name)?.isSparse == true {
            switch query {
            case .sparse, .point, .recommend, .discover, .context: break
            default:
                throw TesseraError(
                    .invalidArgument,
                    "field '\(name)' is a sparse field: query it with a sparse vector, a point id or examples",
                    location: .init(field: "\(path).query")
                )
            }
        }
        switch node.query {
        case nil: return .none
        case .fusion(let method)?: return .fusion(method)
        case .text?:
            guard let name = node.using, name != "bm25" else { return .field(.bm25) }
            // `using` naming no vector field names a payload key with a text index (Qdrant's text query).
            if configuration.field(named: name) == nil { return .field(.textIndex(key: name)) }
            return target(try field(named: name, multivector: nil, in: configuration, path: path))
        case .multivector?:
            return target(try field(named: node.using, multivector: true, in: configuration, path: path))
        case .dense?:
            let multivector: Bool? = node.using == nil ? false : nil
            return target(try field(named: node.using, multivector: multivector, in: configuration, path: path))
        case .point?:
            return target(try field(named: node.using, multivector: nil, in: configuration, path: path))
        case .sparse?:
            if let name = node.using {
                let named = try field(named: name, multivector: nil, in: configuration, path: path)
                guard named.isSparse else {
                    throw TesseraError(
                        .invalidArgument,
                        "field '\(name)' is not a sparse field; a sparse query needs one",
                        location: .init(field: "\(path).using")
                    )
                }
                return target(named)
            }
            let sparse = configuration.fields.filter(\.isSparse)
            guard sparse.count == 1 else {
                throw TesseraError(
                    .invalidArgument,
                    "name the sparse field to search in `using`: the collection has "
                        + (sparse.isEmpty ? "none" : sparse.map(\.name).joined(separator: ", ")),
                    location: .init(field: "\(path).using")
                )
            }
            return target(sparse[0])
        case .recommend(let recommendation)?:
            let kind = exampleKind(recommendation.positive + recommendation.negative, using: node.using)
            return target(try field(named: node.using, multivector: kind, in: configuration, path: path))
        case .discover(let goal, let context)?:
            let examples = [goal] + context.flatMap { [$0.positive, $0.negative] }
            let kind = exampleKind(examples, using: node.using)
            return target(try field(named: node.using, multivector: kind, in: configuration, path: path))
        case .context(let context)?:
            let kind = exampleKind(context.flatMap { [$0.positive, $0.negative] }, using: node.using)
            return target(try field(named: node.using, multivector: kind, in: configuration, path: path))
        case .orderBy(let order)?:
            return .order(order)
        case .sample?:
            return .sample
        }
    }

    /// The kind of field examples fit when `using` names none: dense for a dense vector, multivector for token
    /// vectors, either for point ids.
    static func exampleKind(_ examples: [QueryExample], using: String?) -> Bool? {
        guard using == nil else { return nil }
        for case .vector(let value) in examples {
            switch value {
            case .dense: return false
            case .sparse: return nil
            default: return true
            }
        }
        return nil
    }

    /// The field a node names, or the only field of the query's kind.
    static func field(
        named name: String?,
        multivector: Bool?,
        in configuration: CollectionConfiguration,
        path: String
    ) throws(TesseraError) -> VectorField {
        let location = TesseraError.Location(field: "\(path).using")
        if let name {
            guard let field = configuration.field(named: name) else {
                throw TesseraError(
                    .notFound,
                    "no vector field '\(name)'; the collection's fields are "
                        + configuration.fields.map(\.name).joined(separator: ", "),
                    location: location
                )
            }
            return field
        }
        let candidates = configuration.fields.filter {
            !$0.isSparse && (multivector == nil || $0.isMultivector == multivector)
        }
        guard candidates.count == 1 else {
            throw TesseraError(
                .invalidArgument,
                "name the field to search in `using`: the collection has "
                    + (candidates.isEmpty
                        ? "no such field" : "fields " + candidates.map(\.name).joined(separator: ", ")),
                location: location
            )
        }
        return candidates[0]
    }
}

extension CollectionConfiguration {
    /// The field a node's query goes to, or `nil` for BM25, fusion and id order.
    func queryField(of node: QueryNode, path: String) throws(TesseraError) -> VectorField? {
        guard case .field(let target) = try Planner.target(of: node, in: self, path: path) else { return nil }
        switch target {
        case .bm25, .textIndex: return nil
        case .multivector(let name), .dense(let name), .sparse(let name): return field(named: name)
        }
    }
}
