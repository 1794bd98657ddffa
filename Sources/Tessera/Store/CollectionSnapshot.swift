import Foundation
import GRDB
import Synchronization
import TesseraPlatform

/// A collection snapshot: one archive file holding everything a collection needs to be opened again, taken at one
/// point in time while writes go on.
///
/// ## Format
/// A POSIX ustar archive (``TarArchive``; any `tar` lists and unpacks it) of plain files, in this order:
/// 1. `collection.sqlite`: a copy of the collection's database made by SQLite's `VACUUM INTO` (one read
///    transaction: one point in time; no WAL beside it);
/// 2. the sealed segment files that copy records (`segment-<id>.tseg`), unchanged;
/// 3. the derived index files it records as current (compressed index, HNSW graph, BM25 postings), unchanged,
///    and the legacy `qdrant-vectors.json` where the collection has one;
/// 4. `tessera-snapshot.json`, the manifest: `format` (`tessera-collection-snapshot`), `version` (1), `created`
///    (ISO 8601, UTC), `point_count`, and `files`, each file's `name`, `byte_count` and `checksum` (``Checksum``
///    of its bytes, 16 hexadecimal digits).
///
/// The whole archive's SHA-256 is what Qdrant's API reports as the snapshot's `checksum`.
///
/// ## Consistency while writes go on
/// Sealed segment files and derived index files are immutable: a seal, merge or index build writes new files and
/// records them in one transaction, then deletes the files it replaced. A snapshot therefore copies the database
/// first, reads the list of files from that copy, and opens every one of them. An open descriptor keeps a file's
/// bytes readable even after the optimiser deletes it, so once all are open nothing can be taken away mid-copy.
/// If a listed file was already deleted between the copy and the opening (a merge committed in that instant), the
/// snapshot starts again from a new copy; after a few such attempts it takes the collection's maintenance lock,
/// which keeps the optimiser still, for the last one. Writers are never blocked.
///
/// ## Restoring
/// ``restore(archive:into:)`` unpacks into a new directory, checks every file against the manifest (names,
/// sizes, checksums; nothing missing, nothing extra), fsyncs them, then opens the collection there (which checks
/// each segment against the database's record of it) and verifies every segment's checksums.
public enum CollectionSnapshot {
    /// The manifest's entry name.
    public static let manifestName = "tessera-snapshot.json"
    /// The manifest's `format` value.
    public static let formatName = "tessera-collection-snapshot"
    /// The manifest's `version`.
    public static let formatVersion = 1
    /// The largest manifest read (a collection of a million files lists them in well under this).
    static let maximumManifestByteCount = 64 << 20

    /// What a snapshot archive holds, as its manifest says.
    public struct Manifest: Codable, Sendable, Equatable {
        /// One file of the archive.
        public struct File: Codable, Sendable, Equatable {
            /// Its name inside the collection's directory.
            public var name: String
            /// Its size.
            public var byteCount: Int
            /// ``Checksum`` of its bytes, 16 hexadecimal digits.
            public var checksum: String

            enum CodingKeys: String, CodingKey {
                case name
                case byteCount = "byte_count"
                case checksum
            }
        }
        /// ``CollectionSnapshot/formatName``.
        public var format: String
        /// ``CollectionSnapshot/formatVersion``.
        public var version: Int
        /// When the snapshot was taken, ISO 8601 in UTC.
        public var created: String
        /// The live points in the snapshot.
        public var pointCount: Int
        /// The files, in archive order.
        public var files: [File]

        enum CodingKeys: String, CodingKey {
            case format, version, created
            case pointCount = "point_count"
            case files
        }
    }

