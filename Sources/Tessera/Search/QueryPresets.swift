public import MaxSim
import TesseraIndex

/// A ready-made query tree for a text query: what `tessera search`, `tessera eval`, `tessera bench search` and the
/// server's text search run.
public enum QueryPreset: Sendable, Equatable {
    /// Exact MaxSim over every token of every point.
    case exact
    /// The compressed multivector index; with `rerank`, its candidates scored again by exact MaxSim.
    case compressed(rerank: Bool)
    /// BM25 over the payload's text fields.
    case bm25
    /// The pooled dense field (its HNSW graph where built); with `rerank`, its candidates scored by exact MaxSim.
    case dense(rerank: Bool)
    /// BM25 ∪ dense ∪ compressed candidates (the lists the collection can serve), reranked by exact MaxSim; with
    /// a fusion, that ranking fused with the BM25 and dense lists.
    case hybrid(fusion: FusionMethod?)
    /// A tree of your own (a pipeline file, say) whose text leaves name the text as the query.
    case tree(QueryNode)

    /// The default: hybrid with distribution-based score fusion.
    public static let `default` = QueryPreset.hybrid(fusion: .dbsf())
}

/// Settings of a preset's stages.
public struct PresetOptions: Sendable, Equatable {
    /// Candidates each first stage passes to the MaxSim rerank (at least the limit).
    public var candidates: Int
    /// BM25's `k1` and `b`.
    public var bm25: BM25Parameters
    /// The HNSW search breadth; `nil` for ``CollectionStore/defaultHNSWEf``.
    public var hnswEf: Int?
    /// Compressed index: cells probed per query token (`nil`: the defaults of the candidate count).
    public var probeCount: Int?
    /// Compressed index: the rank of the centroid whose score is imputed for a missing token.
    public var imputationRank: Int?
    /// Compressed index: choose cells in this many principal dimensions of the centroids.
    public var probeDimension: Int?

    /// Creates settings.
    /// - Parameters:
    ///   - candidates: Candidates per first stage (default 100).
    ///   - bm25: BM25's parameters.
    ///   - hnswEf: HNSW search breadth.
    ///   - probeCount: Compressed index `nprobe`.
    ///   - imputationRank: Compressed index imputation rank.
    ///   - probeDimension: Compressed index probe dimensions.
    public init(
        candidates: Int = 100,
        bm25: BM25Parameters = BM25Parameters(),
        hnswEf: Int? = nil,
        probeCount: Int? = nil,
        imputationRank: Int? = nil,
        probeDimension: Int? = nil
    ) {
        self.candidates = candidates
        self.bm25 = bm25
        self.hnswEf = hnswEf
        self.probeCount = probeCount
        self.imputationRank = imputationRank
        self.probeDimension = probeDimension
    }

    /// The candidate count for `limit` results.
    public func candidateCount(limit: Int) -> Int { max(limit, candidates) }

    func parameters(exact: Bool = false, candidates: Int) -> QueryParameters {
        var compressed: CompressedSearchParameters?
        if probeCount != nil || imputationRank != nil || probeDimension != nil {
            var settings = CompressedSearchParameters.defaults(limit: candidates)
            if let probeCount { settings.probeCount = probeCount }
            settings.imputationRank = imputationRank
            settings.probeDimension = probeDimension
            compressed = settings
        }
        return QueryParameters(exact: exact, hnswEf: hnswEf, compressed: compressed, bm25: bm25)
    }
}

/// A text query run through a preset.
public struct TextQuery: Sendable {
    /// The query text (encoded by the collection's encoder for vector fields, analysed for BM25).
    public var text: String
    /// The query tree.
    public var preset: QueryPreset
    /// The tree's settings.
    public var options: PresetOptions
    /// A payload filter that holds at every stage.
    public var filter: Filter?
    /// How many results.
    public var limit: Int
    /// Best results to skip.
    public var offset: Int
    /// Drop results scoring below this.
    public var scoreThreshold: Float?
    /// Return payloads.
    public var withPayload: Bool
    /// Give every result its MaxSim score and the document token each query token matched, even when the
    /// ranking is fused (a fused score is not a sum over tokens).
    public var explain: Bool

    /// Creates a text query.
    /// - Parameters:
    ///   - text: The query text.
    ///   - preset: The query tree.
    ///   - options: The tree's settings.
    ///   - filter: A payload filter for every stage.
    ///   - limit: Results.
    ///   - offset: Best results to skip.
    ///   - scoreThreshold: Minimum score of a result.
    ///   - withPayload: Include payloads.
    ///   - explain: Include MaxSim scores and token matches.
    public init(
        _ text: String,
        preset: QueryPreset = .default,
        options: PresetOptions = PresetOptions(),
        filter: Filter? = nil,
        limit: Int = 10,
        offset: Int = 0,
        scoreThreshold: Float? = nil,
        withPayload: Bool = true,
        explain: Bool = false
    ) {
        self.text = text
        self.preset = preset
        self.options = options
        self.filter = filter
        self.limit = limit
        self.offset = offset
        self.scoreThreshold = scoreThreshold
        self.withPayload = withPayload
        self.explain = explain
    }
}

