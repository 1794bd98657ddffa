import Foundation

/// A slot indexed under a value, with the slot's stamp when it was indexed: the entry is current only while the
/// slot's stamp is unchanged (see ``PayloadFieldIndex``).
struct PayloadIndexEntry: Sendable {
    var slot: Int32
    var stamp: UInt32
}

/// A number that a sorted run can hold, with the `Double` that a filter's `range` compares.
protocol PayloadIndexNumber: Comparable, Sendable {
    /// The value as a `range` condition sees it (`Double(integer)`, as ``RangeCondition`` does).
    var rangeValue: Double { get }
}

extension Int64: PayloadIndexNumber {
    var rangeValue: Double { Double(self) }
}

extension Double: PayloadIndexNumber {
    var rangeValue: Double { self }
}

/// Numbers with their slots, sorted by value, plus a short unsorted tail of recent entries merged in when it
/// grows past 1/32 of the sorted part (so a write of k points costs O(k) amortised, not a shift of the array).
struct SortedRun<Value: PayloadIndexNumber>: Sendable {
    struct Entry: Sendable {
        var value: Value
        var slot: Int32
        var stamp: UInt32
    }
    private(set) var sorted: [Entry] = []
    private(set) var recent: [Entry] = []

    /// Entries, current or stale.
    var count: Int { sorted.count + recent.count }

    mutating func append(_ entry: Entry) { recent.append(entry) }

    /// Whether the tail is long enough to merge.
    var needsMerge: Bool { recent.count > max(1024, sorted.count / 32) }

    /// Sorts the tail into the sorted part, dropping entries that `isCurrent` rejects.
    /// - Complexity: O(count + tail × log tail).
    mutating func merge(isCurrent: (Int32, UInt32) -> Bool) {
        var tail = recent.filter { isCurrent($0.slot, $0.stamp) }
        tail.sort { ($0.value, $0.slot) < ($1.value, $1.slot) }
        var merged: [Entry] = []
        merged.reserveCapacity(sorted.count + tail.count)
        var tailIndex = 0
        for entry in sorted where isCurrent(entry.slot, entry.stamp) {
            while tailIndex < tail.count, (tail[tailIndex].value, tail[tailIndex].slot) < (entry.value, entry.slot) {
                merged.append(tail[tailIndex])
                tailIndex += 1
            }
            merged.append(entry)
        }
        merged.append(contentsOf: tail[tailIndex...])
        sorted = merged
        recent = []
    }

    /// The positions in ``sorted`` of the values `range` holds for: the values it holds for are contiguous, since
    /// its lower bounds hold from some value on and its upper bounds up to some value.
    func sortedPositions(in range: RangeCondition) -> Range<Int> {
        let start = firstPosition { range.holdsAbove(lowerBoundsFor: $0.rangeValue) }
        let end = firstPosition { !range.holdsBelow(upperBoundsFor: $0.rangeValue) }
        return start..<max(start, end)
    }

    /// The positions in ``sorted`` of entries equal to `value`.
    func sortedPositions(of value: Value) -> Range<Int> {
        let start = firstPosition { $0 >= value }
        let end = firstPosition { $0 > value }
        return start..<end
    }

    /// The first position whose value satisfies `predicate`, which is false and then true along the sorted part.
    private func firstPosition(where predicate: (Value) -> Bool) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if predicate(sorted[middle].value) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

extension RangeCondition {
    /// Whether `number` satisfies the lower bounds (`gt`, `gte`).
    func holdsAbove(lowerBoundsFor number: Double) -> Bool {
        if let gt, !(number > gt) { return false }
        if let gte, !(number >= gte) { return false }
        return true
    }

