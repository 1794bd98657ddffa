import Synchronization

/// A BM25 search over text in the payload.
public struct TextSearchRequest: Sendable {
    /// The query text, analysed like the documents.
    public var text: String
    /// The payload fields whose string values (joined by spaces) are a point's text.
    public var fields: [String]
    /// How text becomes terms.
    public var analyzer: TextAnalyzer
    /// `k1` and `b`.
    public var parameters: BM25Parameters
    /// Only points matching this filter are returned.
    public var filter: Filter?
    /// How many results, after `offset`.
    public var limit: Int
    /// Results to skip.
    public var offset: Int
    /// Whether results carry their payload.
    public var withPayload: Bool

    /// Creates a request.
    /// - Parameters:
    ///   - text: The query.
    ///   - fields: Payload fields holding the text (default `title` and `text`, BEIR's).
    ///   - analyzer: The analyzer (default: folding, stop words, Porter stems).
    ///   - parameters: BM25 settings (default k1 1.2, b 0.75).
    ///   - filter: A payload filter.
    ///   - limit: Results wanted.
    ///   - offset: Results skipped.
    ///   - withPayload: Whether to return payloads.
    public init(
        text: String,
        fields: [String] = ["title", "text"],
        analyzer: TextAnalyzer = TextAnalyzer(),
        parameters: BM25Parameters = BM25Parameters(),
        filter: Filter? = nil,
        limit: Int,
        offset: Int = 0,
        withPayload: Bool = true
    ) {
        self.text = text
        self.fields = fields
        self.analyzer = analyzer
        self.parameters = parameters
        self.filter = filter
        self.limit = limit
        self.offset = offset
        self.withPayload = withPayload
    }
}

/// The BM25 index of one choice of fields and analyzer, kept in step with a collection's scoring view.
///
/// Catching up is incremental: a write of k points updates the postings and statistics of those k slots only
/// (O(k · terms)): appended slots are added, and removed or edited slots (from the view's change log) are
/// removed and, when still live, added again with their new text. Only the first use, a compaction (slots
/// renumbered) or falling behind the change log rebuilds from every live slot.
///
/// When the collection has a persisted index (``BM25File``, written by
/// ``CollectionStore/buildTextIndex(fields:analyzer:)``), the first catch-up takes its postings instead of
/// analysing every payload: each file document is matched to the slot of its point, and kept only when that
/// slot's text still has the fingerprint the file recorded. Points written since the file (added, replaced,
/// edited or deleted, by any process) therefore fail the match or have no slot; the live ones are analysed and
/// added like any other write. This plays the part that `index_pending` plays for the compressed index, but
/// from the data itself: that table is cleared by compressed-index builds and does not record payload edits,
/// which change BM25's text.
struct TextIndexState: DerivedIndex {
    /// A search: the analysed query and the BM25 settings.
    struct Query {
        var terms: [String]
        var parameters: BM25Parameters
    }

    let fields: [String]
    let analyzer: TextAnalyzer
    var index = BM25Index()
    var cursor = CatchUpCursor()
    /// How many times the index was built from every live slot (for tests of the incremental path).
    private(set) var rebuildCount = 0
    /// A persisted index read at load, taken in (and dropped) at the first catch-up.
    var file: BM25File?
    /// The persisted index the state was loaded from or last written to.
    var filePath: String?
    /// Why the recorded file could not be used (the index was then built from the payloads).
    var loadError: TesseraError?
    /// Documents the file gave at load (the rest were analysed).
    private(set) var loadedDocumentCount = 0
    /// Documents added, replaced or removed since the state was created, file documents left out at load
    /// included.
    private(set) var changeCount = 0
    /// ``changeCount`` when the index last matched ``filePath``.
    var changeCountAtFile = 0

    init(fields: [String], analyzer: TextAnalyzer, file: BM25File? = nil) {
        self.fields = fields
        self.analyzer = analyzer
        self.file = file
    }

    /// The name of one choice of fields and analyzer: in the store's cache, in the collection's database, and
    /// inside a persisted index.
    static func key(fields: [String], analyzer: TextAnalyzer) -> String {
        let flags = [analyzer.foldsDiacritics, analyzer.removesStopWords, analyzer.stems].map { $0 ? "1" : "0" }
        return fields.joined(separator: "\u{1F}") + "\u{1E}analyzer " + flags.joined()
    }

    /// The text BM25 indexes for a slot: the string values of `fields` in its payload, joined by spaces.
    static func text(ofSlot slot: Int, in view: ScoringView, fields: [String]) -> String {
        let payload = view.payload(ofSlot: slot)
        return fields.compactMap { field -> String? in
            if case .string(let value) = payload[field] { return value }
            return nil
        }.joined(separator: " ")
    }

    mutating func apply(_ changes: ViewChanges, from view: ScoringView) {
        if changes.isFirst, let file {
            self.file = nil
            load(file, from: view)
            return
        }
        guard let changed = changes.changedSlots, !changes.isFirst, !changes.layoutChanged else {
            index = BM25Index()
            rebuildCount += 1
            changeCount += view.liveCount
            for slot in view.liveSlots.slots { add(slot: slot, from: view) }
            return
        }
        for slot in Set(changed).sorted() {
            if index.contains(document: slot) { changeCount += 1 }
            index.remove(document: slot)
            // Slots appended since the last catch-up are added below, with the rest of the new ones.
            if view.liveSlots.contains(slot), view.slotVersions[slot] <= cursor.version { add(slot: slot, from: view) }
        }
        for slot in changes.addedSlots { add(slot: slot, from: view) }
        changeCount += changes.addedSlots.count
    }

