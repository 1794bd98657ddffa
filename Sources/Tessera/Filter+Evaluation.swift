extension PayloadKey {
    /// Whether some value at this key satisfies `predicate`, visiting values without collecting them.
    func containsValue(in object: JSONObject, where predicate: (JSONValue) -> Bool) -> Bool {
        guard case .member(let name) = steps[0], let root = object[name] else { return false }
        return visit(root, step: 1, predicate)
    }

    private func visit(_ value: JSONValue, step: Int, _ predicate: (JSONValue) -> Bool) -> Bool {
        if step == steps.count { return predicate(value) }
        switch steps[step] {
        case .member(let name):
            guard case .object(let members) = value, let next = members[name] else { return false }
            return visit(next, step: step + 1, predicate)
        case .everyElement:
            guard case .array(let elements) = value else { return false }
            return elements.contains { visit($0, step: step + 1, predicate) }
        case .element(let index):
            guard case .array(let elements) = value, index < elements.count else { return false }
            return visit(elements[index], step: step + 1, predicate)
        }
    }
}

extension Filter {
    /// Whether a point passes the filter.
    /// - Parameters:
    ///   - payload: The point's payload.
    ///   - id: The point's id, for `has_id`.
    /// - Returns: `true` when the point passes.
    /// - Complexity: O(size of the filter × values visited at its keys).
    public func matches(payload: JSONObject, id: PointID) -> Bool {
        for condition in must where !condition.matches(payload: payload, id: id) { return false }
        if !should.isEmpty, !should.contains(where: { $0.matches(payload: payload, id: id) }) { return false }
        for condition in mustNot where condition.matches(payload: payload, id: id) { return false }
        if let minShould {
            var satisfied = 0
            for condition in minShould.conditions where condition.matches(payload: payload, id: id) {
                satisfied += 1
                if satisfied >= minShould.minCount { break }
            }
            if satisfied < minShould.minCount { return false }
        }
        return true
    }

    /// Whether the filter has no conditions (and so passes every point).
    public var isEmpty: Bool { must.isEmpty && should.isEmpty && mustNot.isEmpty && minShould == nil }
}

extension Condition {
    /// Whether a point satisfies the condition.
    func matches(payload: JSONObject, id: PointID?) -> Bool {
        switch self {
        case .field(let condition):
            return condition.key.containsValue(in: payload) { leaf in
                if case .array(let elements) = leaf { return elements.contains { condition.test.holds(for: $0) } }
                return condition.test.holds(for: leaf)
            }
        case .hasID(let ids):
            guard let id else { return false }
            return ids.contains(id)
        case .isEmpty(let key):
            return !key.containsValue(in: payload) { leaf in
                switch leaf {
                case .null: false
                case .array(let elements): elements.contains { $0 != .null }
                default: true
                }
            }
        case .isNull(let key):
            return key.containsValue(in: payload) { $0 == .null }
        case .valuesCount(let key, let count):
            var found = false
            let holds = key.containsValue(in: payload) { leaf in
                found = true
                return count.contains(ValuesCountCondition.count(of: leaf))
            }
            return holds || (!found && count.contains(0))
        case .nested(let key, let filter):
            return key.containsValue(in: payload) { leaf in
                func passes(_ value: JSONValue) -> Bool {
                    guard case .object(let members) = value else { return false }
                    return filter.matchesNested(payload: members)
                }
                if case .array(let elements) = leaf { return elements.contains(where: passes) }
                return passes(leaf)
            }
        case .filter(let filter):
            guard let id else { return filter.matchesNested(payload: payload) }
            return filter.matches(payload: payload, id: id)
        }
    }
}

