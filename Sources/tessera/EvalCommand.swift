import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import TesseraIndex

/// `tessera eval`: retrieval quality and latency of a collection on a BEIR split.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluates a collection on a BEIR split: nDCG@10, Recall@100, MRR@10 and query latency.",
        discussion: """
            Metrics follow BEIR (trec_eval): graded relevance with linear gains, averaged over the split's \
            queries that have judgements. Latency is per query, one query at a time: encoding and search are \
            timed separately; p50/p95 over all queries.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Option(help: "The BEIR folder (queries.jsonl, qrels/).")
    var beir: String

    @Option(help: "The judgement split.")
    var split = "test"

    @Option(help: "Evaluate only the first N queries.")
    var limit: Int?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var firstStage: FirstStageOptions

    func run() async throws {
        let dataset = try BEIRDataset(directory: beir, split: split, includeCorpus: false)
        let queries = limit.map { Array(dataset.queries.prefix($0)) } ?? dataset.queries
        guard !queries.isEmpty else { throw CommandError("no queries with judgements in split '\(split)'") }
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        try firstStage.warnIfUnavailable(store)
        try warnAboutCoverage(store: store, dataset: dataset, queries: queries)
        let tokenField = store.configuration.textTokenField
        let catalog = encoderCatalog(options)
        let kernel = MaxSimKernel(threadCount: options.threads)
        var ndcg = 0.0
        var recall = 0.0
        var mrr = 0.0
        var encodeTimes: [Double] = []
        var searchTimes: [Double] = []
        var progress = ProgressBar(total: queries.count, unit: "queries")
        let needsEncoder = firstStage.pipeline != nil || firstStage.firstStage != .bm25
        for (index, query) in queries.enumerated() {
            let encodeStart = DispatchTime.now().uptimeNanoseconds
            // Encoded once here, timed apart; the search reuses the encoding.
            if needsEncoder, let tokenField { _ = try catalog.encodeQuery(query.text, for: tokenField) }
            encodeTimes.append(milliseconds(since: encodeStart))
            let textQuery = try firstStage.textQuery(query.text, filter: nil, limit: 100)
            let searchStart = DispatchTime.now().uptimeNanoseconds
            let results = try store.search(textQuery, encoder: catalog, kernel: kernel).points
            searchTimes.append(milliseconds(since: searchStart))
            let ranking = results.map(documentID(of:))
            let relevant = dataset.judgements[query.id] ?? [:]
            ndcg += RetrievalMetrics.ndcg(ranking: ranking, relevant: relevant, cutoff: 10)
            recall += RetrievalMetrics.recall(ranking: ranking, relevant: relevant, cutoff: 100)
            mrr += RetrievalMetrics.reciprocalRank(ranking: ranking, relevant: relevant, cutoff: 10)
            progress.update(index + 1)
        }
        progress.finish()
        let count = Double(queries.count)
        let report = EvalReport(
            collection: options.path,
            dataset: beir,
            split: split,
            queries: queries.count,
            points: store.count(),
            model: tokenField?.encoder?.modelName ?? options.model ?? "",
            profile: (tokenField?.encoder?.profile ?? .plain).rawValue,
            elementType: tokenField?.elementType.description ?? "",
            ndcgAt10: ndcg / count,
            recallAt100: recall / count,
            mrrAt10: mrr / count,
            searchMillisecondsP50: percentile(searchTimes, 0.5),
            searchMillisecondsP95: percentile(searchTimes, 0.95),
            encodeMillisecondsP50: percentile(encodeTimes, 0.5),
            encodeMillisecondsP95: percentile(encodeTimes, 0.95),
            threads: kernel.threadCount,
            method: firstStage.label(limit: 100)
        )
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(
                """
                \(report.collection): \(report.queries) queries (\(split)), \(report.points) points, \
                \(report.profile) profile, \(report.elementType) vectors, \(report.threads) threads, \(report.method)
                  nDCG@10     \(String(format: "%.4f", report.ndcgAt10))
                  Recall@100  \(String(format: "%.4f", report.recallAt100))
                  MRR@10      \(String(format: "%.4f", report.mrrAt10))
                  search ms   p50 \(String(format: "%.1f", report.searchMillisecondsP50))  \
                p95 \(String(format: "%.1f", report.searchMillisecondsP95))
                  encode ms   p50 \(String(format: "%.1f", report.encodeMillisecondsP50))  \
                p95 \(String(format: "%.1f", report.encodeMillisecondsP95))
                """
            )
        }
    }
}

extension EvalCommand {
    /// Warns when the collection cannot hold what the judgements name: none of the judged documents (the wrong
    /// collection, or ids indexed another way), or only part of the corpus (scores then mean little).
    func warnAboutCoverage(store: CollectionStore, dataset: BEIRDataset, queries: [BEIRDataset.Query]) throws {
        let view = store.scoringView()
        var judged = Set<String>()
        for query in queries { if let grades = dataset.judgements[query.id] { judged.formUnion(grades.keys) } }
        let present = judged.filter { view.slot(of: pointID(forDocumentID: $0)) != nil }.count
        func warn(_ message: String) { FileHandle.standardError.write(Data("warning: \(message)\n".utf8)) }
        if !judged.isEmpty, present == 0 {
            warn(
                "none of the \(judged.count) judged documents is in collection '\(options.collection)': is it built "
                    + "from \(beir)?"
            )
        } else if present * 100 < judged.count * 99 {
            // BEIR corpora hold a few documents with no text, which `index` leaves out: a percent is not warned of.
            warn("\(judged.count - present) of \(judged.count) judged documents are not in the collection")
        }
        let corpus = URL(fileURLWithPath: beir).appendingPathComponent("corpus.jsonl").path
        if let data = FileManager.default.contents(atPath: corpus) {
            let documents = data.split(separator: UInt8(ascii: "\n")).count
            if view.liveCount * 100 < documents * 99 {
                warn(
                    "the collection holds \(view.liveCount) of the corpus's \(documents) documents; metrics are not "
                        + "comparable with a full index"
                )
            }
        }
    }
}

struct EvalReport: Codable {
    var collection: String
    var dataset: String
    var split: String
    var queries: Int
    var points: Int
    var model: String
    var profile: String
    var elementType: String
    var ndcgAt10: Double
    var recallAt100: Double
    var mrrAt10: Double
    var searchMillisecondsP50: Double
    var searchMillisecondsP95: Double
    var encodeMillisecondsP50: Double
    var encodeMillisecondsP95: Double
    var threads: Int
    var method: String
}

/// `tessera info`: what a collection holds.
struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Shows a collection's configuration, size and encoder."
    )

    @OptionGroup var options: CollectionOptions

    func run() async throws {
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        let view = store.scoringView()
        print("collection \(options.path)")
        print("  points      \(view.liveCount)")
        for field in store.configuration.fields {
            let column = view.column(named: field.name)
            let kind: String
            switch field.kind {
            case .multivector: kind = "multivector (max_sim)"
            case .dense(let distance): kind = "dense (\(distance.rawValue))"
            case .sparse(let modifier): kind = "sparse (modifier \(modifier.rawValue))"
            }
            print(
                "  field '\(field.name)': \(kind), dimension \(field.dimension), \(field.elementType), "
                    + "\(column?.tokenCount ?? 0) vectors"
            )
            if let encoder = field.encoder {
                print("    encoder \(encoder.modelName) (\(encoder.contentHash)), profile \(encoder.profile.rawValue)")
            }
        }
        for index in try store.payloadIndexes() {
            print("  payload index '\(index.field)': \(index.type), \(index.pointCount) points")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: options.path)) ?? []
        let bytes = files.reduce(0) { total, name in
            let path = URL(fileURLWithPath: options.path).appendingPathComponent(name).path
            return total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
        print(String(format: "  on disk     %.1f MB", Double(bytes) / 1e6))
        let segments = store.segments()
        let sealedPoints = segments.reduce(0) { $0 + $1.liveCount }
        print(
            "  segments    \(segments.count) sealed (\(sealedPoints) points, "
                + String(format: "%.1f MB", Double(segments.reduce(0) { $0 + $1.byteCount }) / 1e6)
                + "), appendable \(view.liveCount - sealedPoints) points"
        )
        let settings = try store.optimizerSettings()
        print(
            "  optimizer   \(store.needsOptimization(settings: settings) ? "work pending (yellow)" : "idle (green)"); "
                + "indexing_threshold \(settings.indexingThreshold) KB, default_segment_number "
                + "\(settings.defaultSegmentNumber == 0 ? "auto" : String(settings.defaultSegmentNumber))"
        )
        if let pooled = store.configuration.textDenseField, let status = try store.denseIndexStatus(field: pooled.name)
        {
            if let error = status.error {
                print("  hnsw        unusable: \(error)")
            } else {
                print(
                    "  hnsw        '\(pooled.name)': \(status.graphCount) points (m \(status.m), ef_construction "
                        + "\(status.efConstruction)), \(status.deletedCount) marked deleted, "
                        + "\(status.pendingPointCount) written since the build"
                )
            }
        }
        if let tokens = store.configuration.textTokenField,
            let status = try store.compressedIndexStatus(field: tokens.name)
        {
            if let error = status.error {
                print("  compressed  unusable: \(error)")
            } else if let report = status.report {
                print(
                    String(
                        format: "  compressed  %d centroids, %d bits, %d tokens, %.1f bytes/token, built in %.1f s; "
                            + "%d points written since training",
                        report.centroidCount,
                        report.bitCount,
                        report.tokenCount,
                        status.bytesPerToken,
                        report.buildSeconds,
                        status.pendingPointCount
                    )
                )
            }
        }
    }
}
