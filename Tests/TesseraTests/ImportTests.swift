import Foundation
import MaxSim
import Tessera
import TesseraPlatform
import TesseraTestSupport
import Testing

/// A float16 cosine multivector field, a float32 dot dense field, an int8 multivector field.
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

/// Point `id` as generated for the import tests; token values are float16-representable, so that a float16
/// input file holds them exactly.
private func point(_ id: Int, version: Int = 0) -> Point {
    var random = SplitMix64(seed: UInt64(id * 104_729 + version))
    let count = 1 + Int(random.next() % 5)
    let pointID: PointID =
        id % 4 == 1
        ? .uuid(UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", id))!) : .integer(UInt64(id))
    return Point(
        id: pointID,
        payload: [
            "group": .integer(Int64(id % 5)), "text": .string("term\(id % 7) shared"),
            "version": .integer(Int64(version)),
        ],
        vectors: [
            "tokens": .multivector((0..<count).map { _ in random.signedUnits(8).map { Float(Float16($0)) } }),
            "dense": .dense(random.signedUnits(5)),
            "bytes": .multivector((0..<(1 + count % 3)).map { _ in random.signedUnits(6) }),
        ]
    )
}

/// Writes `points` as import inputs under `folder` (tokens as float16 .npy, dense in a safetensors file, bytes as
/// float32 .npy with int32 offsets; ids as text; payloads as JSON Lines).
private func writeInputs(_ points: [Point], to folder: String) throws -> ImportSpecification {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    func rows(_ field: String) -> (values: [Double], offsets: [Double], count: Int) {
        var values: [Double] = []
        var offsets: [Double] = [0]
        var count = 0
        for point in points {
            let (flat, tokens) = point.vectors[field]!.flattened
            values += flat.map(Double.init)
            count += tokens
            offsets.append(Double(count))
        }
        return (values, offsets, count)
    }
    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
    let tokens = rows("tokens")
    let bytes = rows("bytes")
    let dense = rows("dense")
    let tokensPath = try write(NpyWriter.encode(tokens.values, shape: [tokens.count, 8], dataType: .float16), "t.npy")
    let tokenOffsets = try write(
        NpyWriter.encode(tokens.offsets, shape: [points.count + 1], dataType: .int64),
        "to.npy"
    )
    let bytesPath = try write(NpyWriter.encode(bytes.values, shape: [bytes.count, 6], dataType: .float32), "b.npy")
    let byteOffsets = try write(NpyWriter.encode(bytes.offsets, shape: [points.count + 1], dataType: .int32), "bo.npy")
    let densePath = try write(
        SafetensorsWriter.encode([
            .init(name: "other", shape: [2, 5], values: (0..<10).map(Float.init)),
            .init(name: "dense", shape: [points.count, 5], values: dense.values.map(Float.init)),
        ]),
        "d.safetensors"
    )
    let ids = try write(Array(points.map { "\($0.id)\n" }.joined().utf8), "ids.txt")
    let payload = try write(Array(points.map { JSONValue.object($0.payload).jsonText + "\n" }.joined().utf8), "p.jsonl")
    return ImportSpecification(
        fields: [
            .init(name: "tokens", vectors: tokensPath, offsets: tokenOffsets),
            .init(name: "dense", vectors: densePath + ":dense"),
            .init(name: "bytes", vectors: bytesPath, offsets: byteOffsets),
        ],
        ids: ids,
        payload: payload
    )
}

private func requests() throws -> [QueryRequest] {
    var random = SplitMix64(seed: 5)
    let tokens = try Multivector((0..<3).flatMap { _ in random.signedUnits(8) }, dimension: 8)
    let bytes = try Multivector((0..<2).flatMap { _ in random.signedUnits(6) }, dimension: 6)
    let dense = random.signedUnits(5)
    let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": 2}}]}"#)
    let exact = QueryParameters(exact: true)
    return [
        QueryRequest(root: QueryNode(query: .multivector(tokens), using: "tokens", limit: 40, parameters: exact)),
        QueryRequest(
            root: QueryNode(query: .multivector(tokens), using: "tokens", limit: 10, parameters: exact),
            scope: filter
        ),
        QueryRequest(root: QueryNode(query: .multivector(bytes), using: "bytes", limit: 40, parameters: exact)),
        QueryRequest(root: QueryNode(query: .dense(dense), using: "dense", limit: 40, parameters: exact)),
        // Every point matches (ties included): the order among equal scores follows slot order, which an import
        // and the upserts lay out differently.
        QueryRequest(root: QueryNode(query: .text("term3 shared"), using: "bm25", limit: 1000)),
    ]
}

/// Each request's answer, equal scores ordered by id (the order among ties is unspecified).
private func answers(_ store: CollectionStore) throws -> [[String]] {
    try requests().map { request in
        try store.query(request).points.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
            .map { "\($0.id) \($0.score)" }
    }
}

/// Everything a reader can see: the answers, and every point with its payload and vectors.
private func contents(_ store: CollectionStore) throws -> [String] {
    let records = try store.scroll(limit: 100_000, withPayload: true, withVectors: true).records
    return try answers(store).map { $0.joined(separator: ",") }
        + records.map { record in
            "\(record.id) \(JSONValue.object(record.payload ?? [:]).jsonText) "
                + ["tokens", "dense", "bytes"].map { "\(record.vectors?[$0]?.flattened.values ?? [])" }
                .joined(separator: " ")
        }
}

private func directoryFiles(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix("collection.sqlite") }.sorted()
}

