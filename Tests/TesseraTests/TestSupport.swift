import Foundation
import Tessera
import TesseraPlatform
import Testing

extension SplitMix64 {
    /// A generator seeded from `TESSERA_TEST_SEED` when set, else from the clock; the seed is printed.
    static func printed(_ label: String) -> SplitMix64 {
        let seed =
            ProcessInfo.processInfo.environment["TESSERA_TEST_SEED"].flatMap { UInt64($0) }
            ?? UInt64(Date().timeIntervalSince1970 * 1000)
        print("\(label): seed \(seed) (replay with TESSERA_TEST_SEED=\(seed))")
        return SplitMix64(seed: seed)
    }
}

/// A fresh temporary directory, removed when `body` returns or throws.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tessera-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// `withTemporaryDirectory` for async bodies.
func withTemporaryDirectoryAsync<R>(_ body: (String) async throws -> R) async throws -> R {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tessera-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A collection directory inside a temporary directory (the directory itself does not exist yet).
func withCollectionPath<R>(_ body: (String) throws -> R) throws -> R {
    try withTemporaryDirectory { root in try body(root + "/collection") }
}

func multivectorField(_ name: String = "tokens", dimension: Int = 4, _ type: ElementType = .float32) -> VectorField {
    VectorField(name: name, dimension: dimension, kind: .multivector(comparator: .maxSim), elementType: type)
}

/// A dense field; dot product by default, so that stored values read back as given (cosine fields store unit
/// vectors).
func denseField(
    _ name: String = "dense",
    dimension: Int = 3,
    _ type: ElementType = .float32,
    distance: Distance = .dot
) -> VectorField {
    VectorField(name: name, dimension: dimension, kind: .dense(distance: distance), elementType: type)
}

/// Random token rows with values in [-1, 1].
func randomRows(tokenCount: Int, dimension: Int, using random: inout SplitMix64) -> [[Float]] {
    (0..<tokenCount).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &random) } }
}

/// Flattens a record's vector value, failing the test when it is missing.
func storedValues(_ record: Record?, _ field: String) -> [Float] {
    guard let value = record?.vectors?[field] else {
        Issue.record("record has no vector '\(field)'")
        return []
    }
    return value.flattened.values
}

/// The package's root folder (this file is `Tests/TesseraTests/TestSupport.swift`).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The path of one of the package's executables: the environment variable `environment` when set, else next to
/// the test bundle (SwiftPM puts every product of the package in one folder), else under `.build/debug`.
func packageExecutable(named name: String, environment: String) -> String? {
    if let path = ProcessInfo.processInfo.environment[environment] { return path }
    var candidates: [URL] = []
    for start in [Bundle.main.executableURL, Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])] {
        guard var directory = start?.deletingLastPathComponent() else { continue }
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent(name))
            directory = directory.deletingLastPathComponent()
        }
    }
    candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
    return candidates.map(\.path).first { FileManager.default.isExecutableFile(atPath: $0) }
}
