import Foundation
import Synchronization
import TesseraPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive, advisory lock on a file (`flock`), held by one process at a time: the rule that one process owns
/// a collection (and one server a data folder), as PostgreSQL refuses a second postmaster on one data directory.
///
/// The lock is taken without waiting; when another process holds it, ``acquire(file:what:)`` throws an error
/// that names the holder's process id (written into the file by whoever holds it). The operating system releases
/// the lock when the holder exits, however it exits, so a killed process never leaves a stale lock behind.
///
/// Within one process the lock is shared: acquiring a file the process already holds adds a reference, and the
/// file is unlocked when the last reference goes. (A lock per open file would make a process conflict with
/// itself; stores that share a directory in one process still each keep their own view, as documented on
/// ``CollectionStore``.)
final class OwnerLock: Sendable {
    /// The locked file.
    let path: String

    private struct Held {
        var descriptor: Int32
        var references: Int
    }

    /// The files this process holds, by path.
    private static let held = Mutex<[String: Held]>([:])

    private init(path: String) { self.path = path }

    /// Takes the lock on `file`, creating the file when missing.
    /// - Parameters:
    ///   - file: The lock file.
    ///   - what: What the lock protects, for the error (`collection /data/c`).
    /// - Returns: The lock, released when the returned object is released.
    /// - Throws: ``TesseraError/Code/locked`` when another process holds it; ``TesseraError/Code/io`` when the
    ///   file cannot be opened.
    static func acquire(file: String, what: String) throws(TesseraError) -> OwnerLock {
        let path = (file as NSString).standardizingPath
        try held.withLock { table throws(TesseraError) in
            if var entry = table[path] {
                entry.references += 1
                table[path] = entry
                return
            }
            let descriptor: Int32
            do throws(SystemCallError) {
                descriptor = try Syscalls.openForWriting(path, truncate: false)
            } catch {
                throw TesseraError(
                    .io,
                    "cannot open the lock file of \(what): \(error.reason)",
                    location: .init(path: path)
                )
            }
            do throws(SystemCallError) {
                try Self.lock(descriptor, path: path)
            } catch {
                let holder = Self.readHolder(descriptor)
                Syscalls.close(descriptor)
                guard error.isWouldBlock else {
                    throw TesseraError(.io, "cannot lock \(what): \(error.reason)", location: .init(path: path))
                }
                throw TesseraError(
                    .locked,
                    "\(what) is in use by another process\(holder.map { " (pid \($0))" } ?? ""); "
                        + "one process owns it at a time: stop that process or send the request to it",
                    location: .init(path: path)
                )
            }
            Self.writeHolder(descriptor)
            table[path] = Held(descriptor: descriptor, references: 1)
        }
        return OwnerLock(path: path)
    }

    deinit {
        Self.held.withLock { table in
            guard var entry = table[path] else { return }
            entry.references -= 1
            if entry.references == 0 {
                table[path] = nil
                // Closing the last descriptor releases the lock.
                Syscalls.close(entry.descriptor)
            } else {
                table[path] = entry
            }
        }
    }

    /// Locks without waiting, except for one case: the file names this process as its holder although this
    /// process holds no reference to it. That is a child being started (`fork` before `exec`), which holds a copy
    /// of a descriptor just closed here, close-on-exec or not, until it execs; the lock is retried for up to 2 s.
    private static func lock(_ descriptor: Int32, path: String) throws(SystemCallError) {
        var attempts = 0
        while true {
            do throws(SystemCallError) {
                try Syscalls.lockExclusivelyWithoutWaiting(descriptor, path: path)
                return
            } catch {
                attempts += 1
                guard error.isWouldBlock, attempts < 200, readHolder(descriptor) == Int(getpid()) else { throw error }
                usleep(10_000)
            }
        }
    }

    private static func readHolder(_ descriptor: Int32) -> Int? {
        guard let bytes = try? Syscalls.read(descriptor, byteCount: 32, atOffset: 0), !bytes.isEmpty else {
            return nil
        }
        return Int(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func writeHolder(_ descriptor: Int32) {
        // Best effort: the pid only makes the refusal message more helpful.
        try? Syscalls.truncate(descriptor, byteCount: 0)
        try? Syscalls.write(descriptor, Array("\(getpid())\n".utf8), atOffset: 0)
    }
}

/// The lock of a data directory that one server owns: a second server on the same folder is refused at start,
/// naming the first one's process id. Released when the value is released or the process ends.
public final class DataDirectoryLock: Sendable {
    private let lock: OwnerLock
    /// The lock file inside the data directory.
    public static let fileName = ".tessera-serve.lock"

    /// Takes the lock of a data directory.
    /// - Parameter directory: The data directory (it must exist).
    /// - Throws: ``TesseraError/Code/locked`` when another process holds it, ``TesseraError/Code/io``.
    public init(directory: String) throws(TesseraError) {
        lock = try OwnerLock.acquire(
            file: (directory as NSString).appendingPathComponent(Self.fileName),
            what: "the data folder \(directory)"
        )
    }
}
