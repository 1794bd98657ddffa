#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system calls Tessera makes on files, in one place.
///
/// Each wrapper retries a call interrupted by a signal (`EINTR`), loops over partial reads and writes, and
/// reports any other failure as a ``SystemCallError`` naming the call and the file.
public enum Syscalls {
    /// Calls `body` until it returns something other than `-1` with `errno` `EINTR`.
    /// - Parameter body: The call; it returns a negative value and sets `errno` on failure.
    /// - Returns: The first result that is not an interrupted failure.
    package static func retryingInterrupted<Result: SignedInteger>(_ body: () -> Result) -> Result {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// Opens a file for reading.
    /// - Parameter path: The file's path.
    /// - Returns: The file descriptor.
    /// - Throws: ``SystemCallError`` from `open`.
    public static func openForReading(_ path: String) throws(SystemCallError) -> Int32 {
        let descriptor = retryingInterrupted { open(path, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else { throw SystemCallError(call: "open", errorNumber: errno, path: path) }
        return descriptor
    }

    /// Opens (creating when missing) a file for reading and writing, without truncating it.
    /// - Parameters:
    ///   - path: The file's path.
    ///   - truncate: Whether to empty the file.
    /// - Returns: The file descriptor.
    /// - Throws: ``SystemCallError`` from `open`.
    public static func openForWriting(_ path: String, truncate: Bool) throws(SystemCallError) -> Int32 {
        let flags = O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        let descriptor = retryingInterrupted { open(path, flags, 0o644) }
        guard descriptor >= 0 else { throw SystemCallError(call: "open", errorNumber: errno, path: path) }
        return descriptor
    }

    /// Closes a file descriptor. `close` is not retried on `EINTR`: on Linux the descriptor is released anyway.
    /// - Parameter descriptor: The descriptor to close.
    public static func close(_ descriptor: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
    }

    /// Returns the size of an open file.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - path: The file's path, for the error.
    /// - Returns: The file's size in bytes.
    /// - Throws: ``SystemCallError`` from `fstat`.
    public static func fileByteCount(_ descriptor: Int32, path: String? = nil) throws(SystemCallError) -> Int {
        var status = stat()
        guard retryingInterrupted({ fstat(descriptor, &status) }) == 0 else {
            throw SystemCallError(call: "fstat", errorNumber: errno, path: path)
        }
        return Int(status.st_size)
    }

    /// Reads up to `buffer.count` bytes at the descriptor's position.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - buffer: Where the bytes go.
    ///   - path: The file's path, for the error.
    /// - Returns: The number of bytes read; 0 at the end of the file.
    /// - Throws: ``SystemCallError`` from `read`.
    public static func read(
        _ descriptor: Int32,
        into buffer: inout [UInt8],
        path: String? = nil
    ) throws(SystemCallError) -> Int {
        let count = buffer.withUnsafeMutableBytes { bytes in
            retryingInterrupted { readFunction(descriptor, bytes.baseAddress, bytes.count) }
        }
        guard count >= 0 else { throw SystemCallError(call: "read", errorNumber: errno, path: path) }
        return count
    }

    /// Reads a whole (small) file into memory, looping over partial reads.
    /// - Parameter path: The file's path.
    /// - Returns: The file's bytes.
    /// - Throws: ``SystemCallError`` from `open`, `fstat` or `read`.
    public static func readWholeFile(_ path: String) throws(SystemCallError) -> [UInt8] {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(try fileByteCount(descriptor, path: path))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let readCount = try read(descriptor, into: &chunk, path: path)
            if readCount == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<readCount])
        }
    }

