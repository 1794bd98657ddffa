/// A JSON object: members keyed by the exact UTF-8 bytes of their names.
///
/// Swift's `String` equality is canonical equivalence, so a `[String: JSONValue]` would hold only one of the keys
/// `"é"` (U+00E9) and `"é"` (U+0065 U+0301) and silently drop the other. Qdrant, PostgreSQL's `jsonb` and
/// SQLite keep both, and so does this type: two names are the same key only when their UTF-8 bytes are equal.
/// Lookups, filters and payload edits therefore compare names byte for byte.
///
/// The API follows `Dictionary`'s: subscript by name, iteration as `(key, value)` pairs in no particular order,
/// `mapValues`, `filter`, `merging`. ``sortedMembers`` gives the members in byte order of their names, the order
/// in which ``JSONValue/jsonText`` writes them.
public struct JSONObject: Hashable, Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The members.
    private var storage: [MemberName: JSONValue]

    /// A member name compared and hashed by its UTF-8 bytes.
    struct MemberName: Hashable, Sendable {
        let name: String

        static func == (lhs: MemberName, rhs: MemberName) -> Bool { lhs.name.utf8.elementsEqual(rhs.name.utf8) }

        func hash(into hasher: inout Hasher) {
            var name = name
            name.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    public typealias Key = String
    public typealias Value = JSONValue

    /// An empty object.
    public init() { storage = [:] }

    /// An object with the members of a dictionary.
    /// - Parameter dictionary: The members (a dictionary cannot hold two canonically equivalent names).
    public init(_ dictionary: [String: JSONValue]) {
        storage = Dictionary(uniqueKeysWithValues: dictionary.map { (MemberName(name: $0.key), $0.value) })
    }

    /// An object from name–value pairs; a later pair with the same name (byte for byte) replaces an earlier one.
    /// - Parameter members: The pairs.
    public init(_ members: some Sequence<(String, JSONValue)>) {
        storage = [:]
        for (name, value) in members { storage[MemberName(name: name)] = value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// The value of a member, or `nil` when there is none; setting `nil` removes it.
    public subscript(name: String) -> JSONValue? {
        get { storage[MemberName(name: name)] }
        set { storage[MemberName(name: name)] = newValue }
    }

    /// The number of members.
    public var count: Int { storage.count }
    /// Whether there are no members.
    public var isEmpty: Bool { storage.isEmpty }
    /// Some member, or `nil` when there is none (with one member: that one).
    public var first: (key: String, value: JSONValue)? {
        storage.first.map { (key: $0.key.name, value: $0.value) }
    }
    /// The member names, in no particular order.
    public var keys: [String] { storage.keys.map(\.name) }
    /// The member values, in no particular order.
    public var values: [JSONValue] { Array(storage.values) }

    /// The members in the byte order of their names.
    public var sortedMembers: [(key: String, value: JSONValue)] {
        storage.map { (key: $0.key.name, value: $0.value) }.sorted {
            $0.key.utf8.lexicographicallyPrecedes($1.key.utf8)
        }
    }

    /// Removes a member.
    /// - Returns: Its value, or `nil` when there was none.
    @discardableResult
    public mutating func removeValue(forKey name: String) -> JSONValue? {
        storage.removeValue(forKey: MemberName(name: name))
    }

    /// The object with each value transformed.
    public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var result = self
        result.storage = try storage.mapValues(transform)
        return result
    }

    /// The members that pass a test.
    public func filter(_ isIncluded: ((key: String, value: JSONValue)) throws -> Bool) rethrows -> JSONObject {
        var result = JSONObject()
        result.storage = try storage.filter { try isIncluded((key: $0.key.name, value: $0.value)) }
        return result
    }

    /// This object with the members of `other` added; `combine` chooses the value of a name both hold.
    public func merging(
        _ other: JSONObject,
        uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue
    ) rethrows -> JSONObject {
        var result = self
        result.storage = try storage.merging(other.storage, uniquingKeysWith: combine)
        return result
    }

    public struct Iterator: IteratorProtocol {
        var base: Dictionary<MemberName, JSONValue>.Iterator
        public mutating func next() -> (key: String, value: JSONValue)? {
            base.next().map { (key: $0.key.name, value: $0.value) }
        }
    }

    public func makeIterator() -> Iterator { Iterator(base: storage.makeIterator()) }

    public var description: String { JSONValue.object(self).jsonText }
}

extension JSONObject: Codable {
    /// Decodes through `Codable` (names that are canonically equivalent collapse there; ``JSONValue/parse(_:maximumDepth:)``
    /// keeps them apart).
    public init(from decoder: any Decoder) throws {
        self.init(try [String: JSONValue](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try Dictionary(map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }).encode(to: encoder)
    }
}
