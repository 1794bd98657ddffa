import Foundation
import Synchronization
import TesseraPlatform
import TesseraTestSupport
import Testing

@testable import Tessera

@Suite("Persisted BM25 index")
struct TextIndexFileTests {
    static let fields = QueryParameters.defaultTextFields
    static let analyzer = TextAnalyzer()
    static let key = TextIndexState.key(fields: fields, analyzer: analyzer)
    static let queries = ["lava bread", "yeast rise rise", "stone", "salt water oven magma", "crust river"]
    static let words = [
        "lava", "bread", "yeast", "magma", "oven", "crust", "river", "stone", "salt", "water", "rise", "Café",
        "naïve", "connections",
    ]

    static func text(_ random: inout SeededRandom) -> String {
        (0..<random.int(in: 0...12)).map { _ in words[random.int(in: 0...(words.count - 1))] }.joined(separator: " ")
    }

    static func point(_ id: UInt64, _ random: inout SeededRandom) -> Point {
        Point(
            id: .integer(id),
            payload: ["title": .string(text(&random)), "text": .string(text(&random))],
            vectors: ["v": .dense([1, 0])]
        )
    }

    static func createStore(at path: String) throws -> CollectionStore {
        let field = VectorField(name: "v", dimension: 2, kind: .dense(distance: .dot), elementType: .float32)
        return try CollectionStore.create(
            at: path,
            configuration: CollectionConfiguration(fields: [field]),
            compactionThreshold: 2
        )
    }

    /// The store's BM25 hits equal, slot for slot and bit for bit, those of an index built now from its payloads.
    static func expectFreshScores(_ store: CollectionStore, _ comment: String) {
        let view = store.scoringView()
        var fresh = TextIndexState(fields: fields, analyzer: analyzer)
        fresh.catchUp(with: view)
        for query in queries {
            let request = TextIndexState.Query(terms: analyzer.terms(query), parameters: BM25Parameters())
            let expected = fresh.candidates(for: request, view: view, allowed: nil, limit: 1000)
            let got = store.textHits(
                query,
                fields: fields,
                analyzer: analyzer,
                parameters: BM25Parameters(),
                view: view,
                allowed: nil,
                limit: 1000
            )
            #expect(!expected.isEmpty, "\(comment), query \(query)")
            #expect(got.map(\.slot) == expected.map(\.slot), "\(comment), query \(query)")
            #expect(got.map(\.score) == expected.map(\.score), "\(comment), query \(query)")
        }
    }

    /// How often the store's state was built from every payload.
    static func rebuildCount(_ store: CollectionStore) -> Int? {
        store.textIndexes.states.withLock { $0[key]?.rebuildCount }
    }

