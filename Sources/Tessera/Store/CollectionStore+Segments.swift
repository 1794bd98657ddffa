import Foundation
import GRDB
import MaxSim
import Synchronization
import TesseraIndex

/// One sealed segment as ``CollectionStore/segments()`` reports it.
public struct SegmentInfo: Sendable, Equatable {
    /// Its number in the collection.
    public var id: Int64
    /// Its file, inside the collection's directory.
    public var fileName: String
    /// Slots, live or deleted.
    public var slotCount: Int
    /// Live points.
    public var liveCount: Int
    /// The file's size.
    public var byteCount: Int
}

/// The optimiser's settings, Qdrant's `optimizers_config` (the same names and meanings where they apply).
public struct OptimizerSettings: Codable, Sendable, Equatable {
    /// A segment whose deleted share of slots reaches this is rewritten without them (Qdrant's
    /// `deleted_threshold`).
    public var deletedThreshold: Double = 0.2
    /// ... once it has at least this many deleted slots (`vacuum_min_vector_number`).
    public var vacuumMinVectorNumber: Int = 1000
    /// How many sealed segments the optimiser keeps at most by merging the smallest neighbours; 0 for twice the
    /// number of processors (`default_segment_number`).
    public var defaultSegmentNumber: Int = 0
    /// The largest segment a merge makes, in kilobytes of vectors; `nil` for no limit (`max_segment_size`).
    public var maxSegmentSize: Int? = nil
    /// The appendable tail is sealed, and derived indexes are built, once it (respectively the collection) holds
    /// this many kilobytes of vectors; 0 turns both off (`indexing_threshold`).
    public var indexingThreshold: Int = 20_000
    /// How often the background optimiser looks for work, in seconds (`flush_interval_sec`).
    public var flushIntervalSeconds: Int = 5

    /// The defaults.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case deletedThreshold = "deleted_threshold"
        case vacuumMinVectorNumber = "vacuum_min_vector_number"
        case defaultSegmentNumber = "default_segment_number"
        case maxSegmentSize = "max_segment_size"
        case indexingThreshold = "indexing_threshold"
        case flushIntervalSeconds = "flush_interval_sec"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = OptimizerSettings()
        deletedThreshold =
            try container.decodeIfPresent(Double.self, forKey: .deletedThreshold) ?? defaults.deletedThreshold
        vacuumMinVectorNumber =
            try container.decodeIfPresent(Int.self, forKey: .vacuumMinVectorNumber) ?? defaults.vacuumMinVectorNumber
        defaultSegmentNumber =
            try container.decodeIfPresent(Int.self, forKey: .defaultSegmentNumber) ?? defaults.defaultSegmentNumber
        maxSegmentSize = try container.decodeIfPresent(Int.self, forKey: .maxSegmentSize)
        indexingThreshold =
            try container.decodeIfPresent(Int.self, forKey: .indexingThreshold) ?? defaults.indexingThreshold
        flushIntervalSeconds =
            try container.decodeIfPresent(Int.self, forKey: .flushIntervalSeconds) ?? defaults.flushIntervalSeconds
    }

    /// Checks the ranges.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the field.
    public func validate() throws(TesseraError) {
        func bad(_ field: String, _ message: String) -> TesseraError {
            TesseraError(
                .invalidArgument,
                "optimizers_config.\(field) \(message)",
                location: .init(field: "optimizers_config.\(field)")
            )
        }
        guard deletedThreshold.isFinite, (0...1).contains(deletedThreshold) else {
            throw bad("deleted_threshold", "must be in 0...1; got \(deletedThreshold)")
        }
        guard vacuumMinVectorNumber >= 0 else { throw bad("vacuum_min_vector_number", "must not be negative") }
        guard defaultSegmentNumber >= 0 else { throw bad("default_segment_number", "must not be negative") }
        if let maxSegmentSize, maxSegmentSize < 1 { throw bad("max_segment_size", "must be at least 1 (kilobytes)") }
        guard indexingThreshold >= 0 else { throw bad("indexing_threshold", "must not be negative") }
        guard flushIntervalSeconds >= 1 else { throw bad("flush_interval_sec", "must be at least 1") }
    }

    /// The segment count the optimiser keeps at most.
    var segmentLimit: Int {
        defaultSegmentNumber > 0 ? defaultSegmentNumber : 2 * ProcessInfo.processInfo.activeProcessorCount
    }
}