    /// Takes the file's documents whose point still has the same text, and analyses the other live slots.
    /// - Complexity: O(file + text of the live slots): each slot's text is fingerprinted, not analysed.
    private mutating func load(_ file: BM25File, from view: ScoringView) {
        var documentSlots = [Int](repeating: -1, count: file.documentIDs.count)
        var covered = [Bool](repeating: false, count: view.slotCount)
        for (document, id) in file.documentIDs.enumerated() {
            guard let slot = view.slot(of: id), view.liveSlots.contains(slot), !covered[slot],
                TextFingerprint(of: Self.text(ofSlot: slot, in: view, fields: fields))
                    == file.documentFingerprints[document]
            else { continue }
            documentSlots[document] = slot
            covered[slot] = true
        }
        index = BM25Index(
            terms: file.terms,
            postingStarts: file.postingStarts,
            postingDocuments: file.postingDocuments,
            postingFrequencies: file.postingFrequencies,
            documentLengths: file.documentLengths,
            documentSlots: documentSlots
        )
        loadedDocumentCount = index.documentCount
        changeCount += file.documentIDs.count - loadedDocumentCount
        for slot in view.liveSlots.slots where !covered[slot] {
            add(slot: slot, from: view)
            changeCount += 1
        }
    }

    private mutating func add(slot: Int, from view: ScoringView) {
        index.add(document: slot, terms: analyzer.terms(Self.text(ofSlot: slot, in: view, fields: fields)))
    }

    func candidates(
        for query: Query,
        view: ScoringView,
        allowed: SlotBitmap?,
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        index.search(
            terms: query.terms,
            parameters: query.parameters,
            allowed: allowed.map { bitmap in { bitmap.contains($0) } },
            limit: limit
        ).map { ($0.document, $0.score) }
    }
}

/// Text indexes by fields and analyzer (``TextIndexState/key(fields:analyzer:)``).
final class TextIndexCache: Sendable {
    let states = Mutex<[String: TextIndexState]>([:])
    /// Held while a persisted index is written, so that two writes never share a generation's file name.
    let writing = Mutex<Void>(())
}

extension CollectionStore {
    /// BM25 search over text in the payload (`fields`, joined), with an in-memory inverted index loaded on first
    /// use (from the persisted index that ``buildTextIndex(fields:analyzer:)`` wrote, else built from the stored
    /// payloads) and kept in step with writes: the text is part of each point's payload, so it commits in the
    /// point's own transaction.
    /// - Parameter request: The query, fields, analyzer, BM25 settings, filter, limit.
    /// - Returns: Up to `limit` points with a positive score, best first (ties to the earlier-stored point).
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a negative limit or offset or no fields.
    public func textSearch(_ request: TextSearchRequest) throws(TesseraError) -> [ScoredPoint] {
        guard request.limit >= 0, request.offset >= 0 else {
            throw TesseraError(
                .invalidArgument,
                "limit and offset must not be negative (limit \(request.limit), offset \(request.offset))",
                location: .init(field: request.limit < 0 ? "limit" : "offset")
            )
        }
        guard !request.fields.isEmpty else {
            throw TesseraError(
                .invalidArgument,
                "a text search needs at least one payload field",
                location: .init(field: "fields")
            )
        }
        let view = scoringView()
        let allowed = request.filter.map { allowedSlots(filter: $0, in: view) }
        let wanted = request.limit + request.offset
        guard wanted > 0 else { return [] }
        let hits = textHits(
            request.text,
            fields: request.fields,
            analyzer: request.analyzer,
            parameters: request.parameters,
            view: view,
            allowed: allowed,
            limit: wanted
        )
        return hits.dropFirst(request.offset).map { hit in
            ScoredPoint(
                id: view.pointIDs[hit.slot],
                score: hit.score,
                payload: request.withPayload ? view.payload(ofSlot: hit.slot) : nil,
                matchedTokens: nil
            )
        }
    }

    /// BM25 hits among `allowed` slots (all live ones when `nil`), best first, with a positive score.
    func textHits(
        _ text: String,
        fields: [String],
        analyzer: TextAnalyzer,
        parameters: BM25Parameters,
        view: ScoringView,
        allowed: SlotBitmap?,
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        guard limit > 0 else { return [] }
        let key = TextIndexState.key(fields: fields, analyzer: analyzer)
        let query = TextIndexState.Query(terms: analyzer.terms(text), parameters: parameters)
        return textIndexes.states.withLock { states in
            var state = states[key] ?? loadedTextIndexState(fields: fields, analyzer: analyzer)
            if state.cursor.isAhead(of: view) {
                // A search that began before a write the index has taken in: answer from that view's own index.
                var own = TextIndexState(fields: fields, analyzer: analyzer)
                own.catchUp(with: view)
                return own.candidates(for: query, view: view, allowed: allowed, limit: limit)
            }
            state.catchUp(with: view)
            defer { states[key] = state }
            return state.candidates(for: query, view: view, allowed: allowed, limit: limit)
        }
    }
}
