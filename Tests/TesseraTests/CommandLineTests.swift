import Foundation
import Tessera
import TesseraTestSupport
import Testing

/// The `tessera` binary, the default model and the Cranfield data, when present.
private enum CommandLineFixtures {
    static let tessera = packageExecutable(named: "tessera", environment: "TESSERA_CLI")
    static let model: String? = {
        let path =
            ProcessInfo.processInfo.environment["TESSERA_MODEL"]
            ?? packageRoot.appendingPathComponent("models/all-MiniLM-L6-v2").path
        return FileManager.default.fileExists(atPath: path + "/model.safetensors") ? path : nil
    }()
    /// `TESSERA_IR_DATA/cranfield`, else a `shared/ir-data/cranfield` folder beside the package or above it.
    static let cranfield: String? = {
        var candidates: [String] = []
        if let root = ProcessInfo.processInfo.environment["TESSERA_IR_DATA"] { candidates.append(root + "/cranfield") }
        var directory = packageRoot
        for _ in 0..<4 {
            directory = directory.deletingLastPathComponent()
            candidates.append(directory.appendingPathComponent("shared/ir-data/cranfield").path)
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/corpus.jsonl") }
    }()
    static let samples = packageRoot.appendingPathComponent("Samples").path

    static var ready: Bool {
        if tessera == nil {
            print("CommandLineTests: no tessera binary; build all products (swift build --build-tests)")
        }
        if model == nil { print("CommandLineTests: the model is absent; scripts/fetch-model downloads it") }
        return tessera != nil && model != nil
    }
}

private struct CommandResult {
    var status: Int32
    var standardOutput: String
    var standardError: String

    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(standardOutput.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(standardOutput.prefix(400))")
    }
}

/// Runs the `tessera` binary to completion; output goes through files, so a large output cannot block it.
private func tessera(_ arguments: [String], in directory: String) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try #require(CommandLineFixtures.tessera))
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let outputPath = directory + "/stdout-\(UUID().uuidString)"
    let errorPath = directory + "/stderr-\(UUID().uuidString)"
    try #require(FileManager.default.createFile(atPath: outputPath, contents: nil))
    try #require(FileManager.default.createFile(atPath: errorPath, contents: nil))
    defer {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
    }
    let output = try #require(FileHandle(forWritingAtPath: outputPath))
    let error = try #require(FileHandle(forWritingAtPath: errorPath))
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    try output.close()
    try error.close()
    return CommandResult(
        status: process.terminationStatus,
        standardOutput: String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self),
        standardError: String(decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self)
    )
}

private func succeeded(_ result: CommandResult, _ what: String) -> Bool {
    if result.status != 0 {
        Issue.record("\(what) failed with status \(result.status): \(result.standardError)")
        return false
    }
    return true
}

/// A result's document id as the command line prints it: the payload's `doc_id`.
private func documentID(_ point: ScoredPoint) -> String {
    if case .string(let id)? = point.payload?["doc_id"] { return id }
    return point.id.description
}

private func number(_ object: [String: Any], _ key: String) throws -> Double {
    try #require((object[key] as? NSNumber)?.doubleValue, "no number '\(key)' in \(object)")
}

