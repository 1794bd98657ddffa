public import Tessera

extension Qdrant {
    /// Qdrant's `Filter`: `must`, `should`, `must_not` (each a list of conditions, one condition, or `null`) and
    /// `min_should`. Unknown fields are refused, naming them.
    public struct Filter: Codable, Sendable, Hashable {
        public var must: [Condition]?
        public var should: [Condition]?
        public var mustNot: [Condition]?
        public var minShould: MinShould?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case must, should
            case mustNot = "must_not"
            case minShould = "min_should"
        }

        /// Creates a filter.
        public init(
            must: [Condition]? = nil,
            should: [Condition]? = nil,
            mustNot: [Condition]? = nil,
            minShould: MinShould? = nil
        ) {
            self.must = must
            self.should = should
            self.mustNot = mustNot
            self.minShould = minShould
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a filter")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            must = try Self.conditions(container, .must)
            should = try Self.conditions(container, .should)
            mustNot = try Self.conditions(container, .mustNot)
            minShould = try container.decodeIfPresent(MinShould.self, forKey: .minShould)
        }

        /// Qdrant accepts one condition where a list is expected.
        static func conditions(
            _ container: KeyedDecodingContainer<CodingKeys>,
            _ key: CodingKeys
        ) throws -> [Condition]? {
            guard container.contains(key), try !container.decodeNil(forKey: key) else { return nil }
            if let list = try? container.nestedUnkeyedContainer(forKey: key) {
                var list = list
                var result: [Condition] = []
                while !list.isAtEnd { result.append(try list.decode(Condition.self)) }
                return result
            }
            return [try container.decode(Condition.self, forKey: key)]
        }

