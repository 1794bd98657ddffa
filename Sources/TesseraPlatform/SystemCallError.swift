#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call, the `errno` it left, and the file it was about.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call's name, for messages (`open`, `mmap`, `rename`, …).
    public var call: String
    /// The `errno` value the call left.
    public var errorNumber: Int32
    /// The file the call was about, when there is one.
    public var path: String?

    /// Creates an error.
    /// - Parameters:
    ///   - call: The call's name.
    ///   - errorNumber: The `errno` it left.
    ///   - path: The file it was about.
    public init(call: String, errorNumber: Int32, path: String? = nil) {
        self.call = call
        self.errorNumber = errorNumber
        self.path = path
    }

    /// Whether the failure means the file is not there.
    public var isMissingFile: Bool { errorNumber == ENOENT || errorNumber == ENOTDIR }

    /// Whether the failure means another process holds a lock (`flock` with `LOCK_NB`).
    public var isWouldBlock: Bool { errorNumber == EWOULDBLOCK || errorNumber == EAGAIN }

    /// The C library's words for the error (`strerror`).
    public var reason: String { String(cString: strerror(errorNumber)) }

    /// `<call> failed on <path>: <reason>`.
    public var description: String {
        if let path { return "\(call) failed on \(path): \(reason)" }
        return "\(call) failed: \(reason)"
    }
}