    /// Whether `number` satisfies the upper bounds (`lt`, `lte`).
    func holdsBelow(upperBoundsFor number: Double) -> Bool {
        if let lt, !(number < lt) { return false }
        if let lte, !(number <= lte) { return false }
        return true
    }
}

/// The in-memory payload index of one key, kept in step with the scoring view through ``CatchUpCursor``.
///
/// For each live slot it records, from the values at the key (an array at the end of the path standing for its
/// elements, as the filter reads it):
/// - the values of the index's type: in posting lists by value (keyword, uuid, datetime, bool) or a sorted run
///   (integer, float);
/// - the count of values at the key as `values_count` reads it (``valueCounts``);
/// - three bitmaps: ``nonNull`` (some value is not `null`: the opposite of `is_empty`), ``nullLeaf`` (a value at the
///   key is `null` itself: `is_null`) and ``other`` (some value is neither `null` nor of the index's type).
///
/// A condition on the key is then answered exactly from the entries, and from the payloads of the ``other``
/// slots only where a value of another type could decide it (a `match` on an integer under a keyword index).
///
/// Entries are never edited in place: each slot has a stamp, bumped when the slot is removed or its payload
/// edited, and an entry counts only while its stamp is the slot's. Removing a slot is then O(1) and re-indexing
/// it O(its values); stale entries are dropped when they outnumber the current ones (amortised O(1) per entry).
/// A compaction of the view, or a first use, rebuilds from every live slot.
struct PayloadFieldIndex: CatchingUpIndex {
    let key: PayloadKey
    let type: PayloadIndexType
    var cursor = CatchUpCursor()
    /// How many times the index was built from every live slot (for tests of the incremental path).
    private(set) var rebuildCount = 0

    private(set) var stamps: [UInt32] = []
    /// The entries each slot added when last indexed.
    private var entryCounts: [UInt32] = []
    /// Per slot, the `values_count` count of the one value at the key (0 when there is none), or
    /// ``severalValues`` when the path leads to several values and the payload must be checked.
    private(set) var valueCounts: [UInt32] = []
    static let severalValues = UInt32.max
    private(set) var nonNull = SlotBitmap(slotCount: 0)
    private(set) var nullLeaf = SlotBitmap(slotCount: 0)
    private(set) var other = SlotBitmap(slotCount: 0)
    private(set) var otherCount = 0
    private(set) var nonNullCount = 0
    private(set) var postings: [MatchValue: [PayloadIndexEntry]] = [:]
    private(set) var integers = SortedRun<Int64>()
    private(set) var numbers = SortedRun<Double>()
    private var currentEntryCount = 0
    private var staleEntryCount = 0
    /// A text index's terms: per term, the slots holding it with how often.
    private(set) var terms: [String: [TermEntry]] = [:]
    /// A text index's words per slot (0 for none): the document length BM25 normalises by.
    private(set) var wordCounts: [UInt32] = []
    /// The sum of ``roundedLength(_:)`` of ``wordCounts`` over the slots with words.
    private(set) var totalRoundedLength = 0

    /// A slot holding a term, with its stamp when indexed and the term's count there.
    struct TermEntry: Sendable {
        var slot: Int32
        var stamp: UInt32
        var frequency: UInt32
    }

    /// Whether the index reads words out of strings.
    var isText: Bool { type == .text || type == .scoredText }
    /// The live slots with at least one value of the index's type.
    private(set) var pointCount = 0

    init(key: PayloadKey, type: PayloadIndexType) {
        self.key = key
        self.type = type
    }

    /// Entries, current or stale, that a full pass over the index visits.
    var entryCount: Int {
        switch type {
        case .integer: integers.count
        case .float: numbers.count
        default: currentEntryCount + staleEntryCount
        }
    }

    func isCurrent(_ slot: Int32, _ stamp: UInt32) -> Bool { stamps[Int(slot)] == stamp }

    // MARK: Catching up

    mutating func apply(_ changes: ViewChanges, from view: ScoringView) {
        guard let changed = changes.changedSlots, !changes.isFirst, !changes.layoutChanged else {
            rebuild(from: view)
            return
        }
        grow(to: view.slotCount)
        for slot in Set(changed).sorted() {
            remove(slot: slot)
            // Slots appended since the last catch-up are added below, with the rest of the new ones.
            if view.liveSlots.contains(slot), view.slotVersions[slot] <= cursor.version {
                add(slot: slot, payload: view.payload(ofSlot: slot))
            }
        }
        for slot in changes.addedSlots { add(slot: slot, payload: view.payload(ofSlot: slot)) }
        tidy()
    }

    private mutating func rebuild(from view: ScoringView) {
        rebuildCount += 1
        stamps = []
        entryCounts = []
        valueCounts = []
        nonNull = SlotBitmap(slotCount: 0)
        nullLeaf = SlotBitmap(slotCount: 0)
        other = SlotBitmap(slotCount: 0)
        otherCount = 0
        nonNullCount = 0
        postings = [:]
        terms = [:]
        wordCounts = []
        totalRoundedLength = 0
        integers = SortedRun()
        numbers = SortedRun()
        currentEntryCount = 0
        staleEntryCount = 0
        pointCount = 0
        grow(to: view.slotCount)
        view.liveSlots.forEachSlot { add(slot: $0, payload: view.payload(ofSlot: $0)) }
        integers.merge(isCurrent: isCurrent)
        numbers.merge(isCurrent: isCurrent)
    }

