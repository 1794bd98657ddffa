import Foundation
import MaxSim

/// A snapshot of a collection laid out for scoring: one ``VectorColumn`` per vector field, the point id of
/// every slot, which slots are live, and the payloads for filter evaluation.
///
/// Slots are positions shared by all fields (every point has every field), in write order: first the slots of
/// the sealed segments (``segments``, oldest first), then the appendable tail. Replacing a point marks its old
/// slot deleted and appends a new one to the tail. Sealing the tail keeps every slot number (the tail's slots
/// become the new segment's); compacting the tail or merging segments drops deleted slots and renumbers the
/// slots after them, which changes ``layoutGeneration``: slot numbers from one layout generation mean nothing
/// in another.
///
/// A view is a value: it never changes once you hold it (see "Concurrency rules" on ``CollectionStore``). The
/// sealed segments' vectors are shared, read in place from their mapped files; a write copies at most the
/// tail's vectors (when a reader holds the view) and the per-slot arrays.
public struct ScoringView: Sendable {
    /// Changes whenever slots are renumbered (compaction).
    public internal(set) var layoutGeneration: UInt64 = 0
    /// The id of each slot, live or deleted.
    public internal(set) var pointIDs: [PointID] = []
    /// The live slots.
    public internal(set) var liveSlots = SlotBitmap(slotCount: 0)
    /// The packed columns, by field name.
    public internal(set) var columns: [String: VectorColumn]
    var payloads: [JSONObject] = []
    var slotByID: [PointID: Int] = [:]
    /// A number per slot, unique within this open store and increasing in append order; compaction keeps it.
    /// A derived index remembers the version it encoded, so it can tell a slot's current vectors from a
    /// replaced point's.
    public internal(set) var slotVersions: [UInt64] = []
    /// The version the next appended slot gets.
    public internal(set) var nextVersion: UInt64 = 1
    /// Counts payload edits in place (which change no slot version), so that indexes of payload text know
    /// to refresh.
    public internal(set) var payloadEdits: UInt64 = 0
    /// The slots removed or whose payload was edited in place, in the order it happened: change number
    /// `firstChangeNumber + i` is `changeLog[i]`. Derived indexes of payload text read the changes since they last
    /// caught up, so that a write of k points costs them O(k). The oldest changes are dropped past
    /// ``changeLogCapacity`` (an index that fell further behind rebuilds), and compaction clears the log.
    var changeLog: [Int] = []
    var firstChangeNumber: UInt64 = 0
    /// How many changes the log keeps at least.
    static let changeLogCapacity = 65_536
    /// The SQLite row of each slot's point (0 when deleted before its segment was written): the version a
    /// segment file records.
    var rowIDs: [Int64] = []
    /// The sealed segments, oldest first; their slots come before the tail's.
    var segments: [SealedSegment] = []
    /// The number of sealed segments.
    public var segmentCount: Int { segments.count }
    /// Slots in sealed segments: the tail's first slot.
    public internal(set) var sealedSlotCount = 0
    /// The tail's tokens of deleted slots, per field.
    var tailDeadTokens: [String: Int] = [:]
    /// Per field, the slots without a vector there (0 tokens: a point that left the field out, or whose vector
    /// was deleted; a sparse field's empty vector is one placeholder row, a vector); deleted slots may be listed
    /// too. Usually empty.
    var absentSlots: [String: Set<Int>] = [:]

    /// The live slots that hold a vector in a field, or `nil` when every live slot does (the usual case).
    public func presentSlots(field name: String) -> SlotBitmap? {
        guard let absent = absentSlots[name], !absent.isEmpty else { return nil }
        var present = liveSlots
        for slot in absent where slot < slotCount { present.remove(slot) }
        return present
    }

    /// Whether a slot holds a vector in a field.
    public func hasVector(slot: Int, field name: String) -> Bool { absentSlots[name]?.contains(slot) != true }

    /// Records the slots of `range` without tokens in a column as absent there.
    private mutating func noteAbsences(in range: Range<Int>) {
        for (name, column) in columns {
            for slot in range where column.tokenCount(ofSlot: slot) == 0 { absentSlots[name, default: []].insert(slot) }
        }
    }

