import Foundation
public import NIOHTTP1
import Synchronization
import Tessera
import TesseraQdrant

/// A request as the cluster layer sees it.
public struct ClusterRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The path, without the query.
    public var path: String
    /// The query's parameters.
    public var query: [String: String]
    /// The body.
    public var body: [UInt8]

    /// Creates a request.
    public init(method: HTTPMethod, path: String, query: [String: String], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
    }
}

/// An answer in Qdrant's envelope.
public struct ClusterReply: Sendable {
    /// The status.
    public var status: Int
    /// The JSON body.
    public var body: [UInt8]
}

/// The scatter-gather of a node: a request naming a sharded collection is answered by sending its parts to the
/// shards' replicas and merging what they answer.
///
/// - Writes: each point goes to shard `hash(id) mod N` (``Placement/shard(of:shards:)``); a shard's part is sent to
///   every live replica that takes writes (Active and Partial) and acknowledged once `write_consistency_factor`
///   active replicas have made it durable (`wait=true` on each); a replica that misses a write is marked Dead
///   before the answer, and recovers. A write choosing its points by a filter goes to every shard.
/// - Reads go to one Active replica per shard on a live node, the one with the fewest reads in flight from this
///   node, with a deadline and a retry on the next replica. Nearest-neighbour results merge exactly (each shard
///   returns its best `offset + limit`); fusion (`rrf`, `dbsf`) is computed here over the merged prefetch lists,
///   so ranks are the collection's, not a shard's.
public struct ClusterRouter: Sendable {
    /// Marks a request between nodes: it names a shard collection and is answered locally.
    public static let shardHeader = "x-tessera-shard"
    /// Marks a recovery's copy into the shard it is filling: applied at once, never held back, its vectors as
    /// the source replica stores them.
    public static let transferHeader = "x-tessera-transfer"
    /// Marks a recovery's replay of the writes it held back: applied at once, as a client's write.
    public static let replayHeader = "x-tessera-replay"

    /// The node.
    public let node: ClusterNode

    /// Creates the router of a node.
    public init(node: ClusterNode) {
        self.node = node
    }

    // MARK: Requests between nodes

    /// For a request between nodes: a write to a shard replica that is catching up is held back and answered at
    /// once (it is applied after the copy, in order). Returns `nil` when the local server should answer.
    public func holdBack(_ request: ClusterRequest, transfer: Bool) -> ClusterReply? {
        guard !transfer, request.path.hasPrefix("/collections/") else { return nil }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 3, parts[2] == "points", Self.isWrite(request.method, parts.dropFirst(3)) else {
            return nil
        }
        guard let transfer = node.transfers.withLock({ $0[String(parts[1])] }) else { return nil }
        let filtered: Bool
        if let json = try? JSONValue.parse(utf8: request.body), let object = json.objectValue {
            filtered = object["points"] == nil && object["batch"] == nil
        } else {
            filtered = false
        }
        let query =
            request.query.isEmpty ? "" : "?" + request.query.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        let held = transfer.state.withLock { state -> Bool in
            guard state.buffering else { return false }
            state.pending.append(.init(method: request.method, path: request.path + query, body: request.body))
            if filtered { state.dirty = true }
            return true
        }
        guard held else { return nil }
        return Self.ok(["operation_id": 0, "status": "acknowledged"], since: .now)
    }

    static func isWrite(_ method: HTTPMethod, _ rest: ArraySlice<Substring>) -> Bool {
        let tail = rest.joined(separator: "/")
        switch (method, tail) {
        case (.PUT, ""), (.POST, "delete"), (.POST, "payload"), (.PUT, "payload"), (.POST, "payload/delete"),
            (.POST, "payload/clear"), (.PUT, "vectors"), (.POST, "vectors/delete"), (.POST, "batch"):
            return true
        default: return false
        }
    }

    // MARK: Requests from clients

