public import Foundation

/// A point's external identifier, as in Qdrant: an unsigned 64-bit integer or a UUID.
///
/// Ids order as Qdrant orders them: every integer before every UUID, integers numerically, UUIDs by their 16 bytes
/// (the same order as their lowercase text). ``scroll(filter:limit:offset:withPayload:withVectors:)`` pages in this
/// order.
///
/// In JSON an id is a number (`42`) or a UUID string (`"550e8400-e29b-41d4-a716-446655440000"`); any other
/// string, a negative or fractional number is an error.
public enum PointID: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    /// An unsigned 64-bit integer id.
    case integer(UInt64)
    /// A UUID id.
    case uuid(UUID)

    /// Parses an id from its text: decimal digits for an integer, or a UUID.
    /// - Parameter text: The id as text, for example `"42"` or `"550e8400-e29b-41d4-a716-446655440000"`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when the text is neither.
    public init(parsing text: String) throws(TesseraError) {
        if let value = UInt64(text) {
            self = .integer(value)
        } else if let uuid = UUID(uuidString: text) {
            self = .uuid(uuid)
        } else {
            throw TesseraError(
                .invalidArgument,
                "point id '\(text)' is neither an unsigned integer nor a UUID",
                location: .init(field: "id")
            )
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(UInt64.self) {
            self = .integer(value)
            return
        }
        if let text = try? container.decode(String.self) {
            guard let uuid = UUID(uuidString: text) else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "point id string '\(text)' is not a UUID"
                )
            }
            self = .uuid(uuid)
            return
        }
        throw DecodingError.dataCorruptedError(
            in: container,
            debugDescription: "point id must be an unsigned integer or a UUID string"
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .integer(let value): try container.encode(value)
        case .uuid(let uuid): try container.encode(uuid.uuidString.lowercased())
        }
    }

    /// The id as Qdrant prints it: decimal digits, or the lowercase UUID.
    public var description: String {
        switch self {
        case .integer(let value): String(value)
        case .uuid(let uuid): uuid.uuidString.lowercased()
        }
    }

    public static func < (lhs: PointID, rhs: PointID) -> Bool {
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): a < b
        case (.integer, .uuid): true
        case (.uuid, .integer): false
        case (.uuid(let a), .uuid(let b)): a.uuidString.lowercased() < b.uuidString.lowercased()
        }
    }

    /// The id as a byte string whose byte-wise order is the id order: a kind byte (0 for integers, 1 for UUIDs)
    /// followed by the big-endian integer (8 bytes) or the UUID's bytes (16 bytes).
    ///
    /// The store keeps this key in a unique index, so SQLite pages through points in Qdrant's order.
    var sortKey: Data {
        switch self {
        case .integer(let value):
            var bytes = [UInt8](repeating: 0, count: 9)
            for index in 0..<8 { bytes[1 + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(index))) }
            return Data(bytes)
        case .uuid(let uuid):
            let u = uuid.uuid
            return Data([1, u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
        }
    }

    /// Rebuilds an id from ``sortKey``.
    /// - Throws: ``TesseraError/Code/corrupted`` when the bytes are not a key this type wrote.
    init(sortKey: Data) throws(TesseraError) {
        let bytes = [UInt8](sortKey)
        if bytes.count == 9, bytes[0] == 0 {
            var value: UInt64 = 0
            for index in 1..<9 { value = value << 8 | UInt64(bytes[index]) }
            self = .integer(value)
        } else if bytes.count == 17, bytes[0] == 1 {
            let b = Array(bytes[1...])
            self = .uuid(
                UUID(
                    uuid: (
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                        b[15]
                    )
                )
            )
        } else {
            throw TesseraError(.corrupted, "stored point id key has \(bytes.count) bytes and kind \(bytes.first ?? 0)")
        }
    }
}

extension PointID {
    /// The id as JSON: a number (``JSONValue/unsigned(_:)`` above `Int64.max`) or the lowercase UUID string.
    public var jsonValue: JSONValue {
        switch self {
        case .integer(let value): value <= UInt64(Int64.max) ? .integer(Int64(value)) : .unsigned(value)
        case .uuid: .string(description)
        }
    }

    /// An id from JSON as Qdrant reads one: an unsigned integer (up to `UInt64.max`) or a UUID string. A string of
    /// digits is not an id (Qdrant refuses it too); ``init(parsing:)`` reads ids from URL paths.
    /// - Parameters:
    ///   - json: The value.
    ///   - field: The JSON path, for the error.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the field.
    public init(json: JSONValue, field: String) throws(TesseraError) {
        switch json {
        case .integer(let number) where number >= 0: self = .integer(UInt64(number))
        case .unsigned(let number): self = .integer(number)
        case .string(let text):
            guard let uuid = UUID(uuidString: text) else {
                throw TesseraError(
                    .invalidArgument,
                    "'\(text)' is not a valid point id: a string id must be a UUID",
                    location: .init(field: field)
                )
            }
            self = .uuid(uuid)
        default:
            throw TesseraError(
                .invalidArgument,
                "a point id is an unsigned integer (at most \(UInt64.max)) or a UUID string, found \(json.jsonText)",
                location: .init(field: field)
            )
        }
    }

    /// A UUID from its text, in any letter case.
    static func uuidFromText(_ text: String) -> UUID? { UUID(uuidString: text) }
}
