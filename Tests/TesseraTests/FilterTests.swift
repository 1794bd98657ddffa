import Foundation
import Tessera
import TesseraPlatform
import Testing

/// A filter built by the test, evaluated here by brute force and sent to Tessera as Qdrant JSON.
private indirect enum TestCondition {
    case matchValue(String, JSONValue)
    case matchAny(String, [JSONValue])
    case matchExcept(String, [JSONValue])
    case range(String, [String: Double])
    case hasID([UInt64])
    case isEmpty(String)
    case isNull(String)
    case valuesCount(String, [String: Int])
    case nested(String, TestFilter)
    case filter(TestFilter)
}

private struct TestFilter {
    var must: [TestCondition] = []
    var should: [TestCondition] = []
    var mustNot: [TestCondition] = []
    var minShould: ([TestCondition], Int)? = nil
}

// MARK: JSON

private func json(_ value: JSONValue) -> String { value.jsonText }

private func json(_ condition: TestCondition) -> String {
    func list(_ values: [JSONValue]) -> String { "[" + values.map(json).joined(separator: ",") + "]" }
    switch condition {
    case .matchValue(let key, let value): return #"{"key":"\#(key)","match":{"value":\#(json(value))}}"#
    case .matchAny(let key, let values): return #"{"key":"\#(key)","match":{"any":\#(list(values))}}"#
    case .matchExcept(let key, let values): return #"{"key":"\#(key)","match":{"except":\#(list(values))}}"#
    case .range(let key, let bounds):
        let body = bounds.sorted { $0.key < $1.key }.map { #""\#($0.key)":\#($0.value)"# }.joined(separator: ",")
        return #"{"key":"\#(key)","range":{\#(body)}}"#
    case .hasID(let ids): return #"{"has_id":[\#(ids.map(String.init).joined(separator: ","))]}"#
    case .isEmpty(let key): return #"{"is_empty":{"key":"\#(key)"}}"#
    case .isNull(let key): return #"{"is_null":{"key":"\#(key)"}}"#
    case .valuesCount(let key, let bounds):
        let body = bounds.sorted { $0.key < $1.key }.map { #""\#($0.key)":\#($0.value)"# }.joined(separator: ",")
        return #"{"key":"\#(key)","values_count":{\#(body)}}"#
    case .nested(let key, let filter): return #"{"nested":{"key":"\#(key)","filter":\#(json(filter))}}"#
    case .filter(let filter): return json(filter)
    }
}

private func json(_ filter: TestFilter) -> String {
    func list(_ conditions: [TestCondition]) -> String { "[" + conditions.map(json).joined(separator: ",") + "]" }
    var parts: [String] = []
    if !filter.must.isEmpty { parts.append(#""must":\#(list(filter.must))"#) }
    if !filter.should.isEmpty { parts.append(#""should":\#(list(filter.should))"#) }
    if !filter.mustNot.isEmpty { parts.append(#""must_not":\#(list(filter.mustNot))"#) }
    if let (conditions, count) = filter.minShould {
        parts.append(#""min_should":{"conditions":\#(list(conditions)),"min_count":\#(count)}"#)
    }
    return "{" + parts.joined(separator: ",") + "}"
}

// MARK: Brute-force evaluation, written from Qdrant's documented semantics

/// The values a dotted key reaches; `name[]` steps into every element of an array.
private func reach(_ key: String, _ payload: JSONObject) -> [JSONValue] {
    var current: [JSONValue] = [.object(payload)]
    for part in key.split(separator: ".") {
        let all = part.hasSuffix("[]")
        let name = all ? String(part.dropLast(2)) : String(part)
        var next: [JSONValue] = []
        for value in current {
            if case .object(let members) = value, let member = members[name] {
                if all {
                    if case .array(let elements) = member { next += elements }
                } else {
                    next.append(member)
                }
            }
        }
        current = next
    }
    return current
}

/// Leaf values with arrays at the end of the path opened.
private func scalars(_ key: String, _ payload: JSONObject) -> [JSONValue] {
    reach(key, payload).flatMap { value -> [JSONValue] in
        if case .array(let elements) = value { return elements }
        return [value]
    }
}

private func evaluate(_ condition: TestCondition, _ payload: JSONObject, _ id: UInt64?) -> Bool {
    switch condition {
    case .matchValue(let key, let value): return scalars(key, payload).contains(value)
    case .matchAny(let key, let values): return scalars(key, payload).contains { values.contains($0) }
    case .matchExcept(let key, let values):
        return scalars(key, payload).contains { $0 != .null && !values.contains($0) }
    case .range(let key, let bounds):
        return scalars(key, payload).contains { value in
            let number: Double
            switch value {
            case .integer(let n): number = Double(n)
            case .double(let d): number = d
            default: return false
            }
            return bounds.allSatisfy { bound, limit in
                switch bound {
                case "gt": number > limit
                case "gte": number >= limit
                case "lt": number < limit
                default: number <= limit
                }
            }
        }
    case .hasID(let ids): return id.map(ids.contains) ?? false
    case .isEmpty(let key): return scalars(key, payload).allSatisfy { $0 == .null }
    case .isNull(let key): return reach(key, payload).contains(.null)
    case .valuesCount(let key, let bounds):
        // Each value reached counts as null 0, an array its length, anything else 1; nothing reached counts 0.
        let values = reach(key, payload)
        let counts =
            values.isEmpty
            ? [0]
            : values.map { value -> Int in
                switch value {
                case .null: 0
                case .array(let elements): elements.count
                default: 1
                }
            }
        return counts.contains { count in
            bounds.allSatisfy { bound, limit in
                switch bound {
                case "gt": count > limit
                case "gte": count >= limit
                case "lt": count < limit
                default: count <= limit
                }
            }
        }
    case .nested(let key, let filter):
        return scalars(key, payload).contains { element in
            if case .object(let members) = element { return evaluate(filter, members, nil) }
            return false
        }
    case .filter(let filter): return evaluate(filter, payload, id)
    }
}

private func evaluate(_ filter: TestFilter, _ payload: JSONObject, _ id: UInt64?) -> Bool {
    filter.must.allSatisfy { evaluate($0, payload, id) }
        && (filter.should.isEmpty || filter.should.contains { evaluate($0, payload, id) })
        && !filter.mustNot.contains { evaluate($0, payload, id) }
        && (filter.minShould.map { conditions, count in
            conditions.filter { evaluate($0, payload, id) }.count >= count
        } ?? true)
}

// MARK: Random payloads and filters

private func randomScalar(_ random: inout SplitMix64) -> JSONValue {
    switch Int.random(in: 0..<4, using: &random) {
    case 0: .string(["x", "y", "z"].randomElement(using: &random)!)
    case 1: .integer(Int64.random(in: 0..<5, using: &random))
    case 2: .bool(Bool.random(using: &random))
    default: .double(Double(Int.random(in: 0..<10, using: &random)) + 0.5)
    }
}

private func randomPayload(_ random: inout SplitMix64) -> JSONObject {
    var payload: JSONObject = [:]
    for key in ["a", "b"] {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: break
        case 1: payload[key] = .null
        case 2: payload[key] = .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in randomScalar(&random) })
        case 3: payload[key] = .array([.null])
        default: payload[key] = randomScalar(&random)
        }
    }
    func child() -> JSONValue {
        ["d": randomScalar(&random), "e": .integer(Int64.random(in: 0..<5, using: &random))]
    }
    switch Int.random(in: 0..<4, using: &random) {
    case 0: break
    case 1: payload["c"] = child()
    default: payload["c"] = .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in child() })
    }
    return payload
}

private let keys = ["a", "b", "c.d", "c[].d", "c[].e", "c.e", "missing"]

private func randomMatchScalar(_ random: inout SplitMix64) -> JSONValue {
    switch Int.random(in: 0..<3, using: &random) {
    case 0: .string(["x", "y", "z"].randomElement(using: &random)!)
    case 1: .integer(Int64.random(in: 0..<5, using: &random))
    default: .bool(Bool.random(using: &random))
    }
}

private func randomList(_ random: inout SplitMix64) -> [JSONValue] {
    let count = Int.random(in: 0..<3, using: &random)
    if Bool.random(using: &random) {
        return (0..<count).map { _ in .string(["x", "y", "z"].randomElement(using: &random)!) }
    }
    return (0..<count).map { _ in .integer(Int64.random(in: 0..<5, using: &random)) }
}

private func randomCondition(_ random: inout SplitMix64, depth: Int, nested: Bool) -> TestCondition {
    let key = nested ? ["d", "e"].randomElement(using: &random)! : keys.randomElement(using: &random)!
    switch Int.random(in: 0..<(depth > 0 ? 11 : 9), using: &random) {
    case 0: return .matchValue(key, randomMatchScalar(&random))
    case 1: return .matchAny(key, randomList(&random))
    case 2: return .matchExcept(key, randomList(&random))
    case 3:
        var bounds: [String: Double] = [:]
        for bound in ["gt", "gte", "lt", "lte"] where Int.random(in: 0..<3, using: &random) == 0 {
            bounds[bound] = Double(Int.random(in: -1..<11, using: &random)) / 2
        }
        return .range(key, bounds)
    case 4: return nested ? .isNull(key) : .hasID((0..<3).map { _ in UInt64.random(in: 0..<400, using: &random) })
    case 5: return .isEmpty(key)
    case 6: return .isNull(key)
    case 7: return .matchValue(key, randomMatchScalar(&random))
    case 8:
        var bounds: [String: Int] = [:]
        for bound in ["gt", "gte", "lt", "lte"] where Int.random(in: 0..<3, using: &random) == 0 {
            bounds[bound] = Int.random(in: 0..<5, using: &random)
        }
        return .valuesCount(key, bounds)
    case 9 where !nested: return .nested("c", randomFilter(&random, depth: depth - 1, nested: true))
    default: return .filter(randomFilter(&random, depth: depth - 1, nested: nested))
    }
}

private func randomFilter(_ random: inout SplitMix64, depth: Int, nested: Bool = false) -> TestFilter {
    func conditions() -> [TestCondition] {
        (0..<Int.random(in: 0..<3, using: &random)).map { _ in randomCondition(&random, depth: depth, nested: nested) }
    }
    var filter = TestFilter(must: conditions(), should: conditions(), mustNot: conditions())
    if Int.random(in: 0..<4, using: &random) == 0 {
        let list = conditions()
        filter.minShould = (list, Int.random(in: 0...list.count, using: &random))
    }
    return filter
}

@Suite("Filters")
struct FilterTests {
    @Test("600 random filters over 400 random payloads agree with a brute-force evaluation")
    func bruteForce() throws {
        var random = SplitMix64.printed("filter bruteForce")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            var payloads: [UInt64: JSONObject] = [:]
            for id in UInt64(0)..<400 { payloads[id] = randomPayload(&random) }
            try store.upsert(payloads.map { Point(id: .integer($0), payload: $1, vectors: ["dense": .dense([1, 0])]) })
            // Some deleted points: they must never pass.
            let deleted = (0..<20).map { _ in UInt64.random(in: 0..<400, using: &random) }
            try store.delete(ids: deleted.map { .integer($0) })
            for id in deleted { payloads[id] = nil }
            let view = store.scoringView()
            var nonTrivial = 0
            for round in 0..<600 {
                let testFilter = randomFilter(&random, depth: 2)
                let text = json(testFilter)
                let filter = try Filter(json: text)
                let expected = payloads.keys.filter { evaluate(testFilter, payloads[$0]!, $0) }.sorted()
                if !expected.isEmpty && expected.count < payloads.count { nonTrivial += 1 }
                let allowed = view.allowedSlots(filter: filter).slots.map { view.pointIDs[$0] }.sorted()
                #expect(allowed == expected.map { .integer($0) }, "filter \(round): \(text)")
                #expect(store.count(filter: filter) == expected.count, "filter \(round): \(text)")
                // The Codable round trip keeps the meaning.
                let reencoded = try JSONDecoder().decode(Filter.self, from: JSONEncoder().encode(filter))
                #expect(reencoded == filter, "filter \(round): \(text)")
                if round % 20 == 0 {
                    let page = try store.scroll(filter: filter, limit: 1000, withPayload: false)
                    #expect(page.records.map(\.id) == expected.map { .integer($0) }, "scroll, filter \(round): \(text)")
                }
            }
            #expect(nonTrivial > 120, "many random filters should split the points")
            try store.close()
        }
    }

    @Test(
        "a bad values_count is refused naming the field",
        arguments: [
            (#"{"must": [{"key": "a", "values_count": {"gt": -1}}]}"#, "must[0].values_count.gt"),
            (#"{"must": [{"key": "a", "values_count": {"gt": 1.5}}]}"#, "must[0].values_count.gt"),
            (#"{"must": [{"key": "a", "values_count": {"above": 1}}]}"#, "must[0].values_count.above"),
            (#"{"must": [{"key": "a", "values_count": 3}]}"#, "must[0].values_count"),
            (#"{"must": [{"key": "a", "values_count": {"gt": 1}, "match": {"value": 1}}]}"#, "must[0]"),
        ]
    )
    func badValuesCount(text: String, field: String) {
        #expect {
            _ = try Filter(json: text)
        } throws: { error in
            (error as? TesseraError)?.location.field == field
        }
    }

    @Test("full-text matches split both sides into lowercased words (expected sets from Qdrant's client)")
    func fullText() throws {
        let values = ["The Quick brown fox, jumps!", "quick_brown", "Café au lait 42", "brown quick", "", "fox"]
        let cases: [(String, String, [Int])] = [
            ("text", "quick fox", [0]), ("text", "QUICK", [0, 1, 3]), ("text", "", []), ("text", "brown", [0, 1, 3]),
            ("text_any", "fox lait", [0, 2, 5]), ("text_any", "zzz", []), ("phrase", "quick brown", [0, 1]),
            ("phrase", "brown quick", [3]), ("phrase", "café au", [2]), ("text", "42", [2]), ("phrase", "", []),
        ]
        for (kind, query, expected) in cases {
            let filter = try Filter(
                json: #"{"must": {"key": "t", "match": {"\#(kind)": "\#(query)"}}}"#
            )
            let matched = values.indices.filter { filter.matches(payload: ["t": .string(values[$0])], id: .integer(0)) }
            #expect(matched == expected, "\(kind) \(query)")
        }
        // Arrays stand for their elements; other types never match.
        let filter = try Filter(json: #"{"must": {"key": "t", "match": {"text": "fox"}}}"#)
        #expect(filter.matches(payload: ["t": ["a cat", "red fox"]], id: .integer(0)))
        #expect(!filter.matches(payload: ["t": 5], id: .integer(0)))
        #expect(throws: TesseraError.self) { try Filter(json: #"{"must": {"key": "t", "match": {"text": 5}}}"#) }
    }

    @Test("Qdrant's documented examples")
    func documentedExamples() throws {
        let payload: JSONObject = [
            "diet": [["food": "leaves", "likes": false], ["food": "meat", "likes": true]],
            "country": [
                "name": "Japan", "cities": [["name": "Tokyo", "population": 9.3, "sightseeing": ["Tokyo Tower"]]],
            ],
            "colors": ["red", "blue"], "count": 10, "reports": [], "nothing": nil,
        ]
        let cases: [(String, Bool)] = [
            (#"{"must": [{"key": "country.cities[].population", "range": {"gte": 9.0}}]}"#, true),
            (#"{"must": [{"key": "country.cities[].sightseeing", "match": {"value": "Tokyo Tower"}}]}"#, true),
            (#"{"must": [{"key": "country.cities.population", "range": {"gte": 9.0}}]}"#, false),
            (#"{"must": [{"key": "colors", "match": {"value": "red"}}]}"#, true),
            (#"{"must": [{"key": "colors", "match": {"except": ["red", "blue"]}}]}"#, false),
            (#"{"must": [{"key": "colors", "match": {"except": ["red"]}}]}"#, true),
            (#"{"must": [{"key": "count", "match": {"any": [1, 10]}}]}"#, true),
            (#"{"must": [{"is_empty": {"key": "reports"}}, {"is_empty": {"key": "absent"}}]}"#, true),
            (#"{"must": [{"is_null": {"key": "nothing"}}]}"#, true),
            (#"{"must": [{"is_null": {"key": "reports"}}]}"#, false),
            (#"{"must": [{"key": "colors", "values_count": {"gt": 1}}]}"#, true),
            (#"{"must": [{"key": "colors", "values_count": {"gt": 2}}]}"#, false),
            (#"{"must": [{"key": "count", "values_count": {"gte": 1, "lte": 1}}]}"#, true),
            (#"{"must": [{"key": "reports", "values_count": {"lt": 1}}]}"#, true),
            (#"{"must": [{"key": "nothing", "values_count": {"lte": 0}}]}"#, true),
            (#"{"must": [{"key": "absent", "values_count": {"lte": 0}}]}"#, true),
            (#"{"must": [{"key": "absent", "values_count": {"gte": 1}}]}"#, false),
            (#"{"must": [{"key": "diet[].food", "values_count": {"gt": 1}}]}"#, false),
            (#"{"must": [{"key": "diet[].food", "values_count": {"lte": 1}}]}"#, true),
            (#"{"must": [{"key": "country.cities[].sightseeing", "values_count": {"gte": 1, "lt": 2}}]}"#, true),
            (
                #"{"must": [{"nested": {"key": "diet", "filter": {"must": [{"key": "food", "match": {"value": "meat"}},"#
                    + #"{"key": "likes", "match": {"value": false}}]}}}]}"#, false
            ),
            (
                #"{"must": [{"key": "diet[].food", "match": {"value": "meat"}},"#
                    + #"{"key": "diet[].likes", "match": {"value": false}}]}"#, true
            ),
            (#"{"must": [{"has_id": [1, 3]}], "must_not": [{"must": [{"key": "count", "range": {"lt": 5}}]}]}"#, true),
            (
                #"{"min_should": {"conditions": [{"has_id": [3]}, {"key": "count", "match": {"value": 10}}], "min_count": 2}}"#,
                true
            ),
        ]
        for (text, expected) in cases {
            #expect(try Filter(json: text).matches(payload: payload, id: .integer(3)) == expected, "\(text)")
        }
    }

    @Test(
        "filter evaluation and upsert throughput at scale (set TESSERA_PERF_POINTS, e.g. 100000)",
        .enabled(if: ProcessInfo.processInfo.environment["TESSERA_PERF_POINTS"] != nil)
    )
    func performance() throws {
        let pointCount = Int(ProcessInfo.processInfo.environment["TESSERA_PERF_POINTS"]!) ?? 100_000
        var random = SplitMix64.printed("filter performance")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [multivectorField(dimension: 8, .float16)])
            )
            let batchSize = 1000
            var upsertSeconds = 0.0
            for batchStart in stride(from: 0, to: pointCount, by: batchSize) {
                let points = (batchStart..<min(batchStart + batchSize, pointCount)).map { id in
                    Point(
                        id: .integer(UInt64(id)),
                        payload: randomPayload(&random),
                        vectors: ["tokens": .multivector(randomRows(tokenCount: 4, dimension: 8, using: &random))]
                    )
                }
                let start = ContinuousClock.now
                try store.upsert(points)
                upsertSeconds += (ContinuousClock.now - start).seconds
            }
            print(
                "upsert: \(pointCount) points (4 tokens × 8 float16 each, batches of \(batchSize)) in "
                    + "\(upsertSeconds) s = \(Int(Double(pointCount) / upsertSeconds)) points/s"
            )
            let view = store.scoringView()
            for text in [
                #"{"must": [{"key": "a", "match": {"value": "x"}}]}"#,
                #"{"must": [{"key": "b", "range": {"gte": 1, "lt": 4}}], "must_not": [{"is_empty": {"key": "c"}}]}"#,
                #"{"should": [{"key": "c[].d", "match": {"any": ["x", "y"]}}, {"has_id": [1, 2, 3]}]}"#,
            ] {
                let filter = try Filter(json: text)
                var best = Double.infinity
                var count = 0
                for _ in 0..<3 {
                    let start = ContinuousClock.now
                    count = view.allowedSlots(filter: filter).count
                    best = min(best, (ContinuousClock.now - start).seconds)
                }
                print(
                    "filter on \(pointCount) points: \(String(format: "%.1f", best * 1000)) ms, \(count) pass: \(text)"
                )
            }
            try store.close()
            let start = ContinuousClock.now
            let reopened = try CollectionStore.open(at: path)
            print("open (load view of \(reopened.count()) points): \((ContinuousClock.now - start).seconds) s")
            try reopened.close()
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