    /// Answers a client's request when it is the cluster's (the cluster's own routes, the collection list, a
    /// sharded collection); `nil` when the local server should answer.
    public func handle(_ request: ClusterRequest) async -> ClusterReply? {
        let start = ContinuousClock.now
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        do throws(ClusterError) {
            if parts == ["cluster"], request.method == .GET { return Self.ok(clusterInfo(), since: start) }
            if parts == ["cluster", "writes"], request.method == .GET {
                let revision = request.query["revision"].flatMap { Int64($0) } ?? 0
                return Self.ok(["settled": .bool(node.writesSettled(since: revision))], since: start)
            }
            if parts == ["collections"], request.method == .GET {
                let names = node.view.withLock { $0.collections.keys.sorted() }
                return Self.ok(
                    ["collections": .array(names.map { ["name": .string($0)] })],
                    since: start
                )
            }
            if parts == ["aliases"] || parts == ["collections", "aliases"] {
                throw ClusterError("aliases are not supported in a cluster yet")
            }
            guard parts.count >= 2, parts[0] == "collections" else { return nil }
            let name = parts[1]
            let rest = Array(parts.dropFirst(2))
            if ClusterKeys.parseShardCollection(name) != nil {
                throw ClusterError("Not found: Collection `\(name)` doesn't exist!", status: 404)
            }
            guard node.view.withLock({ $0.loaded }) else {
                throw ClusterError("this node has not read the cluster's state yet", status: 503)
            }
            if rest.isEmpty, request.method == .PUT {
                return Self.ok(try await createCollection(name, request.body), since: start)
            }
            guard let record = node.view.withLock({ $0.collections[name] }) else {
                if rest == ["exists"] { return Self.ok(["exists": false], since: start) }
                throw ClusterError("Not found: Collection `\(name)` doesn't exist!", status: 404)
            }
            return Self.ok(try await collectionRequest(record, rest, request), since: start)
        } catch {
            return Self.error(error, since: start)
        }
    }

    private func collectionRequest(
        _ record: CollectionRecord,
        _ rest: [String],
        _ request: ClusterRequest
    ) async throws(ClusterError) -> JSONValue {
        let body = try JSONValue.body(request.body)
        let route = request.method.rawValue + " " + rest.joined(separator: "/")
        let suffix = "/" + rest.joined(separator: "/")
        switch route {
        case "GET ": return try await collectionInfo(record)
        case "DELETE ": return try await deleteCollection(record)
        case "GET exists": return ["exists": true]
        case "GET cluster": return try await collectionCluster(record)
        case "POST cluster": return try await updateCluster(record, body)
        case "PATCH ", "PUT index": return try await schemaChange(record, request.method, rest, request.body)
        case _ where request.method == .DELETE && rest.count == 2 && rest[0] == "index":
            return try await schemaChange(record, request.method, rest, request.body)
        case "PUT points", "POST points/delete", "POST points/payload", "PUT points/payload",
            "POST points/payload/delete", "POST points/payload/clear", "PUT points/vectors",
            "POST points/vectors/delete":
            return try await write(record, request.method, suffix, body)
        case "POST points/batch": return try await batch(record, body)
        case "POST points": return try await retrieve(record, body)
        case _ where request.method == .GET && rest.count == 2 && rest[0] == "points":
            return try await retrieveOne(record, rest[1])
        case "POST points/count": return try await count(record, body)
        case "POST points/scroll": return try await scroll(record, body)
        case "POST points/query": return ["points": .array(try await query(record, body, raw: request.body))]
        case "POST points/query/batch":
            guard let searches = body.objectValue?["searches"]?.arrayValue else {
                throw ClusterError("Format error in JSON body: missing field `searches`")
            }
            var answers: [JSONValue] = []
            for search in searches { answers.append(["points": .array(try await query(record, search))]) }
            return .array(answers)
        default:
            throw ClusterError(
                "\(request.method.rawValue) /collections/\(record.name)\(rest.isEmpty ? "" : suffix) is not "
                    + "supported on a sharded collection yet (query/groups, search/matrix, facet, "
                    + "snapshots and aliases are answered by single-node collections only)"
            )
        }
    }

