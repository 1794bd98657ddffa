import Foundation
import GRDB
import Synchronization

/// The payload indexes of a store: which are declared (read from the database at first use), and each one's
/// in-memory index, built at first use and caught up with the scoring view before each filter.
final class PayloadIndexCache: Sendable {
    struct State: Sendable {
        /// The declared indexes by field, `nil` until read from the database.
        var declared: [String: PayloadIndexType]?
        var indexes: [String: PayloadFieldIndex] = [:]
    }
    let state = Mutex(State())
}

extension CollectionStore {
    // MARK: Declaring payload indexes

    /// Declares a payload index on a key (Qdrant's `create_payload_index`), recorded in the collection's database in
    /// one transaction, and builds it.
    ///
    /// Filters on the key are then answered from the index where it is cheaper than reading payloads, with the same
    /// result as without it. Declaring an index that exists with the same type changes nothing; with another type,
    /// it replaces it.
    /// - Parameters:
    ///   - field: The payload key, a filter's key path (`city`, `country.name`, `tags[]`, `items[].sku`).
    ///   - type: The kind of index.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad key, ``TesseraError/Code/locked`` for a read-only
    ///   store, ``TesseraError/Code/notFound`` once closed, ``TesseraError/Code/io``.
    /// - Complexity: O(live points × values at the key), for the build.
    public func createPayloadIndex(field: String, type: PayloadIndexType) throws(TesseraError) {
        let key: PayloadKey
        do {
            key = try PayloadKey(field)
        } catch {
            throw TesseraError(
                .invalidArgument,
                "payload index on '\(field)': \(error.message)",
                location: .init(field: "field_name")
            )
        }
        try withWriter { db in
            try db.inTransaction(.immediate) {
                try Self.createPayloadIndexTable(db)
                try db.execute(
                    sql: "INSERT OR REPLACE INTO payload_indexes (field, type) VALUES (?, ?)",
                    arguments: [field, type.rawValue]
                )
                return .commit
            }
            // Still holding the writer: the view is the committed state, and no filter sees the declaration
            // before the index is built.
            let current = view.withLock { $0 }
            payloadIndexCache.state.withLock { state in
                var declared = state.declared ?? (try? Self.readPayloadIndexes(db)) ?? [:]
                declared[field] = type
                state.declared = declared
                if state.indexes[field]?.type != type {
                    var index = PayloadFieldIndex(key: key, type: type)
                    index.catchUp(with: current)
                    state.indexes[field] = index
                }
            }
        }
    }

    /// Removes a payload index (Qdrant's `delete_payload_index`).
    /// - Parameter field: The indexed key, as declared.
    /// - Returns: Whether an index was declared on it.
    /// - Throws: ``TesseraError/Code/locked`` for a read-only store, ``TesseraError/Code/notFound`` once closed,
    ///   ``TesseraError/Code/io``.
    @discardableResult
    public func deletePayloadIndex(field: String) throws(TesseraError) -> Bool {
        try withWriter { db in
            var removed = false
            try db.inTransaction(.immediate) {
                try Self.createPayloadIndexTable(db)
                try db.execute(sql: "DELETE FROM payload_indexes WHERE field = ?", arguments: [field])
                removed = db.changesCount > 0
                return .commit
            }
            payloadIndexCache.state.withLock { state in
                state.declared = try? Self.readPayloadIndexes(db)
                state.indexes[field] = nil
            }
            return removed
        }
    }

    /// The declared payload indexes, by field, with the points each holds a value for.
    /// - Returns: One entry per index, in field order.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/corrupted`` for an unreadable declaration.
    /// - Complexity: O(1) per index once built; the first call after opening builds them (O(live points)).
    public func payloadIndexes() throws(TesseraError) -> [PayloadIndexInfo] {
        let indexes = try caughtUpPayloadIndexes(for: scoringView()) ?? [:]
        return indexes.values.map { PayloadIndexInfo(field: $0.key.text, type: $0.type, pointCount: $0.pointCount) }
            .sorted { $0.field < $1.field }
    }

    // MARK: Filtering with them

