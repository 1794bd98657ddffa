import Foundation
import TesseraPlatform

/// A compressed multi-vector index read from its file through a memory mapping (PLAID's layout).
///
/// Every indexed token is stored as the id of its nearest centroid plus a packed residual code of
/// ``ResidualCodec/bitCount`` bits per dimension; tokens are grouped by centroid cell, each with its document
/// number. Search (``search(query:queryTokenCount:parameters:allowed:delta:limit:threadCount:)``) scores codes
/// without decompressing them. Documents are numbered `0..<documentCount` in build order; each carries an
/// opaque key (the collection's point id) so that the owner can map documents to its own records.
///
/// An index is immutable. Points added after the build go to a ``DeltaSegment`` encoded against the same
/// centroids and codec.
public final class CompressedIndex: @unchecked Sendable {
    // Immutable after init; the mapping outlives every pointer handed out (they are used only inside search).

    /// Keys longer than this are refused (a collection's point id key is 9 or 17 bytes).
    public static let maximumKeyByteCount = 31
    static let keyStride = 32

    /// The file this index was read from.
    public let path: String
    /// The token dimension.
    public let dimension: Int
    /// The number of centroids.
    public let centroidCount: Int
    /// The number of documents.
    public let documentCount: Int
    /// The number of tokens.
    public let tokenCount: Int
    /// The residual codec.
    public let codec: ResidualCodec
    /// The centroids, `[centroidCount, dimension]`, copied out of the file (they are read by every query).
    public let centroids: [Float]
    /// How the index was built.
    public let report: BuildReport
    /// The size of the index file in bytes.
    public var fileByteCount: Int { file.byteCount }

    let file: MappedFile
    let probeProjections = ProbeProjectionCache()
    let cellOffsets: UnsafePointer<UInt64>
    let tokenDocuments: UnsafePointer<UInt32>
    let codes: UnsafePointer<UInt8>
    let documentTokenOffsets: UnsafePointer<UInt64>
    let documentKeyBytes: UnsafePointer<UInt8>

