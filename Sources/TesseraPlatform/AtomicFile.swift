#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replacing a file so that a crash leaves either the old file or the whole new one, never a torn one.
///
/// The new contents go to a temporary file beside the target (``temporaryPath(for:)``, `<path>.tmp-<pid>`),
/// which is fsynced and renamed over the target; then the directory is fsynced so that the rename itself is
/// durable. A temporary left by a process killed before its rename is named so that it can be recognised and
/// removed (`*.tmp-*`).
public enum AtomicFile {
    /// The temporary file a replacement of `path` writes first.
    /// - Parameter path: The file to replace.
    /// - Returns: `<path>.tmp-<pid>`.
    public static func temporaryPath(for path: String) -> String { path + ".tmp-\(getpid())" }

    /// Replaces (or creates) the file at `path` with `bytes`.
    /// - Parameters:
    ///   - bytes: The new contents.
    ///   - path: The file to replace.
    /// - Throws: ``SystemCallError`` from `open`, `write`, `fsync` or `rename`; the target is then unchanged.
    public static func write(_ bytes: [UInt8], to path: String) throws(SystemCallError) {
        let result: Result<Void, SystemCallError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(SystemCallError) in try write(chunks: [buffer], to: path) }
        }
        try result.get()
    }

    /// Replaces (or creates) the file at `path` with the concatenation of `chunks`.
    /// - Throws: ``SystemCallError``; the target is then unchanged and the temporary removed.
    package static func write(chunks: [UnsafeRawBufferPointer], to path: String) throws(SystemCallError) {
        let temporary = temporaryPath(for: path)
        do {
            let descriptor = try Syscalls.openForWriting(temporary, truncate: true)
            defer { Syscalls.close(descriptor) }
            for chunk in chunks { try Syscalls.writeAll(descriptor, chunk, path: temporary) }
        } catch {
            try? Syscalls.unlink(temporary)
            throw error
        }
        try commit(temporaryPath: temporary, to: path)
    }

    /// Makes a finished temporary file the file at `path`: fsyncs it, renames it over `path` and fsyncs the
    /// directory. Use it when something else (a C library) writes the temporary file.
    /// - Parameters:
    ///   - temporary: The written temporary file, normally ``temporaryPath(for:)``.
    ///   - path: The file to replace.
    /// - Throws: ``SystemCallError`` from `open`, `fsync` or `rename`; the temporary is then removed and the
    ///   target unchanged. A failure to fsync the directory after the rename is not reported: the new file is
    ///   in place, and only its durability across a power loss is in doubt.
    public static func commit(temporaryPath temporary: String, to path: String) throws(SystemCallError) {
        do {
            try Syscalls.fsync(path: temporary)
            try Syscalls.rename(temporary, to: path)
        } catch {
            try? Syscalls.unlink(temporary)
            throw error
        }
        try? Syscalls.fsync(path: directory(of: path))
    }

    /// The directory holding `path` (`.` for a bare name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
