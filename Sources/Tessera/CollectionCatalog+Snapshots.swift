public import Foundation
import Synchronization
import TesseraPlatform

/// One snapshot file of a collection, as ``CollectionCatalog/snapshots(of:)`` lists it.
public struct SnapshotDescription: Sendable, Equatable {
    /// The file's name: `<collection>-<number>-<yyyy-mm-dd-hh-mm-ss>.snapshot` for one this catalog made.
    public var name: String
    /// When it was written (its modification time).
    public var creationTime: Date
    /// Its size.
    public var byteCount: Int
    /// Its SHA-256, lower-case hexadecimal, when recorded beside it (`<name>.checksum`).
    public var checksum: String?
}

/// Snapshots: each collection's snapshot files live in `<data>/.snapshots/<collection>/` (hidden, so never
/// taken for a collection, and beyond the reach of any collection name), each with its SHA-256 in a
/// `<name>.checksum` file beside it. They outlive the collection: a collection deleted can be recovered from
/// them.
///
/// ## Recovering
/// ``recover(_:fromSnapshot:checksum:)`` builds the new collection in a hidden folder (`.restoring-<uuid>`) and
/// checks it whole there (``CollectionSnapshot/restore(archive:into:)``), without touching the collection it
/// replaces. Only then, under the catalog's lifecycle lock, the old collection's store is closed (waiting for its
/// write in progress and for its optimiser pass, if any) and two renames swap the folders: the old one to
/// `.replaced-<uuid>-<name>`, the new one to `<name>`. A crash between the two renames is repaired when an
/// owning catalog next starts: a `.replaced-…` folder whose collection is missing is renamed back (the recovery
/// did not happen, and it was never acknowledged), one whose collection is there is removed, and a
/// `.restoring-…` folder is removed. So a crash leaves the old collection or the recovered one, whole, never
/// neither.
extension CollectionCatalog {
    /// The folder of snapshot files, inside the data directory.
    public static let snapshotsFolder = ".snapshots"
    static let restoringPrefix = ".restoring-"
    static let replacedPrefix = ".replaced-"
    /// The extension of snapshot files.
    public static let snapshotExtension = "snapshot"

    /// The folder of a collection's snapshot files (whether or not it exists).
    public func snapshotsDirectory(of name: String) -> String {
        ((directory as NSString).appendingPathComponent(Self.snapshotsFolder) as NSString).appendingPathComponent(name)
    }

    /// Checks a snapshot file name: a plain file name (the characters of a collection name, not starting with
    /// `.`, so never a path), ending in `.snapshot`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming it.
    public static func validateSnapshotName(_ name: String) throws(TesseraError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.hasPrefix("."), name.utf8.count <= 255, name.hasSuffix(".\(snapshotExtension)"),
            name.unicodeScalars.allSatisfy({ allowed.contains($0) && $0.isASCII })
        else {
            throw TesseraError(
                .invalidArgument,
                "snapshot name '\(name)' must be a file name of letters, digits, '-', '_' and '.' ending in "
                    + "'.\(snapshotExtension)', not a path",
                location: .init(field: "snapshot_name")
            )
        }
    }

    private func requireCollection(_ name: String) throws(TesseraError) {
        try Self.validateName(name)
        guard hasDatabase(name) else { throw TesseraError(.notFound, "Collection `\(name)` doesn't exist!") }
    }

