/// Qdrant's built-in BM25 model (`qdrant/bm25`): turns a text into a sparse vector, so that a sparse field with
/// the IDF modifier ranks documents by BM25 (the collection supplies the inverse document frequencies at query
/// time).
///
/// A text's tokens are Qdrant's: words split at every character that is not a letter or digit, lowercased,
/// English stop words dropped, Snowball-English stemmed, then kept within the length bounds. A token's dimension
/// is the magnitude of its MurmurHash3 (32-bit, seed 0) read as a signed integer. A document's value for a token
/// is its saturated term frequency `tf·(k+1) / (tf + k·(1 − b + b·len/avg_len))`, with `len` the document's token
/// count; a query holds each of its tokens once with value 1.
public struct SparseBM25Model: Sendable, Equatable {
    /// The model's name as Qdrant's `Document.model` gives it.
    public static let name = "qdrant/bm25"

    /// How text is split into words.
    public enum Tokenizer: String, Sendable, Equatable {
        /// At every character that is not a letter or digit (Qdrant's `word`, the default).
        case word
        /// At white space (Qdrant's `whitespace`).
        case whitespace
    }

    /// Term-frequency saturation (`k`, default 1.2).
    public var k = 1.2
    /// Length normalisation (`b`, default 0.75).
    public var b = 0.75
    /// The document length normalised against (`avg_len`, default 256).
    public var averageLength = 256.0
    /// How text is split into words.
    public var tokenizer = Tokenizer.word
    /// Whether words are lowercased before the stop words and the stemmer see them (default true).
    public var lowercase = true
    /// The words dropped (default Qdrant's English list).
    public var stopWords = Self.englishStopWords
    /// Whether words are reduced to their Snowball English stems (default true).
    public var stems = true
    /// Tokens of fewer characters are dropped.
    public var minimumTokenLength: Int?
    /// Tokens of more characters are dropped.
    public var maximumTokenLength: Int?

    /// The model with Qdrant's defaults.
    public init() {}

