import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Tessera

/// A key and its value in etcd, with the revisions etcd keeps.
public struct EtcdKeyValue: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value's bytes.
    public var value: [UInt8]
    /// The revision that created the key.
    public var createRevision: Int64
    /// The revision that last changed it.
    public var modRevision: Int64
}

/// One change a watch reports.
public enum EtcdEvent: Sendable, Equatable {
    /// A key was written.
    case put(EtcdKeyValue)
    /// A key was deleted (or its lease expired).
    case delete(key: String, revision: Int64)
}

/// One operation of a transaction.
public enum EtcdOperation: Sendable {
    /// Writes a key, attached to a lease when one is given.
    case put(key: String, value: [UInt8], lease: Int64? = nil)
    /// Deletes a key, or every key under a prefix.
    case delete(key: String, prefix: Bool = false)
}

/// One condition of a transaction.
public enum EtcdCondition: Sendable {
    /// The key does not exist.
    case absent(String)
    /// The key was last changed at this revision (0: it does not exist).
    case modRevision(String, Int64)
}

/// etcd's v3 API through its JSON gateway (`POST /v3/…`, keys and values in base64, 64-bit numbers as strings):
/// leases, reads, writes, transactions and watches. etcd holds the cluster's metadata only; it is the
/// consensus, never written here.
public struct EtcdClient: Sendable {
    /// etcd's client URL.
    public let endpoint: HTTPEndpoint
    let http: PeerHTTPClient
    /// The deadline of each call.
    public var timeout: Duration = .seconds(5)

    /// Creates a client of the etcd at `endpoint`.
    public init(endpoint: HTTPEndpoint, http: PeerHTTPClient) {
        self.endpoint = endpoint
        self.http = http
    }

    /// Calls a gateway method and returns its answer.
    func call(_ method: String, _ body: JSONValue) async throws(ClusterError) -> JSONObject {
        let reply = try await http.send(.POST, endpoint, "/v3/" + method, body: body.jsonBytes, timeout: timeout)
        guard let value = try? JSONValue.parse(utf8: reply.body), case .object(let object) = value else {
            throw ClusterError(
                "etcd at \(endpoint) answered \(method) with status \(reply.status) and no JSON",
                status: 503
            )
        }
        guard reply.status == 200 else {
            let message = object["error"].flatMap(\.stringValue) ?? object["message"].flatMap(\.stringValue) ?? ""
            throw ClusterError("etcd at \(endpoint) refused \(method): \(message)", status: 503)
        }
        if case .object(let result)? = object["result"] { return result }
        return object
    }

    // MARK: Leases

    /// Grants a lease of `ttl` seconds and returns its id.
    public func grantLease(ttl: Int) async throws(ClusterError) -> Int64 {
        let answer = try await call("lease/grant", ["TTL": .string(String(ttl))])
        guard let id = answer["ID"].flatMap(Self.int64) else {
            throw ClusterError("etcd granted no lease: \(JSONValue.object(answer).jsonText)", status: 503)
        }
        return id
    }

    /// Refreshes a lease; returns the seconds it has left (0: it has expired and its keys are gone).
    public func keepAlive(lease: Int64) async throws(ClusterError) -> Int {
        let answer = try await call("lease/keepalive", ["ID": .string(String(lease))])
        return answer["TTL"].flatMap(Self.int64).map { Int($0) } ?? 0
    }

    /// Revokes a lease: its keys are deleted at once.
    public func revoke(lease: Int64) async throws(ClusterError) {
        _ = try await call("lease/revoke", ["ID": .string(String(lease))])
    }

    // MARK: Keys

    /// Writes a key.
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws(ClusterError) {
        _ = try await call("kv/put", Self.putRequest(key, value, lease))
    }

    /// The keys under a prefix and the store's revision at the time of reading.
    public func range(prefix: String) async throws(ClusterError) -> (revision: Int64, values: [EtcdKeyValue]) {
        let answer = try await call(
            "kv/range",
            ["key": .string(Self.base64(prefix)), "range_end": .string(Self.base64(Self.prefixEnd(prefix)))]
        )
        let revision = Self.revision(answer)
        let values = (answer["kvs"]?.arrayValue ?? []).compactMap(Self.keyValue)
        return (revision, values)
    }

    /// One key, or `nil`.
    public func get(_ key: String) async throws(ClusterError) -> EtcdKeyValue? {
        let answer = try await call("kv/range", ["key": .string(Self.base64(key))])
        return (answer["kvs"]?.arrayValue ?? []).compactMap(Self.keyValue).first
    }

    /// Deletes a key (or every key under it, with `prefix`).
    public func delete(_ key: String, prefix: Bool = false) async throws(ClusterError) {
        _ = try await call("kv/deleterange", Self.deleteRequest(key, prefix))
    }

    /// Runs the operations when every condition holds, all of them or none, in one revision.
    /// - Returns: Whether the conditions held (and the operations ran).
    public func transaction(
        when conditions: [EtcdCondition],
        then operations: [EtcdOperation]
    ) async throws(ClusterError) -> Bool {
        try await transactionRevision(when: conditions, then: operations) != nil
    }

