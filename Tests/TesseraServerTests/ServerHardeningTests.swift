import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tessera
import Testing

@testable import TesseraServer

private let denseCreate = #"{"vectors": {"size": 3, "distance": "Cosine"}}"#
private let densePoints = """
    {"points": [
      {"id": 1, "vector": [1, 0, 0], "payload": {"n": 1}},
      {"id": 2, "vector": [0, 1, 0], "payload": {"n": 2}},
      {"id": 3, "vector": [0, 0, 1], "payload": {"n": 3}}
    ]}
    """

@Suite("Server: hostile and careless requests")
struct ServerHardeningTests {
    @Test("limits and offsets far beyond the collection answer 200, capped by its size, as Qdrant's")
    func hugeLimits() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                #expect(try await call(client, .put, "/collections/docs/points", pointsBody).status == .ok)
                let bodies: [(String, Int)] = [
                    (#"{"query": [1, 0, 0], "using": "dense", "offset": 1000000000000000}"#, 0),
                    (#"{"query": [[1, 0]], "using": "colbert", "limit": 1000000000000}"#, 3),
                    (#"{"query": [1, 0, 0], "using": "dense", "limit": 9223372036854775807, "offset": 1}"#, 2),
                    (#"{"query": [1, 0, 0], "using": "dense", "limit": 18446744073709551615}"#, 3),
                    (
                        #"{"prefetch": {"query": [[1, 0]], "using": "colbert", "limit": 1000000000000}, "query": [1, 0, 0], "using": "dense", "limit": 1000000000000}"#,
                        3
                    ),
                ]
                for (body, expected) in bodies {
                    let reply = try await call(client, .post, "/collections/docs/points/query", body)
                    #expect(reply.status == .ok, "\(body): \(reply.text)")
                    #expect(resultPoints(reply).count == expected, "\(body)")
                }
                let scroll = try await call(
                    client,
                    .post,
                    "/collections/docs/points/scroll",
                    #"{"limit": 9223372036854775807}"#
                )
                #expect(scroll.status == .ok)
                #expect(resultPoints(scroll).count == 3)
                let negative = try await call(client, .post, "/collections/docs/points/query", #"{"limit": -1}"#)
                #expect(negative.status == .badRequest)
            }
        }
    }

    @Test("bodies that are too deep, out of range or not UTF-8 are refused with what and where")
    func malformedBodies() async throws {
        try await withDataDirectory { directory in
            try await application(directory, maximumBodyBytes: 32 << 20).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", denseCreate)
                let nested = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
                let deep = try await call(client, .put, "/collections/docs/points", nested)
                #expect(deep.status == .badRequest)
                #expect(deep.error.contains("recursion limit exceeded"), "\(deep.error)")
                let filter = String(repeating: #"{"must": ["#, count: 250) + "{}" + String(repeating: "]}", count: 250)
                let deepFilter = try await call(
                    client,
                    .post,
                    "/collections/docs/points/count",
                    #"{"filter": \#(filter)}"#
                )
                #expect(deepFilter.status == .badRequest)
                #expect(deepFilter.error.contains("recursion limit exceeded"))
                let huge = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 1, "vector": [1e400, 0, 0]}]}"#
                )
                #expect(huge.status == .badRequest)
                #expect(huge.error.contains("number out of range at line 1 column 34"), "\(huge.error)")
                let surrogate = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 1, "vector": [1, 0, 0], "payload": {"a": "\ud800"}}]}"#
                )
                #expect(surrogate.status == .badRequest)
                #expect(surrogate.error.contains("lone leading surrogate"))
                let bytes =
                    Array(#"{"points": [{"id": 1, "vector": [1, 0, 0], "payload": {"a": ""#.utf8) + [0xFF]
                    + Array(#""}}]}"#.utf8)
                let invalid = try await client.execute(
                    uri: "/collections/docs/points",
                    method: .put,
                    body: ByteBuffer(bytes: bytes)
                ) { response in response }
                #expect(invalid.status == .badRequest)
                #expect(String(buffer: invalid.body).contains("invalid UTF-8 in a string"))
                let numbers = (0..<3_000_000).map { _ in "0.5" }.joined(separator: ",")
                let long = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 1, "vector": [\#(numbers)]}]}"#
                )
                #expect(long.status == .badRequest)
                #expect(long.error.contains("expected dim: 3, got 3000000"))
                let count = try await call(client, .post, "/collections/docs/points/count", "{}")
                #expect(count.result == .object(["count": .integer(0)]))
            }
        }
    }

    @Test("ids are u64 end to end: 2^64-1 is stored, returned and addressed; a string of digits is not an id")
    func unsignedIDs() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", denseCreate)
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 18446744073709551615, "vector": [1, 0, 0]}, {"id": 9223372036854775808, "vector": [0, 1, 0]}]}"#
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let scroll = try await call(client, .post, "/collections/docs/points/scroll", "{}")
                #expect(scroll.text.contains(#""id":18446744073709551615"#))
                #expect(scroll.text.contains(#""id":9223372036854775808"#))
                #expect(!scroll.text.contains("-1"))
                let one = try await call(client, .get, "/collections/docs/points/18446744073709551615")
                #expect(one.status == .ok)
                let byBody = try await call(
                    client,
                    .post,
                    "/collections/docs/points",
                    #"{"ids": [18446744073709551615]}"#
                )
                #expect(resultPoints(byBody).count == 1)
                let digits = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": "18446744073709551615", "vector": [1, 0, 0]}]}"#
                )
                #expect(digits.status == .badRequest)
                #expect(digits.error.contains("a string id must be a UUID"))
                let filtered = try await call(
                    client,
                    .post,
                    "/collections/docs/points/count",
                    #"{"filter": {"must": [{"has_id": [18446744073709551615]}]}}"#
                )
                #expect(filtered.result == .object(["count": .integer(1)]))
            }
        }
    }

    @Test("payload keys compare by bytes, floats stay floats, overflowing scores are null")
    func silentDifferences() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", #"{"vectors": {"size": 2, "distance": "Dot"}}"#)
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/docs/points",
                    #"{"points": [{"id": 1, "vector": [3e38, 3e38], "payload": {"\u00e9": 1, "e\u0301": 2, "x": 5.0}}]}"#
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let got = try await call(client, .get, "/collections/docs/points/1")
                guard case .object(let point)? = got.result, case .object(let payload)? = point["payload"] else {
                    Issue.record("no payload: \(got.text)")
                    return
                }
                #expect(payload.count == 3)
                #expect(payload["\u{E9}"] == .integer(1))
                #expect(payload["e\u{301}"] == .integer(2))
                #expect(got.text.contains(#""x":5.0"#))
                let query = try await call(
                    client,
                    .post,
                    "/collections/docs/points/query",
                    #"{"query": [3e38, 3e38], "with_payload": ["e\u0301"]}"#
                )
                #expect(query.status == .ok)
                #expect(query.text.contains(#""score":null"#), "\(query.text)")
                guard case .object(let hit)? = resultPoints(query).first, case .object(let selected)? = hit["payload"]
                else {
                    Issue.record("no hit: \(query.text)")
                    return
                }
                #expect(selected.keys == ["e\u{301}"])
            }
        }
    }

    @Test("a damaged collection answers 500 with SQLite's cause and no server path; hidden names are refused")
    func errorBodies() async throws {
        try await withDataDirectory { directory in
            let path = (directory as NSString).appendingPathComponent("bad")
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [
                    VectorField(name: "default", dimension: 2, kind: .dense(distance: .dot))
                ])
            )
            try store.close()
            let file = try FileHandle(forUpdating: URL(fileURLWithPath: path + "/collection.sqlite"))
            try file.write(contentsOf: Data(repeating: 0x5A, count: 16))
            try file.close()
            try await application(directory).test(.router) { client in
                let reply = try await call(client, .post, "/collections/bad/points/scroll", "{}")
                #expect(reply.status == .internalServerError)
                #expect(reply.error.contains("file is not a database"), "\(reply.error)")
                #expect(!reply.text.contains(directory))
                #expect(!reply.text.contains("/tmp"))
                let hidden = try await call(client, .put, "/collections/.hidden", denseCreate)
                #expect(hidden.status == .badRequest)
            }
        }
    }

    @Test("deleting a collection under upserts: every answer is 200 or 404, none after the delete, nothing left behind")
    func deleteUnderTraffic() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", denseCreate)
                let statuses = try await withThrowingTaskGroup(of: [HTTPResponse.Status].self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            var seen: [HTTPResponse.Status] = []
                            for index in 0..<400 {
                                let body = #"{"points": [{"id": \#(writer * 1000 + index), "vector": [1, 2, 3]}]}"#
                                let reply = try await call(client, .put, "/collections/docs/points", body)
                                seen.append(reply.status)
                                if reply.status == .notFound { break }
                            }
                            return seen
                        }
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    let deleted = try await call(client, .delete, "/collections/docs")
                    #expect(deleted.status == .ok)
                    #expect(deleted.result == .bool(true))
                    let after = try await call(
                        client,
                        .put,
                        "/collections/docs/points",
                        #"{"points": [{"id": 99999, "vector": [1, 2, 3]}]}"#
                    )
                    #expect(after.status == .notFound)
                    var all: [HTTPResponse.Status] = []
                    for try await seen in group { all += seen }
                    return all
                }
                #expect(statuses.allSatisfy { $0 == .ok || $0 == .notFound }, "\(Set(statuses.map(\.code)))")
                #expect(statuses.contains(.ok))
                let left = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                #expect(left.filter { !$0.hasPrefix(".tessera") } == [], "\(left)")
                #expect(try await call(client, .get, "/collections/docs/exists").result == ["exists": false])
            }
        }
    }
}

