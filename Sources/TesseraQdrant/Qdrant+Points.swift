public import Tessera

extension Qdrant {
    /// A point's vector as a request gives it: a dense vector, a multivector, Tessera's `{"text": …}` (encoded
    /// by the server's model for that field), a sparse vector (`{"indices", "values"}`), or, for a point, a map
    /// of these by vector field name.
    public indirect enum VectorInput: Decodable, Sendable, Equatable {
        case dense([Float])
        case multivector([[Float]])
        case sparse(indices: [UInt32], values: [Float])
        case document(text: String)
        case named([String: VectorInput])

        public init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer().decode(JSONValue.self)
            switch value {
            case .array(let items):
                if case .array? = items.first {
                    self = .multivector(try decoder.singleValueContainer().decode([[Float]].self))
                } else {
                    self = .dense(try decoder.singleValueContainer().decode([Float].self))
                }
            case .object(let object):
                if case .string(let text)? = object["text"] {
                    if let vector = try Qdrant.inferredSparse(
                        object,
                        text: text,
                        query: false,
                        path: decoder.codingPath
                    ) {
                        self = .sparse(indices: vector.indices, values: vector.values)
                    } else {
                        self = .document(text: text)
                    }
                } else if object.count == 2, case .array? = object["indices"], case .array? = object["values"] {
                    let container = try decoder.container(keyedBy: JSONKey.self)
                    self = .sparse(
                        indices: try container.decode([UInt32].self, forKey: JSONKey(stringValue: "indices")),
                        values: try container.decode([Float].self, forKey: JSONKey(stringValue: "values"))
                    )
                } else {
                    self = .named(try decoder.singleValueContainer().decode([String: VectorInput].self))
                }
            default:
                throw mismatch("a vector, a multivector or an object of named vectors", value, decoder.codingPath)
            }
        }
    }

    /// Reads a Qdrant `Document` (`{"text", "model", "options"}`): `nil` for Tessera's `{"text": …}` alone (the
    /// collection's model encodes it); the sparse vector of Qdrant's built-in `qdrant/bm25` model (a document's
    /// for a write, a query's for a search) when it names that model.
    /// - Throws: A decoding error naming the member for another model (Tessera runs no inference service), options
    ///   without a model, an unknown member or a bad option.
    static func inferredSparse(
        _ object: JSONObject,
        text: String,
        query: Bool,
        path: [any CodingKey]
    ) throws -> SparseVector? {
        if let extra = object.keys.sorted().first(where: { !["text", "model", "options"].contains($0) }) {
            throw invalid(
                path + [JSONKey(stringValue: extra)],
                "a document holds text, model and options, not '\(extra)'"
            )
        }
        guard let model = object["model"], model != .null else {
            if let options = object["options"], options != .null {
                throw invalid(
                    path + [JSONKey(stringValue: "options")],
                    "a document's options go with its model: Tessera encodes `{\"text\": …}` without one with the "
                        + "collection's own model, which takes no options"
                )
            }
            return nil
        }
        guard case .string(SparseBM25Model.name) = model else {
            throw invalid(
                path + [JSONKey(stringValue: "model")],
                "model \(model.jsonText) is not served: Tessera runs no inference service; its built-in model is "
                    + "\"\(SparseBM25Model.name)\" (sparse BM25 vectors). Leave out 'model' to encode with the "
                    + "collection's own model, or send a vector"
            )
        }
        let options: JSONObject
        switch object["options"] {
        case nil, .null?: options = [:]
        case .object(let given)?: options = given
        case let other?: throw mismatch("an object", other, path + [JSONKey(stringValue: "options")])
        }
        let bm25: SparseBM25Model
        do {
            bm25 = try SparseBM25Model(options: options)
        } catch {
            let option = error.location.field?.split(separator: ".").last.map(String.init) ?? ""
            throw invalid(path + [JSONKey(stringValue: "options"), JSONKey(stringValue: option)], error.message)
        }
        return query ? bm25.queryVector(text) : bm25.documentVector(text)
    }

    /// Qdrant's `PointStruct`: an id, its vectors and a payload.
    public struct PointStruct: Decodable, Sendable {
        public var id: PointID
        public var vector: VectorInput
        public var payload: JSONObject?

        enum CodingKeys: String, CodingKey { case id, vector, payload }
    }

    /// Qdrant's `PointsBatch`: parallel lists of ids, vectors (one list, or a list per field name) and payloads.
    public struct PointsBatch: Decodable, Sendable {
        public var ids: [PointID]
        public var vectors: BatchVectors
        public var payloads: [JSONObject?]?

        enum CodingKeys: String, CodingKey { case ids, vectors, payloads }
    }

    /// A batch's vectors: one per id for the collection's only field, or a list per field name.
    public enum BatchVectors: Decodable, Sendable {
        case list([VectorInput])
        case named([String: [VectorInput]])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if case .object = try container.decode(JSONValue.self) {
                self = .named(try container.decode([String: [VectorInput]].self))
            } else {
                self = .list(try container.decode([VectorInput].self))
            }
        }
    }

    /// The body of `PUT /collections/{name}/points`: `{"points": [...]}` or `{"batch": {...}}`.
    public enum UpsertPoints: Decodable, Sendable {
        case points([PointStruct])
        case batch(PointsBatch)

        enum CodingKeys: String, CodingKey { case points, batch }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if container.contains(.points) {
                self = .points(try container.decode([PointStruct].self, forKey: .points))
            } else if container.contains(.batch) {
                self = .batch(try container.decode(PointsBatch.self, forKey: .batch))
            } else {
                throw invalid(decoder.codingPath, "expected `points` (a list) or `batch`")
            }
        }
    }

    /// Which points a delete or a payload update addresses: ids (`points`) or a `filter`.
    public enum PointsSelector: Sendable {
        case ids([PointID])
        case filter(Filter)

        enum CodingKeys: String, CodingKey { case points, filter }

        init(_ container: KeyedDecodingContainer<JSONKey>, path: [any CodingKey]) throws {
            if container.contains(JSONKey(stringValue: "points")) {
                self = .ids(try container.decode([PointID].self, forKey: JSONKey(stringValue: "points")))
            } else if let filter = try container.decodeIfPresent(Filter.self, forKey: JSONKey(stringValue: "filter")) {
                self = .filter(filter)
            } else {
                throw invalid(path, "expected `points` (ids) or `filter`")
            }
        }
    }

    /// The body of `POST /collections/{name}/points/delete`.
    public struct DeletePoints: Decodable, Sendable {
        public var selector: PointsSelector

        public init(from decoder: any Decoder) throws {
            selector = try PointsSelector(try decoder.container(keyedBy: JSONKey.self), path: decoder.codingPath)
        }
    }

    /// The body of `POST` and `PUT /collections/{name}/points/payload`: a payload for the selected points, and for
    /// `POST` an optional `key`, the nested path whose object receives it.
    public struct SetPayload: Decodable, Sendable {
        public var payload: JSONObject
        public var key: PayloadKey?
        public var selector: PointsSelector

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            payload = try container.decode(JSONObject.self, forKey: JSONKey(stringValue: "payload"))
            key = nil
            if let text = try container.decodeIfPresent(String.self, forKey: JSONKey(stringValue: "key")) {
                do {
                    key = try PayloadKey(text)
                } catch {
                    throw invalid(decoder.codingPath + [JSONKey(stringValue: "key")], error.message)
                }
            }
            selector = try PointsSelector(container, path: decoder.codingPath)
        }

        /// The library's update: `set` (merging) or, for `PUT`, `overwrite`.
        public func update(overwrite: Bool) -> PayloadUpdate {
            overwrite ? .overwrite(payload) : .set(payload, key: key)
        }
    }

    /// The body of `POST /collections/{name}/points/payload/delete`: the keys to remove from the selected points.
    public struct DeletePayload: Decodable, Sendable {
        public var keys: [PayloadKey]
        public var selector: PointsSelector

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            let texts = try container.decode([String].self, forKey: JSONKey(stringValue: "keys"))
            keys = []
            for (index, text) in texts.enumerated() {
                do {
                    keys.append(try PayloadKey(text))
                } catch {
                    throw invalid(
                        decoder.codingPath + [JSONKey(stringValue: "keys"), JSONKey(intValue: index)],
                        error.message
                    )
                }
            }
            selector = try PointsSelector(container, path: decoder.codingPath)
        }
    }

    /// The body of `POST /collections/{name}/points/vectors/delete` (Qdrant's `DeleteVectors`): the points (ids or
    /// a filter) and the vector fields to remove from them.
    public struct DeleteVectors: Decodable, Sendable {
        public var fields: [String]
        public var selector: PointsSelector

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(Keys.self, what: "delete_vectors")
            let container = try decoder.container(keyedBy: JSONKey.self)
            fields = try container.decode([String].self, forKey: JSONKey(stringValue: "vector"))
            selector = try PointsSelector(container, path: decoder.codingPath)
        }

        enum Keys: String, CodingKey, CaseIterable {
            case points, filter, vector
            case shardKey = "shard_key"
        }
    }

    /// The body of `POST /collections/{name}/points/payload/clear`: the points whose payload is emptied.
    public struct ClearPayload: Decodable, Sendable {
        public var selector: PointsSelector

        public init(from decoder: any Decoder) throws {
            selector = try PointsSelector(try decoder.container(keyedBy: JSONKey.self), path: decoder.codingPath)
        }
    }

    /// The body of `POST /collections/{name}/points`: points by id.
    public struct PointRequest: Decodable, Sendable {
        public var ids: [PointID]
        public var withPayload: WithPayload?
        public var withVector: WithVector?

        enum CodingKeys: String, CodingKey {
            case ids
            case withPayload = "with_payload"
            case withVector = "with_vector"
        }
    }

    /// The body of `POST /collections/{name}/points/scroll`: a page of points in id order, or, with `order_by` (a
    /// key, or `{"key", "direction", "start_from"}`), ordered by payload values.
    public struct ScrollRequest: Decodable, Sendable {
        public var filter: Filter?
        public var limit: Int?
        public var offset: PointID?
        public var orderBy: Tessera.OrderBy?
        public var withPayload: WithPayload?
        public var withVector: WithVector?

        enum CodingKeys: String, CodingKey {
            case filter, limit, offset
            case withPayload = "with_payload"
            case withVector = "with_vector"
            case orderBy = "order_by"
        }

        enum OrderByKeys: String, CodingKey, CaseIterable {
            case key, direction
            case startFrom = "start_from"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            filter = try container.decodeIfPresent(Filter.self, forKey: .filter)
            limit = try container.decodeIfPresent(Int.self, forKey: .limit)
            offset = try container.decodeIfPresent(PointID.self, forKey: .offset)
            withPayload = try container.decodeIfPresent(WithPayload.self, forKey: .withPayload)
            withVector = try container.decodeIfPresent(WithVector.self, forKey: .withVector)
            orderBy = try Self.orderBy(container, key: .orderBy, path: decoder.codingPath + [CodingKeys.orderBy])
            if orderBy != nil, offset != nil {
                throw invalid(decoder.codingPath + [CodingKeys.offset], "offset cannot be used together with order_by")
            }
        }

        /// Qdrant's `order_by` at `key` of `container`: a payload key or `{"key", "direction", "start_from"}`.
        static func orderBy<Key: CodingKey>(
            _ container: KeyedDecodingContainer<Key>,
            key orderKey: Key,
            path: [any CodingKey]
        ) throws
            -> Tessera.OrderBy?
        {
            guard container.contains(orderKey), try !container.decodeNil(forKey: orderKey) else { return nil }
            func key(_ text: String) throws -> PayloadKey {
                do { return try PayloadKey(text) } catch { throw invalid(path, error.message) }
            }
            switch try container.decode(JSONValue.self, forKey: orderKey) {
            case .string(let text):
                return Tessera.OrderBy(key: try key(text))
            case .object(let object):
                if let unknown = object.keys.sorted().first(where: { OrderByKeys(rawValue: $0) == nil }) {
                    throw invalid(path, "unknown field '\(unknown)' in order_by (expected key, direction, start_from)")
                }
            case let other:
                throw mismatch("a payload key or an object", other, path)
            }
            let nested = try container.nestedContainer(keyedBy: OrderByKeys.self, forKey: orderKey)
            var order = Tessera.OrderBy(key: try key(try nested.decode(String.self, forKey: .key)))
            if let direction = try nested.decodeIfPresent(String.self, forKey: .direction) {
                guard let parsed = Tessera.OrderBy.Direction(rawValue: direction) else {
                    throw invalid(
                        path + [OrderByKeys.direction],
                        "direction must be \"asc\" or \"desc\", got \"\(direction)\""
                    )
                }
                order.direction = parsed
            }
            if try nested.contains(.startFrom) && !nested.decodeNil(forKey: .startFrom) {
                let value = try nested.decode(JSONValue.self, forKey: .startFrom)
                guard let start = OrderValue(value) else {
                    throw invalid(
                        path + [OrderByKeys.startFrom],
                        "start_from must be a number or an RFC 3339 date-time"
                    )
                }
                order.startFrom = start
            }
            return order
        }
    }

    /// The body of `POST /collections/{name}/points/count` (counts are always exact).
    public struct CountRequest: Decodable, Sendable {
        public var filter: Filter?
        public var exact: Bool?
    }

    /// The body of `POST /collections/{name}/points/query/batch`.
    public struct QueryRequestBatch: Decodable, Sendable {
        public var searches: [JSONValue]
    }

    /// A point as a read returns it (Qdrant's `Record`).
    public struct Record: Encodable, Sendable {
        public var id: PointID
        public var payload: JSONObject?
        public var vector: JSONValue?
        /// The value an ordered scroll listed the point for.
        public var orderValue: OrderValue?

        /// Creates a record.
        public init(id: PointID, payload: JSONObject?, vector: JSONValue?, orderValue: OrderValue? = nil) {
            self.id = id
            self.payload = payload
            self.vector = vector
            self.orderValue = orderValue
        }

        enum CodingKeys: String, CodingKey {
            case id, payload, vector
            case shardKey = "shard_key"
            case orderValue = "order_value"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.jsonValue, forKey: .id)
            try container.encode(payload.map(JSONValue.object) ?? .null, forKey: .payload)
            try container.encode(vector ?? .null, forKey: .vector)
            try container.encodeNil(forKey: .shardKey)
            try container.encode(orderValue?.jsonValue ?? .null, forKey: .orderValue)
        }
    }

    /// A query result (Qdrant's `ScoredPoint`), with Tessera's `matched_tokens` when `explain` asked for them.
    public struct ScoredPoint: Encodable, Sendable {
        public var record: Record
        public var score: Float
        public var matchedTokens: [Int]?

        /// Creates a scored point.
        public init(record: Record, score: Float, matchedTokens: [Int]?) {
            self.record = record
            self.score = score
            self.matchedTokens = matchedTokens
        }

        enum CodingKeys: String, CodingKey {
            case version, score
            case matchedTokens = "matched_tokens"
        }

        public func encode(to encoder: any Encoder) throws {
            try record.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(0, forKey: .version)
            try container.encode(Double(score), forKey: .score)
            try container.encodeIfPresent(matchedTokens, forKey: .matchedTokens)
        }
    }

    /// What one node of a query did (Tessera's `explain`): the first stage that served it, its fusion or rerank,
    /// and the time.
    public struct Stage: Encodable, Sendable {
        public var path: String
        public var sharedWith: [String]
        public var method: String
        public var candidates: Int
        public var results: Int
        public var milliseconds: Double

        enum CodingKeys: String, CodingKey {
            case path, method, candidates, results, milliseconds
            case sharedWith = "shared_with"
        }

        /// The wire form of the library's stage (the tree's root is `query`, its children `query.prefetch[0]`…).
        public init(_ stage: QueryStage) {
            path = stage.path
            sharedWith = stage.sharedWith
            method = stage.method.rawValue
            candidates = stage.candidateCount
            results = stage.resultCount
            milliseconds = stage.milliseconds
        }
    }

    /// The `result` of a query: its points, and its stages when `explain` asked for them.
    public struct QueryResponse: Encodable, Sendable {
        public var points: [ScoredPoint]
        public var stages: [Stage]?

        /// Creates a response.
        public init(points: [ScoredPoint], stages: [Stage]?) {
            self.points = points
            self.stages = stages
        }
    }

    /// The `result` of a scroll.
    public struct ScrollResult: Encodable, Sendable {
        public var points: [Record]
        public var nextPageOffset: PointID?

        /// Creates a page.
        public init(points: [Record], nextPageOffset: PointID?) {
            self.points = points
            self.nextPageOffset = nextPageOffset
        }

        enum CodingKeys: String, CodingKey {
            case points
            case nextPageOffset = "next_page_offset"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(points, forKey: .points)
            try container.encode(nextPageOffset?.jsonValue ?? .null, forKey: .nextPageOffset)
        }
    }

    /// The `result` of a count.
    public struct CountResult: Encodable, Sendable {
        public var count: Int

        /// Creates a count.
        public init(count: Int) { self.count = count }
    }

    /// The `result` of a write (Qdrant's `UpdateResult`): applied before the answer.
    public struct UpdateResult: Encodable, Sendable {
        public var operationId = 0
        public var status = "completed"

        /// A completed write.
        public init() {}

        enum CodingKeys: String, CodingKey {
            case operationId = "operation_id"
            case status
        }
    }

    /// Qdrant's answer envelope: `{"result": …, "status": "ok", "time": seconds}`.
    public struct Response<Result: Encodable>: Encodable {
        public var result: Result
        public var status = "ok"
        public var time: Double

        /// Creates an answer.
        public init(result: Result, time: Double) {
            self.result = result
            self.time = time
        }
    }

    /// Qdrant's error envelope: `{"status": {"error": "…"}, "time": seconds}`.
    public struct ErrorResponse: Encodable, Sendable {
        public struct Status: Encodable, Sendable {
            public var error: String
        }

        public var status: Status
        public var time: Double

        /// Creates an error answer.
        public init(error: String, time: Double) {
            status = Status(error: error)
            self.time = time
        }
    }
}

