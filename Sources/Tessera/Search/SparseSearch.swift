import Foundation
import Synchronization

/// The inverted index of one sealed segment's sparse field: for each index, the segment's slots holding it and
/// their values. Segments never change, so it is built once, at first use, and dropped with the segment.
struct SparsePostings: Sendable {
    /// For each index, the local slots holding it, ascending, with their values.
    var postings: [UInt32: [(slot: Int32, value: Float)]] = [:]
    /// The local slots holding a vector (an empty one included: Qdrant counts it in N).
    var present: [Int32] = []
}

/// The sparse inverted indexes of the sealed segments, by field and segment.
final class SparseIndexCache: Sendable {
    private let entries = Mutex<[String: [Int64: SparsePostings]]>([:])

    /// The postings of each sealed segment of `view` for `field`, building the missing ones and dropping those of
    /// segments the view no longer holds.
    func postings(field: VectorField, view: ScoringView) -> [SparsePostings] {
        let wanted = view.segments.map(\.id)
        var known = entries.withLock { $0[field.name] ?? [:] }
        var built: [Int64: SparsePostings] = [:]
        var base = 0
        var result: [SparsePostings] = []
        for segment in view.segments {
            defer { base += segment.slotCount }
            if let existing = known[segment.id] {
                result.append(existing)
                continue
            }
            var entry = SparsePostings()
            guard let column = view.column(named: field.name) else { continue }
            for local in 0..<segment.slotCount {
                let rows = column.floatValues(ofSlot: base + local)
                guard !rows.isEmpty else { continue }  // no vector in the field
                entry.present.append(Int32(local))
                let vector = SparseVector(packed: rows)
                for (index, value) in zip(vector.indices, vector.values) {
                    entry.postings[index, default: []].append((Int32(local), value))
                }
            }
            built[segment.id] = entry
            result.append(entry)
        }
        known.merge(built) { _, new in new }
        let keep = Set(wanted)
        known = known.filter { keep.contains($0.key) }
        entries.withLock { $0[field.name] = known }
        return result
    }
}

/// What the IDF modifier of a sparse field weights a query by: N, the points holding a vector in the field, and
/// n per index, those holding that index. One collection counts its own; a sharded collection adds its shards'
/// counts up (a pre-pass before scoring), so that every shard weights as the whole collection would.
public struct CorpusStatistics: Sendable, Equatable {
    /// N.
    public var points: Int
    /// n of each index asked about.
    public var frequencies: [UInt32: Int]

    /// Creates statistics.
    public init(points: Int, frequencies: [UInt32: Int]) {
        self.points = points
        self.frequencies = frequencies
    }

    /// The sum of several collections' statistics (the shards of one).
    public static func sum(_ parts: [CorpusStatistics]) -> CorpusStatistics {
        var total = CorpusStatistics(points: 0, frequencies: [:])
        for part in parts {
            total.points += part.points
            total.frequencies.merge(part.frequencies, uniquingKeysWith: +)
        }
        return total
    }
}

/// What BM25 over a payload text index weights a query's words by: N, the points with words at the key, the sum
/// of their (rounded) lengths, and n per word. A sharded collection sums its shards' before scoring.
public struct TextCorpusStatistics: Sendable, Equatable {
    /// N.
    public var points: Int
    /// The sum of the points' rounded lengths (the average length is this over N).
    public var totalLength: Double
    /// n of each query word.
    public var frequencies: [String: Int]

    /// Creates statistics.
    public init(points: Int, totalLength: Double, frequencies: [String: Int]) {
        self.points = points
        self.totalLength = totalLength
        self.frequencies = frequencies
    }

    /// The sum of several collections' statistics (the shards of one).
    public static func sum(_ parts: [TextCorpusStatistics]) -> TextCorpusStatistics {
        var total = TextCorpusStatistics(points: 0, totalLength: 0, frequencies: [:])
        for part in parts {
            total.points += part.points
            total.totalLength += part.totalLength
            total.frequencies.merge(part.frequencies, uniquingKeysWith: +)
        }
        return total
    }
}