    /// The number the next change gets.
    var changeCount: UInt64 { firstChangeNumber + UInt64(changeLog.count) }

    /// The slots changed (removed or payload edited) since change number `number`, or `nil` when the log no
    /// longer holds them all.
    func changedSlots(since number: UInt64) -> ArraySlice<Int>? {
        guard number >= firstChangeNumber, number <= changeCount else { return nil }
        return changeLog[Int(number - firstChangeNumber)...]
    }

    private mutating func recordChange(slot: Int) {
        changeLog.append(slot)
        if changeLog.count >= 2 * Self.changeLogCapacity {
            changeLog.removeFirst(Self.changeLogCapacity)
            firstChangeNumber += UInt64(Self.changeLogCapacity)
        }
    }

    init(configuration: CollectionConfiguration) {
        columns = Dictionary(uniqueKeysWithValues: configuration.fields.map { ($0.name, VectorColumn(field: $0)) })
    }

    /// The number of slots, live or deleted.
    public var slotCount: Int { pointIDs.count }
    /// The number of live points.
    public var liveCount: Int { slotByID.count }
    /// The number of slots in the appendable tail, live or deleted.
    public var tailSlotCount: Int { slotCount - sealedSlotCount }
    /// The live points in the appendable tail.
    public var tailLiveCount: Int {
        var count = 0
        for slot in sealedSlotCount..<slotCount where liveSlots.contains(slot) { count += 1 }
        return count
    }

    /// The column of a field.
    /// - Parameter name: The field's name.
    /// - Returns: The column, or `nil` for an unknown field.
    public func column(named name: String) -> VectorColumn? { columns[name] }

    /// The live slot of a point.
    /// - Parameter id: The point's id.
    /// - Returns: The slot, or `nil` when no live point has this id.
    public func slot(of id: PointID) -> Int? { slotByID[id] }

    /// The payload of a slot (empty for a deleted slot).
    /// - Parameter slot: A slot in `0..<slotCount`.
    /// - Returns: The payload.
    public func payload(ofSlot slot: Int) -> JSONObject { payloads[slot] }

    /// The live slots whose points pass a filter.
    /// - Parameter filter: The filter, or `nil` for every live slot.
    /// - Returns: A bitmap over `0..<slotCount`.
    /// - Complexity: O(live points × filter size). Measured on a 2-core development machine for 10⁵ points and
    ///   one- or two-condition filters: 33–55 ms in a release build, 86–138 ms in a debug build
    ///   (`TESSERA_PERF_POINTS=100000 swift test [-c release] --filter FilterTests/performance`).
    public func allowedSlots(filter: Filter?) -> SlotBitmap {
        guard let filter, !filter.isEmpty else { return liveSlots }
        var allowed = SlotBitmap(slotCount: slotCount)
        for (wordIndex, word) in liveSlots.words.enumerated() {
            var rest = word
            while rest != 0 {
                let slot = wordIndex << 6 + rest.trailingZeroBitCount
                rest &= rest - 1
                if filter.matches(payload: payloads[slot], id: pointIDs[slot]) { allowed.insert(slot) }
            }
        }
        return allowed
    }

    /// Appends a point; the caller has removed any live point with the same id.
    mutating func append(
        id: PointID,
        payload: JSONObject,
        blobs: [(field: String, tokenCount: Int, data: Data)],
        rowID: Int64
    ) {
        let slot = pointIDs.count
        pointIDs.append(id)
        rowIDs.append(rowID)
        slotVersions.append(nextVersion)
        nextVersion += 1
        payloads.append(payload)
        liveSlots.append(true)
        slotByID[id] = slot
        for blob in blobs {
            columns[blob.field]!.append(blob: blob.data, tokenCount: blob.tokenCount)
            if blob.tokenCount == 0 { absentSlots[blob.field, default: []].insert(slot) }
        }
    }

