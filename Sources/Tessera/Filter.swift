import Foundation

/// A payload filter in Qdrant's JSON shape.
///
/// ```json
/// {"must": [{"key": "city", "match": {"value": "London"}}],
///  "must_not": [{"key": "price", "range": {"gt": 100}}]}
/// ```
///
/// A point passes when every `must` condition holds, at least one `should` condition holds (when there are any),
/// no `must_not` condition holds, and at least `min_should.min_count` of `min_should.conditions` hold.
/// An empty filter passes every point.
///
/// Decode one from JSON with ``init(json:)`` (errors name the JSON field, for example `must[2].match.value`) or
/// through `Codable`. The conditions and their semantics on payload values are described on ``Condition``.
public struct Filter: Hashable, Sendable, Codable {
    /// Conditions that must all hold.
    public var must: [Condition]
    /// Conditions of which at least one must hold, unless the list is empty.
    public var should: [Condition]
    /// Conditions none of which may hold.
    public var mustNot: [Condition]
    /// A count of conditions that must hold, Qdrant's `min_should`.
    public var minShould: MinShould?

    /// Creates a filter.
    /// - Parameters:
    ///   - must: Conditions that must all hold.
    ///   - should: Conditions of which at least one must hold, unless empty.
    ///   - mustNot: Conditions none of which may hold.
    ///   - minShould: At least `minCount` of its conditions must hold.
    public init(
        must: [Condition] = [],
        should: [Condition] = [],
        mustNot: [Condition] = [],
        minShould: MinShould? = nil
    ) {
        self.must = must
        self.should = should
        self.mustNot = mustNot
        self.minShould = minShould
    }

    /// Decodes a filter from Qdrant's JSON.
    /// - Parameter json: The filter object as JSON text.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the offending field in `location.field`.
    public init(json: String) throws(TesseraError) {
        self = try FilterParser.filter(JSONValue.parse(json), path: "")
    }

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        do {
            self = try FilterParser.filter(value, path: "")
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description, underlyingError: error)
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }

    /// The filter as Qdrant's JSON.
    public var jsonValue: JSONValue {
        var object: JSONObject = [:]
        if !must.isEmpty { object["must"] = .array(must.map(\.jsonValue)) }
        if !should.isEmpty { object["should"] = .array(should.map(\.jsonValue)) }
        if !mustNot.isEmpty { object["must_not"] = .array(mustNot.map(\.jsonValue)) }
        if let minShould {
            object["min_should"] = [
                "conditions": .array(minShould.conditions.map(\.jsonValue)),
                "min_count": .integer(Int64(minShould.minCount)),
            ]
        }
        return .object(object)
    }
}

/// Qdrant's `min_should`: at least ``minCount`` of ``conditions`` must hold.
public struct MinShould: Hashable, Sendable {
    /// The conditions to count.
    public var conditions: [Condition]
    /// How many of them must hold.
    public var minCount: Int

    /// Creates a `min_should` clause.
    /// - Parameters:
    ///   - conditions: The conditions to count.
    ///   - minCount: How many must hold.
    public init(conditions: [Condition], minCount: Int) {
        self.conditions = conditions
        self.minCount = minCount
    }
}

