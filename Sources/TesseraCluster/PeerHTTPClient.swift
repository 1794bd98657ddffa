public import NIOCore
public import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP endpoint: a host and a port (`http://HOST:PORT`, no path).
public struct HTTPEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The port.
    public var port: Int

    /// Creates an endpoint.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `http://HOST:PORT` (a trailing `/` allowed; no other path, no `https`).
    /// - Throws: ``ClusterError`` naming the text when it is not such an address.
    public init(parsing text: String) throws(ClusterError) {
        var rest = Substring(text)
        guard rest.hasPrefix("http://") else {
            throw ClusterError("'\(text)' is not an http://HOST:PORT address")
        }
        rest = rest.dropFirst(7)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (1...65535).contains(port), colon > rest.startIndex, !rest[..<colon].contains("/")
        else {
            throw ClusterError("'\(text)' is not an http://HOST:PORT address (a port from 1 to 65535 is required)")
        }
        self.init(host: String(rest[..<colon]), port: port)
    }

    /// `http://HOST:PORT`.
    public var description: String { "http://\(host):\(port)" }
}

/// An error of the cluster layer, in words.
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// The HTTP status to answer with (503 when a peer or etcd cannot be reached).
    public var status: Int

    /// Creates an error.
    public init(_ message: String, status: Int = 400) {
        self.message = message
        self.status = status
    }

    public var description: String { message }
}

/// An HTTP answer: status and whole body.
public struct HTTPReply: Sendable {
    /// The status code.
    public var status: Int
    /// The body.
    public var body: [UInt8]
}

/// A small HTTP/1.1 client for node-to-node and etcd traffic: one request at a time per connection, connections
/// kept alive and reused per endpoint, a deadline per request. A request that fails on a reused connection before
/// any answer arrived (the peer closed it while it was idle) is sent once more on a new connection.
public final class PeerHTTPClient: Sendable {
    private let group: any EventLoopGroup
    private let idle = Mutex<[HTTPEndpoint: [Connection]]>([:])
    /// Idle connections kept per endpoint.
    private let keptPerEndpoint = 16

    /// Creates a client on NIO's shared event loop group.
    public init() {
        group = MultiThreadedEventLoopGroup.singleton
    }

    deinit {
        for connections in idle.withLock({ $0.values }) {
            for connection in connections { connection.channel.close(promise: nil) }
        }
    }

    /// Sends a request and waits for the whole answer.
    /// - Parameters:
    ///   - method: `GET`, `POST`, `PUT`, `DELETE`, …
    ///   - endpoint: Where.
    ///   - path: The path and query.
    ///   - headers: Extra headers.
    ///   - body: The body (JSON), or empty.
    ///   - timeout: The deadline for the whole exchange, connection included.
    /// - Returns: The answer, whatever its status.
    /// - Throws: ``ClusterError`` with status 503 when the endpoint cannot be reached or does not answer in time.
    public func send(
        _ method: HTTPMethod,
        _ endpoint: HTTPEndpoint,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        timeout: Duration
    ) async throws(ClusterError) -> HTTPReply {
        let deadline = ContinuousClock.now + timeout
        if let connection = takeIdle(endpoint) {
            do {
                let reply = try await connection.exchange(method, endpoint, path, headers, body, deadline)
                giveBack(connection, endpoint, reply.keepAlive)
                return reply.reply
            } catch {
                connection.channel.close(promise: nil)
                // Closed while idle: a new connection below.
                if case .failed(let message) = error { throw ClusterError("\(endpoint): \(message)", status: 503) }
            }
        }
        let connection = try await connect(endpoint, deadline)
        do {
            let reply = try await connection.exchange(method, endpoint, path, headers, body, deadline)
            giveBack(connection, endpoint, reply.keepAlive)
            return reply.reply
        } catch {
            connection.channel.close(promise: nil)
            switch error {
            case .noAnswer: throw ClusterError("\(endpoint) closed the connection without answering", status: 503)
            case .failed(let message): throw ClusterError("\(endpoint): \(message)", status: 503)
            }
        }
    }

    /// Sends a `GET` and waits for the whole answer (``send(_:_:_:headers:body:timeout:)``).
    public func get(
        _ endpoint: HTTPEndpoint,
        _ path: String,
        headers: [(String, String)] = [],
        timeout: Duration
    ) async throws(ClusterError) -> HTTPReply {
        try await send(.GET, endpoint, path, headers: headers, timeout: timeout)
    }

