public import MaxSim
public import Tessera
import TesseraIndex

/// Qdrant's REST wire types (field names as Qdrant spells them) and their conversion to and from Tessera's
/// values. Decode request bodies with ``JSONValueDecoder``; encode answers with ``JSONValueEncoder``.
public enum Qdrant {
    /// The version of Qdrant's API this server follows, reported by `GET /`. Qdrant's client warns when its minor
    /// version and the server's differ by more than one.
    public static let apiVersion = "1.20.0"
}

extension Qdrant {
    /// The body of `POST /collections/{name}/points/query`: a root ``Prefetch``-shaped node plus what to return.
    ///
    /// Tessera's extensions: `explain` (matched tokens and per-stage timings), text queries (`{"text": …}`), and
    /// the compressed-index and BM25 entries of ``SearchParams``. `shard_key`, `timeout` and `consistency` are
    /// accepted and have no effect (one shard, one replica).
    public struct QueryRequest: Decodable, Sendable {
        /// The root node.
        public var node: Prefetch
        public var offset: Int?
        public var withPayload: WithPayload?
        public var withVector: WithVector?
        public var explain: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case offset, explain
            case withPayload = "with_payload"
            case withVector = "with_vector"
            case withVectors = "with_vectors"
            case shardKey = "shard_key"
            case timeout, consistency
        }

        public init(from decoder: any Decoder) throws {
            try self.init(from: decoder, allowing: [])
        }

        /// Decodes the fields of a query, with `extra` fields left to the caller (a grouped query's).
        init(from decoder: any Decoder, allowing extra: [String]) throws {
            node = try Prefetch(from: decoder, allowing: CodingKeys.allCases.map(\.rawValue) + extra)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            offset = try container.decodeIfPresent(Int.self, forKey: .offset)
            withPayload = try container.decodeIfPresent(WithPayload.self, forKey: .withPayload)
            withVector =
                try container.decodeIfPresent(WithVector.self, forKey: .withVector)
                ?? container.decodeIfPresent(WithVector.self, forKey: .withVectors)
            explain = try container.decodeIfPresent(Bool.self, forKey: .explain)
        }

