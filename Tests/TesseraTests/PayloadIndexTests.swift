import Foundation
import TesseraPlatform
import Testing

@testable import Tessera

// MARK: Random payloads and filters over every index type

private let uuidA = "6f1c1c3e-8a52-4b5e-9d1e-0c2b7a1f3d44"
private let uuidB = "0a9e5d2b-1c3f-4e6a-8b7d-5f4e3c2b1a09"
private let strings = [
    "x", "y", "z", uuidA, uuidA.uppercased(), uuidB, "2024-05-01", "2024-05-01T10:00:00Z", "2023-01-01 12:00", "é",
    "e\u{301}",
]

private func randomScalar(_ random: inout SplitMix64) -> JSONValue {
    switch Int.random(in: 0..<12, using: &random) {
    case 0, 1, 2: .string(strings.randomElement(using: &random)!)
    case 3, 4: .integer(Int64.random(in: -1..<5, using: &random))
    case 5: .double(Double(Int.random(in: -2..<10, using: &random)) / 2)
    case 6: .unsigned(UInt64.max - UInt64.random(in: 0..<2, using: &random))
    case 7, 8: .bool(Bool.random(using: &random))
    case 9: .null
    case 10: .array([])
    default: .object(["k": .string("x")])
    }
}

private func randomValue(_ random: inout SplitMix64) -> JSONValue? {
    switch Int.random(in: 0..<8, using: &random) {
    case 0: nil
    case 1: .null
    case 2: .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in randomScalar(&random) })
    case 3: .array([.null])
    case 4: .array([.array([randomScalar(&random)])])
    default: randomScalar(&random)
    }
}

/// The indexed keys and their types; `free` has no index.
private let indexedKeys: [(String, PayloadIndexType)] = [
    ("k", .keyword), ("i", .integer), ("f", .float), ("b", .bool), ("u", .uuid), ("t", .datetime),
    ("o.k", .keyword), ("arr[].k", .keyword), ("arr[].i", .integer),
]
private let filterKeys = ["k", "i", "f", "b", "u", "t", "o.k", "arr[].k", "arr[].i", "free", "arr[].missing"]

private func randomPayload(_ random: inout SplitMix64) -> JSONObject {
    var payload: JSONObject = [:]
    for key in ["k", "i", "f", "b", "u", "t", "free"] {
        if let value = randomValue(&random) { payload[key] = value }
    }
    if Bool.random(using: &random) {
        payload["o"] = ["k": randomValue(&random) ?? .null]
    }
    switch Int.random(in: 0..<3, using: &random) {
    case 0: break
    case 1: payload["arr"] = .object(["k": randomValue(&random) ?? .null])
    default:
        payload["arr"] = .array(
            (0..<Int.random(in: 0..<3, using: &random)).map { _ in
                var element: JSONObject = [:]
                if let value = randomValue(&random) { element["k"] = value }
                if let value = randomValue(&random) { element["i"] = value }
                return .object(element)
            }
        )
    }
    return payload
}

private func randomMatchValue(_ random: inout SplitMix64) -> MatchValue {
    switch Int.random(in: 0..<3, using: &random) {
    case 0: .string(strings.randomElement(using: &random)!)
    case 1: .integer(Int64.random(in: -1..<5, using: &random))
    default: .bool(Bool.random(using: &random))
    }
}

private func randomCondition(_ random: inout SplitMix64, depth: Int, idCount: Int) throws -> Condition {
    let key = try PayloadKey(filterKeys.randomElement(using: &random)!)
    func values() -> Set<MatchValue> {
        Set((0..<Int.random(in: 0..<4, using: &random)).map { _ in randomMatchValue(&random) })
    }
    switch Int.random(in: 0..<(depth > 0 ? 12 : 11), using: &random) {
    case 0, 1: return .field(FieldCondition(key: key, test: .match(.value(randomMatchValue(&random)))))
    case 2: return .field(FieldCondition(key: key, test: .match(.any(values()))))
    case 3: return .field(FieldCondition(key: key, test: .match(.except(values()))))
    case 4, 5:
        func bound() -> Double? {
            Int.random(in: 0..<2, using: &random) == 0 ? Double(Int.random(in: -3..<12, using: &random)) / 2 : nil
        }
        let range = RangeCondition(gt: bound(), gte: bound(), lt: bound(), lte: bound())
        return .field(FieldCondition(key: key, test: .range(range)))
    case 6: return .isEmpty(key)
    case 7: return .isNull(key)
    case 8:
        return .hasID(Set((0..<3).map { _ in PointID.integer(UInt64.random(in: 0..<UInt64(idCount), using: &random)) }))
    case 9:
        let inner = Filter(must: [.field(FieldCondition(key: try PayloadKey("k"), test: .match(.value(.string("x")))))])
        return .nested(key: try PayloadKey("arr"), filter: inner)
    case 10:
        func bound() -> Int? {
            Int.random(in: 0..<2, using: &random) == 0 ? Int.random(in: 0..<4, using: &random) : nil
        }
        return .valuesCount(key: key, count: ValuesCountCondition(gt: bound(), gte: bound(), lt: bound(), lte: bound()))
    default: return .filter(try randomFilter(&random, depth: depth - 1, idCount: idCount))
    }
}

