public import Tessera

/// Encodes `Encodable` values to a `JSONValue` tree, which Tessera's writer then serialises (object
/// members in byte order, non-finite numbers as `null`, as Qdrant's serialiser writes them).
///
/// `JSONValue` and `JSONObject` encode as themselves (payloads keep every key and number as stored); a `nil`
/// written with `encodeNil` is `null`, and `encodeIfPresent` leaves the member out.
public struct JSONValueEncoder: Sendable {
    /// Creates an encoder.
    public init() {}

    /// Encodes a value.
    /// - Parameter value: The value.
    /// - Returns: Its JSON.
    /// - Throws: The value's own encoding errors (the answer types of this module throw none).
    public func encode(_ value: some Encodable) throws -> JSONValue {
        let node = EncodingNode()
        try node.box(value, path: [])
        return node.json
    }
}

/// One value being encoded: set once, or filled member by member or element by element.
final class EncodingNode {
    enum Kind {
        case unset
        case value(JSONValue)
        case object([(String, EncodingNode)])
        case array([EncodingNode])
    }

    var kind = Kind.unset

    var json: JSONValue {
        switch kind {
        case .unset: .null
        case .value(let value): value
        case .object(let members): .object(JSONObject(members.map { ($0.0, $0.1.json) }))
        case .array(let elements): .array(elements.map(\.json))
        }
    }

    func box(_ value: some Encodable, path: [any CodingKey]) throws {
        switch value {
        case let json as JSONValue: kind = .value(json)
        case let object as JSONObject: kind = .value(.object(object))
        case let flag as Bool: kind = .value(.bool(flag))
        case let text as String: kind = .value(.string(text))
        case let number as Int: kind = .value(.integer(Int64(number)))
        case let number as Int64: kind = .value(.integer(number))
        case let number as Double: kind = .value(.double(number))
        case let number as Float: kind = .value(.double(Double(number)))
        case let numbers as [Float]: kind = .value(.array(numbers.map { .double(Double($0)) }))
        case let number as any BinaryInteger:
            // Every other integer type (UInt64 ids above Int64.max among them) encodes through this single value.
            if let signed = Int64(exactly: number) {
                kind = .value(.integer(signed))
            } else if let unsigned = UInt64(exactly: number) {
                kind = .value(.unsigned(unsigned))
            } else {
                throw EncodingError.invalidValue(
                    value,
                    .init(codingPath: path, debugDescription: "an integer beyond 64 bits")
                )
            }
        default: try value.encode(to: NodeEncoder(node: self, codingPath: path))
        }
    }

    func member(_ name: String) -> EncodingNode {
        let child = EncodingNode()
        if case .object(var members) = kind {
            members.append((name, child))
            kind = .object(members)
        } else {
            kind = .object([(name, child)])
        }
        return child
    }

    func element() -> EncodingNode {
        let child = EncodingNode()
        if case .array(var elements) = kind {
            elements.append(child)
            kind = .array(elements)
        } else {
            kind = .array([child])
        }
        return child
    }
}

/// The `Encoder` that fills one node.
struct NodeEncoder: Encoder {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.kind {} else { node.kind = .object([]) }
        return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.kind {} else { node.kind = .array([]) }
        return Unkeyed(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: EncodingNode
        let codingPath: [any CodingKey]

        mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue).kind = .value(.null) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try node.member(key.stringValue).box(value, path: codingPath + [key])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type,
            forKey key: Key
        ) -> KeyedEncodingContainer<NestedKey> {
            NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.member("super"), codingPath: codingPath) }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: EncodingNode
        let codingPath: [any CodingKey]

        var count: Int {
            if case .array(let elements) = node.kind { return elements.count }
            return 0
        }

        mutating func encodeNil() throws { node.element().kind = .value(.null) }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try node.element().box(value, path: codingPath + [JSONKey(intValue: count)])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type
        ) -> KeyedEncodingContainer<NestedKey> {
            NodeEncoder(node: node.element(), codingPath: codingPath).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            NodeEncoder(node: node.element(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.element(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let node: EncodingNode
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.kind = .value(.null) }

        mutating func encode<T: Encodable>(_ value: T) throws { try node.box(value, path: codingPath) }
    }
}
