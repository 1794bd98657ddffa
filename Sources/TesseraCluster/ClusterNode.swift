import Foundation
public import Logging
import Metrics
import NIOHTTP1
import Synchronization
import Tessera

/// What `tessera serve --cluster` needs.
public struct ClusterOptions: Sendable {
    /// etcd's client URL.
    public var etcd: HTTPEndpoint
    /// This node's id (Qdrant's peer id), unique in the cluster.
    public var nodeID: UInt64
    /// Where the other nodes reach this node's REST API (`nil`: the address it listens on, with the port bound).
    public var advertise: HTTPEndpoint?
    /// The API key the nodes' REST APIs require, sent with every request between nodes.
    public var apiKey: String?
    /// The lease's time to live: a node that stops renewing it leaves the membership this long after.
    public var leaseTTL = 3
    /// The deadline of a read sent to one replica (then the next replica is tried).
    public var readTimeout: Duration = .seconds(5)
    /// The deadline of a write sent to a replica (then the replica is marked dead).
    public var writeTimeout: Duration = .seconds(30)

    /// Creates options.
    public init(etcd: HTTPEndpoint, nodeID: UInt64, advertise: HTTPEndpoint?, apiKey: String? = nil) {
        self.etcd = etcd
        self.nodeID = nodeID
        self.advertise = advertise
        self.apiKey = apiKey
    }
}

/// What a node knows of the cluster: etcd's keys under `/tessera/`, kept current by one watch.
struct ClusterView: Sendable {
    var nodes: [UInt64: NodeRecord] = [:]
    var collections: [String: CollectionRecord] = [:]
    /// Replica states by `collection/shard/node`.
    var replicas: [String: (state: ReplicaState, revision: Int64)] = [:]
    /// The etcd revision this view reflects.
    var revision: Int64 = 0
    /// Whether the first read of the state is done.
    var loaded = false

    func state(_ collection: String, _ shard: Int, _ node: UInt64) -> ReplicaState? {
        replicas["\(collection)/\(shard)/\(node)"]?.state
    }

    mutating func apply(_ event: EtcdEvent) {
        switch event {
        case .put(let kv): set(kv.key, kv.value, kv.modRevision)
        case .delete(let key, _): remove(key)
        }
    }

    mutating func set(_ key: String, _ value: [UInt8], _ revision: Int64) {
        if key.hasPrefix(ClusterKeys.nodes) {
            if let json = try? JSONValue.parse(utf8: value), let node = NodeRecord(json) { nodes[node.id] = node }
        } else if key.hasPrefix(ClusterKeys.collections) {
            if let json = try? JSONValue.parse(utf8: value), let record = CollectionRecord(json) {
                collections[record.name] = record
            }
        } else if key.hasPrefix(ClusterKeys.replicas) {
            let name = String(key.dropFirst(ClusterKeys.replicas.count))
            if let state = ReplicaState(rawValue: String(decoding: value, as: UTF8.self)) {
                replicas[name] = (state, revision)
            }
        }
    }

    mutating func remove(_ key: String) {
        if key.hasPrefix(ClusterKeys.nodes) {
            if let id = UInt64(key.dropFirst(ClusterKeys.nodes.count)) { nodes[id] = nil }
        } else if key.hasPrefix(ClusterKeys.collections) {
            collections[String(key.dropFirst(ClusterKeys.collections.count))] = nil
        } else if key.hasPrefix(ClusterKeys.replicas) {
            replicas[String(key.dropFirst(ClusterKeys.replicas.count))] = nil
        }
    }
}

/// A shard replica of this node catching up: writes sent to it meanwhile wait in order, and are applied once the
/// copy from a live replica is in.
final class ShardTransfer: Sendable {
    struct Pending: Sendable {
        var method: HTTPMethod
        var path: String
        var body: [UInt8]
    }

    struct State: Sendable {
        var buffering = true
        var pending: [Pending] = []
        /// A write chose its points by a filter: the copy may not reflect it in order, so the transfer runs again.
        var dirty = false
    }

