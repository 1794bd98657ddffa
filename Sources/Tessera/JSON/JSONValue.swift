import Foundation

/// A JSON value: the type of point payloads and of filter operands.
///
/// Numbers keep the distinction Qdrant makes: a number written without a fraction or exponent that fits in
/// `Int64` decodes as ``integer(_:)``, a larger one up to `UInt64.max` (a point id) as ``unsigned(_:)``, every
/// other number as ``double(_:)``, and each is written back as it was read (`5.0` stays `5.0`). An integer
/// `match` condition matches only integer values; a `range` condition compares every number.
///
/// Object members are keyed by their exact UTF-8 bytes (``JSONObject``). Parse JSON with
/// ``parse(_:maximumDepth:)`` or ``parse(utf8:maximumDepth:)``: linear time, nesting limited, errors that name the
/// line, column and byte offset.
public enum JSONValue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer number in `Int64`'s range.
    case integer(Int64)
    /// An integer above `Int64.max`, up to `UInt64.max` (Qdrant's point ids are `u64`). The parser uses this case
    /// only for such values, so that every integer has one representation.
    case unsigned(UInt64)
    /// A number with a fraction or exponent, or out of `Int64`'s range.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object(JSONObject)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode(JSONObject.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .unsigned(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value):
            try container.encode(value)
        }
    }

    /// Parses JSON text.
    /// - Parameters:
    ///   - json: JSON text.
    ///   - maximumDepth: The deepest nesting of arrays and objects accepted (128, as Qdrant's parser).
    /// - Returns: The value.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the problem, its line, column and byte offset.
    /// - Complexity: O(length of the text).
    public static func parse(
        _ json: String,
        maximumDepth: Int = JSONParser.defaultMaximumDepth
    ) throws(TesseraError)
        -> JSONValue
    {
        var json = json
        return try json.withUTF8 { bytes in
            Result { () throws(TesseraError) in try JSONParser.parse(bytes, maximumDepth: maximumDepth) }
        }.get()
    }

    /// Parses JSON from UTF-8 bytes, checking that they are valid UTF-8.
    /// - Parameters:
    ///   - bytes: The UTF-8 bytes of JSON text.
    ///   - maximumDepth: The deepest nesting of arrays and objects accepted.
    /// - Returns: The value.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the problem, its line, column and byte offset.
    /// - Complexity: O(byte count).
    public static func parse(
        utf8 bytes: some Collection<UInt8>,
        maximumDepth: Int = JSONParser.defaultMaximumDepth
    ) throws(TesseraError) -> JSONValue {
        let parsed = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(TesseraError) in try JSONParser.parse(buffer, maximumDepth: maximumDepth) }
        }
        if let parsed { return try parsed.get() }
        return try Array(bytes).withUnsafeBufferPointer { buffer throws(TesseraError) in
            try JSONParser.parse(buffer, maximumDepth: maximumDepth)
        }
    }

    /// The value as compact JSON text, object members in the byte order of their names.
    ///
    /// A non-finite ``double(_:)`` (which JSON cannot carry) is written as `null`, as Qdrant's serialiser does.
    public var jsonText: String {
        var writer = JSONWriter()
        writer.write(self)
        return writer.text
    }

    /// The value as compact UTF-8 JSON, as ``jsonText``.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        writer.write(self)
        return writer.bytes
    }

    public var description: String { jsonText }

    /// Strings (and object keys, see ``JSONObject``) are equal when their UTF-8 bytes are, not under Swift's
    /// canonical equivalence, as in Qdrant, PostgreSQL's `jsonb` and SQLite.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.unsigned(let a), .unsigned(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .integer(let value): hasher.combine(value)
        case .unsigned(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value)
        case .string(let value):
            var value = value
            value.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        case .array(let values): hasher.combine(values)
        case .object(let object): hasher.combine(object)
        }
    }

    /// Whether any number inside is not finite (JSON cannot carry NaN or infinity).
    var containsNonFiniteNumber: Bool {
        switch self {
        case .double(let value): !value.isFinite
        case .array(let values): values.contains { $0.containsNonFiniteNumber }
        case .object(let members): members.contains { $0.value.containsNonFiniteNumber }
        default: false
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements))
    }
    public init(nilLiteral: ()) { self = .null }
}
