/// Turns text into token vectors (and a pooled vector) with a BERT model, a tokenizer and an encoding profile.
///
/// ```swift
/// let encoder = try TokenEncoder(modelDirectory: "models/all-MiniLM-L6-v2")
/// let documents = try encoder.encodeDocuments(["late interaction", "MaxSim scores token vectors"])
/// let query = try encoder.encodeQuery("what is late interaction?")
/// ```
public struct TokenEncoder: Sendable {
    /// The profile: markers, kept tokens and lengths.
    public let profile: EncodingProfile
    /// The BERT encoder.
    public let model: BertModel
    /// The WordPiece tokenizer.
    public let tokenizer: BertTokenizer
    /// The checkpoint's projection (`colbert`), applied before normalisation.
    public let projection: LinearProjection?
    /// An optional PCA applied last, before the final normalisation.
    public var pca: PCAProjection?
    /// How many documents one forward pass holds.
    public var batchSize: Int = 32

    /// The profile's limits, clamped to the model's position table.
    private let maxDocumentTokenCount: Int
    private let maxQueryTokenCount: Int
    private let queryMarker: Int32?
    private let documentMarker: Int32?

    /// The width of the token vectors the encoder returns.
    public var dimension: Int {
        pca?.outputDimension ?? projection?.outputDimension ?? model.configuration.hiddenDimension
    }

    /// The width of the pooled vector.
    public var pooledDimension: Int { model.configuration.hiddenDimension }

    /// Loads the model, tokenizer and (for `colbert`) projection from a model folder.
    /// - Parameters:
    ///   - modelDirectory: A folder with `config.json`, `model.safetensors` and `vocab.txt` (and, for
    ///     `colbert`, `linear.weight` in the checkpoint or a `1_Dense/` module).
    ///   - profile: The encoding profile; `plain` by default.
    ///   - threadCount: Threads per forward pass; `nil` means one per active core.
    ///   - precision: The arithmetic of the model's projections.
    /// - Throws: ``EncoderError`` from loading; `.unsupportedConfiguration` when `colbert` finds no marker tokens,
    ///   `.missingTensor` when it finds no projection; `.invalidArgument` for a profile length out of range.
    public init(
        modelDirectory: String,
        profile: EncodingProfile = .plain(),
        threadCount: Int? = nil,
        precision: EncoderPrecision = .float32
    )
        throws(EncoderError)
    {
        let model = try BertModel(modelDirectory: modelDirectory, threadCount: threadCount, precision: precision)
        let tokenizer = try BertTokenizer(modelDirectory: modelDirectory)
        let projection: LinearProjection?
        if profile.kind == .colbert {
            projection = try LinearProjection.load(
                modelDirectory: modelDirectory,
                inputDimension: model.configuration.hiddenDimension
            )
            if projection == nil {
                throw EncoderError(
                    .missingTensor,
                    "the colbert profile needs 'linear.weight' in model.safetensors or a 1_Dense/ module",
                    location: .init(path: modelDirectory, field: "linear.weight")
                )
            }
        } else {
            projection = nil
        }
        try self.init(model: model, tokenizer: tokenizer, profile: profile, projection: projection)
    }

    /// Assembles an encoder from loaded parts.
    /// - Parameters:
    ///   - model: The BERT encoder.
    ///   - tokenizer: Its tokenizer.
    ///   - profile: The encoding profile.
    ///   - projection: A projection applied to token vectors before normalisation.
    /// - Throws: ``EncoderError`` `.unsupportedConfiguration` when `colbert` finds no marker tokens;
    ///   `.invalidArgument` for a profile length out of range or a projection of the wrong width.
    public init(
        model: BertModel,
        tokenizer: BertTokenizer,
        profile: EncodingProfile,
        projection: LinearProjection?
    )
        throws(EncoderError)
    {
        let maxPositions = model.configuration.maxPositionCount
        let minimum = profile.kind == .colbert ? 4 : 3
        // Longer limits than the position table are clamped to it, as Hugging Face tokenizers do; a fixed colbert
        // query length must fit.
        let queryLimit = profile.kind == .colbert ? maxPositions : Int.max
        for (field, value, limit) in [
            ("maxDocumentTokenCount", profile.maxDocumentTokenCount, Int.max),
            ("queryTokenCount", profile.queryTokenCount, queryLimit),
        ] where !(minimum...limit).contains(value) {
            throw EncoderError(
                .invalidArgument,
                "\(field) \(value) is outside \(minimum)...\(limit == Int.max ? "" : String(limit))",
                location: .init(field: field)
            )
        }
        maxDocumentTokenCount = min(profile.maxDocumentTokenCount, maxPositions)
        maxQueryTokenCount = min(profile.queryTokenCount, maxPositions)
        if let projection, projection.inputDimension != model.configuration.hiddenDimension {
            throw EncoderError(
                .invalidArgument,
                "the projection reads \(projection.inputDimension)-wide vectors; the model writes "
                    + "\(model.configuration.hiddenDimension)",
                location: .init(field: "projection")
            )
        }
        if profile.kind == .colbert {
            // PyLate adds "[Q] " and "[D] " to the vocabulary; ColBERT reuses [unused0] and [unused1].
            guard let query = tokenizer.id(of: "[Q] ") ?? tokenizer.id(of: "[unused0]"),
                let document = tokenizer.id(of: "[D] ") ?? tokenizer.id(of: "[unused1]")
            else {
                throw EncoderError(
                    .unsupportedConfiguration,
                    "the vocabulary has neither '[Q] '/'[D] ' nor '[unused0]'/'[unused1]' marker tokens",
                    location: .init(field: "vocabulary")
                )
            }
            queryMarker = query
            documentMarker = document
        } else {
            queryMarker = nil
            documentMarker = nil
        }
        self.model = model
        self.tokenizer = tokenizer
        self.profile = profile
        self.projection = projection
    }

