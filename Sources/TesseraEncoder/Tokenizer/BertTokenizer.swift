import Foundation

/// Token ids of a text, with the tokens and where each came from in the original text.
public struct TokenizedText: Sendable, Equatable {
    /// Vocabulary ids, in order.
    public var ids: [Int32]
    /// The token strings (continuation pieces keep their `##` prefix).
    public var tokens: [String]
    /// For each token, the UTF-8 byte range in the original text it came from; `nil` for tokens that the
    /// tokenizer added ([CLS], [SEP], markers, padding).
    public var offsets: [Range<Int>?]

    /// The number of tokens.
    public var count: Int { ids.count }

    /// Creates a tokenized text.
    /// - Parameters:
    ///   - ids: vocabulary ids.
    ///   - tokens: token strings, one per id.
    ///   - offsets: byte ranges in the original text, one per id.
    public init(ids: [Int32] = [], tokens: [String] = [], offsets: [Range<Int>?] = []) {
        self.ids = ids
        self.tokens = tokens
        self.offsets = offsets
    }

    mutating func append(id: Int32, token: String, offset: Range<Int>?) {
        ids.append(id)
        tokens.append(token)
        offsets.append(offset)
    }
}

/// The ids of the special tokens BERT-family models use.
public struct SpecialTokenIDs: Sendable, Equatable {
    /// `[CLS]`, first token of every sequence.
    public var cls: Int32
    /// `[SEP]`, last token of every sequence.
    public var sep: Int32
    /// `[PAD]`, padding.
    public var pad: Int32
    /// `[MASK]`, the masked-language-model token (ColBERT pads queries with it).
    public var mask: Int32
    /// `[UNK]`, what an unknown word becomes.
    public var unknown: Int32
}

/// A WordPiece tokenizer for BERT-family models that gives the same ids as Hugging Face `tokenizers`
/// (BertNormalizer, BertPreTokenizer, WordPiece, the `[CLS] … [SEP]` template).
///
/// Steps, each following the reference implementation:
/// 1. Added tokens such as `[MASK]` written literally in the text are matched first, before normalisation.
/// 2. Normalisation: control and format characters, U+0000 and U+FFFD are dropped and whitespace becomes a
///    space (`cleanText`); CJK ideographs get spaces around them (`handleChineseCharacters`); accents are
///    stripped by canonical decomposition and removal of nonspacing marks (`stripAccents`, following
///    `lowercase` when unset); then each character is lowercased (`lowercase`).
/// 3. Pre-tokenisation splits on whitespace and makes every punctuation character its own word.
/// 4. WordPiece: greedy longest match, continuation pieces prefixed with `##`; a word longer than
///    `maxInputCharactersPerWord` characters, or with a part no piece matches, becomes one `[UNK]`.
///
/// Offsets are tracked through every step, so each token maps back to the bytes of the original text.
public struct BertTokenizer: Sendable {
    /// Normalisation options (those of Hugging Face's `BertNormalizer`).
    public struct Options: Sendable, Equatable {
        /// Lowercase every character.
        public var lowercase: Bool = true
        /// Strip accents; `nil` follows `lowercase`.
        public var stripAccents: Bool?
        /// Put spaces around CJK ideographs.
        public var handleChineseCharacters: Bool = true
        /// Drop control characters and map whitespace to spaces.
        public var cleanText: Bool = true
        /// The token unknown words become.
        public var unknownToken: String = "[UNK]"
        /// Longer words (in Unicode scalars) become the unknown token.
        public var maxInputCharactersPerWord: Int = 100
        /// The prefix of continuation pieces.
        public var continuingSubwordPrefix: String = "##"
    }

    let options: Options
    private let pieceIDs: [String: Int32]
    private let continuationIDs: [String: Int32]
    private let vocabulary: [String]
    private let longestPiece: Int
    private let unknownID: Int32
    /// Tokens matched verbatim in the original text, longest first.
    private let addedTokens: [(content: [Unicode.Scalar], id: Int32)]
    /// The ids of the special tokens.
    public let specialTokens: SpecialTokenIDs

    /// The number of tokens in the vocabulary.
    public var vocabularySize: Int { vocabulary.count }