@Suite("Importing precomputed vectors")
struct ImportTests {
    @Test("an import equals upserting the same points: answers, vectors and payloads, over several segments")
    func importEqualsUpsert() throws {
        try withTemporaryDirectory { root in
            let points = (0..<90).map { point($0) }
            let upserted = try CollectionStore.create(at: root + "/upserted", configuration: configuration)
            let imported = try CollectionStore.create(at: root + "/imported", configuration: configuration)
            // Points in both before (in the tail), some of which the import replaces; writes after.
            let before = (80..<120).map { point($0, version: 1) }
            try upserted.upsert(before)
            try imported.upsert(before)
            try upserted.upsert(points)
            let source = try ImportSource(try writeInputs(points, to: root + "/inputs"))
            #expect(source.pointCount == 90)
            let report = try imported.importPoints(source, options: ImportOptions(segmentByteLimit: 1500))
            #expect(report.pointsWritten == 90)
            #expect(report.replacedCount == 10)
            #expect(report.segmentCount > 3)
            #expect(imported.segments().count == report.segmentCount)
            #expect(imported.count() == upserted.count())
            let after = (100..<110).map { point($0, version: 2) }
            try upserted.upsert(after)
            try imported.upsert(after)
            try upserted.delete(ids: [point(3).id, point(85).id])
            try imported.delete(ids: [point(3).id, point(85).id])
            let expected = try contents(upserted)
            #expect(try contents(imported) == expected)
            try imported.checkIntegrity()
            try imported.close()
            let reopened = try CollectionStore.open(at: root + "/imported")
            #expect(try contents(reopened) == expected)
            try reopened.verifySegments()
            // Sealing and merging the rest keeps it.
            var settings = OptimizerSettings()
            settings.defaultSegmentNumber = 1
            try reopened.optimize(settings: settings, force: true, buildIndexes: true)
            #expect(reopened.segments().count == 1)
            #expect(try contents(reopened) == expected)
        }
    }

