import Foundation
import GRDB
import Synchronization

/// A point checked and serialised, ready to write.
private struct PreparedPoint {
    var id: PointID
    var payload: JSONObject
    var payloadJSON: String
    var blobs: [(field: String, tokenCount: Int, data: Data)]
}

extension CollectionStore {
    // MARK: Writing

    /// Inserts points, replacing any stored point with the same id. The whole batch is one transaction; when a
    /// point appears twice in the batch, the later one wins.
    ///
    /// Every point is checked before anything is written: each configured field must have a vector of the right
    /// kind and dimension, at least one token, and finite values (within ±65504 for `float16` fields); the
    /// payload must hold only finite numbers. On any error nothing of the batch is written.
    /// - Parameters:
    ///   - points: The points.
    ///   - asStored: The vectors are as a collection of the same configuration stores them (read back from a
    ///     replica of the same shard): the unit vectors of cosine fields are kept as given, not scaled again, so
    ///     that a copy holds the same bits as its source.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/dimensionMismatch`` naming the point
    ///   and field; ``TesseraError/Code/io`` when the transaction fails (then nothing was written).
    /// - Complexity: O(total values) plus one B-tree update per point and field; one fsync per call.
    public func upsert(_ points: [Point], asStored: Bool = false) throws(TesseraError) {
        guard !points.isEmpty else { return }
        var prepared: [PreparedPoint] = []
        prepared.reserveCapacity(points.count)
        for point in points {
            var entry = try prepare(point, scale: !asStored)
            entry.blobs.sort { $0.field < $1.field }
            prepared.append(entry)
        }
        var rowIDs: [Int64] = []
        try write { db in
            rowIDs = try Self.insert(prepared, db)
        } apply: { view in
            for (point, rowID) in zip(prepared, rowIDs) {
                view.remove(id: point.id)
                view.append(id: point.id, payload: point.payload, blobs: point.blobs, rowID: rowID)
            }
        }
    }

    /// Replaces some vector fields of stored points, keeping their other fields and payloads (Qdrant's
    /// `update_vectors`), in one transaction: each point is read and written again while the writer is held, so a
    /// concurrent payload write is never lost, whether the point sits in the appendable tail or a sealed segment.
    ///
    /// As Qdrant's server: an id that is not stored does not stop the others; they are written, and then the call
    /// throws naming the first missing id. When an id appears twice, both changes apply in order.
    /// - Parameter updates: For each point, the fields to replace and their new vectors.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/dimensionMismatch`` naming the point and
    ///   field (then nothing is written), ``TesseraError/Code/notFound`` for a missing id (after the others were
    ///   written), ``TesseraError/Code/io``.
    /// - Complexity: O(size of the points); one fsync per call.
    public func updateVectors(_ updates: [(id: PointID, vectors: [String: VectorValue])]) throws(TesseraError) {
        var merged: [PointID: [String: VectorValue]] = [:]
        var order: [PointID] = []
        for (id, vectors) in updates {
            for name in vectors.keys.sorted() {
                guard let field = configuration.field(named: name) else {
                    throw TesseraError(
                        .invalidArgument,
                        "point \(id) has a vector for unknown field '\(name)'; the collection's fields are "
                            + configuration.fields.map(\.name).joined(separator: ", "),
                        location: .init(field: "point \(id), vector '\(name)'")
                    )
                }
                _ = try VectorCodec.validate(vectors[name]!, field: field, pointID: id)
            }
            if merged[id] == nil { order.append(id) }
            merged[id, default: [:]].merge(vectors) { _, new in new }
        }
        guard !order.isEmpty else { return }
        try rewriteVectors(of: order) { id, vectors in vectors.merge(merged[id]!) { _, new in new } }
    }

