import Foundation
import HTTPTypes
import Synchronization
public import Tessera

/// How Qdrant describes one named vector: read from the collection's configuration, so that the server answers
/// in Qdrant's shape.
struct VectorParameters: Sendable, Equatable {
    var size: Int
    var distance: Distance
    var multivector: Bool
    var hnswM: Int?
    /// Created as Qdrant's single unnamed vector (`"vectors": {"size": …}`), stored as the field `default` and
    /// written bare in answers.
    var unnamed = false
    /// A cosine multivector of a collection made before its configuration recorded the token distance (the side
    /// file did): the server scales its token vectors, as it did then. Every newer collection leaves that to the
    /// library.
    var legacyTokenNormalization = false

    var json: JSONValue {
        var object: JSONObject = ["size": .integer(Int64(size)), "distance": .string(distance.rawValue)]
        if multivector { object["multivector_config"] = .object(["comparator": .string("max_sim")]) }
        if let hnswM { object["hnsw_config"] = .object(["m": .integer(Int64(hnswM))]) }
        return .object(object)
    }
}

/// The open collections under one data directory: one subdirectory per collection, opened on first use and kept
/// open. Names are checked so that a collection cannot escape the data directory.
///
/// A server's registry owns its data directory (``init(directory:access:ownsDirectory:)`` with `ownsDirectory`):
/// a second server on the same folder is refused at start, and each collection it opens is owned by this process
/// (see ``CollectionStore``'s one-owner rule), so `tessera index` into a collection being served is refused
/// instead of leaving the server's view stale.
public final class CollectionRegistry: Sendable {
    /// The data directory.
    public let directory: String
    /// How collections are opened.
    public let access: CollectionStore.Access
    private let stores = Mutex<[String: CollectionStore]>([:])
    private let parameters = Mutex<[String: [String: VectorParameters]]>([:])
    /// Held while a collection is created or deleted, so that two requests for one name cannot interleave (the
    /// loser of a create race must not remove the winner's files).
    private let lifecycle = Mutex(())
    /// The data directory's lock, for a registry that owns it.
    private let directoryLock: DataDirectoryLock?
    static let parametersFile = "qdrant-vectors.json"
    /// Collections being deleted are renamed to this prefix first, so that a crash mid-removal leaves no
    /// half-deleted collection behind (leftovers are removed at the next start).
    static let deletedPrefix = ".deleted-"