    /// Reads Qdrant's `Document.options` for the model (its `Bm25Config`): `k`, `b`, `avg_len`, `tokenizer`
    /// (`word` or `whitespace`), `language` (`english`, the default, or `none`), `lowercase`, `ascii_folding`
    /// (`false` only), `stopwords` (`english`, or `{"languages": ["english"], "custom": […]}`), `stemmer`
    /// (`{"type": "snowball", "language": "english"}` or `{"type": "none"}`), `min_token_len`, `max_token_len`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the option for an unknown option, a value of the
    ///   wrong type or out of range, or a setting Tessera does not implement (another language, tokenizer or
    ///   ASCII folding).
    public init(options: JSONObject) throws(TesseraError) {
        func refuse(_ option: String, _ message: String) -> TesseraError {
            TesseraError(
                .invalidArgument,
                "\(Self.name) option '\(option)': \(message)",
                location: .init(field: "options.\(option)")
            )
        }
        func number(_ option: String, _ value: JSONValue) throws(TesseraError) -> Double {
            switch value {
            case .integer(let n): Double(n)
            case .double(let d) where d.isFinite: d
            default: throw refuse(option, "must be a number, found \(value.jsonText)")
            }
        }
        func length(_ option: String, _ value: JSONValue) throws(TesseraError) -> Int {
            guard case .integer(let n) = value, n >= 0 else {
                throw refuse(option, "must be a non-negative integer, found \(value.jsonText)")
            }
            return Int(n)
        }
        var language = "english"
        if let given = options["language"], given != .null {
            guard case .string(let name) = given, ["english", "none"].contains(name.lowercased()) else {
                throw refuse(
                    "language",
                    "\(given.jsonText) is not supported: Tessera's \(Self.name) knows English (\"english\") and no "
                        + "language (\"none\")"
                )
            }
            language = name.lowercased()
        }
        if language == "none" {
            stopWords = []
            stems = false
        }
        for (option, value) in options.sorted(by: { $0.key < $1.key }) where value != .null {
            switch option {
            case "language":
                break
            case "k":
                k = try number(option, value)
                guard k >= 0 else { throw refuse(option, "must be at least 0, found \(value.jsonText)") }
            case "b":
                b = try number(option, value)
                guard (0...1).contains(b) else {
                    throw refuse(option, "must be between 0 and 1, found \(value.jsonText)")
                }
            case "avg_len":
                averageLength = try number(option, value)
                guard averageLength > 0 else { throw refuse(option, "must be above 0, found \(value.jsonText)") }
            case "tokenizer":
                guard case .string(let name) = value, let kind = Tokenizer(rawValue: name) else {
                    throw refuse(
                        option,
                        "\(value.jsonText) is not supported: Tessera's \(Self.name) splits into words (\"word\") or "
                            + "at white space (\"whitespace\")"
                    )
                }
                tokenizer = kind
            case "lowercase":
                guard case .bool(let flag) = value else { throw refuse(option, "must be a boolean") }
                lowercase = flag
            case "ascii_folding":
                guard value == .bool(false) else {
                    throw refuse(option, "\(value.jsonText) is not supported: Tessera's \(Self.name) does not fold")
                }
            case "stopwords":
                stopWords = try Self.stopWords(value, refuse: { message in refuse(option, message) })
            case "stemmer":
                switch value {
                case ["type": "none"]:
                    stems = false
                case .object(let stemmer)
                where stemmer.count == 2 && stemmer["type"] == "snowball"
                    && (stemmer["language"] == "english" || stemmer["language"] == "English"):
                    stems = true
                default:
                    throw refuse(
                        option,
                        "\(value.jsonText) is not supported: Tessera's \(Self.name) stems English "
                            + "({\"type\": \"snowball\", \"language\": \"english\"}) or not at all ({\"type\": \"none\"})"
                    )
                }
            case "min_token_len":
                minimumTokenLength = try length(option, value)
            case "max_token_len":
                maximumTokenLength = try length(option, value)
            default:
                throw refuse(option, "unknown option")
            }
        }
        if lowercase { stopWords = Set(stopWords.map { $0.lowercased() }) }
    }

    /// Reads Qdrant's `StopwordsInterface`: a language name or `{"languages": […], "custom": […]}`.
    private static func stopWords(
        _ value: JSONValue,
        refuse: (String) -> TesseraError
    ) throws(TesseraError) -> Set<String> {
        func language(_ value: JSONValue) throws(TesseraError) -> Set<String> {
            guard case .string(let name) = value, name.lowercased() == "english" else {
                throw refuse("\(value.jsonText) is not supported: Tessera's \(Self.name) knows English stop words")
            }
            return englishStopWords
        }
        switch value {
        case .string:
            return try language(value)
        case .object(let set):
            var words: Set<String> = []
            for (key, member) in set where member != .null {
                guard case .array(let items) = member, key == "languages" || key == "custom" else {
                    throw refuse("stop words are {\"languages\": […], \"custom\": […]}, found '\(key)'")
                }
                for item in items {
                    if key == "languages" {
                        words.formUnion(try language(item))
                    } else if case .string(let word) = item {
                        words.insert(word)
                    } else {
                        throw refuse("a custom stop word must be a string, found \(item.jsonText)")
                    }
                }
            }
            return words
        default:
            throw refuse("must be a language or {\"languages\": […], \"custom\": […]}, found \(value.jsonText)")
        }
    }