    /// Creates a tokenizer from a vocabulary (token i has id i).
    /// - Parameters:
    ///   - vocabulary: the tokens, in id order; must contain the unknown token, `[CLS]` and `[SEP]`.
    ///   - lowercase: lowercase every character.
    ///   - stripAccents: strip accents; `nil` follows `lowercase`.
    ///   - handleChineseCharacters: put spaces around CJK ideographs.
    ///   - cleanText: drop control characters and map whitespace to spaces.
    ///   - unknownToken: the token unknown words become.
    ///   - maxInputCharactersPerWord: longer words become the unknown token.
    ///   - continuingSubwordPrefix: the prefix of continuation pieces.
    /// - Throws: `EncoderError` when a required special token is missing from the vocabulary.
    public init(
        vocabulary: [String],
        lowercase: Bool = true,
        stripAccents: Bool? = nil,
        handleChineseCharacters: Bool = true,
        cleanText: Bool = true,
        unknownToken: String = "[UNK]",
        maxInputCharactersPerWord: Int = 100,
        continuingSubwordPrefix: String = "##"
    ) throws(EncoderError) {
        let options = Options(
            lowercase: lowercase,
            stripAccents: stripAccents,
            handleChineseCharacters: handleChineseCharacters,
            cleanText: cleanText,
            unknownToken: unknownToken,
            maxInputCharactersPerWord: maxInputCharactersPerWord,
            continuingSubwordPrefix: continuingSubwordPrefix
        )
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", unknownToken]
        let added = vocabulary.enumerated().filter { specials.contains($0.element) }.map {
            ($0.element, Int32($0.offset))
        }
        try self.init(vocabulary: vocabulary, options: options, addedTokens: added, path: nil)
    }

    init(
        vocabulary: [String],
        options: Options,
        addedTokens: [(String, Int32)],
        path: String?
    ) throws(EncoderError) {
        self.options = options
        self.vocabulary = vocabulary
        var pieces = [String: Int32](minimumCapacity: vocabulary.count)
        var continuations = [String: Int32]()
        var longest = 1
        let prefixScalars = Array(options.continuingSubwordPrefix.unicodeScalars)
        for (index, token) in vocabulary.enumerated() {
            if pieces[token] == nil { pieces[token] = Int32(index) }
            // Compare scalars, not Characters: a continuation such as "##ि" is two graphemes ("#", "#ि"), so
            // Character-based prefix tests would miss it.
            if !prefixScalars.isEmpty, token.unicodeScalars.starts(with: prefixScalars) {
                var rest = String.UnicodeScalarView()
                rest.append(contentsOf: token.unicodeScalars.dropFirst(prefixScalars.count))
                let key = String(rest)
                if continuations[key] == nil { continuations[key] = Int32(index) }
            }
            longest = max(longest, token.unicodeScalars.count)
        }
        pieceIDs = pieces
        continuationIDs = continuations
        longestPiece = longest
        func require(_ token: String) throws(EncoderError) -> Int32 {
            guard let id = pieces[token] else {
                throw EncoderError(
                    .malformedFile,
                    "the vocabulary has no '\(token)' token",
                    location: .init(path: path, field: "vocabulary")
                )
            }
            return id
        }
        unknownID = try require(options.unknownToken)
        specialTokens = SpecialTokenIDs(
            cls: try require("[CLS]"),
            sep: try require("[SEP]"),
            pad: pieces["[PAD]"] ?? 0,
            mask: pieces["[MASK]"] ?? unknownID,
            unknown: unknownID
        )
        self.addedTokens = addedTokens.filter { !$0.0.isEmpty }
            .map { (Array($0.0.unicodeScalars), $0.1) }
            .sorted { $0.content.count > $1.content.count }
    }

    /// The id of a token, if the vocabulary has it.
    /// - Parameter token: the token string (continuation pieces with their prefix).
    /// - Returns: its id, or `nil`.
    public func id(of token: String) -> Int32? { pieceIDs[token] }

    /// The token string of an id.
    /// - Parameter id: a vocabulary id.
    /// - Returns: the token, or `nil` when the id is out of range.
    public func token(of id: Int32) -> String? {
        id >= 0 && Int(id) < vocabulary.count ? vocabulary[Int(id)] : nil
    }

