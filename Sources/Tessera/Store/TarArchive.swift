import Foundation
import TesseraPlatform

/// A POSIX ustar archive of plain files, as collection snapshots are written (see ``CollectionSnapshot``).
///
/// Each file is a 512-byte header (name, octal size, header checksum, `ustar` magic) followed by its bytes padded
/// to 512; two zero blocks end the archive. Only what snapshots need is read or written: regular files with a
/// one-component name (no directories, links or devices, no `/`, never `.` or `..`). A size beyond the 11 octal
/// digits of the header (8 GiB) is written in the base-256 form GNU tar and libarchive read. Any `tar` can list
/// and unpack the result.
enum TarArchive {
    static let blockByteCount = 512

    /// Checks an entry name: one path component of at most 100 bytes, printable ASCII, not hidden, never `.` or `..`.
    /// - Throws: ``TesseraError/Code/corrupted`` naming it.
    static func checkName(_ name: String, archive: String, offset: Int) throws(TesseraError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 100, !name.hasPrefix("."), !bytes.contains(UInt8(ascii: "/")),
            bytes.allSatisfy({ (0x21...0x7e).contains($0) })
        else {
            throw TesseraError(
                .corrupted,
                "the archive holds an entry named '\(name)', which is not a plain file name",
                location: .init(path: archive, offset: offset)
            )
        }
    }

    /// The 512-byte header of a regular file.
    static func header(name: String, byteCount: Int, modificationTime: Int) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockByteCount)
        func put(_ text: String, at offset: Int) {
            for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        if byteCount < 0o777_7777_7777 {
            put(octal(byteCount, width: 12), at: 124)
        } else {
            // Base-256: the first byte's high bit set, the value big-endian in the remaining 11 bytes.
            block[124] = 0x80
            for index in 0..<8 { block[135 - index] = UInt8(truncatingIfNeeded: byteCount >> (8 * index)) }
        }
        put(octal(modificationTime, width: 12), at: 136)
        block[156] = UInt8(ascii: "0")
        put("ustar", at: 257)
        put("00", at: 263)
        // The checksum: the sum of the header's bytes with its own field read as eight spaces.
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let sum = block.reduce(0) { $0 + Int($1) }
        put(octal(sum, width: 7), at: 148)
        block[155] = UInt8(ascii: " ")
        return block
    }

    /// Reads a header: the entry's name and size, `nil` for an end-of-archive (zero) block.
    /// - Throws: ``TesseraError/Code/corrupted`` for a damaged header or an entry that is not a regular file.
    static func parseHeader(
        _ block: [UInt8],
        archive: String,
        offset: Int
    ) throws(TesseraError) -> (name: String, byteCount: Int)? {
        if block.allSatisfy({ $0 == 0 }) { return nil }
        func corrupted(_ message: String) -> TesseraError {
            TesseraError(.corrupted, message, location: .init(path: archive, offset: offset))
        }
        func field(_ range: Range<Int>) -> [UInt8] {
            Array(block[range].prefix { $0 != 0 })
        }
        func number(_ range: Range<Int>) -> Int? {
            if block[range.lowerBound] & 0x80 != 0 {
                var value = 0
                for byte in block[(range.lowerBound + 1)..<range.upperBound] {
                    guard value >> 55 == 0 else { return nil }
                    value = value << 8 | Int(byte)
                }
                return value
            }
            let text = String(decoding: field(range), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            return Int(text, radix: 8)
        }
        guard block[257..<262].elementsEqual("ustar".utf8) else {
            throw corrupted("not a tar archive (no ustar header at offset \(offset))")
        }
        var sum = 0
        for (index, byte) in block.enumerated() { sum += (148..<156).contains(index) ? 32 : Int(byte) }
        guard let recorded = number(148..<156), recorded == sum else {
            throw corrupted("a tar header's checksum does not match its bytes: the archive is damaged")
        }
        let prefix = field(345..<500)
        let name = String(
            decoding: (prefix.isEmpty ? [] : prefix + [UInt8(ascii: "/")]) + field(0..<100),
            as: UTF8.self
        )
        guard block[156] == UInt8(ascii: "0") || block[156] == 0 else {
            throw corrupted("the archive's entry '\(name)' is not a regular file")
        }
        guard let byteCount = number(124..<136), byteCount >= 0 else {
            throw corrupted("the archive's entry '\(name)' has an unreadable size")
        }
        try checkName(name, archive: archive, offset: offset)
        return (name, byteCount)
    }

    /// The zero bytes that pad `byteCount` to a whole block.
    static func padding(_ byteCount: Int) -> Int { (blockByteCount - byteCount % blockByteCount) % blockByteCount }
}

