import Foundation
import GRDB
import Synchronization

/// One collection on disk: a directory holding a SQLite database (through GRDB, WAL mode, `synchronous = FULL`)
/// that is the source of truth for points, payloads and the appendable segment's vectors, the sealed segment
/// files (memory-mapped), the derived index files, and an in-memory ``ScoringView`` kept in step.
///
/// ## Durability
/// Every write (``upsert(_:)``, ``delete(ids:)``, ``delete(filter:)``, ``setPayload(_:ids:)``,
/// ``overwritePayload(_:ids:)``) is one SQLite transaction. It returns only after the transaction has committed
/// and its WAL frames have been fsynced (`synchronous = FULL`), so an acknowledged write survives a process
/// crash or power loss; a write that throws, or is interrupted, leaves nothing of itself behind.
///
/// ## Concurrency rules
/// - One writer: writes are serialised on the database's single writer connection. Each applies its change to
///   the in-memory view while it still holds the writer, after the commit, so the view sees changes in commit
///   order and never sees a change that did not commit.
/// - Snapshot readers: ``get(ids:withPayload:withVectors:)`` and ``scroll(filter:limit:offset:withPayload:withVectors:)``
///   read a WAL snapshot through the pool's reader connections, concurrently with each other and with a writer.
///   ``count(filter:)`` and ``scoringView()`` read the in-memory view under a `Mutex`, held only for the copy.
/// - A ``ScoringView`` is a copy-on-write value: once returned it never changes. The cost: a write that happens
///   while a reader still holds a view copies what it changes: the appendable tail's vectors and the per-slot
///   arrays (ids, payloads, versions: O(points), not O(vectors)); never a sealed segment, whose tokens are read
///   in place from its mapping. Release views promptly.
/// - The store is `Sendable`; share one instance per directory. Two stores on the same directory in one process
///   would each keep their own view and miss the other's writes.
///
/// ## Segments and the optimiser
/// - What a segment holds: a run of slots, each with its point id, its version (the SQLite row it was written
///   from) and every field's tokens in the stored element type (``SegmentFile`` has the layout and the checks).
///   A point in a sealed segment has its row in `points` (payload, `segment_id`, `segment_slot`) and no row in
///   `vectors`: its vectors are on disk once. Deleting or replacing it changes only `points`.
/// - When a segment is sealed: ``optimize(settings:force:buildIndexes:indexKinds:)`` seals the tail once its
///   vectors reach `indexing_threshold` (or whenever asked with `force`); ``importPoints(_:options:progress:)``
///   writes sealed segments directly.
/// - When segments are merged: while there are more than `default_segment_number` (the smallest neighbouring
///   pair within `max_segment_size`), and alone when a segment's deleted share reaches `deleted_threshold`
///   (a vacuum). Derived indexes are built past `indexing_threshold` and rebuilt once a fifth of the points were
///   written since their build; until then later points are encoded against the same centroids (the compressed
///   index's delta) or kept beside the graph (HNSW) and scored exactly.
/// - Who may read what while the optimiser runs: everyone, everything. The optimiser (and an import) holds the
///   maintenance lock against other passes only; it writes a new segment file from a snapshot without the
///   writer, then takes the writer for one short transaction that records it and swaps it into the view
///   (checking that the view did not change layout meanwhile; otherwise it drops its work). Readers keep the
///   views they hold, and with them the mappings of segments merged away, until they release them; writers wait
///   only for that final transaction.
///
/// ## One owner
/// One process owns a collection: opening it for writing (``Access/readWrite``, the default) takes an exclusive
/// lock on `collection.lock` in its directory, held until ``close()`` or the end of the process, however it ends.
/// A second process that opens the collection for writing — a second server, or `tessera index` while a server
/// serves it — is refused at once with ``TesseraError/Code/locked`` naming the owner's process id, instead of
/// keeping a view that the owner's writes would make stale. Other processes may open it ``Access/readOnly``
/// (a search from the command line while a server writes): they read the database snapshot of the moment they
/// opened it, and their writes are refused. SQLite waits up to ``busyTimeoutSeconds`` for a lock held by another
/// connection rather than failing at once.
///
/// ## Closing
/// ``close()`` waits for the write in progress, if any, and refuses every later one with
/// ``TesseraError/Code/notFound``: a collection that is deleted acknowledges no write after its deletion.
public final class CollectionStore: Sendable {
    /// How a store may use its collection.
    public enum Access: Sendable {
        /// Reads and writes; takes the collection's owner lock.
        case readWrite
        /// Reads only, alongside an owner in another process; writes throw ``TesseraError/Code/locked``.
        case readOnly
    }
    /// The collection's directory.
    public let directory: String
    /// The configuration stored in the collection.
    public let configuration: CollectionConfiguration
    /// When more than this fraction of a column's tokens belong to deleted slots, the view is compacted.
    public let compactionThreshold: Double