    /// `POST …/points/batch`: each operation in order, as its own route would run it, one result each.
    private func batch(_ record: CollectionRecord, _ body: JSONValue) async throws(ClusterError) -> JSONValue {
        guard let operations = body.objectValue?["operations"]?.arrayValue else {
            throw ClusterError("Format error in JSON body: missing field `operations`")
        }
        let routes: [String: (HTTPMethod, String)] = [
            "upsert": (.PUT, "/points"), "delete": (.POST, "/points/delete"), "set_payload": (.POST, "/points/payload"),
            "overwrite_payload": (.PUT, "/points/payload"), "delete_payload": (.POST, "/points/payload/delete"),
            "clear_payload": (.POST, "/points/payload/clear"), "update_vectors": (.PUT, "/points/vectors"),
            "delete_vectors": (.POST, "/points/vectors/delete"),
        ]
        var results: [JSONValue] = []
        for (index, operation) in operations.enumerated() {
            guard let object = operation.objectValue, object.count == 1, let (name, fields) = object.first,
                let (method, suffix) = routes[name]
            else {
                throw ClusterError(
                    "Format error in JSON body: operations[\(index)] must be one of "
                        + routes.keys.sorted().joined(separator: ", ")
                )
            }
            results.append(try await write(record, method, suffix, fields))
        }
        return .array(results)
    }

    // MARK: Collections

    private func createCollection(_ name: String, _ bytes: [UInt8]) async throws(ClusterError) -> JSONValue {
        do { try CollectionCatalog.validateName(name) } catch {
            throw ClusterError("Validation error in path parameters: [name: \(error.message)]")
        }
        guard var configuration = try JSONValue.body(bytes).objectValue else {
            throw ClusterError("Format error in JSON body: a collection's configuration is an object")
        }
        let live = node.view.withLock { Array($0.nodes.keys) }
        func number(_ field: String, _ fallback: Int) throws(ClusterError) -> Int {
            guard let value = configuration.removeValue(forKey: field), value != .null else { return fallback }
            guard let number = value.intValue, number >= 1 else {
                throw ClusterError("Validation error in JSON body: [\(field): must be an integer of at least 1]")
            }
            return number
        }
        let shards = try number("shard_number", live.count)
        let replicas = try number("replication_factor", 1)
        let consistency = try number("write_consistency_factor", 1)
        if let method = configuration.removeValue(forKey: "sharding_method"), method != .null,
            method != .string("auto")
        {
            throw ClusterError("sharding_method \(method.jsonText) is not supported: points are placed by id")
        }
        guard consistency <= replicas else {
            throw ClusterError(
                "write_consistency_factor \(consistency) is more than the replication_factor \(replicas): no write "
                    + "could be acknowledged"
            )
        }
        guard shards <= 1024 else { throw ClusterError("shard_number \(shards) is more than 1024") }
        let placement = try Placement.place(shards: shards, replicas: replicas, nodes: live)
        let record = CollectionRecord(
            name: name,
            configuration: configuration,
            shardNumber: shards,
            replicationFactor: replicas,
            writeConsistencyFactor: consistency,
            placement: placement
        )
        // The configuration is checked here first: a bad one is refused before anything is placed.
        do {
            _ = try JSONValueDecoder().decode(Qdrant.CreateCollection.self, from: .object(configuration))
        } catch {
            throw ClusterError("Format error in JSON body: \(error.message)")
        }
        let created = try await node.etcd.transaction(
            when: [.absent(ClusterKeys.collection(name))],
            then: [
                .delete(key: ClusterKeys.replicas + name + "/", prefix: true),
                .put(key: ClusterKeys.collection(name), value: record.json.jsonBytes),
            ]
        )
        guard created else { throw ClusterError("Wrong input: Collection `\(name)` already exists!", status: 409) }
        // Answered once every replica exists (each node creates its own and marks it Active).
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let ready = node.view.withLock { view in
                placement.enumerated().allSatisfy { shard, nodes in
                    nodes.allSatisfy { view.state(name, shard, $0) == .active || view.nodes[$0] == nil }
                }
            }
            if ready { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterError("collection \(name) was placed, but not every replica was created within 30 s", status: 503)
    }

    private func deleteCollection(_ record: CollectionRecord) async throws(ClusterError) -> JSONValue {
        let deleted = try await node.etcd.transaction(
            when: [],
            then: [
                .delete(key: ClusterKeys.collection(record.name)),
                .delete(key: ClusterKeys.replicas + record.name + "/", prefix: true),
            ]
        )
        return .bool(deleted)
    }

    /// Sends a schema change to every replica and records it for replicas made later.
    private func schemaChange(
        _ record: CollectionRecord,
        _ method: HTTPMethod,
        _ rest: [String],
        _ body: [UInt8]
    ) async throws(ClusterError) -> JSONValue {
        let suffix = rest.isEmpty ? "" : "/" + rest.joined(separator: "/")
        var body = body
        if method == .PATCH, var object = try JSONValue.body(body).objectValue,
            let params = object["params"]?.objectValue
        {
            let allowed: Set<String> = ["replication_factor", "write_consistency_factor"]
            if let other = params.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw ClusterError(
                    "params.\(other) cannot be changed on a sharded collection (shard_number is fixed at creation; "
                        + "replication_factor and write_consistency_factor can)"
                )
            }
            func number(_ field: String) throws(ClusterError) -> Int? {
                guard let value = params[field], value != .null else { return nil }
                guard let number = value.intValue, number >= 1 else {
                    throw ClusterError(
                        "Validation error in JSON body: [params.\(field): must be an integer of at least 1]"
                    )
                }
                return number
            }
            try await changeReplication(
                record,
                factor: try number("replication_factor"),
                consistency: try number("write_consistency_factor")
            )
            object["params"] = nil
            if object.isEmpty { return true }
            body = JSONValue.object(object).jsonBytes
        }
        var last: JSONValue = true
        for shard in 0..<record.shardNumber {
            last = try await writeShard(record, shard, method, suffix, body)
        }
        // Recorded with a compare on the record's revision: a concurrent change is retried on the fresh record.
        for _ in 0..<10 {
            guard let current = try await node.etcd.get(ClusterKeys.collection(record.name)),
                let json = try? JSONValue.parse(utf8: current.value), var fresh = CollectionRecord(json)
            else { break }
            fresh.schemaChanges.append(SchemaChange(method: method, suffix: suffix, body: body))
            let stored = try await node.etcd.transaction(
                when: [.modRevision(ClusterKeys.collection(record.name), current.modRevision)],
                then: [.put(key: ClusterKeys.collection(record.name), value: fresh.json.jsonBytes)]
            )
            if stored { break }
        }
        return last
    }

