import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MaxSim
import NIOCore
import Tessera
import TesseraIndex
import TesseraQdrant
import Testing

@testable import TesseraServer

/// A fresh data directory, removed afterwards.
func withDataDirectory<R>(_ body: (String) async throws -> R) async throws -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-server-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

struct Reply {
    var status: HTTPResponse.Status
    var json: JSONValue
    var text: String

    subscript(_ key: String) -> JSONValue? {
        if case .object(let object) = json { return object[key] }
        return nil
    }

    var result: JSONValue? { self["result"] }

    var error: String {
        if case .object(let status)? = self["status"], case .string(let message)? = status["error"] { return message }
        return ""
    }
}

func call(
    _ client: some TestClientProtocol,
    _ method: HTTPRequest.Method,
    _ uri: String,
    _ body: String? = nil,
    headers: HTTPFields = [:]
) async throws -> Reply {
    try await client.execute(
        uri: uri,
        method: method,
        headers: headers,
        body: body.map { ByteBuffer(string: $0) }
    ) { response in
        let text = String(buffer: response.body)
        let json = (try? JSONValue.parse(text)) ?? .null
        return Reply(status: response.status, json: json, text: text)
    }
}

func application(
    _ directory: String,
    apiKey: String? = nil,
    maximumBodyBytes: Int = 1 << 20
) throws
    -> some ApplicationProtocol
{
    let registry = try CollectionRegistry(directory: directory)
    let router = makeRouter(
        registry: registry,
        options: ServerOptions(dataDirectory: directory, apiKey: apiKey, maximumBodyBytes: maximumBodyBytes)
    )
    return Application(router: router)
}

let createBody = """
    {"vectors": {"dense": {"size": 3, "distance": "Cosine"},
                 "colbert": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"},
                             "hnsw_config": {"m": 0}}}}
    """

let pointsBody = """
    {"points": [
      {"id": 1, "vector": {"dense": [1, 0, 0], "colbert": [[1, 0], [0, 1]]}, "payload": {"group": "a", "n": 1}},
      {"id": 2, "vector": {"dense": [0, 1, 0], "colbert": [[1, 1]]}, "payload": {"group": "b", "n": 2}},
      {"id": "6f1c3b9e-2a4d-4c1e-9f0a-1b2c3d4e5f60", "vector": {"dense": [0, 0, 1], "colbert": [[0, 2]]},
       "payload": {"group": "a", "n": 3}}
    ]}
    """

