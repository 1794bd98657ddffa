import ArgumentParser
import Foundation
import Synchronization
import Tessera
import TesseraEncoder
import TesseraQdrant

/// The first stage of `--first-stage`.
enum FirstStage: String, ExpressibleByArgument, CaseIterable {
    case exact, compressed, bm25, dense, hybrid
}

/// `--rerank`.
enum RerankChoice: String, ExpressibleByArgument, CaseIterable {
    case exact, none
}

/// `--fusion`.
enum FusionChoice: String, ExpressibleByArgument, CaseIterable {
    case none, rrf, dbsf
}

/// How `tessera search`, `eval` and `bench search` find results: a preset of the library's query planner, or a
/// query tree from a pipeline file (the same JSON as the server's /points/query).
struct FirstStageOptions: ParsableArguments {
    @Option(
        help: """
            exact (MaxSim over every token), compressed (the compressed multivector index), bm25 (payload title \
            and text), dense (the pooled vector: HNSW graph where built, else exact), or hybrid (BM25 ∪ dense ∪ \
            compressed candidates, reranked by exact MaxSim).
            """
    )
    var firstStage = FirstStage.hybrid

    @Option(help: "After a compressed or dense first stage: exact (rescore candidates by MaxSim) or none.")
    var rerank = RerankChoice.none

    @Option(help: "Candidates each first stage passes to the MaxSim rerank (default 100, at least --limit).")
    var candidates: Int?

    @Option(help: "Hybrid: fuse the MaxSim ranking with the BM25 and dense lists.")
    var fusion = FusionChoice.dbsf

    @Option(help: "Fusion: RRF's k (default 2, Qdrant's; Cormack et al. use 60).")
    var fusionK = Fusion.defaultRankConstant

    @Option(help: "Fusion: weights of the MaxSim, BM25 and dense lists, e.g. '1,0.5,0.5' (default 1 each).")
    var fusionWeights: String?

    @Option(help: "A query tree in the JSON of the server's /points/query; \"$query\" stands for the query text.")
    var pipeline: String?

    @Option(help: "BM25: term-frequency saturation k1 (default 1.2).")
    var k1: Float?

    @Option(help: "BM25: length normalisation b, 0 to 1 (default 0.75).")
    var b: Float?

    @Option(help: "Dense: the HNSW search breadth (default 128).")
    var ef: Int?

    @Option(help: "Compressed: cells probed per query token (default 8 up to 100 candidates, 16 up to 1000, then 32).")
    var nprobe: Int?

    @Option(help: "Compressed: the rank of the centroid whose score is imputed for a missing token (default nprobe).")
    var imputationRank: Int?

    @Option(help: "Compressed: choose cells in this many principal dimensions of the centroids (default: all).")
    var probeDimension: Int?

    func validate() throws {
        if let k1, !(k1 >= 0) { throw ValidationError("--k1 must not be negative") }
        if let b, !(b >= 0 && b <= 1) { throw ValidationError("--b must be between 0 and 1") }
        guard fusionK >= 1 else { throw ValidationError("--fusion-k must be at least 1") }
        if let weights = fusionWeights {
            guard let parsed = parseWeights(weights), (2...3).contains(parsed.count) else {
                throw ValidationError("--fusion-weights takes a number per fused list, e.g. '1,0.5,0.5'")
            }
        }
        if let ef, ef < 1 { throw ValidationError("--ef must be at least 1") }
        if let nprobe, nprobe < 1 { throw ValidationError("--nprobe must be at least 1") }
        if let candidates, candidates < 1 { throw ValidationError("--candidates must be at least 1") }
        if let imputationRank, imputationRank < 0 { throw ValidationError("--imputation-rank must not be negative") }
        if let probeDimension, probeDimension < 1 { throw ValidationError("--probe-dimension must be at least 1") }
    }

    private func parseWeights(_ text: String) -> [Float]? {
        let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return parts.map { $0! }
    }

