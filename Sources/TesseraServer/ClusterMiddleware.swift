import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import TesseraCluster

/// In cluster mode, answers the requests that are the cluster's (sharded collections, the collection list,
/// `/cluster`) by scatter-gather, and passes the rest on: the health checks and metrics, and the requests other
/// nodes send to this node's shard collections (which a replica catching up may hold back).
struct ClusterMiddleware<Context: RequestContext>: RouterMiddleware {
    let router: ClusterRouter
    let maximumBodyBytes: Int

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/collections") || path.hasPrefix("/cluster") || path.hasPrefix("/aliases") else {
            return try await next(request, context)
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maximumBodyBytes)
        } catch {
            throw APIError(
                .contentTooLarge,
                "Payload too large: the request body is over the limit of \(maximumBodyBytes) bytes"
            )
        }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let clusterRequest = ClusterRequest(
            method: HTTPMethod(rawValue: request.method.rawValue),
            path: path,
            query: query,
            body: Array(buffer: buffer)
        )
        let headers = request.headers
        if headers[HTTPField.Name(ClusterRouter.shardHeader)!] != nil, !path.hasPrefix("/cluster") {
            let transfer =
                headers[HTTPField.Name(ClusterRouter.transferHeader)!] != nil
                || headers[HTTPField.Name(ClusterRouter.replayHeader)!] != nil
            if let reply = router.holdBack(clusterRequest, transfer: transfer) { return Self.response(reply) }
            return try await next(request, context)
        }
        guard let reply = await router.handle(clusterRequest) else { return try await next(request, context) }
        return Self.response(reply)
    }

    static func response(_ reply: ClusterReply) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(reply.body)
        return Response(
            status: HTTPResponse.Status(code: reply.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: buffer)
        )
    }
}

/// The cluster node as a service of the server: it joins once the server listens, and leaves on shutdown.
struct ClusterService: Service {
    let node: ClusterNode
    let host: String
    let port: PortSignal

    func run() async throws {
        guard let port = await port.wait() else { return }
        try await cancelWhenGracefulShutdown { try await node.run(host: host, port: port) }
    }
}

/// The port the server bound, handed from its `onServerRunning` to the services that wait for it.
final class PortSignal: Sendable {
    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int?, Never>])>((nil, []))

    func send(_ port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func wait() async -> Int? {
        await withCheckedContinuation { continuation in
            let port = state.withLock { state -> Int? in
                if let port = state.port { return port }
                state.waiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }
}