extension Filter {
    /// Evaluation inside a `nested` condition, where there is no point id (`has_id` is rejected there at parse time).
    fileprivate func matchesNested(payload: JSONObject) -> Bool {
        for condition in must where !condition.matches(payload: payload, id: nil) { return false }
        if !should.isEmpty, !should.contains(where: { $0.matches(payload: payload, id: nil) }) { return false }
        for condition in mustNot where condition.matches(payload: payload, id: nil) { return false }
        if let minShould {
            let satisfied = minShould.conditions.lazy.filter { $0.matches(payload: payload, id: nil) }.count
            if satisfied < minShould.minCount { return false }
        }
        return true
    }
}

extension FieldCondition.Test {
    /// Whether one scalar (not array) value satisfies the test.
    func holds(for value: JSONValue) -> Bool {
        switch self {
        case .match(.value(let expected)):
            return expected.equals(value)
        case .match(.any(let values)):
            switch value {
            case .string(let text): return values.contains(.string(text))
            case .integer(let number): return values.contains(.integer(number))
            case .bool(let flag): return values.contains(.bool(flag))
            default: return false
            }
        case .match(.except(let values)):
            switch value {
            case .null: return false
            case .string(let text): return !values.contains(.string(text))
            case .integer(let number): return !values.contains(.integer(number))
            case .bool(let flag): return !values.contains(.bool(flag))
            default: return true
            }
        case .match(let match):
            guard case .string(let text) = value else { return false }
            return match.matchesText(text)
        case .range(let range):
            switch value {
            case .integer(let number): return range.contains(Double(number))
            case .unsigned(let number): return range.contains(Double(number))
            case .double(let number): return range.contains(number)
            default: return false
            }
        }
    }
}

/// Builds filters from JSON values, naming the JSON path of every problem.
enum FilterParser {
    static func filter(_ value: JSONValue, path: String, nested: Bool = false) throws(TesseraError) -> Filter {
        guard case .object(let members) = value else {
            throw error(path, "a filter must be a JSON object, found \(value.jsonText)")
        }
        var filter = Filter()
        for (name, member) in members.sorted(by: { $0.key < $1.key }) {
            let memberPath = join(path, name)
            switch name {
            case "must": filter.must = try conditionList(member, path: memberPath, nested: nested)
            case "should": filter.should = try conditionList(member, path: memberPath, nested: nested)
            case "must_not": filter.mustNot = try conditionList(member, path: memberPath, nested: nested)
            case "min_should":
                if member == .null { continue }
                guard case .object(let clause) = member else {
                    throw error(memberPath, "min_should must be an object with 'conditions' and 'min_count'")
                }
                try rejectUnknown(clause, allowed: ["conditions", "min_count"], path: memberPath)
                let conditions = try conditionList(
                    clause["conditions"] ?? .array([]),
                    path: join(memberPath, "conditions"),
                    nested: nested
                )
                guard case .integer(let count)? = clause["min_count"], count >= 0 else {
                    throw error(join(memberPath, "min_count"), "min_count must be a non-negative integer")
                }
                filter.minShould = MinShould(conditions: conditions, minCount: Int(count))
            default:
                throw error(memberPath, "unknown filter field '\(name)' (expected must, should, must_not, min_should)")
            }
        }
        return filter
    }

    /// Qdrant accepts a single condition where a list is expected; so do we. `null` is an empty list.
    static func conditionList(_ value: JSONValue, path: String, nested: Bool) throws(TesseraError) -> [Condition] {
        switch value {
        case .null: return []
        case .array(let elements):
            var conditions: [Condition] = []
            for (index, element) in elements.enumerated() {
                conditions.append(try condition(element, path: "\(path)[\(index)]", nested: nested))
            }
            return conditions
        default: return [try condition(value, path: path, nested: nested)]
        }
    }

