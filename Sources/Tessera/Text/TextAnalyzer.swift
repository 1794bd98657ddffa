import Foundation

/// Turns text into the terms that BM25 indexes and queries: words split at every character that is not a
/// letter or digit, Unicode-folded (compatibility forms, diacritics and width removed), lowercased, stop words dropped, stemmed.
public struct TextAnalyzer: Sendable, Equatable, Codable {
    /// Whether to remove diacritics and width variants (`é` → `e`).
    public var foldsDiacritics: Bool
    /// Whether to drop ``englishStopWords``.
    public var removesStopWords: Bool
    /// Whether to reduce words to their Porter stems (`connections` → `connect`).
    public var stems: Bool

    /// Creates an analyzer.
    /// - Parameters:
    ///   - foldsDiacritics: Fold diacritics and width (default true).
    ///   - removesStopWords: Drop English stop words (default true).
    ///   - stems: Porter-stem (default true).
    public init(foldsDiacritics: Bool = true, removesStopWords: Bool = true, stems: Bool = true) {
        self.foldsDiacritics = foldsDiacritics
        self.removesStopWords = removesStopWords
        self.stems = stems
    }

    /// The terms of a text, in order (repeated terms repeat).
    /// - Parameter text: Any text.
    /// - Returns: Its terms.
    public func terms(_ text: String) -> [String] {
        let folded =
            foldsDiacritics
            ? text.precomposedStringWithCompatibilityMapping.folding(
                options: [.diacriticInsensitive, .widthInsensitive, .caseInsensitive],
                locale: nil
            )
            : text.lowercased()
        var terms: [String] = []
        var word = ""
        func flush() {
            guard !word.isEmpty else { return }
            defer { word = "" }
            if removesStopWords, Self.englishStopWords.contains(word) { return }
            terms.append(stems ? PorterStemmer.stem(word) : word)
        }
        for character in folded {
            if character.isLetter || character.isNumber {
                word.append(contentsOf: character.lowercased())
            } else {
                flush()
            }
        }
        flush()
        return terms
    }

    /// Common English function words.
    public static let englishStopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
        "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
        "will", "with", "were", "which", "what", "when", "where", "who", "whom", "how", "its", "from", "has",
        "have", "had", "been", "being", "do", "does", "did", "can", "could", "would", "should", "may", "might",
        "than", "so", "we", "our", "you", "your", "he", "she", "his", "her", "him", "them", "i", "me", "my",
        "also", "any", "all", "some", "other", "about", "over", "under", "between", "both", "each", "more",
        "most", "very", "only", "own", "same", "too", "just", "after", "before", "during", "while", "here",
    ]
}
