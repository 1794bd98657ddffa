public import Tessera

extension Qdrant {
    /// The body of `POST /collections/{name}/points/query/groups`: a query (as ``QueryRequest``) whose results are
    /// grouped by a payload key; `limit` counts groups.
    public struct QueryGroupsRequest: Decodable, Sendable {
        public var query: QueryRequest
        public var groupBy: PayloadKey
        public var groupSize: Int
        public var limit: Int
        public var withLookup: WithLookup?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case limit
            case groupBy = "group_by"
            case groupSize = "group_size"
            case withLookup = "with_lookup"
        }

        public init(from decoder: any Decoder) throws {
            query = try QueryRequest(from: decoder, allowing: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let key = try container.decode(String.self, forKey: .groupBy)
            do {
                groupBy = try PayloadKey(key)
            } catch {
                throw invalid(decoder.codingPath + [CodingKeys.groupBy], error.message)
            }
            groupSize = try container.decodeIfPresent(Int.self, forKey: .groupSize) ?? 3
            limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? 10
            withLookup = try container.decodeIfPresent(WithLookup.self, forKey: .withLookup)
        }
    }

    /// `with_lookup`: a collection name, or `{"collection", "with_payload", "with_vectors"}`; each group's point of
    /// that id in that collection comes with the group.
    public struct WithLookup: Decodable, Sendable {
        public var collection: String
        public var withPayload: WithPayload?
        public var withVector: WithVector?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case collection
            case withPayload = "with_payload"
            case withVectors = "with_vectors"
        }

        public init(from decoder: any Decoder) throws {
            if case .string(let name) = try decoder.singleValueContainer().decode(JSONValue.self) {
                collection = name
                return
            }
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "with_lookup")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            collection = try container.decode(String.self, forKey: .collection)
            withPayload = try container.decodeIfPresent(WithPayload.self, forKey: .withPayload)
            withVector = try container.decodeIfPresent(WithVector.self, forKey: .withVectors)
        }
    }

    /// One group of a grouped query's answer.
    public struct PointGroup: Encodable, Sendable {
        public var id: JSONValue
        public var hits: [ScoredPoint]
        public var lookup: Record?

        /// Creates a group.
        public init(id: JSONValue, hits: [ScoredPoint], lookup: Record? = nil) {
            self.id = id
            self.hits = hits
            self.lookup = lookup
        }

        enum CodingKeys: String, CodingKey { case id, hits, lookup }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(hits, forKey: .hits)
            try container.encodeIfPresent(lookup, forKey: .lookup)
        }
    }

    /// The `result` of a grouped query.
    public struct GroupsResult: Encodable, Sendable {
        public var groups: [PointGroup]

        /// Creates a result.
        public init(groups: [PointGroup]) { self.groups = groups }
    }

    /// The body of `POST /collections/{name}/facet`. Counts are always exact (`exact` is accepted either way).
    public struct FacetRequest: Decodable, Sendable {
        public var key: PayloadKey
        public var filter: Filter?
        public var limit: Int
        public var exact: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable { case key, filter, limit, exact }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a facet request")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let text = try container.decode(String.self, forKey: .key)
            do {
                key = try PayloadKey(text)
            } catch {
                throw invalid(decoder.codingPath + [CodingKeys.key], error.message)
            }
            filter = try container.decodeIfPresent(Filter.self, forKey: .filter)
            limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? 10
            exact = try container.decodeIfPresent(Bool.self, forKey: .exact)
        }
    }

    /// The `result` of a facet request.
    public struct FacetResult: Encodable, Sendable {
        public struct Hit: Encodable, Sendable {
            public var value: JSONValue
            public var count: Int
        }

        public var hits: [Hit]

        /// The library's counts on the wire.
        public init(_ hits: [FacetHit]) { self.hits = hits.map { Hit(value: $0.value, count: $0.count) } }
    }

    /// The body of `POST /collections/{name}/points/search/matrix/pairs` and `…/offsets`.
    public struct SearchMatrixRequest: Decodable, Sendable {
        public var filter: Filter?
        public var sample: Int
        public var limit: Int
        public var using: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case filter, sample, limit, using, timeout, consistency
            case shardKey = "shard_key"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a distance matrix request")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            filter = try container.decodeIfPresent(Filter.self, forKey: .filter)
            sample = try container.decodeIfPresent(Int.self, forKey: .sample) ?? 10
            limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? 3
            using = try container.decodeIfPresent(String.self, forKey: .using)
        }
    }

    /// The `result` of `…/search/matrix/pairs`: one pair per neighbour.
    public struct MatrixPairsResult: Encodable, Sendable {
        public struct Pair: Encodable, Sendable {
            public var a: JSONValue
            public var b: JSONValue
            public var score: Double
        }

        public var pairs: [Pair]

        /// The library's matrix on the wire.
        public init(_ matrix: DistanceMatrix) {
            pairs = zip(matrix.ids, matrix.neighbours).flatMap { id, neighbours in
                neighbours.map { Pair(a: id.jsonValue, b: $0.id.jsonValue, score: Double($0.score)) }
            }
        }
    }

    /// The `result` of `…/search/matrix/offsets`: a sparse matrix over the sampled ids.
    public struct MatrixOffsetsResult: Encodable, Sendable {
        public var offsetsRow: [Int]
        public var offsetsCol: [Int]
        public var scores: [Double]
        public var ids: [JSONValue]

        enum CodingKeys: String, CodingKey {
            case scores, ids
            case offsetsRow = "offsets_row"
            case offsetsCol = "offsets_col"
        }

        /// The library's matrix on the wire.
        public init(_ matrix: DistanceMatrix) {
            let position = Dictionary(uniqueKeysWithValues: matrix.ids.enumerated().map { ($1, $0) })
            offsetsRow = []
            offsetsCol = []
            scores = []
            for (row, neighbours) in matrix.neighbours.enumerated() {
                for neighbour in neighbours {
                    guard let column = position[neighbour.id] else { continue }
                    offsetsRow.append(row)
                    offsetsCol.append(column)
                    scores.append(Double(neighbour.score))
                }
            }
            ids = matrix.ids.map(\.jsonValue)
        }
    }
}
