import Foundation
import GRDB
import MaxSim
import Synchronization
public import TesseraIndex

/// The state of one field's compressed index in an open store: the mapped index, the points added since it
/// was built (a ``DeltaSegment``), and which slot of the scoring view each index document stands for.
struct CompressedFieldState: DerivedIndex {
    /// A search: the query's token values `[tokenCount, dimension]` and the WARP parameters; the limit is
    /// `parameters.candidateCount`.
    struct Query {
        var values: [Float]
        var tokenCount: Int
        var parameters: CompressedSearchParameters
        var threadCount: Int
    }

    let file: String
    let field: String
    let index: CompressedIndex?
    /// Why the file could not be used (then searches fall back to exact).
    let loadError: TesseraError?
    var delta: DeltaSegment?
    /// Per document (base, then delta): its point, the view version of the vectors it encodes (0: stale) and
    /// its slot in the view of the cursor's layout generation.
    var documentIDs: [PointID] = []
    var documentVersions: [UInt64] = []
    var documentSlots: [Int] = []
    /// Ids written since the build (from `index_pending` at load): their base documents are stale.
    var pendingAtLoad: Set<PointID> = []
    var cursor = CatchUpCursor()

    /// Maps documents to slots (all of them on the first call, after a compaction those still current) and
    /// encodes slots added since into the delta.
    mutating func apply(_ changes: ViewChanges, from view: ScoringView) {
        guard let index, var delta else { return }
        var added = changes.addedSlots
        if changes.isFirst {
            var covered = [Bool](repeating: false, count: view.slotCount)
            for document in 0..<documentIDs.count {
                if pendingAtLoad.contains(documentIDs[document]) { continue }
                guard let slot = view.slot(of: documentIDs[document]) else { continue }
                documentSlots[document] = slot
                documentVersions[document] = view.slotVersions[slot]
                covered[slot] = true
            }
            added.removeAll { covered[$0] }
        } else if changes.layoutChanged {
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
        // A point without a vector in the field has nothing to encode (searches never allow it).
        added.removeAll { !view.hasVector(slot: $0, field: field) }
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

    func candidates(
        for query: Query,
        view: ScoringView,
        allowed: SlotBitmap?,
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        guard let index else { return [] }
        var parameters = query.parameters
        parameters.candidateCount = limit
        let hits = index.search(
            query: query.values,
            queryTokenCount: query.tokenCount,
            parameters: parameters,
            allowed: allowedDocuments(view: view, slots: allowed ?? view.liveSlots),
            delta: delta,
            threadCount: query.threadCount
        )
        return hits.map { (documentSlots[$0.document], $0.score) }
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
    /// The metadata prefix under which the collection's database records each field's compressed index.
    static let compressedIndexKind = "compressed_index"

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
        let slots = (snapshot.presentSlots(field: field.name) ?? snapshot.liveSlots).slots
        guard !slots.isEmpty else {
            throw TesseraError(
                .invalidArgument,
                "the collection has no points to build a compressed index from",
                location: .init(path: directory, field: field.name)
            )
        }
        let source = TokenSource(
            dimension: field.dimension,
            documentTokenCounts: slots.map { column.tokenCount(ofSlot: $0) },
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
        try commitGeneration(
            generation,
            of: Self.compressedIndexKind,
            field: field.name,
            fileName: fileName,
            files: { [$0] },
            alsoInTransaction: { db in
                try db.execute(sql: "DELETE FROM index_pending WHERE seq <= ?", arguments: [sequence])
            }
        )
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

    /// The loaded state of a field's index (loading it on first use), or `nil` when none was built.
    func compressedState(field: String) throws(TesseraError) -> CompressedFieldState? {
        if let state = compressedStates.withLock({ $0[field] }) { return state }
        guard let fileName = try recordedFileName(of: Self.compressedIndexKind, field: field) else { return nil }
        let path = (directory as NSString).appendingPathComponent(fileName)
        let pending: [Data] = try Self.guarded(path: directory) {
            try pool.read { db in try Data.fetchAll(db, sql: "SELECT id_key FROM index_pending") }
        }
        var state: CompressedFieldState
        do {
            let index = try CompressedIndex(path: path)
            state = CompressedFieldState(
                file: path,
                field: field,
                index: index,
                loadError: nil,
                delta: DeltaSegment(index: index)
            )
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
            state = CompressedFieldState(file: path, field: field, index: nil, loadError: failure, delta: nil)
        } catch {
            let failure = TesseraError(
                .corrupted,
                "the compressed index names a bad point id: \(error)",
                location: .init(path: path)
            )
            state = CompressedFieldState(file: path, field: field, index: nil, loadError: failure, delta: nil)
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
            state.catchUp(with: view)
            states[field] = state
            return state
        }
        guard let state, state.index != nil else { return nil }
        let request = CompressedFieldState.Query(
            values: floatValues(of: query),
            tokenCount: query.tokenCount,
            parameters: parameters,
            threadCount: threadCount
        )
        return state.candidates(for: request, view: view, allowed: allowed, limit: parameters.candidateCount)
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
    case .mapped: multivector.elements.floatValues(dimension: multivector.dimension)
    }
}
