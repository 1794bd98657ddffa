import Foundation

/// The kind of a payload index: which values at its key it keeps, as Qdrant's `field_schema` of
/// `create_payload_index`.
///
/// Every kind answers `is_empty` and `is_null` on its key. Beyond that:
/// - ``keyword``, ``uuid``, ``datetime`` and ``bool`` keep a posting list of slots per value and answer `match`
///   (`value`, `any`, `except`);
/// - ``integer`` keeps its values sorted and answers `match` and `range`;
/// - ``float`` keeps every number sorted (as `Double`) and answers `range`.
///
/// A payload may hold values of other types at an indexed key (a number under a keyword index): the index
/// remembers which slots do, and a filter checks those slots' payloads, so a filter's answer never depends on
/// whether an index exists.
public enum PayloadIndexType: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Strings, matched by their UTF-8 bytes.
    case keyword
    /// Integers (`Int64`).
    case integer
    /// Numbers: integers and floats, compared as `Double`.
    case float
    /// Booleans.
    case bool
    /// Strings that are UUIDs.
    case uuid
    /// Strings that are RFC 3339 dates or date-times (`2024-05-01`, `2024-05-01T10:00:00Z`).
    case datetime
    /// Full text, in the words of Qdrant's default `word` tokenizer (runs of letters and digits, lowercased).
    /// Filters on the key answer as without an index (full-text matches read the same words).
    case text
    /// Full text as ``text``, with BM25 statistics (Qdrant's `scoring: {"type": "bm25"}`): the index a text query
    /// (``QueryInput/text(_:)`` with `using` naming the key) ranks by.
    case scoredText = "text_bm25"

    public var description: String { rawValue }

    /// Qdrant's `data_type` of the index.
    public var dataType: String { self == .scoredText ? "text" : rawValue }

    /// Qdrant's `field_schema` values that Tessera does not index (yet), refused rather than ignored.
    static let unsupported: Set<String> = ["geo"]

    /// Reads Qdrant's `field_schema`: a type name (`"keyword"`) or an object `{"type": "keyword", …}`.
    ///
    /// Of the object's other parameters, the storage hints `on_disk`, `is_tenant` and `is_principal` (booleans) and
    /// the integer index's `lookup` and `range` (booleans; both are always served) are accepted without effect;
    /// any other parameter is refused, so that no setting is silently ignored.
    /// - Parameters:
    ///   - fieldSchema: The `field_schema` JSON value.
    ///   - field: The payload key being indexed, named in errors.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the field for an unknown or unsupported type
    ///   (`geo`) or parameter, or a text index tokenizing otherwise than Qdrant's default.
    public init(fieldSchema: JSONValue, field: String) throws(TesseraError) {
        let supported = Self.allCases.filter { $0 != .scoredText }.map(\.rawValue).joined(separator: ", ")
        func refuse(_ message: String) -> TesseraError {
            TesseraError(
                .invalidArgument,
                "payload index on '\(field)': \(message)",
                location: .init(field: "field_schema")
            )
        }
        let name: String
        switch fieldSchema {
        case .string(let text):
            name = text
        case .object(let members):
            guard case .string(let text)? = members["type"] else {
                throw refuse("field_schema must be a type name or an object with a string 'type' (\(supported))")
            }
            name = text
            if name == "text" {
                self = try Self.textIndex(members, refuse: refuse)
                return
            }
            var allowed: Set<String> = ["type", "on_disk", "is_tenant", "is_principal"]
            if name == "integer" { allowed.formUnion(["lookup", "range"]) }
            for (parameter, value) in members.sorted(by: { $0.key < $1.key }) where parameter != "type" {
                guard allowed.contains(parameter) else {
                    throw refuse("field_schema parameter '\(parameter)' is not supported for type '\(name)'")
                }
                guard value == .null || value == .bool(true) || value == .bool(false) else {
                    throw refuse("field_schema parameter '\(parameter)' must be a boolean, found \(value.jsonText)")
                }
            }
        default:
            throw refuse("field_schema must be a type name or an object with a 'type', found \(fieldSchema.jsonText)")
        }
        if let type = PayloadIndexType(rawValue: name), type != .scoredText {
            self = type
        } else if Self.unsupported.contains(name) {
            throw refuse("field_schema '\(name)' is not supported (supported: \(supported))")
        } else {
            throw refuse("unknown field_schema '\(name)' (expected one of \(supported))")
        }
    }

    /// Reads the parameters of a text index (Qdrant's `TextIndexParams`). Tessera's text index tokenizes as Qdrant's
    /// default (`word`, lowercased, no folding, stop words, stemming or length limits), so that a filter answers the
    /// same with or without it; a parameter asking for another tokenization is refused. `scoring` (`true` or `{"type":
    /// "bm25"}`) adds BM25 statistics; `on_disk`, `memory`, `phrase_matching` and `enable_hnsw` are storage and
    /// planning hints, accepted without effect (phrase matches are always served).
    private static func textIndex(
        _ members: JSONObject,
        refuse: (String) -> TesseraError
    ) throws(TesseraError) -> PayloadIndexType {
        var scored = false
        for (parameter, value) in members.sorted(by: { $0.key < $1.key }) where parameter != "type" && value != .null {
            switch (parameter, value) {
            case ("tokenizer", .string("word")), ("lowercase", .bool(true)), ("ascii_folding", .bool(false)):
                break
            case ("on_disk", .bool), ("phrase_matching", .bool), ("enable_hnsw", .bool), ("memory", .string):
                break
            case ("stemmer", .object(let stemmer)) where stemmer == ["type": "none"]:
                break
            case ("scoring", .bool(let flag)):
                scored = flag
            case ("scoring", .object(let scoring)):
                guard scoring == ["type": "bm25"] else {
                    throw refuse("text index scoring must be {\"type\": \"bm25\"}, found \(value.jsonText)")
                }
                scored = true
            case ("tokenizer", _), ("lowercase", _), ("ascii_folding", _), ("stemmer", _), ("stopwords", _),
                ("min_token_len", _), ("max_token_len", _):
                throw refuse(
                    "text index parameter '\(parameter)' = \(value.jsonText) is not supported: Tessera's text index "
                        + "reads words as the default word tokenizer (lowercased, no folding, stop words, stemming "
                        + "or length limits)"
                )
            default:
                throw refuse("field_schema parameter '\(parameter)' is not supported for type 'text'")
            }
        }
        return scored ? .scoredText : .text
    }

    /// Parses a type name, as the command line gives it.
    /// - Parameters:
    ///   - name: `keyword`, `integer`, `float`, `bool`, `uuid` or `datetime`.
    ///   - field: The payload key being indexed, named in errors.
    /// - Throws: As ``init(fieldSchema:field:)``.
    public init(name: String, field: String) throws(TesseraError) {
        try self.init(fieldSchema: .string(name), field: field)
    }
}

