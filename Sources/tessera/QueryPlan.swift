import ArgumentParser
import Foundation
import MaxSim
import Synchronization
import Tessera
import TesseraEncoder
import TesseraIndex
import TesseraQdrant
import TesseraServer

/// The name of the pooled dense field that `tessera index` creates.
let pooledField = "pooled"

/// How `tessera search` and `tessera eval` find results: each choice is a query tree run by the collection's one
/// query pipeline (the same one the server runs for `/points/query`).
struct FirstStageOptions: ParsableArguments {
    @Option(
        help: """
            exact (MaxSim over every token), compressed (the compressed multivector index), bm25 (payload title \
            and text), dense (the pooled vector: HNSW graph where built, else exact), or hybrid (BM25 ∪ dense ∪ \
            compressed candidates, reranked by exact MaxSim). Default: hybrid.
            """
    )
    var firstStage = "hybrid"

    @Option(help: "After a compressed or dense first stage: exact (rescore candidates by MaxSim) or none.")
    var rerank = "none"

    @Option(help: "Candidates each first stage passes to the MaxSim rerank (default 100, at least --limit).")
    var candidates: Int?

    @Option(help: "Hybrid: fuse the MaxSim ranking with the BM25 and dense lists: none, rrf or dbsf (default dbsf).")
    var fusion = "dbsf"

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

    static let stages = ["exact", "compressed", "bm25", "dense", "hybrid"]

    func validate() throws {
        guard Self.stages.contains(firstStage) else {
            throw ValidationError("--first-stage is " + Self.stages.joined(separator: ", "))
        }
        if let k1, !(k1 >= 0) { throw ValidationError("--k1 must not be negative") }
        if let b, !(b >= 0 && b <= 1) { throw ValidationError("--b must be between 0 and 1") }
        guard ["exact", "none"].contains(rerank) else { throw ValidationError("--rerank is exact or none") }
        guard ["none", "rrf", "dbsf"].contains(fusion) else { throw ValidationError("--fusion is none, rrf or dbsf") }
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

    var bm25Parameters: BM25Parameters {
        var parameters = BM25Parameters()
        if let k1 { parameters.k1 = k1 }
        if let b { parameters.b = b }
        return parameters
    }

    /// The candidate count for a request of `limit` results.
    func candidateCount(limit: Int) -> Int { max(limit, candidates ?? 100) }

    private func parameters(exact: Bool = false, candidates: Int) -> QueryParameters {
        var compressed: CompressedSearchParameters?
        if nprobe != nil || imputationRank != nil || probeDimension != nil {
            var settings = CompressedSearchParameters.defaults(limit: candidates)
            if let nprobe { settings.probeCount = nprobe }
            settings.imputationRank = imputationRank
            settings.probeDimension = probeDimension
            compressed = settings
        }
        return QueryParameters(exact: exact, hnswEf: ef, compressed: compressed, bm25: bm25Parameters)
    }

    /// The query tree for one query text.
    /// - Parameters:
    ///   - text: The query text (encoded by the pipeline's encoder for vector fields).
    ///   - store: The collection (whether it has a compressed index decides the hybrid's third list).
    ///   - filter: A payload filter for the whole tree.
    ///   - limit: Results.
    /// - Returns: The root node.
    /// - Throws: `ValidationError` for an unreadable pipeline file; `TesseraError` from the collection.
    func root(text: String, store: CollectionStore, filter: Filter?, limit: Int) throws -> QueryNode {
        var node = try tree(text: text, store: store, filter: filter, limit: limit)
        if let filter { Self.apply(filter, to: &node) }
        return node
    }

    /// Puts a filter on every node of a tree (a node's filter does not reach its children), so that it holds at
    /// every stage.
    static func apply(_ filter: Filter, to node: inout QueryNode) {
        node.filter = node.filter.map { Filter(must: [.filter($0), .filter(filter)]) } ?? filter
        for index in node.prefetch.indices { apply(filter, to: &node.prefetch[index]) }
    }

    private func tree(text: String, store: CollectionStore, filter: Filter?, limit: Int) throws -> QueryNode {
        if let pipeline {
            var request = try pipelineRequest(path: pipeline, text: text)
            request.root.limit = limit
            if let filter {
                request.root.filter = Filter(
                    must: [.filter(filter)] + (request.root.filter.map { [.filter($0)] } ?? [])
                )
            }
            return request.root
        }
        let pool = candidateCount(limit: limit)
        let tokens = QueryInput.text(text)
        switch firstStage {
        case "exact":
            return QueryNode(
                query: tokens,
                using: tokensField,
                filter: filter,
                limit: limit,
                parameters: parameters(exact: true, candidates: limit)
            )
        case "bm25":
            return QueryNode(
                query: .text(text),
                filter: filter,
                limit: limit,
                parameters: parameters(candidates: limit)
            )
        case "compressed":
            guard rerank == "exact" else {
                return QueryNode(
                    query: tokens,
                    using: tokensField,
                    filter: filter,
                    limit: limit,
                    parameters: parameters(candidates: limit)
                )
            }
            return QueryNode(
                query: tokens,
                using: tokensField,
                filter: filter,
                limit: limit,
                prefetch: [
                    QueryNode(query: tokens, using: tokensField, limit: pool, parameters: parameters(candidates: pool))
                ]
            )
        case "dense":
            let dense = QueryNode(
                query: .text(text),
                using: pooledField,
                limit: rerank == "exact" ? pool : limit,
                parameters: parameters(candidates: pool)
            )
            guard rerank == "exact" else {
                var leaf = dense
                leaf.filter = filter
                return leaf
            }
            return QueryNode(query: tokens, using: tokensField, filter: filter, limit: limit, prefetch: [dense])
        default:
            let bm25 = QueryNode(query: .text(text), limit: pool, parameters: parameters(candidates: pool))
            var firstStages = [bm25]
            let dense = QueryNode(
                query: .text(text),
                using: pooledField,
                limit: pool,
                parameters: parameters(candidates: pool)
            )
            let hasDense = store.configuration.field(named: pooledField) != nil
            if hasDense { firstStages.append(dense) }
            if let status = try store.compressedIndexStatus(field: tokensField), status.error == nil {
                firstStages.append(
                    QueryNode(query: tokens, using: tokensField, limit: pool, parameters: parameters(candidates: pool))
                )
            }
            let rerankNode = QueryNode(
                query: tokens,
                using: tokensField,
                limit: fusion == "none" ? limit : pool,
                prefetch: firstStages
            )
            guard fusion != "none" else {
                var root = rerankNode
                root.filter = filter
                return root
            }
            let weights = fusionWeights.flatMap(parseWeights)
            let method: FusionMethod = fusion == "dbsf" ? .dbsf(weights: weights) : .rrf(k: fusionK, weights: weights)
            return QueryNode(
                query: .fusion(method),
                filter: filter,
                limit: limit,
                prefetch: [rerankNode, bm25] + (hasDense ? [dense] : [])
            )
        }
    }

    /// Reads a pipeline file and puts the query text where it says `$query`.
    func pipelineRequest(path: String, text: String) throws -> QueryRequest {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read --pipeline file \(path)")
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
            return try QueryRequest(json: substitute(template))
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }

    /// A short description for reports.
    func label(limit: Int) -> String {
        if let pipeline { return "pipeline " + (pipeline as NSString).lastPathComponent }
        let pool = candidateCount(limit: limit)
        let rerankText = rerank == "exact" ? " → MaxSim rerank of \(pool)" : ""
        switch firstStage {
        case "exact": return "exact MaxSim"
        case "bm25": return String(format: "bm25 k1 %.2f b %.2f", Double(bm25Parameters.k1), Double(bm25Parameters.b))
        case "compressed":
            let probes =
                nprobe ?? CompressedSearchParameters.defaults(limit: rerank == "exact" ? pool : limit).probeCount
            return "compressed nprobe \(probes)" + (probeDimension.map { ", cells chosen in \($0) dimensions" } ?? "")
                + rerankText
        case "dense": return "dense (ef \(ef ?? CollectionStore.defaultHNSWEf))" + rerankText
        default:
            let union = "bm25 ∪ dense ∪ compressed (\(pool) each) → MaxSim"
            guard fusion != "none" else { return "hybrid: " + union }
            let weights = fusionWeights.map { ", weights \($0)" } ?? ""
            return "hybrid: " + union + ", " + (fusion == "rrf" ? "rrf k \(fusionK)" : "dbsf") + " with bm25 and dense"
                + weights
        }
    }

    /// Warns on standard error when an index the first stage uses cannot serve.
    func warnIfUnavailable(_ store: CollectionStore) throws {
        guard pipeline == nil else { return }
        if ["compressed"].contains(firstStage) {
            guard let status = try store.compressedIndexStatus(field: tokensField) else {
                warn("no compressed index; searching exactly (build one: tessera index … --compressed)")
                return
            }
            if let error = status.error { warn("\(error)") }
        }
        if ["dense", "hybrid"].contains(firstStage), store.configuration.field(named: pooledField) != nil {
            if let status = try store.denseIndexStatus(field: pooledField), let error = status.error {
                warn("\(error)")
            }
        }
    }

    private func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }
}

