import Foundation
import HTTPTypes
import Hummingbird
import Tessera
import TesseraQdrant

/// The routes of collections: list, create, describe, delete, exists, and their payload indexes.
struct CollectionsController: Controller {
    let support: RequestSupport

    /// Adds the routes, relative to `/collections`.
    func addRoutes(to routes: RouteCollection<BasicRequestContext>) {
        routes.get("", use: list)
        routes.post("aliases", use: updateAliases)
        routes.get(":name/aliases", use: collectionAliases)
        routes.put(":name", use: create)
        routes.get(":name", use: info)
        routes.patch(":name", use: update)
        routes.delete(":name", use: delete)
        routes.get(":name/exists", use: exists)
        routes.put(":name/index", use: createIndex)
        routes.delete(":name/index/:field", use: deleteIndex)
        routes.post(":name/facet", use: facet)
        routes.get(":name/cluster", use: clusterInfo)
        routes.post(":name/cluster", use: updateCluster)
    }

    /// `GET /collections/{name}/cluster` on a single node: one local shard holding every point, as Qdrant
    /// answers outside distributed mode.
    @Sendable func clusterInfo(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            let info: JSONValue = [
                "peer_id": 0, "shard_count": 1,
                "local_shards": [["shard_id": 0, "points_count": .integer(Int64(store.count())), "state": "Active"]],
                "remote_shards": [], "shard_transfers": [],
            ]
            return ServerResponse.ok(info, since: start)
        }
    }

    /// `POST /collections/{name}/cluster` on a single node: refused, as Qdrant refuses it outside distributed
    /// mode.
    @Sendable func updateCluster(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try support.store(context)
        throw APIError(.badRequest, "Bad request: Distributed mode disabled (start tessera serve with --cluster)")
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            return ServerResponse.ok(Qdrant.CollectionsResponse(names: support.registry.names()), since: start)
        }
    }

    @Sendable func updateAliases(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.ChangeAliases.self) { body in
            let start = ContinuousClock.now
            try support.registry.updateAliases(body.changes)
            return ServerResponse.ok(true, since: start)
        }
    }

    @Sendable func collectionAliases(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let (name, _) = try support.store(context)
            let aliases = support.registry.aliases().filter { $0.collection == name }
            return ServerResponse.ok(Qdrant.AliasesResponse(aliases), since: start)
        }
    }

    @Sendable func create(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.CreateCollection.self) { body in
            let start = ContinuousClock.now
            let name = try support.name(context)
            var fields: [String: VectorParameters] =
                switch body.vectors {
                case .unnamed(let parameters): ["default": VectorParameters(parameters, unnamed: true)]
                case .named(let named): named.mapValues { VectorParameters($0, unnamed: false) }
                }
            for (field, modifier) in body.sparseVectors {
                fields[field] = VectorParameters(
                    size: 0,
                    distance: .dot,
                    multivector: false,
                    hnswM: nil,
                    sparse: modifier
                )
            }
            try support.registry.create(name, fields: fields, optimizers: body.optimizersConfig)
            return ServerResponse.ok(true, since: start)
        }
    }

    @Sendable func info(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let (name, store) = try support.store(context)
            let all = try support.registry.vectorParameters(name)
            let parameters = all.filter { $0.value.sparse == nil }
            // An unnamed vector is described bare, as Qdrant does; named vectors as a map.
            let vectors: Qdrant.VectorsConfig =
                if parameters.count == 1, let only = parameters.first?.value, only.unnamed {
                    .unnamed(only.wire)
                } else {
                    .named(parameters.mapValues(\.wire))
                }
            let payloadIndexes = try support.run { () throws(TesseraError) in try store.payloadIndexes() }
            var info = Qdrant.CollectionInfo(
                vectors: vectors,
                pointsCount: store.count(),
                payloadIndexes: payloadIndexes
            )
            info.sparseVectors = all.compactMapValues(\.sparse)
            (info.status, info.optimizerError) = support.registry.optimizer.status(of: name, store: store)
            info.segmentsCount = store.segments().count + 1
            info.optimizerSettings = try store.optimizerSettings()
            info.indexedVectorsCount = store.indexedPointCount()
            return ServerResponse.ok(info, since: start)
        }
    }

    /// `PATCH /collections/{name}`: Qdrant's update of the optimiser's settings.
    @Sendable func update(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.UpdateCollection.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            if let given = body.optimizersConfig {
                try store.setOptimizerSettings(try given.applied(to: try store.optimizerSettings()))
            }
            return ServerResponse.ok(true, since: start)
        }
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            return ServerResponse.ok(try support.registry.delete(try support.name(context)), since: start)
        }
    }

    @Sendable func exists(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let name = try support.name(context)
            try CollectionRegistry.checkName(name)
            return ServerResponse.ok(Qdrant.CollectionExistence(exists: support.registry.exists(name)), since: start)
        }
    }

    /// `PUT /collections/{name}/index`: declares a payload index, built before the answer (`wait` is accepted;
    /// the operation has always completed).
    @Sendable func createIndex(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.CreateFieldIndex.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            try support.run { () throws(TesseraError) in
                try store.createPayloadIndex(field: body.fieldName, type: body.fieldSchema)
            }
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    /// `DELETE /collections/{name}/index/{field_name}`: removes a payload index; removing one that does not exist
    /// succeeds, as in Qdrant.
    @Sendable func deleteIndex(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            guard let raw = context.parameters.get("field") else { throw APIError(.badRequest, "missing field name") }
            let field = raw.removingPercentEncoding ?? raw
            try support.run { () throws(TesseraError) in _ = try store.deletePayloadIndex(field: field) }
            return ServerResponse.ok(Qdrant.UpdateResult(), since: start)
        }
    }

    /// Qdrant's `facet`: the library counts the values at a payload key.
    @Sendable func facet(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.FacetRequest.self) { body in
            let start = ContinuousClock.now
            let (_, store) = try support.store(context)
            let filter = try body.filter.map(PointsController.filter)
            let hits = try support.run { () throws(TesseraError) in
                try store.facet(key: body.key, filter: filter, limit: body.limit)
            }
            return ServerResponse.ok(Qdrant.FacetResult(hits), since: start)
        }
    }
}
