import Foundation
import Synchronization
public import TesseraEncoder

/// Encodes document text for a vector field (Tessera's `{"text": …}` in an upsert): a multivector of token vectors,
/// or a dense pooled vector.
public protocol DocumentTextEncoder: Sendable {
    /// The field's vector for a document's text.
    func encodeDocument(_ text: String, for field: VectorField) throws -> VectorValue
}

/// The text encoders of collections: one loaded model per model folder and encoding profile, chosen for each
/// field by the encoder identity the collection recorded when it was built.
///
/// A field built by an encoder (``VectorField/encoder``) is encoded only by a model whose content hash is the
/// recorded one, with the recorded profile: the default model folder when it is that model, else the folder the
/// collection recorded; anything else is ``TesseraError/Code/configurationMismatch`` naming both models, never a
/// silently wrong encoding. A field without a recorded encoder (vectors supplied by a client, as over the REST
/// API) is encoded by the default model with the `plain` profile, when its dimension fits. So one server serves
/// collections built with different models and profiles side by side.
///
/// Query encodings are kept for the last text of each encoder, so that a hybrid tree encoding one text for a
/// dense and a multivector leaf runs the model once.
public final class EncoderCatalog: QueryTextEncoder, DocumentTextEncoder, Sendable {
    /// The model folder used for fields without a recorded encoder, and tried first for those with one.
    public let defaultModelDirectory: String?
    private let threadCount: Int?
    /// The arithmetic every field is encoded with, whatever it recorded; `nil` keeps each field's own.
    public let precisionOverride: EncoderPrecision?

    private struct Key: Hashable {
        var directory: String
        var profile: EncodingProfile
        var precision: EncoderPrecision
    }

    private final class Loaded: Sendable {
        let encoder: TokenEncoder
        let lastQuery = Mutex<(text: String, encoded: EncodedText)?>(nil)
        init(encoder: TokenEncoder) { self.encoder = encoder }
    }

    private let loaded = Mutex<[Key: Loaded]>([:])
    private let hashes = Mutex<[String: String]>([:])

    /// Creates a catalog; models are loaded on first use.
    /// - Parameters:
    ///   - defaultModelDirectory: The model for fields without a recorded encoder (and tried first for the others).
    ///   - threadCount: Threads per forward pass; `nil` for one per core.
    ///   - precision: The encoder arithmetic for every field; `nil` (the default) encodes each field with the
    ///     precision it was built with, and fields without a recorded encoder at float32.
    public init(defaultModelDirectory: String?, threadCount: Int? = nil, precision: EncoderPrecision? = nil) {
        self.defaultModelDirectory = defaultModelDirectory
        self.threadCount = threadCount
        self.precisionOverride = precision
    }