@Suite("Command line, end to end", .serialized)
struct CommandLineTests {
    @Test(
        "sample passages: index, resume, explained and filtered search, eval",
        .enabled(if: CommandLineFixtures.ready, "needs the tessera binary and the default model")
    )
    func samplePassages() throws {
        let model = try #require(CommandLineFixtures.model)
        try withTemporaryDirectory { root in
            let common = ["--data", root, "--model", model, "--threads", "2"]
            let index = try tessera(["index", "s", "--beir", CommandLineFixtures.samples, "--json"] + common, in: root)
            guard succeeded(index, "index") else { return }
            let summary = try index.json()
            #expect(try number(summary, "documents") == 50)
            #expect(try number(summary, "added") == 50)
            #expect(try number(summary, "unchanged") == 0)
            #expect(try number(summary, "tokens") > 50 * 20)

            // A second run finds every document stored unchanged and encodes nothing.
            let again = try tessera(["index", "s", "--beir", CommandLineFixtures.samples, "--json"] + common, in: root)
            guard succeeded(again, "second index") else { return }
            #expect(try number(again.json(), "documents") == 0)
            #expect(try number(again.json(), "unchanged") == 50)

            // A document whose text changed is encoded again and replaced; a new one is added. Neither run names
            // the model: the collection recorded it.
            let edited = root + "/edited.jsonl"
            try """
            {"id": "volcano-new", "title": "Lava domes", "text": "Viscous lava piles up over a volcanic vent."}
            {"id": "zz-extra", "text": "An unrelated passage about sourdough starters."}

            """.write(toFile: edited, atomically: true, encoding: .utf8)
            let first = try tessera(["index", "s", "--jsonl", edited, "--json", "--data", root], in: root)
            guard succeeded(first, "index of a JSONL file") else { return }
            #expect(try number(first.json(), "added") == 2)
            try """
            {"id": "volcano-new", "title": "Lava domes", "text": "Viscous lava piles up over a vent, then collapses."}
            {"id": "zz-extra", "text": "An unrelated passage about sourdough starters."}

            """.write(toFile: edited, atomically: true, encoding: .utf8)
            let second = try tessera(["index", "s", "--jsonl", edited, "--json", "--data", root], in: root)
            guard succeeded(second, "index of a changed JSONL file") else { return }
            #expect(try number(second.json(), "added") == 0)
            #expect(try number(second.json(), "updated") == 1)
            #expect(try number(second.json(), "unchanged") == 1)
            let found = try tessera(
                [
                    "search", "s", "lava dome collapses", "--first-stage", "bm25", "--limit", "1", "--json", "--data",
                    root,
                ],
                in: root
            )
            guard succeeded(found, "search for the changed text") else { return }
            let top = try #require((found.json()["results"] as? [[String: Any]])?.first)
            #expect(top["id"] as? String == "volcano-new")
            #expect(((top["payload"] as? [String: Any])?["text"] as? String)?.contains("collapses") == true)

            let search = try tessera(
                ["search", "s", "how do volcanoes form", "--explain", "--json"] + common,
                in: root
            )
            guard succeeded(search, "search") else { return }
            let hits = try #require(search.json()["results"] as? [[String: Any]])
            #expect(hits.count == 10)
            let best = try #require(hits.first)
            let payload = try #require(best["payload"] as? [String: Any])
            #expect(payload["topic"] as? String == "geology", "best hit: \(payload["title"] ?? "?")")
            let scores = try hits.map { try number($0, "score") }
            #expect(scores == scores.sorted(by: >))
            // The explanation's contributions (recomputed from the stored vectors) add up to the kernel's score.
            let explanation = try #require(best["explanation"] as? [[String: Any]])
            // The default search fuses MaxSim with BM25 and dense lists; the explanation adds up to the MaxSim score.
            let total = try explanation.map { try number($0, "contribution") }.reduce(0, +)
            let maxSim = try number(best, "maxsimScore")
            #expect(abs(total - maxSim) <= 1e-3 * max(1, abs(maxSim)))
            let stages = try #require(search.json()["stages"] as? [[String: Any]])
            #expect(stages.last?["method"] as? String == "dbsf")
            #expect(stages.contains { $0["method"] as? String == "maxsim rerank" })
            #expect(explanation.allSatisfy { ($0["documentTokenIndex"] as? Int ?? -1) >= 0 })

            // One search path: the command line and the library answer every preset with the same ids and scores.
            let store = try CollectionStore.open(at: root + "/s", access: .readOnly)
            let catalog = EncoderCatalog(defaultModelDirectory: model, threadCount: 2)
            let presets: [([String], QueryPreset)] = [
                (["--first-stage", "exact"], .exact),
                (["--first-stage", "bm25"], .bm25),
                (["--first-stage", "dense"], .dense(rerank: false)),
                (["--first-stage", "dense", "--rerank", "exact"], .dense(rerank: true)),
                (["--first-stage", "compressed"], .compressed(rerank: false)),
                (["--fusion", "none"], .hybrid(fusion: nil)),
                (["--fusion", "rrf"], .hybrid(fusion: .rrf())),
                ([], .default),
            ]
            for (arguments, preset) in presets {
                let text = "how do volcanoes form"
                let cli = try tessera(["search", "s", text, "--json"] + arguments + common, in: root)
                guard succeeded(cli, "search \(arguments)") else { return }
                let answer = try #require(cli.json()["results"] as? [[String: Any]])
                let library = try store.search(TextQuery(text, preset: preset), encoder: catalog).points
                #expect(answer.map { $0["id"] as? String ?? "" } == library.map(documentID), "\(arguments)")
                for (printed, point) in zip(answer, library) {
                    let score = try number(printed, "score")
                    #expect(abs(score - Double(point.score)) <= 1e-4 * max(1, abs(score)), "\(arguments)")
                }
            }

            let filter = #"{"must":[{"key":"topic","match":{"value":"cooking"}}]}"#
            let filtered = try tessera(
                ["search", "s", "how do volcanoes form", "--filter", filter, "--json"] + common,
                in: root
            )
            guard succeeded(filtered, "filtered search") else { return }
            let filteredHits = try #require(filtered.json()["results"] as? [[String: Any]])
            #expect(!filteredHits.isEmpty)
            #expect(filteredHits.allSatisfy { (($0["payload"] as? [String: Any])?["topic"] as? String) == "cooking" })

            let eval = try tessera(["eval", "s", "--beir", CommandLineFixtures.samples, "--json"] + common, in: root)
            guard succeeded(eval, "eval") else { return }
            let report = try eval.json()
            #expect(try number(report, "queries") >= 10)
            #expect(try number(report, "ndcgAt10") >= 0.8, "sample queries should find their passages: \(report)")

            // Every query of a file, written as a TREC run: one line per result, the query's own id first.
            let runFile = root + "/run.trec"
            let batch = try tessera(
                [
                    "search", "s", "--queries", CommandLineFixtures.samples + "/queries.jsonl", "--run", runFile,
                    "--limit", "3",
                ]
                    + common,
                in: root
            )
            guard succeeded(batch, "search --queries") else { return }
            let lines = try String(contentsOfFile: runFile, encoding: .utf8).split(separator: "\n")
            let queryCount = try String(contentsOfFile: CommandLineFixtures.samples + "/queries.jsonl", encoding: .utf8)
                .split(separator: "\n").count
            #expect(lines.count == 3 * queryCount)
            let fields = lines.map { $0.split(separator: " ") }
            #expect(fields.allSatisfy { $0.count == 6 && $0[1] == "Q0" && $0[5] == "tessera" })
            #expect(fields.prefix(3).map { String($0[3]) } == ["1", "2", "3"])

            let version = try tessera(["--version"], in: root)
            #expect(version.status == 0)
            #expect(version.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == TesseraVersion.current)
        }
    }

