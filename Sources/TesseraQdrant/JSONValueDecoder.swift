public import Tessera

/// Decodes `Decodable` values from a `JSONValue` tree, so that request bodies keep the hardening of
/// Tessera's own parser (nesting limited to 128, invalid UTF-8 refused, numbers beyond `Double` refused, `u64`
/// ids kept as `JSONValue.unsigned(_:)`, object keys compared byte for byte) and errors name the JSON
/// path of the bad field (`prefetch[1].limit`).
///
/// `JSONValue` and `JSONObject` decode as themselves, untouched (payloads keep every key and number as read).
/// Integers accept a number with no fraction (`10.0`); `Float` and `Double` accept every number. `null` and a
/// missing member are the same to `decodeIfPresent`.
public struct JSONValueDecoder: Sendable {
    /// Creates a decoder.
    public init() {}

    /// Decodes a value from a JSON value.
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - value: The parsed JSON.
    /// - Returns: The value.
    /// - Throws: `TesseraError.Code.invalidArgument` whose `location.field` is the JSON path of the
    ///   bad field (`body` for the value itself).
    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(TesseraError) -> T {
        do {
            return try ValueDecoder.unbox(type, value, path: [])
        } catch let error as TesseraError {
            throw error
        } catch let error as DecodingError {
            throw Self.tesseraError(error)
        } catch {
            throw TesseraError(.invalidArgument, "\(error)", location: .init(field: "body"))
        }
    }

    /// Parses UTF-8 JSON with Tessera's parser, then decodes a value from it.
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - bytes: The UTF-8 JSON text.
    /// - Returns: The value.
    /// - Throws: `TesseraError.Code.invalidArgument` for bad JSON (with its line, column and offset)
    ///   or a bad field (with its path).
    public func decode<T: Decodable>(_ type: T.Type, utf8 bytes: some Collection<UInt8>) throws(TesseraError) -> T {
        try decode(type, from: try JSONValue.parse(utf8: bytes))
    }

    /// A path written as JSON paths are: `prefetch[1].limit`.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text.isEmpty ? "body" : text
    }

    static func tesseraError(_ error: DecodingError) -> TesseraError {
        // Messages name the field first: "points[0].id is missing", "limit must be an integer, found a string",
        // "prefetch[0].limt: unknown field …".
        let (path, message, separator): ([any CodingKey], String, String) =
            switch error {
            case .typeMismatch(_, let context): (context.codingPath, context.debugDescription, " ")
            case .valueNotFound(_, let context): (context.codingPath, context.debugDescription, " ")
            case .keyNotFound(let key, let context): (context.codingPath + [key], context.debugDescription, " ")
            case .dataCorrupted(let context): (context.codingPath, context.debugDescription, ": ")
            @unknown default: ([], "\(error)", ": ")
            }
        let field = Self.path(path)
        return TesseraError(.invalidArgument, field + separator + message, location: .init(field: field))
    }
}

/// A member name or an array index of a coding path.
struct JSONKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

/// What a JSON value is, for errors: "a string", "an object".
func describeKind(_ value: JSONValue) -> String {
    switch value {
    case .null: "null"
    case .bool: "a boolean"
    case .integer, .unsigned, .double: "a number"
    case .string: "a string"
    case .array: "a list"
    case .object: "a JSON object"
    }
}

func mismatch(_ expected: String, _ value: JSONValue, _ path: [any CodingKey]) -> DecodingError {
    // The body itself "must be a JSON object"; a member "must be an object".
    let expected = expected == "a JSON object" && !path.isEmpty ? "an object" : expected
    return DecodingError.typeMismatch(
        Any.self,
        .init(codingPath: path, debugDescription: "must be \(expected), found \(describeKind(value))")
    )
}

/// The `Decoder` over one JSON value.
struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Decodes a value, taking the fast paths for JSON values, numbers, strings and lists of numbers.
    static func unbox<T: Decodable>(_ type: T.Type, _ value: JSONValue, path: [any CodingKey]) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        if T.self == JSONObject.self {
            guard case .object(let object) = value else { throw mismatch("a JSON object", value, path) }
            return object as! T
        }
        if T.self == [Float].self { return try floats(value, path: path) as! T }
        if T.self == PointID.self {
            // Qdrant's reading of an id: an unsigned integer up to 2^64-1 or a UUID string (not a string of digits).
            do {
                return try PointID(json: value, field: JSONValueDecoder.path(path)) as! T
            } catch {
                throw invalid(path, error.message)
            }
        }
        let single = SingleValue(value: value, codingPath: path)
        switch T.self {
        case is Bool.Type: return try single.decode(Bool.self) as! T
        case is String.Type: return try single.decode(String.self) as! T
        case is Int.Type: return try single.decode(Int.self) as! T
        case is Int64.Type: return try single.decode(Int64.self) as! T
        case is UInt64.Type: return try single.decode(UInt64.self) as! T
        case is Double.Type: return try single.decode(Double.self) as! T
        case is Float.Type: return try single.decode(Float.self) as! T
        default: return try T(from: ValueDecoder(value: value, codingPath: path))
        }
    }

    /// A list of numbers, without a container per element (vectors are most of an upsert's bytes).
    static func floats(_ value: JSONValue, path: [any CodingKey]) throws -> [Float] {
        guard case .array(let items) = value else { throw mismatch("a list of numbers", value, path) }
        var result: [Float] = []
        result.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            switch item {
            case .integer(let number): result.append(Float(number))
            case .unsigned(let number): result.append(Float(number))
            case .double(let number): result.append(Float(number))
            default: throw mismatch("a number", item, path + [JSONKey(intValue: index)])
            }
        }
        return result
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw mismatch("a JSON object", value, codingPath) }
        return KeyedDecodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("a list", value, codingPath) }
        return Unkeyed(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValue(value: value, codingPath: codingPath)
    }
}

