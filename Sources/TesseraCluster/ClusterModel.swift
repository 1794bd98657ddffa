import Foundation
public import NIOHTTP1
public import Tessera

/// A node as it registers itself in etcd (under its lease: the key disappears when the node stops renewing).
public struct NodeRecord: Sendable, Equatable {
    /// The node's id (`--node-id`), Qdrant's peer id.
    public var id: UInt64
    /// Where other nodes reach its REST API (`--advertise`).
    public var url: HTTPEndpoint

    var json: JSONValue { ["id": .unsigned(id), "url": .string(url.description)] }

    init(id: UInt64, url: HTTPEndpoint) {
        self.id = id
        self.url = url
    }

    init?(_ value: JSONValue) {
        guard let object = value.objectValue, let id = object["id"].flatMap(ClusterKeys.unsigned),
            let text = object["url"]?.stringValue, let url = try? HTTPEndpoint(parsing: text)
        else { return nil }
        self.init(id: id, url: url)
    }
}

/// A replica's state, with Qdrant's names.
public enum ReplicaState: String, Sendable {
    /// Up to date: takes writes and serves reads.
    case active = "Active"
    /// Catching up (a recovery or a transfer): takes writes, serves no reads.
    case partial = "Partial"
    /// Missed a write (or its node was down when one was acknowledged): takes nothing until it has recovered.
    case dead = "Dead"
}

/// A sharded collection as etcd holds it: the create request's configuration and where each shard lives.
public struct CollectionRecord: Sendable, Equatable {
    /// The collection's name.
    public var name: String
    /// The create request's body less the cluster's fields: each shard is created with it.
    public var configuration: JSONObject
    /// The shard count (Qdrant's `shard_number`).
    public var shardNumber: Int
    /// The replicas wanted per shard (Qdrant's `replication_factor`).
    public var replicationFactor: Int
    /// The replicas that must have made a write durable before it is acknowledged (Qdrant's
    /// `write_consistency_factor`).
    public var writeConsistencyFactor: Int
    /// The nodes holding each shard, by shard.
    public var placement: [[UInt64]]
    /// The changes made to every shard since it was created (payload indexes, parameters), in order: a replica
    /// created later makes them too.
    public var schemaChanges: [SchemaChange] = []

    var json: JSONValue {
        [
            "schema_changes": .array(schemaChanges.map(\.json)),
            "name": .string(name), "configuration": .object(configuration),
            "shard_number": .integer(Int64(shardNumber)), "replication_factor": .integer(Int64(replicationFactor)),
            "write_consistency_factor": .integer(Int64(writeConsistencyFactor)),
            "placement": .array(placement.map { .array($0.map { .unsigned($0) }) }),
        ]
    }

    init(
        name: String,
        configuration: JSONObject,
        shardNumber: Int,
        replicationFactor: Int,
        writeConsistencyFactor: Int,
        placement: [[UInt64]]
    ) {
        self.name = name
        self.configuration = configuration
        self.shardNumber = shardNumber
        self.replicationFactor = replicationFactor
        self.writeConsistencyFactor = writeConsistencyFactor
        self.placement = placement
    }

    init?(_ value: JSONValue) {
        guard let object = value.objectValue, let name = object["name"]?.stringValue,
            let configuration = object["configuration"]?.objectValue,
            let shards = object["shard_number"]?.intValue, let replication = object["replication_factor"]?.intValue,
            let consistency = object["write_consistency_factor"]?.intValue,
            let placement = object["placement"]?.arrayValue
        else { return nil }
        self.init(
            name: name,
            configuration: configuration,
            shardNumber: shards,
            replicationFactor: replication,
            writeConsistencyFactor: consistency,
            placement: placement.map { ($0.arrayValue ?? []).compactMap(ClusterKeys.unsigned) }
        )
        schemaChanges = (object["schema_changes"]?.arrayValue ?? []).compactMap(SchemaChange.init)
    }

    /// The name of a shard's local collection on the nodes holding it.
    public func shardCollection(_ shard: Int) -> String { ClusterKeys.shardCollection(name, shard) }
}

