public import Tessera

extension JSONValue {
    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The object, when this is one.
    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The boolean, when this is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The number as an integer, when it is a whole number in `Int`'s range.
    public var intValue: Int? {
        switch self {
        case .integer(let value): return Int(exactly: value)
        case .unsigned(let value): return Int(exactly: value)
        case .double(let value): return value.rounded() == value ? Int(exactly: value) : nil
        default: return nil
        }
    }

    /// The number as a `Double`, when this is a number.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .unsigned(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// Parses a JSON body (empty: `{}`).
    static func body(_ bytes: [UInt8]) throws(ClusterError) -> JSONValue {
        if bytes.isEmpty { return .object([:]) }
        do { return try JSONValue.parse(utf8: bytes) } catch {
            throw ClusterError("Format error in JSON body: \(error.message)")
        }
    }
}
