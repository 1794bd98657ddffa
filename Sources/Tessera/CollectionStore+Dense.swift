import Foundation
public import MaxSim
import Synchronization
public import TesseraIndex

/// The state of one dense field's HNSW graph in an open store: which slot each graph label stands for, and the
/// live points the graph does not hold (written after the build), which are searched exactly beside it.
///
/// A label is current while its point is live and the point's vector equals the one in the graph (checked at
/// load, so a graph never answers with a vector that was replaced); otherwise the label is marked deleted.
struct DenseFieldState: DerivedIndex {
    /// A search: the query vector and the graph's search breadth.
    struct Query {
        var vector: [Float]
        var ef: Int
    }

    let base: String
    let field: String
    let index: HNSWIndex?
    /// Why the files could not be used (then dense searches run exactly).
    let loadError: TesseraError?
    var labelIDs: [PointID] = []
    /// Per label: the view version of the vector it holds (0: deleted or stale), and its slot.
    var labelVersions: [UInt64] = []
    var labelSlots: [Int] = []
    /// Live points not in the graph, with the view version of their vectors.
    var extras: [PointID: UInt64] = [:]
    var extraSlots: [Int] = []
    var cursor = CatchUpCursor()

    /// Brings the label-to-slot map and the extras up to date with a view.
    mutating func apply(_ changes: ViewChanges, from view: ScoringView) {
        guard let index, let column = view.column(named: field) else { return }
        if changes.isFirst {
            var covered = [Bool](repeating: false, count: view.slotCount)
            for label in 0..<labelIDs.count {
                guard let slot = view.slot(of: labelIDs[label]), !covered[slot],
                    index.vector(label: UInt64(label)) == column.floatValues(ofSlot: slot)
                else {
                    index.markDeleted(UInt64(label))
                    continue
                }
                labelSlots[label] = slot
                labelVersions[label] = view.slotVersions[slot]
                covered[slot] = true
            }
            for slot in changes.addedSlots where !covered[slot] {
                extras[view.pointIDs[slot]] = view.slotVersions[slot]
            }
        } else {
            for label in 0..<labelIDs.count where labelVersions[label] != 0 {
                if let slot = view.slot(of: labelIDs[label]), view.slotVersions[slot] == labelVersions[label] {
                    labelSlots[label] = slot
                } else {
                    index.markDeleted(UInt64(label))
                    labelVersions[label] = 0
                    labelSlots[label] = -1
                }
            }
            for added in changes.addedSlots { extras[view.pointIDs[added]] = view.slotVersions[added] }
        }
        extraSlots = []
        for (id, version) in extras {
            if let slot = view.slot(of: id), view.slotVersions[slot] == version {
                extraSlots.append(slot)
            } else {
                extras[id] = nil
            }
        }
        extraSlots.sort()
    }

    /// The graph's `limit` nearest labels that are current and allowed, as slots with their scores (1 −
    /// distance for inner products, the distance for Euclid); the points written since the build are not
    /// among them (see ``extraSlots``).
    func candidates(
        for query: Query,
        view: ScoringView,
        allowed: SlotBitmap?,
        limit: Int
    ) -> [(slot: Int, score: Float)] {
        guard let index else { return [] }
        var hits: [(slot: Int, score: Float)] = []
        for (label, distance) in index.search(query.vector, k: limit, ef: query.ef) {
            let label = Int(label)
            guard labelVersions[label] != 0 else { continue }
            let slot = labelSlots[label]
            guard allowed?.contains(slot) ?? view.liveSlots.contains(slot) else { continue }
            hits.append((slot, index.metric == .innerProduct ? 1 - distance : distance.squareRoot()))
        }
        return hits
    }
}

/// What a dense field's HNSW graph holds.
public struct DenseIndexStatus: Sendable {
    /// The dense field.
    public var field: String
    /// The graph's files, without their `.hnsw`/`.keys` endings.
    public var file: String
    /// Vectors in the graph (deleted ones included).
    public var graphCount: Int
    /// Graph vectors whose point was deleted or replaced since the build (marked deleted).
    public var deletedCount: Int
    /// Live points written since the build, searched exactly beside the graph.
    public var pendingPointCount: Int
    /// The graph's links per node.
    public var m: Int
    /// The graph's build breadth.
    public var efConstruction: Int
    /// Why the files cannot be used, when they cannot (dense searches then run exactly).
    public var error: TesseraError?
}

/// How a dense search found its candidates.
public enum DenseSearchMethod: String, Sendable {
    /// Every allowed point was scored.
    case exact
    /// The HNSW graph (and the points written since its build, exactly).
    case hnsw
}

extension CollectionStore {
    /// The metadata prefix under which the collection's database records each dense field's HNSW graph.
    static let denseIndexKind = "dense_index"

    /// The default search breadth of the HNSW graph.
    public static let defaultHNSWEf = 128

