import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import MaxSim
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
public import Tessera
public import TesseraCluster
import TesseraQdrant
import UnixSignals

extension APIError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        ServerResponse.error(self, since: nil)
    }
}

/// JSON responses in Qdrant's envelope.
enum ServerResponse {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        // Non-finite numbers (a Dot score that overflows Float) are written as null, as Qdrant's serialiser does.
        var buffer = ByteBuffer()
        buffer.writeBytes(value.jsonBytes)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    /// Qdrant's answer envelope: `{"result": …, "status": "ok", "time": seconds}`.
    static func ok(_ result: some Encodable, since start: ContinuousClock.Instant) -> Response {
        json(encoded(Qdrant.Response(result: result, time: seconds(since: start))))
    }

    /// Qdrant's error envelope: `{"status": {"error": "…"}, "time": seconds}`.
    static func error(_ error: APIError, since start: ContinuousClock.Instant?) -> Response {
        json(
            encoded(Qdrant.ErrorResponse(error: error.message, time: start.map(seconds(since:)) ?? 0)),
            status: error.status
        )
    }

    /// An answer's JSON. The wire types' encoding cannot fail (they hold JSON values, strings and numbers
    /// only), so a failure would be a bug; it answers `null` rather than crash the server.
    static func encoded(_ value: some Encodable) -> JSONValue {
        (try? JSONValueEncoder().encode(value)) ?? .null
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

/// What `tessera serve` needs.
public struct ServerOptions: Sendable {
    /// The data directory: one subdirectory per collection.
    public var dataDirectory: String
    /// The address to listen on.
    public var host: String
    /// The port (0: any free port).
    public var port: Int
    /// Requests must carry this in the `api-key` header (or `Authorization: Bearer …`) when set.
    public var apiKey: String?
    /// The largest request body accepted (larger: 413).
    public var maximumBodyBytes: Int
    /// Threads for MaxSim scoring per query.
    public var threadCount: Int
    /// Encodes `{"text": …}` queries for vector fields.
    public var encoder: (any QueryTextEncoder)?
    /// Encodes documents upserted as `{"text": …}` for a vector field.
    public var documentEncoder: (any DocumentTextEncoder)?
    /// A connection on which nothing arrives for this long is closed (idle keep-alive, a stalled request).
    public var idleTimeout: Duration = .seconds(30)
    /// A client has this long to send a whole request (headers and body), from the moment its connection opens
    /// or its previous response ends; then the connection is closed.
    public var requestReadTimeout: Duration = .seconds(60)
    /// On SIGTERM or SIGINT, a request still being read gets this long to arrive before its connection is closed.
    public var shutdownReadGrace: Duration = .seconds(1)
    /// The longest a graceful shutdown waits for requests in flight before cancelling them.
    public var shutdownTimeout: Duration = .seconds(30)
    /// How often the background optimiser looks at every collection (`nil`: no background optimiser).
    public var optimizerInterval: Duration? = .seconds(1)
    /// Cluster mode (`--cluster`): collections are sharded and replicated over the nodes registered in etcd.
    public var cluster: ClusterOptions? = nil

    /// Creates options.
    public init(
        dataDirectory: String,
        host: String = "127.0.0.1",
        port: Int = 6333,
        apiKey: String? = nil,
        maximumBodyBytes: Int = 32 << 20,
        threadCount: Int = 1,
        encoder: (any QueryTextEncoder)? = nil,
        documentEncoder: (any DocumentTextEncoder)? = nil
    ) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maximumBodyBytes = maximumBodyBytes
        self.threadCount = threadCount
        self.encoder = encoder
        self.documentEncoder = documentEncoder
    }
}

/// Metrics are bootstrapped once per process into one Prometheus registry.
enum ServerMetrics {
    static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
        }
    }
}

/// Requires the API key on every route but the health checks.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        let path = request.uri.path
        if path == "/healthz" || path == "/readyz" || path == "/livez" { return try await next(request, context) }
        let given =
            request.headers[HTTPField.Name("api-key")!]
            ?? request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard given == key else {
            throw APIError(.unauthorized, "Must provide an API key or an Authorization bearer token")
        }
        return try await next(request, context)
    }
}

/// Builds the router of the Qdrant-compatible REST subset.
/// - Parameters:
///   - registry: The collections.
///   - options: API key, body limit, threads, encoder.
///   - cluster: In cluster mode, the node whose router answers for sharded collections.
/// - Returns: The router.
public func makeRouter(
    registry: CollectionRegistry,
    options: ServerOptions,
    cluster: ClusterNode? = nil
) -> Router<BasicRequestContext> {
    ServerMetrics.bootstrap()
    let router = Router(context: BasicRequestContext.self)
    // Outermost first: errors become Qdrant's envelope after the metrics have counted them by status.
    router.add(middleware: QdrantErrorMiddleware())
    router.add(middleware: MetricsMiddleware())
    if let key = options.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    if let cluster {
        router.add(
            middleware: ClusterMiddleware(
                router: ClusterRouter(node: cluster),
                maximumBodyBytes: options.maximumBodyBytes
            )
        )
    }
    let support = RequestSupport(registry: registry, options: options)

    router.get("/") { _, _ in
        ServerResponse.json(
            .object(["title": .string("tessera - vector search engine"), "version": .string(Qdrant.apiVersion)])
        )
    }
    router.get("/aliases") { _, _ in
        let start = ContinuousClock.now
        return ServerResponse.ok(Qdrant.AliasesResponse(registry.aliases()), since: start)
    }
    // Outside cluster mode, Qdrant's answer of a node that is not distributed (in cluster mode the cluster's
    // middleware answers first).
    router.get("/cluster") { _, _ in
        ServerResponse.json(["result": ["status": "disabled"], "status": "ok", "time": 0])
    }
    router.get("/healthz") { _, _ in "healthz check passed" }
    router.get("/livez") { _, _ in "healthz check passed" }
    router.get("/readyz") { _, _ in "all shards are ready" }
    router.get("/metrics") { _, _ in
        var buffer = ByteBuffer()
        buffer.writeString(ServerMetrics.registry.emitToString())
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: buffer)
        )
    }
    router.addRoutes(CollectionsController(support: support).routes, atPath: "/collections")
    router.addRoutes(PointsController(support: support).routes, atPath: "/collections/:name/points")
    router.addRoutes(QueryController(support: support).routes, atPath: "/collections/:name/points")
    router.addRoutes(SnapshotsController(support: support).routes, atPath: "/collections/:name/snapshots")
    return router
}