/// One condition of a ``Filter``.
///
/// Values at a key: the key is a dotted path (`country.capital`); `name[]` steps into every element of an
/// array and `name[3]` into one element. Stepping into a key of something that is not an object yields nothing.
/// For `match` and `range`, an array found at the end of the path stands for its elements: the condition holds
/// when any element satisfies it (Qdrant's array semantics).
public indirect enum Condition: Hashable, Sendable {
    /// A `match` or `range` test on the values at a payload key.
    case field(FieldCondition)
    /// `has_id`: the point's id is one of these.
    case hasID(Set<PointID>)
    /// `is_empty`: the key is missing, or every value there is `null` or an empty array.
    case isEmpty(PayloadKey)
    /// `is_null`: some value at the key is `null` itself (an empty array or a missing key is not).
    case isNull(PayloadKey)
    /// `values_count`: the number of values at the key is within bounds. Each value found at the key counts as
    /// `null` 0, an array its length, anything else 1, and the condition holds when one of those counts satisfies
    /// every bound; a missing key counts as 0 (Qdrant's reading).
    case valuesCount(key: PayloadKey, count: ValuesCountCondition)
    /// `nested`: the key leads to an array of objects, and at least one object passes the filter on its own.
    case nested(key: PayloadKey, filter: Filter)
    /// A filter used as a condition.
    case filter(Filter)

    /// The condition as Qdrant's JSON.
    public var jsonValue: JSONValue {
        switch self {
        case .field(let condition):
            var object: JSONObject = ["key": .string(condition.key.text)]
            switch condition.test {
            case .match(let match): object["match"] = match.jsonValue
            case .range(let range): object["range"] = range.jsonValue
            }
            return .object(object)
        case .hasID(let ids):
            return [
                "has_id": .array(
                    ids.sorted().map { id in
                        switch id {
                        case .integer(let value):
                            value <= UInt64(Int64.max) ? .integer(Int64(value)) : .unsigned(value)
                        case .uuid: .string(id.description)
                        }
                    }
                )
            ]
        case .isEmpty(let key): return ["is_empty": ["key": .string(key.text)]]
        case .isNull(let key): return ["is_null": ["key": .string(key.text)]]
        case .valuesCount(let key, let count): return ["key": .string(key.text), "values_count": count.jsonValue]
        case .nested(let key, let filter): return ["nested": ["key": .string(key.text), "filter": filter.jsonValue]]
        case .filter(let filter): return filter.jsonValue
        }
    }
}

/// A `match` or `range` test on the values at a payload key.
public struct FieldCondition: Hashable, Sendable {
    /// The test.
    public enum Test: Hashable, Sendable {
        /// A `match` test.
        case match(Match)
        /// A `range` test.
        case range(RangeCondition)
    }
    /// The payload key.
    public var key: PayloadKey
    /// The test on the values found there.
    public var test: Test

    /// Creates a field condition.
    /// - Parameters:
    ///   - key: The payload key.
    ///   - test: The test on the values found there.
    public init(key: PayloadKey, test: Test) {
        self.key = key
        self.test = test
    }
}

/// A scalar that `match` compares with: a string (Qdrant's keyword), an integer or a boolean.
public enum MatchValue: Hashable, Sendable {
    /// A string, equal only to an equal string.
    case string(String)
    /// An integer, equal only to an equal integer payload value (a payload `1.5` or `1.0` written with a
    /// fraction is a float and never matches).
    case integer(Int64)
    /// A boolean.
    case bool(Bool)

    var jsonValue: JSONValue {
        switch self {
        case .string(let value): .string(value)
        case .integer(let value): .integer(value)
        case .bool(let value): .bool(value)
        }
    }

    /// Strings are equal when their UTF-8 bytes are (Qdrant's keyword match), not under Swift's canonical
    /// equivalence: `"é"` precomposed does not match `"é"` decomposed.
    public static func == (lhs: MatchValue, rhs: MatchValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a.utf8.elementsEqual(b.utf8)
        case (.integer(let a), .integer(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .string(let value):
            hasher.combine(0)
            for byte in value.utf8 { hasher.combine(byte) }
        case .integer(let value):
            hasher.combine(1)
            hasher.combine(value)
        case .bool(let value):
            hasher.combine(2)
            hasher.combine(value)
        }
    }

    func equals(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string(let a), .string(let b)): a.utf8.elementsEqual(b.utf8)
        case (.integer(let a), .integer(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        default: false
        }
    }
}

/// Qdrant's `match` conditions.
public enum Match: Hashable, Sendable {
    /// `{"value": v}`: some value equals `v`.
    case value(MatchValue)
    /// `{"any": [...]}`: some value equals one of the listed strings or integers (an empty list matches nothing).
    case any(Set<MatchValue>)
    /// `{"except": [...]}`: some value is not `null` and equals none of the listed values. A missing key, `null`
    /// or an empty array does not match.
    case except(Set<MatchValue>)
    /// `{"text": "..."}`: a string value holds every word of the text. Both sides are split into words as Qdrant's
    /// server splits a field without a full-text index: runs of letters and digits, lowercased. A text with no word
    /// matches nothing.
    case text(String)
    /// `{"text_any": "..."}`: a string value holds at least one word of the text.
    case textAny(String)
    /// `{"phrase": "..."}`: a string value holds the words of the text consecutively, in order.
    case phrase(String)