    /// Builds (or rebuilds) the HNSW graph of a dense field from the points stored now.
    ///
    /// The graph and its keys are written under a new generation's name (temporary name, fsync, rename) and
    /// recorded in the collection's database in one transaction; the previous files are deleted afterwards.
    /// Points written during or after the build are searched exactly beside the graph until the next build.
    /// - Parameters:
    ///   - name: The dense field; `nil` for the only one.
    ///   - options: `m`, `efConstruction`, seed.
    ///   - threadCount: Threads inserting at once.
    /// - Returns: The new graph's status.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a field that is not dense or a collection without
    ///   points; ``TesseraError/Code/io``.
    public func buildDenseIndex(
        field name: String? = nil,
        options: HNSWOptions = HNSWOptions(),
        threadCount: Int = MaxSimKernel().threadCount
    ) throws(TesseraError) -> DenseIndexStatus {
        let snapshot = scoringView()
        let field = try denseField(named: name)
        guard let column = snapshot.column(named: field.name) else {
            throw TesseraError(.notFound, "no vector field '\(field.name)'", location: .init(field: field.name))
        }
        let slots = (snapshot.presentSlots(field: field.name) ?? snapshot.liveSlots).slots
        guard !slots.isEmpty else {
            throw TesseraError(
                .invalidArgument,
                "the collection has no points to build an HNSW graph from",
                location: .init(path: directory, field: field.name)
            )
        }
        let generation = try indexGeneration() + 1
        let fileName = "dense-\(field.name)-\(generation)"
        let base = (directory as NSString).appendingPathComponent(fileName)
        do {
            let index = try HNSWIndex(
                metric: Self.metric(of: field),
                dimension: field.dimension,
                capacity: slots.count,
                options: options
            )
            var start = 0
            while start < slots.count {
                let end = min(slots.count, start + 4096)
                let values = slots[start..<end].flatMap { column.floatValues(ofSlot: $0) }
                try index.add(values, labels: (start..<end).map { UInt64($0) }, threadCount: threadCount)
                start = end
            }
            try HNSWFiles.save(index, keys: slots.map { [UInt8](snapshot.pointIDs[$0].sortKey) }, base: base)
        } catch {
            throw TesseraError(.io, "building the HNSW graph failed: \(error)", location: .init(path: base))
        }
        try commitGeneration(
            generation,
            of: Self.denseIndexKind,
            field: field.name,
            fileName: fileName,
            files: { [HNSWFiles.graphPath($0), HNSWFiles.keysPath($0)] }
        )
        denseStates.withLock { $0[field.name] = nil }
        guard let status = try denseIndexStatus(field: field.name) else {
            throw TesseraError(.io, "the HNSW graph was written but is not recorded", location: .init(path: base))
        }
        return status
    }

    /// The status of a dense field's HNSW graph.
    /// - Parameter name: The dense field; `nil` for the only one.
    /// - Returns: The status, or `nil` when no graph was built for the field.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/notFound`` for a bad field;
    ///   ``TesseraError/Code/io``.
    public func denseIndexStatus(field name: String? = nil) throws(TesseraError) -> DenseIndexStatus? {
        let field = try denseField(named: name)
        guard let state = try synchronizedDenseState(field: field.name, view: scoringView()) else { return nil }
        return DenseIndexStatus(
            field: field.name,
            file: state.base,
            graphCount: state.index?.count ?? 0,
            deletedCount: state.index?.deletedCount ?? 0,
            pendingPointCount: state.extras.count,
            m: state.index?.m ?? 0,
            efConstruction: state.index?.efConstruction ?? 0,
            error: state.loadError
        )
    }

    static func metric(of field: VectorField) -> HNSWMetric {
        if case .dense(.euclid) = field.kind { return .squaredEuclidean }
        return .innerProduct
    }

    /// The dense field with this name (or the only one).
    func denseField(named name: String?) throws(TesseraError) -> VectorField {
        try vectorField(named: name, multivector: false)
    }

    /// The field's graph state, loaded on first use and synchronised with `view`; `nil` when none was built.
    func synchronizedDenseState(field: String, view: ScoringView) throws(TesseraError) -> DenseFieldState? {
        if denseStates.withLock({ $0[field] }) == nil {
            guard let fileName = try recordedFileName(of: Self.denseIndexKind, field: field) else { return nil }
            let base = (directory as NSString).appendingPathComponent(fileName)
            let fieldDescription = configuration.field(named: field)!
            var state: DenseFieldState
            do {
                let (index, keys) = try HNSWFiles.load(
                    base: base,
                    metric: Self.metric(of: fieldDescription),
                    dimension: fieldDescription.dimension
                )
                state = DenseFieldState(base: base, field: field, index: index, loadError: nil)
                state.labelIDs = try keys.map { key throws(TesseraError) in try PointID(sortKey: Data(key)) }
                state.labelVersions = [UInt64](repeating: 0, count: keys.count)
                state.labelSlots = [Int](repeating: -1, count: keys.count)
            } catch let error as IndexError {
                let failure = TesseraError(
                    .corrupted,
                    "the HNSW graph is unusable (\(error)); dense searches run exactly until it is rebuilt",
                    location: .init(path: error.path ?? base, offset: error.offset)
                )
                state = DenseFieldState(base: base, field: field, index: nil, loadError: failure)
            } catch {
                let failure = TesseraError(
                    .corrupted,
                    "the HNSW graph names a bad point id (\(error)); dense searches run exactly until it is rebuilt",
                    location: .init(path: HNSWFiles.keysPath(base))
                )
                state = DenseFieldState(base: base, field: field, index: nil, loadError: failure)
            }
            denseStates.withLock { states in
                if states[field] == nil { states[field] = state }
            }
        }
        return denseStates.withLock { states in
            guard var state = states[field] else { return nil }
            state.catchUp(with: view)
            states[field] = state
            return state
        }
    }

