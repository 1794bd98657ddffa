/// The checkpoint tensor names Tessera reads, in one table.
///
/// Names are those of Hugging Face `BertModel`. A checkpoint saved from a wrapping model (`BertForMaskedLM`,
/// ColBERT's `HF_ColBERT`) prefixes them with `bert.`; ``BertTensorNames/lookupCandidates(_:)`` tries both.
enum BertTensorNames {
    static let wordEmbeddings = "embeddings.word_embeddings.weight"
    static let positionEmbeddings = "embeddings.position_embeddings.weight"
    static let tokenTypeEmbeddings = "embeddings.token_type_embeddings.weight"
    static let embeddingNormScale = "embeddings.LayerNorm.weight"
    static let embeddingNormBias = "embeddings.LayerNorm.bias"

    /// The per-layer tensors, as suffixes after `encoder.layer.<index>.`.
    enum Layer: String, CaseIterable {
        case queryWeight = "attention.self.query.weight"
        case queryBias = "attention.self.query.bias"
        case keyWeight = "attention.self.key.weight"
        case keyBias = "attention.self.key.bias"
        case valueWeight = "attention.self.value.weight"
        case valueBias = "attention.self.value.bias"
        case attentionOutputWeight = "attention.output.dense.weight"
        case attentionOutputBias = "attention.output.dense.bias"
        case attentionNormScale = "attention.output.LayerNorm.weight"
        case attentionNormBias = "attention.output.LayerNorm.bias"
        case intermediateWeight = "intermediate.dense.weight"
        case intermediateBias = "intermediate.dense.bias"
        case outputWeight = "output.dense.weight"
        case outputBias = "output.dense.bias"
        case outputNormScale = "output.LayerNorm.weight"
        case outputNormBias = "output.LayerNorm.bias"
    }

    /// The full name of a per-layer tensor.
    static func layer(_ index: Int, _ tensor: Layer) -> String { "encoder.layer.\(index).\(tensor.rawValue)" }

    /// The checkpoint prefixes tried, in order.
    static let prefixes = ["", "bert."]

    /// The names under which a tensor may be stored.
    static func lookupCandidates(_ name: String) -> [String] { prefixes.map { $0 + name } }
}

/// The weights of one encoder layer, converted to `Float`, row-major.
struct BertLayerWeights: Sendable {
    /// Query, key and value projections stacked: `[3 * hidden, hidden]`, so one GEMM computes all three.
    var queryKeyValueWeight: [Float]
    /// `[3 * hidden]`.
    var queryKeyValueBias: [Float]
    /// `[hidden, hidden]`.
    var attentionOutputWeight: [Float]
    var attentionOutputBias: [Float]
    var attentionNormScale: [Float]
    var attentionNormBias: [Float]
    /// `[intermediate, hidden]`.
    var intermediateWeight: [Float]
    var intermediateBias: [Float]
    /// `[hidden, intermediate]`.
    var outputWeight: [Float]
    var outputBias: [Float]
    var outputNormScale: [Float]
    var outputNormBias: [Float]
}

extension BertLayerWeights {
    /// Drops the float32 projection weights (kept: biases, LayerNorm), once a quantised copy replaces them.
    mutating func dropProjections() {
        queryKeyValueWeight = []
        attentionOutputWeight = []
        intermediateWeight = []
        outputWeight = []
    }
}

/// All weights of a BERT encoder, converted to `Float`, row-major.
struct BertWeights: Sendable {
    /// `[vocabulary, hidden]`.
    var wordEmbeddings: [Float]
    /// `[maxPositions, hidden]`.
    var positionEmbeddings: [Float]
    /// Row 0 of the token-type table, `[hidden]`: Tessera encodes every token as type 0.
    var tokenTypeEmbedding: [Float]
    var embeddingNormScale: [Float]
    var embeddingNormBias: [Float]
    var layers: [BertLayerWeights]

