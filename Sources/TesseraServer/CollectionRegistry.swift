import Foundation
import HTTPTypes
import Synchronization
public import Tessera

/// How Qdrant describes one named vector, kept beside the collection so that the server can answer in Qdrant's
/// shape and apply Qdrant's rules (cosine multivectors store unit token vectors).
struct VectorParameters: Sendable, Equatable {
    var size: Int
    var distance: Distance
    var multivector: Bool
    var hnswM: Int?
    /// Created as Qdrant's single unnamed vector (`"vectors": {"size": …}`), stored as the field `default` and
    /// written bare in answers.
    var unnamed = false

    var json: JSONValue {
        var object: [String: JSONValue] = ["size": .integer(Int64(size)), "distance": .string(distance.rawValue)]
        if multivector { object["multivector_config"] = .object(["comparator": .string("max_sim")]) }
        if let hnswM { object["hnsw_config"] = .object(["m": .integer(Int64(hnswM))]) }
        return .object(object)
    }
}

/// The open collections under one data directory: one subdirectory per collection, opened on first use and kept
/// open. Names are checked so that a collection cannot escape the data directory.
public final class CollectionRegistry: Sendable {
    /// The data directory.
    public let directory: String
    private let stores = Mutex<[String: CollectionStore]>([:])
    private let parameters = Mutex<[String: [String: VectorParameters]]>([:])
    /// Held while a collection is created or deleted, so that two requests for one name cannot interleave (the
    /// loser of a create race must not remove the winner's files).
    private let lifecycle = Mutex(())
    static let parametersFile = "qdrant-vectors.json"

    /// Creates a registry over a data directory (created when missing).
    /// - Throws: `TesseraError` when the directory cannot be created.
    public init(directory: String) throws(TesseraError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TesseraError(.io, "cannot create the data directory: \(error)", location: .init(path: directory))
        }
    }

    static func checkName(_ name: String) throws(APIError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.isEmpty, name.count <= 255, name != ".", name != "..",
            name.unicodeScalars.allSatisfy({ allowed.contains($0) })
        else {
            throw APIError(
                .badRequest,
                "Validation error in path parameters: [name: collection name '\(name)' may contain only letters, "
                    + "digits, '-', '_' and '.']"
            )
        }
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The names of the collections on disk, sorted.
    public func names() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { name in
            FileManager.default.fileExists(atPath: (path(name) as NSString).appendingPathComponent("collection.sqlite"))
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
        guard exists(name) else { throw APIError(.notFound, "Not found: Collection `\(name)` doesn't exist!") }
        let store: CollectionStore
        do {
            store = try CollectionStore.open(at: path(name))
        } catch {
            throw APIError(from: error)
        }
        return stores.withLock { stores in
            if let existing = stores[name] { return existing }
            stores[name] = store
            return store
        }
    }

    /// Qdrant's description of each vector field of a collection.
    func vectorParameters(_ name: String) throws(APIError) -> [String: VectorParameters] {
        if let known = parameters.withLock({ $0[name] }) { return known }
        let store = try store(name)
        var result: [String: VectorParameters] = [:]
        for field in store.configuration.fields {
            switch field.kind {
            case .dense(let distance):
                result[field.name] = VectorParameters(size: field.dimension, distance: distance, multivector: false)
            case .multivector:
                result[field.name] = VectorParameters(size: field.dimension, distance: .dot, multivector: true)
            }
        }
        let file = (path(name) as NSString).appendingPathComponent(Self.parametersFile)
        if let data = FileManager.default.contents(atPath: file),
            case .object(let stored)? = try? JSONDecoder().decode(JSONValue.self, from: data)
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
        let configuration = CollectionConfiguration(
            fields: fields.keys.sorted().map { field in
                let parameters = fields[field]!
                return VectorField(
                    name: field,
                    dimension: parameters.size,
                    kind: parameters.multivector
                        ? .multivector(comparator: .maxSim) : .dense(distance: parameters.distance),
                    elementType: .float32
                )
            }
        )
        // Files are removed on failure only if this call made the directory.
        let existedBefore = FileManager.default.fileExists(atPath: path(name))
        // Known before the store appears on disk, so that a request racing this one never reads a collection
        // without its Qdrant parameters.
        parameters.withLock { $0[name] = fields }
        let store: CollectionStore
        do {
            store = try CollectionStore.create(at: path(name), configuration: configuration)
            let object = JSONValue.object(
                fields.mapValues { field in
                    guard field.unnamed, case .object(var object) = field.json else { return field.json }
                    object["unnamed"] = .bool(true)
                    return .object(object)
                }
            )
            let data = try JSONEncoder().encode(object)
            try data.write(
                to: URL(fileURLWithPath: (path(name) as NSString).appendingPathComponent(Self.parametersFile)),
                options: .atomic
            )
        } catch {
            parameters.withLock { $0[name] = nil }
            if !existedBefore { try? FileManager.default.removeItem(atPath: path(name)) }
            if let error = error as? TesseraError { throw APIError(from: error) }
            throw APIError(.internalServerError, "Service internal error: \(error)")
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
        let store = stores.withLock { $0.removeValue(forKey: name) }
        parameters.withLock { $0[name] = nil }
        try? store?.close()
        do {
            try FileManager.default.removeItem(atPath: path(name))
        } catch {
            throw APIError(.internalServerError, "Service internal error: cannot delete collection `\(name)`: \(error)")
        }
        return true
    }
}
