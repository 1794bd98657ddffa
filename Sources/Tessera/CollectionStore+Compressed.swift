import Foundation
import GRDB
import MaxSim
import Synchronization
public import TesseraIndex

/// The state of one field's compressed index in an open store: the mapped index, the points added since it
/// was built (a ``DeltaSegment``), and which slot of the scoring view each index document stands for.
struct CompressedFieldState: Sendable {
    let file: String
    let index: CompressedIndex?
    /// Why the file could not be used (then searches fall back to exact).
    let loadError: TesseraError?
    var delta: DeltaSegment?
    /// Per document (base, then delta): its point, the view version of the vectors it encodes (0: stale) and
    /// its slot in the view of layout generation ``layoutGeneration``.
    var documentIDs: [PointID] = []
    var documentVersions: [UInt64] = []
    var documentSlots: [Int] = []
    /// Ids written since the build (from `index_pending` at load): their base documents are stale.
    var pendingAtLoad: Set<PointID> = []
    var synchronized = false
    var layoutGeneration: UInt64 = 0
    var synchronizedVersion: UInt64 = 0

    /// Brings the document-to-slot map up to date with a view and encodes slots added since into the delta.
    mutating func synchronize(with view: ScoringView, field: String) {
        guard let index, var delta else { return }
        // A search holding an older view than one already applied leaves the state alone.
        if synchronized, view.nextVersion - 1 < synchronizedVersion { return }
        var added: [Int] = []
        if !synchronized {
            var covered = [Bool](repeating: false, count: view.slotCount)
            for document in 0..<documentIDs.count {
                if pendingAtLoad.contains(documentIDs[document]) { continue }
                guard let slot = view.slot(of: documentIDs[document]) else { continue }
                documentSlots[document] = slot
                documentVersions[document] = view.slotVersions[slot]
                covered[slot] = true
            }
            added = view.liveSlots.slots.filter { !covered[$0] }
            synchronized = true
        } else {
            if view.layoutGeneration != layoutGeneration {
                for document in 0..<documentIDs.count where documentVersions[document] != 0 {
                    if let slot = view.slot(of: documentIDs[document]),
                        view.slotVersions[slot] == documentVersions[document]
                    {
                        documentSlots[document] = slot
                    } else {
                        documentVersions[document] = 0
                        documentSlots[document] = -1
                    }
                }
            }
            var slot = view.slotCount
            while slot > 0, view.slotVersions[slot - 1] > synchronizedVersion { slot -= 1 }
            added = (slot..<view.slotCount).filter { view.liveSlots.contains($0) }
        }
        layoutGeneration = view.layoutGeneration
        synchronizedVersion = view.nextVersion - 1
        guard !added.isEmpty, let column = view.column(named: field) else { return }
        // Encode in chunks so that a large backlog never becomes one huge float array.
        var start = 0
        while start < added.count {
            var end = start
            var values: [Float] = []
            var counts: [Int] = []
            while end < added.count, values.count < 65_536 * index.dimension {
                let slotValues = column.floatValues(ofSlot: added[end])
                values += slotValues
                counts.append(slotValues.count / index.dimension)
                end += 1
            }
            let documents = delta.append(values, tokenCounts: counts, index: index)
            for (offset, _) in documents.enumerated() {
                let slot = added[start + offset]
                documentIDs.append(view.pointIDs[slot])
                documentVersions.append(view.slotVersions[slot])
                documentSlots.append(slot)
            }
            start = end
        }
        self.delta = delta
    }

    /// Index documents whose slot is live, current and in `slots`.
    func allowedDocuments(view: ScoringView, slots: SlotBitmap) -> [UInt64] {
        var bits = [UInt64](repeating: 0, count: (documentIDs.count + 63) / 64)
        for document in 0..<documentIDs.count where documentVersions[document] != 0 {
            let slot = documentSlots[document]
            if slot >= 0, slot < view.slotCount, view.slotVersions[slot] == documentVersions[document],
                slots.contains(slot)
            {
                bits[document >> 6] |= 1 << UInt64(document & 63)
            }
        }
        return bits
    }
}

