// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TesseraPlatform", targets: ["TesseraPlatform"]),
        .library(name: "MaxSim", targets: ["MaxSim"]),
        .library(name: "TesseraEncoder", targets: ["TesseraEncoder"]),
        .library(name: "TesseraIndex", targets: ["TesseraIndex"]),
        .library(name: "Tessera", targets: ["Tessera"]),
        .library(name: "TesseraQdrant", targets: ["TesseraQdrant"]),
        .library(name: "TesseraCluster", targets: ["TesseraCluster"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // C hot loops only: ISA variants chosen at run time, no allocation, no strings. Optimised in every
        // configuration: the encoder's projections run here, and an unoptimised debug build of them would make
        // every test that encodes text many times slower.
        .target(name: "CMaxSimKernels", cSettings: [.unsafeFlags(["-O2"])]),
        // BLAS shim: OpenBLAS (Debian's libopenblas-dev) on Linux, Accelerate on Apple platforms.
        .target(
            name: "CBLAS",
            linkerSettings: [
                .linkedLibrary("openblas", .when(platforms: [.linux])),
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS])),
            ]
        ),
        // The bottom of the module graph: mapped files, syscalls (EINTR), atomic file replacement, parallel-for,
        // GEMM and the seeded generator, written once for every module above.
        .target(name: "TesseraPlatform", dependencies: ["CBLAS"]),
        .target(name: "MaxSim", dependencies: ["CMaxSimKernels", "TesseraPlatform"]),
        .target(name: "TesseraEncoder", dependencies: ["CBLAS", "CMaxSimKernels", "TesseraPlatform"]),
        // hnswlib (Debian's header-only libhnswlib-dev) behind a C interface, for the dense first stage.
        .target(name: "CHNSW", cxxSettings: [.unsafeFlags(["-O3"])]),
        // The compressed multivector index (k-means, residual codec, WARP-style scoring) and the dense HNSW index.
        .target(name: "TesseraIndex", dependencies: ["MaxSim", "CMaxSimKernels", "CBLAS", "CHNSW", "TesseraPlatform"]),
        // Collections on disk: configuration, SQLite store (GRDB), filters, in-memory scoring columns.
        .target(
            name: "Tessera",
            dependencies: [
                "MaxSim", "TesseraEncoder", "TesseraIndex", "TesseraPlatform",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Qdrant's REST wire types (Codable, decoded from Tessera's own JSON parser) and their conversion to and
        // from the library's values.
        .target(name: "TesseraQdrant", dependencies: ["Tessera", "MaxSim", "TesseraIndex"]),
        // Sharded, replicated collections over several `tessera serve` nodes: membership, placement and replica
        // states in etcd (its v3 JSON gateway), scatter-gather between nodes over HTTP/1.1 (SwiftNIO).
        .target(
            name: "TesseraCluster",
            dependencies: [
                "Tessera",
                "TesseraQdrant",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // `tessera serve`: a Qdrant-compatible REST subset over the query pipeline (Hummingbird 2).
        .target(
            name: "TesseraServer",
            dependencies: [
                "Tessera",
                "TesseraQdrant",
                "TesseraCluster",
                "MaxSim",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        // Used only by TesseraTests' crash test: ingests into a collection until it is killed.
        .executableTarget(
            name: "tessera-crash-probe",
            dependencies: ["Tessera", "TesseraPlatform"],
            path: "Sources/TesseraCrashProbe"
        ),
        .target(
            name: "TesseraTestSupport",
            dependencies: ["MaxSim", "TesseraPlatform"],
            path: "Sources/TesseraTestSupport"
        ),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "MaxSim",
                "CBLAS",
                "Tessera",
                "TesseraEncoder",
                "TesseraIndex",
                "TesseraPlatform",
                "TesseraQdrant",
                "TesseraServer",
                "TesseraCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TesseraPlatformTests", dependencies: ["TesseraPlatform"]),
        .testTarget(name: "MaxSimTests", dependencies: ["MaxSim", "CMaxSimKernels", "TesseraTestSupport"]),
        .testTarget(
            name: "TesseraTests",
            dependencies: [
                "Tessera", "TesseraEncoder", "TesseraQdrant", "TesseraIndex", "MaxSim", "TesseraPlatform",
                "TesseraTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "TesseraQdrantTests", dependencies: ["TesseraQdrant", "Tessera"]),
        .testTarget(
            name: "TesseraClusterTests",
            dependencies: [
                "TesseraCluster", "Tessera",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TesseraServerTests",
            dependencies: [
                "TesseraServer", "Tessera", "TesseraQdrant", "TesseraIndex", "MaxSim",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "TesseraIndexTests",
            dependencies: ["TesseraIndex", "MaxSim", "TesseraPlatform", "TesseraTestSupport"]
        ),
        .testTarget(
            name: "TesseraEncoderTests",
            dependencies: ["TesseraEncoder", "CMaxSimKernels", "TesseraPlatform", "TesseraTestSupport"],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)

// Shared Swift settings, applied once. None of them changes generated code:
// - ExistentialAny: `any P` is spelled out, so existential costs are visible at the use site.
// - MemberImportVisibility: a member is visible only where its module is imported.
// - InternalImportsByDefault: a dependency's types leak into our API only through `public import`.
for target in package.targets
where target.type != .system && !["CMaxSimKernels", "CBLAS", "CHNSW"].contains(target.name) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