    /// The live slots of `view` whose points pass a filter, using the collection's payload indexes where they help.
    ///
    /// The result is exactly ``ScoringView/allowedSlots(filter:)``'s; only the work differs (see
    /// ``createPayloadIndex(field:type:)``). A view older than one the indexes have caught up with (a search that
    /// began before a write), or a store whose declarations cannot be read, is evaluated without indexes.
    /// - Parameters:
    ///   - filter: The filter, or `nil` for every live slot.
    ///   - view: A view of this store.
    /// - Returns: A bitmap over `0..<view.slotCount`.
    /// - Complexity: O(matching entries) for a condition on an indexed key (a keyword keeping 1% of 10⁶ points:
    ///   about 0.1 ms, see the README), plus O(survivors × the rest of the filter); O(live points × filter size)
    ///   without a usable index. Writes since the last filter are taken in first, O(changed points).
    public func allowedSlots(filter: Filter?, in view: ScoringView) -> SlotBitmap {
        allowedSlotsWithStatistics(filter: filter, in: view).slots
    }

    /// ``allowedSlots(filter:in:)`` with what the evaluation did.
    /// - Parameters:
    ///   - filter: The filter, or `nil` for every live slot.
    ///   - view: A view of this store.
    /// - Returns: The bitmap and the evaluation's counters.
    public func allowedSlotsWithStatistics(
        filter: Filter?,
        in view: ScoringView
    ) -> (slots: SlotBitmap, statistics: FilterEvaluationStatistics) {
        guard let filter, !filter.isEmpty else { return (view.liveSlots, FilterEvaluationStatistics()) }
        guard let indexes = try? caughtUpPayloadIndexes(for: view), !indexes.isEmpty else {
            var statistics = FilterEvaluationStatistics()
            statistics.fullScans = 1
            statistics.payloadChecks = view.liveCount
            return (view.allowedSlots(filter: filter), statistics)
        }
        var evaluator = IndexedFilterEvaluator(
            view: view,
            indexes: Dictionary(indexes.values.map { ($0.key.text, $0) }) { first, _ in first }
        )
        let slots = evaluator.allowedSlots(filter)
        return (slots, evaluator.statistics)
    }

    /// BM25 over the text index with scoring on a payload key (Qdrant's text query): see
    /// ``PayloadFieldIndex/bm25(_:k1:b:allowed:corpus:)``.
    /// - Parameters:
    ///   - query: The query text.
    ///   - key: The payload key, as its index was declared.
    ///   - parameters: `k1` (0 or more) and `b` (0...1).
    ///   - view: A view of this store.
    ///   - allowed: The slots that may be returned.
    ///   - corpus: The live slots the statistics count (Qdrant's `idf` corpus); `nil` for every live one.
    ///   - statistics: The counts to weight by (a sharded collection's, summed over its shards); `nil` to count
    ///     them here.
    ///   - limit: How many.
    /// - Returns: Up to `limit` slots with a positive score, best first.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when no text index with scoring is declared on `key`, or for
    ///   a bad `k1` or `b`.
    public func textIndexHits(
        _ query: String,
        key: String,
        parameters: BM25Parameters,
        view: ScoringView,
        allowed: SlotBitmap,
        corpus: SlotBitmap? = nil,
        statistics: TextCorpusStatistics? = nil,
        limit: Int
    ) throws(TesseraError) -> [(slot: Int, score: Float)] {
        guard parameters.k1 >= 0, parameters.k1.isFinite else {
            throw TesseraError(
                .invalidArgument,
                "BM25 k value \(parameters.k1) is invalid. Must be 0.0 or larger.",
                location: .init(field: "query.text.scoring.bm25.k")
            )
        }
        guard (0...1).contains(parameters.b) else {
            throw TesseraError(
                .invalidArgument,
                "BM25 b value \(parameters.b) is invalid. Must be from 0.0 to 1.0.",
                location: .init(field: "query.text.scoring.bm25.b")
            )
        }
        let index = try scoredTextIndex(key, view: view)
        guard let index else { return [] }
        let hits = index.bm25(
            query,
            k1: Double(parameters.k1),
            b: Double(parameters.b),
            allowed: allowed,
            corpus: corpus,
            statistics: statistics
        )
        return Array(hits.prefix(limit))
    }

