/// The Snowball English ("Porter2") stemmer, as the Snowball project defines it: the stemmer Qdrant's text
/// indexes and its built-in BM25 model use for English (`connections` → `connect`, `generously` → `generous`).
///
/// It works on lowercase words. Letters outside `a`–`z` are consonants to it, so other scripts pass through
/// unchanged unless they end in an English suffix. (Tessera's own BM25 keeps the original Porter stemmer,
/// ``PorterStemmer``, which its evaluated figures were measured with.)
enum SnowballEnglishStemmer {
    /// The stem of a lowercase word.
    static func stem(_ word: String) -> String {
        if let special = exceptions[word] { return special }
        var w = Word(word)
        guard w.count >= 3 else { return word }
        w.prelude()
        w.markRegions()
        w.step1a()
        if !postStep1aExceptions.contains(w.string) {
            w.step1b()
            w.step1c()
            w.step2()
            w.step3()
            w.step4()
            w.step5()
        }
        return w.postlude()
    }

    /// Words with a fixed stem (or none), checked before anything else.
    static let exceptions: [String: String] = [
        "skis": "ski", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "idly": "idl",
        "gently": "gentl", "ugly": "ugli", "early": "earli", "only": "onli", "singly": "singl", "sky": "sky",
        "news": "news", "howe": "howe", "atlas": "atlas", "cosmos": "cosmos", "bias": "bias", "andes": "andes",
    ]

    /// Words left as they are once step 1a has run.
    static let postStep1aExceptions: Set<String> = [
        "inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed",
    ]

    /// A word being stemmed: its characters (a `y` that acts as a consonant is upper-case `Y`) and regions.
    struct Word {
        var letters: [Unicode.Scalar]
        /// The start of R1 and R2 (the word's length when empty).
        var r1 = 0
        var r2 = 0

        init(_ word: String) { letters = Array(word.unicodeScalars) }

