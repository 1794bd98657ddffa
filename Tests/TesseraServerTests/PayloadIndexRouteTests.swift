import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tessera
import Testing

@testable import TesseraServer

@Suite("Payload index routes")
struct PayloadIndexRouteTests {
    @Test("PUT /index, payload_schema in the info, filters unchanged, DELETE /index/{field}, and refusals")
    func roundTrip() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                _ = try await call(client, .put, "/collections/docs/points?wait=true", pointsBody)
                let filter = #"{"filter": {"must": [{"key": "group", "match": {"value": "a"}}]}, "exact": true}"#
                let before = try await call(client, .post, "/collections/docs/points/count", filter)

                let created = try await call(
                    client,
                    .put,
                    "/collections/docs/index?wait=true",
                    #"{"field_name": "group", "field_schema": "keyword"}"#
                )
                #expect(created.status == .ok, "\(created.text)")
                #expect(created.result == ["operation_id": 0, "status": "completed"])
                #expect(created["status"] == "ok")
                let object = try await call(
                    client,
                    .put,
                    "/collections/docs/index",
                    #"{"field_name": "n", "field_schema": {"type": "integer", "range": true, "lookup": true}}"#
                )
                #expect(object.status == .ok, "\(object.text)")

                let info = try await call(client, .get, "/collections/docs")
                guard case .object(let result)? = info.result else {
                    Issue.record("no info: \(info.text)")
                    return
                }
                #expect(
                    result["payload_schema"]
                        == [
                            "group": ["data_type": "keyword", "points": 3],
                            "n": ["data_type": "integer", "points": 3],
                        ]
                )
                let after = try await call(client, .post, "/collections/docs/points/count", filter)
                #expect(after.result == before.result)
                #expect(after.result == ["count": 2])
                let range = try await call(
                    client,
                    .post,
                    "/collections/docs/points/count",
                    #"{"filter": {"must": [{"key": "n", "range": {"gte": 2}}]}}"#
                )
                #expect(range.result == ["count": 2])

                for (body, expected) in [
                    (#"{"field_name": "title", "field_schema": {"type": "text", "tokenizer": "prefix"}}"#, "'title'"),
                    (#"{"field_name": "place", "field_schema": {"type": "geo"}}"#, "'place'"),
                    (#"{"field_name": "group", "field_schema": "keywords"}"#, "unknown field_schema"),
                    (#"{"field_name": "group"}"#, "field_schema is required"),
                    (#"{"field_name": "group", "field_schema": {"type": "keyword", "colour": true}}"#, "colour"),
                    (#"{"field_name": "a..b", "field_schema": "keyword"}"#, "'a..b'"),
                ] {
                    let refused = try await call(client, .put, "/collections/docs/index", body)
                    #expect(refused.status == .badRequest, "\(body): \(refused.text)")
                    #expect(refused.error.contains(expected), "\(body): \(refused.error)")
                }
                let missing = try await call(
                    client,
                    .put,
                    "/collections/absent/index",
                    #"{"field_name": "group", "field_schema": "keyword"}"#
                )
                #expect(missing.status == .notFound)

                let deleted = try await call(client, .delete, "/collections/docs/index/group?wait=true")
                #expect(deleted.status == .ok, "\(deleted.text)")
                #expect(deleted.result == ["operation_id": 0, "status": "completed"])
                let again = try await call(client, .delete, "/collections/docs/index/group")
                #expect(again.status == .ok)
                let remaining = try await call(client, .get, "/collections/docs")
                guard case .object(let rest)? = remaining.result else { return }
                #expect(rest["payload_schema"] == ["n": ["data_type": "integer", "points": 3]])
                #expect(try await call(client, .post, "/collections/docs/points/count", filter).result == ["count": 2])
            }
        }
    }

    @Test("a nested key, percent-encoded in the DELETE path")
    func nestedKey() async throws {
        try await withDataDirectory { directory in
            try await application(directory).test(.router) { client in
                _ = try await call(client, .put, "/collections/docs", createBody)
                let created = try await call(
                    client,
                    .put,
                    "/collections/docs/index",
                    #"{"field_name": "tags[].name", "field_schema": "keyword"}"#
                )
                #expect(created.status == .ok, "\(created.text)")
                let deleted = try await call(client, .delete, "/collections/docs/index/tags%5B%5D.name")
                #expect(deleted.status == .ok, "\(deleted.text)")
                let info = try await call(client, .get, "/collections/docs")
                guard case .object(let result)? = info.result else { return }
                #expect(result["payload_schema"] == [:])
            }
        }
    }
}