    /// Qdrant's `PATCH` of `replication_factor` and `write_consistency_factor`: the record changes in one compare,
    /// each shard below the factor gets new replicas on the live nodes holding the fewest of this collection's
    /// (marked Partial: they catch up while queries and writes go on), and each shard above it drops replicas —
    /// on dead nodes first, then those not Active, then the highest node ids — never its last Active one.
    private func changeReplication(
        _ record: CollectionRecord,
        factor: Int?,
        consistency: Int?
    ) async throws(ClusterError) {
        let view = node.view.withLock { $0 }
        let live = view.nodes.keys.sorted()
        let wanted = factor ?? record.replicationFactor
        let required = consistency ?? record.writeConsistencyFactor
        guard wanted <= live.count else {
            throw ClusterError("replication_factor \(wanted) needs \(wanted) live nodes; the cluster has \(live.count)")
        }
        guard required <= wanted else {
            throw ClusterError(
                "write_consistency_factor \(required) is more than the replication_factor \(wanted): no write could "
                    + "be acknowledged"
            )
        }
        let name = record.name
        try await updatePlacement(name) { fresh in
            fresh.replicationFactor = wanted
            fresh.writeConsistencyFactor = required
            var operations: [EtcdOperation] = []
            var held: [UInt64: Int] = Dictionary(uniqueKeysWithValues: live.map { ($0, 0) })
            for nodes in fresh.placement { for holder in nodes where held[holder] != nil { held[holder]! += 1 } }
            for shard in fresh.placement.indices {
                while fresh.placement[shard].count < wanted {
                    let candidates = live.filter { !fresh.placement[shard].contains($0) }
                    guard let pick = candidates.min(by: { (held[$0]!, $0) < (held[$1]!, $1) }) else { break }
                    fresh.placement[shard].append(pick)
                    held[pick]! += 1
                    operations.append(
                        .put(
                            key: ClusterKeys.replica(name, shard, pick),
                            value: Array(ReplicaState.partial.rawValue.utf8)
                        )
                    )
                }
                while fresh.placement[shard].count > wanted {
                    func rank(_ holder: UInt64) -> (Int, UInt64) {
                        if view.nodes[holder] == nil { return (0, UInt64.max - holder) }
                        if view.state(name, shard, holder) != .active { return (1, UInt64.max - holder) }
                        return (2, UInt64.max - holder)
                    }
                    let active = fresh.placement[shard].filter {
                        view.nodes[$0] != nil && view.state(name, shard, $0) == .active
                    }
                    let droppable = fresh.placement[shard].filter { rank($0).0 < 2 || active.count > 1 }
                    guard let drop = droppable.min(by: { rank($0) < rank($1) }) else { break }
                    fresh.placement[shard].removeAll { $0 == drop }
                    operations.append(.delete(key: ClusterKeys.replica(name, shard, drop)))
                }
            }
            return operations
        }
    }

