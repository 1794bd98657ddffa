import Foundation
import TesseraEncoder
import TesseraTestSupport
import Testing

/// The hand-made tiny BERT written by `scripts/make-encoder-fixtures.py`, and helpers to turn it into a model folder.
struct TinyBertFixture: Decodable {
    struct Tensor: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct Plain: Decodable {
        var text: String
        var ids: [Int32]
        var tokenVectors: [Float]
        var pooled: [Float]

        enum CodingKeys: String, CodingKey {
            case text, ids, pooled
            case tokenVectors = "token_vectors"
        }
    }

    struct Colbert: Decodable {
        var queryText: String
        var documentText: String
        var queryLength: Int
        var queryIDs: [Int32]
        var documentIDs: [Int32]
        var documentKeptIDs: [Int32]
        var linearWeight: [Float]
        var denseBias: [Float]
        var queryVectors: [Float]
        var documentVectors: [Float]
        var queryVectorsDenseBias: [Float]
        var documentVectorsDenseBias: [Float]
        var documentPooled: [Float]

        enum CodingKeys: String, CodingKey {
            case queryText = "query_text"
            case documentText = "document_text"
            case queryLength = "query_length"
            case queryIDs = "query_ids"
            case documentIDs = "document_ids"
            case documentKeptIDs = "document_kept_ids"
            case linearWeight = "linear_weight"
            case denseBias = "dense_bias"
            case queryVectors = "query_vectors"
            case documentVectors = "document_vectors"
            case queryVectorsDenseBias = "query_vectors_dense_bias"
            case documentVectorsDenseBias = "document_vectors_dense_bias"
            case documentPooled = "document_pooled"
        }
    }

    var vocabulary: [String]
    var tensors: [String: Tensor]
    var batch: [[Int32]]
    var lastHiddenState: [[Float]]
    var plain: Plain
    var colbert: Colbert

    enum CodingKeys: String, CodingKey {
        case vocabulary, tensors, batch, plain, colbert
        case lastHiddenState = "last_hidden_state"
    }

    /// The raw `config.json` object, kept as bytes so tests can edit fields.
    var configObject: [String: Any] {
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: Self.url)) as! [String: Any]
        return root["config"] as! [String: Any]
    }

    static let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let url = fixturesDirectory.appendingPathComponent("tiny-bert.json")

    static func load() throws -> TinyBertFixture {
        try JSONDecoder().decode(TinyBertFixture.self, from: Data(contentsOf: url))
    }

    /// The tensors as safetensors entries, in a stable order.
    func safetensors(
        dataType: SafetensorsWriter.DataType = .float32,
        prefix: String = "",
        skipping skipped: Set<String> = [],
        overriding overrides: [String: SafetensorsWriter.Tensor] = [:]
    ) -> [SafetensorsWriter.Tensor] {
        tensors.keys.sorted().compactMap { name in
            if skipped.contains(name) { return nil }
            if let override = overrides[name] { return override }
            let tensor = tensors[name]!
            return SafetensorsWriter.Tensor(
                name: prefix + name,
                shape: tensor.shape,
                values: tensor.values,
                dataType: dataType
            )
        }
    }

    /// Writes `config.json` (with `configEdits` applied), `vocab.txt` and `model.safetensors` into a new folder.
    /// - Returns: The folder's path.
    func writeModelFolder(
        tensors: [SafetensorsWriter.Tensor]? = nil,
        extraTensors: [SafetensorsWriter.Tensor] = [],
        configEdits: [String: Any] = [:]
    ) throws -> String {
        let directory = try makeTemporaryDirectory(prefix: "tiny-bert")
        var config = configObject
        for (key, value) in configEdits { config[key] = value }
        try JSONSerialization.data(withJSONObject: config).write(
            to: URL(fileURLWithPath: directory + "/config.json")
        )
        try (vocabulary.joined(separator: "\n") + "\n").write(
            toFile: directory + "/vocab.txt",
            atomically: true,
            encoding: .utf8
        )
        try SafetensorsWriter.write((tensors ?? safetensors()) + extraTensors, to: directory + "/model.safetensors")
        return directory
    }
}

/// The largest absolute difference between two equally long arrays; `.infinity` when their lengths differ.
func maxAbsoluteDifference(_ lhs: [Float], _ rhs: [Float]) -> Float {
    guard lhs.count == rhs.count else { return .infinity }
    return zip(lhs, rhs).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Where the default model lives in a checkout (git-ignored; `scripts/fetch-model` downloads it).
let miniLMDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("models/all-MiniLM-L6-v2").path

/// Whether the default model is present; real-model tests are skipped without it.
let miniLMIsPresent = FileManager.default.fileExists(atPath: miniLMDirectory + "/model.safetensors")

/// The fixture texts encoded at `precision` against float32: the smallest cosine of a token vector to its
/// float32 vector, and whether every vector came out bit-identical. Token ids must agree.
func fixtureAgreement(precision: EncoderPrecision) throws -> (worstCosine: Double, identical: Bool) {
    let fixture = try MiniLMParityFixture.load()
    #expect(fixture.texts.count >= 12)
    let float32 = try TokenEncoder(modelDirectory: miniLMDirectory)
    let other = try TokenEncoder(modelDirectory: miniLMDirectory, precision: precision)
    #expect(other.model.precision == precision)
    let reference = try float32.encodeDocuments(fixture.texts)
    let encoded = try other.encodeDocuments(fixture.texts)
    var worst = 1.0
    var identical = true
    for (expected, got) in zip(reference, encoded) {
        #expect(expected.ids == got.ids)
        let dimension = expected.vectors.count / expected.tokenCount
        for token in 0..<expected.tokenCount {
            let range = (token * dimension)..<((token + 1) * dimension)
            let dot = zip(expected.vectors[range], got.vectors[range]).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            worst = min(worst, dot)
            if expected.vectors[range] != got.vectors[range] { identical = false }
        }
    }
    return (worst, identical)
}