        /// The library's request.
        /// - Throws: `TesseraError.Code.invalidArgument` for a filter key the library refuses.
        public func request() throws(TesseraError) -> Tessera.QueryRequest {
            // Qdrant returns no payload unless asked, and applies each node's filter to its prefetches too.
            var request = Tessera.QueryRequest(
                root: try node.node().inheritingFilters(),
                offset: offset ?? 0,
                withPayload: withPayload?.included ?? false,
                withVectors: [],
                withMatches: explain ?? false
            )
            request.payloadSelector = withPayload?.selector
            switch withVector {
            case .flag(true)?: request.withAllVectors = true
            case .names(let names)?: request.withVectors = names
            case .flag(false)?, nil: break
            }
            return request
        }
    }

    /// One node of a query tree (Qdrant's `Prefetch`; the request's root has the same fields): a query, the
    /// vector field it searches, children whose results it fuses or reranks, a filter, and a limit (10 by default).
    public struct Prefetch: Decodable, Sendable {
        public var prefetch: [Prefetch]?
        public var query: Query?
        public var using: String?
        public var filter: Filter?
        public var params: SearchParams?
        public var scoreThreshold: Double?
        public var limit: Int?
        /// Where point ids in the query take their vectors from (another collection, another field).
        public var lookupFrom: LookupLocation?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case prefetch, query, using, filter, params, limit
            case scoreThreshold = "score_threshold"
            case lookupFrom = "lookup_from"
        }

        public init(from decoder: any Decoder) throws {
            try self.init(from: decoder, allowing: [])
        }

        init(from decoder: any Decoder, allowing extra: [String]) throws {
            let names = try decoder.container(keyedBy: JSONKey.self).allKeys.map(\.stringValue)
            let known = Set(CodingKeys.allCases.map(\.rawValue) + extra)
            if let unknown = names.filter({ !known.contains($0) }).sorted().first {
                throw invalid(
                    decoder.codingPath + [JSONKey(stringValue: unknown)],
                    "unknown field '\(unknown)' in a query\(extra.isEmpty ? " prefetch" : "")"
                )
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            lookupFrom = try container.decodeIfPresent(LookupLocation.self, forKey: .lookupFrom)
            if container.contains(.prefetch), try !container.decodeNil(forKey: .prefetch) {
                if case .object = try container.decode(JSONValue.self, forKey: .prefetch) {
                    prefetch = [try container.decode(Prefetch.self, forKey: .prefetch)]
                } else {
                    prefetch = try container.decode([Prefetch].self, forKey: .prefetch)
                }
            }
            query = try container.decodeIfPresent(Query.self, forKey: .query)
            using = try container.decodeIfPresent(String.self, forKey: .using)
            filter = try container.decodeIfPresent(Filter.self, forKey: .filter)
            params = try container.decodeIfPresent(SearchParams.self, forKey: .params)
            scoreThreshold = try container.decodeIfPresent(Double.self, forKey: .scoreThreshold)
            // A limit beyond Int64 is as large as it gets (limits are capped by the collection's size anyway).
            if case .unsigned? = try container.decodeIfPresent(JSONValue.self, forKey: .limit) {
                limit = Int.max
            } else {
                limit = try container.decodeIfPresent(Int.self, forKey: .limit)
            }
        }

        /// The tree with the point ids of every node that has `lookup_from` replaced by the vectors `vector` gives
        /// them (the collection and field named there; the ids are then not left out of the results, as in Qdrant).
        /// - Parameter vector: The stored vector of a point in a collection's field (throwing when there is none).
        /// - Returns: The tree without `lookup_from`.
        /// - Throws: What `vector` throws, or a decoding error when a lookup names no field and its node no `using`.
        public func resolvingLookups(
            _ vector: (_ collection: String, _ field: String, _ id: PointID) throws -> VectorValue
        ) throws -> Prefetch {
            var node = self
            node.prefetch = try prefetch?.map { try $0.resolvingLookups(vector) }
            guard let lookup = lookupFrom, let query else { return node }
            guard let field = lookup.vector ?? using else {
                throw invalid([CodingKeys.lookupFrom], "lookup_from needs `vector` when the query names no `using`")
            }
            func example(_ example: QueryExample) throws -> QueryExample {
                guard case .point(let id) = example else { return example }
                return .vector(try vector(lookup.collection, field, id))
            }
            func pairs(_ context: [ContextPair]) throws -> [ContextPair] {
                try context.map { ContextPair(positive: try example($0.positive), negative: try example($0.negative)) }
            }
            func resolved(_ query: Query) throws -> Query {
                switch query {
                case .point(let id):
                    switch try vector(lookup.collection, field, id) {
                    case .dense(let values): return .dense(values)
                    case .sparse(let vector): return .sparse(vector)
                    case let other:
                        let (values, tokenCount) = other.flattened
                        return .multivector(try Multivector(values, dimension: values.count / max(1, tokenCount)))
                    }
                case .recommend(var recommendation):
                    recommendation.positive = try recommendation.positive.map(example)
                    recommendation.negative = try recommendation.negative.map(example)
                    return .recommend(recommendation)
                case .discover(let target, let context):
                    return .discover(target: try example(target), context: try pairs(context))
                case .context(let context):
                    return .context(try pairs(context))
                case .diverse(let base, let mmr):
                    return .diverse(try resolved(base), mmr)
                default:
                    return query
                }
            }
            node.query = try resolved(query)
            node.lookupFrom = nil
            return node
        }

        /// The library's query node.
        func node() throws(TesseraError) -> QueryNode {
            var children: [QueryNode] = []
            for child in prefetch ?? [] { children.append(try child.node()) }
            var parameters = params?.parameters ?? QueryParameters()
            if let corpus = params?.idfCorpus { parameters.idfCorpus = try corpus.filter() }
            parameters.idfStatistics = params?.idfStatistics
            parameters.textStatistics = params?.textStatistics
            if case .diverse(_, let mmr)? = query { parameters.mmr = mmr }
            if case .scoredText(_, let k, let b)? = query {
                if (k != nil && params?.k1 != nil) || (b != nil && params?.b != nil) {
                    throw TesseraError(
                        .invalidArgument,
                        "BM25 parameters are given twice: in the text query's scoring and in params",
                        location: .init(field: "query.text.scoring")
                    )
                }
                if let k { parameters.bm25.k1 = Float(k) }
                if let b { parameters.bm25.b = Float(b) }
            }
            return QueryNode(
                query: query?.input,
                using: using,
                filter: try filter?.filter(),
                limit: limit ?? 10,
                scoreThreshold: scoreThreshold.map(Float.init),
                parameters: parameters,
                prefetch: children
            )
        }
    }

    /// A query: a vector, a multivector, a point id, `{"nearest": …}` of one of those, `{"fusion": "rrf" |
    /// "dbsf"}`, `{"rrf": {"k": …, "weights": […]}}`, `{"dbsf": {"weights": […]}}`, or Tessera's text query
    /// `{"text": "…"}` (BM25 when `using` is absent or `"bm25"`, else encoded for that vector field).
    public enum Query: Decodable, Sendable {
        case dense([Float])
        case multivector(Multivector)
        case point(PointID)
        case text(String)
        /// Qdrant's text query input `{"text": {"query": …, "scoring": {"bm25": {"k": …, "b": …}}}}`.
        case scoredText(String, k: Double?, b: Double?)
        case fusion(FusionMethod)
        case recommend(Recommendation)
        case discover(target: QueryExample, context: [ContextPair])
        case context([ContextPair])
        case orderBy(Tessera.OrderBy)
        case sample
        case sparse(SparseVector)
        /// A nearest query reordered by maximal marginal relevance.
        indirect case diverse(Query, MaximalMarginalRelevance)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case nearest, fusion, rrf, dbsf, text, recommend, discover, context, sample, formula, mmr
            case orderBy = "order_by"
        }
        enum MMRKeys: String, CodingKey, CaseIterable {
            case diversity
            case candidatesLimit = "candidates_limit"
        }
        enum RecommendKeys: String, CodingKey, CaseIterable { case positive, negative, strategy }
        enum DiscoverKeys: String, CodingKey, CaseIterable { case target, context }
        enum RRFKeys: String, CodingKey, CaseIterable { case k, weights }
        enum DBSFKeys: String, CodingKey, CaseIterable { case weights }

        /// Qdrant's `Fusion` names.
        public enum Fusion: String, Decodable, Sendable {
            case rrf, dbsf
        }

        enum TextInputKeys: String, CodingKey, CaseIterable { case query, scoring }
        enum TextScoringKeys: String, CodingKey, CaseIterable { case bm25 }
        enum BM25Keys: String, CodingKey, CaseIterable { case k, b }

        /// Reads Qdrant's `TextQueryInput`.
        static func textQueryInput(_ decoder: any Decoder) throws -> Query {
            try decoder.rejectUnknownKeys(TextInputKeys.self, what: "a text query")
            let fields = try decoder.container(keyedBy: TextInputKeys.self)
            let text = try fields.decode(String.self, forKey: .query)
            guard fields.contains(.scoring), try !fields.decodeNil(forKey: .scoring) else {
                return .scoredText(text, k: nil, b: nil)
            }
            let scoring = try fields.superDecoder(forKey: .scoring)
            try scoring.rejectUnknownKeys(TextScoringKeys.self, what: "text query scoring")
            let scorers = try scoring.container(keyedBy: TextScoringKeys.self)
            guard scorers.contains(.bm25), try !scorers.decodeNil(forKey: .bm25) else {
                return .scoredText(text, k: nil, b: nil)
            }
            let bm25 = try scorers.superDecoder(forKey: .bm25)
            try bm25.rejectUnknownKeys(BM25Keys.self, what: "bm25 scoring")
            let parameters = try bm25.container(keyedBy: BM25Keys.self)
            return .scoredText(
                text,
                k: try parameters.decodeIfPresent(Double.self, forKey: .k),
                b: try parameters.decodeIfPresent(Double.self, forKey: .b)
            )
        }

        public init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer().decode(JSONValue.self)
            let path = decoder.codingPath
            switch value {
            case .integer, .unsigned, .string:
                self = .point(try decoder.singleValueContainer().decode(PointID.self))
            case .array(let items):
                guard let first = items.first else { throw invalid(path, "the query vector is empty") }
                guard case .array = first else {
                    self = .dense(try decoder.singleValueContainer().decode([Float].self))
                    return
                }
                let rows = try decoder.singleValueContainer().decode([[Float]].self)
                let dimension = rows[0].count
                guard dimension > 0, rows.allSatisfy({ $0.count == dimension }) else {
                    throw invalid(path, "the query's token vectors must all have the same, non-zero length")
                }
                do {
                    self = .multivector(try Multivector(rows.flatMap { $0 }, dimension: dimension))
                } catch {
                    throw invalid(path, "bad multivector: \(error)")
                }
            case .object(let object) where object.count == 2 && object["indices"] != nil && object["values"] != nil:
                guard
                    case .sparse(let indices, let values) = try decoder.singleValueContainer().decode(VectorInput.self)
                else { throw invalid(path, "a sparse vector is {\"indices\": […], \"values\": […]}") }
                do {
                    self = .sparse(try SparseVector(indices: indices, values: values))
                } catch {
                    throw invalid(path, error.message)
                }
            case .object(let object):
                let container = try decoder.container(keyedBy: CodingKeys.self)
                if case .string(let text)? = object["text"], object["model"] != nil || object["options"] != nil {
                    // A Qdrant `Document` naming a model: Qdrant's built-in BM25 (a sparse query) or refused.
                    let vector = try Qdrant.inferredSparse(object, text: text, query: true, path: path)
                    self = vector.map(Query.sparse) ?? .text(text)
                    return
                }
                // One kind of query per object (`nearest` may come with `mmr`): no field is ignored.
                let extra = object.keys.filter { $0 != "mmr" || object["nearest"] == nil }.sorted()
                if extra.count > 1 {
                    throw invalid(
                        path + [JSONKey(stringValue: extra[1])],
                        "a query object holds one of nearest, fusion, rrf, dbsf, recommend, discover, context, "
                            + "order_by, sample, text; found \(extra.joined(separator: ", "))"
                    )
                }
                if let nested = object["nearest"] {
                    let base = try container.decode(Query.self, forKey: .nearest)
                    switch base {
                    case .dense, .multivector, .point, .sparse, .text: break
                    default:
                        // Qdrant's `nearest` holds a vector input, never another query.
                        var location = path + [CodingKeys.nearest]
                        if case .object(let inner) = nested, let key = inner.keys.sorted().first {
                            location.append(JSONKey(stringValue: key))
                        }
                        throw invalid(
                            location,
                            "nearest takes a vector, a multivector, a sparse vector, a point id or a text, not a query"
                        )
                    }
                    guard container.contains(.mmr), try !container.decodeNil(forKey: .mmr) else {
                        self = base
                        return
                    }
                    switch base {
                    case .dense, .multivector, .point, .sparse: break
                    default:
                        throw invalid(path + [CodingKeys.mmr], "mmr applies to a vector, a multivector or a point id")
                    }
                    let settings = try container.superDecoder(forKey: .mmr)
                    try settings.rejectUnknownKeys(MMRKeys.self, what: "mmr")
                    let fields = try settings.container(keyedBy: MMRKeys.self)
                    var mmr = MaximalMarginalRelevance()
                    if let diversity = try fields.decodeIfPresent(Double.self, forKey: .diversity) {
                        guard (0...1).contains(diversity) else {
                            throw invalid(
                                fields.codingPath + [MMRKeys.diversity],
                                "diversity must be in 0...1 (got \(diversity))"
                            )
                        }
                        mmr.diversity = Float(diversity)
                    }
                    if let limit = try fields.decodeIfPresent(Int.self, forKey: .candidatesLimit) {
                        guard limit >= 0 else {
                            throw invalid(
                                fields.codingPath + [MMRKeys.candidatesLimit],
                                "candidates_limit must not be negative (got \(limit))"
                            )
                        }
                        mmr.candidateLimit = limit
                    }
                    self = .diverse(base, mmr)
                } else if object["fusion"] != nil {
                    switch try container.decode(Fusion.self, forKey: .fusion) {
                    case .rrf: self = .fusion(.rrf())
                    case .dbsf: self = .fusion(.dbsf())
                    }
                } else if object["rrf"] != nil {
                    let settings = try container.superDecoder(forKey: .rrf)
                    try settings.rejectUnknownKeys(RRFKeys.self, what: "rrf")
                    let fields = try settings.container(keyedBy: RRFKeys.self)
                    self = .fusion(
                        .rrf(
                            k: try fields.decodeIfPresent(Int.self, forKey: .k) ?? Tessera.Fusion.defaultRankConstant,
                            weights: try fields.decodeIfPresent([Float].self, forKey: .weights)
                        )
                    )
                } else if object["dbsf"] != nil {
                    let settings = try container.superDecoder(forKey: .dbsf)
                    try settings.rejectUnknownKeys(DBSFKeys.self, what: "dbsf")
                    let fields = try settings.container(keyedBy: DBSFKeys.self)
                    self = .fusion(.dbsf(weights: try fields.decodeIfPresent([Float].self, forKey: .weights)))
                } else if case .object? = object["text"] {
                    self = try Self.textQueryInput(try container.superDecoder(forKey: .text))
                } else if object["text"] != nil {
                    self = .text(try container.decode(String.self, forKey: .text))
                } else if object["recommend"] != nil {
                    let input = try container.superDecoder(forKey: .recommend)
                    try input.rejectUnknownKeys(RecommendKeys.self, what: "recommend")
                    let fields = try input.container(keyedBy: RecommendKeys.self)
                    var recommendation = Recommendation(
                        positive: try fields.decodeIfPresent([Example].self, forKey: .positive)?.map(\.example) ?? [],
                        negative: try fields.decodeIfPresent([Example].self, forKey: .negative)?.map(\.example) ?? []
                    )
                    if let name = try fields.decodeIfPresent(String.self, forKey: .strategy) {
                        guard let strategy = RecommendStrategy(rawValue: name) else {
                            throw invalid(
                                fields.codingPath + [RecommendKeys.strategy],
                                "unknown strategy '\(name)' (expected average_vector, best_score or sum_scores)"
                            )
                        }
                        recommendation.strategy = strategy
                    }
                    self = .recommend(recommendation)
                } else if object["discover"] != nil {
                    let input = try container.superDecoder(forKey: .discover)
                    try input.rejectUnknownKeys(DiscoverKeys.self, what: "discover")
                    let fields = try input.container(keyedBy: DiscoverKeys.self)
                    let target = try fields.decode(Example.self, forKey: .target).example
                    let context = try fields.decodeIfPresent(Context.self, forKey: .context)?.pairs ?? []
                    self = .discover(target: target, context: context)
                } else if object["context"] != nil {
                    self = .context(try container.decodeIfPresent(Context.self, forKey: .context)?.pairs ?? [])
                } else if object["order_by"] != nil {
                    let path = path + [CodingKeys.orderBy]
                    guard let order = try ScrollRequest.orderBy(container, key: .orderBy, path: path) else {
                        throw invalid(path, "order_by needs a payload key")
                    }
                    self = .orderBy(order)
                } else if object["sample"] != nil {
                    let kind = try container.decode(String.self, forKey: .sample)
                    guard kind == "random" else {
                        throw invalid(path + [CodingKeys.sample], "unknown sample '\(kind)' (expected random)")
                    }
                    self = .sample
                } else {
                    let name = object.keys.sorted().first ?? "{}"
                    throw invalid(
                        path + [JSONKey(stringValue: name)],
                        "query '\(name)' is not supported (supported: a vector, a multivector, a point id, nearest, "
                            + "fusion, rrf, dbsf, recommend, discover, context, order_by, sample, text)"
                    )
                }
            default:
                throw invalid(path, "a query is a vector, a multivector, a point id or an object")
            }
        }

        var input: QueryInput {
            switch self {
            case .dense(let values): .dense(values)
            case .multivector(let query): .multivector(query)
            case .point(let id): .point(id)
            case .text(let text), .scoredText(let text, _, _): .text(text)
            case .fusion(let method): .fusion(method)
            case .recommend(let recommendation): .recommend(recommendation)
            case .discover(let target, let context): .discover(target: target, context: context)
            case .context(let context): .context(context)
            case .orderBy(let order): .orderBy(order)
            case .sample: .sample
            case .sparse(let vector): .sparse(vector)
            case .diverse(let base, _): base.input
            }
        }
    }

    /// `lookup_from`: the collection (and vector field) point ids of a query are read from.
    public struct LookupLocation: Decodable, Sendable {
        public var collection: String
        public var vector: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case collection, vector }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "lookup_from")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            collection = try container.decode(String.self, forKey: .collection)
            vector = try container.decodeIfPresent(String.self, forKey: .vector)
        }
    }

    /// An example of a recommendation, discovery or context query (Qdrant's `VectorInput`): a point id, a dense
    /// vector, a multivector, a sparse vector or a document for the built-in `qdrant/bm25` model (its query
    /// vector); other documents are refused, naming them.
    struct Example: Decodable {
        var example: QueryExample

        init(from decoder: any Decoder) throws {
            let path = decoder.codingPath
            switch try decoder.singleValueContainer().decode(JSONValue.self) {
            case .integer, .unsigned, .string:
                example = .point(try decoder.singleValueContainer().decode(PointID.self))
            case .array(let items):
                guard let first = items.first else { throw invalid(path, "an example vector is empty") }
                if case .array = first {
                    example = .vector(.multivector(try decoder.singleValueContainer().decode([[Float]].self)))
                } else {
                    example = .vector(.dense(try decoder.singleValueContainer().decode([Float].self)))
                }
            case .object(let object):
                if object.count == 2, object["indices"] != nil, object["values"] != nil {
                    guard
                        case .sparse(let indices, let values) = try decoder.singleValueContainer().decode(
                            VectorInput.self
                        )
                    else { throw invalid(path, "a sparse vector is {\"indices\": […], \"values\": […]}") }
                    do {
                        example = .vector(.sparse(try SparseVector(indices: indices, values: values)))
                    } catch {
                        throw invalid(path, error.message)
                    }
                    return
                }
                if case .string(let text)? = object["text"], object["model"] != nil {
                    // Qdrant's built-in BM25 model gives a sparse example (as a query: each token once).
                    if let vector = try Qdrant.inferredSparse(object, text: text, query: true, path: path) {
                        example = .vector(.sparse(vector))
                        return
                    }
                }
                if object["text"] != nil || object["model"] != nil {
                    throw invalid(path, "a document as an example needs the model \"\(SparseBM25Model.name)\"")
                }
                throw invalid(path, "an example is a point id, a vector or a multivector")
            case let other:
                throw mismatch("a point id, a vector or a multivector", other, path)
            }
        }
    }

    /// Context pairs: one `{"positive", "negative"}` object or a list of them.
    struct Context: Decodable {
        var pairs: [ContextPair]

        enum CodingKeys: String, CodingKey, CaseIterable { case positive, negative }

        init(from decoder: any Decoder) throws {
            if case .object = try decoder.singleValueContainer().decode(JSONValue.self) {
                pairs = [try Self.pair(decoder)]
            } else {
                pairs = try decoder.singleValueContainer().decode([Pair].self).map(\.pair)
            }
        }

        struct Pair: Decodable {
            var pair: ContextPair
            init(from decoder: any Decoder) throws { pair = try Context.pair(decoder) }
        }

        static func pair(_ decoder: any Decoder) throws -> ContextPair {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a context pair")
            let fields = try decoder.container(keyedBy: CodingKeys.self)
            return ContextPair(
                positive: try fields.decode(Example.self, forKey: .positive).example,
                negative: try fields.decode(Example.self, forKey: .negative).example
            )
        }
    }

    /// Qdrant's `SearchParams` (`hnsw_ef`, `exact`, `idf`; `quantization` and `indexed_only`, which change nothing
    /// here: a collection has no quantized vectors, and every segment is searched, which `indexed_only` allows),
    /// with Tessera's compressed-index entries (`nprobe`, `candidates`, `imputation_rank`, `probe_dimension`) and
    /// BM25 entries (`k1`, `b`, `text_fields`). Other fields (`acorn`) are refused, naming them.
    public struct SearchParams: Decodable, Sendable {
        public var hnswEf: Int?
        public var exact: Bool?
        /// `idf: {"corpus": filter}`: the points inverse document frequencies count (`"global"` is `nil`).
        public var idfCorpus: Filter?
        /// `idf: {"statistics": {"points": N, "frequencies": [[index, n], …]}}` (an extension): the counts to
        /// weight by, as a sharded collection's coordinator sums them over the shards.
        public var idfStatistics: CorpusStatistics?
        /// `idf: {"statistics": {"points": N, "total_length": L, "terms": [[word, n], …]}}` (an extension): BM25's
        /// counts for a text query over a payload text index, as a sharded collection's coordinator sums them.
        public var textStatistics: TextCorpusStatistics?
        public var probeCount: Int?
        public var candidates: Int?
        public var imputationRank: Int?
        public var probeDimension: Int?
        public var k1: Double?
        public var b: Double?
        public var textFields: [String]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case exact, candidates, k1, b, idf, quantization
            case indexedOnly = "indexed_only"
            case hnswEf = "hnsw_ef"
            case probeCount = "nprobe"
            case imputationRank = "imputation_rank"
            case probeDimension = "probe_dimension"
            case textFields = "text_fields"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "params")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func positive(_ key: CodingKeys) throws -> Int? {
                guard let number = try container.decodeIfPresent(Int.self, forKey: key) else { return nil }
                guard number >= 1 else {
                    throw invalid(container.codingPath + [key], "\(key.rawValue) must be at least 1 (got \(number))")
                }
                return number
            }
            exact = try container.decodeIfPresent(Bool.self, forKey: .exact)
            hnswEf = try positive(.hnswEf)
            probeCount = try positive(.probeCount)
            candidates = try positive(.candidates)
            imputationRank = try positive(.imputationRank)
            probeDimension = try positive(.probeDimension)
            k1 = try container.decodeIfPresent(Double.self, forKey: .k1)
            b = try container.decodeIfPresent(Double.self, forKey: .b)
            textFields = try container.decodeIfPresent([String].self, forKey: .textFields)
            _ = try container.decodeIfPresent(Bool.self, forKey: .indexedOnly)
            if container.contains(.quantization), try !container.decodeNil(forKey: .quantization) {
                let quantization = try container.superDecoder(forKey: .quantization)
                try quantization.rejectUnknownKeys(QuantizationKeys.self, what: "quantization search params")
                let fields = try quantization.container(keyedBy: QuantizationKeys.self)
                _ = try fields.decodeIfPresent(Bool.self, forKey: .ignore)
                _ = try fields.decodeIfPresent(Bool.self, forKey: .rescore)
                if let oversampling = try fields.decodeIfPresent(Double.self, forKey: .oversampling), oversampling < 1 {
                    throw invalid(
                        fields.codingPath + [QuantizationKeys.oversampling],
                        "oversampling must be at least 1 (got \(oversampling))"
                    )
                }
            }
            if container.contains(.idf), try !container.decodeNil(forKey: .idf) {
                switch try container.decode(JSONValue.self, forKey: .idf) {
                case .string("global"):
                    idfCorpus = nil
                case .object(let members) where members["statistics"]?.objectValueForTerms != nil:
                    textStatistics = try Self.textStatistics(members, path: container.codingPath + [CodingKeys.idf])
                case .object(let members) where members["statistics"] != nil:
                    idfStatistics = try Self.statistics(members, path: container.codingPath + [CodingKeys.idf])
                case .object:
                    let idf = try container.superDecoder(forKey: .idf)
                    try idf.rejectUnknownKeys(IdfKeys.self, what: "idf")
                    idfCorpus = try idf.container(keyedBy: IdfKeys.self).decode(Filter.self, forKey: .corpus)
                case let other:
                    throw mismatch("\"global\" or {\"corpus\": filter}", other, container.codingPath + [CodingKeys.idf])
                }
            }
        }

        enum QuantizationKeys: String, CodingKey, CaseIterable { case ignore, rescore, oversampling }
        enum IdfKeys: String, CodingKey, CaseIterable { case corpus }

        /// `{"statistics": {"points": N, "total_length": L, "terms": [[word, n], …]}}`, checked member by member.
        static func textStatistics(_ members: JSONObject, path: [any CodingKey]) throws -> TextCorpusStatistics {
            let where_ = path + [JSONKey(stringValue: "statistics")]
            guard members.count == 1, case .object(let fields)? = members["statistics"],
                Set(fields.keys).isSubset(of: ["points", "total_length", "terms"]),
                case .integer(let points)? = fields["points"], points >= 0,
                let total = fields["total_length"].flatMap(Self.number), total >= 0,
                case .array(let pairs)? = fields["terms"]
            else {
                throw invalid(
                    where_,
                    "statistics is {\"points\": N, \"total_length\": L, \"terms\": [[word, n], …]} and nothing else"
                )
            }
            var frequencies: [String: Int] = [:]
            for pair in pairs {
                guard case .array(let entry) = pair, entry.count == 2, case .string(let word) = entry[0],
                    case .integer(let count) = entry[1], count >= 0
                else { throw invalid(where_, "each term is [word, n], n an unsigned integer") }
                frequencies[word] = Int(count)
            }
            return TextCorpusStatistics(points: Int(points), totalLength: total, frequencies: frequencies)
        }

        static func number(_ value: JSONValue) -> Double? {
            switch value {
            case .integer(let number): return Double(number)
            case .double(let number): return number
            default: return nil
            }
        }

        /// `{"statistics": {"points": N, "frequencies": [[index, n], …]}}`, checked member by member.
        static func statistics(_ members: JSONObject, path: [any CodingKey]) throws -> CorpusStatistics {
            let where_ = path + [JSONKey(stringValue: "statistics")]
            guard members.count == 1, case .object(let fields)? = members["statistics"],
                Set(fields.keys).isSubset(of: ["points", "frequencies"]),
                case .integer(let points)? = fields["points"], points >= 0
            else {
                throw invalid(
                    where_,
                    "statistics is {\"points\": N, \"frequencies\": [[index, n], …]} and nothing else"
                )
            }
            var frequencies: [UInt32: Int] = [:]
            if case .array(let pairs)? = fields["frequencies"] {
                for pair in pairs {
                    guard case .array(let entry) = pair, entry.count == 2, case .integer(let index) = entry[0],
                        let index = UInt32(exactly: index), case .integer(let count) = entry[1], count >= 0
                    else {
                        throw invalid(where_, "each frequency is [index, n], both unsigned integers")
                    }
                    frequencies[index] = Int(count)
                }
            } else if fields["frequencies"] != nil {
                throw invalid(where_, "frequencies is a list of [index, n]")
            }
            return CorpusStatistics(points: Int(points), frequencies: frequencies)
        }

        var parameters: QueryParameters {
            var parameters = QueryParameters()
            parameters.exact = exact ?? false
            parameters.hnswEf = hnswEf
            if probeCount != nil || candidates != nil || imputationRank != nil || probeDimension != nil {
                var settings = CompressedSearchParameters.defaults(limit: candidates ?? 10)
                if let probeCount { settings.probeCount = probeCount }
                settings.imputationRank = imputationRank
                settings.probeDimension = probeDimension
                parameters.compressed = settings
            }
            if let k1 { parameters.bm25.k1 = Float(k1) }
            if let b { parameters.bm25.b = Float(b) }
            if let textFields { parameters.textFields = textFields }
            return parameters
        }
    }

    /// `with_payload`: a bool, a list of keys, or `{"include": [keys]}` (`exclude` is refused: not supported).
    public enum WithPayload: Decodable, Sendable, Equatable {
        case flag(Bool)
        /// A list of keys or `{"include": [...]}` / `{"exclude": [...]}`.
        case select(PayloadSelector)

        enum CodingKeys: String, CodingKey, CaseIterable { case include, exclude }

        public init(from decoder: any Decoder) throws {
            switch try decoder.singleValueContainer().decode(JSONValue.self) {
            case .bool(let flag): self = .flag(flag)
            case .array:
                let keys = try decoder.singleValueContainer().decode([String].self)
                self = .select(try Self.selector(include: true, keys, path: decoder.codingPath))
            case .object(let object):
                try decoder.rejectUnknownKeys(CodingKeys.self, what: "with_payload")
                guard object.count == 1 else {
                    throw invalid(decoder.codingPath, "with_payload takes one of include and exclude")
                }
                let container = try decoder.container(keyedBy: CodingKeys.self)
                if container.contains(.include) {
                    let keys = try container.decode([String].self, forKey: .include)
                    self = .select(
                        try Self.selector(include: true, keys, path: decoder.codingPath + [CodingKeys.include])
                    )
                } else {
                    let keys = try container.decode([String].self, forKey: .exclude)
                    self = .select(
                        try Self.selector(include: false, keys, path: decoder.codingPath + [CodingKeys.exclude])
                    )
                }
            default: throw invalid(decoder.codingPath, "with_payload is a bool, a list of keys, include or exclude")
            }
        }

        private static func selector(include: Bool, _ keys: [String], path: [any CodingKey]) throws -> PayloadSelector {
            do {
                return include ? try PayloadSelector(include: keys) : try PayloadSelector(exclude: keys)
            } catch {
                throw invalid(path, error.message)
            }
        }

        /// Whether payloads are returned.
        public var included: Bool {
            switch self {
            case .flag(let flag): flag
            case .select: true
            }
        }

        /// The part of each payload returned, or `nil` for all of it.
        public var selector: PayloadSelector? {
            switch self {
            case .flag: nil
            case .select(let selector): selector
            }
        }
    }

    /// `with_vector` (`with_vectors`): a bool or a list of vector field names.
    public enum WithVector: Decodable, Sendable, Equatable {
        case flag(Bool)
        case names([String])

        public init(from decoder: any Decoder) throws {
            switch try decoder.singleValueContainer().decode(JSONValue.self) {
            case .bool(let flag): self = .flag(flag)
            case .array: self = .names(try decoder.singleValueContainer().decode([String].self))
            default: throw invalid(decoder.codingPath, "with_vector is a bool or a list of vector field names")
            }
        }

        /// The fields to return: `nil` for none, `[]` for all.
        public var fields: [String]? {
            switch self {
            case .flag(let flag): flag ? [] : nil
            case .names(let names): names
            }
        }
    }
}

extension Tessera.QueryRequest {
    /// Decodes the body of Qdrant's `POST /collections/{name}/points/query` (``Qdrant/QueryRequest``): the one
    /// JSON form of a query that `tessera search --pipeline`, `tessera query` and the server accept.
    /// - Parameter json: The request body.
    /// - Throws: `TesseraError.Code.invalidArgument` naming the offending field (`prefetch[1].query`).
    public init(json: JSONValue) throws(TesseraError) {
        self = try JSONValueDecoder().decode(Qdrant.QueryRequest.self, from: json).request()
    }

    /// Decodes a query request from JSON text, as ``init(json:)-(JSONValue)``.
    /// - Throws: `TesseraError.Code.invalidArgument` for bad JSON or a bad field.
    public init(json text: String) throws(TesseraError) {
        try self.init(json: JSONValue.parse(text))
    }
}

extension JSONValue {
    /// The object, when this is an object with a `terms` member (text statistics rather than sparse ones).
    fileprivate var objectValueForTerms: JSONObject? {
        if case .object(let object) = self, object["terms"] != nil { return object }
        return nil
    }
}