    /// The content hash of a model folder: FNV-1a over `config.json`, the tokenizer files and the safetensors
    /// header (which lists every tensor's name, type, shape and byte range).
    /// - Throws: ``TesseraError/Code/notFound`` when the folder has no `model.safetensors`,
    ///   ``TesseraError/Code/corrupted`` when it is too short.
    public static func contentHash(ofModel directory: String) throws(TesseraError) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3  // FNV-1a: multiplication modulo 2^64 is the algorithm.
            }
        }
        let folder = URL(fileURLWithPath: directory)
        for name in ["config.json", "tokenizer.json", "vocab.txt"] {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) { mix(data) }
        }
        let weights = folder.appendingPathComponent("model.safetensors").path
        guard let handle = FileHandle(forReadingAtPath: weights) else {
            throw TesseraError(
                .notFound,
                "no model.safetensors in \(directory); run scripts/fetch-model or name another model folder",
                location: .init(path: directory)
            )
        }
        defer { try? handle.close() }
        let lengthBytes = handle.readData(ofLength: 8)
        guard lengthBytes.count == 8 else {
            throw TesseraError(.corrupted, "too short to be safetensors", location: .init(path: weights))
        }
        let headerLength = lengthBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        mix(lengthBytes)
        mix(handle.readData(ofLength: Int(min(headerLength, 16 << 20))))
        return String(format: "fnv1a64:%016llx", hash)
    }

    private func hash(of directory: String) throws(TesseraError) -> String {
        if let known = hashes.withLock({ $0[directory] }) { return known }
        let computed = try Self.contentHash(ofModel: directory)
        hashes.withLock { $0[directory] = computed }
        return computed
    }

    /// The model folder, profile and precision that encode a field's text.
    /// - Throws: ``TesseraError/Code/configurationMismatch`` when no available model is the one the field was built
    ///   with; ``TesseraError/Code/invalidArgument`` when a field without a recorded encoder has no default model.
    public func resolveEncoder(
        _ field: VectorField
    ) throws(TesseraError) -> (directory: String, profile: EncodingProfile, precision: EncoderPrecision) {
        let (directory, profile) = try resolve(field)
        return (directory, profile, precisionOverride ?? field.encoder?.precision ?? .float32)
    }

    /// The model folder and profile that encode a field's text.
    /// - Throws: ``TesseraError/Code/configurationMismatch`` when no available model is the one the field was built
    ///   with; ``TesseraError/Code/invalidArgument`` when a field without a recorded encoder has no default model.
    public func resolve(_ field: VectorField) throws(TesseraError) -> (directory: String, profile: EncodingProfile) {
        guard let identity = field.encoder else {
            guard let defaultModelDirectory else {
                throw TesseraError(
                    .invalidArgument,
                    "vector field '\(field.name)' records no encoder, and no model is loaded for its text "
                        + "(start the server with --model, or pass --model)",
                    location: .init(field: field.name)
                )
            }
            return (defaultModelDirectory, .plain)
        }
        var tried: [String] = []
        for directory in [defaultModelDirectory, identity.modelName].compactMap({ $0 }) where !tried.contains(directory)
        {
            tried.append(directory)
            guard let found = try? hash(of: directory) else { continue }
            if found == identity.contentHash { return (directory, identity.profile) }
        }
        let seen = tried.map { directory in "\(directory) (\((try? hash(of: directory)) ?? "not found"))" }
        throw TesseraError(
            .configurationMismatch,
            "vector field '\(field.name)' was built with the model \(identity.modelName) (\(identity.contentHash), "
                + "profile \(identity.profile.rawValue)); no model at hand is that one: "
                + seen.joined(separator: ", "),
            location: .init(field: field.name)
        )
    }

    private func encoder(for field: VectorField) throws(TesseraError) -> Loaded {
        let (directory, profile, precision) = try resolveEncoder(field)
        let key = Key(directory: directory, profile: profile, precision: precision)
        if let known = loaded.withLock({ $0[key] }) { return known }
        let encoder: TokenEncoder
        do {
            encoder = try TokenEncoder(
                modelDirectory: directory,
                profile: profile == .colbert ? .colbert() : .plain(),
                threadCount: threadCount,
                precision: precision
            )
        } catch {
            throw TesseraError(.invalidArgument, "cannot load the model: \(error)", location: .init(path: directory))
        }
        let produced = field.isMultivector ? encoder.dimension : encoder.pooledDimension
        guard produced == field.dimension else {
            throw TesseraError(
                .dimensionMismatch,
                "the model in \(directory) makes \(produced)-dimensional vectors; field '\(field.name)' holds "
                    + "\(field.dimension)",
                location: .init(field: field.name)
            )
        }
        return loaded.withLock { table in
            if let existing = table[key] { return existing }
            let entry = Loaded(encoder: encoder)
            table[key] = entry
            return entry
        }
    }

    /// The loaded encoder of a field (for its tokenizer, say), checked as ``resolve(_:)`` checks it.
    /// - Throws: `TesseraError` from ``resolve(_:)``, or when the model cannot be loaded or does not fit the field.
    public func tokenEncoder(for field: VectorField) throws(TesseraError) -> TokenEncoder {
        try encoder(for: field).encoder
    }

    /// A query's encoding for a field (token vectors, their tokens, the pooled vector), kept until the encoder's
    /// next query text, so that the query pipeline reuses it.
    /// - Throws: `TesseraError` from ``resolve(_:)``; the encoder's errors.
    public func encodeQuery(_ text: String, for field: VectorField) throws -> EncodedText {
        let entry = try encoder(for: field)
        if let kept = entry.lastQuery.withLock({ $0 }), kept.text.utf8.elementsEqual(text.utf8) { return kept.encoded }
        let encoded = try entry.encoder.encodeQuery(text)
        entry.lastQuery.withLock { $0 = (text, encoded) }
        return encoded
    }

    /// Encodes a query's text for a field, with the model and profile the field was built with.
    /// - Throws: `TesseraError` from ``resolve(_:)``; the encoder's errors.
    public func encode(_ text: String, for field: VectorField) throws -> VectorValue {
        let encoded = try encodeQuery(text, for: field)
        if case .dense = field.kind { return .dense(encoded.pooled) }
        return .flat(values: encoded.vectors, tokenCount: encoded.tokenCount)
    }

    /// Encodes a document's text for a field, with the model and profile the field was built with.
    /// - Throws: `TesseraError` from ``resolve(_:)``; the encoder's errors.
    public func encodeDocument(_ text: String, for field: VectorField) throws -> VectorValue {
        let entry = try encoder(for: field)
        guard let encoded = try entry.encoder.encodeDocuments([text]).first else {
            throw TesseraError(.invalidArgument, "the encoder returned nothing for a document")
        }
        if case .dense = field.kind { return .dense(encoded.pooled) }
        return .flat(values: encoded.vectors, tokenCount: encoded.tokenCount)
    }
}
