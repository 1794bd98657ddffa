import Foundation
import MaxSim
import TesseraPlatform

/// The file of a sealed segment: an immutable run of slots of one collection — each slot's point id, its
/// version (the SQLite row that held the point when it was sealed; 0 for a slot already deleted then) and, for
/// every vector field, its tokens in the field's stored element type.
///
/// ## Layout (little-endian)
/// - a 256-byte header: magic `TSRSEG01`, format version (UInt32), field count (UInt32), slot count (UInt64),
///   section count (UInt32), 4 reserved bytes, the checksum of the section table (UInt64), zeros, and at byte
///   248 the checksum of header bytes 0..<248;
/// - the section table at byte 256: per section its kind and field index (UInt32 each), byte offset, byte count
///   and checksum (UInt64 each);
/// - the sections, each starting on a 64-byte boundary: the fields' description (JSON: name, dimension, element
///   type), the ids (`slotCount + 1` UInt64 offsets into the id bytes, then the ids' sort keys), the versions
///   (`slotCount` Int64), and per field its token offsets (`slotCount + 1` UInt64), its values and, for int8,
///   one Float scale per token.
///
/// ## Checks
/// Opening a segment (``SealedSegment/init(path:id:fields:)``) reads the header, the section table, the ids,
/// versions and token offsets and checks their checksums and their consistency (sizes, bounds, monotone
/// offsets): O(slots), not O(bytes), so that opening a collection does not read its vectors. The values'
/// checksums are checked when the file is written, before a segment is merged into another, and by
/// ``CollectionStore/verifySegments()`` (`tessera verify`): as with Lucene's segment files, a flipped bit in
/// the middle of the vectors is found by a verification pass, not on every open. A file cut short, or with any
/// byte of its header, table, ids or offsets altered, is refused at open.
enum SegmentFile {
    static let magic: [UInt8] = Array("TSRSEG01".utf8)
    static let version: UInt32 = 1
    static let headerByteCount = 256
    static let headerChecksumOffset = 248
    static let tableEntryByteCount = 32
    static let alignment = 64
    /// The file name extension of segment files.
    static let fileExtension = "tseg"

    enum SectionKind: UInt32 {
        case fields = 1
        case idOffsets = 2
        case idBytes = 3
        case versions = 4
        case tokenOffsets = 5
        case values = 6
        case scales = 7
    }

    struct Section: Sendable {
        var kind: SectionKind
        var field: Int
        var offset: Int
        var byteCount: Int
        var checksum: UInt64
    }

    /// The name of segment `id`'s file: `segment-<id>.tseg`.
    static func fileName(id: Int64) -> String { "segment-\(id).\(fileExtension)" }

    /// What a segment is made of: slots of a scoring view, each written with its tokens (live) or none.
    struct Entry {
        var slot: Int
        var live: Bool
    }

    /// What was written.
    struct Summary: Sendable {
        var byteCount: Int
        var slotCount: Int
        var liveCount: Int
        var headerChecksum: UInt64
    }

    /// The slots a segment file is written from, row by row: each slot's id (sort key), version (0 for a slot
    /// written without tokens) and, per field (by index in the configuration), its token count and stored bytes.
    struct Rows {
        var count: Int
        var key: (Int) -> [UInt8]
        var version: (Int) -> Int64
        var tokenCount: (_ field: Int, _ row: Int) -> Int
        /// Calls the body with one row's values in the stored element type and, for int8, its scales (empty
        /// otherwise).
        var storedBytes:
            (
                _ field: Int,
                _ row: Int,
                _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(SystemCallError) -> Void
            ) throws(SystemCallError) -> Void
    }

    /// The rows of slots `entries` of `view`.
    static func rows(entries: [Entry], view: ScoringView, fields: [VectorField]) -> Rows {
        let columns = fields.map { view.columns[$0.name]! }
        return Rows(
            count: entries.count,
            key: { [UInt8](view.pointIDs[entries[$0].slot].sortKey) },
            version: { entries[$0].live ? view.rowIDs[entries[$0].slot] : 0 },
            tokenCount: { field, row in entries[row].live ? columns[field].tokenCount(ofSlot: entries[row].slot) : 0 },
            storedBytes: { field, row, body throws(SystemCallError) in
                let entry = entries[row]
                guard entry.live else { return }
                let result: Result<Void, SystemCallError> = columns[field].withStoredBytes(ofSlot: entry.slot) {
                    values,
                    scales in
                    Result { () throws(SystemCallError) in try body(values, scales) }
                }
                try result.get()
            }
        )
    }