    /// Encodes documents.
    ///
    /// Documents are sorted by token count and run `batchSize` at a time, then returned in input order.
    /// - Parameter texts: The documents.
    /// - Returns: Per document, in input order: its token vectors `[tokenCount, dimension]`, the kept tokens'
    ///   ids, strings and byte offsets, and the pooled vector.
    /// - Throws: ``EncoderError`` `.invalidText` for an empty (or whitespace-only) text, with `location.offset`
    ///   its index in `texts`; tokenizer errors likewise.
    public func encodeDocuments(_ texts: [String]) throws(EncoderError) -> [EncodedText] {
        var inputs: [EncoderInput] = []
        inputs.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() {
            inputs.append(try documentInput(text, index: index))
        }
        return try run(inputs)
    }

    /// The tokens a document's vectors stand for, without running the model: what ``encodeDocuments(_:)``
    /// returns as `ids`, `tokens` and `offsets` (markers included, skipped punctuation left out), for explaining
    /// a stored document's matches.
    /// - Parameter text: The document.
    /// - Returns: The kept tokens' ids, strings and byte offsets into `text`, one per stored vector.
    /// - Throws: ``EncoderError`` `.invalidText` for an empty text; tokenizer errors.
    public func documentTokens(_ text: String) throws(EncoderError) -> TokenizedText {
        let input = try documentInput(text, index: 0)
        var tokenized = input.tokenized
        if let keep = input.keep, keep.count != tokenized.ids.count {
            tokenized.ids = keep.map { tokenized.ids[$0] }
            tokenized.tokens = keep.map { tokenized.tokens[$0] }
            tokenized.offsets = keep.map { tokenized.offsets[$0] }
        }
        return tokenized
    }

    /// Encodes one query.
    /// - Parameter text: The query.
    /// - Returns: Its token vectors (for `colbert`, exactly ``EncodingProfile/queryTokenCount`` of them), tokens
    ///   and pooled vector.
    /// - Throws: ``EncoderError`` `.invalidText` for an empty query.
    public func encodeQuery(_ text: String) throws(EncoderError) -> EncodedText {
        try encodeQueries([text])[0]
    }

    /// Encodes queries.
    /// - Parameter texts: The queries.
    /// - Returns: Per query, in input order, as ``encodeQuery(_:)``.
    /// - Throws: ``EncoderError`` `.invalidText` for an empty query, with `location.offset` its index.
    public func encodeQueries(_ texts: [String]) throws(EncoderError) -> [EncodedText] {
        var inputs: [EncoderInput] = []
        inputs.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() {
            inputs.append(try queryInput(text, index: index))
        }
        return try run(inputs)
    }

    // MARK: - Inputs

    /// Rejects empty and whitespace-only text, naming its batch index.
    private func checkText(_ text: String, index: Int) throws(EncoderError) {
        if text.unicodeScalars.allSatisfy(\.properties.isWhitespace) {
            throw EncoderError(.invalidText, "the text is empty", location: .init(field: "texts", offset: index))
        }
    }

    private func documentInput(_ text: String, index: Int) throws(EncoderError) -> EncoderInput {
        try checkText(text, index: index)
        switch profile.kind {
        case .plain:
            let tokenized = try tokenizer.encode(text, maxLength: maxDocumentTokenCount)
            return EncoderInput(tokenized: tokenized, pooledTokenCount: tokenized.ids.count, keep: nil)
        case .colbert:
            var tokenized = try tokenizer.encode(text, maxLength: maxDocumentTokenCount - 1)
            insertMarker(documentMarker!, into: &tokenized)
            // ColBERT's skiplist: tokens that are a single punctuation character carry no vector.
            let keep = tokenized.tokens.indices.filter { !Self.isPunctuation(tokenized.tokens[$0]) }
            return EncoderInput(tokenized: tokenized, pooledTokenCount: tokenized.ids.count, keep: keep)
        }
    }