/// What a field's compressed index holds and how it was built.
public struct CompressedIndexStatus: Sendable {
    /// The multivector field.
    public var field: String
    /// The index file.
    public var file: String
    /// How it was built; `nil` when the file could not be read.
    public var report: BuildReport?
    /// The file's size.
    public var fileByteCount: Int
    /// File bytes per indexed token.
    public var bytesPerToken: Double
    /// Points written (added, replaced or deleted) since the build; added ones are searchable through the
    /// delta segment, encoded against the existing centroids.
    public var pendingPointCount: Int
    /// Why the file cannot be used, when it cannot (searches then run exactly).
    public var error: TesseraError?
}

extension CollectionStore {
    static func compressedMetadataKey(_ field: String) -> String { "compressed_index.\(field)" }

    /// Builds (or rebuilds) the compressed index of a multivector field from the points stored now.
    ///
    /// Tokens are read from the scoring view a chunk at a time and decoded to `Float` only per chunk. The file is
    /// written under a new generation's name (temporary name, fsync, rename); then one transaction records it
    /// as current and clears the pending ids the build saw; the previous file is deleted afterwards. Writes that
    /// happen during the build stay pending and are encoded into the delta segment.
    /// - Parameters:
    ///   - name: The multivector field; `nil` for the only one.
    ///   - options: Centroids, bits, sample, seed.
    ///   - progress: Called as the build advances.
    /// - Returns: The new index's status.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a field that is not a multivector field or a
    ///   collection without points; ``TesseraError/Code/io``.
    public func buildCompressedIndex(
        field name: String? = nil,
        options: CompressedIndexOptions = CompressedIndexOptions(),
        progress: ((BuildProgress) -> Void)? = nil
    ) throws(TesseraError) -> CompressedIndexStatus {
        var snapshot = scoringView()
        let field = try multivectorField(named: name, in: snapshot)
        // The view and the pending sequence, read together while holding the writer.
        let sequence: Int64 = try withWriter { db in
            snapshot = view.withLock { $0 }
            return try Int64.fetchOne(db, sql: "SELECT IFNULL(MAX(seq), 0) FROM index_pending") ?? 0
        }
        guard let column = snapshot.column(named: field.name) else {
            throw TesseraError(.notFound, "no vector field '\(field.name)'", location: .init(field: field.name))
        }
        let slots = snapshot.liveSlots.slots
        guard !slots.isEmpty else {
            throw TesseraError(
                .invalidArgument,
                "the collection has no points to build a compressed index from",
                location: .init(path: directory, field: field.name)
            )
        }
        let source = TokenSource(
            dimension: field.dimension,
            documentTokenCounts: slots.map { column.tokenRange(ofSlot: $0).count },
            read: { documents in documents.flatMap { column.floatValues(ofSlot: slots[$0]) } }
        )
        let keys = slots.map { [UInt8](snapshot.pointIDs[$0].sortKey) }
        let contents: IndexContents
        do {
            contents = try CompressedIndex.build(
                source: source,
                documentKeys: keys,
                options: options,
                progress: progress
            )
        } catch {
            throw TesseraError(
                .invalidArgument,
                "building the compressed index failed: \(error)",
                location: .init(field: field.name)
            )
        }
        let generation = try indexGeneration() + 1
        let fileName = "compressed-\(field.name)-\(generation).tidx"
        let path = (directory as NSString).appendingPathComponent(fileName)
        do {
            try contents.write(to: path)
        } catch {
            throw TesseraError(.io, "writing the compressed index failed: \(error)", location: .init(path: path))
        }
        let previous = try compressedFileName(field: field.name)
        try withWriter { db in
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: "UPDATE metadata SET value = ? WHERE key = 'index_generation'",
                    arguments: [String(generation)]
                )
                try db.execute(
                    sql: "INSERT OR REPLACE INTO metadata (key, value) VALUES (?, ?)",
                    arguments: [Self.compressedMetadataKey(field.name), fileName]
                )
                try db.execute(sql: "DELETE FROM index_pending WHERE seq <= ?", arguments: [sequence])
                return .commit
            }
        }
        if let previous, previous != fileName {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(previous))
        }
        compressedStates.withLock { $0[field.name] = nil }
        guard let status = try compressedIndexStatus(field: field.name) else {
            throw TesseraError(.io, "the compressed index was written but is not recorded", location: .init(path: path))
        }
        return status
    }

    /// The status of a field's compressed index.
    /// - Parameter name: The multivector field; `nil` for the only one.
    /// - Returns: The status, or `nil` when no index was built for the field.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/notFound`` for a bad field;
    ///   ``TesseraError/Code/io``.
    public func compressedIndexStatus(field name: String? = nil) throws(TesseraError) -> CompressedIndexStatus? {
        let field = try multivectorField(named: name, in: scoringView())
        guard let state = try compressedState(field: field.name) else { return nil }
        let pending: Int = try Self.guarded(path: directory) {
            try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM index_pending") ?? 0 }
        }
        return CompressedIndexStatus(
            field: field.name,
            file: state.file,
            report: state.index?.report,
            fileByteCount: state.index?.fileByteCount ?? 0,
            bytesPerToken: state.index?.bytesPerToken ?? 0,
            pendingPointCount: pending,
            error: state.loadError
        )
    }

    func compressedFileName(field: String) throws(TesseraError) -> String? {
        try Self.guarded(path: directory) {
            try pool.read { db in
                try String.fetchOne(
                    db,
                    sql: "SELECT value FROM metadata WHERE key = ?",
                    arguments: [Self.compressedMetadataKey(field)]
                )
            }
        }
    }

    /// The loaded state of a field's index (loading it on first use), or `nil` when none was built.
    func compressedState(field: String) throws(TesseraError) -> CompressedFieldState? {
        if let state = compressedStates.withLock({ $0[field] }) { return state }
        guard let fileName = try compressedFileName(field: field) else { return nil }
        let path = (directory as NSString).appendingPathComponent(fileName)
        let pending: [Data] = try Self.guarded(path: directory) {
            try pool.read { db in try Data.fetchAll(db, sql: "SELECT id_key FROM index_pending") }
        }
        var state: CompressedFieldState
        do {
            let index = try CompressedIndex(path: path)
            state = CompressedFieldState(file: path, index: index, loadError: nil, delta: DeltaSegment(index: index))
            state.documentIDs.reserveCapacity(index.documentCount)
            for document in 0..<index.documentCount {
                state.documentIDs.append(try PointID(sortKey: Data(index.key(ofDocument: document))))
            }
            state.documentVersions = [UInt64](repeating: 0, count: index.documentCount)
            state.documentSlots = [Int](repeating: -1, count: index.documentCount)
            for key in pending { if let id = try? PointID(sortKey: key) { state.pendingAtLoad.insert(id) } }
        } catch let error as IndexError {
            let failure = TesseraError(
                .corrupted,
                "the compressed index is unusable (\(error)); searches run exactly until it is rebuilt",
                location: .init(path: path, offset: error.offset)
            )
            state = CompressedFieldState(file: path, index: nil, loadError: failure, delta: nil)
        } catch {
            let failure = TesseraError(
                .corrupted,
                "the compressed index names a bad point id: \(error)",
                location: .init(path: path)
            )
            state = CompressedFieldState(file: path, index: nil, loadError: failure, delta: nil)
        }
        compressedStates.withLock { states in
            if states[field] == nil { states[field] = state }
        }
        return compressedStates.withLock { $0[field] }
    }

    /// The compressed first stage: the best `parameters.candidateCount` live slots passing `allowed`, with their
    /// approximate scores, or `nil` when the field has no usable index.
    func compressedCandidates(
        field: String,
        query: Multivector,
        view: ScoringView,
        allowed: SlotBitmap,
        parameters: CompressedSearchParameters,
        threadCount: Int
    ) throws(TesseraError) -> [(slot: Int, score: Float)]? {
        guard try compressedState(field: field)?.index != nil else { return nil }
        let state: CompressedFieldState? = compressedStates.withLock { states in
            guard var state = states[field] else { return nil }
            state.synchronize(with: view, field: field)
            states[field] = state
            return state
        }
        guard let state, let index = state.index else { return nil }
        let documents = state.allowedDocuments(view: view, slots: allowed)
        let hits = index.search(
            query: floatValues(of: query),
            queryTokenCount: query.tokenCount,
            parameters: parameters,
            allowed: documents,
            delta: state.delta,
            threadCount: threadCount
        )
        return hits.map { (state.documentSlots[$0.document], $0.score) }
    }
}

/// A multivector's values as `Float`.
func floatValues(of multivector: Multivector) -> [Float] {
    switch multivector.elements {
    case .float32(let values): values
    case .float16(let values): values.map { Float($0) }
    case .bfloat16(let values): values.map(\.floatValue)
    case .int8(let values, let scales):
        values.indices.map { scales[$0 / multivector.dimension] * Float(values[$0]) }
    }
}