    /// Writes the slots `entries` of `view` to a new segment file at `path` (see ``write(to:rows:fields:)``).
    /// - Parameters:
    ///   - path: The file to create.
    ///   - entries: The slots in order; deleted ones are written with their id and no tokens.
    ///   - view: The view the slots belong to.
    ///   - fields: The collection's fields, in configuration order.
    /// - Returns: The file's size, slot counts and header checksum.
    /// - Throws: ``TesseraError/Code/io``.
    static func write(
        to path: String,
        entries: [Entry],
        view: ScoringView,
        fields: [VectorField]
    ) throws(TesseraError) -> Summary {
        try write(to: path, rows: rows(entries: entries, view: view, fields: fields), fields: fields)
    }

    /// Writes rows to a new segment file at `path`: a temporary file, fsynced and renamed
    /// (``TesseraPlatform/AtomicFile``), so that a crash leaves no file or a whole one.
    /// - Parameters:
    ///   - path: The file to create.
    ///   - rows: The slots, in order.
    ///   - fields: The collection's fields, in configuration order.
    /// - Returns: The file's size, slot counts and header checksum.
    /// - Throws: ``TesseraError/Code/io``.
    /// - Complexity: O(bytes written); memory O(slots) plus an 8 MB buffer.
    static func write(to path: String, rows: Rows, fields: [VectorField]) throws(TesseraError) -> Summary {
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            let summary = try writeUncommitted(to: temporary, rows: rows, fields: fields)
            try AtomicFile.commit(temporaryPath: temporary, to: path)
            return summary
        } catch {
            try? Syscalls.unlink(temporary)
            throw TesseraError(.io, "writing a segment file failed", location: .init(path: path), cause: "\(error)")
        }
    }

    private static func writeUncommitted(
        to path: String,
        rows: Rows,
        fields: [VectorField]
    ) throws(SystemCallError) -> Summary {
        let descriptor = try Syscalls.openForWriting(path, truncate: true)
        defer { Syscalls.close(descriptor) }
        var writer = SectionWriter(descriptor: descriptor, path: path)
        let slotCount = rows.count
        let keys = (0..<slotCount).map(rows.key)
        let versions = (0..<slotCount).map(rows.version)
        var planned: [(SectionKind, Int, Int)] = [
            (.fields, 0, 0), (.idOffsets, 0, 8 * (slotCount + 1)), (.idBytes, 0, keys.reduce(0) { $0 + $1.count }),
            (.versions, 0, 8 * slotCount),
        ]
        let descriptionBytes = fieldDescription(fields)
        planned[0].2 = descriptionBytes.count
        var tokenCounts: [[Int]] = []
        for (index, field) in fields.enumerated() {
            let counts = (0..<slotCount).map { rows.tokenCount(index, $0) }
            let tokens = counts.reduce(0, +)
            tokenCounts.append(counts)
            planned.append((.tokenOffsets, index, 8 * (slotCount + 1)))
            planned.append((.values, index, tokens * field.dimension * field.elementType.byteCount))
            if field.elementType.isInt8 { planned.append((.scales, index, 4 * tokens)) }
        }
        let tableEnd = headerByteCount + tableEntryByteCount * planned.count
        try writer.writeZeros(tableEnd)
        var sections: [Section] = []
        for (kind, fieldIndex, byteCount) in planned {
            try writer.align()
            writer.begin(byteCount: byteCount)
            let offset = writer.position
            switch kind {
            case .fields:
                try writer.append(bytes: descriptionBytes)
            case .idOffsets:
                var total: UInt64 = 0
                try writer.append(word: 0)
                for key in keys {
                    total += UInt64(key.count)
                    try writer.append(word: total)
                }
            case .idBytes:
                for key in keys { try writer.append(bytes: key) }
            case .versions:
                for version in versions { try writer.append(word: UInt64(bitPattern: version)) }
            case .tokenOffsets:
                var total: UInt64 = 0
                try writer.append(word: 0)
                for count in tokenCounts[fieldIndex] {
                    total += UInt64(count)
                    try writer.append(word: total)
                }
            case .values, .scales:
                for row in 0..<slotCount where tokenCounts[fieldIndex][row] > 0 {
                    try rows.storedBytes(fieldIndex, row) { values, scales throws(SystemCallError) in
                        try writer.append(raw: kind == .values ? values : scales)
                    }
                }
            }
            let checksum = try writer.end()
            guard writer.position - offset == byteCount else {
                // The rows gave other bytes than they announced: never record such a file.
                throw SystemCallError(
                    call: "write (section \(kind) of field \(fieldIndex))",
                    errorNumber: EINVAL,
                    path: path
                )
            }
            sections.append(
                Section(kind: kind, field: fieldIndex, offset: offset, byteCount: byteCount, checksum: checksum)
            )
        }
        try writer.flush()
        let fileByteCount = writer.position
        var table = [UInt8]()
        table.reserveCapacity(tableEntryByteCount * sections.count)
        for section in sections {
            table.appendLittleEndian(UInt32(section.kind.rawValue))
            table.appendLittleEndian(UInt32(section.field))
            table.appendLittleEndian(UInt64(section.offset))
            table.appendLittleEndian(UInt64(section.byteCount))
            table.appendLittleEndian(section.checksum)
        }
        var header = magic
        header.appendLittleEndian(version)
        header.appendLittleEndian(UInt32(fields.count))
        header.appendLittleEndian(UInt64(slotCount))
        header.appendLittleEndian(UInt32(sections.count))
        header.appendLittleEndian(UInt32(0))
        header.appendLittleEndian(Checksum.of(array: table))
        header += [UInt8](repeating: 0, count: headerChecksumOffset - header.count)
        let headerChecksum = Checksum.of(array: header)
        header.appendLittleEndian(headerChecksum)
        try Syscalls.write(descriptor, header + table, atOffset: 0)
        return Summary(
            byteCount: fileByteCount,
            slotCount: slotCount,
            liveCount: versions.reduce(0) { $0 + ($1 != 0 ? 1 : 0) },
            headerChecksum: headerChecksum
        )
    }

    /// The fields' description section: what a reader checks against the collection's configuration.
    static func fieldDescription(_ fields: [VectorField]) -> [UInt8] {
        let text = fields.map { "\($0.name)\t\($0.dimension)\t\($0.elementType)" }.joined(separator: "\n")
        return Array(text.utf8)
    }
}

