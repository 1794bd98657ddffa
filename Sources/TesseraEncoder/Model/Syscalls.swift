#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call and the `errno` it left.
struct SystemCallError: Error, Sendable {
    /// The call's name, for messages (`open`, `mmap`, …).
    var call: String
    /// The `errno` value the call left.
    var errorNumber: Int32

    /// Whether the failure means the file is not there.
    var isMissingFile: Bool { errorNumber == ENOENT || errorNumber == ENOTDIR }

    /// The C library's words for the error.
    var reason: String { String(cString: strerror(errorNumber)) }
}

/// Every system call the encoder makes, in one place.
///
/// Each wrapper retries when the call is interrupted by a signal (`EINTR`) and reports any other failure as a
/// ``SystemCallError``. Nothing outside this file calls `open`, `close`, `fstat`, `read`, `mmap` or `munmap`.
enum Syscalls {
    /// Opens a file for reading.
    /// - Parameter path: The file's path.
    /// - Returns: The file descriptor.
    /// - Throws: ``SystemCallError`` from `open`.
    static func openForReading(_ path: String) throws(SystemCallError) -> Int32 {
        while true {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 { return descriptor }
            if errno != EINTR { throw SystemCallError(call: "open", errorNumber: errno) }
        }
    }

    /// Closes a file descriptor. `close` is not retried on `EINTR`: on Linux the descriptor is released anyway.
    /// - Parameter descriptor: The descriptor to close.
    static func close(_ descriptor: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
    }

    /// Returns the size of an open file.
    /// - Parameter descriptor: An open file descriptor.
    /// - Returns: The file's size in bytes.
    /// - Throws: ``SystemCallError`` from `fstat`.
    static func fileByteCount(_ descriptor: Int32) throws(SystemCallError) -> Int {
        var status = stat()
        while fstat(descriptor, &status) != 0 {
            if errno != EINTR { throw SystemCallError(call: "fstat", errorNumber: errno) }
        }
        return Int(status.st_size)
    }

    /// Maps a whole file read-only and private.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - byteCount: The number of bytes to map; more than zero.
    /// - Returns: The mapping's base address.
    /// - Throws: ``SystemCallError`` from `mmap`.
    static func mapReadOnly(_ descriptor: Int32, byteCount: Int) throws(SystemCallError) -> UnsafeRawPointer {
        while true {
            let address = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0)
            if let address, address != MAP_FAILED { return UnsafeRawPointer(address) }
            if errno != EINTR { throw SystemCallError(call: "mmap", errorNumber: errno) }
        }
    }

    /// Unmaps a mapping made by ``mapReadOnly(_:byteCount:)``. A failure is ignored: there is nothing to recover.
    /// - Parameters:
    ///   - address: The mapping's base address.
    ///   - byteCount: The mapping's length in bytes.
    static func unmap(_ address: UnsafeRawPointer, byteCount: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: address), byteCount)
    }

    /// Reads a whole (small) file into memory, looping over partial reads.
    /// - Parameter path: The file's path.
    /// - Returns: The file's bytes.
    /// - Throws: ``SystemCallError`` from `open`, `fstat` or `read`.
    static func readWholeFile(_ path: String) throws(SystemCallError) -> [UInt8] {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(try fileByteCount(descriptor))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let readCount = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if readCount == 0 { return bytes }
            if readCount < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "read", errorNumber: errno)
            }
            bytes.append(contentsOf: chunk[0..<readCount])
        }
    }
}

extension Syscalls {
    /// Creates or replaces a file with `bytes`, looping over partial writes.
    /// - Parameters:
    ///   - path: The file's path.
    ///   - bytes: The new contents.
    /// - Throws: ``SystemCallError`` from `open` or `write`.
    static func writeWholeFile(_ path: String, bytes: [UInt8]) throws(SystemCallError) {
        var descriptor: Int32 = -1
        while descriptor < 0 {
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor < 0 && errno != EINTR { throw SystemCallError(call: "open", errorNumber: errno) }
        }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "write", errorNumber: errno)
            }
            written += count
        }
    }
}
