public import HTTPTypes
import Hummingbird
public import Tessera

/// A failed request: the HTTP status and Qdrant's error text. The body is Qdrant's error envelope,
/// `{"status": {"error": "…"}, "time": …}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The error text.
    public var message: String

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// Maps a collection error to Qdrant's status and wording: 404 for unknown things, 400 for bad input,
    /// 409 for a name in use, 500 for storage failures.
    public init(from error: TesseraError) {
        let location = [error.location.field.map { "field \($0)" }, error.location.path.map { "file \($0)" }]
            .compactMap { $0 }.joined(separator: ", ")
        let detail = error.message + (location.isEmpty ? "" : " (\(location))")
        switch error.code {
        case .notFound: self.init(.notFound, "Not found: \(detail)")
        case .alreadyExists: self.init(.conflict, "Wrong input: \(detail)")
        case .invalidArgument, .dimensionMismatch, .configurationMismatch:
            self.init(.badRequest, "Wrong input: \(detail)")
        default: self.init(.internalServerError, "Service internal error: \(detail)")
        }
    }

    public var description: String { "\(status.code) \(message)" }
}
