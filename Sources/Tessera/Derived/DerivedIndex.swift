import Foundation
import GRDB

/// An index derived from a collection's stored points: the compressed multivector index, a dense field's HNSW
/// graph, the BM25 index of payload text.
///
/// Everything in a derived index can be rebuilt from the store, which stays the source of truth. Its life:
/// 1. **build** from a snapshot of the scoring view (``CollectionStore/buildCompressedIndex(field:options:progress:)``,
///    ``CollectionStore/buildDenseIndex(field:options:threadCount:)``; BM25 is built in memory on first use, or
///    loaded from the file that ``CollectionStore/buildTextIndex(fields:analyzer:)`` wrote);
/// 2. **commit a generation** (index files only): the files are written under a new generation's name through
///    ``TesseraPlatform/AtomicFile`` and recorded as current in one SQLite transaction
///    (``CollectionStore/commitGeneration(_:of:field:fileName:files:alsoInTransaction:)``), so that a crash leaves the
///    old index or the new one, never a torn one; the previous generation's files are deleted afterwards;
/// 3. **catch up** with the points written since the build (``catchUp(with:)``, one implementation for all
///    kinds through ``CatchUpCursor``), before each search;
/// 4. answer **candidates**: the best slots for a query among the allowed ones, which the query pipeline then
///    reranks or fuses.
protocol DerivedIndex: CatchingUpIndex {
    /// What a search asks of the index.
    associatedtype Query
    /// The best `limit` slots for `query` among `allowed` (every live slot when `nil`), best first.
    func candidates(
        for query: Query,
        view: ScoringView,
        allowed: SlotBitmap?,
        limit: Int
    ) -> [(slot: Int, score: Float)]
}

/// Anything kept in step with a collection's scoring view through ``CatchUpCursor``: the derived indexes that
/// answer candidates, and the payload indexes that answer filters (``PayloadFieldIndex``).
protocol CatchingUpIndex: Sendable {
    /// Where the index stands against the scoring view.
    var cursor: CatchUpCursor { get set }
    /// Takes in what changed in `view` since the cursor last moved; the caller then advances the cursor.
    /// - Parameters:
    ///   - changes: What changed (``ViewChanges/isFirst`` on the first call after the build or load).
    ///   - view: The view the changes lead to.
    /// - Complexity: O(changed slots × their size) when ``ViewChanges/changedSlots`` is known and the layout is
    ///   unchanged; a first call or a compaction may cost O(collection).
    mutating func apply(_ changes: ViewChanges, from view: ScoringView)
}

extension CatchingUpIndex {
    /// Brings the index up to date with `view`: the one catch-up shared by every kind of derived index.
    ///
    /// Does nothing for a view older than one already applied (a search that started before a write) or when
    /// nothing changed.
    mutating func catchUp(with view: ScoringView) {
        guard let changes = cursor.changes(in: view), !changes.isEmpty else { return }
        apply(changes, from: view)
        cursor.advance(to: view)
    }
}

/// Where a derived index stands against the scoring view: the layout generation it last saw, the newest slot
/// version it has taken in, and how far it has read the view's log of removed and edited slots.
struct CatchUpCursor: Sendable {
    /// Whether the index has seen any view since its build or load.
    var isStarted = false
    var layoutGeneration: UInt64 = 0
    /// The newest slot version the index has taken in.
    var version: UInt64 = 0
    /// The view's change count when the index last caught up.
    var changeNumber: UInt64 = 0

    /// Whether `view` is older than one this index has already caught up with.
    func isAhead(of view: ScoringView) -> Bool {
        guard isStarted else { return false }
        return view.nextVersion - 1 < version || view.layoutGeneration < layoutGeneration
            || (view.layoutGeneration == layoutGeneration && view.changeCount < changeNumber)
    }