/// Encodes query text for the pipeline with the collection's encoder, keeping the last query's encoding so that
/// its token vectors and its pooled vector come from one forward pass (and so that callers can time encoding
/// apart from search by calling ``prepare(_:)`` first).
final class QueryEncoderCache: QueryTextEncoder {
    let encoder: TokenEncoder
    private let last = Mutex<(text: String, encoded: EncodedText)?>(nil)

    init(encoder: TokenEncoder) { self.encoder = encoder }

    /// Encodes `text` (or returns the kept encoding).
    @discardableResult
    func prepare(_ text: String) throws -> EncodedText {
        if let kept = last.withLock({ $0 }), kept.text == text { return kept.encoded }
        let encoded = try encoder.encodeQuery(text)
        last.withLock { $0 = (text, encoded) }
        return encoded
    }

    func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        let encoded = try prepare(text)
        if case .dense = field.kind { return .dense(encoded.pooled) }
        return .flat(values: encoded.vectors, tokenCount: encoded.tokenCount)
    }
}

extension QueryEncoderCache: DocumentTextEncoder {
    func encodeDocument(_ text: String, for field: VectorField) throws -> VectorValue {
        guard let encoded = try encoder.encodeDocuments([text]).first else {
            throw ValidationError("the encoder returned nothing for a document")
        }
        if case .dense = field.kind { return .dense(encoded.pooled) }
        return .flat(values: encoded.vectors, tokenCount: encoded.tokenCount)
    }
}

/// Every query of a benchmark encoded up front, so that timed searches exclude encoding.
final class PreparedQueries: QueryTextEncoder {
    let encoder: TokenEncoder
    private let encoded = Mutex<[String: EncodedText]>([:])

    init(encoder: TokenEncoder) { self.encoder = encoder }

    func prepare(_ text: String) throws {
        if encoded.withLock({ $0[text] }) != nil { return }
        let value = try encoder.encodeQuery(text)
        encoded.withLock { $0[text] = value }
    }

    func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        try prepare(text)
        let value = encoded.withLock { $0[text]! }
        if case .dense = field.kind { return .dense(value.pooled) }
        return .flat(values: value.vectors, tokenCount: value.tokenCount)
    }
}