    /// The word pieces of a text, with no special tokens and no truncation.
    /// - Parameter text: any text.
    /// - Returns: the pieces with their ids and byte offsets.
    public func wordPieces(_ text: String) -> TokenizedText {
        var output = TokenizedText()
        let source = SourceText(text)
        var segmentStart = 0
        var index = 0
        let scalars = source.scalars
        while index < scalars.count {
            if let (length, id) = addedToken(at: index, in: scalars) {
                appendPieces(of: source, range: segmentStart..<index, to: &output)
                output.append(
                    id: id,
                    token: vocabulary[Int(id)],
                    offset: source.byteRange(ofScalars: index..<(index + length))
                )
                index += length
                segmentStart = index
            } else {
                index += 1
            }
        }
        appendPieces(of: source, range: segmentStart..<scalars.count, to: &output)
        return output
    }

    /// Tokenizes a text as one sequence: `[CLS] pieces [SEP]`.
    /// - Parameters:
    ///   - text: any text; empty or whitespace-only text gives `[CLS] [SEP]`.
    ///   - maxLength: the most tokens to return, special tokens included (≥ 2); pieces past it are dropped.
    /// - Returns: ids, tokens and offsets.
    /// - Throws: `EncoderError` when `maxLength` is below 2.
    public func encode(_ text: String, maxLength: Int? = nil) throws(EncoderError) -> TokenizedText {
        if let maxLength, maxLength < 2 {
            throw EncoderError(
                .invalidArgument,
                "maxLength must leave room for [CLS] and [SEP]; got \(maxLength)",
                location: .init(field: "maxLength")
            )
        }
        let pieces = wordPieces(text)
        let kept = maxLength.map { min(pieces.count, $0 - 2) } ?? pieces.count
        var output = TokenizedText()
        output.ids.reserveCapacity(kept + 2)
        output.append(id: specialTokens.cls, token: vocabulary[Int(specialTokens.cls)], offset: nil)
        output.ids.append(contentsOf: pieces.ids.prefix(kept))
        output.tokens.append(contentsOf: pieces.tokens.prefix(kept))
        output.offsets.append(contentsOf: pieces.offsets.prefix(kept))
        output.append(id: specialTokens.sep, token: vocabulary[Int(specialTokens.sep)], offset: nil)
        return output
    }

    /// Tokenizes UTF-8 bytes as one sequence, checking that they are valid UTF-8 first.
    /// - Parameters:
    ///   - bytes: the text's UTF-8 encoding.
    ///   - maxLength: the most tokens to return, special tokens included.
    /// - Returns: ids, tokens and offsets (byte offsets into `bytes`).
    /// - Throws: `EncoderError` (`invalidText`) naming the offset of the first byte that is not valid UTF-8.
    public func encode(utf8 bytes: [UInt8], maxLength: Int? = nil) throws(EncoderError) -> TokenizedText {
        if let offset = UTF8Validation.firstInvalidOffset(bytes) {
            throw EncoderError(
                .invalidText,
                "the text is not valid UTF-8 (byte 0x\(String(bytes[offset], radix: 16)))",
                location: .init(field: "text", offset: offset)
            )
        }
        return try encode(String(decoding: bytes, as: UTF8.self), maxLength: maxLength)
    }

    private func addedToken(at index: Int, in scalars: [Unicode.Scalar]) -> (length: Int, id: Int32)? {
        guard !addedTokens.isEmpty, scalars[index] == "[" || !addedTokens.allSatisfy({ $0.content.first == "[" })
        else { return nil }
        for (content, id) in addedTokens where content.count <= scalars.count - index {
            var matches = true
            for offset in 0..<content.count where scalars[index + offset] != content[offset] {
                matches = false
                break
            }
            if matches { return (content.count, id) }
        }
        return nil
    }

    /// Normalises, pre-tokenizes and splits into pieces the original scalars `range`.
    private func appendPieces(of source: SourceText, range: Range<Int>, to output: inout TokenizedText) {
        guard !range.isEmpty else { return }
        let normalized = normalize(source.scalars, range: range)
        var wordStart: Int?
        for index in 0...normalized.scalars.count {
            let scalar = index < normalized.scalars.count ? normalized.scalars[index] : " "
            let isSpace = index == normalized.scalars.count || BertCharacters.isWhitespace(scalar)
            let isPunctuation = !isSpace && BertCharacters.isPunctuation(scalar)
            if isSpace || isPunctuation {
                if let start = wordStart {
                    appendWord(normalized, start..<index, source: source, to: &output)
                    wordStart = nil
                }
                if isPunctuation { appendWord(normalized, index..<(index + 1), source: source, to: &output) }
            } else if wordStart == nil {
                wordStart = index
            }
        }
    }

