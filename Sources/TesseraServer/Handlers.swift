import Foundation
import HTTPTypes
import Hummingbird
import MaxSim
import NIOCore
import NIOPosix
public import Tessera

/// The request handlers: each reads Qdrant's JSON, calls the collection (writes, reads, or the query pipeline —
/// no search logic of its own) and answers in Qdrant's envelope. Only reading the body is asynchronous; the
/// handlers themselves are synchronous (Swift 6.3.1's optimiser crashed splitting the async form of the upsert),
/// and run on the blocking thread pool (``serve(_:_:)``).
struct Handlers: Sendable {
    let registry: CollectionRegistry
    let options: ServerOptions

    // MARK: Helpers

    /// Reads a request's body, refusing one over the size limit.
    func collect(_ request: Request) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: options.maximumBodyBytes)
        } catch {
            throw APIError(
                .contentTooLarge,
                "Payload too large: the request body is over the limit of \(options.maximumBodyBytes) bytes"
            )
        }
    }

    /// Parses a body as JSON: linear time, nesting up to ``JSONParser/defaultMaximumDepth``; an empty body is `{}`.
    static func parse(_ buffer: ByteBuffer) throws(APIError) -> JSONValue {
        guard buffer.readableBytes > 0 else { return .object([:]) }
        do {
            return try JSONValue.parse(utf8: buffer.readableBytesView)
        } catch {
            throw APIError(.badRequest, "Format error in JSON body: \(error.message)")
        }
    }

    /// Reads the body, then parses it and runs `handler` on the blocking thread pool, never on the server's
    /// event loops or the cooperative pool (commits fsync, queries score for milliseconds to seconds).
    func serve(
        _ request: Request,
        _ handler: @escaping @Sendable (JSONValue) throws -> Response
    ) async throws -> Response {
        let buffer = try await collect(request)
        return try await blocking { try handler(try Self.parse(buffer)) }
    }

    /// Runs `body` on the blocking thread pool.
    func blocking(_ body: @escaping @Sendable () throws -> Response) async throws -> Response {
        try await Self.blockingPool.runIfActive(body)
    }

    /// Twice as many threads as cores: a write spends most of its time waiting for fsync, and a thread waiting
    /// there must not keep a core from a query. (Scoring itself is bounded by the cores whatever the count.)
    static let blockingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    func name(_ context: BasicRequestContext) throws -> String {
        guard let name = context.parameters.get("name") else { throw APIError(.badRequest, "missing collection name") }
        return name
    }

    func store(_ context: BasicRequestContext) throws -> (String, CollectionStore) {
        let name = try name(context)
        return (name, try registry.store(name))
    }

    func run<T>(_ body: () throws(TesseraError) -> T) throws(APIError) -> T {
        do { return try body() } catch { throw APIError(from: error) }
    }

    // MARK: Collections

    func listCollections() -> Response {
        let start = ContinuousClock.now
        let names = registry.names().map { JSONValue.object(["name": .string($0)]) }
        return ServerResponse.ok(.object(["collections": .array(names)]), since: start)
    }

    func createCollection(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let name = try name(context)
        let object = try QdrantJSON.object(json, "the request body")
        guard let vectors = object["vectors"] else {
            throw APIError(.badRequest, "Wrong input: a collection needs `vectors` (named vector parameters)")
        }
        guard case .object(let named) = vectors else {
            throw APIError(.badRequest, "Format error in JSON body: vectors must be an object")
        }
        var fields: [String: VectorParameters] = [:]
        // An unnamed vector (`{"size": …, "distance": …}`) is stored as the field "default".
        let entries: [(String, JSONValue)] = named["size"] != nil ? [("default", vectors)] : named.map { ($0, $1) }
        guard !entries.isEmpty else { throw APIError(.badRequest, "Wrong input: `vectors` names no vector") }
        for (field, value) in entries {
            let parameters = try QdrantJSON.object(value, "vectors.\(field)")
            guard case .integer(let size)? = parameters["size"], size >= 1, size <= 65536 else {
                throw APIError(.badRequest, "Wrong input: vectors.\(field).size must be an integer in 1...65536")
            }
            guard case .string(let distanceName)? = parameters["distance"],
                let distance = Distance(rawValue: distanceName)
            else {
                throw APIError(
                    .badRequest,
                    "Wrong input: vectors.\(field).distance must be Cosine, Dot or Euclid (Manhattan is not supported)"
                )
            }
            var multivector = false
            if let config = parameters["multivector_config"], config != .null {
                let settings = try QdrantJSON.object(config, "vectors.\(field).multivector_config")
                guard settings["comparator"] == .string("max_sim") else {
                    throw APIError(
                        .badRequest,
                        "Wrong input: vectors.\(field).multivector_config.comparator must be max_sim"
                    )
                }
                multivector = true
            }
            if multivector, distance == .euclid {
                throw APIError(.badRequest, "Wrong input: multivector field \(field) supports Cosine and Dot only")
            }
            var hnswM: Int?
            if case .object(let hnsw)? = parameters["hnsw_config"], case .integer(let m)? = hnsw["m"] { hnswM = Int(m) }
            fields[field] = VectorParameters(
                size: Int(size),
                distance: distance,
                multivector: multivector,
                hnswM: hnswM,
                unnamed: named["size"] != nil
            )
        }
        try registry.create(name, fields: fields)
        return ServerResponse.ok(.bool(true), since: start)
    }

    func collectionInfo(_ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let parameters = try registry.vectorParameters(name)
        let count = store.count()
        // An unnamed vector is described bare, as Qdrant does; named vectors as a map.
        let vectors =
            parameters.count == 1 && parameters.first!.value.unnamed
            ? parameters.first!.value.json : JSONValue.object(JSONObject(parameters.mapValues(\.json)))
        let result: JSONValue = .object([
            "status": .string("green"),
            "optimizer_status": .string("ok"),
            "indexed_vectors_count": .integer(Int64(count)),
            "points_count": .integer(Int64(count)),
            "segments_count": .integer(1),
            "config": .object([
                "params": .object([
                    "vectors": vectors, "shard_number": .integer(1), "replication_factor": .integer(1),
                    "write_consistency_factor": .integer(1), "on_disk_payload": .bool(true),
                ]),
                "hnsw_config": .object([
                    "m": .integer(16), "ef_construct": .integer(200), "full_scan_threshold": .integer(10000),
                    "max_indexing_threads": .integer(0), "on_disk": .bool(false),
                ]),
                "optimizer_config": .object([
                    "deleted_threshold": .double(0.25), "vacuum_min_vector_number": .integer(1000),
                    "default_segment_number": .integer(1), "max_segment_size": .null, "memmap_threshold": .null,
                    "indexing_threshold": .integer(20000), "flush_interval_sec": .integer(0),
                    "max_optimization_threads": .null,
                ]),
                "wal_config": .object(["wal_capacity_mb": .integer(32), "wal_segments_ahead": .integer(0)]),
                "quantization_config": .null,
            ]),
            "payload_schema": .object([:]),
        ])
        return ServerResponse.ok(result, since: start)
    }

    func deleteCollection(_ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        return ServerResponse.ok(.bool(try registry.delete(try name(context))), since: start)
    }

    func collectionExists(_ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let name = try name(context)
        try CollectionRegistry.checkName(name)
        return ServerResponse.ok(.object(["exists": .bool(registry.exists(name))]), since: start)
    }

    // MARK: Points

    func upsert(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let parameters = try registry.vectorParameters(name)
        let object = try QdrantJSON.object(json, "the request body")
        let points = try parsePoints(object, name: name, parameters: parameters, store: store)
        try run { () throws(TesseraError) in try store.upsert(points) }
        return ServerResponse.ok(ServerResponse.completed, since: start)
    }

    /// A vector for a document given as text (Tessera's extension `{"text": …}`), from the server's encoder.
    func encodeDocument(_ text: String, field: String, store: CollectionStore) throws -> VectorValue {
        guard let encoder = options.documentEncoder else {
            throw APIError(
                .badRequest,
                "Wrong input: vector '\(field)' is given as text, but the server has no model (start it with --model)"
            )
        }
        // The stored field, with the encoder identity the collection recorded: the catalog encodes with that
        // model and profile, or refuses.
        guard let description = store.configuration.field(named: field) else {
            throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(field)")
        }
        do {
            return try encoder.encodeDocument(text, for: description)
        } catch let error as TesseraError {
            throw APIError(from: error)
        } catch {
            throw APIError(.badRequest, "Wrong input: encoding the text of vector '\(field)' failed: \(error)")
        }
    }

    /// The points of an upsert body: `{"points": [...]}` or `{"batch": {...}}`.
    func parsePoints(
        _ object: JSONObject,
        name: String,
        parameters: [String: VectorParameters],
        store: CollectionStore
    ) throws
        -> [Point]
    {
        var points: [Point] = []
        func vectors(_ value: JSONValue?, path: String) throws -> [String: VectorValue] {
            guard let value else { throw APIError(.badRequest, "Format error in JSON body: \(path) is missing") }
            if case .object(let named) = value {
                var result: [String: VectorValue] = [:]
                for (field, vector) in named {
                    guard let fieldParameters = parameters[field] else {
                        throw APIError(
                            .badRequest,
                            "Wrong input: Not existing vector name error: \(field) (collection `\(name)` has "
                                + parameters.keys.sorted().joined(separator: ", ") + ")"
                        )
                    }
                    if case .object(let document) = vector, case .string(let text)? = document["text"] {
                        result[field] = try encodeDocument(text, field: field, store: store)
                        continue
                    }
                    result[field] = try QdrantJSON.vector(
                        vector,
                        field: field,
                        parameters: fieldParameters,
                        path: "\(path).\(field)"
                    )
                }
                return result
            }
            guard parameters.count == 1, let (field, fieldParameters) = parameters.first else {
                throw APIError(.badRequest, "Wrong input: the collection has named vectors; \(path) must name them")
            }
            return [field: try QdrantJSON.vector(value, field: field, parameters: fieldParameters, path: path)]
        }
        if case .array(let items)? = object["points"] {
            for (index, item) in items.enumerated() {
                let point = try QdrantJSON.object(item, "points[\(index)]")
                guard let id = point["id"] else {
                    throw APIError(.badRequest, "Format error in JSON body: points[\(index)].id is missing")
                }
                var payload: JSONObject = [:]
                if case .object(let given)? = point["payload"] { payload = given }
                points.append(
                    Point(
                        id: try QdrantJSON.pointID(id, "points[\(index)].id"),
                        payload: payload,
                        vectors: try vectors(point["vector"], path: "points[\(index)].vector")
                    )
                )
            }
        } else if case .object(let batch)? = object["batch"] {
            let ids = try QdrantJSON.pointIDs(batch["ids"], "batch.ids")
            var payloads: [JSONValue] = []
            if case .array(let given)? = batch["payloads"] { payloads = given }
            var columns: [String: [JSONValue]] = [:]
            switch batch["vectors"] {
            case .object(let named)?:
                for (field, value) in named {
                    guard case .array(let rows) = value, rows.count == ids.count else {
                        throw APIError(
                            .badRequest,
                            "Wrong input: batch.vectors.\(field) must hold one vector per id (\(ids.count))"
                        )
                    }
                    columns[field] = rows
                }
            case .array(let rows)? where parameters.count == 1 && rows.count == ids.count:
                columns[parameters.keys.first!] = rows
            default:
                throw APIError(.badRequest, "Wrong input: batch.vectors must hold one vector per id (\(ids.count))")
            }
            for (index, id) in ids.enumerated() {
                var named: JSONObject = [:]
                for (field, rows) in columns { named[field] = rows[index] }
                var payload: JSONObject = [:]
                if index < payloads.count, case .object(let given) = payloads[index] { payload = given }
                points.append(
                    Point(
                        id: id,
                        payload: payload,
                        vectors: try vectors(.object(named), path: "batch.vectors[\(index)]")
                    )
                )
            }
        } else {
            throw APIError(.badRequest, "Format error in JSON body: expected `points` (a list) or `batch`")
        }
        return points
    }

    func record(_ record: Record, parameters: [String: VectorParameters], payloadKeys: [String]?) -> JSONValue {
        var object: JSONObject = [
            "id": QdrantJSON.json(record.id),
            "payload": QdrantJSON.payloadJSON(record.payload, keys: payloadKeys),
            "vector": .null,
            "shard_key": .null,
            "order_value": .null,
        ]
        if let vectors = record.vectors {
            object["vector"] = QdrantJSON.json(vectors, parameters: parameters)
        }
        return .object(object)
    }

    func getPoints(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let parameters = try registry.vectorParameters(name)
        let object = try QdrantJSON.object(json, "the request body")
        let ids = try QdrantJSON.pointIDs(object["ids"], "ids")
        let (withPayload, keys) = QdrantJSON.payloadSelection(object["with_payload"], default: true)
        let vectorNames = QdrantJSON.vectorSelection(object["with_vector"])
        let records = try run { () throws(TesseraError) in
            try store.get(ids: ids, withPayload: withPayload, withVectors: vectorNames != nil)
        }
        return ServerResponse.ok(
            .array(records.map { self.record(filtered($0, vectorNames), parameters: parameters, payloadKeys: keys) }),
            since: start
        )
    }

    func filtered(_ record: Record, _ names: [String]?) -> Record {
        guard let names, !names.isEmpty else { return record }
        var record = record
        record.vectors = record.vectors?.filter { names.contains($0.key) }
        return record
    }

    func getPoint(_ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let parameters = try registry.vectorParameters(name)
        guard let text = context.parameters.get("id") else { throw APIError(.badRequest, "missing point id") }
        let id = try UInt64(text).map { PointID.integer($0) } ?? QdrantJSON.pointID(.string(text), "id")
        let records = try run { () throws(TesseraError) in
            try store.get(ids: [id], withPayload: true, withVectors: true)
        }
        guard let found = records.first else {
            throw APIError(.notFound, "Not found: Point with id \(id) does not exists!")
        }
        return ServerResponse.ok(record(found, parameters: parameters, payloadKeys: nil), since: start)
    }

    func deletePoints(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (_, store) = try store(context)
        let object = try QdrantJSON.object(json, "the request body")
        if object["points"] != nil {
            let ids = try QdrantJSON.pointIDs(object["points"], "points")
            _ = try run { () throws(TesseraError) in try store.delete(ids: ids) }
        } else if let filter = try QdrantJSON.filter(object["filter"], "filter") {
            _ = try run { () throws(TesseraError) in try store.delete(filter: filter) }
        } else {
            throw APIError(.badRequest, "Format error in JSON body: expected `points` (ids) or `filter`")
        }
        return ServerResponse.ok(ServerResponse.completed, since: start)
    }

    func scroll(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let parameters = try registry.vectorParameters(name)
        let object = try QdrantJSON.object(json, "the request body")
        let filter = try QdrantJSON.filter(object["filter"], "filter")
        var limit = 10
        if case .integer(let given)? = object["limit"] { limit = Int(given) }
        let offset = try object["offset"].flatMap { $0 == .null ? nil : try QdrantJSON.pointID($0, "offset") }
        let (withPayload, keys) = QdrantJSON.payloadSelection(object["with_payload"], default: true)
        let vectorNames = QdrantJSON.vectorSelection(object["with_vector"])
        let page = try run { () throws(TesseraError) in
            try store.scroll(
                filter: filter,
                limit: limit,
                offset: offset,
                withPayload: withPayload,
                withVectors: vectorNames != nil
            )
        }
        let result: JSONValue = .object([
            "points": .array(
                page.records.map { record(filtered($0, vectorNames), parameters: parameters, payloadKeys: keys) }
            ),
            "next_page_offset": page.nextPageOffset.map(QdrantJSON.json) ?? .null,
        ])
        return ServerResponse.ok(result, since: start)
    }

    func count(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (_, store) = try store(context)
        let object = try QdrantJSON.object(json, "the request body")
        let filter = try QdrantJSON.filter(object["filter"], "filter")
        return ServerResponse.ok(.object(["count": .integer(Int64(store.count(filter: filter)))]), since: start)
    }

    func payload(_ json: JSONValue, _ context: BasicRequestContext, overwrite: Bool) throws -> Response {
        let start = ContinuousClock.now
        let (_, store) = try store(context)
        let object = try QdrantJSON.object(json, "the request body")
        guard case .object(let payload)? = object["payload"] else {
            throw APIError(.badRequest, "Format error in JSON body: payload must be an object")
        }
        var ids: [PointID]
        if object["points"] != nil {
            ids = try QdrantJSON.pointIDs(object["points"], "points")
        } else if let filter = try QdrantJSON.filter(object["filter"], "filter") {
            ids = []
            var offset: PointID?
            repeat {
                let page = try run { () throws(TesseraError) in
                    try store.scroll(filter: filter, limit: 1000, offset: offset, withPayload: false)
                }
                ids += page.records.map(\.id)
                offset = page.nextPageOffset
            } while offset != nil
        } else {
            throw APIError(.badRequest, "Format error in JSON body: expected `points` (ids) or `filter`")
        }
        try run { () throws(TesseraError) in
            if overwrite {
                try store.overwritePayload(payload, ids: ids)
            } else {
                try store.setPayload(payload, ids: ids)
            }
        }
        return ServerResponse.ok(ServerResponse.completed, since: start)
    }

    // MARK: Query

    /// Normalises the multivector queries of cosine multivector fields of collections made before their
    /// configuration recorded the token distance (newer ones are normalised by the collection).
    func normalizeQueries(_ node: inout QueryNode, parameters: [String: VectorParameters]) {
        if case .multivector(let query)? = node.query {
            let field = node.using ?? parameters.first { $0.value.multivector }?.key
            if let field, let fieldParameters = parameters[field], fieldParameters.legacyTokenNormalization {
                var values: [Float]
                switch query.elements {
                case .float32(let given): values = given
                default: values = []
                }
                let dimension = query.dimension
                for row in 0..<(values.count / max(1, dimension)) {
                    var slice = Array(values[(row * dimension)..<((row + 1) * dimension)])
                    QdrantJSON.normalize(&slice)
                    values.replaceSubrange((row * dimension)..<((row + 1) * dimension), with: slice)
                }
                if !values.isEmpty, let normalized = try? Multivector(values, dimension: dimension) {
                    node.query = .multivector(normalized)
                }
            }
        }
        for index in node.prefetch.indices { normalizeQueries(&node.prefetch[index], parameters: parameters) }
    }

    func runQuery(_ body: JSONValue, name: String, store: CollectionStore) throws -> JSONValue {
        var request = try run { () throws(TesseraError) in try QueryRequest(json: body) }
        let parameters = try registry.vectorParameters(name)
        try QdrantJSON.validate(request.root, parameters: parameters, path: "")
        for field in request.withVectors where parameters[field] == nil {
            throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(field)")
        }
        normalizeQueries(&request.root, parameters: parameters)
        let kernel = MaxSimKernel(threadCount: options.threadCount)
        let response = try run { () throws(TesseraError) in
            try store.query(request, encoder: options.encoder, kernel: kernel)
        }
        let points: [JSONValue] = response.points.map { point in
            var object: JSONObject = [
                "id": QdrantJSON.json(point.id),
                "version": .integer(0),
                "score": .double(Double(point.score)),
                "payload": point.payload.map { .object($0) } ?? .null,
                "vector": .null,
                "shard_key": .null,
                "order_value": .null,
            ]
            if let vectors = point.vectors {
                object["vector"] = QdrantJSON.json(vectors, parameters: parameters)
            }
            if let matches = point.matchedTokens {
                object["matched_tokens"] = .array(matches.map { .integer(Int64($0)) })
            }
            return .object(object)
        }
        guard request.withMatches else { return .object(["points": .array(points)]) }
        // `explain: true` (Tessera's extension): what each node of the tree did — the first stage that served
        // it (exact MaxSim, the compressed index, HNSW, exact dense, BM25), its fusion or rerank, and the time.
        let stages: [JSONValue] = response.stages.map { stage in
            .object([
                "path": .string(stage.path.isEmpty ? "query" : "query" + stage.path),
                "method": .string(stage.method),
                "candidates": .integer(Int64(stage.candidateCount)),
                "results": .integer(Int64(stage.resultCount)),
                "milliseconds": .double(stage.milliseconds),
            ])
        }
        return .object(["points": .array(points), "stages": .array(stages)])
    }

    func query(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let result = try runQuery(json, name: name, store: store)
        return ServerResponse.ok(result, since: start)
    }

    func queryBatch(_ json: JSONValue, _ context: BasicRequestContext) throws -> Response {
        let start = ContinuousClock.now
        let (name, store) = try store(context)
        let object = try QdrantJSON.object(json, "the request body")
        guard case .array(let searches)? = object["searches"] else {
            throw APIError(.badRequest, "Format error in JSON body: searches must be a list of queries")
        }
        var results: [JSONValue] = []
        for search in searches { results.append(try runQuery(search, name: name, store: store)) }
        return ServerResponse.ok(.array(results), since: start)
    }
}

/// Runs query bodies against a registry's collections exactly as `/points/query` does, for callers outside the
/// server (`tessera query`).
public struct QueryRunner: Sendable {
    let handlers: Handlers

    /// Creates a runner over a catalog's collections.
    public init(catalog: CollectionCatalog, threadCount: Int = 1, encoder: (any QueryTextEncoder)? = nil) {
        self.init(registry: CollectionRegistry(catalog: catalog), threadCount: threadCount, encoder: encoder)
    }

    /// Creates a runner.
    public init(registry: CollectionRegistry, threadCount: Int = 1, encoder: (any QueryTextEncoder)? = nil) {
        handlers = Handlers(
            registry: registry,
            options: ServerOptions(dataDirectory: registry.directory, threadCount: threadCount, encoder: encoder)
        )
    }

    /// The `result` of `/points/query` for a body.
    /// - Throws: ``APIError`` as the server would answer.
    public func run(_ body: JSONValue, collection: String) throws -> JSONValue {
        try handlers.runQuery(body, name: collection, store: try handlers.registry.store(collection))
    }
}