/// The results of a text query.
public struct TextSearchResponse: Sendable {
    /// The results, best first.
    public var points: [ScoredPoint]
    /// How each stage produced them (see ``QueryResponse/stages``).
    public var stages: [QueryStage]
    /// How the scores in ``points`` were made: the root stage's method (`maxsim rerank`, `dbsf`, `bm25`, …).
    public var scoreMethod: StageMethod?
    /// Each result's exact MaxSim score, when the ranking is MaxSim or the query asked to explain; else `nil`.
    public var maxSimScores: [Float?]
    /// The multivector field the MaxSim scores and token matches refer to.
    public var tokenField: String?
}

extension CollectionConfiguration {
    /// The multivector field text queries are encoded for: the one built by an encoder, else the only
    /// multivector field.
    public var textTokenField: VectorField? {
        let multivectors = fields.filter(\.isMultivector)
        let encoded = multivectors.filter { $0.encoder != nil }
        if encoded.count == 1 { return encoded[0] }
        return multivectors.count == 1 ? multivectors[0] : nil
    }

    /// The dense field text queries are encoded for: the one built by the token field's encoder, else the only
    /// one built by an encoder, else the only dense field.
    public var textDenseField: VectorField? {
        let dense = fields.filter(\.isDense)
        if let identity = textTokenField?.encoder {
            let same = dense.filter { $0.encoder == identity }
            if same.count == 1 { return same[0] }
        }
        let encoded = dense.filter { $0.encoder != nil }
        if encoded.count == 1 { return encoded[0] }
        return dense.count == 1 ? dense[0] : nil
    }
}

extension CollectionStore {
    /// The multivector field of text queries, or a clear error naming the fields there are.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when the collection has no multivector field or several
    ///   and none built by an encoder.
    public func textTokenField() throws(TesseraError) -> VectorField {
        guard let field = configuration.textTokenField else {
            let names = configuration.fields.filter(\.isMultivector).map(\.name)
            throw TesseraError(
                .invalidArgument,
                names.isEmpty
                    ? "the collection has no multivector field to search with text"
                    : "the collection has multivector fields \(names.joined(separator: ", ")) and none was built "
                        + "by an encoder; name one in a query tree",
                location: .init(field: "using")
            )
        }
        return field
    }

    /// The query tree of a text query.
    /// - Parameter query: The text, preset and settings.
    /// - Returns: A request whose ``QueryRequest/scope`` is the query's filter.
    /// - Throws: `TesseraError` when the collection lacks a field the preset needs.
    public func queryRequest(for query: TextQuery) throws(TesseraError) -> QueryRequest {
        let limit = query.limit
        let options = query.options
        let pool = options.candidateCount(limit: limit)
        let text = QueryInput.text(query.text)
        let bm25 = QueryNode(query: text, limit: pool, parameters: options.parameters(candidates: pool))
        var root: QueryNode
        switch query.preset {
        case .tree(let node):
            root = node
            if let threshold = query.scoreThreshold { root.scoreThreshold = threshold }
            return QueryRequest(root: root, scope: query.filter, offset: query.offset, withPayload: query.withPayload)
        case .bm25:
            root = QueryNode(query: text, limit: limit, parameters: options.parameters(candidates: limit))
        case .exact:
            let tokens = try textTokenField().name
            root = QueryNode(
                query: text,
                using: tokens,
                limit: limit,
                parameters: options.parameters(exact: true, candidates: limit)
            )
        case .compressed(let rerank):
            let tokens = try textTokenField().name
            root = QueryNode(
                query: text,
                using: tokens,
                limit: limit,
                parameters: options.parameters(candidates: limit)
            )
            if rerank {
                root.parameters = QueryParameters()
                root.prefetch = [
                    QueryNode(query: text, using: tokens, limit: pool, parameters: options.parameters(candidates: pool))
                ]
            }
        case .dense(let rerank):
            guard let pooled = configuration.textDenseField?.name else {
                throw TesseraError(
                    .invalidArgument,
                    "the collection has no dense field to search (build one: tessera index … --dense)",
                    location: .init(field: "using")
                )
            }
            let dense = QueryNode(
                query: text,
                using: pooled,
                limit: rerank ? pool : limit,
                parameters: options.parameters(candidates: pool)
            )
            root =
                rerank
                ? QueryNode(query: text, using: try textTokenField().name, limit: limit, prefetch: [dense]) : dense
        case .hybrid(let fusion):
            let tokens = try textTokenField().name
            var firstStages = [bm25]
            var dense: QueryNode?
            if let pooled = configuration.textDenseField?.name {
                dense = QueryNode(
                    query: text,
                    using: pooled,
                    limit: pool,
                    parameters: options.parameters(candidates: pool)
                )
                firstStages.append(dense!)
            }
            // The field's loaded index state (kept by the store), not its status, which counts pending points in SQLite
            // on every call.
            if try compressedState(field: tokens)?.index != nil {
                firstStages.append(
                    QueryNode(query: text, using: tokens, limit: pool, parameters: options.parameters(candidates: pool))
                )
            }
            let rerank = QueryNode(
                query: text,
                using: tokens,
                limit: fusion == nil ? limit : pool,
                prefetch: firstStages
            )
            if let fusion {
                root = QueryNode(
                    query: .fusion(fusion),
                    limit: limit,
                    prefetch: [rerank, bm25] + (dense.map { [$0] } ?? [])
                )
            } else {
                root = rerank
            }
        }
        root.scoreThreshold = query.scoreThreshold
        return QueryRequest(root: root, scope: query.filter, offset: query.offset, withPayload: query.withPayload)
    }

