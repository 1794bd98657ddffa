/// How text becomes token vectors: which markers, which tokens are kept, which projection.
public struct EncodingProfile: Sendable, Equatable, Hashable {
    /// The profile's family.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `[CLS] text [SEP]`, every token kept, no markers, no projection; for zero-shot models such as
        /// all-MiniLM-L6-v2.
        case plain
        /// ColBERT: `[CLS] [Q] query [SEP]` padded with attended `[MASK]` tokens to ``queryTokenCount``;
        /// `[CLS] [D] document [SEP]` with punctuation tokens dropped; then the checkpoint's linear projection.
        case colbert
    }

    /// The profile's family.
    public var kind: Kind
    /// The most tokens a document keeps, specials and markers included; longer documents are truncated.
    public var maxDocumentTokenCount: Int
    /// `colbert`: every query is exactly this many tokens (padded with `[MASK]`, or truncated).
    /// `plain`: the most tokens a query keeps.
    public var queryTokenCount: Int

    /// The `plain` profile.
    /// - Parameter maxTokenCount: The most tokens a document or query keeps, specials included (default 256).
    /// - Returns: The profile.
    public static func plain(maxTokenCount: Int = 256) -> EncodingProfile {
        EncodingProfile(kind: .plain, maxDocumentTokenCount: maxTokenCount, queryTokenCount: maxTokenCount)
    }

    /// The `colbert` profile.
    /// - Parameters:
    ///   - queryTokenCount: The fixed query length, markers and `[MASK]` padding included (ColBERT's 32).
    ///   - maxDocumentTokenCount: The most tokens a document keeps, markers included (ColBERT's 180).
    /// - Returns: The profile.
    public static func colbert(queryTokenCount: Int = 32, maxDocumentTokenCount: Int = 180) -> EncodingProfile {
        EncodingProfile(kind: .colbert, maxDocumentTokenCount: maxDocumentTokenCount, queryTokenCount: queryTokenCount)
    }
}

/// One encoded text: its token vectors, the tokens they came from and a pooled vector.
public struct EncodedText: Sendable, Equatable {
    /// The token vectors, `[tokenCount, dimension]`, row-major, each L2-normalised.
    public var vectors: [Float]
    /// The width of one token vector.
    public var dimension: Int
    /// The ids of the tokens kept, one per vector.
    public var ids: [Int32]
    /// The tokens kept, one per vector (`[CLS]`, markers and `[MASK]` included).
    public var tokens: [String]
    /// Each kept token's UTF-8 byte range in the text; `nil` for specials, markers and padding.
    public var offsets: [Range<Int>?]
    /// The mean of `last_hidden_state` over the text's tokens (specials included, `[MASK]` query padding
    /// excluded), L2-normalised, `[hiddenDimension]`: sentence-transformers' output for mean-pooling models.
    public var pooled: [Float]

    /// The number of token vectors.
    public var tokenCount: Int { ids.count }
}
