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

    /// What only the server's log gets: the full error, with the server's file paths (never in a response body).
    public var logDetail: String?

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ message: String, logDetail: String? = nil) {
        self.status = status
        self.message = message
        self.logDetail = logDetail
    }

    /// Maps a collection error to Qdrant's status and wording: 404 for unknown things, 400 for bad input,
    /// 409 for a name in use or a collection another process owns, 500 for storage failures.
    ///
    /// The body names the JSON field and keeps the underlying cause (SQLite's "file is not a database"), but
    /// never a file path of the server: the path goes to the log only (``logDetail``).
    public init(from error: TesseraError) {
        let location = [
            error.location.field.map { "field \($0)" }, error.location.line.map { "line \($0)" },
            error.location.offset.map { "offset \($0)" },
        ]
        .compactMap { $0 }.joined(separator: ", ")
        let detail = error.message + (location.isEmpty ? "" : " (\(location))")
        let paths = error.location.path.map { " [\($0)]" } ?? ""
        switch error.code {
        case .notFound: self.init(.notFound, "Not found: \(detail)", logDetail: error.description)
        case .alreadyExists: self.init(.conflict, "Wrong input: \(detail)", logDetail: error.description)
        case .locked: self.init(.conflict, "Conflict: \(detail)", logDetail: error.description + paths)
        case .invalidArgument, .dimensionMismatch, .configurationMismatch:
            self.init(.badRequest, "Wrong input: \(detail)", logDetail: error.description)
        default:
            let cause = error.code == .corrupted || error.code == .io ? Self.withoutPaths(error.cause) : nil
            self.init(
                .internalServerError,
                "Service internal error: \(detail)" + (cause.map { "; cause: \($0)" } ?? ""),
                logDetail: error.description
            )
        }
    }

    /// An underlying cause with anything that looks like an absolute path removed.
    static func withoutPaths(_ cause: String?) -> String? {
        guard let cause else { return nil }
        let words = cause.split(separator: " ", omittingEmptySubsequences: false).map { word in
            word.contains("/") && (word.hasPrefix("/") || word.hasPrefix("'/") || word.hasPrefix("\"/"))
                ? "<path>" : String(word)
        }
        return words.joined(separator: " ")
    }

    public var description: String { "\(status.code) \(message)" }
}
