import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Tessera
import TesseraPlatform
import Testing

@testable import TesseraServer

@Suite("Server: the background optimiser")
struct OptimizerTests {
    func info(_ client: some TestClientProtocol) async throws -> JSONObject {
        let reply = try await call(client, .get, "/collections/docs")
        guard case .object(let result)? = reply.result else {
            Issue.record("no collection info: \(reply.text)")
            return [:]
        }
        return result
    }

    @Test("optimizers_config is taken at creation and by PATCH; the optimiser seals, merges, builds; answers hold")
    func backgroundOptimizer() async throws {
        try await withDataDirectory { directory in
            let registry = try CollectionRegistry(directory: directory)
            let router = makeRouter(registry: registry, options: ServerOptions(dataDirectory: directory))
            try await Application(router: router).test(.router) { client in
                let created = try await call(
                    client,
                    .put,
                    "/collections/docs",
                    #"{"vectors": {"dense": {"size": 4, "distance": "Dot"}, "tokens": {"size": 8, "distance": "Dot", "#
                        + #""multivector_config": {"comparator": "max_sim"}}}, "#
                        + #""optimizers_config": {"indexing_threshold": 0, "default_segment_number": 2}}"#
                )
                #expect(created.status == .ok, "\(created.text)")
                let refused = try await call(
                    client,
                    .put,
                    "/collections/other",
                    #"{"vectors": {"size": 4, "distance": "Dot"}, "optimizers_config": {"memmap_threshold": 5}}"#
                )
                #expect(refused.status == .badRequest)
                #expect(refused.error.contains("memmap_threshold"), "\(refused.error)")
                #expect(try await call(client, .get, "/collections/other/exists").result == ["exists": false])

                var random = SplitMix64(seed: 17)
                let queryTokens = JSONValue.array(
                    (0..<3).map { _ in .array(random.signedUnits(8).map { .double(Double($0)) }) }
                )
                let query = JSONValue.object(["query": queryTokens, "using": "tokens", "limit": 20]).jsonText
                // Four batches; indexing_threshold 0 keeps the optimiser off, so they stay in the appendable tail.
                for batch in 0..<4 {
                    var points: [JSONValue] = []
                    for id in (batch * 50)..<(batch * 50 + 50) {
                        let tokens = JSONValue.array(
                            (0..<(1 + id % 4)).map { _ in .array(random.signedUnits(8).map { .double(Double($0)) }) }
                        )
                        points.append([
                            "id": .integer(Int64(id)),
                            "vector": [
                                "tokens": tokens, "dense": .array(random.signedUnits(4).map { .double(Double($0)) }),
                            ],
                            "payload": ["batch": .integer(Int64(batch))],
                        ])
                    }
                    let upserted = try await call(
                        client,
                        .put,
                        "/collections/docs/points?wait=true",
                        JSONValue.object(["points": .array(points)]).jsonText
                    )
                    #expect(upserted.status == .ok, "\(upserted.text)")
                }
                _ = try await call(
                    client,
                    .post,
                    "/collections/docs/points/delete?wait=true",
                    #"{"points": [3, 60, 120]}"#
                )
                let before = try await call(client, .post, "/collections/docs/points/query", query)
                var state = try await info(client)
                #expect(state["status"] == "green")
                #expect(state["segments_count"] == .integer(1))
                guard case .object(let config)? = state["config"],
                    case .object(let optimizer)? = config["optimizer_config"]
                else {
                    Issue.record("no optimizer_config")
                    return
                }
                #expect(optimizer["default_segment_number"] == .integer(2))
                #expect(optimizer["indexing_threshold"] == .integer(0))

                // Turned on by PATCH: 1 KB of vectors is past the threshold, so the optimiser has work (grey).
                let patched = try await call(
                    client,
                    .patch,
                    "/collections/docs",
                    #"{"optimizers_config": {"indexing_threshold": 1}}"#
                )
                #expect(patched.status == .ok, "\(patched.text)")
                #expect(try await info(client)["status"] == "grey")
                let badPatch = try await call(client, .patch, "/collections/docs", #"{"vectors": {}}"#)
                #expect(badPatch.status == .badRequest)

                let service = Task {
                    try await BackgroundOptimizer(
                        registry: registry,
                        interval: .milliseconds(20),
                        logger: Logger(label: "test")
                    ).run()
                }
                defer { service.cancel() }
                let deadline = ContinuousClock.now + .seconds(120)
                repeat {
                    try await Task.sleep(for: .milliseconds(100))
                    state = try await info(client)
                } while state["status"] != "green" && ContinuousClock.now < deadline
                #expect(state["status"] == "green", "\(state["status"] ?? .null) \(state["optimizer_status"] ?? .null)")
                #expect(state["optimizer_status"] == "ok")
                // Sealed (one segment, the tail now empty) and the compressed index and the HNSW graph built.
                #expect(state["segments_count"] == .integer(2))
                #expect(state["indexed_vectors_count"] == .integer(197))
                let store = try registry.store("docs")
                #expect(store.segments().count == 1)
                #expect(try store.compressedIndexStatus(field: "tokens") != nil)
                #expect(try store.denseIndexStatus(field: "dense") != nil)

                // Exact answers are the same from the segment as from the tail.
                let exactQuery =
                    JSONValue.object(["query": queryTokens, "using": "tokens", "limit": 20, "params": ["exact": true]])
                    .jsonText
                let exactBefore = before
                let after = try await call(client, .post, "/collections/docs/points/query", exactQuery)
                #expect(after.status == .ok, "\(after.text)")
                #expect(ids(resultPoints(after)) == ids(resultPoints(exactBefore)))
                func scores(_ reply: Reply) -> [JSONValue?] {
                    resultPoints(reply).map { point in
                        if case .object(let object) = point { return object["score"] }
                        return nil
                    }
                }
                #expect(scores(after) == scores(exactBefore))
            }
        }
    }
}
