import Foundation
import MaxSim
import Tessera
import TesseraPlatform
import Testing

/// A collection with a float16 cosine multivector field, a float32 dot dense field and an int8 multivector field.
private let configuration = CollectionConfiguration(fields: [
    VectorField(
        name: "tokens",
        dimension: 8,
        kind: .multivector(comparator: .maxSim),
        elementType: .float16,
        multivectorDistance: .cosine
    ),
    denseField("dense", dimension: 5),
    multivectorField("bytes", dimension: 6, .int8),
])

private func point(_ id: Int, version: Int) -> Point {
    var random = SplitMix64(seed: UInt64(id * 7919 + version))
    let count = 1 + Int(random.next() % 6)
    return Point(
        id: id % 3 == 0
            ? .uuid(UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", id))!) : .integer(UInt64(id)),
        payload: [
            "group": .integer(Int64(id % 4)), "version": .integer(Int64(version)),
            "text": .string("word\(id % 9) common"),
        ],
        vectors: [
            "tokens": .multivector((0..<count).map { _ in random.signedUnits(8) }),
            "dense": .dense(random.signedUnits(5)),
            "bytes": .multivector((0..<(1 + count % 3)).map { _ in random.signedUnits(6) }),
        ]
    )
}

/// The same history applied to two stores; `seal` says when the first seals its tail (`optimize(force:)`).
private func history(_ store: CollectionStore, sealing: Bool, settings: OptimizerSettings) throws {
    for round in 0..<6 {
        try store.upsert((0..<40).map { point(round * 25 + $0, version: round) })
        try store.delete(ids: (0..<40).filter { ($0 + round) % 7 == 0 }.map { point(round * 25 + $0, version: 0).id })
        let edited = point(round * 25 + 3, version: 0).id
        if round % 2 == 0, try !store.get(ids: [edited]).isEmpty {
            try store.setPayload(["edited": .bool(true)], ids: [edited])
        }
        if sealing { try store.optimize(settings: settings, force: true, buildIndexes: false) }
    }
}

private func queries() throws -> [QueryRequest] {
    var random = SplitMix64(seed: 99)
    let multivector = try Multivector((0..<3).flatMap { _ in random.signedUnits(8) }, dimension: 8)
    let bytes = try Multivector((0..<2).flatMap { _ in random.signedUnits(6) }, dimension: 6)
    let dense = random.signedUnits(5)
    let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": 1}}]}"#)
    func request(_ node: QueryNode, scope: Filter? = nil) -> QueryRequest {
        QueryRequest(root: node, scope: scope, withPayload: true)
    }
    return [
        request(
            QueryNode(
                query: .multivector(multivector),
                using: "tokens",
                limit: 30,
                parameters: QueryParameters(exact: true)
            )
        ),
        request(
            QueryNode(
                query: .multivector(multivector),
                using: "tokens",
                limit: 10,
                parameters: QueryParameters(exact: true)
            ),
            scope: filter
        ),
        request(
            QueryNode(query: .multivector(bytes), using: "bytes", limit: 30, parameters: QueryParameters(exact: true))
        ),
        request(QueryNode(query: .dense(dense), using: "dense", limit: 30, parameters: QueryParameters(exact: true))),
        request(QueryNode(query: .text("word3 common"), using: "bm25", limit: 30)),
        request(
            QueryNode(
                query: .fusion(.rrf()),
                limit: 20,
                prefetch: [
                    QueryNode(query: .dense(dense), using: "dense", limit: 40),
                    QueryNode(query: .text("word5"), using: "bm25", limit: 40),
                ]
            )
        ),
    ]
}

private func answers(_ store: CollectionStore) throws -> [[(PointID, Float)]] {
    try queries().map { try store.query($0).points.map { ($0.id, $0.score) } }
}

private func expectSame(_ left: [[(PointID, Float)]], _ right: [[(PointID, Float)]], _ label: String) {
    #expect(left.count == right.count)
    for (index, (a, b)) in zip(left, right).enumerated() {
        #expect(a.map(\.0) == b.map(\.0), "\(label): query \(index) ids")
        #expect(a.map(\.1) == b.map(\.1), "\(label): query \(index) scores")
    }
}

@Suite("Sealed segments")
struct SegmentTests {
    @Test("many segments answer exactly as one tail: exact, int8, dense, BM25, fusion; after reopen and after merging")
    func multiSegmentEqualsSingle() throws {
        try withTemporaryDirectory { root in
            var settings = OptimizerSettings()
            settings.defaultSegmentNumber = 100
            settings.vacuumMinVectorNumber = 1_000_000
            let segmented = try CollectionStore.create(at: root + "/segmented", configuration: configuration)
            let plain = try CollectionStore.create(at: root + "/plain", configuration: configuration)
            try history(segmented, sealing: true, settings: settings)
            try history(plain, sealing: false, settings: settings)
            #expect(segmented.segments().count == 6)
            #expect(plain.segments().isEmpty)
            let expected = try answers(plain)
            #expect(expected.allSatisfy { !$0.isEmpty })
            expectSame(try answers(segmented), expected, "six segments")
            // Points read back from segments equal the tail's.
            let ids = plain.scoringView().liveSlots.slots.map { plain.scoringView().pointIDs[$0] }
            let fromSegments = try segmented.get(ids: ids, withVectors: true)
            let fromTail = try plain.get(ids: ids, withVectors: true)
            #expect(fromSegments.map(\.id) == fromTail.map(\.id))
            #expect(
                fromSegments.map { $0.vectors?["tokens"]?.flattened.values ?? [] }
                    == fromTail.map { $0.vectors?["tokens"]?.flattened.values ?? [] }
            )
            #expect(
                fromSegments.map { $0.vectors?["bytes"]?.flattened.values ?? [] }
                    == fromTail.map { $0.vectors?["bytes"]?.flattened.values ?? [] }
            )
            #expect(fromSegments.map(\.payload) == fromTail.map(\.payload))
            try segmented.checkIntegrity()

            try segmented.close()
            let reopened = try CollectionStore.open(at: root + "/segmented")
            #expect(reopened.segments().count == 6)
            expectSame(try answers(reopened), expected, "reopened")
            try reopened.verifySegments()

            // Merge everything into one segment without the deleted slots (a vacuum), then write on.
            settings.defaultSegmentNumber = 1
            settings.vacuumMinVectorNumber = 1
            let report = try reopened.optimize(settings: settings, buildIndexes: false)
            #expect(report.merges >= 5)
            #expect(report.vacuumedSlots > 0)
            #expect(reopened.segments().count == 1)
            #expect(reopened.segments()[0].liveCount == reopened.segments()[0].slotCount)
            expectSame(try answers(reopened), expected, "merged")
            try reopened.close()
            let again = try CollectionStore.open(at: root + "/segmented")
            expectSame(try answers(again), expected, "merged and reopened")
            try again.checkIntegrity()
            // The directory holds exactly the recorded segment file.
            let files = try FileManager.default.contentsOfDirectory(atPath: root + "/segmented").filter {
                $0.hasSuffix(".tseg")
            }
            #expect(files == again.segments().map(\.fileName))
        }
    }

    @Test("a torn or altered segment file is refused at open, or by verification for a vector byte; never read wrong")
    func damagedFiles() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/original", configuration: configuration)
            try store.upsert((0..<60).map { point($0, version: 1) })
            try store.optimize(force: true, buildIndexes: false)
            let segment = try #require(store.segments().first)
            try store.close()
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/original/" + segment.fileName)))
            var random = SplitMix64.printed("damaged segment files")
            var refusedAtOpen = 0
            var foundByVerify = 0
            for trial in 0..<24 {
                let copy = root + "/copy\(trial)"
                try FileManager.default.copyItem(atPath: root + "/original", toPath: copy)
                var bytes = original
                let truncate = trial % 4 == 0
                if truncate {
                    bytes.removeLast(1 + Int(random.next() % UInt64(bytes.count - 1)))
                } else {
                    let offset = Int(random.next() % UInt64(bytes.count))
                    bytes[offset] ^= UInt8(1 << (random.next() % 8))
                }
                try Data(bytes).write(to: URL(fileURLWithPath: copy + "/" + segment.fileName))
                do {
                    let opened = try CollectionStore.open(at: copy)
                    // Opening checks all but the vectors: the damage is in a vector byte, which verification finds.
                    #expect(!truncate)
                    #expect(throws: TesseraError.self) { try opened.verifySegments() }
                    foundByVerify += 1
                    try opened.close()
                } catch let error as TesseraError {
                    #expect(error.code == .corrupted, "\(error)")
                    #expect(error.location.path?.hasSuffix(segment.fileName) == true, "\(error)")
                    refusedAtOpen += 1
                }
            }
            #expect(refusedAtOpen >= 6)
            // Restored, the collection opens and verifies.
            let restored = try CollectionStore.open(at: root + "/original")
            try restored.verifySegments()
            #expect(restored.count() == 60)
            _ = foundByVerify
        }
    }

    @Test("sealing moves vectors out of the database; a missing or swapped segment file is refused, naming it")
    func vectorsLeaveTheDatabase() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/c", configuration: configuration)
            try store.upsert((0..<50).map { point($0, version: 1) })
            let before =
                try FileManager.default.attributesOfItem(atPath: root + "/c/collection.sqlite")[.size] as? Int ?? 0
            try store.optimize(force: true, buildIndexes: false)
            try store.upsert((50..<60).map { point($0, version: 1) })
            #expect(store.scoringView().tailSlotCount == 10)
            try store.checkIntegrity()
            try store.close()
            _ = before
            // The vectors table holds only the tail's points.
            let reopened = try CollectionStore.open(at: root + "/c")
            #expect(reopened.count() == 60)
            #expect(reopened.scoringView().sealedSlotCount == 50)
            let name = reopened.segments()[0].fileName
            try reopened.close()
            try FileManager.default.moveItem(atPath: root + "/c/\(name)", toPath: root + "/aside")
            #expect {
                try CollectionStore.open(at: root + "/c")
            } throws: { error in
                (error as? TesseraError)?.code == .corrupted && "\(error)".contains("missing")
            }
            // Another segment file under the recorded name: refused (its checksum is not the recorded one).
            let other = try CollectionStore.create(at: root + "/d", configuration: configuration)
            try other.upsert((0..<50).map { point($0, version: 2) })
            try other.optimize(force: true, buildIndexes: false)
            let otherName = other.segments()[0].fileName
            try other.close()
            try FileManager.default.copyItem(atPath: root + "/d/\(otherName)", toPath: root + "/c/\(name)")
            #expect(throws: TesseraError.self) { try CollectionStore.open(at: root + "/c") }
            try FileManager.default.removeItem(atPath: root + "/c/\(name)")
            try FileManager.default.moveItem(atPath: root + "/aside", toPath: root + "/c/\(name)")
            #expect(try CollectionStore.open(at: root + "/c").count() == 60)
        }
    }

    @Test("the optimiser's settings round-trip with Qdrant's names and are checked")
    func settings() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: configuration)
            #expect(try store.optimizerSettings() == OptimizerSettings())
            var settings = OptimizerSettings()
            settings.indexingThreshold = 7
            settings.defaultSegmentNumber = 2
            try store.setOptimizerSettings(settings)
            #expect(try store.optimizerSettings() == settings)
            settings.deletedThreshold = 1.5
            #expect {
                try store.setOptimizerSettings(settings)
            } throws: { error in
                (error as? TesseraError)?.location.field == "optimizers_config.deleted_threshold"
            }
            // Past the threshold (7 KB of vectors) the tail is sealed without force.
            try store.upsert((0..<120).map { point($0, version: 1) })
            #expect(store.needsOptimization(settings: try store.optimizerSettings()))
            let report = try store.optimize(buildIndexes: false)
            #expect(report.sealedSegments == 1)
            #expect(!store.needsOptimization(settings: try store.optimizerSettings()))
        }
    }
}
