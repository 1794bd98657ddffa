import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when the last reference goes.
///
/// Pages are read from disk when first touched and can be dropped by the kernel under memory pressure, so the
/// resident memory of a mapped index stays near the part that queries touch.
final class MappedFile: @unchecked Sendable {
    // The mapping is never written and lives until deinit, so sharing the base address across threads is safe.
    let base: UnsafeRawPointer
    let byteCount: Int
    let path: String

    /// Maps `path` read-only.
    /// - Throws: ``IndexError/Code/io`` when the file cannot be opened, sized or mapped;
    ///   ``IndexError/Code/corrupted`` for an empty file.
    init(path: String) throws(IndexError) {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw IndexError(.io, "cannot open: \(String(cString: strerror(errno)))", path: path)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw IndexError(.io, "cannot stat: \(String(cString: strerror(errno)))", path: path)
        }
        byteCount = Int(status.st_size)
        guard byteCount > 0 else { throw IndexError(.corrupted, "the file is empty", path: path, offset: 0) }
        guard let address = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED
        else {
            throw IndexError(.io, "cannot map: \(String(cString: strerror(errno)))", path: path)
        }
        base = UnsafeRawPointer(address)
    }

    /// Drops this process's resident pages of the mapping (they stay in the page cache; the next touch maps
    /// them again), so that after a full read — the checksum at open — resident memory counts only what
    /// searches touch.
    func releaseResidentPages() {
        _ = madvise(UnsafeMutableRawPointer(mutating: base), byteCount, MADV_DONTNEED)
    }

    /// The bytes of the mapping resident in this process (`Rss` of its entry in `/proc/self/smaps`), or `nil`
    /// where that file does not exist.
    func residentByteCount() -> Int? {
        // Read to the end: procfs files report size 0, so a read sized by stat would see nothing.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps") else { return nil }
        defer { try? handle.close() }
        let smaps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let start = UInt(bitPattern: base)
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

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), byteCount)
    }
}

/// Writes `bytes` chunks to `path` through a temporary file in the same directory: written, fsynced, renamed
/// over `path`, and the directory fsynced, so that a crash leaves either the old file or the whole new one.
/// - Throws: ``IndexError/Code/io``.
func writeFileAtomically(path: String, chunks: [UnsafeRawBufferPointer]) throws(IndexError) {
    let temporary = path + ".tmp-\(getpid())"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard descriptor >= 0 else {
        throw IndexError(.io, "cannot create: \(String(cString: strerror(errno)))", path: temporary)
    }
    var failure: IndexError?
    outer: for chunk in chunks {
        var offset = 0
        while offset < chunk.count {
            let written = write(descriptor, chunk.baseAddress! + offset, chunk.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = IndexError(.io, "write failed: \(String(cString: strerror(errno)))", path: temporary)
                break outer
            }
            offset += written
        }
    }
    if failure == nil, fsync(descriptor) != 0 {
        failure = IndexError(.io, "fsync failed: \(String(cString: strerror(errno)))", path: temporary)
    }
    close(descriptor)
    if let failure {
        unlink(temporary)
        throw failure
    }
    guard rename(temporary, path) == 0 else {
        let error = IndexError(.io, "rename failed: \(String(cString: strerror(errno)))", path: path)
        unlink(temporary)
        throw error
    }
    let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
    if directoryDescriptor >= 0 {
        fsync(directoryDescriptor)
        close(directoryDescriptor)
    }
}