@Suite("Server: a collection's Qdrant parameters live in the collection")
struct QdrantParametersTests {
    @Test("distance of a multivector, hnsw m and the unnamed vector survive a copy of the database alone")
    func parametersInTheDatabase() async throws {
        try await withDataDirectory { directory in
            let create =
                #"{"vectors": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}, "hnsw_config": {"m": 0}}}"#
            let info = try await application(directory).test(.router) { client -> JSONValue in
                #expect(try await call(client, .put, "/collections/one", create).status == .ok)
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/one/points",
                    #"{"points": [{"id": 1, "vector": [[3, 4], [0, 2]]}]}"#
                )
                #expect(upsert.status == .ok)
                return try await call(client, .get, "/collections/one").result ?? .null
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/one")
            #expect(!files.contains("qdrant-vectors.json"))
            // Only the database travels: the copy is described, stored and queried the same.
            try FileManager.default.createDirectory(atPath: directory + "/copy", withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: directory + "/one/collection.sqlite",
                toPath: directory + "/copy/collection.sqlite"
            )
            let store = try CollectionStore.open(at: directory + "/copy")
            let field = try #require(store.configuration.fields.first)
            #expect(field.multivectorDistance == .cosine)
            #expect(field.hnswM == 0)
            #expect(store.configuration.unnamedVector == true)
            // The collection, not the server, stored unit token vectors.
            let stored = try store.get(ids: [.integer(1)], withVectors: true).first?.vectors?["default"]
            #expect(stored == .multivector([[0.6, 0.8], [0, 1]]))
            try store.close()
            try await application(directory).test(.router) { client in
                guard case .object(var copied)? = try await call(client, .get, "/collections/copy").result,
                    case .object(var original) = info
                else {
                    Issue.record("no info")
                    return
                }
                for key in ["points_count", "indexed_vectors_count"] {
                    copied[key] = nil
                    original[key] = nil
                }
                #expect(copied == original)
                let query = try await call(client, .post, "/collections/copy/points/query", #"{"query": [[0, 5]]}"#)
                // Token [0, 5] scaled to [0, 1]: its best match is the stored [0, 1], cosine 1.
                guard case .object(let hit)? = resultPoints(query).first else {
                    Issue.record("no hit: \(query.text)")
                    return
                }
                #expect(numbers(.array([hit["score"] ?? .null])) == [1.0])
            }
        }
    }
}
