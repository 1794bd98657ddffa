/// A read-only memory mapping of a whole file, unmapped when the owner goes away.
///
/// The type is `~Copyable`, so exactly one owner unmaps the file; readers borrow its bytes through
/// ``withUnsafeBytes(_:)``.
struct MappedFile: ~Copyable {
    /// The file's path, for error messages.
    let path: String
    /// The file's size in bytes.
    let byteCount: Int
    /// The mapping's base address; `nil` for an empty file, which cannot be mapped.
    private let baseAddress: UnsafeRawPointer?

    /// Maps the file at `path`.
    /// - Parameter path: The file to map.
    /// - Throws: ``EncoderError`` `.missingFile` when the file is absent, `.malformedFile` for other failures.
    init(path: String) throws(EncoderError) {
        let (byteCount, baseAddress) = try Self.map(path)
        self.path = path
        self.byteCount = byteCount
        self.baseAddress = baseAddress
    }

    private static func map(_ path: String) throws(EncoderError) -> (Int, UnsafeRawPointer?) {
        do {
            let descriptor = try Syscalls.openForReading(path)
            // The mapping stays valid after the descriptor is closed.
            defer { Syscalls.close(descriptor) }
            let byteCount = try Syscalls.fileByteCount(descriptor)
            let baseAddress = byteCount > 0 ? try Syscalls.mapReadOnly(descriptor, byteCount: byteCount) : nil
            return (byteCount, baseAddress)
        } catch {
            throw EncoderError(systemCallError: error, path: path)
        }
    }

    deinit {
        if let baseAddress { Syscalls.unmap(baseAddress, byteCount: byteCount) }
    }

    /// Calls `body` with the file's bytes.
    /// - Parameter body: A closure that reads the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    /// - Warning: The buffer must not escape `body`: it is unmapped when the owner goes away.
    func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: byteCount))
    }
}

extension EncoderError {
    /// Wraps a failed system call on `path`: `.missingFile` when the file is absent, `.malformedFile` otherwise.
    init(systemCallError error: SystemCallError, path: String) {
        if error.isMissingFile {
            self.init(.missingFile, "no such file", location: Location(path: path))
        } else {
            self.init(.malformedFile, "\(error.call) failed: \(error.reason)", location: Location(path: path))
        }
    }

    /// Reads a small file whole, turning a failure into an ``EncoderError`` that names the file.
    static func readFile(_ path: String) throws(EncoderError) -> [UInt8] {
        do {
            return try Syscalls.readWholeFile(path)
        } catch {
            throw EncoderError(systemCallError: error, path: path)
        }
    }
}