    @Test(
        "first 200 Cranfield documents: index → search → eval through the binary",
        .enabled(
            if: CommandLineFixtures.ready && CommandLineFixtures.cranfield != nil,
            "needs the tessera binary, the model and ir-data/cranfield (TESSERA_IR_DATA)"
        )
    )
    func cranfieldSlice() throws {
        let model = try #require(CommandLineFixtures.model)
        let source = try #require(CommandLineFixtures.cranfield)
        try withTemporaryDirectory { root in
            // A BEIR folder holding the first 200 documents and the queries judged against them.
            let slice = root + "/cranfield-200"
            try FileManager.default.createDirectory(atPath: slice + "/qrels", withIntermediateDirectories: true)
            let corpusLines = try String(contentsOfFile: source + "/corpus.jsonl", encoding: .utf8)
                .split(separator: "\n").prefix(200)
            let documentIDs = Set(
                try corpusLines.map { line in
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    return try #require(object?["_id"] as? String)
                }
            )
            try (corpusLines.joined(separator: "\n") + "\n").write(
                toFile: slice + "/corpus.jsonl",
                atomically: true,
                encoding: .utf8
            )
            let qrels = try String(contentsOfFile: source + "/qrels/test.tsv", encoding: .utf8).split(separator: "\n")
            let kept = qrels.dropFirst().filter { line in
                let fields = line.split(separator: "\t")
                return fields.count >= 3 && documentIDs.contains(String(fields[1])) && (Int(fields[2]) ?? 0) > 0
            }
            try ([String(qrels[0])] + kept.map(String.init)).joined(separator: "\n")
                .appending("\n").write(toFile: slice + "/qrels/test.tsv", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: source + "/queries.jsonl", toPath: slice + "/queries.jsonl")
            let judgedQueries = Set(kept.map { $0.split(separator: "\t")[0] }).count

            let common = ["--data", root, "--model", model, "--threads", "2"]
            let index = try tessera(["index", "cran", "--beir", slice, "--json"] + common, in: root)
            guard succeeded(index, "index") else { return }
            #expect(try number(index.json(), "documents") == 200)

            let search = try tessera(
                ["search", "cran", "boundary layer flow over a flat plate", "--limit", "5", "--json"] + common,
                in: root
            )
            guard succeeded(search, "search") else { return }
            let hits = try #require(search.json()["results"] as? [[String: Any]])
            #expect(hits.count == 5)
            #expect(hits.allSatisfy { documentIDs.contains($0["id"] as? String ?? "") })

            let eval = try tessera(
                ["eval", "cran", "--beir", slice, "--first-stage", "exact", "--json"] + common,
                in: root
            )
            guard succeeded(eval, "eval") else { return }
            let report = try eval.json()
            #expect(try number(report, "queries") == Double(judgedQueries))
            #expect(try number(report, "points") == 200)
            let ndcg = try number(report, "ndcgAt10")
            let recall = try number(report, "recallAt100")
            print("Cranfield slice: \(judgedQueries) queries, nDCG@10 \(ndcg), Recall@100 \(recall)")
            // The full collection scores 0.383; on 200 documents fewer distractors compete. A broken encoder or
            // kernel lands near random ranking (below 0.1).
            #expect(ndcg >= 0.4)
            #expect(recall >= 0.8)

            // The compressed index: built on the stored vectors, reported by info, used by eval alone and
            // followed by an exact rerank.
            let build = try tessera(["index", "cran", "--beir", slice, "--compressed", "--json"] + common, in: root)
            guard succeeded(build, "compressed build") else { return }
            let compressed = try #require(build.json()["compressed"] as? [String: Any])
            #expect(try number(compressed, "tokens") == number(index.json(), "tokens"))
            #expect(try number(compressed, "bytesPerToken") < 384 * 4 / 8, "at most an eighth of the f32 vectors")
            let info = try tessera(["info", "cran"] + common, in: root)
            guard succeeded(info, "info") else { return }
            #expect(info.standardOutput.contains("compressed"), "\(info.standardOutput)")
            let alone = try tessera(
                ["eval", "cran", "--beir", slice, "--first-stage", "compressed", "--rerank", "none", "--json"] + common,
                in: root
            )
            guard succeeded(alone, "compressed eval") else { return }
            let aloneNDCG = try number(alone.json(), "ndcgAt10")
            let reranked = try tessera(
                ["eval", "cran", "--beir", slice, "--first-stage", "compressed", "--rerank", "exact", "--json"]
                    + common,
                in: root
            )
            guard succeeded(reranked, "reranked eval") else { return }
            let rerankedNDCG = try number(reranked.json(), "ndcgAt10")
            print("Cranfield slice, compressed: alone nDCG@10 \(aloneNDCG), reranked \(rerankedNDCG)")
            #expect(aloneNDCG >= ndcg - 0.05)
            #expect(abs(rerankedNDCG - ndcg) <= 0.01)

            // The HNSW graph of the pooled vectors, dense search, the hybrid default and a pipeline file.
            // Building an index needs neither the corpus nor --model again: the collection recorded its model.
            let graph = try tessera(["index", "cran", "--hnsw", "--json", "--data", root, "--threads", "2"], in: root)
            guard succeeded(graph, "hnsw build") else { return }
            let hnsw = try #require(graph.json()["hnsw"] as? [String: Any])
            #expect(try number(hnsw, "points") == 200)
            let dense = try tessera(
                ["eval", "cran", "--beir", slice, "--first-stage", "dense", "--json"] + common,
                in: root
            )
            guard succeeded(dense, "dense eval") else { return }
            let denseNDCG = try number(dense.json(), "ndcgAt10")
            let hybrid = try tessera(["eval", "cran", "--beir", slice, "--json"] + common, in: root)
            guard succeeded(hybrid, "hybrid eval") else { return }
            let hybridNDCG = try number(hybrid.json(), "ndcgAt10")
            let pipelineFile = root + "/pipeline.json"
            try #"""
            {"prefetch": [{"query": {"text": "$query"}, "using": "pooled", "limit": 100}],
             "query": {"text": "$query"}, "using": "tokens", "limit": 100}
            """#.write(toFile: pipelineFile, atomically: true, encoding: .utf8)
            let piped = try tessera(
                ["eval", "cran", "--beir", slice, "--pipeline", pipelineFile, "--json"] + common,
                in: root
            )
            guard succeeded(piped, "pipeline eval") else { return }
            let pipedNDCG = try number(piped.json(), "ndcgAt10")
            let same = try tessera(
                [
                    "eval", "cran", "--beir", slice, "--first-stage", "dense", "--rerank", "exact", "--candidates",
                    "50",
                    "--json",
                ] + common,
                in: root
            )
            guard succeeded(same, "dense + rerank eval") else { return }
            print("Cranfield slice: dense \(denseNDCG), hybrid \(hybridNDCG), dense → MaxSim pipeline \(pipedNDCG)")
            // The pipeline file and the equivalent options build the same tree.
            #expect(try number(same.json(), "ndcgAt10") == pipedNDCG)
            #expect(denseNDCG >= 0.3)
            // Fusing MaxSim with BM25 and dense evidence does not lose to MaxSim alone here.
            #expect(hybridNDCG >= ndcg - 0.02)
        }
    }

    @Test(
        "a malformed JSONL line stops the run with its line number and stores nothing from the file",
        .enabled(if: CommandLineFixtures.ready, "needs the tessera binary and the default model")
    )
    func malformedLine() throws {
        let model = try #require(CommandLineFixtures.model)
        try withTemporaryDirectory { root in
            let common = ["--data", root, "--model", model, "--threads", "2"]
            let good = root + "/good.jsonl"
            try """
            {"id": 1, "title": "Tides", "text": "The moon's gravity raises two bulges in the oceans."}
            {"id": "doc-2", "text": "Sourdough rises with wild yeast and lactic acid bacteria.", "payload": {"lang": "en"}}

            """.write(toFile: good, atomically: true, encoding: .utf8)
            let first = try tessera(["index", "c", "--jsonl", good, "--json"] + common, in: root)
            guard succeeded(first, "index") else { return }
            #expect(try number(first.json(), "documents") == 2)

            let bad = root + "/bad.jsonl"
            try """
            {"id": 3, "text": "A third document that must not be stored."}
            {"id": 4, "text": "Another one."}
            {"id": 5, "text": "broken
            """.write(toFile: bad, atomically: true, encoding: .utf8)
            let failed = try tessera(["index", "c", "--jsonl", bad] + common, in: root)
            #expect(failed.status != 0)
            #expect(failed.standardError.contains("bad.jsonl:3"), "error: \(failed.standardError)")

            let info = try tessera(["info", "c", "--data", root], in: root)
            guard succeeded(info, "info") else { return }
            #expect(info.standardOutput.contains("points      2"), "info: \(info.standardOutput)")

            let unknown = try tessera(["search", "nowhere", "anything"] + common, in: root)
            #expect(unknown.status != 0)
            #expect(unknown.standardError.contains("nowhere"), "error: \(unknown.standardError)")
        }
    }

    @Test(
        "index-payload declares payload indexes (a scored text one too) that info lists and --delete removes; a bad type names the field",
        .enabled(if: CommandLineFixtures.ready, "needs the tessera binary and the default model")
    )
    func indexPayload() throws {
        let model = try #require(CommandLineFixtures.model)
        try withTemporaryDirectory { root in
            let common = ["--data", root, "--model", model, "--threads", "2"]
            let file = root + "/docs.jsonl"
            try """
            {"id": 1, "text": "The moon's gravity raises two bulges in the oceans.", "payload": {"lang": "fr", "title": "Tides"}}
            {"id": 2, "text": "Sourdough rises with wild yeast and lactic acid bacteria.", "payload": {"lang": "en"}}

            """.write(toFile: file, atomically: true, encoding: .utf8)
            guard succeeded(try tessera(["index", "c", "--jsonl", file] + common, in: root), "index") else { return }
            let created = try tessera(["index-payload", "c", "lang", "keyword", "--data", root], in: root)
            guard succeeded(created, "index-payload") else { return }
            #expect(created.standardOutput.contains("indexed 'lang' as keyword"), "\(created.standardOutput)")
            let info = try tessera(["info", "c", "--data", root], in: root)
            guard succeeded(info, "info") else { return }
            #expect(info.standardOutput.contains("payload index 'lang': keyword, 2 points"), "\(info.standardOutput)")
            let refused = try tessera(["index-payload", "c", "title", "geo", "--data", root], in: root)
            #expect(refused.status != 0)
            #expect(refused.standardError.contains("'title'"), "\(refused.standardError)")
            let text = try tessera(["index-payload", "c", "title", "text", "--scoring", "--data", root], in: root)
            guard succeeded(text, "index-payload text --scoring") else { return }
            #expect(text.standardOutput.contains("indexed 'title' as text_bm25"), "\(text.standardOutput)")
            let scored = try tessera(["info", "c", "--data", root], in: root)
            #expect(
                scored.standardOutput.contains("payload index 'title': text_bm25, 1 points"),
                "\(scored.standardOutput)"
            )
            guard
                succeeded(try tessera(["index-payload", "c", "title", "--delete", "--data", root], in: root), "delete")
            else { return }
            let removed = try tessera(["index-payload", "c", "lang", "--delete", "--data", root], in: root)
            guard succeeded(removed, "index-payload --delete") else { return }
            #expect(removed.standardOutput.contains("removed the payload index on 'lang'"))
            let after = try tessera(["info", "c", "--data", root], in: root)
            #expect(!after.standardOutput.contains("payload index"), "\(after.standardOutput)")
        }
    }

    @Test(
        "import creates a collection from .npy files, refuses a bad row naming it and storing nothing, resumes to done",
        .enabled(if: CommandLineFixtures.tessera != nil, "needs the tessera binary")
    )
    func importVectors() throws {
        try withTemporaryDirectory { root in
            var values: [Double] = []
            var offsets: [Double] = [0]
            var pooled: [Double] = []
            for point in 0..<50 {
                let count = 1 + point % 4
                for token in 0..<count { values += (0..<16).map { Double(($0 + token + point) % 7) - 3 } }
                offsets.append(offsets.last! + Double(count))
                pooled += (0..<8).map { Double(($0 * point) % 5) + 0.5 }
            }
            let tokens = Int(offsets.last!)
            func write(_ bytes: [UInt8], _ name: String) throws -> String {
                try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + name))
                return root + "/" + name
            }
            let vectorFile = try write(NpyWriter.encode(values, shape: [tokens, 16], dataType: .float16), "v.npy")
            let offsetFile = try write(NpyWriter.encode(offsets, shape: [51], dataType: .int64), "o.npy")
            let pooledFile = try write(NpyWriter.encode(pooled, shape: [50, 8], dataType: .float32), "p.npy")
            let ids = try write(Array((0..<50).map { "\($0 + 1000)\n" }.joined().utf8), "ids.txt")
            let payload = try write(Array((0..<50).map { "{\"n\": \($0)}\n" }.joined().utf8), "payload.jsonl")
            var bad = values
            bad[16 * 9 + 3] = .infinity
            let badFile = try write(NpyWriter.encode(bad, shape: [tokens, 16], dataType: .float32), "bad.npy")
            let common = ["--data", root, "--ids", ids, "--payload", payload, "--offsets", "tokens=" + offsetFile]
            let refused = try tessera(
                ["import", "c", "--vectors", "tokens=" + badFile, "--vectors", "pooled=" + pooledFile] + common,
                in: root
            )
            #expect(refused.status != 0)
            #expect(refused.standardError.contains("bad.npy row 9, component 3"), "\(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: root + "/c"), "a refused import left a collection")
            let arguments = ["import", "c", "--vectors", "tokens=" + vectorFile, "--vectors", "pooled=" + pooledFile]
            let imported = try tessera(arguments + common + ["--json", "--segment-mib", "1"], in: root)
            guard succeeded(imported, "import") else { return }
            #expect(try number(imported.json(), "written") == 50)
            let again = try tessera(arguments + common, in: root)
            guard succeeded(again, "import again") else { return }
            #expect(again.standardOutput.contains("already imported"), "\(again.standardOutput)")
            let info = try tessera(["info", "c", "--data", root], in: root)
            guard succeeded(info, "info") else { return }
            #expect(info.standardOutput.contains("points      50"), "info: \(info.standardOutput)")
            let store = try CollectionStore.open(at: root + "/c", access: .readOnly)
            #expect(store.configuration.fields.map(\.name) == ["tokens", "pooled"])
            #expect(store.configuration.fields.map(\.elementType) == [.float16, .float32])
            let record = try #require(try store.get(ids: [.integer(1003)], withVectors: true).first)
            #expect(record.payload?["n"] == .integer(3))
            #expect(record.vectors?["tokens"]?.flattened.tokenCount == 4)
        }
    }
}

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends a JSON body to a server on loopback and returns the parsed reply.
private func request(_ method: String, _ url: String, _ body: String? = nil) async throws -> [String: Any] {
    var request = URLRequest(url: try #require(URL(string: url)))
    request.httpMethod = method
    request.timeoutInterval = 60
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, _) = try await URLSession.shared.data(for: request)
    return try #require(
        try JSONSerialization.jsonObject(with: data) as? [String: Any],
        "\(String(decoding: data, as: UTF8.self))"
    )
}

@Suite("Command line and server: one kind of collection", .serialized)
struct CommandLineAndServerTests {
    @Test(
        "a collection made over REST is searched by the command line, one indexed by it is searched over REST; list and delete",
        .enabled(if: CommandLineFixtures.ready, "needs the tessera binary and the default model")
    )
    func restAndCommandLine() async throws {
        let model = try #require(CommandLineFixtures.model)
        let binary = try #require(CommandLineFixtures.tessera)
        try await withTemporaryDirectoryAsync { root in
            let data = root + "/served"
            let index = try tessera(
                [
                    "index", "cli", "--beir", CommandLineFixtures.samples, "--data", data, "--model", model,
                    "--threads", "2",
                ],
                in: root
            )
            guard succeeded(index, "index") else { return }

            let server = Process()
            server.executableURL = URL(fileURLWithPath: binary)
            server.arguments = ["serve", "--data", data, "--port", "0", "--model", model, "--threads", "2"]
            let log = root + "/server.log"
            try #require(FileManager.default.createFile(atPath: log, contents: nil))
            let logHandle = try #require(FileHandle(forWritingAtPath: log))
            server.standardOutput = logHandle
            server.standardError = logHandle
            try server.run()
            defer {
                if server.isRunning {
                    server.terminate()
                    server.waitUntilExit()
                }
            }
            var port: String?
            for _ in 0..<300 where port == nil {
                try await Task.sleep(for: .milliseconds(100))
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on 127.0.0.1:") }) {
                    port = String(line.split(separator: ":").last!)
                }
            }
            let base = "http://127.0.0.1:\(try #require(port, "the server did not start"))"

            // Over REST: a collection with the server's model encoding the documents' text.
            _ = try await request(
                "PUT",
                base + "/collections/rest",
                #"{"vectors": {"colbert": {"size": 384, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}}}"#
            )
            let texts = [
                "volcanoes erupt when magma rises through the crust", "a sourdough loaf rises with wild yeast",
                "the event horizon of a black hole traps light",
            ]
            let points = texts.enumerated().map { index, text in
                #"{"id": \#(index + 1), "payload": {"text": "\#(text)"}, "vector": {"colbert": {"text": "\#(text)"}}}"#
            }
            let upsert = try await request(
                "PUT",
                base + "/collections/rest/points?wait=true",
                #"{"points": [\#(points.joined(separator: ","))]}"#
            )
            #expect(upsert["status"] as? String == "ok", "\(upsert)")

            // The command line searches it beside the server: its field is found from the configuration.
            let search = try tessera(
                [
                    "search", "rest", "how do volcanoes form", "--first-stage", "exact", "--json", "--data", data,
                    "--model", model,
                ],
                in: root
            )
            guard succeeded(search, "search of a REST collection") else { return }
            let hits = try #require(search.json()["results"] as? [[String: Any]])
            #expect(hits.first?["id"] as? String == "1", "\(hits)")

            // Over REST: the collection the command line indexed, through a preset and through a query tree.
            let text = try await request(
                "POST",
                base + "/collections/cli/points/search/text",
                #"{"text": "how do volcanoes form", "limit": 1}"#
            )
            let found = try #require((text["result"] as? [String: Any])?["points"] as? [[String: Any]])
            #expect(((found.first?["payload"] as? [String: Any])?["topic"] as? String) == "geology", "\(text)")
            let tree = try await request(
                "POST",
                base + "/collections/cli/points/query",
                #"{"query": {"text": "how do volcanoes form"}, "using": "tokens", "limit": 1, "with_payload": true}"#
            )
            let treeHits = try #require((tree["result"] as? [String: Any])?["points"] as? [[String: Any]])
            #expect(((treeHits.first?["payload"] as? [String: Any])?["topic"] as? String) == "geology", "\(tree)")

            server.terminate()
            server.waitUntilExit()

            let list = try tessera(["list", "--data", data, "--json"], in: root)
            guard succeeded(list, "list") else { return }
            let listed = try #require(
                try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [[String: Any]]
            )
            #expect(listed.map { $0["name"] as? String ?? "" } == ["cli", "rest"])
            #expect(listed.last?["points"] as? Int == 3)
            let removed = try tessera(["delete", "rest", "--ids", "1,2", "--data", data], in: root)
            guard succeeded(removed, "delete --ids") else { return }
            #expect(removed.standardOutput.contains("deleted 2 points"), "\(removed.standardOutput)")
            let gone = try tessera(["delete", "rest", "--data", data], in: root)
            guard succeeded(gone, "delete") else { return }
            let after = try tessera(["list", "--data", data], in: root)
            #expect(
                after.standardOutput.contains("cli") && !after.standardOutput.contains("rest"),
                "\(after.standardOutput)"
            )
            let missing = try tessera(["delete", "rest", "--data", data], in: root)
            #expect(missing.status != 0)
            #expect(missing.standardError.contains("no collection 'rest'"), "\(missing.standardError)")
        }
    }
}
