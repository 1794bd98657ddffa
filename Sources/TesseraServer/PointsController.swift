import HTTPTypes
import Hummingbird
import Tessera
import TesseraCluster
import TesseraQdrant

/// The routes of points: upsert, read by id, delete, scroll, count, and payload updates. Each decodes Qdrant's
/// wire type, converts it, and calls the collection.
struct PointsController: Controller {
    let support: RequestSupport

    /// Adds the routes, relative to `/collections/:name/points`.
    func addRoutes(to routes: RouteCollection<BasicRequestContext>) {
        routes.put("", use: upsert)
        routes.post("", use: get)
        routes.get(":id", use: getOne)
        routes.post("delete", use: delete)
        routes.post("scroll", use: scroll)
        routes.post("count", use: count)
        routes.post("payload") { request, context in try await payload(request, context, overwrite: false) }
        routes.put("payload") { request, context in try await payload(request, context, overwrite: true) }
        routes.post("payload/delete", use: deletePayload)
        routes.post("payload/clear", use: clearPayload)
        routes.post("batch", use: batch)
        routes.put("vectors", use: updateVectors)
        routes.post("vectors/delete", use: deleteVectors)
    }

    @Sendable func upsert(_ request: Request, context: BasicRequestContext) async throws -> Response {
        // A recovery's copy between replicas of a shard (cluster mode) carries vectors as stored.
        let asStored =
            support.options.cluster != nil
            && request.headers[HTTPField.Name(ClusterRouter.transferHeader)!] != nil
        return try await support.serve(request, as: Qdrant.UpsertPoints.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            try upsert(body, collection: name, store: store, asStored: asStored)
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    func upsert(
        _ body: Qdrant.UpsertPoints,
        collection name: String,
        store: CollectionStore,
        asStored: Bool = false
    ) throws {
        let converter = PointConverter(
            collection: name,
            parameters: try support.registry.vectorParameters(name),
            store: store,
            encoder: support.options.documentEncoder
        )
        let points = try converter.points(body)
        try support.run { () throws(TesseraError) in try store.upsert(points, asStored: asStored) }
    }

    /// Qdrant's `update_vectors`: the library replaces the named fields of each point in one transaction.
    @Sendable func updateVectors(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.UpdateVectors.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            try updateVectors(body, collection: name, store: store)
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    func updateVectors(_ body: Qdrant.UpdateVectors, collection name: String, store: CollectionStore) throws {
        let converter = PointConverter(
            collection: name,
            parameters: try support.registry.vectorParameters(name),
            store: store,
            encoder: support.options.documentEncoder
        )
        var updates: [(id: PointID, vectors: [String: VectorValue])] = []
        for (index, point) in body.points.enumerated() {
            updates.append((point.id, try converter.vectors(point.vector, path: "points[\(index)].vector")))
        }
        try support.run { () throws(TesseraError) in try store.updateVectors(updates) }
    }

    /// Qdrant's `delete_vectors`: the named vector fields are removed from the selected points.
    @Sendable func deleteVectors(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.DeleteVectors.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            try deleteVectors(body, store: store)
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    func deleteVectors(_ body: Qdrant.DeleteVectors, store: CollectionStore) throws {
        let ids = try self.ids(body.selector, in: store)
        try support.run { () throws(TesseraError) in try store.deleteVectors(ids: ids, fields: body.fields) }
    }

    @Sendable func batch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.BatchUpdate.self) { body in
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            for operation in body.operations {
                switch operation {
                case .upsert(let points): try upsert(points, collection: name, store: store)
                case .delete(let points): try delete(points.selector, store: store)
                case .setPayload(let set): try updatePayload(set.update(overwrite: false), set.selector, store: store)
                case .overwritePayload(let set):
                    try updatePayload(set.update(overwrite: true), set.selector, store: store)
                case .deletePayload(let keys): try updatePayload(.delete(keys.keys), keys.selector, store: store)
                case .clearPayload(let clear): try updatePayload(.clear, clear.selector, store: store)
                case .updateVectors(let update): try updateVectors(update, collection: name, store: store)
                case .deleteVectors(let removal): try deleteVectors(removal, store: store)
                }
            }
            return ServerResponse.ok(body.operations.map { _ in Qdrant.UpdateResult() }, since: start)
        }
    }

    @Sendable func get(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.PointRequest.self) { body in
            let start = ContinuousClock.now
            let (store, parameters) = try support.storeWithParameters(context)
            let selection = ReadSelection(payload: body.withPayload, vectors: body.withVector)
            let records = try support.run { () throws(TesseraError) in
                try store.get(ids: body.ids, withPayload: selection.withPayload, withVectors: selection.withVectors)
            }
            return ServerResponse.ok(records.map { selection.record($0, parameters: parameters) }, since: start)
        }
    }

    @Sendable func getOne(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let (store, parameters) = try support.storeWithParameters(context)
            guard let text = context.parameters.get("id") else { throw APIError(.badRequest, "missing point id") }
            let id =
                try UInt64(text).map { PointID.integer($0) }
                ?? RequestSupport.decode(PointID.self, .string(text))
            let records = try support.run { () throws(TesseraError) in
                try store.get(ids: [id], withPayload: true, withVectors: true)
            }
            guard let found = records.first else {
                throw APIError(.notFound, "Not found: Point with id \(id) does not exists!")
            }
            let selection = ReadSelection(payload: nil, vectors: .flag(true))
            return ServerResponse.ok(selection.record(found, parameters: parameters), since: start)
        }
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.DeletePoints.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            try delete(body.selector, store: store)
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    func delete(_ selector: Qdrant.PointsSelector, store: CollectionStore) throws {
        switch try filterOrIDs(selector) {
        case .ids(let ids): _ = try support.run { () throws(TesseraError) in try store.delete(ids: ids) }
        case .filter(let filter): _ = try support.run { () throws(TesseraError) in try store.delete(filter: filter) }
        }
    }

    @Sendable func scroll(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.ScrollRequest.self) { body in
            let start = ContinuousClock.now
            let (store, parameters) = try support.storeWithParameters(context)
            let filter = try body.filter.map(Self.filter)
            let selection = ReadSelection(payload: body.withPayload, vectors: body.withVector)
            if let order = body.orderBy {
                let entries = try support.run { () throws(TesseraError) in
                    try store.scroll(
                        orderedBy: order,
                        filter: filter,
                        limit: body.limit ?? 10,
                        withPayload: selection.withPayload,
                        withVectors: selection.withVectors
                    )
                }
                let points = entries.map { entry in
                    var record = selection.record(entry.record, parameters: parameters)
                    record.orderValue = entry.orderValue
                    return record
                }
                return ServerResponse.ok(Qdrant.ScrollResult(points: points, nextPageOffset: nil), since: start)
            }
            let page = try support.run { () throws(TesseraError) in
                try store.scroll(
                    filter: filter,
                    limit: body.limit ?? 10,
                    offset: body.offset,
                    withPayload: selection.withPayload,
                    withVectors: selection.withVectors
                )
            }
            let result = Qdrant.ScrollResult(
                points: page.records.map { selection.record($0, parameters: parameters) },
                nextPageOffset: page.nextPageOffset
            )
            return ServerResponse.ok(result, since: start)
        }
    }

