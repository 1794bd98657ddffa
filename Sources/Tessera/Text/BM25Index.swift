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
///
/// Terms are numbered in the order they are first seen, and everything per term (postings, document frequency)
/// is an array indexed by that number, so that loading a persisted index (``init(terms:postingStarts:postingDocuments:postingFrequencies:documentLengths:documentSlots:)``)
/// hashes each distinct term once rather than once per posting.
struct BM25Index: Sendable {
    /// Each term's number, an index into ``terms``, `postings` and `documentFrequency`.
    private var termNumbers: [String: Int32] = [:]
    /// The terms by number (a term whose documents were all removed keeps its number).
    private(set) var terms: [String] = []
    private var postings: [[Posting]] = []
    private var documentFrequency: [Int32] = []
    /// Per document, its current version's terms; empty for a document not in the index.
    private var documentTerms: [[TermCount]] = []
    private var lengths: [Int32] = []
    private var live: [Bool] = []
    /// Per document, the number of the version whose postings count; older postings are stale.
    private var versions: [UInt32] = []
    private(set) var documentCount = 0
    private(set) var totalLength = 0
    private var deadPostings = 0
    private var postingCount = 0

    struct Posting: Sendable {
        var document: Int32
        var frequency: Int32
        /// The version of the document this posting belongs to.
        var version: UInt32
    }

    /// A term of a document and how often it occurs there.
    struct TermCount: Sendable {
        var term: Int32
        var frequency: Int32
    }

    /// An empty index.
    init() {}

    /// An index of persisted postings, renumbered to the caller's documents.
    ///
    /// Postings of file documents mapped to `-1` are left out, and so are the statistics of those documents:
    /// the result is exactly the index that adding the mapped documents one by one would give, up to the order
    /// of postings inside a list, which no score depends on.
    /// - Parameters:
    ///   - terms: The terms (distinct).
    ///   - postingStarts: Per term, where its postings start; `terms.count + 1` entries, the last one
    ///     `postingDocuments.count`.
    ///   - postingDocuments: File document numbers, term by term.
    ///   - postingFrequencies: The term's frequency in each of those documents.
    ///   - documentLengths: Per file document, its term count.
    ///   - documentSlots: Per file document, the document it becomes here, or `-1` to leave it out; distinct.
    /// - Complexity: O(terms + postings + documents).
    init(
        terms: [String],
        postingStarts: [Int],
        postingDocuments: [UInt32],
        postingFrequencies: [UInt32],
        documentLengths: [UInt32],
        documentSlots: [Int]
    ) {
        let slotCount = (documentSlots.max() ?? -1) + 1
        live = [Bool](repeating: false, count: slotCount)
        lengths = [Int32](repeating: 0, count: slotCount)
        versions = [UInt32](repeating: 0, count: slotCount)
        documentTerms = [[TermCount]](repeating: [], count: slotCount)
        for (document, slot) in documentSlots.enumerated() where slot >= 0 {
            live[slot] = true
            lengths[slot] = Int32(documentLengths[document])
            versions[slot] = 1
            documentCount += 1
            totalLength += Int(documentLengths[document])
        }
        self.terms = terms
        termNumbers.reserveCapacity(terms.count)
        postings.reserveCapacity(terms.count)
        documentFrequency.reserveCapacity(terms.count)
        for (number, term) in terms.enumerated() {
            termNumbers[term] = Int32(number)
            var list: [Posting] = []
            list.reserveCapacity(postingStarts[number + 1] - postingStarts[number])
            for position in postingStarts[number]..<postingStarts[number + 1] {
                let slot = documentSlots[Int(postingDocuments[position])]
                guard slot >= 0 else { continue }
                let frequency = Int32(postingFrequencies[position])
                list.append(Posting(document: Int32(slot), frequency: frequency, version: 1))
                documentTerms[slot].append(TermCount(term: Int32(number), frequency: frequency))
            }
            documentFrequency.append(Int32(list.count))
            postingCount += list.count
            postings.append(list)
        }
    }

    /// Adds a document's terms (replacing the document if it is already there).
    mutating func add(document: Int, terms: [String]) {
        precondition(document >= 0)
        if contains(document: document) { remove(document: document) }
        if document >= live.count {
            live += Array(repeating: false, count: document + 1 - live.count)
            lengths += Array(repeating: 0, count: document + 1 - lengths.count)
            versions += Array(repeating: 0, count: document + 1 - versions.count)
            documentTerms += Array(repeating: [], count: document + 1 - documentTerms.count)
        }
        // A new version: postings of an earlier one, still in the lists, no longer count. Wrapping is safe: stale
        // postings are compacted away long before 2³² versions of one document could make one match again.
        versions[document] &+= 1
        let version = versions[document]
        var counts: [String: Int32] = [:]
        for term in terms { counts[term, default: 0] += 1 }
        var termCounts: [TermCount] = []
        termCounts.reserveCapacity(counts.count)
        for (term, count) in counts {
            let number = self.number(of: term)
            postings[Int(number)].append(Posting(document: Int32(document), frequency: count, version: version))
            documentFrequency[Int(number)] += 1
            termCounts.append(TermCount(term: number, frequency: count))
        }
        postingCount += counts.count
        documentTerms[document] = termCounts
        live[document] = true
        lengths[document] = Int32(terms.count)
        documentCount += 1
        totalLength += terms.count
    }

    /// The number of a term, given a new one if it is not known yet.
    private mutating func number(of term: String) -> Int32 {
        if let number = termNumbers[term] { return number }
        let number = Int32(terms.count)
        termNumbers[term] = number
        terms.append(term)
        postings.append([])
        documentFrequency.append(0)
        return number
    }

    /// Removes a document (its postings stay, skipped, until ``compact()``).
    mutating func remove(document: Int) {
        guard contains(document: document) else { return }
        let counts = documentTerms[document]
        documentTerms[document] = []
        for count in counts { documentFrequency[Int(count.term)] -= 1 }
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
        for number in postings.indices {
            postings[number].removeAll { !live[Int($0.document)] || $0.version != versions[Int($0.document)] }
        }
        postingCount -= deadPostings
        deadPostings = 0
    }

    /// Whether a document is in the index.
    func contains(document: Int) -> Bool { document < live.count && live[document] }

    /// A live document's term count.
    func length(of document: Int) -> Int { Int(lengths[document]) }

    /// The current postings of every term that has some, in `String` order of the terms, each list in document
    /// order.
    /// - Complexity: O(postings + terms · log terms).
    func currentPostings() -> [(term: String, postings: [(document: Int, frequency: Int32)])] {
        var result: [(term: String, postings: [(document: Int, frequency: Int32)])] = []
        result.reserveCapacity(terms.count)
        for number in terms.indices where documentFrequency[number] > 0 {
            var list: [(document: Int, frequency: Int32)] = []
            list.reserveCapacity(Int(documentFrequency[number]))
            for posting in postings[number] {
                let document = Int(posting.document)
                if live[document], posting.version == versions[document] {
                    list.append((document, posting.frequency))
                }
            }
            list.sort { $0.document < $1.document }
            result.append((terms[number], list))
        }
        result.sort { $0.term < $1.term }
        return result
    }

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
            guard let number = termNumbers[term].map(Int.init) else { continue }
            let df = Int(documentFrequency[number])
            guard df > 0 else { continue }
            let ratio = (Double(documentCount) - Double(df) + 0.5) / (Double(df) + 0.5)
            let weight = Float(log(1 + ratio)) * Float(queryCount)
            for posting in postings[number] {
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