    private func collectionInfo(_ record: CollectionRecord) async throws(ClusterError) -> JSONValue {
        var points: Int64 = 0
        var indexed: Int64 = 0
        var segments: Int64 = 0
        var status = "green"
        var first: JSONObject?
        var schema: [String: (type: JSONValue, points: Int64)] = [:]
        for shard in 0..<record.shardNumber {
            let info = try await readShard(record, shard, .GET, "", body: [])
            guard let object = info.objectValue else { continue }
            if first == nil { first = object }
            points += Int64(object["points_count"]?.intValue ?? 0)
            indexed += Int64(object["indexed_vectors_count"]?.intValue ?? 0)
            segments += Int64(object["segments_count"]?.intValue ?? 0)
            let shardStatus = object["status"]?.stringValue ?? "green"
            let rank = ["green": 0, "grey": 1, "yellow": 2, "red": 3]
            if rank[shardStatus, default: 0] > rank[status, default: 0] { status = shardStatus }
            for (field, entry) in object["payload_schema"]?.objectValue ?? [:] {
                let count = Int64(entry.objectValue?["points"]?.intValue ?? 0)
                schema[field, default: (entry.objectValue?["data_type"] ?? .null, 0)].points += count
            }
        }
        var info = first ?? [:]
        info["status"] = .string(status)
        info["points_count"] = .integer(points)
        info["indexed_vectors_count"] = .integer(indexed)
        info["segments_count"] = .integer(segments)
        info["payload_schema"] = .object(
            JSONObject(schema.mapValues { ["data_type": $0.type, "points": .integer($0.points)] as JSONValue })
        )
        if var config = info["config"]?.objectValue, var params = config["params"]?.objectValue {
            params["shard_number"] = .integer(Int64(record.shardNumber))
            params["replication_factor"] = .integer(Int64(record.replicationFactor))
            params["write_consistency_factor"] = .integer(Int64(record.writeConsistencyFactor))
            config["params"] = .object(params)
            info["config"] = .object(config)
        }
        return .object(info)
    }

    // MARK: Cluster state

