import Foundation
import Tessera
import TesseraPlatform
import Testing

@Suite("JSON parser and writer")
struct JSONParserTests {
    /// `depth` nested arrays around `0`.
    func nestedArrays(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + "0" + String(repeating: "]", count: depth)
    }

    @Test("nesting up to 128 levels parses; one more is refused at the level too many")
    func depthLimit() throws {
        for depth in [1, 127, 128] { #expect(throws: Never.self) { try JSONValue.parse(nestedArrays(depth)) } }
        let error = #expect(throws: TesseraError.self) { try JSONValue.parse(nestedArrays(129)) }
        #expect(error?.message.contains("recursion limit exceeded") == true)
        #expect(error?.location.offset == 128)
        let objects = String(repeating: #"{"a":"#, count: 129) + "0" + String(repeating: "}", count: 129)
        #expect(throws: TesseraError.self) { try JSONValue.parse(objects) }
    }

    @Test("a 500-deep body and a 250-deep filter are refused, not decoded")
    func hostileNesting() throws {
        let error = #expect(throws: TesseraError.self) { try JSONValue.parse(nestedArrays(500)) }
        #expect(error?.code == .invalidArgument)
        let filter = String(repeating: #"{"must": ["#, count: 250) + "{}" + String(repeating: "]}", count: 250)
        #expect(throws: TesseraError.self) { try Filter(json: filter) }
    }

    @Test("numbers keep their kind: integers, u64 above Int64.max, doubles written with a fraction")
    func numbers() throws {
        #expect(try JSONValue.parse("42") == .integer(42))
        #expect(try JSONValue.parse("-9223372036854775808") == .integer(Int64.min))
        #expect(try JSONValue.parse("9223372036854775807") == .integer(Int64.max))
        #expect(try JSONValue.parse("9223372036854775808") == .unsigned(9_223_372_036_854_775_808))
        #expect(try JSONValue.parse("18446744073709551615") == .unsigned(UInt64.max))
        #expect(try JSONValue.parse("18446744073709551616") == .double(18_446_744_073_709_551_616))
        #expect(try JSONValue.parse("5.0") == .double(5))
        #expect(try JSONValue.parse("5.0").jsonText == "5.0")
        #expect(try JSONValue.parse("-0.25e2") == .double(-25))
        #expect(try JSONValue.parse("1E-3") == .double(0.001))
        #expect(try JSONValue.parse("0.1") == .double(0.1))
        #expect(try JSONValue.parse("123456789012345678.5") == .double(123_456_789_012_345_678.5))
        #expect(try JSONValue.parse("1e-400") == .double(0))
        for bad in ["1e400", "-1e400"] {
            let error = #expect(throws: TesseraError.self) { try JSONValue.parse(bad) }
            #expect(error?.message.hasPrefix("number out of range") == true)
        }
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "0x10", "NaN", "Infinity"] {
            #expect(throws: TesseraError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
    }

    @Test("doubles read back bit for bit from what the writer writes")
    func doubleRoundTrip() throws {
        var random = SplitMix64.printed("doubleRoundTrip")
        for _ in 0..<2000 {
            let value = Double(bitPattern: random.next())
            guard value.isFinite else { continue }
            #expect(try JSONValue.parse(JSONValue.double(value).jsonText) == .double(value))
        }
    }

    @Test("strings: escapes and surrogate pairs decode; lone surrogates, control characters and bad UTF-8 are refused")
    func strings() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té😀"))
        let lone = #expect(throws: TesseraError.self) { try JSONValue.parse(#""x\ud800""#) }
        #expect(lone?.message.hasPrefix("lone leading surrogate") == true)
        let trailing = #expect(throws: TesseraError.self) { try JSONValue.parse(#""\udc00""#) }
        #expect(trailing?.message.hasPrefix("lone trailing surrogate") == true)
        #expect(throws: TesseraError.self) { try JSONValue.parse("\"a\u{1}b\"") }
        let badUTF8: [UInt8] = Array(#"{"k": "a"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        let error = #expect(throws: TesseraError.self) { try JSONValue.parse(utf8: badUTF8) }
        #expect(error?.message.hasPrefix("invalid UTF-8") == true)
        #expect(error?.location.offset == 7)
    }

    @Test("errors name the line, the column and the byte offset")
    func errorLocation() throws {
        let error = #expect(throws: TesseraError.self) { try JSONValue.parse("{\n  \"a\": [1, 2,]\n}") }
        #expect(error?.message == "expected value at line 2 column 14")
        #expect(error?.location.line == 2)
        #expect(error?.location.offset == 15)
        #expect(throws: TesseraError.self) { try JSONValue.parse(#"{"a": 1} x"#) }
        #expect(throws: TesseraError.self) { try JSONValue.parse(#"{"a" 1}"#) }
        #expect(throws: TesseraError.self) { try JSONValue.parse("") }
    }

    @Test("object keys are compared by their bytes: é precomposed and decomposed are two keys")
    func byteWiseKeys() throws {
        let composed = "\u{E9}"
        let decomposed = "e\u{301}"
        #expect(composed == decomposed)  // Swift's String equality: canonical equivalence.
        let value = try JSONValue.parse(#"{"\#(composed)": 1, "\#(decomposed)": 2}"#)
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object.count == 2)
        #expect(object[composed] == .integer(1))
        #expect(object[decomposed] == .integer(2))
        #expect(try JSONValue.parse(value.jsonText) == value)
        // A repeated key (byte for byte): the last value wins, as in Qdrant.
        #expect(try JSONValue.parse(#"{"a": 1, "a": 2}"#) == .object(["a": .integer(2)]))
    }

    @Test("the writer: compact, sorted by key bytes, control characters escaped, non-finite numbers as null")
    func writer() throws {
        let value: JSONValue = [
            "b": [1, 2.5, nil, true], "a": "x/\"y\"\u{1}", "c": .double(.infinity), "d": .unsigned(UInt64.max),
        ]
        #expect(value.jsonText == #"{"a":"x/\"y\"\u0001","b":[1,2.5,null,true],"c":null,"d":18446744073709551615}"#)
    }

    @Test("random values round-trip through the writer and the parser")
    func roundTrip() throws {
        var random = SplitMix64.printed("roundTrip")
        func make(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 6 : 8), using: &random) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &random))
            case 2: return .integer(Int64.random(in: .min ... .max, using: &random))
            case 3: return .double(Double.random(in: -1e6...1e6, using: &random))
            case 4: return .unsigned(UInt64.random(in: (UInt64(Int64.max) + 1)...UInt64.max, using: &random))
            case 5:
                let scalars = (0..<Int.random(in: 0..<8, using: &random)).compactMap { _ in
                    Unicode.Scalar(UInt32.random(in: 0..<0x3000, using: &random))
                }
                return .string(String(String.UnicodeScalarView(scalars)))
            case 6: return .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in make(depth + 1) })
            default:
                return .object(
                    JSONObject(
                        (0..<Int.random(in: 0..<4, using: &random)).map { index in ("k\(index)", make(depth + 1)) }
                    )
                )
            }
        }
        for _ in 0..<500 {
            let value = make(0)
            #expect(try JSONValue.parse(value.jsonText) == value)
        }
    }
}