    /// Maps an index file and checks it.
    /// - Parameters:
    ///   - path: The index file.
    ///   - verifyChecksum: Whether to read every byte and check the payload checksum (tens of milliseconds per
    ///     million tokens); the header, sizes and offsets are always checked.
    /// - Throws: ``IndexError/Code/corrupted`` naming the check that failed and the byte offset where it
    ///   applies (a truncated or torn file, a bad magic number, a checksum or an inconsistent section);
    ///   ``IndexError/Code/io``.
    public init(path: String, verifyChecksum: Bool = true) throws(IndexError) {
        let file = try MappedFile.index(at: path)
        // The mapping moves into `self.file`, which outlives every pointer below.
        let base = file.baseAddress!
        let bytes = UnsafeRawBufferPointer(start: base, count: file.byteCount)
        self.file = file
        self.path = path
        func corrupted(_ message: String, offset: Int, field: String? = nil) -> IndexError {
            IndexError(.corrupted, message, path: path, field: field, offset: offset)
        }
        guard bytes.count >= IndexFileFormat.headerByteCount else {
            throw corrupted(
                "the file has \(bytes.count) bytes, shorter than its \(IndexFileFormat.headerByteCount)-byte header",
                offset: bytes.count
            )
        }
        guard Array(bytes[0..<8]) == IndexFileFormat.magic else {
            throw corrupted("not a Tessera compressed index (bad magic number)", offset: 0)
        }
        var cursor = 8
        func read<T: FixedWidthInteger>(_: T.Type) -> T {
            defer { cursor += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: cursor, as: T.self))
        }
        let version = read(UInt32.self)
        guard version == IndexFileFormat.version else {
            throw corrupted("format version \(version); this build reads \(IndexFileFormat.version)", offset: 8)
        }
        let dimension = Int(read(UInt32.self))
        let bitCount = Int(read(UInt32.self))
        let centroidCount = Int(read(UInt32.self))
        let documentCount = Int(read(UInt64.self))
        let tokenCount = Int(read(UInt64.self))
        var sections: [(offset: Int, count: Int)] = []
        for _ in IndexFileFormat.Section.allCases {
            let offset = read(UInt64.self)
            let count = read(UInt64.self)
            guard offset <= UInt64(bytes.count), count <= UInt64(bytes.count) - offset else {
                throw corrupted(
                    "section \(sections.count) spans \(offset)..<\(offset &+ count) but the file has \(bytes.count) "
                        + "bytes (truncated?)",
                    offset: Int(clamping: offset)
                )
            }
            sections.append((Int(offset), Int(count)))
        }
        let payloadChecksum = read(UInt64.self)
        let headerChecksumOffset = cursor
        let headerChecksum = read(UInt64.self)
        guard
            IndexFileFormat.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<headerChecksumOffset]))
                == headerChecksum
        else {
            throw corrupted("the header checksum does not match", offset: headerChecksumOffset)
        }
        let end = sections.map { $0.offset + $0.count }.max() ?? IndexFileFormat.headerByteCount
        guard end == bytes.count else {
            throw corrupted("the sections end at byte \(end) but the file has \(bytes.count)", offset: bytes.count)
        }
        if verifyChecksum {
            let payload = UnsafeRawBufferPointer(rebasing: bytes[IndexFileFormat.headerByteCount...])
            guard IndexFileFormat.checksum(payload) == payloadChecksum else {
                throw corrupted("the payload checksum does not match (a torn or altered file)", offset: 256)
            }
        }
        func section(
            _ name: IndexFileFormat.Section,
            elementSize: Int,
            count: Int
        ) throws(IndexError)
            -> UnsafeRawPointer
        {
            let entry = sections[name.rawValue]
            guard entry.count == elementSize * count, entry.offset % IndexFileFormat.alignment == 0 else {
                throw corrupted(
                    "section '\(name)' has \(entry.count) bytes, expected \(elementSize * count)",
                    offset: entry.offset,
                    field: "\(name)"
                )
            }
            return base + entry.offset
        }
        let bucketCount = 1 << bitCount
        let centroidPointer = try section(.centroids, elementSize: 4, count: centroidCount * dimension)
        let cutoffPointer = try section(.cutoffs, elementSize: 4, count: dimension * (bucketCount - 1))
        let weightPointer = try section(.weights, elementSize: 4, count: dimension * bucketCount)
        let cellPointer = try section(.cellOffsets, elementSize: 8, count: centroidCount + 1)
        let documentPointer = try section(.tokenDocuments, elementSize: 4, count: tokenCount)
        let codePointer = try section(.codes, elementSize: dimension * bitCount / 8, count: tokenCount)
        let offsetPointer = try section(.documentTokenOffsets, elementSize: 8, count: documentCount + 1)
        let keyPointer = try section(.documentKeys, elementSize: Self.keyStride, count: documentCount)
        let reportEntry = sections[IndexFileFormat.Section.report.rawValue]
        do {
            codec = try ResidualCodec(
                dimension: dimension,
                bitCount: bitCount,
                cutoffs: Array(
                    UnsafeBufferPointer(
                        start: cutoffPointer.assumingMemoryBound(to: Float.self),
                        count: dimension * (bucketCount - 1)
                    )
                ),
                weights: Array(
                    UnsafeBufferPointer(
                        start: weightPointer.assumingMemoryBound(to: Float.self),
                        count: dimension * bucketCount
                    )
                )
            )
        } catch {
            throw corrupted("bad residual codec: \(error.message)", offset: sections[1].offset, field: "codec")
        }
        let reportData = Data(bytes: base + reportEntry.offset, count: reportEntry.count)
        guard let report = try? JSONDecoder().decode(BuildReport.self, from: reportData) else {
            throw corrupted("the build report is not readable", offset: reportEntry.offset, field: "report")
        }
        self.report = report
        self.dimension = dimension
        self.centroidCount = centroidCount
        self.documentCount = documentCount
        self.tokenCount = tokenCount
        centroids = Array(
            UnsafeBufferPointer(
                start: centroidPointer.assumingMemoryBound(to: Float.self),
                count: centroidCount * dimension
            )
        )
        cellOffsets = cellPointer.assumingMemoryBound(to: UInt64.self)
        tokenDocuments = documentPointer.assumingMemoryBound(to: UInt32.self)
        codes = codePointer.assumingMemoryBound(to: UInt8.self)
        documentTokenOffsets = offsetPointer.assumingMemoryBound(to: UInt64.self)
        documentKeyBytes = keyPointer.assumingMemoryBound(to: UInt8.self)
        // Offsets must be monotonic and in range, or a search would read outside the mapping.
        guard cellOffsets[0] == 0, cellOffsets[centroidCount] == UInt64(tokenCount) else {
            throw corrupted("cell offsets do not span the tokens", offset: sections[3].offset, field: "cellOffsets")
        }
        for cell in 0..<centroidCount where cellOffsets[cell] > cellOffsets[cell + 1] {
            throw corrupted("cell offsets decrease at cell \(cell)", offset: sections[3].offset + cell * 8)
        }
        if verifyChecksum {
            for token in 0..<tokenCount where Int(tokenDocuments[token]) >= documentCount {
                throw corrupted(
                    "token \(token) names document \(tokenDocuments[token]) of \(documentCount)",
                    offset: sections[4].offset + token * 4,
                    field: "tokenDocuments"
                )
            }
            self.file.releaseResidentPages()
        }
    }

    /// The bytes of the index file resident in this process now: after opening, what searches have touched
    /// (the centroids, the probed cells' codes). `nil` where the system does not say (`/proc/self/smaps`).
    public func residentByteCount() -> Int? { file.residentByteCount() }

    /// The key stored for a document.
    /// - Parameter document: A document in `0..<documentCount`.
    /// - Returns: The key's bytes.
    public func key(ofDocument document: Int) -> [UInt8] {
        precondition(document >= 0 && document < documentCount, "document \(document) out of range")
        let start = documentKeyBytes + document * Self.keyStride
        return Array(UnsafeBufferPointer(start: start + 1, count: Int(start[0])))
    }

    /// The number of tokens a document had when it was indexed.
    /// - Parameter document: A document in `0..<documentCount`.
    /// - Returns: Its token count.
    public func tokenCount(ofDocument document: Int) -> Int {
        precondition(document >= 0 && document < documentCount, "document \(document) out of range")
        return Int(documentTokenOffsets[document + 1] - documentTokenOffsets[document])
    }

    /// The number of tokens in each cell.
    /// - Parameter cell: A centroid in `0..<centroidCount`.
    /// - Returns: The cell's size.
    public func tokenCount(ofCell cell: Int) -> Int { Int(cellOffsets[cell + 1] - cellOffsets[cell]) }

    /// Bytes per indexed token in the file (codes, document numbers and everything else, divided by tokens).
    public var bytesPerToken: Double { tokenCount == 0 ? 0 : Double(fileByteCount) / Double(tokenCount) }
}