    /// `GET /cluster` in Qdrant's shape. The consensus is etcd's: `raft_info.commit` is the etcd revision this
    /// node has seen, and no Tessera node is a Raft leader.
    func clusterInfo() -> JSONValue {
        let view = node.view.withLock { $0 }
        let peers = JSONObject(
            view.nodes.values.map { (String($0.id), ["uri": .string($0.url.description + "/")] as JSONValue) }
        )
        return [
            "status": "enabled", "peer_id": .unsigned(node.id), "peers": .object(peers),
            "raft_info": [
                "term": 0, "commit": .integer(view.revision), "pending_operations": 0, "leader": nil,
                "role": "Follower", "is_voter": false,
            ],
            "consensus_thread_status": [
                "consensus_thread_status": .string(view.loaded ? "working" : "stopped"),
                "last_update": .string(ISO8601DateFormatter().string(from: Date())),
            ],
            "message_send_failures": [:],
        ]
    }

    /// `GET /collections/{name}/cluster` in Qdrant's shape: this node's shards (with point counts), the others'
    /// replicas, and the transfers under way (replicas catching up).
    private func collectionCluster(_ record: CollectionRecord) async throws(ClusterError) -> JSONValue {
        let view = node.view.withLock { $0 }
        var local: [JSONValue] = []
        var remote: [JSONValue] = []
        var transfers: [JSONValue] = []
        for (shard, nodes) in record.placement.enumerated() {
            let source = nodes.first { view.state(record.name, shard, $0) == .active }
            for holder in nodes {
                let state = view.state(record.name, shard, holder)
                let stateText: JSONValue = .string(
                    view.nodes[holder] == nil && state == .active ? "Dead" : state?.rawValue ?? "Initializing"
                )
                if holder == node.id {
                    var count: Int64 = 0
                    if let reply = try? await node.local(.GET, "/collections/\(record.shardCollection(shard))"),
                        let json = try? JSONValue.parse(utf8: reply.body)
                    {
                        count = Int64(json.objectValue?["result"]?.objectValue?["points_count"]?.intValue ?? 0)
                    }
                    local.append([
                        "shard_id": .integer(Int64(shard)), "points_count": .integer(count), "state": stateText,
                    ])
                } else {
                    remote.append([
                        "shard_id": .integer(Int64(shard)), "peer_id": .unsigned(holder), "state": stateText,
                    ])
                }
                if state == .partial, let source {
                    transfers.append([
                        "shard_id": .integer(Int64(shard)), "from": .unsigned(source), "to": .unsigned(holder),
                        "sync": false, "method": "stream_records",
                    ])
                }
            }
        }
        return [
            "peer_id": .unsigned(node.id), "shard_count": .integer(Int64(record.shardNumber)),
            "local_shards": .array(local), "remote_shards": .array(remote), "shard_transfers": .array(transfers),
        ]
    }

    /// `POST /collections/{name}/cluster`: Qdrant's `replicate_shard`, `move_shard` and `drop_replica`.
    private func updateCluster(
        _ record: CollectionRecord,
        _ body: JSONValue
    ) async throws(ClusterError)
        -> JSONValue
    {
        guard let object = body.objectValue, object.count == 1, let (operation, value) = object.first,
            let fields = value.objectValue
        else {
            throw ClusterError(
                "Format error in JSON body: expected one of replicate_shard, move_shard, drop_replica"
            )
        }
        func unsigned(_ field: String) throws(ClusterError) -> UInt64 {
            guard let number = fields[field].flatMap(ClusterKeys.unsigned) else {
                throw ClusterError("Format error in JSON body: \(operation).\(field) must be a peer or shard id")
            }
            return number
        }
        let shardID = try unsigned("shard_id")
        guard shardID < UInt64(record.shardNumber) else {
            throw ClusterError(
                "shard \(shardID) does not exist: \(record.name) has \(record.shardNumber) shards",
                status: 404
            )
        }
        let shard = Int(shardID)
        let view = node.view.withLock { $0 }
        switch operation {
        case "replicate_shard", "move_shard":
            if let method = fields["method"]?.stringValue, method != "stream_records" {
                throw ClusterError("transfer method '\(method)' is not supported: replicas copy by stream_records")
            }
            let from = try unsigned("from_peer_id")
            let to = try unsigned("to_peer_id")
            guard record.placement[shard].contains(from) else {
                throw ClusterError("peer \(from) holds no replica of shard \(shard)")
            }
            guard !record.placement[shard].contains(to) else {
                throw ClusterError("peer \(to) already holds a replica of shard \(shard)")
            }
            guard view.nodes[to] != nil else { throw ClusterError("peer \(to) is not a live node of the cluster") }
            let revision = try await updatePlacement(record.name) { fresh in
                fresh.placement[shard].append(to)
                return [.put(key: ClusterKeys.replica(record.name, shard, to), value: Array("Partial".utf8))]
            }
            if operation == "move_shard" {
                let name = record.name
                let router = self
                Task { await router.finishMove(name, shard, from: from, to: to, after: revision) }
            }
            return true
        case "drop_replica":
            let peer = try unsigned("peer_id")
            guard record.placement[shard].contains(peer) else {
                throw ClusterError("peer \(peer) holds no replica of shard \(shard)")
            }
            let othersActive = record.placement[shard].contains {
                $0 != peer && view.state(record.name, shard, $0) == .active
            }
            guard othersActive else {
                throw ClusterError("shard \(shard) has no other active replica: dropping this one would lose it")
            }
            try await dropReplica(record.name, shard, peer)
            return true
        default:
            throw ClusterError(
                "cluster operation '\(operation)' is not supported (replicate_shard, move_shard, drop_replica are)"
            )
        }
    }