    private mutating func grow(to slotCount: Int) {
        while stamps.count < slotCount {
            stamps.append(0)
            entryCounts.append(0)
            valueCounts.append(0)
            wordCounts.append(0)
            nonNull.append(false)
            nullLeaf.append(false)
            other.append(false)
        }
    }

    private mutating func remove(slot: Int) {
        let count = Int(entryCounts[slot])
        currentEntryCount -= count
        staleEntryCount += count
        if count > 0 { pointCount -= 1 }
        entryCounts[slot] = 0
        valueCounts[slot] = 0
        if wordCounts[slot] > 0 {
            totalRoundedLength -= Self.roundedLength(Int(wordCounts[slot]))
            wordCounts[slot] = 0
        }
        // Wrapping is harmless: a slot's stale entries are dropped long before 2^32 edits of it (they are once
        // they outnumber the current entries), and a slot without entries has none to confuse.
        stamps[slot] &+= 1
        if nonNull.contains(slot) {
            nonNull.remove(slot)
            nonNullCount -= 1
        }
        if other.contains(slot) {
            other.remove(slot)
            otherCount -= 1
        }
        nullLeaf.remove(slot)
    }

    private mutating func add(slot: Int, payload: JSONObject) {
        var sawNonNull = false
        var sawOther = false
        var sawNullLeaf = false
        var keys: [MatchValue] = []
        var integerValues: [Int64] = []
        var numberValues: [Double] = []
        var words: [String] = []
        var leafCount = 0
        var valueCount = 0
        let type = self.type
        func scalar(_ value: JSONValue) {
            if value == .null { return }
            sawNonNull = true
            switch (type, value) {
            case (.keyword, .string(let text)): keys.append(.string(text))
            case (.uuid, .string(let text)) where PayloadIndexType.isUUID(text): keys.append(.string(text))
            case (.datetime, .string(let text)) where PayloadIndexType.isDateTime(text): keys.append(.string(text))
            case (.bool, .bool(let flag)): keys.append(.bool(flag))
            case (.text, .string(let text)), (.scoredText, .string(let text)): words += Match.words(text)
            case (.integer, .integer(let number)): integerValues.append(number)
            case (.float, .integer(let number)): numberValues.append(Double(number))
            case (.float, .unsigned(let number)): numberValues.append(Double(number))
            case (.float, .double(let number)): numberValues.append(number)
            default: sawOther = true
            }
        }
        // The filter's own walk of the key path: every leaf is visited (the predicate never stops it).
        _ = key.containsValue(in: payload) { leaf in
            leafCount += 1
            valueCount = ValuesCountCondition.count(of: leaf)
            switch leaf {
            case .null: sawNullLeaf = true
            case .array(let elements): for element in elements { scalar(element) }
            default: scalar(leaf)
            }
            return false
        }
        let stamp = stamps[slot]
        let entry = PayloadIndexEntry(slot: Int32(slot), stamp: stamp)
        for key in keys { postings[key, default: []].append(entry) }
        for value in integerValues { integers.append(.init(value: value, slot: entry.slot, stamp: stamp)) }
        for value in numberValues { numbers.append(.init(value: value, slot: entry.slot, stamp: stamp)) }
        var frequencies: [String: UInt32] = [:]
        for word in words { frequencies[word, default: 0] += 1 }
        for (term, frequency) in frequencies {
            terms[term, default: []].append(TermEntry(slot: entry.slot, stamp: stamp, frequency: frequency))
        }
        if !words.isEmpty {
            wordCounts[slot] = UInt32(min(words.count, Int(UInt32.max)))
            totalRoundedLength += Self.roundedLength(words.count)
        }
        let count = keys.count + integerValues.count + numberValues.count + frequencies.count
        entryCounts[slot] = UInt32(count)
        valueCounts[slot] = leafCount > 1 ? Self.severalValues : UInt32(min(valueCount, Int(Self.severalValues - 1)))
        currentEntryCount += count
        if count > 0 { pointCount += 1 }
        if sawNonNull {
            nonNull.insert(slot)
            nonNullCount += 1
        }
        if sawOther {
            other.insert(slot)
            otherCount += 1
        }
        if sawNullLeaf { nullLeaf.insert(slot) }
    }

