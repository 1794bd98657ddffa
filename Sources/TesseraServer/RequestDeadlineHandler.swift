import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client takes too long to send a whole request: from the moment the connection opens
/// (or the previous response ends) until the request's last byte arrives. Hummingbird's idle timeout closes a
/// connection on which nothing arrives for a while; this deadline also bounds a client that sends one byte at a
/// time. On graceful shutdown, a request still being read gets a short grace, then the connection is closed, so
/// that a stalled client cannot keep the server from stopping.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let readTimeout: TimeAmount
    private let shutdownGrace: TimeAmount
    private var deadline: Scheduled<Void>?
    /// A request has started (its head arrived) and its end has not.
    private var isReadingRequest = false
    private var isQuiescing = false

    init(readTimeout: TimeAmount, shutdownGrace: TimeAmount) {
        self.readTimeout = readTimeout
        self.shutdownGrace = shutdownGrace
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context, in: readTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(context, in: readTimeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: isReadingRequest = true
        case .end:
            isReadingRequest = false
            cancel()
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), !isQuiescing {
            // The next request has `readTimeout` to arrive in full.
            schedule(context, in: readTimeout)
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            isQuiescing = true
            if isReadingRequest {
                cancel()
                schedule(context, in: shutdownGrace)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: delay) {
            channel.close(promise: nil)
        }
    }

    private func cancel() {
        deadline?.cancel()
        deadline = nil
    }
}
