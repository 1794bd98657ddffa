import Foundation
import NIOHTTP1
import Synchronization
import Tessera

extension ClusterRouter {
    // MARK: Sending to replicas

    /// Reads from one Active replica of a shard on a live node: the least loaded (reads in flight from this
    /// node), this node first among equals, then in turn; on a failure that is not the request's fault, the next
    /// one. Answers the `result` of the replica's envelope.
    func readShard(
        _ record: CollectionRecord,
        _ shard: Int,
        _ method: HTTPMethod,
        _ suffix: String,
        body: [UInt8]
    ) async throws(ClusterError) -> JSONValue {
        let view = node.view.withLock { $0 }
        let candidates = record.placement[shard].filter {
            view.nodes[$0] != nil && view.state(record.name, shard, $0) == .active
        }
        guard !candidates.isEmpty else {
            throw ClusterError("shard \(shard) of \(record.name) has no active replica on a live node", status: 503)
        }
        let loads = node.load.withLock { $0 }
        let turn = node.nextRotation()
        let ordered = candidates.enumerated().sorted { a, b in
            let la = loads[a.element, default: 0]
            let lb = loads[b.element, default: 0]
            if la != lb { return la < lb }
            if (a.element == node.id) != (b.element == node.id) { return a.element == node.id }
            return (a.offset + turn) % candidates.count < (b.offset + turn) % candidates.count
        }.map(\.element)
        var failures: [String] = []
        for holder in ordered {
            guard let url = view.nodes[holder]?.url else { continue }
            node.load.withLock { $0[holder, default: 0] += 1 }
            defer { node.load.withLock { $0[holder, default: 1] -= 1 } }
            do {
                let reply = try await node.http.send(
                    method,
                    url,
                    "/collections/\(record.shardCollection(shard))\(suffix)",
                    headers: node.internalHeaders,
                    body: body,
                    timeout: node.options.readTimeout
                )
                if reply.status >= 500 {
                    failures.append("node \(holder): status \(reply.status)")
                    continue
                }
                return try Self.result(reply)
            } catch {
                failures.append("node \(holder): \(error.message)")
            }
        }
        throw ClusterError(
            "no replica of shard \(shard) of \(record.name) answered: " + failures.joined(separator: "; "),
            status: 503
        )
    }

    /// Sends a write to every replica of a shard that takes writes; answers once `write_consistency_factor`
    /// Active replicas have it, after marking Dead every replica that missed it.
    func writeShard(
        _ record: CollectionRecord,
        _ shard: Int,
        _ method: HTTPMethod,
        _ suffix: String,
        _ body: [UInt8]
    ) async throws(ClusterError) -> JSONValue {
        try await node.trackingWrite { view throws(ClusterError) in
            let holders = record.placement[shard]
            let targets = holders.filter {
                view.nodes[$0] != nil && [.active, .partial].contains(view.state(record.name, shard, $0))
            }
            let active = Set(targets.filter { view.state(record.name, shard, $0) == .active })
            guard !active.isEmpty else {
                throw ClusterError(
                    "shard \(shard) of \(record.name) has no active replica on a live node: the write is refused",
                    status: 503
                )
            }
            let path = "/collections/\(record.shardCollection(shard))\(suffix)"
            let outcomes = await withTaskGroup(of: (UInt64, Result<HTTPReply, ClusterError>).self) { group in
                for holder in targets {
                    guard let url = view.nodes[holder]?.url else { continue }
                    group.addTask {
                        do throws(ClusterError) {
                            let reply = try await node.http.send(
                                method,
                                url,
                                path,
                                headers: node.internalHeaders,
                                body: body,
                                timeout: node.options.writeTimeout
                            )
                            return (holder, .success(reply))
                        } catch {
                            return (holder, .failure(error))
                        }
                    }
                }
                var outcomes: [UInt64: Result<HTTPReply, ClusterError>] = [:]
                for await (holder, outcome) in group { outcomes[holder] = outcome }
                return outcomes
            }
            var made: [UInt64] = []
            var missed = Set(holders).subtracting(targets.filter { view.nodes[$0] != nil })
            var refusal: HTTPReply?
            var answer: HTTPReply?
            for (holder, outcome) in outcomes {
                switch outcome {
                case .success(let reply) where reply.status == 200:
                    made.append(holder)
                    answer = answer ?? reply
                case .success(let reply) where reply.status < 500:
                    // The request's fault (every replica refuses it alike): said to the client, no replica marked.
                    refusal = reply
                default:
                    missed.insert(holder)
                }
            }
            if let refusal, made.isEmpty { return try Self.result(refusal) }
            // Replicas that missed an acknowledged write are Dead before the answer; they recover.
            let acknowledged = made.filter(active.contains).count
            if acknowledged > 0 {
                for holder in missed where view.state(record.name, shard, holder) != .dead {
                    if view.state(record.name, shard, holder) == nil { continue }
                    try await node.etcd.put(
                        ClusterKeys.replica(record.name, shard, holder),
                        Array(ReplicaState.dead.rawValue.utf8)
                    )
                }
            }
            guard acknowledged >= min(record.writeConsistencyFactor, max(1, active.count)),
                acknowledged >= 1, let answer
            else {
                throw ClusterError(
                    "the write to shard \(shard) of \(record.name) reached \(acknowledged) active replicas; "
                        + "write_consistency_factor is \(record.writeConsistencyFactor)",
                    status: 503
                )
            }
            return try Self.result(answer)
        }
    }

