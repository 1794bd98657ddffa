import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import TesseraIndex

/// `tessera search`: one query against a collection, optionally explained token by token.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Searches a collection with a text query through the query pipeline (hybrid by default).",
        discussion: """
            --explain shows, for each query token, the document token it matched (from the kernel's argmax) and \
            its contribution q·d to the score; the contributions add up to the score.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Argument(help: "The query text.")
    var query: String?

    @Option(
        help: """
            Search every query of a file instead (one per line, or BEIR's queries.jsonl) and write a TREC run \
            (query id, Q0, document id, rank, score, tag) to standard output or --run.
            """
    )
    var queries: String?

    @Option(name: .customLong("run"), help: "With --queries: the run file to write (default: standard output).")
    var runFile: String?

    @Option(help: "How many results.")
    var limit = 10

    @Option(help: "Best results to skip.")
    var offset = 0

    @Option(
        help:
            "A payload filter in Qdrant's JSON shape, e.g. '{\"must\":[{\"key\":\"lang\",\"match\":{\"value\":\"en\"}}]}'."
    )
    var filter: String?

    @Option(help: "Drop results scoring below this.")
    var scoreThreshold: Float?

    @Flag(help: "Explain each result: the document token each query token matched.")
    var explain = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var firstStage: FirstStageOptions

    func validate() throws {
        guard (query == nil) != (queries == nil) else { throw ValidationError("give a query text or --queries FILE") }
        if runFile != nil, queries == nil { throw ValidationError("--run goes with --queries") }
    }

    func run() async throws {
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        try firstStage.warnIfUnavailable(store)
        let catalog = encoderCatalog(options)
        if let queries {
            try writeRun(queries: try Self.readQueries(queries), store: store, catalog: catalog)
            return
        }
        let query = query!
        let tokenField = store.configuration.textTokenField
        var textQuery = try firstStage.textQuery(query, filter: try filter.map { try Filter(json: $0) }, limit: limit)
        textQuery.offset = offset
        textQuery.scoreThreshold = scoreThreshold
        textQuery.explain = explain
        let encodeStart = DispatchTime.now().uptimeNanoseconds
        // Encoded here to time it apart from the search, which reuses the encoding.
        let needsEncoder = firstStage.pipeline != nil || firstStage.firstStage != .bm25 || explain
        let encoded = try tokenField.flatMap { needsEncoder ? try catalog.encodeQuery(query, for: $0) : nil }
        let encodeMilliseconds = milliseconds(since: encodeStart)
        let searchStart = DispatchTime.now().uptimeNanoseconds
        let kernel = MaxSimKernel(threadCount: options.threads)
        let response = try store.search(textQuery, encoder: catalog, kernel: kernel)
        let results = response.points
        let maxSimScores = response.maxSimScores
        let searchMilliseconds = milliseconds(since: searchStart)
        var explanations: [[TokenMatch]] = []
        if explain, let tokenField, let encoded {
            let encoder = try catalog.tokenEncoder(for: tokenField)
            explanations = try results.map {
                try explainResult($0, query: encoded, store: store, field: tokenField.name, encoder: encoder)
            }
        }
        let scoreName = Self.scoreName(response.scoreMethod)
        if json {
            try printJSON(
                results,
                maxSimScores: maxSimScores,
                explanations: explanations,
                stages: response.stages,
                scoreName: scoreName,
                encode: encodeMilliseconds,
                search: searchMilliseconds
            )
            return
        }
        print(
            String(
                format:
                    "%d results for \"%@\" (query: %d tokens, encoded in %.1f ms, searched in %.1f ms); scores: %@\n",
                results.count,
                query,
                encoded?.tokenCount ?? 0,
                encodeMilliseconds,
                searchMilliseconds,
                scoreName
            )
        )
        for (rank, result) in results.enumerated() {
            let title = result.payload?["title"].flatMap(stringValue) ?? ""
            let text = result.payload?["text"].flatMap(stringValue) ?? ""
            var line = String(format: "%2d. %-12@ %8.4f", rank + 1 + offset, documentID(of: result), result.score)
            if explain, let maxSim = maxSimScores[rank], maxSim != result.score {
                line += String(format: " (MaxSim %.4f)", maxSim)
            }
            print(line + "  " + title)
            if !text.isEmpty { print("    " + snippet(text, length: 160)) }
            if explain {
                for match in explanations[rank] {
                    let line = String(
                        format: "      %-14@ → %-16@ %+.4f",
                        match.queryToken,
                        match.documentToken,
                        match.contribution
                    )
                    // Special tokens and markers have no place in the text.
                    print(match.context.isEmpty ? line : line + "  …" + match.context + "…")
                }
                let total = explanations[rank].reduce(0) { $0 + $1.contribution }
                let maxSim = maxSimScores[rank] ?? result.score
                print(
                    maxSim == result.score
                        ? String(format: "      sum of contributions %.4f (score %.4f)\n", total, result.score)
                        : String(format: "      sum of contributions %.4f (MaxSim score %.4f)\n", total, maxSim)
                )
            }
        }
    }

    struct TokenMatch: Codable {
        var queryToken: String
        var documentToken: String
        var documentTokenIndex: Int
        var contribution: Float
        var context: String
    }

    /// Pairs each query token with its matched document token: the token strings come from re-tokenizing the
    /// stored text with the collection's encoder (the same tokens the stored vectors came from), the
    /// contribution from the stored vectors.
    func explainResult(
        _ result: ScoredPoint,
        query: EncodedText,
        store: CollectionStore,
        field: String,
        encoder: TokenEncoder
    ) throws -> [TokenMatch] {
        guard let matches = result.matchedTokens else { return [] }
        let title = result.payload?["title"].flatMap(stringValue) ?? ""
        let text = result.payload?["text"].flatMap(stringValue) ?? ""
        let fullText = title.isEmpty ? text : title + " " + text
        let document = try encoder.documentTokens(fullText)
        let record = try store.get(ids: [result.id], withPayload: false, withVectors: true).first
        var documentVectors: [Float] = []
        if case .flat(let values, _)? = record?.vectors?[field] { documentVectors = values }
        if case .multivector(let rows)? = record?.vectors?[field] { documentVectors = rows.flatMap { $0 } }
        let dimension = query.dimension
        let bytes = Array(fullText.utf8)
        var output: [TokenMatch] = []
        for (queryIndex, match) in matches.enumerated() {
            let j = Int(match)
            var contribution: Float = 0
            if j >= 0, (j + 1) * dimension <= documentVectors.count {
                for k in 0..<dimension {
                    contribution += query.vectors[queryIndex * dimension + k] * documentVectors[j * dimension + k]
                }
            }
            let documentToken = j >= 0 && j < document.tokens.count ? document.tokens[j] : "∅"
            var context = ""
            if j >= 0, j < document.offsets.count, let range = document.offsets[j] {
                let lower = max(0, range.lowerBound - 24)
                let upper = min(bytes.count, range.upperBound + 24)
                context =
                    String(decoding: bytes[lower..<range.lowerBound], as: UTF8.self) + "["
                    + String(decoding: bytes[range], as: UTF8.self) + "]"
                    + String(decoding: bytes[range.upperBound..<upper], as: UTF8.self)
                context = context.replacingOccurrences(of: "\n", with: " ")
            }
            output.append(
                TokenMatch(
                    queryToken: query.tokens[queryIndex],
                    documentToken: documentToken,
                    documentTokenIndex: j,
                    contribution: contribution,
                    context: context
                )
            )
        }
        return output
    }

    func printJSON(
        _ results: [ScoredPoint],
        maxSimScores: [Float?],
        explanations: [[TokenMatch]],
        stages: [QueryStage],
        scoreName: String,
        encode: Double,
        search: Double
    ) throws {
        struct Stage: Codable {
            var path: String
            var sharedWith: [String]
            var method: String
            var candidates: Int
            var results: Int
            var milliseconds: Double
        }
        struct Hit: Codable {
            var id: String
            var score: Float
            var maxsimScore: Float?
            var payload: JSONObject?
            var explanation: [TokenMatch]?
        }
        struct Output: Codable {
            var query: String
            var scores: String
            var encodeMilliseconds: Double
            var searchMilliseconds: Double
            var stages: [Stage]
            var results: [Hit]
        }
        let hits = results.enumerated().map { index, result in
            Hit(
                id: documentID(of: result),
                score: result.score,
                maxsimScore: maxSimScores[index],
                payload: result.payload,
                explanation: explanations.isEmpty ? nil : explanations[index]
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let output = Output(
            query: query ?? "",
            scores: scoreName,
            encodeMilliseconds: encode,
            searchMilliseconds: search,
            stages: stages.map {
                Stage(
                    path: $0.path,
                    sharedWith: $0.sharedWith,
                    method: $0.method.rawValue,
                    candidates: $0.candidateCount,
                    results: $0.resultCount,
                    milliseconds: $0.milliseconds
                )
            },
            results: hits
        )
        print(String(decoding: try encoder.encode(output), as: UTF8.self))
    }
}

extension SearchCommand {
    /// The queries of a file: BEIR's JSONL (`_id`, `text`), or one per line (ids are line numbers).
    static func readQueries(_ path: String) throws -> [(id: String, text: String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("cannot read --queries file \(path)")
        }
        var queries: [(id: String, text: String)] = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let isJSONL = lines.first { !$0.isEmpty }?.first == UInt8(ascii: "{")
        for (index, line) in lines.enumerated() {
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { continue }
            guard isJSONL else {
                queries.append((String(index + 1), text))
                continue
            }
            let object = try jsonLine(line, path: path, lineNumber: index + 1)
            guard case .string(let id)? = object["_id"] ?? object["id"], case .string(let query)? = object["text"]
            else {
                throw CommandError("\(path):\(index + 1): a query needs string fields '_id' and 'text'")
            }
            queries.append((id, query))
        }
        guard !queries.isEmpty else { throw CommandError("\(path) holds no queries") }
        return queries
    }

    /// Searches every query and writes the TREC run.
    func writeRun(queries: [(id: String, text: String)], store: CollectionStore, catalog: EncoderCatalog) throws {
        let kernel = MaxSimKernel(threadCount: options.threads)
        var output = ""
        let filter = try filter.map { try Filter(json: $0) }
        for query in queries {
            var textQuery = try firstStage.textQuery(query.text, filter: filter, limit: limit)
            textQuery.offset = offset
            textQuery.scoreThreshold = scoreThreshold
            textQuery.withPayload = true
            let points = try store.search(textQuery, encoder: catalog, kernel: kernel).points
            for (rank, point) in points.enumerated() {
                output += "\(query.id) Q0 \(documentID(of: point)) \(rank + 1 + offset) \(point.score) tessera\n"
            }
        }
        if let runFile {
            guard FileManager.default.createFile(atPath: runFile, contents: Data(output.utf8)) else {
                throw CommandError("cannot write --run file \(runFile)")
            }
        } else {
            print(output, terminator: "")
        }
    }

    /// What the printed scores are, from the method of the query's last stage.
    static func scoreName(_ method: StageMethod?) -> String {
        switch method {
        case .maxsim?, .maxsimRerank?: return "MaxSim"
        case .compressed?: return "MaxSim estimated by the compressed index"
        case .rrf?: return "fused (rrf)"
        case .dbsf?: return "fused (dbsf)"
        case .bm25?, .bm25Rerank?: return "BM25"
        case .hnsw?, .dense?, .denseRerank?: return "dense"
        case .sparse?, .sparseRerank?: return "sparse dot product"
        case .recommend?: return "recommendation"
        case .discover?: return "discovery"
        case .context?: return "context"
        case .passthrough?, .idOrder?, .orderBy?, .sample?, nil: return "none"
        }
    }
}

func stringValue(_ value: JSONValue) -> String? {
    if case .string(let string) = value { return string }
    return nil
}

func snippet(_ text: String, length: Int) -> String {
    let flat = text.replacingOccurrences(of: "\n", with: " ")
    return flat.count <= length ? flat : String(flat.prefix(length)) + "…"
}