/// A kind of derived index the optimiser builds.
public enum DerivedIndexKind: String, Sendable, CaseIterable {
    /// A multivector field's compressed index.
    case compressed
    /// A dense field's HNSW graph.
    case hnsw
    /// The BM25 postings of the payloads' text.
    case bm25
}

/// What one optimiser pass did.
public struct OptimizeReport: Sendable, Equatable {
    /// Segments sealed from the appendable tail.
    public var sealedSegments = 0
    /// Merges (several segments into one, or one rewritten without its deleted slots).
    public var merges = 0
    /// Deleted slots dropped by merges.
    public var vacuumedSlots = 0
    /// Derived indexes built, as `kind:field`.
    public var builtIndexes: [String] = []

    /// Whether the pass changed anything.
    public var didWork: Bool { sealedSegments > 0 || merges > 0 || !builtIndexes.isEmpty }
}

extension CollectionStore {
    static let optimizerSettingsKey = "optimizer_settings"

    // MARK: Reading segments

    /// The sealed segments, oldest first.
    public func segments() -> [SegmentInfo] {
        let snapshot = scoringView()
        var base = 0
        return snapshot.segments.map { segment in
            defer { base += segment.slotCount }
            var live = 0
            for slot in base..<(base + segment.slotCount) where snapshot.liveSlots.contains(slot) { live += 1 }
            return SegmentInfo(
                id: segment.id,
                fileName: (segment.path as NSString).lastPathComponent,
                slotCount: segment.slotCount,
                liveCount: live,
                byteCount: segment.byteCount
            )
        }
    }

    /// Checks every byte of every sealed segment file against its checksums (opening checks all but the
    /// vectors').
    /// - Throws: ``TesseraError/Code/corrupted`` naming the file and the section.
    /// - Complexity: O(bytes of the segments); pages read are dropped from resident memory afterwards.
    public func verifySegments() throws(TesseraError) {
        for segment in scoringView().segments { try segment.verifyValues() }
    }

    /// The vectors of a point held by a sealed segment, from the segment the view (or a recently merged one)
    /// holds.
    func sealedVectors(of id: PointID, segment segmentID: Int64, slot local: Int) throws -> [String: VectorValue] {
        let snapshot = scoringView()
        var base = 0
        var found: (segment: SealedSegment, slot: Int)?
        for segment in snapshot.segments {
            if segment.id == segmentID { found = (segment, base + local) }
            base += segment.slotCount
        }
        guard let (segment, slot) = found, local < segment.slotCount, segment.ids[local] == id else {
            throw TesseraError(
                .io,
                "point \(id) moved to another segment while it was read; read it again",
                location: .init(path: directory, field: "point \(id)")
            )
        }
        var vectors: [String: VectorValue] = [:]
        for field in configuration.fields where snapshot.hasVector(slot: slot, field: field.name) {
            vectors[field.name] = field.value(stored: snapshot.columns[field.name]!.floatValues(ofSlot: slot))
        }
        return vectors
    }

    /// The points a derived index (a compressed index or an HNSW graph) covers: Qdrant's
    /// `indexed_vectors_count`, 0 when no index was built.
    public func indexedPointCount() -> Int {
        var best = 0
        let live = count()
        for field in configuration.fields {
            if field.isMultivector, let status = try? compressedIndexStatus(field: field.name), status.error == nil {
                best = max(best, live - min(live, status.pendingPointCount))
            } else if field.isDense, let status = try? denseIndexStatus(field: field.name), status.error == nil {
                best = max(best, live - min(live, status.pendingPointCount))
            }
        }
        return best
    }

    // MARK: Settings