extension ValueDecoder {
    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: JSONObject
        let codingPath: [any CodingKey]

        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

        func member(_ key: Key) throws -> JSONValue {
            guard let value = object[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "is missing"))
            }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool { (object[key.stringValue] ?? .null) == .null }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try ValueDecoder.unbox(type, try member(key), path: codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type,
            forKey key: Key
        ) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(object), codingPath: codingPath) }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            ValueDecoder(value: object[key.stringValue] ?? .null, codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let codingPath: [any CodingKey]
        var currentIndex = 0

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        mutating func next() throws -> (JSONValue, [any CodingKey]) {
            let path = codingPath + [JSONKey(intValue: currentIndex)]
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(
                    Any.self,
                    .init(codingPath: path, debugDescription: "is missing (the list has only \(items.count) elements)")
                )
            }
            defer { currentIndex += 1 }
            return (items[currentIndex], path)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (value, path) = try next()
            return try ValueDecoder.unbox(type, value, path: path)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type
        ) throws -> KeyedDecodingContainer<NestedKey> {
            let (value, path) = try next()
            return try ValueDecoder(value: value, codingPath: path).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (value, path) = try next()
            return try ValueDecoder(value: value, codingPath: path).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder {
            let (value, path) = try next()
            return ValueDecoder(value: value, codingPath: path)
        }
    }

    struct SingleValue: SingleValueDecodingContainer {
        let value: JSONValue
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool { value == .null }

        func decode(_ type: Bool.Type) throws -> Bool {
            guard case .bool(let flag) = value else { throw mismatch("true or false", value, codingPath) }
            return flag
        }

        func decode(_ type: String.Type) throws -> String {
            guard case .string(let text) = value else { throw mismatch("a string", value, codingPath) }
            return text
        }

        func decode(_ type: Double.Type) throws -> Double {
            switch value {
            case .integer(let number): return Double(number)
            case .unsigned(let number): return Double(number)
            case .double(let number): return number
            default: throw mismatch("a number", value, codingPath)
            }
        }

        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

        func decode<T: BinaryInteger & FixedWidthInteger>(integer type: T.Type) throws -> T {
            let converted: T? =
                switch value {
                case .integer(let number): T(exactly: number)
                case .unsigned(let number): T(exactly: number)
                case .double(let number) where number == number.rounded() && abs(number) < 1e18: T(exactly: number)
                default: nil
                }
            guard let converted else {
                switch value {
                case .integer, .unsigned, .double:
                    throw DecodingError.dataCorrupted(
                        .init(
                            codingPath: codingPath,
                            debugDescription: "\(value.jsonText) is not an integer in \(T.min)...\(T.max)"
                        )
                    )
                default: throw mismatch("an integer", value, codingPath)
                }
            }
            return converted
        }

        func decode(_ type: Int.Type) throws -> Int { try decode(integer: Int.self) }
        func decode(_ type: Int8.Type) throws -> Int8 { try decode(integer: Int8.self) }
        func decode(_ type: Int16.Type) throws -> Int16 { try decode(integer: Int16.self) }
        func decode(_ type: Int32.Type) throws -> Int32 { try decode(integer: Int32.self) }
        func decode(_ type: Int64.Type) throws -> Int64 { try decode(integer: Int64.self) }
        func decode(_ type: UInt.Type) throws -> UInt { try decode(integer: UInt.self) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(integer: UInt8.self) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(integer: UInt16.self) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(integer: UInt32.self) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(integer: UInt64.self) }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try ValueDecoder.unbox(type, value, path: codingPath)
        }
    }
}

extension Decoder {
    /// Refuses members of this object that `Keys` does not name, naming the first one (in byte order) and the
    /// fields that are known.
    /// - Throws: `DecodingError.dataCorrupted` at the unknown member's path.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type, what: String) throws {
        let container = try container(keyedBy: JSONKey.self)
        let known = Set(Keys.allCases.map(\.stringValue))
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }
        guard let first = unknown.min(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) else { return }
        throw DecodingError.dataCorrupted(
            .init(
                codingPath: codingPath + [JSONKey(stringValue: first)],
                debugDescription: "unknown field '\(first)' in \(what) (known: "
                    + known.sorted().joined(separator: ", ") + ")"
            )
        )
    }
}

/// A `DecodingError` at a path, for checks made while decoding.
func invalid(_ path: [any CodingKey], _ message: String) -> DecodingError {
    DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: message))
}