private func randomFilter(_ random: inout SplitMix64, depth: Int, idCount: Int) throws -> Filter {
    func conditions() throws -> [Condition] {
        try (0..<Int.random(in: 0..<3, using: &random)).map { _ in
            try randomCondition(&random, depth: depth, idCount: idCount)
        }
    }
    var filter = Filter(must: try conditions(), should: try conditions(), mustNot: try conditions())
    if Int.random(in: 0..<4, using: &random) == 0 {
        let list = try conditions()
        filter.minShould = MinShould(conditions: list, minCount: Int.random(in: 0...list.count + 1, using: &random))
    }
    return filter
}

private func point(_ id: UInt64, _ payload: JSONObject) -> Point {
    Point(id: .integer(id), payload: payload, vectors: ["dense": .dense([1, 0])])
}

/// Checks that every filter gives the brute-force answer through the store's indexes; returns the statistics.
private func checkFilters(
    _ store: CollectionStore,
    _ random: inout SplitMix64,
    count: Int,
    idCount: Int,
    label: String
) throws -> FilterEvaluationStatistics {
    let view = store.scoringView()
    var total = FilterEvaluationStatistics()
    for round in 0..<count {
        let filter = try randomFilter(&random, depth: 2, idCount: idCount)
        let expected = view.allowedSlots(filter: filter)
        let (slots, statistics) = store.allowedSlotsWithStatistics(filter: filter, in: view)
        #expect(slots == expected, "\(label), filter \(round): \(filter.jsonValue.jsonText)")
        total.indexLookups += statistics.indexLookups
        total.payloadChecks += statistics.payloadChecks
        total.fullScans += statistics.fullScans
    }
    return total
}

@Suite("Payload indexes")
struct PayloadIndexTests {
    @Test("random filters over random payloads equal the brute-force filter, through interleaved writes")
    func bruteForce() throws {
        var random = SplitMix64.printed("payload index bruteForce")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            let idCount = 300
            // Half the indexes declared before any point, half after.
            for (field, type) in indexedKeys.prefix(4) { try store.createPayloadIndex(field: field, type: type) }
            try store.upsert((0..<UInt64(idCount)).map { point($0, randomPayload(&random)) })
            for (field, type) in indexedKeys.dropFirst(4) { try store.createPayloadIndex(field: field, type: type) }
            var total = try checkFilters(store, &random, count: 200, idCount: idCount, label: "initial")
            for step in 0..<40 {
                let ids = (0..<Int.random(in: 1..<12, using: &random)).map { _ in
                    UInt64.random(in: 0..<UInt64(idCount), using: &random)
                }
                switch step % 5 {
                case 0: try store.upsert(ids.map { point($0, randomPayload(&random)) })
                case 1: try store.delete(ids: ids.map { .integer($0) })
                case 2:
                    let stored = ids.filter { store.scoringView().slot(of: .integer($0)) != nil }
                    try store.setPayload(randomPayload(&random), ids: stored.map { .integer($0) })
                case 3:
                    let stored = ids.filter { store.scoringView().slot(of: .integer($0)) != nil }
                    try store.overwritePayload(randomPayload(&random), ids: stored.map { .integer($0) })
                default:
                    let filter = Filter(
                        must: [.field(FieldCondition(key: try PayloadKey("k"), test: .match(.value(.string("y")))))],
                        should: [.hasID(Set(ids.map { .integer($0) }))]
                    )
                    let expected = store.scoringView().allowedSlots(filter: filter).count
                    #expect(try store.delete(filter: filter) == expected)
                }
                let statistics = try checkFilters(store, &random, count: 25, idCount: idCount, label: "step \(step)")
                total.indexLookups += statistics.indexLookups
                total.payloadChecks += statistics.payloadChecks
            }
            #expect(total.indexLookups > 1000, "the indexes answer many conditions")
            // Caught up incrementally: built once each (at declaration), rebuilt only when the tail was compacted
            // (slots renumbered; at most once per compaction), never by the writes themselves.
            let indexes = try #require(try store.caughtUpPayloadIndexes(for: store.scoringView()))
            #expect(indexes.count == indexedKeys.count)
            let compactions = Int(store.scoringView().layoutGeneration)
            for (field, index) in indexes { #expect(index.rebuildCount <= 1 + compactions, "\(field)") }
            // Point counts: the live points with a value of the index's type.
            let view = store.scoringView()
            for info in try store.payloadIndexes() {
                let key = try PayloadKey(info.field)
                let expected = view.liveSlots.slots.filter { slot in
                    key.containsValue(in: view.payload(ofSlot: slot)) { leaf in
                        let values: [JSONValue] = if case .array(let elements) = leaf { elements } else { [leaf] }
                        return values.contains { value in
                            switch (info.type, value) {
                            case (.keyword, .string), (.bool, .bool), (.integer, .integer): true
                            case (.float, .integer), (.float, .double), (.float, .unsigned): true
                            case (.uuid, .string(let text)): UUID(uuidString: text) != nil
                            case (.datetime, .string(let text)): text.hasPrefix("202")
                            default: false
                            }
                        }
                    }
                }.count
                #expect(info.pointCount == expected, "\(info.field)")
            }
            try store.close()
        }
    }