    /// Whether this store may write.
    public let access: Access
    let pool: DatabasePool
    let view: Mutex<ScoringView>
    /// The owner lock, held from opening to ``close()``.
    private let ownerLock: Mutex<OwnerLock?>
    /// Set, while holding the writer, by ``close()``.
    let isClosed = Atomic<Bool>(false)
    /// Set by the first call of ``close()``.
    private let isClosing = Atomic<Bool>(false)
    /// The compressed index of each multivector field that has one, loaded at first use.
    let compressedStates = Mutex<[String: CompressedFieldState]>([:])
    let textIndexes = TextIndexCache()
    /// The sparse fields' inverted indexes of the sealed segments, built at first use.
    let sparseIndexes = SparseIndexCache()
    /// The declared payload indexes, built at first use.
    let payloadIndexCache = PayloadIndexCache()
    /// The HNSW graph of each dense field that has one, loaded at first use.
    let denseStates = Mutex<[String: DenseFieldState]>([:])

    static let databaseFileName = "collection.sqlite"
    static let lockFileName = "collection.lock"
    /// 2: sealed segments (the `segments` table, each point's `segment_id` and `segment_slot`).
    static let schemaVersion = 2
    /// Whether the database has the segment columns (a schema-1 collection opened read-only has not).
    let hasSegmentColumns: Bool
    /// Serialises the optimiser's operations (seal, merge, index builds) on this store.
    let maintenance = Mutex<Void>(())
    /// How long SQLite waits for a lock that another connection holds before a call fails.
    public static let busyTimeoutSeconds: Double = 10

    private init(
        directory: String,
        access: Access,
        ownerLock: OwnerLock?,
        pool: DatabasePool,
        configuration: CollectionConfiguration,
        view: ScoringView,
        compactionThreshold: Double,
        hasSegmentColumns: Bool = true
    ) {
        self.hasSegmentColumns = hasSegmentColumns
        self.directory = directory
        self.access = access
        self.ownerLock = Mutex(ownerLock)
        self.pool = pool
        self.configuration = configuration
        self.view = Mutex(view)
        self.compactionThreshold = compactionThreshold
    }

    static func lock(directory: String) throws(TesseraError) -> OwnerLock {
        try OwnerLock.acquire(
            file: (directory as NSString).appendingPathComponent(lockFileName),
            what: "collection \((directory as NSString).lastPathComponent)"
        )
    }

    // MARK: Opening and closing

