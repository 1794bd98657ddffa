import Foundation
import TesseraPlatform

/// What a build produced, in memory, ready to be written as an index file; also what ``CompressedIndex`` reads
/// back from one.
///
/// Tokens are grouped by centroid cell: cell `c` owns tokens `cellOffsets[c]..<cellOffsets[c + 1]`, and token
/// `t` of that order belongs to document `tokenDocuments[t]` and has the packed residual code
/// `codes[t * bytesPerToken ..< (t + 1) * bytesPerToken]`.
public struct IndexContents: Sendable {
    /// `[centroidCount, dimension]`, row-major.
    public var centroids: [Float]
    /// The residual codec.
    public var codec: ResidualCodec
    /// `centroidCount + 1` offsets into the cell-ordered tokens, from 0.
    public var cellOffsets: [UInt64]
    /// The document of each token, in cell order.
    public var tokenDocuments: [UInt32]
    /// The packed residual codes, in cell order.
    public var codes: [UInt8]
    /// `documentCount + 1` offsets: document `d` had tokens `documentTokenOffsets[d]..<documentTokenOffsets[d+1]`
    /// in the build's input.
    public var documentTokenOffsets: [UInt64]
    /// An opaque key per document (at most ``CompressedIndex/maximumKeyByteCount`` bytes): the collection's id.
    public var documentKeys: [[UInt8]]
    /// How the index was built.
    public var report: BuildReport

    /// The number of centroids.
    public var centroidCount: Int { cellOffsets.count - 1 }
    /// The number of documents.
    public var documentCount: Int { documentKeys.count }
    /// The number of tokens.
    public var tokenCount: Int { tokenDocuments.count }
}

/// How an index was built and what it holds; stored in the index file.
public struct BuildReport: Sendable, Codable, Equatable {
    /// The number of centroids.
    public var centroidCount: Int
    /// Residual bits per dimension.
    public var bitCount: Int
    /// The token vectors' dimension.
    public var dimension: Int
    /// The tokens k-means trained on.
    public var trainingTokenCount: Int
    /// k-means iterations.
    public var iterationCount: Int
    /// The seed for sampling and seeding.
    public var seed: UInt64
    /// Documents indexed.
    public var documentCount: Int
    /// Tokens indexed.
    public var tokenCount: Int
    /// Seconds spent sampling and training centroids.
    public var trainingSeconds: Double
    /// Seconds spent assigning and encoding every token.
    public var encodingSeconds: Double
    /// The whole build, in seconds (before writing the file).
    public var buildSeconds: Double
}

/// The index file: a fixed header, then sections, each 64-byte aligned.
///
/// Header (little-endian): magic `TSRCIDX1`; format version, dimension, bit count, centroid count (UInt32
/// each); document count, token count (UInt64 each); then, for each of the ``Section`` cases in order, its byte
/// offset and byte count (UInt64 each); then a 64-bit checksum of every byte after the header, and a 64-bit
/// checksum of the header bytes before it. A file cut short, or with flipped bits, fails one of the checks.
enum IndexFileFormat {
    static let magic: [UInt8] = Array("TSRCIDX1".utf8)
    static let version: UInt32 = 1
    static let headerByteCount = 256
    static let alignment = 64

    enum Section: Int, CaseIterable {
        case centroids, cutoffs, weights, cellOffsets, tokenDocuments, codes, documentTokenOffsets, documentKeys,
            report
    }

    /// A 64-bit checksum of bytes (``TesseraPlatform/Checksum``); fast enough to verify an index of a million
    /// tokens at open in tens of milliseconds.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 { Checksum.of(bytes) }
}

extension IndexContents {
    /// Writes the index file: a temporary name in the same directory, fsync, rename, directory fsync.
    /// - Parameter path: The file to create or replace.
    /// - Throws: ``IndexError/Code/io``; ``IndexError/Code/invalidArgument`` for a document key that is too long.
    public func write(to path: String) throws(IndexError) {
        var keyBytes = [UInt8](repeating: 0, count: documentCount * CompressedIndex.keyStride)
        for (document, key) in documentKeys.enumerated() {
            guard key.count <= CompressedIndex.maximumKeyByteCount else {
                throw IndexError(
                    .invalidArgument,
                    "document key of \(key.count) bytes (at most \(CompressedIndex.maximumKeyByteCount))",
                    field: "documentKeys",
                    offset: document
                )
            }
            keyBytes[document * CompressedIndex.keyStride] = UInt8(key.count)
            for (index, byte) in key.enumerated() { keyBytes[document * CompressedIndex.keyStride + 1 + index] = byte }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let reportBytes = [UInt8]((try? encoder.encode(report)) ?? Data())
        var payload: [UInt8] = []
        var sections: [(offset: UInt64, count: UInt64)] = []
        func append(_ bytes: UnsafeRawBufferPointer) {
            while (IndexFileFormat.headerByteCount + payload.count) % IndexFileFormat.alignment != 0 {
                payload.append(0)
            }
            sections.append((UInt64(IndexFileFormat.headerByteCount + payload.count), UInt64(bytes.count)))
            payload.append(contentsOf: bytes)
        }
        var reserved = IndexFileFormat.Section.allCases.count * IndexFileFormat.alignment
        reserved += centroids.count * 4 + codec.cutoffs.count * 4 + codec.weights.count * 4
        reserved += cellOffsets.count * 8 + tokenDocuments.count * 4 + codes.count
        reserved += documentTokenOffsets.count * 8 + keyBytes.count + reportBytes.count
        payload.reserveCapacity(reserved)
        centroids.withUnsafeBytes { append($0) }
        codec.cutoffs.withUnsafeBytes { append($0) }
        codec.weights.withUnsafeBytes { append($0) }
        cellOffsets.withUnsafeBytes { append($0) }
        tokenDocuments.withUnsafeBytes { append($0) }
        codes.withUnsafeBytes { append($0) }
        documentTokenOffsets.withUnsafeBytes { append($0) }
        keyBytes.withUnsafeBytes { append($0) }
        reportBytes.withUnsafeBytes { append($0) }

        var header: [UInt8] = IndexFileFormat.magic
        func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) }
        }
        put(IndexFileFormat.version)
        put(UInt32(codec.dimension))
        put(UInt32(codec.bitCount))
        put(UInt32(centroidCount))
        put(UInt64(documentCount))
        put(UInt64(tokenCount))
        for section in sections {
            put(section.offset)
            put(section.count)
        }
        put(payload.withUnsafeBytes { IndexFileFormat.checksum($0) })
        put(header.withUnsafeBytes { IndexFileFormat.checksum($0) })
        header += [UInt8](repeating: 0, count: IndexFileFormat.headerByteCount - header.count)
        let written = header.withUnsafeBytes { headerBytes in
            payload.withUnsafeBytes { payloadBytes in
                Result { () throws(IndexError) in
                    try writeFileAtomically(path: path, chunks: [headerBytes, payloadBytes])
                }
            }
        }
        try written.get()
    }
}