    /// What ``CollectionStore/writeSnapshot(to:)`` wrote.
    public struct Summary: Sendable, Equatable {
        /// The archive's size.
        public var byteCount: Int
        /// The archive's SHA-256, lower-case hexadecimal.
        public var sha256: String
        /// The archive's manifest.
        public var manifest: Manifest
        /// How many times the snapshot started again because the optimiser replaced a file meanwhile.
        public var retryCount: Int
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The SHA-256 of a file, lower-case hexadecimal.
    /// - Throws: ``TesseraError/Code/io`` when it cannot be read, ``TesseraError/Code/notFound`` when it is missing.
    public static func sha256(ofFile path: String) throws(TesseraError) -> String {
        let descriptor: Int32
        do {
            descriptor = try Syscalls.openForReading(path)
        } catch {
            throw TesseraError(
                error.isMissingFile ? .notFound : .io,
                "cannot open the snapshot: \(error.reason)",
                location: .init(path: path)
            )
        }
        defer { Syscalls.close(descriptor) }
        var hash = SHA256()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count: Int
            do {
                count = try Syscalls.read(descriptor, into: &chunk, path: path)
            } catch {
                throw TesseraError(.io, "cannot read the snapshot: \(error.reason)", location: .init(path: path))
            }
            if count == 0 { return hash.finalizeHex() }
            chunk.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    // MARK: Restoring

    /// Unpacks a snapshot archive into a new collection directory and checks it whole.
    ///
    /// The directory is made by this call and removed again when anything fails, so a failed restore leaves
    /// nothing behind. The files are fsynced (and the directory) before it returns: once it has returned, a
    /// rename of the directory makes a durable collection.
    /// - Parameters:
    ///   - archive: The snapshot file.
    ///   - directory: Where to unpack; must not exist.
    /// - Returns: The archive's manifest.
    /// - Throws: ``TesseraError/Code/corrupted`` naming what is wrong with the archive (not a tar archive, cut
    ///   short, a file whose bytes or size differ from the manifest, a file missing or not listed, an unreadable
    ///   manifest, a segment that fails its checks), ``TesseraError/Code/notFound`` when `archive` is missing,
    ///   ``TesseraError/Code/alreadyExists`` when `directory` exists, ``TesseraError/Code/io``.
    /// - Complexity: O(archive bytes).
    @discardableResult
    public static func restore(archive: String, into directory: String) throws(TesseraError) -> Manifest {
        guard !FileManager.default.fileExists(atPath: directory) else {
            throw TesseraError(.alreadyExists, "the restore target already exists", location: .init(path: directory))
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TesseraError(.io, "cannot create the restore target: \(error)", location: .init(path: directory))
        }
        do throws(TesseraError) {
            let manifest = try unpack(archive: archive, into: directory)
            try fsyncDirectory(directory)
            // Opening checks each segment file against the database's record of it; then every byte is checked.
            let store = try CollectionStore.open(at: directory)
            defer { try? store.close() }
            try store.verifySegments()
            guard store.count() == manifest.pointCount else {
                throw TesseraError(
                    .corrupted,
                    "the snapshot's manifest lists \(manifest.pointCount) points; its database holds \(store.count())",
                    location: .init(path: archive)
                )
            }
            return manifest
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    private static func unpack(archive: String, into directory: String) throws(TesseraError) -> Manifest {
        let source: Int32
        do {
            source = try Syscalls.openForReading(archive)
        } catch {
            throw TesseraError(
                error.isMissingFile ? .notFound : .io,
                "cannot open the snapshot: \(error.reason)",
                location: .init(path: archive)
            )
        }
        defer { Syscalls.close(source) }
        func read(_ byteCount: Int, at offset: Int) throws(TesseraError) -> [UInt8] {
            do {
                return try Syscalls.read(source, byteCount: byteCount, atOffset: offset)
            } catch {
                throw TesseraError(.io, "cannot read the snapshot: \(error.reason)", location: .init(path: archive))
            }
        }
        func cutShort(at offset: Int) -> TesseraError {
            TesseraError(
                .corrupted,
                "the snapshot ends at byte \(offset), before its end-of-archive marker: it was cut short",
                location: .init(path: archive, offset: offset)
            )
        }
        var offset = 0
        var unpacked: [String: (byteCount: Int, checksum: UInt64)] = [:]
        var order: [String] = []
        var manifestBytes: [UInt8]?
        while true {
            let block = try read(TarArchive.blockByteCount, at: offset)
            guard block.count == TarArchive.blockByteCount else { throw cutShort(at: offset + block.count) }
            guard let entry = try TarArchive.parseHeader(block, archive: archive, offset: offset) else { break }
            let dataOffset = offset + TarArchive.blockByteCount
            guard unpacked[entry.name] == nil, entry.name != CollectionStore.lockFileName,
                manifestBytes == nil || entry.name != manifestName
            else {
                throw TesseraError(
                    .corrupted,
                    "the snapshot holds '\(entry.name)' twice, or a file no collection has",
                    location: .init(path: archive, offset: offset)
                )
            }
            if entry.name == manifestName {
                guard entry.byteCount <= maximumManifestByteCount else {
                    throw TesseraError(
                        .corrupted,
                        "the snapshot's manifest is \(entry.byteCount) bytes, over the limit",
                        location: .init(path: archive, offset: offset)
                    )
                }
                let bytes = try read(entry.byteCount, at: dataOffset)
                guard bytes.count == entry.byteCount else { throw cutShort(at: dataOffset + bytes.count) }
                manifestBytes = bytes
            } else {
                let checksum = try copy(
                    from: source,
                    at: dataOffset,
                    byteCount: entry.byteCount,
                    to: (directory as NSString).appendingPathComponent(entry.name),
                    archive: archive
                )
                unpacked[entry.name] = (entry.byteCount, checksum)
                order.append(entry.name)
            }
            offset = dataOffset + entry.byteCount + TarArchive.padding(entry.byteCount)
        }
        guard let manifestBytes else {
            throw TesseraError(
                .corrupted,
                "the archive has no \(manifestName): it is not a Tessera collection snapshot",
                location: .init(path: archive)
            )
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(manifestBytes))
        } catch {
            throw TesseraError(
                .corrupted,
                "the snapshot's manifest is unreadable",
                location: .init(path: archive, field: manifestName),
                cause: "\(error)"
            )
        }
        guard manifest.format == formatName, manifest.version == formatVersion else {
            throw TesseraError(
                .corrupted,
                "the snapshot is format '\(manifest.format)' version \(manifest.version); this build reads "
                    + "'\(formatName)' version \(formatVersion)",
                location: .init(path: archive, field: manifestName)
            )
        }
        for file in manifest.files {
            guard let found = unpacked[file.name] else {
                throw TesseraError(
                    .corrupted,
                    "the snapshot's manifest lists \(file.name), which the archive does not hold",
                    location: .init(path: archive, field: file.name)
                )
            }
            guard found.byteCount == file.byteCount, hex(found.checksum) == file.checksum.lowercased() else {
                throw TesseraError(
                    .corrupted,
                    "\(file.name) in the snapshot is \(found.byteCount) bytes with checksum \(hex(found.checksum)); "
                        + "the manifest says \(file.byteCount) bytes with checksum \(file.checksum): the archive is "
                        + "damaged",
                    location: .init(path: archive, field: file.name)
                )
            }
        }
        let listed = Set(manifest.files.map(\.name))
        if let extra = order.first(where: { !listed.contains($0) }) {
            throw TesseraError(
                .corrupted,
                "the snapshot holds \(extra), which its manifest does not list",
                location: .init(path: archive, field: extra)
            )
        }
        guard listed.contains(CollectionStore.databaseFileName) else {
            throw TesseraError(
                .corrupted,
                "the snapshot holds no \(CollectionStore.databaseFileName)",
                location: .init(path: archive)
            )
        }
        return manifest
    }

    /// Copies `byteCount` bytes at `offset` of the archive into a new file, fsynced.
    /// - Returns: The bytes' ``Checksum``.
    private static func copy(
        from source: Int32,
        at offset: Int,
        byteCount: Int,
        to path: String,
        archive: String
    ) throws(TesseraError) -> UInt64 {
        let target: Int32
        do {
            target = try Syscalls.openForWriting(path, truncate: true)
        } catch {
            throw TesseraError(.io, "cannot create a restored file: \(error.reason)", location: .init(path: path))
        }
        defer { Syscalls.close(target) }
        var checksum = Checksum.Accumulator(byteCount: byteCount)
        var done = 0
        do {
            while done < byteCount {
                let chunk = try Syscalls.read(
                    source,
                    byteCount: min(1 << 20, byteCount - done),
                    atOffset: offset + done
                )
                guard !chunk.isEmpty else {
                    throw TesseraError(
                        .corrupted,
                        "the snapshot ends inside \((path as NSString).lastPathComponent), at byte \(offset + done): "
                            + "it was cut short",
                        location: .init(path: archive, offset: offset + done)
                    )
                }
                chunk.withUnsafeBytes { checksum.add($0) }
                try Syscalls.writeAll(target, chunk, path: path)
                done += chunk.count
            }
            try Syscalls.fsync(target, path: path)
        } catch let error as TesseraError {
            throw error
        } catch let error as SystemCallError {
            throw TesseraError(.io, "cannot restore a file: \(error.reason)", location: .init(path: path))
        } catch {
            throw TesseraError(.io, "cannot restore a file: \(error)", location: .init(path: path))
        }
        return checksum.value
    }

    static func fsyncDirectory(_ directory: String) throws(TesseraError) {
        do {
            try Syscalls.fsync(path: directory)
        } catch {
            throw TesseraError(.io, "cannot flush a directory: \(error.reason)", location: .init(path: directory))
        }
    }
}

extension CollectionStore {
    /// The prefixes of the metadata keys that name a derived index's current files.
    static let derivedIndexKinds = [compressedIndexKind, denseIndexKind, textIndexKind]

    /// Writes a snapshot of the collection as it is now: a ``CollectionSnapshot`` archive at `path`.
    ///
    /// Consistent while writes and the optimiser go on (see ``CollectionSnapshot``'s consistency rules): every
    /// point in it is one that was committed when its database copy was made, with the payload and vectors it had
    /// then. The archive is written under a temporary name beside `path`, fsynced and renamed, so `path` holds a
    /// whole snapshot or nothing.
    /// - Parameter path: The archive to write; replaced if it exists.
    /// - Returns: The archive's size, SHA-256 and manifest.
    /// - Throws: ``TesseraError/Code/io`` when a file cannot be read or written, ``TesseraError/Code/notFound``
    ///   once the store is closed.
    /// - Complexity: O(collection bytes): the database is copied once and every file is read once.
    public func writeSnapshot(to path: String) throws(TesseraError) -> CollectionSnapshot.Summary {
        let temporary = path + ".tmp-\(UUID().uuidString)"
        let databaseCopy = temporary + ".sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databaseCopy + suffix) }
            try? FileManager.default.removeItem(atPath: temporary)
        }
        let attempts = 8
        var held: HeldFiles?
        var retryCount = 0
        for attempt in 0..<attempts {
            let last = attempt == attempts - 1
            // The last attempt keeps the optimiser still: nothing it lists can be deleted before it is opened.
            held =
                last
                ? try maintenance.withLock { _ throws(TesseraError) in try holdFiles(databaseCopy: databaseCopy) }
                : try holdFiles(databaseCopy: databaseCopy)
            if held != nil { break }
            retryCount += 1
        }
        guard let held else {
            throw TesseraError(.io, "the collection's files kept changing while the snapshot was taken")
        }
        defer { for file in held.files { Syscalls.close(file.descriptor) } }
        let now = Int(Date().timeIntervalSince1970)
        var writer = try TarWriter(path: temporary)
        var files: [CollectionSnapshot.Manifest.File] = []
        for file in held.files {
            let checksum = try writer.append(
                name: file.name,
                descriptor: file.descriptor,
                byteCount: file.byteCount,
                modificationTime: now,
                sourcePath: file.path
            )
            files.append(.init(name: file.name, byteCount: file.byteCount, checksum: CollectionSnapshot.hex(checksum)))
        }
        let manifest = CollectionSnapshot.Manifest(
            format: CollectionSnapshot.formatName,
            version: CollectionSnapshot.formatVersion,
            created: ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(now))),
            pointCount: held.pointCount,
            files: files
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let manifestBytes = [UInt8]((try? encoder.encode(manifest)) ?? Data())
        try writer.append(name: CollectionSnapshot.manifestName, bytes: manifestBytes, modificationTime: now)
        let (byteCount, sha256) = try writer.finish()
        do {
            try AtomicFile.commit(temporaryPath: temporary, to: path)
        } catch {
            throw TesseraError(
                .io,
                "cannot rename the snapshot into place: \(error.reason)",
                location: .init(path: path)
            )
        }
        return CollectionSnapshot.Summary(
            byteCount: byteCount,
            sha256: sha256,
            manifest: manifest,
            retryCount: retryCount
        )
    }

