import Foundation
import Synchronization
import Tessera
import TesseraPlatform
import Testing

/// A float16 cosine multivector field (compressed index), a float32 dot dense field (HNSW) and an int8
/// multivector field.
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

/// Point `id`'s content at `version`, the same bits every time.
private func point(_ id: Int, version: Int = 0) -> Point {
    var random = SplitMix64(seed: UInt64(id * 7919 + version))
    let count = 1 + Int(random.next() % 5)
    return Point(
        id: .integer(UInt64(id)),
        payload: [
            "group": .integer(Int64(id % 4)), "version": .integer(Int64(version)), "text": .string("w\(id % 9)"),
        ],
        vectors: [
            "tokens": .multivector((0..<count).map { _ in random.signedUnits(8) }),
            "dense": .dense(random.signedUnits(5)),
            "bytes": .multivector((0..<(1 + count % 3)).map { _ in random.signedUnits(6) }),
        ]
    )
}

/// Every point of a store, with payload and vectors, in id order.
private func everything(_ store: CollectionStore) throws -> [Record] {
    try store.scroll(limit: 100_000, withPayload: true, withVectors: true).records
}

private func groupFilter(_ group: Int64) throws -> Filter {
    Filter(must: [.field(FieldCondition(key: try PayloadKey("group"), test: .match(.value(.integer(group)))))])
}

/// The source's records, read again while the optimiser moves a point between segments mid-read (which the
/// store reports rather than answer from a stale segment).
private func sourceRecords(_ store: CollectionStore, ids: [PointID]) throws -> [Record] {
    for _ in 0..<20 {
        do throws(TesseraError) {
            return try store.get(ids: ids, withPayload: true, withVectors: true)
        } catch {
            guard error.message.contains("read it again") else { throw error }
        }
    }
    return try store.get(ids: ids, withPayload: true, withVectors: true)
}

/// What the threads of the concurrent snapshot test share.
private final class Load: Sendable {
    /// Batches acknowledged so far: batch k holds ids k*batch ..< (k+1)*batch.
    let acknowledged = Atomic<Int>(1)
    let stop = Atomic<Bool>(false)
    let failures = Mutex<[String]>([])
}

private func thrownError(_ body: () throws -> Void) -> TesseraError? {
    do {
        try body()
        return nil
    } catch {
        return error as? TesseraError
    }
}

@Suite("Collection snapshots")
struct SnapshotTests {
    @Test(
        "snapshot then restore equals the collection point by point: sealed segments, tail, payload and derived indexes"
    )
    func roundTrip() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/source", configuration: configuration)
            defer { try? store.close() }
            try store.upsert((0..<60).map { point($0) })
            try store.optimize(force: true)
            try store.upsert((40..<90).map { point($0, version: 1) })
            try store.optimize(force: true, buildIndexes: false)
            try store.upsert((85..<110).map { point($0, version: 2) })
            _ = try store.delete(ids: [3, 44, 87].map { PointID.integer($0) })
            try store.setPayload(["edited": .bool(true)], ids: [.integer(5), .integer(95)])
            try store.createPayloadIndex(field: "group", type: .integer)
            #expect(store.segments().count == 2)

            let archive = root + "/one.snapshot"
            let summary = try store.writeSnapshot(to: archive)
            #expect(summary.sha256 == (try CollectionSnapshot.sha256(ofFile: archive)))
            #expect(summary.byteCount == (try FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int))
            let names = summary.manifest.files.map(\.name)
            #expect(names.first == "collection.sqlite")
            #expect(names.filter { $0.hasSuffix(".tseg") }.count == 2)
            #expect(names.contains { $0.hasPrefix("compressed-tokens-") })
            #expect(names.contains { $0.hasPrefix("dense-dense-") })
            #expect(summary.manifest.pointCount == store.count())
            // No temporary file is left beside the archive.
            #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["one.snapshot", "source"])

