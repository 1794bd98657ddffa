public import MaxSim
public import TesseraIndex

/// How a search finds its results.
public enum SearchMethod: Sendable, Equatable {
    /// MaxSim against every token of every point passing the filter.
    case exact
    /// The field's compressed index as the first stage (`nil` parameters: the defaults for the request's
    /// `limit + offset`); with `rerank`, its candidates are scored again by exact MaxSim on the stored vectors.
    /// A field without a usable compressed index is searched exactly.
    case compressed(CompressedSearchParameters?, rerank: Bool)
}

/// A late-interaction search over one multivector field.
public struct SearchRequest: Sendable {
    /// The query's token vectors.
    public var query: Multivector
    /// The multivector field to search; `nil` picks the collection's only multivector field.
    public var field: String?
    /// Only points passing this filter are scored.
    public var filter: Filter?
    /// How many results to return.
    public var limit: Int
    /// How many of the best results to skip first (pagination).
    public var offset: Int
    /// Return each result's payload.
    public var withPayload: Bool
    /// Drop results scoring below this.
    public var scoreThreshold: Float?
    /// Return, for each result, which document token each query token matched.
    public var withMatches: Bool
    /// Exact search, or the compressed index (with or without an exact rerank).
    public var method: SearchMethod

    /// Creates a request.
    /// - Parameters:
    ///   - query: the query's token vectors.
    ///   - field: the multivector field; `nil` for the only one.
    ///   - filter: a payload filter applied before scoring.
    ///   - limit: results to return.
    ///   - offset: best results to skip.
    ///   - withPayload: include payloads.
    ///   - scoreThreshold: minimum score.
    ///   - withMatches: include matched document tokens.
    ///   - method: exact, or the compressed index.
    public init(
        query: Multivector,
        field: String? = nil,
        filter: Filter? = nil,
        limit: Int = 10,
        offset: Int = 0,
        withPayload: Bool = true,
        scoreThreshold: Float? = nil,
        withMatches: Bool = false,
        method: SearchMethod = .exact
    ) {
        self.method = method
        self.query = query
        self.field = field
        self.filter = filter
        self.limit = limit
        self.offset = offset
        self.withPayload = withPayload
        self.scoreThreshold = scoreThreshold
        self.withMatches = withMatches
    }
}

/// A search result.
public struct ScoredPoint: Sendable, Equatable {
    /// The point's id.
    public var id: PointID
    /// Its MaxSim score.
    public var score: Float
    /// Its payload, when requested.
    public var payload: JSONObject?
    /// For each query token, the index of the document token it matched (−1 for a document without
    /// tokens), when requested.
    public var matchedTokens: [Int32]?
    /// The vector fields asked for (``QueryRequest/withVectors``), by name.
    public var vectors: [String: VectorValue]? = nil
    /// The payload value an `order_by` query listed it for.
    public var orderValue: OrderValue? = nil

    /// Creates a result.
    public init(
        id: PointID,
        score: Float,
        payload: JSONObject? = nil,
        matchedTokens: [Int32]? = nil,
        vectors: [String: VectorValue]? = nil,
        orderValue: OrderValue? = nil
    ) {
        self.id = id
        self.score = score
        self.payload = payload
        self.matchedTokens = matchedTokens
        self.vectors = vectors
        self.orderValue = orderValue
    }
}

extension CollectionStore {
    /// Late-interaction search over one multivector field, as a query plan: one leaf (exact MaxSim, or the
    /// compressed index), under an exact MaxSim rerank for ``SearchMethod/compressed(_:rerank:)`` with `rerank`.
    /// - Parameters:
    ///   - request: the query and options.
    ///   - kernel: the kernel configuration (threads, instruction set).
    /// - Returns: up to `limit` points, best first (ties to the earlier-stored point).
    /// - Throws: `TesseraError` for an unknown field, a field that is not a multivector, a dimension
    ///   mismatch, or a negative limit or offset.
    /// - Complexity: O(Lq × T × dimension) for the T tokens of the points passing the filter, when exact.
    public func search(
        _ request: SearchRequest,
        kernel: MaxSimKernel = MaxSimKernel()
    ) throws(TesseraError)
        -> [ScoredPoint]
    {
        try query(queryRequest(for: request), kernel: kernel).points
    }

    /// The query tree of a ``SearchRequest``.
    /// - Throws: `TesseraError` for an unknown field or one that is not a multivector.
    public func queryRequest(for request: SearchRequest) throws(TesseraError) -> QueryRequest {
        let field = try multivectorField(named: request.field, in: scoringView())
        let wanted = max(0, request.limit) + max(0, request.offset)
        var root = QueryNode(
            query: .multivector(request.query),
            using: field.name,
            limit: request.limit,
            scoreThreshold: request.scoreThreshold,
            parameters: QueryParameters(exact: true)
        )
        if case .compressed(let parameters, let rerank) = request.method {
            var settings = parameters ?? .defaults(limit: wanted)
            if rerank {
                settings.candidateCount = max(settings.candidateCount, wanted)
                root.prefetch = [
                    QueryNode(
                        query: .multivector(request.query),
                        using: field.name,
                        limit: settings.candidateCount,
                        parameters: QueryParameters(compressed: settings)
                    )
                ]
            } else {
                root.parameters = QueryParameters(compressed: settings)
            }
        }
        return QueryRequest(
            root: root,
            scope: request.filter,
            offset: request.offset,
            withPayload: request.withPayload,
            withMatches: request.withMatches
        )
    }

    func multivectorField(named name: String?, in view: ScoringView) throws(TesseraError) -> VectorField {
        try vectorField(named: name, multivector: true)
    }

    /// The field of this kind with this name, or the collection's only one of the kind.
    /// - Throws: ``TesseraError/Code/notFound`` for an unknown name; ``TesseraError/Code/invalidArgument`` for a
    ///   field of the other kind, or no name when there is not exactly one field of the kind.
    func vectorField(named name: String?, multivector: Bool) throws(TesseraError) -> VectorField {
        let kind = multivector ? "multivector" : "dense"
        let fields = configuration.fields.filter { !$0.isSparse && $0.isMultivector == multivector }
        if let name {
            guard let field = configuration.field(named: name) else {
                throw TesseraError(.notFound, "no vector field '\(name)'", location: .init(field: "using"))
            }
            guard !field.isSparse, field.isMultivector == multivector else {
                throw TesseraError(
                    .invalidArgument,
                    "field '\(name)' is not a \(kind) field",
                    location: .init(field: "using")
                )
            }
            return field
        }
        guard fields.count == 1 else {
            throw TesseraError(
                .invalidArgument,
                fields.isEmpty
                    ? "the collection has no \(kind) field"
                    : "the collection has \(fields.count) \(kind) fields; name one",
                location: .init(field: "using")
            )
        }
        return fields[0]
    }
}
