/// The Porter stemming algorithm (M. F. Porter, "An algorithm for suffix stripping", 1980), as the paper
/// defines it, on lowercase ASCII words; other words are returned unchanged.
enum PorterStemmer {
    /// The stem of a lowercase word.
    static func stem(_ word: String) -> String {
        guard word.count > 2, word.utf8.allSatisfy({ $0 >= 97 && $0 <= 122 }) else { return word }
        var letters = Array(word.utf8)
        step1a(&letters)
        step1b(&letters)
        step1c(&letters)
        step2(&letters)
        step3(&letters)
        step4(&letters)
        step5(&letters)
        return String(decoding: letters, as: UTF8.self)
    }

    // MARK: Conditions

    /// Whether `letters[index]` is a consonant: not a vowel, and `y` only when not preceded by a consonant.
    private static func isConsonant(_ letters: [UInt8], _ index: Int) -> Bool {
        switch letters[index] {
        case UInt8(ascii: "a"), UInt8(ascii: "e"), UInt8(ascii: "i"), UInt8(ascii: "o"), UInt8(ascii: "u"): false
        case UInt8(ascii: "y"): index == 0 ? true : !isConsonant(letters, index - 1)
        default: true
        }
    }

    /// m in `[C](VC)^m[V]` for the first `length` letters.
    private static func measure(_ letters: [UInt8], _ length: Int) -> Int {
        var count = 0
        var index = 0
        while index < length, isConsonant(letters, index) { index += 1 }
        while index < length {
            while index < length, !isConsonant(letters, index) { index += 1 }
            guard index < length else { break }
            while index < length, isConsonant(letters, index) { index += 1 }
            count += 1
        }
        return count
    }

    private static func containsVowel(_ letters: [UInt8], _ length: Int) -> Bool {
        (0..<length).contains { !isConsonant(letters, $0) }
    }

    /// `*d`: the first `length` letters end with a double consonant.
    private static func endsWithDoubleConsonant(_ letters: [UInt8], _ length: Int) -> Bool {
        length >= 2 && letters[length - 1] == letters[length - 2] && isConsonant(letters, length - 1)
    }

    /// `*o`: the first `length` letters end consonant–vowel–consonant, the last not w, x or y.
    private static func endsCVC(_ letters: [UInt8], _ length: Int) -> Bool {
        guard length >= 3, isConsonant(letters, length - 1), !isConsonant(letters, length - 2),
            isConsonant(letters, length - 3)
        else { return false }
        return ![UInt8(ascii: "w"), UInt8(ascii: "x"), UInt8(ascii: "y")].contains(letters[length - 1])
    }

    private static func ends(_ letters: [UInt8], _ suffix: String) -> Bool {
        let bytes = Array(suffix.utf8)
        return letters.count >= bytes.count && Array(letters.suffix(bytes.count)) == bytes
    }

    private static func replace(_ letters: inout [UInt8], _ suffix: String, with replacement: String) {
        letters.removeLast(suffix.utf8.count)
        letters.append(contentsOf: replacement.utf8)
    }

    /// Applies the first rule whose suffix matches, if the stem before it has measure above `minimum`; no
    /// later rule is tried once a suffix matched.
    private static func applyFirst(_ letters: inout [UInt8], _ rules: [(String, String)], minimum: Int) {
        for (suffix, replacement) in rules where ends(letters, suffix) {
            if measure(letters, letters.count - suffix.utf8.count) > minimum {
                replace(&letters, suffix, with: replacement)
            }
            return
        }
    }

    // MARK: Steps

    private static func step1a(_ letters: inout [UInt8]) {
        if ends(letters, "sses") {
            replace(&letters, "sses", with: "ss")
        } else if ends(letters, "ies") {
            replace(&letters, "ies", with: "i")
        } else if ends(letters, "ss") {
            return
        } else if ends(letters, "s") {
            letters.removeLast()
        }
    }

    private static func step1b(_ letters: inout [UInt8]) {
        if ends(letters, "eed") {
            if measure(letters, letters.count - 3) > 0 { letters.removeLast() }
            return
        }
        var removed = false
        for suffix in ["ed", "ing"] where ends(letters, suffix) {
            if containsVowel(letters, letters.count - suffix.utf8.count) {
                letters.removeLast(suffix.utf8.count)
                removed = true
            }
            break
        }
        guard removed else { return }
        if ends(letters, "at") || ends(letters, "bl") || ends(letters, "iz") {
            letters.append(UInt8(ascii: "e"))
        } else if endsWithDoubleConsonant(letters, letters.count),
            ![UInt8(ascii: "l"), UInt8(ascii: "s"), UInt8(ascii: "z")].contains(letters[letters.count - 1])
        {
            letters.removeLast()
        } else if measure(letters, letters.count) == 1, endsCVC(letters, letters.count) {
            letters.append(UInt8(ascii: "e"))
        }
    }

    private static func step1c(_ letters: inout [UInt8]) {
        if ends(letters, "y"), containsVowel(letters, letters.count - 1) {
            letters[letters.count - 1] = UInt8(ascii: "i")
        }
    }

    private static let step2Rules: [(String, String)] = [
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
        ("abli", "able"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
        ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
        ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    ]

    private static func step2(_ letters: inout [UInt8]) {
        // Longest match first: "ational" before "tional", "ization" before "ation".
        applyFirst(&letters, step2Rules.sorted { $0.0.utf8.count > $1.0.utf8.count }, minimum: 0)
    }

    private static let step3Rules: [(String, String)] = [
        ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
        ("ness", ""),
    ]

    private static func step3(_ letters: inout [UInt8]) {
        applyFirst(&letters, step3Rules.sorted { $0.0.utf8.count > $1.0.utf8.count }, minimum: 0)
    }

    private static let step4Suffixes = [
        "ement", "ance", "ence", "able", "ible", "ment", "ant", "ent", "ism", "ate", "iti", "ous", "ive", "ize",
        "ion", "al", "er", "ic", "ou",
    ]

    private static func step4(_ letters: inout [UInt8]) {
        for suffix in step4Suffixes where ends(letters, suffix) {
            let stemLength = letters.count - suffix.utf8.count
            guard measure(letters, stemLength) > 1 else { return }
            if suffix == "ion" {
                guard stemLength > 0, [UInt8(ascii: "s"), UInt8(ascii: "t")].contains(letters[stemLength - 1])
                else { return }
            }
            letters.removeLast(suffix.utf8.count)
            return
        }
    }

    private static func step5(_ letters: inout [UInt8]) {
        if ends(letters, "e") {
            let stemLength = letters.count - 1
            let m = measure(letters, stemLength)
            if m > 1 || (m == 1 && !endsCVC(letters, stemLength)) { letters.removeLast() }
        }
        if ends(letters, "ll"), measure(letters, letters.count) > 1 { letters.removeLast() }
    }
}