extension CollectionStore {
    /// N and n of a sparse query's indices in a field: N the live points holding a vector in the field (an empty
    /// one included, as Qdrant counts), n those holding each index; with a `corpus` (live slots), only the points
    /// in it count.
    func sparseStatistics(
        _ indices: [UInt32],
        field: VectorField,
        view: ScoringView,
        corpus: SlotBitmap? = nil
    ) -> CorpusStatistics {
        let counted = corpus ?? view.liveSlots
        let segments = sparseIndexes.postings(field: field, view: view)
        var total = 0
        var frequency = [UInt32: Int](uniqueKeysWithValues: indices.map { ($0, 0) })
        var base = 0
        for (segment, entry) in zip(view.segments, segments) {
            defer { base += segment.slotCount }
            total += entry.present.count { counted.contains(base + Int($0)) }
            for index in indices {
                frequency[index]! += entry.postings[index]?.count { counted.contains(base + Int($0.slot)) } ?? 0
            }
        }
        if let column = view.column(named: field.name) {
            for slot in view.sealedSlotCount..<view.slotCount where counted.contains(slot) {
                let rows = column.floatValues(ofSlot: slot)
                guard !rows.isEmpty else { continue }  // no vector in the field
                total += 1
                let vector = SparseVector(packed: rows)
                for index in vector.indices where frequency[index] != nil { frequency[index]! += 1 }
            }
        }
        return CorpusStatistics(points: total, frequencies: frequency)
    }

    /// The query with Qdrant's IDF weights when the field asks for them: each value times
    /// `ln(1 + (N − n + 0.5) / (n + 0.5))` (``sparseStatistics(_:field:view:corpus:)``), or with the `statistics`
    /// given (a sharded collection's, gathered before scoring).
    func weightedSparseQuery(
        _ query: SparseVector,
        field: VectorField,
        view: ScoringView,
        corpus: SlotBitmap? = nil,
        statistics given: CorpusStatistics? = nil
    ) -> SparseVector {
        guard case .sparse(.idf) = field.kind, !query.isEmpty else { return query }
        let statistics = given ?? sparseStatistics(query.indices, field: field, view: view, corpus: corpus)
        let count = Double(statistics.points)
        return query.scaled { index in
            let n = Double(statistics.frequencies[index] ?? 0)
            let ratio: Double = (count - n + 0.5) / (n + 0.5)
            return Float(Foundation.log(ratio + 1))
        }
    }

    /// The best `limit` of the allowed slots by dot product with a sparse query, best first (ties to the lower
    /// slot); slots sharing no index with the query are not results. Sealed segments answer from their inverted
    /// indexes, the appendable tail by a scan.
    func sparseCandidates(
        _ query: SparseVector,
        field: VectorField,
        view: ScoringView,
        allowed: SlotBitmap,
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        guard limit > 0, !query.isEmpty else { return [] }
        var scores: [Int: Float] = [:]
        var base = 0
        for (segment, entry) in zip(view.segments, sparseIndexes.postings(field: field, view: view)) {
            defer { base += segment.slotCount }
            for (index, weight) in zip(query.indices, query.values) {
                for posting in entry.postings[index] ?? [] {
                    let slot = base + Int(posting.slot)
                    if allowed.contains(slot) { scores[slot, default: 0] += weight * posting.value }
                }
            }
        }
        if let column = view.column(named: field.name) {
            for slot in view.sealedSlotCount..<view.slotCount where allowed.contains(slot) {
                if let score = query.dot(SparseVector(packed: column.floatValues(ofSlot: slot))) {
                    scores[slot] = score
                }
            }
        }
        return Self.best(scores.map { ($0.key, $0.value) }, limit: limit)
    }

    /// Dot products of a sparse query with `slots`, the best `limit`, best first; slots sharing no index are left
    /// out.
    func exactSparse(
        _ query: SparseVector,
        field: VectorField,
        view: ScoringView,
        slots: [Int],
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        guard limit > 0, let column = view.column(named: field.name) else { return [] }
        var hits: [(slot: Int, score: Float)] = []
        for slot in slots {
            if let score = query.dot(SparseVector(packed: column.floatValues(ofSlot: slot))) {
                hits.append((slot, score))
            }
        }
        return Self.best(hits, limit: limit)
    }

    private static func best(_ hits: [(slot: Int, score: Float)], limit: Int) -> [(slot: Int, score: Float)] {
        let sorted = hits.sorted { left, right in
            left.score != right.score ? left.score > right.score : left.slot < right.slot
        }
        return Array(sorted.prefix(limit))
    }
}
