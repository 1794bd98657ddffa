import HTTPTypes
import Hummingbird
import MaxSim
public import Tessera
import TesseraQdrant

/// The routes of queries: `/points/query` and its batch form. A body decodes into Qdrant's wire type, becomes
/// the library's ``Tessera/QueryRequest``, and runs through the collection's query pipeline (the one
/// `tessera search` runs); the server adds only Qdrant's checks of vector names and dimensions.
struct QueryController: Controller {
    let support: RequestSupport

    /// Adds the routes, relative to `/collections/:name/points`.
    func addRoutes(to routes: RouteCollection<BasicRequestContext>) {
        routes.post("query", use: query)
        routes.post("query/batch", use: queryBatch)
        routes.post("query/groups", use: queryGroups)
        routes.post("query/idf", use: idfStatistics)
        routes.post("search/matrix/pairs") { request, context in
            try await matrix(request, context, offsets: false)
        }
        routes.post("search/matrix/offsets") { request, context in
            try await matrix(request, context, offsets: true)
        }
        routes.post("search/text", use: searchText)
    }

    /// Tessera's text search: a query text through one of the library's presets (see `TextSearchRequest`).
    @Sendable func searchText(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: TextSearchRequest.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            let kernel = MaxSimKernel(threadCount: support.options.threadCount)
            let response = try support.run { () throws(TesseraError) in
                try store.search(try body.textQuery(), encoder: support.options.encoder, kernel: kernel)
            }
            return ServerResponse.ok(TextSearchResult(response), since: start)
        }
    }

    @Sendable func query(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.QueryRequest.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            return ServerResponse.ok(try run(body, name: name, store: store), since: start)
        }
    }

    /// Tessera's `POST …/points/query/idf`: the IDF modifier's N and n for the root's sparse query, or BM25's N,
    /// total length and n for its text query over a payload text index (`null` for any other root), which a
    /// sharded collection's coordinator sums over the shards and gives back as `params.idf.statistics`.
    @Sendable func idfStatistics(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.QueryRequest.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            let (query, _) = try prepare(body, name: name)
            let (sparse, text) = try support.run { () throws(TesseraError) in
                (try store.idfStatistics(of: query.root), try store.textStatistics(of: query.root))
            }
            let result = sparse?.json ?? text?.json ?? .null
            return ServerResponse.ok(result, since: start)
        }
    }

    @Sendable func queryBatch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.QueryRequestBatch.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            var results: [Qdrant.QueryResponse] = []
            for (index, search) in body.searches.enumerated() {
                let query: Qdrant.QueryRequest
                do throws(TesseraError) {
                    query = try JSONValueDecoder().decode(Qdrant.QueryRequest.self, from: search)
                } catch {
                    throw APIError(.badRequest, "Format error in JSON body: searches[\(index)]: \(error.message)")
                }
                results.append(try run(query, name: name, store: store))
            }
            return ServerResponse.ok(results, since: start)
        }
    }

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

    /// Grouped queries (Qdrant's `query_points_groups`): the library groups the query's results; the server adds
    /// each group's lookup point from another collection.
    @Sendable func queryGroups(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.QueryGroupsRequest.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            let (query, parameters) = try prepare(body.query, name: name)
            let kernel = MaxSimKernel(threadCount: support.options.threadCount)
            let groups = try support.run { () throws(TesseraError) in
                try store.queryGroups(
                    query,
                    groupBy: body.groupBy,
                    groupSize: body.groupSize,
                    limit: body.limit,
                    encoder: support.options.encoder,
                    kernel: kernel
                )
            }
            var lookups: [JSONValue: Qdrant.Record] = [:]
            if let lookup = body.withLookup {
                let otherName = support.registry.resolve(lookup.collection)
                let other = try support.registry.store(otherName)
                let otherParameters = try support.registry.vectorParameters(otherName)
                let selection = ReadSelection(payload: lookup.withPayload, vectors: lookup.withVector)
                var ids: [JSONValue: PointID] = [:]
                for group in groups {
                    switch group.id {
                    case .integer(let number) where number >= 0: ids[group.id] = .integer(UInt64(number))
                    case .unsigned(let number): ids[group.id] = .integer(number)
                    case .string(let text): ids[group.id] = try? PointID(parsing: text)
                    default: break
                    }
                }
                let records = try support.run { () throws(TesseraError) in
                    try other.get(
                        ids: Array(Set(ids.values)),
                        withPayload: selection.withPayload,
                        withVectors: selection.withVectors
                    )
                }
                let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                for (group, id) in ids {
                    if let record = byID[id] { lookups[group] = selection.record(record, parameters: otherParameters) }
                }
            }
            let result = Qdrant.GroupsResult(
                groups: groups.map { group in
                    Qdrant.PointGroup(
                        id: group.id,
                        hits: group.hits.map { Self.scored($0, parameters: parameters) },
                        lookup: lookups[group.id]
                    )
                }
            )
            return ServerResponse.ok(result, since: start)
        }
    }

    /// Distance matrices (Qdrant's `search_matrix_pairs` and `search_matrix_offsets`), from the library's sample.
    func matrix(_ request: Request, _ context: BasicRequestContext, offsets: Bool) async throws -> Response {
        try await support.serve(request, as: Qdrant.SearchMatrixRequest.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            let parameters = try support.registry.vectorParameters(name)
            if let using = body.using, parameters[using] == nil {
                throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(using)")
            }
            let filter = try body.filter.map(PointsController.filter)
            let kernel = MaxSimKernel(threadCount: support.options.threadCount)
            let matrix = try support.run { () throws(TesseraError) in
                try store.distanceMatrix(
                    field: body.using,
                    filter: filter,
                    sample: body.sample,
                    limit: body.limit,
                    kernel: kernel
                )
            }
            if offsets { return ServerResponse.ok(Qdrant.MatrixOffsetsResult(matrix), since: start) }
            return ServerResponse.ok(Qdrant.MatrixPairsResult(matrix), since: start)
        }
    }

    /// A query body as the library's request, checked against the collection's vector fields as Qdrant checks it.
    func prepare(
        _ body: Qdrant.QueryRequest,
        name: String
    ) throws -> (Tessera.QueryRequest, [String: VectorParameters]) {
        var body = body
        body.node = try body.node.resolvingLookups { collection, field, id in
            try lookup(collection: collection, field: field, id: id)
        }
        var request = try support.run { () throws(TesseraError) in try body.request() }
        let parameters = try support.registry.vectorParameters(name)
        try QdrantJSON.validate(request.root, parameters: parameters)
        for field in request.withVectors where parameters[field] == nil {
            throw APIError(.badRequest, "Wrong input: Not existing vector name error: \(field)")
        }
        normalizeQueries(&request.root, parameters: parameters)
        return (request, parameters)
    }

    /// The stored vector of a point in another collection's field, for `lookup_from`.
    func lookup(collection: String, field: String, id: PointID) throws -> VectorValue {
        let name = support.registry.resolve(collection)
        let store = try support.registry.store(name)
        guard store.configuration.field(named: field) != nil else {
            throw APIError(
                .badRequest,
                "Wrong input: Not existing vector name error: \(field) (in lookup_from `\(collection)`)"
            )
        }
        let records = try support.run { () throws(TesseraError) in
            try store.get(ids: [id], withPayload: false, withVectors: true)
        }
        guard let vector = records.first?.vectors?[field] else {
            throw APIError(
                .notFound,
                "Not found: No point with id \(id) found in lookup_from collection `\(collection)`"
            )
        }
        return vector
    }

    /// A result on the wire.
    static func scored(_ point: ScoredPoint, parameters: [String: VectorParameters]) -> Qdrant.ScoredPoint {
        Qdrant.ScoredPoint(
            record: Qdrant.Record(
                id: point.id,
                payload: point.payload,
                vector: point.vectors.map { QdrantJSON.json($0, parameters: parameters) },
                orderValue: point.orderValue
            ),
            score: point.score,
            matchedTokens: point.matchedTokens?.map(Int.init)
        )
    }

    /// Runs one query against a collection.
    func run(_ body: Qdrant.QueryRequest, name: String, store: CollectionStore) throws -> Qdrant.QueryResponse {
        let (request, parameters) = try prepare(body, name: name)
        let kernel = MaxSimKernel(threadCount: support.options.threadCount)
        let response = try support.run { () throws(TesseraError) in
            try store.query(request, encoder: support.options.encoder, kernel: kernel)
        }
        let points = response.points.map { Self.scored($0, parameters: parameters) }
        // `explain: true` (Tessera's extension): what each node of the tree did.
        return Qdrant.QueryResponse(
            points: points,
            stages: request.withMatches ? response.stages.map(Qdrant.Stage.init) : nil
        )
    }
}

/// Runs query bodies against a catalog's collections exactly as `/points/query` does, for callers outside the
/// server (`tessera query`).
public struct QueryRunner: Sendable {
    let controller: QueryController

    /// Creates a runner over a catalog's collections.
    public init(catalog: CollectionCatalog, threadCount: Int = 1, encoder: (any QueryTextEncoder)? = nil) {
        self.init(registry: CollectionRegistry(catalog: catalog), threadCount: threadCount, encoder: encoder)
    }

    /// Creates a runner.
    public init(registry: CollectionRegistry, threadCount: Int = 1, encoder: (any QueryTextEncoder)? = nil) {
        let options = ServerOptions(dataDirectory: registry.directory, threadCount: threadCount, encoder: encoder)
        controller = QueryController(support: RequestSupport(registry: registry, options: options))
    }

    /// The `result` of `/points/query` for a body.
    /// - Throws: ``APIError`` as the server would answer.
    public func run(_ body: JSONValue, collection: String) throws -> JSONValue {
        let query = try RequestSupport.decode(Qdrant.QueryRequest.self, body)
        let store = try controller.support.registry.store(collection)
        return try JSONValueEncoder().encode(try controller.run(query, name: collection, store: store))
    }
}
