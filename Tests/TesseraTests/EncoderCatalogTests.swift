import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import Testing

/// The default model, in a checkout (`make test` fetches it).
private let miniLM = packageRoot.appendingPathComponent("models/all-MiniLM-L6-v2").path
private let miniLMIsPresent = FileManager.default.fileExists(atPath: miniLM + "/model.safetensors")

/// A model folder with MiniLM's weights (linked) but another `config.json` byte: another content hash.
private func otherModel(in root: String) throws -> String {
    let folder = root + "/other-model"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for name in [
        "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    ]
    where FileManager.default.fileExists(atPath: miniLM + "/" + name) {
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/" + name,
            withDestinationPath: miniLM + "/" + name
        )
    }
    var config = try String(contentsOfFile: miniLM + "/config.json", encoding: .utf8)
    config += "\n"
    try config.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
    return folder
}

private func fields(identity: EncoderIdentity?) -> CollectionConfiguration {
    CollectionConfiguration(fields: [
        VectorField(
            name: "tokens",
            dimension: 384,
            kind: .multivector(comparator: .maxSim),
            elementType: .float16,
            encoder: identity
        ),
        VectorField(name: "pooled", dimension: 384, kind: .dense(distance: .cosine), encoder: identity),
    ])
}

@Suite(
    "Encoders belong to collections",
    .enabled(if: miniLMIsPresent, "needs models/all-MiniLM-L6-v2 (make test fetches it)")
)
struct EncoderCatalogTests {
    @Test(
        "a field is encoded only by the model it was built with: the default if it is that one, else the recorded one"
    )
    func resolution() throws {
        try withTemporaryDirectory { root in
            let other = try otherModel(in: root)
            let hash = try EncoderCatalog.contentHash(ofModel: miniLM)
            #expect(try EncoderCatalog.contentHash(ofModel: other) != hash)
            let built = EncoderIdentity(modelName: miniLM, contentHash: hash, profile: .plain)
            let field = fields(identity: built).fields[1]
            // The default is another model: the collection's own folder serves.
            #expect(try EncoderCatalog(defaultModelDirectory: other).resolve(field).directory == miniLM)
            #expect(try EncoderCatalog(defaultModelDirectory: nil).resolve(field).directory == miniLM)
            // The recorded profile is kept.
            let colbert = fields(identity: EncoderIdentity(modelName: miniLM, contentHash: hash, profile: .colbert))
            #expect(try EncoderCatalog(defaultModelDirectory: miniLM).resolve(colbert.fields[0]).profile == .colbert)
            // The recorded folder is gone and the default is another model: refused, naming both.
            let moved = fields(identity: EncoderIdentity(modelName: root + "/gone", contentHash: hash, profile: .plain))
            let error = #expect(throws: TesseraError.self) {
                try EncoderCatalog(defaultModelDirectory: other).resolve(moved.fields[0])
            }
            #expect(error?.code == .configurationMismatch)
            #expect(error?.message.contains(hash) == true)
            #expect(error?.message.contains(other) == true)
            // A field that records no encoder: the default model, plain, or a clear error without one.
            let bare = fields(identity: nil).fields[0]
            #expect(try EncoderCatalog(defaultModelDirectory: other).resolve(bare) == (other, .plain))
            #expect(throws: TesseraError.self) { try EncoderCatalog(defaultModelDirectory: nil).resolve(bare) }
        }
    }

    @Test("text queries through the pipeline use the collection's model, and a wrong model is an error at the node")
    func queries() throws {
        try withTemporaryDirectory { root in
            let hash = try EncoderCatalog.contentHash(ofModel: miniLM)
            let identity = EncoderIdentity(modelName: miniLM, contentHash: hash, profile: .plain)
            let store = try CollectionStore.create(at: root + "/c", configuration: fields(identity: identity))
            let catalog = EncoderCatalog(defaultModelDirectory: nil, threadCount: 1)
            let texts = ["the cat sat on the mat", "stock markets fell sharply", "a kitten on a rug"]
            var points: [Point] = []
            for (index, text) in texts.enumerated() {
                let field = store.configuration.fields
                points.append(
                    Point(
                        id: .integer(UInt64(index)),
                        vectors: [
                            "tokens": try catalog.encodeDocument(text, for: field[0]),
                            "pooled": try catalog.encodeDocument(text, for: field[1]),
                        ]
                    )
                )
            }
            try store.upsert(points)
            let request = QueryRequest(root: QueryNode(query: .text("a cat on a mat"), using: "tokens", limit: 3))
            let hits = try store.query(request, encoder: catalog, kernel: MaxSimKernel(threadCount: 1)).points
            #expect(hits.first?.id == .integer(0))
            #expect(hits.last?.id == .integer(1))
            // A collection whose recorded model is not at hand, with another default model: refused, not answered.
            let other = try otherModel(in: root)
            let elsewhere = EncoderIdentity(modelName: root + "/gone", contentHash: hash, profile: .plain)
            let moved = try CollectionStore.create(at: root + "/moved", configuration: fields(identity: elsewhere))
            try moved.upsert([Point(id: .integer(1), vectors: points[0].vectors)])
            let error = #expect(throws: TesseraError.self) {
                try moved.query(request, encoder: EncoderCatalog(defaultModelDirectory: other))
            }
            #expect(error?.code == .configurationMismatch)
            #expect(error?.location.field == "query.query")
            try store.close()
            try moved.close()
        }
    }

    @Test("a field's precision is recorded, kept when the collection reopens, and encodes its text unless overridden")
    func precision() throws {
        try withTemporaryDirectory { root in
            let hash = try EncoderCatalog.contentHash(ofModel: miniLM)
            let identity = EncoderIdentity(modelName: miniLM, contentHash: hash, profile: .plain, precision: .int8)
            let store = try CollectionStore.create(at: root + "/c", configuration: fields(identity: identity))
            try store.close()
            let reopened = try CollectionStore.open(at: root + "/c")
            let field = reopened.configuration.fields[0]
            #expect(field.encoder?.precision == .int8)
            #expect(try EncoderCatalog(defaultModelDirectory: nil).resolveEncoder(field).precision == .int8)
            #expect(
                try EncoderCatalog(defaultModelDirectory: nil, precision: .float32).resolveEncoder(field).precision
                    == .float32
            )
            // The int8 encoder is the one that runs: its vectors are not float32's, and the override's are.
            let text = "the cat sat on the mat"
            let int8 = try EncoderCatalog(defaultModelDirectory: nil, threadCount: 1).encodeDocument(text, for: field)
            let float32 = try EncoderCatalog(defaultModelDirectory: nil, threadCount: 1, precision: .float32)
                .encodeDocument(text, for: field)
            let direct = try TokenEncoder(modelDirectory: miniLM, threadCount: 1, precision: .int8)
                .encodeDocuments([text])[0]
            #expect(int8 == .flat(values: direct.vectors, tokenCount: direct.tokenCount))
            #expect(int8 != float32)
            try reopened.close()
            // An identity recorded before precisions existed reads as float32.
            let old = #"{"modelName":"m","contentHash":"h","profile":"plain"}"#
            let decoded = try JSONDecoder().decode(EncoderIdentity.self, from: Data(old.utf8))
            #expect(decoded.precision == .float32)
            let encoded = try JSONEncoder().encode(identity)
            #expect(try JSONDecoder().decode(EncoderIdentity.self, from: encoded) == identity)
        }
    }
}