    /// The files of one snapshot, each open (so the optimiser deleting it cannot take its bytes away).
    struct HeldFiles {
        struct File {
            var name: String
            var path: String
            var descriptor: Int32
            var byteCount: Int
        }
        var files: [File]
        var pointCount: Int
    }

    /// Copies the database to `databaseCopy` (one point in time), reads from the copy which files it needs, and
    /// opens them all.
    /// - Returns: The open files, the copy first; `nil` when a listed file was deleted before it could be opened
    ///   (the optimiser replaced it: the caller starts again).
    private func holdFiles(databaseCopy: String) throws(TesseraError) -> HeldFiles? {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databaseCopy + suffix) }
        guard !isClosed.load(ordering: .acquiring) else {
            throw TesseraError(.notFound, "the collection was closed or deleted", location: .init(path: directory))
        }
        try Self.guarded(path: directory) {
            // VACUUM INTO runs as one read transaction of its own: the copy is one committed state.
            try pool.unsafeRead { db in try db.execute(sql: "VACUUM INTO ?", arguments: [databaseCopy]) }
        }
        var configuration = Configuration()
        configuration.readonly = true
        let (names, pointCount): ([String], Int) = try Self.guarded(path: databaseCopy) {
            let copy = try DatabaseQueue(path: databaseCopy, configuration: configuration)
            defer { try? copy.close() }
            return try copy.read { db in
                var names: [String] = []
                if try db.tableExists("segments") {
                    names += try String.fetchAll(db, sql: "SELECT file_name FROM segments ORDER BY id")
                }
                let derived = try String.fetchAll(
                    db,
                    sql: "SELECT value FROM metadata WHERE "
                        + Self.derivedIndexKinds.map { _ in "key LIKE ?" }.joined(separator: " OR ")
                        + " ORDER BY key",
                    arguments: StatementArguments(Self.derivedIndexKinds.map { "\($0).%" })
                )
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                for base in derived {
                    // A derived index is one file (`base`) or several (`base.<part>`).
                    let parts = entries.filter { $0 == base || $0.hasPrefix(base + ".") }.sorted()
                    // None there: replaced by a newer build since the copy was made.
                    guard !parts.isEmpty else { return ([], -1) }
                    names += parts.filter { !$0.contains(".tmp-") }
                }
                let points = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM points") ?? 0
                return (names, points)
            }
        }
        guard pointCount >= 0 else { return nil }
        var held = HeldFiles(files: [], pointCount: pointCount)
        var complete = false
        defer { if !complete { for file in held.files { Syscalls.close(file.descriptor) } } }
        func open(name: String, path: String) throws(TesseraError) -> Bool {
            do {
                let descriptor = try Syscalls.openForReading(path)
                held.files.append(.init(name: name, path: path, descriptor: descriptor, byteCount: 0))
                held.files[held.files.count - 1].byteCount = try Syscalls.fileByteCount(descriptor, path: path)
                return true
            } catch {
                if error.isMissingFile { return false }
                throw TesseraError(
                    .io,
                    "cannot open \(name) for the snapshot: \(error.reason)",
                    location: .init(path: path)
                )
            }
        }
        guard try open(name: Self.databaseFileName, path: databaseCopy) else {
            throw TesseraError(.io, "the database copy vanished", location: .init(path: databaseCopy))
        }
        for name in names {
            guard try open(name: name, path: (directory as NSString).appendingPathComponent(name)) else { return nil }
        }
        let legacy = (directory as NSString).appendingPathComponent("qdrant-vectors.json")
        _ = try open(name: "qdrant-vectors.json", path: legacy)
        complete = true
        return held
    }
}