    /// Reads up to `byteCount` bytes at `offset` without moving the descriptor's position.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - byteCount: The most bytes to read.
    ///   - offset: Where to read from.
    /// - Returns: The bytes read (fewer at the end of the file).
    /// - Throws: ``SystemCallError`` from `pread`.
    public static func read(
        _ descriptor: Int32,
        byteCount: Int,
        atOffset offset: Int
    ) throws(SystemCallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: byteCount)
        let count = buffer.withUnsafeMutableBytes { bytes in
            retryingInterrupted { pread(descriptor, bytes.baseAddress, bytes.count, off_t(offset)) }
        }
        guard count >= 0 else { throw SystemCallError(call: "pread", errorNumber: errno) }
        return Array(buffer[0..<count])
    }

    /// Writes all of `bytes` at the descriptor's position, looping over partial writes.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - bytes: The bytes to write.
    ///   - path: The file's path, for the error.
    /// - Throws: ``SystemCallError`` from `write`.
    public static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String? = nil) throws(SystemCallError) {
        let result: Result<Void, SystemCallError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(SystemCallError) in try writeAll(descriptor, buffer, path: path) }
        }
        try result.get()
    }

    /// Writes all of `buffer` at the descriptor's position, looping over partial writes.
    package static func writeAll(
        _ descriptor: Int32,
        _ buffer: UnsafeRawBufferPointer,
        path: String? = nil
    ) throws(SystemCallError) {
        var offset = 0
        while offset < buffer.count {
            let written = retryingInterrupted {
                writeFunction(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            guard written >= 0 else { throw SystemCallError(call: "write", errorNumber: errno, path: path) }
            offset += written
        }
    }

    /// Writes all of `bytes` at `offset` without moving the descriptor's position.
    /// - Throws: ``SystemCallError`` from `pwrite`.
    public static func write(_ descriptor: Int32, _ bytes: [UInt8], atOffset offset: Int) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                retryingInterrupted {
                    pwrite(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                }
            }
            guard written >= 0 else { throw SystemCallError(call: "pwrite", errorNumber: errno) }
            done += written
        }
    }

    /// Sets a file's size.
    /// - Throws: ``SystemCallError`` from `ftruncate`.
    public static func truncate(_ descriptor: Int32, byteCount: Int) throws(SystemCallError) {
        guard retryingInterrupted({ ftruncate(descriptor, off_t(byteCount)) }) == 0 else {
            throw SystemCallError(call: "ftruncate", errorNumber: errno)
        }
    }

    /// Flushes a file's data and metadata to the device.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - path: The file's path, for the error.
    /// - Throws: ``SystemCallError`` from `fsync`.
    public static func fsync(_ descriptor: Int32, path: String? = nil) throws(SystemCallError) {
        guard retryingInterrupted({ fsyncFunction(descriptor) }) == 0 else {
            throw SystemCallError(call: "fsync", errorNumber: errno, path: path)
        }
    }

    /// Flushes a file, by path, to the device.
    /// - Throws: ``SystemCallError`` from `open` or `fsync`.
    public static func fsync(path: String) throws(SystemCallError) {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        try fsync(descriptor, path: path)
    }

    /// Renames `source` to `destination`, replacing it atomically.
    /// - Throws: ``SystemCallError`` from `rename`, naming `destination`.
    public static func rename(_ source: String, to destination: String) throws(SystemCallError) {
        guard retryingInterrupted({ renameFunction(source, destination) }) == 0 else {
            throw SystemCallError(call: "rename", errorNumber: errno, path: destination)
        }
    }

    /// Removes a file; a missing file is not an error.
    /// - Throws: ``SystemCallError`` from `unlink`.
    public static func unlink(_ path: String) throws(SystemCallError) {
        guard retryingInterrupted({ unlinkFunction(path) }) == 0 || errno == ENOENT else {
            throw SystemCallError(call: "unlink", errorNumber: errno, path: path)
        }
    }

    /// Takes an exclusive advisory lock (`flock`) without waiting.
    /// - Throws: ``SystemCallError`` from `flock` (``SystemCallError/isWouldBlock`` when another process holds
    ///   it).
    public static func lockExclusivelyWithoutWaiting(_ descriptor: Int32, path: String? = nil) throws(SystemCallError) {
        guard retryingInterrupted({ flock(descriptor, LOCK_EX | LOCK_NB) }) == 0 else {
            throw SystemCallError(call: "flock", errorNumber: errno, path: path)
        }
    }

    /// Maps a whole file read-only and private.
    /// - Parameters:
    ///   - descriptor: An open file descriptor.
    ///   - byteCount: The number of bytes to map; more than zero.
    ///   - path: The file's path, for the error.
    /// - Returns: The mapping's base address.
    /// - Throws: ``SystemCallError`` from `mmap`.
    package static func mapReadOnly(
        _ descriptor: Int32,
        byteCount: Int,
        path: String? = nil
    ) throws(SystemCallError) -> UnsafeRawPointer {
        while true {
            let address = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0)
            if let address, address != MAP_FAILED { return UnsafeRawPointer(address) }
            if errno != EINTR { throw SystemCallError(call: "mmap", errorNumber: errno, path: path) }
        }
    }

    /// Unmaps a mapping made by ``mapReadOnly(_:byteCount:path:)``. A failure is ignored: there is nothing to
    /// recover.
    package static func unmap(_ address: UnsafeRawPointer, byteCount: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: address), byteCount)
    }

    /// Drops this process's resident pages of a mapping (`madvise(MADV_DONTNEED)`); a failure is ignored.
    package static func dropResidentPages(_ address: UnsafeRawPointer, byteCount: Int) {
        _ = madvise(UnsafeMutableRawPointer(mutating: address), byteCount, MADV_DONTNEED)
    }
}

// The C library's functions under names that the wrappers above do not shadow: at file scope, `read` and the
// rest are the C library's own.
private func readFunction(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
private func writeFunction(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
private func fsyncFunction(_ descriptor: Int32) -> Int32 { fsync(descriptor) }
private func renameFunction(_ source: String, _ destination: String) -> Int32 { rename(source, destination) }
private func unlinkFunction(_ path: String) -> Int32 { unlink(path) }
