import ArgumentParser
import Dispatch
import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import TesseraIndex

/// `tessera bench search`: exact search against the compressed index at several settings, on one collection.
struct BenchSearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Compares exact search with the compressed index (alone and reranked) on a BEIR collection.",
        discussion: """
            Queries are encoded once, first (their time is reported separately); then every setting runs every \
            query one at a time and is timed on its own: nDCG@10, Recall@100, MRR@10, p50/p95 latency. Bytes per \
            token are the stored vectors' for exact search and the index file's for the compressed index; RSS is \
            the process's resident memory after the setting ran (it includes the stored vectors held for exact \
            search and the rerank).
            """
    )

    @OptionGroup var options: CollectionOptions

    @Option(help: "The BEIR folder (queries.jsonl, qrels/).")
    var beir: String

    @Option(help: "The judgement split.")
    var split = "test"

    @Option(help: "Cells probed per query token, one compressed setting each (comma-separated).")
    var nprobe = "4,8,16"

    @Option(help: "Reranked settings: nprobe:candidates pairs (comma-separated).")
    var reranked = "8:100,16:200"

    @Option(help: "The rank of the centroid whose score is imputed (default nprobe).")
    var imputationRank: Int?

    @Option(help: "Evaluate only the first N queries.")
    var limit: Int?

    @Option(
        help: "Also the first --nprobe setting with cells chosen in these many principal dimensions (comma-separated)."
    )
    var probeDimensions = ""

    @Flag(help: "Leave out the exact-search row (when only compressed settings are compared).")
    var noExact = false

    @Option(
        help: """
            Query pipelines, one row each (comma-separated): bm25, dense, dense-rerank (dense 100 → MaxSim),             union (BM25 ∪ dense ∪ compressed → MaxSim), hybrid-rrf, hybrid (the default of tessera search), or a             pipeline JSON file. Empty for none.
            """
    )
    var pipelines = "bm25,dense,dense-rerank,union,hybrid-rrf,hybrid"

    @Flag(help: "Leave out the compressed index rows (when only pipelines are compared).")
    var noCompressed = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Codable {
        var method: String
        var ndcgAt10: Double
        var recallAt100: Double
        var mrrAt10: Double
        var p50: Double
        var p95: Double
        var bytesPerToken: Double
        var residentMegabytes: Double
    }

    func run() async throws {
        let dataset = try BEIRDataset(directory: beir, split: split, includeCorpus: false)
        let queries = limit.map { Array(dataset.queries.prefix($0)) } ?? dataset.queries
        guard !queries.isEmpty else { throw CommandError("no queries with judgements in split '\(split)'") }
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        let field = try textTokenField(of: store, options: options)
        let catalog = encoderCatalog(options)
        let prepared = PreparedQueries(catalog: catalog)
        let textFields = [field] + (store.configuration.textDenseField.map { [$0] } ?? [])
        let kernel = MaxSimKernel(threadCount: options.threads)
        var encodeTimes: [Double] = []
        var encoded: [Multivector] = []
        var rawQueries: [(values: [Float], tokens: Int)] = []
        for query in queries {
            let start = DispatchTime.now().uptimeNanoseconds
            let vectors = try catalog.encodeQuery(query.text, for: field)
            encodeTimes.append(milliseconds(since: start))
            try prepared.prepare(query.text, fields: textFields)
            encoded.append(try Multivector(vectors.vectors, dimension: vectors.dimension))
            rawQueries.append((vectors.vectors, vectors.vectors.count / max(1, vectors.dimension)))
        }
        let typeName = field.elementType.description
        let storedBytesPerToken =
            Double(field.dimension) * (typeName == "float32" ? 4 : typeName == "float16" ? 2 : 1)
            + (typeName == "int8" ? 4 : 0)
        let status = try store.compressedIndexStatus(field: field.name)
        if let error = status?.error { throw error }

        var settings: [(String, SearchMethod, Double)] = noExact ? [] : [("exact", .exact, storedBytesPerToken)]
        if let status, !noCompressed {
            for probes in nprobe.split(separator: ",").compactMap({ Int($0) }) {
                var parameters = CompressedSearchParameters.defaults(limit: 100)
                parameters.probeCount = probes
                parameters.imputationRank = imputationRank
                settings.append(
                    ("compressed nprobe \(probes)", .compressed(parameters, rerank: false), status.bytesPerToken)
                )
            }
            let firstProbes = nprobe.split(separator: ",").compactMap({ Int($0) }).first ?? 8
            for projected in probeDimensions.split(separator: ",").compactMap({ Int($0) }) {
                var parameters = CompressedSearchParameters.defaults(limit: 100)
                parameters.probeCount = firstProbes
                parameters.imputationRank = imputationRank
                parameters.probeDimension = projected
                settings.append(
                    (
                        "compressed nprobe \(firstProbes), cells chosen in \(projected) dimensions",
                        .compressed(parameters, rerank: false),
                        status.bytesPerToken
                    )
                )
            }
            for pair in reranked.split(separator: ",") {
                let parts = pair.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 2 else { throw CommandError("--reranked takes nprobe:candidates pairs") }
                let parameters = CompressedSearchParameters(
                    probeCount: parts[0],
                    imputationRank: imputationRank,
                    candidateCount: parts[1]
                )
                settings.append(
                    (
                        "compressed nprobe \(parts[0]) + exact rerank of \(parts[1])",
                        .compressed(parameters, rerank: true),
                        status.bytesPerToken
                    )
                )
            }
        } else if !json, status == nil {
            print("(no compressed index: build one with `tessera index \(options.collection) … --compressed`)")
        }

        // Every row runs the library's query planner: a tree per query, timed without encoding.
        var rows: [Row] = []
        func measure(_ label: String, bytesPerToken: Double, _ request: (Int) throws -> QueryRequest) throws {
            // One untimed query warms the caches and, for the compressed index, maps it and syncs its delta.
            _ = try store.query(try request(0), encoder: prepared, kernel: kernel)
            var times: [Double] = []
            var ndcg = 0.0
            var recall = 0.0
            var mrr = 0.0
            for (index, query) in queries.enumerated() {
                let tree = try request(index)
                let start = DispatchTime.now().uptimeNanoseconds
                let results = try store.query(tree, encoder: prepared, kernel: kernel).points
                times.append(milliseconds(since: start))
                let ranking = results.map(documentID(of:))
                let relevant = dataset.judgements[query.id] ?? [:]
                ndcg += RetrievalMetrics.ndcg(ranking: ranking, relevant: relevant, cutoff: 10)
                recall += RetrievalMetrics.recall(ranking: ranking, relevant: relevant, cutoff: 100)
                mrr += RetrievalMetrics.reciprocalRank(ranking: ranking, relevant: relevant, cutoff: 10)
            }
            let count = Double(queries.count)
            rows.append(
                Row(
                    method: label,
                    ndcgAt10: ndcg / count,
                    recallAt100: recall / count,
                    mrrAt10: mrr / count,
                    p50: percentile(times, 0.5),
                    p95: percentile(times, 0.95),
                    bytesPerToken: bytesPerToken,
                    residentMegabytes: Double(Self.residentBytes() ?? 0) / 1_048_576
                )
            )
            if !json { FileHandle.standardError.write(Data("  done: \(label)\n".utf8)) }
        }
        for (label, method, bytesPerToken) in settings {
            try measure(label, bytesPerToken: bytesPerToken) { index in
                try store.queryRequest(
                    for: SearchRequest(query: encoded[index], field: field.name, limit: 100, method: method)
                )
            }
        }
        for entry in pipelines.split(separator: ",").map(String.init) where !entry.isEmpty {
            let arguments: [String]
            switch entry {
            case "bm25": arguments = ["--first-stage", "bm25"]
            case "dense": arguments = ["--first-stage", "dense"]
            case "dense-rerank": arguments = ["--first-stage", "dense", "--rerank", "exact"]
            case "union": arguments = ["--first-stage", "hybrid", "--fusion", "none"]
            case "hybrid-rrf": arguments = ["--first-stage", "hybrid", "--fusion", "rrf"]
            case "hybrid": arguments = ["--first-stage", "hybrid"]
            default: arguments = ["--pipeline", entry]
            }
            let plan = try FirstStageOptions.parse(arguments)
            try measure(plan.label(limit: 100), bytesPerToken: 0) { index in
                try store.queryRequest(for: try plan.textQuery(queries[index].text, filter: nil, limit: 100))
            }
        }
        let graph = try denseGraphCheck(store: store, queries: queries.map(\.text), prepared: prepared, kernel: kernel)

        // Where the compressed index's time goes: the index file alone (no collection, no filter), per setting.
        var stages: [StageRow] = []
        if let status, status.error == nil {
            let index = try CompressedIndex(path: status.file)
            var allowed = [UInt64](repeating: 0, count: (index.documentCount + 63) / 64)
            for document in 0..<index.documentCount { allowed[document >> 6] |= 1 << UInt64(document & 63) }
            var stageSettings = nprobe.split(separator: ",").compactMap({ Int($0) }).map { ($0, nil as Int?) }
            let firstProbes = stageSettings.first?.0 ?? 8
            stageSettings += probeDimensions.split(separator: ",").compactMap({ Int($0) }).map { (firstProbes, $0) }
            for (probes, projected) in stageSettings {
                var parameters = CompressedSearchParameters.defaults(limit: 100)
                parameters.probeCount = probes
                parameters.imputationRank = imputationRank
                parameters.probeDimension = projected
                var centroid: [Double] = []
                var scoring: [Double] = []
                var selection: [Double] = []
                var total: [Double] = []
                for query in rawQueries {
                    let timings = index.timedSearch(
                        query: query.values,
                        queryTokenCount: query.tokens,
                        parameters: parameters,
                        allowed: allowed,
                        threadCount: kernel.threadCount
                    ).timings
                    centroid.append(timings.centroidSeconds * 1000)
                    scoring.append(timings.scoringSeconds * 1000)
                    selection.append(timings.selectionSeconds * 1000)
                    total.append((timings.centroidSeconds + timings.scoringSeconds + timings.selectionSeconds) * 1000)
                }
                stages.append(
                    StageRow(
                        probeCount: probes,
                        probeDimension: projected ?? index.dimension,
                        centroidMilliseconds: percentile(centroid, 0.5),
                        scoringMilliseconds: percentile(scoring, 0.5),
                        selectionMilliseconds: percentile(selection, 0.5),
                        totalMilliseconds: percentile(total, 0.5),
                        indexResidentMegabytes: Double(index.residentByteCount() ?? 0) / 1_048_576,
                        indexFileMegabytes: Double(index.fileByteCount) / 1_048_576
                    )
                )
            }
        }

        if json {
            struct Output: Codable {
                var collection: String
                var queries: Int
                var threads: Int
                var encodeMillisecondsP50: Double
                var compressed: CompressedSummary?
                var hnsw: GraphCheck?
                var rows: [Row]
                var stages: [StageRow]
            }
            let output = Output(
                collection: options.path,
                queries: queries.count,
                threads: kernel.threadCount,
                encodeMillisecondsP50: percentile(encodeTimes, 0.5),
                compressed: status.map(CompressedSummary.init(status:)),
                hnsw: graph,
                rows: rows,
                stages: stages
            )
            let encoderJSON = JSONEncoder()
            encoderJSON.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoderJSON.encode(output), as: UTF8.self))
            return
        }
        print(
            "\(options.path): \(queries.count) queries, \(kernel.threadCount) threads, query encoding p50 "
                + String(format: "%.1f ms (not included below)", percentile(encodeTimes, 0.5))
        )
        if let report = status?.report {
            print(
                String(
                    format: "compressed index: %d centroids, %d bits, trained on %d tokens, built in %.1f s "
                        + "(training %.1f s, encoding %.1f s)",
                    report.centroidCount,
                    report.bitCount,
                    report.trainingTokenCount,
                    report.buildSeconds,
                    report.trainingSeconds,
                    report.encodingSeconds
                )
            )
        }
        if let graph {
            print(
                String(
                    format: "HNSW graph of '%@' (%d points, m %d, ef %d): recall@10 against exact dense search %.4f; "
                        + "p50 %.2f ms (exact %.2f ms)",
                    graph.field,
                    graph.points,
                    graph.m,
                    graph.ef,
                    graph.recallAt10,
                    graph.hnswMillisecondsP50,
                    graph.exactMillisecondsP50
                )
            )
        }
        print("| method | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms | bytes/token | RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            print(
                String(
                    format: "| %@ | %.4f | %.4f | %.4f | %.2f | %.2f | %@ | %.0f |",
                    row.method,
                    row.ndcgAt10,
                    row.recallAt100,
                    row.mrrAt10,
                    row.p50,
                    row.p95,
                    row.bytesPerToken > 0 ? String(format: "%.0f", row.bytesPerToken) : "–",
                    row.residentMegabytes
                )
            )
        }
        guard !stages.isEmpty else { return }
        print()
        print("Compressed index alone (no collection, no filter), median per query:")
        print(
            "| nprobe | cell choice dims | centroid scores ms | cell scoring ms | selection ms | total ms | index resident MiB |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for stage in stages {
            print(
                String(
                    format: "| %d | %d | %.2f | %.2f | %.2f | %.2f | %.0f of %.0f |",
                    stage.probeCount,
                    stage.probeDimension,
                    stage.centroidMilliseconds,
                    stage.scoringMilliseconds,
                    stage.selectionMilliseconds,
                    stage.totalMilliseconds,
                    stage.indexResidentMegabytes,
                    stage.indexFileMegabytes
                )
            )
        }
    }

    struct GraphCheck: Codable {
        var field: String
        var points: Int
        var m: Int
        var ef: Int
        var recallAt10: Double
        var hnswMillisecondsP50: Double
        var exactMillisecondsP50: Double
    }

    /// Recall@10 of the pooled field's HNSW graph against exact dense search, and both latencies.
    func denseGraphCheck(
        store: CollectionStore,
        queries: [String],
        prepared: PreparedQueries,
        kernel: MaxSimKernel
    )
        throws -> GraphCheck?
    {
        guard let pooled = store.configuration.textDenseField,
            let status = try store.denseIndexStatus(field: pooled.name), status.error == nil
        else { return nil }
        var found = 0
        var total = 0
        var graphTimes: [Double] = []
        var exactTimes: [Double] = []
        for text in queries {
            func run(exact: Bool) throws -> ([PointID], Double) {
                var request = try store.queryRequest(
                    for: TextQuery(text, preset: .dense(rerank: false), limit: 10, withPayload: false)
                )
                request.root.parameters.exact = exact
                let start = DispatchTime.now().uptimeNanoseconds
                let points = try store.query(request, encoder: prepared, kernel: kernel).points
                return (points.map(\.id), milliseconds(since: start))
            }
            let (truth, exactTime) = try run(exact: true)
            let (answer, graphTime) = try run(exact: false)
            found += Set(truth).intersection(answer).count
            total += truth.count
            exactTimes.append(exactTime)
            graphTimes.append(graphTime)
        }
        return GraphCheck(
            field: pooled.name,
            points: status.graphCount,
            m: status.m,
            ef: CollectionStore.defaultHNSWEf,
            recallAt10: total > 0 ? Double(found) / Double(total) : 0,
            hnswMillisecondsP50: percentile(graphTimes, 0.5),
            exactMillisecondsP50: percentile(exactTimes, 0.5)
        )
    }

    struct StageRow: Codable {
        var probeCount: Int
        var probeDimension: Int
        var centroidMilliseconds: Double
        var scoringMilliseconds: Double
        var selectionMilliseconds: Double
        var totalMilliseconds: Double
        var indexResidentMegabytes: Double
        var indexFileMegabytes: Double
    }

    /// The process's resident set size (`VmRSS` in /proc/self/status), or `nil` where there is none.
    static func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.split(separator: " ").compactMap { Int($0) }
            if let kilobytes = digits.first { return kilobytes * 1024 }
        }
        return nil
    }
}