    /// Reads each stored point of `order` and writes it again with its vectors changed by `change`, in one
    /// transaction holding the writer (so a concurrent payload write is never lost), payloads kept.
    /// - Throws: What preparing a changed point throws (then nothing is written); ``TesseraError/Code/notFound``
    ///   naming the first id that is not stored, after the others were written; ``TesseraError/Code/io``.
    private func rewriteVectors(
        of order: [PointID],
        change: (PointID, inout [String: VectorValue]) -> Void
    ) throws(TesseraError) {
        var prepared: [PreparedPoint] = []
        var rowIDs: [Int64] = []
        var missing: PointID?
        try write { db in
            prepared = []
            missing = nil
            let select = try db.cachedStatement(
                sql: "SELECT row_id, id_key, payload, \(segmentColumns) FROM points WHERE id_key = ?"
            )
            for id in order {
                guard let row = try Row.fetchOne(select, arguments: [id.sortKey]) else {
                    if missing == nil { missing = id }
                    continue
                }
                let stored = try record(db, id: id, row: row, true, true)
                var vectors = stored.vectors ?? [:]
                change(id, &vectors)
                var entry = try prepare(Point(id: id, payload: stored.payload ?? [:], vectors: vectors))
                entry.blobs.sort { $0.field < $1.field }
                prepared.append(entry)
            }
            rowIDs = try Self.insert(prepared, db)
        } apply: { view in
            for (point, rowID) in zip(prepared, rowIDs) {
                view.remove(id: point.id)
                view.append(id: point.id, payload: point.payload, blobs: point.blobs, rowID: rowID)
            }
        }
        if let missing {
            throw TesseraError(
                .notFound,
                "No point with id \(missing) found",
                location: .init(field: "point \(missing)")
            )
        }
    }

    /// Removes vector fields from stored points, keeping their other fields and payloads (Qdrant's
    /// `delete_vectors`), in one transaction. A point then has no vector in those fields: it is no candidate of
    /// searches in them and reads back without them; a sparse field holds the empty vector. `update_vectors` or
    /// an upsert gives the vectors back.
    ///
    /// As ``updateVectors(_:)``: an id that is not stored does not stop the others; they are written, then the call
    /// throws naming the first missing id.
    /// - Parameters:
    ///   - ids: The points.
    ///   - fields: The vector fields to remove.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming an unknown field (then nothing is written),
    ///   ``TesseraError/Code/notFound`` for a missing id (after the others were written), ``TesseraError/Code/io``.
    public func deleteVectors(ids: [PointID], fields: [String]) throws(TesseraError) {
        for name in fields where configuration.field(named: name) == nil {
            throw TesseraError(
                .invalidArgument,
                "Wrong input: Not existing vector name error: \(name)",
                location: .init(field: "vector")
            )
        }
        var order: [PointID] = []
        var seen = Set<PointID>()
        for id in ids where seen.insert(id).inserted { order.append(id) }
        guard !order.isEmpty, !fields.isEmpty else { return }
        try rewriteVectors(of: order) { _, vectors in
            for name in fields { vectors[name] = nil }
        }
    }

    /// Writes prepared points in the open transaction, replacing stored ones; returns their new row ids.
    private static func insert(_ prepared: [PreparedPoint], _ db: Database) throws -> [Int64] {
        let deletePoint = try db.cachedStatement(sql: "DELETE FROM points WHERE id_key = ?")
        let insertPoint = try db.cachedStatement(
            sql: "INSERT INTO points (id_key, id_text, payload) VALUES (?, ?, ?)"
        )
        let insertVector = try db.cachedStatement(
            sql: "INSERT INTO vectors (row_id, field, token_count, data) VALUES (?, ?, ?, ?)"
        )
        let markPending = try pendingStatement(db)
        var rowIDs: [Int64] = []
        for point in prepared {
            let key = point.id.sortKey
            try markPending.statement.execute(arguments: [key, markPending.sequence])
            try deletePoint.execute(arguments: [key])
            try insertPoint.execute(arguments: [key, point.id.description, point.payloadJSON])
            let rowID = db.lastInsertedRowID
            rowIDs.append(rowID)
            for blob in point.blobs where blob.tokenCount > 0 {
                try insertVector.execute(arguments: [rowID, blob.field, blob.tokenCount, blob.data])
            }
        }
        return rowIDs
    }