    static func textIndexFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tbm25") }.sorted()
    }

    @Test("a file encodes and decodes to the same index, and an empty index round-trips")
    func encodeDecode() throws {
        var random = SeededRandom(seed: 0xF11E)
        try withCollectionPath { path in
            let store = try Self.createStore(at: path)
            try store.upsert(
                (1...30).map { Self.point($0, &random) } + [Point(id: .integer(99), vectors: ["v": .dense([0, 1])])]
            )
            try store.delete(ids: [.integer(3)])
            let view = store.scoringView()
            var state = TextIndexState(fields: Self.fields, analyzer: Self.analyzer)
            state.catchUp(with: view)
            let file = CollectionStore.persistedTextIndex(of: state, view: view, key: Self.key)
            #expect(file.documentIDs.count == 30)
            let bytes = file.encoded()
            let decoded = try bytes.withUnsafeBytes { try BM25File(decoding: $0, key: Self.key, path: "memory") }
            #expect(decoded == file)
            #expect(throws: TesseraError.self) {
                try bytes.withUnsafeBytes { try BM25File(decoding: $0, key: "other", path: "memory") }
            }
            let empty = BM25File(
                key: Self.key,
                documentIDs: [],
                documentLengths: [],
                documentFingerprints: [],
                terms: [],
                postingStarts: [0],
                postingDocuments: [],
                postingFrequencies: []
            )
            let emptyBytes = empty.encoded()
            #expect(
                try emptyBytes.withUnsafeBytes { try BM25File(decoding: $0, key: Self.key, path: "memory") } == empty
            )
        }
    }

    @Test("built, then reopened: the file is loaded, nothing is analysed, scores equal a fresh build bit for bit")
    func roundTrip() throws {
        var random = SeededRandom(seed: 0xB250)
        try withCollectionPath { path in
            let store = try Self.createStore(at: path)
            try store.upsert((1...80).map { Self.point($0, &random) })
            let built = try store.buildTextIndex()
            #expect(built.documentCount == 80)
            #expect(built.pendingDocumentCount == 0)
            #expect(built.fileByteCount > 0)
            // Current: a second call writes nothing.
            #expect(try store.buildTextIndex().file == built.file)
            try store.close()

            let reopened = try CollectionStore.open(at: path)
            let status = reopened.textIndexStatus()
            #expect(status.error == nil)
            #expect(status.file == built.file)
            #expect(status.loadedDocumentCount == 80)
            #expect(status.pendingDocumentCount == 0)
            #expect(Self.rebuildCount(reopened) == 0)
            Self.expectFreshScores(reopened, "reopened")
            // Other fields have no file: built from the payloads.
            let titles = try reopened.textSearch(TextSearchRequest(text: "lava", fields: ["title"], limit: 5))
            #expect(titles.count <= 5)
            #expect(reopened.textIndexStatus(fields: ["title"]).file == nil)
            try reopened.close()
            // A reader loads the file too, and never writes one.
            let reader = try CollectionStore.open(at: path, access: .readOnly)
            #expect(reader.textIndexStatus().loadedDocumentCount == 80)
            Self.expectFreshScores(reader, "read-only")
            #expect(throws: TesseraError.self) { try reader.buildTextIndex(fields: ["title"]) }
            #expect(try Self.textIndexFiles(in: path) == [(built.file! as NSString).lastPathComponent])
        }
    }

    @Test("points upserted, replaced, deleted and edited after the build are caught up at load, exactly")
    func catchUpAfterWrites() throws {
        let seed: UInt64 = 0xCA7C
        print("persisted BM25 catch-up seed \(seed)")
        var random = SeededRandom(seed: seed)
        try withCollectionPath { path in
            let store = try Self.createStore(at: path)
            try store.upsert((1...60).map { Self.point($0, &random) })
            try store.buildTextIndex()
            try store.upsert([Self.point(5, &random), Self.point(6, &random), Self.point(200, &random)])
            try store.delete(ids: [.integer(7), .integer(8)])
            try store.setPayload(["text": .string("bread bread lava")], ids: [.integer(9)])
            try store.overwritePayload(["title": .string("stone river")], ids: [.integer(10)])
            // An edit that leaves the text as it was keeps the file's document.
            let eleven = store.scoringView().payload(ofSlot: store.scoringView().slot(of: .integer(11))!)
            try store.overwritePayload(eleven, ids: [.integer(11)])
            try store.close()

            let reopened = try CollectionStore.open(at: path)
            let status = reopened.textIndexStatus()
            #expect(status.error == nil)
            // 60 in the file; 5, 6 replaced, 7, 8 deleted, 9, 10 edited; 11 unchanged in its text.
            #expect(status.loadedDocumentCount == 54)
            #expect(status.documentCount == 59)
            #expect(status.pendingDocumentCount == 11)
            Self.expectFreshScores(reopened, "after load")

            // The loaded index keeps catching up write by write, like one built in memory.
            let view = reopened.scoringView()
            var loaded = TextIndexState(
                fields: Self.fields,
                analyzer: Self.analyzer,
                file: try BM25File(path: status.file!, key: Self.key)
            )
            loaded.catchUp(with: view)
            for step in 0..<24 {
                let before = reopened.scoringView()
                let live = before.liveSlots.slots.map { before.pointIDs[$0] }
                let existing = live[random.int(in: 0...(live.count - 1))]
                switch step % 4 {
                case 0: try reopened.upsert([Self.point(UInt64(random.int(in: 1...80)), &random)])
                case 1: try reopened.setPayload(["text": .string(Self.text(&random))], ids: [existing])
                case 2: try reopened.delete(ids: [existing])
                default: try reopened.overwritePayload(["title": .string(Self.text(&random))], ids: [existing])
                }
                let now = reopened.scoringView()
                loaded.catchUp(with: now)
                var fresh = TextIndexState(fields: Self.fields, analyzer: Self.analyzer)
                fresh.catchUp(with: now)
                for query in Self.queries {
                    let request = TextIndexState.Query(terms: Self.analyzer.terms(query), parameters: BM25Parameters())
                    let expected = fresh.candidates(for: request, view: now, allowed: nil, limit: 1000)
                    let got = loaded.candidates(for: request, view: now, allowed: nil, limit: 1000)
                    #expect(got.map(\.slot) == expected.map(\.slot), "step \(step), query \(query)")
                    #expect(got.map(\.score) == expected.map(\.score), "step \(step), query \(query)")
                }
                Self.expectFreshScores(reopened, "step \(step)")
            }
            #expect(loaded.rebuildCount == 0)
            #expect(Self.rebuildCount(reopened) == 0)

            // Written again: the new file holds every change, and the old one is gone.
            let rewritten = try reopened.buildTextIndex()
            #expect(rewritten.file != status.file)
            #expect(rewritten.pendingDocumentCount == 0)
            #expect(try Self.textIndexFiles(in: path) == [(rewritten.file! as NSString).lastPathComponent])
            try reopened.close()
            let third = try CollectionStore.open(at: path)
            #expect(third.textIndexStatus().loadedDocumentCount == third.scoringView().liveCount)
            Self.expectFreshScores(third, "third process")
        }
    }

    @Test("a torn or altered file is detected, and the store answers from the payloads instead")
    func damagedFiles() throws {
        var random = SeededRandom(seed: 0xDA3A)
        var generator = SplitMix64.printed("damaged BM25 file")
        try withCollectionPath { path in
            let store = try Self.createStore(at: path)
            try store.upsert((1...40).map { Self.point($0, &random) })
            let file = try #require(try store.buildTextIndex().file)
            try store.close()
            let original = try Syscalls.readWholeFile(file)

            // Every damage is refused by the decoder: truncations at random lengths, one to four bytes changed.
            for round in 0..<400 {
                var bytes = original
                if round % 4 == 0 {
                    bytes.removeLast(generator.int(in: 1...bytes.count))
                } else {
                    for _ in 0..<(1 + round % 4) {
                        bytes[generator.int(in: 0...(bytes.count - 1))] ^= UInt8(generator.int(in: 1...255))
                    }
                }
                #expect(throws: TesseraError.self, "round \(round)") {
                    try bytes.withUnsafeBytes { try BM25File(decoding: $0, key: Self.key, path: file) }
                }
            }
            // The store notices, rebuilds from the payloads and answers as a fresh build.
            for round in 0..<6 {
                var bytes = original
                if round % 2 == 0 {
                    bytes.removeLast(generator.int(in: 1...bytes.count))
                } else {
                    bytes[generator.int(in: 0...(bytes.count - 1))] ^= UInt8(generator.int(in: 1...255))
                }
                try AtomicFile.write(bytes, to: file)
                let reopened = try CollectionStore.open(at: path)
                let status = reopened.textIndexStatus()
                #expect(status.error?.code == .corrupted, "round \(round)")
                #expect(status.error?.location.path == file)
                #expect(status.loadedDocumentCount == 0)
                #expect(status.documentCount == 40)
                Self.expectFreshScores(reopened, "damaged round \(round)")
                try reopened.close()
            }
            // A missing file too.
            try FileManager.default.removeItem(atPath: file)
            let reopened = try CollectionStore.open(at: path)
            #expect(reopened.textIndexStatus().error?.code == .io)
            Self.expectFreshScores(reopened, "missing file")
            // Writing again replaces the damaged generation.
            let rebuilt = try reopened.buildTextIndex()
            #expect(rebuilt.error == nil)
            #expect(rebuilt.file != file)
        }
    }

    @Test("a crash between writing the file and committing it leaves the previous generation current")
    func crashBeforeCommit() throws {
        var random = SeededRandom(seed: 0xC0DE)
        try withCollectionPath { path in
            let store = try Self.createStore(at: path)
            try store.upsert((1...30).map { Self.point($0, &random) })
            let first = try #require(try store.buildTextIndex().file)
            try store.upsert((31...45).map { Self.point($0, &random) })
            let generation = try store.indexGeneration()
            var written: String?
            #expect(throws: TesseraError.self) {
                try store.writeTextIndex(fields: Self.fields, analyzer: Self.analyzer) { path throws(TesseraError) in
                    written = path
                    throw TesseraError(.io, "crash")
                }
            }
            // The new file is whole on disk but not recorded.
            let orphan = try #require(written)
            #expect(FileManager.default.fileExists(atPath: orphan))
            #expect(try store.indexGeneration() == generation)
            #expect(
                try store.recordedFileName(of: CollectionStore.textIndexKind, field: Self.key)
                    == (first as NSString).lastPathComponent
            )
            try store.close()

            let reopened = try CollectionStore.open(at: path)
            let status = reopened.textIndexStatus()
            #expect(status.file == first)
            #expect(status.loadedDocumentCount == 30)
            Self.expectFreshScores(reopened, "after the crash")
            // The next build replaces both the current file and the orphan.
            let next = try reopened.buildTextIndex()
            #expect(try Self.textIndexFiles(in: path) == [(next.file! as NSString).lastPathComponent])
            #expect(!FileManager.default.fileExists(atPath: first))
        }
    }
}
