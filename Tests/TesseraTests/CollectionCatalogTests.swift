import Foundation
import Testing

@testable import Tessera

private func catalogConfiguration() -> CollectionConfiguration {
    CollectionConfiguration(fields: [multivectorField(dimension: 2)])
}

@Suite("CollectionCatalog")
struct CollectionCatalogTests {
    @Test("create, list, open (cached) and delete")
    func lifecycle() throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root + "/data")
            #expect(catalog.names().isEmpty)
            let created = try catalog.create("beta", configuration: catalogConfiguration())
            try catalog.create("alpha", configuration: catalogConfiguration())
            #expect(catalog.names() == ["alpha", "beta"])
            #expect(catalog.exists("alpha"))
            #expect(try catalog.open("beta") === created)
            let again = #expect(throws: TesseraError.self) {
                try catalog.create("beta", configuration: catalogConfiguration())
            }
            #expect(again?.code == .alreadyExists)
            #expect(try catalog.delete("beta"))
            #expect(try !catalog.delete("beta"))
            #expect(catalog.names() == ["alpha"])
            let missing = #expect(throws: TesseraError.self) { try catalog.open("beta") }
            #expect(missing?.code == .notFound)
            // A second catalog over the same folder sees the same collections.
            #expect(try CollectionCatalog(directory: root + "/data").names() == ["alpha"])
        }
    }

    @Test(
        "bad names are refused with invalidArgument",
        arguments: ["", ".hidden", "../escape", "a/b", "sp ace", String(repeating: "x", count: 256)]
    )
    func badNames(name: String) throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root)
            let create = #expect(throws: TesseraError.self) {
                try catalog.create(name, configuration: catalogConfiguration())
            }
            let open = #expect(throws: TesseraError.self) { try catalog.open(name) }
            let delete = #expect(throws: TesseraError.self) { try catalog.delete(name) }
            #expect(
                [create?.code, open?.code, delete?.code] == [.invalidArgument, .invalidArgument, .invalidArgument]
            )
            #expect(!catalog.exists(name))
        }
    }

    @Test("a second owner of the data directory is refused")
    func secondOwner() throws {
        try withTemporaryDirectory { root in
            let lockFile = (root as NSString).appendingPathComponent(DataDirectoryLock.fileName)
            // Another process holds the directory's lock (flock(1) takes the same advisory lock).
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            holder.arguments = [lockFile, "-c", "echo held; sleep 3"]
            let output = Pipe()
            holder.standardOutput = output
            try holder.run()
            // The holder lets go by itself after a few seconds (flock(1) waits for its command to end).
            defer { holder.waitUntilExit() }
            _ = output.fileHandleForReading.availableData
            let refused = #expect(throws: TesseraError.self) {
                try CollectionCatalog(directory: root, ownsDirectory: true)
            }
            #expect(refused?.code == .locked)
            // A catalog that does not claim the directory opens beside the owner.
            #expect(try CollectionCatalog(directory: root, access: .readOnly).names().isEmpty)
        }
    }

    @Test("a collection being deleted is never listed, and an owner removes the leftovers")
    func deletedNeverListed() throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root)
            try catalog.create("docs", configuration: catalogConfiguration())
            // What a crash in the middle of a delete leaves: the collection renamed to a hidden name.
            let hidden = (root as NSString).appendingPathComponent(CollectionCatalog.deletedPrefix + "docs-1")
            try FileManager.default.copyItem(atPath: catalog.path("docs"), toPath: hidden)
            #expect(try catalog.delete("docs"))
            #expect(catalog.names().isEmpty)
            #expect(!catalog.exists(CollectionCatalog.deletedPrefix + "docs-1"))
            #expect(FileManager.default.fileExists(atPath: hidden))
            _ = try CollectionCatalog(directory: root, ownsDirectory: true)
            #expect(!FileManager.default.fileExists(atPath: hidden))
        }
    }

    @Test("aliases resolve, apply all or none, persist, and go with their collection")
    func aliases() throws {
        try withTemporaryDirectory { root in
            let catalog = try CollectionCatalog(directory: root + "/data")
            try catalog.create("alpha", configuration: catalogConfiguration())
            try catalog.create("beta", configuration: catalogConfiguration())
            try catalog.updateAliases([
                .create(alias: "live", collection: "alpha"), .create(alias: "b", collection: "beta"),
            ])
            #expect(catalog.resolve("live") == "alpha")
            #expect(catalog.resolve("alpha") == "alpha")
            #expect(catalog.resolve("other") == "other")
            // A refused change keeps none of the batch.
            for refused: AliasChange in [
                .create(alias: "x", collection: "missing"), .create(alias: "beta", collection: "alpha"),
                .rename(old: "nope", new: "y"), .create(alias: "../bad", collection: "alpha"),
            ] {
                #expect(throws: TesseraError.self) {
                    try catalog.updateAliases([.delete(alias: "live"), refused])
                }
            }
            #expect(catalog.aliases().map(\.alias) == ["b", "live"])
            let taken = #expect(throws: TesseraError.self) {
                try catalog.create("live", configuration: catalogConfiguration())
            }
            #expect(taken?.code == .alreadyExists)
            try catalog.updateAliases([.rename(old: "live", new: "current"), .create(alias: "b", collection: "alpha")])
            let reopened = try CollectionCatalog(directory: root + "/data")
            #expect(reopened.aliases().map { "\($0.alias)=\($0.collection)" } == ["b=alpha", "current=alpha"])
            #expect(try reopened.delete("alpha"))
            #expect(reopened.aliases().isEmpty)
            #expect(try CollectionCatalog(directory: root + "/data").aliases().isEmpty)
        }
    }
}
