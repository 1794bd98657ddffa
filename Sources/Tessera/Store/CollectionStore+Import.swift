import Foundation
import GRDB
import Synchronization
import TesseraPlatform

/// How an import cuts its points into segments.
public struct ImportOptions: Sendable, Equatable {
    /// The most vector bytes per segment written; `nil`: the collection's `max_segment_size`, or an even split of
    /// the import into as many segments as the optimiser keeps (`default_segment_number`), whichever is smaller.
    public var segmentByteLimit: Int?

    /// Creates the default options.
    public init(segmentByteLimit: Int? = nil) {
        self.segmentByteLimit = segmentByteLimit
    }
}

/// Where an import stands: reported during the check of the values and while writing (about every 16 MB), and
/// after each committed segment.
public struct ImportProgress: Sendable, Equatable {
    /// `checking` (the values are being checked), `writing` (a segment is being written) or `committed` (a
    /// segment was committed).
    public var phase: String
    /// The points in the import.
    public var pointCount: Int
    /// The points committed so far (including those of an earlier, interrupted run).
    public var pointsDone: Int
    /// The points an earlier run had committed when this one started.
    public var resumedAt: Int
    /// Segments committed by this run.
    public var segmentsWritten: Int
    /// The vector bytes this run checks, then writes (as stored).
    public var byteCount: Int
    /// The bytes of ``byteCount`` done in the current phase.
    public var bytesDone: Int
}

/// What an import did.
public struct ImportReport: Sendable, Equatable {
    /// The points in the import.
    public var pointCount: Int
    /// The points this run wrote.
    public var pointsWritten: Int
    /// The points an earlier, interrupted run had written (this run went on from there).
    public var resumedAt: Int
    /// Stored points the import replaced (same id).
    public var replacedCount: Int
    /// Segments written.
    public var segmentCount: Int
    /// Bytes of segment files written.
    public var byteCount: Int
    /// Whether an earlier run had already imported every point (then nothing was written).
    public var wasComplete: Bool
}

extension CollectionStore {
    // MARK: Importing precomputed vectors

    /// Imports precomputed vectors straight into sealed segments, without passing them through the database or
    /// the appendable segment.
    ///
    /// 1. The inputs must fill exactly the collection's fields (``ImportSource`` has checked their shapes, offsets,
    ///    ids and payloads); then every value is checked (finite; within ±65504 for float16). Any error is thrown
    ///    before anything is written: a bad input changes nothing stored.
    /// 2. The points are cut into segments (``ImportOptions``); each is written to a segment file (temporary file,
    ///    fsync, rename), its checksums verified, then recorded in one transaction together with its points' rows
    ///    (payloads, ids) and the import's progress; points with an id already stored replace it, as
    ///    ``upsert(_:)`` does. Values are normalised for cosine fields and encoded as the field stores them.
    /// 3. The import's progress is kept in the database under the inputs' fingerprint: run again on the same
    ///    inputs after an interruption (a crash, a kill, a thrown `progress`), it goes on after the last committed
    ///    segment; run again after it finished, it writes nothing.
    ///
    /// Reads and writes go on meanwhile; the optimiser waits (the import holds the maintenance lock), then
    /// builds the derived indexes the new points call for.
    /// - Parameters:
    ///   - source: The inputs.
    ///   - options: How to cut segments.
    ///   - progress: Called as the import goes (see ``ImportProgress``); returning `false` stops the import at the
    ///     next segment boundary (what was committed stays, and a later run resumes).
    /// - Returns: What was done.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/dimensionMismatch`` for inputs that
    ///   do not fit the collection or bad values (naming file, row and point), ``TesseraError/Code/locked`` for a
    ///   read-only store, ``TesseraError/Code/io``.
    /// - Complexity: two passes over the vectors (check, write) plus one to verify each written segment; memory
    ///   O(points) plus one point's vectors.
    @discardableResult
    public func importPoints(
        _ source: ImportSource,
        options: ImportOptions = ImportOptions(),
        progress: @escaping (ImportProgress) -> Bool = { _ in true }
    ) throws(TesseraError) -> ImportReport {
        try source.check(against: configuration)
        let settings = try optimizerSettings()
        return try maintenance.withLock { _ throws(TesseraError) in
            try withWriter { db in try db.execute(sql: Self.importsTableSQL) }
            let done = try importedPointCount(fingerprint: source.fingerprint)
            var report = ImportReport(
                pointCount: source.pointCount,
                pointsWritten: 0,
                resumedAt: done,
                replacedCount: 0,
                segmentCount: 0,
                byteCount: 0,
                wasComplete: done >= source.pointCount
            )
            guard !report.wasComplete else { return report }
            let fieldInputs = configuration.fields.map { source.inputIndex(of: $0.name)! }
            let bytesPerToken = configuration.fields.map { $0.dimension * $0.elementType.byteCount }
            func pointBytes(_ point: Int) -> Int {
                var bytes = 0
                for (index, input) in fieldInputs.enumerated() {
                    bytes += source.fields[input].rows(of: point).count * bytesPerToken[index]
                }
                return bytes
            }
            var total = 0
            for point in done..<source.pointCount { total += pointBytes(point) }
            let state = ProgressState(
                ImportProgress(
                    phase: "checking",
                    pointCount: source.pointCount,
                    pointsDone: done,
                    resumedAt: done,
                    segmentsWritten: 0,
                    byteCount: total,
                    bytesDone: 0
                ),
                progress
            )
            try source.checkValues(points: done..<source.pointCount, configuration: configuration) { bytes in
                state.advance(by: bytes)
            }
            state.begin("writing")
            // As few segments as the limit allows, cut where the running total crosses an even share, so that
            // they come out about equal (a greedy cut would leave a small remainder for the optimiser to merge).
            let limit = segmentByteLimit(total: total, options: options, settings: settings)
            let segmentCount = max(1, (total + limit - 1) / limit)
            var start = done
            var cumulative = 0
            var boundary = 1
            while start < source.pointCount {
                guard state.report() else { break }
                var end = start
                let target = Int((Double(total) * Double(boundary) / Double(segmentCount)).rounded())
                repeat {
                    cumulative += pointBytes(end)
                    end += 1
                } while end < source.pointCount && cumulative + pointBytes(end) <= target
                boundary += 1
                let written = try importSegment(source, points: start..<end, fieldInputs: fieldInputs, state: state)
                report.pointsWritten += end - start
                report.replacedCount += written.replaced
                report.segmentCount += 1
                report.byteCount += written.bytes
                state.committed(pointsDone: end)
                start = end
            }
            return report
        }
    }

