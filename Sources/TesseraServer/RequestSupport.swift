import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Tessera
import TesseraQdrant

/// What every controller shares: the collections, the server's options, reading and decoding a body, and running
/// work on the blocking thread pool. Only reading the body is asynchronous; the handlers themselves are
/// synchronous (Swift 6.3.1's optimiser crashed splitting the async form of the upsert), and run on the blocking
/// thread pool, never on the server's event loops or the cooperative pool (commits fsync, queries score for
/// milliseconds to seconds).
/// A group of routes: a Hummingbird `RouteCollection` built by ``addRoutes(to:)``, one method per route.
protocol Controller: Sendable {
    /// Adds the controller's routes, relative to the path the collection is mounted at.
    func addRoutes(to routes: RouteCollection<BasicRequestContext>)
}

extension Controller {
    /// The controller's routes.
    var routes: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        addRoutes(to: routes)
        return routes
    }
}

struct RequestSupport: Sendable {
    let registry: CollectionRegistry
    let options: ServerOptions

    /// Reads a request's body, refusing one over the size limit.
    func collect(_ request: Request) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: options.maximumBodyBytes)
        } catch {
            throw APIError(
                .contentTooLarge,
                "Payload too large: the request body is over the limit of \(options.maximumBodyBytes) bytes"
            )
        }
    }

    /// Decodes a body into a wire type: parsed by Tessera's parser (linear time, nesting up to
    /// ``JSONParser/defaultMaximumDepth``; an empty body is `{}`), then decoded from the tree with
    /// ``JSONValueDecoder``, whose errors name the bad field's JSON path.
    static func decode<Body: Decodable>(_ type: Body.Type, _ buffer: ByteBuffer) throws(APIError) -> Body {
        let value: JSONValue
        do {
            value = buffer.readableBytes > 0 ? try JSONValue.parse(utf8: buffer.readableBytesView) : .object([:])
        } catch {
            throw APIError(.badRequest, "Format error in JSON body: \(error.message)")
        }
        return try decode(type, value)
    }

    /// Decodes a parsed body into a wire type.
    static func decode<Body: Decodable>(_ type: Body.Type, _ value: JSONValue) throws(APIError) -> Body {
        do {
            return try JSONValueDecoder().decode(type, from: value)
        } catch {
            throw APIError(.badRequest, "Format error in JSON body: \(error.message)")
        }
    }

    /// Reads the body, then decodes it and runs `handler` on the blocking thread pool.
    func serve<Body: Decodable & Sendable>(
        _ request: Request,
        as type: Body.Type,
        _ handler: @escaping @Sendable (Body) throws -> Response
    ) async throws -> Response {
        let buffer = try await collect(request)
        return try await blocking { try handler(try Self.decode(type, buffer)) }
    }

    /// Runs `body` on the blocking thread pool.
    func blocking(_ body: @escaping @Sendable () throws -> Response) async throws -> Response {
        try await Self.blockingPool.runIfActive(body)
    }

    /// Twice as many threads as cores: a write spends most of its time waiting for fsync, and a thread waiting
    /// there must not keep a core from a query. (Scoring itself is bounded by the cores whatever the count.)
    static let blockingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    func name(_ context: BasicRequestContext) throws -> String {
        guard let name = context.parameters.get("name") else { throw APIError(.badRequest, "missing collection name") }
        return name
    }

    /// The store of the collection a route names (directly or through an alias), and that collection's name.
    func store(_ context: BasicRequestContext) throws -> (String, CollectionStore) {
        let name = registry.resolve(try name(context))
        return (name, try registry.store(name))
    }

    /// A collection's store with Qdrant's parameters of its vector fields, for routes that answer with vectors.
    func storeWithParameters(
        _ context: BasicRequestContext
    ) throws -> (store: CollectionStore, parameters: [String: VectorParameters]) {
        let (name, store) = try store(context)
        return (store, try registry.vectorParameters(name))
    }

    func run<T>(_ body: () throws(TesseraError) -> T) throws(APIError) -> T {
        do { return try body() } catch { throw APIError(from: error) }
    }
}
