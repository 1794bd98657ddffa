import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when its one owner goes away.
///
/// The type is `~Copyable`, so exactly one owner unmaps the file; readers borrow its bytes through
/// ``withUnsafeBytes(_:)``. Pages are read from disk when first touched and can be dropped by the kernel under
/// memory pressure, so the resident memory of a mapped index stays near the part that queries touch. An empty
/// file cannot be mapped; it is represented with no mapping and zero bytes.
public struct MappedFile: ~Copyable, @unchecked Sendable {
    // @unchecked: the mapping is never written and lives until deinit, so sharing the base address across threads
    // is safe.

    /// The file's path, for error messages.
    public let path: String
    /// The file's size in bytes.
    public let byteCount: Int
    /// The mapping's base address; `nil` for an empty file.
    ///
    /// - Warning: Valid only while this value lives; an owner that hands it on must outlive every reader.
    package let baseAddress: UnsafeRawPointer?

    /// Maps the file at `path` read-only.
    /// - Parameter path: The file to map.
    /// - Throws: ``SystemCallError`` from `open`, `fstat` or `mmap`, naming `path` and the `errno` text.
    public init(path: String) throws(SystemCallError) {
        let (byteCount, baseAddress) = try Self.map(path)
        self.path = path
        self.byteCount = byteCount
        self.baseAddress = baseAddress
    }

    private static func map(_ path: String) throws(SystemCallError) -> (Int, UnsafeRawPointer?) {
        let descriptor = try Syscalls.openForReading(path)
        // The mapping stays valid after the descriptor is closed.
        defer { Syscalls.close(descriptor) }
        let byteCount = try Syscalls.fileByteCount(descriptor, path: path)
        guard byteCount > 0 else { return (0, nil) }
        return (byteCount, try Syscalls.mapReadOnly(descriptor, byteCount: byteCount, path: path))
    }

    deinit {
        if let baseAddress { Syscalls.unmap(baseAddress, byteCount: byteCount) }
    }

    /// Calls `body` with the file's bytes.
    /// - Parameter body: A closure that reads the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    /// - Warning: The buffer must not escape `body`: it is unmapped when the owner goes away.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: byteCount))
    }

    /// Drops this process's resident pages of the mapping (they stay in the page cache; the next touch maps
    /// them again), so that after a full read — a checksum at open — resident memory counts only what later
    /// reads touch.
    public func releaseResidentPages() {
        if let baseAddress { Syscalls.dropResidentPages(baseAddress, byteCount: byteCount) }
    }

    /// The bytes of the mapping resident in this process (`Rss` of its entry in `/proc/self/smaps`), or `nil`
    /// where that file does not exist or the file is empty.
    public func residentByteCount() -> Int? {
        guard let baseAddress else { return nil }
        // procfs files report size 0, so read to the end rather than by size.
        guard let bytes = try? Syscalls.readWholeFile("/proc/self/smaps") else { return nil }
        let smaps = String(decoding: bytes, as: UTF8.self)
        let start = UInt(bitPattern: baseAddress)
        var inMapping = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let first = line.first, first.isHexDigit,
                let address = UInt(line[..<dash], radix: 16)
            {
                inMapping = address == start
            } else if inMapping, line.hasPrefix("Rss:") {
                let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
                return kilobytes * 1024
            }
        }
        return nil
    }
}