    /// What changed in `view` since the cursor last moved, or `nil` for an older view.
    /// - Complexity: O(slots appended since + changes logged since).
    func changes(in view: ScoringView) -> ViewChanges? {
        if isAhead(of: view) { return nil }
        guard isStarted else {
            return ViewChanges(isFirst: true, layoutChanged: false, addedSlots: view.liveSlots.slots, changedSlots: nil)
        }
        let layoutChanged = view.layoutGeneration != layoutGeneration
        let added: [Int]
        if layoutChanged {
            // An imported segment goes before the tail: new versions are then not all at the end.
            added = (0..<view.slotCount).filter { view.slotVersions[$0] > version && view.liveSlots.contains($0) }
        } else {
            var slot = view.slotCount
            while slot > 0, view.slotVersions[slot - 1] > version { slot -= 1 }
            added = (slot..<view.slotCount).filter { view.liveSlots.contains($0) }
        }
        return ViewChanges(
            isFirst: false,
            layoutChanged: layoutChanged,
            addedSlots: added,
            changedSlots: layoutChanged ? nil : view.changedSlots(since: changeNumber).map(Array.init)
        )
    }

    /// Records that the index has caught up with `view`.
    mutating func advance(to view: ScoringView) {
        isStarted = true
        layoutGeneration = view.layoutGeneration
        version = view.nextVersion - 1
        changeNumber = view.changeCount
    }
}

/// What changed in a scoring view since a derived index last caught up.
struct ViewChanges: Sendable {
    /// The first catch-up after a build or load: ``addedSlots`` holds every live slot.
    var isFirst: Bool
    /// The view was compacted: slot numbers changed, though slot versions did not.
    var layoutChanged: Bool
    /// Live slots appended since (points added or replaced), in slot order.
    var addedSlots: [Int]
    /// Slots removed or whose payload was edited since, in the order it happened (a slot may repeat); `nil`
    /// when not known (the first catch-up, a compaction, or more changes than the view keeps).
    var changedSlots: [Int]?

    /// Whether nothing changed.
    var isEmpty: Bool { !isFirst && !layoutChanged && addedSlots.isEmpty && changedSlots?.isEmpty == true }
}

extension CollectionStore {
    /// The file name that the collection's database records as the current generation of a derived index.
    /// - Parameters:
    ///   - kind: The index's metadata prefix (`compressed_index`, `dense_index`, `text_index`).
    ///   - field: The vector field (for a text index, its fields and analyzer: ``TextIndexState/key(fields:analyzer:)``).
    /// - Returns: The file name inside the collection's directory, or `nil` when none was built.
    /// - Throws: ``TesseraError/Code/io``.
    func recordedFileName(of kind: String, field: String) throws(TesseraError) -> String? {
        try Self.guarded(path: directory) {
            try pool.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT value FROM metadata WHERE key = ?",
                    arguments: ["\(kind).\(field)"]
                )
            }
        }
    }

    /// Makes a written generation of a derived index current: one transaction records the new generation
    /// number and the index's file name (and runs `alsoInTransaction`); then the previous generation's files
    /// are deleted.
    ///
    /// The files must already be whole and durable (written through ``TesseraPlatform/AtomicFile``): a crash
    /// before the commit leaves the previous generation current and the new files unnamed (removed as orphans
    /// at the next build), a crash after it leaves the new one current.
    /// - Parameters:
    ///   - generation: The new generation, one more than ``indexGeneration()``.
    ///   - kind: The index's metadata prefix (`compressed_index`, `dense_index`, `text_index`).
    ///   - field: The vector field (for a text index, its key).
    ///   - fileName: The new generation's file name (without endings, for several files).
    ///   - files: The files of a generation, given its path without endings.
    ///   - alsoInTransaction: More statements for the same transaction.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/notFound`` once closed.
    func commitGeneration(
        _ generation: UInt64,
        of kind: String,
        field: String,
        fileName: String,
        files: (String) -> [String],
        alsoInTransaction: ((Database) throws -> Void)? = nil
    ) throws(TesseraError) {
        let previous = try recordedFileName(of: kind, field: field)
        try withWriter { db in
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: "UPDATE metadata SET value = ? WHERE key = 'index_generation'",
                    arguments: [String(generation)]
                )
                try db.execute(
                    sql: "INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)",
                    arguments: ["\(kind).\(field)", fileName]
                )
                try alsoInTransaction?(db)
                return .commit
            }
        }
        if let previous, previous != fileName {
            for file in files((directory as NSString).appendingPathComponent(previous)) {
                try? FileManager.default.removeItem(atPath: file)
            }
        }
    }
}