            let manifest = try CollectionSnapshot.restore(archive: archive, into: root + "/restored")
            #expect(manifest == summary.manifest)
            let restored = try CollectionStore.open(at: root + "/restored", expecting: configuration)
            defer { try? restored.close() }
            let expected = try everything(store)
            #expect(expected.count == 107)
            #expect(try everything(restored) == expected)
            #expect(restored.segments().map(\.liveCount) == store.segments().map(\.liveCount))
            #expect(try restored.payloadIndexes() == store.payloadIndexes())
            #expect(restored.count(filter: try groupFilter(2)) == store.count(filter: try groupFilter(2)))
            #expect(try restored.compressedIndexStatus(field: "tokens")?.error == nil)
            #expect(try restored.compressedIndexStatus(field: "tokens") != nil)
            #expect(try restored.denseIndexStatus(field: "dense") != nil)
            try restored.verifySegments()
            // The restored collection takes writes.
            try restored.upsert([point(500)])
            #expect(restored.count() == 108)
        }
    }

    @Test("a damaged, cut or foreign archive is refused naming the problem, and leaves no folder behind")
    func damagedArchives() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/source", configuration: configuration)
            defer { try? store.close() }
            try store.upsert((0..<30).map { point($0) })
            try store.optimize(force: true, buildIndexes: false)
            try store.upsert((30..<40).map { point($0) })
            let archive = root + "/good.snapshot"
            let summary = try store.writeSnapshot(to: archive)
            let good = try Syscalls.readWholeFile(archive)
            let segment = summary.manifest.files.first { $0.name.hasSuffix(".tseg") }!

            func refusal(_ bytes: [UInt8]) throws -> TesseraError? {
                let path = root + "/bad.snapshot"
                try AtomicFile.write(bytes, to: path)
                let error = thrownError { try CollectionSnapshot.restore(archive: path, into: root + "/target") }
                #expect(!FileManager.default.fileExists(atPath: root + "/target"))
                return error
            }

            // A byte of the database (the first entry's data starts after its 512-byte header).
            var flipped = good
            flipped[512 + 200] ^= 0x40
            let database = try refusal(flipped)
            #expect(database?.code == .corrupted)
            #expect(database?.message.contains("collection.sqlite") == true)
            #expect(database?.message.contains("damaged") == true)

            // A byte of a segment file, found through its header.
            let segmentHeader = try #require(
                (0..<(good.count / 512)).map { $0 * 512 }.first { offset in
                    good[offset..<(offset + segment.name.utf8.count)].elementsEqual(segment.name.utf8)
                }
            )
            flipped = good
            flipped[segmentHeader + 512 + segment.byteCount / 2] ^= 0x01
            let segmentError = try refusal(flipped)
            #expect(segmentError?.code == .corrupted)
            #expect(segmentError?.message.contains(segment.name) == true)

            // A header's byte.
            flipped = good
            flipped[10] ^= 0x20
            #expect(try refusal(flipped)?.message.contains("checksum") == true)

            // Cut short, at a block boundary and inside a file.
            for length in [good.count / 2 / 512 * 512, good.count / 2 + 3, 1024] {
                let cut = try refusal(Array(good[0..<length]))
                #expect(cut?.code == .corrupted)
                #expect(cut?.message.contains("cut short") == true, "\(length): \(String(describing: cut))")
            }

            // Not a tar archive at all.
            var random = SplitMix64(seed: 5)
            let noise = try refusal((0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            #expect(noise?.message.contains("not a tar archive") == true)

            // An entry whose name is a path.
            flipped = good
            for (index, byte) in "../collection.sqlite".utf8.enumerated() { flipped[index] = byte }
            var sum = 0
            for index in 0..<512 { sum += (148..<156).contains(index) ? 32 : Int(flipped[index]) }
            let field = Array(String(format: "%06o", sum).utf8) + [0, UInt8(ascii: " ")]
            for (index, byte) in field.enumerated() { flipped[148 + index] = byte }
            let traversal = try refusal(flipped)
            #expect(traversal?.message.contains("not a plain file name") == true, "\(String(describing: traversal))")

            // A missing archive.
            #expect(
                thrownError { try CollectionSnapshot.restore(archive: root + "/none", into: root + "/target") }?.code
                    == .notFound
            )
            // The good one still restores.
            try CollectionSnapshot.restore(archive: archive, into: root + "/target")
        }
    }

    @Test("a snapshot taken while other threads write and optimise holds exactly the writes acknowledged by one moment")
    func consistentUnderWrites() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/source", configuration: configuration)
            defer { try? store.close() }
            let batch = 20
            let settings = {
                var settings = OptimizerSettings()
                settings.defaultSegmentNumber = 2
                settings.indexingThreshold = 1
                return settings
            }()
            try store.upsert((0..<batch).map { point($0) })
            let load = Load()
            let writer = Thread {
                var next = 1
                while !load.stop.load(ordering: .acquiring) && next < 5000 {
                    do {
                        try store.upsert((next * batch..<(next + 1) * batch).map { point($0) })
                    } catch {
                        load.failures.withLock { $0.append("upsert: \(error)") }
                        return
                    }
                    load.acknowledged.store(next + 1, ordering: .releasing)
                    next += 1
                }
            }
            let optimizer = Thread {
                while !load.stop.load(ordering: .acquiring) {
                    do {
                        try store.optimize(settings: settings, force: true, buildIndexes: false)
                    } catch {
                        load.failures.withLock { $0.append("optimize: \(error)") }
                        return
                    }
                }
            }
            writer.start()
            optimizer.start()
            defer {
                load.stop.store(true, ordering: .releasing)
                while writer.isExecuting || optimizer.isExecuting { usleep(1000) }
            }
            while load.acknowledged.load(ordering: .acquiring) < 5 { usleep(1000) }
            var rounds: [(before: Int, held: Int, after: Int)] = []
            var restarts = 0
            for round in 0..<4 {
                let before = load.acknowledged.load(ordering: .acquiring)
                let archive = root + "/under-load-\(round).snapshot"
                let summary = try store.writeSnapshot(to: archive)
                let after = load.acknowledged.load(ordering: .acquiring)
                restarts += summary.retryCount
                let target = root + "/restored-\(round)"
                try CollectionSnapshot.restore(archive: archive, into: target)
                let restored = try CollectionStore.open(at: target, expecting: configuration)
                defer { try? restored.close() }
                let records = try everything(restored)
                // Whole batches in commit order: a prefix of the writes, each point as it was written.
                #expect(records.count % batch == 0)
                #expect(records.map(\.id) == (0..<records.count).map { PointID.integer(UInt64($0)) })
                #expect(records == (try sourceRecords(store, ids: records.map(\.id))))
                try restored.verifySegments()
                let held = records.count / batch
                // At least what was acknowledged before the snapshot began; at most what was acknowledged by the
                // time it returned, plus the one write in flight.
                #expect(before <= held && held <= after + 1, "\(before) <= \(held) <= \(after + 1)")
                rounds.append((before, held, after))
            }
            load.stop.store(true, ordering: .releasing)
            #expect(load.failures.withLock { $0 }.isEmpty, "\(load.failures.withLock { $0 })")
            // The snapshots were taken while the writer ran: it acknowledged more after each began.
            #expect(rounds.allSatisfy { $0.after < 5000 })
            #expect(rounds.last!.after > rounds.first!.before)
            print("snapshots under load: \(rounds), \(restarts) restarts because the optimiser replaced a file")
        }
    }

    @Test("the catalog names, lists, finds and deletes snapshots, and refuses paths and unknown names")
    func catalogSnapshots() throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root + "/data", ownsDirectory: true)
            let store = try catalog.create("docs", configuration: configuration)
            try store.upsert((0..<10).map { point($0) })
            let first = try catalog.createSnapshot(of: "docs")
            #expect(first.name.hasPrefix("docs-"))
            #expect(
                first.name.range(
                    of: #"^docs-[0-9]+-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.snapshot$"#,
                    options: .regularExpression
                ) != nil
            )
            #expect(
                first.checksum
                    == (try CollectionSnapshot.sha256(ofFile: catalog.snapshotFile(of: "docs", snapshot: first.name)))
            )
            let second = try catalog.createSnapshot(of: "docs")
            #expect(try catalog.snapshots(of: "docs").map(\.name) == [first.name, second.name].sorted())
            // The snapshots folder is never a collection.
            #expect(catalog.names() == ["docs"])
            for bad in ["../docs/collection.sqlite", "..", ".hidden.snapshot", "a/b.snapshot", "x.sqlite"] {
                #expect(
                    thrownError { _ = try catalog.snapshotFile(of: "docs", snapshot: bad) }?.code == .invalidArgument
                )
            }
            #expect(
                thrownError { _ = try catalog.snapshotFile(of: "docs", snapshot: "nope.snapshot") }?.code == .notFound
            )
            #expect(thrownError { _ = try catalog.snapshots(of: "missing") }?.code == .notFound)
            #expect(thrownError { _ = try catalog.createSnapshot(of: "missing") }?.code == .notFound)
            #expect(thrownError { _ = try catalog.localSnapshotPath("/etc/passwd") }?.code == .invalidArgument)
            let inside = try catalog.snapshotFile(of: "docs", snapshot: first.name)
            #expect(
                thrownError {
                    _ = try catalog.localSnapshotPath(
                        catalog.snapshotsDirectory(of: "docs") + "/../../docs/collection.sqlite"
                    )
                }?.code == .invalidArgument
            )
            #expect(try catalog.localSnapshotPath(inside) == (inside as NSString).resolvingSymlinksInPath)
            try catalog.deleteSnapshot(of: "docs", snapshot: first.name)
            #expect(try catalog.snapshots(of: "docs").map(\.name) == [second.name])
            #expect(thrownError { try catalog.deleteSnapshot(of: "docs", snapshot: first.name) }?.code == .notFound)
        }
    }

    @Test("recovery creates a collection or replaces an open one; a checksum mismatch or damage changes nothing")
    func recovery() throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root + "/data", ownsDirectory: true)
            let store = try catalog.create("docs", configuration: configuration)
            try store.upsert((0..<30).map { point($0) })
            try store.optimize(force: true, buildIndexes: false)
            try store.upsert((30..<40).map { point($0) })
            let snapshot = try catalog.createSnapshot(of: "docs")
            let archive = try catalog.snapshotFile(of: "docs", snapshot: snapshot.name)
            let asTaken = try everything(store)
            try store.upsert((40..<50).map { point($0) })

            // Into a new name.
            try catalog.recover("copy", fromSnapshot: archive, checksum: snapshot.checksum?.uppercased())
            #expect(try everything(catalog.open("copy")) == asTaken)

            // A checksum mismatch is refused before anything changes, naming both sums.
            let wrong = String(repeating: "0", count: 64)
            let mismatch = thrownError { try catalog.recover("docs", fromSnapshot: archive, checksum: wrong) }
            #expect(mismatch?.code == .invalidArgument)
            #expect(mismatch?.message.contains(wrong) == true && mismatch?.message.contains(snapshot.checksum!) == true)
            #expect(try catalog.open("docs").count() == 50)

            // A damaged archive: the open collection is untouched.
            var bytes = try Syscalls.readWholeFile(archive)
            bytes[600] ^= 0xff
            try AtomicFile.write(bytes, to: root + "/damaged")
            #expect(thrownError { try catalog.recover("docs", fromSnapshot: root + "/damaged") }?.code == .corrupted)
            #expect(try catalog.open("docs") === store)
            #expect(store.count() == 50)

            // Over the open collection: replaced, the old store refuses writes, the new one takes them.
            try catalog.recover("docs", fromSnapshot: archive)
            let replaced = try catalog.open("docs")
            #expect(replaced !== store)
            #expect(try everything(replaced) == asTaken)
            #expect(thrownError { try store.upsert([point(900)]) }?.code == .notFound)
            try replaced.upsert([point(901)])
            #expect(replaced.count() == 41)
            #expect(catalog.names() == ["copy", "docs"])
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/data").filter {
                $0.hasPrefix(".restoring-") || $0.hasPrefix(".replaced-")
            }
            #expect(leftovers.isEmpty)
        }
    }

    @Test("a crash between recovery's two renames is repaired at the next start: the old collection or the new one")
    func interruptedRecovery() throws {
        try withTemporaryDirectory { root in
            let data = root + "/data"
            do {
                let catalog = try CollectionCatalog(directory: data, ownsDirectory: true)
                try catalog.create("kept", configuration: configuration).upsert((0..<5).map { point($0) })
                try catalog.create("done", configuration: configuration).upsert((0..<7).map { point($0) })
                let snapshot = try catalog.createSnapshot(of: "kept")
                try catalog.recover("restored", fromSnapshot: catalog.snapshotFile(of: "kept", snapshot: snapshot.name))
                for name in ["kept", "done", "restored"] { try catalog.open(name).close() }
            }
            // The state after the first rename of a recovery over "kept" (the old one moved aside, the new one
            // not in place yet), and after both renames of one over "done" (the old one not removed yet).
            let fileManager = FileManager.default
            try fileManager.moveItem(atPath: data + "/kept", toPath: data + "/.replaced-\(UUID().uuidString)-kept")
            try fileManager.copyItem(atPath: data + "/done", toPath: data + "/.replaced-\(UUID().uuidString)-done")
            try fileManager.moveItem(atPath: data + "/restored", toPath: data + "/.restoring-\(UUID().uuidString)")
            let catalog = try CollectionCatalog(directory: data, ownsDirectory: true)
            #expect(catalog.names() == ["done", "kept"])
            #expect(try catalog.open("kept").count() == 5)
            #expect(try catalog.open("done").count() == 7)
            #expect(try fileManager.contentsOfDirectory(atPath: data).filter { $0.hasPrefix(".re") }.isEmpty)
        }
    }
}