    /// Deletes points by id; ids that are not stored are ignored.
    /// - Parameter ids: The ids.
    /// - Returns: The number of points deleted.
    /// - Throws: ``TesseraError/Code/io``.
    /// - Complexity: O(ids × log n); one fsync per call.
    @discardableResult
    public func delete(ids: [PointID]) throws(TesseraError) -> Int {
        try deleteLocked { _ in Array(Set(ids)) }
    }

    /// Deletes every point that passes a filter.
    /// - Parameter filter: The filter; an empty filter deletes every point.
    /// - Returns: The number of points deleted.
    /// - Throws: ``TesseraError/Code/io``.
    /// - Complexity: O(n × filter size) to evaluate, then as ``delete(ids:)``.
    @discardableResult
    public func delete(filter: Filter) throws(TesseraError) -> Int {
        try deleteLocked { view in allowedSlots(filter: filter, in: view).slots.map { view.pointIDs[$0] } }
    }

    /// Merges keys into the payloads of points: keys present in `payload` are set, others kept, and a key set to
    /// `null` removed (Qdrant's `set_payload`).
    /// - Parameters:
    ///   - payload: The keys and values to set.
    ///   - ids: The points.
    /// - Throws: as ``updatePayload(_:ids:)``.
    public func setPayload(_ payload: JSONObject, ids: [PointID]) throws(TesseraError) {
        try updatePayload(.set(payload, key: nil), ids: ids)
    }

    /// Replaces the payloads of points (Qdrant's `overwrite_payload`).
    /// - Parameters:
    ///   - payload: The new payload.
    ///   - ids: The points.
    /// - Throws: as ``updatePayload(_:ids:)``.
    public func overwritePayload(_ payload: JSONObject, ids: [PointID]) throws(TesseraError) {
        try updatePayload(.overwrite(payload), ids: ids)
    }

    /// Changes the payloads of points, in one transaction.
    ///
    /// As Qdrant's server: an id that is not stored does not stop the others; they are changed, and then the call
    /// throws naming the first id (in `ids` order) that was missing.
    /// - Parameters:
    ///   - update: The change (set, overwrite, delete keys, clear).
    ///   - ids: The points.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a non-finite number (then nothing is changed),
    ///   ``TesseraError/Code/notFound`` when an id is not stored (after the others were changed),
    ///   ``TesseraError/Code/io``.
    /// - Complexity: O(ids × payload size); one fsync per call.
    public func updatePayload(_ update: PayloadUpdate, ids: [PointID]) throws(TesseraError) {
        _ = try Self.payloadJSON(update.written, id: ids.first ?? .integer(0))
        var updated: [(PointID, JSONObject)] = []
        var missing: PointID?
        try write { db in
            updated = []
            missing = nil
            let select = try db.cachedStatement(sql: "SELECT payload FROM points WHERE id_key = ?")
            let change = try db.cachedStatement(sql: "UPDATE points SET payload = ? WHERE id_key = ?")
            var seen = Set<PointID>()
            for id in ids where seen.insert(id).inserted {
                guard let text = try String.fetchOne(select, arguments: [id.sortKey]) else {
                    if missing == nil { missing = id }
                    continue
                }
                let new = update.apply(to: try Self.decodePayload(text, id: id, directory: directory))
                try change.execute(arguments: [JSONValue.object(new).jsonText, id.sortKey])
                updated.append((id, new))
            }
        } apply: { view in
            for (id, new) in updated { view.setPayload(new, id: id) }
        }
        if let missing {
            throw TesseraError(
                .notFound,
                "No point with id \(missing) found",
                location: .init(field: "point \(missing)")
            )
        }
    }

    /// The generation number of the derived index files that are current; 0 until an index is built.
    /// - Returns: The stored counter.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/corrupted``.
    public func indexGeneration() throws(TesseraError) -> UInt64 {
        let text: String? = try Self.guarded(path: directory) {
            try pool.read { db in
                try String.fetchOne(db, sql: "SELECT value FROM metadata WHERE key = 'index_generation'")
            }
        }
        guard let text, let value = UInt64(text) else {
            throw TesseraError(
                .corrupted,
                "index_generation is missing or not a number",
                location: .init(path: directory)
            )
        }
        return value
    }

