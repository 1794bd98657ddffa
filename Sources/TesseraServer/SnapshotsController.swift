import Foundation
import HTTPTypes
import Hummingbird
import Tessera
import TesseraQdrant

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The routes of collection snapshots, Qdrant's: create, list, download, delete, recover from a location, and
/// recover from an uploaded file. The library writes and restores the archives (``CollectionStore/writeSnapshot(to:)``,
/// ``CollectionCatalog/recover(_:fromSnapshot:checksum:)``); these routes translate, and fetch an `http(s)`
/// location or an upload into the snapshots folder first.
///
/// `wait` is accepted on every route; the operation has always completed when the answer comes.
struct SnapshotsController: Controller {
    let support: RequestSupport

    /// Adds the routes, relative to `/collections/:name/snapshots`.
    func addRoutes(to routes: RouteCollection<BasicRequestContext>) {
        routes.post("", use: create)
        routes.get("", use: list)
        routes.put("recover", use: recover)
        routes.post("upload", use: upload)
        routes.get(":snapshot", use: download)
        routes.delete(":snapshot", use: delete)
    }

    private var catalog: CollectionCatalog { support.registry.catalog }

    /// The collection a route names, through an alias.
    private func collection(_ context: BasicRequestContext) throws -> String {
        let name = support.registry.resolve(try support.name(context))
        try CollectionRegistry.checkName(name)
        return name
    }

    private func snapshotName(_ context: BasicRequestContext) throws -> String {
        guard let raw = context.parameters.get("snapshot") else { throw APIError(.badRequest, "missing snapshot name") }
        return raw.removingPercentEncoding ?? raw
    }