    let state = Mutex(State())
}

/// One node of a cluster: its membership in etcd (a key under a lease, renewed), its view of the cluster's
/// state (one watch), the shard collections it holds (created, recovered and dropped to match the placement),
/// and the scatter-gather of requests to the other nodes (``ClusterRouter``).
public final class ClusterNode: Sendable {
    /// The options.
    public let options: ClusterOptions
    let http = PeerHTTPClient()
    let etcd: EtcdClient
    let logger: Logger
    let view = Mutex(ClusterView())
    private let lease = Mutex<Int64?>(nil)
    /// Reads in flight from this node, by node: replicas are chosen by load.
    let load = Mutex<[UInt64: Int]>([:])
    /// Writes in flight from this node: the view revision each was routed under.
    private let writesInFlight = Mutex<(next: Int, revisions: [Int: Int64])>((0, [:]))
    /// This node's shard replicas catching up, by shard collection.
    let transfers = Mutex<[String: ShardTransfer]>([:])
    /// The revision at which a recovery of this node marked a replica Active, by shard collection: until the view
    /// has seen it, the older state it still shows starts no new recovery.
    private let activations = Mutex<[String: Int64]>([:])
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let rotation = Atomic<Int>(0)
    /// This node's advertised address and the address its own requests to itself go to, once it listens.
    private let addresses = Mutex<(advertised: HTTPEndpoint, local: HTTPEndpoint)?>(nil)