    /// Reads and checks every tensor the configuration implies.
    /// - Parameters:
    ///   - file: The open checkpoint.
    ///   - configuration: The model's configuration.
    /// - Throws: ``EncoderError`` `.missingTensor` or `.tensorShape` naming the tensor (and both shapes),
    ///   `.unsupportedDataType`.
    init(file: borrowing SafetensorsFile, configuration: BertConfiguration) throws(EncoderError) {
        let hidden = configuration.hiddenDimension
        let intermediate = configuration.intermediateDimension
        func load(_ name: String, _ shape: [Int]) throws(EncoderError) -> [Float] {
            try file.tensor(candidates: BertTensorNames.lookupCandidates(name), shape: shape)
        }
        wordEmbeddings = try load(BertTensorNames.wordEmbeddings, [configuration.vocabularySize, hidden])
        positionEmbeddings = try load(BertTensorNames.positionEmbeddings, [configuration.maxPositionCount, hidden])
        let typeTable = try load(
            BertTensorNames.tokenTypeEmbeddings,
            [configuration.typeVocabularySize, hidden]
        )
        tokenTypeEmbedding = Array(typeTable[0..<hidden])
        embeddingNormScale = try load(BertTensorNames.embeddingNormScale, [hidden])
        embeddingNormBias = try load(BertTensorNames.embeddingNormBias, [hidden])
        var layers: [BertLayerWeights] = []
        for index in 0..<configuration.layerCount {
            func tensor(_ part: BertTensorNames.Layer, _ shape: [Int]) throws(EncoderError) -> [Float] {
                try load(BertTensorNames.layer(index, part), shape)
            }
            let queryKeyValueWeight =
                try tensor(.queryWeight, [hidden, hidden]) + tensor(.keyWeight, [hidden, hidden])
                + tensor(.valueWeight, [hidden, hidden])
            let queryKeyValueBias =
                try tensor(.queryBias, [hidden]) + tensor(.keyBias, [hidden]) + tensor(.valueBias, [hidden])
            layers.append(
                BertLayerWeights(
                    queryKeyValueWeight: queryKeyValueWeight,
                    queryKeyValueBias: queryKeyValueBias,
                    attentionOutputWeight: try tensor(.attentionOutputWeight, [hidden, hidden]),
                    attentionOutputBias: try tensor(.attentionOutputBias, [hidden]),
                    attentionNormScale: try tensor(.attentionNormScale, [hidden]),
                    attentionNormBias: try tensor(.attentionNormBias, [hidden]),
                    intermediateWeight: try tensor(.intermediateWeight, [intermediate, hidden]),
                    intermediateBias: try tensor(.intermediateBias, [intermediate]),
                    outputWeight: try tensor(.outputWeight, [hidden, intermediate]),
                    outputBias: try tensor(.outputBias, [hidden]),
                    outputNormScale: try tensor(.outputNormScale, [hidden]),
                    outputNormBias: try tensor(.outputNormBias, [hidden])
                )
            )
        }
        self.layers = layers
    }
}

extension SafetensorsFile {
    /// Reads the first of `candidates` that the file holds, checking its shape.
    /// - Parameters:
    ///   - candidates: Names to try, in order; the first is used in messages.
    ///   - shape: The shape the tensor must have.
    /// - Returns: The tensor's elements as `Float`, row-major.
    /// - Throws: ``EncoderError`` `.missingTensor` naming the tensor, `.tensorShape` naming it with both shapes,
    ///   or `.unsupportedDataType`.
    func tensor(candidates: [String], shape: [Int]) throws(EncoderError) -> [Float] {
        guard let name = candidates.first(where: { tensors[$0] != nil }) else {
            let tried = candidates.map { "'\($0)'" }.joined(separator: " or ")
            throw EncoderError(
                .missingTensor,
                "tensor \(tried) is missing (expected shape \(shape))",
                location: .init(path: path, field: candidates.first)
            )
        }
        let actualShape = tensors[name]?.shape ?? []
        guard actualShape == shape else {
            throw EncoderError(
                .tensorShape,
                "tensor '\(name)' has shape \(actualShape), expected \(shape)",
                location: .init(path: path, field: name)
            )
        }
        return try floats(name).values
    }
}