    @Sendable func create(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let name = try collection(context)
            let description = try support.run { () throws(TesseraError) in try catalog.createSnapshot(of: name) }
            return ServerResponse.ok(Qdrant.SnapshotDescription(description), since: start)
        }
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let name = try collection(context)
            let found = try support.run { () throws(TesseraError) in try catalog.snapshots(of: name) }
            return ServerResponse.ok(found.map(Qdrant.SnapshotDescription.init), since: start)
        }
    }

    @Sendable func download(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try collection(context)
        let snapshot = try snapshotName(context)
        let path = try support.run { () throws(TesseraError) in try catalog.snapshotFile(of: name, snapshot: snapshot) }
        let body = try await FileIO(threadPool: RequestSupport.blockingPool).loadFile(path: path, context: context)
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream",
                .contentDisposition: "attachment; filename=\"\(snapshot)\"",
            ],
            body: body
        )
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.blocking {
            let start = ContinuousClock.now
            let name = try collection(context)
            let snapshot = try snapshotName(context)
            try support.run { () throws(TesseraError) in try catalog.deleteSnapshot(of: name, snapshot: snapshot) }
            return ServerResponse.ok(true, since: start)
        }
    }

    /// `PUT /collections/{name}/snapshots/recover`: restores `name` from a `file://` location inside the
    /// snapshots folder or an `http(s)://` one (downloaded into the snapshots folder first, then removed).
    @Sendable func recover(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try await support.serve(request, as: Qdrant.SnapshotRecover.self) { body in
            let start = ContinuousClock.now
            let name = try support.name(context)
            try CollectionRegistry.checkName(name)
            guard let url = URL(string: body.location), let scheme = url.scheme?.lowercased() else {
                throw APIError(.badRequest, "Bad request: location '\(body.location)' is not a URL")
            }
            switch scheme {
            case "file":
                let path = try support.run { () throws(TesseraError) in try catalog.localSnapshotPath(url.path) }
                try support.run { () throws(TesseraError) in
                    _ = try catalog.recover(name, fromSnapshot: path, checksum: body.checksum)
                }
            case "http", "https":
                let folder = catalog.snapshotsDirectory(of: name)
                let file = (folder as NSString).appendingPathComponent(".download-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(atPath: file) }
                try Self.download(url, apiKey: body.apiKey, to: file)
                try support.run { () throws(TesseraError) in
                    _ = try catalog.recover(name, fromSnapshot: file, checksum: body.checksum)
                }
            default:
                throw APIError(
                    .badRequest,
                    "Bad request: snapshot location scheme '\(scheme)' is not supported (file, http or https)"
                )
            }
            return ServerResponse.ok(true, since: start)
        }
    }

    /// Downloads `url` into `path`, refusing anything but a 200 answer.
    /// - Throws: ``APIError`` 400 naming the location and why it could not be read.
    static func download(_ url: URL, apiKey: String?, to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        var request = URLRequest(url: url, timeoutInterval: 60)
        if let apiKey { request.setValue(apiKey, forHTTPHeaderField: "api-key") }
        final class Outcome: @unchecked Sendable {
            // Written by the download's completion handler before the semaphore is signalled, read after the wait.
            var error: String?
        }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task = URLSession.shared.downloadTask(with: request) { location, response, error in
            defer { done.signal() }
            if let error {
                outcome.error = error.localizedDescription
                return
            }
            guard let response = response as? HTTPURLResponse, let location else {
                outcome.error = "no answer"
                return
            }
            guard response.statusCode == 200 else {
                outcome.error = "it answered HTTP \(response.statusCode)"
                return
            }
            do {
                try FileManager.default.moveItem(atPath: location.path, toPath: path)
            } catch {
                outcome.error = "cannot keep the downloaded file: \(error.localizedDescription)"
            }
        }
        task.resume()
        done.wait()
        if let error = outcome.error {
            throw APIError(
                .badRequest,
                "Bad request: cannot download the snapshot from \(url.absoluteString): \(error)"
            )
        }
    }

    /// `POST /collections/{name}/snapshots/upload`: a multipart form whose `snapshot` field is the archive; stored
    /// in the snapshots folder under the upload's file name (or a generated one), then recovered from.
    @Sendable func upload(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let name = try support.name(context)
        try CollectionRegistry.checkName(name)
        let checksum = request.uri.queryParameters["checksum"].map(String.init)
        if let checksum {
            do { try Qdrant.checkSHA256(checksum) } catch {
                throw APIError(.badRequest, "Validation error in query parameters: [checksum: \(error)]")
            }
        }
        if let priority = request.uri.queryParameters["priority"].map(String.init),
            !Qdrant.snapshotPriorities.contains(priority)
        {
            throw APIError(
                .badRequest,
                "Validation error in query parameters: unknown priority '\(priority)' (no_sync, snapshot or replica)"
            )
        }
        guard let contentType = request.headers[.contentType],
            let boundary = MultipartUpload.boundary(contentType: contentType)
        else {
            throw APIError(.badRequest, "Bad request: the upload must be multipart/form-data with a boundary")
        }
        let folder = catalog.snapshotsDirectory(of: name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let raw = (folder as NSString).appendingPathComponent(".upload-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: raw) }
        try await FileIO(threadPool: RequestSupport.blockingPool).writeFile(
            contents: request.body,
            path: raw,
            context: context
        )
        return try await support.blocking {
            let part = try MultipartUpload.extract(field: "snapshot", boundary: boundary, from: raw)
            var fileName = part.fileName.map { ($0 as NSString).lastPathComponent } ?? ""
            if (try? CollectionCatalog.validateSnapshotName(fileName)) == nil {
                fileName = "\(name)-upload-\(UUID().uuidString).\(CollectionCatalog.snapshotExtension)"
            }
            let path = (folder as NSString).appendingPathComponent(fileName)
            try MultipartUpload.copy(part, from: raw, to: path)
            try support.run { () throws(TesseraError) in
                _ = try catalog.recover(name, fromSnapshot: path, checksum: checksum)
            }
            return ServerResponse.ok(true, since: start)
        }
    }
}