    /// Creates a registry over a data directory (created when missing).
    /// - Parameters:
    ///   - directory: The data directory.
    ///   - access: How collections are opened: ``CollectionStore/Access/readOnly`` for a reader beside a server.
    ///   - ownsDirectory: Take the data directory's lock (a server does): refused while another process holds it.
    /// - Throws: `TesseraError` when the directory cannot be created, ``TesseraError/Code/locked`` when another
    ///   process owns it.
    public init(
        directory: String,
        access: CollectionStore.Access = .readWrite,
        ownsDirectory: Bool = false
    ) throws(TesseraError) {
        self.directory = directory
        self.access = access
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TesseraError(.io, "cannot create the data directory: \(error)", location: .init(path: directory))
        }
        directoryLock = ownsDirectory ? try DataDirectoryLock(directory: directory) : nil
        if ownsDirectory {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in entries where entry.hasPrefix(Self.deletedPrefix) {
                try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(entry))
            }
        }
    }

    static func checkName(_ name: String) throws(APIError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("."),
            name.unicodeScalars.allSatisfy({ allowed.contains($0) })
        else {
            throw APIError(
                .badRequest,
                "Validation error in path parameters: [name: collection name '\(name)' may contain only letters, "
                    + "digits, '-', '_' and '.', and may not start with '.']"
            )
        }
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The names of the collections on disk, sorted.
    public func names() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Hidden names are not collections: a collection being deleted is renamed to one first.
        return entries.filter { name in
            !name.hasPrefix(".")
                && FileManager.default.fileExists(
                    atPath: (path(name) as NSString).appendingPathComponent("collection.sqlite")
                )
        }.sorted()
    }

    /// Whether a collection exists.
    public func exists(_ name: String) -> Bool {
        (try? Self.checkName(name)) != nil
            && FileManager.default.fileExists(
                atPath: (path(name) as NSString).appendingPathComponent("collection.sqlite")
            )
    }

    /// The open store of a collection.
    /// - Throws: ``APIError`` 404 when it does not exist.
    public func store(_ name: String) throws(APIError) -> CollectionStore {
        try Self.checkName(name)
        if let store = stores.withLock({ $0[name] }) { return store }
        // Opened under the lifecycle lock, so that a delete cannot remove the folder between this check and the
        // store's arrival in the table (a store kept for a deleted folder would acknowledge lost writes).
        return try lifecycle.withLock { _ throws(APIError) in try openLocked(name) }
    }

    private func openLocked(_ name: String) throws(APIError) -> CollectionStore {
        if let store = stores.withLock({ $0[name] }) { return store }
        guard exists(name) else { throw APIError(.notFound, "Not found: Collection `\(name)` doesn't exist!") }
        let store: CollectionStore
        do {
            store = try CollectionStore.open(at: path(name), access: access)
        } catch {
            throw APIError(from: error)
        }
        stores.withLock { $0[name] = store }
        return store
    }

    /// Qdrant's description of each vector field of a collection, read from the collection's own configuration
    /// (collections created before it held these read the side file `qdrant-vectors.json` they were made with).
    func vectorParameters(_ name: String) throws(APIError) -> [String: VectorParameters] {
        if let known = parameters.withLock({ $0[name] }) { return known }
        let store = try store(name)
        let configuration = store.configuration
        var result: [String: VectorParameters] = [:]
        for field in configuration.fields {
            switch field.kind {
            case .dense(let distance):
                result[field.name] = VectorParameters(
                    size: field.dimension,
                    distance: distance,
                    multivector: false,
                    hnswM: field.hnswM
                )
            case .multivector:
                result[field.name] = VectorParameters(
                    size: field.dimension,
                    distance: field.multivectorDistance ?? .dot,
                    multivector: true,
                    hnswM: field.hnswM
                )
            }
            result[field.name]?.unnamed = configuration.unnamedVector == true
        }
        let file = (path(name) as NSString).appendingPathComponent(Self.parametersFile)
        if configuration.unnamedVector == nil, let data = FileManager.default.contents(atPath: file),
            case .object(let stored)? = try? JSONValue.parse(utf8: data)
        {
            for (field, value) in stored {
                guard case .object(let object) = value, var known = result[field] else { continue }
                if case .string(let distance)? = object["distance"], let parsed = Distance(rawValue: distance) {
                    known.distance = parsed
                }
                if case .object(let hnsw)? = object["hnsw_config"], case .integer(let m)? = hnsw["m"] {
                    known.hnswM = Int(m)
                }
                known.unnamed = object["unnamed"] == .bool(true)
                known.legacyTokenNormalization = known.multivector && known.distance == .cosine
                result[field] = known
            }
        }
        parameters.withLock { $0[name] = result }
        return result
    }

    /// Creates a collection.
    /// - Throws: ``APIError`` 409 when it exists, 400 for a bad configuration.
    func create(_ name: String, fields: [String: VectorParameters]) throws(APIError) {
        try Self.checkName(name)
        try lifecycle.withLock { _ throws(APIError) in try createLocked(name, fields: fields) }
    }

    private func createLocked(_ name: String, fields: [String: VectorParameters]) throws(APIError) {
        guard !exists(name) else {
            throw APIError(.conflict, "Wrong input: Collection `\(name)` already exists!")
        }
        // Every Qdrant parameter lives in the collection's own configuration: copying the database copies them.
        let configuration = CollectionConfiguration(
            fields: fields.keys.sorted().map { field in
                let parameters = fields[field]!
                return VectorField(
                    name: field,
                    dimension: parameters.size,
                    kind: parameters.multivector
                        ? .multivector(comparator: .maxSim) : .dense(distance: parameters.distance),
                    elementType: .float32,
                    multivectorDistance: parameters.multivector ? parameters.distance : nil,
                    hnswM: parameters.hnswM
                )
            },
            unnamedVector: fields.values.contains { $0.unnamed }
        )
        // Files are removed on failure only if this call made the directory.
        let existedBefore = FileManager.default.fileExists(atPath: path(name))
        // Known before the store appears on disk, so that a request racing this one never reads a collection
        // without its Qdrant parameters.
        parameters.withLock { $0[name] = fields }
        let store: CollectionStore
        do {
            store = try CollectionStore.create(at: path(name), configuration: configuration)
        } catch {
            parameters.withLock { $0[name] = nil }
            if !existedBefore { try? FileManager.default.removeItem(atPath: path(name)) }
            throw APIError(from: error)
        }
        stores.withLock { $0[name] = store }
    }

    /// Deletes a collection and its files.
    /// - Returns: Whether it existed.
    func delete(_ name: String) throws(APIError) -> Bool {
        try Self.checkName(name)
        return try lifecycle.withLock { _ throws(APIError) in try deleteLocked(name) }
    }

    private func deleteLocked(_ name: String) throws(APIError) -> Bool {
        guard exists(name) else { return false }
        var store = stores.withLock { $0.removeValue(forKey: name) }
        // A collection not opened yet is opened, to take its owner lock: one that another process owns is not
        // deleted under it.
        if store == nil { store = try openLocked(name) }
        stores.withLock { _ = $0.removeValue(forKey: name) }
        parameters.withLock { $0[name] = nil }
        // Closing waits for the write in progress and refuses later ones: no write is acknowledged after the
        // delete is.
        try? store?.close()
        let trash = (directory as NSString).appendingPathComponent(Self.deletedPrefix + name + "-" + UUID().uuidString)
        guard rename(path(name), trash) == 0 else {
            throw APIError(
                .internalServerError,
                "Service internal error: cannot delete collection `\(name)`: \(String(cString: strerror(errno)))"
            )
        }
        // Gone for every reader from here; a removal that fails leaves a hidden folder removed at the next start.
        try? FileManager.default.removeItem(atPath: trash)
        return true
    }
}