/// Sequential writes with one buffer, 64-byte alignment and a running checksum per section.
private struct SectionWriter {
    let descriptor: Int32
    let path: String
    var buffer: [UInt8] = []
    /// Bytes written or buffered so far: the file offset of the next byte.
    var position = 0
    var checksum = Checksum.Accumulator(byteCount: 0)
    static let bufferByteCount = 8 << 20

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        buffer.reserveCapacity(Self.bufferByteCount)
    }

    mutating func begin(byteCount: Int) { checksum = Checksum.Accumulator(byteCount: byteCount) }

    mutating func end() throws(SystemCallError) -> UInt64 { checksum.value }

    mutating func writeZeros(_ count: Int) throws(SystemCallError) {
        buffer += [UInt8](repeating: 0, count: count)
        position += count
        try flushIfFull()
    }

    mutating func align() throws(SystemCallError) {
        let padding = (SegmentFile.alignment - position % SegmentFile.alignment) % SegmentFile.alignment
        if padding > 0 { try writeZeros(padding) }
    }

    mutating func append(bytes: [UInt8]) throws(SystemCallError) {
        let result: Result<Void, SystemCallError> = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemCallError) in try append(raw: raw) }
        }
        try result.get()
    }

    mutating func append(word: UInt64) throws(SystemCallError) {
        var little = word.littleEndian
        let result: Result<Void, SystemCallError> = withUnsafeBytes(of: &little) { raw in
            Result { () throws(SystemCallError) in try append(raw: raw) }
        }
        try result.get()
    }

    mutating func append(raw: UnsafeRawBufferPointer) throws(SystemCallError) {
        guard raw.count > 0 else { return }
        checksum.add(raw)
        buffer.append(contentsOf: raw)
        position += raw.count
        try flushIfFull()
    }

    private mutating func flushIfFull() throws(SystemCallError) {
        if buffer.count >= Self.bufferByteCount { try flush() }
    }

    mutating func flush() throws(SystemCallError) {
        guard !buffer.isEmpty else { return }
        try Syscalls.writeAll(descriptor, buffer, path: path)
        buffer.removeAll(keepingCapacity: true)
    }
}