    /// Takes a snapshot of a collection (``CollectionStore/writeSnapshot(to:)``) into its snapshots folder, named
    /// as Qdrant names them: `<collection>-<number>-<yyyy-mm-dd-hh-mm-ss>.snapshot` (UTC; the number is random per
    /// snapshot, where Qdrant puts its peer id, so that two snapshots in one second do not collide).
    /// - Parameter name: The collection.
    /// - Returns: The new snapshot.
    /// - Throws: ``TesseraError/Code/notFound`` for a missing collection, ``TesseraError/Code/invalidArgument``
    ///   for a bad name, ``TesseraError/Code/io``.
    public func createSnapshot(of name: String) throws(TesseraError) -> SnapshotDescription {
        try requireCollection(name)
        let store = try open(name)
        let folder = snapshotsDirectory(of: name)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw TesseraError(.io, "cannot create the snapshots folder: \(error)", location: .init(path: folder))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd-HH-mm-ss"
        var fileName = ""
        repeat {
            let number = UInt64.random(in: 1..<(UInt64(1) << 53))
            fileName = "\(name)-\(number)-\(formatter.string(from: Date())).\(Self.snapshotExtension)"
        } while FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(fileName))
        let path = (folder as NSString).appendingPathComponent(fileName)
        let summary = try store.writeSnapshot(to: path)
        do {
            try AtomicFile.write(Array(summary.sha256.utf8), to: path + ".checksum")
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw TesseraError(
                .io,
                "cannot write the snapshot's checksum: \(error.reason)",
                location: .init(path: path)
            )
        }
        return try describeSnapshot(at: path)
    }

    private func describeSnapshot(at path: String) throws(TesseraError) -> SnapshotDescription {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw TesseraError(.io, "cannot read a snapshot's size: \(error)", location: .init(path: path))
        }
        let checksum = FileManager.default.contents(atPath: path + ".checksum").map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return SnapshotDescription(
            name: (path as NSString).lastPathComponent,
            creationTime: attributes[.modificationDate] as? Date ?? Date(timeIntervalSince1970: 0),
            byteCount: (attributes[.size] as? NSNumber)?.intValue ?? 0,
            checksum: checksum
        )
    }

    /// The snapshots of a collection, sorted by name.
    /// - Throws: ``TesseraError/Code/notFound`` for a missing collection, ``TesseraError/Code/invalidArgument``
    ///   for a bad name.
    public func snapshots(of name: String) throws(TesseraError) -> [SnapshotDescription] {
        try requireCollection(name)
        let folder = snapshotsDirectory(of: name)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var found: [SnapshotDescription] = []
        for entry in entries.sorted() where (try? Self.validateSnapshotName(entry)) != nil {
            // A snapshot deleted while listed is left out.
            if let description = try? describeSnapshot(at: (folder as NSString).appendingPathComponent(entry)) {
                found.append(description)
            }
        }
        return found
    }

    /// The file of one snapshot of a collection.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad name (a path), ``TesseraError/Code/notFound``
    ///   for a missing collection or snapshot.
    public func snapshotFile(of name: String, snapshot: String) throws(TesseraError) -> String {
        try requireCollection(name)
        try Self.validateSnapshotName(snapshot)
        let path = (snapshotsDirectory(of: name) as NSString).appendingPathComponent(snapshot)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TesseraError(.notFound, "Snapshot \(snapshot) not found")
        }
        return path
    }

    /// Deletes one snapshot of a collection (and its checksum file).
    /// - Throws: As ``snapshotFile(of:snapshot:)``, and ``TesseraError/Code/io``.
    public func deleteSnapshot(of name: String, snapshot: String) throws(TesseraError) {
        let path = try snapshotFile(of: name, snapshot: snapshot)
        do {
            try Syscalls.unlink(path)
            try Syscalls.unlink(path + ".checksum")
        } catch {
            throw TesseraError(.io, "cannot delete the snapshot: \(error.reason)", location: .init(path: path))
        }
    }

    /// Checks that a local snapshot location lies inside the snapshots folder (after resolving `..` and links):
    /// a request may not make the server read any other file.
    /// - Returns: The resolved path.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a path outside it, ``TesseraError/Code/notFound`` for
    ///   a missing file.
    public func localSnapshotPath(_ path: String) throws(TesseraError) -> String {
        let root = (directory as NSString).appendingPathComponent(Self.snapshotsFolder)
        let resolvedRoot = (root as NSString).resolvingSymlinksInPath
        let resolved = (path as NSString).resolvingSymlinksInPath
        guard resolved.hasPrefix(resolvedRoot + "/") || resolved.hasPrefix(root + "/") else {
            throw TesseraError(
                .invalidArgument,
                "the snapshot location must be a file inside the server's snapshots folder",
                location: .init(field: "location")
            )
        }
        guard FileManager.default.fileExists(atPath: resolved) else {
            throw TesseraError(.notFound, "Snapshot file \((path as NSString).lastPathComponent) not found")
        }
        return resolved
    }

    /// Recovers a collection from a snapshot archive: creates it when missing, replaces it when it exists (as
    /// Qdrant does), crash-safely (see the extension's notes).
    /// - Parameters:
    ///   - name: The collection.
    ///   - archive: The snapshot file.
    ///   - checksum: The archive's expected SHA-256 (hexadecimal, any case), checked before anything else.
    /// - Returns: The archive's manifest.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad name or a checksum mismatch (naming both sums),
    ///   ``TesseraError/Code/alreadyExists`` for an alias of that name, ``TesseraError/Code/corrupted`` for a
    ///   damaged archive, ``TesseraError/Code/locked`` when another process owns the collection,
    ///   ``TesseraError/Code/io``. On any failure the old collection is as it was.
    @discardableResult
    public func recover(
        _ name: String,
        fromSnapshot archive: String,
        checksum: String? = nil
    ) throws(TesseraError) -> CollectionSnapshot.Manifest {
        try Self.validateName(name)
        guard aliasTable.withLock({ $0[name] }) == nil else {
            throw TesseraError(.alreadyExists, "Alias `\(name)` already exists!")
        }
        if let checksum {
            let actual = try CollectionSnapshot.sha256(ofFile: archive)
            guard actual == checksum.lowercased() else {
                throw TesseraError(
                    .invalidArgument,
                    "Checksum mismatch: the snapshot's SHA-256 is \(actual), the request expects \(checksum)",
                    location: .init(field: "checksum")
                )
            }
        }
        let staging = (directory as NSString).appendingPathComponent(Self.restoringPrefix + UUID().uuidString)
        let manifest = try CollectionSnapshot.restore(archive: archive, into: staging)
        do throws(TesseraError) {
            try lifecycle.withLock { _ throws(TesseraError) in try swapIn(staging, as: name) }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        return manifest
    }

    /// Puts a restored folder in place of collection `name` (lifecycle lock held).
    private func swapIn(_ staging: String, as name: String) throws(TesseraError) {
        func failed(_ what: String) -> TesseraError {
            TesseraError(.io, "cannot \(what): \(String(cString: strerror(errno)))", location: .init(path: path(name)))
        }
        guard hasDatabase(name) else {
            // A folder without a database (a create that failed midway) is moved aside first.
            if FileManager.default.fileExists(atPath: path(name)) {
                let trash = (directory as NSString).appendingPathComponent(
                    Self.deletedPrefix + name + "-" + UUID().uuidString
                )
                guard rename(path(name), trash) == 0 else { throw failed("move an empty folder aside") }
                try? FileManager.default.removeItem(atPath: trash)
            }
            guard rename(staging, path(name)) == 0 else { throw failed("move the recovered collection into place") }
            try? CollectionSnapshot.fsyncDirectory(directory)
            return
        }
        // Opened if it was not, to take its owner lock: a collection another process owns is not replaced.
        let old = try openLocked(name)
        let replaced = (directory as NSString).appendingPathComponent(
            Self.replacedPrefix + UUID().uuidString + "-" + name
        )
        try old.maintenance.withLock { _ throws(TesseraError) in
            // The optimiser is still (its lock is held): nothing of the old store writes into the folder after this.
            stores.withLock { _ = $0.removeValue(forKey: name) }
            try? old.close()
            guard rename(path(name), replaced) == 0 else { throw failed("move the old collection aside") }
            guard rename(staging, path(name)) == 0 else {
                let error = failed("move the recovered collection into place")
                _ = rename(replaced, path(name))
                throw error
            }
        }
        try? CollectionSnapshot.fsyncDirectory(directory)
        try? FileManager.default.removeItem(atPath: replaced)
    }

    /// Repairs what a crash mid-recovery left (an owning catalog, at start): see the extension's notes.
    func finishInterruptedRecoveries(entries: [String]) {
        for entry in entries where entry.hasPrefix(Self.replacedPrefix) {
            let full = (directory as NSString).appendingPathComponent(entry)
            // `.replaced-<uuid>-<name>`: a UUID string is 36 characters.
            let name = String(entry.dropFirst(Self.replacedPrefix.count + 37))
            guard (try? Self.validateName(name)) != nil else { continue }
            if hasDatabase(name) {
                try? FileManager.default.removeItem(atPath: full)
            } else {
                if FileManager.default.fileExists(atPath: path(name)) {
                    try? FileManager.default.removeItem(atPath: path(name))
                }
                _ = rename(full, path(name))
            }
        }
        for entry in entries where entry.hasPrefix(Self.restoringPrefix) {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(entry))
        }
        try? CollectionSnapshot.fsyncDirectory(directory)
    }
}
