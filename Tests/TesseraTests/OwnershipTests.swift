import Foundation
import GRDB
import MaxSim
import Synchronization
import TesseraQdrant
import Testing

@testable import Tessera

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let probeConfiguration = CollectionConfiguration(fields: [
    VectorField(name: "tokens", dimension: 8, kind: .multivector(comparator: .maxSim), elementType: .float32),
    VectorField(name: "summary", dimension: 4, kind: .dense(distance: .cosine), elementType: .float16),
])

private func smallConfiguration() -> CollectionConfiguration {
    CollectionConfiguration(fields: [multivectorField(dimension: 2), denseField(dimension: 2, distance: .cosine)])
}

private func smallPoint(_ id: UInt64, payload: JSONObject = [:]) -> Point {
    let x = Float(id % 7) + 1
    return Point(
        id: .integer(id),
        payload: payload,
        vectors: ["tokens": .multivector([[x, 1], [1, -x]]), "dense": .dense([x, 1])]
    )
}

@Suite("One owner per collection, closing, damaged files")
struct OwnershipTests {
    @Test("a collection another process writes to: a second writer is refused naming its pid, a reader opens beside it")
    func anotherProcessOwnsTheCollection() throws {
        let probe = try #require(
            packageExecutable(named: "tessera-crash-probe", environment: "TESSERA_CRASH_PROBE"),
            "tessera-crash-probe not found next to the test bundle; build all products first (swift build --build-tests)"
        )
        try withCollectionPath { path in
            try CollectionStore.create(at: path, configuration: probeConfiguration).close()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: probe)
            process.arguments = [path, "0", "7"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            defer {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            // The first acknowledgement: the probe owns the collection and is writing.
            _ = output.fileHandleForReading.availableData
            let refused = #expect(throws: TesseraError.self) { try CollectionStore.open(at: path) }
            #expect(refused?.code == .locked)
            #expect(refused?.message.contains("in use by another process (pid \(process.processIdentifier))") == true)
            // A reader sees a consistent snapshot while the owner writes, and may not write.
            // (Its view is the snapshot of the moment it opened; the owner goes on writing after it.)
            let reader = try CollectionStore.open(at: path, access: .readOnly)
            #expect(reader.count() > 0)
            #expect(try reader.get(ids: [.integer(0)], withPayload: true).first?.payload?["n"] == .integer(0))
            let write = #expect(throws: TesseraError.self) { try reader.delete(ids: [.integer(0)]) }
            #expect(write?.code == .locked)
            try reader.close()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // The owner died: the operating system released its lock.
            let store = try CollectionStore.open(at: path)
            #expect(store.count() > 0)
            try store.close()
        }
    }