    @Sendable func count(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.CountRequest.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            let filter = try body.filter.map(Self.filter)
            return ServerResponse.ok(Qdrant.CountResult(count: store.count(filter: filter)), since: start)
        }
    }

    func payload(_ request: Request, _ context: BasicRequestContext, overwrite: Bool) async throws -> Response {
        try await support.serve(request, as: Qdrant.SetPayload.self) { body in
            try updatePayload(body.update(overwrite: overwrite), selector: body.selector, context)
        }
    }

    @Sendable func deletePayload(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.DeletePayload.self) { body in
            try updatePayload(.delete(body.keys), selector: body.selector, context)
        }
    }

    @Sendable func clearPayload(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.ClearPayload.self) { body in
            try updatePayload(.clear, selector: body.selector, context)
        }
    }

    /// Applies a payload update to the points a selector names (ids, or every point passing a filter).
    func updatePayload(
        _ update: PayloadUpdate,
        selector: Qdrant.PointsSelector,
        _ context: BasicRequestContext
    ) throws -> Response {
        let start = ContinuousClock.now
        let (_, store) = try support.store(context)
        try updatePayload(update, selector, store: store)
        return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
    }

    func updatePayload(_ update: PayloadUpdate, _ selector: Qdrant.PointsSelector, store: CollectionStore) throws {
        let ids = try self.ids(selector, in: store)
        try support.run { () throws(TesseraError) in try store.updatePayload(update, ids: ids) }
    }

    /// The ids a selector names: its list, or every stored point passing its filter.
    func ids(_ selector: Qdrant.PointsSelector, in store: CollectionStore) throws -> [PointID] {
        switch try filterOrIDs(selector) {
        case .ids(let given): return given
        case .filter(let filter):
            var ids: [PointID] = []
            var offset: PointID?
            repeat {
                let page = try support.run { () throws(TesseraError) in
                    try store.scroll(filter: filter, limit: 1000, offset: offset, withPayload: false)
                }
                ids += page.records.map(\.id)
                offset = page.nextPageOffset
            } while offset != nil
            return ids
        }
    }

    enum Selection {
        case ids([PointID])
        case filter(Filter)
    }

    func filterOrIDs(_ selector: Qdrant.PointsSelector) throws -> Selection {
        switch selector {
        case .ids(let ids): .ids(ids)
        case .filter(let filter): .filter(try Self.filter(filter))
        }
    }

    /// The library's filter of a request's `filter`.
    static func filter(_ filter: Qdrant.Filter) throws -> Filter {
        do {
            return try filter.filter()
        } catch {
            throw APIError(.badRequest, "Format error in JSON body: filter: \(error.message)")
        }
    }
}

/// What a read returns of each point: `with_payload` (all by default, or some keys) and `with_vector`.
struct ReadSelection {
    var withPayload: Bool
    var payloadSelector: PayloadSelector?
    /// The vector fields to return: `nil` for none, `[]` for all.
    var vectorFields: [String]?

    init(payload: Qdrant.WithPayload?, vectors: Qdrant.WithVector?) {
        withPayload = payload?.included ?? true
        payloadSelector = payload?.selector
        vectorFields = vectors?.fields
    }

    var withVectors: Bool { vectorFields != nil }

    func record(_ record: Record, parameters: [String: VectorParameters]) -> Qdrant.Record {
        var payload = record.payload
        if let selector = payloadSelector, let whole = payload { payload = selector.apply(to: whole) }
        var vectors = record.vectors
        if let names = vectorFields, !names.isEmpty { vectors = vectors?.filter { names.contains($0.key) } }
        return Qdrant.Record(
            id: record.id,
            payload: payload,
            vector: vectors.map { QdrantJSON.json($0, parameters: parameters) }
        )
    }
}