    @Test("a payload index and the compressed index see imported points")
    func derivedIndexesCatchUp() throws {
        try withTemporaryDirectory { root in
            let store = try CollectionStore.create(at: root + "/c", configuration: configuration)
            try store.upsert((200..<260).map { point($0) })
            try store.createPayloadIndex(field: "group", type: .integer)
            let filter = try Filter(json: #"{"must": [{"key": "group", "match": {"value": 3}}]}"#)
            #expect(store.count(filter: filter) == 12)
            let source = try ImportSource(try writeInputs((0..<100).map { point($0) }, to: root + "/inputs"))
            try store.importPoints(source)
            let view = store.scoringView()
            let brute = view.liveSlots.slots.filter {
                filter.matches(payload: view.payload(ofSlot: $0), id: view.pointIDs[$0])
            }
            #expect(store.count(filter: filter) == brute.count)
            #expect(brute.count == 32)
            let found = try store.scroll(filter: filter, limit: 1000).records.map(\.id)
            #expect(Set(found) == Set(brute.map { view.pointIDs[$0] }))
            try store.optimize(force: true)
            let status = try #require(try store.compressedIndexStatus(field: "tokens"))
            #expect(status.pendingPointCount == 0)
        }
    }

    @Test("bad inputs are refused with the file and row named, and change nothing stored")
    func malformedInputsChangeNothing() throws {
        try withTemporaryDirectory { root in
            let path = root + "/c"
            let store = try CollectionStore.create(at: path, configuration: configuration)
            try store.upsert((500..<540).map { point($0) })
            try store.optimize(force: true, buildIndexes: false)
            try store.upsert((540..<550).map { point($0) })
            let stored = try contents(store)
            let files = try directoryFiles(path)
            let points = (0..<30).map { point($0) }
            let good = try writeInputs(points, to: root + "/good")

            func expectRefused(
                _ label: String,
                _ message: String,
                _ make: (String) throws -> ImportSpecification
            ) throws {
                let specification = try make(root + "/\(label)")
                let outcome = Result { () throws(TesseraError) -> ImportReport in
                    try store.importPoints(try ImportSource(specification))
                }
                switch outcome {
                case .success: Issue.record("\(label): the import was accepted")
                case .failure(let error): #expect(error.message.contains(message), "\(label): \(error.message)")
                }
                #expect(try contents(store) == stored, "\(label): the collection changed")
                #expect(try directoryFiles(path) == files, "\(label): files changed")
            }
            func replacing(_ folder: String, _ name: String, _ bytes: [UInt8]) throws -> String {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let file = folder + "/" + name
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                return file
            }
            let tokenCount = points.reduce(0) { $0 + $1.vectors["tokens"]!.flattened.tokenCount }
            // A NaN in token row 17 (the check of values, after every structural check passed).
            try expectRefused("nan", "row 17, component 2: value nan is not finite") { folder in
                var specification = good
                var values = [Double](repeating: 0.5, count: tokenCount * 8)
                values[17 * 8 + 2] = .nan
                specification.fields[0].vectors = try replacing(
                    folder,
                    "t.npy",
                    NpyWriter.encode(values, shape: [tokenCount, 8], dataType: .float32)
                )
                return specification
            }
            try expectRefused("range", "outside float16's range") { folder in
                var specification = good
                var values = [Double](repeating: 0.5, count: tokenCount * 8)
                values[tokenCount * 8 - 1] = 1e6
                specification.fields[0].vectors = try replacing(
                    folder,
                    "t.npy",
                    NpyWriter.encode(values, shape: [tokenCount, 8], dataType: .float32)
                )
                return specification
            }
            try expectRefused("offsets", "entry 6: offset") { folder in
                var specification = good
                var offsets = (0...30).map { Double($0) }
                offsets[30] = Double(tokenCount)
                offsets[6] = offsets[5]
                specification.fields[0].offsets = try replacing(
                    folder,
                    "o.npy",
                    NpyWriter.encode(offsets, shape: [31], dataType: .int64)
                )
                return specification
            }
            try expectRefused("last-offset", "the last offset is") { folder in
                var specification = good
                specification.fields[0].offsets = try replacing(
                    folder,
                    "o.npy",
                    NpyWriter.encode((0...30).map { Double($0) }, shape: [31], dataType: .int64)
                )
                return specification
            }
            try expectRefused("duplicate-id", "line 9: id 4 repeats line 5") { folder in
                var specification = good
                var lines = points.map { "\($0.id)" }
                lines[8] = "4"
                specification.ids = try replacing(folder, "ids.txt", Array((lines.joined(separator: "\n") + "\n").utf8))
                return specification
            }
            try expectRefused("bad-id", "line 3: 'x-3' is neither") { folder in
                var specification = good
                var lines = points.map { "\($0.id)" }
                lines[2] = "x-3"
                specification.ids = try replacing(folder, "ids.txt", Array((lines.joined(separator: "\n") + "\n").utf8))
                return specification
            }
            try expectRefused("payload", "line 12 (point 11") { folder in
                var specification = good
                var lines = points.map { JSONValue.object($0.payload).jsonText }
                lines[11] = #"{"group": 1,"#
                specification.payload = try replacing(folder, "p.jsonl", Array(lines.joined(separator: "\n").utf8))
                return specification
            }
            try expectRefused("payload-count", "29 payload lines for 30 ids") { folder in
                var specification = good
                let lines = points.dropLast().map { JSONValue.object($0.payload).jsonText }
                specification.payload = try replacing(folder, "p.jsonl", Array(lines.joined(separator: "\n").utf8))
                return specification
            }
            try expectRefused("dimension", "rows of 7 values; field 'tokens' has dimension 8") { folder in
                var specification = good
                specification.fields[0].vectors = try replacing(
                    folder,
                    "t.npy",
                    NpyWriter.encode(
                        [Double](repeating: 0.1, count: tokenCount * 7),
                        shape: [tokenCount, 7],
                        dataType: .float32
                    )
                )
                return specification
            }
            try expectRefused("truncated", "(truncated?)") { folder in
                var specification = good
                var bytes = NpyWriter.encode(
                    [Double](repeating: 0.1, count: tokenCount * 8),
                    shape: [tokenCount, 8],
                    dataType: .float32
                )
                bytes.removeLast(5)
                specification.fields[0].vectors = try replacing(folder, "t.npy", bytes)
                return specification
            }
            try expectRefused("missing-field", "field 'bytes' has no input") { _ in
                var specification = good
                specification.fields.removeLast()
                return specification
            }
            try expectRefused("dense-rows", "has 2 rows for 30 ids") { _ in
                var specification = good
                specification.fields[1].vectors = specification.fields[1].vectors.replacingOccurrences(
                    of: ":dense",
                    with: ":other"
                )
                return specification
            }
            try expectRefused("fortran", "Fortran-ordered") { folder in
                var specification = good
                specification.fields[0].vectors = try replacing(
                    folder,
                    "t.npy",
                    NpyWriter.encode(
                        [Double](repeating: 0.1, count: tokenCount * 8),
                        shape: [tokenCount, 8],
                        dataType: .float32,
                        headerOverride: "{'descr': '<f4', 'fortran_order': True, 'shape': (\(tokenCount), 8), }"
                    )
                )
                return specification
            }
            // The good inputs, after all that, import.
            try store.importPoints(try ImportSource(good))
            #expect(store.count() == 80)
        }
    }

    @Test("an interrupted import goes on after its last committed segment; a finished one writes nothing again")
    func resumes() throws {
        try withTemporaryDirectory { root in
            let points = (0..<60).map { point($0) }
            let expectedStore = try CollectionStore.create(at: root + "/expected", configuration: configuration)
            try expectedStore.upsert(points)
            let expected = try contents(expectedStore)
            let specification = try writeInputs(points, to: root + "/inputs")
            let options = ImportOptions(segmentByteLimit: 1200)
            let store = try CollectionStore.create(at: root + "/c", configuration: configuration)
            var committed = 0
            let first = try store.importPoints(try ImportSource(specification), options: options) { progress in
                if progress.phase == "committed" { committed = progress.pointsDone }
                return progress.segmentsWritten < 2
            }
            #expect(first.segmentCount == 2)
            #expect(first.pointsWritten == committed)
            #expect(committed > 0 && committed < 60)
            #expect(store.count() == committed)
            try store.close()
            // A new process: reopen, run the same import again.
            let reopened = try CollectionStore.open(at: root + "/c")
            let second = try reopened.importPoints(try ImportSource(specification), options: options)
            #expect(second.resumedAt == committed)
            #expect(second.pointsWritten == 60 - committed)
            #expect(second.replacedCount == 0)
            #expect(try contents(reopened) == expected)
            let third = try reopened.importPoints(try ImportSource(specification), options: options)
            #expect(third.wasComplete)
            #expect(third.pointsWritten == 0)
            #expect(try contents(reopened) == expected)
        }
    }

    @Test("a new collection's configuration follows the inputs")
    func inferredConfiguration() throws {
        try withTemporaryDirectory { root in
            let source = try ImportSource(try writeInputs((0..<5).map { point($0) }, to: root + "/inputs"))
            let inferred = source.configuration(elementType: nil, distance: .cosine)
            #expect(inferred.fields.map(\.name) == ["tokens", "dense", "bytes"])
            #expect(inferred.fields.map(\.dimension) == [8, 5, 6])
            #expect(inferred.fields.map(\.isMultivector) == [true, false, true])
            #expect(inferred.fields.map(\.elementType) == [.float16, .float32, .float32])
            let store = try CollectionStore.create(at: root + "/c", configuration: inferred)
            try store.importPoints(source)
            #expect(store.count() == 5)
            // Payloads without text at the default text fields get no BM25 postings from the optimiser.
            try store.overwritePayload(["n": .integer(1)], ids: try store.scroll(limit: 10).records.map(\.id))
            let report = try store.optimize(force: true)
            #expect(report.builtIndexes.contains("hnsw:dense"))
            #expect(!report.builtIndexes.contains { $0.hasPrefix("bm25") }, "\(report.builtIndexes)")
        }
    }
}