        /// The library's filter.
        /// - Throws: `TesseraError.Code.invalidArgument` for a payload key the library refuses.
        public func filter() throws(TesseraError) -> Tessera.Filter {
            func convert(_ conditions: [Condition]?) throws(TesseraError) -> [Tessera.Condition] {
                var result: [Tessera.Condition] = []
                for condition in conditions ?? [] { result.append(try condition.condition()) }
                return result
            }
            return Tessera.Filter(
                must: try convert(must),
                should: try convert(should),
                mustNot: try convert(mustNot),
                minShould: try minShould.map { clause throws(TesseraError) in
                    Tessera.MinShould(conditions: try convert(clause.conditions), minCount: clause.minCount)
                }
            )
        }
    }

    /// Qdrant's `MinShould`: at least `min_count` of `conditions` must hold.
    public struct MinShould: Codable, Sendable, Hashable {
        public var conditions: [Condition]
        public var minCount: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case conditions
            case minCount = "min_count"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "min_should")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            conditions = try container.decodeIfPresent([Condition].self, forKey: .conditions) ?? []
            minCount = try container.decode(Int.self, forKey: .minCount)
            guard minCount >= 0 else {
                throw invalid(decoder.codingPath + [CodingKeys.minCount], "min_count must be a non-negative integer")
            }
        }
    }

    /// One condition of a filter: a field condition (`key` with `match`, `range` or `values_count`), `has_id`,
    /// `is_empty`, `is_null`, `nested`, or a filter.
    public indirect enum Condition: Codable, Sendable, Hashable {
        case field(key: String, match: Match?, range: Range?)
        case valuesCount(key: String, count: ValuesCount)
        case hasID([PointID])
        case isEmpty(key: String)
        case isNull(key: String)
        case nested(key: String, filter: Filter)
        case filter(Filter)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case key, match, range
            case valuesCount = "values_count"
            case hasID = "has_id"
            case isEmpty = "is_empty"
            case isNull = "is_null"
            case nested
        }

        enum KeyOnly: String, CodingKey, CaseIterable { case key }
        enum NestedKeys: String, CodingKey, CaseIterable { case key, filter }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            let names = Set(container.allKeys.map(\.stringValue))
            let keyed = try decoder.container(keyedBy: CodingKeys.self)
            if names.contains("key") {
                try Self.only(["key", "match", "range", "values_count"], decoder)
                let key = try keyed.decode(String.self, forKey: .key)
                let match = try keyed.decodeIfPresent(Match.self, forKey: .match)
                let range = try keyed.decodeIfPresent(Range.self, forKey: .range)
                let count = try keyed.decodeIfPresent(ValuesCount.self, forKey: .valuesCount)
                guard [match != nil, range != nil, count != nil].filter({ $0 }).count == 1 else {
                    throw invalid(
                        decoder.codingPath,
                        "a field condition takes one of 'match', 'range' and 'values_count'"
                    )
                }
                if let count {
                    self = .valuesCount(key: key, count: count)
                } else {
                    self = .field(key: key, match: match, range: range)
                }
            } else if names.contains("has_id") {
                try Self.only(["has_id"], decoder)
                self = .hasID(try keyed.decode([PointID].self, forKey: .hasID))
            } else if let name = ["is_empty", "is_null"].first(where: names.contains) {
                try Self.only([name], decoder)
                let codingKey = CodingKeys(rawValue: name)!
                let inner = try keyed.superDecoder(forKey: codingKey)
                try inner.rejectUnknownKeys(KeyOnly.self, what: name)
                let key = try inner.container(keyedBy: KeyOnly.self).decode(String.self, forKey: .key)
                self = name == "is_empty" ? .isEmpty(key: key) : .isNull(key: key)
            } else if names.contains("nested") {
                try Self.only(["nested"], decoder)
                let inner = try keyed.superDecoder(forKey: .nested)
                try inner.rejectUnknownKeys(NestedKeys.self, what: "nested")
                let fields = try inner.container(keyedBy: NestedKeys.self)
                self = .nested(
                    key: try fields.decode(String.self, forKey: .key),
                    filter: try fields.decode(Filter.self, forKey: .filter)
                )
            } else if names.isEmpty || !names.isDisjoint(with: ["must", "should", "must_not", "min_should"]) {
                // An empty object is an empty filter, which every point passes (as Qdrant reads it).
                self = .filter(try Filter(from: decoder))
            } else {
                throw invalid(
                    decoder.codingPath,
                    "unknown condition with fields [\(names.sorted().joined(separator: ", "))] (expected key+match, "
                        + "key+range, key+values_count, has_id, is_empty, is_null, nested, or a filter)"
                )
            }
        }

        static func only(_ allowed: Set<String>, _ decoder: any Decoder) throws {
            let names = try decoder.container(keyedBy: JSONKey.self).allKeys.map(\.stringValue)
            if let extra = names.filter({ !allowed.contains($0) }).sorted().first {
                throw invalid(
                    decoder.codingPath + [JSONKey(stringValue: extra)],
                    "unknown field '\(extra)' (expected \(allowed.sorted().joined(separator: ", ")))"
                )
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .field(let key, let match, let range):
                try container.encode(key, forKey: .key)
                try container.encodeIfPresent(match, forKey: .match)
                try container.encodeIfPresent(range, forKey: .range)
            case .valuesCount(let key, let count):
                try container.encode(key, forKey: .key)
                try container.encode(count, forKey: .valuesCount)
            case .hasID(let ids): try container.encode(ids.map(\.jsonValue), forKey: .hasID)
            case .isEmpty(let key): try container.encode(["key": key], forKey: .isEmpty)
            case .isNull(let key): try container.encode(["key": key], forKey: .isNull)
            case .nested(let key, let filter):
                var nested = container.nestedContainer(keyedBy: NestedKeys.self, forKey: .nested)
                try nested.encode(key, forKey: .key)
                try nested.encode(filter, forKey: .filter)
            case .filter(let filter): try filter.encode(to: encoder)
            }
        }

        /// The library's condition.
        func condition(nested: Bool = false) throws(TesseraError) -> Tessera.Condition {
            switch self {
            case .field(let key, let match, let range):
                let payloadKey = try PayloadKey(key)
                if let match { return .field(FieldCondition(key: payloadKey, test: .match(match.match))) }
                // Decoding admits exactly one of `match` and `range`.
                let bounds = RangeCondition(gt: range?.gt, gte: range?.gte, lt: range?.lt, lte: range?.lte)
                return .field(FieldCondition(key: payloadKey, test: .range(bounds)))
            case .valuesCount(let key, let count):
                return .valuesCount(
                    key: try PayloadKey(key),
                    count: ValuesCountCondition(gt: count.gt, gte: count.gte, lt: count.lt, lte: count.lte)
                )
            case .hasID(let ids):
                if nested {
                    throw TesseraError(
                        .invalidArgument,
                        "has_id is not supported inside a nested filter",
                        location: .init(field: "filter")
                    )
                }
                return .hasID(Set(ids))
            case .isEmpty(let key): return .isEmpty(try PayloadKey(key))
            case .isNull(let key): return .isNull(try PayloadKey(key))
            case .nested(let key, let filter):
                var inner = try filter.filter()
                inner = try Self.checkedNested(filter, converted: inner)
                return .nested(key: try PayloadKey(key), filter: inner)
            case .filter(let filter): return .filter(try filter.filter())
            }
        }

        /// A nested filter's conditions may not name point ids (Qdrant refuses them there).
        static func checkedNested(_ filter: Filter, converted: Tessera.Filter) throws(TesseraError) -> Tessera.Filter {
            let all =
                (filter.must ?? []) + (filter.should ?? []) + (filter.mustNot ?? [])
                + (filter.minShould?.conditions ?? [])
            for condition in all { _ = try condition.condition(nested: true) }
            return converted
        }
    }

    /// Qdrant's `Match`: exactly one of `value`, `any`, `except`, or the full-text `text`, `text_any`, `phrase`.
    public enum Match: Codable, Sendable, Hashable {
        case value(JSONValue)
        case any([JSONValue])
        case except([JSONValue])
        case text(String)
        case textAny(String)
        case phrase(String)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case value, any, except, text, phrase
            case textAny = "text_any"
        }

        public init(from decoder: any Decoder) throws {
            let names = try decoder.container(keyedBy: JSONKey.self).allKeys.map(\.stringValue)
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a match")
            guard names.count == 1 else {
                throw invalid(
                    decoder.codingPath,
                    "match takes exactly one of 'value', 'any', 'except', 'text', 'text_any', 'phrase'"
                )
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let text = try container.decodeIfPresent(String.self, forKey: .text) {
                self = .text(text)
                return
            }
            if let text = try container.decodeIfPresent(String.self, forKey: .textAny) {
                self = .textAny(text)
                return
            }
            if let text = try container.decodeIfPresent(String.self, forKey: .phrase) {
                self = .phrase(text)
                return
            }
            if container.contains(.value) {
                let value = try container.decode(JSONValue.self, forKey: .value)
                switch value {
                case .string, .integer, .bool: self = .value(value)
                default:
                    throw invalid(
                        decoder.codingPath + [CodingKeys.value],
                        "match value must be a string, an integer or a boolean, found \(value.jsonText)"
                    )
                }
                return
            }
            let key: CodingKeys = container.contains(.any) ? .any : .except
            let values = try container.decode([JSONValue].self, forKey: key)
            let strings = values.allSatisfy { if case .string = $0 { true } else { false } }
            let integers = values.allSatisfy { if case .integer = $0 { true } else { false } }
            guard strings || integers else {
                throw invalid(decoder.codingPath + [key], "\(key.rawValue) must list only strings or only integers")
            }
            self = key == .any ? .any(values) : .except(values)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .value(let value): try container.encode(value, forKey: .value)
            case .any(let values): try container.encode(values, forKey: .any)
            case .except(let values): try container.encode(values, forKey: .except)
            case .text(let text): try container.encode(text, forKey: .text)
            case .textAny(let text): try container.encode(text, forKey: .textAny)
            case .phrase(let text): try container.encode(text, forKey: .phrase)
            }
        }

        static func matchValue(_ value: JSONValue) -> MatchValue {
            switch value {
            case .string(let text): .string(text)
            case .bool(let flag): .bool(flag)
            case .integer(let number): .integer(number)
            default: .string(value.jsonText)  // not reached: decoding admits only the three kinds above
            }
        }

        var match: Tessera.Match {
            switch self {
            case .value(let value): .value(Self.matchValue(value))
            case .any(let values): .any(Set(values.map(Self.matchValue)))
            case .except(let values): .except(Set(values.map(Self.matchValue)))
            case .text(let text): .text(text)
            case .textAny(let text): .textAny(text)
            case .phrase(let text): .phrase(text)
            }
        }
    }

    /// Qdrant's `Range`: `gt`, `gte`, `lt`, `lte`, each a number or absent.
    public struct Range: Codable, Sendable, Hashable {
        public var gt: Double?
        public var gte: Double?
        public var lt: Double?
        public var lte: Double?

        enum CodingKeys: String, CodingKey, CaseIterable { case gt, gte, lt, lte }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "a range")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            gt = try container.decodeIfPresent(Double.self, forKey: .gt)
            gte = try container.decodeIfPresent(Double.self, forKey: .gte)
            lt = try container.decodeIfPresent(Double.self, forKey: .lt)
            lte = try container.decodeIfPresent(Double.self, forKey: .lte)
        }
    }

    /// Qdrant's `ValuesCount`: `gt`, `gte`, `lt`, `lte`, each a non-negative integer or absent.
    public struct ValuesCount: Codable, Sendable, Hashable {
        public var gt: Int?
        public var gte: Int?
        public var lt: Int?
        public var lte: Int?

        enum CodingKeys: String, CodingKey, CaseIterable { case gt, gte, lt, lte }

        /// Creates bounds on a count.
        public init(gt: Int? = nil, gte: Int? = nil, lt: Int? = nil, lte: Int? = nil) {
            self.gt = gt
            self.gte = gte
            self.lt = lt
            self.lte = lte
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self, what: "values_count")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func bound(_ key: CodingKeys) throws -> Int? {
                guard let value = try container.decodeIfPresent(Int.self, forKey: key) else { return nil }
                guard value >= 0 else {
                    throw invalid(decoder.codingPath + [key], "values_count bound must be a non-negative integer")
                }
                return value
            }
            gt = try bound(.gt)
            gte = try bound(.gte)
            lt = try bound(.lt)
            lte = try bound(.lte)
        }
    }
}