    /// Runs a text query through its preset, encoding the text with the collection's encoder.
    /// - Parameters:
    ///   - query: The text, preset and settings.
    ///   - encoder: The collection's encoder (an ``EncoderCatalog``); needed by every preset but BM25.
    ///   - kernel: The MaxSim kernel configuration.
    /// - Returns: The results, their stages, and their MaxSim scores and token matches when explained.
    /// - Throws: `TesseraError` from planning, encoding or scoring.
    public func search(
        _ query: TextQuery,
        encoder: (any QueryTextEncoder)?,
        kernel: MaxSimKernel = MaxSimKernel()
    ) throws(TesseraError) -> TextSearchResponse {
        var request = try queryRequest(for: query)
        request.withMatches = query.explain
        let response = try self.query(request, encoder: encoder, kernel: kernel)
        var points = response.points
        let scoreMethod = response.stages.last?.method
        let tokenField = configuration.textTokenField?.name
        let rankedByMaxSim = scoreMethod == .maxsim || scoreMethod == .maxsimRerank
        var maxSimScores: [Float?] = points.map { rankedByMaxSim ? $0.score : nil }
        // A fused ranking's results get their exact MaxSim scores and token matches from a second, exact scoring of
        // just those points.
        if query.explain, let tokenField, !points.isEmpty, points.contains(where: { $0.matchedTokens == nil }) {
            let scored = try self.query(
                QueryRequest(
                    root: QueryNode(
                        query: .text(query.text),
                        using: tokenField,
                        filter: Filter(must: [.hasID(Set(points.map(\.id)))]),
                        limit: points.count,
                        parameters: QueryParameters(exact: true)
                    ),
                    withPayload: false,
                    withMatches: true
                ),
                encoder: encoder,
                kernel: kernel
            ).points
            let byID = Dictionary(uniqueKeysWithValues: scored.map { ($0.id, $0) })
            for index in points.indices {
                points[index].matchedTokens = byID[points[index].id]?.matchedTokens
                maxSimScores[index] = byID[points[index].id]?.score
            }
        }
        return TextSearchResponse(
            points: points,
            stages: response.stages,
            scoreMethod: scoreMethod,
            maxSimScores: maxSimScores,
            tokenField: tokenField
        )
    }
}

extension QueryPreset {
    /// A short description for reports, e.g. `hybrid: bm25 ∪ dense ∪ compressed (100 each) → MaxSim, dbsf with bm25
    /// and dense`.
    /// - Parameters:
    ///   - options: The preset's settings.
    ///   - limit: Results.
    /// - Returns: One line.
    public func summary(options: PresetOptions, limit: Int) -> String {
        let pool = options.candidateCount(limit: limit)
        switch self {
        case .tree: return "a query tree"
        case .exact: return "exact MaxSim"
        case .bm25:
            return "bm25 k1 \(rounded(options.bm25.k1)) b \(rounded(options.bm25.b))"
        case .compressed(let rerank):
            let probes =
                options.probeCount ?? CompressedSearchParameters.defaults(limit: rerank ? pool : limit).probeCount
            return "compressed nprobe \(probes)"
                + (options.probeDimension.map { ", cells chosen in \($0) dimensions" } ?? "")
                + (rerank ? " → MaxSim rerank of \(pool)" : "")
        case .dense(let rerank):
            return "dense (ef \(options.hnswEf ?? CollectionStore.defaultHNSWEf))"
                + (rerank ? " → MaxSim rerank of \(pool)" : "")
        case .hybrid(let fusion):
            let union = "hybrid: bm25 ∪ dense ∪ compressed (\(pool) each) → MaxSim"
            switch fusion {
            case nil: return union
            case .rrf(let k, let weights)?:
                return union + ", rrf k \(k) with bm25 and dense" + describe(weights)
            case .dbsf(let weights)?:
                return union + ", dbsf with bm25 and dense" + describe(weights)
            }
        }
    }

    private func rounded(_ value: Float) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = String(abs(hundredths) % 100)
        return "\(hundredths / 100).\(fraction.count == 1 ? "0" + fraction : fraction)"
    }

    private func describe(_ weights: [Float]?) -> String {
        guard let weights else { return "" }
        return ", weights " + weights.map { "\($0)" }.joined(separator: ",")
    }
}
