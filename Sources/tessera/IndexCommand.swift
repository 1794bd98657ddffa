import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import TesseraIndex

/// `tessera index`: encode a corpus and store it in a collection.
struct IndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Encodes documents and stores them in a collection (created on first use; resumable).",
        discussion: """
            Input is a BEIR folder (--beir: corpus.jsonl with _id, title, text) or a JSONL file (--jsonl: one \
            object per line with id — an unsigned integer, a UUID or any string —, text, and optional title and \
            payload; BEIR's _id and metadata are accepted too). A BEIR document's metadata becomes its payload. Each document's `title + " " + text` is encoded; its token vectors go to the multivector \
            field 'tokens' and its mean-pooled vector to the dense field 'pooled' of a new collection (an existing \
            collection's own fields, model and profile are used). Documents already stored with the same text, \
            title and payload are left alone, changed ones are encoded and replaced, so an interrupted run resumes \
            where it stopped. Without --beir or --jsonl, only the indexes asked for (--compressed, --hnsw, --bm25) \
            are built. Every run ends by writing the BM25 index of the title and text (unless it is current), so \
            that the first text query of a later process loads it instead of analysing every payload.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Option(help: "A BEIR folder to index (its corpus.jsonl).")
    var beir: String?

    @Option(help: "A JSONL file to index.")
    var jsonl: String?

    @Option(help: "Encoding profile of a new collection: plain or colbert.")
    var profile: ProfileChoice?

    @Option(help: "Stored element type of a new collection's token vectors: f32, f16 or int8.")
    var dtype: StoredType?

    @Option(help: "Documents encoded and stored per transaction.")
    var chunkSize = 256

    @Option(help: "Index only the first N documents.")
    var limit: Int?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(
        help: "Build the compressed index of the token vectors (PLAID centroids and residual codes) if it is missing."
    )
    var compressed = false

    @Flag(help: "Retrain the compressed index even if one exists (after the data has drifted).")
    var rebuild = false

    @Option(help: "Compressed index: residual bits per dimension, 1, 2 or 4.")
    var nbits = 2

    @Option(help: "Compressed index: centroids (default: ColBERTv2's 2^floor(log2(16·√tokens)) divided by 4).")
    var centroids: Int?

    @Option(help: "Compressed index: tokens k-means trains on (default: 32 per centroid, at least 65,536).")
    var trainingTokens: Int?

    @Option(help: "Compressed index: k-means iterations.")
    var iterations = 8

    @Flag(help: "Build (or rebuild) the HNSW graph of the pooled dense vectors.")
    var hnsw = false

    @Flag(help: "Write the BM25 index of the payloads' title and text (every run does; this asks for nothing else).")
    var bm25 = false

    @Option(help: "HNSW: links per node.")
    var m = 16

    @Option(help: "HNSW: candidate list length while inserting.")
    var efConstruction = 200

    func validate() throws {
        guard beir == nil || jsonl == nil else { throw ValidationError("give one of --beir and --jsonl, not both") }
        guard beir != nil || jsonl != nil || compressed || rebuild || hnsw || bm25 else {
            throw ValidationError(
                "give --beir or --jsonl to index documents, or --compressed / --hnsw / --bm25 to build indexes"
            )
        }
        guard chunkSize > 0 else { throw ValidationError("--chunk-size must be positive") }
        guard [1, 2, 4].contains(nbits) else { throw ValidationError("--nbits is 1, 2 or 4") }
        if let centroids, centroids < 1 { throw ValidationError("--centroids must be at least 1") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard (2...512).contains(m) else { throw ValidationError("--m must be between 2 and 512") }
        guard efConstruction >= 1 else { throw ValidationError("--ef-construction must be at least 1") }
    }

    func run() async throws {
        let documents = beir == nil && jsonl == nil ? [] : try loadDocuments()
        let exists = FileManager.default.fileExists(
            atPath: URL(fileURLWithPath: options.path).appendingPathComponent("collection.sqlite").path
        )
        let store: CollectionStore
        if exists {
            store = try CollectionStore.open(at: options.path)
        } else {
            guard !documents.isEmpty else {
                throw CommandError("collection '\(options.collection)' does not exist; give --beir or --jsonl")
            }
            store = try CollectionStore.create(at: options.path, configuration: try newConfiguration())
        }
        let tokens = try textTokenField(of: store, options: options)
        let pooled = store.configuration.textDenseField
        if exists, let profile = profile?.profile, let recorded = tokens.encoder?.profile, recorded != profile {
            throw CommandError(
                "collection '\(options.collection)' was built with the \(recorded.rawValue) profile, not \(profile.rawValue)"
            )
        }
        if exists, let precision = options.precision?.precision, let recorded = tokens.encoder?.precision,
            recorded != precision
        {
            throw CommandError(
                "collection '\(options.collection)' was encoded at \(recorded.rawValue), not \(precision.rawValue); "
                    + "its new documents must be too"
            )
        }
        let catalog = encoderCatalog(options)
        // Documents whose id is stored with the same text, title and payload are unchanged; the others are encoded.
        let view = store.scoringView()
        var added: [SourceDocument] = []
        var updated: [SourceDocument] = []
        for document in documents {
            guard let slot = view.slot(of: pointID(forDocumentID: document.id)) else {
                added.append(document)
                continue
            }
            if view.payload(ofSlot: slot) != document.storedPayload { updated.append(document) }
        }
        let pending = added + updated
        let unchanged = documents.count - pending.count
        if unchanged > 0 && !json {
            print("\(unchanged) documents unchanged; indexing \(added.count) new and \(updated.count) changed")
        }
        let encoder = pending.isEmpty ? nil : try catalog.tokenEncoder(for: tokens)
        var progress = ProgressBar(total: pending.count, unit: "docs")
        let start = Date()
        var tokenCount = 0
        var done = 0
        for chunkStart in stride(from: 0, to: pending.count, by: chunkSize) {
            let chunk = Array(pending[chunkStart..<min(pending.count, chunkStart + chunkSize)])
            let encoded = try encoder!.encodeDocuments(chunk.map(\.fullText))
            var points: [Point] = []
            points.reserveCapacity(chunk.count)
            for (document, vectors) in zip(chunk, encoded) {
                var fields: [String: VectorValue] = [
                    tokens.name: .flat(values: vectors.vectors, tokenCount: vectors.tokenCount)
                ]
                if let pooled { fields[pooled.name] = .dense(vectors.pooled) }
                points.append(
                    Point(id: pointID(forDocumentID: document.id), payload: document.storedPayload, vectors: fields)
                )
                tokenCount += vectors.tokenCount
            }
            try store.upsert(points)
            // What the server's optimiser does in the background: seal the appendable segment once it holds
            // indexing_threshold of vectors, merge segments down to the configured number.
            try store.optimize(buildIndexes: false)
            done += chunk.count
            progress.update(done)
        }
        progress.finish()
        // Everything indexed goes into sealed segments, so that the next process opens without reading vectors
        // from the database.
        if !pending.isEmpty { try store.optimize(force: true, buildIndexes: false) }
        let seconds = Date().timeIntervalSince(start)
        let elementType = tokens.elementType
        let bytesPerValue = elementType == .float32 ? 4.0 : elementType == .float16 ? 2.0 : 1.0
        let scaleBytes = elementType == .int8 ? 4.0 : 0
        let vectorBytes = Double(tokenCount) * (Double(tokens.dimension) * bytesPerValue + scaleBytes)
        var summary = IndexSummary(
            collection: options.path,
            documents: done,
            added: added.count,
            updated: updated.count,
            unchanged: unchanged,
            tokens: tokenCount,
            tokenVectorBytes: Int(vectorBytes),
            seconds: seconds,
            tokensPerSecond: seconds > 0 ? Double(tokenCount) / seconds : 0
        )
        summary.compressed = try buildCompressedIfAsked(store, field: tokens.name)
        if hnsw {
            guard let pooled else {
                throw CommandError("collection '\(options.collection)' has no dense field for an HNSW graph")
            }
            let start = Date()
            let status = try store.buildDenseIndex(
                field: pooled.name,
                options: HNSWOptions(m: m, efConstruction: efConstruction),
                threadCount: options.threads ?? ProcessInfo.processInfo.activeProcessorCount
            )
            let seconds = Date().timeIntervalSince(start)
            summary.hnsw = HNSWSummary(
                file: (status.file as NSString).lastPathComponent,
                points: status.graphCount,
                m: status.m,
                efConstruction: status.efConstruction,
                seconds: seconds
            )
            if !json {
                print(
                    String(
                        format: "HNSW graph of '%@': %d points, m %d, ef_construction %d, built in %.1f s",
                        pooled.name,
                        status.graphCount,
                        status.m,
                        status.efConstruction,
                        seconds
                    )
                )
            }
        }
        summary.bm25 = try writeTextIndex(store)
        if json {
            let encoderJSON = JSONEncoder()
            encoderJSON.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoderJSON.encode(summary), as: UTF8.self))
        } else if beir != nil || jsonl != nil {
            print(
                String(
                    format:
                        "indexed %d documents (%d added, %d updated, %d unchanged), %d tokens, %.1f MB of token vectors "
                        + "(%@), %.1f s, %.0f tokens/s",
                    summary.documents,
                    summary.added,
                    summary.updated,
                    summary.unchanged,
                    summary.tokens,
                    vectorBytes / 1e6,
                    elementType.description,
                    seconds,
                    summary.tokensPerSecond
                )
            )
        }
    }

    /// Writes the persisted BM25 index of the fields and analyzer that searches use by default (nothing when the
    /// recorded one is current), so that the first text query of a later process loads it rather than
    /// analysing every payload.
    func writeTextIndex(_ store: CollectionStore) throws -> TextIndexSummary {
        let start = Date()
        let status = try store.buildTextIndex()
        let summary = TextIndexSummary(
            file: ((status.file ?? "") as NSString).lastPathComponent,
            documents: status.documentCount,
            fileBytes: status.fileByteCount,
            seconds: Date().timeIntervalSince(start)
        )
        if !json {
            print(
                String(
                    format: "BM25 index %@: %d documents, %.1f MB, %.2f s",
                    summary.file,
                    summary.documents,
                    Double(summary.fileBytes) / 1e6,
                    summary.seconds
                )
            )
        }
        return summary
    }

    /// Builds the compressed index when asked and missing (or `--rebuild`); otherwise reports the existing one.
    func buildCompressedIfAsked(_ store: CollectionStore, field: String) throws -> CompressedSummary? {
        let existing = try store.compressedIndexStatus(field: field)
        guard compressed || rebuild || existing != nil else { return nil }
        if let existing, existing.error == nil, !rebuild {
            if !json {
                print(
                    "compressed index \((existing.file as NSString).lastPathComponent): \(existing.pendingPointCount) "
                        + "points written since training (encoded against its centroids; --rebuild retrains)"
                )
            }
            return CompressedSummary(status: existing)
        }
        var bar: ProgressBar?
        var stage = ""
        let status = try store.buildCompressedIndex(
            field: field,
            options: CompressedIndexOptions(
                centroidCount: centroids,
                bitCount: nbits,
                trainingTokenCount: trainingTokens,
                iterationCount: iterations
            ),
            progress: { progress in
                if progress.stage != stage {
                    bar?.finish()
                    stage = progress.stage
                    if !json { print("compressed index: \(stage)") }
                    bar = ProgressBar(total: progress.total, unit: stage == "training" ? "iterations" : "chunks")
                }
                bar?.update(progress.completed)
            }
        )
        bar?.finish()
        let summary = CompressedSummary(status: status)
        if !json {
            print(
                String(
                    format: "compressed index: %d centroids, %d bits, %d tokens, %.1f bytes/token, %.1f MB, "
                        + "trained in %.1f s, encoded in %.1f s",
                    summary.centroids,
                    summary.bits,
                    summary.tokens,
                    summary.bytesPerToken,
                    Double(summary.fileBytes) / 1e6,
                    summary.trainingSeconds,
                    summary.encodingSeconds
                )
            )
        }
        return summary
    }

    struct SourceDocument {
        var id: String
        var title: String
        var text: String
        var payload: JSONObject = [:]
        var fullText: String { title.isEmpty ? text : title + " " + text }

        /// The payload stored with the document: its own, plus `doc_id`, `title` and `text`.
        var storedPayload: JSONObject {
            var stored = payload
            stored["doc_id"] = .string(id)
            if !title.isEmpty { stored["title"] = .string(title) }
            stored["text"] = .string(text)
            return stored
        }
    }

    /// The configuration of a new collection: token vectors and their pooled vector, from `--model` (recorded as
    /// an absolute path with its content hash, so later runs need no `--model`).
    func newConfiguration() throws -> CollectionConfiguration {
        let modelDirectory = URL(fileURLWithPath: options.model ?? defaultModelDirectory).standardizedFileURL.path
        let profile = profile?.profile ?? .plain
        let encoder = try TokenEncoder(
            modelDirectory: modelDirectory,
            profile: profile == .colbert ? .colbert() : .plain(),
            threadCount: 1
        )
        let identity = EncoderIdentity(
            modelName: modelDirectory,
            contentHash: try modelContentHash(modelDirectory),
            profile: profile,
            precision: options.precision?.precision ?? .float32
        )
        return CollectionConfiguration(fields: [
            VectorField(
                name: newTokenFieldName,
                dimension: encoder.dimension,
                kind: .multivector(comparator: .maxSim),
                elementType: (dtype ?? .f16).elementType,
                encoder: identity
            ),
            VectorField(
                name: newPooledFieldName,
                dimension: encoder.pooledDimension,
                kind: .dense(distance: .cosine),
                elementType: .float32,
                encoder: identity
            ),
        ])
    }
}

/// `--dtype`.
enum StoredType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, int8

    var elementType: ElementType {
        switch self {
        case .f32: return .float32
        case .f16: return .float16
        case .int8: return .int8
        }
    }
}

/// `--precision`: the encoder's arithmetic.
enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case f32, bf16, int8

    var precision: EncoderPrecision {
        switch self {
        case .f32: return .float32
        case .bf16: return .bfloat16
        case .int8: return .int8
        }
    }
}

/// `--profile`.
enum ProfileChoice: String, ExpressibleByArgument, CaseIterable {
    case plain, colbert

    var profile: Tessera.EncodingProfile { self == .colbert ? .colbert : .plain }
}

extension IndexCommand {

    /// Reads every document first, so a malformed line stops the run before anything is stored.
    func loadDocuments() throws -> [SourceDocument] {
        var documents: [SourceDocument]
        if let beir {
            documents = try BEIRDataset.readCorpus(directory: beir).map {
                SourceDocument(id: $0.id, title: $0.title, text: $0.text, payload: $0.metadata)
            }
        } else {
            documents = try Self.readJSONL(path: jsonl!)
        }
        if let limit { documents = Array(documents.prefix(limit)) }
        if beir != nil {
            // BEIR corpora contain a few documents with neither title nor text (Cranfield has two); they
            // cannot match anything, so they are left out and counted.
            let before = documents.count
            documents.removeAll { $0.fullText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            if documents.count < before && !json {
                print("skipping \(before - documents.count) documents with no title and no text")
            }
        }
        var seen = Set<String>()
        for (index, document) in documents.enumerated() {
            guard !document.fullText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw CommandError("document \(index + 1) (id \(document.id)) has no text")
            }
            guard seen.insert(document.id).inserted else {
                throw CommandError("document \(index + 1): id \(document.id) appears twice")
            }
        }
        return documents
    }

    static func readJSONL(path: String) throws -> [SourceDocument] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("cannot read \(path)")
        }
        var documents: [SourceDocument] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
            func fail(_ message: String) -> CommandError { CommandError("\(path):\(lineNumber): \(message)") }
            let object = try jsonLine(line, path: path, lineNumber: lineNumber)
            let id: String
            switch object["id"] ?? object["_id"] {
            case .integer(let value)? where value >= 0: id = String(value)
            case .string(let value)? where !value.isEmpty: id = value
            case nil: throw fail("missing field 'id' (or '_id')")
            default: throw fail("field 'id' must be an unsigned integer or a non-empty string")
            }
            guard case .string(let text)? = object["text"] else { throw fail("missing or non-string field 'text'") }
            var title = ""
            if let value = object["title"] {
                guard case .string(let string) = value else { throw fail("field 'title' must be a string") }
                title = string
            }
            var payload: JSONObject = [:]
            if let value = object["payload"] ?? object["metadata"] {
                guard case .object(let fields) = value else {
                    throw fail("field '\(object["payload"] == nil ? "metadata" : "payload")' must be an object")
                }
                payload = fields
            }
            documents.append(SourceDocument(id: id, title: title, text: text, payload: payload))
        }
        return documents
    }
}

struct IndexSummary: Codable {
    var collection: String
    var documents: Int
    var added: Int
    var updated: Int
    var unchanged: Int
    var tokens: Int
    var tokenVectorBytes: Int
    var seconds: Double
    var tokensPerSecond: Double
    var compressed: CompressedSummary?
    var hnsw: HNSWSummary?
    var bm25: TextIndexSummary?
}

struct TextIndexSummary: Codable {
    var file: String
    var documents: Int
    var fileBytes: Int
    var seconds: Double
}

struct HNSWSummary: Codable {
    var file: String
    var points: Int
    var m: Int
    var efConstruction: Int
    var seconds: Double
}

struct CompressedSummary: Codable {
    var file: String
    var centroids: Int
    var bits: Int
    var tokens: Int
    var trainingTokens: Int
    var fileBytes: Int
    var bytesPerToken: Double
    var trainingSeconds: Double
    var encodingSeconds: Double
    var buildSeconds: Double
    var pendingPoints: Int

    init(status: CompressedIndexStatus) {
        file = status.file
        centroids = status.report?.centroidCount ?? 0
        bits = status.report?.bitCount ?? 0
        tokens = status.report?.tokenCount ?? 0
        trainingTokens = status.report?.trainingTokenCount ?? 0
        fileBytes = status.fileByteCount
        bytesPerToken = status.bytesPerToken
        trainingSeconds = status.report?.trainingSeconds ?? 0
        encodingSeconds = status.report?.encodingSeconds ?? 0
        buildSeconds = status.report?.buildSeconds ?? 0
        pendingPoints = status.pendingPointCount
    }
}
