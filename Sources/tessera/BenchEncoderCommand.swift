import ArgumentParser
import Foundation
import TesseraEncoder

/// `tessera bench encoder`: documents per second and tokens per second of the encoder on a BEIR corpus.
struct BenchEncoderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encoder",
        abstract: "Measures encoder throughput (tokens/s) on the first documents of a BEIR corpus.jsonl.",
        discussion: """
            Each document is `title + " " + text`, encoded with the plain profile (at most 256 tokens, specials \
            included). The time covers tokenisation, the forward pass and normalisation, after a short warm-up. \
            Peak RSS is the process's VmHWM.
            """
    )

    @Option(help: "A BEIR corpus.jsonl (fields title and text).")
    var corpus = "../shared/ir-data/scifact/corpus.jsonl"

    @Option(help: "How many documents to encode, from the start of the corpus.")
    var limit = 500

    @Option(help: "Threads for the forward pass (default: one per core).")
    var threads: Int?

    @Option(help: "Documents per forward pass.")
    var batchSize = 32

    @Option(help: "The model folder.")
    var model = "models/all-MiniLM-L6-v2"

    @Option(help: "The most tokens a document keeps, specials included.")
    var maxTokens = 256

    @Option(help: "The projections' arithmetic: f32, bf16 (AVX512_BF16 CPUs) or int8.")
    var precision: PrecisionChoice = .f32

    @Flag(help: "At bf16 or int8, skip encoding the texts again at f32 to report the per-token cosine (for profiling).")
    var skipAgreement = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    func run() async throws {
        let texts = try Self.loadTexts(path: corpus, limit: limit)
        var encoder = try TokenEncoder(
            modelDirectory: model,
            profile: .plain(maxTokenCount: maxTokens),
            threadCount: threads,
            precision: precision.precision
        )
        encoder.batchSize = batchSize
        _ = try encoder.encodeDocuments(Array(texts.prefix(8)))
        let clock = ContinuousClock()
        let start = clock.now
        let encoded = try encoder.encodeDocuments(texts)
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let tokenCount = encoded.reduce(0) { $0 + $1.tokenCount }
        // Before the float32 reference below is loaded, so the peak is the measured encoder's.
        let peakResidentBytes = Self.peakResidentBytes()
        let agreement: TokenAgreement?
        if precision != .f32, !skipAgreement {
            var reference = try TokenEncoder(
                modelDirectory: model,
                profile: .plain(maxTokenCount: maxTokens),
                threadCount: threads
            )
            reference.batchSize = batchSize
            agreement = TokenAgreement(encoded, try reference.encodeDocuments(texts))
        } else {
            agreement = nil
        }
        let result = BenchEncoderResult(
            model: model,
            documents: texts.count,
            tokens: tokenCount,
            seconds: seconds,
            tokensPerSecond: Double(tokenCount) / seconds,
            documentsPerSecond: Double(texts.count) / seconds,
            threads: encoder.model.threadCount,
            batchSize: batchSize,
            precision: precision.rawValue,
            cosineToFloat32: agreement,
            peakResidentBytes: peakResidentBytes
        )
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(
                "encoder: \(model), \(precision.rawValue), \(result.threads) threads, batch \(batchSize), "
                    + "max \(maxTokens) tokens"
            )
            print("documents       \(result.documents)")
            print("tokens          \(result.tokens)")
            print("seconds         \(String(format: "%.3f", result.seconds))")
            print("tokens/s        \(String(format: "%.0f", result.tokensPerSecond))")
            print("documents/s     \(String(format: "%.1f", result.documentsPerSecond))")
            if let agreement {
                print(
                    "cosine to f32   min \(String(format: "%.4f", agreement.minimum)), "
                        + "p1 \(String(format: "%.4f", agreement.percentile1)), "
                        + "mean \(String(format: "%.5f", agreement.mean)) over \(agreement.tokens) tokens"
                )
            }
            if let peak = result.peakResidentBytes {
                print("peak RSS        \(String(format: "%.1f", Double(peak) / 1_048_576)) MiB")
            }
        }
    }

    /// Reads `title + " " + text` of the first `limit` documents of a JSON-lines corpus.
    static func loadTexts(path: String, limit: Int) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("cannot read the corpus at \(path)")
        }
        var texts: [String] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let document = try JSONDecoder().decode(CorpusDocument.self, from: Data(line))
            let text = ((document.title ?? "") + " " + (document.text ?? "")).trimmingCharacters(in: .whitespaces)
            if !text.isEmpty { texts.append(text) }
            if texts.count == limit { break }
        }
        return texts
    }

    /// The process's peak resident set size (`VmHWM` in /proc/self/status), or `nil` where there is none.
    static func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kibibytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kibibytes.map { $0 * 1024 }
        }
        return nil
    }
}

/// One line of a BEIR corpus.
private struct CorpusDocument: Decodable {
    var title: String?
    var text: String?
}

/// What `tessera bench encoder --json` prints.
struct BenchEncoderResult: Codable {
    var model: String
    var documents: Int
    var tokens: Int
    var seconds: Double
    var tokensPerSecond: Double
    var documentsPerSecond: Double
    var threads: Int
    var batchSize: Int
    var precision: String
    var cosineToFloat32: TokenAgreement?
    var peakResidentBytes: Int?

    enum CodingKeys: String, CodingKey {
        case model, documents, tokens, seconds, threads, precision
        case tokensPerSecond = "tokens_per_second"
        case documentsPerSecond = "documents_per_second"
        case batchSize = "batch_size"
        case cosineToFloat32 = "cosine_to_f32"
        case peakResidentBytes = "peak_rss_bytes"
    }
}

/// How close one encoding's token vectors are to another's (float32's): the cosine of each token's pair, after
/// the encoder's normalisation.
struct TokenAgreement: Codable {
    var tokens: Int
    var minimum: Double
    var percentile1: Double
    var mean: Double

    init(_ encoded: [EncodedText], _ reference: [EncodedText]) {
        var cosines: [Double] = []
        for (document, expected) in zip(encoded, reference) where document.tokenCount == expected.tokenCount {
            let dimension = document.vectors.count / max(1, document.tokenCount)
            for token in 0..<document.tokenCount {
                var dot = 0.0
                var left = 0.0
                var right = 0.0
                for component in (token * dimension)..<((token + 1) * dimension) {
                    let a = Double(document.vectors[component])
                    let b = Double(expected.vectors[component])
                    dot += a * b
                    left += a * a
                    right += b * b
                }
                cosines.append(dot / max(1e-30, (left * right).squareRoot()))
            }
        }
        cosines.sort()
        tokens = cosines.count
        minimum = cosines.first ?? 0
        percentile1 = cosines.isEmpty ? 0 : cosines[cosines.count / 100]
        mean = cosines.isEmpty ? 0 : cosines.reduce(0, +) / Double(cosines.count)
    }

    enum CodingKeys: String, CodingKey {
        case tokens, mean
        case minimum = "min"
        case percentile1 = "p1"
    }
}