    var jsonValue: JSONValue {
        switch self {
        case .value(let value): ["value": value.jsonValue]
        case .any(let values): ["any": .array(values.map(\.jsonValue).sorted { $0.jsonText < $1.jsonText })]
        case .except(let values): ["except": .array(values.map(\.jsonValue).sorted { $0.jsonText < $1.jsonText })]
        case .text(let text): ["text": .string(text)]
        case .textAny(let text): ["text_any": .string(text)]
        case .phrase(let text): ["phrase": .string(text)]
        }
    }

    /// The words of a text as full-text matches read them: maximal runs of letters and digits, lowercased.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(String(current).lowercased())
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current).lowercased()) }
        return words
    }

    /// Whether a string value satisfies a full-text match (`false` for the other matches).
    func matchesText(_ value: String) -> Bool {
        switch self {
        case .text(let query):
            let wanted = Self.words(query)
            let present = Set(Self.words(value))
            return !wanted.isEmpty && wanted.allSatisfy(present.contains)
        case .textAny(let query):
            let present = Set(Self.words(value))
            return Self.words(query).contains(where: present.contains)
        case .phrase(let query):
            let wanted = Self.words(query)
            let present = Self.words(value)
            guard !wanted.isEmpty, wanted.count <= present.count else { return false }
            return (0...(present.count - wanted.count)).contains { start in
                present[start..<(start + wanted.count)].elementsEqual(wanted)
            }
        case .value, .any, .except:
            return false
        }
    }
}

/// Qdrant's `range`: bounds on numeric values (integers and floats, compared as `Double`). Values of other types
/// never satisfy a range; a range without bounds holds for any number.
public struct RangeCondition: Hashable, Sendable {
    /// Exclusive lower bound.
    public var gt: Double?
    /// Inclusive lower bound.
    public var gte: Double?
    /// Exclusive upper bound.
    public var lt: Double?
    /// Inclusive upper bound.
    public var lte: Double?

    /// Creates a range; `nil` bounds are absent.
    /// - Parameters:
    ///   - gt: Exclusive lower bound.
    ///   - gte: Inclusive lower bound.
    ///   - lt: Exclusive upper bound.
    ///   - lte: Inclusive upper bound.
    public init(gt: Double? = nil, gte: Double? = nil, lt: Double? = nil, lte: Double? = nil) {
        self.gt = gt
        self.gte = gte
        self.lt = lt
        self.lte = lte
    }

    func contains(_ number: Double) -> Bool {
        if let gt, !(number > gt) { return false }
        if let gte, !(number >= gte) { return false }
        if let lt, !(number < lt) { return false }
        if let lte, !(number <= lte) { return false }
        return true
    }

    var jsonValue: JSONValue {
        var object: JSONObject = [:]
        if let gt { object["gt"] = .double(gt) }
        if let gte { object["gte"] = .double(gte) }
        if let lt { object["lt"] = .double(lt) }
        if let lte { object["lte"] = .double(lte) }
        return .object(object)
    }
}