    static func condition(_ value: JSONValue, path: String, nested: Bool) throws(TesseraError) -> Condition {
        guard case .object(let members) = value else {
            throw error(path, "a condition must be a JSON object, found \(value.jsonText)")
        }
        if members["key"] != nil {
            try rejectUnknown(members, allowed: ["key", "match", "range", "values_count"], path: path)
            let key = try payloadKey(members["key"]!, path: join(path, "key"))
            let tests = ["match", "range", "values_count"].filter { members[$0] != nil && members[$0] != .null }
            guard let test = tests.first else {
                throw error(path, "a field condition needs 'match', 'range' or 'values_count'")
            }
            guard tests.count == 1 else {
                throw error(path, "a field condition takes one of 'match', 'range' and 'values_count', not several")
            }
            let operand = members[test]!
            switch test {
            case "match":
                return .field(FieldCondition(key: key, test: .match(try match(operand, path: join(path, "match")))))
            case "range":
                return .field(FieldCondition(key: key, test: .range(try range(operand, path: join(path, "range")))))
            default:
                return .valuesCount(key: key, count: try valuesCount(operand, path: join(path, "values_count")))
            }
        }
        if let ids = members["has_id"] {
            try rejectUnknown(members, allowed: ["has_id"], path: path)
            if nested { throw error(join(path, "has_id"), "has_id is not supported inside a nested filter") }
            guard case .array(let elements) = ids else {
                throw error(join(path, "has_id"), "has_id must be an array of point ids")
            }
            var set: Set<PointID> = []
            for (index, element) in elements.enumerated() {
                set.insert(try pointID(element, path: "\(join(path, "has_id"))[\(index)]"))
            }
            return .hasID(set)
        }
        for name in ["is_empty", "is_null"] {
            guard let field = members[name] else { continue }
            try rejectUnknown(members, allowed: [name], path: path)
            guard case .object(let inner) = field, let keyValue = inner["key"] else {
                throw error(join(path, name), "\(name) must be an object with a 'key'")
            }
            try rejectUnknown(inner, allowed: ["key"], path: join(path, name))
            let key = try payloadKey(keyValue, path: join(join(path, name), "key"))
            return name == "is_empty" ? .isEmpty(key) : .isNull(key)
        }
        if let nestedValue = members["nested"] {
            try rejectUnknown(members, allowed: ["nested"], path: path)
            let nestedPath = join(path, "nested")
            guard case .object(let inner) = nestedValue, let keyValue = inner["key"], let filterValue = inner["filter"]
            else {
                throw error(nestedPath, "nested must be an object with 'key' and 'filter'")
            }
            try rejectUnknown(inner, allowed: ["key", "filter"], path: nestedPath)
            let key = try payloadKey(keyValue, path: join(nestedPath, "key"))
            return .nested(key: key, filter: try filter(filterValue, path: join(nestedPath, "filter"), nested: true))
        }
        // An empty object is an empty filter, which every point passes (as Qdrant reads it).
        if members.isEmpty
            || members.keys.contains(where: { ["must", "should", "must_not", "min_should"].contains($0) })
        {
            return .filter(try filter(value, path: path, nested: nested))
        }
        let names = members.keys.sorted().joined(separator: ", ")
        throw error(
            path,
            "unknown condition with fields [\(names)] (expected key+match, key+range, key+values_count, has_id, "
                + "is_empty, is_null, nested, or a filter)"
        )
    }

    static func match(_ value: JSONValue, path: String) throws(TesseraError) -> Match {
        guard case .object(let members) = value, members.count == 1, let (name, operand) = members.first else {
            throw error(path, "match must be an object with exactly one of 'value', 'any', 'except'")
        }
        let operandPath = join(path, name)
        switch name {
        case "value":
            return .value(try matchValue(operand, path: operandPath))
        case "any", "except":
            guard case .array(let elements) = operand else {
                throw error(operandPath, "\(name) must be an array of strings or of integers")
            }
            var values: Set<MatchValue> = []
            var sawString = false
            var sawInteger = false
            for (index, element) in elements.enumerated() {
                let elementPath = "\(operandPath)[\(index)]"
                switch element {
                case .string(let text):
                    sawString = true
                    values.insert(.string(text))
                case .integer(let number):
                    sawInteger = true
                    values.insert(.integer(number))
                default:
                    throw error(elementPath, "\(name) takes strings or integers, found \(element.jsonText)")
                }
                if sawString && sawInteger {
                    throw error(elementPath, "\(name) must list only strings or only integers, not both")
                }
            }
            return name == "any" ? .any(values) : .except(values)
        case "text", "phrase", "text_any":
            guard case .string(let text) = operand else { throw error(operandPath, "\(name) must be a string") }
            return name == "text" ? .text(text) : name == "phrase" ? .phrase(text) : .textAny(text)
        default:
            throw error(operandPath, "unknown match '\(name)' (expected value, any, except, text, text_any, phrase)")
        }
    }

