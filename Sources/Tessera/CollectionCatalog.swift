import Foundation
import Synchronization
import TesseraPlatform

/// The collections under one data directory: one subdirectory per collection, listed, created, opened on first
/// use and kept open, and deleted. Names are checked so that a collection cannot escape the data directory.
///
/// A catalog that owns its data directory (``init(directory:access:ownsDirectory:)`` with `ownsDirectory`, as a
/// server's does) holds the directory's lock: a second owner on the same folder is refused, and each collection
/// it opens is owned by this process (see ``CollectionStore``'s one-owner rule), so `tessera index` into a
/// collection being served is refused instead of leaving the server's view stale.
///
/// Create and delete are serialised per catalog, so that two requests for one name cannot interleave (the loser
/// of a create race never removes the winner's files). A collection being deleted is first renamed to a hidden
/// name (``deletedPrefix``), so a crash mid-removal leaves no half-deleted collection behind; hidden folders are
/// never listed, and an owning catalog removes the leftovers when it starts.
public final class CollectionCatalog: Sendable {
    /// The data directory.
    public let directory: String
    /// How collections are opened.
    public let access: CollectionStore.Access
    let stores = Mutex<[String: CollectionStore]>([:])
    /// Held while a collection is opened, created or deleted.
    let lifecycle = Mutex(())
    /// The data directory's lock, for a catalog that owns it.
    private let directoryLock: DataDirectoryLock?
    /// The prefix of the hidden name a collection is renamed to while it is deleted.
    public static let deletedPrefix = ".deleted-"
    /// The file whose presence makes a folder a collection.
    static let databaseFile = "collection.sqlite"
    /// The file holding the aliases (hidden: never a collection).
    static let aliasesFile = ".aliases.json"
    /// Alias name → collection name, as stored in ``aliasesFile``.
    let aliasTable = Mutex<[String: String]>([:])

