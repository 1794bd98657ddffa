import Testing

@testable import Tessera

/// `with_payload` include and exclude over nested payloads, as Qdrant's client applies them.
@Suite("Payload selectors")
struct PayloadSelectorTests {
    static let d: JSONValue = .object(["e": .integer(1), "f": .integer(2)])
    static let payload: JSONObject = [
        "a": .object(["b": .integer(1), "c": .integer(2), "d": d]),
        "arr": .array([.object(["x": .integer(1), "y": .integer(2)]), .object(["x": .integer(3)]), .integer(7)]),
        "k": .string("v"),
        "top": .double(5.0),
    ]

    static func include(_ keys: [String]) throws -> JSONValue {
        .object(try PayloadSelector(include: keys).apply(to: payload))
    }

    static func exclude(_ keys: [String]) throws -> JSONValue {
        .object(try PayloadSelector(exclude: keys).apply(to: payload))
    }

    @Test("include keeps the named paths with the objects around them")
    func include() throws {
        #expect(try Self.include(["a.b"]) == .object(["a": .object(["b": .integer(1)])]))
        #expect(try Self.include(["a"]) == .object(["a": Self.payload["a"]!]))
        #expect(
            try Self.include(["a.b", "a.d.e"])
                == .object(["a": .object(["b": .integer(1), "d": .object(["e": .integer(1)])])])
        )
        #expect(try Self.include(["a.d", "a.d.e"]) == .object(["a": .object(["d": Self.d])]))
        #expect(try Self.include(["a.nope"]) == .object(["a": .object([:])]))
        #expect(try Self.include(["nope"]) == .object([:]))
        #expect(try Self.include(["k.b", "top"]) == .object(["k": .string("v"), "top": .double(5.0)]))
        #expect(
            try Self.include(["arr[].x"])
                == .object(["arr": .array([.object(["x": .integer(1)]), .object(["x": .integer(3)]), .integer(7)])])
        )
        #expect(try Self.include(["arr.x"]) == .object(["arr": .array([])]))
        #expect(try Self.include(["arr[]"]) == .object(["arr": Self.payload["arr"]!]))
        #expect(try Self.include([]) == .object([:]))
    }

    @Test("exclude removes the named paths and leaves the objects around them")
    func exclude() throws {
        var expected = Self.payload
        expected["a"] = .object(["c": .integer(2), "d": Self.d])
        #expect(try Self.exclude(["a.b"]) == .object(expected))
        expected = Self.payload
        expected["arr"] = .array([.object(["y": .integer(2)]), .object([:]), .integer(7)])
        expected["k"] = nil
        #expect(try Self.exclude(["arr[].x", "k"]) == .object(expected))
        expected = Self.payload
        expected["arr"] = .array([])
        #expect(try Self.exclude(["arr[]"]) == .object(expected))
        // Paths that lead nowhere remove nothing: a member step on an array, past a scalar, a missing key.
        #expect(try Self.exclude(["arr.x", "k.b", "nope", "a[].b"]) == .object(Self.payload))
        #expect(try Self.exclude([]) == .object(Self.payload))
    }

    @Test("keys compare byte for byte, and array indices are refused with the key named")
    func keysAndRefusals() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        let payload: JSONObject = [composed: .integer(1), decomposed: .integer(2)]
        #expect(try PayloadSelector(include: [decomposed]).apply(to: payload) == [decomposed: .integer(2)])
        #expect(try PayloadSelector(exclude: [decomposed]).apply(to: payload) == [composed: .integer(1)])
        #expect {
            _ = try PayloadSelector(include: ["arr[0].x"])
        } throws: { error in
            (error as? TesseraError)?.message.contains("'arr[0].x' has an array index") == true
        }
        #expect(throws: TesseraError.self) { _ = try PayloadSelector(exclude: ["a..b"]) }
    }
}