    static func matchValue(_ value: JSONValue, path: String) throws(TesseraError) -> MatchValue {
        switch value {
        case .string(let text): return .string(text)
        case .integer(let number): return .integer(number)
        case .bool(let flag): return .bool(flag)
        default: throw error(path, "match value must be a string, an integer or a boolean, found \(value.jsonText)")
        }
    }

    static func range(_ value: JSONValue, path: String) throws(TesseraError) -> RangeCondition {
        guard case .object(let members) = value else {
            throw error(path, "range must be an object with gt, gte, lt, lte")
        }
        try rejectUnknown(members, allowed: ["gt", "gte", "lt", "lte"], path: path)
        func bound(_ name: String) throws(TesseraError) -> Double? {
            switch members[name] {
            case nil, .null?: return nil
            case .integer(let number)?: return Double(number)
            case .unsigned(let number)?: return Double(number)
            case .double(let number)?: return number
            case let other?: throw error(join(path, name), "range bound must be a number, found \(other.jsonText)")
            }
        }
        return RangeCondition(gt: try bound("gt"), gte: try bound("gte"), lt: try bound("lt"), lte: try bound("lte"))
    }

    static func valuesCount(_ value: JSONValue, path: String) throws(TesseraError) -> ValuesCountCondition {
        guard case .object(let members) = value else {
            throw error(path, "values_count must be an object with gt, gte, lt, lte")
        }
        try rejectUnknown(members, allowed: ["gt", "gte", "lt", "lte"], path: path)
        func bound(_ name: String) throws(TesseraError) -> Int? {
            switch members[name] {
            case nil, .null?: return nil
            case .integer(let number)? where number >= 0: return Int(number)
            case let other?:
                throw error(
                    join(path, name),
                    "values_count bound must be a non-negative integer, found \(other.jsonText)"
                )
            }
        }
        return ValuesCountCondition(
            gt: try bound("gt"),
            gte: try bound("gte"),
            lt: try bound("lt"),
            lte: try bound("lte")
        )
    }

    static func payloadKey(_ value: JSONValue, path: String) throws(TesseraError) -> PayloadKey {
        guard case .string(let text) = value else {
            throw error(path, "key must be a string, found \(value.jsonText)")
        }
        do {
            return try PayloadKey(text)
        } catch let failure {
            throw error(path, failure.message)
        }
    }

    static func pointID(_ value: JSONValue, path: String) throws(TesseraError) -> PointID {
        switch value {
        case .integer(let number) where number >= 0: return .integer(UInt64(number))
        case .unsigned(let number): return .integer(number)
        case .string(let text):
            if let uuid = PointID.uuidFromText(text) { return .uuid(uuid) }
            throw error(path, "point id '\(text)' is not a UUID")
        default:
            throw error(path, "point id must be an unsigned integer or a UUID string, found \(value.jsonText)")
        }
    }

    static func rejectUnknown(_ members: JSONObject, allowed: Set<String>, path: String) throws(TesseraError) {
        for name in members.keys.sorted() where !allowed.contains(name) {
            throw error(
                join(path, name),
                "unknown field '\(name)' (expected \(allowed.sorted().joined(separator: ", ")))"
            )
        }
    }

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    static func error(_ path: String, _ message: String) -> TesseraError {
        TesseraError(.invalidArgument, "bad filter: \(message)", location: .init(field: path.isEmpty ? "filter" : path))
    }
}
