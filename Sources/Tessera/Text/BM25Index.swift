import Foundation

/// Okapi BM25 settings.
public struct BM25Parameters: Sendable, Equatable, Codable {
    /// Term-frequency saturation.
    public var k1: Float
    /// Length normalisation (0: none, 1: full).
    public var b: Float

    /// Creates parameters.
    /// - Parameters:
    ///   - k1: Saturation (default 1.2).
    ///   - b: Length normalisation (default 0.75).
    public init(k1: Float = 1.2, b: Float = 0.75) {
        self.k1 = k1
        self.b = b
    }
}

/// An in-memory inverted index of analysed documents, scored by Okapi BM25:
/// `Σ_t qtf · idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·len/avglen))` with
/// `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))` (always positive), over the live documents.
///
/// Documents are numbered by the caller (a collection's slots). Adding, replacing or removing a document costs
/// O(its terms): the statistics are updated at once, and the postings of a removed or replaced version are
/// skipped (each posting carries the version of its document it belongs to) until ``compact()`` drops them,
/// which happens when they make up a quarter of all postings.
struct BM25Index: Sendable {
    private(set) var postings: [String: [Posting]] = [:]
    private var documentTerms: [Int: [String: Int32]] = [:]
    private var lengths: [Int32] = []
    private var live: [Bool] = []
    /// Per document, the number of the version whose postings count; older postings are stale.
    private var versions: [UInt32] = []
    private(set) var documentCount = 0
    private(set) var totalLength = 0
    private var documentFrequency: [String: Int] = [:]
    private var deadPostings = 0
    private var postingCount = 0

    struct Posting: Sendable {
        var document: Int32
        var frequency: Int32
        /// The version of the document this posting belongs to.
        var version: UInt32
    }

    /// Adds a document's terms (replacing the document if it is already there).
    mutating func add(document: Int, terms: [String]) {
        precondition(document >= 0)
        if contains(document: document) { remove(document: document) }
        if document >= live.count {
            live += Array(repeating: false, count: document + 1 - live.count)
            lengths += Array(repeating: 0, count: document + 1 - lengths.count)
            versions += Array(repeating: 0, count: document + 1 - versions.count)
        }
        // A new version: postings of an earlier one, still in the lists, no longer count. Wrapping is safe: stale
        // postings are compacted away long before 2³² versions of one document could make one match again.
        versions[document] &+= 1
        let version = versions[document]
        var counts: [String: Int32] = [:]
        for term in terms { counts[term, default: 0] += 1 }
        for (term, count) in counts {
            postings[term, default: []].append(Posting(document: Int32(document), frequency: count, version: version))
            documentFrequency[term, default: 0] += 1
        }
        postingCount += counts.count
        documentTerms[document] = counts
        live[document] = true
        lengths[document] = Int32(terms.count)
        documentCount += 1
        totalLength += terms.count
    }

    /// Removes a document (its postings stay, skipped, until ``compact()``).
    mutating func remove(document: Int) {
        guard contains(document: document), let counts = documentTerms.removeValue(forKey: document) else { return }
        for term in counts.keys { documentFrequency[term, default: 1] -= 1 }
        deadPostings += counts.count
        live[document] = false
        documentCount -= 1
        totalLength -= Int(lengths[document])
        if deadPostings > 1024, deadPostings * 4 > postingCount { compact() }
    }

    /// Drops the postings of removed documents and of replaced versions.
    mutating func compact() {
        let live = live
        let versions = versions
        for term in Array(postings.keys) {
            postings[term]!.removeAll { !live[Int($0.document)] || $0.version != versions[Int($0.document)] }
            if postings[term]!.isEmpty { postings[term] = nil }
        }
        postingCount -= deadPostings
        deadPostings = 0
    }

    /// Whether a document is in the index.
    func contains(document: Int) -> Bool { document < live.count && live[document] }

    /// The best documents for query terms.
    /// - Parameters:
    ///   - terms: The analysed query (a repeated term counts once more each time).
    ///   - parameters: `k1`, `b`.
    ///   - allowed: Documents that may be returned (`nil`: every live one).
    ///   - limit: How many.
    /// - Returns: Up to `limit` (document, score) pairs with a positive score, best first (ties to the lower
    ///   document).
    func search(
        terms: [String],
        parameters: BM25Parameters,
        allowed: ((Int) -> Bool)? = nil,
        limit: Int
    ) -> [(document: Int, score: Float)] {
        guard limit > 0, documentCount > 0 else { return [] }
        var queryCounts: [String: Int] = [:]
        for term in terms { queryCounts[term, default: 0] += 1 }
        let averageLength = Float(totalLength) / Float(documentCount)
        let k1 = parameters.k1
        let b = parameters.b
        var scores = [Float](repeating: 0, count: live.count)
        var touched: [Int] = []
        for (term, queryCount) in queryCounts.sorted(by: { $0.key < $1.key }) {
            guard let list = postings[term], let df = documentFrequency[term], df > 0 else { continue }
            let ratio = (Double(documentCount) - Double(df) + 0.5) / (Double(df) + 0.5)
            let weight = Float(log(1 + ratio)) * Float(queryCount)
            for posting in list {
                let document = Int(posting.document)
                guard live[document], posting.version == versions[document], allowed?(document) ?? true else {
                    continue
                }
                let tf = Float(posting.frequency)
                let relativeLength = Float(lengths[document]) / averageLength
                let norm = k1 * (1 - b + b * relativeLength)
                if scores[document] == 0 { touched.append(document) }
                scores[document] += weight * tf * (k1 + 1) / (tf + norm)
            }
        }
        var hits: [(document: Int, score: Float)] = []
        hits.reserveCapacity(touched.count)
        for document in touched where scores[document] > 0 { hits.append((document, scores[document])) }
        hits.sort { $0.score > $1.score || ($0.score == $1.score && $0.document < $1.document) }
        return Array(hits.prefix(limit))
    }
}
