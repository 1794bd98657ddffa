import Foundation
import GRDB
import Synchronization

/// One collection on disk: a directory holding a SQLite database (through GRDB, WAL mode, `synchronous = FULL`)
/// that is the source of truth for points, payloads and vectors, plus an in-memory ``ScoringView`` kept in step.
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
///   while a reader still holds a view copies the arrays it changes (once per write, O(collection size)).
///   Release views promptly.
/// - The store is `Sendable`; share one instance per directory. Two stores on the same directory in one process,
///   or in two processes, would each keep their own view and miss the other's writes.
public final class CollectionStore: Sendable {
    /// The collection's directory.
    public let directory: String
    /// The configuration stored in the collection.
    public let configuration: CollectionConfiguration
    /// When more than this fraction of a column's tokens belong to deleted slots, the view is compacted.
    public let compactionThreshold: Double

    let pool: DatabasePool
    let view: Mutex<ScoringView>
    /// The compressed index of each multivector field that has one, loaded at first use.
    let compressedStates = Mutex<[String: CompressedFieldState]>([:])
    let textIndexes = TextIndexCache()
    /// The HNSW graph of each dense field that has one, loaded at first use.
    let denseStates = Mutex<[String: DenseFieldState]>([:])

    static let databaseFileName = "collection.sqlite"
    static let schemaVersion = 1

    private init(
        directory: String,
        pool: DatabasePool,
        configuration: CollectionConfiguration,
        view: ScoringView,
        compactionThreshold: Double
    ) {
        self.directory = directory
        self.pool = pool
        self.configuration = configuration
        self.view = Mutex(view)
        self.compactionThreshold = compactionThreshold
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
        let pool = try openPool(directory: directory, createDirectory: true)
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
    ///   - compactionThreshold: The deleted-token fraction above which the scoring view is compacted.
    /// - Returns: The open store.
    /// - Throws: ``TesseraError/Code/notFound`` when there is no collection,
    ///   ``TesseraError/Code/configurationMismatch`` naming the first differing field and both values,
    ///   ``TesseraError/Code/corrupted`` for unreadable stored data, ``TesseraError/Code/io``.
    /// - Complexity: O(stored bytes).
    public static func open(
        at directory: String,
        expecting expected: CollectionConfiguration? = nil,
        compactionThreshold: Double = 0.25
    ) throws(TesseraError) -> CollectionStore {
        let file = (directory as NSString).appendingPathComponent(databaseFileName)
        guard FileManager.default.fileExists(atPath: file) else {
            throw TesseraError(.notFound, "no collection at this path", location: .init(path: directory))
        }
        let pool = try openPool(directory: directory, createDirectory: false)
        let configuration = try readConfiguration(pool, directory: directory)
        // Collections created before the compressed index lack the pending table.
        try guarded(path: directory) { try pool.write { db in try createPendingTable(db) } }
        if let expected, let mismatch = configuration.mismatch(expected: expected, path: directory) {
            try? pool.close()
            throw mismatch
        }
        let view = try loadView(pool, configuration: configuration, directory: directory)
        return CollectionStore(
            directory: directory,
            pool: pool,
            configuration: configuration,
            view: view,
            compactionThreshold: compactionThreshold
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

    /// Closes the database connections. Later calls on this store throw ``TesseraError/Code/io``.
    /// - Throws: ``TesseraError/Code/io`` when SQLite cannot close (a statement is still in use).
    public func close() throws(TesseraError) {
        try Self.guarded(path: directory) { try pool.close() }
    }

    private static func openPool(directory: String, createDirectory: Bool) throws(TesseraError) -> DatabasePool {
        try guarded(path: directory) {
            if createDirectory {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            var config = Configuration()
            config.foreignKeysEnabled = true
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

    private static func readConfiguration(
        _ pool: DatabasePool,
        directory: String
    ) throws(TesseraError)
        -> CollectionConfiguration
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
        guard version == String(schemaVersion) else {
            throw TesseraError(
                .corrupted,
                "schema version \(version) is not one this build reads (\(schemaVersion))",
                location: location
            )
        }
        do {
            return try JSONDecoder().decode(CollectionConfiguration.self, from: Data(json.utf8))
        } catch {
            throw TesseraError(.corrupted, "stored configuration is unreadable", location: location, cause: "\(error)")
        }
    }

    private static func loadView(
        _ pool: DatabasePool,
        configuration: CollectionConfiguration,
        directory: String
    )
        throws(TesseraError) -> ScoringView
    {
        let fieldsByName = Dictionary(uniqueKeysWithValues: configuration.fields.map { ($0.name, $0) })
        return try guarded(path: directory) {
            try pool.read { db in
                var view = ScoringView(configuration: configuration)
                let cursor = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT p.row_id, p.id_key, p.payload, v.field, v.token_count, v.data
                        FROM points p JOIN vectors v ON v.row_id = p.row_id
                        ORDER BY p.row_id
                        """
                )
                var currentRow: Int64? = nil
                var id = PointID.integer(0)
                var payload: [String: JSONValue] = [:]
                var blobs: [(field: String, tokenCount: Int, data: Data)] = []
                func flush() throws {
                    guard currentRow != nil else { return }
                    if blobs.count != configuration.fields.count {
                        throw TesseraError(
                            .corrupted,
                            "point \(id) has \(blobs.count) vector fields; the collection has "
                                + "\(configuration.fields.count)",
                            location: .init(path: directory, field: "point \(id)")
                        )
                    }
                    view.append(id: id, payload: payload, blobs: blobs)
                    blobs.removeAll(keepingCapacity: true)
                }
                while let row = try cursor.next() {
                    let rowID: Int64 = row[0]
                    if rowID != currentRow {
                        try flush()
                        currentRow = rowID
                        id = try PointID(sortKey: row[1])
                        payload = try decodePayload(row[2], id: id, directory: directory)
                    }
                    let name: String = row[3]
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
                    blobs.append((name, tokenCount, data))
                }
                try flush()
                return view
            }
        }
    }

    static func decodePayload(
        _ text: String,
        id: PointID,
        directory: String
    ) throws(TesseraError) -> [String: JSONValue] {
        do {
            return try JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8))
        } catch {
            throw TesseraError(
                .corrupted,
                "payload of point \(id) is not a JSON object",
                location: .init(path: directory, field: "point \(id)"),
                cause: "\(error)"
            )
        }
    }

    /// Runs `body`, turning GRDB and system errors into ``TesseraError/Code/io`` errors.
    static func guarded<T>(path: String, _ body: () throws -> T) throws(TesseraError) -> T {
        do {
            return try body()
        } catch let error as TesseraError {
            throw error
        } catch {
            throw TesseraError(.io, "database operation failed", location: .init(path: path), cause: "\(error)")
        }
    }
}
