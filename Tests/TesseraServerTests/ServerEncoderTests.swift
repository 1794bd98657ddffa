import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tessera
import Testing

@testable import TesseraServer

private let miniLM = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("models/all-MiniLM-L6-v2").path
private let miniLMIsPresent = FileManager.default.fileExists(atPath: miniLM + "/model.safetensors")

private func configuration(_ identity: EncoderIdentity?) -> CollectionConfiguration {
    CollectionConfiguration(fields: [
        VectorField(name: "pooled", dimension: 384, kind: .dense(distance: .cosine), encoder: identity),
        VectorField(name: "tokens", dimension: 384, kind: .multivector(comparator: .maxSim), encoder: identity),
    ])
}

@Suite(
    "Server: each collection's text with its own encoder",
    .enabled(if: miniLMIsPresent, "needs models/all-MiniLM-L6-v2")
)
struct ServerEncoderTests {
    @Test("collections built with a model are encoded with it; one whose model is not at hand is refused, not misread")
    func encoderPerCollection() async throws {
        try await withDataDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let hash = try EncoderCatalog.contentHash(ofModel: miniLM)
            try CollectionStore.create(
                at: directory + "/built",
                configuration: configuration(EncoderIdentity(modelName: miniLM, contentHash: hash, profile: .plain))
            ).close()
            try CollectionStore.create(
                at: directory + "/moved",
                configuration: configuration(
                    EncoderIdentity(
                        modelName: directory + "/gone",
                        contentHash: "fnv1a64:0000000000000001",
                        profile: .plain
                    )
                )
            ).close()
            let registry = try CollectionRegistry(directory: directory)
            // No default model: the built collection's own folder serves it.
            let catalog = EncoderCatalog(defaultModelDirectory: nil, threadCount: 1)
            let router = makeRouter(
                registry: registry,
                options: ServerOptions(dataDirectory: directory, encoder: catalog, documentEncoder: catalog)
            )
            try await Application(router: router).test(.router) { client in
                let upsert = try await call(
                    client,
                    .put,
                    "/collections/built/points",
                    #"{"points": [{"id": 1, "vector": {"pooled": {"text": "the cat sat on the mat"}, "tokens": {"text": "the cat sat on the mat"}}}, {"id": 2, "vector": {"pooled": {"text": "stock markets fell"}, "tokens": {"text": "stock markets fell"}}}]}"#
                )
                #expect(upsert.status == .ok, "\(upsert.text)")
                let query = try await call(
                    client,
                    .post,
                    "/collections/built/points/query",
                    #"{"query": {"text": "a cat on a mat"}, "using": "tokens", "limit": 2}"#
                )
                #expect(query.status == .ok, "\(query.text)")
                #expect(ids(resultPoints(query)) == ["1", "2"])
                let refused = try await call(
                    client,
                    .post,
                    "/collections/moved/points/query",
                    #"{"query": {"text": "a cat"}, "using": "pooled"}"#
                )
                #expect(refused.status == .badRequest)
                #expect(refused.error.contains("was built with the model"), "\(refused.error)")
                let refusedUpsert = try await call(
                    client,
                    .put,
                    "/collections/moved/points",
                    #"{"points": [{"id": 1, "vector": {"pooled": {"text": "x"}, "tokens": {"text": "x"}}}]}"#
                )
                #expect(refusedUpsert.status == .badRequest)
                #expect(refusedUpsert.error.contains("was built with the model"))
            }
        }
    }
}