    /// Drops the source replica of a move once the new one is active (the move is a replication followed by a
    /// drop; a move whose coordinator dies midway leaves one replica more, never one less).
    private func finishMove(_ name: String, _ shard: Int, from: UInt64, to: UInt64, after revision: Int64) async {
        let deadline = ContinuousClock.now + .seconds(3600)
        while ContinuousClock.now < deadline {
            // Until this node's view has the new placement, nothing is known; then a placement without the new
            // replica (dropped meanwhile) ends the move.
            let state = node.view.withLock { view -> ReplicaState?? in
                guard view.revision >= revision else { return .some(nil) }
                guard let record = view.collections[name], record.placement[shard].contains(to) else { return nil }
                return .some(view.state(name, shard, to))
            }
            guard let state else { return }
            if state == .active {
                try? await dropReplica(name, shard, from)
                return
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func dropReplica(_ name: String, _ shard: Int, _ peer: UInt64) async throws(ClusterError) {
        _ = try await updatePlacement(name) { fresh in
            fresh.placement[shard].removeAll { $0 == peer }
            return [.delete(key: ClusterKeys.replica(name, shard, peer))]
        }
    }

    /// Changes a collection's record with a compare on its revision (again on a concurrent change).
    /// - Returns: The etcd revision of the change.
    @discardableResult
    private func updatePlacement(
        _ name: String,
        _ change: (inout CollectionRecord) -> [EtcdOperation]
    ) async throws(ClusterError) -> Int64 {
        for _ in 0..<20 {
            guard let current = try await node.etcd.get(ClusterKeys.collection(name)),
                let json = try? JSONValue.parse(utf8: current.value), var record = CollectionRecord(json)
            else { throw ClusterError("Not found: Collection `\(name)` doesn't exist!", status: 404) }
            let extra = change(&record)
            let stored = try await node.etcd.transactionRevision(
                when: [.modRevision(ClusterKeys.collection(name), current.modRevision)],
                then: [.put(key: ClusterKeys.collection(name), value: record.json.jsonBytes)] + extra
            )
            if let stored { return stored }
        }
        throw ClusterError("the collection's placement kept changing; try again", status: 503)
    }

    // MARK: Envelopes

    static func ok(_ result: JSONValue, since start: ContinuousClock.Instant) -> ClusterReply {
        let body: JSONValue = ["result": result, "status": "ok", "time": .double(seconds(since: start))]
        return ClusterReply(status: 200, body: body.jsonBytes)
    }

    static func error(_ error: ClusterError, since start: ContinuousClock.Instant) -> ClusterReply {
        let body: JSONValue = ["status": ["error": .string(error.message)], "time": .double(seconds(since: start))]
        return ClusterReply(status: error.status, body: body.jsonBytes)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