/// Writes a ``TarArchive`` to a file, hashing every byte with SHA-256 on the way.
struct TarWriter: ~Copyable {
    let path: String
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var hash = SHA256()
    private(set) var byteCount = 0
    private static let bufferByteCount = 1 << 20

    /// Creates (or truncates) the file.
    init(path: String) throws(TesseraError) {
        self.path = path
        do {
            descriptor = try Syscalls.openForWriting(path, truncate: true)
        } catch {
            throw TesseraError(.io, "cannot create the snapshot file: \(error.reason)", location: .init(path: path))
        }
        buffer.reserveCapacity(Self.bufferByteCount)
    }

    deinit { Syscalls.close(descriptor) }

    private mutating func emit(_ bytes: UnsafeRawBufferPointer) throws(TesseraError) {
        hash.update(bytes)
        byteCount += bytes.count
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferByteCount { try flush() }
    }

    private mutating func emit(_ bytes: [UInt8]) throws(TesseraError) {
        let result: Result<Void, TesseraError> = bytes.withUnsafeBytes { raw in
            Result { () throws(TesseraError) in try emit(raw) }
        }
        try result.get()
    }

    private mutating func flush() throws(TesseraError) {
        do {
            try Syscalls.writeAll(descriptor, buffer, path: path)
        } catch {
            throw TesseraError(.io, "cannot write the snapshot file: \(error.reason)", location: .init(path: path))
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Adds a file with the given bytes.
    mutating func append(name: String, bytes: [UInt8], modificationTime: Int) throws(TesseraError) {
        try emit(TarArchive.header(name: name, byteCount: bytes.count, modificationTime: modificationTime))
        try emit(bytes)
        try emit([UInt8](repeating: 0, count: TarArchive.padding(bytes.count)))
    }

    /// Adds a file read from an open descriptor, from its start to `byteCount`.
    /// - Returns: The file's ``Checksum``.
    /// - Throws: ``TesseraError/Code/io`` when it cannot be read or is shorter than `byteCount`.
    mutating func append(
        name: String,
        descriptor source: Int32,
        byteCount fileByteCount: Int,
        modificationTime: Int,
        sourcePath: String
    ) throws(TesseraError) -> UInt64 {
        try emit(TarArchive.header(name: name, byteCount: fileByteCount, modificationTime: modificationTime))
        var checksum = Checksum.Accumulator(byteCount: fileByteCount)
        var offset = 0
        while offset < fileByteCount {
            let chunk: [UInt8]
            do {
                chunk = try Syscalls.read(source, byteCount: min(1 << 20, fileByteCount - offset), atOffset: offset)
            } catch {
                throw TesseraError(.io, "cannot read \(name): \(error.reason)", location: .init(path: sourcePath))
            }
            guard !chunk.isEmpty else {
                throw TesseraError(
                    .io,
                    "\(name) ended at byte \(offset) of \(fileByteCount) while it was copied",
                    location: .init(path: sourcePath)
                )
            }
            chunk.withUnsafeBytes { checksum.add($0) }
            try emit(chunk)
            offset += chunk.count
        }
        try emit([UInt8](repeating: 0, count: TarArchive.padding(fileByteCount)))
        return checksum.value
    }

    /// Ends the archive (two zero blocks), writes it out and fsyncs it.
    /// - Returns: The archive's size and SHA-256 digest (lower-case hexadecimal).
    mutating func finish() throws(TesseraError) -> (byteCount: Int, sha256: String) {
        try emit([UInt8](repeating: 0, count: 2 * TarArchive.blockByteCount))
        try flush()
        do {
            try Syscalls.fsync(descriptor, path: path)
        } catch {
            throw TesseraError(.io, "cannot flush the snapshot file: \(error.reason)", location: .init(path: path))
        }
        return (byteCount, hash.finalizeHex())
    }
}