    @Test("many writes between filters: stale entries are dropped and the sorted runs merged, still exact")
    func manyWrites() throws {
        var random = SplitMix64.printed("payload index manyWrites")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)]),
                compactionThreshold: 1
            )
            for (field, type) in indexedKeys { try store.createPayloadIndex(field: field, type: type) }
            let idCount = 3000
            for round in 0..<6 {
                try store.upsert((0..<UInt64(idCount)).map { point($0, randomPayload(&random)) })
                _ = try checkFilters(store, &random, count: 20, idCount: idCount, label: "round \(round)")
            }
            let indexes = try #require(try store.caughtUpPayloadIndexes(for: store.scoringView()))
            for (field, index) in indexes { #expect(index.rebuildCount == 1, "\(field)") }
            try store.close()
        }
    }

    @Test("a compaction renumbers slots: the indexes rebuild and stay exact")
    func compaction() throws {
        var random = SplitMix64.printed("payload index compaction")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)]),
                compactionThreshold: 0.1
            )
            for (field, type) in indexedKeys { try store.createPayloadIndex(field: field, type: type) }
            try store.upsert((0..<200).map { point($0, randomPayload(&random)) })
            _ = try checkFilters(store, &random, count: 20, idCount: 200, label: "before")
            let generation = store.scoringView().layoutGeneration
            try store.delete(ids: (0..<100).map { .integer($0) })
            #expect(store.scoringView().layoutGeneration > generation)
            _ = try checkFilters(store, &random, count: 60, idCount: 200, label: "after")
            try store.close()
        }
    }

    @Test("declarations persist across reopening; deleting one drops it")
    func persistence() throws {
        var random = SplitMix64.printed("payload index persistence")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            try store.upsert((0..<100).map { point($0, randomPayload(&random)) })
            try store.createPayloadIndex(field: "k", type: .keyword)
            try store.createPayloadIndex(field: "i", type: .integer)
            try store.createPayloadIndex(field: "i", type: .float)
            let before = try store.payloadIndexes()
            #expect(before.map(\.field) == ["i", "k"])
            #expect(before.map(\.type) == [.float, .keyword])
            try store.close()

            let reopened = try CollectionStore.open(at: path)
            #expect(try reopened.payloadIndexes() == before)
            _ = try checkFilters(reopened, &random, count: 50, idCount: 100, label: "reopened")
            #expect(try reopened.deletePayloadIndex(field: "k"))
            #expect(try !reopened.deletePayloadIndex(field: "k"))
            #expect(try reopened.payloadIndexes().map(\.field) == ["i"])
            try reopened.close()

            let readOnly = try CollectionStore.open(at: path, access: .readOnly)
            #expect(try readOnly.payloadIndexes().map(\.field) == ["i"])
            #expect(throws: TesseraError.self) { try readOnly.createPayloadIndex(field: "k", type: .keyword) }
            try readOnly.close()
        }
    }

    @Test("a selective keyword condition is answered from the index alone; without an index, one full scan")
    func plan() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            try store.upsert(
                (0..<1000).map { point($0, ["group": .string("g\($0 % 100)"), "n": .integer(Int64($0))]) }
            )
            let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": "g7"}}]}"#)
            let unindexed = store.allowedSlotsWithStatistics(filter: filter, in: store.scoringView())
            #expect(unindexed.statistics.fullScans == 1)
            #expect(unindexed.statistics.payloadChecks == 1000)
            try store.createPayloadIndex(field: "group", type: .keyword)
            let indexed = store.allowedSlotsWithStatistics(filter: filter, in: store.scoringView())
            #expect(indexed.slots == unindexed.slots)
            #expect(indexed.slots.count == 10)
            #expect(indexed.statistics.indexLookups == 1)
            #expect(indexed.statistics.payloadChecks == 0)
            #expect(indexed.statistics.fullScans == 0)
            // The unindexed condition is checked only on the 10 survivors.
            let both = try Filter(
                json: #"{"must": [{"key": "group", "match": {"value": "g7"}}, {"key": "n", "range": {"lt": 500}}]}"#
            )
            let filtered = store.allowedSlotsWithStatistics(filter: both, in: store.scoringView())
            #expect(filtered.slots.count == 5)
            #expect(filtered.statistics.payloadChecks == 10)
            try store.close()
        }
    }

    @Test(
        "field_schema: a name or an object; geo, other tokenizations, unknown types and parameters are refused naming the field",
        arguments: [
            (#""keyword""#, PayloadIndexType.keyword as PayloadIndexType?),
            (#"{"type": "integer", "lookup": true, "range": false}"#, .integer),
            (#"{"type": "uuid", "is_tenant": true, "on_disk": false}"#, .uuid),
            (#"{"type": "datetime"}"#, .datetime),
            (#""text""#, .text), (#"{"type": "text", "tokenizer": "word", "scoring": {"type": "bm25"}}"#, .scoredText),
            (#"{"type": "text", "scoring": true, "lowercase": true}"#, .scoredText),
            (#"{"type": "text", "tokenizer": "prefix"}"#, nil), (#"{"type": "text", "min_token_len": 2}"#, nil),
            (#"{"type": "text", "scoring": {"type": "tfidf"}}"#, nil), (#""text_bm25""#, nil), (#""geo""#, nil),
            (#""keywords""#, nil), (#"{"type": "keyword", "lookup": true}"#, nil),
            (#"{"type": "bool", "on_disk": 1}"#, nil), (#"{"name": "keyword"}"#, nil), ("3", nil),
        ]
    )
    func fieldSchema(json: String, expected: PayloadIndexType?) throws {
        let value = try JSONValue.parse(json)
        if let expected {
            #expect(try PayloadIndexType(fieldSchema: value, field: "city") == expected)
        } else {
            let error = #expect(throws: TesseraError.self) { try PayloadIndexType(fieldSchema: value, field: "city") }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("'city'") == true, "\(error?.message ?? "")")
        }
    }

    @Test("a text index with scoring ranks by BM25 over the live points with words, through writes")
    func textIndexBM25() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            try store.upsert([
                point(1, ["body": "Red fox, red"]), point(2, ["body": ["a fox", "jumps"]]), point(3, ["body": "dog"]),
                point(4, ["body": 7]), point(5, [:]),
            ])
            let everything = { store.scoringView().liveSlots }
            #expect(throws: TesseraError.self) {
                try store.textIndexHits(
                    "fox",
                    key: "body",
                    parameters: .init(),
                    view: store.scoringView(),
                    allowed: everything(),
                    limit: 10
                )
            }
            try store.createPayloadIndex(field: "body", type: .scoredText)
            // Qdrant's formula by hand: N = 3 points with words, lengths 3, 3, 1 (average 7/3).
            func expected(tf: Double, length: Double, df: Double, k1: Double = 1.2, b: Double = 0.75) -> Float {
                let idf = log((3 - df + 0.5) / (df + 0.5) + 1)
                return Float(idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / (7.0 / 3))))
            }
            func hits(
                _ text: String,
                _ parameters: BM25Parameters = .init(),
                allowed: SlotBitmap? = nil
            ) throws
                -> [UInt64: Float]
            {
                let view = store.scoringView()
                let found = try store.textIndexHits(
                    text,
                    key: "body",
                    parameters: parameters,
                    view: view,
                    allowed: allowed ?? view.liveSlots,
                    limit: 10
                )
                var result: [UInt64: Float] = [:]
                for hit in found { if case .integer(let id) = view.pointIDs[hit.slot] { result[id] = hit.score } }
                return result
            }
            let fox = try hits("FOX fox")
            #expect(fox.keys.sorted() == [1, 2])
            #expect(abs(fox[1]! - expected(tf: 1, length: 3, df: 2)) < 1e-6)
            #expect(abs(try hits("red")[1]! - expected(tf: 2, length: 3, df: 1)) < 1e-6)
            let tuned = try hits("red", BM25Parameters(k1: 0.5, b: 0))[1]!
            #expect(abs(tuned - expected(tf: 2, length: 3, df: 1, k1: 0.5, b: 0)) < 1e-6)
            // A filter restricts the results, not the statistics.
            var onlyTwo = SlotBitmap(slotCount: store.scoringView().slotCount)
            onlyTwo.insert(store.scoringView().slot(of: .integer(2))!)
            #expect(try hits("fox", allowed: onlyTwo) == [2: fox[2]!])
            #expect(try hits("cat").isEmpty)
            #expect(throws: TesseraError.self) { try hits("red", BM25Parameters(k1: 1, b: 2)) }
            // Writes: a deleted point leaves the corpus, an edited one is read again.
            try store.delete(ids: [.integer(3)])
            try store.setPayload(["body": "fox"], ids: [.integer(4)])
            let after = try hits("fox")
            #expect(after.keys.sorted() == [1, 2, 4])
            // N = 3 again (1, 2, 4), df 3, average length 7/3.
            #expect(abs(after[4]! - expected(tf: 1, length: 1, df: 3)) < 1e-6)
            // Filters on a text-indexed key answer as without the index.
            let filter = Filter(must: [.field(FieldCondition(key: try PayloadKey("body"), test: .match(.text("fox"))))])
            #expect(store.allowedSlots(filter: filter, in: store.scoringView()).count == 3)
            try store.close()
        }
    }

    @Test("a bad key is refused naming it")
    func badKey() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            let error = #expect(throws: TesseraError.self) {
                try store.createPayloadIndex(field: "a..b", type: .keyword)
            }
            #expect(error?.message.contains("'a..b'") == true)
            #expect(try store.payloadIndexes().isEmpty)
            try store.close()
        }
    }

    @Test(
        "a keyword filter keeping 1% of many points (set TESSERA_PERF_PAYLOAD_INDEX_POINTS, e.g. 1000000)",
        .enabled(if: ProcessInfo.processInfo.environment["TESSERA_PERF_PAYLOAD_INDEX_POINTS"] != nil)
    )
    func performance() throws {
        let pointCount = Int(ProcessInfo.processInfo.environment["TESSERA_PERF_PAYLOAD_INDEX_POINTS"]!) ?? 1_000_000
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: CollectionConfiguration(fields: [denseField(dimension: 2)])
            )
            for start in stride(from: 0, to: pointCount, by: 10_000) {
                try store.upsert(
                    (start..<min(start + 10_000, pointCount)).map { id in
                        point(UInt64(id), ["group": .string("g\(id % 100)"), "n": .integer(Int64(id))])
                    }
                )
            }
            var start = ContinuousClock.now
            try store.createPayloadIndex(field: "group", type: .keyword)
            try store.createPayloadIndex(field: "n", type: .integer)
            print("build: keyword and integer indexes of \(pointCount) points in \(ContinuousClock.now - start)")
            let view = store.scoringView()
            for text in [
                #"{"must": [{"key": "group", "match": {"value": "g7"}}]}"#,
                #"{"must": [{"key": "n", "range": {"gte": 1000, "lt": \#(1000 + pointCount / 100)}}]}"#,
                #"{"must": [{"key": "group", "match": {"value": "g7"}}], "must_not": [{"key": "n", "range": {"lt": 10}}]}"#,
            ] {
                let filter = try Filter(json: text)
                var best = Duration.seconds(1000)
                var count = 0
                for _ in 0..<20 {
                    start = ContinuousClock.now
                    count = store.allowedSlots(filter: filter, in: view).count
                    best = min(best, ContinuousClock.now - start)
                }
                start = ContinuousClock.now
                let bruteForce = view.allowedSlots(filter: filter)
                let scan = ContinuousClock.now - start
                #expect(bruteForce.count == count)
                print("indexed filter on \(pointCount) points: \(best) (full scan \(scan)), \(count) pass: \(text)")
                #if !DEBUG
                if text.contains("g7"), !text.contains("must_not") { #expect(best <= .milliseconds(1)) }
                #endif
            }
            // A write of 1,000 points, then the first filter: the catch-up costs O(1,000).
            try store.upsert((0..<1000).map { point(UInt64($0), ["group": "g7", "n": .integer(Int64($0))]) })
            let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": "g7"}}]}"#)
            let after = store.scoringView()
            start = ContinuousClock.now
            let count = store.allowedSlots(filter: filter, in: after).count
            print("first filter after a write of 1000 points (catch-up included): \(ContinuousClock.now - start)")
            #expect(count == after.allowedSlots(filter: filter).count)
            try store.close()
        }
    }
}
