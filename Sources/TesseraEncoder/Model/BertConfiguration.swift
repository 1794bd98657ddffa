#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The shape and numeric settings of a BERT encoder, read from a Hugging Face `config.json`.
public struct BertConfiguration: Sendable, Equatable {
    /// The number of encoder layers (`num_hidden_layers`).
    public var layerCount: Int
    /// The width of every token vector between layers (`hidden_size`).
    public var hiddenDimension: Int
    /// The number of attention heads (`num_attention_heads`); divides ``hiddenDimension``.
    public var headCount: Int
    /// The width of the feed-forward layer (`intermediate_size`).
    public var intermediateDimension: Int
    /// The LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEpsilon: Float
    /// The longest sequence the position table covers, specials included (`max_position_embeddings`).
    public var maxPositionCount: Int
    /// The number of token types (`type_vocab_size`); Tessera always uses type 0.
    public var typeVocabularySize: Int
    /// The number of rows in the word-embedding table (`vocab_size`).
    public var vocabularySize: Int

    /// The width of one attention head.
    public var headDimension: Int { hiddenDimension / headCount }

    /// Creates a configuration from its parts; the activation is always exact-erf GELU.
    /// - Parameters:
    ///   - layerCount: The number of encoder layers.
    ///   - hiddenDimension: The token-vector width.
    ///   - headCount: The number of attention heads; must divide `hiddenDimension`.
    ///   - intermediateDimension: The feed-forward width.
    ///   - layerNormEpsilon: The LayerNorm epsilon.
    ///   - maxPositionCount: The position-table length.
    ///   - typeVocabularySize: The number of token types.
    ///   - vocabularySize: The vocabulary size.
    /// - Throws: ``EncoderError`` `.unsupportedConfiguration` when a value is out of range.
    public init(
        layerCount: Int,
        hiddenDimension: Int,
        headCount: Int,
        intermediateDimension: Int,
        layerNormEpsilon: Float = 1e-12,
        maxPositionCount: Int = 512,
        typeVocabularySize: Int = 2,
        vocabularySize: Int
    ) throws(EncoderError) {
        self.layerCount = layerCount
        self.hiddenDimension = hiddenDimension
        self.headCount = headCount
        self.intermediateDimension = intermediateDimension
        self.layerNormEpsilon = layerNormEpsilon
        self.maxPositionCount = maxPositionCount
        self.typeVocabularySize = typeVocabularySize
        self.vocabularySize = vocabularySize
        try validate(path: nil)
    }

    /// Reads `config.json`.
    /// - Parameter path: The path of a Hugging Face BERT `config.json`.
    /// - Throws: ``EncoderError``: `.missingFile`; `.malformedFile` naming a missing or mistyped field;
    ///   `.unsupportedConfiguration` naming the field for an activation other than `gelu`, a non-BERT model type
    ///   or a non-absolute position embedding.
    public init(contentsOf path: String) throws(EncoderError) {
        let bytes = try EncoderError.readFile(path)
        let raw: RawBertConfiguration
        do {
            raw = try JSONDecoder().decode(RawBertConfiguration.self, from: Data(bytes))
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw EncoderError(.malformedFile, "field has the wrong type", location: .init(path: path, field: field))
        } catch {
            throw EncoderError(.malformedFile, "not a JSON object: \(error)", location: .init(path: path))
        }
        func require<Value>(_ value: Value?, _ field: String) throws(EncoderError) -> Value {
            guard let value else {
                throw EncoderError(.malformedFile, "missing field", location: .init(path: path, field: field))
            }
            return value
        }
        func unsupported(_ message: String, _ field: String) -> EncoderError {
            EncoderError(.unsupportedConfiguration, message, location: .init(path: path, field: field))
        }
        if let modelType = raw.modelType, modelType != "bert" {
            throw unsupported("model_type '\(modelType)' is not supported; only 'bert' is", "model_type")
        }
        let activation = try require(raw.hiddenAct, "hidden_act")
        guard activation == "gelu" else {
            throw unsupported(
                "hidden_act '\(activation)' is not supported; only 'gelu' (exact erf) is",
                "hidden_act"
            )
        }
        if let positions = raw.positionEmbeddingType, positions != "absolute" {
            throw unsupported(
                "position_embedding_type '\(positions)' is not supported; only 'absolute' is",
                "position_embedding_type"
            )
        }
        layerCount = try require(raw.numHiddenLayers, "num_hidden_layers")
        hiddenDimension = try require(raw.hiddenSize, "hidden_size")
        headCount = try require(raw.numAttentionHeads, "num_attention_heads")
        intermediateDimension = try require(raw.intermediateSize, "intermediate_size")
        layerNormEpsilon = raw.layerNormEps ?? 1e-12
        maxPositionCount = try require(raw.maxPositionEmbeddings, "max_position_embeddings")
        typeVocabularySize = raw.typeVocabSize ?? 2
        vocabularySize = try require(raw.vocabSize, "vocab_size")
        try validate(path: path)
    }

    private func validate(path: String?) throws(EncoderError) {
        func check(_ condition: Bool, _ field: String, _ message: String) throws(EncoderError) {
            if !condition {
                throw EncoderError(.unsupportedConfiguration, message, location: .init(path: path, field: field))
            }
        }
        try check(layerCount >= 1, "num_hidden_layers", "must be at least 1")
        try check(hiddenDimension >= 1, "hidden_size", "must be at least 1")
        try check(
            headCount >= 1 && hiddenDimension % headCount == 0,
            "num_attention_heads",
            "\(headCount) heads do not divide hidden_size \(hiddenDimension)"
        )
        try check(intermediateDimension >= 1, "intermediate_size", "must be at least 1")
        try check(layerNormEpsilon >= 0, "layer_norm_eps", "must not be negative")
        try check(maxPositionCount >= 1, "max_position_embeddings", "must be at least 1")
        try check(typeVocabularySize >= 1, "type_vocab_size", "must be at least 1")
        try check(vocabularySize >= 1, "vocab_size", "must be at least 1")
    }
}

/// `config.json` as written, every field optional so a missing one can be named.
private struct RawBertConfiguration: Decodable {
    var modelType: String?
    var hiddenAct: String?
    var positionEmbeddingType: String?
    var numHiddenLayers: Int?
    var hiddenSize: Int?
    var numAttentionHeads: Int?
    var intermediateSize: Int?
    var layerNormEps: Float?
    var maxPositionEmbeddings: Int?
    var typeVocabSize: Int?
    var vocabSize: Int?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenAct = "hidden_act"
        case positionEmbeddingType = "position_embedding_type"
        case numHiddenLayers = "num_hidden_layers"
        case hiddenSize = "hidden_size"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size"
    }
}