/// The routes served, as `METHOD path` (the OpenAPI description is checked against this list).
public let servedRoutes: [String] = [
    "GET /", "GET /cluster", "GET /collections/{collection_name}/cluster",
    "POST /collections/{collection_name}/cluster", "GET /healthz", "GET /livez", "GET /readyz", "GET /metrics",
    "GET /collections",
    "PUT /collections/{collection_name}", "GET /collections/{collection_name}", "PATCH /collections/{collection_name}",
    "DELETE /collections/{collection_name}", "GET /collections/{collection_name}/exists",
    "PUT /collections/{collection_name}/points", "POST /collections/{collection_name}/points",
    "GET /collections/{collection_name}/points/{id}", "POST /collections/{collection_name}/points/delete",
    "POST /collections/{collection_name}/points/scroll", "POST /collections/{collection_name}/points/count",
    "POST /collections/{collection_name}/points/payload", "PUT /collections/{collection_name}/points/payload",
    "POST /collections/{collection_name}/points/payload/delete",
    "POST /collections/{collection_name}/points/payload/clear",
    "POST /collections/{collection_name}/points/query", "POST /collections/{collection_name}/points/query/batch",
    "PUT /collections/{collection_name}/index", "DELETE /collections/{collection_name}/index/{field_name}",
    "POST /collections/{collection_name}/points/batch", "POST /collections/aliases", "GET /aliases",
    "GET /collections/{collection_name}/aliases", "POST /collections/{collection_name}/points/query/groups",
    "POST /collections/{collection_name}/points/search/matrix/pairs",
    "POST /collections/{collection_name}/points/search/matrix/offsets", "POST /collections/{collection_name}/facet",
    "PUT /collections/{collection_name}/points/vectors", "POST /collections/{collection_name}/points/vectors/delete",
    "POST /collections/{collection_name}/snapshots",
    "GET /collections/{collection_name}/snapshots", "GET /collections/{collection_name}/snapshots/{snapshot_name}",
    "DELETE /collections/{collection_name}/snapshots/{snapshot_name}",
    "PUT /collections/{collection_name}/snapshots/recover", "POST /collections/{collection_name}/snapshots/upload",
]

/// Runs the server until SIGINT or SIGTERM; in-flight requests finish first.
/// - Parameters:
///   - options: Where and how to serve.
///   - logger: Structured logs.
///   - onRunning: Called with the bound port once the server listens.
/// - Throws: `TesseraError` when the data directory cannot be created or the address cannot be bound (a port in
///   use).
public func runServer(
    options: ServerOptions,
    logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws {
    // One server owns a data folder: a second one on the same folder stops here with the first one's pid.
    let registry = try CollectionRegistry(directory: options.dataDirectory, ownsDirectory: true)
    let cluster = options.cluster.map { ClusterNode(options: $0, logger: logger) }
    let router = makeRouter(registry: registry, options: options, cluster: cluster)
    let bound = PortSignal()
    let readTimeout = TimeAmount.nanoseconds(nanoseconds(options.requestReadTimeout))
    let grace = TimeAmount.nanoseconds(nanoseconds(options.shutdownReadGrace))
    let application = Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [RequestDeadlineHandler(readTimeout: readTimeout, shutdownGrace: grace)],
                idleTimeout: .nanoseconds(nanoseconds(options.idleTimeout))
            )
        ),
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "tessera"),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? options.port
            bound.send(port)
            await onRunning(port)
        },
        logger: logger
    )
    var services: [any Service] = [application]
    if let interval = options.optimizerInterval {
        services.append(BackgroundOptimizer(registry: registry, interval: interval, logger: logger))
    }
    if let cluster {
        services.append(ClusterService(node: cluster, host: options.host, port: bound))
    }
    var configuration = ServiceGroupConfiguration(
        services: services,
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    configuration.maximumGracefulShutdownDuration = options.shutdownTimeout
    configuration.maximumCancellationDuration = .seconds(5)
    do {
        try await ServiceGroup(configuration: configuration).run()
    } catch let error as IOError {
        // A port in use or not ours to bind: said in words, not as the socket call that failed.
        throw TesseraError(
            .io,
            "cannot listen on \(options.host):\(options.port): " + String(cString: strerror(error.errnoCode))
        )
    }
    withExtendedLifetime(registry) {}
}

func nanoseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
}