    /// Creates a node (it joins the cluster in ``run()``).
    public init(options: ClusterOptions, logger: Logger) {
        self.options = options
        self.logger = logger
        etcd = EtcdClient(endpoint: options.etcd, http: http)
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var id: UInt64 { options.nodeID }

    /// Where the other nodes reach this one (known once it listens).
    var advertised: HTTPEndpoint { addresses.withLock { $0?.advertised } ?? HTTPEndpoint(host: "127.0.0.1", port: 0) }

    /// Where this node's requests to itself go.
    var localURL: HTTPEndpoint { addresses.withLock { $0?.local } ?? advertised }

    /// Joins the cluster and keeps this node's part of it current until cancelled; then leaves it (the lease is
    /// revoked, so the other nodes stop routing here at once).
    /// - Throws: ``ClusterError`` when etcd cannot be reached at the start, or the node id is held by a live
    ///   node.
    /// - Parameters:
    ///   - host: The address the server listens on.
    ///   - port: The port it bound.
    public func run(host: String, port: Int) async throws {
        let localHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        addresses.withLock {
            $0 = (
                options.advertise ?? HTTPEndpoint(host: localHost, port: port),
                HTTPEndpoint(host: localHost, port: port)
            )
        }
        let lease = try await register()
        logger.info("joined the cluster", metadata: ["node": "\(id)", "etcd": "\(options.etcd)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.keepAlive() }
            group.addTask { await self.watchLoop() }
            group.addTask { await self.reconcileLoop() }
            await group.next()
            group.cancelAll()
        }
        let current = self.lease.withLock { $0 } ?? lease
        try? await etcd.revoke(lease: current)
        logger.info("left the cluster", metadata: ["node": "\(id)"])
    }

    /// Takes a lease and writes this node's key under it; waits out a previous run's lease (a node restarted
    /// after a crash) for up to two TTLs.
    private func register() async throws(ClusterError) -> Int64 {
        let record = NodeRecord(id: id, url: advertised)
        let deadline = ContinuousClock.now + .seconds(2 * options.leaseTTL + 2)
        while true {
            let lease = try await etcd.grantLease(ttl: options.leaseTTL)
            let key = ClusterKeys.node(id)
            let taken = try await etcd.transaction(
                when: [.absent(key)],
                then: [.put(key: key, value: record.json.jsonBytes, lease: lease)]
            )
            if taken {
                self.lease.withLock { $0 = lease }
                return lease
            }
            try? await etcd.revoke(lease: lease)
            if let holder = try await etcd.get(key), let json = try? JSONValue.parse(utf8: holder.value),
                let other = NodeRecord(json), other.url != advertised, ContinuousClock.now > deadline
            {
                throw ClusterError("node id \(id) is held by a live node at \(other.url)", status: 409)
            }
            if ContinuousClock.now > deadline {
                throw ClusterError("node id \(id) is still registered after waiting for its lease to expire")
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    private func keepAlive() async {
        let interval = Duration.milliseconds(max(200, options.leaseTTL * 1000 / 3))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard let lease = lease.withLock({ $0 }) else { continue }
            do {
                if try await etcd.keepAlive(lease: lease) == 0 {
                    // Expired (this node was out of reach): join again; the others have marked what it missed.
                    logger.warning("lease expired; registering again", metadata: ["node": "\(id)"])
                    self.lease.withLock { $0 = nil }
                    let record = NodeRecord(id: id, url: advertised)
                    let fresh = try await etcd.grantLease(ttl: options.leaseTTL)
                    try await etcd.put(ClusterKeys.node(id), record.json.jsonBytes, lease: fresh)
                    self.lease.withLock { $0 = fresh }
                }
            } catch {
                logger.warning("cannot renew the lease: \(error)", metadata: ["node": "\(id)"])
            }
        }
    }

    private func watchLoop() async {
        while !Task.isCancelled {
            do {
                let (revision, values) = try await etcd.range(prefix: ClusterKeys.root)
                var fresh = ClusterView()
                for kv in values { fresh.set(kv.key, kv.value, kv.modRevision) }
                fresh.revision = revision
                fresh.loaded = true
                view.withLock { $0 = fresh }
                wake.yield()
                try await etcd.watch(prefix: ClusterKeys.root, fromRevision: revision + 1) { events, revision in
                    self.view.withLock { view in
                        for event in events { view.apply(event) }
                        view.revision = max(view.revision, revision)
                    }
                    self.wake.yield()
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("etcd watch broke: \(error); reading the state again", metadata: ["node": "\(id)"])
            }
            try? await Task.sleep(for: .milliseconds(300))
        }
    }

    private func reconcileLoop() async {
        var iterator = wakes.makeAsyncIterator()
        while !Task.isCancelled {
            await reconcile()
            // Woken by a change, or every second (a retry of what failed).
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(for: .seconds(1)) }
                _ = await iterator.next()
                group.cancelAll()
            }
        }
    }

    // MARK: Reconciling this node's shards with the placement

    /// Creates, recovers and drops this node's shard collections to match the cluster's state.
    func reconcile() async {
        let snapshot = view.withLock { $0 }
        guard snapshot.loaded, snapshot.nodes[id] != nil else { return }
        var wanted: Set<String> = []
        for record in snapshot.collections.values {
            for (shard, nodes) in record.placement.enumerated() where nodes.contains(id) {
                let local = record.shardCollection(shard)
                wanted.insert(local)
                let state = snapshot.state(record.name, shard, id)
                let transferring = transfers.withLock { $0[local] != nil }
                if transferring { continue }
                do {
                    switch state {
                    case nil:
                        // A new collection's replica: an empty shard is up to date. A new replica of a shard
                        // that holds points (replication raised, a shard moved) is written Partial by whoever
                        // placed it, and recovers below.
                        try await createLocal(record, shard, replacing: true)
                        try await etcd.put(
                            ClusterKeys.replica(record.name, shard, id),
                            Array(ReplicaState.active.rawValue.utf8)
                        )
                    case .dead?, .partial?:
                        let activated = activations.withLock { $0[local] } ?? 0
                        if snapshot.revision < activated { continue }
                        startRecovery(record, shard)
                    case .active?:
                        if !(try await localExists(local)) { try await createLocal(record, shard, replacing: false) }
                    }
                } catch {
                    logger.warning("shard \(local): \(error)", metadata: ["node": "\(id)"])
                }
            }
        }
        recordGauges(snapshot)
        // Shard collections of this node that the placement no longer puts here.
        guard let names = try? await localCollections() else { return }
        for local in names where !wanted.contains(local) {
            guard let (collection, shard) = ClusterKeys.parseShardCollection(local) else { continue }
            if let record = snapshot.collections[collection], shard < record.placement.count,
                record.placement[shard].contains(id)
            {
                continue
            }
            _ = try? await self.local(.DELETE, "/collections/\(local)")
            if snapshot.state(collection, shard, id) != nil {
                try? await etcd.delete(ClusterKeys.replica(collection, shard, id))
            }
        }
    }

    /// The cluster's gauges in `/metrics`: live peers, this node's replicas by state, its transfers under way.
    private func recordGauges(_ snapshot: ClusterView) {
        Gauge(label: "tessera_cluster_peers").record(snapshot.nodes.count)
        var byState: [ReplicaState: Int] = [.active: 0, .partial: 0, .dead: 0]
        var shards = 0
        for record in snapshot.collections.values {
            for (shard, nodes) in record.placement.enumerated() where nodes.contains(id) {
                shards += 1
                if let state = snapshot.state(record.name, shard, id) { byState[state, default: 0] += 1 }
            }
        }
        for (state, count) in byState {
            Gauge(label: "tessera_cluster_replicas", dimensions: [("state", state.rawValue)]).record(count)
        }
        Gauge(label: "tessera_cluster_local_shards").record(shards)
        Gauge(label: "tessera_cluster_transfers").record(transfers.withLock { $0.count })
        Gauge(label: "tessera_cluster_collections").record(snapshot.collections.count)
    }

    /// Sends a request to this node's own REST API, as a shard request.
    func local(
        _ method: HTTPMethod,
        _ path: String,
        body: [UInt8] = [],
        transfer: Bool = false,
        replay: Bool = false
    ) async throws(ClusterError) -> HTTPReply {
        var headers = internalHeaders
        if transfer { headers.append((ClusterRouter.transferHeader, "1")) }
        if replay { headers.append((ClusterRouter.replayHeader, "1")) }
        return try await http.send(
            method,
            localURL,
            path,
            headers: headers,
            body: body,
            timeout: options.writeTimeout
        )
    }

    /// The headers of a request between nodes.
    var internalHeaders: [(String, String)] {
        var headers = [(ClusterRouter.shardHeader, "1")]
        if let key = options.apiKey { headers.append(("api-key", key)) }
        return headers
    }

    private func localExists(_ local: String) async throws(ClusterError) -> Bool {
        let reply = try await self.local(.GET, "/collections/\(local)/exists")
        let json = try? JSONValue.parse(utf8: reply.body)
        return json?.objectValue?["result"]?.objectValue?["exists"]?.boolValue ?? false
    }

    private func localCollections() async throws(ClusterError) -> [String] {
        let reply = try await self.local(.GET, "/collections")
        guard reply.status == 200, let json = try? JSONValue.parse(utf8: reply.body),
            let list = json.objectValue?["result"]?.objectValue?["collections"]?.arrayValue
        else { throw ClusterError("cannot list this node's collections", status: 503) }
        return list.compactMap { $0.objectValue?["name"]?.stringValue }
            .filter { ClusterKeys.parseShardCollection($0) != nil }
    }

    /// Creates a shard's local collection (dropping one of the same name first, with `replacing`), with the
    /// collection's configuration and the schema changes made since (payload indexes, parameter updates).
    func createLocal(_ record: CollectionRecord, _ shard: Int, replacing: Bool) async throws(ClusterError) {
        let local = record.shardCollection(shard)
        if replacing { _ = try await self.local(.DELETE, "/collections/\(local)") }
        let reply = try await self.local(
            .PUT,
            "/collections/\(local)",
            body: JSONValue.object(record.configuration).jsonBytes
        )
        guard reply.status == 200 else {
            throw ClusterError(
                "cannot create shard collection \(local): \(String(decoding: reply.body, as: UTF8.self))",
                status: 503
            )
        }
        for change in record.schemaChanges {
            _ = try await self.local(change.method, "/collections/\(local)\(change.suffix)", body: change.body)
        }
    }

    // MARK: Recovery

    /// The largest upsert body a recovery's copy sends (a point larger than this goes alone).
    static let copyBodyBytes = 8 << 20

    /// Starts catching a replica of this node up (once: a recovery in progress is left alone).
    func startRecovery(_ record: CollectionRecord, _ shard: Int) {
        let local = record.shardCollection(shard)
        let transfer = ShardTransfer()
        let started = transfers.withLock { transfers in
            guard transfers[local] == nil else { return false }
            transfers[local] = transfer
            return true
        }
        guard started else { return }
        Task {
            defer {
                _ = transfers.withLock { $0.removeValue(forKey: local) }
                wake.yield()
            }
            for attempt in 1...5 {
                do {
                    if try await recover(record.name, shard, transfer) { return }
                } catch {
                    logger.warning(
                        "recovery of \(local) failed (attempt \(attempt)): \(error)",
                        metadata: ["node": "\(id)"]
                    )
                }
                transfer.state.withLock { $0 = ShardTransfer.State() }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// One attempt at catching a replica up: it is marked Partial (writes reach it, reads do not), writes are
    /// held back, every node's writes routed before that are waited for, the shard is copied from an active
    /// replica, the held-back writes are applied in order, and the replica is marked Active — unless a write
    /// missed it meanwhile (it was marked Dead again), or a write chose its points by a filter (both: again).
    /// - Returns: Whether the replica is active.
    private func recover(
        _ collection: String,
        _ shard: Int,
        _ transfer: ShardTransfer
    ) async throws(ClusterError)
        -> Bool
    {
        let key = ClusterKeys.replica(collection, shard, id)
        let snapshot = view.withLock { $0 }
        guard let record = snapshot.collections[collection] else { return true }
        let local = record.shardCollection(shard)
        // A source first: without an active replica on a live node, what this node holds is all there is.
        let sources = record.placement[shard].filter {
            $0 != id && snapshot.nodes[$0] != nil && snapshot.state(collection, shard, $0) == .active
        }
        guard let source = sources.first, let sourceURL = snapshot.nodes[source]?.url else {
            throw ClusterError("no active replica of \(local) to copy from", status: 503)
        }
        let current = try await etcd.get(key)
        let marked = try await etcd.transactionRevision(
            when: [.modRevision(key, current?.modRevision ?? 0)],
            then: [.put(key: key, value: Array(ReplicaState.partial.rawValue.utf8))]
        )
        guard let partialRevision = marked else { return false }
        logger.info("recovering \(local) from node \(source)", metadata: ["node": "\(id)"])
        try await waitForWrites(routedBefore: partialRevision)
        try await createLocal(record, shard, replacing: true)
        var offset: JSONValue = .null
        var copied = 0
        // Pages of a few points (a multivector point can be megabytes of JSON), upserted in bodies of at most
        // ``copyBodyBytes`` (below the server's body limit).
        repeat {
            var request: JSONObject = ["limit": 32, "with_payload": true, "with_vector": true]
            if offset != .null { request["offset"] = offset }
            let reply = try await http.send(
                .POST,
                sourceURL,
                "/collections/\(local)/points/scroll",
                headers: internalHeaders,
                body: JSONValue.object(request).jsonBytes,
                timeout: options.writeTimeout
            )
            guard reply.status == 200, let json = try? JSONValue.parse(utf8: reply.body),
                let result = json.objectValue?["result"]?.objectValue
            else { throw ClusterError("node \(source) did not page \(local): status \(reply.status)", status: 503) }
            var pending: [[UInt8]] = []
            var pendingBytes = 0
            func flush() async throws(ClusterError) {
                guard !pending.isEmpty else { return }
                var body = Array(#"{"points":["#.utf8)
                body.reserveCapacity(pendingBytes + pending.count + 16)
                for (index, point) in pending.enumerated() {
                    if index > 0 { body.append(UInt8(ascii: ",")) }
                    body += point
                }
                body += Array("]}".utf8)
                let upsert = try await self.local(
                    .PUT,
                    "/collections/\(local)/points?wait=true",
                    body: body,
                    transfer: true
                )
                guard upsert.status == 200 else {
                    throw ClusterError(
                        "copying into \(local) failed: \(String(decoding: upsert.body, as: UTF8.self))",
                        status: 503
                    )
                }
                copied += pending.count
                pending = []
                pendingBytes = 0
            }
            for point in result["points"]?.arrayValue ?? [] {
                let bytes = point.jsonBytes
                if pendingBytes + bytes.count > Self.copyBodyBytes { try await flush() }
                pending.append(bytes)
                pendingBytes += bytes.count
            }
            try await flush()
            offset = result["next_page_offset"] ?? .null
        } while offset != .null
        // The writes held back, in order; the last one out turns holding off.
        while true {
            let batch: [ShardTransfer.Pending] = transfer.state.withLock { state in
                let batch = state.pending
                state.pending = []
                if batch.isEmpty { state.buffering = false }
                return batch
            }
            if batch.isEmpty { break }
            for write in batch {
                _ = try await self.local(write.method, write.path, body: write.body, replay: true)
            }
        }
        if transfer.state.withLock({ $0.dirty }) { return false }
        let activated = try await etcd.transactionRevision(
            when: [.modRevision(key, partialRevision)],
            then: [.put(key: key, value: Array(ReplicaState.active.rawValue.utf8))]
        )
        if let activated {
            activations.withLock { $0[local] = activated }
            logger.info("recovered \(local): \(copied) points copied", metadata: ["node": "\(id)"])
        }
        return activated != nil
    }

    /// Waits until every live node has seen `revision` and has no write in flight routed under an older view
    /// (so every write from then on reaches a replica marked at `revision`). A node that does not answer is
    /// skipped after the write deadline: it is down, or its writes time out.
    private func waitForWrites(routedBefore revision: Int64) async throws(ClusterError) {
        let deadline = ContinuousClock.now + options.writeTimeout
        let peers = view.withLock { Array($0.nodes.values) }
        for peer in peers {
            while ContinuousClock.now < deadline {
                let reply = try? await http.send(
                    .GET,
                    peer.url,
                    "/cluster/writes?revision=\(revision)",
                    headers: internalHeaders,
                    timeout: .seconds(2)
                )
                guard let reply else { break }
                if reply.status == 200, let json = try? JSONValue.parse(utf8: reply.body),
                    json.objectValue?["result"]?.objectValue?["settled"]?.boolValue == true
                {
                    break
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Whether this node has seen `revision` and has no write in flight routed under an older view.
    public func writesSettled(since revision: Int64) -> Bool {
        guard view.withLock({ $0.revision }) >= revision else { return false }
        return writesInFlight.withLock { state in state.revisions.values.allSatisfy { $0 >= revision } }
    }

    /// Runs a write with the view revision it was routed under recorded (see ``writesSettled(since:)``).
    func trackingWrite<T>(_ body: (ClusterView) async throws(ClusterError) -> T) async throws(ClusterError) -> T {
        let snapshot = view.withLock { $0 }
        let token = writesInFlight.withLock { state in
            let token = state.next
            state.next += 1
            state.revisions[token] = snapshot.revision
            return token
        }
        defer { _ = writesInFlight.withLock { $0.revisions.removeValue(forKey: token) } }
        return try await body(snapshot)
    }

    /// A rotating number, to spread reads over equally loaded replicas.
    func nextRotation() -> Int { rotation.add(1, ordering: .relaxed).oldValue }
}