    @Test("close waits for the write in flight, then refuses every write; acknowledged writes are all there")
    func closeDrainsWrites() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: smallConfiguration())
            let state = DrainState()
            let writers = DispatchGroup()
            for writer in 0..<2 {
                // Threads, not tasks: upserts block.
                DispatchQueue.global().async(group: writers) {
                    for index in 0..<100_000 {
                        let id = UInt64(writer * 1_000_000 + index)
                        do {
                            try store.upsert([smallPoint(id)])
                            let afterClose = state.closed.load(ordering: .acquiring)
                            #expect(!afterClose, "a write was acknowledged after close returned")
                            state.acknowledged.withLock { $0.append(id) }
                        } catch {
                            #expect((error as? TesseraError)?.code == .notFound, "\(error)")
                            state.refused.withLock { $0 += 1 }
                            return
                        }
                    }
                }
            }
            while state.acknowledged.withLock({ $0.count }) < 20 { Thread.sleep(forTimeInterval: 0.01) }
            try store.close()
            state.closed.store(true, ordering: .releasing)
            writers.wait()
            #expect(state.refused.withLock { $0 } == 2)
            let ids = state.acknowledged.withLock { $0 }
            let reopened = try CollectionStore.open(at: path)
            #expect(try reopened.get(ids: ids.map(PointID.integer), withPayload: false).count == ids.count)
            try reopened.close()
        }
    }

    @Test("temporary files of killed index builds are removed when the owner opens the collection")
    func orphanedTemporaryFiles() throws {
        try withCollectionPath { path in
            try CollectionStore.create(at: path, configuration: smallConfiguration()).close()
            let orphans = ["compressed-tokens-1.tidx.tmp-17495", "dense-pooled-1.hnsw.tmp-4242"]
            for name in orphans {
                #expect(FileManager.default.createFile(atPath: path + "/" + name, contents: Data([1, 2, 3])))
            }
            // A reader leaves them: the owner might be writing them right now.
            try CollectionStore.open(at: path, access: .readOnly).close()
            #expect(orphans.allSatisfy { FileManager.default.fileExists(atPath: path + "/" + $0) })
            try CollectionStore.open(at: path).close()
            #expect(orphans.allSatisfy { !FileManager.default.fileExists(atPath: path + "/" + $0) })
            #expect(FileManager.default.fileExists(atPath: path + "/collection.sqlite"))
        }
    }

    @Test("a flipped byte in a stored cosine vector is found at open, naming the point")
    func damagedCosineVector() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: smallConfiguration())
            try store.upsert((1...5).map { smallPoint($0) })
            try store.pool.write { db in
                let key = PointID.integer(3).sortKey
                let rowID = try Int64.fetchOne(db, sql: "SELECT row_id FROM points WHERE id_key = ?", arguments: [key])!
                var data = try Data.fetchOne(
                    db,
                    sql: "SELECT data FROM vectors WHERE row_id = ? AND field = 'dense'",
                    arguments: [rowID]
                )!
                data[3] ^= 0x40  // The exponent byte of the first float32 component.
                try db.execute(
                    sql: "UPDATE vectors SET data = ? WHERE row_id = ? AND field = 'dense'",
                    arguments: [data, rowID]
                )
            }
            try store.close()
            let error = #expect(throws: TesseraError.self) { try CollectionStore.open(at: path) }
            #expect(error?.code == .corrupted)
            #expect(error?.message.contains("point 3 in cosine field 'dense'") == true)
        }
    }

    @Test("a damaged database header is a corruption error that keeps SQLite's cause")
    func damagedHeader() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: smallConfiguration())
            try store.upsert([smallPoint(1)])
            try store.close()
            try damageDatabaseHeader(collection: path)
            let error = #expect(throws: TesseraError.self) { try CollectionStore.open(at: path) }
            #expect(error?.code == .corrupted)
            #expect(error?.message.contains("file is not a database") == true)
        }
    }

    @Test("limits, offsets and candidate counts far beyond the collection are capped, not allocated")
    func hugeLimits() throws {
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: smallConfiguration())
            try store.upsert((1...5).map { smallPoint($0) })
            let query = try Multivector([1, 0], dimension: 2)
            for (limit, offset, expected) in [
                (1_000_000_000_000, 0, 5), (10, 1_000_000_000_000_000, 0), (Int.max, 1, 4),
            ] {
                let request = QueryRequest(root: QueryNode(query: .multivector(query), limit: limit), offset: offset)
                #expect(try store.query(request).points.count == expected)
            }
            let json = """
                {"prefetch": [{"query": [1, 0], "using": "dense", "limit": 1000000000000,
                               "params": {"hnsw_ef": 9223372036854775807}},
                              {"query": [[1, 0]], "using": "tokens", "limit": 18446744073709551615,
                               "params": {"candidates": 1000000000000, "nprobe": 1000000000}}],
                 "query": {"fusion": "rrf"}, "limit": 9223372036854775807, "offset": 2}
                """
            #expect(try store.query(QueryRequest(json: json)).points.count == 3)
            let page = try store.scroll(limit: Int.max)
            #expect(page.records.count == 5)
            #expect(page.nextPageOffset == nil)
            let negative = #expect(throws: TesseraError.self) {
                try store.query(QueryRequest(json: #"{"query": [1, 0], "using": "dense", "params": {"hnsw_ef": 0}}"#))
            }
            #expect(negative?.location.field == "params.hnsw_ef")
            try store.close()
        }
    }

    @Test("payload keys and keyword matches compare bytes: é precomposed and decomposed stay apart")
    func byteWisePayloadKeys() throws {
        let composed = "\u{E9}"
        let decomposed = "e\u{301}"
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: smallConfiguration())
            let payload = try JSONValue.parse(#"{"\#(composed)": "\#(composed)", "\#(decomposed)": "\#(decomposed)"}"#)
            guard case .object(let object) = payload else { return }
            try store.upsert([smallPoint(1, payload: object), smallPoint(2, payload: [composed: .string(decomposed)])])
            try store.close()
            let reopened = try CollectionStore.open(at: path)
            let stored = try #require(try reopened.get(ids: [.integer(1)], withPayload: true).first?.payload)
            #expect(stored.count == 2)
            #expect(stored[composed] == .string(composed))
            #expect(stored[decomposed] == .string(decomposed))
            let byComposedValue = try Filter(
                json: #"{"must": [{"key": "\#(composed)", "match": {"value": "\#(composed)"}}]}"#
            )
            #expect(reopened.count(filter: byComposedValue) == 1)
            let byDecomposedKey = try Filter(
                json: #"{"must": [{"key": "\#(decomposed)", "match": {"any": ["\#(composed)", "\#(decomposed)"]}}]}"#
            )
            #expect(reopened.count(filter: byDecomposedKey) == 1)
            var request = QueryRequest(root: QueryNode(query: .dense([1, 0]), using: "dense"))
            request.payloadSelector = try PayloadSelector(include: [decomposed])
            let keys = try reopened.query(request).points.compactMap(\.payload).map { $0.keys }
            #expect(keys.contains([decomposed]))
            #expect(!keys.flatMap { $0 }.contains { $0.utf8.elementsEqual(composed.utf8) })
            try reopened.close()
        }
    }
}

/// What the writers of ``OwnershipTests/closeDrainsWrites()`` saw.
private final class DrainState: Sendable {
    let acknowledged = Mutex<[UInt64]>([])
    let refused = Mutex(0)
    let closed = Atomic<Bool>(false)
}

/// Overwrites the first 16 bytes of a collection's database (SQLite's header string).
func damageDatabaseHeader(collection path: String) throws {
    let file = try FileHandle(forUpdating: URL(fileURLWithPath: path + "/collection.sqlite"))
    try file.write(contentsOf: Data(repeating: 0x5A, count: 16))
    try file.close()
}