func numbers(_ value: JSONValue?) -> [Double] {
    guard case .array(let items)? = value else { return [] }
    return items.compactMap {
        switch $0 {
        case .integer(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }
}

func resultPoints(_ reply: Reply) -> [JSONValue] {
    if case .object(let result)? = reply.result, case .array(let points)? = result["points"] { return points }
    if case .array(let points)? = reply.result { return points }
    return []
}

func ids(_ items: [JSONValue]) -> [String] {
    items.compactMap { item in
        guard case .object(let object) = item else { return nil }
        switch object["id"] {
        case .integer(let id)?: return String(id)
        case .string(let id)?: return id
        default: return nil
        }
    }
}

@Suite("Server: Qdrant-compatible routes, in process")
struct RouterTests {
    @Test("collections: create, conflict, list, exists, info, delete, then 404")
    func collections() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                let created = try await call(client, .put, "/collections/docs", createBody)
                #expect(created.status == .ok)
                #expect(created.result == .bool(true))
                #expect(created["status"] == .string("ok"))
                let again = try await call(client, .put, "/collections/docs", createBody)
                #expect(again.status == .conflict)
                #expect(again.error.contains("already exists"))
                let list = try await call(client, .get, "/collections")
                #expect(list.result == .object(["collections": .array([.object(["name": .string("docs")])])]))
                #expect(
                    try await call(client, .get, "/collections/docs/exists").result == .object(["exists": .bool(true)])
                )
                #expect(
                    try await call(client, .get, "/collections/nope/exists").result == .object(["exists": .bool(false)])
                )
                _ = try await call(client, .put, "/collections/docs/points?wait=true", pointsBody)
                let info = try await call(client, .get, "/collections/docs")
                guard case .object(let result)? = info.result else {
                    Issue.record("no info")
                    return
                }
                #expect(result["points_count"] == .integer(3))
                guard case .object(let config)? = result["config"], case .object(let params)? = config["params"],
                    case .object(let vectors)? = params["vectors"], case .object(let colbert)? = vectors["colbert"]
                else {
                    Issue.record("no vectors in info: \(info.text)")
                    return
                }
                #expect(colbert["multivector_config"] == .object(["comparator": .string("max_sim")]))
                #expect(colbert["distance"] == .string("Cosine"))
                #expect(colbert["hnsw_config"] == .object(["m": .integer(0)]))
                #expect(try await call(client, .delete, "/collections/docs").result == .bool(true))
                let gone = try await call(client, .get, "/collections/docs")
                #expect(gone.status == .notFound)
                #expect(gone.error == "Not found: Collection `docs` doesn't exist!")
                #expect(try await call(client, .delete, "/collections/docs").result == .bool(false))
                let badName = try await call(client, .put, "/collections/..%2Fescape", createBody)
                #expect(badName.status == .badRequest || badName.status == .notFound)
            }
        }
    }

    @Test("concurrent creates of one name: one succeeds, the others get 409, and the winner's collection is intact")
    func concurrentCreates() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for _ in 0..<8 {
                        group.addTask { try await call(client, .put, "/collections/docs", createBody).status }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == .ok }.count == 1, "\(statuses)")
                #expect(statuses.filter { $0 == .conflict }.count == 7, "\(statuses)")
                let upsert = try await call(client, .put, "/collections/docs/points", pointsBody)
                #expect(upsert.status == .ok, "\(upsert.text)")
                let count = try await call(client, .post, "/collections/docs/points/count", "{}")
                #expect(count.result == .object(["count": .integer(3)]))
                let one = try await call(client, .get, "/collections/docs/points/2")
                guard case .object(let record)? = one.result, case .object(let vector)? = record["vector"] else {
                    Issue.record("no record: \(one.text)")
                    return
                }
                // The cosine multivector field still normalises: [1, 1] is stored as a unit vector.
                #expect(
                    numbers((vector["colbert"]).flatMap { if case .array(let rows) = $0 { rows.first } else { nil } })
                        .map { ($0 * 1000).rounded() } == [707, 707]
                )
            }
        }
    }

    @Test("points: upsert (list and batch), get, scroll pages, count, payload edits, deletes")
    func pointRoutes() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                let upsert = try await call(client, .put, "/collections/docs/points?wait=true", pointsBody)
                #expect(upsert.result == .object(["operation_id": .integer(0), "status": .string("completed")]))
                let batch = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"batch": {"ids": [10, 11], "vectors": {"dense": [[1, 1, 0], [0, 1, 1]], "colbert": [[[3, 4]], [[1, 0]]]}, "payloads": [{"group": "b"}, {"group": "a"}]}}"#
                )
                #expect(batch.status == .ok)
                let one = try await call(client, .get, "/collections/docs/points/10")
                guard case .object(let record)? = one.result, case .object(let vector)? = record["vector"] else {
                    Issue.record("no record: \(one.text)")
                    return
                }
                #expect(record["payload"] == .object(["group": .string("b")]))
                // Cosine fields store unit vectors, token by token for multivectors (as Qdrant does).
                guard case .array(let rows)? = vector["colbert"] else {
                    Issue.record("no colbert vector")
                    return
                }
                #expect(numbers(rows.first).map { ($0 * 1000).rounded() } == [600, 800])
                #expect(numbers(vector["dense"]).map { ($0 * 1000).rounded() } == [707, 707, 0])
                let many = try await call(
                    client,
                    .post,
                    "/collections/docs/points",
                    #"{"ids": [2, 1, 99], "with_payload": ["n"]}"#
                )
                #expect(Set(ids(resultPoints(many))) == ["1", "2"])
                #expect(
                    resultPoints(many).allSatisfy { item in
                        if case .object(let object) = item, case .object(let payload)? = object["payload"] {
                            return Array(payload.keys) == ["n"]
                        }
                        return false
                    }
                )
                let missing = try await call(client, .get, "/collections/docs/points/99")
                #expect(missing.status == .notFound)

                var seen: [String] = []
                var offset: JSONValue = .null
                repeat {
                    let page = try await call(
                        client,
                        .post,
                        "/collections/docs/points/scroll",
                        JSONValue.object(["limit": .integer(2), "offset": offset]).jsonText
                    )
                    seen += ids(resultPoints(page))
                    guard case .object(let result)? = page.result else { break }
                    offset = result["next_page_offset"] ?? .null
                } while offset != .null
                #expect(seen == ["1", "2", "10", "11", "6f1c3b9e-2a4d-4c1e-9f0a-1b2c3d4e5f60"])

                let groupA = #"{"must": [{"key": "group", "match": {"value": "a"}}]}"#
                let count = try await call(client, .post, "/collections/docs/points/count", #"{"filter": \#(groupA)}"#)
                #expect(count.result == .object(["count": .integer(3)]))

                _ = try await call(
                    client,
                    .post,
                    "/collections/docs/points/payload",
                    #"{"payload": {"x": 1}, "points": [1]}"#
                )
                _ = try await call(
                    client,
                    .put,
                    "/collections/docs/points/payload",
                    #"{"payload": {"y": 2}, "points": [2]}"#
                )
                let edited = try await call(
                    client,
                    .post,
                    "/collections/docs/points",
                    #"{"ids": [1, 2], "with_payload": true}"#
                )
                let payloads = resultPoints(edited).compactMap { item -> JSONValue? in
                    if case .object(let object) = item { return object["payload"] }
                    return nil
                }
                #expect(payloads.contains(.object(["group": .string("a"), "n": .integer(1), "x": .integer(1)])))
                #expect(payloads.contains(.object(["y": .integer(2)])))

                _ = try await call(client, .post, "/collections/docs/points/delete", #"{"points": [10]}"#)
                _ = try await call(client, .post, "/collections/docs/points/delete", #"{"filter": \#(groupA)}"#)
                let left = try await call(client, .post, "/collections/docs/points/count", "{}")
                #expect(left.result == .object(["count": .integer(1)]))
            }
        }
    }

    @Test("query: prefetch → multivector rerank, fusion, batch and explain equal the pipeline run directly")
    func queryRoutes() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                _ = try await call(client, .put, "/collections/docs/points", pointsBody)
                let body = """
                    {"prefetch": {"query": [1, 0.2, 0.1], "using": "dense", "limit": 3},
                     "query": [[1, 0], [0, 1]], "using": "colbert", "limit": 2, "with_payload": true,
                     "filter": {"must": [{"key": "group", "match": {"value": "a"}}]}}
                    """
                let served = try await call(client, .post, "/collections/docs/points/query", body)
                #expect(served.status == .ok)
                let registry = try CollectionRegistry(directory: directory)
                let direct = try QueryRunner(registry: registry).run(try JSONValue.parse(body), collection: "docs")
                #expect(served.result == (try JSONValue.parse(direct.jsonText)))
                #expect(ids(resultPoints(served)) == ["1", "6f1c3b9e-2a4d-4c1e-9f0a-1b2c3d4e5f60"])
                // The same body through the core's API alone (no server code): the same ids, payloads and scores.
                let store = try CollectionStore.open(at: (directory as NSString).appendingPathComponent("docs"))
                let core = try store.query(
                    try QueryRequest(json: try JSONValue.parse(body)),
                    encoder: nil,
                    kernel: MaxSimKernel(threadCount: 1)
                )
                try store.close()
                #expect(ids(resultPoints(served)) == core.points.map(\.id.description))
                let servedFields: [(JSONValue?, JSONValue?)] = resultPoints(served).map { point in
                    guard case .object(let object) = point else { return (nil, nil) }
                    return (object["score"], object["payload"])
                }
                #expect(numbers(.array(servedFields.map { $0.0 ?? .null })) == core.points.map { Double($0.score) })
                #expect(servedFields.map(\.1) == core.points.map { $0.payload.map(JSONValue.object) })

                let fused = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"prefetch": [{"query": [1, 0, 0], "using": "dense"}, {"query": [[0, 1]], "using": "colbert"}], "query": {"rrf": {"k": 2}}, "limit": 3}"#
                )
                let fusedPoints = resultPoints(fused)
                #expect(fusedPoints.count == 3)
                guard case .object(let first)? = fusedPoints.first else { return }
                // Point 1 is first in the dense list, and first in the multivector list too: it ties with the UUID
                // point at 1.0 and ties go to the lower internal index. RRF with k = 2: 1/2 + 1/2.
                #expect(first["id"] == .integer(1))
                let score = try #require(numbers(.array([first["score"] ?? .null])).first, "no numeric score")
                #expect(abs(score - 1.0) < 1e-6)
                guard case .object(let second) = fusedPoints[1] else { return }
                // Point 2: second in the dense list (its tie at 0 with the UUID point goes to the lower index),
                // third in the multivector list: 1/3 + 1/4.
                #expect(second["id"] == .integer(2))
                let secondScore = try #require(numbers(.array([second["score"] ?? .null])).first)
                #expect(abs(secondScore - (1.0 / 3.0 + 1.0 / 4.0)) < 1e-6)

                let batch = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query/batch",
                    #"{"searches": [{"query": [1, 0, 0], "using": "dense", "limit": 1}, {"query": 2, "using": "dense", "limit": 1}]}"#
                )
                guard case .array(let results)? = batch.result, results.count == 2 else {
                    Issue.record("batch: \(batch.text)")
                    return
                }
                let explained = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": [[1, 0], [0, 1]], "using": "colbert", "limit": 1, "explain": true}"#
                )
                guard case .object(let top)? = resultPoints(explained).first else { return }
                #expect(top["matched_tokens"] == .array([.integer(0), .integer(1)]))
            }
        }
    }

    /// Everything stored, as the API shows it: every point with payload and vectors, and the collections.
    func snapshot(_ client: some TestClientProtocol) async throws -> [JSONValue] {
        let points = try await call(
            client,
            .post,
            "/collections/docs/points/scroll",
            #"{"limit": 100, "with_payload": true, "with_vector": true}"#
        )
        let list = try await call(client, .get, "/collections")
        return [points.result ?? .null, list.result ?? .null]
    }

    @Test("bad requests: each the right status and message, and nothing stored changes")
    func errors() async throws {
        let docs = "/collections/docs"
        let groupFilter = #"{"must": [{"key": "group", "match": {"value": "a"}}]}"#
        let badFilters = [
            #"{"must": [{"key": "group"}]}"#, #"{"should": 3}"#, #"{"must": [{"key": "n", "range": {"gt": "x"}}]}"#,
        ]
        var cases: [(HTTPRequest.Method, String, String, HTTPResponse.Status, String)] = [
            // Wrong dimensions, in every place a vector goes.
            (
                .put, "\(docs)/points", #"{"points": [{"id": 5, "vector": {"dense": [1, 0], "colbert": [[1, 0]]}}]}"#,
                .badRequest, "Wrong input: Vector dimension error: expected dim: 3, got 2"
            ),
            (
                .put, "\(docs)/points",
                #"{"points": [{"id": 5, "vector": {"dense": [1, 0, 0], "colbert": [[1, 0, 1]]}}]}"#,
                .badRequest, "Wrong input: Vector dimension error: expected dim: 2, got 3"
            ),
            (
                .put, "\(docs)/points",
                #"{"batch": {"ids": [5, 6], "vectors": {"dense": [[1, 0, 0], [1, 0, 0, 0]], "colbert": [[[1, 0]], [[1, 0]]]}}}"#,
                .badRequest, "expected dim: 3, got 4"
            ),
            (
                .post, "\(docs)/points/query", #"{"query": [1, 0], "using": "dense"}"#, .badRequest,
                "Wrong input: Vector dimension error: expected dim: 3, got 2"
            ),
            (
                .post, "\(docs)/points/query", #"{"query": [[1, 0, 0]], "using": "colbert"}"#, .badRequest,
                "expected dim: 2, got 3"
            ),
            (
                .post, "\(docs)/points/query",
                #"{"prefetch": {"query": [1, 0, 0, 0], "using": "dense"}, "query": [[1, 0]], "using": "colbert"}"#,
                .badRequest, "expected dim: 3, got 4"
            ),
            // Unknown vector fields.
            (
                .put, "\(docs)/points", #"{"points": [{"id": 5, "vector": {"sparse": [1, 0, 0]}}]}"#, .badRequest,
                "Wrong input: Not existing vector name error: sparse"
            ),
            (
                .post, "\(docs)/points/query", #"{"query": [1, 0, 0], "using": "sparse"}"#, .badRequest,
                "Wrong input: Not existing vector name error: sparse"
            ),
            (
                .post, "\(docs)/points/query",
                #"{"prefetch": [{"query": [1, 0, 0], "using": "dense"}, {"query": [1], "using": "nope"}], "query": {"fusion": "rrf"}}"#,
                .badRequest, "Not existing vector name error: nope"
            ),
            (
                .post, "\(docs)/points/query", #"{"query": [1, 0, 0], "using": "dense", "with_vector": ["nope"]}"#,
                .badRequest, "Not existing vector name error: nope"
            ),
            // Bad queries.
            (.post, "\(docs)/points/query", #"{"query": {"fusion": "max"}, "prefetch": []}"#, .badRequest, "fusion"),
            (
                .post, "\(docs)/points/query", #"{"query": [1, 0, 0], "using": "dense", "limit": -1}"#, .badRequest,
                "limit"
            ),
            (
                .post, "\(docs)/points/query", #"{"query": [1, 0, 0], "using": "dense", "group_by": "n"}"#, .badRequest,
                "group_by"
            ),
            (.post, "\(docs)/points/query/batch", #"{"searches": 3}"#, .badRequest, "searches"),
            (
                .post, "\(docs)/points/query/batch",
                #"{"searches": [{"query": [1, 0, 0], "using": "dense"}, {"query": [1, 0], "using": "dense"}]}"#,
                .badRequest, "expected dim: 3, got 2"
            ),
            // Bad point ids and bodies.
            (.post, "\(docs)/points", #"{"ids": [-1]}"#, .badRequest, "ids[0]"),
            (.post, "\(docs)/points", #"{"ids": ["not-a-uuid"]}"#, .badRequest, "not a valid point id"),
            (.get, "\(docs)/points/not-a-uuid", "", .badRequest, "not a valid point id"),
            (.get, "\(docs)/points/99", "", .notFound, "Not found: Point with id 99 does not exists!"),
            (.post, "\(docs)/points/delete", #"{"points": [1.5]}"#, .badRequest, "points[0]"),
            (.post, "\(docs)/points/delete", "{}", .badRequest, "expected `points` (ids) or `filter`"),
            (.put, "\(docs)/points", #"{"points": [{"vector": {"dense": [1, 0, 0]}}]}"#, .badRequest, "id is missing"),
            (.put, "\(docs)/points", #"{"ids": [1]}"#, .badRequest, "expected `points` (a list) or `batch`"),
            (
                .post, "\(docs)/points/payload", #"{"payload": 3, "points": [1]}"#, .badRequest,
                "payload must be an object"
            ),
            (.post, "\(docs)/points/scroll", #"{"offset": "nope"}"#, .badRequest, "not a valid point id"),
            (
                .put, "\(docs)/points",
                #"{"points": [{"id": 7, "vector": {"dense": [1, 0, 0], "colbert": [[1, 0]]}, "payload": {"pad": ""#
                    + String(repeating: "x", count: 5000) + #""}}]}"#,
                .contentTooLarge, "Payload too large"
            ),
            // Collections.
            (.put, "/collections/new", #"{"vectors": {"v": {"size": 0, "distance": "Cosine"}}}"#, .badRequest, "size"),
            (
                .put, "/collections/new", #"{"vectors": {"v": {"size": 3, "distance": "Manhattan"}}}"#, .badRequest,
                "distance"
            ),
            (
                .put, "/collections/new",
                #"{"vectors": {"v": {"size": 3, "distance": "Dot", "multivector_config": {"comparator": "sum"}}}}"#,
                .badRequest, "max_sim"
            ),
            (
                .put, "/collections/new",
                #"{"vectors": {"v": {"size": 3, "distance": "Euclid", "multivector_config": {"comparator": "max_sim"}}}}"#,
                .badRequest, "Cosine and Dot only"
            ),
            (.put, "/collections/new", #"{"shard_number": 1}"#, .badRequest, "vectors"),
            (.put, "/collections/bad%20name", createBody, .badRequest, "may contain only"),
            (.put, docs, createBody, .conflict, "Collection `docs` already exists!"),
            // Routes that do not exist answer in the same envelope.
            (
                .get, "/collections/docs/points/1/extra", "", .notFound,
                "no route for GET /collections/docs/points/1/extra"
            ),
            (.post, docs, "{}", .notFound, "no route for POST"),
        ]
        // Every body-taking route: malformed JSON and, for filters, bad filters.
        let bodyRoutes: [(HTTPRequest.Method, String)] = [
            (.put, docs), (.put, "\(docs)/points"), (.post, "\(docs)/points"), (.post, "\(docs)/points/delete"),
            (.post, "\(docs)/points/scroll"), (.post, "\(docs)/points/count"), (.post, "\(docs)/points/payload"),
            (.put, "\(docs)/points/payload"), (.post, "\(docs)/points/query"), (.post, "\(docs)/points/query/batch"),
        ]
        for (method, uri) in bodyRoutes {
            cases.append((method, uri, "{bad json", .badRequest, "Format error in JSON body"))
            cases.append((method, uri, "[1, 2]", .badRequest, "JSON object"))
        }
        for filter in badFilters {
            cases.append((.post, "\(docs)/points/count", #"{"filter": \#(filter)}"#, .badRequest, "filter"))
            cases.append((.post, "\(docs)/points/scroll", #"{"filter": \#(filter)}"#, .badRequest, "filter"))
            cases.append((.post, "\(docs)/points/delete", #"{"filter": \#(filter)}"#, .badRequest, "filter"))
            cases.append(
                (
                    .post, "\(docs)/points/payload", #"{"payload": {"x": 1}, "filter": \#(filter)}"#, .badRequest,
                    "filter"
                )
            )
            cases.append(
                (
                    .post, "\(docs)/points/query", #"{"query": [1, 0, 0], "using": "dense", "filter": \#(filter)}"#,
                    .badRequest, "filter"
                )
            )
        }
        // Every collection route on a collection that does not exist.
        let missing = "Not found: Collection `nope` doesn't exist!"
        let collectionRoutes: [(HTTPRequest.Method, String, String)] = [
            (.get, "/collections/nope", ""), (.put, "/collections/nope/points", pointsBody),
            (.post, "/collections/nope/points", #"{"ids": [1]}"#), (.get, "/collections/nope/points/1", ""),
            (.post, "/collections/nope/points/delete", #"{"points": [1]}"#),
            (.post, "/collections/nope/points/scroll", "{}"), (.post, "/collections/nope/points/count", "{}"),
            (.post, "/collections/nope/points/payload", #"{"payload": {"x": 1}, "points": [1]}"#),
            (.put, "/collections/nope/points/payload", #"{"payload": {"x": 1}, "points": [1]}"#),
            (.post, "/collections/nope/points/query", #"{"query": [1, 0, 0]}"#),
            (.post, "/collections/nope/points/query/batch", #"{"searches": []}"#),
        ]
        for (method, uri, body) in collectionRoutes { cases.append((method, uri, body, .notFound, missing)) }
        let allCases = cases

        try await withDataDirectory { directory in
            try await application(directory, maximumBodyBytes: 4096).test(.router) { client in
                _ = try await call(client, .put, docs, createBody)
                _ = try await call(client, .put, "\(docs)/points", pointsBody)
                let before = try await snapshot(client)
                for (method, uri, body, status, message) in allCases {
                    let reply = try await call(client, method, uri, body.isEmpty ? nil : body)
                    #expect(reply.status == status, "\(method) \(uri) \(body.prefix(80)): \(reply.text)")
                    #expect(reply.error.contains(message), "\(method) \(uri) \(body.prefix(80)): \(reply.error)")
                    if case .double(let seconds)? = reply["time"] {
                        #expect(seconds >= 0)
                    } else {
                        Issue.record("\(method) \(uri): no time in \(reply.text)")
                    }
                }
                #expect(try await snapshot(client) == before)
                let count = try await call(client, .post, "\(docs)/points/count", #"{"filter": \#(groupFilter)}"#)
                #expect(count.result == .object(["count": .integer(2)]))
                #expect(
                    try await call(client, .get, "/collections/new/exists").result == .object(["exists": .bool(false)])
                )
            }
        }
    }

    @Test("an unnamed vector: described, upserted, returned and queried bare, as Qdrant's single vector")
    func unnamedVector() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                let created = try await call(
                    client,
                    .put,
                    "/collections/plain",
                    #"{"vectors": {"size": 2, "distance": "Dot"}}"#
                )
                #expect(created.status == .ok, "\(created.text)")
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/plain/points",
                    #"{"points": [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0.5, 0.5]}]}"#
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let info = try await call(client, .get, "/collections/plain")
                guard case .object(let result)? = info.result, case .object(let config)? = result["config"],
                    case .object(let params)? = config["params"]
                else {
                    Issue.record("no info: \(info.text)")
                    return
                }
                #expect(params["vectors"] == .object(["size": .integer(2), "distance": .string("Dot")]))
                let point = try await call(client, .get, "/collections/plain/points/2")
                guard case .object(let record)? = point.result else {
                    Issue.record("no point: \(point.text)")
                    return
                }
                #expect(numbers(record["vector"]) == [0.5, 0.5])
                let query = try await call(
                    client,
                    .post,
                    "/collections/plain/points/query",
                    #"{"query": [0, 1], "limit": 2, "with_vector": true}"#
                )
                #expect(ids(resultPoints(query)) == ["2", "1"], "\(query.text)")
                guard case .object(let top)? = resultPoints(query).first else { return }
                #expect(numbers(top["vector"]) == [0.5, 0.5])
                #expect(top["score"] == .double(0.5))
            }
        }
    }

    /// The `method` of each stage an `explain: true` answer lists, in order.
    func stageMethods(_ reply: Reply) -> [String] {
        guard case .object(let result)? = reply.result, case .array(let stages)? = result["stages"] else { return [] }
        return stages.compactMap { stage in
            if case .object(let object) = stage, case .string(let method)? = object["method"] { return method }
            return nil
        }
    }

    @Test("the compressed index serves multivector queries unless params ask for exact; explain lists the stages")
    func compressedIndexServes() async throws {
        try await withDataDirectory { directory in
            let registry = try CollectionRegistry(directory: directory)
            let router = makeRouter(registry: registry, options: ServerOptions(dataDirectory: directory))
            try await Application(router: router).test(.router) { client in
                _ = try await call(
                    client,
                    .put,
                    "/collections/docs",
                    #"{"vectors": {"dense": {"size": 4, "distance": "Dot"}, "tokens": {"size": 8, "distance": "Dot", "#
                        + #""multivector_config": {"comparator": "max_sim"}}}}"#
                )
                var state: UInt64 = 42
                func next() -> Double {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407  // LCG step.
                    return Double(state >> 11) / Double(1 << 53) * 2 - 1
                }
                var points: [JSONValue] = []
                for id in 0..<150 {
                    let tokens = (0..<4).map { _ in JSONValue.array((0..<8).map { _ in .double(next()) }) }
                    let dense = JSONValue.array((0..<4).map { _ in .double(next()) })
                    points.append(
                        .object([
                            "id": .integer(Int64(id)),
                            "vector": .object(["dense": dense, "tokens": .array(tokens)]),
                        ])
                    )
                }
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    JSONValue.object(["points": .array(points)]).jsonText
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let query = "[[0.5, -0.2, 0.1, 0.9, -0.4, 0.3, 0.0, 0.2], [0.1, 0.7, -0.5, 0.2, 0.3, -0.1, 0.6, 0.0]]"
                let before = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": \#(query), "using": "tokens", "limit": 5, "explain": true}"#
                )
                #expect(stageMethods(before) == ["maxsim"], "\(before.text)")

                _ = try registry.store("docs").buildCompressedIndex(
                    field: "tokens",
                    options: CompressedIndexOptions(centroidCount: 16, bitCount: 4)
                )
                let compressed = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": \#(query), "using": "tokens", "limit": 5, "explain": true}"#
                )
                #expect(stageMethods(compressed) == ["compressed"], "\(compressed.text)")
                #expect(resultPoints(compressed).count == 5)
                let exact = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": \#(query), "using": "tokens", "limit": 5, "explain": true, "params": {"exact": true}}"#
                )
                #expect(stageMethods(exact) == ["maxsim"], "\(exact.text)")
                #expect(ids(resultPoints(exact)) == ids(resultPoints(before)))
                let pipeline = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"prefetch": {"query": [1, 0, 0, 0], "using": "dense", "limit": 20}, "query": \#(query), "#
                        + #""using": "tokens", "limit": 5, "explain": true}"#
                )
                #expect(stageMethods(pipeline) == ["dense", "maxsim rerank"], "\(pipeline.text)")
                // Without explain, the answer is Qdrant's shape only.
                let plain = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": \#(query), "using": "tokens", "limit": 5}"#
                )
                guard case .object(let result)? = plain.result else { return }
                #expect(Array(result.keys) == ["points"])
            }
        }
    }

    @Test("api key: refused without it (401), accepted with either header; health checks stay open; metrics count")
    func apiKeyAndOperation() async throws {
        try await withDataDirectory { directory in
            try await application(directory, apiKey: "s3cret").test(.router) { client in
                let key: HTTPFields = [HTTPField.Name("api-key")!: "s3cret"]
                _ = try await call(client, .put, "/collections/docs", createBody, headers: key)
                _ = try await call(client, .put, "/collections/docs/points", pointsBody, headers: key)
                let before = try await call(
                    client,
                    .post,
                    "/collections/docs/points/scroll",
                    #"{"with_payload": true, "with_vector": true}"#,
                    headers: key
                )
                // Every route but the health checks refuses a request without the key, and changes nothing.
                let bodies = [
                    "PUT /collections/{collection_name}": createBody,
                    "PUT /collections/{collection_name}/points": pointsBody,
                    "POST /collections/{collection_name}/points/delete": #"{"points": [1, 2]}"#,
                    "POST /collections/{collection_name}/points/payload": #"{"payload": {"x": 1}, "points": [1]}"#,
                    "PUT /collections/{collection_name}/points/payload": #"{"payload": {"x": 1}, "points": [1]}"#,
                ]
                let open: Set = ["GET /healthz", "GET /livez", "GET /readyz"]
                for route in servedRoutes where !open.contains(route) {
                    let parts = route.split(separator: " ")
                    let uri = parts[1].replacingOccurrences(of: "{collection_name}", with: "docs")
                        .replacingOccurrences(of: "{id}", with: "1")
                        .replacingOccurrences(of: "{field_name}", with: "group")
                    let reply = try await call(
                        client,
                        HTTPRequest.Method(String(parts[0]))!,
                        uri,
                        bodies[route] ?? "{}"
                    )
                    #expect(reply.status == .unauthorized, "\(route): \(reply.text)")
                    #expect(reply.error == "Must provide an API key or an Authorization bearer token", "\(route)")
                }
                let after = try await call(
                    client,
                    .post,
                    "/collections/docs/points/scroll",
                    #"{"with_payload": true, "with_vector": true}"#,
                    headers: key
                )
                #expect(after.result == before.result)
                #expect(ids(resultPoints(after)).count == 3)
                let refused = try await call(client, .get, "/collections")
                #expect(refused.status == .unauthorized)
                #expect(refused.error.contains("API key"))
                let wrong = try await call(client, .get, "/collections", headers: [HTTPField.Name("api-key")!: "nope"])
                #expect(wrong.status == .unauthorized)
                let ok = try await call(client, .get, "/collections", headers: [HTTPField.Name("api-key")!: "s3cret"])
                #expect(ok.status == .ok)
                let bearer = try await call(client, .get, "/collections", headers: [.authorization: "Bearer s3cret"])
                #expect(bearer.status == .ok)
                #expect(try await call(client, .get, "/healthz").status == .ok)
                #expect(try await call(client, .get, "/readyz").status == .ok)
                let metrics = try await call(client, .get, "/metrics", headers: [.authorization: "Bearer s3cret"])
                #expect(metrics.text.contains("hb_requests"))
                #expect(metrics.text.contains("http_response_status_code=\"401\""))
                // Latency histograms by route: buckets, sum and count.
                #expect(metrics.text.contains("http_server_request_duration_bucket{"))
                #expect(metrics.text.contains("http_route=\"/collections\""))
            }
        }
    }

    @Test("the README's Qdrant endpoint table lists exactly the routes served, each once")
    func readmeTable() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let lines = try String(contentsOf: file, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        let start = try #require(lines.firstIndex { $0.hasPrefix("| Qdrant endpoint |") }, "no endpoint table")
        var listed: [String] = []
        for line in lines[(start + 2)...] {
            guard line.hasPrefix("| ") else { break }
            // The first cell names the routes; a row of what is not supported names none that are served.
            guard let end = line.dropFirst(2).range(of: " | ") else { continue }
            let cell = line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound]
            if line[end.upperBound...].hasPrefix("Not supported") { continue }
            var methods: [String] = []
            for (index, token) in cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            where index % 2 == 1 {
                if token.allSatisfy(\.isUppercase) {
                    methods.append(String(token))  // `POST`/`PUT …/path`: methods sharing the next path
                    continue
                }
                let parts = token.split(separator: " ", maxSplits: 1)
                let path = String(parts.count == 2 ? parts[1] : token)
                    .replacingOccurrences(of: "…", with: "/collections/{name}")
                    .replacingOccurrences(of: "{name}", with: "{collection_name}")
                methods += parts.count == 2 ? [String(parts[0])] : (methods.isEmpty ? ["GET"] : [])
                listed += methods.map { "\($0) \(path)" }
                methods = []
            }
        }
        #expect(
            listed.count == Set(listed).count,
            "listed twice: \(listed.filter { r in listed.count { $0 == r } > 1 })"
        )
        #expect(Set(listed).subtracting(servedRoutes).sorted() == [], "listed but not served")
        #expect(Set(servedRoutes).subtracting(listed).sorted() == [], "served but not listed")
    }

    @Test("the OpenAPI description lists exactly the routes served, and every listed route is routed")
    func openAPI() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.json")
        let document = try JSONValue.parse(String(contentsOf: file, encoding: .utf8))
        guard case .object(let root) = document, case .object(let paths)? = root["paths"] else {
            Issue.record("docs/openapi.json has no paths")
            return
        }
        var described: [String] = []
        for (path, operations) in paths {
            guard case .object(let methods) = operations else { continue }
            for method in methods.keys { described.append("\(method.uppercased()) \(path)") }
        }
        #expect(described.sorted() == servedRoutes.sorted())
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                for route in servedRoutes {
                    let parts = route.split(separator: " ")
                    let uri = parts[1].replacingOccurrences(of: "{collection_name}", with: "absent")
                        .replacingOccurrences(of: "{id}", with: "1")
                        .replacingOccurrences(of: "{field_name}", with: "group")
                    let reply = try await call(client, HTTPRequest.Method(String(parts[0]))!, uri, "{}")
                    // Requests no route matches are answered "no route for …"; every served route is matched.
                    #expect(!reply.error.contains("no route for"), "\(route) is not routed")
                }
            }
        }
    }
}

/// A deterministic stand-in for the model: one unit vector per word (from the word's hash), pooled by sum.
struct WordEncoder: QueryTextEncoder, DocumentTextEncoder {
    func rows(_ text: String, dimension: Int) -> [[Float]] {
        text.lowercased().split(separator: " ").map { word in
            var state = UInt64(word.utf8.reduce(5381) { ($0 &* 33) &+ UInt64($1) })
            return (0..<dimension).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407  // LCG step.
                return Float(Int64(bitPattern: state >> 11) % 1000) / 1000
            }
        }
    }

    func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        let rows = rows(text, dimension: field.dimension)
        if case .dense = field.kind { return .dense((0..<field.dimension).map { i in rows.reduce(0) { $0 + $1[i] } }) }
        return .multivector(rows)
    }

    func encodeDocument(_ text: String, for field: VectorField) throws -> VectorValue {
        try encode(text, for: field)
    }
}

@Suite("Server: text extensions")
struct TextExtensionTests {
    @Test("documents upserted as text and text queries go through the server's encoder; without one, a clear 400")
    func textDocumentsAndQueries() async throws {
        try await withDataDirectory { directory in
            let registry = try CollectionRegistry(directory: directory)
            let encoder = WordEncoder()
            let router = makeRouter(
                registry: registry,
                options: ServerOptions(dataDirectory: directory, encoder: encoder, documentEncoder: encoder)
            )
            try await Application(router: router).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 1, "vector": {"dense": {"text": "red apple"}, "colbert": {"text": "red apple"}}, "payload": {"text": "red apple"}}, {"id": 2, "vector": {"dense": {"text": "blue sky"}, "colbert": {"text": "blue sky"}}, "payload": {"text": "blue sky"}}]}"#
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let byTokens = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": {"text": "apple"}, "using": "colbert", "limit": 2}"#
                )
                #expect(ids(resultPoints(byTokens)) == ["1", "2"], "\(byTokens.text)")
                let byBM25 = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": {"text": "sky"}, "limit": 2, "params": {"text_fields": ["text"]}}"#
                )
                #expect(ids(resultPoints(byBM25)) == ["2"], "\(byBM25.text)")
            }
            let plain = makeRouter(registry: registry, options: ServerOptions(dataDirectory: directory))
            try await Application(router: plain).test(.router) { client in
                let refused = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 3, "vector": {"dense": {"text": "x"}, "colbert": [[1, 0]]}}]}"#
                )
                #expect(refused.status == .badRequest)
                #expect(refused.error.contains("--model"))
                let count = try await call(client, .post, "/collections/docs/points/count", "{}")
                #expect(count.result == .object(["count": .integer(2)]))
            }
        }
    }
}
