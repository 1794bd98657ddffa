import Foundation
import TesseraPlatform

/// The persisted form of one BM25 index (one choice of payload fields and analyzer): the term dictionary, the
/// postings, each document's length and text fingerprint, and the collection statistics, checksummed.
///
/// Documents are numbered in the file (0 ..< ``documentIDs``.count) and named by their point ids, never by
/// slot, because slot numbers differ between processes and change at every compaction. Loading maps each file
/// document to the slot that holds its point *with the same text* (``TextFingerprint``): a point replaced,
/// edited or deleted since the file was written is left out and, when live, analysed again (see
/// ``TextIndexState``), so that the loaded index is exactly the one a fresh build of the current collection
/// would give.
///
/// ## Layout
///
/// All integers little-endian; no padding.
///
/// | bytes | contents |
/// |---|---|
/// | 8 | magic `TSRBM25` followed by a zero byte |
/// | 4 | format version (1) |
/// | 4 | ``analyzerRevision`` of the writer |
/// | 8 × 7 | document count D, term count T, posting count P, total length (Σ document lengths), key bytes K, id bytes I, term bytes S |
/// | K | the index's key (fields and analyzer), UTF-8 |
/// | 4 × (D + 1), I | id offsets, then the ids' sort keys (``PointID/sortKey``) |
/// | 4 × D | document lengths (terms, repeats counted) |
/// | 16 × D | text fingerprints |
/// | 4 × (T + 1), S | term offsets, then the terms, UTF-8, strictly increasing in `String` order |
/// | 8 × (T + 1) | per term, the index of its first posting (the last entry is P) |
/// | 4 × P, 4 × P | postings' documents (increasing within a term), then their term frequencies |
/// | 8 | ``checksum(_:)`` of every byte before it |
///
/// A file whose size does not match its header (torn), whose checksum does not match (altered), or whose
/// contents are inconsistent (offsets out of order, a posting to a document that does not exist, lengths that
/// are not the sum of their term frequencies) is refused with ``TesseraError/Code/corrupted``; the store then
/// rebuilds the index from the payloads. Any change of one 8-byte word of the body changes the checksum (each
/// step of the hash is a bijection of the running state), so a flipped byte is always detected.
struct BM25File: Sendable, Equatable {
    /// The file's first bytes.
    static let magic: [UInt8] = Array("TSRBM25".utf8) + [0]
    /// The layout's version.
    static let formatVersion: UInt32 = 1
    /// The revision of ``TextAnalyzer`` and ``PorterStemmer`` output. It must change whenever they turn some
    /// text into other terms than before: a file of another revision is not used (the index is rebuilt).
    static let analyzerRevision: UInt32 = 1
    /// Bytes before the key: magic, two 4-byte fields, seven 8-byte counts.
    static let headerByteCount = 8 + 4 + 4 + 8 * 7

    /// The fields and analyzer this index is for (``TextIndexState/key(fields:analyzer:)``).
    var key: String
    /// Each file document's point.
    var documentIDs: [PointID]
    /// Each file document's term count.
    var documentLengths: [UInt32]
    /// Each file document's text fingerprint.
    var documentFingerprints: [TextFingerprint]
    /// The terms, strictly increasing.
    var terms: [String]
    /// Per term, the index of its first posting; `terms.count + 1` entries.
    var postingStarts: [Int]
    /// Postings' file documents, term by term.
    var postingDocuments: [UInt32]
    /// Postings' term frequencies.
    var postingFrequencies: [UInt32]

    /// A file's contents.
    init(
        key: String,
        documentIDs: [PointID],
        documentLengths: [UInt32],
        documentFingerprints: [TextFingerprint],
        terms: [String],
        postingStarts: [Int],
        postingDocuments: [UInt32],
        postingFrequencies: [UInt32]
    ) {
        self.key = key
        self.documentIDs = documentIDs
        self.documentLengths = documentLengths
        self.documentFingerprints = documentFingerprints
        self.terms = terms
        self.postingStarts = postingStarts
        self.postingDocuments = postingDocuments
        self.postingFrequencies = postingFrequencies
    }