/// Qdrant's `values_count` bounds: `gt`, `gte`, `lt`, `lte` on a count of values, each a non-negative integer or
/// absent. Bounds that are all absent hold for any count.
public struct ValuesCountCondition: Hashable, Sendable {
    /// Exclusive lower bound.
    public var gt: Int?
    /// Inclusive lower bound.
    public var gte: Int?
    /// Exclusive upper bound.
    public var lt: Int?
    /// Inclusive upper bound.
    public var lte: Int?

    /// Creates bounds on a count; `nil` bounds are absent.
    /// - Parameters:
    ///   - gt: Exclusive lower bound.
    ///   - gte: Inclusive lower bound.
    ///   - lt: Exclusive upper bound.
    ///   - lte: Inclusive upper bound.
    public init(gt: Int? = nil, gte: Int? = nil, lt: Int? = nil, lte: Int? = nil) {
        self.gt = gt
        self.gte = gte
        self.lt = lt
        self.lte = lte
    }

    /// Whether `count` satisfies every bound.
    public func contains(_ count: Int) -> Bool {
        if let gt, !(count > gt) { return false }
        if let gte, !(count >= gte) { return false }
        if let lt, !(count < lt) { return false }
        if let lte, !(count <= lte) { return false }
        return true
    }

    /// The count of one value found at a key: `null` 0, an array its length, anything else 1.
    static func count(of value: JSONValue) -> Int {
        switch value {
        case .null: 0
        case .array(let elements): elements.count
        default: 1
        }
    }

    var jsonValue: JSONValue {
        var object: JSONObject = [:]
        if let gt { object["gt"] = .integer(Int64(gt)) }
        if let gte { object["gte"] = .integer(Int64(gte)) }
        if let lt { object["lt"] = .integer(Int64(lt)) }
        if let lte { object["lte"] = .integer(Int64(lte)) }
        return .object(object)
    }
}

/// A payload key path, parsed once: `a.b`, `a[].b`, `a[2].b`.
public struct PayloadKey: Hashable, Sendable, CustomStringConvertible {
    enum Step: Hashable, Sendable {
        case member(String)
        case everyElement
        case element(Int)
    }
    /// The key as written.
    public let text: String
    let steps: [Step]

    /// Parses a key path.
    /// - Parameter text: The key, for example `country.cities[].name`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for an empty key, an empty segment or a bad bracket.
    public init(_ text: String) throws(TesseraError) {
        self.text = text
        var steps: [Step] = []
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(segment)
            let name = rest.prefix { $0 != "[" }
            if name.isEmpty {
                throw TesseraError(.invalidArgument, "payload key '\(text)' has an empty segment")
            }
            steps.append(.member(String(name)))
            rest = rest.dropFirst(name.count)
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]") else {
                    throw TesseraError(.invalidArgument, "payload key '\(text)' has an unbalanced '['")
                }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if inside.isEmpty {
                    steps.append(.everyElement)
                } else if let index = Int(inside), index >= 0 {
                    steps.append(.element(index))
                } else {
                    throw TesseraError(.invalidArgument, "payload key '\(text)' has a bad index '[\(inside)]'")
                }
                rest = rest[rest.index(after: close)...]
            }
        }
        self.steps = steps
    }

    public var description: String { text }

    /// The values at this key, arrays at the end of the path left as they are.
    func values(in object: JSONObject) -> [JSONValue] {
        var current: [JSONValue] = []
        var first = true
        for step in steps {
            var next: [JSONValue] = []
            switch step {
            case .member(let name):
                if first {
                    if let value = object[name] { next.append(value) }
                    first = false
                } else {
                    for case .object(let members) in current {
                        if let value = members[name] { next.append(value) }
                    }
                }
            case .everyElement:
                for case .array(let elements) in current { next.append(contentsOf: elements) }
            case .element(let index):
                for case .array(let elements) in current where index < elements.count { next.append(elements[index]) }
            }
            current = next
            if current.isEmpty { break }
        }
        return current
    }
}