    /// Merges a long tail of the sorted runs, and drops stale entries once they outnumber the current ones.
    private mutating func tidy() {
        if staleEntryCount > max(1024, currentEntryCount) {
            for key in Array(postings.keys) {
                let kept = postings[key]!.filter { isCurrent($0.slot, $0.stamp) }
                postings[key] = kept.isEmpty ? nil : kept
            }
            for term in Array(terms.keys) {
                let kept = terms[term]!.filter { isCurrent($0.slot, $0.stamp) }
                terms[term] = kept.isEmpty ? nil : kept
            }
            integers.merge(isCurrent: isCurrent)
            numbers.merge(isCurrent: isCurrent)
            staleEntryCount = 0
        }
        if integers.needsMerge { integers.merge(isCurrent: isCurrent) }
        if numbers.needsMerge { numbers.merge(isCurrent: isCurrent) }
    }
}

// MARK: Answering conditions

extension PayloadFieldIndex {
    /// How the index answers a condition on its key.
    enum Lookup {
        /// `is_empty`: live slots without a non-null value.
        case emptyKey
        /// `is_null`.
        case nullLeaf
        /// Slots holding one of these values of the index's type.
        case values([MatchValue], otherSlots: OtherSlots)
        /// Slots holding a value of the index's type that is not in the set (`match.except`).
        case valuesExcept(Set<MatchValue>, otherSlots: OtherSlots)
        /// Slots holding a number in the range (integer and float indexes).
        case range(RangeCondition, otherSlots: OtherSlots)
        /// `values_count`: slots whose count is within bounds, read from ``valueCounts``.
        case valuesCount(ValuesCountCondition)
    }

    /// What the slots with values of other types (``other``) contribute to an answer.
    enum OtherSlots {
        /// Nothing: no value of another type satisfies the condition.
        case none
        /// All of them: every value of another type satisfies it.
        case all
        /// Those whose payload satisfies it, checked one by one.
        case check
    }

    /// The value under which a `match` value is indexed, or `nil` when no value of the index's type equals it.
    private func indexedKey(_ value: MatchValue) -> MatchValue? {
        switch (type, value) {
        case (.keyword, .string), (.bool, .bool), (.integer, .integer): value
        case (.uuid, .string(let text)) where PayloadIndexType.isUUID(text): value
        case (.datetime, .string(let text)) where PayloadIndexType.isDateTime(text): value
        default: nil
        }
    }

    /// How the index answers `condition`, or `nil` when it cannot (a condition on another key, a `nested`
    /// condition, a `match` under a float index, whose numbers no longer tell `1` from `1.0`).
    func lookup(for condition: Condition) -> Lookup? {
        switch condition {
        case .isEmpty(let conditionKey) where conditionKey.text == key.text: return .emptyKey
        case .isNull(let conditionKey) where conditionKey.text == key.text: return .nullLeaf
        case .valuesCount(let conditionKey, let count) where conditionKey.text == key.text: return .valuesCount(count)
        case .field(let field) where field.key.text == key.text:
            // A text index keeps words, not values: conditions on the key are read from the payloads.
            if isText { return nil }
            switch field.test {
            case .match where type == .float:
                return nil
            case .match(.text), .match(.textAny), .match(.phrase):
                // Full-text matches read words out of a string; a keyword index holds whole values.
                return nil
            case .match(.value(let value)):
                return indexedKey(value).map { .values([$0], otherSlots: .none) } ?? .values([], otherSlots: .check)
            case .match(.any(let values)):
                let keys = values.compactMap(indexedKey)
                return .values(keys, otherSlots: keys.count == values.count ? .none : .check)
            case .match(.except(let values)):
                // A value of another type is in the set only if the set lists values that are not of the index's type.
                let allIndexed = values.allSatisfy { indexedKey($0) != nil }
                return .valuesExcept(values, otherSlots: allIndexed ? .all : .check)
            case .range(let range):
                switch type {
                case .float: return .range(range, otherSlots: .none)
                // Unsigned and fractional numbers are values of another type under an integer index.
                case .integer: return .range(range, otherSlots: .check)
                default: return .values([], otherSlots: .check)
                }
            }
        default:
            return nil
        }
    }