    private func queryInput(_ text: String, index: Int) throws(EncoderError) -> EncoderInput {
        try checkText(text, index: index)
        switch profile.kind {
        case .plain:
            let tokenized = try tokenizer.encode(text, maxLength: maxQueryTokenCount)
            return EncoderInput(tokenized: tokenized, pooledTokenCount: tokenized.ids.count, keep: nil)
        case .colbert:
            var tokenized = try tokenizer.encode(text, maxLength: maxQueryTokenCount - 1)
            insertMarker(queryMarker!, into: &tokenized)
            let textTokenCount = tokenized.ids.count
            // Query augmentation: [MASK] padding to the fixed length, attended like any other token.
            let mask = tokenizer.specialTokens.mask
            let maskToken = tokenizer.token(of: mask) ?? "[MASK]"
            let padding = maxQueryTokenCount - textTokenCount
            tokenized.ids += repeatElement(mask, count: padding)
            tokenized.tokens += repeatElement(maskToken, count: padding)
            tokenized.offsets += repeatElement(nil, count: padding)
            return EncoderInput(tokenized: tokenized, pooledTokenCount: textTokenCount, keep: nil)
        }
    }

    /// Puts a marker right after `[CLS]`.
    private func insertMarker(_ marker: Int32, into tokenized: inout TokenizedText) {
        tokenized.ids.insert(marker, at: 1)
        tokenized.tokens.insert(tokenizer.token(of: marker) ?? "", at: 1)
        tokenized.offsets.insert(nil, at: 1)
    }

    /// ASCII punctuation, as Python's `string.punctuation`: ColBERT's document skiplist.
    static let punctuation: Set<String> = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".map { String($0) })

    /// Whether a token is one punctuation character.
    static func isPunctuation(_ token: String) -> Bool { punctuation.contains(token) }

    // MARK: - Running

    /// Runs inputs through the model in length-sorted batches and post-processes each.
    private func run(_ inputs: [EncoderInput]) throws(EncoderError) -> [EncodedText] {
        let order = inputs.indices.sorted { inputs[$0].tokenized.ids.count < inputs[$1].tokenized.ids.count }
        var results = [EncodedText?](repeating: nil, count: inputs.count)
        var start = 0
        while start < order.count {
            let batch = Array(order[start..<min(start + max(1, batchSize), order.count)])
            let hiddenStates = try model.forward(batch.map { inputs[$0].tokenized.ids })
            for (position, index) in batch.enumerated() {
                results[index] = finish(inputs[index], hiddenState: hiddenStates[position])
            }
            start += batch.count
        }
        return results.map { $0! }
    }

    /// Pools, keeps, projects and normalises one sequence's `last_hidden_state` `[tokenCount, hidden]`.
    private func finish(_ input: EncoderInput, hiddenState: [Float]) -> EncodedText {
        let hidden = model.configuration.hiddenDimension
        var pooled = [Float](repeating: 0, count: hidden)
        for row in 0..<input.pooledTokenCount {
            for column in 0..<hidden { pooled[column] += hiddenState[row * hidden + column] }
        }
        let inverseCount = 1 / Float(input.pooledTokenCount)
        for column in 0..<hidden { pooled[column] *= inverseCount }
        normalizeRows(&pooled, dimension: hidden)

        var tokenized = input.tokenized
        var vectors = hiddenState
        if let keep = input.keep, keep.count != tokenized.ids.count {
            vectors = []
            vectors.reserveCapacity(keep.count * hidden)
            for row in keep { vectors += hiddenState[(row * hidden)..<((row + 1) * hidden)] }
            tokenized.ids = keep.map { tokenized.ids[$0] }
            tokenized.tokens = keep.map { tokenized.tokens[$0] }
            tokenized.offsets = keep.map { tokenized.offsets[$0] }
        }
        let rowCount = tokenized.ids.count
        var dimension = hidden
        if let projection {
            vectors = projection.apply(vectors, rowCount: rowCount)
            dimension = projection.outputDimension
        }
        if let pca {
            normalizeRows(&vectors, dimension: dimension)
            vectors = pca.apply(vectors, rowCount: rowCount)
            dimension = pca.outputDimension
        }
        normalizeRows(&vectors, dimension: dimension)
        return EncodedText(
            vectors: vectors,
            dimension: dimension,
            ids: tokenized.ids,
            tokens: tokenized.tokens,
            offsets: tokenized.offsets,
            pooled: pooled
        )
    }
}

/// One text ready for the model.
private struct EncoderInput: Sendable {
    /// The model's input, markers and padding included.
    var tokenized: TokenizedText
    /// How many leading tokens the pooled vector averages (the query's `[MASK]` padding is left out).
    var pooledTokenCount: Int
    /// The token indices that get a vector, or `nil` for all.
    var keep: [Int]?
}