/// A change to a collection's shards other than to its points: `PATCH /collections/{name}`, `PUT …/index`,
/// `DELETE …/index/{field}`.
public struct SchemaChange: Sendable, Equatable {
    /// The method.
    public var method: HTTPMethod
    /// The path after `/collections/{name}` (empty, `/index`, `/index/{field}`).
    public var suffix: String
    /// The body.
    public var body: [UInt8]

    var json: JSONValue {
        [
            "method": .string(method.rawValue), "suffix": .string(suffix),
            "body": .string(String(decoding: body, as: UTF8.self)),
        ]
    }

    init(method: HTTPMethod, suffix: String, body: [UInt8]) {
        self.method = method
        self.suffix = suffix
        self.body = body
    }

    init?(_ value: JSONValue) {
        guard let object = value.objectValue, let method = object["method"]?.stringValue,
            let suffix = object["suffix"]?.stringValue, let body = object["body"]?.stringValue
        else { return nil }
        self.init(method: HTTPMethod(rawValue: method), suffix: suffix, body: Array(body.utf8))
    }
}

/// The deterministic placement of a new collection's replicas.
///
/// Nodes alive when the collection is created are sorted by id, `n₀ … n_{m−1}`; replica `r` of shard `s` goes to
/// `n_{(s + r) mod m}`. Each shard's replicas are on distinct nodes (so `replication_factor ≤ m`), consecutive
/// shards start on consecutive nodes, and every node holds `S·R/m` replicas when `S` is a multiple of `m`.
public enum Placement {
    /// The nodes of every shard.
    /// - Throws: ``ClusterError`` when there are fewer live nodes than replicas per shard.
    public static func place(shards: Int, replicas: Int, nodes: [UInt64]) throws(ClusterError) -> [[UInt64]] {
        let nodes = nodes.sorted()
        guard shards >= 1 else { throw ClusterError("shard_number must be at least 1, not \(shards)") }
        guard replicas >= 1 else { throw ClusterError("replication_factor must be at least 1, not \(replicas)") }
        guard replicas <= nodes.count else {
            throw ClusterError(
                "replication_factor \(replicas) needs \(replicas) live nodes; the cluster has \(nodes.count)"
            )
        }
        return (0..<shards).map { shard in (0..<replicas).map { nodes[(shard + $0) % nodes.count] } }
    }

    /// The shard a point belongs to: `hash(id) mod shards`, the hash being 64-bit FNV-1a over the id's bytes (an
    /// integer id's 8 bytes little-endian, a UUID's 16 bytes), so that every node routes a point alike.
    public static func shard(of id: PointID, shards: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        switch id {
        case .integer(let value):
            for shift in stride(from: 0, to: 64, by: 8) { mix(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        case .uuid(let uuid):
            withUnsafeBytes(of: uuid.uuid) { for byte in $0 { mix(byte) } }
        }
        return Int(hash % UInt64(shards))
    }
}

/// etcd's keys of a cluster, all under `/tessera/`.
enum ClusterKeys {
    static let root = "/tessera/"
    static let nodes = root + "nodes/"
    static let collections = root + "collections/"
    static let replicas = root + "replicas/"

    static func node(_ id: UInt64) -> String { nodes + String(id) }
    static func collection(_ name: String) -> String { collections + name }
    static func replica(_ collection: String, _ shard: Int, _ node: UInt64) -> String {
        replicas + "\(collection)/\(shard)/\(node)"
    }

    /// The suffix of shard collections: a user's collection name may not end with it in a cluster.
    static let shardMarker = "__shard"

    static func shardCollection(_ name: String, _ shard: Int) -> String { "\(name)\(shardMarker)\(shard)" }

    /// The collection and shard of a shard collection's name.
    static func parseShardCollection(_ local: String) -> (collection: String, shard: Int)? {
        guard let range = local.range(of: shardMarker, options: .backwards),
            let shard = Int(local[range.upperBound...]), shard >= 0
        else { return nil }
        return (String(local[..<range.lowerBound]), shard)
    }

    static func unsigned(_ value: JSONValue) -> UInt64? {
        switch value {
        case .integer(let number): return number >= 0 ? UInt64(number) : nil
        case .unsigned(let number): return number
        case .string(let text): return UInt64(text)
        default: return nil
        }
    }
}
