import Foundation
import HTTPTypes
import Synchronization
public import Tessera
import TesseraQdrant

/// How Qdrant describes one named vector: read from the collection's configuration, so that the server answers
/// in Qdrant's shape.
struct VectorParameters: Sendable, Equatable {
    var size: Int
    var distance: Distance
    var multivector: Bool
    var hnswM: Int?
    /// For a sparse field, its modifier (`size`, `distance` and `multivector` then do not apply).
    var sparse: SparseModifier? = nil
    /// Created as Qdrant's single unnamed vector (`"vectors": {"size": …}`), stored as the field `default` and
    /// written bare in answers.
    var unnamed = false
    /// A cosine multivector of a collection made before its configuration recorded the token distance (the side
    /// file did): the server scales its token vectors, as it did then. Every newer collection leaves that to the
    /// library.
    var legacyTokenNormalization = false

    /// The field's parameters as Qdrant writes them.
    var wire: Qdrant.VectorParams {
        Qdrant.VectorParams(size: size, distance: distance, multivector: multivector, hnswM: hnswM)
    }
}

extension VectorParameters {
    /// The parameters of a field a create request gives.
    init(_ wire: Qdrant.VectorParams, unnamed: Bool) {
        self.init(
            size: wire.size,
            distance: wire.distance,
            multivector: wire.multivectorConfig != nil,
            hnswM: wire.hnswConfig?.m,
            unnamed: unnamed
        )
    }
}

/// The server's view of a ``CollectionCatalog``: the catalog's collections, with what only Qdrant's API needs on
/// top (each vector field's parameters in Qdrant's shape, and the side file `qdrant-vectors.json` of collections
/// made before their configuration held them), and the catalog's errors in Qdrant's status and wording.
public final class CollectionRegistry: Sendable {
    /// The collections.
    public let catalog: CollectionCatalog
    /// What the background optimiser is doing.
    public let optimizer = OptimizerMonitor()
    /// Qdrant's parameters of each collection, with the store they were read from: a collection deleted and made
    /// again under the same name is read afresh.
    private let parameters = Mutex<[String: (store: ObjectIdentifier, fields: [String: VectorParameters])]>([:])
    static let parametersFile = "qdrant-vectors.json"

    /// The data directory.
    public var directory: String { catalog.directory }

    /// Creates a registry over a catalog.
    public init(catalog: CollectionCatalog) {
        self.catalog = catalog
    }

    /// Creates a registry over a new catalog of a data directory (created when missing).
    /// - Parameters:
    ///   - directory: The data directory.
    ///   - access: How collections are opened: ``CollectionStore/Access/readOnly`` for a reader beside a server.
    ///   - ownsDirectory: Take the data directory's lock (a server does): refused while another process holds it.
    /// - Throws: `TesseraError` when the directory cannot be created, ``TesseraError/Code/locked`` when another
    ///   process owns it.
    public convenience init(
        directory: String,
        access: CollectionStore.Access = .readWrite,
        ownsDirectory: Bool = false
    ) throws(TesseraError) {
        self.init(catalog: try CollectionCatalog(directory: directory, access: access, ownsDirectory: ownsDirectory))
    }

    /// Checks a collection name, with Qdrant's wording for a bad one.
    static func checkName(_ name: String) throws(APIError) {
        do {
            try CollectionCatalog.validateName(name)
        } catch {
            throw APIError(.badRequest, "Validation error in path parameters: [name: \(error.message)]")
        }
    }

    /// The names of the collections on disk, sorted.
    public func names() -> [String] { catalog.names() }

    /// Whether a collection exists.
    public func exists(_ name: String) -> Bool { catalog.exists(name) }

    /// The collection a name stands for (an alias's collection, or the name itself).
    public func resolve(_ name: String) -> String { catalog.resolve(name) }

    /// The aliases and their collections, sorted by alias.
    public func aliases() -> [(alias: String, collection: String)] { catalog.aliases() }

    /// Applies alias changes, all or none.
    /// - Throws: ``APIError`` 404 for a missing collection or alias, 409 for a name taken by a collection, 400 for
    ///   a bad name.
    public func updateAliases(_ changes: [AliasChange]) throws(APIError) {
        do { try catalog.updateAliases(changes) } catch { throw APIError(from: error) }
    }

    /// The open store of a collection.
    /// - Throws: ``APIError`` 404 when it does not exist.
    public func store(_ name: String) throws(APIError) -> CollectionStore {
        try Self.checkName(name)
        do {
            return try catalog.open(name)
        } catch {
            throw APIError(from: error)
        }
    }

    /// Qdrant's description of each vector field of a collection, read from the collection's own configuration
    /// (collections created before it held these read the side file `qdrant-vectors.json` they were made with).
    func vectorParameters(_ name: String) throws(APIError) -> [String: VectorParameters] {
        let store = try store(name)
        let identity = ObjectIdentifier(store)
        if let known = parameters.withLock({ $0[name] }), known.store == identity { return known.fields }
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
            case .sparse(let modifier):
                result[field.name] = VectorParameters(
                    size: 0,
                    distance: .dot,
                    multivector: false,
                    hnswM: nil,
                    sparse: modifier
                )
            }
            result[field.name]?.unnamed = configuration.unnamedVector == true
        }
        let file = (catalog.path(name) as NSString).appendingPathComponent(Self.parametersFile)
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
        parameters.withLock { $0[name] = (identity, result) }
        return result
    }

    /// Creates a collection.
    /// - Throws: ``APIError`` 409 when it exists, 400 for a bad configuration.
    func create(
        _ name: String,
        fields: [String: VectorParameters],
        optimizers: Qdrant.OptimizersConfig? = nil
    ) throws(APIError) {
        try Self.checkName(name)
        // Every Qdrant parameter lives in the collection's own configuration: copying the database copies them.
        let configuration = CollectionConfiguration(
            fields: fields.keys.sorted().map { field in
                let parameters = fields[field]!
                if let modifier = parameters.sparse { return VectorField.sparse(name: field, modifier: modifier) }
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
        do {
            // Checked before the collection exists, so that a bad value creates nothing.
            let settings = try optimizers?.applied(to: OptimizerSettings())
            let store = try catalog.create(name, configuration: configuration)
            if let settings { try store.setOptimizerSettings(settings) }
            parameters.withLock { $0[name] = (ObjectIdentifier(store), fields) }
        } catch {
            throw APIError(from: error)
        }
    }

    /// Deletes a collection and its files.
    /// - Returns: Whether it existed.
    func delete(_ name: String) throws(APIError) -> Bool {
        try Self.checkName(name)
        do {
            return try catalog.delete(name)
        } catch {
            throw APIError(from: error)
        }
    }
}
