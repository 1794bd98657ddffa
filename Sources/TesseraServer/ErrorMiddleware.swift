import HTTPTypes
import Hummingbird
import Logging
import Tessera

/// Turns every failure into Qdrant's error envelope, `{"status": {"error": "…"}, "time": seconds}`, and logs each
/// request once with its outcome.
///
/// It is the outermost middleware, so that it also answers for requests no route matches (the router's bare 404),
/// for errors thrown by other middleware (the API key check) and for errors no handler expected (a 500 that names
/// the error instead of an empty body). Requests that succeed are logged at `debug`, refused ones (4xx) at `info`
/// and failed ones (5xx) at `error`, each with the method, path, status and duration as metadata.
struct QdrantErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let response: Response
        var failure: APIError?
        do {
            response = try await next(request, context)
        } catch {
            let apiError = Self.apiError(for: error, request: request)
            failure = apiError
            response = ServerResponse.error(apiError, since: start)
        }
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var metadata: Logger.Metadata = [
            "http.method": "\(request.method)",
            "http.path": "\(request.uri.path)",
            "http.status": "\(response.status.code)",
            "duration_ms": "\((milliseconds * 1000).rounded() / 1000)",
        ]
        if let failure {
            metadata["error"] = "\(failure.logDetail ?? failure.message)"
            if failure.status.kind == .serverError {
                context.logger.error("request failed", metadata: metadata)
            } else {
                context.logger.info("request refused", metadata: metadata)
            }
        } else {
            context.logger.debug("request served", metadata: metadata)
        }
        return response
    }

    /// Qdrant's status and wording for any error a handler or middleware throws.
    static func apiError(for error: any Error, request: Request) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as TesseraError:
            return APIError(from: error)
        case let error as HTTPError where error.status == .notFound:
            return APIError(.notFound, "Not found: no route for \(request.method) \(request.uri.path)")
        case let error as HTTPError where error.status == .contentTooLarge:
            return APIError(.contentTooLarge, "Payload too large: the request body is over the server's limit")
        case let error as HTTPError:
            return APIError(error.status, error.body ?? error.status.reasonPhrase)
        case let error as any HTTPResponseError:
            return APIError(error.status, "\(error.status.reasonPhrase): \(error)")
        default:
            // The error's own text may name server files; the client gets its kind, the log the whole.
            return APIError(
                .internalServerError,
                "Service internal error: \(type(of: error))",
                logDetail: "\(error)"
            )
        }
    }
}