        var count: Int { letters.count }
        var string: String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: letters)
            return String(view)
        }

        static func isVowel(_ c: Unicode.Scalar) -> Bool {
            switch c {
            case "a", "e", "i", "o", "u", "y": true
            default: false
            }
        }

        func vowel(at index: Int) -> Bool { Self.isVowel(letters[index]) }

        /// Whether the word ends with `suffix` (ASCII).
        func ends(with suffix: String) -> Bool {
            var index = letters.count
            for byte in suffix.utf8.reversed() {
                index -= 1
                guard index >= 0, letters[index].value == UInt32(byte) else { return false }
            }
            return true
        }

        /// The longest of `suffixes` (ASCII, longest first) the word ends with.
        func longestSuffix(_ suffixes: [String]) -> String? { suffixes.first(where: ends(with:)) }

        /// Replaces the last `length` characters by `replacement`.
        mutating func replaceSuffix(length: Int, with replacement: String) {
            letters.removeLast(length)
            letters.append(contentsOf: replacement.unicodeScalars)
        }

        /// Whether a vowel comes before position `end`.
        func hasVowel(before end: Int) -> Bool { (0..<max(0, end)).contains { vowel(at: $0) } }

        /// Whether the characters before position `end` end in a short syllable: a consonant other than `w`,
        /// `x` or `Y` after a vowel after a consonant, or a consonant after a vowel that starts the word.
        func shortSyllable(before end: Int) -> Bool {
            guard end >= 2, end <= count else { return false }
            let last = letters[end - 1]
            if end >= 3, !vowel(at: end - 1), last != "w", last != "x", last != "Y", vowel(at: end - 2),
                !vowel(at: end - 3)
            {
                return true
            }
            return end == 2 && !vowel(at: 1) && vowel(at: 0)
        }

        mutating func prelude() {
            if letters.first == "'" { letters.removeFirst() }
            if letters.first == "y" { letters[0] = "Y" }
            for index in letters.indices.dropFirst() where letters[index] == "y" && vowel(at: index - 1) {
                letters[index] = "Y"
            }
        }

        /// R1 starts after the first consonant that follows a vowel (after `gener`, `commun` or `arsen` when the
        /// word starts so), R2 after the first such consonant in R1.
        mutating func markRegions() {
            func regionStart(from start: Int) -> Int {
                var index = start
                while index < count, !vowel(at: index) { index += 1 }
                while index < count, vowel(at: index) { index += 1 }
                return index < count ? index + 1 : count
            }
            if let prefix = ["gener", "commun", "arsen"].first(where: { string.hasPrefix($0) }) {
                r1 = prefix.unicodeScalars.count
            } else {
                r1 = regionStart(from: 0)
            }
            r2 = regionStart(from: r1)
        }

        mutating func step1a() {
            if let apostrophe = longestSuffix(["'s'", "'s", "'"]) {
                letters.removeLast(apostrophe.unicodeScalars.count)
            }
            guard let suffix = longestSuffix(["sses", "ied", "ies", "us", "ss", "s"]) else { return }
            switch suffix {
            case "sses":
                letters.removeLast(2)
            case "ied", "ies":
                replaceSuffix(length: 3, with: count - 3 >= 2 ? "i" : "ie")
            case "s":
                if hasVowel(before: count - 2) { letters.removeLast() }
            default:
                break
            }
        }

        mutating func step1b() {
            guard let suffix = longestSuffix(["eedly", "ingly", "edly", "eed", "ing", "ed"]) else { return }
            let start = count - suffix.unicodeScalars.count
            if suffix == "eed" || suffix == "eedly" {
                if start >= r1 { replaceSuffix(length: suffix.unicodeScalars.count, with: "ee") }
                return
            }
            guard hasVowel(before: start) else { return }
            letters.removeLast(suffix.unicodeScalars.count)
            if ends(with: "at") || ends(with: "bl") || ends(with: "iz") {
                letters.append("e")
            } else if ["bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"].contains(where: ends(with:)) {
                letters.removeLast()
            } else if count == r1, shortSyllable(before: count) {
                letters.append("e")
            }
        }

        mutating func step1c() {
            guard count >= 3, letters[count - 1] == "y" || letters[count - 1] == "Y", !vowel(at: count - 2) else {
                return
            }
            letters[count - 1] = "i"
        }

        static let step2Suffixes: [String: String] = [
            "tional": "tion", "enci": "ence", "anci": "ance", "abli": "able", "entli": "ent", "izer": "ize",
            "ization": "ize", "ational": "ate", "ation": "ate", "ator": "ate", "alism": "al", "aliti": "al",
            "alli": "al", "fulness": "ful", "ousli": "ous", "ousness": "ous", "iveness": "ive", "iviti": "ive",
            "biliti": "ble", "bli": "ble", "ogi": "og", "fulli": "ful", "lessli": "less", "li": "",
        ]

        static let step2Order = longestFirst(step2Suffixes.keys)
        static let step3Order = longestFirst(step3Suffixes.keys)
        static let step4Order = longestFirst(step4Suffixes)

        /// Suffixes ordered so that the first one a word ends with is the longest it ends with.
        static func longestFirst(_ suffixes: some Sequence<String>) -> [String] {
            suffixes.sorted { $0.utf8.count != $1.utf8.count ? $0.utf8.count > $1.utf8.count : $0 < $1 }
        }

        mutating func step2() {
            guard let suffix = longestSuffix(Self.step2Order) else { return }
            let length = suffix.unicodeScalars.count
            let start = count - length
            guard start >= r1 else { return }
            switch suffix {
            case "ogi":
                if start > 0, letters[start - 1] == "l" { replaceSuffix(length: length, with: "og") }
            case "li":
                if start > 0, "cdeghkmnrt".unicodeScalars.contains(letters[start - 1]) { letters.removeLast(2) }
            default:
                replaceSuffix(length: length, with: Self.step2Suffixes[suffix]!)
            }
        }

        static let step3Suffixes: [String: String] = [
            "tional": "tion", "ational": "ate", "alize": "al", "icate": "ic", "iciti": "ic", "ical": "ic",
            "ful": "", "ness": "", "ative": "",
        ]

        mutating func step3() {
            guard let suffix = longestSuffix(Self.step3Order) else { return }
            let length = suffix.unicodeScalars.count
            let start = count - length
            guard start >= r1 else { return }
            if suffix == "ative" {
                if start >= r2 { letters.removeLast(length) }
            } else {
                replaceSuffix(length: length, with: Self.step3Suffixes[suffix]!)
            }
        }

        static let step4Suffixes = [
            "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ism", "ate", "iti",
            "ous", "ive", "ize", "ion",
        ]

        mutating func step4() {
            guard let suffix = longestSuffix(Self.step4Order) else { return }
            let length = suffix.unicodeScalars.count
            let start = count - length
            guard start >= r2 else { return }
            if suffix == "ion" {
                if start > 0, letters[start - 1] == "s" || letters[start - 1] == "t" { letters.removeLast(length) }
            } else {
                letters.removeLast(length)
            }
        }

        mutating func step5() {
            guard let last = letters.last else { return }
            let start = count - 1
            if last == "e" {
                if start >= r2 || (start >= r1 && !shortSyllable(before: start)) { letters.removeLast() }
            } else if last == "l" {
                if start >= r2, start > 0, letters[start - 1] == "l" { letters.removeLast() }
            }
        }

        mutating func postlude() -> String {
            for index in letters.indices where letters[index] == "Y" { letters[index] = "y" }
            return string
        }
    }
}
