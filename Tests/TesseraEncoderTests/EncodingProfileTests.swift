import Foundation
import TesseraEncoder
import TesseraTestSupport
import Testing

/// The `plain` and `colbert` profiles on the tiny model, against the numpy computation of the fixture script.
@Suite("Encoding profiles on the tiny model")
struct EncodingProfileTests {
    static let tolerance: Float = 1e-5

    /// The tiny model with ColBERT's `linear.weight` beside the BERT tensors (under a `bert.` prefix).
    static func colbertFolder(_ fixture: TinyBertFixture) throws -> String {
        let linear = SafetensorsWriter.Tensor(
            name: "linear.weight",
            shape: [4, 8],
            values: fixture.colbert.linearWeight
        )
        return try fixture.writeModelFolder(tensors: fixture.safetensors(prefix: "bert.") + [linear])
    }

    @Test("plain: every token kept and L2-normalised, pooled vector, ids and offsets")
    func plain() throws {
        let fixture = try TinyBertFixture.load()
        let encoder = try TokenEncoder(modelDirectory: try fixture.writeModelFolder())
        #expect(encoder.dimension == 8)
        let encoded = try encoder.encodeDocuments([fixture.plain.text])[0]
        #expect(encoded.ids == fixture.plain.ids)
        #expect(encoded.tokenCount == fixture.plain.ids.count)
        #expect(encoded.dimension == 8)
        #expect(maxAbsoluteDifference(encoded.vectors, fixture.plain.tokenVectors) <= Self.tolerance)
        #expect(maxAbsoluteDifference(encoded.pooled, fixture.plain.pooled) <= Self.tolerance)
        #expect(encoded.offsets.first! == nil && encoded.offsets.last! == nil)
        let text = Array(fixture.plain.text.utf8)
        #expect(encoded.offsets[1].map { String(decoding: text[$0], as: UTF8.self) } == "The")
        let query = try encoder.encodeQuery(fixture.plain.text)
        #expect(query.vectors == encoded.vectors)
    }

    @Test("documents come back in input order whatever the batch size", arguments: [1, 2, 32])
    func order(batchSize: Int) throws {
        let fixture = try TinyBertFixture.load()
        var encoder = try TokenEncoder(modelDirectory: try fixture.writeModelFolder())
        encoder.batchSize = batchSize
        let texts = ["the big red hat sat on a mat", "cat", "a dog runs", fixture.plain.text, "the cat"]
        let together = try encoder.encodeDocuments(texts)
        for (index, text) in texts.enumerated() {
            let alone = try encoder.encodeDocuments([text])[0]
            #expect(together[index].ids == alone.ids)
            #expect(maxAbsoluteDifference(together[index].vectors, alone.vectors) <= Self.tolerance)
        }
    }

    @Test("empty text is refused with its batch index")
    func emptyText() throws {
        let fixture = try TinyBertFixture.load()
        let encoder = try TokenEncoder(modelDirectory: try fixture.writeModelFolder())
        let error = #expect(throws: EncoderError.self) { try encoder.encodeDocuments(["the cat", "", "a dog"]) }
        #expect(error?.code == .invalidText)
        #expect(error?.location.offset == 1)
        let blank = #expect(throws: EncoderError.self) { try encoder.encodeQuery("  ") }
        #expect(blank?.code == .invalidText)
        #expect(blank?.location.offset == 0)
    }

    @Test("colbert query: [Q] marker, [MASK] padding to 32 attended, projected and normalised")
    func colbertQuery() throws {
        let fixture = try TinyBertFixture.load()
        let encoder = try TokenEncoder(modelDirectory: try Self.colbertFolder(fixture), profile: .colbert())
        #expect(encoder.dimension == 4)
        let query = try encoder.encodeQuery(fixture.colbert.queryText)
        #expect(query.ids == fixture.colbert.queryIDs)
        #expect(query.tokenCount == 32)
        #expect(query.tokens[1] == "[unused0]")
        #expect(query.tokens.last == "[MASK]")
        #expect(maxAbsoluteDifference(query.vectors, fixture.colbert.queryVectors) <= Self.tolerance)
    }