    /// ``transaction(when:then:)``, returning the revision the operations made (`nil`: a condition failed).
    func transactionRevision(
        when conditions: [EtcdCondition],
        then operations: [EtcdOperation]
    ) async throws(ClusterError) -> Int64? {
        let compare: [JSONValue] = conditions.map { condition in
            switch condition {
            case .absent(let key):
                return [
                    "key": .string(Self.base64(key)), "target": "CREATE", "result": "EQUAL",
                    "create_revision": "0",
                ]
            case .modRevision(let key, let revision):
                return [
                    "key": .string(Self.base64(key)), "target": "MOD", "result": "EQUAL",
                    "mod_revision": .string(String(revision)),
                ]
            }
        }
        let success: [JSONValue] = operations.map { operation in
            switch operation {
            case .put(let key, let value, let lease): return ["request_put": Self.putRequest(key, value, lease)]
            case .delete(let key, let prefix): return ["request_delete_range": Self.deleteRequest(key, prefix)]
            }
        }
        let answer = try await call("kv/txn", ["compare": .array(compare), "success": .array(success)])
        guard answer["succeeded"]?.boolValue == true else { return nil }
        return Self.revision(answer)
    }

    // MARK: Watches

    /// Watches the keys under a prefix from a revision on, handing each batch of events to `onEvents`, until the
    /// task is cancelled or the stream breaks (then it throws: the caller reads the state again and watches from
    /// the revision after it).
    /// - Returns: Only when etcd ends the stream (compaction past `fromRevision` among the reasons); the caller
    ///   starts again from a fresh read.
    public func watch(
        prefix: String,
        fromRevision: Int64,
        onEvents: @escaping @Sendable ([EtcdEvent], Int64) -> Void
    ) async throws(ClusterError) {
        let request: JSONValue = [
            "create_request": [
                "key": .string(Self.base64(prefix)), "range_end": .string(Self.base64(Self.prefixEnd(prefix))),
                "start_revision": .string(String(fromRevision)),
            ]
        ]
        let lines = LineSplitter()
        let status = try await http.stream(.POST, endpoint, "/v3/watch", body: request.jsonBytes) { chunk in
            for line in lines.feed(chunk) {
                guard let value = try? JSONValue.parse(utf8: line), case .object(let object) = value,
                    case .object(let result)? = object["result"]
                else { continue }
                let revision = Self.revision(result)
                let events: [EtcdEvent] = (result["events"]?.arrayValue ?? []).compactMap { event in
                    guard case .object(let event) = event, let kv = event["kv"].flatMap(Self.keyValue) else {
                        return nil
                    }
                    if event["type"]?.stringValue == "DELETE" {
                        return .delete(key: kv.key, revision: kv.modRevision)
                    }
                    return .put(kv)
                }
                if !events.isEmpty || result["created"]?.boolValue == true { onEvents(events, revision) }
            }
        }
        guard status == 200 else { throw ClusterError("etcd refused the watch (status \(status))", status: 503) }
    }

    // MARK: Encoding

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The end of the range of keys starting with `prefix` (the prefix with its last byte incremented).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func putRequest(_ key: String, _ value: [UInt8], _ lease: Int64?) -> JSONValue {
        var request: JSONObject = ["key": .string(base64(key)), "value": .string(Data(value).base64EncodedString())]
        if let lease { request["lease"] = .string(String(lease)) }
        return .object(request)
    }

    static func deleteRequest(_ key: String, _ prefix: Bool) -> JSONValue {
        var request: JSONObject = ["key": .string(base64(key))]
        if prefix { request["range_end"] = .string(base64(prefixEnd(key))) }
        return .object(request)
    }

    static func int64(_ value: JSONValue) -> Int64? {
        switch value {
        case .string(let text): return Int64(text)
        case .integer(let number): return number
        default: return nil
        }
    }

    static func revision(_ answer: JSONObject) -> Int64 {
        guard case .object(let header)? = answer["header"] else { return 0 }
        return header["revision"].flatMap(int64) ?? 0
    }

    static func keyValue(_ value: JSONValue) -> EtcdKeyValue? {
        guard case .object(let object) = value, let key = object["key"]?.stringValue,
            let keyBytes = Data(base64Encoded: key)
        else { return nil }
        let bytes = object["value"]?.stringValue.flatMap { Data(base64Encoded: $0) } ?? Data()
        return EtcdKeyValue(
            key: String(decoding: keyBytes, as: UTF8.self),
            value: Array(bytes),
            createRevision: object["create_revision"].flatMap(int64) ?? 0,
            modRevision: object["mod_revision"].flatMap(int64) ?? 0
        )
    }
}

/// Splits a byte stream into newline-ended lines (the gateway writes one JSON object per line of a stream).
final class LineSplitter: Sendable {
    private let pending = Mutex<[UInt8]>([])

    func feed(_ chunk: ByteBuffer) -> [[UInt8]] {
        pending.withLock { pending in
            pending.append(contentsOf: chunk.readableBytesView)
            var lines: [[UInt8]] = []
            var start = 0
            for index in pending.indices where pending[index] == UInt8(ascii: "\n") {
                if index > start { lines.append(Array(pending[start..<index])) }
                start = index + 1
            }
            pending.removeFirst(start)
            return lines
        }
    }
}
