import Foundation
import MaxSim
import Tessera
import TesseraPlatform
import Testing

@Suite("Collection store")
struct CollectionStoreTests {
    static let configuration = CollectionConfiguration(fields: [multivectorField(), denseField()])

    static func point(_ id: UInt64, tokenCount: Int = 2, tag: String = "a", using random: inout SplitMix64) -> Point {
        Point(
            id: .integer(id),
            payload: ["tag": .string(tag), "n": .integer(Int64(truncatingIfNeeded: id))],
            vectors: [
                "tokens": .multivector(randomRows(tokenCount: tokenCount, dimension: 4, using: &random)),
                "dense": .dense((0..<3).map { _ in Float.random(in: -1...1, using: &random) }),
            ]
        )
    }

    @Test(
        "every element type round-trips within its documented error",
        arguments: [ElementType.float32, .float16, .int8]
    )
    func elementTypeRoundTrip(type: ElementType) throws {
        var random = SplitMix64.printed("elementTypeRoundTrip \(type)")
        try withCollectionPath { path in
            let configuration = CollectionConfiguration(fields: [
                multivectorField(dimension: 9, type), denseField(dimension: 5, type),
            ])
            let store = try CollectionStore.create(at: path, configuration: configuration)
            var points: [Point] = []
            for id in 0..<20 {
                let scale = Float([1e-3, 1, 300][id % 3])
                let rows = randomRows(tokenCount: 1 + id % 4, dimension: 9, using: &random).map {
                    $0.map { $0 * scale }
                }
                let dense = (0..<5).map { _ in Float.random(in: -scale...scale, using: &random) }
                points.append(
                    Point(id: .integer(UInt64(id)), vectors: ["tokens": .multivector(rows), "dense": .dense(dense)])
                )
            }
            try store.upsert(points)
            // The scoring view and the database must agree, and both must be within the type's bound.
            for reopen in [false, true] {
                let current = reopen ? try CollectionStore.open(at: path, expecting: configuration) : store
                let view = current.scoringView()
                let records = try current.get(ids: points.map(\.id), withPayload: false, withVectors: true)
                #expect(records.count == points.count)
                for (point, record) in zip(points, records) {
                    for (name, dimension) in [("tokens", 9), ("dense", 5)] {
                        let original = point.vectors[name]!.flattened.values
                        let stored = storedValues(record, name)
                        let slot = try #require(view.slot(of: point.id))
                        #expect(view.column(named: name)!.floatValues(ofSlot: slot) == stored)
                        #expect(stored.count == original.count)
                        for row in 0..<original.count / dimension {
                            let rowValues = original[row * dimension..<(row + 1) * dimension]
                            let maxMagnitude = rowValues.map(abs).max()!
                            for index in rowValues.indices {
                                let bound: Float =
                                    type == .float32
                                    ? 0
                                    : type == .float16
                                        ? max(abs(original[index]) * 0x1p-11, 0x1p-25) : maxMagnitude / 254 * 1.0001
                                #expect(
                                    abs(stored[index] - original[index]) <= bound,
                                    "\(type) \(name) point \(point.id) value \(original[index]) read back \(stored[index])"
                                )
                            }
                        }
                    }
                }
                if reopen { try current.close() }
            }
            try store.close()
        }
    }

    @Test("upsert replaces a point and the view marks the old slot deleted")
    func upsertReplace() throws {
        var random = SplitMix64.printed("upsertReplace")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            try store.upsert((1...3).map { Self.point($0, using: &random) })
            let replacement = Self.point(2, tokenCount: 5, tag: "b", using: &random)
            try store.upsert([replacement])
            #expect(store.count() == 3)
            let record = try #require(try store.get(ids: [.integer(2)], withVectors: true).first)
            #expect(record.payload == replacement.payload)
            #expect(storedValues(record, "tokens") == replacement.vectors["tokens"]!.flattened.values)
            let view = store.scoringView()
            #expect(view.liveCount == 3)
            #expect(view.slot(of: .integer(2)) == 3 || view.layoutGeneration > 0)
            let column = try #require(view.column(named: "tokens"))
            #expect(column.slotCount == view.slotCount)
            #expect(column.parts.map(\.slotBase) == [0])
            #expect(column.tokenCount(ofSlot: view.slot(of: .integer(2))!) == 5)
            try store.close()
        }
    }

    @Test("delete by id and by filter, then the view compacts")
    func deletes() throws {
        var random = SplitMix64.printed("deletes")
        try withCollectionPath { path in
            let store = try CollectionStore.create(
                at: path,
                configuration: Self.configuration,
                compactionThreshold: 0.5
            )
            try store.upsert((0..<10).map { Self.point($0, tag: $0 % 2 == 0 ? "even" : "odd", using: &random) })
            #expect(try store.delete(ids: [.integer(3), .integer(99)]) == 1)
            #expect(store.count() == 9)
            #expect(store.scoringView().layoutGeneration == 0)
            let removed = try store.delete(
                filter: Filter(json: #"{"must": [{"key": "tag", "match": {"value": "even"}}]}"#)
            )
            #expect(removed == 5)
            #expect(store.count() == 4)
            let view = store.scoringView()
            #expect(view.layoutGeneration == 1, "6 of 10 equal-size slots deleted exceeds the 0.5 threshold")
            #expect(view.slotCount == 4)
            #expect(view.pointIDs == [1, 5, 7, 9].map { PointID.integer($0) })
            #expect(view.column(named: "tokens")!.parts.first?.documents.offsets == [0, 2, 4, 6, 8])
            #expect(try store.get(ids: [.integer(4)]).isEmpty)
            try store.checkIntegrity()
            try store.close()
        }
    }

    @Test("scroll pages in Qdrant's id order with an inclusive offset")
    func scrollPagination() throws {
        var random = SplitMix64.printed("scrollPagination")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            var points = [UInt64(0), 7, 2, 1 << 63, UInt64.max, 10, 300].map { Self.point($0, using: &random) }
            let uuids = (0..<5).map { _ in UUID() }
            for uuid in uuids {
                var point = Self.point(1, using: &random)
                point.id = .uuid(uuid)
                points.append(point)
            }
            try store.upsert(points)
            let expected = points.map(\.id).sorted()
            #expect(expected.prefix(7).allSatisfy { if case .integer = $0 { true } else { false } })
            for limit in [1, 3, 5, 12, 20] {
                var collected: [PointID] = []
                var offset: PointID? = nil
                repeat {
                    let page = try store.scroll(limit: limit, offset: offset, withPayload: false)
                    #expect(page.records.count <= limit)
                    collected += page.records.map(\.id)
                    offset = page.nextPageOffset
                    if let offset { #expect(page.records.count == limit && offset == expected[collected.count]) }
                } while offset != nil
                #expect(collected == expected, "limit \(limit)")
            }
            // An offset that is not a stored id starts at the next stored id.
            #expect(try store.scroll(limit: 2, offset: .integer(3)).records.map(\.id) == [.integer(7), .integer(10)])
            // With a filter, pages hold only passing points and next_page_offset is the next passing id.
            let filter = try Filter(json: #"{"must": [{"key": "n", "range": {"gte": 2, "lt": 301}}]}"#)
            let page = try store.scroll(filter: filter, limit: 2)
            #expect(page.records.map(\.id) == [.integer(2), .integer(7)])
            #expect(page.nextPageOffset == .integer(10))
            #expect(try store.scroll(filter: filter, limit: 2, offset: .integer(10)).nextPageOffset == nil)
            #expect(store.count(filter: filter) == 4)
            #expect(throws: TesseraError.self) { try store.scroll(limit: 0) }
            try store.close()
        }
    }

    @Test("get returns the requested points in request order, once each")
    func getOrder() throws {
        var random = SplitMix64.printed("getOrder")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            try store.upsert((0..<5).map { Self.point($0, using: &random) })
            let records = try store.get(ids: [4, 1, 42, 4, 0].map { PointID.integer($0) }, withPayload: false)
            #expect(records.map(\.id) == [4, 1, 0].map { PointID.integer($0) })
            #expect(records.allSatisfy { $0.payload == nil && $0.vectors == nil })
            try store.close()
        }
    }

    @Test("setPayload merges keys, overwritePayload replaces, a missing id is reported after the others changed")
    func payloadUpdates() throws {
        var random = SplitMix64.printed("payloadUpdates")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            try store.upsert((0..<3).map { Self.point($0, using: &random) })
            try store.setPayload(["tag": "z", "extra": [1, 2]], ids: [.integer(0), .integer(1)])
            #expect(try store.get(ids: [.integer(0)]).first?.payload == ["tag": "z", "n": 0, "extra": [1, 2]])
            try store.overwritePayload(["only": true], ids: [.integer(1)])
            #expect(try store.get(ids: [.integer(1)]).first?.payload == ["only": true])
            let error = #expect(throws: TesseraError.self) {
                try store.setPayload(["tag": "q"], ids: [.integer(77), .integer(2), .integer(78)])
            }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("77") == true)
            #expect(try store.get(ids: [.integer(2)]).first?.payload?["tag"] == "q")
            try store.setPayload(["tag": "z", "extra": .null], ids: [.integer(2)])
            #expect(try store.get(ids: [.integer(2)]).first?.payload == ["tag": "z", "n": 2])
            // The in-memory payloads follow, so filters see the change.
            #expect(store.count(filter: try Filter(json: #"{"must": {"key": "tag", "match": {"value": "z"}}}"#)) == 2)
            try store.close()
            let reopened = try CollectionStore.open(at: path)
            #expect(
                reopened.count(filter: try Filter(json: #"{"must": {"key": "only", "match": {"value": true}}}"#)) == 1
            )
            try reopened.close()
        }
    }

    @Test("a collection reopens with the same points, payloads and view after close")
    func reopen() throws {
        var random = SplitMix64.printed("reopen")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: Self.configuration)
            let points = (0..<50).map { Self.point($0, tokenCount: 1 + Int($0 % 3), using: &random) }
            try store.upsert(points)
            try store.delete(ids: [.integer(7)])
            try store.upsert([points[3]])
            #expect(try store.advanceIndexGeneration() == 1)
            let before = try store.scroll(limit: 100, withVectors: true)
            try store.close()
            #expect(throws: TesseraError.self) { try store.scroll() }

            let reopened = try CollectionStore.open(at: path, expecting: Self.configuration)
            #expect(try reopened.scroll(limit: 100, withVectors: true) == before)
            #expect(reopened.count() == 49)
            #expect(try reopened.indexGeneration() == 1)
            let view = reopened.scoringView()
            #expect(view.slotCount == 49, "the view is packed densely when loaded")
            try reopened.checkIntegrity()
            #expect(throws: TesseraError.self) {
                try CollectionStore.create(at: path, configuration: Self.configuration)
            }
            try reopened.close()
        }
    }

    @Test("opening with a different model, profile or dimension names the field and both values")
    func configurationMismatch() throws {
        let encoder = EncoderIdentity(modelName: "model-a", contentHash: "abc", profile: .plain)
        var field = multivectorField()
        field.encoder = encoder
        let stored = CollectionConfiguration(fields: [field])
        try withCollectionPath { path in
            try CollectionStore.create(at: path, configuration: stored).close()
            var cases: [(CollectionConfiguration, String, String)] = []
            var other = stored
            other.fields[0].encoder?.modelName = "model-b"
            cases.append((other, "fields[tokens].encoder.modelName", "'model-b'"))
            other = stored
            other.fields[0].encoder?.profile = .colbert
            cases.append((other, "fields[tokens].encoder.profile", "'colbert'"))
            other = stored
            other.fields[0].dimension = 128
            cases.append((other, "fields[tokens].dimension", "128"))
            other = stored
            other.fields[0].encoder?.contentHash = "def"
            cases.append((other, "fields[tokens].encoder.contentHash", "'def'"))
            for (expected, fieldPath, value) in cases {
                let error = #expect(throws: TesseraError.self) {
                    try CollectionStore.open(at: path, expecting: expected)
                }
                #expect(error?.code == .configurationMismatch)
                #expect(error?.location.field == fieldPath)
                #expect(error?.message.contains(value) == true, "\(error?.description ?? "")")
            }
            let missing = #expect(throws: TesseraError.self) { try CollectionStore.open(at: path + "-nowhere") }
            #expect(missing?.code == .notFound)
            try CollectionStore.open(at: path, expecting: stored).close()
        }
    }
}