    /// The sum of the document lengths.
    var totalLength: Int { documentLengths.reduce(0) { $0 + Int($1) } }

    /// The file's bytes, checksum included.
    /// - Complexity: O(file size).
    func encoded() -> [UInt8] {
        let idKeys = documentIDs.map { [UInt8]($0.sortKey) }
        let termBytes = terms.map { Array($0.utf8) }
        let keyBytes = Array(key.utf8)
        var writer = ByteWriter()
        writer.bytes.reserveCapacity(
            Self.headerByteCount + keyBytes.count + 4 * (documentIDs.count + 1) + idKeys.count * 17
                + 20 * documentIDs.count + 4 * (terms.count + 1) + termBytes.reduce(0) { $0 + $1.count }
                + 8 * (terms.count + 1) + 8 * postingDocuments.count + 8
        )
        writer.bytes += Self.magic
        writer.append(Self.formatVersion)
        writer.append(Self.analyzerRevision)
        for count in [
            documentIDs.count, terms.count, postingDocuments.count, totalLength, keyBytes.count,
            idKeys.reduce(0) { $0 + $1.count }, termBytes.reduce(0) { $0 + $1.count },
        ] {
            writer.append(UInt64(count))
        }
        writer.bytes += keyBytes
        writer.appendOffsets(of: idKeys)
        for id in idKeys { writer.bytes += id }
        for length in documentLengths { writer.append(length) }
        for fingerprint in documentFingerprints {
            writer.append(fingerprint.low)
            writer.append(fingerprint.high)
        }
        writer.appendOffsets(of: termBytes)
        for term in termBytes { writer.bytes += term }
        for start in postingStarts { writer.append(UInt64(start)) }
        for document in postingDocuments { writer.append(document) }
        for frequency in postingFrequencies { writer.append(frequency) }
        let sum = writer.bytes.withUnsafeBytes { Self.checksum($0) }
        writer.append(sum)
        return writer.bytes
    }

    /// Reads and checks a file.
    /// - Parameters:
    ///   - path: The file.
    ///   - key: The key the index must have.
    /// - Throws: ``TesseraError/Code/corrupted`` for a torn, altered or inconsistent file or one of another
    ///   key or revision, ``TesseraError/Code/io`` when it cannot be read; both name the file.
    /// - Complexity: O(file size): the whole file is checksummed, then copied out of the mapping.
    init(path: String, key: String) throws(TesseraError) {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch {
            throw TesseraError(
                .io,
                "the BM25 index file cannot be read",
                location: .init(path: path),
                cause: "\(error)"
            )
        }
        self = try mapped.withUnsafeBytes { bytes throws(TesseraError) in
            try BM25File(decoding: bytes, key: key, path: path)
        }
    }