    /// The points an earlier import of the same inputs committed.
    private func importedPointCount(fingerprint: String) throws(TesseraError) -> Int {
        try Self.guarded(path: directory) {
            try pool.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT points_done FROM imports WHERE fingerprint = ?",
                    arguments: [fingerprint]
                ) ?? 0
            }
        }
    }

    static let importsTableSQL = """
        CREATE TABLE IF NOT EXISTS imports (
            fingerprint TEXT PRIMARY KEY NOT NULL,
            point_count INTEGER NOT NULL,
            points_done INTEGER NOT NULL
        )
        """

    private func segmentByteLimit(total: Int, options: ImportOptions, settings: OptimizerSettings) -> Int {
        if let limit = options.segmentByteLimit { return max(1, limit) }
        var limit = (total + settings.segmentLimit - 1) / max(1, settings.segmentLimit)
        if let maximum = settings.maxSegmentSize { limit = min(limit, maximum * 1024) }
        return max(1, limit)
    }

    /// Writes points `points` of the import as one segment and commits it.
    /// - Returns: Stored points replaced, and the file's size.
    private func importSegment(
        _ source: ImportSource,
        points: Range<Int>,
        fieldInputs: [Int],
        state: ProgressState
    ) throws(TesseraError) -> (replaced: Int, bytes: Int) {
        let fields = configuration.fields
        while true {
            // Row numbers for the new points, far enough past the current ones that writes meanwhile do not
            // reach them; the transaction checks that they are still free.
            let maxRow: Int64 = try Self.guarded(path: directory) {
                try pool.read { db in try Int64.fetchOne(db, sql: "SELECT IFNULL(MAX(row_id), 0) FROM points") ?? 0 }
            }
            let firstRow = max(maxRow, scoringView().rowIDs.max() ?? 0) + 1 + (1 << 20)
            let id = try nextSegmentID()
            let path = (directory as NSString).appendingPathComponent(SegmentFile.fileName(id: id))
            let base = points.lowerBound
            let phaseStart = state.current.bytesDone
            let rows = SegmentFile.Rows(
                count: points.count,
                key: { [UInt8](source.ids[base + $0].sortKey) },
                version: { firstRow + Int64($0) },
                tokenCount: { field, row in source.fields[fieldInputs[field]].rows(of: base + row).count },
                storedBytes: { field, row, body throws(SystemCallError) in
                    let blob = source.storedBlob(point: base + row, field: fields[field], input: fieldInputs[field])
                    let scaleBytes = fields[field].elementType.isInt8 ? 4 * blob.tokenCount : 0
                    let result: Result<Void, SystemCallError> = blob.data.withUnsafeBytes { raw in
                        Result { () throws(SystemCallError) in
                            try body(
                                UnsafeRawBufferPointer(rebasing: raw[scaleBytes...]),
                                UnsafeRawBufferPointer(rebasing: raw[..<scaleBytes])
                            )
                        }
                    }
                    try result.get()
                    state.advance(by: blob.data.count - scaleBytes)
                }
            )
            let summary = try SegmentFile.write(to: path, rows: rows, fields: fields)
            source.releaseResidentPages()
            let segment: SealedSegment
            do {
                segment = try SealedSegment(path: path, id: id, fields: fields)
                try segment.verifyValues()
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw error
            }
            let payloads = points.map { source.payload(of: $0) }
            var replaced = 0
            let committed: Bool
            do throws(TesseraError) {
                committed = try withWriter { db in
                    let free = try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM points WHERE row_id >= ? AND row_id < ?",
                        arguments: [firstRow, firstRow + Int64(points.count)]
                    )
                    guard free == 0 else { return false }
                    var replacedIDs: [PointID] = []
                    try db.inTransaction(.immediate) {
                        replacedIDs = []
                        _ = try Self.recordSegment(db, id: id, summary: summary)
                        let markPending = try Self.pendingStatement(db)
                        let deletePoint = try db.cachedStatement(sql: "DELETE FROM points WHERE id_key = ?")
                        let insertPoint = try db.cachedStatement(
                            sql: """
                                INSERT INTO points (row_id, id_key, id_text, payload, segment_id, segment_slot)
                                VALUES (?, ?, ?, ?, ?, ?)
                                """
                        )
                        for (local, index) in points.enumerated() {
                            let pointID = source.ids[index]
                            let key = pointID.sortKey
                            try markPending.statement.execute(arguments: [key, markPending.sequence])
                            try deletePoint.execute(arguments: [key])
                            if db.changesCount > 0 { replacedIDs.append(pointID) }
                            try insertPoint.execute(arguments: [
                                firstRow + Int64(local), key, pointID.description, source.payloadJSON(of: index), id,
                                local,
                            ])
                        }
                        try db.execute(
                            sql: """
                                INSERT INTO imports (fingerprint, point_count, points_done) VALUES (?, ?, ?)
                                ON CONFLICT (fingerprint) DO UPDATE SET points_done = excluded.points_done
                                """,
                            arguments: [source.fingerprint, source.pointCount, points.upperBound]
                        )
                        return .commit
                    }
                    replaced = replacedIDs.count
                    view.withLock { view in
                        for pointID in replacedIDs { view.remove(id: pointID) }
                        view.insertSegment(segment, payloads: payloads)
                        view.compactIfNeeded(deadTokenFraction: compactionThreshold)
                    }
                    return true
                }
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw error
            }
            if committed { return (replaced, summary.byteCount) }
            try? FileManager.default.removeItem(atPath: path)
            state.rewind(to: phaseStart)
        }
    }
}

/// An import's progress as it goes, reported to the caller's closure at most every 16 MB.
private final class ProgressState {
    private(set) var current: ImportProgress
    private let callback: (ImportProgress) -> Bool
    private var reportedAt = 0
    private var stopped = false

    init(_ initial: ImportProgress, _ callback: @escaping (ImportProgress) -> Bool) {
        current = initial
        self.callback = callback
    }

    func advance(by bytes: Int) {
        current.bytesDone += bytes
        if current.bytesDone - reportedAt >= 16 << 20 { _ = report() }
    }

    func begin(_ phase: String) {
        current.phase = phase
        current.bytesDone = 0
        reportedAt = 0
    }

    func rewind(to bytes: Int) {
        current.bytesDone = bytes
        reportedAt = bytes
    }

    func committed(pointsDone: Int) {
        current.pointsDone = pointsDone
        current.segmentsWritten += 1
        let phase = current.phase
        current.phase = "committed"
        _ = report()
        current.phase = phase
    }

    /// Calls the closure; `false` once it has asked to stop.
    @discardableResult
    func report() -> Bool {
        reportedAt = current.bytesDone
        if !callback(current) { stopped = true }
        return !stopped
    }
}