    /// Sends a request whose answer is a stream (an etcd watch) and hands each body chunk to `onChunk` until the
    /// peer ends the answer, the connection breaks or the task is cancelled (the connection is then closed).
    /// - Returns: The status of the answer.
    public func stream(
        _ method: HTTPMethod,
        _ endpoint: HTTPEndpoint,
        _ path: String,
        body: [UInt8],
        onChunk: @escaping @Sendable (ByteBuffer) -> Void
    ) async throws(ClusterError) -> Int {
        let connection = try await connect(endpoint, .now + .seconds(5))
        defer { connection.channel.close(promise: nil) }
        connection.handler.onChunk = onChunk
        do {
            return try await withTaskCancellationHandler {
                try await connection.exchange(method, endpoint, path, [], body, nil).reply.status
            } onCancel: {
                connection.channel.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw ClusterError("cancelled", status: 503) }
            throw ClusterError("\(endpoint): the stream broke", status: 503)
        }
    }

    private func takeIdle(_ endpoint: HTTPEndpoint) -> Connection? {
        idle.withLock { idle in
            while let connection = idle[endpoint]?.popLast() {
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    private func giveBack(_ connection: Connection, _ endpoint: HTTPEndpoint, _ keepAlive: Bool) {
        let kept =
            keepAlive && connection.channel.isActive
            && idle.withLock { idle in
                guard idle[endpoint, default: []].count < keptPerEndpoint else { return false }
                idle[endpoint, default: []].append(connection)
                return true
            }
        if !kept { connection.channel.close(promise: nil) }
    }

    private func connect(
        _ endpoint: HTTPEndpoint,
        _ deadline: ContinuousClock.Instant
    ) async throws(ClusterError)
        -> Connection
    {
        let handler = ExchangeHandler()
        let left = max(deadline - .now, .milliseconds(1))
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(nanoseconds(left)))
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .get()
            return Connection(channel: channel, handler: handler)
        } catch {
            throw ClusterError("cannot connect to \(endpoint): \(error)", status: 503)
        }
    }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
}

/// Why an exchange failed: before any answer (a new connection may succeed), or after.
enum ExchangeFailure: Error {
    case noAnswer
    case failed(String)
}

struct Connection: Sendable {
    let channel: any Channel
    let handler: ExchangeHandler

    func exchange(
        _ method: HTTPMethod,
        _ endpoint: HTTPEndpoint,
        _ path: String,
        _ headers: [(String, String)],
        _ body: [UInt8],
        _ deadline: ContinuousClock.Instant?
    ) async throws(ExchangeFailure) -> (reply: HTTPReply, keepAlive: Bool) {
        let promise = channel.eventLoop.makePromise(of: ExchangeHandler.Answer.self)
        let channel = self.channel
        let handler = self.handler
        channel.eventLoop.execute {
            handler.start(promise)
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
            head.headers.add(name: "Content-Length", value: String(body.count))
            if !body.isEmpty { head.headers.add(name: "Content-Type", value: "application/json") }
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if !body.isEmpty {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { handler.fail($0) }
        }
        var timer: Scheduled<Void>?
        if let deadline {
            let left = max(deadline - .now, .milliseconds(1))
            timer = channel.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds(left))) {
                handler.timeOut()
                channel.close(promise: nil)
            }
        }
        defer { timer?.cancel() }
        let answer: ExchangeHandler.Answer
        do {
            answer = try await promise.futureResult.get()
        } catch {
            throw .failed("\(error)")
        }
        switch answer {
        case .reply(let reply, let keepAlive): return (reply, keepAlive)
        case .closedBeforeAnswer: throw .noAnswer
        case .timedOut: throw .failed("no answer in time")
        }
    }
}

/// Collects one answer at a time. Its state is touched only on its channel's event loop.
final class ExchangeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    enum Answer {
        case reply(HTTPReply, keepAlive: Bool)
        case closedBeforeAnswer
        case timedOut
    }

    private var promise: EventLoopPromise<Answer>?
    private var status = 0
    private var body = ByteBuffer()
    private var keepAlive = true
    private var answered = false
    /// Set before a streamed exchange starts: body chunks go here instead of being collected.
    var onChunk: (@Sendable (ByteBuffer) -> Void)?

    func start(_ promise: EventLoopPromise<Answer>) {
        self.promise = promise
        status = 0
        body.clear()
        keepAlive = true
        answered = false
    }

    func fail(_ error: any Error) {
        let promise = self.promise
        self.promise = nil
        promise?.succeed(answered ? .timedOut : .closedBeforeAnswer)
    }

    func timeOut() {
        let promise = self.promise
        self.promise = nil
        promise?.succeed(.timedOut)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            answered = true
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(var chunk):
            if let onChunk { onChunk(chunk) } else { body.writeBuffer(&chunk) }
        case .end:
            let promise = self.promise
            self.promise = nil
            promise?.succeed(.reply(HTTPReply(status: status, body: Array(buffer: body)), keepAlive: keepAlive))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let promise = self.promise
        self.promise = nil
        promise?.succeed(answered ? .timedOut : .closedBeforeAnswer)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }
}