    @Test("colbert document: [D] marker, punctuation dropped, projected and normalised")
    func colbertDocument() throws {
        let fixture = try TinyBertFixture.load()
        let encoder = try TokenEncoder(modelDirectory: try Self.colbertFolder(fixture), profile: .colbert())
        let document = try encoder.encodeDocuments([fixture.colbert.documentText])[0]
        #expect(document.ids == fixture.colbert.documentKeptIDs)
        #expect(document.tokens[1] == "[unused1]")
        #expect(!document.tokens.contains(",") && !document.tokens.contains("!") && !document.tokens.contains("."))
        #expect(maxAbsoluteDifference(document.vectors, fixture.colbert.documentVectors) <= Self.tolerance)
        #expect(maxAbsoluteDifference(document.pooled, fixture.colbert.documentPooled) <= Self.tolerance)
    }

    @Test("documentTokens names the same tokens as encodeDocuments, without the model (plain and colbert)")
    func documentTokensMatchEncoding() throws {
        let fixture = try TinyBertFixture.load()
        let text = fixture.colbert.documentText
        for encoder in [
            try TokenEncoder(modelDirectory: try fixture.writeModelFolder(), profile: .plain()),
            try TokenEncoder(modelDirectory: try Self.colbertFolder(fixture), profile: .colbert()),
        ] {
            let encoded = try encoder.encodeDocuments([text])[0]
            let tokens = try encoder.documentTokens(text)
            #expect(tokens.ids == encoded.ids)
            #expect(tokens.tokens == encoded.tokens)
            #expect(tokens.offsets == encoded.offsets)
            #expect(tokens.count * encoder.dimension == encoded.vectors.count)
        }
        #expect(throws: EncoderError.self) {
            try TokenEncoder(modelDirectory: try fixture.writeModelFolder(), profile: .plain()).documentTokens(" ")
        }
    }

    @Test("colbert with a PyLate 1_Dense module (with bias)")
    func colbertDense() throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder()
        try FileManager.default.createDirectory(atPath: directory + "/1_Dense", withIntermediateDirectories: true)
        let config =
            #"{"in_features": 8, "out_features": 4, "bias": true, "#
            + #""activation_function": "torch.nn.modules.linear.Identity"}"#
        try config.write(toFile: directory + "/1_Dense/config.json", atomically: true, encoding: .utf8)
        try SafetensorsWriter.write(
            [
                .init(name: "linear.weight", shape: [4, 8], values: fixture.colbert.linearWeight),
                .init(name: "linear.bias", shape: [4], values: fixture.colbert.denseBias),
            ],
            to: directory + "/1_Dense/model.safetensors"
        )
        let encoder = try TokenEncoder(modelDirectory: directory, profile: .colbert())
        let query = try encoder.encodeQuery(fixture.colbert.queryText)
        #expect(maxAbsoluteDifference(query.vectors, fixture.colbert.queryVectorsDenseBias) <= Self.tolerance)
        let document = try encoder.encodeDocuments([fixture.colbert.documentText])[0]
        #expect(maxAbsoluteDifference(document.vectors, fixture.colbert.documentVectorsDenseBias) <= Self.tolerance)
    }

    @Test("colbert without a projection is refused, naming linear.weight")
    func colbertWithoutProjection() throws {
        let fixture = try TinyBertFixture.load()
        let error = #expect(throws: EncoderError.self) {
            try TokenEncoder(modelDirectory: try fixture.writeModelFolder(), profile: .colbert())
        }
        #expect(error?.code == .missingTensor)
        #expect(error?.location.field == "linear.weight")
    }

    @Test("an encoder with PCA returns normalised vectors of the smaller dimension")
    func encoderWithPCA() throws {
        let fixture = try TinyBertFixture.load()
        var encoder = try TokenEncoder(modelDirectory: try fixture.writeModelFolder())
        let sample = try encoder.encodeDocuments(["the cat sat on the mat", "a big red dog runs", "the hat"])
        encoder.pca = try PCAProjection.fit(vectors: sample.flatMap(\.vectors), dimension: 8, outputDimension: 3)
        #expect(encoder.dimension == 3)
        let encoded = try encoder.encodeDocuments(["the dog sat"])[0]
        #expect(encoded.dimension == 3)
        #expect(encoded.vectors.count == encoded.tokenCount * 3)
        for row in 0..<encoded.tokenCount {
            let norm = (0..<3).reduce(Float(0)) { $0 + encoded.vectors[row * 3 + $1] * encoded.vectors[row * 3 + $1] }
            #expect(abs(norm - 1) < 1e-5)
        }
    }
}