    /// The optimiser's settings stored in the collection (the defaults until set).
    /// - Throws: ``TesseraError/Code/corrupted`` for unreadable stored settings, ``TesseraError/Code/io``.
    public func optimizerSettings() throws(TesseraError) -> OptimizerSettings {
        let text: String? = try Self.guarded(path: directory) {
            try pool.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT value FROM metadata WHERE key = ?",
                    arguments: [Self.optimizerSettingsKey]
                )
            }
        }
        guard let text else { return OptimizerSettings() }
        do {
            return try JSONDecoder().decode(OptimizerSettings.self, from: Data(text.utf8))
        } catch {
            throw TesseraError(
                .corrupted,
                "the stored optimizer settings are unreadable",
                location: .init(path: directory, field: Self.optimizerSettingsKey),
                cause: "\(error)"
            )
        }
    }

    /// Stores the optimiser's settings.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a value out of range, ``TesseraError/Code/io``.
    public func setOptimizerSettings(_ settings: OptimizerSettings) throws(TesseraError) {
        try settings.validate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: (try? encoder.encode(settings)) ?? Data(), as: UTF8.self)
        try withWriter { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)",
                arguments: [Self.optimizerSettingsKey, json]
            )
        }
    }

    // MARK: Optimising

    /// Whether an optimiser pass with these settings would find work now (for a collection's `status`).
    public func needsOptimization(settings: OptimizerSettings) -> Bool {
        let snapshot = scoringView()
        if settings.indexingThreshold > 0, tailKilobytes(snapshot) >= settings.indexingThreshold { return true }
        return !mergePlan(snapshot, settings: settings).isEmpty
    }

    /// One optimiser pass: seals the appendable tail when it holds `indexing_threshold` kilobytes of vectors (or
    /// when `force`), rewrites segments with many deleted slots, merges the smallest neighbouring segments while
    /// there are more than the settings allow, and builds the derived indexes (compressed index, HNSW graph) of
    /// a collection past `indexing_threshold` that lack them or have many points written since.
    ///
    /// Reads and writes go on meanwhile: files are written from a snapshot and each change is committed in one
    /// short transaction on the writer, which also swaps in the new list of segments; a write that touched the
    /// same slots meanwhile is kept (its slots stay deleted or move to the tail). Passes on one store run one at
    /// a time.
    /// - Parameters:
    ///   - settings: The thresholds; `nil` reads the collection's.
    ///   - force: Seal any non-empty tail and build missing indexes whatever their size.
    ///   - buildIndexes: Whether to build derived indexes.
    ///   - indexKinds: Which kinds of derived index to build (all by default).
    /// - Returns: What the pass did.
    /// - Throws: ``TesseraError/Code/io``, ``TesseraError/Code/corrupted`` when a segment to merge fails its
    ///   checksum (then it is not merged), ``TesseraError/Code/locked`` for a read-only store.
    @discardableResult
    public func optimize(
        settings: OptimizerSettings? = nil,
        force: Bool = false,
        buildIndexes: Bool = true,
        indexKinds: Set<DerivedIndexKind> = Set(DerivedIndexKind.allCases)
    ) throws(TesseraError) -> OptimizeReport {
        let stored: OptimizerSettings
        if let settings { stored = settings } else { stored = try optimizerSettings() }
        let settings = stored
        return try maintenance.withLock { _ throws(TesseraError) in
            var report = OptimizeReport()
            let snapshot = scoringView()
            let wantsSeal =
                force
                ? snapshot.tailLiveCount > 0
                : settings.indexingThreshold > 0 && tailKilobytes(snapshot) >= settings.indexingThreshold
            if wantsSeal, try sealTail() != nil { report.sealedSegments += 1 }
            while let range = mergePlan(scoringView(), settings: settings).first {
                let dropped = try mergeSegments(range)
                report.merges += 1
                report.vacuumedSlots += dropped
            }
            if buildIndexes {
                report.builtIndexes = try buildDerivedIndexes(settings: settings, force: force, kinds: indexKinds)
            }
            return report
        }
    }

    /// The kilobytes of vectors in the tail's live slots.
    func tailKilobytes(_ view: ScoringView) -> Int {
        var bytes = 0
        for field in configuration.fields {
            guard let column = view.columns[field.name] else { continue }
            bytes += column.tailTokenCount * field.dimension * field.elementType.byteCount
        }
        return bytes / 1024
    }

    /// The merges the settings call for, in order: each a range of segment indices to rewrite as one.
    func mergePlan(_ view: ScoringView, settings: OptimizerSettings) -> [Range<Int>] {
        var base = 0
        var live: [Int] = []
        var bytes: [Int] = []
        for segment in view.segments {
            var count = 0
            for slot in base..<(base + segment.slotCount) where view.liveSlots.contains(slot) { count += 1 }
            live.append(count)
            bytes.append(segment.byteCount)
            base += segment.slotCount
        }
        // Vacuum: a segment with many deleted slots is rewritten alone.
        for (index, segment) in view.segments.enumerated() {
            let dead = segment.slotCount - live[index]
            if dead > 0, dead >= settings.vacuumMinVectorNumber,
                Double(dead) >= settings.deletedThreshold * Double(segment.slotCount)
            {
                return [index..<(index + 1)]
            }
        }
        // Too many segments: merge the smallest neighbouring pair that stays within the size limit.
        guard view.segments.count > settings.segmentLimit else { return [] }
        let limit = settings.maxSegmentSize.map { $0 * 1024 } ?? Int.max
        var best: (index: Int, size: Int)?
        for index in 0..<(view.segments.count - 1) {
            let size = bytes[index] + bytes[index + 1]
            if size <= limit, size < best?.size ?? Int.max { best = (index, size) }
        }
        return best.map { [$0.index..<($0.index + 2)] } ?? []
    }

    /// Seals the appendable tail into a new segment file (see ``SegmentFile``), then, in one transaction, records
    /// the segment, points the tail's live points at it and deletes their vectors from the database, and swaps
    /// the new segment into the scoring view. The slots keep their numbers.
    /// - Returns: The new segment, or `nil` when the tail has no live point (or changed layout meanwhile).
    @discardableResult
    func sealTail() throws(TesseraError) -> SealedSegment? {
        let snapshot = scoringView()
        let first = snapshot.sealedSlotCount
        let end = snapshot.slotCount
        guard snapshot.tailLiveCount > 0 else { return nil }
        let id = try nextSegmentID()
        let path = (directory as NSString).appendingPathComponent(SegmentFile.fileName(id: id))
        let entries = (first..<end).map { SegmentFile.Entry(slot: $0, live: snapshot.liveSlots.contains($0)) }
        let summary = try SegmentFile.write(to: path, entries: entries, view: snapshot, fields: configuration.fields)
        let segment = try SealedSegment(path: path, id: id, fields: configuration.fields)
        // The bytes on disk are the bytes written.
        try segment.verifyValues()
        let sealed: Bool = try withWriter { db in
            // The writer is held: the view is exactly the committed state here.
            let current = view.withLock { $0 }
            guard current.layoutGeneration == snapshot.layoutGeneration, current.sealedSlotCount == first,
                current.slotCount >= end
            else { return false }
            try db.inTransaction(.immediate) {
                let point = try Self.recordSegment(db, id: id, summary: summary)
                let vectors = try db.cachedStatement(sql: "DELETE FROM vectors WHERE row_id = ?")
                for slot in first..<end where current.liveSlots.contains(slot) {
                    try point.execute(arguments: [id, slot - first, current.rowIDs[slot]])
                    try vectors.execute(arguments: [current.rowIDs[slot]])
                }
                return .commit
            }
            view.withLock { $0.sealTail(as: segment) }
            return true
        }
        if !sealed { try? FileManager.default.removeItem(atPath: path) }
        return sealed ? segment : nil
    }

    /// Rewrites sealed segments `range` as one segment holding their live points (checking the sources'
    /// checksums first), then in one transaction points those points at it and forgets the old segments, and
    /// swaps it into the view; the old files are deleted (searches still holding them read on from their
    /// mappings).
    /// - Returns: The deleted slots dropped.
    func mergeSegments(_ range: Range<Int>) throws(TesseraError) -> Int {
        let snapshot = scoringView()
        let sources = Array(snapshot.segments[range])
        for segment in sources { try segment.verifyValues() }
        let first = snapshot.segmentSlotBase(range.lowerBound)
        let end = first + sources.reduce(0) { $0 + $1.slotCount }
        let kept = (first..<end).filter { snapshot.liveSlots.contains($0) }
        let id = try nextSegmentID()
        let path = (directory as NSString).appendingPathComponent(SegmentFile.fileName(id: id))
        let summary = try SegmentFile.write(
            to: path,
            entries: kept.map { SegmentFile.Entry(slot: $0, live: true) },
            view: snapshot,
            fields: configuration.fields
        )
        let merged = try SealedSegment(path: path, id: id, fields: configuration.fields)
        try merged.verifyValues()
        let done: Bool = try withWriter { db in
            let current = view.withLock { $0 }
            guard current.segments.map(\.id) == snapshot.segments.map(\.id) else { return false }
            try db.inTransaction(.immediate) {
                let point = try Self.recordSegment(db, id: id, summary: summary)
                for (local, slot) in kept.enumerated() where current.liveSlots.contains(slot) {
                    try point.execute(arguments: [id, local, current.rowIDs[slot]])
                }
                for source in sources {
                    try db.execute(sql: "DELETE FROM segments WHERE id = ?", arguments: [source.id])
                }
                return .commit
            }
            view.withLock { $0.replaceSegments(range, with: merged, kept: kept) }
            return true
        }
        guard done else {
            try? FileManager.default.removeItem(atPath: path)
            return 0
        }
        for source in sources { try? FileManager.default.removeItem(atPath: source.path) }
        return (end - first) - kept.count
    }

    /// Records a written segment in `segments` and returns the statement that points a row at one of its slots
    /// (`segment_id`, `segment_slot`, `row_id`).
    static func recordSegment(_ db: Database, id: Int64, summary: SegmentFile.Summary) throws -> Statement {
        try db.execute(
            sql: """
                INSERT INTO segments (id, file_name, slot_count, byte_count, header_checksum)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [
                id, SegmentFile.fileName(id: id), summary.slotCount, summary.byteCount,
                Int64(bitPattern: summary.headerChecksum),
            ]
        )
        return try db.cachedStatement(sql: "UPDATE points SET segment_id = ?, segment_slot = ? WHERE row_id = ?")
    }

    /// A segment number not used before in this collection.
    func nextSegmentID() throws(TesseraError) -> Int64 {
        let recorded: Int64 = try Self.guarded(path: directory) {
            try pool.read { db in try Int64.fetchOne(db, sql: "SELECT IFNULL(MAX(id), 0) FROM segments") ?? 0 }
        }
        return max(recorded, scoringView().segments.map(\.id).max() ?? 0) + 1
    }

    /// Builds the derived indexes a collection past `indexing_threshold` lacks: each multivector field's
    /// compressed index, each dense field's HNSW graph (unless created with `hnsw_config.m = 0`) and the BM25
    /// postings of the default text fields (when payloads hold such text), and rebuilds one when the points
    /// written since its build reach a fifth of the collection.
    /// - Returns: The indexes built, as `kind:field`.
    private func buildDerivedIndexes(
        settings: OptimizerSettings,
        force: Bool,
        kinds: Set<DerivedIndexKind>
    ) throws(TesseraError) -> [String] {
        let snapshot = scoringView()
        guard snapshot.liveCount > 0 else { return [] }
        var kilobytes = 0
        for field in configuration.fields {
            kilobytes +=
                (snapshot.columns[field.name]?.tokenCount ?? 0) * field.dimension * field.elementType.byteCount / 1024
        }
        guard force || (settings.indexingThreshold > 0 && kilobytes >= settings.indexingThreshold) else { return [] }
        var built: [String] = []
        for field in configuration.fields {
            if field.isMultivector {
                guard kinds.contains(.compressed) else { continue }
                let status = try compressedIndexStatus(field: field.name)
                // The residual codec packs whole bytes per token: 2 bits where the dimension allows, else 4; an odd
                // dimension gets no compressed index (exact search serves it).
                var options = CompressedIndexOptions()
                if field.dimension * options.bitCount % 8 != 0 { options.bitCount = 4 }
                guard field.dimension * options.bitCount % 8 == 0 else { continue }
                if status == nil || status!.pendingPointCount * 5 >= snapshot.liveCount {
                    _ = try buildCompressedIndex(field: field.name, options: options)
                    built.append("compressed:\(field.name)")
                }
            } else if field.isDense, field.hnswM != 0, kinds.contains(.hnsw) {
                let status = try denseIndexStatus(field: field.name)
                if status == nil || status!.pendingPointCount * 5 >= snapshot.liveCount {
                    var options = HNSWOptions()
                    if let m = field.hnswM { options.m = m }
                    _ = try buildDenseIndex(field: field.name, options: options)
                    built.append("hnsw:\(field.name)")
                }
            }
        }
        // The BM25 postings of the default text fields, when payloads hold such text.
        let text = textIndexStatus()
        if kinds.contains(.bm25), text.termCount > 0,
            text.file == nil || text.pendingDocumentCount * 5 >= text.documentCount
        {
            _ = try buildTextIndex()
            built.append("bm25:\(text.fields.joined(separator: ","))")
        }
        return built
    }
}
