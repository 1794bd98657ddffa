public import Tessera

/// Tessera's text search (`POST /collections/{name}/points/search/text`, an extension Qdrant does not have): a
/// query text run through one of the library's presets, the same trees `tessera search` runs.
///
/// ```json
/// {"text": "statins lower cholesterol", "preset": "hybrid", "fusion": "dbsf", "limit": 10,
///  "filter": {"must": [{"key": "year", "range": {"gte": 2010}}]}, "explain": true}
/// ```
public struct TextSearchRequest: Decodable, Sendable {
    /// The preset's name.
    public enum Preset: String, Decodable, Sendable {
        case exact, compressed, bm25, dense, hybrid
    }

    /// The hybrid's fusion.
    public enum FusionName: String, Decodable, Sendable {
        case none, rrf, dbsf
    }

    public var text: String
    public var preset: Preset
    public var rerank: Bool
    public var fusion: FusionName
    public var fusionK: Int?
    public var fusionWeights: [Float]?
    public var candidates: Int?
    public var limit: Int
    public var offset: Int
    public var filter: Qdrant.Filter?
    public var scoreThreshold: Float?
    public var withPayload: Bool
    public var explain: Bool
    public var params: Qdrant.SearchParams?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case text, preset, rerank, fusion, candidates, limit, offset, filter, explain, params
        case fusionK = "fusion_k"
        case fusionWeights = "fusion_weights"
        case scoreThreshold = "score_threshold"
        case withPayload = "with_payload"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self, what: "a text search")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        text = try container.decode(String.self, forKey: .text)
        preset = try container.decodeIfPresent(Preset.self, forKey: .preset) ?? .hybrid
        rerank = try container.decodeIfPresent(Bool.self, forKey: .rerank) ?? false
        fusion = try container.decodeIfPresent(FusionName.self, forKey: .fusion) ?? .dbsf
        fusionK = try container.decodeIfPresent(Int.self, forKey: .fusionK)
        fusionWeights = try container.decodeIfPresent([Float].self, forKey: .fusionWeights)
        candidates = try container.decodeIfPresent(Int.self, forKey: .candidates)
        limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? 10
        offset = try container.decodeIfPresent(Int.self, forKey: .offset) ?? 0
        filter = try container.decodeIfPresent(Qdrant.Filter.self, forKey: .filter)
        scoreThreshold = try container.decodeIfPresent(Float.self, forKey: .scoreThreshold)
        withPayload = try container.decodeIfPresent(Bool.self, forKey: .withPayload) ?? true
        explain = try container.decodeIfPresent(Bool.self, forKey: .explain) ?? false
        params = try container.decodeIfPresent(Qdrant.SearchParams.self, forKey: .params)
        for (key, value) in [(CodingKeys.limit, limit), (.offset, offset)] where value < 0 {
            throw invalid(container.codingPath + [key], "\(key.rawValue) must not be negative (got \(value))")
        }
        if let fusionK, fusionK < 1 {
            throw invalid(container.codingPath + [CodingKeys.fusionK], "fusion_k must be at least 1 (got \(fusionK))")
        }
        if let candidates, candidates < 1 {
            throw invalid(
                container.codingPath + [CodingKeys.candidates],
                "candidates must be at least 1 (got \(candidates))"
            )
        }
        if rerank, ![.compressed, .dense].contains(preset) {
            throw invalid(
                container.codingPath + [CodingKeys.rerank],
                "rerank applies to the compressed and dense presets"
            )
        }
    }

    /// The library's text query.
    /// - Throws: `TesseraError` for a filter that does not convert.
    public func textQuery() throws(TesseraError) -> TextQuery {
        let libraryPreset: QueryPreset
        switch preset {
        case .exact: libraryPreset = .exact
        case .bm25: libraryPreset = .bm25
        case .compressed: libraryPreset = .compressed(rerank: rerank)
        case .dense: libraryPreset = .dense(rerank: rerank)
        case .hybrid:
            switch fusion {
            case .none: libraryPreset = .hybrid(fusion: nil)
            case .rrf:
                libraryPreset = .hybrid(fusion: .rrf(k: fusionK ?? Fusion.defaultRankConstant, weights: fusionWeights))
            case .dbsf: libraryPreset = .hybrid(fusion: .dbsf(weights: fusionWeights))
            }
        }
        var options = PresetOptions(candidates: candidates ?? 100)
        if let params {
            options.hnswEf = params.hnswEf
            options.probeCount = params.probeCount
            options.imputationRank = params.imputationRank
            options.probeDimension = params.probeDimension
            if let k1 = params.k1 { options.bm25.k1 = Float(k1) }
            if let b = params.b { options.bm25.b = Float(b) }
        }
        return TextQuery(
            text,
            preset: libraryPreset,
            options: options,
            filter: try filter?.filter(),
            limit: limit,
            offset: offset,
            scoreThreshold: scoreThreshold,
            withPayload: withPayload,
            explain: explain
        )
    }
}

/// The `result` of a text search: the points, what their scores are, and the stages.
public struct TextSearchResult: Encodable, Sendable {
    /// One result.
    public struct Hit: Encodable, Sendable {
        public var id: PointID
        public var score: Float
        public var maxSimScore: Float?
        public var payload: JSONObject?
        public var matchedTokens: [Int]?

        enum CodingKeys: String, CodingKey {
            case id, score, payload
            case maxSimScore = "maxsim_score"
            case matchedTokens = "matched_tokens"
        }
    }

    public var points: [Hit]
    public var scoreMethod: String?
    public var stages: [Qdrant.Stage]

    enum CodingKeys: String, CodingKey {
        case points, stages
        case scoreMethod = "score_method"
    }

    /// The wire form of the library's response.
    public init(_ response: TextSearchResponse) {
        points = response.points.enumerated().map { index, point in
            Hit(
                id: point.id,
                score: point.score,
                maxSimScore: response.maxSimScores[index],
                payload: point.payload,
                matchedTokens: point.matchedTokens?.map(Int.init)
            )
        }
        scoreMethod = response.scoreMethod?.rawValue
        stages = response.stages.map(Qdrant.Stage.init)
    }
}