    /// Records a new current index generation, one more than the current one, durably.
    /// - Returns: The new generation.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/corrupted``.
    @discardableResult
    public func advanceIndexGeneration() throws(TesseraError) -> UInt64 {
        let next = try indexGeneration() + 1
        try write { db in
            try db.execute(
                sql: "UPDATE metadata SET value = ? WHERE key = 'index_generation'",
                arguments: [String(next)]
            )
        } apply: { _ in
        }
        return next
    }

    // MARK: Reading

    /// Reads points by id.
    /// - Parameters:
    ///   - ids: The ids; missing ids are skipped, repeated ids returned once.
    ///   - withPayload: Whether to return payloads.
    ///   - withVectors: Whether to return vectors (decoded to `Float`).
    /// - Returns: The stored points, in the order of `ids`.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/corrupted``.
    /// - Complexity: O(ids × (log n + point size)).
    public func get(
        ids: [PointID],
        withPayload: Bool = true,
        withVectors: Bool = false
    ) throws(TesseraError)
        -> [Record]
    {
        try Self.guarded(path: directory) {
            try pool.read { db in
                var seen: Set<PointID> = []
                var records: [Record] = []
                let select = try db.cachedStatement(
                    sql: "SELECT row_id, id_key, payload, \(segmentColumns) FROM points WHERE id_key = ?"
                )
                for id in ids where seen.insert(id).inserted {
                    guard let row = try Row.fetchOne(select, arguments: [id.sortKey]) else { continue }
                    records.append(try record(db, id: id, row: row, withPayload, withVectors))
                }
                return records
            }
        }
    }

    /// Counts the points that pass a filter, exactly.
    /// - Parameter filter: The filter, or `nil` for all points.
    /// - Returns: The count.
    /// - Complexity: O(1) without a filter; O(n × filter size) with one, on the in-memory payloads.
    public func count(filter: Filter? = nil) -> Int {
        let snapshot = scoringView()
        guard let filter, !filter.isEmpty else { return snapshot.liveCount }
        return allowedSlots(filter: filter, in: snapshot).count
    }