    /// Decodes and checks a file's bytes (see ``init(path:key:)``).
    init(decoding bytes: UnsafeRawBufferPointer, key expectedKey: String, path: String) throws(TesseraError) {
        func corrupted(_ message: String, at offset: Int) -> TesseraError {
            TesseraError(
                .corrupted,
                "the BM25 index file \(message); the index is rebuilt from the payloads",
                location: .init(path: path, offset: offset)
            )
        }
        guard bytes.count >= Self.headerByteCount + 8 else {
            throw corrupted("is \(bytes.count) bytes, shorter than its header", at: bytes.count)
        }
        var reader = ByteReader(bytes: bytes)
        guard Array(bytes[0..<8]) == Self.magic else { throw corrupted("does not start with its magic", at: 0) }
        reader.offset = 8
        let format = reader.uint32()
        guard format == Self.formatVersion else { throw corrupted("has format \(format), not 1", at: 8) }
        let revision = reader.uint32()
        guard revision == Self.analyzerRevision else {
            throw corrupted("was written by analyzer revision \(revision), not \(Self.analyzerRevision)", at: 12)
        }
        var counts: [Int] = []
        for _ in 0..<7 {
            let count = reader.uint64()
            // Each count is at most the file size (which bounds every sum below far from overflow).
            guard count <= UInt64(bytes.count) else {
                throw corrupted("has a count (\(count)) larger than the file", at: reader.offset - 8)
            }
            counts.append(Int(count))
        }
        let (documentCount, termCount, postingCount, totalLength, keyCount, idCount, termByteCount) = (
            counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]
        )
        let expected =
            Self.headerByteCount + keyCount + 4 * (documentCount + 1) + idCount + 20 * documentCount
            + 4 * (termCount + 1) + termByteCount + 8 * (termCount + 1) + 8 * postingCount + 8
        guard expected == bytes.count else {
            throw corrupted("is \(bytes.count) bytes, its header says \(expected) (torn or altered)", at: bytes.count)
        }
        let storedSum = bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self).littleEndian
        guard Self.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)])) == storedSum else {
            throw corrupted("fails its checksum (altered)", at: bytes.count - 8)
        }
        let keyBytes = reader.bytes(keyCount)
        guard String(decoding: keyBytes, as: UTF8.self) == expectedKey else {
            throw corrupted("is for other fields or another analyzer", at: Self.headerByteCount)
        }
        key = expectedKey

        let idOffsetsAt = reader.offset
        guard let idOffsets = Self.offsets(&reader, count: documentCount, byteCount: idCount) else {
            throw corrupted("has id offsets out of order", at: idOffsetsAt)
        }
        let idBytes = reader.offset
        var ids: [PointID] = []
        ids.reserveCapacity(documentCount)
        var seen = Set<PointID>(minimumCapacity: documentCount)
        for document in 0..<documentCount {
            let start = idBytes + idOffsets[document]
            let keyData = Data(bytes: bytes.baseAddress! + start, count: idOffsets[document + 1] - idOffsets[document])
            guard let id = try? PointID(sortKey: keyData), seen.insert(id).inserted else {
                throw corrupted("has a bad or repeated point id", at: start)
            }
            ids.append(id)
        }
        documentIDs = ids
        reader.offset += idCount

        let lengthsAt = reader.offset
        documentLengths = reader.uint32s(documentCount)
        guard documentLengths.reduce(0, { $0 + Int($1) }) == totalLength else {
            throw corrupted("has document lengths that do not add up to its total", at: lengthsAt)
        }
        var fingerprints: [TextFingerprint] = []
        fingerprints.reserveCapacity(documentCount)
        for _ in 0..<documentCount {
            let low = reader.uint64()
            fingerprints.append(TextFingerprint(low: low, high: reader.uint64()))
        }
        documentFingerprints = fingerprints

        let termOffsetsAt = reader.offset
        guard let termOffsets = Self.offsets(&reader, count: termCount, byteCount: termByteCount) else {
            throw corrupted("has term offsets out of order", at: termOffsetsAt)
        }
        let termBytes = reader.offset
        var terms: [String] = []
        terms.reserveCapacity(termCount)
        for term in 0..<termCount {
            let start = termBytes + termOffsets[term]
            let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<(termBytes + termOffsets[term + 1])])
            guard let text = String(validating: slice, as: UTF8.self), !text.isEmpty,
                terms.last.map({ $0 < text }) ?? true
            else {
                throw corrupted("has a term that is empty, not UTF-8 or out of order", at: start)
            }
            terms.append(text)
        }
        self.terms = terms
        reader.offset += termByteCount

        let startsAt = reader.offset
        let starts = reader.uint64s(termCount + 1).map { Int(truncatingIfNeeded: $0) }
        guard starts.first == 0, starts.last == postingCount, zip(starts, starts.dropFirst()).allSatisfy({ $0 <= $1 })
        else {
            throw corrupted("has posting starts out of order", at: startsAt)
        }
        postingStarts = starts
        let postingsAt = reader.offset
        postingDocuments = reader.uint32s(postingCount)
        postingFrequencies = reader.uint32s(postingCount)
        var frequencySums = [Int](repeating: 0, count: documentCount)
        for term in 0..<termCount {
            var previous = -1
            for position in starts[term]..<starts[term + 1] {
                let document = Int(postingDocuments[position])
                let frequency = postingFrequencies[position]
                guard document > previous, document < documentCount, frequency > 0 else {
                    throw corrupted("has a bad posting", at: postingsAt + 4 * position)
                }
                frequencySums[document] += Int(frequency)
                previous = document
            }
        }
        guard zip(frequencySums, documentLengths).allSatisfy({ $0 == Int($1) }) else {
            throw corrupted("has term frequencies that do not add up to the document lengths", at: postingsAt)
        }
    }

    /// Reads `count + 1` offsets that start at 0, never decrease and end at `byteCount`.
    private static func offsets(_ reader: inout ByteReader, count: Int, byteCount: Int) -> [Int]? {
        let offsets = reader.uint32s(count + 1).map(Int.init)
        guard offsets.first == 0, offsets.last == byteCount, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 })
        else { return nil }
        return offsets
    }

    /// A 64-bit checksum of `bytes`: each 8-byte word (the last one zero-padded) is mixed into the state with a
    /// bijective step (xor, then an odd multiply and xor-shifts), so that changing any one word always changes
    /// the result, and the byte count is mixed in last, so that a shorter or longer file does too.
    /// - Complexity: O(bytes); about 1 ns per word.
    static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0x5453_5242_4D32_3501) -> UInt64 {
        var state = seed
        let wordCount = bytes.count / 8
        for word in 0..<wordCount {
            state = mix(state ^ bytes.loadUnaligned(fromByteOffset: 8 * word, as: UInt64.self).littleEndian)
        }
        var tail: UInt64 = 0
        for index in (8 * wordCount)..<bytes.count {
            tail |= UInt64(bytes[index]) << (8 * UInt64(index - 8 * wordCount))
        }
        state = mix(state ^ tail)
        return mix(state ^ UInt64(bytes.count))
    }

    /// SplitMix64's finaliser: a bijection of `UInt64` with good avalanche.
    private static func mix(_ value: UInt64) -> UInt64 {
        // Wrapping multiplication is the mixing step (modulo 2⁶⁴, invertible because the factors are odd).
        var z = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A 128-bit fingerprint of a document's text (two ``BM25File/checksum(_:seed:)`` values with different seeds)
/// that tells whether a persisted document still has the text it was indexed with: equal text gives equal terms,
/// and two different texts share a fingerprint with a probability near 2⁻¹²⁸.
struct TextFingerprint: Hashable, Sendable {
    var low: UInt64
    var high: UInt64

    init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    /// The fingerprint of a text.
    init(of text: String) {
        var text = text
        (low, high) = text.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            return (
                BM25File.checksum(bytes, seed: 0x7465_7874_6C6F_7731),
                BM25File.checksum(bytes, seed: 0x7465_7874_6869_6732)
            )
        }
    }
}