    /// Creates a catalog over a data directory (created when missing).
    /// - Parameters:
    ///   - directory: The data directory.
    ///   - access: How collections are opened: ``CollectionStore/Access/readOnly`` for a reader beside a server.
    ///   - ownsDirectory: Take the data directory's lock (a server does): refused while another process holds it.
    /// - Throws: ``TesseraError/Code/io`` when the directory cannot be created, ``TesseraError/Code/locked`` when
    ///   another process owns it.
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
        let aliases = try Self.loadAliases(at: (directory as NSString).appendingPathComponent(Self.aliasesFile))
        aliasTable.withLock { $0 = aliases }
        if ownsDirectory {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in entries where entry.hasPrefix(Self.deletedPrefix) {
                try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(entry))
            }
            finishInterruptedRecoveries(entries: entries)
        }
    }

    /// Checks a collection name: 1 to 255 bytes of letters, digits, `-`, `_` and `.`, not starting with `.`.
    /// - Parameter name: The name.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for any other name.
    public static func validateName(_ name: String) throws(TesseraError) {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("."),
            name.unicodeScalars.allSatisfy({ allowed.contains($0) })
        else {
            throw TesseraError(
                .invalidArgument,
                "collection name '\(name)' may contain only letters, digits, '-', '_' and '.', and may not start "
                    + "with '.'",
                location: .init(field: "name")
            )
        }
    }

    /// The folder of a collection (whether or not it exists).
    /// - Parameter name: A valid collection name.
    /// - Returns: The folder's path inside the data directory.
    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The names of the collections on disk, sorted.
    /// - Complexity: O(*n* log *n*) in the entries of the data directory.
    public func names() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Hidden names are not collections: a collection being deleted is renamed to one first.
        return entries.filter { !$0.hasPrefix(".") && hasDatabase($0) }.sorted()
    }

    /// Whether a collection exists (a bad name names none).
    public func exists(_ name: String) -> Bool {
        (try? Self.validateName(name)) != nil && hasDatabase(name)
    }

    func hasDatabase(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: (path(name) as NSString).appendingPathComponent(Self.databaseFile))
    }

    /// The open store of a collection, opened on first use and kept open.
    /// - Parameter name: The collection's name.
    /// - Returns: The store (the same one for every call until the collection is deleted).
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad name, ``TesseraError/Code/notFound`` when there
    ///   is no such collection, ``TesseraError/Code/locked`` when another process owns it, and the store's errors.
    public func open(_ name: String) throws(TesseraError) -> CollectionStore {
        try Self.validateName(name)
        if let store = stores.withLock({ $0[name] }) { return store }
        // Opened under the lifecycle lock, so that a delete cannot remove the folder between this check and the
        // store's arrival in the table (a store kept for a deleted folder would acknowledge lost writes).
        return try lifecycle.withLock { _ throws(TesseraError) in try openLocked(name) }
    }

    func openLocked(_ name: String) throws(TesseraError) -> CollectionStore {
        if let store = stores.withLock({ $0[name] }) { return store }
        guard hasDatabase(name) else {
            throw TesseraError(.notFound, "Collection `\(name)` doesn't exist!")
        }
        let store = try CollectionStore.open(at: path(name), access: access)
        stores.withLock { $0[name] = store }
        return store
    }

    /// Creates a collection and keeps its store open.
    /// - Parameters:
    ///   - name: The collection's name.
    ///   - configuration: Its vector fields and settings.
    /// - Returns: The new collection's store.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad name or configuration,
    ///   ``TesseraError/Code/alreadyExists`` when the name is taken, and the store's errors. A failed create
    ///   leaves no folder behind that it made.
    @discardableResult
    public func create(_ name: String, configuration: CollectionConfiguration) throws(TesseraError) -> CollectionStore {
        try Self.validateName(name)
        return try lifecycle.withLock { _ throws(TesseraError) in
            guard !hasDatabase(name) else {
                throw TesseraError(.alreadyExists, "Collection `\(name)` already exists!")
            }
            guard aliasTable.withLock({ $0[name] }) == nil else {
                throw TesseraError(.alreadyExists, "Alias `\(name)` already exists!")
            }
            // Files are removed on failure only if this call made the directory.
            let existedBefore = FileManager.default.fileExists(atPath: path(name))
            let store: CollectionStore
            do throws(TesseraError) {
                store = try CollectionStore.create(at: path(name), configuration: configuration)
            } catch {
                if !existedBefore { try? FileManager.default.removeItem(atPath: path(name)) }
                throw error
            }
            stores.withLock { $0[name] = store }
            return store
        }
    }

    /// Deletes a collection and its files.
    ///
    /// The store is closed first: that waits for the write in progress and refuses later ones, so no write is
    /// acknowledged after the delete is. A collection another process owns is not deleted under it.
    /// - Parameter name: The collection's name.
    /// - Returns: Whether it existed.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a bad name, ``TesseraError/Code/locked`` when another
    ///   process owns the collection, ``TesseraError/Code/io`` when it cannot be renamed away.
    @discardableResult
    public func delete(_ name: String) throws(TesseraError) -> Bool {
        try Self.validateName(name)
        return try lifecycle.withLock { _ throws(TesseraError) in
            guard hasDatabase(name) else { return false }
            // A collection not opened yet is opened, to take its owner lock.
            let store = try openLocked(name)
            stores.withLock { _ = $0.removeValue(forKey: name) }
            try? store.close()
            let trash = (directory as NSString).appendingPathComponent(
                Self.deletedPrefix + name + "-" + UUID().uuidString
            )
            guard rename(path(name), trash) == 0 else {
                throw TesseraError(
                    .io,
                    "cannot delete collection `\(name)`: \(String(cString: strerror(errno)))",
                    location: .init(path: path(name))
                )
            }
            // Gone for every reader from here; a removal that fails leaves a hidden folder removed at the next
            // start. Its aliases go with it (as Qdrant's).
            try? FileManager.default.removeItem(atPath: trash)
            var aliases = aliasTable.withLock { $0 }
            if aliases.values.contains(name) {
                aliases = aliases.filter { $0.value != name }
                try saveAliases(aliases)
                aliasTable.withLock { $0 = aliases }
            }
            return true
        }
    }

    // MARK: Aliases

    /// The collection a name stands for: the collection an alias points at, or the name itself (no name is both,
    /// ``create(_:configuration:)`` and ``updateAliases(_:)`` see to it).
    public func resolve(_ name: String) -> String {
        aliasTable.withLock { $0[name] } ?? name
    }

    /// Every alias and its collection, sorted by alias.
    public func aliases() -> [(alias: String, collection: String)] {
        aliasTable.withLock { $0 }.map { (alias: $0.key, collection: $0.value) }.sorted { $0.alias < $1.alias }
    }

    /// Applies alias changes, all or none, and stores them durably before returning (Qdrant's
    /// `update_collection_aliases`).
    /// - Parameter changes: In order: create (the collection must exist, the alias must not be a collection's
    ///   name; an existing alias of that name is repointed), delete (a missing alias is no error), rename (the old
    ///   alias must exist, the new name must not be a collection's).
    /// - Throws: ``TesseraError/Code/notFound`` for a missing collection or alias, ``TesseraError/Code/alreadyExists``
    ///   for an alias that would shadow a collection, ``TesseraError/Code/invalidArgument`` for a bad name,
    ///   ``TesseraError/Code/io``; then no change is kept.
    public func updateAliases(_ changes: [AliasChange]) throws(TesseraError) {
        try lifecycle.withLock { _ throws(TesseraError) in
            var aliases = aliasTable.withLock { $0 }
            for change in changes {
                switch change {
                case .create(let alias, let collection):
                    try Self.validateName(alias)
                    guard hasDatabase(collection) else {
                        throw TesseraError(.notFound, "Collection `\(collection)` doesn't exist!")
                    }
                    guard !hasDatabase(alias) else {
                        throw TesseraError(.alreadyExists, "Collection `\(alias)` already exists!")
                    }
                    aliases[alias] = collection
                case .delete(let alias):
                    aliases[alias] = nil
                case .rename(let old, let new):
                    try Self.validateName(new)
                    guard !hasDatabase(new) else {
                        throw TesseraError(.alreadyExists, "Collection `\(new)` already exists!")
                    }
                    guard let collection = aliases.removeValue(forKey: old) else {
                        throw TesseraError(.notFound, "Alias `\(old)` doesn't exist!")
                    }
                    aliases[new] = collection
                }
            }
            try saveAliases(aliases)
            aliasTable.withLock { $0 = aliases }
        }
    }

    private func saveAliases(_ aliases: [String: String]) throws(TesseraError) {
        let path = (directory as NSString).appendingPathComponent(Self.aliasesFile)
        let text = JSONValue.object(JSONObject(aliases.mapValues { JSONValue.string($0) })).jsonText
        do {
            try AtomicFile.write(Array(text.utf8), to: path)
        } catch {
            throw TesseraError(.io, "cannot write the aliases: \(error)", location: .init(path: path))
        }
    }

    private static func loadAliases(at path: String) throws(TesseraError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        let value: JSONValue
        do throws(TesseraError) {
            value = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw TesseraError(
                .corrupted,
                "the aliases file is not JSON: \(error.message)",
                location: .init(path: path)
            )
        }
        guard case .object(let object) = value else {
            throw TesseraError(.corrupted, "the aliases file is not a JSON object", location: .init(path: path))
        }
        var aliases: [String: String] = [:]
        for (alias, target) in object {
            guard case .string(let collection) = target else {
                throw TesseraError(
                    .corrupted,
                    "alias `\(alias)` does not name a collection",
                    location: .init(path: path)
                )
            }
            aliases[alias] = collection
        }
        return aliases
    }
}

/// One change of ``CollectionCatalog/updateAliases(_:)``.
public enum AliasChange: Hashable, Sendable {
    /// Points `alias` at `collection`.
    case create(alias: String, collection: String)
    /// Removes an alias.
    case delete(alias: String)
    /// Renames an alias.
    case rename(old: String, new: String)
}