    /// BM25's counts for a query over the text index with scoring on a payload key (see
    /// ``TextCorpusStatistics``); a sharded collection's shards report them before scoring.
    /// - Throws: ``TesseraError/Code/invalidArgument`` when no text index with scoring is declared on `key`.
    public func textStatistics(
        _ query: String,
        key: String,
        view: ScoringView,
        corpus: SlotBitmap? = nil
    ) throws(TesseraError) -> TextCorpusStatistics {
        guard let index = try scoredTextIndex(key, view: view) else {
            return TextCorpusStatistics(points: 0, totalLength: 0, frequencies: [:])
        }
        return index.textStatistics(query, corpus: corpus)
    }

    /// The text index with scoring on `key`, caught up with `view` (`nil` for a key that no longer parses).
    private func scoredTextIndex(_ key: String, view: ScoringView) throws(TesseraError) -> PayloadFieldIndex? {
        guard try declaredPayloadIndexes()[key] == .scoredText else {
            throw TesseraError(
                .invalidArgument,
                "'\(key)' is neither a vector field (\(configuration.fields.map(\.name).joined(separator: ", "))) "
                    + "nor a payload key with a text index that has `scoring`: a text query needs one of them in `using`",
                location: .init(field: "using")
            )
        }
        if let caughtUp = try caughtUpPayloadIndexes(for: view)?[key], caughtUp.type == .scoredText {
            return caughtUp
        }
        // A view older than the shared index (a search that began before a write): an index of its own.
        guard let parsed = try? PayloadKey(key) else { return nil }
        var index = PayloadFieldIndex(key: parsed, type: .scoredText)
        index.catchUp(with: view)
        return index
    }

    /// The declared indexes caught up with `view`, or `nil` when `view` is older than what they have taken in.
    /// - Throws: What reading the declarations throws (the first time).
    func caughtUpPayloadIndexes(for view: ScoringView) throws(TesseraError) -> [String: PayloadFieldIndex]? {
        guard !(try declaredPayloadIndexes()).isEmpty else { return [:] }
        return payloadIndexCache.state.withLock { state -> [String: PayloadFieldIndex]? in
            var result: [String: PayloadFieldIndex] = [:]
            for (field, type) in state.declared ?? [:] {
                if state.indexes[field]?.type != type {
                    // Declarations are checked when made; one that no longer parses is skipped, not fatal.
                    guard let key = try? PayloadKey(field) else { continue }
                    state.indexes[field] = PayloadFieldIndex(key: key, type: type)
                }
                if state.indexes[field]!.cursor.isAhead(of: view) { return nil }
                state.indexes[field]!.catchUp(with: view)
                result[field] = state.indexes[field]
            }
            return result
        }
    }

    /// The declared payload indexes, read from the database at first use.
    private func declaredPayloadIndexes() throws(TesseraError) -> [String: PayloadIndexType] {
        if let known = payloadIndexCache.state.withLock({ $0.declared }) { return known }
        let read = try Self.guarded(path: directory) { try pool.read { db in try Self.readPayloadIndexes(db) } }
        return payloadIndexCache.state.withLock { state in
            // A declaration made meanwhile (through the writer) is newer than what was read.
            if let known = state.declared { return known }
            state.declared = read
            return read
        }
    }

    // MARK: Storage

    /// The table of declared payload indexes: one row per field, its type by name.
    static func createPayloadIndexTable(_ db: Database) throws {
        try db.execute(
            sql: "CREATE TABLE IF NOT EXISTS payload_indexes (field TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL)"
        )
    }

    static func readPayloadIndexes(_ db: Database) throws -> [String: PayloadIndexType] {
        guard try db.tableExists("payload_indexes") else { return [:] }
        var declared: [String: PayloadIndexType] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT field, type FROM payload_indexes") {
            let field: String = row["field"]
            let name: String = row["type"]
            guard let type = PayloadIndexType(rawValue: name) else {
                throw TesseraError(
                    .corrupted,
                    "payload index on '\(field)' has unknown type '\(name)'",
                    location: .init(field: "payload_indexes")
                )
            }
            declared[field] = type
        }
        return declared
    }
}