extension Qdrant.Response: Sendable where Result: Sendable {}

extension Qdrant {
    /// One operation of `POST /collections/{name}/points/batch`.
    public enum UpdateOperation: Decodable, Sendable {
        case upsert(UpsertPoints)
        case delete(DeletePoints)
        case setPayload(SetPayload)
        case overwritePayload(SetPayload)
        case deletePayload(DeletePayload)
        case clearPayload(ClearPayload)
        case updateVectors(UpdateVectors)
        case deleteVectors(DeleteVectors)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case upsert, delete
            case setPayload = "set_payload"
            case overwritePayload = "overwrite_payload"
            case deletePayload = "delete_payload"
            case clearPayload = "clear_payload"
            case updateVectors = "update_vectors"
            case deleteVectors = "delete_vectors"
        }

        public init(from decoder: any Decoder) throws {
            let names = try decoder.container(keyedBy: JSONKey.self).allKeys.map(\.stringValue)
            guard names.count == 1, let name = names.first, let key = CodingKeys(rawValue: name) else {
                throw invalid(
                    decoder.codingPath,
                    "an operation is one object with one of upsert, delete, set_payload, overwrite_payload, "
                        + "delete_payload, clear_payload, update_vectors, delete_vectors"
                )
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            switch key {
            case .upsert: self = .upsert(try container.decode(UpsertPoints.self, forKey: key))
            case .delete: self = .delete(try container.decode(DeletePoints.self, forKey: key))
            case .setPayload: self = .setPayload(try container.decode(SetPayload.self, forKey: key))
            case .overwritePayload: self = .overwritePayload(try container.decode(SetPayload.self, forKey: key))
            case .deletePayload: self = .deletePayload(try container.decode(DeletePayload.self, forKey: key))
            case .clearPayload: self = .clearPayload(try container.decode(ClearPayload.self, forKey: key))
            case .updateVectors: self = .updateVectors(try container.decode(UpdateVectors.self, forKey: key))
            case .deleteVectors: self = .deleteVectors(try container.decode(DeleteVectors.self, forKey: key))
            }
        }
    }

    /// The body of `PUT /collections/{name}/points/vectors` (Qdrant's `UpdateVectors`): for each point, the vector
    /// fields to replace.
    public struct UpdateVectors: Decodable, Sendable {
        public var points: [PointVectors]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case points
            case shardKey = "shard_key"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "update_vectors")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            points = try container.decode([PointVectors].self, forKey: .points)
        }
    }

    /// One point of ``UpdateVectors``: its id and the vectors to set (named, or bare for an unnamed vector).
    public struct PointVectors: Decodable, Sendable {
        public var id: PointID
        public var vector: VectorInput

        enum CodingKeys: String, CodingKey { case id, vector }
    }

    /// The body of `POST /collections/{name}/points/batch`: operations applied in order; each is acknowledged
    /// before the next starts, and an error stops the batch there (the operations before it stay applied).
    public struct BatchUpdate: Decodable, Sendable {
        public var operations: [UpdateOperation]
    }
}