    /// The dense first stage: the best `limit` allowed slots for a query vector, best first, with their scores
    /// (dot product; for Euclid fields, the distance, smallest first).
    ///
    /// The graph answers when one is built, `exact` is false and the filter keeps enough of the collection
    /// (at least 1,000 points and a fifth of it): it is asked for enough neighbours that the allowed ones among
    /// them fill `limit`, and its answers are merged with exact scores of the points written since the build.
    /// Otherwise (or when the graph's answers fall short) every allowed point is scored.
    func denseCandidates(
        field: VectorField,
        query: [Float],
        view: ScoringView,
        allowed: SlotBitmap,
        limit: Int,
        ef: Int?,
        exact: Bool,
        kernel: MaxSimKernel
    ) throws(TesseraError) -> (hits: [(slot: Int, score: Float)], method: DenseSearchMethod) {
        guard limit > 0 else { return ([], .exact) }
        let allowedCount = allowed.count
        if !exact, allowedCount >= 1000, allowedCount * 5 >= view.liveCount,
            let state = try synchronizedDenseState(field: field.name, view: view), let index = state.index
        {
            let liveInGraph = max(1, index.count - index.deletedCount)
            let fraction = Double(allowedCount) / Double(max(1, view.liveCount))
            let k = min(liveInGraph, fraction >= 1 ? limit : Int((Double(limit) / fraction * 1.25).rounded(.up)) + 8)
            var hits = state.candidates(
                for: DenseFieldState.Query(vector: query, ef: ef ?? Self.defaultHNSWEf),
                view: view,
                allowed: allowed,
                limit: k
            )
            if hits.count >= min(limit, allowedCount - state.extraSlots.count) {
                let extras = state.extraSlots.filter { allowed.contains($0) }
                if !extras.isEmpty {
                    hits += try exactDense(
                        field: field,
                        query: query,
                        view: view,
                        slots: extras,
                        limit: limit,
                        kernel: kernel
                    )
                }
                sortDense(&hits, field: field)
                return (Array(hits.prefix(limit)), .hnsw)
            }
        }
        let hits = try exactDense(
            field: field,
            query: query,
            view: view,
            slots: allowed.slots,
            limit: limit,
            kernel: kernel
        )
        return (hits, .exact)
    }

    /// Exact dense scores of `slots`, the best `limit`, best first.
    func exactDense(
        field: VectorField,
        query: [Float],
        view: ScoringView,
        slots: [Int],
        limit: Int,
        kernel: MaxSimKernel
    ) throws(TesseraError) -> [(slot: Int, score: Float)] {
        guard let column = view.column(named: field.name) else {
            throw TesseraError(.notFound, "no vector field '\(field.name)'", location: .init(field: "using"))
        }
        guard limit > 0, !slots.isEmpty else { return [] }
        if case .dense(.euclid) = field.kind {
            var hits: [(slot: Int, score: Float)] = slots.map { slot in
                let values = column.floatValues(ofSlot: slot)
                var sum: Float = 0
                for index in 0..<values.count {
                    let difference = values[index] - query[index]
                    sum += difference * difference
                }
                return (slot, sum.squareRoot())
            }
            sortDense(&hits, field: field)
            return Array(hits.prefix(limit))
        }
        do {
            return try column.topK(
                limit,
                query: Multivector(query, dimension: field.dimension),
                candidates: slots,
                kernel: kernel
            )
        } catch {
            throw TesseraError(.invalidArgument, "scoring failed: \(error)", location: .init(field: "query"))
        }
    }

    /// Best first: largest score, or smallest distance for Euclid fields; ties to the earlier slot.
    func sortDense(_ hits: inout [(slot: Int, score: Float)], field: VectorField) {
        let ascending: Bool
        if case .dense(.euclid) = field.kind { ascending = true } else { ascending = false }
        hits.sort { left, right in
            if left.score != right.score { return ascending ? left.score < right.score : left.score > right.score }
            return left.slot < right.slot
        }
    }
}