    /// An estimate of the slots a lookup finds (an upper bound: stale entries count) and of its cost, in units of
    /// one payload checked against one condition (about 0.3–0.5 µs); touching an entry costs about 1/16 of that, a
    /// pass over a bitmap's words 1/2048 per slot.
    func estimate(_ lookup: Lookup) -> (cardinality: Int, cost: Double) {
        let slotCount = stamps.count
        let wordPass = Double(slotCount) / 2048
        func others(_ mode: OtherSlots) -> (Int, Double) {
            switch mode {
            case .none: (0, 0)
            case .all: (otherCount, wordPass)
            case .check: (otherCount, Double(otherCount) + wordPass)
            }
        }
        switch lookup {
        case .emptyKey: return (slotCount - nonNullCount, 2 * wordPass)
        case .nullLeaf: return (slotCount, 2 * wordPass)
        case .valuesCount: return (slotCount, Double(slotCount) / 16)
        case .values(let keys, let mode):
            var entries = 0
            for key in keys {
                if case .integer(let number) = key {
                    entries += integers.sortedPositions(of: number).count + integers.recent.count
                } else {
                    entries += postings[key]?.count ?? 0
                }
            }
            let (otherCardinality, otherCost) = others(mode)
            return (entries + otherCardinality, Double(entries) / 16 + otherCost + 2 * wordPass)
        case .valuesExcept(_, let mode):
            // Every slot it finds has a non-null value.
            let (_, otherCost) = others(mode)
            return (nonNullCount, Double(entryCount) / 16 + Double(postings.count) + otherCost + 2 * wordPass)
        case .range(let range, let mode):
            let entries: Int
            switch type {
            case .integer: entries = integers.sortedPositions(in: range).count + integers.recent.count
            default: entries = numbers.sortedPositions(in: range).count + numbers.recent.count
            }
            let (otherCardinality, otherCost) = others(mode)
            return (entries + otherCardinality, Double(entries) / 16 + otherCost + 2 * wordPass)
        }
    }

    /// The live slots of `view` that satisfy `condition`, through `lookup`.
    /// - Parameters:
    ///   - lookup: How to answer, from ``lookup(for:)``.
    ///   - condition: The condition, checked on payloads where the lookup says so.
    ///   - view: The view the index has caught up with.
    ///   - payloadChecks: Counts the payloads checked.
    /// - Returns: A bitmap over `0..<view.slotCount`.
    func slots(
        _ lookup: Lookup,
        condition: Condition,
        view: ScoringView,
        payloadChecks: inout Int
    ) -> SlotBitmap {
        precondition(stamps.count == view.slotCount, "the payload index has not caught up with this view")
        var result = SlotBitmap(slotCount: view.slotCount)
        func insertCurrent(_ entries: some Sequence<PayloadIndexEntry>) {
            for entry in entries where stamps[Int(entry.slot)] == entry.stamp { result.insert(Int(entry.slot)) }
        }
        func insertCurrent<Value>(_ run: SortedRun<Value>, positions: Range<Int>, where test: (Value) -> Bool) {
            for entry in run.sorted[positions] where stamps[Int(entry.slot)] == entry.stamp && test(entry.value) {
                result.insert(Int(entry.slot))
            }
            for entry in run.recent where stamps[Int(entry.slot)] == entry.stamp && test(entry.value) {
                result.insert(Int(entry.slot))
            }
        }
        func addOthers(_ mode: OtherSlots) {
            switch mode {
            case .none: break
            case .all: result.formUnion(other)
            case .check:
                other.forEachSlot { slot in
                    payloadChecks += 1
                    if condition.matches(payload: view.payload(ofSlot: slot), id: view.pointIDs[slot]) {
                        result.insert(slot)
                    }
                }
            }
        }
        switch lookup {
        case .emptyKey:
            result = view.liveSlots
            result.subtract(nonNull)
        case .nullLeaf:
            result = nullLeaf
        case .valuesCount(let count):
            view.liveSlots.forEachSlot { slot in
                let stored = valueCounts[slot]
                if stored == Self.severalValues {
                    payloadChecks += 1
                    if condition.matches(payload: view.payload(ofSlot: slot), id: view.pointIDs[slot]) {
                        result.insert(slot)
                    }
                } else if count.contains(Int(stored)) {
                    result.insert(slot)
                }
            }
        case .values(let keys, let mode):
            for key in keys {
                if case .integer(let number) = key {
                    insertCurrent(integers, positions: integers.sortedPositions(of: number)) { $0 == number }
                } else if let entries = postings[key] {
                    insertCurrent(entries)
                }
            }
            addOthers(mode)
        case .valuesExcept(let values, let mode):
            switch type {
            case .integer:
                insertCurrent(integers, positions: 0..<integers.sorted.count) { !values.contains(.integer($0)) }
            case .float:
                preconditionFailure("a float index answers no match")
            default:
                for (key, entries) in postings where !values.contains(key) { insertCurrent(entries) }
            }
            addOthers(mode)
        case .range(let range, let mode):
            switch type {
            case .integer:
                insertCurrent(integers, positions: integers.sortedPositions(in: range)) {
                    range.contains($0.rangeValue)
                }
            default:
                insertCurrent(numbers, positions: numbers.sortedPositions(in: range)) { range.contains($0) }
            }
            addOthers(mode)
        }
        return result
    }
}

// MARK: Ranking by BM25

extension PayloadFieldIndex {
    /// A document length as Qdrant's text index keeps it: its 13 leading bits (exact below 8192 words).
    static func roundedLength(_ length: Int) -> Int {
        let lostBits = max((Int.bitWidth - length.leadingZeroBitCount) - 13, 0)
        return (length >> lostBits) << lostBits
    }

