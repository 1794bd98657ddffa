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

@Suite(
    "Server: text search through the library's presets",
    .enabled(if: miniLMIsPresent, "needs models/all-MiniLM-L6-v2")
)
struct ServerTextSearchTests {
    static let documents = [
        "volcanoes form where magma rises through the crust", "sourdough bread rises with a wild yeast starter",
        "black holes bend light near the event horizon", "tides follow the moon's pull on the oceans",
        "magma chambers feed eruptions of lava", "yeast ferments sugars into carbon dioxide",
    ]

    @Test("two collections with two models; every preset answers with the library's ids and scores")
    func presetsMatchTheLibrary() async throws {
        try await withDataDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // A second model: MiniLM's first three layers (its weights linked, its config cut), another encoder of
            // the same dimension.
            let shallow = directory + "-shallow-model"
            defer { try? FileManager.default.removeItem(atPath: shallow) }
            try FileManager.default.createDirectory(atPath: shallow, withIntermediateDirectories: true)
            for name in ["model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json"]
            where FileManager.default.fileExists(atPath: miniLM + "/" + name) {
                try FileManager.default.createSymbolicLink(
                    atPath: shallow + "/" + name,
                    withDestinationPath: miniLM + "/" + name
                )
            }
            let config = try String(contentsOfFile: miniLM + "/config.json", encoding: .utf8)
                .replacingOccurrences(of: #""num_hidden_layers": 6"#, with: #""num_hidden_layers": 3"#)
            #expect(config.contains(#""num_hidden_layers": 3"#))
            try config.write(toFile: shallow + "/config.json", atomically: true, encoding: .utf8)
            for (name, model) in [("plain", miniLM), ("colbert", shallow)] {
                let identity = EncoderIdentity(
                    modelName: model,
                    contentHash: try EncoderCatalog.contentHash(ofModel: model),
                    profile: .plain
                )
                try CollectionStore.create(at: directory + "/" + name, configuration: configuration(identity)).close()
            }
            let registry = try CollectionRegistry(directory: directory)
            let catalog = EncoderCatalog(defaultModelDirectory: nil, threadCount: 1)
            let router = makeRouter(
                registry: registry,
                options: ServerOptions(dataDirectory: directory, encoder: catalog, documentEncoder: catalog)
            )
            try await Application(router: router).test(.router) { client in
                for name in ["plain", "colbert"] {
                    let points = Self.documents.enumerated().map { index, text in
                        #"{"id": \#(index + 1), "payload": {"text": "\#(text)"}, "vector": {"pooled": {"text": "\#(text)"}, "tokens": {"text": "\#(text)"}}}"#
                    }
                    let upsert = try await call(
                        client,
                        .put,
                        "/collections/\(name)/points?wait=true",
                        #"{"points": [\#(points.joined(separator: ","))]}"#
                    )
                    #expect(upsert.status == .ok, "\(upsert.text)")
                }
                let presets: [(String, QueryPreset)] = [
                    (#""preset": "exact""#, .exact),
                    (#""preset": "bm25""#, .bm25),
                    (#""preset": "dense""#, .dense(rerank: false)),
                    (#""preset": "dense", "rerank": true"#, .dense(rerank: true)),
                    (#""preset": "hybrid", "fusion": "none""#, .hybrid(fusion: nil)),
                    (#""preset": "hybrid", "fusion": "rrf""#, .hybrid(fusion: .rrf())),
                    (#""preset": "hybrid""#, .default),
                ]
                var answers: [String: [String]] = [:]
                for name in ["plain", "colbert"] {
                    let store = try registry.store(name)
                    for (fields, preset) in presets {
                        let text = "how does magma make volcanoes"
                        let reply = try await call(
                            client,
                            .post,
                            "/collections/\(name)/points/search/text",
                            #"{"text": "\#(text)", "limit": 4, \#(fields)}"#
                        )
                        #expect(reply.status == .ok, "\(fields): \(reply.text)")
                        let library = try store.search(TextQuery(text, preset: preset, limit: 4), encoder: catalog)
                            .points
                        let served = resultPoints(reply)
                        #expect(ids(served) == library.map(\.id.description), "\(name) \(fields)")
                        let scores = served.compactMap { point -> Double? in
                            guard case .object(let object) = point else { return nil }
                            if case .double(let score)? = object["score"] { return score }
                            if case .integer(let score)? = object["score"] { return Double(score) }
                            return nil
                        }
                        #expect(scores.map { Float($0) } == library.map(\.score), "\(name) \(fields)")
                        answers[name, default: []].append(ids(served).joined(separator: ","))
                    }
                }
                // The shallow model is its own encoder: its MaxSim scores are not the full model's.
                let plain = try registry.store("plain")
                let colbert = try registry.store("colbert")
                let exactPlain = try plain.search(TextQuery("magma", preset: .exact, limit: 1), encoder: catalog)
                let exactColbert = try colbert.search(TextQuery("magma", preset: .exact, limit: 1), encoder: catalog)
                #expect(exactPlain.points.first?.score != exactColbert.points.first?.score)
                let unknown = try await call(
                    client,
                    .post,
                    "/collections/plain/points/search/text",
                    #"{"text": "x", "preset": "fastest"}"#
                )
                #expect(unknown.status == .badRequest)
                #expect(unknown.error.contains("preset"), "\(unknown.error)")
                let extra = try await call(
                    client,
                    .post,
                    "/collections/plain/points/search/text",
                    #"{"text": "x", "limt": 3}"#
                )
                #expect(extra.status == .badRequest)
                #expect(extra.error.contains("limt"), "\(extra.error)")
            }
        }
    }
}