    /// The `result` of a replica's envelope, or its error.
    static func result(_ reply: HTTPReply) throws(ClusterError) -> JSONValue {
        guard let json = try? JSONValue.parse(utf8: reply.body), let object = json.objectValue else {
            throw ClusterError("a replica answered status \(reply.status) without JSON", status: 503)
        }
        guard reply.status == 200 else {
            let message =
                object["status"]?.objectValue?["error"]?.stringValue ?? String(decoding: reply.body, as: UTF8.self)
            throw ClusterError(message, status: reply.status)
        }
        return object["result"] ?? .null
    }

    // MARK: Writes

    /// A point write: split by shard when it names points (`points`, `batch`), sent to every shard when it
    /// chooses them by a filter.
    func write(
        _ record: CollectionRecord,
        _ method: HTTPMethod,
        _ suffix: String,
        _ body: JSONValue
    ) async throws(ClusterError) -> JSONValue {
        guard var object = body.objectValue else { throw ClusterError("Format error in JSON body: expected an object") }
        if let key = object["shard_key"], key != .null {
            throw ClusterError("shard_key is not supported: points are placed by id (sharding_method auto)")
        }
        object["shard_key"] = nil
        var parts: [Int: JSONObject] = [:]
        if let points = object["points"]?.arrayValue {
            var grouped: [Int: [JSONValue]] = [:]
            for point in points {
                let id = point.objectValue?["id"] ?? point
                grouped[shard(of: id, record), default: []].append(point)
            }
            for (shard, points) in grouped {
                var part = object
                part["points"] = .array(points)
                parts[shard] = part
            }
        } else if let batch = object["batch"]?.objectValue {
            parts = try splitBatch(object, batch, record)
        } else {
            for shard in 0..<record.shardNumber { parts[shard] = object }
        }
        // Always made durable before the answer (`wait=true` on every replica), whatever the client asked.
        var last: JSONValue = ["operation_id": 0, "status": "completed"]
        // Shards in turn, in shard order (a write spanning shards is not atomic across them).
        for shard in parts.keys.sorted() {
            last = try await writeShard(
                record,
                shard,
                method,
                suffix + "?wait=true",
                JSONValue.object(parts[shard]!).jsonBytes
            )
        }
        return last
    }

    /// Qdrant's column form (`batch: {ids, vectors, payloads}`) split by shard, column by column.
    private func splitBatch(
        _ object: JSONObject,
        _ batch: JSONObject,
        _ record: CollectionRecord
    )
        throws(ClusterError) -> [Int: JSONObject]
    {
        guard let ids = batch["ids"]?.arrayValue else {
            throw ClusterError("Format error in JSON body: batch.ids must be an array")
        }
        var rows: [Int: [Int]] = [:]
        for (row, id) in ids.enumerated() { rows[shard(of: id, record), default: []].append(row) }
        func pick(_ column: JSONValue?, _ rows: [Int]) -> JSONValue? {
            guard let column, case .array(let values) = column else { return column }
            return .array(rows.map { $0 < values.count ? values[$0] : .null })
        }
        var parts: [Int: JSONObject] = [:]
        for (shard, selected) in rows {
            var part = batch
            part["ids"] = pick(batch["ids"], selected)
            if let payloads = batch["payloads"], payloads != .null { part["payloads"] = pick(payloads, selected) }
            if let vectors = batch["vectors"] {
                if case .object(let named) = vectors {
                    part["vectors"] = .object(named.mapValues { pick($0, selected) ?? .null })
                } else {
                    part["vectors"] = pick(vectors, selected)
                }
            }
            var whole = object
            whole["batch"] = .object(part)
            parts[shard] = whole
        }
        return parts
    }