    /// The library's preset for these options (a pipeline file is read by ``textQuery(_:filter:limit:)``).
    var preset: QueryPreset {
        switch firstStage {
        case .exact: return .exact
        case .bm25: return .bm25
        case .compressed: return .compressed(rerank: rerank == .exact)
        case .dense: return .dense(rerank: rerank == .exact)
        case .hybrid:
            let weights = fusionWeights.flatMap(parseWeights)
            switch fusion {
            case .none: return .hybrid(fusion: nil)
            case .rrf: return .hybrid(fusion: .rrf(k: fusionK, weights: weights))
            case .dbsf: return .hybrid(fusion: .dbsf(weights: weights))
            }
        }
    }

    var presetOptions: PresetOptions {
        var bm25 = BM25Parameters()
        if let k1 { bm25.k1 = k1 }
        if let b { bm25.b = b }
        return PresetOptions(
            candidates: candidates ?? 100,
            bm25: bm25,
            hnswEf: ef,
            probeCount: nprobe,
            imputationRank: imputationRank,
            probeDimension: probeDimension
        )
    }

    /// The text query these options ask for.
    /// - Throws: `ValidationError` for an unreadable pipeline file.
    func textQuery(_ text: String, filter: Filter?, limit: Int) throws -> TextQuery {
        var query = TextQuery(text, preset: preset, options: presetOptions, filter: filter, limit: limit)
        if let pipeline {
            var request = try pipelineRequest(path: pipeline, text: text)
            request.root.limit = limit
            if let own = request.scope {
                query.filter = filter.map { Filter(must: [.filter($0), .filter(own)]) } ?? own
            }
            query.preset = .tree(request.root)
        }
        return query
    }

    /// Reads a pipeline file and puts the query text where it says `$query`.
    func pipelineRequest(path: String, text: String) throws -> QueryRequest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("cannot read --pipeline file \(path)")
        }
        let template = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        func substitute(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string("$query"): return .string(text)
            case .array(let items): return .array(items.map(substitute))
            case .object(let object): return .object(object.mapValues(substitute))
            default: return value
            }
        }
        do {
            var request = try QueryRequest(json: substitute(template))
            // A pipeline's root filter holds at every stage, as the command line's --filter does.
            request.scope = request.root.filter
            return request
        } catch {
            throw CommandError("\(path): \(error)")
        }
    }

    /// A short description for reports.
    func label(limit: Int) -> String {
        if let pipeline { return "pipeline " + (pipeline as NSString).lastPathComponent }
        return preset.summary(options: presetOptions, limit: limit)
    }

    /// Warns on standard error when an index the first stage uses cannot serve.
    func warnIfUnavailable(_ store: CollectionStore) throws {
        guard pipeline == nil else { return }
        let configuration = store.configuration
        if firstStage == .compressed, let tokens = configuration.textTokenField {
            guard let status = try store.compressedIndexStatus(field: tokens.name) else {
                warn("no compressed index; searching exactly (build one: tessera index … --compressed)")
                return
            }
            if let error = status.error { warn("\(error)") }
        }
        if [.dense, .hybrid].contains(firstStage), let pooled = configuration.textDenseField,
            let status = try store.denseIndexStatus(field: pooled.name), let error = status.error
        {
            warn("\(error)")
        }
    }

    private func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }
}

/// Every query of a benchmark encoded up front by the collection's encoders, so that timed searches exclude
/// encoding.
final class PreparedQueries: QueryTextEncoder {
    let catalog: EncoderCatalog
    private let encoded = Mutex<[String: [String: VectorValue]]>([:])

    init(catalog: EncoderCatalog) { self.catalog = catalog }

    /// Encodes `text` for each of `fields`.
    func prepare(_ text: String, fields: [VectorField]) throws {
        for field in fields { _ = try encode(text, for: field) }
    }

    func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        if let known = encoded.withLock({ $0[text]?[field.name] }) { return known }
        let value = try catalog.encode(text, for: field)
        encoded.withLock { $0[text, default: [:]][field.name] = value }
        return value
    }
}