    /// Pages through points in id order (integers numerically, then UUIDs), as Qdrant's scroll.
    /// - Parameters:
    ///   - filter: Only points that pass it, or `nil` for all.
    ///   - limit: The page size, at least 1.
    ///   - offset: The id to start from, inclusive (the previous page's ``ScrollPage/nextPageOffset``), or `nil`
    ///     to start at the first point.
    ///   - withPayload: Whether to return payloads.
    ///   - withVectors: Whether to return vectors.
    /// - Returns: Up to `limit` points, and the id of the next point that passes the filter, if any.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a limit below 1, ``TesseraError/Code/io``.
    /// - Complexity: O(limit × point size) without a filter; with one, O(points scanned from `offset` until
    ///   `limit + 1` pass), each payload decoded from the database snapshot.
    public func scroll(
        filter: Filter? = nil,
        limit: Int = 10,
        offset: PointID? = nil,
        withPayload: Bool = true,
        withVectors: Bool = false
    ) throws(TesseraError) -> ScrollPage {
        guard limit >= 1 else {
            throw TesseraError(
                .invalidArgument,
                "scroll limit must be at least 1, got \(limit)",
                location: .init(field: "limit")
            )
        }
        // No page is larger than the collection; the cap also keeps `limit + 1` from overflowing.
        let limit = min(limit, 1 << 40)
        let filter = filter.flatMap { $0.isEmpty ? nil : $0 }
        let start = offset?.sortKey ?? Data()
        return try Self.guarded(path: directory) {
            try pool.read { db in
                var records: [Record] = []
                var next: PointID? = nil
                let columns = "row_id, id_key, payload, \(segmentColumns)"
                let sql =
                    filter == nil
                    ? "SELECT \(columns) FROM points WHERE id_key >= ? ORDER BY id_key LIMIT \(limit + 1)"
                    : "SELECT \(columns) FROM points WHERE id_key >= ? ORDER BY id_key"
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: [start])
                while let row = try cursor.next() {
                    let id = try PointID(sortKey: row[1])
                    if let filter {
                        let payload = try Self.decodePayload(row[2], id: id, directory: directory)
                        guard filter.matches(payload: payload, id: id) else { continue }
                    }
                    if records.count == limit {
                        next = id
                        break
                    }
                    records.append(try record(db, id: id, row: row, withPayload, withVectors))
                }
                return ScrollPage(records: records, nextPageOffset: next)
            }
        }
    }

    /// A snapshot of the in-memory scoring view.
    /// - Returns: The view as of the last committed write.
    /// - Complexity: O(1) (copy-on-write).
    public func scoringView() -> ScoringView {
        view.withLock { $0 }
    }

    /// Calls `body` with a snapshot of the in-memory scoring view.
    /// - Parameter body: Reads the view; it may run for long, writers are not blocked.
    /// - Returns: `body`'s result.
    public func withScoringView<R>(_ body: (borrowing ScoringView) throws -> R) rethrows -> R {
        let snapshot = scoringView()
        return try body(snapshot)
    }

    /// Checks the database (`PRAGMA integrity_check`, every point has every field) and that the in-memory view
    /// holds the same points as the database.
    /// - Throws: ``TesseraError/Code/corrupted`` describing the first problem, ``TesseraError/Code/io``.
    /// - Complexity: O(database size).
    public func checkIntegrity() throws(TesseraError) {
        let snapshot = scoringView()
        let fieldCount = configuration.fields.count
        let problem: String? = try Self.guarded(path: directory) {
            try pool.read { db in
                let report = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                if report != ["ok"] { return "integrity_check: " + report.joined(separator: "; ") }
                let pointCount = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM points") ?? 0
                let incomplete =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM points p
                            WHERE \(hasSegmentColumns ? "p.segment_id IS NULL AND" : "")
                                (SELECT COUNT(*) FROM vectors v WHERE v.row_id = p.row_id) > ?
                            """,
                        arguments: [fieldCount]
                    ) ?? 0
                if incomplete > 0 { return "\(incomplete) point(s) hold more vectors than the collection has fields" }
                if pointCount != snapshot.liveCount {
                    return "the database holds \(pointCount) points, the scoring view \(snapshot.liveCount)"
                }
                return nil
            }
        }
        if let problem { throw TesseraError(.corrupted, problem, location: .init(path: directory)) }
    }

    // MARK: Internals

    private func prepare(_ point: Point, scale: Bool = true) throws(TesseraError) -> PreparedPoint {
        for name in point.vectors.keys.sorted() where configuration.field(named: name) == nil {
            throw TesseraError(
                .invalidArgument,
                "point \(point.id) has a vector for unknown field '\(name)'; the collection's fields are "
                    + configuration.fields.map(\.name).joined(separator: ", "),
                location: .init(field: "point \(point.id), vector '\(name)'")
            )
        }
        var blobs: [(field: String, tokenCount: Int, data: Data)] = []
        for field in configuration.fields {
            // A field may be left out (Qdrant's named vectors are optional): the slot holds no tokens there (no row
            // in `vectors`; a segment writes the slot without tokens). An empty sparse vector given is a vector.
            guard let value = point.vectors[field.name] else {
                blobs.append((field.name, 0, Data()))
                continue
            }
            var (values, tokenCount) = try VectorCodec.validate(value, field: field, pointID: point.id)
            // Cosine fields store unit vectors (each token's, for a multivector; as Qdrant does), so that a dot
            // product is the cosine.
            if field.storesUnitVectors, scale { normalizeRows(&values, dimension: field.dimension) }
            let data = VectorCodec.encode(
                values,
                tokenCount: tokenCount,
                dimension: field.dimension,
                elementType: field.elementType
            )
            blobs.append((field.name, tokenCount, data))
        }
        let payloadJSON = try Self.payloadJSON(point.payload, id: point.id)
        return PreparedPoint(id: point.id, payload: point.payload, payloadJSON: payloadJSON, blobs: blobs)
    }

    private static func payloadJSON(_ payload: JSONObject, id: PointID) throws(TesseraError) -> String {
        let value = JSONValue.object(payload)
        if value.containsNonFiniteNumber {
            throw TesseraError(
                .invalidArgument,
                "payload of point \(id) holds a non-finite number, which JSON cannot store",
                location: .init(field: "point \(id), payload")
            )
        }
        return value.jsonText
    }

    /// The segment columns of `points` for a SELECT (`NULL`s in a schema-1 collection opened read-only).
    var segmentColumns: String { hasSegmentColumns ? "segment_id, segment_slot" : "NULL, NULL" }

    /// A stored point from a `points` row (`row_id, id_key, payload, segment_id, segment_slot`).
    private func record(
        _ db: Database,
        id: PointID,
        row: Row,
        _ withPayload: Bool,
        _ withVectors: Bool
    ) throws -> Record {
        let rowID: Int64 = row[0]
        var record = Record(id: id)
        if withPayload { record.payload = try Self.decodePayload(row[2], id: id, directory: directory) }
        if withVectors, let segmentID = row[3] as Int64?, let local = row[4] as Int? {
            record.vectors = try sealedVectors(of: id, segment: segmentID, slot: local)
        } else if withVectors {
            var vectors: [String: VectorValue] = [:]
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT field, token_count, data FROM vectors WHERE row_id = ?"),
                arguments: [rowID]
            )
            for row in rows {
                let name: String = row[0]
                guard let field = configuration.field(named: name) else { continue }
                let tokenCount: Int = row[1]
                let values = try VectorCodec.decode(
                    row[2],
                    tokenCount: tokenCount,
                    dimension: field.dimension,
                    elementType: field.elementType
                )
                vectors[name] = field.value(stored: values)
            }
            record.vectors = vectors
        }
        return record
    }

    /// Runs `update` in one immediate transaction on the writer connection, then, still holding the writer and
    /// only if the commit succeeded, applies `apply` to the in-memory view and compacts it if needed.
    private func write(
        _ update: (Database) throws -> Void,
        apply: (inout ScoringView) -> Void
    )
        throws(TesseraError)
    {
        try withWriter { db in
            try db.inTransaction(.immediate) {
                try update(db)
                return .commit
            }
            view.withLock { view in
                apply(&view)
                view.compactIfNeeded(deadTokenFraction: compactionThreshold)
            }
        }
    }

    /// The statement that records a written or deleted id in `index_pending`, and this transaction's sequence.
    static func pendingStatement(_ db: Database) throws -> (statement: Statement, sequence: Int64) {
        let sequence = try Int64.fetchOne(db, sql: "SELECT IFNULL(MAX(seq), 0) + 1 FROM index_pending") ?? 1
        let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO index_pending (id_key, seq) VALUES (?, ?)")
        return (statement, sequence)
    }

    private func deleteLocked(_ selectIDs: (ScoringView) -> [PointID]) throws(TesseraError) -> Int {
        try withWriter { db in
            // The writer is held: the view is exactly the committed state here.
            let ids = selectIDs(view.withLock { $0 })
            var deleted: [PointID] = []
            try db.inTransaction(.immediate) {
                let statement = try db.cachedStatement(sql: "DELETE FROM points WHERE id_key = ?")
                let markPending = try Self.pendingStatement(db)
                for id in ids {
                    try statement.execute(arguments: [id.sortKey])
                    if db.changesCount > 0 {
                        deleted.append(id)
                        try markPending.statement.execute(arguments: [id.sortKey, markPending.sequence])
                    }
                }
                return .commit
            }
            view.withLock { view in
                for id in deleted { view.remove(id: id) }
                view.compactIfNeeded(deadTokenFraction: compactionThreshold)
            }
            return deleted.count
        }
    }
}