    /// Appends a sealed segment's slots, every one deleted; ``reviveSealed(slot:payload:)`` then marks the live
    /// ones. Used while opening, before the tail is loaded.
    mutating func appendSegment(_ segment: SealedSegment) {
        precondition(tailSlotCount == 0, "segments are loaded before the tail")
        for name in Array(columns.keys) {
            let documents = segment.documents[name]!
            columns[name]!.appendSealed(documents, deadTokenCount: documents.tokenCount)
        }
        pointIDs += segment.ids
        rowIDs += segment.versions
        payloads += repeatElement([:], count: segment.slotCount)
        slotVersions += (0..<UInt64(segment.slotCount)).map { nextVersion + $0 }
        nextVersion += UInt64(segment.slotCount)
        for _ in 0..<segment.slotCount { liveSlots.append(false) }
        segments.append(segment)
        noteAbsences(in: sealedSlotCount..<(sealedSlotCount + segment.slotCount))
        sealedSlotCount += segment.slotCount
    }

    /// Marks a sealed slot live with its payload (opening).
    mutating func reviveSealed(slot: Int, payload: JSONObject) {
        liveSlots.insert(slot)
        payloads[slot] = payload
        slotByID[pointIDs[slot]] = slot
        for name in Array(columns.keys) { columns[name]!.deadTokenCount -= columns[name]!.tokenCount(ofSlot: slot) }
    }

    /// Marks a point's slot deleted.
    /// - Returns: Whether a live point had this id.
    @discardableResult
    mutating func remove(id: PointID) -> Bool {
        guard let slot = slotByID.removeValue(forKey: id) else { return false }
        liveSlots.remove(slot)
        payloads[slot] = [:]
        recordChange(slot: slot)
        for name in Array(columns.keys) {
            let tokens = columns[name]!.tokenCount(ofSlot: slot)
            columns[name]!.deadTokenCount += tokens
            if slot >= sealedSlotCount { tailDeadTokens[name, default: 0] += tokens }
        }
        return true
    }

    mutating func setPayload(_ payload: JSONObject, id: PointID) {
        if let slot = slotByID[id] {
            payloads[slot] = payload
            payloadEdits += 1
            recordChange(slot: slot)
        }
    }

    /// Drops the tail's deleted slots when, in some column, more than `fraction` of the tail's tokens belong to
    /// them (deleted slots of sealed segments go when the optimiser merges them).
    /// - Returns: Whether the tail was compacted.
    @discardableResult
    mutating func compactIfNeeded(deadTokenFraction fraction: Double) -> Bool {
        let needed = columns.contains { name, column in
            let dead = tailDeadTokens[name] ?? 0
            return dead > 0 && Double(dead) > fraction * Double(column.tailTokenCount)
        }
        guard needed || (tailSlotCount > 0 && tailLiveCount == 0 && liveCount < slotCount) else { return false }
        compactTail()
        return true
    }

    /// Drops every deleted slot of the tail and renumbers the tail's other slots, keeping their order.
    mutating func compactTail() {
        let keep = (sealedSlotCount..<slotCount).filter { liveSlots.contains($0) }
        for name in Array(columns.keys) {
            columns[name] = columns[name]!.keepingTailSlots(
                keep.map { $0 - sealedSlotCount },
                removedDeadTokens: tailDeadTokens[name] ?? 0
            )
        }
        tailDeadTokens = [:]
        renumber(sealedSlotCount..<slotCount, keeping: keep, replacement: nil)
    }

    /// Makes the tail's first `segment.slotCount` slots the sealed segment `segment` (written from them): the
    /// slots keep their numbers, their tokens are read from the segment file from now on.
    mutating func sealTail(as segment: SealedSegment) {
        let end = sealedSlotCount + segment.slotCount
        for name in Array(columns.keys) {
            let column = columns[name]!
            columns[name] = column.sealingTail(as: segment.documents[name]!)
            // The tail's dead tokens now: those of its slots after the sealed ones.
            var dead = 0
            for slot in end..<slotCount where !liveSlots.contains(slot) { dead += column.tokenCount(ofSlot: slot) }
            tailDeadTokens[name] = dead
            // Slots already deleted when sealed were written without tokens; those deleted since keep theirs.
        }
        segments.append(segment)
        sealedSlotCount = end
    }