/// A declared payload index and how many live points it holds a value for.
public struct PayloadIndexInfo: Sendable, Hashable {
    /// The indexed payload key, as declared (`city`, `country.name`, `tags[]`).
    public var field: String
    /// The kind of index.
    public var type: PayloadIndexType
    /// The live points with at least one value of the index's type at the key (Qdrant's `points`).
    public var pointCount: Int

    /// Creates a description.
    /// - Parameters:
    ///   - field: The payload key.
    ///   - type: The kind of index.
    ///   - pointCount: The points holding a value of that kind there.
    public init(field: String, type: PayloadIndexType, pointCount: Int) {
        self.field = field
        self.type = type
        self.pointCount = pointCount
    }
}

extension PayloadIndexType {
    /// Whether a string is a UUID in the textual form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case).
    static func isUUID(_ text: String) -> Bool {
        text.utf8.count == 36 && UUID(uuidString: text) != nil
    }

    /// Whether a string is an RFC 3339 date (`YYYY-MM-DD`) or date-time (`YYYY-MM-DDTHH:MM[:SS[.fraction]]`, `T`
    /// or a space, then optionally `Z` or `±HH:MM`), the forms Qdrant's datetime index reads.
    static func isDateTime(_ text: String) -> Bool { dateTimeMicroseconds(text) != nil }

    /// The instant a date or date-time string (the forms of ``isDateTime(_:)``) names, in microseconds since
    /// 1970-01-01T00:00:00Z; a date, or a date-time without an offset, is read as UTC. Fractions finer than a
    /// microsecond are dropped. `nil` when the string is not such a date.
    static func dateTimeMicroseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + count)] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        // Days since the epoch of a proleptic Gregorian date.
        let shifted = month <= 2 ? year - 1 : year
        let era = shifted / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = Int64(era * 146_097 + dayOfEra - 719_468)
        var micros = days * 86_400_000_000
        if index == bytes.count { return micros }
        guard bytes[index] == UInt8(ascii: "T") || bytes[index] == UInt8(ascii: " ") else { return nil }
        index += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), hour < 24, minute < 60 else {
            return nil
        }
        micros += Int64(hour * 3600 + minute * 60) * 1_000_000
        if expect(UInt8(ascii: ":")) {
            guard let second = digits(2), second <= 60 else { return nil }
            micros += Int64(second) * 1_000_000
            if expect(UInt8(ascii: ".")) {
                let start = index
                var fraction: Int64 = 0
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    if index - start < 6 { fraction = fraction * 10 + Int64(bytes[index] - UInt8(ascii: "0")) }
                    index += 1
                }
                guard index > start else { return nil }
                for _ in min(index - start, 6)..<6 { fraction *= 10 }
                micros += fraction
            }
        }
        if index == bytes.count { return micros }
        if expect(UInt8(ascii: "Z")) { return index == bytes.count ? micros : nil }
        let sign: Int64
        if expect(UInt8(ascii: "+")) {
            sign = 1
        } else if expect(UInt8(ascii: "-")) {
            sign = -1
        } else {
            return nil
        }
        guard let offsetHour = digits(2), expect(UInt8(ascii: ":")), let offsetMinute = digits(2),
            offsetHour < 24, offsetMinute < 60, index == bytes.count
        else { return nil }
        return micros - sign * Int64(offsetHour * 3600 + offsetMinute * 60) * 1_000_000
    }
}