    /// A text's tokens, in order (repeated tokens repeat).
    public func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        func process(_ raw: String) {
            guard !raw.isEmpty else { return }
            var token = lowercase ? raw.lowercased() : raw
            if stopWords.contains(token) { return }
            if stems { token = SnowballEnglishStemmer.stem(token) }
            let length = token.unicodeScalars.count
            if let minimum = minimumTokenLength, length < minimum { return }
            if let maximum = maximumTokenLength, length > maximum { return }
            tokens.append(token)
        }
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let splits =
                switch tokenizer {
                case .word: !(scalar.properties.isAlphabetic || scalar.properties.numericType != nil)
                case .whitespace: scalar.properties.isWhitespace
                }
            if splits {
                process(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        process(String(current))
        return tokens
    }

    /// The sparse vector a document is stored as: each distinct token's saturated term frequency.
    public func documentVector(_ text: String) -> SparseVector {
        let tokens = tokens(text)
        var counts: [String: Int] = [:]
        for token in tokens { counts[token, default: 0] += 1 }
        let length = Double(tokens.count)
        var entries: [UInt32: Float] = [:]
        for (token, count) in counts.sorted(by: { $0.key < $1.key }) {
            let occurrences = Double(count)
            let norm = occurrences.addingProduct(k, 1 - b + b * length / averageLength)
            entries[Self.dimension(of: token)] = Float(occurrences * (k + 1) / norm)
        }
        let indices = entries.keys.sorted()
        return SparseVector(sortedIndices: indices, values: indices.map { entries[$0]! })
    }

    /// The sparse vector a query is searched with: each distinct token once, with value 1.
    public func queryVector(_ text: String) -> SparseVector {
        let indices = Set(tokens(text).map(Self.dimension(of:))).sorted()
        return SparseVector(sortedIndices: indices, values: Array(repeating: 1, count: indices.count))
    }

    /// A token's dimension: the magnitude of its 32-bit MurmurHash3 (seed 0) of its UTF-8 bytes, read as signed.
    public static func dimension(of token: String) -> UInt32 {
        Int32(bitPattern: murmur3(Array(token.utf8))).magnitude
    }

    /// MurmurHash3's 32-bit x86 variant with seed 0.
    static func murmur3(_ bytes: [UInt8]) -> UInt32 {
        let c1: UInt32 = 0xcc9e_2d51
        let c2: UInt32 = 0x1b87_3593
        func scramble(_ k: UInt32) -> UInt32 {
            var k = k &* c1
            k = (k << 15) | (k >> 17)
            return k &* c2
        }
        var hash: UInt32 = 0
        let blocks = bytes.count / 4
        for block in 0..<blocks {
            let base = block * 4
            let k =
                UInt32(bytes[base]) | UInt32(bytes[base + 1]) << 8 | UInt32(bytes[base + 2]) << 16
                | UInt32(bytes[base + 3]) << 24
            hash ^= scramble(k)
            hash = (hash << 13) | (hash >> 19)
            hash = hash &* 5 &+ 0xe654_6b64
        }
        var tail: UInt32 = 0
        let rest = bytes.count & 3
        if rest >= 3 { tail ^= UInt32(bytes[blocks * 4 + 2]) << 16 }
        if rest >= 2 { tail ^= UInt32(bytes[blocks * 4 + 1]) << 8 }
        if rest >= 1 {
            tail ^= UInt32(bytes[blocks * 4])
            hash ^= scramble(tail)
        }
        hash ^= UInt32(truncatingIfNeeded: bytes.count)
        hash ^= hash >> 16
        hash = hash &* 0x85eb_ca6b
        hash ^= hash >> 13
        hash = hash &* 0xc2b2_ae35
        hash ^= hash >> 16
        return hash
    }

    /// Qdrant's English stop words (the NLTK list).
    public static let englishStopWords: Set<String> = [
        "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "you're", "you've", "you'll", "you'd",
        "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "she's", "her", "hers",
        "herself", "it", "it's", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
        "who", "whom", "this", "that", "that'll", "these", "those", "am", "is", "are", "was", "were", "be", "been",
        "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if",
        "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against", "between",
        "into", "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out",
        "on", "off", "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why",
        "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not",
        "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don", "don't",
        "should", "should've", "now", "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't", "couldn",
        "couldn't", "didn", "didn't", "doesn", "doesn't", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't",
        "isn", "isn't", "ma", "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "shan", "shan't",
        "shouldn", "shouldn't", "wasn", "wasn't", "weren", "weren't", "won", "won't", "wouldn", "wouldn't",
    ]
}