    /// Inserts a sealed segment of new, live points after the sealed segments, before the tail (an import):
    /// the tail's slots move up by the segment's slot count, which changes ``layoutGeneration``. The caller has
    /// removed every live point with the same ids.
    /// - Parameters:
    ///   - segment: The segment.
    ///   - payloads: Its slots' payloads.
    mutating func insertSegment(_ segment: SealedSegment, payloads: [JSONObject]) {
        let at = sealedSlotCount
        let count = segment.slotCount
        let oldCount = slotCount
        for name in Array(columns.keys) { columns[name] = columns[name]!.insertingSealed(segment.documents[name]!) }
        pointIDs.insert(contentsOf: segment.ids, at: at)
        rowIDs.insert(contentsOf: segment.versions, at: at)
        self.payloads.insert(contentsOf: payloads, at: at)
        slotVersions.insert(contentsOf: (0..<UInt64(count)).map { nextVersion + $0 }, at: at)
        nextVersion += UInt64(count)
        var live = SlotBitmap(slotCount: oldCount + count)
        for slot in 0..<at where liveSlots.contains(slot) { live.insert(slot) }
        for slot in at..<(at + count) { live.insert(slot) }
        for slot in at..<oldCount where liveSlots.contains(slot) {
            live.insert(slot + count)
            slotByID[pointIDs[slot + count]] = slot + count
        }
        for (index, id) in segment.ids.enumerated() { slotByID[id] = at + index }
        liveSlots = live
        absentSlots = absentSlots.mapValues { Set($0.map { $0 >= at ? $0 + count : $0 }) }
        noteAbsences(in: at..<(at + count))
        segments.append(segment)
        sealedSlotCount += count
        layoutGeneration += 1
        firstChangeNumber = changeCount
        changeLog = []
    }

    /// Replaces the sealed segments `range` (indices into ``segments``) by `merged`, written from the slots
    /// `kept` (in order; those deleted since stay deleted), and renumbers every later slot.
    mutating func replaceSegments(_ range: Range<Int>, with merged: SealedSegment, kept: [Int]) {
        let first = range.isEmpty ? sealedSlotCount : segmentSlotBase(range.lowerBound)
        let end = first + segments[range].reduce(0) { $0 + $1.slotCount }
        for name in Array(columns.keys) {
            var removed = 0
            for slot in first..<end where !liveSlots.contains(slot) {
                removed += columns[name]!.tokenCount(ofSlot: slot)
            }
            // Slots kept but deleted since are written with tokens and stay counted as dead.
            var stillDead = 0
            for slot in kept where !liveSlots.contains(slot) { stillDead += columns[name]!.tokenCount(ofSlot: slot) }
            columns[name] = columns[name]!.replacingSealed(
                range,
                with: merged.documents[name]!,
                removedDeadTokens: removed - stillDead
            )
        }
        segments.replaceSubrange(range, with: [merged])
        renumber(first..<end, keeping: kept, replacement: merged)
        sealedSlotCount = segments.reduce(0) { $0 + $1.slotCount }
    }

    /// The first slot of sealed segment `index`.
    func segmentSlotBase(_ index: Int) -> Int { segments[..<index].reduce(0) { $0 + $1.slotCount } }

    /// Renumbers after slots `range` were replaced by `kept` (a subsequence of `range`, in order): the per-slot
    /// arrays, the id map, and a new layout generation.
    private mutating func renumber(_ range: Range<Int>, keeping kept: [Int], replacement: SealedSegment?) {
        let order = Array(0..<range.lowerBound) + kept + Array(range.upperBound..<slotCount)
        pointIDs = order.map { pointIDs[$0] }
        rowIDs = order.map { rowIDs[$0] }
        slotVersions = order.map { slotVersions[$0] }
        payloads = order.map { payloads[$0] }
        if absentSlots.values.contains(where: { !$0.isEmpty }) {
            var renumbered: [String: Set<Int>] = [:]
            for (slot, old) in order.enumerated() {
                for (name, absent) in absentSlots where absent.contains(old) {
                    renumbered[name, default: []].insert(slot)
                }
            }
            absentSlots = renumbered
        }
        var live = SlotBitmap(slotCount: order.count)
        let count = slotByID.count
        slotByID = [:]
        slotByID.reserveCapacity(count)
        for (slot, old) in order.enumerated() where liveSlots.contains(old) {
            live.insert(slot)
            slotByID[pointIDs[slot]] = slot
        }
        liveSlots = live
        layoutGeneration += 1
        firstChangeNumber = changeCount
        changeLog = []
    }
}