    /// The shard of an id in JSON (a malformed id goes to shard 0, whose replica refuses it by name).
    func shard(of id: JSONValue, _ record: CollectionRecord) -> Int {
        let parsed: PointID? =
            switch id {
            case .integer(let number) where number >= 0: .integer(UInt64(number))
            case .unsigned(let number): .integer(number)
            case .string(let text): UUID(uuidString: text).map { .uuid($0) }
            default: nil
            }
        guard let parsed else { return 0 }
        return Placement.shard(of: parsed, shards: record.shardNumber)
    }

    // MARK: Reads

    func retrieve(_ record: CollectionRecord, _ body: JSONValue) async throws(ClusterError) -> JSONValue {
        guard var object = body.objectValue, let ids = object["ids"]?.arrayValue else {
            throw ClusterError("Format error in JSON body: missing field `ids`")
        }
        var grouped: [Int: [JSONValue]] = [:]
        for id in ids { grouped[shard(of: id, record), default: []].append(id) }
        var found: [String: JSONValue] = [:]
        for (shard, ids) in grouped.sorted(by: { $0.key < $1.key }) {
            object["ids"] = .array(ids)
            let points = try await readShard(record, shard, .POST, "/points", body: JSONValue.object(object).jsonBytes)
            for point in points.arrayValue ?? [] {
                if let id = point.objectValue?["id"] { found[id.jsonText] = point }
            }
        }
        var seen: Set<String> = []
        return .array(
            ids.compactMap { id in
                guard seen.insert(id.jsonText).inserted else { return nil }
                return found[id.jsonText]
            }
        )
    }

    func retrieveOne(_ record: CollectionRecord, _ id: String) async throws(ClusterError) -> JSONValue {
        let parsed: PointID? = UInt64(id).map { .integer($0) } ?? UUID(uuidString: id).map { .uuid($0) }
        let shard = parsed.map { Placement.shard(of: $0, shards: record.shardNumber) } ?? 0
        return try await readShard(record, shard, .GET, "/points/\(id)", body: [])
    }

    func count(_ record: CollectionRecord, _ body: JSONValue) async throws(ClusterError) -> JSONValue {
        var total = 0
        for shard in 0..<record.shardNumber {
            let answer = try await readShard(record, shard, .POST, "/points/count", body: body.jsonBytes)
            total += answer.objectValue?["count"]?.intValue ?? 0
        }
        return ["count": .integer(Int64(total))]
    }

    /// Pages in id order across shards: each shard gives its first `limit + 1` points from the offset on, and
    /// the smallest `limit` of them all are the page (the next one's first id is the page's offset after).
    func scroll(_ record: CollectionRecord, _ body: JSONValue) async throws(ClusterError) -> JSONValue {
        var object = body.objectValue ?? [:]
        if let order = object["order_by"], order != .null {
            throw ClusterError("scroll with order_by is not supported on a sharded collection yet")
        }
        let limit = object["limit"]?.intValue ?? 10
        object["limit"] = .integer(Int64(limit + 1))
        var points: [(PointID, JSONValue)] = []
        for shard in 0..<record.shardNumber {
            let page = try await readShard(
                record,
                shard,
                .POST,
                "/points/scroll",
                body: JSONValue.object(object).jsonBytes
            )
            for point in page.objectValue?["points"]?.arrayValue ?? [] {
                guard let id = point.objectValue?["id"], let parsed = Self.pointID(id) else { continue }
                points.append((parsed, point))
            }
        }
        points.sort { $0.0 < $1.0 }
        let page = points.prefix(limit).map(\.1)
        let next: JSONValue = points.count > limit ? (points[limit].1.objectValue?["id"] ?? .null) : .null
        return ["points": .array(Array(page)), "next_page_offset": next]
    }

    static func pointID(_ id: JSONValue) -> PointID? {
        switch id {
        case .integer(let number) where number >= 0: return .integer(UInt64(number))
        case .unsigned(let number): return .integer(number)
        case .string(let text): return UUID(uuidString: text).map { .uuid($0) }
        default: return nil
        }
    }
}