    /// Creates a new, empty collection.
    /// - Parameters:
    ///   - directory: The collection's directory; created if missing.
    ///   - configuration: The vector fields.
    ///   - compactionThreshold: The deleted-token fraction above which the scoring view is compacted.
    /// - Returns: The open store.
    /// - Throws: ``TesseraError/Code/alreadyExists`` when the directory holds a collection,
    ///   ``TesseraError/Code/invalidArgument`` for a bad configuration, ``TesseraError/Code/io``.
    public static func create(
        at directory: String,
        configuration: CollectionConfiguration,
        compactionThreshold: Double = 0.25
    ) throws(TesseraError) -> CollectionStore {
        try configuration.validate()
        try guarded(path: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let ownerLock = try lock(directory: directory)
        let pool = try openPool(directory: directory)
        try guarded(path: directory) {
            try pool.write { db in
                if try db.tableExists("metadata") {
                    throw TesseraError(
                        .alreadyExists,
                        "a collection already exists here",
                        location: .init(path: directory)
                    )
                }
                try createSchema(db, configuration: configuration)
            }
        }
        return CollectionStore(
            directory: directory,
            access: .readWrite,
            ownerLock: ownerLock,
            pool: pool,
            configuration: configuration,
            view: ScoringView(configuration: configuration),
            compactionThreshold: compactionThreshold
        )
    }

    /// Opens an existing collection and loads its scoring view, streaming rows from the database.
    /// - Parameters:
    ///   - directory: The collection's directory.
    ///   - expected: The configuration the caller expects, or `nil` to accept the stored one.
    ///   - access: ``Access/readWrite`` (the default) takes the owner lock; ``Access/readOnly`` reads beside an
    ///     owner in another process.
    ///   - compactionThreshold: The deleted-token fraction above which the scoring view is compacted.
    /// - Returns: The open store.
    /// - Throws: ``TesseraError/Code/notFound`` when there is no collection, ``TesseraError/Code/locked`` when
    ///   another process owns it (read-write only), ``TesseraError/Code/configurationMismatch`` naming the first
    ///   differing field and both values, ``TesseraError/Code/corrupted`` for unreadable stored data (SQLite's
    ///   cause kept), ``TesseraError/Code/io``.
    /// - Complexity: O(stored bytes).
    public static func open(
        at directory: String,
        expecting expected: CollectionConfiguration? = nil,
        access: Access = .readWrite,
        compactionThreshold: Double = 0.25
    ) throws(TesseraError) -> CollectionStore {
        let file = (directory as NSString).appendingPathComponent(databaseFileName)
        guard FileManager.default.fileExists(atPath: file) else {
            throw TesseraError(.notFound, "no collection at this path", location: .init(path: directory))
        }
        let ownerLock = access == .readWrite ? try lock(directory: directory) : nil
        // Temporary files of index builds that were killed before their rename: no one else can be writing them
        // while this process owns the collection.
        if ownerLock != nil { removeOrphanedTemporaryFiles(directory: directory) }
        let pool = try openPool(directory: directory)
        let (configuration, storedVersion) = try readConfiguration(pool, directory: directory)
        if access == .readWrite {
            try guarded(path: directory) {
                try pool.write { db in
                    // Collections created before the compressed index lack the pending table.
                    try createPendingTable(db)
                    if storedVersion < 2 { try addSegments(db) }
                }
            }
        }
        if let expected, let mismatch = configuration.mismatch(expected: expected, path: directory) {
            try? pool.close()
            throw mismatch
        }
        let hasSegmentColumns = access == .readWrite || storedVersion >= 2
        let view = try loadView(
            pool,
            configuration: configuration,
            directory: directory,
            hasSegmentColumns: hasSegmentColumns
        )
        if ownerLock != nil { removeOrphanedSegmentFiles(directory: directory, view: view) }
        return CollectionStore(
            directory: directory,
            access: access,
            ownerLock: ownerLock,
            pool: pool,
            configuration: configuration,
            view: view,
            compactionThreshold: compactionThreshold,
            hasSegmentColumns: hasSegmentColumns
        )
    }

    /// Opens the collection in `directory`, creating it when there is none.
    /// - Parameters:
    ///   - directory: The collection's directory.
    ///   - configuration: The configuration to create with, and to expect when opening.
    /// - Returns: The open store.
    /// - Throws: As ``open(at:expecting:compactionThreshold:)`` and ``create(at:configuration:compactionThreshold:)``.
    public static func openOrCreate(
        at directory: String,
        configuration: CollectionConfiguration
    )
        throws(TesseraError) -> CollectionStore
    {
        do {
            return try open(at: directory, expecting: configuration)
        } catch let error where error.code == .notFound {
            return try create(at: directory, configuration: configuration)
        }
    }

    /// Closes the store: waits for the write in progress, refuses every later write with
    /// ``TesseraError/Code/notFound``, closes the database connections and releases the owner lock. Later reads
    /// of the database throw; the in-memory view stays readable.
    /// - Throws: ``TesseraError/Code/io`` when SQLite cannot close (a statement is still in use).
    public func close() throws(TesseraError) {
        // Only the first call closes; a second (or a concurrent one) returns at once.
        guard isClosing.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        if access == .readWrite {
            // Taking the writer waits for the write in progress; every write checks the flag while holding it.
            pool.writeWithoutTransaction { _ in isClosed.store(true, ordering: .releasing) }
        }
        isClosed.store(true, ordering: .releasing)
        defer { ownerLock.withLock { $0 = nil } }
        try Self.guarded(path: directory) { try pool.close() }
    }

    /// Runs `body` on the writer connection (one writer at a time), after checking that this store may write and
    /// is not closed.
    /// - Throws: ``TesseraError/Code/locked`` for a read-only store, ``TesseraError/Code/notFound`` once closed,
    ///   what `body` throws, and ``TesseraError/Code/io`` for SQLite's failures (with SQLite's message as cause).
    func withWriter<T>(_ body: (Database) throws -> T) throws(TesseraError) -> T {
        guard access == .readWrite else {
            throw TesseraError(
                .locked,
                "the collection was opened read-only; writes go through the process that owns it",
                location: .init(path: directory)
            )
        }
        let closed = TesseraError(
            .notFound,
            "the collection was closed or deleted",
            location: .init(path: directory)
        )
        guard !isClosed.load(ordering: .acquiring) else { throw closed }
        do {
            return try Self.guarded(path: directory) {
                try pool.writeWithoutTransaction { db in
                    guard !isClosed.load(ordering: .acquiring) else { throw closed }
                    return try body(db)
                }
            }
        } catch {
            if isClosed.load(ordering: .acquiring) { throw closed }
            throw error
        }
    }

    /// Removes segment files that the database does not record (a seal or merge killed before its commit, or
    /// the sources of a merge killed before it deleted them).
    static func removeOrphanedSegmentFiles(directory: String, view: ScoringView) {
        let recorded = Set(view.segments.map { ($0.path as NSString).lastPathComponent })
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in entries where name.hasSuffix(".\(SegmentFile.fileExtension)") && !recorded.contains(name) {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    /// Removes `*.tmp-*` files (index builds killed before their rename) from a collection's directory.
    static func removeOrphanedTemporaryFiles(directory: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in entries where name.contains(".tmp-") {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    private static func openPool(directory: String) throws(TesseraError) -> DatabasePool {
        try guarded(path: directory) {
            var config = Configuration()
            config.foreignKeysEnabled = true
            // Another connection's lock (a reader in another process, a checkpoint) is waited for, not an error.
            config.busyMode = .timeout(busyTimeoutSeconds)
            config.prepareDatabase { db in
                // FULL: a commit returns after the WAL is fsynced, so an acknowledged write survives power loss.
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            let file = (directory as NSString).appendingPathComponent(databaseFileName)
            // DatabasePool always uses WAL mode.
            return try DatabasePool(path: file, configuration: config)
        }
    }

    private static func createSchema(_ db: Database, configuration: CollectionConfiguration) throws {
        try db.execute(
            sql: """
                CREATE TABLE metadata (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                CREATE TABLE points (
                    row_id INTEGER PRIMARY KEY,
                    id_key BLOB NOT NULL UNIQUE,
                    id_text TEXT NOT NULL,
                    payload TEXT NOT NULL
                );
                CREATE TABLE vectors (
                    row_id INTEGER NOT NULL REFERENCES points(row_id) ON DELETE CASCADE,
                    field TEXT NOT NULL,
                    token_count INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (row_id, field)
                ) WITHOUT ROWID;
                """
        )
        try createPendingTable(db)
        try createSegmentsTable(db)
        try db.execute(sql: "ALTER TABLE points ADD COLUMN segment_id INTEGER")
        try db.execute(sql: "ALTER TABLE points ADD COLUMN segment_slot INTEGER")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(configuration), as: UTF8.self)
        for (key, value) in [
            ("schema_version", String(schemaVersion)), ("configuration", json), ("index_generation", "0"),
        ] {
            try db.execute(sql: "INSERT INTO metadata (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    /// Points written since the compressed indexes were built: their ids, with an increasing sequence number so
    /// that a build clears only what it saw. Written in the same transaction as the points.
    static func createPendingTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS index_pending (id_key BLOB PRIMARY KEY NOT NULL, seq INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS index_pending_seq ON index_pending (seq);
                """
        )
    }

    /// The sealed segments: each one's file (in the collection's directory), slot count, size and header
    /// checksum. A point whose vectors are in a segment names it in `points.segment_id`, with its slot there in
    /// `points.segment_slot`, and has no rows in `vectors`; a segment's live slots are exactly the points that
    /// name it, so a delete or a replacement (one transaction on `points`) is its deletion bitmap.
    static func createSegmentsTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS segments (
                    id INTEGER PRIMARY KEY,
                    file_name TEXT NOT NULL,
                    slot_count INTEGER NOT NULL,
                    byte_count INTEGER NOT NULL,
                    header_checksum INTEGER NOT NULL
                );
                """
        )
    }

    /// Upgrades a schema-1 collection: every point stays in the appendable tail.
    private static func addSegments(_ db: Database) throws {
        try createSegmentsTable(db)
        let columns = try db.columns(in: "points").map(\.name)
        if !columns.contains("segment_id") { try db.execute(sql: "ALTER TABLE points ADD COLUMN segment_id INTEGER") }
        if !columns.contains("segment_slot") {
            try db.execute(sql: "ALTER TABLE points ADD COLUMN segment_slot INTEGER")
        }
        try db.execute(
            sql: "UPDATE metadata SET value = ? WHERE key = 'schema_version'",
            arguments: [String(schemaVersion)]
        )
    }

    private static func readConfiguration(
        _ pool: DatabasePool,
        directory: String
    ) throws(TesseraError)
        -> (CollectionConfiguration, Int)
    {
        let location = TesseraError.Location(path: directory, field: "metadata")
        let stored: [String: String] = try guarded(path: directory) {
            try pool.read { db in
                guard try db.tableExists("metadata") else { return [:] }
                return try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, value FROM metadata").map {
                        (row: Row) -> (String, String) in (row["key"], row["value"])
                    }
                )
            }
        }
        guard let version = stored["schema_version"], let json = stored["configuration"] else {
            throw TesseraError(.notFound, "the database holds no collection metadata", location: location)
        }
        guard let number = Int(version), (1...schemaVersion).contains(number) else {
            throw TesseraError(
                .corrupted,
                "schema version \(version) is not one this build reads (1 to \(schemaVersion))",
                location: location
            )
        }
        do {
            return (try JSONDecoder().decode(CollectionConfiguration.self, from: Data(json.utf8)), number)
        } catch {
            throw TesseraError(.corrupted, "stored configuration is unreadable", location: location, cause: "\(error)")
        }
    }

    /// Loads the scoring view: maps each sealed segment (checking its structure, not its values), marks the
    /// slots the points name live with their payloads, then reads the tail's vectors from the database.
    /// - Complexity: O(segments + points + tail bytes): a sealed segment's vectors are not read.
    private static func loadView(
        _ pool: DatabasePool,
        configuration: CollectionConfiguration,
        directory: String,
        hasSegmentColumns: Bool
    )
        throws(TesseraError) -> ScoringView
    {
        let fieldsByName = Dictionary(uniqueKeysWithValues: configuration.fields.map { ($0.name, $0) })
        return try guarded(path: directory) {
            try pool.read { db in
                var view = ScoringView(configuration: configuration)
                if hasSegmentColumns {
                    try loadSegments(db, into: &view, configuration: configuration, directory: directory)
                }
                let cursor = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT p.row_id, p.id_key, p.payload, v.field, v.token_count, v.data
                        FROM points p LEFT JOIN vectors v ON v.row_id = p.row_id
                        \(hasSegmentColumns ? "WHERE p.segment_id IS NULL" : "")
                        ORDER BY p.row_id
                        """
                )
                var currentRow: Int64? = nil
                var currentRowID: Int64 = 0
                var id = PointID.integer(0)
                var payload: JSONObject = [:]
                var blobs: [(field: String, tokenCount: Int, data: Data)] = []
                func flush() throws {
                    guard currentRow != nil else { return }
                    // A field without a row holds no vector.
                    for field in configuration.fields where !blobs.contains(where: { $0.field == field.name }) {
                        blobs.append((field.name, 0, Data()))
                    }
                    view.append(id: id, payload: payload, blobs: blobs, rowID: currentRowID)
                    blobs.removeAll(keepingCapacity: true)
                }
                while let row = try cursor.next() {
                    let rowID: Int64 = row[0]
                    if rowID != currentRow {
                        try flush()
                        currentRow = rowID
                        currentRowID = rowID
                        id = try PointID(sortKey: row[1])
                        payload = try decodePayload(row[2], id: id, directory: directory)
                    }
                    guard let name: String = row[3] else { continue }  // a point without vector rows
                    let tokenCount: Int = row[4]
                    let data: Data = row[5]
                    guard let field = fieldsByName[name] else {
                        throw TesseraError(
                            .corrupted,
                            "point \(id) has a vector for unknown field '\(name)'",
                            location: .init(path: directory, field: "point \(id)")
                        )
                    }
                    try VectorCodec.checkSize(
                        data,
                        tokenCount: tokenCount,
                        dimension: field.dimension,
                        elementType: field.elementType
                    )
                    if field.storesUnitVectors {
                        try checkUnit(data, tokenCount: tokenCount, field: field, id: id, directory: directory)
                    }
                    blobs.append((name, tokenCount, data))
                }
                try flush()
                return view
            }
        }
    }

    /// Maps the recorded segments, in order, and marks the slots that points name live.
    private static func loadSegments(
        _ db: Database,
        into view: inout ScoringView,
        configuration: CollectionConfiguration,
        directory: String
    ) throws {
        var bases: [Int64: (base: Int, segment: SealedSegment)] = [:]
        for row in try Row.fetchAll(
            db,
            sql: "SELECT id, file_name, slot_count, header_checksum FROM segments ORDER BY id"
        ) {
            let id: Int64 = row[0]
            let fileName: String = row[1]
            let path = (directory as NSString).appendingPathComponent(fileName)
            guard FileManager.default.fileExists(atPath: path) else {
                throw TesseraError(
                    .corrupted,
                    "segment \(id)'s file is missing; its points' vectors are only there",
                    location: .init(path: path)
                )
            }
            let segment = try SealedSegment(path: path, id: id, fields: configuration.fields)
            let recordedChecksum: Int64 = row[3]
            guard segment.slotCount == row[2] as Int, UInt64(bitPattern: recordedChecksum) == segment.headerChecksum
            else {
                throw TesseraError(
                    .corrupted,
                    "segment \(id)'s file is not the one the database recorded (slot count or header checksum differs)",
                    location: .init(path: path)
                )
            }
            bases[id] = (view.slotCount, segment)
            view.appendSegment(segment)
        }
        guard !bases.isEmpty else { return }
        let cursor = try Row.fetchCursor(
            db,
            sql: "SELECT row_id, id_key, payload, segment_id, segment_slot FROM points WHERE segment_id IS NOT NULL"
        )
        while let row = try cursor.next() {
            let rowID: Int64 = row[0]
            let id = try PointID(sortKey: row[1])
            let segmentID: Int64 = row[3]
            let local: Int = row[4]
            guard let (base, segment) = bases[segmentID], local >= 0, local < segment.slotCount,
                segment.ids[local] == id, segment.versions[local] == rowID, !view.liveSlots.contains(base + local)
            else {
                throw TesseraError(
                    .corrupted,
                    "point \(id) names slot \(local) of segment \(segmentID), which does not hold it",
                    location: .init(path: directory, field: "point \(id)")
                )
            }
            view.reviveSealed(slot: base + local, payload: try decodePayload(row[2], id: id, directory: directory))
        }
    }

    /// Stored vectors of a cosine field (each token's, for a multivector) are unit vectors (or zero); anything else
    /// is a damaged byte, which would otherwise answer scores far outside [-1, 1]. Tolerance: float16 storage
    /// keeps the squared norm within about 1e-3 of 1.
    static func checkUnit(
        _ data: Data,
        tokenCount: Int,
        field: VectorField,
        id: PointID,
        directory: String
    ) throws(TesseraError) {
        let values = try VectorCodec.decode(
            data,
            tokenCount: tokenCount,
            dimension: field.dimension,
            elementType: field.elementType
        )
        for token in 0..<tokenCount {
            var squaredNorm: Float = 0
            for value in values[(token * field.dimension)..<((token + 1) * field.dimension)] {
                squaredNorm += value * value
            }
            guard squaredNorm == 0 || abs(squaredNorm - 1) <= 1e-2 else {
                let which = field.isMultivector ? "token \(token) of the stored vectors" : "the stored vector"
                throw TesseraError(
                    .corrupted,
                    "\(which) of point \(id) in cosine field '\(field.name)' has norm "
                        + "\(squaredNorm.squareRoot()), not 1: the database is damaged",
                    location: .init(path: directory, field: "point \(id), vector '\(field.name)'")
                )
            }
        }
    }

    static func decodePayload(
        _ text: String,
        id: PointID,
        directory: String
    ) throws(TesseraError) -> JSONObject {
        let parsed: JSONValue
        do {
            // Stored payloads were written by this module; depth is limited only by what a request could send.
            parsed = try JSONValue.parse(text, maximumDepth: .max)
        } catch {
            throw TesseraError(
                .corrupted,
                "payload of point \(id) is not valid JSON",
                location: .init(path: directory, field: "point \(id)"),
                cause: error.message
            )
        }
        guard case .object(let object) = parsed else {
            throw TesseraError(
                .corrupted,
                "payload of point \(id) is not a JSON object",
                location: .init(path: directory, field: "point \(id)")
            )
        }
        return object
    }

    /// Runs `body`, turning GRDB and system errors into ``TesseraError/Code/io`` errors.
    static func guarded<T>(path: String, _ body: () throws -> T) throws(TesseraError) -> T {
        do {
            return try body()
        } catch let error as TesseraError {
            throw error
        } catch let error as DatabaseError
            where [ResultCode.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode.primaryResultCode)
        {
            throw TesseraError(
                .corrupted,
                "the collection's database is damaged: \(error.message ?? "SQLite error \(error.resultCode.rawValue)")",
                location: .init(path: path),
                cause: "\(error)"
            )
        } catch let error as DatabaseError {
            throw TesseraError(
                .io,
                "database operation failed: \(error.message ?? "SQLite error \(error.resultCode.rawValue)")",
                location: .init(path: path),
                cause: "\(error)"
            )
        } catch {
            throw TesseraError(.io, "database operation failed", location: .init(path: path), cause: "\(error)")
        }
    }
}