    /// BM25's counts for a query's words: the points with words at the key (N), the sum of their rounded
    /// lengths, and per word the points holding it (n).
    /// - Parameters:
    ///   - query: The query text.
    ///   - corpus: Only these slots count (`nil`: every live one).
    /// - Returns: The counts.
    func textStatistics(_ query: String, corpus: SlotBitmap? = nil) -> TextCorpusStatistics {
        let words = Array(Set(Match.words(query))).sorted()
        var documentCount = pointCount
        var totalLength = Double(totalRoundedLength)
        if let corpus {
            documentCount = 0
            totalLength = 0
            for slot in corpus.slots where slot < wordCounts.count && wordCounts[slot] > 0 {
                documentCount += 1
                totalLength += Double(Self.roundedLength(Int(wordCounts[slot])))
            }
        }
        var frequencies: [String: Int] = [:]
        for word in words {
            let entries = (terms[word] ?? []).filter { isCurrent($0.slot, $0.stamp) }
            frequencies[word] =
                corpus.map { corpus in entries.count { corpus.contains(Int($0.slot)) } } ?? entries.count
        }
        return TextCorpusStatistics(points: documentCount, totalLength: totalLength, frequencies: frequencies)
    }

    /// BM25 scores of the allowed slots holding any of the query's words (a repeated word counts once), as
    /// Qdrant's text query ranks: the corpus is every live slot with words at the key, whatever the filter;
    /// `idf = ln(1 + (N − df + 0.5) / (df + 0.5))`, and each word `idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b ·
    /// length / average length))`, summed in `Double` and then rounded to `Float`.
    /// - Parameters:
    ///   - query: The query text, read into words as the index reads documents.
    ///   - k1: Term frequency saturation.
    ///   - b: Length normalisation, 0...1.
    ///   - allowed: The slots that may be returned.
    ///   - corpus: The live slots whose documents the statistics (N, n, average length) count; `nil` for all.
    ///   - statistics: The counts to weight by (a sharded collection's, summed over its shards); `nil` to count
    ///     them here.
    /// - Returns: The scoring slots, best first (ties to the lower slot).
    /// - Complexity: O(postings of the query's words), plus O(corpus) with a corpus.
    func bm25(
        _ query: String,
        k1: Double,
        b: Double,
        allowed: SlotBitmap,
        corpus: SlotBitmap? = nil,
        statistics: TextCorpusStatistics? = nil
    ) -> [(slot: Int, score: Float)] {
        let words = Array(Set(Match.words(query))).sorted()
        let statistics = statistics ?? textStatistics(query, corpus: corpus)
        let documentCount = Double(statistics.points)
        guard !words.isEmpty, documentCount > 0 else { return [] }
        let averageLength = statistics.totalLength / documentCount
        var scores: [Int: Double] = [:]
        for word in words {
            let entries = (terms[word] ?? []).filter { isCurrent($0.slot, $0.stamp) }
            guard !entries.isEmpty else { continue }
            let frequency = Double(statistics.frequencies[word] ?? 0)
            let idf = log((documentCount - frequency + 0.5) / (frequency + 0.5) + 1)
            for entry in entries where allowed.contains(Int(entry.slot)) {
                let slot = Int(entry.slot)
                let tf = Double(entry.frequency)
                let length = Double(Self.roundedLength(Int(wordCounts[slot])))
                let norm = k1 * (1 - b + b * length / averageLength)
                scores[slot, default: 0] += idf * tf * (k1 + 1) / (tf + norm)
            }
        }
        return scores.compactMap { $0.value > 0 ? (slot: $0.key, score: Float($0.value)) : nil }
            .sorted { $0.score > $1.score || ($0.score == $1.score && $0.slot < $1.slot) }
    }
}