    private func appendWord(
        _ normalized: NormalizedText,
        _ word: Range<Int>,
        source: SourceText,
        to output: inout TokenizedText
    ) {
        func offset(_ pieceRange: Range<Int>) -> Range<Int> {
            let first = normalized.origins[pieceRange.lowerBound]
            var last = first
            for index in pieceRange { last = max(last, normalized.origins[index]) }
            return source.byteRange(ofScalars: Int(first)..<(Int(last) + 1))
        }
        if word.count > options.maxInputCharactersPerWord {
            output.append(id: unknownID, token: options.unknownToken, offset: offset(word))
            return
        }
        let scalars = normalized.scalars
        var pieces: [(id: Int32, range: Range<Int>)] = []
        var start = word.lowerBound
        while start < word.upperBound {
            var end = min(word.upperBound, start + longestPiece)
            var found: Int32?
            while end > start {
                var candidate = String.UnicodeScalarView()
                candidate.append(contentsOf: scalars[start..<end])
                let key = String(candidate)
                found = start == word.lowerBound ? pieceIDs[key] : continuationIDs[key]
                if found != nil { break }
                end -= 1
            }
            guard let id = found else {
                output.append(id: unknownID, token: options.unknownToken, offset: offset(word))
                return
            }
            pieces.append((id, start..<end))
            start = end
        }
        for piece in pieces {
            output.append(id: piece.id, token: vocabulary[Int(piece.id)], offset: offset(piece.range))
        }
    }

    private func normalize(_ scalars: [Unicode.Scalar], range: Range<Int>) -> NormalizedText {
        var output = NormalizedText()
        output.scalars.reserveCapacity(range.count)
        output.origins.reserveCapacity(range.count)
        let stripAccents = options.stripAccents ?? options.lowercase
        for index in range {
            var scalar = scalars[index]
            let origin = Int32(index)
            if options.cleanText {
                if BertCharacters.isRemovedByCleaning(scalar) { continue }
                if BertCharacters.isWhitespace(scalar) { scalar = " " }
            }
            if scalar.isASCII {
                // ASCII has nothing to decompose and lowercases to one scalar.
                let lowered = options.lowercase && scalar.value >= 65 && scalar.value <= 90
                output.append(lowered ? Unicode.Scalar(scalar.value + 32)! : scalar, origin: origin)
                continue
            }
            if options.handleChineseCharacters, BertCharacters.isChineseCharacter(scalar) {
                output.append(" ", origin: origin)
                output.append(scalar, origin: origin)
                output.append(" ", origin: origin)
                continue
            }
            var decomposed: [Unicode.Scalar] = [scalar]
            if stripAccents {
                decomposed = BertCharacters.canonicalDecomposition(scalar).filter {
                    $0.properties.generalCategory != .nonspacingMark
                }
            }
            for part in decomposed {
                if options.lowercase {
                    for lowered in part.properties.lowercaseMapping.unicodeScalars {
                        output.append(lowered, origin: origin)
                    }
                } else {
                    output.append(part, origin: origin)
                }
            }
        }
        return output
    }
}

/// Normalised scalars, each with the index of the original scalar it came from.
private struct NormalizedText {
    var scalars: [Unicode.Scalar] = []
    var origins: [Int32] = []

    mutating func append(_ scalar: Unicode.Scalar, origin: Int32) {
        scalars.append(scalar)
        origins.append(origin)
    }
}

/// The original text as scalars with their UTF-8 byte offsets.
private struct SourceText {
    var scalars: [Unicode.Scalar] = []
    /// `scalars.count + 1` byte offsets: scalar i is bytes `byteOffsets[i] ..< byteOffsets[i + 1]`.
    var byteOffsets: [Int] = [0]

    init(_ text: String) {
        let byteCount = text.utf8.count
        scalars.reserveCapacity(byteCount)
        byteOffsets.reserveCapacity(byteCount + 1)
        var offset = 0
        for scalar in text.unicodeScalars {
            scalars.append(scalar)
            offset += UTF8.width(scalar)
            byteOffsets.append(offset)
        }
    }

    func byteRange(ofScalars range: Range<Int>) -> Range<Int> {
        byteOffsets[range.lowerBound]..<byteOffsets[range.upperBound]
    }
}