/// Appends little-endian integers to a byte array.
private struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func append(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }

    /// Appends `parts.count + 1` offsets: where each part starts, then where the last ends.
    ///
    /// Traps when the parts add up to 4 GiB or more (ids and terms are a few bytes each).
    mutating func appendOffsets(of parts: [[UInt8]]) {
        var offset: UInt32 = 0
        append(offset)
        for part in parts {
            offset += UInt32(part.count)
            append(offset)
        }
    }
}

/// Reads little-endian integers from a buffer whose size the caller has checked against everything it reads.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    mutating func uint32() -> UInt32 {
        defer { offset += 4 }
        return bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
    }

    mutating func uint64() -> UInt64 {
        defer { offset += 8 }
        return bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Traps when the buffer holds fewer than `count` values from the offset on.
    mutating func uint32s(_ count: Int) -> [UInt32] {
        precondition(offset + 4 * count <= bytes.count)
        let start = offset
        offset += 4 * count
        return (0..<count).map { bytes.loadUnaligned(fromByteOffset: start + 4 * $0, as: UInt32.self).littleEndian }
    }

    /// Traps when the buffer holds fewer than `count` values from the offset on.
    mutating func uint64s(_ count: Int) -> [UInt64] {
        precondition(offset + 8 * count <= bytes.count)
        let start = offset
        offset += 8 * count
        return (0..<count).map { bytes.loadUnaligned(fromByteOffset: start + 8 * $0, as: UInt64.self).littleEndian }
    }
}