extension [UInt8] {
    fileprivate mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }
}

/// A sealed segment, open: its file mapped read-only, its ids, versions and token offsets read and checked, its
/// vectors read in place by the kernels.
///
/// Immutable and shared by reference between every scoring view that holds it; the mapping is released when
/// the last view holding it goes, so a segment merged away stays readable by the searches that started before.
final class SealedSegment: Sendable {
    /// The segment's number in the collection's `segments` table.
    let id: Int64
    /// The file's path.
    let path: String
    /// The number of slots (live or deleted).
    let slotCount: Int
    /// Each slot's point id.
    let ids: [PointID]
    /// Each slot's version: the row that held the point when the segment was written (0: deleted then).
    let versions: [Int64]
    /// Each field's tokens, by field name: one item per slot, read in place from the mapping.
    let documents: [String: Multivectors]
    /// The header's checksum (recorded in the database, so that a file swapped for another is refused).
    let headerChecksum: UInt64
    /// The file's size in bytes.
    let byteCount: Int
    private let mapping: SharedMapping
    private let valueSections: [SegmentFile.Section]
    /// The bytes no section covers (alignment padding), which must be zero.
    private let gaps: [Range<Int>]

    /// Opens and checks a segment file (everything but the values' checksums; see ``SegmentFile``).
    /// - Parameters:
    ///   - path: The file.
    ///   - id: Its segment number.
    ///   - fields: The collection's fields, in configuration order; the file must describe the same.
    /// - Throws: ``TesseraError/Code/corrupted`` naming the file, the check and the byte offset;
    ///   ``TesseraError/Code/io`` when the file cannot be mapped.
    init(path: String, id: Int64, fields: [VectorField]) throws(TesseraError) {
        let mapping: SharedMapping
        do { mapping = try SharedMapping(path: path) } catch {
            throw TesseraError(.io, "cannot map the segment file", location: .init(path: path), cause: "\(error)")
        }
        let bytes = mapping.bytes
        func corrupted(_ message: String, offset: Int) -> TesseraError {
            TesseraError(.corrupted, "segment file: \(message)", location: .init(path: path, offset: offset))
        }
        func word<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard bytes.count >= SegmentFile.headerByteCount else {
            throw corrupted("\(bytes.count) bytes, shorter than the header (truncated?)", offset: bytes.count)
        }
        guard Array(bytes[0..<8]) == SegmentFile.magic else { throw corrupted("bad magic number", offset: 0) }
        let headerChecksum = word(UInt64.self, at: SegmentFile.headerChecksumOffset)
        guard
            Checksum.of(UnsafeRawBufferPointer(rebasing: bytes[0..<SegmentFile.headerChecksumOffset])) == headerChecksum
        else { throw corrupted("the header checksum does not match", offset: SegmentFile.headerChecksumOffset) }
        let version = word(UInt32.self, at: 8)
        guard version == SegmentFile.version else {
            throw corrupted("format version \(version); this build reads \(SegmentFile.version)", offset: 8)
        }
        let fieldCount = Int(word(UInt32.self, at: 12))
        let slotCount = Int(word(UInt64.self, at: 16))
        let sectionCount = Int(word(UInt32.self, at: 24))
        let tableEnd = SegmentFile.headerByteCount + SegmentFile.tableEntryByteCount * sectionCount
        guard fieldCount == fields.count, slotCount < 1 << 40, sectionCount < 1 << 16, tableEnd <= bytes.count else {
            throw corrupted(
                "\(fieldCount) fields, \(slotCount) slots, \(sectionCount) sections in a \(bytes.count)-byte file "
                    + "(the collection has \(fields.count) fields)",
                offset: 12
            )
        }
        let table = UnsafeRawBufferPointer(rebasing: bytes[SegmentFile.headerByteCount..<tableEnd])
        guard Checksum.of(table) == word(UInt64.self, at: 32) else {
            throw corrupted("the section table checksum does not match", offset: SegmentFile.headerByteCount)
        }
        var sections: [SegmentFile.Section] = []
        for index in 0..<sectionCount {
            let at = SegmentFile.headerByteCount + index * SegmentFile.tableEntryByteCount
            guard let kind = SegmentFile.SectionKind(rawValue: word(UInt32.self, at: at)) else {
                throw corrupted("unknown section kind in table entry \(index)", offset: at)
            }
            let section = SegmentFile.Section(
                kind: kind,
                field: Int(word(UInt32.self, at: at + 4)),
                offset: Int(clamping: word(UInt64.self, at: at + 8)),
                byteCount: Int(clamping: word(UInt64.self, at: at + 16)),
                checksum: word(UInt64.self, at: at + 24)
            )
            guard section.offset % SegmentFile.alignment == 0, section.offset >= tableEnd,
                section.offset <= bytes.count, section.byteCount <= bytes.count - section.offset,
                section.field < max(1, fieldCount)
            else {
                throw corrupted(
                    "section \(index) spans \(section.offset)..<\(section.offset &+ section.byteCount) of "
                        + "\(bytes.count) bytes (truncated?)",
                    offset: at
                )
            }
            sections.append(section)
        }
        func section(_ kind: SegmentFile.SectionKind, field: Int = 0) throws(TesseraError) -> SegmentFile.Section {
            guard let found = sections.first(where: { $0.kind == kind && $0.field == field }) else {
                throw corrupted("no \(kind) section for field \(field)", offset: SegmentFile.headerByteCount)
            }
            return found
        }
        func checked(_ section: SegmentFile.Section) throws(TesseraError) -> UnsafeRawBufferPointer {
            let region = UnsafeRawBufferPointer(rebasing: bytes[section.offset..<(section.offset + section.byteCount)])
            guard Checksum.of(region) == section.checksum else {
                throw corrupted("the \(section.kind) section's checksum does not match", offset: section.offset)
            }
            return region
        }
        func offsets(_ region: UnsafeRawBufferPointer, what: String, at base: Int) throws(TesseraError) -> [Int] {
            guard region.count == 8 * (slotCount + 1) else {
                throw corrupted("the \(what) hold \(region.count) bytes for \(slotCount) slots", offset: base)
            }
            var values = [Int](repeating: 0, count: slotCount + 1)
            for index in 0...slotCount {
                let value = UInt64(littleEndian: region.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))
                guard value < 1 << 48, index == 0 ? value == 0 : Int(value) >= values[index - 1] else {
                    throw corrupted("the \(what) are not increasing from 0 at slot \(index)", offset: base + 8 * index)
                }
                values[index] = Int(value)
            }
            return values
        }
        let description = try checked(try section(.fields))
        guard Array(description) == SegmentFile.fieldDescription(fields) else {
            throw TesseraError(
                .corrupted,
                "segment file: its fields (\(String(decoding: description, as: UTF8.self).replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: "; "))) are not the collection's",
                location: .init(path: path)
            )
        }
        let idSection = try section(.idOffsets)
        let idOffsets = try offsets(try checked(idSection), what: "id offsets", at: idSection.offset)
        let idBytesSection = try section(.idBytes)
        let idBytes = try checked(idBytesSection)
        guard idOffsets[slotCount] == idBytes.count else {
            throw corrupted(
                "the ids take \(idOffsets[slotCount]) of \(idBytes.count) bytes",
                offset: idBytesSection.offset
            )
        }
        var ids: [PointID] = []
        ids.reserveCapacity(slotCount)
        for slot in 0..<slotCount {
            let key = Data(idBytes[idOffsets[slot]..<idOffsets[slot + 1]])
            do { ids.append(try PointID(sortKey: key)) } catch {
                throw corrupted("slot \(slot)'s id is not a point id", offset: idBytesSection.offset + idOffsets[slot])
            }
        }
        let versionSection = try section(.versions)
        let versionBytes = try checked(versionSection)
        guard versionBytes.count == 8 * slotCount else {
            throw corrupted(
                "the versions hold \(versionBytes.count) bytes for \(slotCount) slots",
                offset: versionSection.offset
            )
        }
        let versions = (0..<slotCount).map {
            Int64(littleEndian: versionBytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))
        }
        var documents: [String: Multivectors] = [:]
        var valueSections: [SegmentFile.Section] = []
        for (index, field) in fields.enumerated() {
            let offsetSection = try section(.tokenOffsets, field: index)
            let tokenOffsets = try offsets(
                try checked(offsetSection),
                what: "token offsets of '\(field.name)'",
                at: offsetSection.offset
            )
            let tokenCount = tokenOffsets[slotCount]
            let values = try section(.values, field: index)
            guard values.byteCount == tokenCount * field.dimension * field.elementType.byteCount else {
                throw corrupted(
                    "field '\(field.name)' has \(values.byteCount) value bytes for \(tokenCount) tokens",
                    offset: values.offset
                )
            }
            valueSections.append(values)
            var scaleOffset = 0
            if field.elementType.isInt8 {
                let scales = try section(.scales, field: index)
                guard scales.byteCount == 4 * tokenCount else {
                    throw corrupted(
                        "field '\(field.name)' has \(scales.byteCount) scale bytes for \(tokenCount) tokens",
                        offset: scales.offset
                    )
                }
                scaleOffset = scales.offset
                valueSections.append(scales)
            }
            do {
                let elements = try MappedTokens(
                    mapping: mapping,
                    valueOffset: values.offset,
                    valueCount: tokenCount * field.dimension,
                    elementType: field.elementType.tokenElementType,
                    scaleOffset: scaleOffset,
                    dimension: field.dimension
                )
                documents[field.name] = try Multivectors(
                    elements: .mapped(elements),
                    offsets: tokenOffsets,
                    dimension: field.dimension
                )
            } catch {
                throw corrupted("field '\(field.name)': \(error)", offset: values.offset)
            }
        }
        self.id = id
        self.path = path
        self.slotCount = slotCount
        self.ids = ids
        self.versions = versions
        self.documents = documents
        self.headerChecksum = headerChecksum
        self.byteCount = bytes.count
        self.mapping = mapping
        self.valueSections = valueSections
        var gaps: [Range<Int>] = []
        var covered = tableEnd
        for section in sections.sorted(by: { $0.offset < $1.offset }) {
            if section.offset > covered { gaps.append(covered..<section.offset) }
            covered = max(covered, section.offset + section.byteCount)
        }
        if covered < bytes.count { gaps.append(covered..<bytes.count) }
        self.gaps = gaps
    }

    /// Checks the values' checksums and that the padding between sections is zero: every byte of the file has
    /// then been checked.
    /// - Throws: ``TesseraError/Code/corrupted`` naming the section (or padding) and its offset.
    /// - Complexity: O(bytes); reads the whole file, then drops its pages from this process's resident memory.
    func verifyValues() throws(TesseraError) {
        defer { mapping.file.releaseResidentPages() }
        for gap in gaps {
            if let offset = gap.first(where: { mapping.bytes[$0] != 0 }) {
                throw TesseraError(
                    .corrupted,
                    "segment file: padding byte \(offset) is not zero",
                    location: .init(path: path, offset: offset)
                )
            }
        }
        for section in valueSections {
            let region = UnsafeRawBufferPointer(
                rebasing: mapping.bytes[section.offset..<(section.offset + section.byteCount)]
            )
            guard Checksum.of(region) == section.checksum else {
                throw TesseraError(
                    .corrupted,
                    "segment file: the checksum of field \(section.field)'s \(section.kind) does not match",
                    location: .init(path: path, offset: section.offset)
                )
            }
        }
    }

    /// Bytes of the mapping resident in this process, when the system says.
    var residentByteCount: Int? { mapping.file.residentByteCount() }
}

extension ElementType {
    /// The kernels' element type for this stored type.
    var tokenElementType: TokenElementType {
        if isFloat16 { return .float16 }
        if isInt8 { return .int8 }
        return .float32
    }
}
