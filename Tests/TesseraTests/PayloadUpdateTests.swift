import Testing

@testable import Tessera

/// Payload writes with nested keys, as Qdrant's server applies them (the expected payloads are what qdrant-client's
/// local mode gives for the same calls).
@Suite("Payload updates")
struct PayloadUpdateTests {
    static let payload = #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#

    static func object(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONValue.parse(text) else { fatalError("not an object: \(text)") }
        return object
    }

    static func set(_ values: String, key: String?) throws -> JSONObject {
        try PayloadUpdate.set(object(values), key: key.map { try PayloadKey($0) }).apply(to: object(payload))
    }

    static func delete(_ key: String) throws -> JSONObject {
        try PayloadUpdate.delete([PayloadKey(key)]).apply(to: object(payload))
    }

    @Test("set without a key merges, and null removes a member")
    func merge() throws {
        #expect(
            try Self.set(#"{"k": null, "z": [1], "n": 0}"#, key: nil)
                == Self.object(#"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "z": [1], "n": 0}"#)
        )
    }

    @Test("set with a key writes into the object at its path, creating or replacing what is on the way")
    func nested() throws {
        let cases: [(String, String, String)] = [
            ("a", #"{"b": 9, "c": null}"#, #"{"a": {"b": 9}, "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#),
            (
                "a.new", #"{"q": 1}"#,
                #"{"a": {"b": 1, "c": 2, "new": {"q": 1}}, "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#
            ),
            ("k", #"{"w": 1}"#, #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": {"w": 1}, "n": null}"#),
            (
                "k.deep", #"{"w": 1}"#,
                #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": {"deep": {"w": 1}}, "n": null}"#
            ),
            (
                "missing.p", #"{"w": 1}"#,
                #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "missing": {"p": {"w": 1}}, "n": null}"#
            ),
            (
                "arr[]", #"{"y": 5}"#,
                #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1, "y": 5}, {"x": 3, "y": 5}, {"y": 5}], "k": "v", "n": null}"#
            ),
            (
                "arr[0]", #"{"y": 5}"#,
                #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1, "y": 5}, {"x": 3}, 7], "k": "v", "n": null}"#
            ),
            ("arr[5]", #"{"y": 5}"#, Self.payload),
            (
                "arr[].x", #"{"y": 5}"#,
                #"{"a": {"b": 1, "c": 2}, "arr": [{"x": {"y": 5}}, {"x": {"y": 5}}, {"x": {"y": 5}}], "k": "v", "n": null}"#
            ),
            ("k[]", #"{"y": 5}"#, #"{"a": {"b": 1, "c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": [], "n": null}"#),
            ("a[0]", #"{"y": 5}"#, #"{"a": [], "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#),
        ]
        for (key, values, expected) in cases {
            #expect(try Self.set(values, key: key) == Self.object(expected), "key \(key)")
        }
    }

    @Test("delete removes members, elements' members and array contents; an index at the end removes nothing")
    func delete() throws {
        let cases: [(String, String)] = [
            ("a.b", #"{"a": {"c": 2}, "arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#),
            ("arr[].x", #"{"a": {"b": 1, "c": 2}, "arr": [{}, {}, 7], "k": "v", "n": null}"#),
            ("arr[]", #"{"a": {"b": 1, "c": 2}, "arr": [], "k": "v", "n": null}"#),
            ("arr[0]", Self.payload),
            ("arr[0].x", #"{"a": {"b": 1, "c": 2}, "arr": [{}, {"x": 3}, 7], "k": "v", "n": null}"#),
            ("missing.z", Self.payload),
            ("k.z", Self.payload),
            ("a", #"{"arr": [{"x": 1}, {"x": 3}, 7], "k": "v", "n": null}"#),
        ]
        for (key, expected) in cases {
            #expect(try Self.delete(key) == Self.object(expected), "key \(key)")
        }
        #expect(try PayloadUpdate.clear.apply(to: Self.object(Self.payload)).isEmpty)
        #expect(try PayloadUpdate.overwrite(["q": 1]).apply(to: Self.object(Self.payload)) == ["q": 1])
    }
}
